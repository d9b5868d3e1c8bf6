//! Questionnaires as published, versioned data (issue 16, points 2-5), on the file store and
//! on DynamoDB (DynamoDB Local in pass 1, LocalStack in pass 2 of scripts/test.sh):
//! publish, list, show, activate, live; bad documents refused with nothing stored; the
//! line (the Lambda's turn) following the activation while a call in progress keeps its
//! version; every reader showing each call with its own version; a corrupt stored version
//! named; the FHIR export validated by a FHIR library.

use crate::cli::{run_triage, stderr};
use crate::events::{contact_event, field, new_contact_id};
use crate::helpers;
use connect_triage::app::App;
use connect_triage::store::{open_with_catalog, StoreSpec};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/covid19.v2.json")
}

fn v2() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture()).expect("fixture")).expect("JSON")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "triage failed:\n{}{}",
        out(&o),
        stderr(&o)
    );
    out(&o)
}

fn refused(o: Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(1),
        "not refused:\n{}{}",
        out(&o),
        stderr(&o)
    );
    stderr(&o)
}

fn write(dir: &Path, name: &str, doc: &Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(doc).expect("json")).expect("write");
    p.display().to_string()
}

/// The versions `questionnaire list` shows, as `id@version` -> state.
fn listed(store: &str) -> Vec<(String, String, bool)> {
    let list: Value = serde_json::from_str(&ok(run_triage(
        store,
        &["questionnaire", "list", "--format", "json"],
        b"",
    )))
    .expect("list JSON");
    list["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| {
            (
                v["questionnaire"].as_str().unwrap_or_default().to_string(),
                v["state"].as_str().unwrap_or_default().to_string(),
                v["active"].as_bool().unwrap_or_default(),
            )
        })
        .collect()
}

/// Bad documents: each refused with its reason, nothing stored.
fn refuses_bad_documents(store: &str, dir: &Path) {
    let before = listed(store);
    let mut dup = v2();
    dup["version"] = 7.into();
    dup["questions"][1]["id"] = dup["questions"][0]["id"].clone();
    let mut untranslated = v2();
    untranslated["version"] = 7.into();
    untranslated["texts"]["hospital"]
        .as_object_mut()
        .expect("texts")
        .remove("en");
    let mut unreachable = v2();
    unreachable["version"] = 7.into();
    unreachable["hospital_threshold"] = 1000.into();
    let mut long = v2();
    long["version"] = 7.into();
    long["questions"][0]["text"]["es"] = "a".repeat(3_001).into();
    let mut unknown = v2();
    unknown["version"] = 7.into();
    unknown["questions"][0]["weigth"] = 5.into();
    for (name, doc, says) in [
        ("dup.json", dup, "$.questions[1].id"),
        ("untranslated.json", untranslated, "$.texts.hospital"),
        ("unreachable.json", unreachable, "$.hospital_threshold"),
        ("long.json", long, "$.questions[0].text.es"),
        ("unknown.json", unknown, "$.questions[0].weigth"),
    ] {
        let err = refused(run_triage(
            store,
            &["questionnaire", "publish", &write(dir, name, &doc)],
            b"",
        ));
        assert!(err.contains(says), "{name}: {err}");
        assert!(err.contains("nothing was published"), "{name}: {err}");
    }
    // A 10 MB file is refused before it is read whole.
    let big = dir.join("big.json");
    std::fs::write(&big, vec![b' '; 10 * 1024 * 1024]).expect("write");
    let o = run_triage(
        store,
        &["questionnaire", "publish", &big.display().to_string()],
        b"",
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("is over"), "{}", stderr(&o));
    assert_eq!(listed(store), before, "nothing was stored");
}

