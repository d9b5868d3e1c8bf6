//! The read model on DynamoDB: its own table (`TABLE-model`, made by `triage migrate`,
//! declared in `template.yaml`), keys `pk` (S) and `sk` (S), no index.
//!
//! Why a table of its own rather than more items in the events table: the events table
//! stays append-only (its items are never updated, docs/contracts.md), its stream carries
//! only events, so the projector's own writes never come back to it as records, and the
//! analysts' role can read figures without reading anyone's answers.
//!
//! | item            | `pk`                      | `sk`                       | holds |
//! |-----------------|---------------------------|----------------------------|-------|
//! | call summary    | `call#DAY#SHARD`          | `STARTED_AT#CONTACT_ID`    | [`ModelCall`] as plain attributes |
//! | day counters    | `day#DAY#SHARD`           | `counts`                   | one number attribute per counter, `c|NAME`; `updated_at` |
//! | open call       | `open#DAY#SHARD`          | `STARTED_AT#CONTACT_ID`    | [`OpenCall`] |
//! | repeat caller   | `day#DAY#SHARD(HASH)`     | `repeat#HASH`              | [`CallerDay`], once it has 2+ calls |
//! | caller's day    | `caller#DAY#SHARD(HASH)`  | `HASH`                     | [`CallerDay`] |
//!
//! `DAY` is the UTC day the call started, `SHARD` FNV-1a of the contact id (or caller hash)
//! modulo the by-day index's `day_shards`: a busy day's writes spread over that many
//! partitions, and a reader of a day's figures runs one `Query` per shard, which returns
//! the shard's counters and repeat callers together: days x shards requests whatever the
//! number of calls (more only when one partition's items pass 1 MB). Open calls are read
//! only for days whose open calls may not all be stale yet (today's, in practice).
//!
//! A [`Commit`] is one `TransactWriteItems`
//! (<https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html>):
//! the summary `Put` on the condition that it is still the one read (`attribute_not_exists`
//! or `last_seq = :seq`), the counters' `Update ... ADD` (numbers added, the item and its
//! attributes created at zero when missing:
//! <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.UpdateExpressions.html#Expressions.UpdateExpressions.ADD>),
//! the open item put or deleted, and for a call new to the model the caller's day, on the
//! condition that its count is still the one read. A failed condition or a conflicting
//! transaction is [`ModelError::Conflict`]: the projector reads again.

