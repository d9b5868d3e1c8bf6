//! The Lambda turn's DynamoDB requests, sent without the SDK's orchestrator (issue 14).
//!
//! Every warm turn of a call makes exactly one DynamoDB request: its conditional append (a
//! `PutItem`, or a `TransactWriteItems`); a call's first turn and Connect's retries also
//! read the call back (a consistent `Query`). Through `aws-sdk-dynamodb` that request cost
//! 190-300 us of CPU on the dev VM (`cargo bench --bench lambda_turn`, with the memory
//! store as the control: README, Performance), most of it the orchestrator's per-request
//! machinery (config bag layers, runtime components merged per operation, a dozen
//! interceptors, user agent, endpoint rules, three timers) rather than the request itself.
//! [`DirectClient`] sends those three operations with what they need, and nothing else:
//! - the endpoint, region and credentials the SDK client would use: the endpoint found
//!   once by asking the SDK where it would send a request ([`DirectClient::new`]), the SDK
//!   config's credentials provider, its credentials cached until five minutes before they
//!   expire;
//! - its own keep-alive HTTP/1.1 connections ([`super::http1`]: one write and a read per
//!   request on the caller's task, `TCP_NODELAY`, the connect timeout, TLS as the SDK's
//!   connector sets it up). Until 2026-12-07 the requests went through the SDK's connector
//!   (hyper_util's pool behind the SDK's adapter); with the signer below that change took
//!   the whole turn from 220-245 to 184-193 us of CPU (interleaved A/B, README);
//! - SigV4 written straight into the request ([`super::sigv4`], checked against
//!   `aws-sigv4` and botocore), the signing key kept for its day;
//! - the DynamoDB JSON 1.0 protocol: `POST /`, `X-Amz-Target: DynamoDB_20120810.<Op>`,
//!   `Content-Type: application/x-amz-json-1.0`, errors as `__type` + `message`
//!   (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.LowLevelAPI.html>);
//! - the same retry policy as the SDK client ([`super::client`]): 3 attempts, full-jitter
//!   backoff from 50 ms capped at 400 ms, on 5xx, throttling, timeouts and I/O errors; the
//!   same attempt (1 s) and operation (2.5 s) limits; a `TransactWriteItems` keeps one
//!   `ClientRequestToken` over its attempts, as the SDK does
//!   (<https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html>).
//!
//! Not carried over from the SDK, and why that is safe here: the adaptive retry token
//! bucket (standard mode's bucket only limits retries of a misbehaving service; the attempt
//! cap of 3 bounds them here), clock-skew correction (Lambda's clock is NTP-synchronised; a
//! skewed client gets `InvalidSignatureException`, reported as unavailable), the user-agent
//! header (metrics only). Everything else (the conflict path's `GetItem`, the analysts'
//! reads, migrations) stays on the SDK. `TRIAGE_DYNAMODB_CLIENT=sdk` puts the turn's
//! requests back on the SDK (A/B, or a doubt); both paths pass the store contract, the
//! fault and race tests (tests/it/contract.rs, faults.rs).

use super::client::{self, describe_service_error};
use super::encode::{self, EncodedItem};
use super::http1::{Connections, Endpoint, ExchangeError};
use super::sigv4::Signer;
use super::SdkLimits;
use crate::store::StoreError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::client::http::{HttpConnector, SharedHttpConnector};
use aws_smithy_types::body::SdkBody;
use serde_json::value::RawValue;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// Credentials are fetched again when they expire within this long.
const CREDENTIALS_MARGIN: Duration = Duration::from_secs(300);

/// The turn's requests, sent straight to DynamoDB (see the module docs).
#[derive(Debug)]
pub struct DirectClient {
    conns: Connections,
    signer: Signer,
    provider: SharedCredentialsProvider,
    cached: Mutex<Option<Credentials>>,
    limits: SdkLimits,
}

/// Why a direct request did not succeed.
#[derive(Debug)]
pub enum DirectError {
    /// DynamoDB answered with an error (after any retries): its code and message, and for
    /// a cancelled transaction the reasons' codes.
    Service {
        code: String,
        message: String,
        reasons: Vec<String>,
    },
    /// No answer: timeouts, I/O, a request that could not be built or signed.
    Unavailable(StoreError),
}

