//! The analysts' verbs (`calls`, `stats`, `export`, `report`) on a few hundred synthetic
//! calls (`seed-demo`, played through the real Lambda turn), on the local log and on
//! DynamoDB Local (by-day index sharded and paginated), checked against each other.

use crate::helpers;
use connect_triage::connect::CallerHasher;
use connect_triage::read::calls::{calls, CallRow};
use connect_triage::read::stats::stats;
use connect_triage::read::{CallQuery, DayRange, Reader, Status};
use connect_triage::sim::demo::{seed_demo, DemoPlan, DEMO_HASH_KEY};
use connect_triage::store::dynamodb::index::day_keys;
use connect_triage::store::dynamodb::{DynamoOptions, BY_DAY_INDEX, DAY_SHARD};
use connect_triage::store::file::FileStore;
use connect_triage::store::SharedStore;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

const FIRST_DAY: &str = "2026-03-01";
const LAST_DAY: &str = "2026-03-03";

fn plan(calls: u32) -> DemoPlan {
    DemoPlan {
        calls,
        days: 3,
        first_day: chrono::NaiveDate::from_ymd_opt(2026, 3, 1).expect("day"),
        seed: 42,
    }
}

fn hasher() -> CallerHasher {
    CallerHasher::new(DEMO_HASH_KEY).expect("demo key")
}

fn range() -> DayRange {
    DayRange::parse(FIRST_DAY, LAST_DAY).expect("range")
}

/// `triage` with this store and extra environment.
fn triage(store: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_triage"));
    cmd.args(args)
        .env("TRIAGE_STORE", store)
        .env_remove("RUST_LOG")
        .env_remove("TRIAGE_CALLER_HASH_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run triage")
}

