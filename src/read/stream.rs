//! The projector's Lambda handler: a batch of DynamoDB Streams records of the events table,
//! as Lambda's event source mapping delivers them
//! (<https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html>), into the read model.
//!
//! Each record names a call; the calls of a batch are projected once each, a few at a time
//! ([`super::project::project_call`] re-reads the call's events, so the order and number of
//! its records do not matter). Records that are not events are skipped: table metadata
//! (`#` keys such as `#migrations`), and `REMOVE`s (TTL expiry). A record that does not
//! read as an event, or whose call cannot be projected, is reported in the partial batch
//! response (`ReportBatchItemFailures`: its `SequenceNumber` as `itemIdentifier`), and
//! Lambda retries the batch from the lowest one reported
//! (<https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html>);
//! with `BisectBatchOnFunctionError`, `MaximumRetryAttempts` and an on-failure destination
//! (template.yaml) a record that can never be projected ends in the dead-letter queue
//! rather than blocking its shard.

use super::project::{project_call, ProjectError, Projected};
use crate::domain::{event_from_json, ContactId};
use crate::store::dynamodb::{ADDED_ATTRIBUTES, PK, RESERVED_PREFIX};
use crate::store::model::ReadModel;
use crate::store::EventStore;
use aws_lambda_events::event::dynamodb::{Event as StreamEvent, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use std::collections::HashMap;
use std::sync::Arc;

/// Calls projected at once within a batch.
pub const BATCH_CONCURRENCY: usize = 8;

/// What one batch did, for the log line and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    pub records: usize,
    /// Records that were not events (metadata, removals).
    pub skipped: usize,
    /// Distinct calls projected.
    pub calls: usize,
    /// Calls whose summary changed.
    pub changed: usize,
    /// Failed records: (sequence number, why).
    pub failures: Vec<(String, String)>,
}

impl BatchReport {
    /// The partial batch response Lambda reads.
    pub fn response(&self) -> DynamoDbEventResponse {
        let mut r = DynamoDbEventResponse::default();
        r.batch_item_failures = self
            .failures
            .iter()
            .map(|(seq, _)| {
                let mut f = DynamoDbBatchItemFailure::default();
                f.item_identifier = Some(seq.clone());
                f
            })
            .collect();
        r
    }
}

/// A batch that cannot be answered with a partial response: a record without a sequence
/// number cannot be named, so the whole batch fails and is retried.
#[derive(Debug, thiserror::Error)]
#[error(
    "stream record {index} of the batch has no SequenceNumber ({why}); the whole batch is retried"
)]
pub struct Unnameable {
    pub index: usize,
    pub why: String,
}

/// What a record is about.
enum Seen {
    /// A call's event.
    Call(ContactId),
    /// Not an event: skipped.
    Skip,
}

fn read_record(r: &EventRecord) -> Result<Seen, String> {
    if r.event_name == "REMOVE" {
        return Ok(Seen::Skip);
    }
    let id = match r.change.keys.get(PK) {
        Some(serde_dynamo::AttributeValue::S(id)) => id.clone(),
        Some(_) => return Err(format!("key {PK} is not a string")),
        None => return Err(format!("the record's keys have no {PK}")),
    };
    if id.starts_with(RESERVED_PREFIX) {
        return Ok(Seen::Skip);
    }
    let contact_id =
        ContactId::parse(&id).map_err(|e| format!("key {PK} {id:?} is not a contact id: {e}"))?;
    // With a NEW_IMAGE stream, the item must read as an event (an unknown type, a missing
    // field: reported, never skipped silently). A KEYS_ONLY stream has no image: the
    // projector reads the call's events anyway.
    if !r.change.new_image.is_empty() {
        let mut image = r.change.new_image.clone();
        for a in ADDED_ATTRIBUTES {
            image.remove(a);
        }
        let json: serde_json::Value = serde_dynamo::from_item(image)
            .map_err(|e| format!("the new image of {id} is not JSON-like: {e}"))?;
        event_from_json(json).map_err(|e| format!("the new image of {id} is not an event: {e}"))?;
    }
    Ok(Seen::Call(contact_id))
}

/// Projects the calls of one batch; see the module docs.
pub async fn handle_batch(
    events: Arc<dyn EventStore>,
    model: Arc<dyn ReadModel>,
    shards: u32,
    batch: &StreamEvent,
) -> Result<BatchReport, Unnameable> {
    let mut report = BatchReport {
        records: batch.records.len(),
        ..BatchReport::default()
    };
    // Each call once, with the sequence number of its first record in the batch.
    let mut calls: Vec<(ContactId, String)> = Vec::new();
    let mut seen: HashMap<ContactId, usize> = HashMap::new();
    for (index, r) in batch.records.iter().enumerate() {
        let seq = r.change.sequence_number.clone();
        match (read_record(r), seq) {
            (Ok(Seen::Skip), _) => report.skipped += 1,
            (Ok(Seen::Call(id)), Some(seq)) => {
                if !seen.contains_key(&id) {
                    seen.insert(id.clone(), calls.len());
                    calls.push((id, seq));
                }
            }
            (Err(why), Some(seq)) => {
                tracing::error!(sequence_number = %seq, why = %why, "stream record is not an event: reported as a batch item failure");
                report.failures.push((seq, why));
            }
            (Ok(Seen::Call(id)), None) => {
                return Err(Unnameable {
                    index,
                    why: format!("a record of contact {id}"),
                })
            }
            (Err(why), None) => return Err(Unnameable { index, why }),
        }
    }
    report.calls = calls.len();
    let mut set: tokio::task::JoinSet<(String, Result<Projected, ProjectError>)> =
        tokio::task::JoinSet::new();
    let mut pending = calls.into_iter();
    loop {
        while set.len() < BATCH_CONCURRENCY {
            let Some((id, seq)) = pending.next() else {
                break;
            };
            let (events, model) = (events.clone(), model.clone());
            set.spawn(async move { (seq, project_call(&*events, &*model, shards, &id).await) });
        }
        let Some(done) = set.join_next().await else {
            break;
        };
        match done {
            Ok((_, Ok(Projected::Changed { .. }))) => report.changed += 1,
            Ok((_, Ok(_))) => {}
            Ok((seq, Err(e))) => {
                let why = chain(&e);
                tracing::error!(sequence_number = %seq, why = %why, "call not projected: reported as a batch item failure");
                report.failures.push((seq, why));
            }
            Err(e) => {
                // A panicked task: the call is unknown here, so fail the whole batch by
                // naming its first record (Lambda retries from the lowest).
                let first = batch
                    .records
                    .first()
                    .and_then(|r| r.change.sequence_number.clone());
                match first {
                    Some(seq) => report
                        .failures
                        .push((seq, format!("a projector task failed: {e}"))),
                    None => {
                        return Err(Unnameable {
                            index: 0,
                            why: format!("a projector task failed: {e}"),
                        })
                    }
                }
            }
        }
    }
    Ok(report)
}

/// An error and its sources, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
