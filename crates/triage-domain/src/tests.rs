//! Domain tests: the seed's verdict on every answer path, and the turn/retry rules.

use super::*;
use chrono::{TimeZone, Utc};
use uuid::Uuid;

/// An in-memory call: decide, append, reply, with a fake clock and counter ids.
#[derive(Default)]
struct Sim {
    events: Vec<Event>,
    ids: u128,
}

impl Sim {
    fn invoke(&mut self, turn: Option<&str>, answer: Option<&str>) -> Reply<'static> {
        self.invoke_with(Invocation {
            turn: turn.map(String::from),
            answer: answer.map(String::from),
            ..Invocation::default()
        })
    }

    fn invoke_with(&mut self, inv: Invocation) -> Reply<'static> {
        let state = CallState::fold(&self.events).expect("history folds");
        let now = Utc
            .timestamp_millis_opt(1_764_000_000_000 + self.events.len() as i64)
            .single()
            .expect("time");
        let ids = &mut self.ids;
        let mut new_id = || {
            *ids += 1;
            Uuid::from_u128(*ids)
        };
        let (decision, _) = decide(Questionnaire::embedded(), &state, &inv, now, &mut new_id);
        let reply = reply_after(&self.events, &decision).expect("reply");
        if let Decision::Record {
            expected_version,
            events,
        } = decision
        {
            assert_eq!(expected_version, self.events.len() as u64);
            self.events.extend(events);
        }
        reply
    }

    fn recorded(&self) -> Vec<&'static str> {
        self.events.iter().map(|e| e.kind.name()).collect()
    }
}

fn turn_of(r: &Reply) -> String {
    r.turn.expect("a turn while the call goes on").to_string()
}

#[derive(serde::Deserialize)]
struct SeedRow {
    digits: String,
    used: usize,
    outcome: String,
    score: u32,
    prompts: Vec<String>,
    #[serde(default)]
    final_text: Option<String>,
}

/// Every row of the table derived from the seed's own handler (tests/seed/oracle.js):
/// all 128 yes/no paths and `*` at every question.
#[test]
fn outcome_and_score_match_the_seed_on_every_path() {
    let rows: Vec<SeedRow> =
        serde_json::from_str(include_str!("../../../tests/seed/seed_table.json")).expect("table");
    assert_eq!(rows.len(), 128 + 84, "128 yes/no paths and 84 `*` paths");
    let mut yes_no_paths = 0;
    for row in rows {
        let mut sim = Sim::default();
        let mut reply = sim.invoke(None, None);
        let mut prompts = vec![reply.text];
        let mut used = 0;
        for digit in row.digits.chars() {
            if !reply.cont {
                break;
            }
            let turn = turn_of(&reply);
            reply = sim.invoke(Some(&turn), Some(&digit.to_string()));
            used += 1;
            if reply.cont {
                prompts.push(reply.text);
            }
        }
        let path = &row.digits;
        assert!(!reply.cont, "{path}: call must be over");
        assert_eq!(
            reply.outcome.map(|o| o.to_string()),
            Some(row.outcome.clone()),
            "{path}"
        );
        assert_eq!(reply.score, row.score, "{path}: score");
        assert_eq!(used, row.used, "{path}: answers taken");
        assert_eq!(
            prompts, row.prompts,
            "{path}: prompts as the seed words them"
        );
        if let Some(text) = &row.final_text {
            assert_eq!(&reply.text, text, "{path}: final message");
            yes_no_paths += 1;
        }
        // The recorded trail folds to what the caller was told.
        let state = CallState::fold(&sim.events).expect("fold");
        assert_eq!((state.outcome, state.score), (reply.outcome, reply.score));
    }
    assert_eq!(yes_no_paths, 128);
}

#[test]
fn a_retried_turn_records_nothing_and_answers_value_for_value() {
    let mut sim = Sim::default();
    let first = sim.invoke(None, None);
    assert_eq!(
        sim.invoke(None, None),
        first,
        "retry of the first invocation"
    );
    // A flow passes empty strings for what is not set yet: still the first invocation.
    assert_eq!(sim.invoke(Some(""), Some("")), first);
    assert_eq!(sim.events.len(), 1);
    let t1 = turn_of(&first);
    let second = sim.invoke(Some(&t1), Some("1"));
    let n = sim.events.len();
    assert_eq!(sim.invoke(Some(&t1), Some("1")), second);
    assert_eq!(sim.events.len(), n, "a retry records nothing");
    // An older turn still gets its own first reply, even after the call moved on.
    let t2 = turn_of(&second);
    let third = sim.invoke(Some(&t2), Some("0"));
    assert_eq!(sim.invoke(Some(&t1), Some("1")), second);
    assert_eq!(sim.invoke(Some(&t2), Some("0")), third);
    assert_eq!(third.score, 15);
}

#[test]
fn invalid_input_is_recorded_and_the_question_asked_again() {
    for bad in ["7", "#", "١", "11", "yes"] {
        let mut sim = Sim::default();
        let q1 = sim.invoke(None, None);
        let again = sim.invoke(Some(&turn_of(&q1)), Some(bad));
        assert!(again.cont, "{bad}");
        assert_eq!(again.question, q1.question, "{bad}: same question");
        assert!(again.text.starts_with("No he entendido"), "{bad}");
        assert!(again.text.ends_with(&q1.text), "{bad}");
        assert_ne!(again.turn, q1.turn, "{bad}: a new turn");
        assert_eq!(sim.recorded(), ["CallStarted", "InputRejected"]);
        // The retry of the rejected turn repeats the re-ask, value for value.
        assert_eq!(sim.invoke(Some(&turn_of(&q1)), Some(bad)), again);
        let next = sim.invoke(Some(&turn_of(&again)), Some("1"));
        assert_eq!((next.score, next.question), (15, Some("breathing")));
    }
}

