//! The analysts' read side: which calls started in a range of UTC days (or from one caller),
//! served by the store's call index ([`CallIndex`]: the sparse GSIs on DynamoDB, the
//! in-memory index of the local log), then each call's events loaded with
//! [`EventStore::load`] and folded with the same domain fold as the Lambda
//! ([`summarize`]). On top: `triage trail` ([`trail`]), `triage calls` ([`calls`]),
//! `triage stats` ([`stats`]), `triage export` ([`export`]) and `triage report`
//! ([`report`]).
//!
//! Calls are streamed in `started_at` order through bounded channels, and their events are
//! loaded a few at a time ([`LOAD_AHEAD`]), so memory stays constant whatever the range.

pub mod athena;
pub mod audio;
pub mod calls;
pub mod export;
pub mod fhir;
pub mod project;
pub mod report;
pub mod stats;
pub mod stream;
pub mod trail;

use crate::domain::ContactId;
use crate::domain::{CallState, Event, EventKind, FoldError, Lang, Outcome};
use crate::store::model::ReadModel;
use crate::store::{EventStore, History, StoreError, StoreSpec};
use chrono::{DateTime, Duration, Utc};
use std::collections::VecDeque;
use std::sync::Arc;

pub use crate::store::index::{CallIndex, CallStream, DayRange, StartedCall, MAX_DAYS};

/// Why a read of the analysts' side stopped. Messages say what was being read; the cause
/// follows as the error's source.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("reading the index of calls of {store}")]
    Index {
        store: String,
        #[source]
        source: StoreError,
    },
    #[error("loading the events of contact {contact_id}")]
    Load {
        contact_id: ContactId,
        #[source]
        source: StoreError,
    },
    #[error("the events of contact {contact_id} do not fold")]
    Fold {
        contact_id: ContactId,
        #[source]
        source: FoldError,
    },
    #[error("reading the read model {model}")]
    Model {
        model: String,
        #[source]
        source: crate::store::model::ModelError,
    },
    #[error("projecting the events into the read model")]
    Project(#[source] project::ProjectError),
    #[error("{0} has no read model: read it with --source events")]
    NoModel(String),
    #[error("a load task failed")]
    Task(#[source] tokio::task::JoinError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Csv(#[from] csv::Error),
}

/// Calls whose events are being loaded ahead of the one being processed.
pub const LOAD_AHEAD: usize = 16;

/// Default minutes after its last event when a call with no conclusion counts as abandoned.
pub const DEFAULT_ABANDON_MINUTES: u32 = 10;

/// What analysts read: the events and the index of calls of one store, and its read model.
#[derive(Clone)]
pub struct Reader {
    pub events: Arc<dyn EventStore>,
    pub index: Arc<dyn CallIndex>,
    model: Option<ModelHandle>,
    /// The store's questionnaire catalog, when [`open_reader`] opened it on the same client.
    catalog: Option<crate::store::catalog::SharedCatalog>,
}

/// A store's read model, and whether readers bring it up to date themselves first (the
/// file store's: no stream feeds it, the log is read on the spot).
#[derive(Clone)]
struct ModelHandle {
    model: Arc<dyn ReadModel>,
    catch_up: Option<Arc<dyn Fn() -> Vec<ContactId> + Send + Sync>>,
    shards: u32,
}

/// Which data an analysts' verb reads (`--source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Source {
    /// The read model: per-day counters and call summaries (O(days) for stats).
    #[default]
    Model,
    /// Every call's events, folded on the spot (O(calls)): the reference.
    Events,
}