/// Publishing, its refusals, and the catalog verbs, on one store.
fn publishes(store: &str, dir: &Path) {
    let said = ok(run_triage(
        store,
        &["questionnaire", "publish", &fixture().display().to_string()],
        b"",
    ));
    assert!(said.contains("published covid19@2"), "{said}");
    // The same again: nothing to do.
    let said = ok(run_triage(
        store,
        &["questionnaire", "publish", &fixture().display().to_string()],
        b"",
    ));
    assert!(
        said.contains("published with this content already"),
        "{said}"
    );
    // Other content under a published version: refused, with the difference.
    let mut changed = v2();
    changed["questions"][1]["weight"] = 35.into();
    let err = refused(run_triage(
        store,
        &[
            "questionnaire",
            "publish",
            &write(dir, "changed.json", &changed),
        ],
        b"",
    ));
    assert!(
        err.contains("-      \"weight\": 30,") && err.contains("+      \"weight\": 35,"),
        "{err}"
    );
    // The seed's version cannot be republished with other content either.
    let mut seed: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/triage-domain/src/covid19.v1.json"),
        )
        .expect("seed"),
    )
    .expect("JSON");
    seed["monitor_threshold"] = 30.into();
    refused(run_triage(
        store,
        &["questionnaire", "publish", &write(dir, "seed.json", &seed)],
        b"",
    ));
    // A version lower than one published is refused.
    let mut flu5 = v2();
    flu5["id"] = "flu".into();
    flu5["version"] = 5.into();
    ok(run_triage(
        store,
        &["questionnaire", "publish", &write(dir, "flu5.json", &flu5)],
        b"",
    ));
    let mut flu4 = flu5.clone();
    flu4["version"] = 4.into();
    let err = refused(run_triage(
        store,
        &["questionnaire", "publish", &write(dir, "flu4.json", &flu4)],
        b"",
    ));
    assert!(err.contains("flu@4 is lower than flu@5"), "{err}");
    refuses_bad_documents(store, dir);

    assert_eq!(
        listed(store),
        [
            ("covid19@1".to_string(), "ok".to_string(), true),
            ("covid19@2".to_string(), "ok".to_string(), false),
            ("flu@5".to_string(), "ok".to_string(), false),
        ]
    );
    let shown: Value = serde_json::from_str(&ok(run_triage(
        store,
        &["questionnaire", "show", "covid19"],
        b"",
    )))
    .expect("show JSON");
    assert_eq!(shown, v2(), "show gives the newest version's document");
    let o = run_triage(store, &["questionnaire", "activate", "covid19@9"], b"");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("covid19@9 is not published"),
        "{}",
        stderr(&o)
    );
}

/// Answers `answers` to a call already started (its first response given), to the end.
async fn answer(app: &App, cid: &str, first: &Value, answers: &[&str]) -> Value {
    let mut last = first.clone();
    for a in answers {
        assert_eq!(
            field(&last, "continue"),
            "1",
            "the call ended early: {last}"
        );
        let turn = field(&last, "turn").to_string();
        let ev = contact_event(cid, &[("answer", a), ("turn", &turn)]);
        last = serde_json::to_value(app.handle_value(ev).await.expect("turn")).expect("json");
    }
    last
}

async fn start(app: &App, cid: &str) -> Value {
    serde_json::to_value(
        app.handle_value(contact_event(cid, &[]))
            .await
            .expect("first turn"),
    )
    .expect("json")
}

