//! Races and retries on DynamoDB (issue 6, point 2): concurrent invocations of one turn
//! record one answer and all answer alike; a retry after a lost response counts nothing
//! twice.

use crate::events::{contact_event, field, new_contact_id};
use crate::faultkit::{app_at, sdk_store_at, Mode, Proxy};
use crate::helpers::{dynamodb_store, endpoint};
use connect_triage::app::App;
use connect_triage::domain::ContactId;
use connect_triage::domain::EventKind;
use connect_triage::store::EventStore;
use serde_json::Value;
use std::sync::Arc;

async fn invoke(app: &App, cid: &str, params: &[(&str, &str)]) -> Value {
    let r = app
        .handle_value(contact_event(cid, params))
        .await
        .expect("a well-formed event");
    serde_json::to_value(r).expect("json")
}

fn answers(events: &[connect_triage::domain::Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::AnswerRecorded { .. }))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_invocations_of_one_turn_record_one_answer() {
    const N: usize = 20;
    let (store, _) = dynamodb_store().await;
    let store = Arc::new(store);
    let app = App::new(store.clone());
    let cid = new_contact_id();
    let first = invoke(&app, &cid, &[]).await;
    assert_eq!(field(&first, "turn"), "1");

    let mut tasks = Vec::new();
    for _ in 0..N {
        let (app, cid) = (app.clone(), cid.clone());
        tasks.push(tokio::spawn(async move {
            invoke(&app, &cid, &[("answer", "1"), ("turn", "1")]).await
        }));
    }
    let mut responses = Vec::new();
    for t in tasks {
        responses.push(t.await.expect("join"));
    }
    for r in &responses {
        assert_eq!(r, &responses[0], "every invocation answers alike");
    }
    assert_eq!(field(&responses[0], "turn"), "2", "{}", responses[0]);
    assert_eq!(field(&responses[0], "score"), "15");
    let events = store
        .load(&ContactId::parse(&cid).expect("cid"))
        .await
        .expect("load");
    assert_eq!(
        events.len(),
        2,
        "CallStarted + exactly one answer: {events:?}"
    );
    assert_eq!(answers(&events), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_dropped_response_counts_nothing_twice() {
    let (store, _) = dynamodb_store().await;
    let app = App::new(Arc::new(store.clone()));
    let cid = new_contact_id();
    invoke(&app, &cid, &[]).await;
    let first = invoke(&app, &cid, &[("answer", "1"), ("turn", "1")]).await;
    drop(first); // Connect never got it (the Lambda timed out on its side) and retries:
    let retry = invoke(&app, &cid, &[("answer", "1"), ("turn", "1")]).await;
    assert_eq!(field(&retry, "turn"), "2");
    assert_eq!(field(&retry, "score"), "15");
    let events = store
        .load(&ContactId::parse(&cid).expect("cid"))
        .await
        .expect("load");
    assert_eq!(events.len(), 2);
    assert_eq!(answers(&events), 1);
}

/// The write commits but DynamoDB's answer is lost on the wire (the proxy drops it and
/// closes the connection): whatever the SDK does then, the answer is stored once, and
/// Connect's retry of the turn gets the normal response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_response_is_lost_on_the_wire_is_stored_once() {
    lost_response(false).await
}

/// The same through the SDK client (`TRIAGE_DYNAMODB_CLIENT=sdk`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_response_is_lost_on_the_sdk_client_is_stored_once() {
    lost_response(true).await
}

async fn lost_response(sdk: bool) {
    let (store, table) = dynamodb_store().await;
    let proxy = Proxy::start(&endpoint()).await;
    let app = if sdk {
        App::new(std::sync::Arc::new(
            sdk_store_at(&proxy.url(), &table).await,
        ))
    } else {
        app_at(&proxy.url(), &table).await
    };
    let cid = new_contact_id();
    let id = ContactId::parse(&cid).expect("cid");
    for (i, (answer, turn)) in [("1", "1"), ("0", "2")].into_iter().enumerate() {
        if i == 0 {
            invoke(&app, &cid, &[]).await;
        }
        proxy.set(Mode::DropResponseOnce);
        let r = invoke(&app, &cid, &[("answer", answer), ("turn", turn)]).await;
        assert_eq!(proxy.mode(), Mode::Pass, "the write went through the proxy");
        let n = store.load(&id).await.expect("load").len();
        assert_eq!(n, 2 + i, "the write committed exactly once: {r}");
        eprintln!("lost response, first answer: {r}");
        let retry = invoke(&app, &cid, &[("answer", answer), ("turn", turn)]).await;
        assert_eq!(field(&retry, "turn"), (2 + i).to_string(), "{retry}");
        if r.get("outcome").is_none() {
            assert_eq!(
                r, retry,
                "the SDK's retry found its own write: same response"
            );
        }
        assert_eq!(store.load(&id).await.expect("load").len(), 2 + i);
    }
    let events = store.load(&id).await.expect("load");
    assert_eq!(answers(&events), 2);
}
