//! The projector: keeps the read model ([`crate::store::model`]) in step with the events.
//!
//! How it stays right whatever the delivery (at least once, out of order, batches cut and
//! retried): a stream record only says *which call* changed. For that call the projector
//! re-reads every event (strongly consistent), folds them with the same fold as the events
//! path ([`super::summarize`]), and compares the result with the summary the model holds:
//! - the model is as new (same `last_seq`, same projection version): nothing to do, so a
//!   duplicate or a late, older record changes nothing;
//! - otherwise one [`Commit`]: the new summary, written on the condition that the model
//!   still holds the summary that was read, with the counters moved by exactly the
//!   difference between the two summaries' contributions ([`delta`]). A lost race (another
//!   projector got there first) fails the condition; the call is read again.
//!
//! So counters always equal the sum of the contributions of the summaries in the model, and
//! each summary is the fold of a prefix of its call's events that only grows.

use super::{summarize, CallSummary, Status};
use crate::domain::{ContactId, FoldError, Outcome};
use crate::store::model::{
    CallKey, CallerChange, CallerDay, Commit, Counts, ModelAnswer, ModelCall, ModelError, OpenCall,
    ReadModel, PROJECTION_VERSION,
};
use crate::store::{EventStore, StoreError};
use chrono::{DateTime, Duration, Utc};

/// Why a call could not be projected.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("loading the events of contact {contact_id}")]
    Load {
        contact_id: String,
        #[source]
        source: StoreError,
    },
    #[error("the events of contact {contact_id} do not fold")]
    Fold {
        contact_id: String,
        #[source]
        source: FoldError,
    },
    #[error("writing the read model for contact {contact_id}")]
    Model {
        contact_id: String,
        #[source]
        source: ModelError,
    },
    #[error("contact {0}: the read model kept changing under the projector ({ATTEMPTS} attempts); it is retried with its batch")]
    Contended(String),
}

/// Attempts at one call's commit before the call is reported as failed.
pub const ATTEMPTS: usize = 5;

/// One of the model's counters, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counter {
    /// Calls started.
    Calls,
    /// Calls in a status (`open` and `abandoned` as the model holds them).
    Status(Status),
    /// Callers with more than one call that day.
    RepeatCallers,
    /// Calls of those callers that day.
    RepeatCalls,
    /// One figure of one question (its questionnaire `id@version`, position, id).
    Question {
        questionnaire: String,
        index: usize,
        id: String,
        field: QuestionField,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuestionField {
    Asked,
    Yes,
    No,
    Exits,
    Hangups,
    /// Calls the model holds `open` while this question is pending: readers count them as
    /// hang-ups here once they are silent for longer than the abandon threshold.
    Open,
}

impl QuestionField {
    fn as_str(self) -> &'static str {
        match self {
            QuestionField::Asked => "asked",
            QuestionField::Yes => "yes",
            QuestionField::No => "no",
            QuestionField::Exits => "exits",
            QuestionField::Hangups => "hangups",
            QuestionField::Open => "open",
        }
    }
}

/// Name of a question's counter: `q|QUESTIONNAIRE@VERSION|INDEX|ID|FIELD`.
fn question_counter(questionnaire: &str, index: usize, id: &str, field: QuestionField) -> String {
    format!("q|{questionnaire}|{index}|{id}|{}", field.as_str())
}

impl Counter {
    /// Reads a counter's name; `None` for a name this build does not know.
    pub fn parse(name: &str) -> Option<Counter> {
        match name {
            "calls" => return Some(Counter::Calls),
            "repeat_callers" => return Some(Counter::RepeatCallers),
            "repeat_calls" => return Some(Counter::RepeatCalls),
            _ => {}
        }
        if let Some(rest) = name.strip_prefix("q|") {
            // QUESTIONNAIRE@VERSION|INDEX|ID|FIELD; the id may hold anything but is
            // between the index and the field.
            let (questionnaire, rest) = rest.split_once('|')?;
            let (index, rest) = rest.split_once('|')?;
            let (id, field) = rest.rsplit_once('|')?;
            let field = match field {
                "asked" => QuestionField::Asked,
                "yes" => QuestionField::Yes,
                "no" => QuestionField::No,
                "exits" => QuestionField::Exits,
                "hangups" => QuestionField::Hangups,
                "open" => QuestionField::Open,
                _ => return None,
            };
            return Some(Counter::Question {
                questionnaire: questionnaire.to_string(),
                index: index.parse().ok()?,
                id: id.to_string(),
                field,
            });
        }
        Status::parse(name).map(Counter::Status)
    }
}

