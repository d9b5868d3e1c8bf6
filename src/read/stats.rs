//! `triage stats`: calls and outcomes per day, yes-rate and drop-off per question, repeat
//! callers. Built call by call ([`StatsBuilder::add`]): only the totals are kept.

use super::{for_each_call, CallQuery, CallSummary, DayRange, Reader, Status};
use crate::domain::{Outcome, Questionnaire};
use crate::output::{write_table, Tabular};
use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DayRow {
    pub day: String,
    pub calls: u64,
    pub hospital: u64,
    pub monitor: u64,
    pub clear: u64,
    pub exited: u64,
    pub abandoned: u64,
    pub open: u64,
    /// Callers (keyed hashes) with more than one call this day.
    pub repeat_callers: u64,
    /// The calls those callers made this day.
    pub repeat_calls: u64,
}

impl DayRow {
    fn count(&mut self, status: Status, n: u64) {
        *match status {
            Status::Concluded(Outcome::Hospital) => &mut self.hospital,
            Status::Concluded(Outcome::Monitor) => &mut self.monitor,
            Status::Concluded(Outcome::Clear) => &mut self.clear,
            Status::Concluded(Outcome::Exited) => &mut self.exited,
            Status::Abandoned => &mut self.abandoned,
            Status::Open => &mut self.open,
        } += n;
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QuestionRow {
    /// The questionnaire version the question belongs to (`id@version`): calls asked with
    /// different versions are counted apart, each version's questions in its own order.
    pub questionnaire: String,
    /// 1-based position in the questionnaire.
    pub position: usize,
    pub question: String,
    pub text: String,
    /// Calls that were asked this question (the funnel).
    pub asked: u64,
    pub yes: u64,
    pub no: u64,
    /// yes / (yes + no); `null` when nobody answered.
    pub yes_rate: Option<f64>,
    /// Callers who left here with `*` (or too many invalid keys).
    pub exits: u64,
    /// Callers who hung up while this question was pending.
    pub hangups: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CallerRow {
    pub caller_hash: String,
    /// The UTC day of these calls: a repeat caller is one who called more than once on one
    /// day (a figure the read model keeps per day, whatever the range).
    pub day: String,
    pub calls: u64,
    pub first: String,
    pub last: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub from: String,
    pub to: String,
    pub calls: u64,
    pub days: Vec<DayRow>,
    pub questions: Vec<QuestionRow>,
    /// Callers (keyed hashes) with more than one call on one day, one row per caller and
    /// day, most calls first (ties: earlier day, lower hash), at most the query's
    /// `top_callers` (`--top-callers`, default 100); the day rows count every one.
    pub repeat_callers: Vec<CallerRow>,
}

/// One caller's calls on one day: how many, the first and the last start.
type CallerTally = (u64, DateTime<Utc>, DateTime<Utc>);

/// Accumulates [`Stats`] one call at a time.
pub struct StatsBuilder {
    range: DayRange,
    calls: u64,
    days: BTreeMap<NaiveDate, DayRow>,
    questions: BTreeMap<(String, usize, String), QuestionRow>,
    callers: HashMap<(String, NaiveDate), CallerTally>,
    /// Day rows' repeat figures are counted from `callers` (events) or were read (model).
    count_repeats: bool,
    /// The newest `updated_at` of the model's counters read (model path only).
    model_updated_at: Option<DateTime<Utc>>,
    /// Open calls per day and pending question, from the model's counters.
    open_pending: BTreeMap<(NaiveDate, String, usize, String), u64>,
    /// How many repeat callers to list.
    top_callers: usize,
}

impl StatsBuilder {
    pub fn new(range: DayRange) -> StatsBuilder {
        let days = range
            .days()
            .map(|d| {
                (
                    d,
                    DayRow {
                        day: d.format("%Y-%m-%d").to_string(),
                        ..DayRow::default()
                    },
                )
            })
            .collect();
        StatsBuilder {
            range,
            calls: 0,
            days,
            questions: BTreeMap::new(),
            callers: HashMap::new(),
            count_repeats: true,
            model_updated_at: None,
            open_pending: BTreeMap::new(),
            top_callers: crate::store::model::DEFAULT_TOP_CALLERS,
        }
    }

    /// Lists at most `n` repeat callers.
    pub fn top_callers(mut self, n: usize) -> StatsBuilder {
        self.top_callers = n;
        self
    }

    fn day(&mut self, day: NaiveDate) -> &mut DayRow {
        self.days.entry(day).or_insert_with(|| DayRow {
            day: day.format("%Y-%m-%d").to_string(),
            ..DayRow::default()
        })
    }

    pub fn add(&mut self, call: &CallSummary) {
        self.calls += 1;
        let day = call.started_at.date_naive();
        let version = format!("{}@{}", call.questionnaire, call.questionnaire_version);
        let row = self.day(day);
        row.calls += 1;
        row.count(call.status, 1);
        for (index, id) in &call.asked {
            self.question(&version, *index, id).asked += 1;
        }
        for a in &call.answers {
            let q = self.question(&version, a.index, &a.question);
            if a.yes {
                q.yes += 1;
            } else {
                q.no += 1;
            }
        }
        if let Some(id) = &call.dropped_at {
            let index = call
                .asked
                .iter()
                .find(|(_, q)| q == id)
                .map_or(usize::MAX, |(i, _)| *i);
            let q = self.question(&version, index, id);
            if call.status == Status::Abandoned {
                q.hangups += 1;
            } else {
                q.exits += 1;
            }
        }
        if let Some(h) = &call.caller_hash {
            let e = self.callers.entry((h.clone(), day)).or_insert((
                0,
                call.started_at,
                call.started_at,
            ));
            e.0 += 1;
            e.1 = e.1.min(call.started_at);
            e.2 = e.2.max(call.started_at);
        }
    }

    /// Adds one day's counters of the read model (one shard's, or their sum).
    pub fn add_counts(&mut self, day: NaiveDate, counts: &crate::store::model::Counts) {
        use super::project::{Counter, QuestionField};
        self.count_repeats = false;
        for (name, n) in counts {
            let n = u64::try_from(*n).unwrap_or(0);
            match Counter::parse(name) {
                Some(Counter::Calls) => {
                    self.calls += n;
                    self.day(day).calls += n;
                }
                Some(Counter::Status(s)) => self.day(day).count(s, n),
                Some(Counter::RepeatCallers) => self.day(day).repeat_callers += n,
                Some(Counter::RepeatCalls) => self.day(day).repeat_calls += n,
                Some(Counter::Question {
                    questionnaire,
                    index,
                    id,
                    field: QuestionField::Open,
                }) => {
                    *self
                        .open_pending
                        .entry((day, questionnaire, index, id))
                        .or_insert(0) += n;
                }
                Some(Counter::Question {
                    questionnaire,
                    index,
                    id,
                    field,
                }) => {
                    let q = self.question(&questionnaire, index, &id);
                    *match field {
                        QuestionField::Asked => &mut q.asked,
                        QuestionField::Yes => &mut q.yes,
                        QuestionField::No => &mut q.no,
                        QuestionField::Exits => &mut q.exits,
                        QuestionField::Hangups => &mut q.hangups,
                        QuestionField::Open => unreachable!("matched above"),
                    } += n;
                }
                // A counter this build does not know (a newer projector's): not shown.
                None => {}
            }
        }
    }

    /// A call the model holds as `open` that has been silent for longer than the abandon
    /// threshold: counted as abandoned, hung up at its pending question, as the events
    /// path counts it.
    pub fn add_stale_open(&mut self, call: &crate::store::model::OpenCall) {
        let row = self.day(call.started_at.date_naive());
        row.open = row.open.saturating_sub(1);
        row.abandoned += 1;
        if let Some((index, id)) = &call.pending {
            let version = format!("{}@{}", call.questionnaire, call.questionnaire_version);
            self.question(&version, *index, id).hangups += 1;
        }
    }

    /// Every call the model holds open on `day` has been silent for longer than the abandon
    /// threshold (the reader knows it from the counters' `updated_at`): all of them count
    /// as abandoned, hung up at their pending question, from the counters alone.
    pub fn all_open_stale(&mut self, day: NaiveDate) {
        let row = self.day(day);
        row.abandoned += row.open;
        row.open = 0;
        let pending: Vec<((String, usize, String), u64)> = self
            .open_pending
            .range((day, String::new(), 0, String::new())..)
            .take_while(|((d, _, _, _), _)| *d == day)
            .map(|((_, v, i, id), n)| ((v.clone(), *i, id.clone()), *n))
            .collect();
        for ((version, index, id), n) in pending {
            self.question(&version, index, &id).hangups += n;
        }
    }

    /// A caller's calls on one day, as the read model keeps them.
    pub fn add_caller_day(&mut self, c: &crate::store::model::CallerDay) {
        self.callers
            .insert((c.caller_hash.clone(), c.day), (c.calls, c.first, c.last));
    }

    fn question(&mut self, version: &str, index: usize, id: &str) -> &mut QuestionRow {
        self.questions
            .entry((version.to_string(), index, id.to_string()))
            .or_insert_with(|| QuestionRow {
                questionnaire: version.to_string(),
                position: index.saturating_add(1),
                question: id.to_string(),
                // The version's own text (every version the reader could read is known).
                text: version
                    .rsplit_once('@')
                    .and_then(|(qid, v)| Questionnaire::lookup(qid, v.parse().ok()?))
                    .and_then(|q| q.question_by_id(id))
                    .map(|(_, q)| q.text.en.clone())
                    .unwrap_or_default(),
                ..QuestionRow::default()
            })
    }

    pub fn finish(mut self) -> Stats {
        let t = |at: DateTime<Utc>| at.to_rfc3339_opts(SecondsFormat::Millis, true);
        if self.count_repeats {
            for ((_, day), (n, _, _)) in &self.callers {
                if *n > 1 {
                    if let Some(row) = self.days.get_mut(day) {
                        row.repeat_callers += 1;
                        row.repeat_calls += n;
                    }
                }
            }
        }
        let mut best = crate::store::model::TopCallers::new(self.top_callers);
        for ((caller_hash, day), (calls, first, last)) in self.callers {
            if calls > 1 {
                best.offer(crate::store::model::CallerDay {
                    day,
                    caller_hash,
                    calls,
                    first,
                    last,
                });
            }
        }
        let repeat_callers: Vec<CallerRow> = best
            .into_sorted()
            .into_iter()
            .map(|c| CallerRow {
                caller_hash: c.caller_hash,
                day: c.day.format("%Y-%m-%d").to_string(),
                calls: c.calls,
                first: t(c.first),
                last: t(c.last),
            })
            .collect();
        let questions = self
            .questions
            .into_values()
            // A question whose counters all came back to zero (the model keeps counters
            // that moved and moved back) is a question nobody reached.
            .filter(|q| q.asked + q.yes + q.no + q.exits + q.hangups > 0)
            .map(|mut q| {
                let answered = q.yes + q.no;
                q.yes_rate = (answered > 0).then(|| q.yes as f64 / answered as f64);
                q
            })
            .collect();
        Stats {
            from: self.range.from.to_string(),
            to: self.range.to.to_string(),
            calls: self.calls,
            days: self.days.into_values().collect(),
            questions,
            repeat_callers,
        }
    }
}

/// Statistics of every call of `query`.
pub async fn stats(
    reader: &Reader,
    query: &CallQuery,
    mut progress: impl FnMut(u64),
) -> Result<Stats, super::ReadError> {
    let mut b = StatsBuilder::new(query.days).top_callers(query.top_callers);
    let mut n = 0u64;
    for_each_call(reader, query, |s, _| {
        b.add(&s);
        n += 1;
        progress(n);
        Ok(())
    })
    .await?;
    Ok(b.finish())
}

/// How far the clocks of the Lambda (events' `at`) and the projector may disagree.
pub const CLOCK_MARGIN_SECONDS: i64 = 60;

/// Statistics of `query`'s days from the read model: the counters of every day and shard
/// (days x shards items, whatever the number of calls), the open calls (to count those
/// silent for longer than the abandon threshold as abandoned, as the events path does) and
/// the day's repeat callers. Figures equal [`stats`]'s on the same events. Also returns
/// when the projector last changed those counters (`None`: never), for readers to say how
/// fresh the figures are.
pub async fn stats_from_model(
    model: &dyn crate::store::model::ReadModel,
    query: &CallQuery,
) -> Result<(Stats, Option<DateTime<Utc>>), super::ReadError> {
    let err = |source| super::ReadError::Model {
        model: model.describe(),
        source,
    };
    let mut b = StatsBuilder::new(query.days).top_callers(query.top_callers);
    let items = model
        .day_items(query.days, query.top_callers)
        .await
        .map_err(err)?;
    // The newest `updated_at` of each day's shards (`None`: a shard never said).
    let mut updated_by_day: BTreeMap<NaiveDate, Option<DateTime<Utc>>> = BTreeMap::new();
    for day in &items.counts {
        b.add_counts(day.day, &day.counts);
        b.model_updated_at = b.model_updated_at.max(day.updated_at);
        let e = updated_by_day.entry(day.day).or_insert(day.updated_at);
        *e = match (*e, day.updated_at) {
            (Some(a), Some(u)) => Some(a.max(u)),
            _ => None,
        };
    }
    // A model with no counters for the range still says the range has no calls.
    b.count_repeats = false;
    // Calls held open: a call's last event was projected before the projector last changed
    // its day's counters (`updated_at`), so when that is longer ago than the abandon
    // threshold (and a margin for the clocks), every open call of the day is stale, and the
    // counters say where they stopped. Only the other days' open calls are read.
    for (day, updated) in &updated_by_day {
        let all_stale = updated.is_some_and(|u| {
            query.now - query.abandon_after > u + Duration::seconds(CLOCK_MARGIN_SECONDS)
        });
        if all_stale {
            b.all_open_stale(*day);
        } else {
            let one = DayRange {
                from: *day,
                to: *day,
            };
            for open in model.open_calls(one).await.map_err(err)? {
                if query.now - open.last_at > query.abandon_after {
                    b.add_stale_open(&open);
                }
            }
        }
    }
    for caller in &items.repeat_callers {
        b.add_caller_day(caller);
    }
    let updated = b.model_updated_at;
    Ok((b.finish(), updated))
}

impl Tabular for DayRow {
    fn headers() -> &'static [&'static str] {
        &[
            "day",
            "calls",
            "hospital",
            "monitor",
            "clear",
            "exited",
            "abandoned",
            "open",
            "repeat_callers",
            "repeat_calls",
        ]
    }
    fn cells(&self) -> Vec<String> {
        [
            self.calls,
            self.hospital,
            self.monitor,
            self.clear,
            self.exited,
            self.abandoned,
            self.open,
            self.repeat_callers,
            self.repeat_calls,
        ]
        .iter()
        .fold(vec![self.day.clone()], |mut v, n| {
            v.push(n.to_string());
            v
        })
    }
}

impl Tabular for QuestionRow {
    fn headers() -> &'static [&'static str] {
        &[
            "questionnaire",
            "position",
            "question",
            "text",
            "asked",
            "yes",
            "no",
            "yes_rate",
            "exits",
            "hangups",
        ]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.questionnaire.clone(),
            self.position.to_string(),
            self.question.clone(),
            self.text.clone(),
            self.asked.to_string(),
            self.yes.to_string(),
            self.no.to_string(),
            self.yes_rate.map(|r| format!("{r:.3}")).unwrap_or_default(),
            self.exits.to_string(),
            self.hangups.to_string(),
        ]
    }
}

