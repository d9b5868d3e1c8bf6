//! The questionnaire catalog: the versions a health authority published and the log of
//! which one the line asks (docs/questionnaire.md, "Publishing"). Two append-only records,
//! kept by every store next to its events:
//!
//! - **versions**: one record per `id@version`, immutable once written; a second write of
//!   the same `id@version` is refused by the store itself (a conditional write), whatever
//!   the caller checked before;
//! - **activations**: `1, 2, 3, ...`, each "from `at` on, new calls are asked `id@version`",
//!   appended only at the next number (optimistic, like a call's events). The latest one
//!   is what the line asks; the log answers "which version was live on that day".
//!
//! An activation carries a copy of the version's document, so the Lambda learns what to
//! ask with one read (see [`crate::questionnaires::LineQuestionnaire`]).
//!
//! Adapters: [`MemoryCatalog`] (tests), [`FileCatalog`] (next to the file store's log:
//! `PATH.questionnaires.jsonl`), and the DynamoDB store itself
//! (`crate::store::dynamodb::catalog`, reserved `#` partitions of the events table).
//! What the records mean (checking, hashing, "lower version" rules) is decided above the
//! adapters, in [`crate::questionnaires`]; adapters only keep records and refuse
//! overwrites.

use super::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One published version as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredVersion {
    pub id: String,
    pub version: u32,
    /// The questionnaire in canonical form ([`crate::domain::Questionnaire::canonical_json`]).
    pub document: String,
    /// SHA-256 of `document`, hex: what a reader checks the document against.
    pub sha256: String,
    pub published_at: DateTime<Utc>,
}

/// One entry of the activation log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activation {
    /// 1, 2, 3, ... in the order they were made.
    pub seq: u64,
    pub id: String,
    pub version: u32,
    /// From this time on, new calls start on `id@version`.
    pub at: DateTime<Utc>,
    /// The version's `sha256`, as published.
    pub sha256: String,
    /// A copy of the version's document, so the line needs one read to know what to ask.
    pub document: String,
}

impl StoredVersion {
    pub fn key(&self) -> String {
        format!("{}@{}", self.id, self.version)
    }
}

impl Activation {
    pub fn key(&self) -> String {
        format!("{}@{}", self.id, self.version)
    }
}

/// A stored record that does not read back (a hand edit, a bad copy): where it is and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// Where the record is: `id@version`, an activation number, or a line of a file.
    pub at: String,
    pub why: String,
}

/// A record as read: itself, or why it could not be read.
pub type Read<T> = Result<T, Unreadable>;

#[async_trait]
pub trait Catalog: Send + Sync {
    /// Every stored version, in the order they were published.
    async fn versions(&self) -> Result<Vec<Read<StoredVersion>>, StoreError>;

    /// One version, if stored.
    async fn version(
        &self,
        id: &str,
        version: u32,
    ) -> Result<Option<Read<StoredVersion>>, StoreError>;

    /// Stores a version; [`StoreError::Conflict`] if that `id@version` is stored already.
    async fn put_version(&self, v: &StoredVersion) -> Result<(), StoreError>;

    /// The whole activation log, oldest first.
    async fn activations(&self) -> Result<Vec<Read<Activation>>, StoreError>;

    /// The latest activation: what the line asks. One read.
    async fn current(&self) -> Result<Option<Read<Activation>>, StoreError>;

    /// Appends `a` as entry `a.seq`; [`StoreError::Conflict`] unless the log holds exactly
    /// `a.seq - 1` entries.
    async fn put_activation(&self, a: &Activation) -> Result<(), StoreError>;

    /// Where the catalog lives, for people.
    fn describe(&self) -> String;
}

pub type SharedCatalog = Arc<dyn Catalog>;

fn conflict(what: String, expected: u64) -> StoreError {
    StoreError::Conflict {
        contact_id: what,
        expected,
    }
}

// ---- memory ----------------------------------------------------------------------------

/// The catalog in memory: for tests and `--store memory`.
#[derive(Default)]
pub struct MemoryCatalog {
    inner: Mutex<Records>,
}

#[derive(Default, Clone)]
struct Records {
    versions: Vec<Read<StoredVersion>>,
    activations: Vec<Read<Activation>>,
}

impl Records {
    fn has_version(&self, id: &str, version: u32) -> bool {
        self.versions
            .iter()
            .flatten()
            .any(|v| v.id == id && v.version == version)
    }

