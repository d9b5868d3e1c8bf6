//! Event stores: one append-only stream of events per ContactId, with optimistic
//! concurrency. Adapters: [`memory`] (tests, benchmarks), [`file`] (the embedded default:
//! a local append-only JSON-lines log) and [`dynamodb`] (production).

pub mod catalog;
pub mod dynamodb;
pub mod file;
pub mod index;
pub mod memory;
pub mod model;
pub mod warm;

pub use index::{CallIndex, CallStream, DayRange, StartedCall};

use crate::domain::{ContactId, Event};
use async_trait::async_trait;
use std::fmt;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Someone else appended first: the stream is no longer at `expected`.
    #[error("conflict: the events of contact {contact_id} are no longer at version {expected}")]
    Conflict { contact_id: String, expected: u64 },
    /// The store could not be reached or did not answer in time. Nothing was written
    /// (DynamoDB transactions and file appends are all-or-nothing).
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    /// Stored data that does not read back as events.
    #[error("event store holds unreadable data: {0}")]
    Corrupt(String),
    /// An append this store refuses (bad sequence numbers, oversized event).
    #[error("append refused: {0}")]
    Invalid(String),
}

impl StoreError {
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }
}

/// Largest serialised event accepted (DynamoDB's item limit is 400 KB; ours are < 1 KB).
pub const MAX_EVENT_BYTES: usize = 16 * 1024;

/// Most events accepted in one append (one turn writes at most 2).
pub const MAX_BATCH: usize = 25;

/// One contact's events as loaded, in `seq` order: an immutable, shared snapshot. Stores
/// that keep streams in memory lend them without copying; appending to a stream while a
/// snapshot of it is held copies the stream first, so a snapshot never changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History(Arc<Vec<Event>>);

impl History {
    /// The events, owned (copied only if the snapshot is shared).
    pub fn into_vec(self) -> Vec<Event> {
        Arc::unwrap_or_clone(self.0)
    }

    /// Appends to the stream this snapshot is, copying it first if it is shared.
    pub fn extend(&mut self, events: Vec<Event>) {
        let stream = Arc::make_mut(&mut self.0);
        if stream.is_empty() {
            // A typical call is about ten events: one allocation holds the whole stream.
            stream.reserve(TYPICAL_CALL_EVENTS.max(events.len()));
        }
        stream.extend(events);
    }

    /// Appends one event (see [`History::extend`]).
    fn push(&mut self, event: Event) {
        Arc::make_mut(&mut self.0).push(event);
    }
}

/// Events in a typical call: a start, seven answers, a conclusion and a spare.
const TYPICAL_CALL_EVENTS: usize = 10;

impl std::ops::Deref for History {
    type Target = [Event];
    fn deref(&self) -> &[Event] {
        &self.0
    }
}

impl From<Vec<Event>> for History {
    fn from(events: Vec<Event>) -> History {
        History(Arc::new(events))
    }
}

impl PartialEq<Vec<Event>> for History {
    fn eq(&self, other: &Vec<Event>) -> bool {
        *self.0 == *other
    }
}

impl<'a> IntoIterator for &'a History {
    type Item = &'a Event;
    type IntoIter = std::slice::Iter<'a, Event>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// All events of one contact, in `seq` order (empty if the call is unknown).
    async fn load(&self, contact_id: &ContactId) -> Result<History, StoreError>;

    /// Appends `events` atomically if and only if the stream is at `expected_version`.
    /// `events[i].seq` must be `expected_version + 1 + i`. The store takes the batch.
    async fn append(
        &self,
        contact_id: &ContactId,
        expected_version: u64,
        events: Vec<Event>,
    ) -> Result<(), StoreError>;

    /// Where the events live, for people: `file:/path`, `dynamodb:table`, `memory`.
    fn describe(&self) -> String;
}

/// Most bytes an event's JSON form spends outside its text (keys, numbers, id, time).
const FIXED_FIELDS_BYTES: usize = 512;

/// Refuses an event whose JSON form is over [`MAX_EVENT_BYTES`], for stores that do not
/// serialise (the memory store). A bound first: every byte of text escaped to at most six
/// (`\u00XX`), plus the fixed fields; only an event past the bound is serialised to measure.
pub fn check_event_size(e: &Event) -> Result<(), StoreError> {
    if e.text_bytes() * 6 + FIXED_FIELDS_BYTES <= MAX_EVENT_BYTES {
        return Ok(());
    }
    let len = serde_json::to_vec(e)
        .map_err(|err| StoreError::Invalid(format!("event does not serialise: {err}")))?
        .len();
    if len > MAX_EVENT_BYTES {
        return Err(StoreError::Invalid(format!(
            "event {} is {len} bytes; at most {MAX_EVENT_BYTES} are stored",
            e.seq
        )));
    }
    Ok(())
}

/// Checks a batch before any adapter writes it.
pub fn check_batch(expected_version: u64, events: &[Event]) -> Result<(), StoreError> {
    if events.is_empty() || events.len() > MAX_BATCH {
        return Err(StoreError::Invalid(format!(
            "a batch holds 1..={MAX_BATCH} events, not {}",
            events.len()
        )));
    }
    for (i, e) in events.iter().enumerate() {
        let want = expected_version + 1 + i as u64;
        if e.seq != want {
            return Err(StoreError::Invalid(format!(
                "event {i} of the batch has seq {}, expected {want}",
                e.seq
            )));
        }
    }
    Ok(())
}

/// Where to keep events: parsed from `--store` / `TRIAGE_STORE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    File(std::path::PathBuf),
    DynamoDb(String),
    Memory,
}