impl DirectClient {
    /// A writer on the endpoint, region and credentials the SDK `client` would use. The
    /// endpoint is the SDK's own answer: one `PutItem` is run through the SDK's full
    /// pipeline against a connector that records where it was sent and answers `{}` without
    /// touching the network. `None` when the SDK cannot get that far (no region, no
    /// credentials): then the writes stay on the SDK, which reports why on first use.
    pub async fn new(
        conf: &aws_sdk_dynamodb::Config,
        provider: SharedCredentialsProvider,
        limits: SdkLimits,
    ) -> Option<DirectClient> {
        let region = conf.region()?.to_string();
        let uri = probe_endpoint(conf).await?;
        let endpoint = Endpoint::parse(&uri)?;
        Some(DirectClient {
            conns: Connections::new(endpoint, client::CONNECT_TIMEOUT),
            signer: Signer::new(region),
            provider,
            cached: Mutex::new(None),
            limits,
        })
    }

    /// Where this writer sends its requests (displayed `scheme://host/`).
    pub fn endpoint(&self) -> &Endpoint {
        self.conns.endpoint()
    }

    /// `PutItem` of `item` if no item has its key yet.
    pub async fn put_new(&self, table: &str, item: &EncodedItem) -> Result<(), DirectError> {
        let mut body = Vec::with_capacity(item.json.len() + 256);
        encode::put_new_body(&mut body, table, item);
        self.call("PutItem", table, &body).await.map(drop)
    }

    /// `TransactWriteItems`: a check that item `(contact_id, check)` exists (when given),
    /// then a put of each item if its key is new. All or nothing.
    pub async fn transact(
        &self,
        table: &str,
        contact_id: &str,
        check: Option<u64>,
        items: &[EncodedItem],
    ) -> Result<(), DirectError> {
        let token = uuid::Uuid::new_v4();
        let mut token_text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let token = token.hyphenated().encode_lower(&mut token_text);
        let mut body =
            Vec::with_capacity(items.iter().map(|i| i.json.len() + 256).sum::<usize>() + 512);
        encode::transact_body(&mut body, table, contact_id, check, items, token);
        self.call("TransactWriteItems", table, &body)
            .await
            .map(drop)
    }

    /// One page of a consistent `Query` of the partition `contact_id` (from `start`, the
    /// previous page's `LastEvaluatedKey`; at most `limit` items): its events and the key
    /// to go on from, if any.
    pub async fn query_page(
        &self,
        table: &str,
        contact_id: &str,
        limit: Option<i32>,
        start: Option<&RawValue>,
    ) -> Result<encode::Page, DirectError> {
        let mut body = Vec::with_capacity(256);
        encode::query_body(&mut body, table, contact_id, limit, start);
        let bytes = self.call("Query", table, &body).await?;
        encode::query_page(&bytes).map_err(|e| {
            DirectError::Unavailable(StoreError::Unavailable(format!(
                "DynamoDB Query on table {table}: the response is not a Query result: {e}"
            )))
        })
    }

