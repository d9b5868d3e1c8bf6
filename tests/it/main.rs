//! The integration test binary: one binary, modules by subject, shared helpers.

mod call;
mod cli;
mod events;
mod lambda;
mod runtime_api;
mod template;