    fn put_version(&mut self, v: &StoredVersion) -> Result<(), StoreError> {
        if self.has_version(&v.id, v.version) {
            return Err(conflict(format!("questionnaire {}", v.key()), 0));
        }
        self.versions.push(Ok(v.clone()));
        Ok(())
    }

    fn put_activation(&mut self, a: &Activation) -> Result<(), StoreError> {
        let at = self.activations.len() as u64;
        if a.seq != at + 1 {
            return Err(conflict(
                "the activation log".into(),
                a.seq.saturating_sub(1),
            ));
        }
        self.activations.push(Ok(a.clone()));
        Ok(())
    }

    fn version(&self, id: &str, version: u32) -> Option<Read<StoredVersion>> {
        self.versions
            .iter()
            .find(|v| matches!(v, Ok(v) if v.id == id && v.version == version))
            .cloned()
    }
}

impl MemoryCatalog {
    pub fn new() -> MemoryCatalog {
        MemoryCatalog::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Records> {
        // Every change is one push: a poisoned lock still holds whole records.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces a stored version's document as a bad copy would (tests of what readers do
    /// with a corrupt version).
    pub fn corrupt_version(&self, id: &str, version: u32, document: &str) {
        for v in self.lock().versions.iter_mut().flatten() {
            if v.id == id && v.version == version {
                v.document = document.to_string();
            }
        }
    }

    /// Replaces the latest activation's document (as [`MemoryCatalog::corrupt_version`]).
    pub fn corrupt_current(&self, document: &str) {
        if let Some(Ok(a)) = self.lock().activations.last_mut() {
            a.document = document.to_string();
        }
    }
}

#[async_trait]
impl Catalog for MemoryCatalog {
    async fn versions(&self) -> Result<Vec<Read<StoredVersion>>, StoreError> {
        Ok(self.lock().versions.clone())
    }
    async fn version(
        &self,
        id: &str,
        version: u32,
    ) -> Result<Option<Read<StoredVersion>>, StoreError> {
        Ok(self.lock().version(id, version))
    }
    async fn put_version(&self, v: &StoredVersion) -> Result<(), StoreError> {
        self.lock().put_version(v)
    }
    async fn activations(&self) -> Result<Vec<Read<Activation>>, StoreError> {
        Ok(self.lock().activations.clone())
    }
    async fn current(&self) -> Result<Option<Read<Activation>>, StoreError> {
        Ok(self.lock().activations.last().cloned())
    }
    async fn put_activation(&self, a: &Activation) -> Result<(), StoreError> {
        self.lock().put_activation(a)
    }
    fn describe(&self) -> String {
        "memory".into()
    }
}

// ---- file ------------------------------------------------------------------------------

/// Largest line of the catalog file read (a record holds a document of at most 256 KB,
/// which JSON escaping can grow).
const MAX_LINE_BYTES: u64 = 2 * 1024 * 1024;

/// The catalog of a file store: `EVENTS_PATH.questionnaires.jsonl`, one record per line
/// (`{"record":"version",...}` or `{"record":"activation",...}`). Writes are one line,
/// `fsync`ed, under an exclusive `flock`, after re-reading the file under that lock: two
/// processes cannot both publish one `id@version` or both take one activation number.
/// Reads re-read the file (it is small) under a shared lock.
pub struct FileCatalog {
    path: PathBuf,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
enum Line {
    Version(StoredVersion),
    Activation(Activation),
}

/// Releases the advisory lock when dropped.
struct Locked<'a>(&'a File);

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

fn io_err(path: &Path, what: &str, e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("{what} {}: {e}", path.display()))
}

impl FileCatalog {
    /// The catalog next to the event log at `events_path`.
    pub fn beside(events_path: &Path) -> FileCatalog {
        let mut name = events_path.as_os_str().to_owned();
        name.push(".questionnaires.jsonl");
        FileCatalog { path: name.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open(&self) -> Result<File, StoreError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io_err(dir, "cannot create folder", e))?;
        }
        OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(|e| io_err(&self.path, "cannot open the questionnaire catalog", e))
    }

