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
        let (decision, _) = decide(Questionnaire::embedded(), &state, &inv);
        match decision {
            Decision::Record(kinds) => {
                let events = Event::stamp(state.version, kinds, now, &mut new_id);
                assert_eq!(state.version, self.events.len() as u64);
                let reply = reply_recorded(state, &events).expect("reply");
                self.events.extend(events);
                reply
            }
            Decision::Replay { upto, .. } => {
                reply_replayed(state, &self.events, upto).expect("reply")
            }
        }
    }

    fn recorded(&self) -> Vec<&'static str> {
        self.events.iter().map(|e| e.kind.name()).collect()
    }
}

fn turn_of(r: &Reply) -> String {
    r.turn().expect("a turn while the call goes on").to_string()
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
        let mut prompts = vec![reply.text()];
        let mut used = 0;
        for digit in row.digits.chars() {
            if !reply.goes_on() {
                break;
            }
            let turn = turn_of(&reply);
            reply = sim.invoke(Some(&turn), Some(&digit.to_string()));
            used += 1;
            if reply.goes_on() {
                prompts.push(reply.text());
            }
        }
        let path = &row.digits;
        assert!(!reply.goes_on(), "{path}: call must be over");
        assert_eq!(
            reply.outcome().map(|o| o.to_string()),
            Some(row.outcome.clone()),
            "{path}"
        );
        assert_eq!(reply.score(), row.score, "{path}: score");
        assert_eq!(used, row.used, "{path}: answers taken");
        assert_eq!(
            prompts, row.prompts,
            "{path}: prompts as the seed words them"
        );
        if let Some(text) = &row.final_text {
            assert_eq!(&reply.text(), text, "{path}: final message");
            yes_no_paths += 1;
        }
        // The recorded trail folds to what the caller was told.
        let state = CallState::fold(&sim.events).expect("fold");
        assert_eq!(
            (state.outcome, state.score),
            (reply.outcome(), reply.score())
        );
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
    assert_eq!(third.score(), 15);
}

#[test]
fn invalid_input_is_recorded_and_the_question_asked_again() {
    for bad in ["7", "#", "١", "11", "yes"] {
        let mut sim = Sim::default();
        let q1 = sim.invoke(None, None);
        let again = sim.invoke(Some(&turn_of(&q1)), Some(bad));
        assert!(again.goes_on(), "{bad}");
        assert_eq!(again.question(), q1.question(), "{bad}: same question");
        assert!(again.text().starts_with("No he entendido"), "{bad}");
        assert!(again.text().ends_with(&q1.text()), "{bad}");
        assert_ne!(again.turn(), q1.turn(), "{bad}: a new turn");
        assert_eq!(sim.recorded(), ["CallStarted", "InputRejected"]);
        // The retry of the rejected turn repeats the re-ask, value for value.
        assert_eq!(sim.invoke(Some(&turn_of(&q1)), Some(bad)), again);
        let next = sim.invoke(Some(&turn_of(&again)), Some("1"));
        assert_eq!((next.score(), next.question()), (15, Some("breathing")));
    }
}

#[test]
fn a_huge_answer_is_rejected_and_kept_short() {
    let mut sim = Sim::default();
    let q1 = sim.invoke(None, None);
    let huge = "7".repeat(100 * 1024);
    let again = sim.invoke(Some(&turn_of(&q1)), Some(&huge));
    assert!(again.goes_on());
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
        assert_eq!((r.score(), r.question()), (0, Some("breathing")), "{no:?}");
    }
    // No answer at all with the current turn is also a no.
    let mut sim = Sim::default();
    let q1 = sim.invoke(None, None);
    let r = sim.invoke(Some(&turn_of(&q1)), None);
    assert_eq!(r.question(), Some("breathing"));
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
    assert_eq!(r.score(), 15);
    let r = sim.invoke(None, Some("1"));
    assert_eq!(r.score(), 40);
}

