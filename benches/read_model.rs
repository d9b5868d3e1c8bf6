//! `triage stats` for 30 days, from the read model and from the events, side by side
//! (issue 15, point 7): at 1,000, 10,000 and 100,000 calls on DynamoDB Local, the requests
//! each makes (counted by operation at a proxy in front of DynamoDB), its wall time and
//! the peak RSS of the `triage` process.
//!
//!   cargo bench --bench read_model [-- CALLS,CALLS,...]
//!
//! For each size: a fresh table (`bench-<uuid>`, the embedded migrations but TTL) gets that
//! many SYNTHETIC calls spread over 30 days, played through the real turn into a memory
//! store (`triage seed-demo`'s generator), projected into a memory model by the projector's
//! own code, then bulk-loaded: the events with `BatchWriteItem` (the items the store
//! writes), the model with `DynamoModel::import`. Then the release `triage stats --from
//! 2026-01-01 --to 2026-01-30 --format json` runs once with `--source model` and once with
//! `--source events`, through the proxy; both must print the same figures.
//!
//! Settings: `READ_MODEL_CALLS` (default `1000,10000,100000`) or the argument;
//! `READ_MODEL_SOURCES` (default `model,events`): `model` alone loads no events and runs
//! only the model's stats (at 100,000 calls the events alone are ~850,000 items, which
//! DynamoDB Local here takes over half an hour to load). DynamoDB:
//! `AWS_ENDPOINT_URL`, else the bench's own DynamoDB Local (benches/common/ddb.rs).
//! Benchmarks, not tests: nothing here asserts on time.

#[path = "common/ddb.rs"]
mod ddb;
#[allow(dead_code)]
#[path = "../tests/it/ddb_local.rs"]
mod ddb_local;
#[path = "common/procfs.rs"]
mod procfs;

use chrono::NaiveDate;
use connect_triage::connect::CallerHasher;
use connect_triage::domain::ContactId;
use connect_triage::read::project::catch_up;
use connect_triage::sim::demo::{seed_demo, DemoPlan, DEMO_HASH_KEY, DEMO_PREFIX};
use connect_triage::store::dynamodb::model::DynamoModel;
use connect_triage::store::dynamodb::{DynamoOptions, DynamoStore};
use connect_triage::store::memory::MemoryStore;
use connect_triage::store::model::MemoryModel;
use connect_triage::store::EventStore;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FIRST_DAY: &str = "2026-01-01";
const LAST_DAY: &str = "2026-01-30";
const DAYS: u32 = 30;
const SEED: u64 = 15;

fn fail(why: impl std::fmt::Display) -> ! {
    eprintln!("read_model: {why}");
    std::process::exit(2)
}

/// Requests by DynamoDB operation (the `X-Amz-Target` header of each request).
type Counts = Arc<Mutex<BTreeMap<String, u64>>>;