    /// Every record, and the length of the file up to its last whole line.
    fn read_all(&self, file: &File) -> Result<(Records, u64), StoreError> {
        use std::io::Read as _;
        let mut records = Records::default();
        let mut whole = 0u64;
        let mut reader = BufReader::new(file);
        let mut line = Vec::new();
        let mut no = 0u64;
        loop {
            line.clear();
            no += 1;
            let n = (&mut reader)
                .take(MAX_LINE_BYTES + 1)
                .read_until(b'\n', &mut line)
                .map_err(|e| io_err(&self.path, "cannot read", e))?;
            if n == 0 {
                break;
            }
            let at = format!("{} line {no}", self.path.display());
            if n as u64 > MAX_LINE_BYTES {
                // Skip the rest of an over-long line.
                let more = reader
                    .skip_until(b'\n')
                    .map_err(|e| io_err(&self.path, "cannot read", e))?;
                whole += (n + more) as u64;
                records.versions.push(Err(Unreadable {
                    at,
                    why: format!("the line is over {MAX_LINE_BYTES} bytes"),
                }));
                continue;
            }
            if !line.ends_with(b"\n") {
                // A torn last line (a crash mid-write): never acknowledged, not a record;
                // the next writer cuts it off.
                break;
            }
            whole += n as u64;
            match serde_json::from_slice::<Line>(&line) {
                Ok(Line::Version(v)) => records.versions.push(Ok(v)),
                Ok(Line::Activation(a)) => {
                    let want = records.activations.len() as u64 + 1;
                    if a.seq == want {
                        records.activations.push(Ok(a));
                    } else {
                        records.activations.push(Err(Unreadable {
                            at,
                            why: format!("activation {} where {want} was due", a.seq),
                        }));
                    }
                }
                Err(e) => records.versions.push(Err(Unreadable {
                    at,
                    why: format!("not a catalog record: {e}"),
                })),
            }
        }
        Ok((records, whole))
    }

    fn read(&self) -> Result<Records, StoreError> {
        if !self.path.exists() {
            return Ok(Records::default());
        }
        let file = self.open()?;
        file.lock_shared()
            .map_err(|e| io_err(&self.path, "cannot lock", e))?;
        let _guard = Locked(&file);
        Ok(self.read_all(&file)?.0)
    }

    /// Re-reads under the exclusive lock, lets `check` refuse, then appends `line`.
    fn append(
        &self,
        line: &Line,
        check: impl FnOnce(&mut Records) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut text = serde_json::to_vec(line).map_err(|e| {
            StoreError::Invalid(format!("a catalog record does not serialise: {e}"))
        })?;
        text.push(b'\n');
        let file = self.open()?;
        file.lock()
            .map_err(|e| io_err(&self.path, "cannot lock", e))?;
        let _guard = Locked(&file);
        let (mut records, whole) = self.read_all(&file)?;
        check(&mut records)?;
        let len = file
            .metadata()
            .map_err(|e| io_err(&self.path, "cannot stat", e))?
            .len();
        if len > whole {
            // A torn tail (a crash mid-write, never acknowledged): cut it off first.
            file.set_len(whole)
                .map_err(|e| io_err(&self.path, "cannot repair", e))?;
        }
        // Appended (the file is opened for appending) and on disk before the lock goes.
        (&file)
            .write_all(&text)
            .and_then(|_| file.sync_data())
            .map_err(|e| io_err(&self.path, "cannot write", e))?;
        Ok(())
    }
}

#[async_trait]
impl Catalog for FileCatalog {
    async fn versions(&self) -> Result<Vec<Read<StoredVersion>>, StoreError> {
        Ok(self.read()?.versions)
    }
    async fn version(
        &self,
        id: &str,
        version: u32,
    ) -> Result<Option<Read<StoredVersion>>, StoreError> {
        Ok(self.read()?.version(id, version))
    }
    async fn put_version(&self, v: &StoredVersion) -> Result<(), StoreError> {
        self.append(&Line::Version(v.clone()), |r| r.put_version(v))
    }
    async fn activations(&self) -> Result<Vec<Read<Activation>>, StoreError> {
        Ok(self.read()?.activations)
    }
    async fn current(&self) -> Result<Option<Read<Activation>>, StoreError> {
        Ok(self.read()?.activations.pop())
    }
    async fn put_activation(&self, a: &Activation) -> Result<(), StoreError> {
        self.append(&Line::Activation(a.clone()), |r| r.put_activation(a))
    }
    fn describe(&self) -> String {
        format!("file:{}", self.path.display())
    }
}
