//! `triage invoke` and `triage trail` as a user runs them: bad input gets a one-line error
//! and a non-zero exit, writes nothing, and never panics.

use crate::events::{contact_event, field, new_contact_id};
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

pub struct Triage {
    pub dir: tempfile::TempDir,
}

impl Triage {
    pub fn new() -> Triage {
        Triage {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn log(&self) -> PathBuf {
        self.dir.path().join("events.jsonl")
    }

    pub fn store(&self) -> String {
        format!("file:{}", self.log().display())
    }

    pub fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        run_triage(&self.store(), args, stdin)
    }

    /// `triage invoke` with this event; the parsed response (panics on failure).
    pub fn invoke(&self, event: &Value) -> Value {
        let out = self.run(&["invoke"], event.to_string().as_bytes());
        assert!(out.status.success(), "invoke failed: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).expect("response JSON")
    }

    pub fn lines(&self) -> usize {
        std::fs::read_to_string(self.log()).map_or(0, |t| t.lines().count())
    }
}

pub fn run_triage(store: &str, args: &[&str], stdin: &[u8]) -> Output {
    run_triage_with(store, args, stdin, &[])
}

/// [`run_triage`] with more environment variables.
pub fn run_triage_with(store: &str, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(args)
        .env("TRIAGE_STORE", store)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run triage");
    if let Some(mut si) = child.stdin.take() {
        let _ = si.write_all(stdin);
    }
    child.wait_with_output().expect("triage output")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_refused(t: &Triage, input: &[u8], wants: &str) {
    let before = t.lines();
    let out = t.run(&["invoke"], input);
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "accepted bad input {:?}",
        String::from_utf8_lossy(&input[..input.len().min(60)])
    );
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains(wants), "{err:?} should mention {wants:?}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.stdout.is_empty());
    assert_eq!(t.lines(), before, "nothing written");
}

#[test]
fn malformed_invocations_are_refused_with_one_line() {
    let t = Triage::new();
    assert_refused(&t, b"not json", "not JSON");
    assert_refused(&t, b"", "not JSON");
    assert_refused(&t, b"[1,2]", "ContactFlowEvent");
    assert_refused(&t, br#"{"Name":"ContactFlowEvent"}"#, "no Details");
    assert_refused(
        &t,
        br#"{"Details":{"ContactData":{"Attributes":{}}}}"#,
        "ContactId is missing",
    );
    assert_refused(
        &t,
        br#"{"Details":{"ContactData":{"ContactId":null}}}"#,
        "null",
    );
    assert_refused(
        &t,
        br#"{"Details":{"ContactData":{"ContactId":""}}}"#,
        "empty",
    );
    let huge = vec![b' '; 2 * 1024 * 1024];
    assert_refused(&t, &huge, "bytes");
    assert!(
        !t.log().exists(),
        "the store is not even created for bad input"
    );
}

#[test]
fn odd_but_valid_values_are_served() {
    let t = Triage::new();
    let cid = new_contact_id();
    let mut ev = contact_event(&cid, &[]);
    ev["Details"]["ContactData"]["Attributes"] =
        serde_json::json!({"answer": 1, "turn": null, "n": 3.5});
    ev["Details"]["ContactData"]["CustomerEndpoint"] = Value::Null;
    ev["Details"]["ContactData"]["SystemEndpoint"] = Value::Null;
    let first = t.invoke(&ev);
    assert_eq!(field(&first, "question"), "contact");
    // A numeric turn and answer in the attributes are read as their text.
    ev["Details"]["ContactData"]["Attributes"] = serde_json::json!({"answer": 1, "turn": 1});
    let second = t.invoke(&ev);
    assert_eq!(
        (field(&second, "score"), field(&second, "question")),
        ("15", "breathing")
    );
}

#[test]
fn bad_answers_re_ask_and_bad_turns_record_nothing() {
    let t = Triage::new();
    let cid = new_contact_id();
    let q1 = t.invoke(&contact_event(&cid, &[]));
    let turn = field(&q1, "turn").to_string();
    let huge = "1".repeat(100 * 1024);
    let mut turn_now = turn.clone();
    for bad in ["7", "#", "١", huge.as_str()] {
        let r = t.invoke(&contact_event(
            &cid,
            &[("answer", bad), ("turn", &turn_now)],
        ));
        assert_eq!(field(&r, "continue"), "1");
        assert_eq!(field(&r, "question"), "contact", "the same question again");
        assert!(field(&r, "text").starts_with("No he entendido"));
        turn_now = field(&r, "turn").to_string();
    }
    let lines = t.lines();
    assert_eq!(lines, 5, "start + 4 rejections recorded");
    let stored = std::fs::read_to_string(t.log()).expect("log");
    assert!(
        stored.len() < 5 * 1024,
        "a 100 KB answer is not stored whole"
    );
    for turn in ["-1", "abc", "999"] {
        let r = t.invoke(&contact_event(&cid, &[("answer", "1"), ("turn", turn)]));
        assert_eq!(
            field(&r, "turn"),
            turn_now,
            "{turn}: the current prompt again"
        );
        assert_eq!(field(&r, "question"), "contact");
    }
    assert_eq!(t.lines(), lines, "bad turns record nothing");
}

#[test]
fn a_truncated_last_line_is_skipped_and_reported() {
    let t = Triage::new();
    let cid = new_contact_id();
    let q1 = t.invoke(&contact_event(&cid, &[]));
    let q2 = t.invoke(&contact_event(
        &cid,
        &[("answer", "1"), ("turn", field(&q1, "turn"))],
    ));
    // A crash cut the last append short: half a line at the end of the file.
    let mut text = std::fs::read_to_string(t.log()).expect("log");
    let whole = text.len();
    text.push_str(r#"{"contact_id":"x","seq":3,"event_id":"01"#);
    std::fs::write(t.log(), &text).expect("write");

    let out = t.run(&["trail", &cid, "--format", "json"], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json trail");
    assert_eq!(rows.len(), 2, "both whole events recovered");
    let err = stderr(&out);
    assert!(
        err.contains("skipped the last") && err.contains("bytes"),
        "{err}"
    );

    // The next append cuts the torn tail off and goes on from the whole events.
    let q3 = t.invoke(&contact_event(
        &cid,
        &[("answer", "0"), ("turn", field(&q2, "turn"))],
    ));
    assert_eq!(field(&q3, "question"), "taste_smell");
    let text = std::fs::read_to_string(t.log()).expect("log");
    assert!(
        text.len() > whole
            && text
                .lines()
                .all(|l| serde_json::from_str::<Value>(l).is_ok())
    );
}

#[test]
fn concurrent_processes_never_interleave_or_lose_events() {
    let t = Triage::new();
    let contacts: Vec<String> = (0..6).map(|_| new_contact_id()).collect();
    std::thread::scope(|s| {
        for cid in &contacts {
            // Two processes race on each contact's first invocation.
            for _ in 0..2 {
                let t = &t;
                s.spawn(move || t.invoke(&contact_event(cid, &[])));
            }
        }
    });
    let text = std::fs::read_to_string(t.log()).expect("log");
    assert_eq!(
        text.lines().count(),
        contacts.len(),
        "one CallStarted per contact"
    );
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).expect("whole JSON line");
        assert_eq!(v["seq"], 1);
    }
}

#[test]
fn trail_of_an_unknown_contact_says_what_to_do() {
    let t = Triage::new();
    let out = t.run(&["trail", "nobody"], b"");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--store"), "{}", stderr(&out));
}

#[test]
fn connect_tests_writes_one_create_test_case_request_per_scenario() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("cases");
    let instance =
        "arn:aws:connect:eu-west-2:111122223333:instance/11111111-2222-3333-4444-555555555555";
    let flow = format!("{instance}/contact-flow/66666666-7777-8888-9999-000000000000");
    let queue = format!("{instance}/queue/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
    let hours = format!("{instance}/operating-hours/ffffffff-0000-1111-2222-333333333333");
    let out = run_triage(
        "memory",
        &[
            "connect-tests",
            "--out",
            out_dir.to_str().expect("utf-8"),
            "--instance-arn",
            instance,
            "--flow-arn",
            &flow,
            "--hospital-queue-arn",
            &queue,
            "--hospital-hours-arn",
            &hours,
        ],
        b"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("placeholders"), "{}", stderr(&out));
    let written = String::from_utf8_lossy(&out.stdout);
    assert_eq!(written.lines().count(), 8, "{written}");
    let hospital: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("hospital.json")).expect("hospital.json"),
    )
    .expect("json");
    assert_eq!(hospital["InstanceId"], instance);
    assert_eq!(
        hospital["EntryPoint"]["VoiceCallEntryPointParameters"]["FlowId"],
        flow.as_str()
    );
    let content = hospital["Content"].as_str().expect("content");
    assert!(content.contains(&queue), "{content}");
    assert!(!content.contains("${"), "every placeholder filled");
    let closed =
        std::fs::read_to_string(out_dir.join("the-hospital-queue-closed.json")).expect("closed");
    assert!(closed.contains(&hours));

    // Without ARNs: placeholders, named on stderr with the flag that fills them.
    let out = run_triage(
        "memory",
        &["connect-tests", "--out", out_dir.to_str().expect("utf-8")],
        b"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("${ConnectInstanceArn} (--instance-arn)"),
        "{}",
        stderr(&out)
    );

    // A scenario file the simulator does not bear out: refused, nothing written.
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"_about":"","scenarios":[{"name":"wrong","lang":"es","keys":["1","1","1"],
            "expect":{"outcome":"clear","end":"transferred","hears":[]}}]}"#,
    )
    .expect("write");
    let fresh = dir.path().join("fresh");
    let with_scenarios = || {
        run_triage(
            "memory",
            &[
                "connect-tests",
                "--out",
                fresh.to_str().expect("utf-8"),
                "--scenarios",
                bad.to_str().expect("utf-8"),
            ],
            b"",
        )
    };
    let out = with_scenarios();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("scenario \"wrong\"") && err.contains("triage_outcome"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(!fresh.exists(), "nothing written");

    // Not a scenario file at all.
    std::fs::write(&bad, "{").expect("write");
    let out = with_scenarios();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("scenario file"), "{}", stderr(&out));
}

