//! The state of one call, folded from its events (`evolve`), and the reply that state
//! announces to the caller (`reply`). Pure: no I/O, no clock.

use super::event::{Event, EventKind, Outcome};
use super::questionnaire::{Lang, Questionnaire};
use chrono::{DateTime, Utc};

/// The questionnaire a call started with, and its language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started<'q> {
    pub questionnaire: &'q Questionnaire,
    pub lang: Lang,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallState<'q> {
    /// Sequence number of the last event (0: no events).
    pub version: u64,
    pub started: Option<Started<'q>>,
    /// Index of the question waiting for an answer.
    pub pending: usize,
    pub score: u32,
    /// Yes/no answers in question order.
    pub answers: Vec<bool>,
    pub rejections: u32,
    /// The last event was an invalid input (the question is asked again, with an apology).
    pub last_rejected: bool,
    pub outcome: Option<Outcome>,
    /// When Connect said the contact disconnected, and why (its `CallEnded`).
    pub ended: Option<(DateTime<Utc>, Option<String>)>,
    /// Where the call's audio is, once recorded (`AudioStreamed`).
    pub audio: Option<String>,
    /// For every turn answered so far, in turn order: (turn, the version right after the
    /// events that answered it). Turns only grow, so this is a sorted list.
    pub replies: Vec<(u64, u64)>,
}

/// A stream that does not fold: it breaks the rules the decider always keeps.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("event seq {seq} ({kind}): {why}")]
pub struct FoldError {
    pub seq: u64,
    pub kind: &'static str,
    pub why: String,
}

/// What the caller is told, in domain terms: either the next question is asked, or the
/// triage is over (the service turns it into Connect's flat map). Texts are borrowed from
/// the questionnaire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'q> {
    /// Ask the pending question; the answer must come back with `turn`.
    Ask {
        /// Id of the question asked.
        question: &'q str,
        /// The question with its instructions (after an invalid key, with the apology first).
        text: &'q str,
        /// Token for the next invocation: the stream version this reply was computed at.
        turn: u64,
        score: u32,
    },
    /// The triage is over: say the final message.
    End {
        outcome: Outcome,
        text: &'q str,
        score: u32,
        /// What the agent and the contact record are told ([`Reply::handoff`]).
        call: Concluded<'q>,
    },
}

/// What a concluded call hands to the agent: the questionnaire, the language, and which
/// questions were answered yes (bit `i` for question `i`; questionnaires have at most 64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concluded<'q> {
    pub questionnaire: &'q Questionnaire,
    pub lang: Lang,
    pub yes: u64,
}

/// Longest hand-off summary, in characters: a line on an agent's screen. Longer summaries are
/// cut and end with [`CUT_MARK`].
pub const MAX_SUMMARY_CHARS: usize = 200;

/// What ends a summary that was cut.
pub const CUT_MARK: char = '…';

/// The triage as the agent who takes the call (and the contact record) sees it. No phone
/// number, no raw keys: the outcome, the score, the questionnaire and the yes answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    pub outcome: Outcome,
    pub score: u32,
    /// `id@version`.
    pub questionnaire: String,
    /// The labels of the questions answered yes, in the call's language, comma-separated;
    /// at most [`MAX_SUMMARY_CHARS`] characters.
    pub summary: String,
}

impl Concluded<'_> {
    /// The summary of the yes answers (see [`Handoff::summary`]).
    pub fn summary(&self) -> String {
        let labels: Vec<&str> = self
            .questionnaire
            .questions
            .iter()
            .enumerate()
            .filter(|(i, _)| *i < 64 && self.yes & (1u64 << i) != 0)
            .map(|(_, q)| q.label(self.lang))
            .collect();
        let full = labels.join(", ");
        if full.chars().count() <= MAX_SUMMARY_CHARS {
            return full;
        }
        let mut cut: String = full.chars().take(MAX_SUMMARY_CHARS - 1).collect();
        cut.push(CUT_MARK);
        cut
    }
}

impl<'q> Reply<'q> {
    /// True while the questionnaire goes on.
    pub fn goes_on(&self) -> bool {
        matches!(self, Reply::Ask { .. })
    }

    /// The words to play.
    pub fn text(&self) -> &'q str {
        match self {
            Reply::Ask { text, .. } | Reply::End { text, .. } => text,
        }
    }

    /// The running score.
    pub fn score(&self) -> u32 {
        match self {
            Reply::Ask { score, .. } | Reply::End { score, .. } => *score,
        }
    }

    /// The turn token, while the call goes on.
    pub fn turn(&self) -> Option<u64> {
        match self {
            Reply::Ask { turn, .. } => Some(*turn),
            Reply::End { .. } => None,
        }
    }

    /// The id of the question asked, while the call goes on.
    pub fn question(&self) -> Option<&'q str> {
        match self {
            Reply::Ask { question, .. } => Some(question),
            Reply::End { .. } => None,
        }
    }

    /// The hand-off of a concluded call.
    pub fn handoff(&self) -> Option<Handoff> {
        match self {
            Reply::Ask { .. } => None,
            Reply::End {
                outcome,
                score,
                call,
                ..
            } => Some(Handoff {
                outcome: *outcome,
                score: *score,
                questionnaire: call.questionnaire.key(),
                summary: call.summary(),
            }),
        }
    }

    /// How the triage ended, once it has.
    pub fn outcome(&self) -> Option<Outcome> {
        match self {
            Reply::Ask { .. } => None,
            Reply::End { outcome, .. } => Some(*outcome),
        }
    }
}

