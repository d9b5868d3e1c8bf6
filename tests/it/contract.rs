//! The event store contract, shared by every adapter: one `#[tokio::test]` per check and
//! adapter (`contract::memory::empty_load`, `contract::dynamodb::batch_is_all_or_nothing`,
//! ...), made by [`store_contract!`], so one failing check hides none of the others. Each
//! check uses its own contact ids, so all of them can also run against one store
//! ([`run_all`]; the file store's whole-log test does).

use crate::helpers::{answered, answers, contact, dynamodb_store, every_kind, started};
use connect_triage::store::dynamodb::{DynamoOptions, DynamoStore};
use connect_triage::store::file::FileStore;
use connect_triage::store::memory::MemoryStore;
use connect_triage::store::{EventStore, SharedStore, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The one list of checks. `store_contract!(ADAPTER, CONSTRUCTOR)` makes `mod ADAPTER` with
/// one test per check, each on a fresh [`Subject`] from `async fn CONSTRUCTOR() -> Subject`
/// and finished by [`Subject::finish`]; `store_contract!(run_all)` makes [`run_all`].
/// A check is an `async fn(SharedStore)` of this module.
macro_rules! store_contract {
    (@checks $($mode:tt)*) => {
        store_contract!(@expand [$($mode)*] [
            empty_load,
            roundtrip_every_kind,
            wrong_expected_version_conflicts,
            non_contiguous_seq_is_invalid,
            batch_is_all_or_nothing,
            concurrent_appends_one_wins_on_a_new_stream,
            concurrent_appends_one_wins_after_one_event,
            thousand_events_read_back_in_order,
        ]);
    };
    (@expand [run_all] [$($check:ident),* $(,)?]) => {
        /// Every contract check in turn, on one store.
        pub async fn run_all(store: SharedStore) {
            $($check(store.clone()).await;)*
        }
    };
    (@expand [$adapter:ident, $subject:ident] [$($check:ident),* $(,)?]) => {
        pub mod $adapter {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    let subject = super::$subject().await;
                    super::$check(subject.store.clone()).await;
                    subject.finish().await;
                }
            )*
        }
    };
    (run_all) => {
        store_contract!(@checks run_all);
    };
    ($adapter:ident, $subject:ident) => {
        store_contract!(@checks $adapter, $subject);
    };
}

store_contract!(run_all);
store_contract!(memory, memory_subject);
store_contract!(file, file_subject);
store_contract!(dynamodb, dynamodb_subject);
store_contract!(dynamodb_sdk_writes, dynamodb_sdk_subject);

/// A store under test, and what the adapter must also hold once a check is done.
pub struct Subject {
    pub store: SharedStore,
    /// The file store's log (and the folder that holds it), read back after the check.
    log: Option<(tempfile::TempDir, PathBuf)>,
}

impl Subject {
    /// Adapter-specific checks after a contract check: for the file store, everything
    /// written reads back through a second, independent handle (what another process sees).
    pub async fn finish(self) {
        if let Some((_dir, path)) = self.log {
            check_log_reads_back(&path).await;
        }
    }
}

async fn memory_subject() -> Subject {
    Subject {
        store: Arc::new(MemoryStore::new()),
        log: None,
    }
}

async fn file_subject() -> Subject {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.jsonl");
    Subject {
        store: Arc::new(FileStore::open(&path).expect("open the file store")),
        log: Some((dir, path)),
    }
}

/// The DynamoDB checks share one table, made on first use, each with its own client:
/// one migration rather than one per check (index builds are DynamoDB Local's slow part),
/// and a client per test because each test has its own runtime, which its connections
/// belong to.
async fn dynamodb_subject() -> Subject {
    static TABLE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    let table = TABLE
        .get_or_init(|| async { dynamodb_store().await.1 })
        .await
        .clone();
    // As `DynamoStore::open` makes it: appends on the direct path (src/store/dynamodb/direct.rs).
    let store = DynamoStore::connect(table, contract_options(), None)
        .await
        .expect("a DynamoDB store");
    assert!(
        store.direct_client().await.is_some(),
        "the direct path is on"
    );
    Subject {
        store: Arc::new(store),
        log: None,
    }
}

