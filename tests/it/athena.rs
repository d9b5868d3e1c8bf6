//! The Athena path, on this machine: export files in DynamoDB's format written from real
//! events (a full export and an incremental one, overlapping, with the table's metadata
//! items and a deletion), read as template.yaml's Glue tables declare them, and the views of
//! athena/ run over them in DuckDB: they must give exactly `triage export`'s rows and
//! `triage calls`' outcomes, and the README's queries the figures those rows give.
//! scripts/athena-local.py does the writing and the DuckDB part; Python and DuckDB come
//! from scripts/pyenv.sh (pinned in tests/python-requirements.txt).

use crate::helpers;
use connect_triage::app::App;
use connect_triage::connect::CallerHasher;
use connect_triage::sim::demo::{seed_demo, DemoPlan, DEMO_HASH_KEY};
use connect_triage::store::SharedStore;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed:\n{stderr}");
    eprint!("{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Rows keyed by (contact id, seq), for comparing sets of answers.
fn by_key(rows: Vec<Value>) -> BTreeMap<(String, u64), Value> {
    rows.into_iter()
        .map(|r| {
            let key = (
                r["contact_id"].as_str().unwrap_or_default().to_string(),
                r["seq"].as_u64().unwrap_or_default(),
            );
            (key, r)
        })
        .collect()
}

#[tokio::test]
async fn the_athena_views_over_dynamodb_exports_give_the_rows_of_triage_export() {
    let (ddb, table) = helpers::dynamodb_store().await;
    let store: SharedStore = Arc::new(ddb);
    let plan = DemoPlan {
        calls: 300,
        days: 10,
        first_day: chrono::NaiveDate::from_ymd_opt(2026, 3, 1).expect("day"),
        seed: 7,
    };
    let hasher = CallerHasher::new(DEMO_HASH_KEY).expect("demo key");
    let seeded = seed_demo(store.clone(), &plan, hasher, |_| {})
        .await
        .expect("seed");
    assert_eq!(seeded.calls, 300);
    // A call going on now, one answer in: open, not abandoned, on both sides.
    let app = App::new(store.clone());
    let first = app
        .handle_value(crate::events::contact_event("athena-open-call", &[]))
        .await
        .expect("first turn");
    let turn = first.get("turn").expect("turn").to_string();
    app.handle_value(crate::events::contact_event(
        "athena-open-call",
        &[("answer", "1"), ("turn", &turn)],
    ))
    .await
    .expect("answer");

    let dir = tempfile::tempdir().expect("tempdir");
    let exports = dir.path().join("bucket");
    let results = dir.path().join("results");
    let py = crate::helpers::pyenv_python();
    let script = root().join("scripts/athena-local.py");
    let written = run(
        Command::new(&py)
            .arg(&script)
            .args(["export", "--table", &table, "--out"])
            .arg(&exports)
            .env("AWS_ENDPOINT_URL", helpers::endpoint()),
        "athena-local.py export",
    );
    eprintln!("export files: {written}");
    run(
        Command::new(&py)
            .arg(&script)
            .arg("query")
            .arg("--template")
            .arg(root().join("template.yaml"))
            .arg("--exports")
            .arg(&exports)
            .arg("--sql")
            .arg(root().join("athena"))
            .arg("--out")
            .arg(&results),
        "athena-local.py query",
    );

    // What the CLI says of the same table.
    let triage = |args: &[&str]| {
        run(
            Command::new(env!("CARGO_BIN_EXE_triage"))
                .args(args)
                .env("TRIAGE_STORE", format!("dynamodb:{table}"))
                .env("AWS_ENDPOINT_URL", helpers::endpoint())
                .env_remove("TRIAGE_CALLER_HASH_KEY"),
            "triage",
        )
    };
    let today = chrono::Utc::now().date_naive().to_string();
    let range = ["--from", "2026-03-01", "--to", today.as_str()];
    let export_out = dir.path().join("export.jsonl");
    let mut args = vec!["export", "--format", "jsonl", "--out"];
    let export_path = export_out.display().to_string();
    args.push(&export_path);
    args.extend(range);
    triage(&args);
    let expected = by_key(lines(&export_out));
    let rows = lines(&results.join("triage_answers.jsonl"));
    let n_rows = rows.len();
    let got = by_key(rows);
    assert_eq!(n_rows, got.len(), "an answer twice in triage_answers");
    assert!(expected.len() > 600, "{} answers", expected.len());
    let missing: Vec<_> = expected.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !expected.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "answers only in triage export: {missing:?}\nonly in triage_answers: {extra:?}"
    );
    for (key, want) in &expected {
        assert_eq!(
            &got[key], want,
            "the row of {key:?}: triage_answers (left) against triage export (right)"
        );
    }

    // One row per call, each with the outcome `triage calls` gives it (calls with no answer
    // included: exits at the first question, hang-ups before one).
    let mut cargs = vec!["calls", "--format", "json", "--source", "events"];
    cargs.extend(range);
    let calls: Value = serde_json::from_str(&triage(&cargs)).expect("calls JSON");
    let calls = calls.as_array().expect("an array of calls");
    assert_eq!(calls.len(), 301);
    let views: BTreeMap<String, Value> = lines(&results.join("triage_calls.jsonl"))
        .into_iter()
        .map(|r| (r["contact_id"].as_str().unwrap_or_default().to_string(), r))
        .collect();
    assert_eq!(views.len(), calls.len(), "one row per call");
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for c in calls {
        let id = c["contact_id"].as_str().expect("contact_id");
        let row = views
            .get(id)
            .unwrap_or_else(|| panic!("{id} is not in triage_calls"));
        assert_eq!(row["outcome"], c["outcome"], "{id}");
        assert_eq!(row["score"], c["score"], "{id}");
        assert_eq!(row["started"], c["started"], "{id}");
        assert_eq!(row["answers"], c["answers"], "{id}");
        *outcomes
            .entry(row["outcome"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    for o in [
        "hospital",
        "monitor",
        "clear",
        "exited",
        "abandoned",
        "open",
    ] {
        assert!(
            outcomes.get(o).copied().unwrap_or(0) > 0,
            "no {o} call in {outcomes:?}"
        );
    }

    // The README's queries, against the rows they are made of.
    let per_day: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(results.join("answers_per_question_per_day.json")).expect("read"),
    )
    .expect("JSON");
    let mut want: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for r in expected.values() {
        let day = r["started"].as_str().unwrap_or("")[..10].to_string();
        let q = r["question"].as_str().unwrap_or("").to_string();
        let e = want.entry((day, q)).or_default();
        if r["yes"] == Value::Bool(true) {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    let got: BTreeMap<(String, String), (u64, u64)> = per_day
        .iter()
        .map(|r| {
            let n = |k: &str| r[k].as_u64().unwrap_or(u64::MAX);
            assert_eq!(n("answers"), n("yes") + n("no"), "{r}");
            (
                (
                    r["day"].as_str().unwrap_or("").to_string(),
                    r["question"].as_str().unwrap_or("").to_string(),
                ),
                (n("yes"), n("no")),
            )
        })
        .collect();
    assert_eq!(got, want, "answers per question per day");

    let per_week: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(results.join("outcomes_per_week.json")).expect("read"),
    )
    .expect("JSON");
    let mut want: BTreeMap<(String, String), u64> = BTreeMap::new();
    for c in calls {
        let day = chrono::NaiveDate::parse_from_str(
            &c["started"].as_str().unwrap_or("")[..10],
            "%Y-%m-%d",
        )
        .expect("day");
        let monday = day
            - chrono::Duration::days(i64::from(
                chrono::Datelike::weekday(&day).num_days_from_monday(),
            ));
        *want
            .entry((
                monday.to_string(),
                c["outcome"].as_str().unwrap_or("").to_string(),
            ))
            .or_default() += 1;
    }
    let got: BTreeMap<(String, String), u64> = per_week
        .iter()
        .map(|r| {
            (
                (
                    r["week"].as_str().unwrap_or("").to_string(),
                    r["outcome"].as_str().unwrap_or("").to_string(),
                ),
                r["calls"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(got, want, "outcomes per week");
    assert!(got.keys().filter(|(w, _)| w.starts_with("2026-0")).count() >= 2);
}
