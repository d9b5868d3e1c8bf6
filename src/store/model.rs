//! The read model (docs/contracts.md, "The read model"): what the projector keeps so that
//! the analysts' most used figures cost O(days), not O(calls).
//!
//! - **Call summaries** ([`ModelCall`]): one per call, the call folded (outcome, score,
//!   answers, questionnaire@version, lang, caller hash, last seq). `triage calls` reads them.
//! - **Day counters** ([`Counts`]): per UTC day of the call's start and per write shard,
//!   named integer counters (calls by status; per question asked, yes, no, exits, hang-ups;
//!   repeat callers). `triage stats` and `triage report` read them: days x shards items.
//! - **Open calls** ([`OpenCall`]): the calls whose summary is still `open` (no conclusion,
//!   no `CallEnded`), so that readers can count the ones silent for longer than the abandon
//!   threshold as abandoned, as the events path does, without reading every summary.
//! - **Callers per day** ([`CallerDay`]): how often each caller (keyed hash) called on a day;
//!   those with more than one call are the day's repeat callers.
//!
//! Every change to a call is one [`Commit`], applied all or nothing, on the condition that
//! the call's summary (and the caller's day) are still what the projector read: a counter
//! moves only when a summary changes, in the same transaction, so a record delivered twice
//! or out of order never counts twice (see `crate::read::project`). Adapters: [`MemoryModel`]
//! (tests; persisted as one JSON file for the file store) and the DynamoDB model table
//! (`crate::store::dynamodb::model`).

use super::index::DayRange;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Version of the projection: what a summary holds and how counters are derived from it.
/// Raised when either changes; `triage project --rebuild` then brings old summaries up.
pub const PROJECTION_VERSION: u32 = 1;

/// One answer in a summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelAnswer {
    /// Position of the question in the call's questionnaire (0-based).
    pub index: usize,
    pub question: String,
    pub yes: bool,
}

/// One call's summary in the read model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelCall {
    pub contact_id: String,
    pub started_at: DateTime<Utc>,
    /// The last event of the questionnaire itself (a `CallEnded` comes after it).
    pub last_at: DateTime<Utc>,
    /// When the call ended, if it did: its conclusion, or Connect's `CallEnded`.
    pub ended_at: Option<DateTime<Utc>>,
    /// `hospital`, `monitor`, `clear`, `exited`, `abandoned` (Connect said the caller hung
    /// up) or `open` (no conclusion yet: readers decide "abandoned" by the time).
    pub status: String,
    pub score: u32,
    pub questionnaire: String,
    pub questionnaire_version: u32,
    pub lang: String,
    pub caller_hash: Option<String>,
    /// `seq` of the newest event folded in: the summary's version.
    pub last_seq: u64,
    pub answers: Vec<ModelAnswer>,
    /// The question waiting for an answer (position, id), while the call stands at one.
    pub pending: Option<(usize, String)>,
    pub rejections: u32,
    /// [`PROJECTION_VERSION`] that wrote it.
    pub projection: u32,
}

impl ModelCall {
    /// The UTC day the call counts on: the day it started.
    pub fn day(&self) -> NaiveDate {
        self.started_at.date_naive()
    }

    /// Where the call is kept: its day and write shard.
    pub fn key(&self, shards: u32) -> CallKey {
        CallKey::new(&self.contact_id, self.started_at, shards)
    }
}

/// Where a call's summary lives: the day it started, its write shard (FNV-1a of the contact
/// id, as the by-day index), its start and its id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallKey {
    pub day: NaiveDate,
    pub shard: u32,
    pub started_at: DateTime<Utc>,
    pub contact_id: String,
}

impl CallKey {
    pub fn new(contact_id: &str, started_at: DateTime<Utc>, shards: u32) -> CallKey {
        CallKey {
            day: started_at.date_naive(),
            shard: shard_of(contact_id, shards),
            started_at,
            contact_id: contact_id.to_string(),
        }
    }
}