/// A TCP proxy on loopback to `upstream` that counts the DynamoDB requests through it.
async fn counting_proxy(upstream: String, counts: Counts) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| fail(format!("proxy: {e}")));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| fail(format!("proxy: {e}")));
    let host = upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let host = host.clone();
            let counts = counts.clone();
            tokio::spawn(async move {
                let Ok(mut server) = tokio::net::TcpStream::connect(&host).await else {
                    return;
                };
                let (mut cr, mut cw) = client.split();
                let (mut sr, mut sw) = server.split();
                let up = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut tail = String::new();
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        // Headers may straddle reads: keep the last bytes of the previous one.
                        let text = tail.clone() + &String::from_utf8_lossy(&buf[..n]);
                        let lower = text.to_ascii_lowercase();
                        let needle = "x-amz-target: dynamodb_20120810.";
                        let mut at = 0;
                        let mut counted_to = 0;
                        while let Some(i) = lower[at..].find(needle) {
                            let start = at + i + needle.len();
                            let op: String = text[start..]
                                .chars()
                                .take_while(|c| c.is_ascii_alphanumeric())
                                .collect();
                            at = start;
                            // Whole only if something follows the name (else the next read
                            // completes it, and the header is counted then).
                            if start + op.len() < text.len() {
                                if let Ok(mut c) = counts.lock() {
                                    *c.entry(op.clone()).or_insert(0) += 1;
                                }
                                counted_to = start + op.len();
                            }
                        }
                        // Keep the last bytes not yet counted: a header cut by the read.
                        let mut keep = text.len().saturating_sub(64).max(counted_to);
                        while !text.is_char_boundary(keep) {
                            keep += 1;
                        }
                        tail = text[keep..].to_string();
                        if sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = sw.shutdown().await;
                };
                let down = async {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    let _ = cw.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    format!("http://{addr}")
}

/// `triage stats` of the 30 days, from `source`: (stdout, wall seconds, peak RSS in MB).
/// Peak RSS is the child's `VmHWM` (its own address space's high-water mark), sampled every
/// 2 ms while it runs: not `wait4`'s `ru_maxrss`, which Linux carries over `exec` from
/// the forking parent (this bench holds the whole data set, so every child would look as
/// big as the bench).
fn run_stats(table: &str, endpoint: &str, source: &str) -> (String, f64, f64) {
    let started = Instant::now();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_triage"))
        .args([
            "--store",
            &format!("dynamodb:{table}"),
            "stats",
            "--from",
            FIRST_DAY,
            "--to",
            LAST_DAY,
            "--format",
            "json",
            "--source",
            source,
        ])
        .env("AWS_ENDPOINT_URL", endpoint)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| fail(format!("cannot run triage: {e}")));
    let pid = child.id();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0u64;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                peak = peak.max(procfs::peak_rss_kb(pid));
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            peak
        })
    };
    let mut child = child;
    let mut stdout = child.stdout.take().unwrap_or_else(|| fail("no stdout"));
    let mut stderr = child.stderr.take().unwrap_or_else(|| fail("no stderr"));
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let mut out = String::new();
    let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
    let status = child
        .wait()
        .unwrap_or_else(|e| fail(format!("waiting for triage: {e}")));
    let wall = started.elapsed().as_secs_f64();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let peak_kb = sampler.join().unwrap_or(0);
    let err = err_thread.join().unwrap_or_default();
    if !status.success() {
        fail(format!("triage stats --source {source} failed: {err}"));
    }
    (out, wall, peak_kb as f64 / 1024.0)
}