impl<'q> CallState<'q> {
    /// Folds a whole stream, resolving the questionnaire version recorded at its start.
    pub fn fold(events: &[Event]) -> Result<CallState<'static>, FoldError> {
        CallState::fold_with(events, Questionnaire::lookup)
    }

    pub fn fold_with(
        events: &[Event],
        lookup: impl Fn(&str, u32) -> Option<&'q Questionnaire>,
    ) -> Result<CallState<'q>, FoldError> {
        let mut state = CallState::default();
        for e in events {
            state.evolve(e, &lookup)?;
        }
        Ok(state)
    }

    /// The version right after the events that answered `turn`, if it was answered.
    pub fn reply_to(&self, turn: u64) -> Option<u64> {
        self.replies
            .binary_search_by_key(&turn, |&(t, _)| t)
            .ok()
            .map(|i| self.replies[i].1)
    }

    pub fn is_concluded(&self) -> bool {
        self.outcome.is_some()
    }

    /// Applies one event.
    pub fn evolve(
        &mut self,
        e: &Event,
        lookup: &impl Fn(&str, u32) -> Option<&'q Questionnaire>,
    ) -> Result<(), FoldError> {
        let fail = |why: String| FoldError {
            seq: e.seq,
            kind: e.kind.name(),
            why,
        };
        if e.seq != self.version + 1 {
            return Err(fail(format!("expected seq {}", self.version + 1)));
        }
        if self.ended.is_some() {
            return Err(fail("event after the call ended".into()));
        }
        if let EventKind::CallEnded {
            ended_at,
            disconnect_reason,
        } = &e.kind
        {
            // The contact may end before, at or after the conclusion: the caller hangs up
            // mid-questionnaire, or the flow disconnects after the final message.
            if self.started.is_none() {
                return Err(fail("first event is not CallStarted".into()));
            }
            self.ended = Some((*ended_at, disconnect_reason.clone()));
            self.version = e.seq;
            return Ok(());
        }
        if self.outcome.is_some() {
            return Err(fail("event after the call was concluded".into()));
        }
        if let EventKind::CallStarted {
            questionnaire,
            questionnaire_version,
            lang,
            ..
        } = &e.kind
        {
            if self.started.is_some() {
                return Err(fail("call started twice".into()));
            }
            let q = lookup(questionnaire, *questionnaire_version).ok_or_else(|| {
                fail(format!(
                    "questionnaire {questionnaire}@{questionnaire_version} is not known: not embedded in this build, and not readable from the store's catalog"
                ))
            })?;
            self.started = Some(Started {
                questionnaire: q,
                lang: *lang,
            });
        } else {
            let Some(started) = &self.started else {
                return Err(fail("first event is not CallStarted".into()));
            };
            let q = started.questionnaire;
            let pending = q.question(self.pending);
            let check_question = |id: &str| match pending {
                Some(p) if p.id == id => Ok(p),
                _ => Err(fail(format!(
                    "question {id:?} is not the pending one ({:?})",
                    pending.map(|p| p.id.as_str())
                ))),
            };
            match &e.kind {
                EventKind::CallStarted { .. } => {}
                EventKind::AnswerRecorded { question, yes, .. } => {
                    let p = check_question(question)?;
                    if *yes {
                        self.score += p.weight;
                    }
                    self.answers.push(*yes);
                    self.pending += 1;
                    self.last_rejected = false;
                }
                EventKind::InputRejected { question, .. } => {
                    check_question(question)?;
                    self.rejections += 1;
                    self.last_rejected = true;
                }
                EventKind::CallExited { question } => {
                    check_question(question)?;
                    self.last_rejected = false;
                }
                EventKind::CallEnded { .. } => {}
                EventKind::AudioStreamed { stream_arn, .. } => {
                    if self.audio.is_some() {
                        return Err(fail("the call's audio was recorded twice".into()));
                    }
                    self.audio = Some(stream_arn.clone());
                }
                EventKind::TriageConcluded { outcome, score, .. } => {
                    if *score != self.score {
                        return Err(fail(format!(
                            "concluded with score {score}, but the answers add up to {}",
                            self.score
                        )));
                    }
                    self.outcome = Some(*outcome);
                }
            }
        }
        self.version = e.seq;
        match self.replies.last_mut() {
            Some((turn, end)) if *turn == e.turn => *end = e.seq,
            _ => self.replies.push((e.turn, e.seq)),
        }
        Ok(())
    }

    /// What this state tells the caller. `None` before the call has started.
    pub fn reply(&self) -> Option<Reply<'q>> {
        let started = self.started.as_ref()?;
        let (q, lang) = (started.questionnaire, started.lang);
        if let Some(outcome) = self.outcome {
            let text = match outcome {
                Outcome::Hospital => &q.texts.hospital,
                Outcome::Monitor => &q.texts.monitor,
                Outcome::Clear => &q.texts.clear,
                Outcome::Exited => &q.texts.exited,
            };
            let yes = self
                .answers
                .iter()
                .enumerate()
                .filter(|(i, yes)| **yes && *i < 64)
                .fold(0u64, |bits, (i, _)| bits | (1u64 << i));
            return Some(Reply::End {
                outcome,
                text: text.get(lang),
                score: self.score,
                call: Concluded {
                    questionnaire: q,
                    lang,
                    yes,
                },
            });
        }
        let question = q.question(self.pending)?;
        let prompts = q.prompts(self.pending)?;
        let text = if self.last_rejected {
            &prompts.ask_again
        } else {
            &prompts.ask
        };
        Some(Reply::Ask {
            question: &question.id,
            text: text.get(lang),
            turn: self.version,
            score: self.score,
        })
    }
}
