//! connect-triage: an event-sourced Amazon Connect phone-line triage backend.
//!
//! The Lambda (`bootstrap`) and the CLI (`triage`) share one turn of the call, [`app`]:
//! load the call's events from the [`store`], fold them into state, [`domain::decide`],
//! append the new events with optimistic concurrency, and answer Connect ([`connect`]).

pub mod domain;
pub mod migrate;
pub mod store;