/// A store spec that names no store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown store {0:?}: use file:PATH, dynamodb:TABLE or memory")]
pub struct UnknownStore(pub String);

impl StoreSpec {
    pub fn parse(s: &str) -> Result<StoreSpec, UnknownStore> {
        match s.split_once(':') {
            Some(("file", p)) if !p.is_empty() => Ok(StoreSpec::File(p.into())),
            Some(("dynamodb", t)) if !t.is_empty() => Ok(StoreSpec::DynamoDb(t.into())),
            _ if s == "memory" => Ok(StoreSpec::Memory),
            _ => Err(UnknownStore(s.to_string())),
        }
    }
}

impl std::str::FromStr for StoreSpec {
    type Err = UnknownStore;
    fn from_str(s: &str) -> Result<StoreSpec, UnknownStore> {
        StoreSpec::parse(s)
    }
}

impl fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreSpec::File(p) => write!(f, "file:{}", p.display()),
            StoreSpec::DynamoDb(t) => write!(f, "dynamodb:{t}"),
            StoreSpec::Memory => f.write_str("memory"),
        }
    }
}

pub type SharedStore = Arc<dyn EventStore>;

/// Opens the store a spec names. DynamoDB takes its endpoint, region and credentials from
/// the standard AWS settings (`AWS_ENDPOINT_URL`, `AWS_REGION`, profiles, roles), the rest
/// from `opts`.
pub async fn open(
    spec: &StoreSpec,
    opts: &dynamodb::DynamoOptions,
) -> Result<SharedStore, StoreError> {
    Ok(match spec {
        StoreSpec::File(path) => Arc::new(file::FileStore::open(path)?),
        StoreSpec::Memory => Arc::new(memory::MemoryStore::new()),
        StoreSpec::DynamoDb(table) => {
            Arc::new(dynamodb::DynamoStore::open(table.clone(), opts.clone()).await?)
        }
    })
}

/// The event store a spec names and its questionnaire catalog ([`catalog`]), sharing one
/// client: for DynamoDB the same table (reserved `#` partitions), for a file store the file
/// beside the log, for memory one in memory.
pub async fn open_with_catalog(
    spec: &StoreSpec,
    opts: &dynamodb::DynamoOptions,
) -> Result<(SharedStore, catalog::SharedCatalog), StoreError> {
    Ok(match spec {
        StoreSpec::File(path) => (
            Arc::new(file::FileStore::open(path)?),
            Arc::new(catalog::FileCatalog::beside(path)),
        ),
        StoreSpec::Memory => (
            Arc::new(memory::MemoryStore::new()),
            Arc::new(catalog::MemoryCatalog::new()),
        ),
        StoreSpec::DynamoDb(table) => {
            let store = dynamodb::DynamoStore::open(table.clone(), opts.clone()).await?;
            (Arc::new(store.clone()), Arc::new(store))
        }
    })
}

/// The questionnaire catalog of the store a spec names (see [`open_with_catalog`]).
pub async fn open_catalog(
    spec: &StoreSpec,
    opts: &dynamodb::DynamoOptions,
) -> Result<catalog::SharedCatalog, StoreError> {
    Ok(match spec {
        StoreSpec::File(path) => Arc::new(catalog::FileCatalog::beside(path)),
        StoreSpec::Memory => Arc::new(catalog::MemoryCatalog::new()),
        StoreSpec::DynamoDb(table) => {
            Arc::new(dynamodb::DynamoStore::open(table.clone(), opts.clone()).await?)
        }
    })
}

/// A store that is also a call index: what analysts read.
pub trait IndexedStore: EventStore + CallIndex {}
impl<T: EventStore + CallIndex> IndexedStore for T {}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The bound `check_event_size` trusts is never below an event's real size.
        #[test]
        fn the_size_bound_holds(
            texts in proptest::collection::vec(".{0,300}", 7),
            n in 0u64..u64::MAX,
        ) {
            use crate::domain::{CallFacts, EventKind, Lang};
            let at = chrono::DateTime::from_timestamp_millis(253_402_300_799_999).expect("far future");
            let base = |kind| Event { seq: n, event_id: uuid::Uuid::max(), at, schema: u16::MAX, turn: n, kind };
            let some = |i: usize| Some(texts[i].clone());
            let events = [
                base(EventKind::CallStarted {
                    questionnaire: texts[0].clone(),
                    questionnaire_version: u32::MAX,
                    lang: Lang::En,
                    facts: CallFacts {
                        channel: some(1),
                        initiation_method: some(2),
                        initial_contact_id: some(3),
                        previous_contact_id: some(4),
                        caller_hash: some(5),
                    },
                }),
                base(EventKind::InputRejected { question: texts[0].clone(), raw: texts[6].clone(), raw_len: u64::MAX }),
                base(EventKind::TriageConcluded { outcome: crate::domain::Outcome::Monitor, score: u32::MAX, reason: some(6) }),
            ];
            for e in events {
                let len = serde_json::to_vec(&e).expect("json").len();
                proptest::prop_assert!(len <= e.text_bytes() * 6 + FIXED_FIELDS_BYTES, "{} > bound for {:?}", len, e.kind.name());
            }
        }
    }

    #[test]
    fn store_specs_parse() {
        assert_eq!(
            StoreSpec::parse("dynamodb:triage-events"),
            Ok(StoreSpec::DynamoDb("triage-events".into()))
        );
        assert_eq!(
            StoreSpec::parse("file:/tmp/x.jsonl"),
            Ok(StoreSpec::File("/tmp/x.jsonl".into()))
        );
        assert!(StoreSpec::parse("postgres:x").is_err());
        assert!(StoreSpec::parse("file:").is_err());
    }
}
