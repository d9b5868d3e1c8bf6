//! A call's answer trail for analysts: every event in order with its time, the question's
//! text (in the questionnaire version and language the call used), the answer, the running
//! score and the outcome. Built on the same fold as the Lambda.

use crate::domain::{CallState, Event, EventKind, FoldError, Questionnaire};
use crate::output::Tabular;
use chrono::SecondsFormat;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrailRow {
    pub seq: u64,
    pub at: String,
    pub event: &'static str,
    pub question: String,
    pub question_text: String,
    pub answer: String,
    pub score: u32,
    pub outcome: String,
}

impl Tabular for TrailRow {
    fn headers() -> &'static [&'static str] {
        &[
            "seq",
            "at",
            "event",
            "question",
            "question_text",
            "answer",
            "score",
            "outcome",
        ]
    }

    fn cells(&self) -> Vec<String> {
        vec![
            self.seq.to_string(),
            self.at.clone(),
            self.event.to_string(),
            self.question.clone(),
            self.question_text.clone(),
            self.answer.clone(),
            self.score.to_string(),
            self.outcome.clone(),
        ]
    }
}

/// One row per event, folding as it goes (so the score is the running score).
pub fn trail(events: &[Event]) -> Result<Vec<TrailRow>, FoldError> {
    let mut state = CallState::default();
    let mut rows = Vec::with_capacity(events.len());
    for e in events {
        state.evolve(e, &Questionnaire::lookup)?;
        let text = |id: &str| {
            state
                .started
                .as_ref()
                .and_then(|s| {
                    s.questionnaire
                        .question_by_id(id)
                        .map(|(_, q)| q.text.get(s.lang).to_string())
                })
                .unwrap_or_default()
        };
        let (question, answer, outcome) = match &e.kind {
            EventKind::CallStarted {
                questionnaire,
                questionnaire_version,
                lang,
                ..
            } => (
                String::new(),
                format!(
                    "{questionnaire}@{questionnaire_version} lang={}",
                    lang.as_str()
                ),
                String::new(),
            ),
            EventKind::AnswerRecorded {
                question,
                yes,
                mode,
                confidence_pct,
                ..
            } => {
                let said = if *yes { "yes" } else { "no" };
                let answer = match (mode, confidence_pct) {
                    (crate::domain::InputMode::Dtmf, _) => said.to_string(),
                    (m, Some(c)) => format!("{said} ({} {c}%)", m.as_str()),
                    (m, None) => format!("{said} ({})", m.as_str()),
                };
                (question.clone(), answer, String::new())
            }
            EventKind::InputRejected { question, raw, .. } => {
                (question.clone(), format!("invalid ({raw})"), String::new())
            }
            EventKind::CallExited { question } => (question.clone(), "*".into(), String::new()),
            EventKind::AudioStreamed {
                stream_arn,
                start_fragment,
                ..
            } => (
                String::new(),
                format!(
                    "audio: {} from fragment {start_fragment}",
                    stream_arn
                        .split_once(":stream/")
                        .map_or(stream_arn.as_str(), |(_, name)| name)
                ),
                String::new(),
            ),
            EventKind::CallEnded {
                ended_at,
                disconnect_reason,
            } => (
                String::new(),
                format!(
                    "disconnected {}{}",
                    ended_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                    disconnect_reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                ),
                String::new(),
            ),
            EventKind::TriageConcluded {
                outcome, reason, ..
            } => (
                String::new(),
                reason.clone().unwrap_or_default(),
                outcome.to_string(),
            ),
        };
        rows.push(TrailRow {
            seq: e.seq,
            at: e.at.to_rfc3339_opts(SecondsFormat::Millis, true),
            event: e.kind.name(),
            question_text: text(&question),
            question,
            answer,
            score: state.score,
            outcome,
        });
    }
    Ok(rows)
}