use super::client::unavailable;
use super::{DynamoStore, Item, SdkLimits};
use crate::store::index::DayRange;
use crate::store::model::{
    CallKey, CallerDay, Commit, DayCounts, DayItems, ModelCall, ModelError, OpenCall, ReadModel,
    TopCallers,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use std::collections::HashMap;
use std::sync::Arc;

/// Partition key of the model table.
pub const MODEL_PK: &str = "pk";
/// Sort key of the model table.
pub const MODEL_SK: &str = "sk";
/// Prefix of a counter's attribute name.
pub const COUNTER_PREFIX: &str = "c|";
/// When the projector last changed a counters item (RFC 3339).
const UPDATED_AT: &str = "updated_at";
/// Sort key of a counters item.
const COUNTS_SK: &str = "counts";
/// Sort key prefix of a repeat caller in its day partition.
const REPEAT_SK_PREFIX: &str = "repeat#";
/// Queries or batch reads in flight at once when reading a range.
const READ_CONCURRENCY: usize = 16;

/// The read model in a DynamoDB table (see the module docs).
#[derive(Clone, Debug)]
pub struct DynamoModel {
    client: Client,
    table: Arc<str>,
    shards: u32,
    limits: SdkLimits,
    page_limit: Option<i32>,
}

fn ms(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: String, sk: String) -> Item {
    HashMap::from([(MODEL_PK.to_string(), s(pk)), (MODEL_SK.to_string(), s(sk))])
}

fn call_pk(day: NaiveDate, shard: u32) -> String {
    format!("call#{day}#{shard}")
}

/// The day partition: a day-shard's counters, its open calls and its repeat callers, so a
/// reader of a day's figures reads one partition per shard with one Query.
fn day_pk(day: NaiveDate, shard: u32) -> String {
    format!("day#{day}#{shard}")
}

/// Open calls have a partition of their own: readers of a day whose open calls are all
/// stale (see `crate::read::stats::stats_from_model`) never read them.
fn open_pk(day: NaiveDate, shard: u32) -> String {
    format!("open#{day}#{shard}")
}

fn repeat_sk(caller_hash: &str) -> String {
    format!("{REPEAT_SK_PREFIX}{caller_hash}")
}

fn caller_pk(day: NaiveDate, shard: u32) -> String {
    format!("caller#{day}#{shard}")
}

fn call_sk(key: &CallKey) -> String {
    format!("{}#{}", ms(key.started_at), key.contact_id)
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> ModelError {
    ModelError::Corrupt(format!("{what}: {e}"))
}

fn to_item<T: serde::Serialize>(v: &T, pk: String, sk: String) -> Result<Item, ModelError> {
    let mut item: Item = serde_dynamo::to_item(v).map_err(|e| corrupt("a model item", e))?;
    item.extend(key(pk, sk));
    Ok(item)
}

fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, ModelError> {
    let what = match (item.get(MODEL_PK), item.get(MODEL_SK)) {
        (Some(AttributeValue::S(p)), Some(AttributeValue::S(s))) => format!("item {p} / {s}"),
        _ => "an item without its key".to_string(),
    };
    serde_dynamo::from_item(item).map_err(|e| corrupt(&what, e))
}

impl DynamoModel {
    /// The model table `table`, reached with the store's client and settings.
    pub fn new(store: &DynamoStore, table: String) -> DynamoModel {
        DynamoModel {
            client: store.client().clone(),
            table: table.into(),
            shards: store.options().day_shards.max(1),
            limits: store.options().limits,
            page_limit: store.options().page_limit,
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn unavailable<E, R>(&self, op: &str, e: SdkError<E, R>) -> ModelError
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let why = unavailable(op, &self.table, &self.limits, e).to_string();
        if why.contains("ResourceNotFound") {
            return ModelError::Unavailable(format!(
                "{why}; the read model's table is made by `triage migrate` (or the stack)"
            ));
        }
        ModelError::Unavailable(why)
    }

    async fn get(&self, pk: String, sk: String) -> Result<Option<Item>, ModelError> {
        let out = self
            .client
            .get_item()
            .table_name(&*self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.unavailable("GetItem", e))?;
        Ok(out.item)
    }

    /// Every item of partition `pk`, page by page.
    async fn query_partition(&self, pk: String) -> Result<Vec<Item>, ModelError> {
        let mut items = Vec::new();
        self.fold_partition(pk, |item| {
            items.push(item);
            Ok(())
        })
        .await?;
        Ok(items)
    }

    /// Every item of partition `pk`, page by page, handed to `f` as each page arrives.
    async fn fold_partition(
        &self,
        pk: String,
        mut f: impl FnMut(Item) -> Result<(), ModelError>,
    ) -> Result<(), ModelError> {
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&*self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", MODEL_PK)
                .expression_attribute_values(":pk", s(pk.clone()))
                .set_limit(self.page_limit)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.unavailable("Query", e))?;
            for item in page.items.unwrap_or_default() {
                f(item)?;
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(()),
            }
        }
    }

    /// Every item of the partitions `pks`, [`READ_CONCURRENCY`] at a time, in `pks` order.
    async fn query_partitions(&self, pks: Vec<String>) -> Result<Vec<Item>, ModelError> {
        let mut out = Vec::new();
        for chunk in pks.chunks(READ_CONCURRENCY) {
            let mut set = tokio::task::JoinSet::new();
            for (i, pk) in chunk.iter().enumerate() {
                let this = self.clone();
                let pk = pk.clone();
                set.spawn(async move { (i, this.query_partition(pk).await) });
            }
            let mut pages: Vec<Option<Vec<Item>>> = vec![None; chunk.len()];
            while let Some(done) = set.join_next().await {
                let (i, items) =
                    done.map_err(|e| ModelError::Unavailable(format!("a read task failed: {e}")))?;
                pages[i] = Some(items?);
            }
            out.extend(pages.into_iter().flatten().flatten());
        }
        Ok(out)
    }

    fn partitions(&self, days: DayRange, pk: fn(NaiveDate, u32) -> String) -> Vec<String> {
        days.days()
            .flat_map(|d| (0..self.shards).map(move |k| pk(d, k)))
            .collect()
    }
}

impl DynamoModel {
    /// Writes a whole model made elsewhere (e.g. projected in memory) into an empty model
    /// table, with `BatchWriteItem` (25 items a request, 16 requests at once, unprocessed
    /// items sent again). For loading benchmarks and for moving a model between stores; the
    /// projector never uses it (its writes are conditional, these are not). `progress` is
    /// told the items written so far.
    pub async fn import(
        &self,
        data: &crate::store::model::ModelData,
        mut progress: impl FnMut(usize),
    ) -> Result<usize, ModelError> {
        let mut items: Vec<Item> = Vec::new();
        for c in data.calls.values() {
            let key = c.key(self.shards);
            items.push(to_item(c, call_pk(key.day, key.shard), call_sk(&key))?);
        }
        for o in data.open.values() {
            let key = CallKey::new(&o.contact_id, o.started_at, self.shards);
            items.push(to_item(o, open_pk(key.day, key.shard), call_sk(&key))?);
        }
        for d in data.counts.values() {
            let mut item = key(day_pk(d.day, d.shard), COUNTS_SK.to_string());
            for (name, v) in &d.counts {
                item.insert(format!("{COUNTER_PREFIX}{name}"), n(v));
            }
            if let Some(t) = d.updated_at {
                item.insert(UPDATED_AT.to_string(), s(ms(t)));
            }
            items.push(item);
        }
        for c in data.callers.values() {
            let shard = crate::store::model::shard_of(&c.caller_hash, self.shards);
            items.push(to_item(c, caller_pk(c.day, shard), c.caller_hash.clone())?);
            if c.calls > 1 {
                items.push(to_item(c, day_pk(c.day, shard), repeat_sk(&c.caller_hash))?);
            }
        }
        let total = items.len();
        let mut written = 0usize;
        let mut chunks = items.chunks(25).map(<[Item]>::to_vec);
        let mut set = tokio::task::JoinSet::new();
        loop {
            while set.len() < READ_CONCURRENCY {
                let Some(chunk) = chunks.next() else { break };
                let this = self.clone();
                set.spawn(async move { this.batch_write(chunk).await });
            }
            let Some(done) = set.join_next().await else {
                break;
            };
            written +=
                done.map_err(|e| ModelError::Unavailable(format!("a write task failed: {e}")))??;
            progress(written);
        }
        debug_assert_eq!(written, total);
        Ok(written)
    }

    async fn batch_write(&self, items: Vec<Item>) -> Result<usize, ModelError> {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        let n = items.len();
        let mut pending: Vec<WriteRequest> = items
            .into_iter()
            .map(|item| {
                PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map(|p| WriteRequest::builder().put_request(p).build())
                    .map_err(|e| corrupt("a BatchWriteItem request", e))
            })
            .collect::<Result<_, _>>()?;
        let mut round = 0u32;
        while !pending.is_empty() {
            let out = self
                .client
                .batch_write_item()
                .request_items(&*self.table, std::mem::take(&mut pending))
                .send()
                .await
                .map_err(|e| self.unavailable("BatchWriteItem", e))?;
            if let Some(mut left) = out.unprocessed_items {
                pending = left.remove(&*self.table).unwrap_or_default();
            }
            if !pending.is_empty() {
                round += 1;
                if round > 8 {
                    return Err(ModelError::Unavailable(format!(
                        "DynamoDB BatchWriteItem on table {} left {} items unwritten after 8 rounds (throttled): try again",
                        self.table,
                        pending.len()
                    )));
                }
                tokio::time::sleep(std::time::Duration::from_millis(25 << round.min(5))).await;
            }
        }
        Ok(n)
    }
}

fn counts_from_item(item: &Item) -> Result<DayCounts, ModelError> {
    let pk = match item.get(MODEL_PK) {
        Some(AttributeValue::S(p)) => p.clone(),
        _ => return Err(corrupt("a counters item", "no pk")),
    };
    // day#DAY#SHARD
    let mut parts = pk.splitn(3, '#').skip(1);
    let (Some(day), Some(shard)) = (parts.next(), parts.next()) else {
        return Err(corrupt(&pk, "not day#DAY#SHARD"));
    };
    let day = NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|e| corrupt(&pk, e))?;
    let shard = shard.parse().map_err(|e| corrupt(&pk, e))?;
    let mut counts = crate::store::model::Counts::new();
    for (name, v) in item {
        let Some(name) = name.strip_prefix(COUNTER_PREFIX) else {
            continue;
        };
        let AttributeValue::N(v) = v else {
            return Err(corrupt(&pk, format!("counter {name} is not a number")));
        };
        let v: i64 = v
            .parse()
            .map_err(|e| corrupt(&pk, format!("counter {name}: {e}")))?;
        counts.insert(name.to_string(), v);
    }
    let updated_at = match item.get(UPDATED_AT) {
        Some(AttributeValue::S(t)) => Some(
            DateTime::parse_from_rfc3339(t)
                .map_err(|e| corrupt(&pk, e))?
                .with_timezone(&Utc),
        ),
        _ => None,
    };
    Ok(DayCounts {
        day,
        shard,
        counts,
        updated_at,
    })
}

