//! Answers said to the answers bot (issue 17, point 2, the Lambda's side): the real
//! `bootstrap` under a Runtime API gets what the flow passes after
//! `ConnectParticipantWithLexBot` (`intent`, `confidence`, `input_mode`, `dtmf`) and records
//! how each answer was given; a fallback, an empty result or a low confidence is asked
//! again like an invalid key and records no answer; the trail shows the mode.

use crate::cli::run_triage;
use crate::events::{contact_event, field, new_contact_id};
use crate::runtime_api::{stop_and_collect_logs, RuntimeApi};
use serde_json::Value;

#[tokio::test]
async fn spoken_answers_are_recorded_with_their_mode_and_confidence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("file:{}", dir.path().join("events.jsonl").display());
    let api = RuntimeApi::start().await;
    let child = api.spawn_bootstrap(&[("TRIAGE_STORE", &store)]);
    let cid = new_contact_id();
    let first = api
        .invoke(&contact_event(&cid, &[("lang", "es")]))
        .await
        .expect("first turn");
    assert_eq!(field(&first, "question"), "contact");
    let mut last = first;
    let steps: [(&[(&str, &str)], &str); 6] = [
        // Said "sí", heard as Yes at 0.87: question 1 answered.
        (
            &[
                ("intent", "Yes"),
                ("confidence", "0.87"),
                ("input_mode", "Speech"),
            ],
            "breathing",
        ),
        // Not understood (the fallback intent), then not sure enough (0.41): asked again.
        (
            &[
                ("intent", "FallbackIntent"),
                ("confidence", ""),
                ("input_mode", "Speech"),
            ],
            "breathing",
        ),
        (
            &[
                ("intent", "No"),
                ("confidence", "0.41"),
                ("input_mode", "Speech"),
            ],
            "breathing",
        ),
        // An empty Lex result: asked again too.
        (&[("intent", ""), ("input_mode", "Speech")], "breathing"),
        // A key pressed to the bot: a keyed answer.
        (
            &[
                ("intent", "FallbackIntent"),
                ("input_mode", "DTMF"),
                ("dtmf", "0"),
            ],
            "taste_smell",
        ),
        // "salir": the call ends as exited.
        (
            &[
                ("intent", "Leave"),
                ("confidence", "0.93"),
                ("input_mode", "Speech"),
            ],
            "",
        ),
    ];
    for (i, (params, next)) in steps.iter().enumerate() {
        let turn = field(&last, "turn").to_string();
        let mut p: Vec<(&str, &str)> = vec![("turn", turn.as_str()), ("lang", "es")];
        p.extend(params.iter().copied());
        let r = api.invoke(&contact_event(&cid, &p)).await.expect("turn");
        if next.is_empty() {
            assert_eq!(field(&r, "continue"), "0", "{r}");
            assert_eq!(field(&r, "outcome"), "exited", "{r}");
        } else {
            assert_eq!(field(&r, "question"), *next, "step {i}: {r}");
        }
        if i == 1 {
            assert!(field(&r, "text").starts_with("No he entendido"), "{r}");
        }
        last = r;
    }
    let logs = stop_and_collect_logs(child).await;

    let trail = run_triage(&store, &["trail", &cid, "--format", "json"], b"");
    assert!(trail.status.success());
    let trail: Value = serde_json::from_slice(&trail.stdout).expect("trail JSON");
    let rows: Vec<(String, String)> = trail
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["event"].as_str().unwrap_or_default().to_string(),
                r["answer"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let answers: Vec<&(String, String)> = rows
        .iter()
        .filter(|(e, _)| e != "CallStarted" && e != "TriageConcluded")
        .collect();
    assert_eq!(
        answers
            .iter()
            .map(|(e, a)| format!("{e}={a}"))
            .collect::<Vec<_>>(),
        [
            "AnswerRecorded=yes (speech 87%)",
            "InputRejected=invalid (speech:fallback)",
            "InputRejected=invalid (speech:No)",
            "InputRejected=invalid (speech:none)",
            "AnswerRecorded=no",
            "CallExited=*",
        ],
        "{rows:?}"
    );
    // The stored events: mode and confidence on the spoken answer, schema 2, no transcript.
    let log = std::fs::read_to_string(dir.path().join("events.jsonl")).expect("log");
    let spoken: Value = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("line"))
        .find(|e| e["type"] == "AnswerRecorded" && e["question"] == "contact")
        .expect("the spoken answer");
    assert_eq!(
        (
            spoken["mode"].clone(),
            spoken["confidence_pct"].clone(),
            spoken["raw"].clone(),
            spoken["schema"].clone()
        ),
        ("speech".into(), 87.into(), "1".into(), 2.into())
    );
    assert!(!logs.contains("0.87"), "the logs hold no answers");
}

/// A schema-1 log (every answer keyed, no `mode`) still reads: upcast, each answer `dtmf`.
#[test]
fn schema_one_answers_read_as_keyed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.jsonl");
    let cid = "5a1f3c2e-0000-4000-8000-000000000001";
    let lines = [
        format!(
            r#"{{"contact_id":"{cid}","seq":1,"event_id":"01900000-0000-7000-8000-000000000001","at":"2026-03-01T10:00:00.000Z","schema":1,"turn":0,"type":"CallStarted","questionnaire":"covid19","questionnaire_version":1,"lang":"es"}}"#
        ),
        format!(
            r#"{{"contact_id":"{cid}","seq":2,"event_id":"01900000-0000-7000-8000-000000000002","at":"2026-03-01T10:00:05.000Z","schema":1,"turn":1,"type":"AnswerRecorded","question":"contact","yes":true,"raw":"1"}}"#
        ),
    ];
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    let store = format!("file:{}", path.display());
    let out = run_triage(&store, &["trail", cid, "--format", "json"], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trail: Value = serde_json::from_slice(&out.stdout).expect("trail JSON");
    assert_eq!(trail[1]["answer"], "yes", "{trail}");
    assert_eq!(trail[1]["score"], 15, "{trail}");
}
