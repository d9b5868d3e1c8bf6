//! The event store contract, shared by every adapter. Each check uses its own contact ids,
//! so all of them can run against one store.

use crate::helpers::{answered, answers, contact, every_kind, started};
use connect_triage::store::file::FileStore;
use connect_triage::store::memory::MemoryStore;
use connect_triage::store::{EventStore, SharedStore, StoreError};
use std::sync::Arc;

/// Every contract check, in turn.
pub async fn run_all(store: SharedStore) {
    empty_load(&*store).await;
    roundtrip_every_kind(&*store).await;
    wrong_expected_version_conflicts(&*store).await;
    non_contiguous_seq_is_invalid(&*store).await;
    batch_is_all_or_nothing(&*store).await;
    concurrent_appends_one_wins(store.clone(), 0).await;
    concurrent_appends_one_wins(store.clone(), 1).await;
    thousand_events_read_back_in_order(&*store).await;
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

pub async fn empty_load(store: &dyn EventStore) {
    assert!(store.load(&contact()).await.expect("load").is_empty());
}

pub async fn roundtrip_every_kind(store: &dyn EventStore) {
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

pub async fn wrong_expected_version_conflicts(store: &dyn EventStore) {
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

pub async fn non_contiguous_seq_is_invalid(store: &dyn EventStore) {
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

pub async fn batch_is_all_or_nothing(store: &dyn EventStore) {
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

/// 50 writers append at the same version: one wins, 49 conflict, one batch is stored.
pub async fn concurrent_appends_one_wins(store: SharedStore, at_version: u64) {
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
pub async fn thousand_events_read_back_in_order(store: &dyn EventStore) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_meets_the_contract() {
    run_all(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_store_meets_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.jsonl");
    let store = Arc::new(FileStore::open(&path).expect("open"));
    run_all(store).await;
    // Everything written reads back the same through a second, independent handle (what
    // another process sees), and the log is one whole JSON object per line.
    let again = FileStore::open(&path).expect("reopen");
    assert!(again.notes().is_empty(), "{:?}", again.notes());
    let text = std::fs::read_to_string(&path).expect("log");
    assert!(text
        .lines()
        .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    let mut events = 0;
    for id in again.contacts() {
        events += again.load(&id).await.expect("load").len();
    }
    assert!(again.contacts().len() >= 6);
    assert_eq!(
        events,
        text.lines().count(),
        "every line is an event of a stream"
    );
}
