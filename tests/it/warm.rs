//! The Lambda's warm histories (`App::with_warm_histories`, `TRIAGE_WARM_CALLS`): a
//! container that served a call's last turn skips the next turn's read, and a history gone
//! stale (Connect sent a turn to another container) never changes what is recorded or
//! answered: the conditional append refuses the stale decision, and a replay is never
//! answered from the hint. A call's first invocation (no turn token, no answer) starts from an
//! empty history without reading, which a Connect retry of it, or a flow that passes no turn
//! token, proves wrong at the conditional append.

use crate::events::{contact_event, field, new_contact_id};
use async_trait::async_trait;
use connect_triage::app::App;
use connect_triage::domain::{ContactId, Event};
use connect_triage::store::memory::MemoryStore;
use connect_triage::store::{EventStore, History, StoreError};
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The memory store, counting its reads.
struct Counting {
    inner: MemoryStore,
    loads: AtomicUsize,
}

#[async_trait]
impl EventStore for Counting {
    async fn load(&self, contact_id: &ContactId) -> Result<History, StoreError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.inner.load(contact_id).await
    }
    async fn append(
        &self,
        contact_id: &ContactId,
        expected_version: u64,
        events: Vec<Event>,
    ) -> Result<(), StoreError> {
        self.inner
            .append(contact_id, expected_version, events)
            .await
    }
    fn describe(&self) -> String {
        "counting memory".into()
    }
}

fn counting() -> Arc<Counting> {
    Arc::new(Counting {
        inner: MemoryStore::new(),
        loads: AtomicUsize::new(0),
    })
}

/// Two warm containers (as deployed) on one store.
fn two_containers(store: &Arc<Counting>) -> (App, App) {
    let warm = || App::new(store.clone()).with_warm_histories(64);
    (warm(), warm())
}

async fn ask(app: &App, cid: &str, answer: Option<(&str, &str)>) -> Value {
    let params: Vec<(&str, &str)> = match answer {
        None => vec![("lang", "es")],
        Some((key, turn)) => vec![("lang", "es"), ("answer", key), ("turn", turn)],
    };
    let response = app
        .handle_value(contact_event(cid, &params))
        .await
        .expect("a valid invocation");
    serde_json::to_value(response).expect("json")
}

async fn trail(store: &Counting, cid: &str) -> Vec<String> {
    let id = ContactId::parse(cid).expect("id");
    store
        .inner
        .load(&id)
        .await
        .expect("load")
        .iter()
        .map(|e| format!("{}:{}", e.seq, e.kind.name()))
        .collect()
}

#[tokio::test]
async fn a_warm_container_reads_a_call_once() {
    let mut loads = Vec::new();
    let mut trails = Vec::new();
    for warm in [0, 64] {
        let store = counting();
        let app = App::new(store.clone()).with_warm_histories(warm);
        let cid = new_contact_id();
        let mut r = ask(&app, &cid, None).await;
        for _ in 0..7 {
            let turn = field(&r, "turn").to_string();
            r = ask(&app, &cid, Some(("0", &turn))).await;
        }
        assert_eq!(field(&r, "outcome"), "clear", "{r}");
        loads.push(store.loads.load(Ordering::SeqCst));
        trails.push(trail(&store, &cid).await);
        assert_eq!(app.warm_calls(), 0, "a concluded call is not kept");
    }
    // Warm: not even the first turn reads (it looks like a call's first invocation, so it
    // starts from an empty history and writes conditionally on version 0).
    assert_eq!(loads, [8, 0], "reads per 8-turn call, cold and warm");
    assert_eq!(trails[0], trails[1], "the same events either way");
}

#[tokio::test]
async fn two_containers_taking_turns_of_one_call_record_each_answer_once() {
    let store = counting();
    let (a, b) = two_containers(&store);
    let single = counting();
    let one = App::new(single.clone());
    let cid = new_contact_id();
    let keys = ["1", "0", "1", "0", "0", "1", "0"];
    let mut r = ask(&a, &cid, None).await;
    let mut reference = ask(&one, &cid, None).await;
    for (i, key) in keys.iter().enumerate() {
        let turn = field(&r, "turn").to_string();
        // Turns alternate between the containers, so each one's history is always stale;
        // and every answer is sent twice, to the other container the second time (a
        // Connect retry).
        let (first, second) = if i % 2 == 0 { (&b, &a) } else { (&a, &b) };
        r = ask(first, &cid, Some((key, &turn))).await;
        let retried = ask(second, &cid, Some((key, &turn))).await;
        assert_eq!(
            retried, r,
            "a retry answers as the first try did (answer {i})"
        );
        let ref_turn = field(&reference, "turn").to_string();
        reference = ask(&one, &cid, Some((key, &ref_turn))).await;
        assert_eq!(r, reference, "as one container answers (answer {i})");
    }
    assert_eq!(field(&r, "outcome"), "monitor", "{r}");
    assert_eq!(
        trail(&store, &cid).await,
        trail(&single, &cid).await,
        "each answer recorded once, as with one container"
    );
}

