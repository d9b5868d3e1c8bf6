//! Where a call's audio is (issue 17, point 4, the Lambda's side): the real `bootstrap`
//! records `Details.ContactData.MediaStreams.Customer.Audio` once per call as
//! `AudioStreamed`, before the turn's other events; a stream of another prefix, or a block
//! that does not read, is a logged skip and the turn is served as ever.

use crate::cli::run_triage;
use crate::events::{contact_event, field, new_contact_id};
use crate::runtime_api::{stop_and_collect_logs, RuntimeApi};
use serde_json::{json, Value};

const OURS: &str =
    "arn:aws:kinesisvideo:eu-west-1:123456789012:stream/connect-triage-connect-line-contact-7d1e/1571360125131";
const THEIRS: &str =
    "arn:aws:kinesisvideo:eu-west-1:123456789012:stream/elsewhere-connect-line-contact-7d1e/1571360125131";

fn with_media(mut ev: Value, media: Value) -> Value {
    ev["Details"]["ContactData"]["MediaStreams"] = media;
    ev
}

fn audio(arn: &str) -> Value {
    json!({"Customer": {"Audio": {
        "StartFragmentNumber": "91343852333181432392682062622220590765191907586",
        "StartTimestamp": "1571360125131",
        "StreamARN": arn
    }}})
}

fn events_of(log: &str, cid: &str) -> Vec<Value> {
    log.lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("line"))
        .filter(|e| e["contact_id"] == cid)
        .collect()
}

#[tokio::test]
async fn the_calls_audio_is_recorded_once_and_only_from_our_streams() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.jsonl");
    let store = format!("file:{}", path.display());
    let api = RuntimeApi::start().await;
    let child = api.spawn_bootstrap(&[
        ("TRIAGE_STORE", &store),
        ("TRIAGE_AUDIO_STREAM_PREFIX", "connect-triage"),
    ]);
    // Ours: recorded with the first turn, not again with the second.
    let a = new_contact_id();
    let first = api
        .invoke(&with_media(contact_event(&a, &[]), audio(OURS)))
        .await
        .expect("first turn");
    assert_eq!(field(&first, "question"), "contact");
    let turn = field(&first, "turn").to_string();
    let second = api
        .invoke(&with_media(
            contact_event(&a, &[("answer", "1"), ("turn", &turn)]),
            audio(OURS),
        ))
        .await
        .expect("second turn");
    assert_eq!(field(&second, "question"), "breathing");
    // Another prefix, and a block that does not read: skipped, the call goes on.
    let b = new_contact_id();
    let r = api
        .invoke(&with_media(contact_event(&b, &[]), audio(THEIRS)))
        .await
        .expect("turn");
    assert_eq!(field(&r, "question"), "contact");
    let c = new_contact_id();
    let r = api
        .invoke(&with_media(
            contact_event(&c, &[]),
            json!({"Customer": {"Audio": "rtp://10.0.0.1"}}),
        ))
        .await
        .expect("turn");
    assert_eq!(field(&r, "question"), "contact");
    let logs = stop_and_collect_logs(child).await;
    assert!(logs.contains("not one of this stack's"), "{logs}");
    assert!(logs.contains("MediaStreams does not read"), "{logs}");

    let log = std::fs::read_to_string(&path).expect("log");
    let kinds = |cid: &str| -> Vec<String> {
        events_of(&log, cid)
            .iter()
            .map(|e| e["type"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(
        kinds(&a),
        ["CallStarted", "AudioStreamed", "AnswerRecorded"]
    );
    assert_eq!(kinds(&b), ["CallStarted"]);
    assert_eq!(kinds(&c), ["CallStarted"]);
    let streamed = events_of(&log, &a)
        .into_iter()
        .find(|e| e["type"] == "AudioStreamed")
        .expect("the audio event");
    assert_eq!(streamed["stream_arn"], OURS);
    assert_eq!(
        streamed["start_fragment"],
        "91343852333181432392682062622220590765191907586"
    );
    assert_eq!(streamed["stream_started_at"], "2019-10-18T00:55:25.131Z");
    let trail = run_triage(&store, &["trail", &a, "--format", "json"], b"");
    assert!(trail.status.success());
    let trail = String::from_utf8_lossy(&trail.stdout);
    assert!(
        trail.contains("audio: connect-triage-connect-line-contact-7d1e/1571360125131 from fragment 91343852333181432392682062622220590765191907586"),
        "{trail}"
    );
}