/// The write shard of a key: FNV-1a modulo `shards` (at least 1).
pub fn shard_of(key: &str, shards: u32) -> u32 {
    (super::dynamodb::fnv1a64(key.as_bytes()) % u64::from(shards.max(1))) as u32
}

/// Named counters: `calls`, one per status, `repeat_callers`, `repeat_calls`, and per
/// question `q|QUESTIONNAIRE@VERSION|INDEX|ID|FIELD` (see `crate::read::project`). A delta
/// holds signed changes; stored counts are never negative.
pub type Counts = BTreeMap<String, i64>;

/// One day's counters of one shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCounts {
    pub day: NaiveDate,
    pub shard: u32,
    pub counts: Counts,
    /// When the projector last changed these counters (its clock): how fresh they are.
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

/// A call whose summary is `open`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenCall {
    pub contact_id: String,
    pub started_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    /// The pending question (position, id), if any.
    pub pending: Option<(usize, String)>,
    pub questionnaire: String,
    pub questionnaire_version: u32,
}

/// How often one caller called on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerDay {
    pub day: NaiveDate,
    pub caller_hash: String,
    pub calls: u64,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

/// How many repeat callers `triage stats` lists by default (the day rows count all of them).
pub const DEFAULT_TOP_CALLERS: usize = 100;

/// The `n` caller-days with the most calls (ties: earlier day, then lower hash first), kept
/// as they come in: memory O(n) whatever the number of callers.
#[derive(Debug)]
pub struct TopCallers {
    n: usize,
    heap: std::collections::BinaryHeap<std::cmp::Reverse<RankedCaller>>,
}

/// A caller-day ordered by rank: more calls first, then the earlier day, then the hash.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RankedCaller(CallerDay);

impl Ord for RankedCaller {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Greater = ranks higher.
        self.0
            .calls
            .cmp(&other.0.calls)
            .then_with(|| other.0.day.cmp(&self.0.day))
            .then_with(|| other.0.caller_hash.cmp(&self.0.caller_hash))
    }
}

impl PartialOrd for RankedCaller {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl TopCallers {
    pub fn new(n: usize) -> TopCallers {
        TopCallers {
            n,
            heap: std::collections::BinaryHeap::with_capacity(n.min(4096) + 1),
        }
    }

    /// Offers one caller-day; kept if it ranks among the `n` best so far.
    pub fn offer(&mut self, c: CallerDay) {
        if self.n == 0 {
            return;
        }
        self.heap.push(std::cmp::Reverse(RankedCaller(c)));
        if self.heap.len() > self.n {
            self.heap.pop();
        }
    }

    /// The kept caller-days, best first.
    pub fn into_sorted(self) -> Vec<CallerDay> {
        let mut v: Vec<RankedCaller> = self.heap.into_iter().map(|r| r.0).collect();
        v.sort_by(|a, b| b.cmp(a));
        v.into_iter().map(|r| r.0).collect()
    }
}

/// The change to the caller's day that a new call makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerChange {
    /// What was read: `None` if the caller had no call that day.
    pub expected_calls: Option<u64>,
    pub new: CallerDay,
    /// The shard of the caller's item (by hash).
    pub shard: u32,
}

/// One change of one call, applied all or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub key: CallKey,
    /// The summary's `last_seq` as read (`None`: there was no summary). The commit fails
    /// with [`ModelError::Conflict`] if it is not so any more.
    pub expected_seq: Option<u64>,
    pub call: ModelCall,
    /// Added to the counters of (`key.day`, `key.shard`); zeros left out.
    pub delta: Counts,
    /// `Some(open)`: the call is open (kept or written); `None` and `was_open`: removed.
    pub open: Option<OpenCall>,
    pub was_open: bool,
    pub caller: Option<CallerChange>,
    /// The projector's clock when it made the commit (the counters' `updated_at`).
    pub at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The summary (or the caller's day) changed since it was read: read again and retry.
    #[error("the read model changed under the projector for contact {0}: read again")]
    Conflict(String),
    #[error("read model unavailable: {0}")]
    Unavailable(String),
    #[error("read model holds unreadable data: {0}")]
    Corrupt(String),
}

