//! The one integration test binary, modules by subject, shared helpers. DynamoDB tests need
//! `AWS_ENDPOINT_URL`: run them with `scripts/test.sh` (starts DynamoDB Local) or
//! `scripts/test-moto.sh` (moto).

mod analytics;
mod bounds;
mod call;
mod cli;
mod contract;
mod dynamodb;
mod e2e_dynamodb;
mod events;
mod faultkit;
mod faults;
mod helpers;
mod lambda;
mod localstack_hook;
mod props;
mod races;
mod round_trips;
mod runtime_api;
mod soak;
mod template;
