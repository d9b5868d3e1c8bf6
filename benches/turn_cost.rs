//! CPU per invocation: parse the ContactFlowEvent, load the call from the in-memory store,
//! fold, decide, append, serialise the response — over typical 8-turn calls — next to the
//! seed's Node.js handler doing the same turns in the same run (it persists nothing).
//!
//!   cargo bench --bench turn_cost [-- CALLS [LARGEST_STORE]]

/// mimalloc: fewer, cheaper allocations per turn than glibc's allocator (see benches/turn_cost.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use connect_triage::app::App;
use connect_triage::domain::ContactId;
use connect_triage::domain::EventKind;
use connect_triage::flow::voice_event;
use connect_triage::store::memory::MemoryStore;
use connect_triage::store::EventStore;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

fn event(contact_id: &str, turn: Option<u64>, answer: Option<&str>) -> Vec<u8> {
    let turn = turn.map(|t| t.to_string());
    let params: Vec<(&str, &str)> = [("turn", turn.as_deref()), ("answer", answer)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    voice_event(contact_id, "+34600000000", &params)
        .to_string()
        .into_bytes()
}

/// The 8 invocations of one call answering "0" to every question: the first, then turns 1..7.
fn call_events(contact_id: &str) -> Vec<Vec<u8>> {
    let mut v = vec![event(contact_id, None, None)];
    v.extend((1..=7).map(|t| event(contact_id, Some(t), Some("0"))));
    v
}

async fn run_calls(app: &App, calls: &[Vec<Vec<u8>>]) -> usize {
    let mut sink = 0;
    for call in calls {
        for ev in call {
            let response = app.handle_bytes(ev).await.expect("valid event");
            sink += serde_json::to_vec(&response).expect("json").len();
        }
    }
    sink
}

fn calls(prefix: &str, n: usize) -> Vec<Vec<Vec<u8>>> {
    (0..n)
        .map(|i| call_events(&format!("{prefix}-{i:08}")))
        .collect()
}

/// Median over `ROUNDS` rounds of `n` calls each (a fresh store and fresh calls every
/// round, so the store's own growth is not what is measured: see `growth`).
async fn rust_ns_per_turn(n: usize) -> f64 {
    let app = App::new(Arc::new(MemoryStore::new()));
    run_calls(&app, &calls("warm", n / 5 + 1)).await;
    let mut rounds = Vec::new();
    for r in 0..ROUNDS {
        let app = App::new(Arc::new(MemoryStore::new()));
        let work = calls(&format!("call{r}"), n);
        let t0 = Instant::now();
        let sink = run_calls(&app, &work).await;
        assert!(sink > 0);
        rounds.push(t0.elapsed().as_nanos() as f64 / (n * 8) as f64);
    }
    rounds.sort_by(f64::total_cmp);
    rounds[ROUNDS / 2]
}

const ROUNDS: usize = 5;

/// Turn cost (an answer at the latest turn: load, fold, decide, append, respond) for calls
/// whose streams already hold each of `lens` events, in a store holding `others` other
/// whole calls. Streams are built directly in the store: a start and `len - 1` invalid keys.
async fn growth(lens: &[u64], others: usize, reps: usize) -> Vec<f64> {
    let store = Arc::new(MemoryStore::new());
    let app = App::new(store.clone());
    for c in calls("other", others) {
        run_calls(&app, &[c]).await;
    }
    let mut out = Vec::new();
    for &len in lens {
        let mut targets = Vec::new();
        for r in 0..reps {
            let cid = format!("grow-{len}-{r}");
            let first = event(&cid, None, None);
            app.handle_bytes(&first).await.expect("start");
            let id = ContactId::parse(&cid).expect("id");
            let start = store.load(&id).await.expect("load");
            let mut events = Vec::new();
            for seq in 2..=len {
                let mut e = start[0].clone();
                e.seq = seq;
                e.turn = seq - 1;
                e.kind = EventKind::InputRejected {
                    question: "contact".into(),
                    raw: "7".into(),
                    raw_len: 1,
                };
                events.push(e);
            }
            for (i, chunk) in events.chunks(25).enumerate() {
                store
                    .append(&id, 1 + (i * 25) as u64, chunk.to_vec())
                    .await
                    .expect("append");
            }
            targets.push(event(&cid, Some(len), Some("1")));
        }
        let t0 = Instant::now();
        for ev in &targets {
            let r = app.handle_bytes(ev).await.expect("turn");
            assert_eq!(r.get("score"), Some("15"));
        }
        out.push(t0.elapsed().as_nanos() as f64 / reps as f64);
    }
    out
}

fn main() {
    // `-- CALLS [LARGEST_STORE]`: calls per round (20,000), and the most other calls in the
    // store for the growth figures (100,000; 1,000,000 needs about 4.5 GB of memory).
    let mut numbers = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<usize>().ok());
    let n = numbers.next().unwrap_or(20_000);
    let largest = numbers.next().unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let rust = rt.block_on(rust_ns_per_turn(n));
    println!("rust  connect-triage turn (parse, load, fold, decide, append, respond): {rust:>6.0} ns/turn (median of {ROUNDS} rounds of {n} 8-turn calls)");
    let root = env!("CARGO_MANIFEST_DIR");
    match Command::new("node")
        .arg(format!("{root}/benches/seed_turns.js"))
        .arg(n.to_string())
        .output()
    {
        Ok(out) if out.status.success() => {
            let v: serde_json::Value =
                serde_json::from_slice(&out.stdout).expect("node output is JSON");
            let node = v["ns_per_turn"].as_f64().expect("ns_per_turn");
            println!("node  seed handler turn (JSON.parse, handler, JSON.stringify):       {node:>6.0} ns/turn (same)");
            println!("ratio rust/node: {:.2} (target <= 1.0)", rust / node);
        }
        Ok(out) => eprintln!("node failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => eprintln!("node not found ({e}): install Node.js to compare with the seed"),
    }
    println!(
        "growth: one answer turn, by events already in the call's stream and calls in the store"
    );
    let lens = [10, 200];
    for others in [0, 10_000, largest] {
        let ns = rt.block_on(growth(&lens, others, 2_000));
        for (len, ns) in lens.iter().zip(ns) {
            println!("  {len:>3} events in the stream, {others:>9} other calls: {ns:>7.0} ns/turn");
        }
    }
}
