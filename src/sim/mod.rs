//! Simulators: the same turn as the Lambda, driven without Amazon Connect.
//!
//! - [`call`]: `triage call`, a whole phone call in the terminal through the very flow that
//!   `template.yaml` deploys.
//! - [`demo`]: `triage seed-demo`, SYNTHETIC calls on past days for the analysts' verbs.
//! - [`scenarios`]: the line's scenarios (`connect/scenarios.json`), run through the flow.
//! - [`connect_tests`]: `triage connect-tests`, the scenarios as Amazon Connect's native test cases.
//! - [`loadtest`]: `triage loadtest`, concurrent calls with retries, then an audit.

pub mod call;
pub mod connect_tests;
pub mod demo;
pub mod loadtest;
pub mod rng;
pub mod scenarios;
