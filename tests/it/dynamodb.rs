//! The DynamoDB adapter: the shared contract, plus what only DynamoDB has (item layout,
//! pagination, migrations, error mapping). Needs `AWS_ENDPOINT_URL` (scripts/test.sh).

use crate::helpers::{
    answered, answers, contact, drop_table, dynamodb_store, dynamodb_store_with, every_kind,
    migrate_test_table, new_table_name, rejected, started,
};
use aws_sdk_dynamodb::types::AttributeValue;
use connect_triage::domain::ContactId;
use connect_triage::settings::dynamodb_client_from_env as client_from_env;
use connect_triage::store::dynamodb::migrate::{migrate, Migrations};
use connect_triage::store::dynamodb::{
    day_shard, sdk_config, DynamoOptions, DynamoStore, Item, BY_CALLER_INDEX, BY_DAY_INDEX,
    MIGRATIONS_KEY,
};
use connect_triage::store::{EventStore, StoreError};

async fn raw_item(store: &DynamoStore, id: &ContactId, seq: u64) -> Option<Item> {
    store
        .client()
        .get_item()
        .table_name(store.table())
        .key("contact_id", AttributeValue::S(id.as_str().into()))
        .key("seq", AttributeValue::N(seq.to_string()))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem")
        .item
}

fn s<'a>(item: &'a Item, k: &str) -> &'a str {
    match item.get(k) {
        Some(AttributeValue::S(v)) => v,
        other => panic!("{k} should be S, is {other:?}"),
    }
}

fn n(item: &Item, k: &str) -> i64 {
    match item.get(k) {
        Some(AttributeValue::N(v)) => v.parse().expect("a number"),
        other => panic!("{k} should be N, is {other:?}"),
    }
}