/// What a day's figures are read from: counters and repeat callers (open calls are read
/// apart, and only for days where they may matter).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayItems {
    pub counts: Vec<DayCounts>,
    pub repeat_callers: Vec<CallerDay>,
}

/// Where the projector writes and analysts read.
#[async_trait]
pub trait ReadModel: Send + Sync {
    /// The summary at `key`, if any.
    async fn call(&self, key: &CallKey) -> Result<Option<ModelCall>, ModelError>;
    /// The caller's day, if the caller called that day.
    async fn caller_day(
        &self,
        day: NaiveDate,
        caller_hash: &str,
    ) -> Result<Option<CallerDay>, ModelError>;
    /// Applies `commit` all or nothing, if its expectations still hold.
    async fn commit(&self, commit: Commit) -> Result<(), ModelError>;
    /// Counters of every day and shard of `days` that has any.
    async fn day_counts(&self, days: DayRange) -> Result<Vec<DayCounts>, ModelError>;
    /// Calls of `days` whose summary is `open`.
    async fn open_calls(&self, days: DayRange) -> Result<Vec<OpenCall>, ModelError>;
    /// Summaries of `days`, in (`started_at`, contact id) order.
    async fn calls(&self, days: DayRange) -> Result<Vec<ModelCall>, ModelError>;
    /// Callers with more than one call on a day of `days`.
    async fn repeat_callers(&self, days: DayRange) -> Result<Vec<CallerDay>, ModelError>;
    /// Counters of `days` and their `top` repeat callers ([`TopCallers`]) at once (adapters
    /// that keep them together read them in one pass, in memory bounded by `top`).
    async fn day_items(&self, days: DayRange, top: usize) -> Result<DayItems, ModelError> {
        let mut best = TopCallers::new(top);
        for c in self.repeat_callers(days).await? {
            best.offer(c);
        }
        Ok(DayItems {
            counts: self.day_counts(days).await?,
            repeat_callers: best.into_sorted(),
        })
    }
    /// Makes what was committed durable, for adapters that buffer (the file model).
    async fn flush(&self) -> Result<(), ModelError> {
        Ok(())
    }
    /// Where the model lives, for people.
    fn describe(&self) -> String;
}

/// The model's items, in memory: the reference adapter, and what the file store persists.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelData {
    /// Summaries by (day, started_at, contact id): day order is read order.
    pub calls: BTreeMap<String, ModelCall>,
    /// (day, shard) -> counters.
    pub counts: BTreeMap<String, DayCounts>,
    /// Open calls by summary key.
    pub open: BTreeMap<String, OpenCall>,
    /// (day, caller hash) -> calls that day.
    pub callers: BTreeMap<String, CallerDay>,
}

fn call_slot(key: &CallKey) -> String {
    format!(
        "{}|{}|{}",
        key.day,
        key.started_at.timestamp_millis(),
        key.contact_id
    )
}

fn day_slot(day: NaiveDate) -> String {
    day.to_string()
}

impl ModelData {
    /// Applies a commit, checking its expectations first; nothing changes on a conflict.
    pub fn apply(&mut self, c: Commit) -> Result<(), ModelError> {
        let slot = call_slot(&c.key);
        let have = self.calls.get(&slot).map(|s| s.last_seq);
        if have != c.expected_seq {
            return Err(ModelError::Conflict(c.key.contact_id));
        }
        if let Some(ch) = &c.caller {
            let cslot = format!("{}|{}", ch.new.day, ch.new.caller_hash);
            if self.callers.get(&cslot).map(|d| d.calls) != ch.expected_calls {
                return Err(ModelError::Conflict(c.key.contact_id));
            }
        }
        let counts_slot = format!("{}|{}", c.key.day, c.key.shard);
        let day = self.counts.entry(counts_slot).or_insert_with(|| DayCounts {
            day: c.key.day,
            shard: c.key.shard,
            counts: Counts::new(),
            updated_at: None,
        });
        for (name, d) in &c.delta {
            *day.counts.entry(name.clone()).or_insert(0) += d;
        }
        day.updated_at = Some(c.at);
        match c.open {
            Some(o) => {
                self.open.insert(slot.clone(), o);
            }
            None => {
                self.open.remove(&slot);
            }
        }
        if let Some(ch) = c.caller {
            let cslot = format!("{}|{}", ch.new.day, ch.new.caller_hash);
            self.callers.insert(cslot, ch.new);
        }
        self.calls.insert(slot, c.call);
        Ok(())
    }

