//! The DynamoDB client: the SDK configuration (region chain, TLS, time limits, retries)
//! and the wording of its errors as [`StoreError`]s.

use super::SdkLimits;
use crate::store::StoreError;
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::Client;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
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
    sdk_config_on(limits, connector()).await
}

/// The HTTP connector of this crate's DynamoDB clients: the SDK's own
/// (`aws-smithy-http-client`: hyper, `TCP_NODELAY`), with rustls on ring rather than the
/// SDK's default aws-lc (the same TLS 1.2/1.3 with the SDK's cipher-suite selection, and a
/// binary megabytes smaller: scripts/bench.sh), and [`CONNECT_TIMEOUT`]. The turn's own
/// requests go on the [`super::direct::DirectClient`]'s connections ([`super::http1`]), set
/// up the same way.
pub fn connector() -> SharedHttpConnector {
    let mut builder = aws_smithy_http_client::Connector::builder()
        .connector_settings(
            HttpConnectorSettings::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .build(),
        )
        .enable_tcp_nodelay(true);
    builder.set_sleep_impl(aws_smithy_async::rt::sleep::default_async_sleep());
    SharedHttpConnector::new(
        builder
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build(),
    )
}

/// An [`HttpClient`] that hands the SDK one given connector, whatever the operation's
/// settings (this crate's timeouts are the same for every operation).
#[derive(Debug, Clone)]
struct OneConnector(SharedHttpConnector);

impl HttpClient for OneConnector {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.clone()
    }
}

/// [`sdk_config`] on a given connector.
pub async fn sdk_config_on(
    limits: &SdkLimits,
    connector: SharedHttpConnector,
) -> aws_config::SdkConfig {
    // The environment (Lambda always sets AWS_REGION), then the profile, then us-east-1 so
    // local endpoints work with no setup. Not the SDK's default chain: its last resort asks
    // EC2 instance metadata with an HTTP client of its own (aws-lc), which this build leaves out.
    let region = RegionProviderChain::first_try(
        aws_config::environment::EnvironmentVariableRegionProvider::new(),
    )
    .or_else(aws_config::profile::ProfileFileRegionProvider::new())
    .or_else(Region::new("us-east-1"));
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(SharedHttpClient::new(OneConnector(connector)))
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
        // Stalled-stream protection errs when a body moves less than 1 byte/s for its grace
        // period, 20 s by default (https://docs.aws.amazon.com/sdk-for-rust/latest/dg/
        // timeouts.html, "Stalled stream protection"). DynamoDB's bodies are a few KB of
        // JSON and every attempt is cut at `attempt_timeout` (1 s), so it could never fire
        // first; it only armed a timer per request (an eventfd wake-up of the runtime) and
        // wrapped each body. Measured: `cargo bench --bench lambda_turn`, README.
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .load()
        .await
}

/// A DynamoDB client built from [`sdk_config`]. Build it once per process (Lambda init).
pub async fn client(limits: &SdkLimits) -> Client {
    Client::from_conf(dynamodb_config(&sdk_config(limits).await, None))
}

/// The DynamoDB client configuration of `sdk`, with `endpoint` instead of the configured
/// one when given.
pub fn dynamodb_config(
    sdk: &aws_config::SdkConfig,
    endpoint: Option<&str>,
) -> aws_sdk_dynamodb::Config {
    let mut conf = aws_sdk_dynamodb::config::Builder::from(sdk);
    if let Some(url) = endpoint {
        conf = conf.endpoint_url(url);
    }
    conf.build()
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
        SdkError::TimeoutError(_) => timed_out(op, table, limits),
        SdkError::DispatchFailure(e) => {
            let what = not_sent(e.as_connector_error());
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

/// An operation that ran out of time, with the limits it had.
pub(super) fn timed_out(op: &str, table: &str, limits: &SdkLimits) -> StoreError {
    StoreError::Unavailable(format!(
        "DynamoDB {op} on table {table} timed out (attempt limit {:?}, operation limit {:?})",
        limits.attempt_timeout, limits.operation_timeout
    ))
}

/// What went wrong sending a request, as "DynamoDB {op} on table {table} {this} the endpoint".
pub(super) fn not_sent(e: Option<&ConnectorError>) -> &'static str {
    match e {
        Some(e) if e.is_timeout() => "timed out connecting to",
        Some(e) if e.is_io() => "had an I/O error talking to",
        _ => "could not send the request to",
    }
}

pub(super) fn service_unavailable<E: ProvideErrorMetadata>(
    op: &str,
    table: &str,
    err: &E,
) -> StoreError {
    describe_service_error(
        op,
        table,
        err.code().unwrap_or("UnknownError"),
        err.message().unwrap_or("no message"),
    )
}

/// A DynamoDB error response (its code and message) as a [`StoreError::Unavailable`] that
/// says what failed and, where it helps, what to do.
pub(super) fn describe_service_error(
    op: &str,
    table: &str,
    code: &str,
    message: &str,
) -> StoreError {
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
