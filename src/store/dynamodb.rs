//! DynamoDB event store: the production adapter.
//!
//! # Table layout (DESIGN §3)
//! One item per event. Partition key `contact_id` (S), sort key `seq` (N). Every field of the
//! [`Event`] is a plain attribute (serialised with `serde_dynamo`: `type` S, `seq` N,
//! `score` N, `yes` BOOL, `event_id` S, `at` S in RFC 3339 ms...), so `aws dynamodb query`,
//! exports and Athena read them directly. Added to every item:
//! - `contact_id` (S): the partition key;
//! - `expires_at` (N): the TTL attribute, epoch seconds = `at` + [`DynamoOptions::retention_days`].
//!
//! `CallStarted` items also carry the keys of the sparse analyst indexes:
//! - `day_shard` (S) = `YYYY-MM-DD#k` (UTC day of `at`; `k` = FNV-1a of the contact id modulo
//!   [`DynamoOptions::day_shards`]) with sort key `started_at` (S, = `at`): index
//!   [`BY_DAY_INDEX`]. The shard suffix spreads one busy day over `day_shards` partitions;
//!   a reader of one day queries `YYYY-MM-DD#0` .. `YYYY-MM-DD#{day_shards-1}` and merges.
//! - `caller_hash` (S, an ordinary event field, present only when known) with sort key
//!   `started_at`: index [`BY_CALLER_INDEX`].
//!
//! Reading strips the added attributes and turns the item into JSON, then into an event
//! through [`crate::domain::event_from_json`] (which upcasts older schema versions).
//!
//! Keys starting with `#` (e.g. [`MIGRATIONS_KEY`], where `triage migrate` records what it
//! applied) are table metadata, never calls: Connect ContactIds are UUIDs and never contain
//! `#`. This store refuses to append to them, and readers that scan the whole table (exports,
//! Athena) must skip them.
//!
//! # Conditional writes
//! A stream is always the contiguous run of items `1..=v`: every append writes `v+1..` only
//! if item `v` exists and item `v+1` does not, and items are never deleted while a call is
//! live (TTL removes them a year later). So "the stream is at version `v`" is exactly
//! "item `v` exists (or `v` = 0) and item `v+1` does not":
//! - `v = 0` and one event: a plain `PutItem` of seq 1 with `attribute_not_exists(seq)`
//!   (1 write unit; if item 1 exists, the stream is past 0 and the put fails).
//! - otherwise one `TransactWriteItems`: a `ConditionCheck` that item `v` exists (when `v > 0`)
//!   plus one `Put` per event, each with `attribute_not_exists(seq)`. All or nothing.
//!
//! A `Put` alone would not do for `v > 0`: its condition only sees its own key, so an
//! append at a stale-high `v` would leave a gap. The check costs a second item in the
//! transaction (transactions bill 2 units per item), a few cents per million turns.
//! Lost responses: the SDK retries a write whose response timed out, and the first attempt
//! may have committed. The SDK reuses the transaction's `ClientRequestToken` on its retries,
//! which DynamoDB honours for 10 minutes (emulators such as moto do not), and a retried
//! `PutItem` has no token at all. So when a write fails its condition, the store reads item
//! `v+1` (one consistent GetItem, on the conflict path only): if it carries the `event_id`
//! of the batch's first event, the batch is ours (transactions are all-or-nothing) and the
//! append succeeds. Event ids are UUID v7s minted per decision, so two invocations never
//! share one; re-appending the very same events is therefore idempotent here, where the
//! memory store would report a conflict.

