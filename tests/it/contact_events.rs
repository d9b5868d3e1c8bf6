//! Amazon Connect's contact events (EventBridge), through `triage invoke` exactly as the
//! Lambda serves them: a `DISCONNECTED` records `CallEnded` once; redelivered, of another
//! type, of another instance, or for a contact never seen, it records nothing; bad ones are
//! one-line errors. Fixtures: `tests/fixtures/contact-events/` (shaped as AWS documents them).

use crate::cli::{run_triage_with, stderr, Triage};
use serde_json::{json, Value};
use std::process::Output;

const INSTANCE: &str =
    "arn:aws:connect:us-east-1:111122223333:instance/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111";

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/contact-events/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("json")
}

/// `triage invoke` with `stdin`, the instance setting as the template sets it.
fn invoke(t: &Triage, stdin: &[u8], instance: &str) -> Output {
    run_triage_with(
        &t.store(),
        &["invoke"],
        stdin,
        &[("TRIAGE_CONNECT_INSTANCE_ARN", instance)],
    )
}

fn answered(out: &Output) -> Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).expect("a JSON answer")
}

/// A call that started and answered one question, on contact `id`.
fn a_started_call(t: &Triage, id: &str) {
    let first = t.invoke(&crate::events::contact_event(id, &[]));
    let turn = first["turn"].as_str().expect("turn").to_string();
    t.invoke(&crate::events::contact_event(
        id,
        &[("turn", &turn), ("answer", "1")],
    ));
}

#[test]
fn a_disconnect_is_recorded_once_and_ends_the_call_at_its_pending_question() {
    let t = Triage::new();
    let id = "4a573372-1f28-4e26-b97b-000000000101";
    a_started_call(&t, id);
    let mut event = fixture("disconnected-voice-inbound.json");
    let ended = chrono::Utc::now() + chrono::Duration::seconds(2);
    let ended_text = ended.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    event["detail"]["disconnectTimestamp"] = json!(ended_text);
    let bytes = event.to_string();
    assert_eq!(
        answered(&invoke(&t, bytes.as_bytes(), INSTANCE)),
        json!({"recorded": "CallEnded"})
    );
    let lines = t.lines();
    assert_eq!(
        answered(&invoke(&t, bytes.as_bytes(), INSTANCE)),
        json!({"recorded": null, "skipped": "recorded already"}),
        "EventBridge may deliver twice"
    );
    assert_eq!(t.lines(), lines, "the redelivery wrote nothing");

    let trail = t.run(&["trail", id, "--format", "json"], b"");
    assert!(trail.status.success(), "{}", stderr(&trail));
    let rows: Value = serde_json::from_slice(&trail.stdout).expect("json");
    let last = rows.as_array().and_then(|r| r.last()).expect("rows");
    assert_eq!(last["event"], "CallEnded");
    assert!(
        last["answer"].as_str().unwrap_or("").contains(&ended_text),
        "{last}"
    );

    // The hang-up is exact: abandoned at once (no ten-minute guess), at the question that was
    // pending, ended at Connect's disconnect time.
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let calls = t.run(
        &[
            "calls", "--from", &today, "--to", &today, "--format", "json",
        ],
        b"",
    );
    assert!(calls.status.success(), "{}", stderr(&calls));
    let rows: Value = serde_json::from_slice(&calls.stdout).expect("json");
    let row = rows
        .as_array()
        .and_then(|r| r.iter().find(|c| c["contact_id"] == id))
        .expect("the call is listed");
    assert_eq!(row["outcome"], "abandoned", "{row}");
    assert_eq!(row["ended"], ended_text.as_str(), "{row}");
    let stats = t.run(
        &[
            "stats", "--from", &today, "--to", &today, "--format", "json",
        ],
        b"",
    );
    let stats: Value = serde_json::from_slice(&stats.stdout).expect("json");
    let breathing = stats["questions"]
        .as_array()
        .and_then(|q| q.iter().find(|q| q["question"] == "breathing"))
        .expect("question 2");
    assert_eq!(
        breathing["hangups"], 1,
        "hung up at question 2: {breathing}"
    );
}

#[test]
fn what_is_not_ours_to_record_records_nothing() {
    let t = Triage::new();
    a_started_call(&t, "4a573372-1f28-4e26-b97b-000000000101");
    let lines = t.lines();
    let cases = [
        (
            fixture("disconnected-after-queue.json"),
            INSTANCE,
            "a contact this service never saw",
        ),
        (
            fixture("initiated-voice.json"),
            INSTANCE,
            "not a DISCONNECTED event",
        ),
        (
            fixture("disconnected-voice-inbound.json"),
            "arn:aws:connect:us-east-1:111122223333:instance/another",
            "another Connect instance",
        ),
        (
            fixture("disconnected-chat.json"),
            INSTANCE,
            "a contact this service never saw",
        ),
    ];
    for (event, instance, why) in cases {
        let out = answered(&invoke(&t, event.to_string().as_bytes(), instance));
        assert_eq!(out, json!({"recorded": null, "skipped": why}), "{why}");
    }
    assert_eq!(t.lines(), lines, "nothing written");
}

#[test]
fn bad_contact_events_are_one_line_errors_and_write_nothing() {
    let t = Triage::new();
    let mut no_id = fixture("disconnected-voice-inbound.json");
    no_id["detail"]
        .as_object_mut()
        .expect("detail")
        .remove("contactId");
    for (input, says) in [
        (no_id.to_string(), "contactId"),
        (
            json!({"detail-type": "Amazon Connect Contact Event"}).to_string(),
            "no detail",
        ),
        ("not json".to_string(), "not JSON"),
    ] {
        let out = invoke(&t, input.as_bytes(), INSTANCE);
        assert!(!out.status.success(), "{says}");
        let err = stderr(&out);
        assert!(err.contains(says), "{says}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    assert_eq!(t.lines(), 0);
}
