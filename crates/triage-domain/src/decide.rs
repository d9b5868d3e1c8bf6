//! `decide`: given a call's state and one invocation, either what happened (the events to
//! record, without their envelope: [`crate::Event::stamp`] adds seq, id and time) or the
//! point in the stream whose reply must be given again (a retry). Pure: no clock, no ids.
//! The rules are those of the Connect contract (docs/contracts.md, "The turn").

use super::event::{bounded_raw, CallFacts, EventKind, Outcome};
use super::questionnaire::{Lang, Questionnaire};
use super::state::CallState;
use chrono::{DateTime, Utc};

/// The caller's input, as Connect stored it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Yes,
    No,
    Exit,
    Invalid,
}

impl Answer {
    /// `1` yes; `0`, `Timeout` or empty: no; `*`: leave; anything else is invalid.
    pub fn parse(raw: &str) -> Answer {
        let s = raw.trim_matches(|c: char| c.is_ascii_whitespace());
        match s {
            "1" => Answer::Yes,
            "" | "0" => Answer::No,
            "*" => Answer::Exit,
            _ if s.eq_ignore_ascii_case("timeout") => Answer::No,
            _ => Answer::Invalid,
        }
    }
}

/// The `turn` parameter of an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnArg {
    Absent,
    Token(u64),
    /// Present but not a turn this service could have issued (`abc`, `-1`, ...).
    Malformed,
}

impl TurnArg {
    pub fn parse(raw: Option<&str>) -> TurnArg {
        match raw.map(str::trim) {
            None | Some("") => TurnArg::Absent,
            Some(s) if s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse().map(TurnArg::Token).unwrap_or(TurnArg::Malformed)
            }
            Some(_) => TurnArg::Malformed,
        }
    }
}

/// Where a call's audio is: a Kinesis video stream and the fragment it starts at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioStream {
    pub stream_arn: String,
    pub start_fragment: String,
    pub stream_started_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl AudioStream {
    fn event(&self) -> EventKind {
        EventKind::AudioStreamed {
            stream_arn: self.stream_arn.clone(),
            start_fragment: self.start_fragment.clone(),
            stream_started_at: self.stream_started_at,
        }
    }
}

/// One invocation of the Lambda for one contact, in domain terms.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Invocation {
    pub turn: Option<String>,
    pub answer: Option<String>,
    /// How `answer` was given (keys unless the flow asked through the answers bot).
    pub mode: crate::event::InputMode,
    /// For a spoken answer: the bot's confidence in its intent, in percent.
    pub confidence_pct: Option<u8>,
    /// Where the call's audio is streamed, when Connect said (checked by the service).
    pub audio: Option<AudioStream>,
    pub lang: Option<Lang>,
    pub facts: CallFacts,
}

/// Why an invocation records nothing and gives an earlier reply again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayReason {
    /// The turn was answered already: Connect retried.
    Retry(u64),
    /// The turn is not one this call issued (future, unknown or malformed): the current
    /// reply is given again.
    UnknownTurn,
    /// The call is over; its final reply is given again.
    Concluded,
    /// Connect said the contact disconnected; nothing more is recorded for it.
    Ended,
}

/// Something worth a warning in the logs, though the invocation is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warning {
    /// An answer came without a turn token: retries cannot be told apart for this call.
    NoTurnToken,
    /// An answer came on the first invocation of a call; it was not recorded.
    AnswerBeforeFirstQuestion,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Record these events (stamped at the state's version), then reply from the new state.
    Record(Vec<EventKind>),
    /// Record nothing; reply from the state folded up to `upto`.
    Replay { upto: u64, reason: ReplayReason },
}

