//! DynamoDB event store: the production adapter.
//!
//! # Table layout (docs/contracts.md, "The table")
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

pub mod catalog;
pub mod client;
pub mod direct;
pub mod encode;
pub mod http1;
pub mod index;
pub mod item;
pub mod migrate;
pub mod model;
pub mod sigv4;

pub use client::{client, sdk_config, ATTEMPT_TIMEOUT, OPERATION_TIMEOUT};
pub use item::*;

use super::{check_batch, EventStore, History, StoreError, MAX_EVENT_BYTES};
use crate::domain::ContactId;
use crate::domain::{event_from_json, Event, EventKind};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use client::{service_unavailable, unavailable};
use direct::{DirectClient, DirectError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// Event store on one DynamoDB table (see the module docs for the layout).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    opts: DynamoOptions,
    /// Whether this store built its client from the standard settings: then the turn's
    /// requests go through the [`DirectClient`] (if `opts.direct_client`), on the same
    /// endpoint, region and credentials.
    built_client: bool,
    /// The SDK configuration's credentials provider, for the direct path.
    credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
    /// Made at the first append (it asks the SDK for the endpoint and the credentials
    /// then); `None` inside when it could not be made: the SDK writes.
    direct: Arc<OnceCell<Option<DirectClient>>>,
}

impl DynamoStore {
    /// A store on `client` (made by the caller): every request goes through the SDK.
    pub fn new(client: Client, table: String, opts: DynamoOptions) -> DynamoStore {
        DynamoStore {
            client,
            table,
            opts,
            built_client: false,
            credentials: None,
            direct: Arc::new(OnceCell::new()),
        }
    }

    /// A store on `table` with the standard AWS settings ([`sdk_config`]) and `opts`.
    pub async fn open(
        table: impl Into<String>,
        opts: DynamoOptions,
    ) -> Result<DynamoStore, StoreError> {
        DynamoStore::connect(table, opts, None).await
    }

    /// [`DynamoStore::open`], on `endpoint` rather than the configured one when given.
    /// The store makes its client, so its appends can take the direct path
    /// ([`direct`], `opts.direct_client`).
    pub async fn connect(
        table: impl Into<String>,
        opts: DynamoOptions,
        endpoint: Option<&str>,
    ) -> Result<DynamoStore, StoreError> {
        let table = table.into();
        if table.is_empty() {
            return Err(StoreError::Invalid(
                "the DynamoDB table name is empty".into(),
            ));
        }
        let connector = client::connector();
        let sdk = client::sdk_config_on(&opts.limits, connector.clone()).await;
        let client = Client::from_conf(client::dynamodb_config(&sdk, endpoint));
        let mut store = DynamoStore::new(client, table, opts);
        store.built_client = true;
        store.credentials = sdk.credentials_provider();
        Ok(store)
    }

    /// The direct writer, if appends take the direct path ([`direct`]).
    pub async fn direct_client(&self) -> Option<&DirectClient> {
        let (true, Some(credentials), true) = (
            self.built_client,
            &self.credentials,
            self.opts.direct_client,
        ) else {
            return None;
        };
        self.direct
            .get_or_init(|| async {
                let made = DirectClient::new(
                    self.client.config(),
                    credentials.clone(),
                    self.opts.limits,
                )
                .await;
                if made.is_none() {
                    tracing::warn!(
                        table = %self.table,
                        "the turn's DynamoDB requests go through the SDK: it could not resolve an endpoint and credentials up front"
                    );
                }
                made
            })
            .await
            .as_ref()
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
        event_to_item(contact_id, event, &self.opts)
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
            Err(e) => Err(unavailable("PutItem", &self.table, &self.opts.limits, e)),
        }
    }

    async fn transact(
        &self,
        contact_id: &ContactId,
        expected: u64,
        items: Vec<Item>,
    ) -> Result<(), StoreError> {
        let check = (expected > 0).then(|| Self::key(contact_id, expected));
        let actions = self.conditional_writes(check, items)?;
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
                    return Err(self.cancelled(
                        contact_id,
                        expected,
                        c.cancellation_reasons().iter().filter_map(|r| r.code()),
                        c.message().unwrap_or_default(),
                    ));
                }
                Err(service_unavailable("TransactWriteItems", &self.table, &err))
            }
            Err(e) => Err(unavailable(
                "TransactWriteItems",
                &self.table,
                &self.opts.limits,
                e,
            )),
        }
    }
}

