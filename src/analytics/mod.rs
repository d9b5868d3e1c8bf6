//! The analysts' read side: which calls started in a range of UTC days (or from one caller),
//! served by the store's call index ([`CallIndex`]: the sparse GSIs on DynamoDB, the
//! in-memory index of the local log), then each call's events loaded with
//! [`EventStore::load`] and folded with the same domain fold as the Lambda
//! ([`summarize`]). On top: `triage calls` ([`calls`]), `triage stats` ([`stats`]),
//! `triage export` ([`export`]), `triage report` ([`report`]) and the synthetic data
//! generator `triage seed-demo` ([`demo`]).
//!
//! Calls are streamed in `started_at` order through bounded channels, and their events are
//! loaded a few at a time ([`LOAD_AHEAD`]), so memory stays constant whatever the range.

pub mod calls;
pub mod demo;
pub mod export;
pub mod index;
pub mod report;
pub mod stats;

use crate::domain::ContactId;
use crate::domain::{CallState, Event, EventKind, FoldError, Lang, Outcome};
use crate::store::dynamodb::RESERVED_PREFIX;
use crate::store::{EventStore, History, StoreError, StoreSpec};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::mpsc;

pub use index::CallIndex;

/// Calls whose events are being loaded ahead of the one being processed.
pub const LOAD_AHEAD: usize = 16;

/// Default minutes after its last event when a call with no conclusion counts as abandoned.
pub const DEFAULT_ABANDON_MINUTES: u32 = 10;

/// Longest range of days one command reads (ten years).
pub const MAX_DAYS: i64 = 3_660;

/// An inclusive range of UTC days, `--from` .. `--to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl DayRange {
    /// Parses two `YYYY-MM-DD` days; `from` must not be after `to`.
    pub fn parse(from: &str, to: &str) -> Result<DayRange, String> {
        let day = |flag: &str, s: &str| {
            NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|e| {
                format!("{flag} {s:?} is not a UTC day written YYYY-MM-DD (e.g. 2026-03-01): {e}")
            })
        };
        let range = DayRange {
            from: day("--from", from)?,
            to: day("--to", to)?,
        };
        if range.from > range.to {
            return Err(format!(
                "--from {} is after --to {}: the range is inclusive, from the earlier day to the later",
                range.from, range.to
            ));
        }
        if range.len() > MAX_DAYS {
            return Err(format!(
                "{} days from {} to {}: at most {MAX_DAYS} days are read at once",
                range.len(),
                range.from,
                range.to
            ));
        }
        Ok(range)
    }

    /// Number of days in the range.
    pub fn len(&self) -> i64 {
        (self.to - self.from).num_days() + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Every day, in order.
    pub fn days(&self) -> impl Iterator<Item = NaiveDate> {
        let from = self.from;
        (0..self.len()).filter_map(move |i| from.checked_add_signed(Duration::days(i)))
    }

    /// First instant of `from`.
    pub fn start(&self) -> DateTime<Utc> {
        self.from.and_time(chrono::NaiveTime::MIN).and_utc()
    }

    /// First instant after `to`.
    pub fn end(&self) -> DateTime<Utc> {
        self.start() + Duration::days(self.len())
    }

    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        at >= self.start() && at < self.end()
    }
}

/// A call as the index knows it: who, when, from which caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedCall {
    pub contact_id: ContactId,
    pub started_at: DateTime<Utc>,
    pub caller_hash: Option<String>,
}

/// Calls from an index, in `started_at` order (ties by contact id), through a bounded
/// channel: the producer waits while the consumer is busy.
pub struct CallStream {
    rx: mpsc::Receiver<Result<StartedCall, StoreError>>,
}

impl CallStream {
    pub fn new(rx: mpsc::Receiver<Result<StartedCall, StoreError>>) -> CallStream {
        CallStream { rx }
    }

    pub async fn next(&mut self) -> Option<Result<StartedCall, StoreError>> {
        self.rx.recv().await
    }
}

/// What analysts read: the events and the index of calls of one store.
#[derive(Clone)]
pub struct Reader {
    pub events: Arc<dyn EventStore>,
    pub index: Arc<dyn CallIndex>,
}

impl Reader {
    pub fn new<S: EventStore + CallIndex + 'static>(store: Arc<S>) -> Reader {
        Reader {
            events: store.clone(),
            index: store,
        }
    }

    pub fn describe(&self) -> String {
        self.events.describe()
    }
}

