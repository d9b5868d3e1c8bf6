//! The DynamoDB client: the SDK configuration (region chain, TLS, time limits, retries)
//! and the wording of its errors as [`StoreError`]s.

use super::SdkLimits;
use crate::store::StoreError;
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::Client;
use std::time::Duration;

// ---- SDK client limits -------------------------------------------------------------------
//
// Amazon Connect gives a Lambda invocation 8 s, and one turn is one `load` (a Query) plus one
// `append` (a PutItem or TransactWriteItems). DynamoDB answers single-item writes and
// single-partition queries in single-digit milliseconds (p99 well under 100 ms; transactions
// a little more), so anything slower than a second is a sick connection or host, better
// abandoned and retried than waited for.

/// TCP + TLS connect to the regional endpoint, normally a few ms from Lambda. 500 ms leaves
/// room for a slow handshake and still lets a retry happen inside the attempt budget.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// One HTTP attempt (connect + request + response). 1 s is ~10x DynamoDB's p99.9.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
/// Standard retry mode, 3 attempts in all (the first + 2 retries) on throttling, 5xx,
/// timeouts and I/O errors. Throttling is rare with on-demand capacity; more attempts would
/// only spend the caller's time.
pub const SDK_MAX_ATTEMPTS: u32 = 3;
/// Backoff before retry n is random in `0..INITIAL_BACKOFF * 2^n`, at most `MAX_BACKOFF`:
/// 0-50 ms then 0-100 ms. DynamoDB's own SDKs use a 25-50 ms base; the default 1 s base
/// would burn an eighth of the call's budget per retry.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(50);
/// Cap on a single backoff.
pub const MAX_BACKOFF: Duration = Duration::from_millis(400);
/// Whole operation, all attempts and backoffs included: the hard cap. Load (2.5 s) + append
/// (2.5 s) = 5 s worst case, leaving 3 s of Connect's 8 s for the Lambda's own work, a cold
/// start, and the app's re-read after a (fast) conflict. A third attempt after two 1 s
/// timeouts is cut short by this cap, by design.
pub const OPERATION_TIMEOUT: Duration = Duration::from_millis(2500);

/// The SDK configuration this crate uses for DynamoDB: the standard AWS settings
/// (environment, profile, `AWS_ENDPOINT_URL`, credentials chain), region `us-east-1` when none
/// is configured (so local endpoints work with dummy credentials), the time limits in
/// `limits` (the defaults above unless a slow test double needs more) and the retries above.
pub async fn sdk_config(limits: &SdkLimits) -> aws_config::SdkConfig {
    // The environment (Lambda always sets AWS_REGION), then the profile, then us-east-1 so
    // local endpoints work with no setup. Not the SDK's default chain: its last resort asks
    // EC2 instance metadata with an HTTP client of its own (aws-lc), which this build leaves out.
    let region = RegionProviderChain::first_try(
        aws_config::environment::EnvironmentVariableRegionProvider::new(),
    )
    .or_else(aws_config::profile::ProfileFileRegionProvider::new())
    .or_else(Region::new("us-east-1"));
    // rustls on ring rather than the SDK's default aws-lc: the same TLS 1.2/1.3 with the
    // SDK's cipher-suite selection, and a binary megabytes smaller (scripts/bench.sh).
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https)
        .region(region)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(limits.attempt_timeout)
                .operation_timeout(limits.operation_timeout)
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(SDK_MAX_ATTEMPTS)
                .with_initial_backoff(INITIAL_BACKOFF)
                .with_max_backoff(MAX_BACKOFF),
        )
        .load()
        .await
}

/// A DynamoDB client built from [`sdk_config`]. Build it once per process (Lambda init).
pub async fn client(limits: &SdkLimits) -> Client {
    Client::new(&sdk_config(limits).await)
}

/// Errors that are not a lost race: all "unavailable", each saying what failed.
pub(super) fn unavailable<E, R>(
    op: &str,
    table: &str,
    limits: &SdkLimits,
    err: SdkError<E, R>,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err {
        SdkError::TimeoutError(_) => StoreError::Unavailable(format!(
            "DynamoDB {op} on table {table} timed out (attempt limit {:?}, operation limit {:?})",
            limits.attempt_timeout, limits.operation_timeout
        )),
        SdkError::DispatchFailure(e) => {
            let what = if e.is_timeout() {
                "timed out connecting to"
            } else if e.is_io() {
                "had an I/O error talking to"
            } else {
                "could not send the request to"
            };
            StoreError::Unavailable(format!(
                "DynamoDB {op} on table {table} {what} the endpoint: {}",
                DisplayErrorContext(&SdkError::<E, R>::DispatchFailure(e))
            ))
        }
        SdkError::ResponseError(e) => StoreError::Unavailable(format!(
            "DynamoDB {op} on table {table}: the response could not be read: {}",
            DisplayErrorContext(&SdkError::<E, R>::ResponseError(e))
        )),
        SdkError::ServiceError(e) => service_unavailable(op, table, e.err()),
        other => StoreError::Unavailable(format!(
            "DynamoDB {op} on table {table} failed: {}",
            DisplayErrorContext(&other)
        )),
    }
}

pub(super) fn service_unavailable<E: ProvideErrorMetadata>(
    op: &str,
    table: &str,
    err: &E,
) -> StoreError {
    let code = err.code().unwrap_or("UnknownError");
    let message = err.message().unwrap_or("no message");
    let why = match code {
        "ThrottlingException"
        | "ProvisionedThroughputExceededException"
        | "RequestLimitExceeded" => "was throttled".to_string(),
        "InternalServerError" | "ServiceUnavailable" | "InternalFailure" => {
            "failed on the server (5xx)".to_string()
        }
        "ResourceNotFoundException" => {
            "found no such table (run `triage migrate` against this endpoint)".to_string()
        }
        _ => "was refused".to_string(),
    };
    StoreError::Unavailable(format!(
        "DynamoDB {op} on table {table} {why}: {code}: {message}"
    ))
}