fn ok(out: Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "triage failed: {stderr}");
    (stdout, stderr)
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// Everything the verbs say about one store, checked for consistency with each other.
fn check_verbs(store: &str, env: &[(&str, &str)], expected_calls: usize) -> Vec<Value> {
    let range = ["--from", FIRST_DAY, "--to", LAST_DAY];
    let with = |extra: &[&str]| -> Vec<String> {
        extra
            .iter()
            .chain(range.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(triage(store, env, &args))
    };

    // DynamoDB Local has no projector following its stream: fill the model as an operator
    // would (the file store's model is brought up to date whenever it is read).
    if store.starts_with("dynamodb:") {
        let (out, err) = run(with(&["project", "--rebuild"]));
        assert!(
            out.contains(&format!(
                "{expected_calls} calls, {expected_calls} brought up to date"
            )),
            "{out}{err}"
        );
        let (out, _) = run(with(&["project", "--status", "--format", "json"]));
        let lag = json(&out);
        assert_eq!(lag["calls"].as_u64(), Some(expected_calls as u64));
        assert_eq!(lag["calls_behind"].as_u64(), Some(0), "{lag}");
    }
    // The read model (the default) and the events say the same.
    for verb in ["calls", "stats"] {
        let (model, _) = run(with(&[verb, "--format", "json"]));
        let (events, _) = run(with(&[verb, "--format", "json", "--source", "events"]));
        assert_eq!(
            json(&model),
            json(&events),
            "{verb}: model and events differ"
        );
    }
    // A short list of repeat callers: the head of the whole list on both paths, the day
    // rows unchanged.
    let (all, _) = run(with(&["stats", "--format", "json"]));
    let all = json(&all);
    for source in ["model", "events"] {
        let (top, _) = run(with(&[
            "stats",
            "--format",
            "json",
            "--top-callers",
            "2",
            "--source",
            source,
        ]));
        let top = json(&top);
        let head: Vec<Value> = all["repeat_callers"]
            .as_array()
            .expect("repeat callers")
            .iter()
            .take(2)
            .cloned()
            .collect();
        assert_eq!(head.len(), 2, "the demo has two repeat callers or more");
        assert_eq!(top["repeat_callers"], Value::Array(head), "{source}");
        assert_eq!(top["days"], all["days"], "{source}");
    }

    // calls: one row per call, in start order, outcome and abandoned consistent.
    let (out, _) = run(with(&["calls", "--format", "json"]));
    let rows: Vec<Value> = json(&out).as_array().expect("array").clone();
    assert_eq!(rows.len(), expected_calls);
    let started: Vec<&str> = rows
        .iter()
        .map(|r| r["started"].as_str().expect("started"))
        .collect();
    let mut sorted = started.clone();
    sorted.sort();
    assert_eq!(started, sorted, "rows come in start order");
    let mut by_outcome: BTreeMap<String, usize> = BTreeMap::new();
    for r in &rows {
        let outcome = r["outcome"].as_str().expect("outcome").to_string();
        assert!(Status::parse(&outcome).is_some(), "{outcome}");
        assert_eq!(r["abandoned"].as_bool(), Some(outcome == "abandoned"));
        assert!(r["contact_id"].as_str().expect("id").starts_with("demo-"));
        assert!(
            !r["ended"].as_str().expect("ended").is_empty(),
            "past calls have ended"
        );
        *by_outcome.entry(outcome).or_default() += 1;
    }
    for o in ["hospital", "monitor", "clear", "exited", "abandoned"] {
        assert!(
            by_outcome.get(o).copied().unwrap_or(0) > 0,
            "no {o} calls in {by_outcome:?}"
        );
    }
    let (out, _) = run(with(&[
        "calls",
        "--format",
        "json",
        "--outcome",
        "abandoned",
    ]));
    assert_eq!(
        json(&out).as_array().expect("array").len(),
        by_outcome["abandoned"]
    );
    let (csv, _) = run(with(&["calls", "--format", "csv"]));
    assert_eq!(
        csv.lines().next(),
        Some("contact_id,started,ended,outcome,score,answers,abandoned")
    );
    assert_eq!(csv.lines().count(), expected_calls + 1);

    // stats: per day, per question, repeat callers; consistent with the rows.
    let (out, _) = run(with(&["stats", "--format", "json"]));
    let st = json(&out);
    assert_eq!(st["calls"].as_u64(), Some(expected_calls as u64));
    let days = st["days"].as_array().expect("days");
    assert_eq!(days.len(), 3);
    let sum = |key: &str| {
        days.iter()
            .map(|d| d[key].as_u64().expect("n"))
            .sum::<u64>()
    };
    assert_eq!(sum("calls"), expected_calls as u64);
    for o in ["hospital", "monitor", "clear", "exited", "abandoned"] {
        assert_eq!(sum(o), by_outcome[o] as u64, "{o}");
    }
    let questions = st["questions"].as_array().expect("questions");
    assert_eq!(questions.len(), 7);
    let qsum = |key: &str| {
        questions
            .iter()
            .map(|q| q[key].as_u64().expect("n"))
            .sum::<u64>()
    };
    assert_eq!(qsum("exits"), by_outcome["exited"] as u64);
    assert_eq!(qsum("hangups"), by_outcome["abandoned"] as u64);
    assert_eq!(questions[0]["asked"].as_u64(), Some(expected_calls as u64));
    let answers_in_rows: u64 = rows.iter().map(|r| r["answers"].as_u64().expect("n")).sum();
    assert_eq!(qsum("yes") + qsum("no"), answers_in_rows);

    // Repeat callers (more than one call on one day): each one's calls that day through
    // the by-caller index; the day rows count them.
    let repeat = st["repeat_callers"].as_array().expect("repeat callers");
    assert!(!repeat.is_empty(), "the demo has people calling again");
    for c in repeat.iter().take(3) {
        let hash = c["caller_hash"].as_str().expect("hash");
        let day = c["day"].as_str().expect("day");
        assert!(c["calls"].as_u64().expect("n") > 1);
        let args = [
            "calls", "--format", "json", "--caller", hash, "--from", day, "--to", day,
        ];
        let (out, _) = ok(triage(store, env, &args));
        assert_eq!(
            json(&out).as_array().expect("rows").len() as u64,
            c["calls"].as_u64().expect("n")
        );
    }
    assert_eq!(sum("repeat_callers"), repeat.len() as u64);
    assert_eq!(
        sum("repeat_calls"),
        repeat
            .iter()
            .map(|c| c["calls"].as_u64().expect("n"))
            .sum::<u64>()
    );

    // export: one row per answer; yes-rate per question from the export = stats.
    let (jsonl, err) = run(with(&[
        "export",
        "--format",
        "jsonl",
        "--progress-every",
        "50",
    ]));
    let answers: Vec<Value> = jsonl.lines().map(json).collect();
    assert_eq!(answers.len() as u64, answers_in_rows);
    assert!(err.contains("exported "), "progress on stderr: {err}");
    assert!(
        err.contains(&format!("from {expected_calls} calls")) || expected_calls >= 1000,
        "{err}"
    );
    let mut yes: HashMap<String, (u64, u64)> = HashMap::new();
    for a in &answers {
        let e = yes
            .entry(a["question"].as_str().expect("q").to_string())
            .or_default();
        e.0 += u64::from(a["yes"].as_bool().expect("yes bool"));
        e.1 += 1;
        assert!(!a["question_text"].as_str().expect("text").is_empty());
        assert!(a["lang"] == "es" || a["lang"] == "en");
    }
    for q in questions {
        let (y, n) = yes[q["question"].as_str().expect("id")];
        assert_eq!(q["yes"].as_u64(), Some(y));
        assert_eq!(
            q["yes"].as_u64().expect("y") + q["no"].as_u64().expect("n"),
            n
        );
    }
    let (csv, _) = run(with(&["export", "--format", "csv"]));
    assert!(csv.starts_with("contact_id,started,question,position,question_text,yes,raw,at,seq,lang,outcome,score,caller_hash\n"));
    assert_eq!(csv.lines().count() as u64, answers_in_rows + 1);
    answers
}

#[test]
fn analysts_verbs_on_the_local_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("file:{}", dir.path().join("events.jsonl").display());
    let (out, err) = ok(triage(
        &store,
        &[],
        &[
            "seed-demo",
            "--calls",
            "240",
            "--days",
            "3",
            "--first-day",
            FIRST_DAY,
            "--seed",
            "42",
        ],
    ));
    assert!(err.contains("SYNTHETIC DEMO DATA"), "banner: {err}");
    assert!(out.contains("seeded 240 synthetic calls"), "{out}");
    check_verbs(&store, &[], 240);

    // A day outside the data: no rows. Bad ranges: one clear line, non-zero exit.
    let (out, _) = ok(triage(
        &store,
        &[],
        &[
            "calls",
            "--from",
            "2026-04-01",
            "--to",
            "2026-04-02",
            "--format",
            "json",
        ],
    ));
    assert_eq!(json(&out), serde_json::json!([]));
    for (args, wants) in [
        (
            vec!["calls", "--from", "2026-03-05", "--to", "2026-03-01"],
            "after --to",
        ),
        (
            vec!["stats", "--from", "03/01/2026", "--to", "2026-03-01"],
            "YYYY-MM-DD",
        ),
        (
            vec![
                "calls",
                "--from",
                "2026-03-01",
                "--to",
                "2026-03-01",
                "--outcome",
                "dead",
            ],
            "--outcome",
        ),
        (
            vec![
                "stats",
                "--from",
                "2026-03-01",
                "--to",
                "2026-03-01",
                "--format",
                "csv",
            ],
            "--section",
        ),
    ] {
        let out = triage(&store, &[], &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(
            err.starts_with("error: ") && err.contains(wants),
            "{args:?}: {err}"
        );
    }
    let out = triage(
        "memory",
        &[],
        &["calls", "--from", FIRST_DAY, "--to", LAST_DAY],
    );
    assert!(!out.status.success());
}

#[tokio::test]
async fn dynamodb_index_reads_match_the_local_log() {
    // The same synthetic calls into DynamoDB Local (4 shards a day, 7-item pages to force
    // pagination) and into a local log: the read side must say the same of both.
    let opts = DynamoOptions {
        day_shards: 4,
        page_limit: Some(7),
        ..DynamoOptions::default()
    };
    let (ddb, table) = helpers::dynamodb_store_with(opts).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = Arc::new(FileStore::open(dir.path().join("events.jsonl")).expect("file store"));
    let calls_n = 200;
    let report = seed_demo(
        Arc::new(ddb.clone()) as SharedStore,
        &plan(calls_n),
        hasher(),
        |_| {},
    )
    .await
    .expect("seed DynamoDB");
    assert_eq!(report.calls, calls_n);
    seed_demo(
        file.clone() as SharedStore,
        &plan(calls_n),
        hasher(),
        |_| {},
    )
    .await
    .expect("seed file");

    let on_ddb = Reader::new(Arc::new(ddb.clone()));
    let on_file = Reader::new(file);
    let mut query = CallQuery::new(range());
    let rows_ddb: Vec<CallRow> = calls(&on_ddb, &query, None)
        .await
        .expect("calls on DynamoDB");
    let rows_file = calls(&on_file, &query, None).await.expect("calls on file");
    assert_eq!(rows_ddb.len(), calls_n as usize);
    assert_eq!(
        rows_ddb, rows_file,
        "the index on DynamoDB and the local log agree"
    );
    let stats_ddb = stats(&on_ddb, &query, |_| {}).await.expect("stats");
    assert_eq!(
        stats_ddb,
        stats(&on_file, &query, |_| {}).await.expect("stats")
    );

    // One caller's calls of one day, through the by-caller index.
    let caller = stats_ddb.repeat_callers[0].clone();
    query.caller_hash = Some(caller.caller_hash.clone());
    query.days = DayRange::parse(&caller.day, &caller.day).expect("the caller's day");
    let mine = calls(&on_ddb, &query, None).await.expect("by caller");
    assert_eq!(mine.len() as u64, caller.calls);
    assert_eq!(
        mine,
        calls(&on_file, &query, None)
            .await
            .expect("by caller on file")
    );
    // A one-day range through the by-caller index stays in its day.
    let day = DayRange::parse("2026-03-02", "2026-03-02").expect("day");
    let mut q = CallQuery::new(day);
    q.caller_hash = Some(caller.caller_hash);
    for r in calls(&on_ddb, &q, None).await.expect("by caller, one day") {
        assert!(r.started.starts_with("2026-03-02"), "{r:?}");
    }

    // The day really is spread over its shards, and the shards hold exactly its calls.
    let d = chrono::NaiveDate::from_ymd_opt(2026, 3, 2).expect("day");
    let mut per_shard = Vec::new();
    for key in day_keys(d, 4) {
        let out = ddb
            .client()
            .query()
            .table_name(&table)
            .index_name(BY_DAY_INDEX)
            .key_condition_expression("#k = :k")
            .expression_attribute_names("#k", DAY_SHARD)
            .expression_attribute_values(":k", aws_sdk_dynamodb::types::AttributeValue::S(key))
            .select(aws_sdk_dynamodb::types::Select::Count)
            .send()
            .await
            .expect("count shard");
        per_shard.push(out.count());
    }
    assert!(
        per_shard.iter().filter(|n| **n > 0).count() >= 3,
        "{per_shard:?}"
    );
    let day_calls = stats_ddb.days[1].calls;
    assert_eq!(per_shard.iter().map(|n| *n as u64).sum::<u64>(), day_calls);

    // The command line on DynamoDB, told the same shard count.
    let store = format!("dynamodb:{table}");
    let answers = check_verbs(&store, &[("TRIAGE_DAY_SHARDS", "4")], calls_n as usize);
    assert!(answers.len() > calls_n as usize);
}

/// Chromium on the PATH. Found by looking, not by running `chromium --version`: with other
/// browsers of the suite starting at the same moment, that run failed once (a local run of the suite, 2026-12-02)
/// and the test then tried to install the browser it had.
fn find_chromium() -> Option<String> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| {
            std::env::split_paths(&path).any(|dir| {
                std::fs::metadata(dir.join(c)).is_ok_and(|m| {
                    m.is_file()
                        && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
                })
            })
        })
        .map(str::to_string)
}