async fn load(calls: u32, client: &aws_sdk_dynamodb::Client, table: &str, events: bool) {
    let t0 = Instant::now();
    let memory = Arc::new(MemoryStore::new());
    let plan = DemoPlan {
        calls,
        days: DAYS,
        first_day: NaiveDate::parse_from_str(FIRST_DAY, "%Y-%m-%d").unwrap_or_default(),
        seed: SEED,
    };
    let hasher = CallerHasher::new(DEMO_HASH_KEY).unwrap_or_else(|e| fail(e));
    seed_demo(memory.clone(), &plan, hasher, |n| {
        if n % 20_000 == 0 {
            eprintln!("read_model: played {n} of {calls} calls...");
        }
    })
    .await
    .unwrap_or_else(|e| fail(format!("seeding: {e}")));
    let ids: Vec<ContactId> = (0..calls)
        .map(|i| {
            ContactId::parse(&format!("{DEMO_PREFIX}{SEED:x}-{i:06}")).unwrap_or_else(|e| fail(e))
        })
        .collect();
    let opts = DynamoOptions::default();
    let shards = opts.day_shards;
    let model = MemoryModel::new();
    catch_up(&*memory, &model, shards, ids.clone(), |_| {})
        .await
        .unwrap_or_else(|e| fail(format!("projecting: {e}")));
    eprintln!(
        "read_model: {calls} calls played and projected in memory in {:.1} s; loading...",
        t0.elapsed().as_secs_f64()
    );
    let store = DynamoStore::new(client.clone(), table.to_string(), opts);
    let mut items = Vec::new();
    for id in ids.iter().filter(|_| events) {
        for e in memory.load(id).await.unwrap_or_else(|e| fail(e)).iter() {
            items.push(store.to_item(id, e).unwrap_or_else(|e| fail(e)));
        }
    }
    let n_events = items.len();
    let mut set = tokio::task::JoinSet::new();
    let mut chunks = items.chunks(25).map(<[_]>::to_vec);
    loop {
        while set.len() < 16 {
            let Some(chunk) = chunks.next() else { break };
            let (client, table) = (client.clone(), table.to_string());
            set.spawn(async move {
                use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
                let mut pending: Vec<WriteRequest> = chunk
                    .into_iter()
                    .filter_map(|item| PutRequest::builder().set_item(Some(item)).build().ok())
                    .map(|p| WriteRequest::builder().put_request(p).build())
                    .collect();
                while !pending.is_empty() {
                    let out = client
                        .batch_write_item()
                        .request_items(&table, std::mem::take(&mut pending))
                        .send()
                        .await
                        .unwrap_or_else(|e| fail(format!("BatchWriteItem: {e:?}")));
                    pending = out
                        .unprocessed_items
                        .and_then(|mut u| u.remove(&table))
                        .unwrap_or_default();
                }
            });
        }
        if set.join_next().await.is_none() {
            break;
        }
    }
    // The counters' `updated_at` as a projector following the line would have left it
    // (moments after each day's last event), not this bench's clock: readers use it to know
    // that a past day's open calls are all stale.
    let mut data = model.snapshot();
    let mut last: BTreeMap<(NaiveDate, u32), chrono::DateTime<chrono::Utc>> = BTreeMap::new();
    for c in data.calls.values() {
        let k = c.key(shards);
        let e = last.entry((k.day, k.shard)).or_insert(c.last_at);
        *e = (*e).max(c.last_at);
    }
    for d in data.counts.values_mut() {
        d.updated_at = last
            .get(&(d.day, d.shard))
            .map(|t| *t + chrono::Duration::seconds(1));
    }
    let model_table = connect_triage::read::model_table(table);
    let dm = DynamoModel::new(&store, model_table);
    let n_model = dm.import(&data, |_| {}).await.unwrap_or_else(|e| fail(e));
    eprintln!(
        "read_model: loaded {n_events} events and {n_model} model items in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

fn main() {
    let sizes: Vec<u32> = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .or_else(|| std::env::var("READ_MODEL_CALLS").ok())
        .unwrap_or_else(|| "1000,10000,100000".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .unwrap_or_else(|_| fail(format!("{s:?} is not a number of calls")))
        })
        .collect();
    let (url, source) = ddb::endpoint().unwrap_or_else(|e| fail(e));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(e));
    let sources: Vec<String> = std::env::var("READ_MODEL_SOURCES")
        .unwrap_or_else(|_| "model,events".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    if sources.is_empty() || sources.iter().any(|s| s != "model" && s != "events") {
        fail("READ_MODEL_SOURCES is a list of model and events");
    }
    let counts: Counts = Arc::default();
    let proxy = rt.block_on(counting_proxy(url.clone(), counts.clone()));
    println!("DynamoDB: {url} ({source}); stats of {DAYS} days ({FIRST_DAY} to {LAST_DAY})");
    println!(
        "{:>8}  {:<7}  {:>9}  {:>8}  {:>10}  requests by operation",
        "calls", "source", "requests", "wall s", "peak RSS"
    );
    let mut lines = Vec::new();
    for calls in sizes {
        // Bulk loads wait longer than the Lambda's 1 s / 2.5 s limits.
        let limits = connect_triage::store::dynamodb::SdkLimits {
            attempt_timeout: std::time::Duration::from_secs(30),
            operation_timeout: std::time::Duration::from_secs(120),
        };
        let client = rt.block_on(connect_triage::store::dynamodb::client(&limits));
        let table = format!("bench-{}", uuid::Uuid::now_v7().simple());
        rt.block_on(async {
            ddb::create_table(&client, &table)
                .await
                .unwrap_or_else(|e| fail(e));
            load(
                calls,
                &client,
                &table,
                sources.iter().any(|s| s == "events"),
            )
            .await;
        });
        let mut outputs = Vec::new();
        for source in sources.iter().map(String::as_str) {
            if let Ok(mut c) = counts.lock() {
                c.clear();
            }
            let (out, wall, rss) = run_stats(&table, &proxy, source);
            let by_op = counts.lock().map(|c| c.clone()).unwrap_or_default();
            let total: u64 = by_op.values().sum();
            let ops = by_op
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ");
            println!("{calls:>8}  {source:<7}  {total:>9}  {wall:>8.2}  {rss:>7.1} MB  {ops}");
            lines.push(serde_json::json!({
                "calls": calls, "source": source, "requests": total, "by_operation": by_op,
                "wall_s": wall, "peak_rss_mb": rss,
            }));
            outputs.push(out);
        }
        if outputs.windows(2).any(|w| w[0] != w[1]) {
            fail(format!(
                "at {calls} calls the model and the events give different figures"
            ));
        }
        rt.block_on(async {
            let _ = client.delete_table().table_name(&table).send().await;
            let _ = client
                .delete_table()
                .table_name(connect_triage::read::model_table(&table))
                .send()
                .await;
        });
    }
    for l in lines {
        println!("{l}");
    }
}