impl Reader {
    pub fn new<S: EventStore + CallIndex + 'static>(store: Arc<S>) -> Reader {
        Reader {
            events: store.clone(),
            index: store,
            model: None,
            catalog: None,
        }
    }

    /// Events and an index from different places (tests: a stand-in index).
    pub fn from_parts(events: Arc<dyn EventStore>, index: Arc<dyn CallIndex>) -> Reader {
        Reader {
            events,
            index,
            model: None,
            catalog: None,
        }
    }

    /// The store's questionnaire catalog (opened with the reader: no second client).
    pub fn catalog(&self) -> Option<&crate::store::catalog::SharedCatalog> {
        self.catalog.as_ref()
    }

    /// With the store's read model, which `shards` write shards per day.
    pub fn with_model(mut self, model: Arc<dyn ReadModel>, shards: u32) -> Reader {
        self.model = Some(ModelHandle {
            model,
            catch_up: None,
            shards,
        });
        self
    }

    /// With a read model that readers first bring up to date with the calls `contacts`
    /// lists (the file store's, see [`project::catch_up`]).
    pub fn with_local_model(
        mut self,
        model: Arc<dyn ReadModel>,
        shards: u32,
        contacts: Arc<dyn Fn() -> Vec<ContactId> + Send + Sync>,
    ) -> Reader {
        self.model = Some(ModelHandle {
            model,
            catch_up: Some(contacts),
            shards,
        });
        self
    }

    /// The read model, brought up to date first where readers do that (the file store).
    pub async fn model(&self) -> Result<Arc<dyn ReadModel>, ReadError> {
        let h = self
            .model
            .as_ref()
            .ok_or_else(|| ReadError::NoModel(self.describe()))?;
        if let Some(contacts) = &h.catch_up {
            project::catch_up(&*self.events, &*h.model, h.shards, contacts(), |_| {})
                .await
                .map_err(ReadError::Project)?;
        }
        Ok(h.model.clone())
    }

    /// Write shards per day of the read model (1 without one).
    pub fn model_shards(&self) -> u32 {
        self.model.as_ref().map_or(1, |h| h.shards)
    }

    /// The read model as it is, without bringing it up to date.
    pub fn model_as_is(&self) -> Option<Arc<dyn ReadModel>> {
        self.model.as_ref().map(|h| h.model.clone())
    }

    pub fn describe(&self) -> String {
        self.events.describe()
    }
}

/// Opens the store a spec names for reading by analysts. The memory store holds no calls
/// across processes, so it is refused.
pub async fn open_reader(
    spec: &StoreSpec,
    opts: &crate::store::dynamodb::DynamoOptions,
) -> Result<Reader, StoreError> {
    Ok(match spec {
        StoreSpec::File(path) => {
            let store = Arc::new(crate::store::file::FileStore::open(path)?);
            let model = crate::store::model::FileModel::open(path)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let contacts = {
                let store = store.clone();
                Arc::new(move || store.contacts())
            };
            let mut reader =
                Reader::new(store).with_local_model(Arc::new(model), opts.day_shards, contacts);
            reader.catalog = Some(Arc::new(crate::store::catalog::FileCatalog::beside(path)));
            reader
        }
        StoreSpec::DynamoDb(table) => {
            let store = crate::store::dynamodb::DynamoStore::open(table.clone(), opts.clone()).await?;
            let model = crate::store::dynamodb::model::DynamoModel::new(&store, model_table(table));
            let mut reader =
                Reader::new(Arc::new(store.clone())).with_model(Arc::new(model), opts.day_shards);
            reader.catalog = Some(Arc::new(store));
            reader
        }
        StoreSpec::Memory => {
            return Err(StoreError::Invalid(
                "the memory store keeps no calls between commands: read from file:PATH or dynamodb:TABLE".into(),
            ))
        }
    })
}

/// The read model's table of an events table: `TABLE-model`.
pub fn model_table(events_table: &str) -> String {
    format!("{events_table}-model")
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
    /// How many repeat callers `stats` lists, most calls first (the day rows count them
    /// all): what keeps the model path's memory flat at any number of callers.
    pub top_callers: usize,
}

