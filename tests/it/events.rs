//! ContactFlowEvents as Amazon Connect sends them.

use serde_json::Value;

pub const CALLER: &str = "+34600111222";

/// A voice contact's event with these Parameters (the flow's Lambda invocation attributes).
pub fn contact_event(contact_id: &str, params: &[(&str, &str)]) -> Value {
    connect_triage::flow::voice_event(contact_id, CALLER, params)
}

pub fn new_contact_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub fn field<'a>(response: &'a Value, key: &str) -> &'a str {
    response[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key:?} in {response}"))
}