#[tokio::test]
async fn a_turn_newer_than_the_warm_history_is_recorded_not_replayed() {
    // A serves the first turn and keeps the call; B serves the first answer; the second
    // answer comes back to A with a turn token A's history has never seen. Taken on the
    // stale history that would be an unknown turn, answered by repeating question 1.
    let store = counting();
    let (a, b) = two_containers(&store);
    let cid = new_contact_id();
    let r = ask(&a, &cid, None).await;
    let r = ask(&b, &cid, Some(("1", field(&r, "turn")))).await;
    let asked = field(&r, "question").to_string();
    let r = ask(&a, &cid, Some(("1", field(&r, "turn")))).await;
    assert_ne!(field(&r, "question"), asked, "A moved on: {r}");
    assert_eq!(
        field(&r, "question"),
        "taste_smell",
        "question 3 is asked: {r}"
    );
    let t = trail(&store, &cid).await;
    assert_eq!(
        t.iter().filter(|e| e.ends_with("AnswerRecorded")).count(),
        2,
        "{t:?}"
    );
}

#[tokio::test]
async fn a_retried_first_invocation_is_answered_as_the_first_try_was() {
    // The first try was recorded by A; Connect's retry of it reaches A again (which dropped
    // nothing: the call is warm there) and B (which has never seen the call, so starts from
    // the empty history a first invocation hints). Neither records a second start.
    let store = counting();
    let (a, b) = two_containers(&store);
    let cid = new_contact_id();
    let first = ask(&a, &cid, None).await;
    assert_eq!(
        store.loads.load(Ordering::SeqCst),
        0,
        "a new call is not read"
    );
    let again_on_b = ask(&b, &cid, None).await;
    assert_eq!(
        again_on_b, first,
        "B answers the retry as A answered the first try"
    );
    assert_eq!(
        store.loads.load(Ordering::SeqCst),
        1,
        "B's conditional start was refused, so it read the call once"
    );
    let again_on_a = ask(&a, &cid, None).await;
    assert_eq!(
        again_on_a, first,
        "A answers the retry as it did the first try"
    );
    let t = trail(&store, &cid).await;
    assert_eq!(
        t.iter().filter(|e| e.ends_with("CallStarted")).count(),
        1,
        "one start recorded: {t:?}"
    );
    // And the call goes on from either container.
    let r = ask(&b, &cid, Some(("1", field(&first, "turn")))).await;
    assert_ne!(field(&r, "question"), field(&first, "question"), "{r}");
}

#[tokio::test]
async fn on_dynamodb_a_warm_call_sends_writes_only_and_a_retry_one_query() {
    // On the wire, through the meter the cost table is counted with: the store as
    // `bootstrap` opens it (appends and reads on the direct client), warm as deployed.
    let (_, table) = crate::helpers::dynamodb_store().await;
    let meter = crate::meter::Meter::start(&crate::helpers::endpoint())
        .await
        .expect("meter");
    let store = connect_triage::store::dynamodb::DynamoStore::connect(
        table,
        Default::default(),
        Some(&meter.url),
    )
    .await
    .expect("store");
    let app = App::new(Arc::new(store)).with_warm_histories(64);
    let cid = new_contact_id();
    let requests = |m: &crate::meter::Meter| {
        let t = m.take();
        t.requests
            .into_iter()
            .flat_map(|(op, n)| std::iter::repeat_n(op, n as usize))
            .collect::<Vec<_>>()
    };
    let mut r = ask(&app, &cid, None).await;
    let first = requests(&meter);
    assert_eq!(first, ["PutItem"], "a new call is written, not read");
    for i in 0..7 {
        let turn = field(&r, "turn").to_string();
        r = ask(&app, &cid, Some(("0", &turn))).await;
        assert_eq!(
            requests(&meter),
            ["TransactWriteItems"],
            "answer {i}: one conditional write"
        );
        if i == 2 {
            let again = ask(&app, &cid, Some(("0", &turn))).await;
            assert_eq!(again, r, "the retry answers as the first try did");
            assert_eq!(requests(&meter), ["Query"], "a retry reads, writes nothing");
        }
    }
    assert_eq!(field(&r, "outcome"), "clear", "{r}");
}
