//! The call index on DynamoDB: the sparse GSIs ([`BY_DAY_INDEX`], [`BY_CALLER_INDEX`]),
//! never a Scan. A day is written over `day_shards` partitions (`YYYY-MM-DD#0` .. `#k-1`),
//! so reading a day runs one paginated Query per shard, all shards at once, and merges
//! their results (each sorted by `started_at`, the index's range key) into one ordered
//! stream. Items whose key is table metadata (`#...`) are skipped here.

use super::item::{
    Item, BY_CALLER_INDEX, BY_DAY_INDEX, CALLER_HASH, DAY_SHARD, PK, RESERVED_PREFIX, STARTED_AT,
};
use super::DynamoStore;
use crate::domain::ContactId;
use crate::store::index::{CallIndex, CallStream, DayRange, StartedCall, CHANNEL};
use crate::store::StoreError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use tokio::sync::mpsc;

type Tx = mpsc::Sender<Result<StartedCall, StoreError>>;

/// One Query (on an index), followed page by page.
#[derive(Clone)]
struct IndexQuery {
    index: &'static str,
    key: &'static str,
    value: String,
    /// `started_at` bounds (inclusive), for the by-caller index.
    between: Option<(String, String)>,
}

fn ms(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn started_call(item: &Item) -> Result<StartedCall, StoreError> {
    let s = |k: &str| match item.get(k) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    };
    let id = s(PK).ok_or_else(|| StoreError::Corrupt("index item without contact_id".into()))?;
    let contact_id = ContactId::parse(&id)
        .map_err(|e| StoreError::Corrupt(format!("index item {id:?}: {e}")))?;
    let at = s(STARTED_AT)
        .ok_or_else(|| StoreError::Corrupt(format!("index item {id}: no started_at")))?;
    let started_at = DateTime::parse_from_rfc3339(&at)
        .map_err(|e| StoreError::Corrupt(format!("index item {id}: started_at {at:?}: {e}")))?
        .with_timezone(&Utc);
    Ok(StartedCall {
        contact_id,
        started_at,
        caller_hash: s(CALLER_HASH),
    })
}

/// Runs `q` to the end (following `LastEvaluatedKey`), sending each call to `tx`.
async fn run_query(store: DynamoStore, q: IndexQuery, tx: Tx) {
    let mut start: Option<Item> = None;
    loop {
        let mut req = store
            .client()
            .query()
            .table_name(store.table())
            .index_name(q.index)
            .expression_attribute_names("#k", q.key)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sa", STARTED_AT)
            .expression_attribute_names("#ch", CALLER_HASH)
            .projection_expression("#pk, #sa, #ch")
            .expression_attribute_values(":k", AttributeValue::S(q.value.clone()))
            .set_limit(store.options().page_limit)
            .set_exclusive_start_key(start.take());
        req = match &q.between {
            Some((a, b)) => req
                .key_condition_expression("#k = :k AND #sa BETWEEN :a AND :b")
                .expression_attribute_values(":a", AttributeValue::S(a.clone()))
                .expression_attribute_values(":b", AttributeValue::S(b.clone())),
            None => req.key_condition_expression("#k = :k"),
        };
        let page = match req.send().await {
            Ok(page) => page,
            Err(e) => {
                let why = aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string();
                let _ = tx
                    .send(Err(StoreError::Unavailable(format!(
                        "DynamoDB Query on index {} of table {} ({} = {}): {why}",
                        q.index,
                        store.table(),
                        q.key,
                        q.value
                    ))))
                    .await;
                return;
            }
        };
        for item in page.items() {
            // Table metadata (`#migrations`) is never a call.
            if matches!(item.get(PK), Some(AttributeValue::S(id)) if id.starts_with(RESERVED_PREFIX))
            {
                continue;
            }
            if tx.send(started_call(item)).await.is_err() {
                return;
            }
        }
        match page.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => return,
        }
    }
}

/// Merges streams each sorted by (`started_at`, contact id) into one sorted stream.
async fn merge(mut inputs: Vec<mpsc::Receiver<Result<StartedCall, StoreError>>>, tx: &Tx) -> bool {
    let mut heads: Vec<Option<StartedCall>> = Vec::with_capacity(inputs.len());
    for rx in &mut inputs {
        match rx.recv().await {
            Some(Ok(c)) => heads.push(Some(c)),
            Some(Err(e)) => {
                let _ = tx.send(Err(e)).await;
                return false;
            }
            None => heads.push(None),
        }
    }
    loop {
        let min = heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|c| (i, c)))
            .min_by(|(_, a), (_, b)| {
                (a.started_at, &a.contact_id).cmp(&(b.started_at, &b.contact_id))
            })
            .map(|(i, _)| i);
        let Some(i) = min else {
            return true;
        };
        let next = match inputs[i].recv().await {
            Some(Ok(c)) => Some(c),
            Some(Err(e)) => {
                let _ = tx.send(Err(e)).await;
                return false;
            }
            None => None,
        };
        if let Some(c) = std::mem::replace(&mut heads[i], next) {
            if tx.send(Ok(c)).await.is_err() {
                return false;
            }
        }
    }
}

/// The by-day partition keys of one day: `YYYY-MM-DD#0` .. `YYYY-MM-DD#{shards-1}`.
pub fn day_keys(day: NaiveDate, shards: u32) -> Vec<String> {
    (0..shards.max(1))
        .map(|k| format!("{}#{k}", day.format("%Y-%m-%d")))
        .collect()
}

impl CallIndex for DynamoStore {
    fn calls_started(&self, days: DayRange) -> CallStream {
        let (tx, rx) = mpsc::channel(CHANNEL);
        let store = self.clone();
        tokio::spawn(async move {
            // Day after day; within a day, every shard at once, merged in order.
            for day in days.days() {
                let mut shards = Vec::new();
                for key in day_keys(day, store.options().day_shards) {
                    let (stx, srx) = mpsc::channel(CHANNEL);
                    let q = IndexQuery {
                        index: BY_DAY_INDEX,
                        key: DAY_SHARD,
                        value: key,
                        between: None,
                    };
                    tokio::spawn(run_query(store.clone(), q, stx));
                    shards.push(srx);
                }
                if !merge(shards, &tx).await {
                    return;
                }
            }
        });
        CallStream::new(rx)
    }

    fn calls_by_caller(&self, caller_hash: &str, days: DayRange) -> CallStream {
        let (tx, rx) = mpsc::channel(CHANNEL);
        let q = IndexQuery {
            index: BY_CALLER_INDEX,
            key: CALLER_HASH,
            value: caller_hash.to_string(),
            between: Some((
                ms(days.start()),
                ms(days.end() - chrono::Duration::milliseconds(1)),
            )),
        };
        tokio::spawn(run_query(self.clone(), q, tx));
        CallStream::new(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_has_one_key_per_shard() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 1).expect("day");
        assert_eq!(
            day_keys(day, 3),
            ["2026-03-01#0", "2026-03-01#1", "2026-03-01#2"]
        );
        assert_eq!(day_keys(day, 0), ["2026-03-01#0"]);
    }
}