    async fn call(
        &self,
        op: &'static str,
        table: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, DirectError> {
        let started = Instant::now();
        let mut refreshed = false;
        let mut attempt = 1;
        loop {
            let left = self
                .limits
                .operation_timeout
                .saturating_sub(started.elapsed());
            let limit = left.min(self.limits.attempt_timeout);
            let outcome = match tokio::time::timeout(limit, self.attempt(op, table, body)).await {
                Ok(outcome) => outcome,
                Err(_) => Attempt::Retryable(DirectError::Unavailable(client::timed_out(
                    op,
                    table,
                    &self.limits,
                ))),
            };
            let why = match outcome {
                Attempt::Done(bytes) => return Ok(bytes),
                Attempt::Final(e) => return Err(e),
                Attempt::ExpiredCredentials(e) if !refreshed => {
                    refreshed = true;
                    self.forget_credentials();
                    e
                }
                Attempt::ExpiredCredentials(e) => return Err(e),
                Attempt::Retryable(e) => e,
            };
            if attempt >= client::SDK_MAX_ATTEMPTS {
                return Err(why);
            }
            // Full jitter, as the SDK's standard mode: random in 0..min(base * 2^n, cap).
            let ceiling = client::INITIAL_BACKOFF
                .saturating_mul(1 << (attempt - 1))
                .min(client::MAX_BACKOFF);
            let pause = ceiling.mul_f64(jitter());
            if started.elapsed() + pause >= self.limits.operation_timeout {
                return Err(why);
            }
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    async fn attempt(&self, op: &'static str, table: &str, body: &[u8]) -> Attempt {
        let creds = match self.credentials().await {
            Ok(c) => c,
            Err(e) => return Attempt::Final(DirectError::Unavailable(e.describe(op, table))),
        };
        let mut request = Vec::with_capacity(body.len() + 1024);
        self.signer.write_request(
            &mut request,
            self.conns.endpoint().authority(),
            op,
            body,
            &creds,
            SystemTime::now(),
        );
        let response = match self.conns.exchange(&request).await {
            Ok(r) => r,
            Err(e) => {
                let what = match e {
                    ExchangeError::ConnectTimeout => "timed out connecting to",
                    ExchangeError::Connect(_) => "could not connect to",
                    ExchangeError::Io(_) | ExchangeError::Malformed(_) => {
                        "had an I/O error talking to"
                    }
                };
                // As the SDK: I/O errors and timeouts are retried.
                return Attempt::Retryable(DirectError::Unavailable(StoreError::Unavailable(
                    format!(
                        "DynamoDB {op} on table {table} {what} the endpoint {}: {e}",
                        self.conns.endpoint()
                    ),
                )));
            }
        };
        let status = response.status;
        let header_type = response.error_type;
        let bytes = response.body;
        if (200..300).contains(&status) {
            return Attempt::Done(bytes);
        }
        let failure = ErrorBody::parse(&bytes, header_type.as_deref(), status);
        let retryable = status >= 500
            || matches!(
                failure.code.as_str(),
                "ThrottlingException"
                    | "ProvisionedThroughputExceededException"
                    | "RequestLimitExceeded"
                    | "TransactionInProgressException"
                    | "InternalServerError"
                    | "ServiceUnavailable"
            );
        let expired = matches!(
            failure.code.as_str(),
            "ExpiredTokenException" | "ExpiredToken" | "UnrecognizedClientException"
        );
        let err = DirectError::Service {
            code: failure.code,
            message: failure.message,
            reasons: failure.reasons,
        };
        if expired {
            Attempt::ExpiredCredentials(err)
        } else if retryable {
            Attempt::Retryable(err)
        } else {
            Attempt::Final(err)
        }
    }

    async fn credentials(&self) -> Result<Credentials, Unsigned> {
        let now = SystemTime::now();
        let fresh = |c: &Credentials| c.expiry().is_none_or(|at| at > now + CREDENTIALS_MARGIN);
        if let Some(c) = self.lock().as_ref().filter(|c| fresh(c)) {
            return Ok(c.clone());
        }
        let c = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| Unsigned(format!("no credentials: {e}")))?;
        *self.lock() = Some(c.clone());
        Ok(c)
    }

    fn forget_credentials(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Credentials>> {
        // A poisoned lock only means a panic elsewhere mid-update: the value is whole.
        self.cached.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A random fraction in [0, 1): 53 random bits of a UUID v4 (the crate's thread-safe
/// randomness; backoff jitter needs no more).
fn jitter() -> f64 {
    (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64
}

enum Attempt {
    Done(Vec<u8>),
    Retryable(DirectError),
    ExpiredCredentials(DirectError),
    Final(DirectError),
}

/// A request that could not be built or signed, and why.
struct Unsigned(String);

impl Unsigned {
    fn describe(self, op: &str, table: &str) -> StoreError {
        StoreError::Unavailable(format!("DynamoDB {op} on table {table}: {}", self.0))
    }
}

impl DirectError {
    /// The store error the SDK path gives for the same failure (conflicts are the caller's).
    pub fn into_store_error(self, op: &str, table: &str) -> StoreError {
        match self {
            DirectError::Unavailable(e) => e,
            DirectError::Service { code, message, .. } => {
                describe_service_error(op, table, &code, &message)
            }
        }
    }
}

/// An error response's code (without the `namespace#` prefix), message and, for a
/// cancelled transaction, the cancellation reasons' codes.
struct ErrorBody {
    code: String,
    message: String,
    reasons: Vec<String>,
}

impl ErrorBody {
    fn parse(bytes: &[u8], header_type: Option<&str>, status: u16) -> ErrorBody {
        #[derive(serde::Deserialize)]
        struct Raw {
            #[serde(rename = "__type")]
            kind: Option<String>,
            #[serde(alias = "Message")]
            message: Option<String>,
            #[serde(rename = "CancellationReasons", default)]
            reasons: Vec<Reason>,
        }
        #[derive(serde::Deserialize)]
        struct Reason {
            #[serde(rename = "Code")]
            code: Option<String>,
        }
        let raw: Option<Raw> = serde_json::from_slice(bytes).ok();
        let kind = raw
            .as_ref()
            .and_then(|r| r.kind.clone())
            .or_else(|| header_type.map(|h| h.split(':').next().unwrap_or(h).to_string()));
        let code = match kind {
            Some(k) => k.rsplit('#').next().unwrap_or(&k).to_string(),
            None if status >= 500 => "InternalServerError".to_string(),
            None => format!("HTTP{status}"),
        };
        let message = raw
            .as_ref()
            .and_then(|r| r.message.clone())
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into());
        let reasons = raw
            .map(|r| r.reasons.into_iter().filter_map(|r| r.code).collect())
            .unwrap_or_default();
        ErrorBody {
            code,
            message,
            reasons,
        }
    }
}

/// Asks the SDK where it would send a `PutItem` (module docs of [`DirectClient::new`]).
async fn probe_endpoint(conf: &aws_sdk_dynamodb::Config) -> Option<String> {
    let probe = Probe::default();
    let seen = probe.seen.clone();
    let conf = conf
        .to_builder()
        .http_client(aws_smithy_runtime_api::client::http::SharedHttpClient::new(
            ProbeClient(SharedHttpConnector::new(probe)),
        ))
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .build();
    let _ = aws_sdk_dynamodb::Client::from_conf(conf)
        .put_item()
        .table_name("probe")
        .item("contact_id", AttributeValue::S("#probe".into()))
        .send()
        .await;
    let uri = seen.lock().ok()?.clone();
    uri
}

#[derive(Debug, Default)]
struct Probe {
    seen: std::sync::Arc<Mutex<Option<String>>>,
}

impl HttpConnector for Probe {
    fn call(
        &self,
        request: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
    ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(request.uri().to_string());
        }
        let response = aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(200u16)
                .unwrap_or_else(|_| unreachable!("200 is a status code")),
            SdkBody::from("{}"),
        );
        aws_smithy_runtime_api::client::http::HttpConnectorFuture::ready(Ok(response))
    }
}

#[derive(Debug)]
struct ProbeClient(SharedHttpConnector);

impl aws_smithy_runtime_api::client::http::HttpClient for ProbeClient {
    fn http_connector(
        &self,
        _settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_give_code_message_and_reasons() {
        let e = ErrorBody::parse(
            br#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled [ConditionalCheckFailed, None]","CancellationReasons":[{"Code":"ConditionalCheckFailed","Message":"The conditional request failed"},{"Code":"None"}]}"#,
            None,
            400,
        );
        assert_eq!(e.code, "TransactionCanceledException");
        assert!(e.message.starts_with("Transaction cancelled"));
        assert_eq!(e.reasons, ["ConditionalCheckFailed", "None"]);
        let e = ErrorBody::parse(
            br#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}"#,
            None,
            400,
        );
        assert_eq!(e.code, "ConditionalCheckFailedException");
        assert_eq!(e.message, "The conditional request failed");
        // No JSON: the header, or the status.
        let e = ErrorBody::parse(b"<html>", Some("ThrottlingException:http://x"), 400);
        assert_eq!(e.code, "ThrottlingException");
        let e = ErrorBody::parse(b"", None, 503);
        assert_eq!(e.code, "InternalServerError");
        let e = ErrorBody::parse(b"", None, 418);
        assert_eq!(e.code, "HTTP418");
    }
}
