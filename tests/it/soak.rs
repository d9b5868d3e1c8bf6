//! `triage loadtest` (issue 6, point 4), briefly, against DynamoDB: the audit passes and
//! the figures are printed.

use crate::cli::{run_triage, stderr};
use crate::helpers::dynamodb_store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brief_loadtest_on_dynamodb_passes_its_audit() {
    let (_store, table) = dynamodb_store().await;
    let store = format!("dynamodb:{table}");
    let out = tokio::task::spawn_blocking(move || {
        run_triage(
            &store,
            &["loadtest", "--concurrency", "4", "--seconds", "3"],
            b"",
        )
    })
    .await
    .expect("join");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{text}", stderr(&out));
    assert!(
        text.contains("0 lost answers, 0 duplicates, 0 not concluded: ok"),
        "{text}"
    );
    let calls: usize = text
        .split_whitespace()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no call count in {text}"));
    assert!(calls > 0, "{text}");
    assert!(text.contains("p99"), "{text}");
}