impl Tabular for CallerRow {
    fn headers() -> &'static [&'static str] {
        &["caller_hash", "day", "calls", "first", "last"]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.caller_hash.clone(),
            self.day.clone(),
            self.calls.to_string(),
            self.first.clone(),
            self.last.clone(),
        ]
    }
}

/// A part of the statistics, for `--section` (CSV holds one table at a time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Section {
    #[default]
    All,
    Days,
    Questions,
    Callers,
}

/// Writes the statistics as tables, JSON, or (one section) CSV.
pub fn write_stats(
    out: &mut dyn Write,
    stats: &Stats,
    format: crate::output::Format,
    section: Section,
) -> io::Result<()> {
    use crate::output::{write_rows, Format};
    match (format, section) {
        (Format::Json, Section::All) => {
            serde_json::to_writer_pretty(&mut *out, stats)?;
            writeln!(out)
        }
        (_, Section::Days) => write_rows(out, &stats.days, format),
        (_, Section::Questions) => write_rows(out, &stats.questions, format),
        (_, Section::Callers) => write_rows(out, &stats.repeat_callers, format),
        (Format::Csv, Section::All) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "CSV holds one table: pick it with --section days|questions|callers",
        )),
        (Format::Table, Section::All) => {
            writeln!(
                out,
                "{} calls from {} to {}\n\nCalls and outcomes per day",
                stats.calls, stats.from, stats.to
            )?;
            write_table(out, DayRow::headers(), stats.days.iter().map(|r| r.cells()))?;
            writeln!(out, "\nAnswers and drop-off per question")?;
            write_table(
                out,
                QuestionRow::headers(),
                stats.questions.iter().map(|r| r.cells()),
            )?;
            writeln!(out, "\nRepeat callers (more than one call on one day)")?;
            write_table(
                out,
                CallerRow::headers(),
                stats.repeat_callers.iter().map(|r| r.cells()),
            )
        }
    }
}
