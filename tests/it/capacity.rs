//! The DynamoDB meter the cost table is counted with (benches/common/capacity.rs, used by
//! `cargo bench --bench lambda_turn`; README "What a call costs"): requests of known sizes
//! sent through it to the engine under test must come out in AWS's published units: 1 KB
//! write units (doubled in a transaction, a ConditionCheck sized by the item it checks,
//! an update or delete by the larger of the item before and after), 4 KB read units (a
//! Query's items summed; eventually consistent at half), a sparse index's writes as AWS
//! bills them, and a failed conditional write counted as a request but in no units.

use crate::helpers::{migrate_test_table, new_table_name, test_migrations};
use crate::meter::{item_size, Meter};
use aws_sdk_dynamodb::types::{AttributeValue as Av, ConditionCheck, Put, TransactWriteItem};
use connect_triage::settings::dynamodb_client_from_env;
use connect_triage::store::dynamodb::{PK, SK};
use serde_json::json;

#[test]
fn item_sizes_follow_the_published_rules() {
    // Strings by their UTF-8 bytes, the attribute names included.
    assert_eq!(item_size(&json!({"ab": {"S": "ñx"}})), 2 + 3);
    // Numbers: 1 byte per two significant digits (zeros trimmed), plus 1.
    assert_eq!(item_size(&json!({"n": {"N": "0012300"}})), 1 + 2 + 1);
    assert_eq!(item_size(&json!({"n": {"N": "-1.5"}})), 1 + 1 + 1);
    assert_eq!(
        item_size(&json!({"b": {"BOOL": true}, "z": {"NULL": true}})),
        4
    );
    // Lists and maps: 3 bytes, 1 per element, the elements (and a map's names).
    assert_eq!(
        item_size(&json!({"m": {"M": {"k": {"S": "v"}}}, "l": {"L": [{"N": "1"}]}})),
        (1 + 3 + 1 + 1 + 1) + (1 + 3 + 1 + 2)
    );
    // Binary: the raw bytes, not the base64 text.
    assert_eq!(item_size(&json!({"d": {"B": "AAEC"}})), 1 + 3);
}

fn key(seq: u64) -> std::collections::HashMap<String, Av> {
    [
        (PK.to_string(), Av::S("meter-call".into())),
        (SK.to_string(), Av::N(seq.to_string())),
    ]
    .into()
}

fn item(seq: u64, filler: usize) -> std::collections::HashMap<String, Av> {
    let mut i = key(seq);
    i.insert("d".into(), Av::S("x".repeat(filler)));
    i
}

#[tokio::test]
async fn the_meter_counts_requests_in_awss_units() {
    let table = new_table_name();
    let direct = dynamodb_client_from_env().await;
    migrate_test_table(&direct, &table, &test_migrations()).await;
    let meter = Meter::start(&crate::helpers::endpoint())
        .await
        .expect("meter");
    let conf = direct
        .config()
        .to_builder()
        .endpoint_url(&meter.url)
        .build();
    let db = aws_sdk_dynamodb::Client::from_conf(conf);

    // A 1.5 KB item: 2 write units.
    db.put_item()
        .table_name(&table)
        .set_item(Some(item(1, 1500)))
        .send()
        .await
        .expect("PutItem");
    let t = meter.take();
    assert_eq!((t.write_units, t.read_units), (2.0, 0.0), "{t:?}");
    assert_eq!(t.requests.get("PutItem"), Some(&1));

    // A transaction of two small Puts and a check of the 1.5 KB item: 2 x (1 + 1 + 2).
    let put = |seq| {
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&table)
                    .set_item(Some(item(seq, 10)))
                    .build()
                    .expect("put"),
            )
            .build()
    };
    let check = TransactWriteItem::builder()
        .condition_check(
            ConditionCheck::builder()
                .table_name(&table)
                .set_key(Some(key(1)))
                .condition_expression("attribute_exists(d)")
                .build()
                .expect("check"),
        )
        .build();
    db.transact_write_items()
        .transact_items(put(2))
        .transact_items(put(3))
        .transact_items(check)
        .send()
        .await
        .expect("TransactWriteItems");
    let t = meter.take();
    assert_eq!(t.write_units, 8.0, "{t:?}");
    assert_eq!(t.written.len(), 2, "both Puts' items are recorded");

    // The partition's three items (about 1.6 KB) in one consistent Query: 1 read unit;
    // eventually consistent, half.
    for consistent in [true, false] {
        let out = db
            .query()
            .table_name(&table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", Av::S("meter-call".into()))
            .consistent_read(consistent)
            .send()
            .await
            .expect("Query");
        assert_eq!(out.count, 3);
        let t = meter.take();
        assert_eq!(t.read_units, if consistent { 1.0 } else { 0.5 }, "{t:?}");
    }

    // Growing the 1.5 KB item to 3 KB: sized by the larger, 3 units; deleting it, 3.
    db.update_item()
        .table_name(&table)
        .set_key(Some(key(1)))
        .update_expression("SET d = :d")
        .expression_attribute_values(":d", Av::S("y".repeat(3000)))
        .send()
        .await
        .expect("UpdateItem");
    assert_eq!(meter.take().write_units, 3.0);
    db.delete_item()
        .table_name(&table)
        .set_key(Some(key(1)))
        .send()
        .await
        .expect("DeleteItem");
    assert_eq!(meter.take().write_units, 3.0);

    // An item in both sparse indexes (calls_by_day, calls_by_caller, projecting ALL): the
    // table's unit and one per index. A new caller: the table, the day index's entry
    // rewritten, the caller index's moved (a delete and a put).
    let mut indexed = item(9, 10);
    for (k, v) in [
        ("day_shard", "2026-12-03#1"),
        ("started_at", "t"),
        ("caller_hash", "a"),
    ] {
        indexed.insert(k.into(), Av::S(v.into()));
    }
    db.put_item()
        .table_name(&table)
        .set_item(Some(indexed))
        .send()
        .await
        .expect("PutItem");
    assert_eq!(meter.take().write_units, 3.0);
    db.update_item()
        .table_name(&table)
        .set_key(Some(key(9)))
        .update_expression("SET caller_hash = :c")
        .expression_attribute_values(":c", Av::S("b".into()))
        .send()
        .await
        .expect("UpdateItem");
    assert_eq!(meter.take().write_units, 1.0 + 1.0 + 2.0);

    // A conditional write that fails: a request, no units (the bench reports it apart).
    let refused = db
        .put_item()
        .table_name(&table)
        .set_item(Some(item(2, 10)))
        .condition_expression("attribute_not_exists(#s)")
        .expression_attribute_names("#s", SK)
        .send()
        .await;
    assert!(refused.is_err(), "the item exists: the condition fails");
    let t = meter.take();
    assert_eq!(t.write_units, 0.0, "{t:?}");
    assert_eq!(t.requests.get("PutItem!400"), Some(&1), "{t:?}");
}