/// The summary the model keeps for a call: the fold of its events, with "abandoned" only
/// when Connect said so (`CallEnded`). Whether a silent call is abandoned depends on the
/// time it is read, so the model keeps it `open` and readers decide.
pub fn settled_summary(
    contact_id: &ContactId,
    events: &[crate::domain::Event],
) -> Result<CallSummary, FoldError> {
    summarize(
        contact_id,
        events,
        DateTime::<Utc>::MIN_UTC,
        Duration::zero(),
    )
}

/// The model's form of a summary.
pub fn model_call(s: &CallSummary) -> ModelCall {
    ModelCall {
        contact_id: s.contact_id.to_string(),
        started_at: s.started_at,
        last_at: s.last_at,
        ended_at: s.ended_at,
        status: s.status.as_str().to_string(),
        score: s.score,
        questionnaire: s.questionnaire.clone(),
        questionnaire_version: s.questionnaire_version,
        lang: s.lang.as_str().to_string(),
        caller_hash: s.caller_hash.clone(),
        last_seq: s.last_seq,
        answers: s
            .answers
            .iter()
            .map(|a| ModelAnswer {
                index: a.index,
                question: a.question.clone(),
                yes: a.yes,
            })
            .collect(),
        pending: s.pending.clone(),
        rejections: s.rejections,
        projection: PROJECTION_VERSION,
    }
}

/// What one summary adds to its day's counters (repeat callers aside: they depend on the
/// caller's other calls, see [`caller_change`]).
pub fn contribution(c: &ModelCall) -> Counts {
    let mut m = Counts::new();
    let mut add = |name: String| *m.entry(name).or_insert(0) += 1;
    add("calls".into());
    add(c.status.clone());
    let qv = format!("{}@{}", c.questionnaire, c.questionnaire_version);
    for a in &c.answers {
        add(question_counter(
            &qv,
            a.index,
            &a.question,
            QuestionField::Asked,
        ));
        let field = if a.yes {
            QuestionField::Yes
        } else {
            QuestionField::No
        };
        add(question_counter(&qv, a.index, &a.question, field));
    }
    if let Some((index, id)) = &c.pending {
        add(question_counter(&qv, *index, id, QuestionField::Asked));
        let left = match c.status.as_str() {
            s if s == Outcome::Exited.as_str() => Some(QuestionField::Exits),
            "abandoned" => Some(QuestionField::Hangups),
            "open" => Some(QuestionField::Open),
            _ => None,
        };
        if let Some(field) = left {
            add(question_counter(&qv, *index, id, field));
        }
    }
    m
}

/// `new`'s contribution minus `old`'s, zeros left out.
pub fn delta(old: Option<&ModelCall>, new: &ModelCall) -> Counts {
    let mut d = contribution(new);
    if let Some(old) = old {
        for (name, n) in contribution(old) {
            *d.entry(name).or_insert(0) -= n;
        }
    }
    d.retain(|_, n| *n != 0);
    d
}

/// The caller's day after one more call, and what it changes in the day's repeat counters.
pub fn caller_change(
    old: Option<&CallerDay>,
    call: &ModelCall,
    caller_hash: &str,
    shards: u32,
    counts: &mut Counts,
) -> CallerChange {
    let before = old.map_or(0, |o| o.calls);
    let new = CallerDay {
        day: call.day(),
        caller_hash: caller_hash.to_string(),
        calls: before + 1,
        first: old.map_or(call.started_at, |o| o.first.min(call.started_at)),
        last: old.map_or(call.started_at, |o| o.last.max(call.started_at)),
    };
    let mut add = |name: &str, n: i64| *counts.entry(name.to_string()).or_insert(0) += n;
    match new.calls {
        2 => {
            add("repeat_callers", 1);
            add("repeat_calls", 2);
        }
        n if n > 2 => add("repeat_calls", 1),
        _ => {}
    }
    counts.retain(|_, n| *n != 0);
    CallerChange {
        expected_calls: old.map(|o| o.calls),
        new,
        shard: crate::store::model::shard_of(caller_hash, shards),
    }
}

