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
use super::http1::{Connections, Endpoint, ExchangeError};
use super::sigv4::Signer;
use super::{Item, SdkLimits};
use crate::store::StoreError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::client::http::{HttpConnector, SharedHttpConnector};
use aws_smithy_types::body::SdkBody;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// Credentials are fetched again when they expire within this long.
const CREDENTIALS_MARGIN: Duration = Duration::from_secs(300);

/// The turn's requests, sent straight to DynamoDB (see the module docs).
#[derive(Debug)]
pub struct DirectClient {
    conns: Connections,
    signer: Signer,
    /// `scheme://authority/`, as the SDK resolved it.
    uri: String,
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
        let base = format!(
            "{}://{}/",
            if endpoint.is_tls() { "https" } else { "http" },
            endpoint.authority()
        );
        Some(DirectClient {
            conns: Connections::new(endpoint, client::CONNECT_TIMEOUT),
            signer: Signer::new(region),
            uri: base,
            provider,
            cached: Mutex::new(None),
            limits,
        })
    }

    /// Where this writer sends its requests (`scheme://host/`).
    pub fn endpoint(&self) -> &str {
        &self.uri
    }

    /// `PutItem` of `item` if no item has its key yet.
    pub async fn put_new(&self, table: &str, item: &Item) -> Result<(), DirectError> {
        let body = serde_json::to_vec(&PutItem {
            table_name: table,
            item: ItemJson(item),
            condition_expression: "attribute_not_exists(#seq)",
            expression_attribute_names: SeqName,
        })
        .map_err(|e| unbuildable("PutItem", table, e))?;
        self.call("PutItem", table, body).await.map(drop)
    }

    /// `TransactWriteItems`: a check that `check_key` exists (when given), then a put of
    /// each item if its key is new. All or nothing.
    pub async fn transact(
        &self,
        table: &str,
        check_key: Option<&Item>,
        items: &[Item],
    ) -> Result<(), DirectError> {
        let token = uuid::Uuid::new_v4().to_string();
        let body = serde_json::to_vec(&Transact {
            table,
            check_key,
            items,
            token: &token,
        })
        .map_err(|e| unbuildable("TransactWriteItems", table, e))?;
        self.call("TransactWriteItems", table, body).await.map(drop)
    }

    /// One page of a consistent `Query` of the partition `contact_id` (from `start`, at
    /// most `limit` items): its items and the key to go on from, if any.
    pub async fn query_page(
        &self,
        table: &str,
        contact_id: &str,
        limit: Option<i32>,
        start: Option<&Item>,
    ) -> Result<(Vec<Item>, Option<Item>), DirectError> {
        let body = serde_json::to_vec(&Query {
            table,
            contact_id,
            limit,
            start,
        })
        .map_err(|e| unbuildable("Query", table, e))?;
        let bytes = self.call("Query", table, body).await?;
        let page: QueryPage = serde_json::from_slice(&bytes).map_err(|e| {
            DirectError::Unavailable(StoreError::Unavailable(format!(
                "DynamoDB Query on table {table}: the response is not a Query result: {e}"
            )))
        })?;
        Ok((
            page.items.into_iter().map(|i| i.0).collect(),
            page.last.map(|k| k.0).filter(|k| !k.is_empty()),
        ))
    }

    async fn call(
        &self,
        op: &'static str,
        table: &str,
        body: Vec<u8>,
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
            let outcome = match tokio::time::timeout(limit, self.attempt(op, table, &body)).await {
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
                        self.uri
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

fn unbuildable(op: &str, table: &str, e: serde_json::Error) -> DirectError {
    DirectError::Unavailable(StoreError::Invalid(format!(
        "DynamoDB {op} on table {table}: the request body could not be written: {e}"
    )))
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

// ---- the request bodies (DynamoDB JSON) --------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutItem<'a> {
    table_name: &'a str,
    item: ItemJson<'a>,
    condition_expression: &'static str,
    expression_attribute_names: SeqName,
}

/// `{"#seq": "seq"}`: the sort key's name in condition expressions.
struct SeqName;

impl Serialize for SeqName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("#seq", super::SK)?;
        m.end()
    }
}