use super::{check_batch, ContactId, EventStore, History, StoreError, MAX_EVENT_BYTES};
use crate::domain::{event_from_json, Event, EventKind};
use async_trait::async_trait;
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::time::Duration;

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// Partition key attribute.
pub const PK: &str = "contact_id";
/// Sort key attribute.
pub const SK: &str = "seq";
/// TTL attribute (epoch seconds).
pub const EXPIRES_AT: &str = "expires_at";
/// Partition key of the by-day index (CallStarted items only).
pub const DAY_SHARD: &str = "day_shard";
/// Sort key of both analyst indexes (CallStarted items only): the `at` of the call start.
pub const STARTED_AT: &str = "started_at";
/// Partition key of the by-caller index (an ordinary CallStarted field, when known).
pub const CALLER_HASH: &str = "caller_hash";
/// Index of calls by UTC day: `day_shard` + `started_at`.
pub const BY_DAY_INDEX: &str = "calls_by_day";
/// Index of calls by caller: `caller_hash` + `started_at`.
pub const BY_CALLER_INDEX: &str = "calls_by_caller";
/// Partition key where `triage migrate` records the migrations it applied. Not a call.
pub const MIGRATIONS_KEY: &str = "#migrations";
/// Partition keys starting with this are table metadata, never calls.
pub const RESERVED_PREFIX: char = '#';

/// Attributes the store adds to an event's item; stripped again on read.
const ADDED_ATTRIBUTES: [&str; 4] = [PK, EXPIRES_AT, DAY_SHARD, STARTED_AT];

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
pub const MAX_ATTEMPTS: u32 = 3;
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

/// A duration in milliseconds from `var`, else `default`. Only for slow test doubles: moto,
/// a Python mock, takes seconds over a transaction that DynamoDB does in milliseconds
/// (`scripts/test-moto.sh` sets these). Production keeps the defaults above.
fn ms_from_env(var: &str, default: Duration) -> Duration {
    std::env::var(var)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&ms| ms > 0)
        .map_or(default, Duration::from_millis)
}

/// The attempt timeout in force: [`ATTEMPT_TIMEOUT`] unless `TRIAGE_DDB_ATTEMPT_TIMEOUT_MS`.
fn attempt_timeout() -> Duration {
    ms_from_env("TRIAGE_DDB_ATTEMPT_TIMEOUT_MS", ATTEMPT_TIMEOUT)
}

/// The operation timeout in force: [`OPERATION_TIMEOUT`] unless
/// `TRIAGE_DDB_OPERATION_TIMEOUT_MS`.
fn operation_timeout() -> Duration {
    ms_from_env("TRIAGE_DDB_OPERATION_TIMEOUT_MS", OPERATION_TIMEOUT)
}

/// The SDK configuration this crate uses for DynamoDB: the standard AWS settings
/// (environment, profile, `AWS_ENDPOINT_URL`, credentials chain), region `us-east-1` when none
/// is configured (so local endpoints work with dummy credentials), and the timeouts and
/// retries above.
pub async fn sdk_config() -> aws_config::SdkConfig {
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
                .operation_attempt_timeout(attempt_timeout())
                .operation_timeout(operation_timeout())
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(INITIAL_BACKOFF)
                .with_max_backoff(MAX_BACKOFF),
        )
        .load()
        .await
}

/// A DynamoDB client built from [`sdk_config`]. Build it once per process (Lambda init).
pub async fn client_from_env() -> Client {
    Client::new(&sdk_config().await)
}

/// Settings of the DynamoDB store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoOptions {
    /// Days an event is kept: `expires_at` = `at` + this. Default 365; env
    /// `TRIAGE_RETENTION_DAYS`. At least 1.
    pub retention_days: u32,
    /// Shards per day in the by-day index. Default 8; env `TRIAGE_DAY_SHARDS`. At least 1.
    /// Changing it changes where new calls go; readers must know the value used.
    pub day_shards: u32,
    /// Items per Query page (`Limit`); `None` = DynamoDB's 1 MB pages. Tests set it to
    /// force pagination.
    pub page_limit: Option<i32>,
}

impl Default for DynamoOptions {
    fn default() -> Self {
        DynamoOptions {
            retention_days: 365,
            day_shards: 8,
            page_limit: None,
        }
    }
}

