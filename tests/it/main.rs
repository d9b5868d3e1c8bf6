//! The one integration test binary. DynamoDB tests need `AWS_ENDPOINT_URL`: run them with
//! `scripts/test.sh` (DynamoDB Local) or `scripts/test-moto.sh` (moto).

mod contract;
mod dynamodb;
mod helpers;
