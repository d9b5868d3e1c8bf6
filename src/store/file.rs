//! The embedded default store: a local append-only event log, one JSON event per line.
//!
//! - Every append is one `write` of whole lines followed by `fsync` (`sync_data`), done
//!   under an exclusive advisory lock on the file (`flock`), so two processes appending at
//!   once cannot interleave lines or both win the same expected version.
//! - The events of one turn are written together; every line but the last of a batch
//!   carries `"batch_rest": n` (lines still to come), so a batch cut off by a crash is
//!   recognised and dropped whole: readers never see half a turn.
//! - A torn tail (a crash mid-append) is skipped by readers, reported, and cut off by the
//!   next writer before it writes. Nothing acknowledged is ever lost: an append returns
//!   only after its bytes are on disk.
//! - Unreadable lines elsewhere (a hand edit) are skipped and reported, never guessed.

use super::{check_batch, ContactId, EventStore, History, StoreError, MAX_EVENT_BYTES};
use crate::domain::{event_from_json, Event};
use async_trait::async_trait;
use serde::Serialize;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub struct FileStore {
    path: PathBuf,
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    file: File,
    /// Bytes of the file read and applied: always the end of a whole batch.
    offset: u64,
    /// Line number (1-based) of the line starting at `offset`.
    line_no: u64,
    streams: HashMap<ContactId, History>,
    /// Things a reader skipped or repaired, for people to see.
    notes: Vec<String>,
}

#[derive(Serialize)]
struct Line<'a> {
    contact_id: &'a str,
    #[serde(flatten)]
    event: &'a Event,
    #[serde(skip_serializing_if = "is_zero")]
    batch_rest: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn io_err(path: &Path, what: &str, e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("{what} {}: {e}", path.display()))
}