struct Transact<'a> {
    table: &'a str,
    check_key: Option<&'a Item>,
    items: &'a [Item],
    token: &'a str,
}

impl Serialize for Transact<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Check<'a> {
            table_name: &'a str,
            key: ItemJson<'a>,
            condition_expression: &'static str,
            expression_attribute_names: SeqName,
        }
        #[derive(Serialize)]
        enum Action<'a> {
            ConditionCheck(Check<'a>),
            Put(PutItem<'a>),
        }
        struct Actions<'a>(&'a Transact<'a>);
        impl Serialize for Actions<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let t = self.0;
                let n = t.items.len() + usize::from(t.check_key.is_some());
                let mut seq = s.serialize_seq(Some(n))?;
                if let Some(key) = t.check_key {
                    seq.serialize_element(&Action::ConditionCheck(Check {
                        table_name: t.table,
                        key: ItemJson(key),
                        condition_expression: "attribute_exists(#seq)",
                        expression_attribute_names: SeqName,
                    }))?;
                }
                for item in t.items {
                    seq.serialize_element(&Action::Put(PutItem {
                        table_name: t.table,
                        item: ItemJson(item),
                        condition_expression: "attribute_not_exists(#seq)",
                        expression_attribute_names: SeqName,
                    }))?;
                }
                seq.end()
            }
        }
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("TransactItems", &Actions(self))?;
        m.serialize_entry("ClientRequestToken", self.token)?;
        m.end()
    }
}

/// A consistent Query of one partition
/// (<https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Query.html>).
struct Query<'a> {
    table: &'a str,
    contact_id: &'a str,
    limit: Option<i32>,
    start: Option<&'a Item>,
}

impl Serialize for Query<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Names;
        impl Serialize for Names {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("#pk", super::PK)?;
                m.end()
            }
        }
        struct Values<'a>(&'a str);
        impl Serialize for Values<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry(":pk", &Av(&AttributeValue::S(self.0.to_string())))?;
                m.end()
            }
        }
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("TableName", self.table)?;
        m.serialize_entry("ConsistentRead", &true)?;
        m.serialize_entry("KeyConditionExpression", "#pk = :pk")?;
        m.serialize_entry("ExpressionAttributeNames", &Names)?;
        m.serialize_entry("ExpressionAttributeValues", &Values(self.contact_id))?;
        if let Some(limit) = self.limit {
            m.serialize_entry("Limit", &limit)?;
        }
        if let Some(start) = self.start {
            m.serialize_entry("ExclusiveStartKey", &ItemJson(start))?;
        }
        m.end()
    }
}

/// The parts of a Query response the store reads.
#[derive(serde::Deserialize)]
struct QueryPage {
    #[serde(rename = "Items", default)]
    items: Vec<ItemDe>,
    #[serde(rename = "LastEvaluatedKey", default)]
    last: Option<ItemDe>,
}

/// An item read from DynamoDB JSON.
struct ItemDe(Item);

impl<'de> serde::Deserialize<'de> for ItemDe {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: std::collections::HashMap<String, AvDe> = serde::Deserialize::deserialize(d)?;
        Ok(ItemDe(raw.into_iter().map(|(k, v)| (k, v.0)).collect()))
    }
}

/// One attribute value read from DynamoDB JSON: an object with exactly one type key.
struct AvDe(AttributeValue);

