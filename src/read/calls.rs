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

/// A call's row from its summary in the read model, with "abandoned" decided at
/// `query.now` as [`super::summarize`] decides it.
pub fn row_from_model(c: &crate::store::model::ModelCall, query: &CallQuery) -> CallRow {
    let t = |at: chrono::DateTime<chrono::Utc>| at.to_rfc3339_opts(SecondsFormat::Millis, true);
    let stale = c.status == Status::Open.as_str() && query.now - c.last_at > query.abandon_after;
    let (outcome, ended) = if stale {
        (Status::Abandoned.as_str().to_string(), Some(c.last_at))
    } else {
        (c.status.clone(), c.ended_at)
    };
    CallRow {
        contact_id: c.contact_id.clone(),
        started: t(c.started_at),
        ended: ended.map(t).unwrap_or_default(),
        abandoned: outcome == Status::Abandoned.as_str(),
        outcome,
        score: c.score,
        answers: c.answers.len(),
    }
}

/// The rows of `query` from the read model's call summaries (one item per call, no
/// per-call read of events), keeping only calls with status `only` when given. A caller's
/// calls (`query.caller_hash`) are found through the by-caller index: [`calls`].
pub async fn calls_from_model(
    model: &dyn crate::store::model::ReadModel,
    query: &CallQuery,
    only: Option<Status>,
) -> Result<Vec<CallRow>, super::ReadError> {
    let summaries = model
        .calls(query.days)
        .await
        .map_err(|source| super::ReadError::Model {
            model: model.describe(),
            source,
        })?;
    Ok(summaries
        .iter()
        .map(|c| row_from_model(c, query))
        .filter(|r| only.is_none_or(|o| o.as_str() == r.outcome))
        .collect())
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
