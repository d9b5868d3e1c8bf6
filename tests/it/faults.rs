//! Store faults (issue 6, point 1): with DynamoDB stopped, black-holed, answering 500s or
//! throttling, an invocation answers `outcome=error` (the calm apology) within the app's
//! budget, writes nothing, and logs why; once the endpoint is back, the same call goes on
//! from where it was with the turn token from before the fault.

use crate::events::{contact_event, field, new_contact_id};
use crate::faultkit::{app_at, client_at, sdk_store_at, store_at, LocalDynamo, Logs, Mode, Proxy};
use crate::helpers::{
    dynamodb_store, endpoint, migrate_test_table, new_table_name, test_migrations,
};
use connect_triage::app::{App, DEFAULT_TURN_BUDGET};
use connect_triage::domain::ContactId;
use connect_triage::store::EventStore;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Slack over the budget for the test machine's scheduling (a correctness bound, not a
/// benchmark): a faulted turn must end by budget + this.
const MARGIN: Duration = Duration::from_millis(1000);

async fn invoke(app: &App, cid: &str, params: &[(&str, &str)]) -> (Value, Duration) {
    let t = Instant::now();
    let r = app
        .handle_value(contact_event(cid, params))
        .await
        .expect("a well-formed event");
    (serde_json::to_value(r).expect("json"), t.elapsed())
}

async fn count(store: &dyn EventStore, cid: &str) -> usize {
    store
        .load(&ContactId::parse(cid).expect("cid"))
        .await
        .expect("load")
        .len()
}

fn assert_apology(r: &Value, elapsed: Duration, what: &str) {
    assert_eq!(field(r, "outcome"), "error", "{what}: {r}");
    assert_eq!(field(r, "continue"), "0", "{what}: {r}");
    assert!(!field(r, "text").is_empty(), "{what}: {r}");
    assert!(
        r.get("turn").is_none(),
        "{what}: no turn on an apology: {r}"
    );
    assert!(
        elapsed < DEFAULT_TURN_BUDGET + MARGIN,
        "{what}: the apology took {elapsed:?}, over the {DEFAULT_TURN_BUDGET:?} budget + {MARGIN:?}"
    );
}

/// Every fault mode through the proxy, switched mid-call; the call then goes on. The
/// turn's requests on the direct client (src/store/dynamodb/direct.rs), as deployed.
#[tokio::test(flavor = "current_thread")]
async fn faults_through_a_proxy_answer_the_apology_in_time_and_the_call_goes_on() {
    faults_through_a_proxy(false).await
}

/// The same with every request through the SDK (`TRIAGE_DYNAMODB_CLIENT=sdk`).
#[tokio::test(flavor = "current_thread")]
async fn faults_through_a_proxy_on_the_sdk_client() {
    faults_through_a_proxy(true).await
}

async fn faults_through_a_proxy(sdk: bool) {
    let (logs, _guard) = Logs::capture();
    let (direct, table) = dynamodb_store().await;
    let proxy = Proxy::start(&endpoint()).await;
    let app = if sdk {
        App::new(Arc::new(sdk_store_at(&proxy.url(), &table).await))
    } else {
        app_at(&proxy.url(), &table).await
    };
    let cid = new_contact_id();

    let (r, _) = invoke(&app, &cid, &[]).await;
    assert_eq!(field(&r, "turn"), "1");
    let (r, _) = invoke(&app, &cid, &[("answer", "1"), ("turn", "1")]).await;
    assert_eq!(field(&r, "turn"), "2");
    assert_eq!(field(&r, "score"), "15");
    assert_eq!(count(&direct, &cid).await, 2);

    let faults = [
        (Mode::Refuse, "event store unavailable"),
        (Mode::BlackHole, "timed out"),
        (Mode::Error500, "failed on the server (5xx)"),
        (Mode::Throttle, "was throttled: ThrottlingException"),
        (
            Mode::ProvisionedThroughput,
            "was throttled: ProvisionedThroughputExceededException",
        ),
    ];
    let mut measured = Vec::new();
    for (mode, why) in faults {
        logs.clear();
        proxy.set(mode);
        // The answer to turn 2, during the fault.
        let (r, elapsed) = invoke(&app, &cid, &[("answer", "0"), ("turn", "2")]).await;
        assert_apology(&r, elapsed, &format!("{mode:?}"));
        assert_eq!(field(&r, "score"), "0", "nothing was read: score unknown");
        assert_eq!(count(&direct, &cid).await, 2, "{mode:?} wrote something");
        let log = logs.text();
        assert!(
            log.contains("answering with the apology") && log.contains(why),
            "{mode:?}: the log should say why ({why:?}):\n{log}"
        );
        measured.push(format!("{mode:?} {} ms", elapsed.as_millis()));
    }
    eprintln!("faulted invocations: {}", measured.join(", "));

    // Mid-call switch: pass for the read, black hole for the write -> apology, nothing
    // written; the app's budget (not the SDK's) is what ends it at worst.
    proxy.set(Mode::Pass);
    let (r, _) = invoke(&app, &cid, &[("answer", "0"), ("turn", "2")]).await;
    assert_eq!(
        field(&r, "turn"),
        "3",
        "back: the answer to turn 2 is taken: {r}"
    );
    assert_eq!(field(&r, "score"), "15");
    assert_eq!(field(&r, "question"), "taste_smell");
    // Retry of turn 2 after recovery: same response, nothing new.
    let (again, _) = invoke(&app, &cid, &[("answer", "0"), ("turn", "2")]).await;
    assert_eq!(again, r);
    assert_eq!(count(&direct, &cid).await, 3);

    // Throttled, then back in the middle of one invocation's SDK retries: either outcome
    // is fine, but it must be all-or-nothing and agree with the store.
    proxy.set(Mode::Throttle);
    let (r, _) = tokio::join!(
        invoke(&app, &cid, &[("answer", "1"), ("turn", "3")]),
        async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            proxy.set(Mode::Pass);
        }
    )
    .0;
    let n = count(&direct, &cid).await;
    match r.get("outcome").and_then(Value::as_str) {
        Some("error") => assert_eq!(n, 3, "apology but something written: {r}"),
        _ => {
            assert_eq!(field(&r, "turn"), "4", "{r}");
            assert_eq!(n, 4);
        }
    }
    proxy.set(Mode::Pass);
    let (r, _) = invoke(&app, &cid, &[("answer", "1"), ("turn", "3")]).await;
    assert_eq!(field(&r, "turn"), "4");
    assert_eq!(field(&r, "score"), "30");
    assert_eq!(count(&direct, &cid).await, 4);
}