/// Debian's Chromium, installed (as scripts/test.sh does) when the machine has none, so that
/// plain `cargo test` runs this test on a fresh machine too.
fn chromium() -> String {
    if let Some(c) = find_chromium() {
        return c;
    }
    eprintln!("installing chromium (apt-get) for the report test");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let apt = |args: &[&str]| {
        let mut cmd = if root {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.arg("-n").arg("apt-get");
            c
        };
        cmd.args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if apt(&["update", "-qq"]) && apt(&["install", "-y", "-qq", "chromium"]) {
        if let Some(c) = find_chromium() {
            return c;
        }
    }
    panic!(
        "chromium is not installed: the report test needs a headless browser. \
         scripts/test.sh installs it (apt-get install -y chromium)"
    );
}

#[test]
fn the_report_draws_its_charts_in_a_browser() {
    let browser = chromium();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = seeded_log(dir.path(), "150", "3", FIRST_DAY);
    let page = dir.path().join("report.html");
    let page_s = page.display().to_string();
    let (_, err) = ok(triage(
        &store,
        &[],
        &[
            "report",
            "--from",
            FIRST_DAY,
            "--to",
            LAST_DAY,
            "--out",
            &page_s,
            "--progress-every",
            "50",
            "--source",
            "events",
        ],
    ));
    assert!(
        err.contains("read 50 calls") && err.contains("report of 150 calls"),
        "{err}"
    );
    let html = std::fs::read_to_string(&page).expect("report");
    // The same page from the read model (the default).
    let from_model = dir.path().join("model.html");
    let (_, err) = ok(triage(
        &store,
        &[],
        &[
            "report",
            "--from",
            FIRST_DAY,
            "--to",
            LAST_DAY,
            "--out",
            &from_model.display().to_string(),
        ],
    ));
    assert!(err.contains("report of 150 calls"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&from_model).expect("report"),
        html,
        "the report from the read model is the report from the events"
    );
    for remote in ["http://", "https://", "src=\"//"] {
        let hits: Vec<&str> = html.matches(remote).collect();
        // The only URL is the SVG namespace name, which is never fetched.
        assert!(
            hits.is_empty() || html.matches("http://www.w3.org/2000/svg").count() == hits.len(),
            "the page must not load anything: {remote}"
        );
    }
    let (out, _) = ok(triage(
        &store,
        &[],
        &[
            "stats", "--from", FIRST_DAY, "--to", LAST_DAY, "--format", "json",
        ],
    ));
    let st = json(&out);
    let want_day_bars: usize = st["days"]
        .as_array()
        .expect("days")
        .iter()
        .map(|d| {
            [
                "hospital",
                "monitor",
                "clear",
                "exited",
                "abandoned",
                "open",
            ]
            .iter()
            .filter(|k| d[**k].as_u64().unwrap_or(0) > 0)
            .count()
        })
        .sum();
    let nq = st["questions"].as_array().expect("questions").len();

    let dom = render_page(&browser, &page, &dir.path().join("report.png"));
    let attr = |name: &str| dom_number(&dom, name);
    assert!(want_day_bars >= 3);
    assert_eq!(attr("data-day-bars"), want_day_bars);
    assert_eq!(attr("data-yes-bars"), nq);
    assert_eq!(attr("data-funnel-bars"), nq);
    // And the bars are in the DOM, not only counted.
    assert_eq!(dom.matches("class=\"bar day-bar\"").count(), want_day_bars);
    assert_eq!(dom.matches("class=\"bar yes-bar\"").count(), nq);
    assert_eq!(dom.matches("class=\"bar funnel-bar\"").count(), nq);
    assert!(dom.contains("drawn: "));
}

#[tokio::test]
async fn a_silent_call_is_open_then_abandoned_at_its_pending_question() {
    use connect_triage::app::App;
    use connect_triage::domain::ContactId;
    use connect_triage::read::summarize;
    use connect_triage::store::memory::MemoryStore;
    use connect_triage::store::EventStore;
    let store = Arc::new(MemoryStore::new());
    let at = chrono::DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z")
        .expect("time")
        .with_timezone(&chrono::Utc);
    let app = App::new(store.clone() as SharedStore).with_clock(Arc::new(move || at));
    let cid = "c-silent";
    let first = app
        .handle_value(crate::events::contact_event(cid, &[]))
        .await
        .expect("first turn");
    let turn = first.get("turn").expect("turn").to_string();
    app.handle_value(crate::events::contact_event(
        cid,
        &[("answer", "1"), ("turn", &turn)],
    ))
    .await
    .expect("answer");
    let id = ContactId::parse(cid).expect("id");
    let events = store.load(&id).await.expect("load");
    assert!(
        events.iter().all(|e| e.at == at),
        "events carry the App's clock"
    );
    let ten = chrono::Duration::minutes(10);
    let open = summarize(&id, &events, at + chrono::Duration::minutes(9), ten).expect("fold");
    assert_eq!(
        (open.status, open.ended_at, open.dropped_at.clone()),
        (Status::Open, None, None)
    );
    let gone = summarize(&id, &events, at + chrono::Duration::minutes(11), ten).expect("fold");
    assert_eq!(gone.status, Status::Abandoned);
    assert_eq!(gone.ended_at, Some(at));
    assert_eq!(gone.dropped_at.as_deref(), Some("breathing"));
    assert_eq!(gone.answers.len(), 1);
    assert_eq!(
        gone.asked,
        vec![(0, "contact".to_string()), (1, "breathing".to_string())]
    );
}

/// An index of `n` made-up calls, produced only as fast as they are taken, counting how
/// many it has handed out; and a store that gives every call the same short history.
struct Lazy {
    n: u64,
    produced: Arc<std::sync::atomic::AtomicU64>,
}

impl connect_triage::read::CallIndex for Lazy {
    fn calls_started(&self, _: DayRange) -> connect_triage::read::CallStream {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let (n, produced) = (self.n, self.produced.clone());
        tokio::spawn(async move {
            for i in 0..n {
                let call = connect_triage::read::StartedCall {
                    contact_id: connect_triage::domain::ContactId::parse(&format!("lazy-{i}"))
                        .expect("id"),
                    started_at: range().start(),
                    caller_hash: None,
                };
                if tx.send(Ok(call)).await.is_err() {
                    return;
                }
                produced.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        connect_triage::read::CallStream::new(rx)
    }

    fn calls_by_caller(&self, _: &str, days: DayRange) -> connect_triage::read::CallStream {
        self.calls_started(days)
    }
}

struct SameHistory;

#[async_trait::async_trait]
impl connect_triage::store::EventStore for SameHistory {
    async fn load(
        &self,
        _: &connect_triage::domain::ContactId,
    ) -> Result<connect_triage::store::History, connect_triage::store::StoreError> {
        let mut events = vec![helpers::started(1), helpers::answered(2, true, "1")];
        if let connect_triage::domain::EventKind::AnswerRecorded { question, .. } =
            &mut events[1].kind
        {
            *question = "contact".into();
        }
        Ok(events.into())
    }
    async fn append(
        &self,
        _: &connect_triage::domain::ContactId,
        _: u64,
        _: Vec<connect_triage::domain::Event>,
    ) -> Result<(), connect_triage::store::StoreError> {
        Ok(())
    }
    fn describe(&self) -> String {
        "same-history".into()
    }
}

/// Records how many calls the index had handed out when the first row was written.
struct Watch {
    produced: Arc<std::sync::atomic::AtomicU64>,
    at_first_write: Option<u64>,
    bytes: usize,
}

impl std::io::Write for Watch {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.at_first_write.is_none() {
            self.at_first_write = Some(self.produced.load(std::sync::atomic::Ordering::SeqCst));
        }
        self.bytes += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn export_streams_rows_while_the_index_is_still_being_read() {
    use connect_triage::read::export::{export, ExportFormat};
    use connect_triage::read::LOAD_AHEAD;
    let produced = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reader = Reader::from_parts(
        Arc::new(SameHistory),
        Arc::new(Lazy {
            n: 20_000,
            produced: produced.clone(),
        }),
    );
    let mut out = Watch {
        produced: produced.clone(),
        at_first_write: None,
        bytes: 0,
    };
    let mut reports = 0;
    let done = export(
        &reader,
        &CallQuery::new(range()),
        &mut out,
        ExportFormat::Jsonl,
        connect_triage::read::export::DEFAULT_FHIR_BASE,
        5_000,
        |_| reports += 1,
    )
    .await
    .expect("export");
    assert_eq!((done.calls, done.answers), (20_000, 20_000));
    assert_eq!(reports, 4, "progress every 5,000 calls");
    // The first answer row was written when only a window of calls had been taken from
    // the index: rows are written as calls are read, nothing collects the range.
    let first = out.at_first_write.expect("rows written");
    assert!(
        (1..=LOAD_AHEAD as u64 + 2).contains(&first),
        "{first} calls taken before the first row"
    );
}

/// A local log in `dir` with `calls` demo calls over `days` days from `first_day`: its
/// `--store` spec.
fn seeded_log(dir: &std::path::Path, calls: &str, days: &str, first_day: &str) -> String {
    let store = format!("file:{}", dir.join("events.jsonl").display());
    ok(triage(
        &store,
        &[],
        &[
            "seed-demo",
            "--calls",
            calls,
            "--days",
            days,
            "--first-day",
            first_day,
        ],
    ));
    store
}

/// The page as headless Chromium lays it out in a window of a laptop's size: its DOM after
/// the script ran, and a screenshot of that window (`shot`).
fn render_page(browser: &str, page: &std::path::Path, shot: &std::path::Path) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let run = |what: &str| {
        let out = Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(what)
            .arg(format!("file://{}", page.display()))
            .output()
            .expect("run chromium");
        assert!(
            out.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    run(&format!("--screenshot={}", shot.display()));
    String::from_utf8_lossy(&run("--dump-dom").stdout).to_string()
}

fn dom_number(dom: &str, name: &str) -> usize {
    let key = format!("{name}=\"");
    let start = dom
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in the DOM: the script did not run"))
        + key.len();
    dom[start..]
        .split('"')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a number")
}

#[test]
fn the_report_day_axis_stays_readable_at_31_and_92_days() {
    let browser = chromium();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = seeded_log(dir.path(), "400", "92", "2026-01-01");
    for (to, days) in [("2026-01-31", 31usize), ("2026-04-02", 92)] {
        let page = dir.path().join(format!("report-{days}.html"));
        ok(triage(
            &store,
            &[],
            &[
                "report",
                "--from",
                "2026-01-01",
                "--to",
                to,
                "--out",
                &page.display().to_string(),
            ],
        ));
        let shot = dir.path().join(format!("report-{days}.png"));
        let dom = render_page(&browser, &page, &shot);
        // What a reader sees: no day label over another or past the chart, no bar past it,
        // and enough labels to find a day (at least one a week).
        assert_eq!(dom_number(&dom, "data-label-overlaps"), 0, "{days} days");
        assert_eq!(dom_number(&dom, "data-labels-clipped"), 0, "{days} days");
        assert_eq!(dom_number(&dom, "data-bars-clipped"), 0, "{days} days");
        let labels = dom_number(&dom, "data-day-labels");
        assert!(
            labels >= days / 7 && labels <= days,
            "{days} days: {labels} labels"
        );
        assert_eq!(dom.matches("class=\"day-label\"").count(), labels);
        // The screenshot is the window's size (PNG header: width and height at 16..24).
        let png = std::fs::read(&shot).expect("screenshot");
        assert_eq!(&png[1..4], b"PNG");
        let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        assert_eq!((be(&png[16..20]), be(&png[20..24])), (1280, 900));
    }
}