impl DynamoStore {
    /// The actions of a conditional append: a `ConditionCheck` that item `check` exists (if
    /// given) and one `Put` per item, each only if its key is free. Events and the
    /// questionnaire catalog write this way.
    fn conditional_writes(
        &self,
        check: Option<Item>,
        items: Vec<Item>,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let build = |e: aws_sdk_dynamodb::error::BuildError| {
            StoreError::Invalid(format!("cannot build the DynamoDB transaction: {e}"))
        };
        let mut actions = Vec::with_capacity(items.len() + 1);
        if let Some(key) = check {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key))
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
        Ok(actions)
    }

    /// One page of the consistent `Query` of a call's partition, from `start`, through the
    /// SDK: its items and the key to go on from, if any.
    async fn query_page(
        &self,
        contact_id: &ContactId,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", AttributeValue::S(contact_id.as_str().into()))
            .set_limit(self.opts.page_limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| unavailable("Query", &self.table, &self.opts.limits, e))?;
        let last = page.last_evaluated_key().filter(|k| !k.is_empty()).cloned();
        Ok((page.items.unwrap_or_default(), last))
    }

    /// A cancelled transaction: a lost race (a condition failed, or another transaction
    /// held an item) or an error that says why it was cancelled.
    fn cancelled<'a>(
        &self,
        contact_id: &ContactId,
        expected: u64,
        reasons: impl Iterator<Item = &'a str>,
        message: &str,
    ) -> StoreError {
        let codes: Vec<&str> = reasons.filter(|code| *code != "None").collect();
        let lost = |code: &str| code == "ConditionalCheckFailed" || code == "TransactionConflict";
        // Some emulators omit the reasons and name them only in the message.
        if codes.iter().any(|c| lost(c))
            || (codes.is_empty()
                && (message.contains("ConditionalCheckFailed")
                    || message.contains("TransactionConflict")))
        {
            return Self::conflict(contact_id, expected);
        }
        StoreError::Unavailable(format!(
            "DynamoDB TransactWriteItems on table {} was cancelled ({}): {message}",
            self.table,
            if codes.is_empty() {
                "no reasons given".to_string()
            } else {
                codes.join(", ")
            }
        ))
    }
}