/// A transaction's `Put` of `item`, on the condition that the item is as it was read:
/// absent (`None`), or with number attribute `NAME` at the value read.
fn put_if(
    table: &str,
    item: Item,
    expected: Option<(&str, u64)>,
) -> Result<TransactWriteItem, ModelError> {
    let put = Put::builder().table_name(table).set_item(Some(item));
    let put = match expected {
        None => put
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", MODEL_PK),
        Some((name, value)) => put
            .condition_expression("#v = :v")
            .expression_attribute_names("#v", name)
            .expression_attribute_values(":v", n(value)),
    };
    let put = put.build().map_err(|e| corrupt("a model write", e))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// A transaction that lost to another writer: a condition failed (the summary or the
/// caller's day is not the one read) or another transaction held an item. Throttling or
/// validation reasons are not conflicts.
fn is_conflict(
    e: &aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
) -> bool {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
    match e {
        E::TransactionInProgressException(_) => true,
        E::TransactionCanceledException(c) => c.cancellation_reasons().iter().any(|r| {
            matches!(
                r.code(),
                Some("ConditionalCheckFailed" | "TransactionConflict")
            )
        }),
        _ => false,
    }
}

#[async_trait]
impl ReadModel for DynamoModel {
    async fn call(&self, key: &CallKey) -> Result<Option<ModelCall>, ModelError> {
        self.get(call_pk(key.day, key.shard), call_sk(key))
            .await?
            .map(from_item)
            .transpose()
    }

    async fn caller_day(
        &self,
        day: NaiveDate,
        caller_hash: &str,
    ) -> Result<Option<CallerDay>, ModelError> {
        let shard = crate::store::model::shard_of(caller_hash, self.shards);
        self.get(caller_pk(day, shard), caller_hash.to_string())
            .await?
            .map(from_item)
            .transpose()
    }

    async fn commit(&self, c: Commit) -> Result<(), ModelError> {
        let table = &*self.table;
        let build = |e: aws_sdk_dynamodb::error::BuildError| corrupt("a model write", e);
        let mut items = Vec::with_capacity(5);
        // The summary, if it is still the one read.
        let item = to_item(&c.call, call_pk(c.key.day, c.key.shard), call_sk(&c.key))?;
        items.push(put_if(
            table,
            item,
            c.expected_seq.map(|seq| ("last_seq", seq)),
        )?);
        // The counters, moved by the difference, and when (on every commit: readers rely on
        // it to know that a day's open calls are all stale).
        {
            let mut up = Update::builder().table_name(table).set_key(Some(key(
                day_pk(c.key.day, c.key.shard),
                COUNTS_SK.to_string(),
            )));
            let mut parts = Vec::with_capacity(c.delta.len());
            for (i, (name, d)) in c.delta.iter().enumerate() {
                parts.push(format!("#c{i} :c{i}"));
                up = up
                    .expression_attribute_names(format!("#c{i}"), format!("{COUNTER_PREFIX}{name}"))
                    .expression_attribute_values(format!(":c{i}"), n(d));
            }
            let add = if parts.is_empty() {
                String::new()
            } else {
                format!("ADD {} ", parts.join(", "))
            };
            up = up
                .update_expression(format!("{add}SET #updated = :updated"))
                .expression_attribute_names("#updated", UPDATED_AT)
                .expression_attribute_values(":updated", s(ms(c.at)));
            items.push(
                TransactWriteItem::builder()
                    .update(up.build().map_err(build)?)
                    .build(),
            );
        }
        // The open item, kept while the call is open.
        match (&c.open, c.was_open) {
            (Some(open), _) => {
                let item = to_item(open, open_pk(c.key.day, c.key.shard), call_sk(&c.key))?;
                items.push(
                    TransactWriteItem::builder()
                        .put(
                            Put::builder()
                                .table_name(table)
                                .set_item(Some(item))
                                .build()
                                .map_err(build)?,
                        )
                        .build(),
                );
            }
            (None, true) => items.push(
                TransactWriteItem::builder()
                    .delete(
                        Delete::builder()
                            .table_name(table)
                            .set_key(Some(key(open_pk(c.key.day, c.key.shard), call_sk(&c.key))))
                            .build()
                            .map_err(build)?,
                    )
                    .build(),
            ),
            (None, false) => {}
        }
        // The caller's day, if its count is still the one read; a repeat caller's copy.
        if let Some(ch) = &c.caller {
            let pk = caller_pk(ch.new.day, ch.shard);
            let item = to_item(&ch.new, pk, ch.new.caller_hash.clone())?;
            items.push(put_if(
                table,
                item,
                ch.expected_calls.map(|n| ("calls", n)),
            )?);
            if ch.new.calls > 1 {
                let item = to_item(
                    &ch.new,
                    day_pk(ch.new.day, ch.shard),
                    repeat_sk(&ch.new.caller_hash),
                )?;
                items.push(
                    TransactWriteItem::builder()
                        .put(
                            Put::builder()
                                .table_name(table)
                                .set_item(Some(item))
                                .build()
                                .map_err(build)?,
                        )
                        .build(),
                );
            }
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if is_conflict(e.err()) => {
                Err(ModelError::Conflict(c.key.contact_id))
            }
            Err(e) => Err(self.unavailable("TransactWriteItems", e)),
        }
    }

    async fn day_counts(&self, days: DayRange) -> Result<Vec<DayCounts>, ModelError> {
        Ok(self.day_items(days, 0).await?.counts)
    }

    async fn open_calls(&self, days: DayRange) -> Result<Vec<OpenCall>, ModelError> {
        self.query_partitions(self.partitions(days, open_pk))
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    async fn repeat_callers(&self, days: DayRange) -> Result<Vec<CallerDay>, ModelError> {
        Ok(self.day_items(days, usize::MAX).await?.repeat_callers)
    }

    /// One Query per day and shard: counters and repeat callers together, each page folded
    /// as it arrives (the repeat callers into a [`TopCallers`] of `top`), so memory stays
    /// bounded by `top` and the pages in flight, whatever the number of callers.
    async fn day_items(&self, days: DayRange, top: usize) -> Result<DayItems, ModelError> {
        let mut out = DayItems::default();
        let mut best = TopCallers::new(top);
        let pks = self.partitions(days, day_pk);
        for chunk in pks.chunks(READ_CONCURRENCY) {
            let mut set = tokio::task::JoinSet::new();
            for (i, pk) in chunk.iter().enumerate() {
                let this = self.clone();
                let pk = pk.clone();
                set.spawn(async move {
                    let mut counts = Vec::new();
                    let mut best = TopCallers::new(top);
                    let folded = this
                        .fold_partition(pk, |item| {
                            let sk = match item.get(MODEL_SK) {
                                Some(AttributeValue::S(sk)) => sk.clone(),
                                _ => return Err(corrupt("a day item", "no sk")),
                            };
                            if sk == COUNTS_SK {
                                counts.push(counts_from_item(&item)?);
                            } else if sk.starts_with(REPEAT_SK_PREFIX) {
                                best.offer(from_item(item)?);
                            }
                            // Anything else: a newer projector's item, not for this build.
                            Ok(())
                        })
                        .await;
                    (i, folded.map(|()| (counts, best)))
                });
            }
            let mut parts: Vec<Option<(Vec<DayCounts>, TopCallers)>> =
                (0..chunk.len()).map(|_| None).collect();
            while let Some(done) = set.join_next().await {
                let (i, part) =
                    done.map_err(|e| ModelError::Unavailable(format!("a read task failed: {e}")))?;
                parts[i] = Some(part?);
            }
            for (counts, top) in parts.into_iter().flatten() {
                out.counts.extend(counts);
                for c in top.into_sorted() {
                    best.offer(c);
                }
            }
        }
        out.repeat_callers = best.into_sorted();
        Ok(out)
    }

    async fn calls(&self, days: DayRange) -> Result<Vec<ModelCall>, ModelError> {
        let mut calls = self
            .query_partitions(self.partitions(days, call_pk))
            .await?
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<ModelCall>, _>>()?;
        calls.sort_by(|a, b| (a.started_at, &a.contact_id).cmp(&(b.started_at, &b.contact_id)));
        Ok(calls)
    }

    fn describe(&self) -> String {
        format!("dynamodb:{}", self.table)
    }
}
