//! DynamoDB round trips per invocation, counted on the wire by an SDK interceptor (every
//! HTTP request the client transmits, retries included): a new answer is exactly one read
//! and one write; a retry is exactly one read. The analysts' reads are counted per
//! operation (the SDK's own retries of a slow emulator's answer are not the reader's doing).

use crate::events::{contact_event, field, new_contact_id};
use crate::helpers::dynamodb_store;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use connect_triage::app::App;
use connect_triage::store::dynamodb::{sdk_config, DynamoStore};
use std::sync::{Arc, Mutex};

/// Records the DynamoDB operation (`X-Amz-Target`) of every request sent (`take`), and of
/// every operation once, however many attempts it took (`take_operations`).
#[derive(Debug, Default, Clone)]
struct Wire {
    sent: Arc<Mutex<Vec<String>>>,
    operations: Arc<Mutex<Vec<String>>>,
}

impl Wire {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.sent.lock().expect("lock"))
    }

    fn take_operations(&self) -> Vec<String> {
        std::mem::take(&mut *self.operations.lock().expect("lock"))
    }
}

fn target(request: &aws_smithy_runtime_api::http::Request) -> String {
    request
        .headers()
        .get("x-amz-target")
        .unwrap_or("?")
        .trim_start_matches("DynamoDB_20120810.")
        .to_string()
}

impl Intercept for Wire {
    fn name(&self) -> &'static str {
        "wire-counter"
    }

    // Once per operation: the request is serialised once, before the attempts.
    fn read_after_serialization(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = target(context.request());
        self.operations.lock().expect("lock").push(op);
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = target(context.request());
        self.sent.lock().expect("lock").push(op);
        Ok(())
    }
}

#[tokio::test]
async fn one_read_one_write_per_answer_one_read_per_retry() {
    let (plain, table) = dynamodb_store().await;
    let wire = Wire::default();
    let config = aws_sdk_dynamodb::config::Builder::from(
        &sdk_config(&connect_triage::Settings::from_env().expect("settings").sdk).await,
    )
    .interceptor(wire.clone())
    .build();
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(config),
        table,
        plain.options().clone(),
    );
    let app = App::new(Arc::new(store));
    let cid = new_contact_id();

    let first = app
        .handle_value(contact_event(&cid, &[]))
        .await
        .expect("first");
    assert_eq!(wire.take(), ["Query", "PutItem"], "first invocation");
    let first_json = serde_json::to_value(&first).expect("json");

    let ev = contact_event(
        &cid,
        &[("answer", "1"), ("turn", field(&first_json, "turn"))],
    );
    let second = app.handle_value(ev.clone()).await.expect("answer");
    assert_eq!(wire.take(), ["Query", "TransactWriteItems"], "a new answer");

    assert_eq!(app.handle_value(ev).await.expect("retry"), second);
    assert_eq!(wire.take(), ["Query"], "a retry only reads");

    let retry_first = app
        .handle_value(contact_event(&cid, &[]))
        .await
        .expect("retry of the first");
    assert_eq!(retry_first, first);
    assert_eq!(wire.take(), ["Query"]);
}

/// The analysts' reads find calls through the GSIs, one Query per day shard, then load each
/// call by its key: never a Scan of the table.
#[tokio::test]
async fn analysts_reads_query_the_indexes_and_never_scan() {
    use connect_triage::read::calls::calls;
    use connect_triage::read::{CallQuery, DayRange, Reader};

    let (plain, table) = dynamodb_store().await;
    let wire = Wire::default();
    let config = aws_sdk_dynamodb::config::Builder::from(
        &sdk_config(&connect_triage::Settings::from_env().expect("settings").sdk).await,
    )
    .interceptor(wire.clone())
    .build();
    let store = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(config),
        table,
        plain.options().clone(),
    ));
    let app = App::new(store.clone());
    for _ in 0..3 {
        app.handle_value(contact_event(&new_contact_id(), &[]))
            .await
            .expect("start");
    }
    wire.take();
    wire.take_operations();
    let today = chrono::Utc::now().date_naive().to_string();
    let days = DayRange::parse(&today, &today).expect("days");
    let rows = calls(&Reader::new(store.clone()), &CallQuery::new(days), None)
        .await
        .expect("calls");
    assert_eq!(rows.len(), 3);
    assert!(!wire.take().iter().any(|o| o == "Scan"), "no Scan sent");
    let ops = wire.take_operations();
    let shards = store.options().day_shards as usize;
    assert_eq!(
        ops.iter().filter(|o| *o == "Query").count(),
        shards + 3,
        "one Query per day shard, one per call: {ops:?}"
    );
}