/// The item `event` of `contact_id` is stored as, with `opts`' retention and day shards (see
/// the module docs). [`encode::event_item`] writes the same item as DynamoDB JSON.
pub fn event_to_item(
    contact_id: &ContactId,
    event: &Event,
    opts: &DynamoOptions,
) -> Result<Item, StoreError> {
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
        .saturating_add(i64::from(opts.retention_days) * 86_400);
    item.insert(EXPIRES_AT.into(), AttributeValue::N(expires.to_string()));
    if let EventKind::CallStarted { .. } = event.kind {
        let at = item
            .get("at")
            .cloned()
            .ok_or_else(|| StoreError::Invalid("event serialised without `at`".into()))?;
        item.insert(
            DAY_SHARD.into(),
            AttributeValue::S(day_shard(contact_id.as_str(), event.at, opts.day_shards)),
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

fn describe_key(item: &Item) -> String {
    let s = |k: &str| match item.get(k) {
        Some(AttributeValue::S(s)) => s.clone(),
        Some(AttributeValue::N(n)) => n.clone(),
        _ => "?".into(),
    };
    format!("({}, {})", s(PK), s(SK))
}

#[async_trait]
impl EventStore for DynamoStore {
    async fn load(&self, contact_id: &ContactId) -> Result<History, StoreError> {
        if let Some(direct) = self.direct_client().await {
            return self.load_direct(direct, contact_id).await;
        }
        let mut events = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let (items, last) = self.query_page(contact_id, start.take()).await?;
            for item in items {
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
        let written = if let Some(direct) = self.direct_client().await {
            self.append_direct(direct, contact_id, expected_version, &events)
                .await
        } else {
            self.append_sdk(contact_id, expected_version, &events).await
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

impl DynamoStore {
    /// A call's events through the [`DirectClient`]: its items read straight into events
    /// ([`encode::query_page`]), page by page.
    async fn load_direct(
        &self,
        direct: &DirectClient,
        contact_id: &ContactId,
    ) -> Result<History, StoreError> {
        let mut events = Vec::new();
        let mut start: Option<Box<serde_json::value::RawValue>> = None;
        loop {
            let page = direct
                .query_page(
                    &self.table,
                    contact_id.as_str(),
                    self.opts.page_limit,
                    start.as_deref(),
                )
                .await
                .map_err(|e| e.into_store_error("Query", &self.table))?;
            for item in page.items {
                events.push(item?);
            }
            match page.last {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        Ok(events.into())
    }

    /// A conditional append through the [`DirectClient`]: the events written straight as
    /// DynamoDB JSON ([`encode::event_item`]), a `PutItem` for a new call's one event, else
    /// one `TransactWriteItems` (module docs).
    async fn append_direct(
        &self,
        direct: &DirectClient,
        contact_id: &ContactId,
        expected: u64,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let items = events
            .iter()
            .map(|e| encode::event_item(contact_id, e, &self.opts))
            .collect::<Result<Vec<_>, StoreError>>()?;
        match items.as_slice() {
            [] => Err(StoreError::Invalid(
                "an append needs at least one event".into(),
            )),
            [item] if expected == 0 => match direct.put_new(&self.table, item).await {
                Ok(()) => Ok(()),
                Err(DirectError::Service { code, .. })
                    if code == "ConditionalCheckFailedException" =>
                {
                    Err(Self::conflict(contact_id, expected))
                }
                Err(e) => Err(e.into_store_error("PutItem", &self.table)),
            },
            items => {
                let check = (expected > 0).then_some(expected);
                match direct
                    .transact(&self.table, contact_id.as_str(), check, items)
                    .await
                {
                    Ok(()) => Ok(()),
                    Err(DirectError::Service {
                        code,
                        message,
                        reasons,
                    }) if code == "TransactionCanceledException" => Err(self.cancelled(
                        contact_id,
                        expected,
                        reasons.iter().map(String::as_str),
                        &message,
                    )),
                    Err(e) => Err(e.into_store_error("TransactWriteItems", &self.table)),
                }
            }
        }
    }

    /// A conditional append through the SDK (module docs).
    async fn append_sdk(
        &self,
        contact_id: &ContactId,
        expected_version: u64,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let mut items = events
            .iter()
            .map(|e| self.to_item(contact_id, e))
            .collect::<Result<Vec<Item>, StoreError>>()?;
        match items.pop() {
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
        }
    }
}

/// Settings of the DynamoDB store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoOptions {
    /// Days an event is kept: `expires_at` = `at` + this. Default 365
    /// (`TRIAGE_RETENTION_DAYS`). At least 1.
    pub retention_days: u32,
    /// Shards per day in the by-day index. Default 8 (`TRIAGE_DAY_SHARDS`). At least 1.
    /// Changing it changes where new calls go; readers must know the value used.
    pub day_shards: u32,
    /// Items per Query page (`Limit`); `None` = DynamoDB's 1 MB pages. Tests set it to
    /// force pagination.
    pub page_limit: Option<i32>,
    /// The client's time limits, quoted when a request times out.
    pub limits: SdkLimits,
    /// Appends go through [`direct::DirectClient`] rather than the SDK's orchestrator
    /// (`TRIAGE_DYNAMODB_CLIENT=direct`, the default; `sdk` turns it off). Only stores that
    /// make their own client ([`DynamoStore::open`]) can.
    pub direct_client: bool,
}

impl Default for DynamoOptions {
    fn default() -> Self {
        DynamoOptions::from_settings(&DynamoSettings::default(), SdkLimits::default())
    }
}

impl DynamoOptions {
    /// The options a deployment's settings give.
    pub fn from_settings(settings: &DynamoSettings, limits: SdkLimits) -> DynamoOptions {
        DynamoOptions {
            retention_days: settings.retention_days.max(1),
            day_shards: settings.day_shards.max(1),
            page_limit: None,
            limits,
            direct_client: settings.direct_client,
        }
    }
}

/// The DynamoDB store's settings that come from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DynamoSettings {
    /// Days an event is kept (`expires_at` = `at` + this). 1..=36,500; default 365.
    pub retention_days: u32,
    /// Shards per day in the by-day index. 1..=1,000; default 8.
    pub day_shards: u32,
    /// `TRIAGE_DYNAMODB_CLIENT`: `direct` (default) or `sdk` ([`DynamoOptions::direct_client`]).
    pub direct_client: bool,
}

impl Default for DynamoSettings {
    fn default() -> Self {
        DynamoSettings {
            retention_days: 365,
            day_shards: 8,
            direct_client: true,
        }
    }
}

/// Time limits of DynamoDB requests (see `client.rs` for why these numbers).
/// Only slow test doubles change them (moto: `scripts/test-moto.sh`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdkLimits {
    /// One HTTP attempt.
    pub attempt_timeout: Duration,
    /// The whole operation, retries included.
    pub operation_timeout: Duration,
}

impl Default for SdkLimits {
    fn default() -> Self {
        SdkLimits {
            attempt_timeout: client::ATTEMPT_TIMEOUT,
            operation_timeout: client::OPERATION_TIMEOUT,
        }
    }
}