/// Opens the store a spec names for reading by analysts. The memory store holds no calls
/// across processes, so it is refused.
pub async fn open_reader(spec: &StoreSpec) -> Result<Reader, StoreError> {
    Ok(match spec {
        StoreSpec::File(path) => Reader::new(Arc::new(crate::store::file::FileStore::open(path)?)),
        StoreSpec::DynamoDb(table) => Reader::new(Arc::new(
            crate::store::dynamodb::DynamoStore::from_env(table.clone()).await?,
        )),
        StoreSpec::Memory => {
            return Err(StoreError::Invalid(
                "the memory store keeps no calls between commands: read from file:PATH or dynamodb:TABLE".into(),
            ))
        }
    })
}

/// Which calls a command reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallQuery {
    pub days: DayRange,
    /// Only this caller's calls (the by-caller index).
    pub caller_hash: Option<String>,
    /// When "abandoned" is decided (normally now).
    pub now: DateTime<Utc>,
    /// A call with no conclusion this long after its last event is abandoned.
    pub abandon_after: Duration,
}

impl CallQuery {
    pub fn new(days: DayRange) -> CallQuery {
        CallQuery {
            days,
            caller_hash: None,
            now: Utc::now(),
            abandon_after: Duration::minutes(i64::from(DEFAULT_ABANDON_MINUTES)),
        }
    }
}

/// Where a call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Concluded with this outcome.
    Concluded(Outcome),
    /// No conclusion, and nothing happened for longer than the abandon threshold: the caller
    /// hung up.
    Abandoned,
    /// No conclusion yet, and recent activity: the call may still be going on.
    Open,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Concluded(o) => o.as_str(),
            Status::Abandoned => "abandoned",
            Status::Open => "open",
        }
    }

    /// `hospital`, `monitor`, `clear`, `exited`, `abandoned` or `open`.
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "abandoned" => Some(Status::Abandoned),
            "open" => Some(Status::Open),
            o => Outcome::parse(o).map(Status::Concluded),
        }
    }

    pub const ALL: [&'static str; 6] = [
        "hospital",
        "monitor",
        "clear",
        "exited",
        "abandoned",
        "open",
    ];
}

/// One answer of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerFact {
    pub seq: u64,
    pub at: DateTime<Utc>,
    /// Position of the question in the call's questionnaire (0-based).
    pub index: usize,
    pub question: String,
    pub question_text: String,
    pub yes: bool,
    pub raw: String,
}

/// One call folded: what the rows, the statistics and the export are made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSummary {
    pub contact_id: ContactId,
    pub started_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    /// When the call ended: its conclusion, or its last event when abandoned.
    pub ended_at: Option<DateTime<Utc>>,
    pub lang: Lang,
    pub caller_hash: Option<String>,
    pub status: Status,
    pub score: u32,
    pub answers: Vec<AnswerFact>,
    pub rejections: u32,
    /// Questions asked (answered, or left unanswered when the call stopped), in order: the
    /// call's path through the funnel.
    /// Each as (position in the questionnaire, id).
    pub asked: Vec<(usize, String)>,
    /// The question the caller left at: pressed `*` (or too many invalid keys: `exited`),
    /// or hung up (`abandoned`).
    pub dropped_at: Option<String>,
}

