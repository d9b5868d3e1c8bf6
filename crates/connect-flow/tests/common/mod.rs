//! Fixtures shared by the integration tests.

use connect_flow::FLOW_VERSION;
use serde_json::{json, Value};

/// A real flow to run: connect-triage's own (this crate's tests use it as a fixture).
#[allow(dead_code)] // not every test file runs the triage flow
pub const TRIAGE_FLOW: &str = include_str!("../../../../connect/triage-flow.json");

/// A flow starting at action `a` with these actions.
#[allow(dead_code)] // not every test file builds its own flow
pub fn minimal(actions: Value) -> String {
    json!({"Version": FLOW_VERSION, "StartAction": "a", "Actions": actions}).to_string()
}
