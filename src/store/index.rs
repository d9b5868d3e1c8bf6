//! The index of calls: which calls started on which days, and from which caller. Every
//! store adapter implements it over its own data (the sparse GSIs on DynamoDB, the local
//! log's in-memory index), so the read side never reaches into an adapter.

use crate::domain::ContactId;
use crate::store::StoreError;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use tokio::sync::mpsc;

/// Calls buffered between an index reader and its consumer (per shard, and merged).
pub const CHANNEL: usize = 256;

/// Longest range of days one command reads (ten years).
pub const MAX_DAYS: i64 = 3_660;

/// The read side's access paths to calls. Calls whose ids are table metadata (DynamoDB's
/// `#` keys) are never returned.
pub trait CallIndex: Send + Sync {
    /// Calls started on the days of `days`, in `started_at` order.
    fn calls_started(&self, days: DayRange) -> CallStream;
    /// Calls of one caller (keyed hash of the number) started on the days of `days`, in
    /// `started_at` order.
    fn calls_by_caller(&self, caller_hash: &str, days: DayRange) -> CallStream;
}

/// A range of days that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DayRangeError {
    #[error("{flag} {value:?} is not a UTC day written YYYY-MM-DD (e.g. 2026-03-01): {why}")]
    Day {
        flag: &'static str,
        value: String,
        why: String,
    },
    #[error("--from {from} is after --to {to}: the range is inclusive, from the earlier day to the later")]
    Reversed { from: NaiveDate, to: NaiveDate },
    #[error("{days} days from {from} to {to}: at most {MAX_DAYS} days are read at once")]
    TooLong {
        days: i64,
        from: NaiveDate,
        to: NaiveDate,
    },
}

/// An inclusive range of UTC days, `--from` .. `--to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl DayRange {
    /// Parses two `YYYY-MM-DD` days; `from` must not be after `to`.
    pub fn parse(from: &str, to: &str) -> Result<DayRange, DayRangeError> {
        let day = |flag: &'static str, s: &str| {
            NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|e| DayRangeError::Day {
                flag,
                value: s.to_string(),
                why: e.to_string(),
            })
        };
        let range = DayRange {
            from: day("--from", from)?,
            to: day("--to", to)?,
        };
        if range.from > range.to {
            return Err(DayRangeError::Reversed {
                from: range.from,
                to: range.to,
            });
        }
        if range.len() > MAX_DAYS {
            return Err(DayRangeError::TooLong {
                days: range.len(),
                from: range.from,
                to: range.to,
            });
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
