//! The one integration test binary, modules by subject, shared helpers. DynamoDB tests use
//! `AWS_ENDPOINT_URL` when it is set (`scripts/test.sh` starts DynamoDB Local for it,
//! `scripts/test-moto.sh` moto); otherwise the binary installs and starts a DynamoDB Local
//! of its own on first use, stopped when it ends (`ddb_local`), so a bare `cargo test` works.

mod analytics;
mod athena;
mod audio;
mod audio_fetch;
mod bounds;
mod call;
mod capacity;
mod cli;
mod contact_events;
mod contract;
mod ddb_local;
mod dynamodb;
mod e2e_dynamodb;
mod events;
mod faultkit;
mod faults;
mod helpers;
mod lambda;
mod localstack_hook;
#[allow(dead_code)]
#[path = "../../benches/common/capacity.rs"]
mod meter;
mod nagle;
mod projector;
mod props;
mod questionnaire;
mod races;
mod round_trips;
mod runtime_api;
mod scenarios;
mod soak;
mod speech;
mod template;
mod tls;
mod versions;
mod warm;