/// Folds one call's events into its summary, with the domain fold the Lambda uses.
pub fn summarize(
    contact_id: &ContactId,
    events: &[Event],
    now: DateTime<Utc>,
    abandon_after: Duration,
) -> Result<CallSummary, FoldError> {
    let not_started = |why: &str| FoldError {
        seq: 0,
        kind: "-",
        why: why.to_string(),
    };
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Err(not_started("the call has no events"));
    };
    let caller_hash = match &first.kind {
        EventKind::CallStarted { facts, .. } => facts.caller_hash.clone(),
        _ => return Err(not_started("the first event is not CallStarted")),
    };
    let mut state = CallState::default();
    let mut answers = Vec::new();
    for e in events {
        if let EventKind::AnswerRecorded { question, yes, raw } = &e.kind {
            // The state before the answer knows the question's position and text.
            let (index, text) = state
                .started
                .as_ref()
                .and_then(|s| {
                    s.questionnaire
                        .question_by_id(question)
                        .map(|(i, q)| (i, q.text.get(s.lang).to_string()))
                })
                .unwrap_or((state.pending, String::new()));
            answers.push(AnswerFact {
                seq: e.seq,
                at: e.at,
                index,
                question: question.clone(),
                question_text: text,
                yes: *yes,
                raw: raw.clone(),
            });
        }
        state.evolve(e, &crate::domain::Questionnaire::lookup)?;
    }
    let started = state
        .started
        .as_ref()
        .ok_or_else(|| not_started("the call never started"))?;
    let q = started.questionnaire;
    let pending = q
        .question(state.pending)
        .map(|p| (state.pending, p.id.clone()));
    let status = match state.outcome {
        Some(o) => Status::Concluded(o),
        None if now - last.at > abandon_after => Status::Abandoned,
        None => Status::Open,
    };
    let mut asked: Vec<(usize, String)> = answers
        .iter()
        .map(|a| (a.index, a.question.clone()))
        .collect();
    let stopped_at_pending = matches!(
        status,
        Status::Concluded(Outcome::Exited) | Status::Abandoned | Status::Open
    );
    if stopped_at_pending {
        if let Some(p) = &pending {
            asked.push(p.clone());
        }
    }
    let dropped_at = match status {
        Status::Concluded(Outcome::Exited) | Status::Abandoned => pending.map(|(_, id)| id),
        _ => None,
    };
    let ended_at = match status {
        Status::Concluded(_) | Status::Abandoned => Some(last.at),
        Status::Open => None,
    };
    Ok(CallSummary {
        contact_id: contact_id.clone(),
        started_at: first.at,
        last_at: last.at,
        ended_at,
        lang: started.lang,
        caller_hash,
        status,
        score: state.score,
        answers,
        rejections: state.rejections,
        asked,
        dropped_at,
    })
}

/// Progress of a long read, for stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub calls: u64,
    pub answers: u64,
}

/// A call whose events are being loaded.
type Loading = tokio::task::JoinHandle<(StartedCall, Result<History, StoreError>)>;

/// Reads every call of `query` in `started_at` order: loads its events (up to
/// [`LOAD_AHEAD`] calls ahead, in parallel), folds them and hands the summary and the events
/// to `each`, one call at a time. Constant memory: nothing of the range is collected here.
/// Returns how many calls were read.
pub async fn for_each_call<F>(
    reader: &Reader,
    query: &CallQuery,
    mut each: F,
) -> anyhow::Result<u64>
where
    F: FnMut(CallSummary, &[Event]) -> anyhow::Result<()>,
{
    use anyhow::Context;
    let mut stream = match &query.caller_hash {
        Some(h) => reader.index.calls_by_caller(h, query.days),
        None => reader.index.calls_started(query.days),
    };
    let mut ahead: VecDeque<Loading> = VecDeque::with_capacity(LOAD_AHEAD);
    let mut n = 0u64;
    let mut finished = false;
    loop {
        while !finished && ahead.len() < LOAD_AHEAD {
            match stream.next().await {
                Some(Ok(call)) => {
                    if call.contact_id.as_str().starts_with(RESERVED_PREFIX) {
                        continue;
                    }
                    let store = reader.events.clone();
                    ahead.push_back(tokio::spawn(async move {
                        let events = store.load(&call.contact_id).await;
                        (call, events)
                    }));
                }
                Some(Err(e)) => {
                    return Err(anyhow::Error::new(e).context(format!(
                        "reading the index of calls of {}",
                        reader.describe()
                    )))
                }
                None => finished = true,
            }
        }
        let Some(next) = ahead.pop_front() else {
            return Ok(n);
        };
        let (call, events) = next.await.context("a load task failed")?;
        let events =
            events.with_context(|| format!("loading the events of contact {}", call.contact_id))?;
        let summary = summarize(&call.contact_id, &events, query.now, query.abandon_after)
            .with_context(|| format!("the events of contact {} do not fold", call.contact_id))?;
        each(summary, &events)?;
        n += 1;
    }
}

/// `1234567` as `1,234,567`, for progress lines.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_ranges_are_checked() {
        let r = DayRange::parse("2026-03-01", "2026-03-03").expect("valid");
        assert_eq!(r.len(), 3);
        assert_eq!(r.days().count(), 3);
        assert!(r.contains(r.start()));
        assert!(!r.contains(r.end()));
        assert!(DayRange::parse("2026-03-02", "2026-03-01")
            .unwrap_err()
            .contains("after"));
        assert!(DayRange::parse("2026-3-1x", "2026-03-01")
            .unwrap_err()
            .contains("YYYY-MM-DD"));
        assert!(DayRange::parse("2026-02-30", "2026-03-01").is_err());
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(12_000), "12,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
