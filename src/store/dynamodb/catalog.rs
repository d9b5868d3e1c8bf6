//! The questionnaire catalog ([`crate::store::catalog`]) in the events table, under
//! reserved partition keys (keys starting with `#` are table metadata: see the module docs
//! of [`super`]; the projector, the indexes and the Athena views skip them):
//!
//! | partition (`contact_id`) | sort key (`seq`) | item |
//! |---|---|---|
//! | `#questionnaire#ID` | the version | the version: `id`, `version`, `document`, `sha256`, `published_at` |
//! | `#questionnaires` | 1, 2, 3, ... | the same, in publication order: what `list` reads |
//! | `#activations` | 1, 2, 3, ... | an activation: `id`, `version`, `at`, `sha256`, `document` |
//!
//! A version is written with its list entry in one `TransactWriteItems`, each `Put`
//! conditional on `attribute_not_exists(seq)`: a second publication of one `id@version`
//! fails on the table itself, and two publications at once cannot take one list number.
//! An activation is written like a call's events: a `ConditionCheck` that entry `n - 1`
//! exists and a `Put` of entry `n` if it does not exist
//! (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
//! The line's one read is a consistent `Query` of `#activations` with
//! `ScanIndexForward=false` and `Limit=1`: the latest entry
//! (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Query.html).
//! Items are at most 400 KB (a document at most 256 KB, copied into the list entry and
//! the activation: each item holds one copy).

use super::client::{service_unavailable, unavailable};
use super::{DynamoStore, Item, PK, SK};
use crate::store::catalog::{Activation, Catalog, Read, StoredVersion, Unreadable};
use crate::store::StoreError;
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::DeserializeOwned;
use std::collections::HashMap;

/// The list of every published version, in publication order.
pub const VERSIONS_KEY: &str = "#questionnaires";
/// The activation log.
pub const ACTIVATIONS_KEY: &str = "#activations";

/// The partition of one questionnaire's versions.
pub fn versions_of(id: &str) -> String {
    format!("#questionnaire#{id}")
}

fn key(pk: &str, seq: u64) -> Item {
    HashMap::from([
        (PK.to_string(), AttributeValue::S(pk.to_string())),
        (SK.to_string(), AttributeValue::N(seq.to_string())),
    ])
}

fn record_item<T: serde::Serialize>(record: &T, pk: &str, seq: u64) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(record).map_err(|e| {
        StoreError::Invalid(format!(
            "a catalog record cannot be written as an item: {e}"
        ))
    })?;
    item.extend(key(pk, seq));
    Ok(item)
}

fn from_record<T: DeserializeOwned>(mut item: Item) -> Read<T> {
    let at = match (item.get(PK), item.get(SK)) {
        (Some(AttributeValue::S(pk)), Some(AttributeValue::N(seq))) => format!("{pk}/{seq}"),
        _ => "an item without its key".into(),
    };
    item.remove(PK);
    if !matches!(at.split_once('/'), Some((ACTIVATIONS_KEY, _))) {
        item.remove(SK);
    }
    serde_dynamo::from_item(item).map_err(|e| Unreadable {
        at,
        why: format!("not a catalog record: {e}"),
    })
}

impl DynamoStore {
    /// A consistent `Query` of one reserved partition.
    fn reserved_query(&self, pk: &str) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", AttributeValue::S(pk.into()))
    }

    /// Every item of a reserved partition, in `seq` order (consistent reads, all pages).
    async fn partition(&self, pk: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .reserved_query(pk)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| unavailable("Query", &self.table, &self.opts.limits, e))?;
            start = page.last_evaluated_key().filter(|k| !k.is_empty()).cloned();
            items.extend(page.items.unwrap_or_default());
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// The last item of a reserved partition.
    async fn last_of(&self, pk: &str) -> Result<Option<Item>, StoreError> {
        let page = self
            .reserved_query(pk)
            .scan_index_forward(false)
            .limit(1)
            .send()
            .await
            .map_err(|e| unavailable("Query", &self.table, &self.opts.limits, e))?;
        Ok(page.items.unwrap_or_default().into_iter().next())
    }

    fn seq_of(item: &Item) -> u64 {
        match item.get(SK) {
            Some(AttributeValue::N(n)) => n.parse().unwrap_or(0),
            _ => 0,
        }
    }

    /// Runs one catalog transaction: `Ok(false)` when a condition failed (a lost race or
    /// an existing record), `Ok(true)` when it was written.
    async fn catalog_transaction(
        &self,
        check: Option<Item>,
        puts: Vec<Item>,
    ) -> Result<bool, StoreError> {
        let actions = self.conditional_writes(check, puts)?;
        let res = self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) => {
                let err = e.into_err();
                if let TransactWriteItemsError::TransactionCanceledException(c) = &err {
                    let lost = c.cancellation_reasons().iter().any(|r| {
                        matches!(
                            r.code(),
                            Some("ConditionalCheckFailed" | "TransactionConflict")
                        )
                    });
                    if lost {
                        return Ok(false);
                    }
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

/// Attempts at taking the next list number when other publications take it first.
const PUBLISH_ATTEMPTS: usize = 5;

#[async_trait]
impl Catalog for DynamoStore {
    async fn versions(&self) -> Result<Vec<Read<StoredVersion>>, StoreError> {
        Ok(self
            .partition(VERSIONS_KEY)
            .await?
            .into_iter()
            .map(from_record)
            .collect())
    }

    async fn version(
        &self,
        id: &str,
        version: u32,
    ) -> Result<Option<Read<StoredVersion>>, StoreError> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(&versions_of(id), u64::from(version))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("GetItem", &self.table, &self.opts.limits, e))?;
        Ok(got.item.map(from_record))
    }

    async fn put_version(&self, v: &StoredVersion) -> Result<(), StoreError> {
        let own = record_item(v, &versions_of(&v.id), u64::from(v.version))?;
        for _ in 0..PUBLISH_ATTEMPTS {
            if self.version(&v.id, v.version).await?.is_some() {
                break;
            }
            let next = match self.last_of(VERSIONS_KEY).await? {
                Some(last) => Self::seq_of(&last) + 1,
                None => 1,
            };
            let listed = record_item(v, VERSIONS_KEY, next)?;
            if self
                .catalog_transaction(None, vec![own.clone(), listed])
                .await?
            {
                return Ok(());
            }
        }
        // Stored already (by us in a lost response, or by someone else): the caller compares.
        Err(StoreError::Conflict {
            contact_id: format!("questionnaire {}", v.key()),
            expected: 0,
        })
    }

    async fn activations(&self) -> Result<Vec<Read<Activation>>, StoreError> {
        Ok(self
            .partition(ACTIVATIONS_KEY)
            .await?
            .into_iter()
            .map(from_record)
            .collect())
    }

    async fn current(&self) -> Result<Option<Read<Activation>>, StoreError> {
        Ok(self.last_of(ACTIVATIONS_KEY).await?.map(from_record))
    }

    async fn put_activation(&self, a: &Activation) -> Result<(), StoreError> {
        let item = record_item(a, ACTIVATIONS_KEY, a.seq)?;
        let check = (a.seq > 1).then(|| key(ACTIVATIONS_KEY, a.seq - 1));
        if self.catalog_transaction(check, vec![item]).await? {
            Ok(())
        } else {
            Err(StoreError::Conflict {
                contact_id: "the activation log".into(),
                expected: a.seq.saturating_sub(1),
            })
        }
    }

    fn describe(&self) -> String {
        format!("dynamodb:{}", self.table)
    }
}
