//! Simulators: the same turn as the Lambda, driven without Amazon Connect.
//!
//! - [`call`]: `triage call`, a whole phone call in the terminal through the very flow that
//!   `template.yaml` deploys.
//! - [`demo`]: `triage seed-demo`, SYNTHETIC calls on past days for the analysts' verbs.
//! - [`loadtest`]: `triage loadtest`, concurrent calls with retries, then an audit.

pub mod call;
pub mod demo;
pub mod loadtest;
pub mod rng;