impl DynamoOptions {
    /// Defaults, overridden by `TRIAGE_RETENTION_DAYS` and `TRIAGE_DAY_SHARDS` when set.
    pub fn from_env() -> Result<DynamoOptions, StoreError> {
        let mut opts = DynamoOptions::default();
        if let Some(days) = env_number("TRIAGE_RETENTION_DAYS", 1, 36_500)? {
            opts.retention_days = days;
        }
        if let Some(shards) = env_number("TRIAGE_DAY_SHARDS", 1, 1_000)? {
            opts.day_shards = shards;
        }
        Ok(opts)
    }
}

fn env_number(name: &str, min: u32, max: u32) -> Result<Option<u32>, StoreError> {
    let Ok(raw) = std::env::var(name) else {
        return Ok(None);
    };
    match raw.trim().parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(StoreError::Invalid(format!(
            "{name}={raw:?} is not a whole number in {min}..={max}"
        ))),
    }
}

/// 64-bit FNV-1a: a fixed hash, the same in every process and build (unlike std's).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The by-day index key of a call: `YYYY-MM-DD#k`, `k` = FNV-1a(contact id) mod `shards`.
pub fn day_shard(contact_id: &str, at: DateTime<Utc>, shards: u32) -> String {
    let k = fnv1a64(contact_id.as_bytes()) % u64::from(shards.max(1));
    format!("{}#{k}", at.format("%Y-%m-%d"))
}

/// The size DynamoDB bills and limits an item by: attribute names plus values (strings and
/// binaries by length; numbers by an upper bound of their digit count; 3 bytes of overhead per
/// list or map, 1 per element).
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.len() + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| n.len() + 1).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(v) => 3 + v.iter().map(|x| 1 + value_size(x)).sum::<usize>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, x)| 1 + k.len() + value_size(x))
                .sum::<usize>()
        }
        _ => 0,
    }
}

/// Event store on one DynamoDB table (see the module docs for the layout).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    opts: DynamoOptions,
}

impl DynamoStore {
    pub fn new(client: Client, table: String, opts: DynamoOptions) -> DynamoStore {
        DynamoStore {
            client,
            table,
            opts,
        }
    }

