//! connect-triage: an event-sourced Amazon Connect phone-line triage backend (the service
//! crate). The contracts it serves are in the repository's `docs/contracts.md`; the shape of
//! the code in `docs/architecture.md`.
//!
//! - [`connect`]: Amazon Connect's side: the ContactFlowEvent read off the wire, the flat
//!   response map. Where a Connect key is parsed.
//! - [`app`]: one turn of a call, shared by the Lambda and the CLI: load -> fold -> decide ->
//!   stamp -> append -> respond.
//! - [`store`]: the event stores (memory, file, DynamoDB), each also a call index; where
//!   DynamoDB is spoken (`store::dynamodb`, migrations included).
//! - [`read`]: the analysts' read side (trail, calls, stats, export, report).
//! - [`sim`]: simulators: `triage call` (the deployed flow run locally), `seed-demo`,
//!   `loadtest`.
//! - [`settings`]: every environment variable, read once.
//!
//! The rules of the questionnaire live in the `triage-domain` crate ([`domain`]); the Connect
//! flow language in `connect-flow` ([`flow`]). Binaries: `bootstrap` (the Lambda) and
//! `triage` (the CLI), both thin.

pub mod app;
pub mod connect;
pub mod logging;
pub mod output;
pub mod questionnaires;
pub mod read;
pub mod settings;
pub mod sim;
pub mod store;

/// The Connect flow language (crate `connect-flow`).
pub use connect_flow as flow;
pub use settings::Settings;
/// The pure domain (crate `triage-domain`).
pub use triage_domain as domain;
