//! `triage calls`: one row per call of a range of days (optionally one caller's, one
//! outcome's), in `started_at` order.

use super::{for_each_call, CallQuery, CallSummary, Reader, Status};
use crate::output::Tabular;
use chrono::SecondsFormat;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallRow {
    pub contact_id: String,
    pub started: String,
    /// Empty while the call may still be going on (`open`).
    pub ended: String,
    /// `hospital`, `monitor`, `clear`, `exited`, `abandoned` (hung up) or `open`.
    pub outcome: String,
    pub score: u32,
    pub answers: usize,
    pub abandoned: bool,
}

impl CallRow {
    pub fn from_summary(s: &CallSummary) -> CallRow {
        let t = |at: chrono::DateTime<chrono::Utc>| at.to_rfc3339_opts(SecondsFormat::Millis, true);
        CallRow {
            contact_id: s.contact_id.to_string(),
            started: t(s.started_at),
            ended: s.ended_at.map(t).unwrap_or_default(),
            outcome: s.status.as_str().to_string(),
            score: s.score,
            answers: s.answers.len(),
            abandoned: s.status == Status::Abandoned,
        }
    }
}

impl Tabular for CallRow {
    fn headers() -> &'static [&'static str] {
        &[
            "contact_id",
            "started",
            "ended",
            "outcome",
            "score",
            "answers",
            "abandoned",
        ]
    }

    fn cells(&self) -> Vec<String> {
        vec![
            self.contact_id.clone(),
            self.started.clone(),
            self.ended.clone(),
            self.outcome.clone(),
            self.score.to_string(),
            self.answers.to_string(),
            self.abandoned.to_string(),
        ]
    }
}

/// The rows of `query`, keeping only calls with status `only` when given.
pub async fn calls(
    reader: &Reader,
    query: &CallQuery,
    only: Option<Status>,
) -> Result<Vec<CallRow>, super::ReadError> {
    let mut rows = Vec::new();
    for_each_call(reader, query, |s, _| {
        if only.is_none_or(|o| o == s.status) {
            rows.push(CallRow::from_summary(&s));
        }
        Ok(())
    })
    .await?;
    Ok(rows)
}