    /// A store on `table` with the standard AWS settings ([`sdk_config`]) and
    /// [`DynamoOptions::from_env`].
    pub async fn from_env(table: impl Into<String>) -> Result<DynamoStore, StoreError> {
        let table = table.into();
        if table.is_empty() {
            return Err(StoreError::Invalid(
                "the DynamoDB table name is empty".into(),
            ));
        }
        let opts = DynamoOptions::from_env()?;
        Ok(DynamoStore::new(client_from_env().await, table, opts))
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn options(&self) -> &DynamoOptions {
        &self.opts
    }

    /// The item an event is stored as (see the module docs).
    pub fn to_item(&self, contact_id: &ContactId, event: &Event) -> Result<Item, StoreError> {
        let mut item: Item = serde_dynamo::to_item(event).map_err(|e| {
            StoreError::Invalid(format!(
                "event {} of contact {contact_id} cannot be written as a DynamoDB item: {e}",
                event.seq
            ))
        })?;
        item.insert(PK.into(), AttributeValue::S(contact_id.as_str().into()));
        let expires = event
            .at
            .timestamp()
            .saturating_add(i64::from(self.opts.retention_days) * 86_400);
        item.insert(EXPIRES_AT.into(), AttributeValue::N(expires.to_string()));
        if let EventKind::CallStarted { .. } = event.kind {
            let at = item
                .get("at")
                .cloned()
                .ok_or_else(|| StoreError::Invalid("event serialised without `at`".into()))?;
            item.insert(
                DAY_SHARD.into(),
                AttributeValue::S(day_shard(
                    contact_id.as_str(),
                    event.at,
                    self.opts.day_shards,
                )),
            );
            item.insert(STARTED_AT.into(), at);
        }
        let size = item_size(&item);
        if size > MAX_EVENT_BYTES {
            return Err(StoreError::Invalid(format!(
                "event {} ({}) of contact {contact_id} is {size} bytes as a DynamoDB item; at most {MAX_EVENT_BYTES} are allowed",
                event.seq,
                event.kind.name()
            )));
        }
        Ok(item)
    }

    /// Reads one stored item back as an event.
    pub fn from_item(mut item: Item) -> Result<Event, StoreError> {
        let key = describe_key(&item);
        for a in ADDED_ATTRIBUTES {
            item.remove(a);
        }
        let json: serde_json::Value = serde_dynamo::from_item(item)
            .map_err(|e| StoreError::Corrupt(format!("item {key} is not JSON-like: {e}")))?;
        event_from_json(json).map_err(|e| StoreError::Corrupt(format!("item {key}: {e}")))
    }

    fn key(contact_id: &ContactId, seq: u64) -> Item {
        HashMap::from([
            (
                PK.to_string(),
                AttributeValue::S(contact_id.as_str().into()),
            ),
            (SK.to_string(), AttributeValue::N(seq.to_string())),
        ])
    }

    /// Whether `first` (the first event of a batch) is stored: then a write that "lost" was
    /// a retry of our own committed write. Read errors count as "no" (the caller re-reads).
    async fn landed(&self, contact_id: &ContactId, first: &Event) -> bool {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(contact_id, first.seq)))
            .consistent_read(true)
            .projection_expression("event_id")
            .send()
            .await;
        match got {
            Ok(out) => matches!(
                out.item().and_then(|i| i.get("event_id")),
                Some(AttributeValue::S(id)) if *id == first.event_id.to_string()
            ),
            Err(_) => false,
        }
    }

    fn conflict(contact_id: &ContactId, expected: u64) -> StoreError {
        StoreError::Conflict {
            contact_id: contact_id.to_string(),
            expected,
        }
    }

    async fn put_one(
        &self,
        contact_id: &ContactId,
        expected: u64,
        item: Item,
    ) -> Result<(), StoreError> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#seq)")
            .expression_attribute_names("#seq", SK)
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                Err(Self::conflict(contact_id, expected))
            }
            Err(e) => Err(unavailable("PutItem", &self.table, e)),
        }
    }

    async fn transact(
        &self,
        contact_id: &ContactId,
        expected: u64,
        items: Vec<Item>,
    ) -> Result<(), StoreError> {
        let build = |e: aws_sdk_dynamodb::error::BuildError| {
            StoreError::Invalid(format!("cannot build the DynamoDB transaction: {e}"))
        };
        let mut actions = Vec::with_capacity(items.len() + 1);
        if expected > 0 {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(Self::key(contact_id, expected)))
                .condition_expression("attribute_exists(#seq)")
                .expression_attribute_names("#seq", SK)
                .build()
                .map_err(build)?;
            actions.push(TransactWriteItem::builder().condition_check(check).build());
        }
        for item in items {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#seq)")
                .expression_attribute_names("#seq", SK)
                .build()
                .map_err(build)?;
            actions.push(TransactWriteItem::builder().put(put).build());
        }
        let res = self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) => {
                let err = e.into_err();
                if let TransactWriteItemsError::TransactionCanceledException(c) = &err {
                    let codes: Vec<&str> = c
                        .cancellation_reasons()
                        .iter()
                        .filter_map(|r| r.code())
                        .filter(|code| *code != "None")
                        .collect();
                    let lost = |code: &str| {
                        code == "ConditionalCheckFailed" || code == "TransactionConflict"
                    };
                    // Some emulators omit the reasons and name them only in the message.
                    let message = c.message().unwrap_or_default();
                    if codes.iter().any(|c| lost(c))
                        || (codes.is_empty()
                            && (message.contains("ConditionalCheckFailed")
                                || message.contains("TransactionConflict")))
                    {
                        return Err(Self::conflict(contact_id, expected));
                    }
                    return Err(StoreError::Unavailable(format!(
                        "DynamoDB TransactWriteItems on table {} was cancelled ({}): {message}",
                        self.table,
                        if codes.is_empty() {
                            "no reasons given".to_string()
                        } else {
                            codes.join(", ")
                        }
                    )));
                }
                Err(service_unavailable("TransactWriteItems", &self.table, &err))
            }
            Err(e) => Err(unavailable("TransactWriteItems", &self.table, e)),
        }
    }
}