impl<'de> serde::Deserialize<'de> for AvDe {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = AvDe;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a DynamoDB attribute value such as {\"S\": \"text\"}")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<AvDe, A::Error> {
                use serde::de::Error;
                let blob = |text: String| {
                    aws_smithy_types::base64::decode(&text)
                        .map(aws_smithy_types::Blob::new)
                        .map_err(|e| A::Error::custom(format!("a B value is not base64: {e}")))
                };
                let key: String = map
                    .next_key()?
                    .ok_or_else(|| A::Error::custom("an attribute value with no type"))?;
                let value = match key.as_str() {
                    "S" => AttributeValue::S(map.next_value()?),
                    "N" => AttributeValue::N(map.next_value()?),
                    "BOOL" => AttributeValue::Bool(map.next_value()?),
                    "NULL" => AttributeValue::Null(map.next_value()?),
                    "M" => AttributeValue::M(map.next_value::<ItemDe>()?.0),
                    "L" => AttributeValue::L(
                        map.next_value::<Vec<AvDe>>()?
                            .into_iter()
                            .map(|v| v.0)
                            .collect(),
                    ),
                    "SS" => AttributeValue::Ss(map.next_value()?),
                    "NS" => AttributeValue::Ns(map.next_value()?),
                    "B" => AttributeValue::B(blob(map.next_value()?)?),
                    "BS" => AttributeValue::Bs(
                        map.next_value::<Vec<String>>()?
                            .into_iter()
                            .map(blob)
                            .collect::<Result<_, _>>()?,
                    ),
                    other => {
                        return Err(A::Error::custom(format!(
                            "unknown attribute value type {other:?}"
                        )))
                    }
                };
                if map.next_key::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(A::Error::custom("an attribute value with two types"));
                }
                Ok(AvDe(value))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// An item as DynamoDB JSON: `{"name": {"S": "..."}, ...}`.
struct ItemJson<'a>(&'a Item);

impl Serialize for ItemJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, &Av(v))?;
        }
        m.end()
    }
}

/// One attribute value as DynamoDB JSON
/// (<https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_AttributeValue.html>).
struct Av<'a>(&'a AttributeValue);