/// The same table through a client made by the caller: every request through the SDK.
async fn dynamodb_sdk_subject() -> Subject {
    static TABLE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    let table = TABLE
        .get_or_init(|| async { dynamodb_store().await.1 })
        .await
        .clone();
    let limits = contract_options().limits;
    let client = connect_triage::store::dynamodb::client(&limits).await;
    let store = DynamoStore::new(client, table, contract_options());
    assert!(store.direct_client().await.is_none(), "the SDK writes");
    Subject {
        store: Arc::new(store),
        log: None,
    }
}

/// The contract is about what is stored, not how fast: fifty concurrent transactions on
/// LocalStack, while the rest of the suite runs, took longer than the Lambda's 1 s attempt
/// limit (CI, 2026-12-02). The time limits and what a timeout does are the fault tests'
/// (tests/it/faults.rs), on the Lambda's own limits.
fn contract_options() -> DynamoOptions {
    DynamoOptions {
        limits: connect_triage::store::dynamodb::SdkLimits {
            attempt_timeout: std::time::Duration::from_secs(10),
            operation_timeout: std::time::Duration::from_secs(30),
        },
        ..DynamoOptions::default()
    }
}

/// The log is one whole JSON object per line, a second handle opens it without notes, and
/// every line is an event of one of its streams.
async fn check_log_reads_back(path: &Path) -> FileStore {
    let again = FileStore::open(path).expect("reopen");
    assert!(again.notes().is_empty(), "{:?}", again.notes());
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        // A check that writes nothing (empty_load) may leave no file at all.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => panic!("reading {}: {e}", path.display()),
    };
    assert!(text
        .lines()
        .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    let mut events = 0;
    for id in again.contacts() {
        events += again.load(&id).await.expect("load").len();
    }
    assert_eq!(
        events,
        text.lines().count(),
        "every line is an event of a stream"
    );
    again
}

fn assert_conflict(r: Result<(), StoreError>, what: &str) {
    match r {
        Err(StoreError::Conflict { .. }) => {}
        other => panic!("{what}: expected a conflict, got {other:?}"),
    }
}

fn assert_invalid(r: Result<(), StoreError>, what: &str) {
    match r {
        Err(StoreError::Invalid(_)) => {}
        other => panic!("{what}: expected Invalid, got {other:?}"),
    }
}

pub async fn empty_load(store: SharedStore) {
    assert!(store.load(&contact()).await.expect("load").is_empty());
}

pub async fn roundtrip_every_kind(store: SharedStore) {
    let id = contact();
    let events = every_kind();
    // One event, then a batch of two, then the rest: both write paths.
    store
        .append(&id, 0, events[..1].to_vec())
        .await
        .expect("append 1");
    store
        .append(&id, 1, events[1..3].to_vec())
        .await
        .expect("append 2");
    store
        .append(&id, 3, events[3..].to_vec())
        .await
        .expect("append rest");
    assert_eq!(store.load(&id).await.expect("load"), events);
}

pub async fn wrong_expected_version_conflicts(store: SharedStore) {
    let id = contact();
    store.append(&id, 0, vec![started(1)]).await.expect("first");
    store
        .append(&id, 1, vec![answered(2, true, "1")])
        .await
        .expect("second");
    let before = store.load(&id).await.expect("load");
    // Too low: someone appended since.
    assert_conflict(
        store.append(&id, 1, vec![answered(2, false, "0")]).await,
        "stale version 1",
    );
    assert_conflict(
        store.append(&id, 0, vec![started(1)]).await,
        "stale version 0",
    );
    // Too high: a version the stream never reached.
    assert_conflict(
        store.append(&id, 5, vec![answered(6, true, "1")]).await,
        "future version 5",
    );
    assert_conflict(
        store.append(&id, 3, answers(4, 2)).await,
        "future version 3",
    );
    assert_eq!(
        store.load(&id).await.expect("load"),
        before,
        "nothing written"
    );
    // And an unknown stream at a version > 0.
    let other = contact();
    assert_conflict(
        store.append(&other, 2, vec![answered(3, true, "1")]).await,
        "version 2 of an empty stream",
    );
    assert!(store.load(&other).await.expect("load").is_empty());
}

pub async fn non_contiguous_seq_is_invalid(store: SharedStore) {
    let id = contact();
    assert_invalid(
        store.append(&id, 0, vec![answered(2, true, "1")]).await,
        "seq 2 at 0",
    );
    assert_invalid(
        store
            .append(&id, 0, vec![started(1), answered(3, true, "1")])
            .await,
        "seqs 1,3",
    );
    assert_invalid(store.append(&id, 0, vec![]).await, "empty batch");
    assert_invalid(store.append(&id, 0, answers(1, 26)).await, "26 events");
    assert!(store.load(&id).await.expect("load").is_empty());
}