fn describe_key(item: &Item) -> String {
    let s = |k: &str| match item.get(k) {
        Some(AttributeValue::S(s)) => s.clone(),
        Some(AttributeValue::N(n)) => n.clone(),
        _ => "?".into(),
    };
    format!("({}, {})", s(PK), s(SK))
}

/// Errors that are not a lost race: all "unavailable", each saying what failed.
fn unavailable<E, R>(op: &str, table: &str, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err {
        SdkError::TimeoutError(_) => StoreError::Unavailable(format!(
            "DynamoDB {op} on table {table} timed out (attempt limit {:?}, operation limit {:?})",
            attempt_timeout(),
            operation_timeout()
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

fn service_unavailable<E: ProvideErrorMetadata>(op: &str, table: &str, err: &E) -> StoreError {
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

#[async_trait]
impl EventStore for DynamoStore {
    async fn load(&self, contact_id: &ContactId) -> Result<History, StoreError> {
        let mut events = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", AttributeValue::S(contact_id.as_str().into()))
                .set_limit(self.opts.page_limit)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable("Query", &self.table, e))?;
            let last = page.last_evaluated_key().filter(|k| !k.is_empty()).cloned();
            for item in page.items.unwrap_or_default() {
                events.push(Self::from_item(item)?);
            }
            match last {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        Ok(events.into())
    }

    async fn append(
        &self,
        contact_id: &ContactId,
        expected_version: u64,
        events: Vec<Event>,
    ) -> Result<(), StoreError> {
        check_batch(expected_version, &events)?;
        if contact_id.as_str().starts_with(RESERVED_PREFIX) {
            return Err(StoreError::Invalid(format!(
                "contact id {contact_id:?} starts with {RESERVED_PREFIX:?}, which marks table metadata"
            )));
        }
        let mut items = events
            .iter()
            .map(|e| self.to_item(contact_id, e))
            .collect::<Result<Vec<Item>, StoreError>>()?;
        let written = match items.pop() {
            Some(item) if expected_version == 0 && items.is_empty() => {
                self.put_one(contact_id, expected_version, item).await
            }
            Some(last) => {
                items.push(last);
                self.transact(contact_id, expected_version, items).await
            }
            None => Err(StoreError::Invalid(
                "an append needs at least one event".into(),
            )),
        };
        match written {
            Err(conflict @ StoreError::Conflict { .. }) => {
                if self.landed(contact_id, &events[0]).await {
                    tracing::warn!(
                        contact_id = %contact_id,
                        seq = events[0].seq,
                        "a retried DynamoDB write found its own events already stored"
                    );
                    Ok(())
                } else {
                    Err(conflict)
                }
            }
            other => other,
        }
    }

    fn describe(&self) -> String {
        format!("dynamodb:{}", self.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn fnv1a_is_the_published_function() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn day_shards_are_stable_and_bounded() {
        let at = Utc
            .with_ymd_and_hms(2026, 3, 1, 23, 59, 59)
            .single()
            .unwrap_or_default();
        let id = "4a573372-1f28-4e26-b97b-000000000000";
        let s = day_shard(id, at, 8);
        assert!(s.starts_with("2026-03-01#"), "{s}");
        assert_eq!(s, day_shard(id, at, 8));
        assert_eq!(day_shard(id, at, 1), "2026-03-01#0");
        let k: u64 = s.rsplit('#').next().unwrap_or("").parse().unwrap_or(99);
        assert!(k < 8);
    }

    #[test]
    fn item_sizes_count_names_and_values() {
        let item: Item = HashMap::from([
            ("ab".to_string(), AttributeValue::S("xyz".into())),
            ("n".to_string(), AttributeValue::N("12".into())),
            ("b".to_string(), AttributeValue::Bool(true)),
        ]);
        assert_eq!(item_size(&item), 2 + 3 + 1 + 3 + 1 + 1);
    }
}