    fn in_days<'a, T>(
        map: &'a BTreeMap<String, T>,
        days: DayRange,
    ) -> impl Iterator<Item = &'a T> + 'a {
        let from = day_slot(days.from);
        let to = format!("{}~", day_slot(days.to));
        map.range(from..to).map(|(_, v)| v)
    }
}

/// [`ReadModel`] in memory.
#[derive(Debug, Default)]
pub struct MemoryModel {
    data: Mutex<ModelData>,
}

impl MemoryModel {
    pub fn new() -> MemoryModel {
        MemoryModel::default()
    }

    pub fn from_data(data: ModelData) -> MemoryModel {
        MemoryModel {
            data: Mutex::new(data),
        }
    }

    /// A copy of every item.
    pub fn snapshot(&self) -> ModelData {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ModelData> {
        // A panic while holding the lock cannot leave a half-applied commit: `apply`
        // checks before it changes anything.
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl ReadModel for MemoryModel {
    async fn call(&self, key: &CallKey) -> Result<Option<ModelCall>, ModelError> {
        Ok(self.lock().calls.get(&call_slot(key)).cloned())
    }

    async fn caller_day(
        &self,
        day: NaiveDate,
        caller_hash: &str,
    ) -> Result<Option<CallerDay>, ModelError> {
        Ok(self
            .lock()
            .callers
            .get(&format!("{day}|{caller_hash}"))
            .cloned())
    }

    async fn commit(&self, commit: Commit) -> Result<(), ModelError> {
        self.lock().apply(commit)
    }

    async fn day_counts(&self, days: DayRange) -> Result<Vec<DayCounts>, ModelError> {
        Ok(ModelData::in_days(&self.lock().counts, days)
            .cloned()
            .collect())
    }

    async fn open_calls(&self, days: DayRange) -> Result<Vec<OpenCall>, ModelError> {
        Ok(ModelData::in_days(&self.lock().open, days)
            .cloned()
            .collect())
    }

    async fn calls(&self, days: DayRange) -> Result<Vec<ModelCall>, ModelError> {
        let mut calls: Vec<ModelCall> = ModelData::in_days(&self.lock().calls, days)
            .cloned()
            .collect();
        calls.sort_by(|a, b| (a.started_at, &a.contact_id).cmp(&(b.started_at, &b.contact_id)));
        Ok(calls)
    }

    async fn repeat_callers(&self, days: DayRange) -> Result<Vec<CallerDay>, ModelError> {
        Ok(ModelData::in_days(&self.lock().callers, days)
            .filter(|c| c.calls > 1)
            .cloned()
            .collect())
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}

/// The file store's read model: the model's items in memory, kept in one JSON file next to
/// the event log (`PATH.model.json`), written whole (to a temporary file, then renamed over
/// the old one) by [`ReadModel::flush`]. Any file it leaves is a model the projector made in
/// one piece: counters equal the sum of its summaries' contributions. Losing it loses
/// nothing: `triage project --rebuild` makes it again from the log.
#[derive(Debug)]
pub struct FileModel {
    path: std::path::PathBuf,
    mem: MemoryModel,
    dirty: std::sync::atomic::AtomicBool,
}

impl FileModel {
    /// The model file of an event log.
    pub fn path_for(log: &std::path::Path) -> std::path::PathBuf {
        let mut name = log.as_os_str().to_os_string();
        name.push(".model.json");
        name.into()
    }

    /// Opens the model file of `log` (an empty model if there is none yet).
    pub fn open(log: &std::path::Path) -> Result<FileModel, ModelError> {
        let path = FileModel::path_for(log);
        let data = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<ModelData>(&bytes).map_err(|e| {
                ModelError::Corrupt(format!(
                    "{}: {e}; remove it and run `triage project --rebuild` to make it again from the event log",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ModelData::default(),
            Err(e) => {
                return Err(ModelError::Unavailable(format!(
                    "cannot read {}: {e}",
                    path.display()
                )))
            }
        };
        Ok(FileModel {
            path,
            mem: MemoryModel::from_data(data),
            dirty: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// A copy of every item.
    pub fn snapshot(&self) -> ModelData {
        self.mem.snapshot()
    }
}

#[async_trait]
impl ReadModel for FileModel {
    async fn call(&self, key: &CallKey) -> Result<Option<ModelCall>, ModelError> {
        self.mem.call(key).await
    }
    async fn caller_day(
        &self,
        day: NaiveDate,
        caller_hash: &str,
    ) -> Result<Option<CallerDay>, ModelError> {
        self.mem.caller_day(day, caller_hash).await
    }
    async fn commit(&self, commit: Commit) -> Result<(), ModelError> {
        self.mem.commit(commit).await?;
        self.dirty.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
    async fn day_counts(&self, days: DayRange) -> Result<Vec<DayCounts>, ModelError> {
        self.mem.day_counts(days).await
    }
    async fn open_calls(&self, days: DayRange) -> Result<Vec<OpenCall>, ModelError> {
        self.mem.open_calls(days).await
    }
    async fn calls(&self, days: DayRange) -> Result<Vec<ModelCall>, ModelError> {
        self.mem.calls(days).await
    }
    async fn repeat_callers(&self, days: DayRange) -> Result<Vec<CallerDay>, ModelError> {
        self.mem.repeat_callers(days).await
    }
    async fn flush(&self) -> Result<(), ModelError> {
        if !self.dirty.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        let fail = |what: &str, e: std::io::Error| {
            ModelError::Unavailable(format!("cannot {what} {}: {e}", self.path.display()))
        };
        let bytes = serde_json::to_vec(&self.mem.snapshot())
            .map_err(|e| ModelError::Corrupt(format!("the model does not serialise: {e}")))?;
        let mut tmp = self.path.as_os_str().to_os_string();
        tmp.push(format!(".{}.tmp", std::process::id()));
        let tmp = std::path::PathBuf::from(tmp);
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(|e| fail("create", e))?;
            f.write_all(&bytes).map_err(|e| fail("write", e))?;
            f.sync_data().map_err(|e| fail("sync", e))?;
        }
        std::fs::rename(&tmp, &self.path).map_err(|e| fail("replace", e))?;
        Ok(())
    }
    fn describe(&self) -> String {
        format!("file:{}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn caller(day: u32, hash: &str, calls: u64) -> CallerDay {
        let at = Utc
            .with_ymd_and_hms(2026, 3, day, 10, 0, 0)
            .single()
            .unwrap_or_default();
        CallerDay {
            day: at.date_naive(),
            caller_hash: hash.into(),
            calls,
            first: at,
            last: at,
        }
    }

    /// The bounded collector keeps what sorting everything and cutting would keep.
    #[test]
    fn top_callers_are_the_head_of_the_whole_ranking() {
        let mut all = Vec::new();
        for i in 0..500u64 {
            let day = 1 + (i * 7 % 5) as u32;
            all.push(caller(
                day,
                &format!("h{:03}", (i * 37) % 211),
                2 + (i * 13) % 9,
            ));
        }
        let mut sorted = all.clone();
        sorted.sort_by(|a, b| {
            b.calls
                .cmp(&a.calls)
                .then_with(|| a.day.cmp(&b.day))
                .then_with(|| a.caller_hash.cmp(&b.caller_hash))
        });
        for n in [0, 1, 10, 100, 499, 500, 1000] {
            let mut top = TopCallers::new(n);
            for c in all.iter().rev() {
                top.offer(c.clone());
            }
            let want: Vec<_> = sorted.iter().take(n).cloned().collect();
            assert_eq!(top.into_sorted(), want, "top {n}");
        }
    }
}