/// The whole story on one store.
async fn versions_on(store: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    publishes(store, dir.path());

    // The line: a call starts on covid19@1 (nothing activated yet), covid19@2 is activated,
    // a new call starts on it, and the first call finishes on covid19@1's rules.
    let spec = StoreSpec::parse(store).expect("spec");
    let (events, catalog) = open_with_catalog(&spec, &Default::default())
        .await
        .expect("store");
    let app = App::new(events).with_catalog(catalog, Duration::ZERO);
    let (a, b) = (new_contact_id(), new_contact_id());
    let first_a = start(&app, &a).await;
    let said = ok(run_triage(
        store,
        &["questionnaire", "activate", "covid19@2"],
        b"",
    ));
    assert!(said.contains("new calls start on covid19@2"), "{said}");
    let first_b = start(&app, &b).await;
    // Yes to contact and headache: 15 + 10 = 25 on @1 (monitor at 25), 20 + 5 = 25 on @2
    // (monitor at 30: clear).
    let end_a = answer(&app, &a, &first_a, &["1", "0", "0", "0", "0", "0", "1"]).await;
    assert_eq!(
        (
            field(&end_a, "outcome"),
            field(&end_a, "score"),
            field(&end_a, "triage_questionnaire")
        ),
        ("monitor", "25", "covid19@1"),
        "{end_a}"
    );
    let end_b = answer(
        &app,
        &b,
        &first_b,
        &["1", "0", "0", "0", "0", "0", "0", "1"],
    )
    .await;
    assert_eq!(
        (
            field(&end_b, "outcome"),
            field(&end_b, "score"),
            field(&end_b, "triage_questionnaire")
        ),
        ("clear", "25", "covid19@2"),
        "{end_b}"
    );
    let today = chrono::Utc::now().date_naive().to_string();
    let live = ok(run_triage(
        store,
        &["questionnaire", "live", "--on", &today, "--format", "json"],
        b"",
    ));
    let live: Value = serde_json::from_str(&live).expect("live JSON");
    let live: Vec<&str> = live
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["questionnaire"].as_str())
        .collect();
    assert_eq!(live, ["covid19@1", "covid19@2"], "both were live today");

    // The readers: each call with its own version.
    let range = ["--from", today.as_str(), "--to", today.as_str()];
    let args = |verb: &[&'static str]| -> Vec<String> {
        verb.iter()
            .map(|s| s.to_string())
            .chain(range.iter().map(|s| s.to_string()))
            .collect()
    };
    let run = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        ok(run_triage(store, &a, b""))
    };
    let calls: Value = serde_json::from_str(&run(args(&[
        "calls", "--format", "json", "--source", "events",
    ])))
    .expect("calls");
    let by_id = |cid: &str| {
        calls
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["contact_id"] == cid)
            .cloned()
            .unwrap_or_else(|| panic!("{cid} not in {calls}"))
    };
    assert_eq!(
        (by_id(&a)["outcome"].clone(), by_id(&a)["score"].clone()),
        ("monitor".into(), 25.into())
    );
    assert_eq!(
        (by_id(&b)["outcome"].clone(), by_id(&b)["score"].clone()),
        ("clear".into(), 25.into())
    );
    let trail = ok(run_triage(store, &["trail", &b, "--format", "json"], b""));
    assert!(
        trail.contains("Pulse 1 si tiene dolor de garganta"),
        "{trail}"
    );
    let stats: Value = serde_json::from_str(&run(args(&[
        "stats", "--format", "json", "--source", "events",
    ])))
    .expect("stats");
    let questions: Vec<(String, String, u64)> = stats["questions"]
        .as_array()
        .expect("questions")
        .iter()
        .map(|q| {
            (
                q["questionnaire"].as_str().unwrap_or_default().to_string(),
                q["question"].as_str().unwrap_or_default().to_string(),
                q["asked"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        questions.len(),
        7 + 8,
        "each version's questions apart: {questions:?}"
    );
    // The read model counts them apart too (rebuilt from the events by the projector's code).
    run(args(&["project", "--rebuild"]));
    let model: Value = serde_json::from_str(&run(args(&[
        "stats", "--format", "json", "--source", "model",
    ])))
    .expect("stats");
    assert_eq!(
        model["questions"], stats["questions"],
        "model and events agree"
    );
    assert!(questions.contains(&("covid19@2".into(), "sore_throat".into(), 1)));
    assert!(questions.contains(&("covid19@1".into(), "headache".into(), 1)));
    let export = run(args(&["export", "--format", "jsonl"]));
    let texts: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).expect("row"))
        .collect();
    assert!(texts
        .iter()
        .any(|r| r["contact_id"] == b.as_str() && r["question"] == "sore_throat"));
    let report = dir.path().join("report.html");
    let mut r = args(&["report", "--source", "events"]);
    r.extend(["--out".to_string(), report.display().to_string()]);
    run(r);
    let page = std::fs::read_to_string(&report).expect("report");
    assert!(page.contains("covid19@2") && page.contains("sore_throat"));

    // FHIR: both versions as Questionnaires, the calls as QuestionnaireResponses.
    let ndjson = run(args(&["export", "--format", "fhir"]));
    let responses: Vec<Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).expect("a resource a line"))
        .collect();
    assert_eq!(responses.len(), 2);
    for (cid, version, status) in [(&a, "1", "completed"), (&b, "2", "completed")] {
        let r = responses
            .iter()
            .find(|r| r["identifier"]["value"] == cid.as_str())
            .expect("the call's response");
        assert_eq!(r["resourceType"], "QuestionnaireResponse");
        assert_eq!(
            r["questionnaire"],
            format!("https://connect-triage.example/fhir/Questionnaire/covid19|{version}")
        );
        assert_eq!(r["status"], status);
    }
}