impl Serialize for Av<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use aws_smithy_types::base64::encode;
        struct List<'a>(&'a [AttributeValue]);
        impl Serialize for List<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().map(Av))
            }
        }
        let mut m = s.serialize_map(Some(1))?;
        match self.0 {
            AttributeValue::S(v) => m.serialize_entry("S", v)?,
            AttributeValue::N(v) => m.serialize_entry("N", v)?,
            AttributeValue::Bool(v) => m.serialize_entry("BOOL", v)?,
            AttributeValue::Null(_) => m.serialize_entry("NULL", &true)?,
            AttributeValue::M(v) => m.serialize_entry("M", &ItemJson(v))?,
            AttributeValue::L(v) => m.serialize_entry("L", &List(v))?,
            AttributeValue::Ss(v) => m.serialize_entry("SS", v)?,
            AttributeValue::Ns(v) => m.serialize_entry("NS", v)?,
            AttributeValue::B(v) => m.serialize_entry("B", &encode(v.as_ref()))?,
            AttributeValue::Bs(v) => m.serialize_entry(
                "BS",
                &v.iter().map(|b| encode(b.as_ref())).collect::<Vec<_>>(),
            )?,
            other => {
                return Err(serde::ser::Error::custom(format!(
                    "attribute value {other:?} has no DynamoDB JSON form here"
                )))
            }
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn item() -> Item {
        HashMap::from([
            ("contact_id".to_string(), AttributeValue::S("c-1".into())),
            ("seq".to_string(), AttributeValue::N("2".into())),
            ("yes".to_string(), AttributeValue::Bool(true)),
            ("none".to_string(), AttributeValue::Null(true)),
            (
                "m".to_string(),
                AttributeValue::M(HashMap::from([(
                    "l".to_string(),
                    AttributeValue::L(vec![AttributeValue::N("1".into())]),
                )])),
            ),
            (
                "b".to_string(),
                AttributeValue::B(aws_smithy_types::Blob::new(b"hi".to_vec())),
            ),
        ])
    }

    #[test]
    fn items_are_written_as_dynamodb_json() {
        let v: serde_json::Value = serde_json::to_value(ItemJson(&item())).expect("serialisable");
        assert_eq!(
            v,
            serde_json::json!({
                "contact_id": {"S": "c-1"}, "seq": {"N": "2"}, "yes": {"BOOL": true},
                "none": {"NULL": true}, "m": {"M": {"l": {"L": [{"N": "1"}]}}},
                "b": {"B": "aGk="}
            })
        );
    }

    #[test]
    fn a_transaction_checks_then_puts_with_one_token() {
        let key = HashMap::from([
            ("contact_id".to_string(), AttributeValue::S("c-1".into())),
            ("seq".to_string(), AttributeValue::N("1".into())),
        ]);
        let items = [item()];
        let v = serde_json::to_value(Transact {
            table: "t",
            check_key: Some(&key),
            items: &items,
            token: "tok",
        })
        .expect("serialisable");
        assert_eq!(v["ClientRequestToken"], "tok");
        let actions = v["TransactItems"].as_array().expect("a list");
        assert_eq!(actions.len(), 2);
        assert_eq!(
            actions[0]["ConditionCheck"],
            serde_json::json!({
                "TableName": "t",
                "Key": {"contact_id": {"S": "c-1"}, "seq": {"N": "1"}},
                "ConditionExpression": "attribute_exists(#seq)",
                "ExpressionAttributeNames": {"#seq": "seq"}
            })
        );
        assert_eq!(actions[1]["Put"]["TableName"], "t");
        assert_eq!(
            actions[1]["Put"]["ConditionExpression"],
            "attribute_not_exists(#seq)"
        );
        assert_eq!(
            actions[1]["Put"]["Item"]["seq"],
            serde_json::json!({"N": "2"})
        );
        // With no version to check, only the puts.
        let v = serde_json::to_value(Transact {
            table: "t",
            check_key: None,
            items: &items,
            token: "tok",
        })
        .expect("serialisable");
        assert_eq!(v["TransactItems"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn items_read_back_as_written() {
        let written = serde_json::to_string(&ItemJson(&item())).expect("serialisable");
        let read: ItemDe = serde_json::from_str(&written).expect("readable");
        assert_eq!(read.0, item());
        let page: QueryPage = serde_json::from_str(&format!(
            r#"{{"Items":[{written}],"Count":1,"ScannedCount":1,"LastEvaluatedKey":{{"seq":{{"N":"2"}}}}}}"#
        ))
        .expect("a page");
        assert_eq!(page.items.len(), 1);
        assert!(page.last.is_some());
        let empty: QueryPage = serde_json::from_str(r#"{"Items":[],"Count":0}"#).expect("a page");
        assert!(empty.items.is_empty() && empty.last.is_none());
        for bad in [
            r#"{"x":{}}"#,
            r#"{"x":{"S":"a","N":"1"}}"#,
            r#"{"x":{"Q":1}}"#,
            r#"{"x":{"B":"%%"}}"#,
        ] {
            assert!(serde_json::from_str::<ItemDe>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_query_names_the_partition_and_pages() {
        let key = HashMap::from([("seq".to_string(), AttributeValue::N("7".into()))]);
        let v = serde_json::to_value(Query {
            table: "t",
            contact_id: "c-1",
            limit: Some(7),
            start: Some(&key),
        })
        .expect("serialisable");
        assert_eq!(
            v,
            serde_json::json!({
                "TableName": "t", "ConsistentRead": true,
                "KeyConditionExpression": "#pk = :pk",
                "ExpressionAttributeNames": {"#pk": "contact_id"},
                "ExpressionAttributeValues": {":pk": {"S": "c-1"}},
                "Limit": 7, "ExclusiveStartKey": {"seq": {"N": "7"}}
            })
        );
    }

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