/// `triage ... | head`: the reader closing the pipe early ends the command quietly, exit 0,
/// whatever the output's format (CSV's writer wraps the I/O error in its own).
#[test]
fn output_cut_short_by_the_reader_is_not_an_error() {
    let t = Triage::new();
    let seeded = t.run(
        &[
            "seed-demo",
            "--calls",
            "1500",
            "--days",
            "2",
            "--first-day",
            "2026-03-01",
        ],
        b"",
    );
    assert!(seeded.status.success(), "seed-demo: {}", stderr(&seeded));
    let range = ["--from", "2026-03-01", "--to", "2026-03-02"];
    for verb in [
        &["export", "--format", "csv"][..],
        &["export", "--format", "jsonl"][..],
        &["calls", "--format", "csv"][..],
        &["calls", "--format", "json"][..],
        &["calls"][..],
    ] {
        // Whole, the output is more than a pipe holds (64 KiB on Linux): cut short, triage
        // is still writing when the reader goes.
        let whole = t.run(&[verb, &range[..]].concat(), b"");
        assert!(whole.status.success(), "{verb:?}: {}", stderr(&whole));
        assert!(
            whole.stdout.len() > 96 * 1024,
            "{verb:?}: {} bytes",
            whole.stdout.len()
        );
        let mut child = Command::new(env!("CARGO_BIN_EXE_triage"))
            .arg("--store")
            .arg(t.store())
            .args(verb)
            .args(range)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start triage");
        // Read a few bytes, then close the pipe while triage still has rows to write.
        let mut stdout = child.stdout.take().expect("stdout");
        let mut first = [0u8; 16];
        std::io::Read::read_exact(&mut stdout, &mut first).expect("some output");
        drop(stdout);
        let out = child.wait_with_output().expect("triage ends");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !err.contains("error"),
            "{verb:?}: {:?} {err}",
            out.status
        );
    }
}