#[tokio::test]
async fn versions_on_the_file_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("file:{}", dir.path().join("events.jsonl").display());
    versions_on(&store).await;

    // Athena's questions view: the build's versions, and with --published the store's too.
    let sql = ok(run_triage(&store, &["athena-sql"], b""));
    assert!(!sql.contains("'sore_throat'"), "built in only");
    let sql = ok(run_triage(&store, &["athena-sql", "--published"], b""));
    assert!(
        sql.contains(
            "('covid19', 2, 'es', 5, 'sore_throat', 10, 'Pulse 1 si tiene dolor de garganta')"
        ),
        "{sql}"
    );

    // A stored version changed behind the catalog's back: named by every reader.
    let catalog = dir.path().join("events.jsonl.questionnaires.jsonl");
    let text = std::fs::read_to_string(&catalog).expect("catalog file");
    std::fs::write(
        &catalog,
        text.replacen("dolor de garganta", "dolor de muelas", 1),
    )
    .expect("write");
    let state = listed(&store)
        .into_iter()
        .find(|(k, _, _)| k == "covid19@2")
        .expect("listed")
        .1;
    assert!(
        state.starts_with("unreadable: its document does not match its SHA-256"),
        "{state}"
    );
    let today = chrono::Utc::now().date_naive().to_string();
    let o = run_triage(
        &store,
        &[
            "calls", "--from", &today, "--to", &today, "--source", "events",
        ],
        b"",
    );
    let err = stderr(&o);
    assert!(
        err.contains("questionnaire record covid19@2") && err.contains("cannot be read"),
        "{err}"
    );
    assert!(
        !o.status.success(),
        "a call on an unreadable version is not shown as another's"
    );
    assert!(err.contains("covid19@2 is not known"), "{err}");
}

#[tokio::test]
async fn versions_on_dynamodb() {
    let (_store, table) = helpers::dynamodb_store().await;
    versions_on(&format!("dynamodb:{table}")).await;
}

/// Several hundred calls on two versions, exported as FHIR and checked line by line with a
/// FHIR library (`fhir.resources`, scripts/fhir-validate.py) against both Questionnaires.
#[test]
fn a_fhir_export_of_hundreds_of_calls_validates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("file:{}", dir.path().join("events.jsonl").display());
    let demo = |seed: &str, calls: &str| {
        ok(run_triage(
            &store,
            &[
                "seed-demo",
                "--calls",
                calls,
                "--days",
                "2",
                "--first-day",
                "2026-03-01",
                "--seed",
                seed,
            ],
            b"",
        ))
    };
    demo("1", "200");
    ok(run_triage(
        &store,
        &["questionnaire", "publish", &fixture().display().to_string()],
        b"",
    ));
    ok(run_triage(
        &store,
        &["questionnaire", "activate", "covid19@2"],
        b"",
    ));
    demo("2", "150");
    let ndjson = dir.path().join("responses.ndjson");
    ok(run_triage(
        &store,
        &[
            "export",
            "--format",
            "fhir",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-02",
            "--out",
            &ndjson.display().to_string(),
        ],
        b"",
    ));
    let text = std::fs::read_to_string(&ndjson).expect("export");
    let count = |v: &str| {
        text.lines()
            .filter(|l| l.contains(&format!("/Questionnaire/covid19|{v}\"")))
            .count()
    };
    assert_eq!(
        (count("1"), count("2")),
        (200, 150),
        "one response per call, each naming its version"
    );
    let mut questionnaires = vec![];
    for v in ["covid19@1", "covid19@2"] {
        let path = dir.path().join(format!("{v}.json"));
        std::fs::write(
            &path,
            ok(run_triage(&store, &["questionnaire", "fhir", v], b"")),
        )
        .expect("write");
        questionnaires.push(path.display().to_string());
    }
    let validate = |file: &Path| {
        std::process::Command::new(helpers::pyenv_python())
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fhir-validate.py"))
            .arg(file)
            .args(&questionnaires)
            .output()
            .expect("run fhir-validate.py")
    };
    let o = validate(&ndjson);
    assert!(
        o.status.success(),
        "fhir-validate.py: {}{}",
        out(&o),
        stderr(&o)
    );
    assert!(out(&o).contains("350 responses valid"), "{}", out(&o));
    // The check can fail: a response answering a question with text, not a boolean.
    let broken = dir.path().join("broken.ndjson");
    std::fs::write(
        &broken,
        text.replacen("\"valueBoolean\":true", "\"valueBoolean\":\"yes\"", 1),
    )
    .expect("write");
    let o = validate(&broken);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        out(&o).contains("349 responses valid, 1 invalid"),
        "{}",
        out(&o)
    );
}