/// Releases the advisory lock when dropped, whatever happened in between.
struct Locked<'a>(&'a File);

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl FileStore {
    /// Opens (creating if needed, with its folder) the log at `path` and reads it.
    pub fn open(path: impl Into<PathBuf>) -> Result<FileStore, StoreError> {
        let path = path.into();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io_err(dir, "cannot create folder", e))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| io_err(&path, "cannot open event log", e))?;
        let mut inner = Inner {
            file,
            offset: 0,
            line_no: 1,
            streams: HashMap::new(),
            notes: Vec::new(),
        };
        {
            let file = inner
                .file
                .try_clone()
                .map_err(|e| io_err(&path, "cannot open", e))?;
            file.lock_shared()
                .map_err(|e| io_err(&path, "cannot lock", e))?;
            let _guard = Locked(&file);
            inner.refresh(&file, &path)?;
        }
        Ok(FileStore {
            path,
            inner: Arc::new(Mutex::new(inner)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What reading the log skipped or repaired so far (truncated or unreadable lines).
    pub fn notes(&self) -> Vec<String> {
        self.lock_inner().notes.clone()
    }

    /// Every contact with events, in id order.
    pub fn contacts(&self) -> Vec<ContactId> {
        let mut ids: Vec<ContactId> = self.lock_inner().streams.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// The first event of every stream (a call's `CallStarted`), after reading what other
    /// processes appended since. The local store's index of calls: analysts' verbs filter it
    /// by day or caller (see `crate::analytics`).
    pub fn first_events(&self) -> Result<Vec<(ContactId, Event)>, StoreError> {
        self.read_fresh(|inner| {
            inner
                .streams
                .iter()
                .filter_map(|(id, events)| events.first().map(|e| (id.clone(), e.clone())))
                .collect()
        })
    }

    fn lock_inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Inner is only changed after a successful write, so a poisoned lock is consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads what other processes appended since (under a shared lock), then `f` on the
    /// up-to-date index.
    fn read_fresh<T>(&self, f: impl FnOnce(&Inner) -> T) -> Result<T, StoreError> {
        let mut inner = self.lock_inner();
        let file = inner
            .file
            .try_clone()
            .map_err(|e| io_err(&self.path, "cannot open", e))?;
        file.lock_shared()
            .map_err(|e| io_err(&self.path, "cannot lock", e))?;
        let _guard = Locked(&file);
        inner.refresh(&file, &self.path)?;
        Ok(f(&inner))
    }

    fn load_blocking(&self, contact_id: &ContactId) -> Result<History, StoreError> {
        self.read_fresh(|inner| inner.streams.get(contact_id).cloned().unwrap_or_default())
    }

    fn append_blocking(
        &self,
        contact_id: &ContactId,
        expected_version: u64,
        events: Vec<Event>,
    ) -> Result<(), StoreError> {
        check_batch(expected_version, &events)?;
        let mut buf = Vec::new();
        for (i, event) in events.iter().enumerate() {
            let line = Line {
                contact_id: contact_id.as_str(),
                event,
                batch_rest: events.len() - 1 - i,
            };
            let start = buf.len();
            serde_json::to_writer(&mut buf, &line)
                .map_err(|e| StoreError::Invalid(format!("event does not serialise: {e}")))?;
            if buf.len() - start > MAX_EVENT_BYTES {
                return Err(StoreError::Invalid(format!(
                    "event {} is {} bytes; at most {MAX_EVENT_BYTES} are stored",
                    event.seq,
                    buf.len() - start
                )));
            }
            buf.push(b'\n');
        }

        let mut inner = self.lock_inner();
        let file = inner
            .file
            .try_clone()
            .map_err(|e| io_err(&self.path, "cannot open", e))?;
        file.lock()
            .map_err(|e| io_err(&self.path, "cannot lock", e))?;
        let _guard = Locked(&file);
        inner.refresh(&file, &self.path)?;
        let len = file
            .metadata()
            .map_err(|e| io_err(&self.path, "cannot stat", e))?
            .len();
        if len > inner.offset {
            // We hold the exclusive lock, so no writer is mid-append: these bytes are what
            // a crashed writer left (a torn line or an unfinished batch). Cut them off.
            file.set_len(inner.offset)
                .map_err(|e| io_err(&self.path, "cannot repair torn tail of", e))?;
            let note = format!(
                "{}: removed {} bytes of an append that was cut off (crash) before line {}",
                self.path.display(),
                len - inner.offset,
                inner.line_no
            );
            tracing::warn!("{note}");
            inner.notes.push(note);
        }
        let current = inner.streams.get(contact_id).map_or(0, |s| s.len() as u64);
        if current != expected_version {
            return Err(StoreError::Conflict {
                contact_id: contact_id.to_string(),
                expected: expected_version,
            });
        }
        (&file)
            .write_all(&buf)
            .and_then(|_| file.sync_data())
            .map_err(|e| io_err(&self.path, "cannot write to", e))?;
        inner.offset += buf.len() as u64;
        inner.line_no += events.len() as u64;
        inner
            .streams
            .entry(contact_id.clone())
            .or_default()
            .extend(events);
        Ok(())
    }
}

impl Inner {
    /// Reads whole batches written since `offset` (the caller holds a lock on the file).
    fn refresh(&mut self, file: &File, path: &Path) -> Result<(), StoreError> {
        let len = file
            .metadata()
            .map_err(|e| io_err(path, "cannot stat", e))?
            .len();
        if len < self.offset {
            return Err(StoreError::Corrupt(format!(
                "{} shrank from {} to {len} bytes while in use; it must only be appended to",
                path.display(),
                self.offset
            )));
        }
        if len == self.offset {
            return Ok(());
        }
        let mut file = file;
        file.seek(SeekFrom::Start(self.offset))
            .map_err(|e| io_err(path, "cannot read", e))?;
        // Read line by line through a bounded buffer: memory use does not grow with the size
        // of the log, and no line longer than MAX_LINE_BYTES is ever held whole.
        let mut reader = BufReader::with_capacity(64 * 1024, file.take(len - self.offset));
        let base = self.offset;
        let mut batch: Vec<(ContactId, Event)> = Vec::new();
        let mut pos = 0u64;
        let mut line_no = self.line_no;
        let mut line = Vec::new();
        loop {
            let read = read_line_bounded(&mut reader, &mut line, MAX_LINE_BYTES)
                .map_err(|e| io_err(path, "cannot read", e))?;
            if !read.complete {
                break; // end of file, or a torn last line: left unread (see below)
            }
            let next = pos + read.consumed;
            let parsed = if read.cut {
                Err(LineError::TooLong)
            } else {
                parse_line(&line)
            };
            match parsed {
                Ok((cid, event, rest)) => {
                    batch.push((cid, event));
                    if rest == 0 {
                        self.commit(std::mem::take(&mut batch), path, line_no);
                        self.offset = base + next;
                        self.line_no = line_no + 1;
                    }
                }
                Err(why) => {
                    if !line.is_empty() {
                        let note = format!(
                            "{}: skipped unreadable line {line_no}{}: {why}",
                            path.display(),
                            if batch.is_empty() {
                                ""
                            } else {
                                " and the unfinished turn before it"
                            }
                        );
                        tracing::warn!("{note}");
                        self.notes.push(note);
                    }
                    batch.clear();
                    self.offset = base + next;
                    self.line_no = line_no + 1;
                }
            }
            pos = next;
            line_no += 1;
        }
        let unread = len - self.offset;
        if unread > 0 {
            let note = format!(
                "{}: skipped the last {unread} bytes from line {}: an append cut off before it \
                 finished (a truncated line or half a turn); the next append removes them",
                path.display(),
                self.line_no
            );
            if self.notes.last() != Some(&note) {
                tracing::warn!("{note}");
                self.notes.push(note);
            }
        }
        Ok(())
    }

    fn commit(&mut self, batch: Vec<(ContactId, Event)>, path: &Path, line_no: u64) {
        for (cid, event) in batch {
            let stream = self.streams.entry(cid.clone()).or_default();
            if event.seq != stream.len() as u64 + 1 {
                let note = format!(
                    "{}: skipped line {line_no}: contact {cid} seq {} does not follow {}",
                    path.display(),
                    event.seq,
                    stream.len()
                );
                tracing::warn!("{note}");
                self.notes.push(note);
                continue;
            }
            stream.push(event);
        }
    }
}

/// Longest line read whole: an event (at most MAX_EVENT_BYTES) plus its envelope.
const MAX_LINE_BYTES: usize = MAX_EVENT_BYTES + 1024;

struct LineRead {
    /// Bytes consumed from the reader, the newline included.
    consumed: u64,
    /// The line ended with a newline (false: end of input first).
    complete: bool,
    /// The line was longer than the cap; `line` holds only its start.
    cut: bool,
}

/// Reads one line into `line` (without its newline), keeping at most `cap` bytes of it.
fn read_line_bounded(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<LineRead> {
    line.clear();
    let mut out = LineRead {
        consumed: 0,
        complete: false,
        cut: false,
    };
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(out);
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        let room = cap.saturating_sub(line.len());
        if chunk.len() > room {
            out.cut = true;
        }
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = done.unwrap_or(buf.len());
        reader.consume(used);
        out.consumed += used as u64;
        if done.is_some() {
            out.complete = true;
            return Ok(out);
        }
    }
}

/// Why a line of the log is not an event.
#[derive(Debug, thiserror::Error)]
enum LineError {
    #[error("longer than {MAX_LINE_BYTES} bytes")]
    TooLong,
    #[error("not JSON ({0})")]
    NotJson(serde_json::Error),
    #[error("not a JSON object")]
    NotObject,
    #[error("no contact_id")]
    NoContactId,
    #[error("{0}")]
    BadContactId(crate::domain::ContactIdError),
    #[error("batch_rest is not a number")]
    BadBatchRest,
    #[error("{0}")]
    Event(crate::domain::EventReadError),
}

fn parse_line(line: &[u8]) -> Result<(ContactId, Event, u64), LineError> {
    let mut value: serde_json::Value = serde_json::from_slice(line).map_err(LineError::NotJson)?;
    let obj = value.as_object_mut().ok_or(LineError::NotObject)?;
    let cid = match obj.remove("contact_id") {
        Some(serde_json::Value::String(s)) => {
            ContactId::parse(&s).map_err(LineError::BadContactId)?
        }
        _ => return Err(LineError::NoContactId),
    };
    let rest = match obj.remove("batch_rest") {
        None => 0,
        Some(v) => v.as_u64().ok_or(LineError::BadBatchRest)?,
    };
    Ok((cid, event_from_json(value).map_err(LineError::Event)?, rest))
}

#[async_trait]
impl EventStore for FileStore {
    async fn load(&self, contact_id: &ContactId) -> Result<History, StoreError> {
        let (me, cid) = (self.clone_handle(), contact_id.clone());
        tokio::task::spawn_blocking(move || me.load_blocking(&cid))
            .await
            .map_err(|e| StoreError::Unavailable(format!("file store task failed: {e}")))?
    }

    async fn append(
        &self,
        contact_id: &ContactId,
        expected_version: u64,
        events: Vec<Event>,
    ) -> Result<(), StoreError> {
        let (me, cid) = (self.clone_handle(), contact_id.clone());
        tokio::task::spawn_blocking(move || me.append_blocking(&cid, expected_version, events))
            .await
            .map_err(|e| StoreError::Unavailable(format!("file store task failed: {e}")))?
    }

    fn describe(&self) -> String {
        format!("file:{}", self.path.display())
    }
}

impl FileStore {
    fn clone_handle(&self) -> FileStore {
        FileStore {
            path: self.path.clone(),
            inner: Arc::clone(&self.inner),
        }
    }
}

// ---- the call index of the local log ---------------------------------------------------

use super::index::{CallIndex, CallStream, DayRange, StartedCall, CHANNEL};
use crate::domain::EventKind;
use tokio::sync::mpsc;

fn file_calls(store: &FileStore, keep: impl Fn(&StartedCall) -> bool) -> CallStream {
    let (tx, rx) = mpsc::channel(CHANNEL);
    let calls = store.first_events().map(|firsts| {
        let mut calls: Vec<StartedCall> = firsts
            .into_iter()
            .filter_map(|(contact_id, e)| match e.kind {
                EventKind::CallStarted { facts, .. } => Some(StartedCall {
                    contact_id,
                    started_at: e.at,
                    caller_hash: facts.caller_hash,
                }),
                _ => None,
            })
            .filter(|c| keep(c))
            .collect();
        calls.sort_by(|a, b| (a.started_at, &a.contact_id).cmp(&(b.started_at, &b.contact_id)));
        calls
    });
    tokio::spawn(async move {
        match calls {
            Ok(calls) => {
                for c in calls {
                    if tx.send(Ok(c)).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
            }
        }
    });
    CallStream::new(rx)
}

impl CallIndex for FileStore {
    fn calls_started(&self, days: DayRange) -> CallStream {
        file_calls(self, |c| days.contains(c.started_at))
    }

    fn calls_by_caller(&self, caller_hash: &str, days: DayRange) -> CallStream {
        let hash = caller_hash.to_string();
        file_calls(self, move |c| {
            days.contains(c.started_at) && c.caller_hash.as_deref() == Some(hash.as_str())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_within_a_bound() {
        let data = b"short\nthis line is long\nend";
        let mut r = BufReader::with_capacity(4, &data[..]);
        let mut line = Vec::new();
        let a = read_line_bounded(&mut r, &mut line, 8).expect("read");
        assert_eq!(
            (line.as_slice(), a.consumed, a.complete, a.cut),
            (&b"short"[..], 6, true, false)
        );
        let b = read_line_bounded(&mut r, &mut line, 8).expect("read");
        assert_eq!(
            (line.as_slice(), b.consumed, b.complete, b.cut),
            (&b"this lin"[..], 18, true, true)
        );
        let c = read_line_bounded(&mut r, &mut line, 8).expect("read");
        assert_eq!((c.consumed, c.complete), (3, false), "a torn last line");
    }

    #[test]
    fn an_over_long_line_is_skipped_and_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, format!("{}\n", "x".repeat(MAX_LINE_BYTES * 3))).expect("write");
        let store = FileStore::open(&path).expect("open");
        let notes = store.notes();
        assert!(notes.iter().any(|n| n.contains("longer than")), "{notes:?}");
        assert!(store.contacts().is_empty());
    }
}
