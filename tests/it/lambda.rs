//! The real `bootstrap` binary under a Lambda Runtime API: a whole call, a retry, and
//! malformed invocations reported as Lambda errors.

use crate::events::{contact_event, field, new_contact_id, CALLER};
use crate::runtime_api::{stop_and_collect_logs, RuntimeApi};
use serde_json::Value;

#[tokio::test]
async fn bootstrap_serves_a_whole_call_under_the_runtime_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("events.jsonl");
    let store = format!("file:{}", log.display());
    let api = RuntimeApi::start().await;
    let child = api.spawn_bootstrap(&[
        ("TRIAGE_STORE", &store),
        ("TRIAGE_CALLER_HASH_KEY", "test-key-0123456789abcdef"),
    ]);

    let cid = new_contact_id();
    let first = api
        .invoke(&contact_event(&cid, &[]))
        .await
        .expect("first turn");
    assert_eq!(field(&first, "continue"), "1");
    assert_eq!(field(&first, "question"), "contact");
    let mut turn = field(&first, "turn").to_string();
    let mut last = first;
    for answer in ["1", "1", "1"] {
        let ev = contact_event(&cid, &[("answer", answer), ("turn", &turn)]);
        last = api.invoke(&ev).await.expect("turn");
        // Connect retries: the same invocation again gives the same response.
        assert_eq!(api.invoke(&ev).await.expect("retry"), last);
        if field(&last, "continue") == "0" {
            break;
        }
        turn = field(&last, "turn").to_string();
    }
    assert_eq!(field(&last, "outcome"), "hospital");
    assert_eq!(field(&last, "score"), "55");
    assert!(last
        .as_object()
        .expect("object")
        .values()
        .all(Value::is_string));

    // Malformed invocations are Lambda errors with a clear message.
    let err = api.invoke_raw(b"not json".to_vec()).await.unwrap_err();
    assert!(!err.is_empty());
    let err = api
        .invoke(&serde_json::json!({"Details": {"ContactData": {}}}))
        .await
        .unwrap_err();
    assert!(err.contains("ContactId"), "{err}");

    // The runtime polled `next` once per invocation (and once more, waiting).
    assert!(api.nexts.lock().expect("lock").len() >= 9);
    let logs = stop_and_collect_logs(child).await;
    assert!(!logs.contains(CALLER), "caller number leaked into logs");
    assert!(!logs.contains("\"raw\""), "answers leaked into logs");
    let json_lines = logs.lines().filter(|l| l.starts_with('{')).count();
    assert!(json_lines >= 4, "JSON logs expected, got:\n{logs}");

    let text = std::fs::read_to_string(&log).expect("event log");
    let kinds: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json line")["type"].to_string())
        .collect();
    assert_eq!(kinds.len(), 5, "started, 3 answers, concluded: {kinds:?}");
    assert!(!text.contains(CALLER), "the number itself is never stored");
    assert!(text.contains("caller_hash"));
}
