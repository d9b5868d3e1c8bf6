//! connect-triage: an event-sourced Amazon Connect phone-line triage backend.
//!
//! The Lambda (`bootstrap`) and the CLI (`triage`) share one turn of the call, [`app`]:
//! load the call's events from the [`store`], fold them into state, [`domain::decide`],
//! append the new events with optimistic concurrency, and answer Connect ([`connect`]).
//! [`flow`] runs the deployed Connect contact flow locally, for `triage call` ([`call`]).
//! Analysts read calls through [`trail`] (one call) and [`analytics`] (ranges of days).

pub mod analytics;
pub mod app;
pub mod call;
pub mod cli;
pub mod connect;
/// The Connect flow language (crate `connect-flow`).
pub use connect_flow as flow;
/// The pure domain (crate `triage-domain`).
pub use triage_domain as domain;
pub mod loadtest;
pub mod logging;
pub mod migrate;
pub mod output;
pub mod store;
pub mod trail;
