//! Whole-process figures for the Lambda and the CLI (issue 7):
//! - cold start: from spawning `bootstrap` to its first Runtime API `next` request (the
//!   DynamoDB client is built, no network call is made), median of 30;
//! - peak RSS of `bootstrap` over 1,000 invocations (125 whole 8-turn calls);
//! - wall time of one whole `triage invoke` process on the file store, median of 50.
//!
//!   cargo bench --bench process
//!
//! Binary sizes are measured on the stripped release build: `scripts/bench.sh`.

#[allow(dead_code)]
#[path = "../tests/it/events.rs"]
mod events;
#[path = "common/procfs.rs"]
mod procfs;
#[allow(dead_code)]
#[path = "../tests/it/runtime_api.rs"]
mod runtime_api;

use events::{contact_event, field};
use procfs::peak_rss_kb;
use runtime_api::RuntimeApi;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

const DYNAMO_ENV: [(&str, &str); 5] = [
    ("TRIAGE_TABLE", "triage-events"),
    ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
    ("AWS_ACCESS_KEY_ID", "bench"),
    ("AWS_SECRET_ACCESS_KEY", "bench"),
    ("AWS_REGION", "us-east-1"),
];

async fn cold_start_ms() -> f64 {
    let api = RuntimeApi::start().await;
    let t0 = Instant::now();
    let child = api.spawn_bootstrap_quiet(&DYNAMO_ENV);
    let first = loop {
        if let Some(&t) = api.nexts.lock().expect("lock").first() {
            break t;
        }
        tokio::time::sleep(Duration::from_micros(100)).await;
    };
    drop(child);
    (first - t0).as_secs_f64() * 1e3
}

async fn rss_over_1000_invocations() -> (u64, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("file:{}", dir.path().join("events.jsonl").display());
    let api = RuntimeApi::start().await;
    let child = api.spawn_bootstrap_quiet(&[("TRIAGE_STORE", &store)]);
    let pid = child.id().expect("pid");
    let mut invocations = 0;
    let mut after_first = 0;
    for c in 0..125 {
        let cid = format!("rss-{c:04}");
        let mut r = api.invoke(&contact_event(&cid, &[])).await.expect("first");
        invocations += 1;
        if c == 0 {
            after_first = peak_rss_kb(pid);
        }
        while field(&r, "continue") == "1" {
            let turn = field(&r, "turn").to_string();
            r = api
                .invoke(&contact_event(&cid, &[("answer", "0"), ("turn", &turn)]))
                .await
                .expect("turn");
            invocations += 1;
        }
    }
    assert_eq!(invocations, 1000);
    let peak = peak_rss_kb(pid);
    drop(child);
    (after_first, peak)
}

fn invoke_process_ms(runs: usize) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("file:{}", dir.path().join("events.jsonl").display());
    let mut times = Vec::new();
    for i in 0..runs {
        let ev = contact_event(&format!("inv-{i}"), &[]).to_string();
        let t0 = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_triage"))
            .arg("invoke")
            .env("TRIAGE_STORE", &store)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("triage");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(ev.as_bytes())
            .expect("write");
        assert!(child.wait().expect("wait").success());
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    median(times)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        cold_start_ms().await; // warm the page cache
        let mut v = Vec::new();
        for _ in 0..30 {
            v.push(cold_start_ms().await);
        }
        println!(
            "cold start, bootstrap spawn -> first Runtime API next request: {:.1} ms median of 30 (min {:.1}, target <= 20)",
            median(v.clone()),
            v.iter().copied().fold(f64::MAX, f64::min)
        );
        let (first, peak) = rss_over_1000_invocations().await;
        println!(
            "bootstrap peak RSS: {:.1} MB after the first invocation, {:.1} MB over 1,000 invocations (target <= 20)",
            first as f64 / 1024.0,
            peak as f64 / 1024.0
        );
    });
    println!(
        "one whole `triage invoke` process on the file store: {:.1} ms median of 50",
        invoke_process_ms(50)
    );
}