#[tokio::test]
async fn items_are_plain_attributes() {
    let (store, _) = dynamodb_store().await;
    let id = contact();
    let events = every_kind();
    store.append(&id, 0, events.clone()).await.expect("append");

    let first = raw_item(&store, &id, 1).await.expect("item 1");
    assert_eq!(s(&first, "type"), "CallStarted");
    assert_eq!(n(&first, "seq"), 1);
    assert_eq!(s(&first, "contact_id"), id.as_str());
    assert_eq!(
        s(&first, "at"),
        events[0]
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    assert_eq!(s(&first, "started_at"), s(&first, "at"));
    assert_eq!(
        s(&first, "day_shard"),
        day_shard(id.as_str(), events[0].at, 8)
    );
    let day = events[0].at.format("%Y-%m-%d").to_string();
    assert!(s(&first, "day_shard").starts_with(&format!("{day}#")));
    assert_eq!(s(&first, "caller_hash"), "ab".repeat(32));
    assert_eq!(s(&first, "lang"), "en");
    assert_eq!(n(&first, "questionnaire_version"), 1);
    assert_eq!(s(&first, "event_id"), events[0].event_id.to_string());
    assert_eq!(
        n(&first, "expires_at"),
        events[0].at.timestamp() + 365 * 86_400
    );

    let answer = raw_item(&store, &id, 2).await.expect("item 2");
    assert_eq!(s(&answer, "type"), "AnswerRecorded");
    assert_eq!(answer.get("yes"), Some(&AttributeValue::Bool(true)));
    assert!(!answer.contains_key("day_shard") && !answer.contains_key("started_at"));
    assert!(answer.contains_key("expires_at"));
    let empty_raw = raw_item(&store, &id, 3).await.expect("item 3");
    assert_eq!(s(&empty_raw, "raw"), "");

    let concluded = raw_item(&store, &id, 6).await.expect("item 6");
    assert_eq!(s(&concluded, "type"), "TriageConcluded");
    assert_eq!(n(&concluded, "score"), 55);
    assert_eq!(s(&concluded, "outcome"), "hospital");
    assert!(!concluded.contains_key("reason"), "None is left out");
    assert!(!concluded.contains_key("day_shard"));

    // A CallStarted without a caller hash is in the by-day index but not the by-caller one.
    let bare = raw_item(&store, &id, 8).await.expect("item 8");
    assert!(bare.contains_key("day_shard") && !bare.contains_key("caller_hash"));

    // The sparse indexes find the call starts.
    let by_day = store
        .client()
        .query()
        .table_name(store.table())
        .index_name(BY_DAY_INDEX)
        .key_condition_expression("day_shard = :d")
        .expression_attribute_values(":d", AttributeValue::S(s(&first, "day_shard").into()))
        .send()
        .await
        .expect("query by day");
    assert_eq!(
        by_day.items().len(),
        2,
        "both CallStarted items of the contact"
    );
    let by_caller = store
        .client()
        .query()
        .table_name(store.table())
        .index_name(BY_CALLER_INDEX)
        .key_condition_expression("caller_hash = :h")
        .expression_attribute_values(":h", AttributeValue::S("ab".repeat(32)))
        .send()
        .await
        .expect("query by caller");
    assert_eq!(by_caller.items().len(), 1);
    assert_eq!(s(&by_caller.items()[0], "type"), "CallStarted");
}

#[tokio::test]
async fn options_shape_ttl_and_shards() {
    let opts = DynamoOptions {
        retention_days: 30,
        day_shards: 1,
        ..DynamoOptions::default()
    };
    let (store, _) = dynamodb_store_with(opts).await;
    let id = contact();
    let e = started(1);
    store.append(&id, 0, vec![e.clone()]).await.expect("append");
    let item = raw_item(&store, &id, 1).await.expect("item");
    assert_eq!(n(&item, "expires_at"), e.at.timestamp() + 30 * 86_400);
    assert_eq!(
        s(&item, "day_shard"),
        format!("{}#0", e.at.format("%Y-%m-%d"))
    );
}

#[tokio::test]
async fn loads_follow_pagination() {
    let opts = DynamoOptions {
        page_limit: Some(7),
        ..DynamoOptions::default()
    };
    let (store, table) = dynamodb_store_with(opts).await;
    let id = contact();
    let mut all = vec![started(1)];
    all.extend(answers(2, 99));
    let mut version = 0;
    for chunk in all.chunks(25) {
        store
            .append(&id, version, chunk.to_vec())
            .await
            .expect("append");
        version += chunk.len() as u64;
    }
    // The first page really is partial.
    let page = store
        .client()
        .query()
        .table_name(&table)
        .key_condition_expression("contact_id = :c")
        .expression_attribute_values(":c", AttributeValue::S(id.as_str().into()))
        .limit(7)
        .send()
        .await
        .expect("query");
    assert_eq!(page.items().len(), 7);
    assert!(page.last_evaluated_key().is_some());
    assert_eq!(store.load(&id).await.expect("load"), all);
}

#[tokio::test]
async fn a_batch_failing_at_its_second_event_writes_nothing() {
    let (store, _) = dynamodb_store().await;
    let id = contact();
    store.append(&id, 0, vec![started(1)]).await.expect("start");
    // Plant seq 3 behind the store's back, so that only the batch's 2nd put fails.
    let planted = store.to_item(&id, &answered(3, true, "1")).expect("item");
    store
        .client()
        .put_item()
        .table_name(store.table())
        .set_item(Some(planted))
        .send()
        .await
        .expect("plant");
    let r = store
        .append(
            &id,
            1,
            vec![answered(2, true, "1"), answered(3, false, "0")],
        )
        .await;
    assert!(matches!(r, Err(StoreError::Conflict { .. })), "{r:?}");
    assert!(
        raw_item(&store, &id, 2).await.is_none(),
        "seq 2 not written"
    );
}

#[tokio::test]
async fn refusals_are_invalid_and_write_nothing() {
    let (store, _) = dynamodb_store().await;
    let id = contact();
    // An event over MAX_EVENT_BYTES.
    let r = store
        .append(&id, 0, vec![rejected(1, &"7".repeat(20_000))])
        .await;
    match r {
        Err(StoreError::Invalid(m)) => assert!(m.contains("bytes"), "{m}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert!(store.load(&id).await.expect("load").is_empty());
    // Metadata keys are not calls.
    let meta = ContactId::parse(MIGRATIONS_KEY).expect("parses");
    let r = store.append(&meta, 0, vec![started(1)]).await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    let r = store.load(&meta).await;
    assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
}

#[tokio::test]
async fn migrate_twice_is_a_noop_and_records_itself() {
    let client = client_from_env().await;
    let table = new_table_name();
    let migrations = Migrations::embedded().expect("embedded");
    let first = migrate_test_table(&client, &table, &migrations).await;
    assert_eq!(first.applied.len(), 6, "{first:?}");
    assert!(first.skipped.is_empty());
    let store = DynamoStore::new(client.clone(), table.clone(), DynamoOptions::default());
    let mut said = Vec::new();
    let report = migrate(store.client(), &table, &migrations, |m| {
        said.push(m.to_string())
    })
    .await
    .expect("second migrate");
    assert!(report.is_noop(), "{report:?}");
    assert_eq!(report.skipped.len(), 6);
    assert!(
        said.iter().any(|m| m.contains("nothing to do")),
        "says so: {said:?}"
    );
    let records = store
        .client()
        .query()
        .table_name(&table)
        .key_condition_expression("contact_id = :m")
        .expression_attribute_values(":m", AttributeValue::S(MIGRATIONS_KEY.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("query records");
    let names: Vec<&str> = records.items().iter().map(|i| s(i, "migration")).collect();
    assert_eq!(
        names,
        [
            "0001_create_table",
            "0002_by_day_index",
            "0003_by_caller_index",
            "0004_ttl",
            "0005_stream",
            "0006_read_model"
        ]
    );
    // The stream is on, and the read model's table is there.
    let desc = store
        .client()
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .expect("describe");
    let stream = desc.table().and_then(|t| t.stream_specification());
    assert_eq!(
        stream.map(|s| (
            s.stream_enabled(),
            s.stream_view_type().map(|v| v.as_str().to_string())
        )),
        Some((true, Some("NEW_IMAGE".to_string())))
    );
    store
        .client()
        .describe_table()
        .table_name(format!("{table}-model"))
        .send()
        .await
        .expect("the read model's table");
    assert!(records.items().iter().all(|i| s(i, "outcome") == "applied"));

    let ttl = store
        .client()
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .expect("ttl");
    assert_eq!(
        ttl.time_to_live_description()
            .and_then(|d| d.attribute_name()),
        Some("expires_at")
    );
    drop_table(&client, &table).await;
}

#[tokio::test]
async fn migrate_adopts_a_table_made_elsewhere() {
    let client = client_from_env().await;
    let table = new_table_name();
    let migrations = Migrations::embedded().expect("embedded");
    migrate_test_table(&client, &table, &migrations).await;
    let store = DynamoStore::new(client.clone(), table.clone(), DynamoOptions::default());
    // Forget the records, as if the table had come from template.yaml or LocalStack's hook.
    for seq in 1..=6 {
        store
            .client()
            .delete_item()
            .table_name(&table)
            .key("contact_id", AttributeValue::S(MIGRATIONS_KEY.into()))
            .key("seq", AttributeValue::N(seq.to_string()))
            .send()
            .await
            .expect("delete record");
    }
    let report = migrate(store.client(), &table, &migrations, |_| {})
        .await
        .expect("migrate");
    assert!(report.is_noop());
    assert!(report
        .skipped
        .iter()
        .all(|(_, why)| why.contains("now recorded")));
    drop_table(&client, &table).await;
}

#[tokio::test]
async fn service_and_transport_errors_are_unavailable() {
    crate::helpers::endpoint();
    let conf = sdk_config(&connect_triage::Settings::from_env().expect("settings").sdk).await;
    // A table that does not exist.
    let client = aws_sdk_dynamodb::Client::new(&conf);
    let store = DynamoStore::new(client, "no-such-table".into(), DynamoOptions::default());
    match store.load(&contact()).await {
        Err(StoreError::Unavailable(m)) => {
            assert!(m.contains("no-such-table") && m.contains("Query"), "{m}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    match store.append(&contact(), 0, vec![started(1)]).await {
        Err(StoreError::Unavailable(m)) => assert!(m.contains("PutItem"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // An endpoint where nothing listens.
    let dead = aws_sdk_dynamodb::config::Builder::from(&conf)
        .endpoint_url("http://127.0.0.1:9")
        .build();
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(dead),
        "t".into(),
        DynamoOptions::default(),
    );
    match store
        .append(&contact(), 1, vec![answered(2, true, "1")])
        .await
    {
        Err(StoreError::Unavailable(m)) => {
            assert!(
                m.contains("TransactWriteItems") && m.contains("endpoint"),
                "{m}"
            )
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