#[test]
fn a_huge_answer_is_rejected_and_kept_short() {
    let mut sim = Sim::default();
    let q1 = sim.invoke(None, None);
    let huge = "7".repeat(100 * 1024);
    let again = sim.invoke(Some(&turn_of(&q1)), Some(&huge));
    assert!(again.cont);
    match &sim.events[1].kind {
        EventKind::InputRejected { raw, raw_len, .. } => {
            assert_eq!((raw.len(), *raw_len), (16, 100 * 1024));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn timeout_empty_and_zero_are_no() {
    for no in ["0", "Timeout", "", " 0 ", "TIMEOUT"] {
        let mut sim = Sim::default();
        let q1 = sim.invoke(None, None);
        let r = sim.invoke(Some(&turn_of(&q1)), Some(no));
        assert_eq!((r.score, r.question), (0, Some("breathing")), "{no:?}");
    }
    // No answer at all with the current turn is also a no.
    let mut sim = Sim::default();
    let q1 = sim.invoke(None, None);
    let r = sim.invoke(Some(&turn_of(&q1)), None);
    assert_eq!(r.question, Some("breathing"));
}

#[test]
fn unknown_future_or_malformed_turns_record_nothing() {
    let mut sim = Sim::default();
    let q1 = sim.invoke(None, None);
    for turn in ["-1", "abc", "999", "18446744073709551616", "1.0"] {
        let r = sim.invoke(Some(turn), Some("1"));
        assert_eq!(r, q1, "{turn}: the current prompt again");
    }
    assert_eq!(sim.recorded(), ["CallStarted"]);
}

#[test]
fn a_flow_without_turn_tokens_still_works() {
    let mut sim = Sim::default();
    sim.invoke(None, None);
    let r = sim.invoke(None, Some("1"));
    assert_eq!(r.score, 15);
    let r = sim.invoke(None, Some("1"));
    assert_eq!(r.score, 40);
}

#[test]
fn star_leaves_with_the_running_score() {
    let mut sim = Sim::default();
    let q1 = sim.invoke(None, None);
    let q2 = sim.invoke(Some(&turn_of(&q1)), Some("1"));
    let end = sim.invoke(Some(&turn_of(&q2)), Some("*"));
    assert_eq!(
        (end.cont, end.outcome, end.score),
        (false, Some(Outcome::Exited), 15)
    );
    assert_eq!(
        sim.recorded(),
        [
            "CallStarted",
            "AnswerRecorded",
            "CallExited",
            "TriageConcluded"
        ]
    );
    // Anything after the end gets the final reply again and records nothing.
    assert_eq!(sim.invoke(None, Some("1")), end);
    assert_eq!(sim.invoke(Some("77"), Some("1")), end);
    assert_eq!(sim.events.len(), 4);
}

#[test]
fn endless_invalid_input_ends_the_call() {
    let mut sim = Sim::default();
    let mut r = sim.invoke(None, None);
    let max = Questionnaire::embedded().max_rejections;
    for _ in 0..max {
        assert!(r.cont);
        r = sim.invoke(Some(&turn_of(&r)), Some("#"));
    }
    assert_eq!(r.outcome, Some(Outcome::Exited));
    assert_eq!(sim.events.len() as u32, 1 + max + 1);
}

#[test]
fn english_calls_keep_their_language() {
    let mut sim = Sim::default();
    let q1 = sim.invoke_with(Invocation {
        lang: Some(Lang::En),
        ..Invocation::default()
    });
    assert!(q1.text.starts_with("Press 1 if you have been in contact"));
    let r = sim.invoke(Some(&turn_of(&q1)), Some("1"));
    assert!(
        r.text.starts_with("Press 1 if you have difficulty"),
        "{}",
        r.text
    );
}

#[test]
fn an_answer_on_the_first_invocation_is_not_recorded() {
    let mut sim = Sim::default();
    let state = CallState::default();
    let inv = Invocation {
        answer: Some("1".into()),
        ..Invocation::default()
    };
    let (_, warning) = decide(
        Questionnaire::embedded(),
        &state,
        &inv,
        Utc::now(),
        &mut Uuid::now_v7,
    );
    assert_eq!(warning, Some(Warning::AnswerBeforeFirstQuestion));
    let r = sim.invoke_with(inv);
    assert_eq!((r.score, r.question), (0, Some("contact")));
}

#[test]
fn broken_streams_do_not_fold() {
    let mut sim = Sim::default();
    let q1 = sim.invoke(None, None);
    sim.invoke(Some(&turn_of(&q1)), Some("1"));
    let mut gap = sim.events.clone();
    gap[1].seq = 5;
    assert!(CallState::fold(&gap)
        .unwrap_err()
        .why
        .contains("expected seq 2"));
    let mut headless = sim.events.clone();
    headless.remove(0);
    headless[0].seq = 1;
    assert!(CallState::fold(&headless).is_err());
}