#[test]
fn star_leaves_with_the_running_score() {
    let mut sim = Sim::default();
    let q1 = sim.invoke(None, None);
    let q2 = sim.invoke(Some(&turn_of(&q1)), Some("1"));
    let end = sim.invoke(Some(&turn_of(&q2)), Some("*"));
    assert_eq!(
        (end.goes_on(), end.outcome(), end.score()),
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
        assert!(r.goes_on());
        r = sim.invoke(Some(&turn_of(&r)), Some("#"));
    }
    assert_eq!(r.outcome(), Some(Outcome::Exited));
    assert_eq!(sim.events.len() as u32, 1 + max + 1);
}

#[test]
fn english_calls_keep_their_language() {
    let mut sim = Sim::default();
    let q1 = sim.invoke_with(Invocation {
        lang: Some(Lang::En),
        ..Invocation::default()
    });
    assert!(q1.text().starts_with("Press 1 if you have been in contact"));
    let r = sim.invoke(Some(&turn_of(&q1)), Some("1"));
    assert!(
        r.text().starts_with("Press 1 if you have difficulty"),
        "{}",
        r.text()
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
    let (_, warning) = decide(Questionnaire::embedded(), &state, &inv);
    assert_eq!(warning, Some(Warning::AnswerBeforeFirstQuestion));
    let r = sim.invoke_with(inv);
    assert_eq!((r.score(), r.question()), (0, Some("contact")));
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

/// The decider in given/when/then form: given the events of earlier turns, when one
/// invocation comes, then exactly these events are decided (or this reply is replayed).
mod given_when_then {
    use super::*;

    /// A history: each inner list is one turn's events, stamped as the app stamps them.
    struct Given {
        events: Vec<Event>,
    }

    fn given(turns: Vec<Vec<EventKind>>) -> Given {
        let mut events = Vec::new();
        let at = Utc
            .timestamp_millis_opt(1_764_000_000_000)
            .single()
            .expect("time");
        let mut ids = 0u128;
        for kinds in turns {
            let mut new_id = || {
                ids += 1;
                Uuid::from_u128(ids)
            };
            let stamped = Event::stamp(events.len() as u64, kinds, at, &mut new_id);
            events.extend(stamped);
        }
        Given { events }
    }

    impl Given {
        fn when(&self, turn: Option<&str>, answer: Option<&str>) -> Decision {
            self.when_invoked(Invocation {
                turn: turn.map(String::from),
                answer: answer.map(String::from),
                ..Invocation::default()
            })
        }

        fn when_invoked(&self, inv: Invocation) -> Decision {
            let state = CallState::fold(&self.events).expect("the given history folds");
            decide(Questionnaire::embedded(), &state, &inv).0
        }
    }

    fn started() -> EventKind {
        EventKind::CallStarted {
            questionnaire: "covid19".into(),
            questionnaire_version: 1,
            lang: Lang::Es,
            facts: CallFacts::default(),
        }
    }

    fn answer(question: &str, yes: bool) -> EventKind {
        EventKind::AnswerRecorded {
            question: question.into(),
            yes,
            raw: if yes { "1" } else { "0" }.into(),
            mode: Default::default(),
            confidence_pct: None,
        }
    }

    fn rejected(question: &str, raw: &str) -> EventKind {
        EventKind::InputRejected {
            question: question.into(),
            raw: raw.into(),
            raw_len: raw.len() as u64,
        }
    }

    fn concluded(outcome: Outcome, score: u32) -> EventKind {
        EventKind::TriageConcluded {
            outcome,
            score,
            reason: None,
        }
    }

    const QUESTIONS: [&str; 7] = [
        "contact",
        "breathing",
        "taste_smell",
        "fever",
        "muscle_fatigue",
        "dry_cough",
        "headache",
    ];

    #[test]
    fn a_first_invocation_starts_the_call_with_its_facts() {
        let facts = CallFacts {
            channel: Some("VOICE".into()),
            caller_hash: Some("ab".repeat(32)),
            ..CallFacts::default()
        };
        let decided = given(vec![]).when_invoked(Invocation {
            lang: Some(Lang::En),
            facts: facts.clone(),
            ..Invocation::default()
        });
        assert_eq!(
            decided,
            Decision::Record(vec![EventKind::CallStarted {
                questionnaire: "covid19".into(),
                questionnaire_version: 1,
                lang: Lang::En,
                facts,
            }])
        );
    }

    #[test]
    fn a_yes_to_the_pending_question_is_recorded() {
        assert_eq!(
            given(vec![vec![started()]]).when(Some("1"), Some("1")),
            Decision::Record(vec![answer("contact", true)])
        );
    }

    #[test]
    fn the_answer_that_reaches_fifty_concludes_hospital_at_once() {
        // 15 + 25 = 40, then taste_smell (15) makes 55.
        let history = given(vec![
            vec![started()],
            vec![answer("contact", true)],
            vec![answer("breathing", true)],
        ]);
        assert_eq!(
            history.when(Some("3"), Some("1")),
            Decision::Record(vec![
                answer("taste_smell", true),
                concluded(Outcome::Hospital, 55)
            ])
        );
    }

    #[test]
    fn the_last_answer_concludes_monitor_at_twenty_five_and_clear_below() {
        let mut turns = vec![vec![started()], vec![answer("contact", true)]];
        for q in &QUESTIONS[1..6] {
            turns.push(vec![answer(q, false)]);
        }
        let history = given(turns);
        // 15 so far; a yes to headache (10) makes 25: monitor.
        assert_eq!(
            history.when(Some("7"), Some("1")),
            Decision::Record(vec![
                answer("headache", true),
                concluded(Outcome::Monitor, 25)
            ])
        );
        assert_eq!(
            history.when(Some("7"), Some("0")),
            Decision::Record(vec![
                answer("headache", false),
                concluded(Outcome::Clear, 15)
            ])
        );
    }

    #[test]
    fn star_exits_at_the_pending_question_with_the_running_score() {
        let history = given(vec![vec![started()], vec![answer("contact", true)]]);
        assert_eq!(
            history.when(Some("2"), Some("*")),
            Decision::Record(vec![
                EventKind::CallExited {
                    question: "breathing".into()
                },
                concluded(Outcome::Exited, 15)
            ])
        );
    }

    #[test]
    fn an_invalid_key_is_rejected_and_too_many_end_the_call() {
        assert_eq!(
            given(vec![vec![started()]]).when(Some("1"), Some("7")),
            Decision::Record(vec![rejected("contact", "7")])
        );
        let max = Questionnaire::embedded().max_rejections as usize;
        let mut turns = vec![vec![started()]];
        turns.extend((1..max).map(|_| vec![rejected("contact", "#")]));
        let history = given(turns);
        let turn = max.to_string();
        assert_eq!(
            history.when(Some(&turn), Some("#")),
            Decision::Record(vec![
                rejected("contact", "#"),
                EventKind::TriageConcluded {
                    outcome: Outcome::Exited,
                    score: 0,
                    reason: Some("too_many_invalid_inputs".into())
                }
            ])
        );
    }

    #[test]
    fn an_answered_turn_again_is_a_retry_that_records_nothing() {
        let history = given(vec![
            vec![started()],
            vec![answer("contact", true)],
            vec![answer("breathing", false)],
        ]);
        assert_eq!(
            history.when(Some("1"), Some("1")),
            Decision::Replay {
                upto: 2,
                reason: ReplayReason::Retry(1)
            }
        );
        assert_eq!(
            history.when(None, None),
            Decision::Replay {
                upto: 1,
                reason: ReplayReason::Retry(0)
            },
            "no token, no answer: the first invocation again"
        );
    }

    #[test]
    fn a_turn_never_issued_records_nothing() {
        let history = given(vec![vec![started()]]);
        for turn in ["999", "abc", "-1"] {
            assert_eq!(
                history.when(Some(turn), Some("1")),
                Decision::Replay {
                    upto: 1,
                    reason: ReplayReason::UnknownTurn
                },
                "{turn}"
            );
        }
    }

    #[test]
    fn a_concluded_call_records_nothing_more() {
        let history = given(vec![
            vec![started()],
            vec![
                EventKind::CallExited {
                    question: "contact".into(),
                },
                concluded(Outcome::Exited, 0),
            ],
        ]);
        assert_eq!(
            history.when(Some("3"), Some("1")),
            Decision::Replay {
                upto: 3,
                reason: ReplayReason::Concluded
            }
        );
    }

    #[test]
    fn the_envelope_is_stamped_in_order_for_the_turn_it_answers() {
        let at = Utc
            .timestamp_millis_opt(1_764_000_000_123)
            .single()
            .expect("time");
        let mut n = 0u128;
        let events = Event::stamp(
            4,
            vec![answer("fever", true), concluded(Outcome::Hospital, 50)],
            at,
            &mut || {
                n += 1;
                Uuid::from_u128(n)
            },
        );
        let envelopes: Vec<(u64, u64, u128, u16)> = events
            .iter()
            .map(|e| (e.seq, e.turn, e.event_id.as_u128(), e.schema))
            .collect();
        assert_eq!(
            envelopes,
            [(5, 4, 1, SCHEMA_VERSION), (6, 4, 2, SCHEMA_VERSION)]
        );
        assert!(events.iter().all(|e| e.at == at));
    }
}

/// `CallEnded`: Connect's DISCONNECTED, recorded once for a call this service started.
mod call_ended {
    use super::*;

    fn stamped(kinds: Vec<Vec<EventKind>>) -> Vec<Event> {
        let at = Utc
            .timestamp_millis_opt(1_764_000_000_000)
            .single()
            .expect("time");
        let mut events = Vec::new();
        let mut n = 0u128;
        for turn in kinds {
            let more = Event::stamp(events.len() as u64, turn, at, &mut || {
                n += 1;
                Uuid::from_u128(n)
            });
            events.extend(more);
        }
        events
    }

    fn started() -> EventKind {
        EventKind::CallStarted {
            questionnaire: "covid19".into(),
            questionnaire_version: 1,
            lang: Lang::Es,
            facts: CallFacts::default(),
        }
    }

    fn ended() -> EventKind {
        EventKind::CallEnded {
            ended_at: Utc
                .timestamp_millis_opt(1_764_000_100_000)
                .single()
                .expect("time"),
            disconnect_reason: None,
        }
    }

    #[test]
    fn a_started_call_ends_once_and_nothing_follows() {
        let at = Utc
            .timestamp_millis_opt(1_764_000_100_000)
            .single()
            .expect("time");
        let history = stamped(vec![vec![started()]]);
        let state = CallState::fold(&history).expect("folds");
        assert_eq!(decide_ended(&state, at, None), Some(ended()));
        let history = stamped(vec![vec![started()], vec![ended()]]);
        let state = CallState::fold(&history).expect("ended folds");
        assert_eq!(state.ended.as_ref().map(|e| e.0), Some(at));
        assert_eq!(decide_ended(&state, at, None), None, "once");
        // A late retry of the first turn after the hang-up records nothing.
        let (decision, _) = decide(
            Questionnaire::embedded(),
            &state,
            &Invocation {
                turn: Some("1".into()),
                answer: Some("1".into()),
                ..Invocation::default()
            },
        );
        assert!(matches!(
            decision,
            Decision::Replay {
                reason: ReplayReason::Ended,
                ..
            }
        ));
        assert!(CallState::fold(&stamped(vec![
            vec![started()],
            vec![ended()],
            vec![ended()]
        ]))
        .is_err());
    }

    #[test]
    fn a_call_ends_after_its_conclusion_too_but_never_before_it_starts() {
        let concluded = stamped(vec![
            vec![started()],
            vec![
                EventKind::CallExited {
                    question: "contact".into(),
                },
                EventKind::TriageConcluded {
                    outcome: Outcome::Exited,
                    score: 0,
                    reason: None,
                },
            ],
            vec![ended()],
        ]);
        let state = CallState::fold(&concluded).expect("the flow disconnects after the message");
        assert_eq!(state.outcome, Some(Outcome::Exited));
        assert!(state.ended.is_some());
        let at = Utc
            .timestamp_millis_opt(1_764_000_100_000)
            .single()
            .expect("time");
        assert_eq!(
            decide_ended(&CallState::default(), at, None),
            None,
            "never seen"
        );
        assert!(CallState::fold(&stamped(vec![vec![ended()]])).is_err());
    }
}
