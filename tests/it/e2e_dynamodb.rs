//! End to end on a real DynamoDB engine (DynamoDB Local via scripts/test.sh): a whole call
//! through `triage call --store dynamodb:TABLE`, a whole call through the `bootstrap`
//! binary under a Lambda Runtime API, and the items as the AWS CLI shows them.

use crate::cli::{run_triage, stderr};
use crate::events::{contact_event, field, new_contact_id, CALLER};
use crate::helpers::{dynamodb_store, endpoint};
use crate::runtime_api::{stop_and_collect_logs, RuntimeApi};
use serde_json::Value;
use std::process::Command;

/// The call's items as `aws dynamodb query` prints them (DynamoDB JSON).
fn aws_cli_items(table: &str, contact_id: &str) -> Vec<Value> {
    let out = Command::new("aws")
        .args([
            "dynamodb",
            "query",
            "--endpoint-url",
            &endpoint(),
            "--table-name",
            table,
            "--key-condition-expression",
            "contact_id = :c",
            "--expression-attribute-values",
            &format!(r#"{{":c":{{"S":"{contact_id}"}}}}"#),
            "--consistent-read",
            "--output",
            "json",
        ])
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .expect("the AWS CLI (`aws`) is installed");
    assert!(
        out.status.success(),
        "aws dynamodb query failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("aws json");
    v["Items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_call_through_triage_call_on_dynamodb() {
    let (_store, table) = dynamodb_store().await;
    let store = format!("dynamodb:{table}");
    let cid = new_contact_id();
    let out = tokio::task::spawn_blocking({
        let (store, cid) = (store.clone(), cid.clone());
        move || {
            run_triage(
                &store,
                &["call", "--answers", "1,0,7,1,0,1,0,0", "--contact-id", &cid],
                b"",
            )
        }
    })
    .await
    .expect("join");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{text}", stderr(&out));
    assert!(text.contains("monitor"), "{text}");

    let items = aws_cli_items(&table, &cid);
    assert_eq!(items.len(), 10, "start, 7 answers, 1 rejection, conclusion");
    let first = &items[0];
    assert_eq!(first["type"]["S"], "CallStarted");
    assert_eq!(first["seq"]["N"], "1");
    assert!(
        first["day_shard"]["S"].is_string(),
        "sparse by-day key on CallStarted"
    );
    assert!(first["expires_at"]["N"].is_string(), "TTL attribute");
    let rejected = &items[3];
    assert_eq!(rejected["type"]["S"], "InputRejected");
    assert_eq!(rejected["raw"]["S"], "7");
    let last = &items[9];
    assert_eq!(last["type"]["S"], "TriageConcluded");
    assert_eq!(last["outcome"]["S"], "monitor");
    assert_eq!(last["score"]["N"], "40");
    assert!(last.get("day_shard").is_none());

    // The analysts' trail reads the same call back from DynamoDB.
    let trail = run_triage(&store, &["trail", &cid, "--format", "csv"], b"");
    assert!(trail.status.success(), "{}", stderr(&trail));
    assert_eq!(String::from_utf8_lossy(&trail.stdout).lines().count(), 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_call_through_bootstrap_on_dynamodb() {
    let (_store, table) = dynamodb_store().await;
    let api = RuntimeApi::start().await;
    let child = api.spawn_bootstrap(&[
        ("TRIAGE_TABLE", &table),
        ("TRIAGE_CALLER_HASH_KEY", "e2e-key-0123456789abcdef"),
    ]);
    let cid = new_contact_id();
    let mut r = api.invoke(&contact_event(&cid, &[])).await.expect("first");
    let mut answers = ["1", "1", "0", "1"].into_iter();
    while field(&r, "continue") == "1" {
        let turn = field(&r, "turn").to_string();
        let answer = answers.next().expect("the call should have ended");
        let ev = contact_event(&cid, &[("answer", answer), ("turn", &turn)]);
        r = api.invoke(&ev).await.expect("turn");
        // A lost response: Connect retries the same invocation; nothing is written twice.
        assert_eq!(api.invoke(&ev).await.expect("retry"), r);
    }
    assert_eq!(
        (field(&r, "outcome"), field(&r, "score")),
        ("hospital", "50")
    );
    let logs = stop_and_collect_logs(child).await;
    assert!(!logs.contains(CALLER), "no phone numbers in logs");

    let items = aws_cli_items(&table, &cid);
    let kinds: Vec<&str> = items
        .iter()
        .filter_map(|i| i["type"]["S"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "CallStarted",
            "AnswerRecorded",
            "AnswerRecorded",
            "AnswerRecorded",
            "AnswerRecorded",
            "TriageConcluded"
        ]
    );
    let hash = items[0]["caller_hash"]["S"].as_str().expect("caller hash");
    assert_eq!(hash.len(), 64);
    assert!(!serde_json::to_string(&items)
        .expect("json")
        .contains(CALLER));
}