/// Decides one invocation. `new_questionnaire` is used only for a call that has not
/// started; a started call keeps the questionnaire it started with.
pub fn decide(
    new_questionnaire: &Questionnaire,
    state: &CallState<'_>,
    inv: &Invocation,
) -> (Decision, Option<Warning>) {
    let turn_arg = TurnArg::parse(inv.turn.as_deref());
    let mut out = Recorder::default();
    let Some(started) = &state.started else {
        out.push(EventKind::CallStarted {
            questionnaire: new_questionnaire.id.clone(),
            questionnaire_version: new_questionnaire.version,
            lang: inv.lang.unwrap_or_default(),
            facts: inv.facts.clone(),
        });
        if let Some(audio) = &inv.audio {
            out.push(audio.event());
        }
        let warning = inv
            .answer
            .as_deref()
            .filter(|a| !a.trim().is_empty())
            .map(|_| Warning::AnswerBeforeFirstQuestion);
        return (out.finish(), warning);
    };

    if state.ended.is_some() {
        let upto = TurnArg::parse(inv.turn.as_deref());
        let upto = match upto {
            TurnArg::Token(t) => state.reply_to(t).unwrap_or(state.version),
            _ => state.version,
        };
        return (
            Decision::Replay {
                upto,
                reason: ReplayReason::Ended,
            },
            None,
        );
    }
    let mut warning = None;
    // An empty answer with no turn is what a flow sends before the first question (Connect
    // leaves `$.StoredCustomerInput` empty), so it is a retry of the first invocation.
    let has_answer = inv.answer.as_deref().is_some_and(|a| !a.trim().is_empty());
    match (turn_arg, has_answer) {
        (TurnArg::Malformed, _) => {
            return (
                Decision::Replay {
                    upto: state.version,
                    reason: ReplayReason::UnknownTurn,
                },
                None,
            )
        }
        (TurnArg::Token(t), _) => {
            if let Some(upto) = state.reply_to(t) {
                let reason = ReplayReason::Retry(t);
                return (Decision::Replay { upto, reason }, None);
            }
            if t != state.version {
                let reason = ReplayReason::UnknownTurn;
                return (
                    Decision::Replay {
                        upto: state.version,
                        reason,
                    },
                    None,
                );
            }
        }
        // No token, no answer: Connect retried the first invocation.
        (TurnArg::Absent, false) => {
            let upto = state.reply_to(0).unwrap_or(state.version);
            return (
                Decision::Replay {
                    upto,
                    reason: ReplayReason::Retry(0),
                },
                None,
            );
        }
        (TurnArg::Absent, true) => warning = Some(Warning::NoTurnToken),
    }
    if state.is_concluded() {
        let reason = ReplayReason::Concluded;
        return (
            Decision::Replay {
                upto: state.version,
                reason,
            },
            warning,
        );
    }

    let q = started.questionnaire;
    let Some(question) = q.question(state.pending) else {
        // A started, unconcluded call always has a pending question (fold keeps this).
        let reason = ReplayReason::Concluded;
        return (
            Decision::Replay {
                upto: state.version,
                reason,
            },
            warning,
        );
    };
    // Where the audio is, once per call, with the first turn that records anything.
    if let (None, Some(audio)) = (&state.audio, &inv.audio) {
        out.push(audio.event());
    }
    let raw_input = inv.answer.as_deref().unwrap_or("");
    let (raw, raw_len) = bounded_raw(raw_input);
    let question_id = question.id.clone();
    match Answer::parse(raw_input) {
        answer @ (Answer::Yes | Answer::No) => {
            let yes = answer == Answer::Yes;
            let score = state.score + if yes { question.weight } else { 0 };
            out.push(EventKind::AnswerRecorded {
                question: question_id,
                yes,
                raw,
                mode: inv.mode,
                confidence_pct: inv.confidence_pct,
            });
            let last = state.pending + 1 == q.questions.len();
            let outcome = if score >= q.hospital_threshold {
                Some(Outcome::Hospital)
            } else if last && score >= q.monitor_threshold {
                Some(Outcome::Monitor)
            } else if last {
                Some(Outcome::Clear)
            } else {
                None
            };
            if let Some(outcome) = outcome {
                out.conclude(outcome, score, None);
            }
        }
        Answer::Exit => {
            out.push(EventKind::CallExited {
                question: question_id,
            });
            out.conclude(Outcome::Exited, state.score, None);
        }
        Answer::Invalid => {
            out.push(EventKind::InputRejected {
                question: question_id,
                raw,
                raw_len,
            });
            if state.rejections + 1 >= q.max_rejections {
                let reason = Some("too_many_invalid_inputs".to_string());
                out.conclude(Outcome::Exited, state.score, reason);
            }
        }
    }
    (out.finish(), warning)
}

/// What a contact's `DISCONNECTED` event records: `CallEnded`, once, for a call this
/// service started; nothing for a contact it never saw or that has ended already.
pub fn decide_ended(
    state: &CallState<'_>,
    ended_at: DateTime<Utc>,
    disconnect_reason: Option<String>,
) -> Option<EventKind> {
    if state.started.is_none() || state.ended.is_some() {
        return None;
    }
    Some(EventKind::CallEnded {
        ended_at,
        disconnect_reason,
    })
}

/// The events one decision records, in order.
#[derive(Default)]
struct Recorder {
    events: Vec<EventKind>,
}

impl Recorder {
    fn push(&mut self, kind: EventKind) {
        self.events.push(kind);
    }

    fn conclude(&mut self, outcome: Outcome, score: u32, reason: Option<String>) {
        self.push(EventKind::TriageConcluded {
            outcome,
            score,
            reason,
        });
    }

    fn finish(self) -> Decision {
        Decision::Record(self.events)
    }
}