/// The read passes, the write is black-holed (the endpoint goes dark between the two). The apology comes within the budget and nothing is written;
/// the same turn token works afterwards.
#[tokio::test(flavor = "current_thread")]
async fn the_endpoint_going_dark_between_read_and_write() {
    let (direct, table) = dynamodb_store().await;
    let proxy = Proxy::start(&endpoint()).await;
    let app = app_at(&proxy.url(), &table).await;
    let cid = new_contact_id();
    invoke(&app, &cid, &[]).await;

    proxy.set(Mode::BlackHoleWrites);
    let (r, elapsed) = invoke(&app, &cid, &[("answer", "1"), ("turn", "1")]).await;
    assert_apology(&r, elapsed, "reads pass, writes black-holed");
    assert!(
        elapsed >= Duration::from_secs(2),
        "the write was waited for: {elapsed:?}"
    );
    assert_eq!(count(&direct, &cid).await, 1, "nothing partial");
    eprintln!("write black-holed: apology in {} ms", elapsed.as_millis());
    proxy.set(Mode::Pass);
    let (r, _) = invoke(&app, &cid, &[("answer", "1"), ("turn", "1")]).await;
    assert_eq!(field(&r, "turn"), "2", "{r}");
    assert_eq!(field(&r, "score"), "15");
    assert_eq!(count(&direct, &cid).await, 2);
}

/// A DynamoDB Local that the test kills (connection refused) and starts again on the same
/// port and data folder: the call goes on with its turn token from before.
#[tokio::test(flavor = "current_thread")]
async fn dynamodb_local_stopped_and_restarted() {
    endpoint(); // same precondition as every DynamoDB test (credentials, region)
    let (logs, _guard) = Logs::capture();
    let mut ddb = LocalDynamo::start();
    let table = new_table_name();
    migrate_test_table(
        &client_at(&ddb.endpoint()).await,
        &table,
        &test_migrations(),
    )
    .await;
    let app = app_at(&ddb.endpoint(), &table).await;
    let cid = new_contact_id();

    let (r, _) = invoke(&app, &cid, &[]).await;
    assert_eq!(field(&r, "turn"), "1");
    let (r, _) = invoke(&app, &cid, &[("answer", "1"), ("turn", "1")]).await;
    assert_eq!(field(&r, "turn"), "2");

    ddb.stop();
    logs.clear();
    let (r, elapsed) = invoke(&app, &cid, &[("answer", "1"), ("turn", "2")]).await;
    assert_apology(&r, elapsed, "stopped");
    let log = logs.text();
    assert!(
        log.contains("answering with the apology") && log.contains("event store unavailable"),
        "the log should say why:\n{log}"
    );
    eprintln!("stopped endpoint: apology in {} ms", elapsed.as_millis());

    ddb.restart();
    let store = store_at(&ddb.endpoint(), &table).await;
    assert_eq!(
        count(&store, &cid).await,
        2,
        "the table survived, nothing partial"
    );
    let (r, _) = invoke(&app, &cid, &[("answer", "1"), ("turn", "2")]).await;
    assert_eq!(field(&r, "turn"), "3", "{r}");
    assert_eq!(field(&r, "score"), "40");
    assert_eq!(field(&r, "question"), "taste_smell");
    assert_eq!(count(&store, &cid).await, 3);
}