/// What projecting one call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projected {
    /// The model was behind; it now holds the call's events up to `last_seq`.
    Changed { last_seq: u64 },
    /// The model already held every event of the call.
    UpToDate,
    /// The call has no events (expired, or a record for a call that is gone): nothing.
    NoEvents,
}

/// The commit that brings the model from `old` to the call's `events`, or `None` when the
/// model is as new. `caller_day` is the caller's day as read, for a call new to the model.
pub fn plan(
    old: Option<&ModelCall>,
    summary: &CallSummary,
    caller_day: Option<&CallerDay>,
    shards: u32,
) -> Option<Commit> {
    let new = model_call(summary);
    if let Some(o) = old {
        if o.last_seq >= new.last_seq && o.projection == PROJECTION_VERSION {
            return None;
        }
    }
    let mut counts = delta(old, &new);
    let caller = match (&new.caller_hash, old) {
        (Some(h), None) => Some(caller_change(caller_day, &new, h, shards, &mut counts)),
        _ => None,
    };
    let open = (new.status == Status::Open.as_str()).then(|| OpenCall {
        contact_id: new.contact_id.clone(),
        started_at: new.started_at,
        last_at: new.last_at,
        pending: new.pending.clone(),
        questionnaire: new.questionnaire.clone(),
        questionnaire_version: new.questionnaire_version,
    });
    Some(Commit {
        key: new.key(shards),
        expected_seq: old.map(|o| o.last_seq),
        was_open: old.is_some_and(|o| o.status == Status::Open.as_str()),
        call: new,
        delta: counts,
        open,
        caller,
        at: Utc::now(),
    })
}

/// Brings the model up to date with one call's events (see the module docs).
pub async fn project_call(
    events: &dyn EventStore,
    model: &dyn ReadModel,
    shards: u32,
    contact_id: &ContactId,
) -> Result<Projected, ProjectError> {
    let id = contact_id.to_string();
    let model_err = |source| ProjectError::Model {
        contact_id: id.clone(),
        source,
    };
    for _ in 0..ATTEMPTS {
        let history = events
            .load(contact_id)
            .await
            .map_err(|source| ProjectError::Load {
                contact_id: id.clone(),
                source,
            })?;
        let (Some(first), Some(last)) = (history.first(), history.last()) else {
            return Ok(Projected::NoEvents);
        };
        let key = CallKey::new(&id, first.at, shards);
        let old = model.call(&key).await.map_err(model_err)?;
        if old
            .as_ref()
            .is_some_and(|o| o.last_seq >= last.seq && o.projection == PROJECTION_VERSION)
        {
            return Ok(Projected::UpToDate);
        }
        if let Err(why) = crate::questionnaires::know_started(&history).await {
            tracing::warn!(contact_id = %id, %why, "the call's questionnaire version cannot be read");
        }
        let summary =
            settled_summary(contact_id, &history).map_err(|source| ProjectError::Fold {
                contact_id: id.clone(),
                source,
            })?;
        let caller_day = match (&summary.caller_hash, &old) {
            (Some(h), None) => model.caller_day(key.day, h).await.map_err(model_err)?,
            _ => None,
        };
        let Some(commit) = plan(old.as_ref(), &summary, caller_day.as_ref(), shards) else {
            return Ok(Projected::UpToDate);
        };
        let last_seq = commit.call.last_seq;
        match model.commit(commit).await {
            Ok(()) => return Ok(Projected::Changed { last_seq }),
            Err(ModelError::Conflict(_)) => continue,
            Err(e) => return Err(model_err(e)),
        }
    }
    Err(ProjectError::Contended(id))
}

/// What a run of the projector over many calls did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Run {
    /// Calls looked at.
    pub calls: u64,
    /// Calls whose summary (and counters) changed.
    pub changed: u64,
}

/// The one bookkeeping of [`catch_up`] and [`rebuild`]: counts each call's outcome, flushes
/// the model every [`FLUSH_EVERY`] calls (so a run cut short keeps its work), and on a
/// failure flushes what was done before saying why the rest was not.
struct Tally<'a> {
    model: &'a dyn ReadModel,
    run: Run,
    since_flush: usize,
}