pub async fn batch_is_all_or_nothing(store: SharedStore) {
    let id = contact();
    store.append(&id, 0, vec![started(1)]).await.expect("first");
    store
        .append(&id, 1, vec![answered(2, true, "1")])
        .await
        .expect("second");
    let before = store.load(&id).await.expect("load");
    // Seq 2 is taken, seq 3 is free: neither may be written.
    assert_conflict(
        store
            .append(
                &id,
                1,
                vec![answered(2, false, "0"), answered(3, true, "1")],
            )
            .await,
        "batch over a taken seq",
    );
    assert_eq!(store.load(&id).await.expect("load"), before);
    // The stream goes on normally afterwards.
    let next = answers(3, 2);
    store
        .append(&id, 2, next.clone())
        .await
        .expect("batch at 2");
    let after = store.load(&id).await.expect("load");
    assert_eq!(after.len(), 4);
    assert_eq!(&after[2..], &next[..]);
}

/// [`concurrent_appends_one_wins`] on a stream with no events yet.
pub async fn concurrent_appends_one_wins_on_a_new_stream(store: SharedStore) {
    concurrent_appends_one_wins(store, 0).await;
}

/// [`concurrent_appends_one_wins`] on a stream with one event.
pub async fn concurrent_appends_one_wins_after_one_event(store: SharedStore) {
    concurrent_appends_one_wins(store, 1).await;
}

/// 50 writers append at the same version: one wins, 49 conflict, one batch is stored.
async fn concurrent_appends_one_wins(store: SharedStore, at_version: u64) {
    let id = contact();
    let prefix = answers(1, at_version);
    if at_version > 0 {
        store.append(&id, 0, prefix.clone()).await.expect("prefix");
    }
    let mut tasks = Vec::new();
    for i in 0..50u64 {
        let store = store.clone();
        let id = id.clone();
        // Distinct events per writer (fresh event ids), as distinct invocations make.
        let batch = vec![answered(at_version + 1, i % 2 == 0, "1")];
        tasks.push(tokio::spawn(async move {
            let r = store.append(&id, at_version, batch.clone()).await;
            (r, batch)
        }));
    }
    let mut wins = Vec::new();
    let mut conflicts = 0;
    for t in tasks {
        match t.await.expect("task") {
            (Ok(()), batch) => wins.push(batch),
            (Err(StoreError::Conflict { .. }), _) => conflicts += 1,
            (Err(e), _) => panic!("unexpected error from a concurrent append: {e}"),
        }
    }
    assert_eq!(
        wins.len(),
        1,
        "exactly one writer wins at version {at_version}"
    );
    assert_eq!(conflicts, 49);
    let stored = store.load(&id).await.expect("load");
    assert_eq!(stored.len() as u64, at_version + 1);
    assert_eq!(&stored[..at_version as usize], &prefix[..]);
    assert_eq!(&stored[at_version as usize..], &wins[0][..]);
}

/// 1,000 events in batches of 25 read back whole and in order.
pub async fn thousand_events_read_back_in_order(store: SharedStore) {
    let id = contact();
    let mut all = vec![started(1)];
    all.extend(answers(2, 999));
    store
        .append(&id, 0, all[..1].to_vec())
        .await
        .expect("start");
    // 1 + 999 events: first a batch of 24 to align, then batches of 25.
    let mut version = 1;
    for chunk in std::iter::once(&all[1..25]).chain(all[25..].chunks(25)) {
        store
            .append(&id, version, chunk.to_vec())
            .await
            .expect("batch");
        version += chunk.len() as u64;
    }
    let loaded = store.load(&id).await.expect("load");
    assert_eq!(loaded.len(), 1_000);
    assert!(loaded
        .iter()
        .enumerate()
        .all(|(i, e)| e.seq == i as u64 + 1));
    assert_eq!(loaded, all);
}

/// Every check into one log (many streams interleaved in one file), which then reads back
/// whole through a second handle.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_store_keeps_every_check_in_one_log() {
    let subject = file_subject().await;
    run_all(subject.store.clone()).await;
    let path = subject.log.as_ref().map(|(_, p)| p.clone()).expect("a log");
    let again = check_log_reads_back(&path).await;
    assert!(again.contacts().len() >= 6);
}
