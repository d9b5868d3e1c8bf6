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

/// `triage call --say` in both languages: the deployed flow asks through
/// `ConnectParticipantWithLexBot`, the local twin of connect/lex-bot.json matches the words
/// (case, accents and punctuation folded), the code hook tells keys from speech, and the
/// trail records how each answer was given. A word the bot does not know in that language
/// is asked again; never a recorded answer the caller did not give.
#[test]
fn triage_call_say_answers_by_voice_in_both_languages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("file:{}", dir.path().join("events.jsonl").display());
    // Spanish: sí (yes), NO (no), "¡Claro que sí!" (yes), 1 pressed to the bot (yes, keyed),
    // "nope" (an English word: not understood, asked again), then "Salir." (leave).
    let out = run_triage(
        &store,
        &["call", "--say", "sí,NO,¡Claro que sí!,1,nope,Salir."],
        b"",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Puede responder diciendo sí o no"), "{text}");
    for line in [
        "yes (speech 100%)",
        "no (speech 100%)",
        "invalid (speech:fallback)",
        "answers bot: FallbackIntent (keys)",
        "triage_outcome = exited",
        "triage_score = 40",
    ] {
        assert!(text.contains(line), "{line:?} missing in:\n{text}");
    }
    // The keyed answer is recorded as keyed (no "speech"), and the words are never stored.
    let events = std::fs::read_to_string(dir.path().join("events.jsonl")).expect("events");
    assert!(
        !events.contains("Claro") && !events.contains("nope"),
        "{events}"
    );
    assert_eq!(events.matches("\"mode\":\"speech\"").count(), 3, "{events}");

    // English: yes, "Nope." (no), exit.
    let out = run_triage(
        &store,
        &["call", "--lang", "en", "--say", "Yes!,Nope.,exit"],
        b"",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("You can answer by saying yes or no"),
        "{text}"
    );
    assert!(text.contains("answers bot: Leave (speech 100%)"), "{text}");
    assert!(text.contains("triage_outcome = exited"), "{text}");
    // Spanish words to the English bot are not understood.
    let out = run_triage(
        &store,
        &["call", "--lang", "en", "--say", "sí,salir,*"],
        b"",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text.matches("invalid (speech:fallback)").count(),
        2,
        "{text}"
    );
    assert!(text.contains("triage_outcome = exited"), "{text}");
}

/// `triage call --audio`: the recording notice in the caller's language before the first
/// question, media streaming, and the audio's place in the trail (once).
#[test]
fn triage_call_audio_tells_the_caller_and_records_where_the_audio_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("file:{}", dir.path().join("events.jsonl").display());
    for (lang, notice) in [
        ("es", "esta llamada se graba"),
        ("en", "this call is recorded"),
    ] {
        let out = run_triage(
            &store,
            &["call", "--lang", lang, "--audio", "--answers", "1,0,*"],
            b"",
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        let notice_at = text
            .find(notice)
            .unwrap_or_else(|| panic!("no notice: {text}"));
        assert!(
            notice_at < text.find("caller presses 1").unwrap_or(0),
            "{text}"
        );
        assert!(
            text.contains("audio streamed to Kinesis Video Streams"),
            "{text}"
        );
        assert_eq!(text.matches("AudioStreamed").count(), 1, "{text}");
    }
    // Without --audio: no notice, no stream.
    let out = run_triage(&store, &["call", "--answers", "1,0,*"], b"");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("se graba") && !text.contains("AudioStreamed"),
        "{text}"
    );
}

/// Words typed in interactive mode (`triage call --speech`) are spoken answers; keys typed
/// are keys pressed to the bot.
#[test]
fn words_typed_in_interactive_mode_are_spoken_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("file:{}", dir.path().join("events.jsonl").display());
    let out = run_triage(&store, &["call", "--speech"], "Sí\n0\nsalir\n".as_bytes());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for line in [
        "answers bot: Yes (speech 100%)",
        "answers bot: FallbackIntent (keys)",
        "answers bot: Leave (speech 100%)",
        "yes (speech 100%)",
        "triage_outcome = exited",
    ] {
        assert!(text.contains(line), "{line:?} missing in:\n{text}");
    }
}