/// Why a run stopped: a call that could not be projected, or the model's flush.
enum Stop {
    Call(ProjectError),
    Flush(ModelError),
}

impl<'a> Tally<'a> {
    fn new(model: &'a dyn ReadModel) -> Tally<'a> {
        Tally {
            model,
            run: Run::default(),
            since_flush: 0,
        }
    }

    async fn record(&mut self, outcome: Result<Projected, ProjectError>) -> Result<Run, Stop> {
        self.run.calls += 1;
        match outcome {
            Ok(Projected::Changed { .. }) => self.run.changed += 1,
            Ok(_) => {}
            Err(e) => {
                // Keep the calls already done; the next run goes on from there. The call's
                // own error says more than a failed flush would.
                let _ = self.model.flush().await;
                return Err(Stop::Call(e));
            }
        }
        self.since_flush += 1;
        if self.since_flush >= FLUSH_EVERY {
            self.since_flush = 0;
            self.model.flush().await.map_err(Stop::Flush)?;
        }
        Ok(self.run)
    }

    async fn finish(self) -> Result<Run, Stop> {
        self.model.flush().await.map_err(Stop::Flush)?;
        Ok(self.run)
    }
}

/// Projects every call of `contacts` that the model is behind on, then flushes the model.
/// `progress` is told after each call. Idempotent; a run cut short leaves every call it
/// finished in the model, and the next run goes on from there.
pub async fn catch_up(
    events: &dyn EventStore,
    model: &dyn ReadModel,
    shards: u32,
    contacts: Vec<ContactId>,
    mut progress: impl FnMut(Run),
) -> Result<Run, ProjectError> {
    let stop = |s| match s {
        Stop::Call(e) => e,
        Stop::Flush(source) => ProjectError::Model {
            contact_id: "-".into(),
            source,
        },
    };
    let mut tally = Tally::new(model);
    for id in &contacts {
        let outcome = project_call(events, model, shards, id).await;
        progress(tally.record(outcome).await.map_err(stop)?);
    }
    tally.finish().await.map_err(stop)
}

/// Calls projected at once by [`rebuild`].
pub const REBUILD_CONCURRENCY: usize = 16;

/// Replays the events of every call started on `days` into the model (after a change of
/// the projection, or to fill a model made after the events): each call as
/// [`project_call`] does it, so a call already up to date costs one read and changes
/// nothing, and a run killed half way is finished by running it again. `progress` is told
/// every call.
pub async fn rebuild(
    reader: &super::Reader,
    days: super::DayRange,
    mut progress: impl FnMut(Run),
) -> Result<Run, super::ReadError> {
    let model = reader
        .model_as_is()
        .ok_or_else(|| super::ReadError::NoModel(reader.describe()))?;
    let shards = reader.model_shards();
    let stop = |s| match s {
        Stop::Call(e) => super::ReadError::Project(e),
        Stop::Flush(source) => super::ReadError::Model {
            model: model.describe(),
            source,
        },
    };
    let mut stream = reader.index.calls_started(days);
    let mut set: tokio::task::JoinSet<Result<Projected, ProjectError>> =
        tokio::task::JoinSet::new();
    let mut tally = Tally::new(&*model);
    let mut finished = false;
    loop {
        while !finished && set.len() < REBUILD_CONCURRENCY {
            match stream.next().await {
                Some(Ok(call)) => {
                    let events = reader.events.clone();
                    let model = model.clone();
                    set.spawn(async move {
                        project_call(&*events, &*model, shards, &call.contact_id).await
                    });
                }
                Some(Err(source)) => {
                    return Err(super::ReadError::Index {
                        store: reader.describe(),
                        source,
                    })
                }
                None => finished = true,
            }
        }
        let Some(done) = set.join_next().await else {
            break;
        };
        let outcome = done.map_err(super::ReadError::Task)?;
        progress(tally.record(outcome).await.map_err(stop)?);
    }
    tally.finish().await.map_err(stop)
}

/// How far the model is behind the events of a range of days (`triage project --status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Lag {
    pub from: String,
    pub to: String,
    /// Calls of the range looked at.
    pub calls: u64,
    /// Calls whose newest events are not in the model yet.
    pub calls_behind: u64,
    /// Events not in the model yet.
    pub events_behind: u64,
    /// The oldest of those events (RFC 3339), if any.
    pub oldest_unprojected: Option<String>,
    /// Its age, in seconds: the projector's lag. 0 when the model holds every event.
    pub lag_seconds: i64,
}