impl CallQuery {
    pub fn new(days: DayRange) -> CallQuery {
        CallQuery {
            days,
            caller_hash: None,
            now: Utc::now(),
            abandon_after: Duration::minutes(i64::from(DEFAULT_ABANDON_MINUTES)),
            top_callers: crate::store::model::DEFAULT_TOP_CALLERS,
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

    /// Every status, as written.
    pub const ALL: [&'static str; 6] = [
        "hospital",
        "monitor",
        "clear",
        "exited",
        "abandoned",
        "open",
    ];
}

/// A status that is not one of [`Status::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("use one of {}", Status::ALL.join(", "))]
pub struct UnknownStatus;

impl std::str::FromStr for Status {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Status, UnknownStatus> {
        Status::parse(s).ok_or(UnknownStatus)
    }
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
    /// The questionnaire the call was asked with: id and version.
    pub questionnaire: String,
    pub questionnaire_version: u32,
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
    /// The question the call stopped at (position, id): left with `*`, hung up on, or
    /// still waiting for an answer. `None` for a call concluded by its answers.
    pub pending: Option<(usize, String)>,
    /// `seq` of the last event.
    pub last_seq: u64,
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
        if let EventKind::AnswerRecorded {
            question, yes, raw, ..
        } = &e.kind
        {
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
    // The last event of the questionnaire itself (a CallEnded comes after it).
    let last_turn_at = events
        .iter()
        .rev()
        .find(|e| !matches!(e.kind, EventKind::CallEnded { .. }))
        .map_or(last.at, |e| e.at);
    // Connect's DISCONNECTED (CallEnded) says exactly when a caller hung up; without it, a
    // call silent for longer than `abandon_after` is taken for abandoned.
    let status = match (state.outcome, &state.ended) {
        (Some(o), _) => Status::Concluded(o),
        (None, Some(_)) => Status::Abandoned,
        (None, None) if now - last_turn_at > abandon_after => Status::Abandoned,
        (None, None) => Status::Open,
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
        Status::Concluded(Outcome::Exited) | Status::Abandoned => {
            pending.as_ref().map(|(_, id)| id.clone())
        }
        _ => None,
    };
    let ended_at = match (status, &state.ended) {
        (Status::Abandoned, Some((at, _))) => Some(*at),
        (Status::Concluded(_) | Status::Abandoned, _) => Some(last_turn_at),
        (Status::Open, _) => None,
    };
    Ok(CallSummary {
        contact_id: contact_id.clone(),
        started_at: first.at,
        last_at: last_turn_at,
        ended_at,
        lang: started.lang,
        questionnaire: q.id.clone(),
        questionnaire_version: q.version,
        caller_hash,
        status,
        score: state.score,
        answers,
        rejections: state.rejections,
        asked,
        dropped_at,
        pending: if stopped_at_pending { pending } else { None },
        last_seq: last.seq,
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
) -> Result<u64, ReadError>
where
    F: FnMut(CallSummary, &[Event]) -> Result<(), ReadError>,
{
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
                    let store = reader.events.clone();
                    ahead.push_back(tokio::spawn(async move {
                        let events = store.load(&call.contact_id).await;
                        (call, events)
                    }));
                }
                Some(Err(source)) => {
                    return Err(ReadError::Index {
                        store: reader.describe(),
                        source,
                    })
                }
                None => finished = true,
            }
        }
        let Some(next) = ahead.pop_front() else {
            return Ok(n);
        };
        let (call, events) = next.await.map_err(ReadError::Task)?;
        let events = events.map_err(|source| ReadError::Load {
            contact_id: call.contact_id.clone(),
            source,
        })?;
        let summary = summarize(&call.contact_id, &events, query.now, query.abandon_after)
            .map_err(|source| ReadError::Fold {
                contact_id: call.contact_id.clone(),
                source,
            })?;
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
            .to_string()
            .contains("after"));
        assert!(DayRange::parse("2026-3-1x", "2026-03-01")
            .unwrap_err()
            .to_string()
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