/// Compares every call of `days` (through the index) with its summary in the model, as
/// the model is (the file store's is not brought up to date first).
pub async fn lag(
    reader: &super::Reader,
    days: super::DayRange,
    now: DateTime<Utc>,
) -> Result<Lag, super::ReadError> {
    let model = reader
        .model_as_is()
        .ok_or_else(|| super::ReadError::NoModel(reader.describe()))?;
    let shards = reader.model_shards();
    let mut lag = Lag {
        from: days.from.to_string(),
        to: days.to.to_string(),
        ..Lag::default()
    };
    let mut oldest: Option<DateTime<Utc>> = None;
    let mut stream = reader.index.calls_started(days);
    while let Some(call) = stream.next().await {
        let call = call.map_err(|source| super::ReadError::Index {
            store: reader.describe(),
            source,
        })?;
        let events = reader
            .events
            .load(&call.contact_id)
            .await
            .map_err(|source| super::ReadError::Load {
                contact_id: call.contact_id.clone(),
                source,
            })?;
        lag.calls += 1;
        let Some(first) = events.first() else {
            continue;
        };
        let key = CallKey::new(&call.contact_id.to_string(), first.at, shards);
        let have = model
            .call(&key)
            .await
            .map_err(|source| super::ReadError::Model {
                model: model.describe(),
                source,
            })?
            .map_or(0, |c| c.last_seq);
        let behind: Vec<_> = events.iter().filter(|e| e.seq > have).collect();
        if let Some(e) = behind.first() {
            lag.calls_behind += 1;
            lag.events_behind += behind.len() as u64;
            oldest = Some(oldest.map_or(e.at, |o| o.min(e.at)));
        }
    }
    if let Some(o) = oldest {
        lag.oldest_unprojected = Some(o.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        lag.lag_seconds = (now - o).num_seconds().max(0);
    }
    Ok(lag)
}

/// Calls between two flushes of a buffering model during a long run.
const FLUSH_EVERY: usize = 5_000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CallFacts, Event, EventKind, Lang};
    use chrono::TimeZone;

    fn at(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0)
            .single()
            .unwrap_or_default()
            + Duration::minutes(min)
    }

    fn ev(seq: u64, kind: EventKind) -> Event {
        Event {
            seq,
            event_id: uuid::Uuid::nil(),
            at: at(seq as i64),
            schema: 1,
            turn: seq,
            kind,
        }
    }

    fn started(caller: Option<&str>) -> Event {
        ev(
            1,
            EventKind::CallStarted {
                questionnaire: "covid19".into(),
                questionnaire_version: 1,
                lang: Lang::Es,
                facts: CallFacts {
                    caller_hash: caller.map(str::to_string),
                    ..CallFacts::default()
                },
            },
        )
    }

    fn answer(seq: u64, q: &str, yes: bool) -> Event {
        ev(
            seq,
            EventKind::AnswerRecorded {
                question: q.into(),
                yes,
                raw: if yes { "1" } else { "0" }.into(),
                mode: Default::default(),
                confidence_pct: None,
            },
        )
    }

    fn id() -> ContactId {
        ContactId::parse("4a573372-1f28-4e26-b97b-000000000001").unwrap_or_else(|_| unreachable!())
    }

    fn summary(events: &[Event]) -> CallSummary {
        settled_summary(&id(), events).unwrap_or_else(|e| panic!("fold: {e}"))
    }

    fn first_question() -> String {
        crate::domain::Questionnaire::embedded().questions[0]
            .id
            .clone()
    }

    #[test]
    fn counter_names_read_back() {
        let name = question_counter("covid19@1", 3, "a|b", QuestionField::Hangups);
        assert_eq!(
            Counter::parse(&name),
            Some(Counter::Question {
                questionnaire: "covid19@1".into(),
                index: 3,
                id: "a|b".into(),
                field: QuestionField::Hangups
            })
        );
        assert_eq!(Counter::parse("calls"), Some(Counter::Calls));
        assert_eq!(
            Counter::parse("abandoned"),
            Some(Counter::Status(Status::Abandoned))
        );
        assert_eq!(Counter::parse("q|x|notanumber|id|yes"), None);
        assert_eq!(Counter::parse("something_new"), None);
    }

    #[test]
    fn a_new_call_counts_once_and_its_answers_move_only_the_difference() {
        let q0 = first_question();
        let one = [started(None)];
        let s1 = summary(&one);
        let c1 = plan(None, &s1, None, 8).unwrap_or_else(|| panic!("a commit"));
        assert_eq!(c1.delta.get("calls"), Some(&1));
        assert_eq!(c1.delta.get("open"), Some(&1));
        assert!(c1.open.is_some(), "an unfinished call is open");
        assert_eq!(c1.expected_seq, None);

        let two = [started(None), answer(2, &q0, true)];
        let s2 = summary(&two);
        let c2 = plan(Some(&c1.call), &s2, None, 8).unwrap_or_else(|| panic!("a commit"));
        assert_eq!(c2.delta.get("calls"), None, "the call is not counted again");
        assert_eq!(
            c2.delta
                .get(&question_counter("covid19@1", 0, &q0, QuestionField::Yes)),
            Some(&1)
        );
        assert_eq!(c2.expected_seq, Some(1));
        // The same events again, or an older record: nothing.
        assert!(plan(Some(&c2.call), &s2, None, 8).is_none());
        assert!(plan(Some(&c2.call), &s1, None, 8).is_none());
    }

    #[test]
    fn the_sum_of_deltas_is_the_contribution_of_the_last_summary() {
        let q = crate::domain::Questionnaire::embedded();
        let mut events = vec![started(Some("h"))];
        let mut old: Option<ModelCall> = None;
        let mut total = Counts::new();
        for (i, question) in q.questions.iter().take(3).enumerate() {
            events.push(answer(i as u64 + 2, &question.id, i % 2 == 0));
            let s = summary(&events);
            let c = plan(old.as_ref(), &s, None, 4).unwrap_or_else(|| panic!("a commit"));
            for (k, v) in &c.delta {
                *total.entry(k.clone()).or_insert(0) += v;
            }
            old = Some(c.call);
        }
        let last = old.unwrap_or_else(|| panic!("a summary"));
        total.retain(|_, n| *n != 0);
        let mut want = contribution(&last);
        want.retain(|_, n| *n != 0);
        assert_eq!(total, want);
    }

    #[test]
    fn a_hang_up_reported_by_connect_counts_at_the_pending_question() {
        let q0 = first_question();
        let q1 = crate::domain::Questionnaire::embedded().questions[1]
            .id
            .clone();
        let events = [
            started(None),
            answer(2, &q0, false),
            ev(
                3,
                EventKind::CallEnded {
                    ended_at: at(3),
                    disconnect_reason: None,
                },
            ),
        ];
        let c = plan(None, &summary(&events), None, 8).unwrap_or_else(|| panic!("a commit"));
        assert_eq!(c.call.status, "abandoned");
        assert!(c.open.is_none());
        assert_eq!(
            c.delta.get(&question_counter(
                "covid19@1",
                1,
                &q1,
                QuestionField::Hangups
            )),
            Some(&1)
        );
        assert_eq!(
            c.delta
                .get(&question_counter("covid19@1", 1, &q1, QuestionField::Asked)),
            Some(&1)
        );
    }

    #[test]
    fn repeat_callers_are_counted_when_a_caller_calls_a_second_and_third_time() {
        let s = summary(&[started(Some("h"))]);
        let call = model_call(&s);
        let mut counts = Counts::new();
        let first = caller_change(None, &call, "h", 8, &mut counts);
        assert!(counts.is_empty());
        let second = caller_change(Some(&first.new), &call, "h", 8, &mut counts);
        assert_eq!(counts.get("repeat_callers"), Some(&1));
        assert_eq!(counts.get("repeat_calls"), Some(&2));
        let mut third_counts = Counts::new();
        caller_change(Some(&second.new), &call, "h", 8, &mut third_counts);
        assert_eq!(third_counts.get("repeat_callers"), None);
        assert_eq!(third_counts.get("repeat_calls"), Some(&1));
    }
}
