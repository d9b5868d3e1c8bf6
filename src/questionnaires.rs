//! Questionnaires as published data (docs/questionnaire.md, "Publishing"): what
//! `triage questionnaire publish | list | show | activate | live` do, and how the line finds
//! what to ask.
//!
//! - **Publishing** stores an immutable version ([`publish`]): the document is checked
//!   first ([`crate::domain::check`]; nothing is written when it has a problem), kept in
//!   its canonical form with its SHA-256, and refused when that `id@version` is stored with
//!   other content (the difference is shown) or when a higher version of the id exists.
//!   The versions this build embeds (the seed's `covid19@1`) count as published.
//! - **Activating** appends to the activation log ([`activate`]): from its time on, new
//!   calls start on that version. The log answers which version was live when
//!   ([`Versions::live_during`]); before the first activation the line asks the embedded
//!   default.
//! - **The line** ([`LineQuestionnaire`]) reads the latest activation at most once per
//!   refresh interval (default a minute) per process, only when a call starts, and keeps
//!   asking what it had when that read fails or the activation cannot be read. A call in
//!   progress always finishes on the version it started with: its `CallStarted` names it,
//!   and a version this process has not seen is read once ([`LineQuestionnaire::resolve`]).
//! - **Readers** ([`load`]) make every stored version known to the fold, so trails, calls,
//!   stats, exports and reports show each call with its own version's texts and weights;
//!   a version that cannot be read is named, and its calls are reported as unreadable.

use crate::domain::check::{check, Problem};
use crate::domain::Questionnaire;
use crate::store::catalog::{Activation, Catalog, SharedCatalog, StoredVersion, Unreadable};
use crate::store::StoreError;
use chrono::{DateTime, NaiveDate, Utc};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// How often the line looks for a newly activated version, by default.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(60);

/// SHA-256 of a document, as lowercase hex.
pub fn sha256_hex(document: &str) -> String {
    let digest = Sha256::digest(document.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Why a publication was refused. Nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the questionnaire has {} problem(s); fix them and publish again", .0.len())]
    Problems(Vec<Problem>),
    #[error("{key} is published already with other content; versions never change: publish it as a new version\n{diff}")]
    Differs { key: String, diff: String },
    #[error("{key} is lower than {id}@{highest}, which is published already; publish {id}@{next} or higher", next = .highest + 1)]
    Lower {
        key: String,
        id: String,
        highest: u32,
    },
    #[error("{key} is stored but cannot be read ({why}), so it cannot be compared; publish a new version")]
    StoredUnreadable { key: String, why: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a publication did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// Stored now.
    New(StoredVersion),
    /// The same content is published already (or embedded): nothing to do.
    Same { key: String, built_in: bool },
}

/// A unified diff of two documents, stored first.
fn diff(stored: &str, new: &str) -> String {
    similar::TextDiff::from_lines(stored, new)
        .unified_diff()
        .context_radius(2)
        .header("published", "this file")
        .to_string()
}

/// The version a stored record holds, checked: its hash, its document, and that the
/// document is the `id@version` the record says.
pub fn read_version(
    id: &str,
    version: u32,
    sha256: &str,
    document: &str,
) -> Result<Questionnaire, String> {
    if sha256_hex(document) != sha256 {
        return Err("its document does not match its SHA-256 (changed after publishing)".into());
    }
    let q = check(document).map_err(|problems| {
        let first = problems
            .first()
            .map(|p| format!("{}: {}", p.path, p.what))
            .unwrap_or_default();
        format!(
            "its document has {} problem(s), first {first}",
            problems.len()
        )
    })?;
    if q.id != id || q.version != version {
        return Err(format!("its document is {}, not {id}@{version}", q.key()));
    }
    Ok(q)
}

/// Checks `text` and stores it as a new immutable version (see the module docs).
pub async fn publish(
    catalog: &dyn Catalog,
    text: &str,
    now: DateTime<Utc>,
) -> Result<Published, PublishError> {
    let q = check(text).map_err(PublishError::Problems)?;
    let document = q.canonical_json();
    let key = q.key();
    if let Some(built_in) = Questionnaire::catalog()
        .iter()
        .find(|b| b.id == q.id && b.version == q.version)
    {
        let embedded = built_in.canonical_json();
        return if embedded == document {
            Ok(Published::Same {
                key,
                built_in: true,
            })
        } else {
            Err(PublishError::Differs {
                key,
                diff: diff(&embedded, &document),
            })
        };
    }
    let same_or_differs = |stored: Result<StoredVersion, Unreadable>| match stored {
        Ok(s) if s.document == document => Ok(Published::Same {
            key: key.clone(),
            built_in: false,
        }),
        Ok(s) => Err(PublishError::Differs {
            key: key.clone(),
            diff: diff(&s.document, &document),
        }),
        Err(u) => Err(PublishError::StoredUnreadable {
            key: key.clone(),
            why: u.why,
        }),
    };
    if let Some(stored) = catalog.version(&q.id, q.version).await? {
        return same_or_differs(stored);
    }
    let highest = catalog
        .versions()
        .await?
        .into_iter()
        .flatten()
        .filter(|v| v.id == q.id)
        .map(|v| v.version)
        .chain(
            Questionnaire::catalog()
                .iter()
                .filter(|b| b.id == q.id)
                .map(|b| b.version),
        )
        .max();
    if let Some(highest) = highest.filter(|h| *h > q.version) {
        return Err(PublishError::Lower {
            key,
            id: q.id.clone(),
            highest,
        });
    }
    let record = StoredVersion {
        id: q.id.clone(),
        version: q.version,
        sha256: sha256_hex(&document),
        document: document.clone(),
        published_at: now,
    };
    match catalog.put_version(&record).await {
        Ok(()) => Ok(Published::New(record)),
        Err(StoreError::Conflict { .. }) => {
            // Published meanwhile (by someone else, or by our own lost response).
            match catalog.version(&q.id, q.version).await? {
                Some(stored) => same_or_differs(stored),
                None => Err(StoreError::Unavailable(format!(
                    "publishing {key} conflicted, but the version is not stored; try again"
                ))
                .into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Why an activation was refused. Nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum ActivateError {
    #[error("{0} is not published: publish it first (`triage questionnaire publish FILE`)")]
    Unknown(String),
    #[error("{key} is stored but cannot be read ({why}); it cannot be activated")]
    Unreadable { key: String, why: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Attempts at taking the next activation number when others take it first.
const ACTIVATE_ATTEMPTS: usize = 5;

/// The document and hash a version is activated with: embedded or stored, readable.
async fn activatable(
    catalog: &dyn Catalog,
    id: &str,
    version: u32,
) -> Result<(String, String), ActivateError> {
    let key = format!("{id}@{version}");
    if let Some(b) = Questionnaire::catalog()
        .iter()
        .find(|b| b.id == id && b.version == version)
    {
        let doc = b.canonical_json();
        return Ok((sha256_hex(&doc), doc));
    }
    match catalog.version(id, version).await? {
        None => Err(ActivateError::Unknown(key)),
        Some(Err(u)) => Err(ActivateError::Unreadable { key, why: u.why }),
        Some(Ok(v)) => match read_version(id, version, &v.sha256, &v.document) {
            Ok(_) => Ok((v.sha256, v.document)),
            Err(why) => Err(ActivateError::Unreadable { key, why }),
        },
    }
}

/// Records that from `now` on new calls start on `id@version`.
pub async fn activate(
    catalog: &dyn Catalog,
    id: &str,
    version: u32,
    now: DateTime<Utc>,
) -> Result<Activation, ActivateError> {
    let (sha256, document) = activatable(catalog, id, version).await?;
    let mut last = None;
    for _ in 0..ACTIVATE_ATTEMPTS {
        let seq = catalog.activations().await?.len() as u64 + 1;
        let a = Activation {
            seq,
            id: id.to_string(),
            version,
            at: now,
            sha256: sha256.clone(),
            document: document.clone(),
        };
        match catalog.put_activation(&a).await {
            Ok(()) => return Ok(a),
            Err(e @ StoreError::Conflict { .. }) => last = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last
        .unwrap_or_else(|| StoreError::Unavailable("the activation log kept moving".into()))
        .into())
}

/// One version as readers see it.
#[derive(Debug, Clone)]
pub struct VersionInfo {
    pub id: String,
    pub version: u32,
    /// `None` for a version this build embeds.
    pub published_at: Option<DateTime<Utc>>,
    pub sha256: String,
    /// The version, known to the fold from now on; or why it cannot be read.
    pub questionnaire: Result<&'static Questionnaire, String>,
}

impl VersionInfo {
    pub fn key(&self) -> String {
        format!("{}@{}", self.id, self.version)
    }
}

/// One stretch of time a version was what new calls started on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    pub key: String,
    /// `None`: from the start (the embedded default, before any activation).
    pub from: Option<DateTime<Utc>>,
    /// `None`: still live.
    pub until: Option<DateTime<Utc>>,
}

/// The catalog as readers use it: every version (embedded first), the activation log, and
/// what could not be read.
#[derive(Debug, Clone, Default)]
pub struct Versions {
    pub versions: Vec<VersionInfo>,
    pub activations: Vec<Activation>,
    pub unreadable: Vec<Unreadable>,
}

/// Reads the whole catalog and makes every readable version known to the fold
/// ([`Questionnaire::register`]).
pub async fn load(catalog: &dyn Catalog) -> Result<Versions, StoreError> {
    let mut out = Versions::default();
    for b in Questionnaire::catalog() {
        out.versions.push(VersionInfo {
            id: b.id.clone(),
            version: b.version,
            published_at: None,
            sha256: sha256_hex(&b.canonical_json()),
            questionnaire: Ok(b),
        });
    }
    for v in catalog.versions().await? {
        let v = match v {
            Ok(v) => v,
            Err(u) => {
                out.unreadable.push(u);
                continue;
            }
        };
        let q = read_version(&v.id, v.version, &v.sha256, &v.document)
            .and_then(|q| Questionnaire::register(q).map_err(|e| e.to_string()));
        if let Err(why) = &q {
            out.unreadable.push(Unreadable {
                at: v.key(),
                why: why.clone(),
            });
        }
        out.versions.push(VersionInfo {
            id: v.id,
            version: v.version,
            published_at: Some(v.published_at),
            sha256: v.sha256,
            questionnaire: q,
        });
    }
    for a in catalog.activations().await? {
        match a {
            Ok(a) => out.activations.push(a),
            Err(u) => out.unreadable.push(u),
        }
    }
    Ok(out)
}

impl Versions {
    /// One version, if known.
    pub fn get(&self, id: &str, version: u32) -> Option<&VersionInfo> {
        self.versions
            .iter()
            .find(|v| v.id == id && v.version == version)
    }

    /// What new calls start on now: the latest activation, else the embedded default.
    pub fn active(&self) -> String {
        self.activations
            .last()
            .map(Activation::key)
            .unwrap_or_else(|| Questionnaire::embedded().key())
    }

    /// Every stretch of the activation log, oldest first.
    pub fn timeline(&self) -> Vec<Live> {
        let mut out = vec![Live {
            key: Questionnaire::embedded().key(),
            from: None,
            until: self.activations.first().map(|a| a.at),
        }];
        for (i, a) in self.activations.iter().enumerate() {
            out.push(Live {
                key: a.key(),
                from: Some(a.at),
                until: self.activations.get(i + 1).map(|n| n.at),
            });
        }
        // A stretch that ended where it began (two activations at once) was never live.
        out.retain(|l| match (l.from, l.until) {
            (Some(f), Some(u)) => u > f,
            _ => true,
        });
        out
    }

    /// The stretches live at some time during the UTC day `day`.
    pub fn live_during(&self, day: NaiveDate) -> Vec<Live> {
        let start = day.and_time(chrono::NaiveTime::MIN).and_utc();
        let end = start + chrono::Duration::days(1);
        self.timeline()
            .into_iter()
            .filter(|l| l.from.is_none_or(|f| f < end) && l.until.is_none_or(|u| u > start))
            .collect()
    }
}

/// What the line asks new calls, as one process (a Lambda container) knows it.
pub struct LineQuestionnaire {
    catalog: Option<SharedCatalog>,
    refresh: Duration,
    state: Mutex<LineState>,
    /// Held while the activation log is read.
    reading: tokio::sync::Mutex<()>,
    reads: AtomicU64,
}

struct LineState {
    current: &'static Questionnaire,
    /// The activation `current` came from (0: the embedded default).
    seq: u64,
    /// When the activation log was last read.
    checked: Option<Instant>,
}

impl LineQuestionnaire {
    /// Always the embedded default: no catalog.
    pub fn embedded() -> LineQuestionnaire {
        LineQuestionnaire {
            catalog: None,
            refresh: DEFAULT_REFRESH,
            state: Mutex::new(LineState {
                current: Questionnaire::embedded(),
                seq: 0,
                checked: None,
            }),
            reading: tokio::sync::Mutex::new(()),
            reads: AtomicU64::new(0),
        }
    }

    /// Follows `catalog`'s activations, reading them at most once per `refresh`.
    pub fn following(catalog: SharedCatalog, refresh: Duration) -> LineQuestionnaire {
        let mut line = LineQuestionnaire::embedded();
        line.catalog = Some(catalog);
        line.refresh = refresh;
        line
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LineState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What new calls are asked, without reading anything.
    pub fn cached(&self) -> &'static Questionnaire {
        self.lock().current
    }

    /// Reads of the activation log so far (tests count them).
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// What a call starting now is asked: the latest activation, read again when the last
    /// read is older than the refresh interval. A failed read, or an activation that
    /// cannot be read, keeps what was asked before (logged; tried again after the interval).
    pub async fn for_new_call(&self) -> &'static Questionnaire {
        let Some(catalog) = &self.catalog else {
            return self.cached();
        };
        let due = |s: &LineState| s.checked.is_none_or(|t| t.elapsed() >= self.refresh);
        {
            let s = self.lock();
            if !due(&s) {
                return s.current;
            }
        }
        // One read at a time: calls starting while it is under way (a process serving
        // several at once, such as `triage seed-demo`) wait for its answer rather than take
        // the version it is about to replace.
        let _reading = self.reading.lock().await;
        {
            let s = self.lock();
            if !due(&s) {
                return s.current;
            }
        }
        self.reads.fetch_add(1, Ordering::Relaxed);
        let read = catalog.current().await;
        let mut s = self.lock();
        // Marked read only now, with the answer in place: until then every caller waits
        // for this read (above) instead of taking the version it may replace.
        s.checked = Some(Instant::now());
        let asking = s.current.key();
        match read {
            Ok(None) => {}
            Ok(Some(Ok(a))) if a.seq == s.seq => {}
            Ok(Some(Ok(a))) => {
                match read_version(&a.id, a.version, &a.sha256, &a.document)
                    .and_then(|q| Questionnaire::register(q).map_err(|e| e.to_string()))
                {
                    Ok(q) => {
                        tracing::info!(questionnaire = %q.key(), activation = a.seq, "new calls now start on this questionnaire");
                        s.current = q;
                        s.seq = a.seq;
                    }
                    Err(why) => tracing::error!(
                        activation = a.seq,
                        questionnaire = %a.key(),
                        %why,
                        still_asking = %asking,
                        "the active questionnaire cannot be read; new calls keep the version this container has"
                    ),
                }
            }
            Ok(Some(Err(u))) => tracing::error!(
                record = %u.at,
                why = %u.why,
                still_asking = %asking,
                "the latest activation cannot be read; new calls keep the version this container has"
            ),
            Err(e) => tracing::warn!(
                error = %e,
                still_asking = %asking,
                "cannot read which questionnaire is active; new calls keep the version this container has"
            ),
        }
        s.current
    }

    /// Makes `id@version` known to the fold if it is not: a call in progress on a version
    /// this process has not seen (started by another container). Read once, then known.
    pub async fn resolve(&self, id: &str, version: u32) -> Result<(), String> {
        resolve_in(self.catalog.as_deref(), id, version).await
    }
}

/// Makes `id@version` known to the fold if it is not, reading it from `catalog`.
pub async fn resolve_in(
    catalog: Option<&dyn Catalog>,
    id: &str,
    version: u32,
) -> Result<(), String> {
    if Questionnaire::lookup(id, version).is_some() {
        return Ok(());
    }
    let Some(catalog) = catalog else {
        return Err(format!(
            "{id}@{version} is not embedded and no catalog is open"
        ));
    };
    match catalog.version(id, version).await {
        Ok(Some(Ok(v))) => read_version(id, version, &v.sha256, &v.document)
            .and_then(|q| Questionnaire::register(q).map_err(|e| e.to_string()))
            .map(|_| ()),
        Ok(Some(Err(u))) => Err(u.why),
        Ok(None) => Err(format!(
            "{id}@{version} is not published in {}",
            catalog.describe()
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// The catalog a process reads versions it has not seen from, when a stored call names one
/// ([`know_started`]): set once at start by processes that fold calls of any version (the
/// projector). The fold's lookup is process-wide ([`Questionnaire::lookup`]), so its source
/// is too.
static SOURCE: std::sync::OnceLock<SharedCatalog> = std::sync::OnceLock::new();

/// Sets the catalog [`know_started`] reads from (the first call wins).
pub fn read_versions_from(catalog: SharedCatalog) {
    let _ = SOURCE.set(catalog);
}

/// Makes the version the call of `history` started on known to the fold, reading it from
/// the catalog of [`read_versions_from`] if this process has not seen it. An error says why
/// it cannot be known; the fold then reports the call as unreadable.
pub async fn know_started(history: &[crate::domain::Event]) -> Result<(), String> {
    match history.first().map(|e| &e.kind) {
        Some(crate::domain::EventKind::CallStarted {
            questionnaire,
            questionnaire_version,
            ..
        }) => {
            resolve_in(
                SOURCE.get().map(|c| &**c),
                questionnaire,
                *questionnaire_version,
            )
            .await
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::catalog::MemoryCatalog;
    use std::sync::Arc;

    fn v2() -> Questionnaire {
        let mut q = Questionnaire::embedded().clone();
        q.version = 2;
        q.questions[0].weight = 20;
        q
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("a time")
    }

    #[tokio::test]
    async fn publish_is_immutable_and_refuses_lower_versions() {
        let cat = MemoryCatalog::new();
        let doc = v2().canonical_json();
        let Published::New(stored) = publish(&cat, &doc, at("2026-03-01T00:00:00Z"))
            .await
            .expect("stored")
        else {
            panic!("not new")
        };
        assert_eq!(stored.sha256, sha256_hex(&stored.document));
        // The same content again, spaced otherwise: nothing to do.
        let compact = serde_json::to_string(&v2()).expect("json");
        assert!(matches!(
            publish(&cat, &compact, at("2026-03-02T00:00:00Z")).await,
            Ok(Published::Same {
                built_in: false,
                ..
            })
        ));
        // Other content under the same version: refused, with the difference.
        let mut changed = v2();
        changed.questions[0].weight = 21;
        match publish(&cat, &changed.canonical_json(), at("2026-03-02T00:00:00Z")).await {
            Err(PublishError::Differs { key, diff }) => {
                assert_eq!(key, "covid19@2");
                assert!(
                    diff.contains("-      \"weight\": 20,")
                        && diff.contains("+      \"weight\": 21,"),
                    "{diff}"
                );
            }
            other => panic!("{other:?}"),
        }
        // The seed's version cannot change either.
        let mut seed = Questionnaire::embedded().clone();
        seed.monitor_threshold = 30;
        assert!(matches!(
            publish(&cat, &seed.canonical_json(), at("2026-03-02T00:00:00Z")).await,
            Err(PublishError::Differs { .. })
        ));
        assert!(matches!(
            publish(
                &cat,
                &Questionnaire::embedded().canonical_json(),
                at("2026-03-02T00:00:00Z")
            )
            .await,
            Ok(Published::Same { built_in: true, .. })
        ));
        // A version lower than one published is refused.
        let mut v5 = v2();
        v5.version = 5;
        publish(&cat, &v5.canonical_json(), at("2026-03-03T00:00:00Z"))
            .await
            .expect("v5");
        let mut v4 = v2();
        v4.version = 4;
        match publish(&cat, &v4.canonical_json(), at("2026-03-03T00:00:00Z")).await {
            Err(e @ PublishError::Lower { .. }) => assert_eq!(
                e.to_string(),
                "covid19@4 is lower than covid19@5, which is published already; publish covid19@6 or higher"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(cat.versions().await.expect("read").len(), 2);
    }

    #[tokio::test]
    async fn bad_documents_store_nothing() {
        let cat = MemoryCatalog::new();
        let mut q = v2();
        q.questions[1].id = q.questions[0].id.clone();
        assert!(matches!(
            publish(&cat, &q.canonical_json(), Utc::now()).await,
            Err(PublishError::Problems(p)) if !p.is_empty()
        ));
        assert!(matches!(
            publish(&cat, "{", Utc::now()).await,
            Err(PublishError::Problems(_))
        ));
        assert!(cat.versions().await.expect("read").is_empty());
        assert!(matches!(
            activate(&cat, "covid19", 7, Utc::now()).await,
            Err(ActivateError::Unknown(k)) if k == "covid19@7"
        ));
        assert!(cat.activations().await.expect("read").is_empty());
    }

    #[tokio::test]
    async fn the_log_says_what_was_live_when() {
        let cat = MemoryCatalog::new();
        publish(&cat, &v2().canonical_json(), at("2026-03-01T08:00:00Z"))
            .await
            .expect("v2");
        activate(&cat, "covid19", 2, at("2026-03-02T10:00:00Z"))
            .await
            .expect("on");
        activate(&cat, "covid19", 1, at("2026-03-04T00:00:00Z"))
            .await
            .expect("back");
        let versions = load(&cat).await.expect("load");
        assert_eq!(versions.active(), "covid19@1");
        let keys = |day: &str| -> Vec<String> {
            versions
                .live_during(day.parse().expect("day"))
                .into_iter()
                .map(|l| l.key)
                .collect()
        };
        assert_eq!(keys("2026-03-01"), ["covid19@1"]);
        assert_eq!(keys("2026-03-02"), ["covid19@1", "covid19@2"]);
        assert_eq!(keys("2026-03-03"), ["covid19@2"]);
        assert_eq!(keys("2026-03-04"), ["covid19@1"]);
        assert_eq!(
            Questionnaire::lookup("covid19", 2).map(|q| q.questions[0].weight),
            Some(20)
        );
    }

    /// A catalog that counts the line's reads and fails them on demand.
    struct Flaky {
        inner: MemoryCatalog,
        reads: AtomicU64,
        failing: std::sync::atomic::AtomicBool,
        /// How long a read of the log takes.
        delay: Duration,
    }

    #[async_trait::async_trait]
    impl Catalog for Flaky {
        async fn versions(
            &self,
        ) -> Result<Vec<crate::store::catalog::Read<StoredVersion>>, StoreError> {
            self.inner.versions().await
        }
        async fn version(
            &self,
            id: &str,
            v: u32,
        ) -> Result<Option<crate::store::catalog::Read<StoredVersion>>, StoreError> {
            self.inner.version(id, v).await
        }
        async fn put_version(&self, v: &StoredVersion) -> Result<(), StoreError> {
            self.inner.put_version(v).await
        }
        async fn activations(
            &self,
        ) -> Result<Vec<crate::store::catalog::Read<Activation>>, StoreError> {
            self.inner.activations().await
        }
        async fn current(
            &self,
        ) -> Result<Option<crate::store::catalog::Read<Activation>>, StoreError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            if self.failing.load(Ordering::SeqCst) {
                return Err(StoreError::Unavailable(
                    "the test turned the catalog off".into(),
                ));
            }
            self.inner.current().await
        }
        async fn put_activation(&self, a: &Activation) -> Result<(), StoreError> {
            self.inner.put_activation(a).await
        }
        fn describe(&self) -> String {
            "flaky".into()
        }
    }

    /// Through the Lambda's turn: many new calls in a minute cost one read of the
    /// activation log; a failed read keeps the version; calls in progress keep theirs.
    #[tokio::test(start_paused = true)]
    async fn the_turn_reads_the_log_once_a_minute_whatever_the_calls() {
        use crate::app::App;
        use crate::store::memory::MemoryStore;
        let cat = Arc::new(Flaky {
            inner: MemoryCatalog::new(),
            reads: AtomicU64::new(0),
            failing: false.into(),
            delay: Duration::ZERO,
        });
        let app = App::new(Arc::new(MemoryStore::new())).with_catalog(cat.clone(), DEFAULT_REFRESH);
        let first = |cid: String| {
            let app = app.clone();
            async move {
                let ev = crate::flow::voice_event(&cid, "+34600000001", &[]);
                app.handle_value(ev).await.expect("turn")
            }
        };
        for i in 0..30 {
            first(format!("00000000-0000-4000-8000-{i:012}")).await;
        }
        assert_eq!(
            cat.reads.load(Ordering::SeqCst),
            1,
            "30 new calls, one read"
        );
        publish(&*cat, &v2().canonical_json(), Utc::now())
            .await
            .expect("v2");
        activate(&*cat, "covid19", 2, Utc::now()).await.expect("on");
        tokio::time::advance(DEFAULT_REFRESH).await;
        first("00000000-0000-4000-8000-100000000000".into()).await;
        assert_eq!(cat.reads.load(Ordering::SeqCst), 2);
        assert_eq!(app.line().cached().key(), "covid19@2");
        // The catalog goes away: new calls keep covid19@2, one try a minute.
        cat.failing.store(true, Ordering::SeqCst);
        tokio::time::advance(DEFAULT_REFRESH).await;
        for i in 0..10 {
            first(format!("00000000-0000-4000-8000-2000000000{i:02}")).await;
        }
        assert_eq!(cat.reads.load(Ordering::SeqCst), 3);
        assert_eq!(app.line().cached().key(), "covid19@2");
        // Every one of those calls started on covid19@2; the first 30 stay on covid19@1.
        let store = app.store();
        let version_of = |cid: &str| {
            let store = store.clone();
            let cid = crate::domain::ContactId::parse(cid).expect("id");
            async move {
                match store
                    .load(&cid)
                    .await
                    .expect("load")
                    .first()
                    .map(|e| e.kind.clone())
                {
                    Some(crate::domain::EventKind::CallStarted {
                        questionnaire_version,
                        ..
                    }) => questionnaire_version,
                    other => panic!("{other:?}"),
                }
            }
        };
        assert_eq!(version_of("00000000-0000-4000-8000-000000000000").await, 1);
        assert_eq!(version_of("00000000-0000-4000-8000-100000000000").await, 2);
        assert_eq!(version_of("00000000-0000-4000-8000-200000000009").await, 2);
    }

    /// Calls starting while the one read is under way wait for it: none takes the version
    /// the read is about to replace (seen as a seed-demo call on the old version).
    #[tokio::test(start_paused = true)]
    async fn calls_starting_during_the_read_get_its_answer() {
        let cat = Arc::new(Flaky {
            inner: MemoryCatalog::new(),
            reads: AtomicU64::new(0),
            failing: false.into(),
            delay: Duration::from_millis(50),
        });
        publish(&*cat, &v2().canonical_json(), Utc::now())
            .await
            .expect("v2");
        activate(&*cat, "covid19", 2, Utc::now()).await.expect("on");
        let line = Arc::new(LineQuestionnaire::following(cat.clone(), DEFAULT_REFRESH));
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let line = line.clone();
            set.spawn(async move { line.for_new_call().await.key() });
        }
        while let Some(key) = set.join_next().await {
            assert_eq!(key.expect("task"), "covid19@2");
        }
        assert_eq!(
            cat.reads.load(Ordering::SeqCst),
            1,
            "one read for all eight"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_line_reads_at_most_once_a_minute_and_keeps_its_version_on_failure() {
        let cat = Arc::new(MemoryCatalog::new());
        let line = LineQuestionnaire::following(cat.clone(), Duration::from_secs(60));
        assert_eq!(line.for_new_call().await.key(), "covid19@1");
        publish(&*cat, &v2().canonical_json(), Utc::now())
            .await
            .expect("v2");
        activate(&*cat, "covid19", 2, Utc::now()).await.expect("on");
        for _ in 0..100 {
            assert_eq!(
                line.for_new_call().await.key(),
                "covid19@1",
                "cached for a minute"
            );
        }
        assert_eq!(line.reads(), 1);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(line.for_new_call().await.key(), "covid19@2");
        assert_eq!(line.reads(), 2);
        // A corrupt activation: the line keeps asking what it has.
        let mut v3 = v2();
        v3.version = 3;
        publish(&*cat, &v3.canonical_json(), Utc::now())
            .await
            .expect("v3");
        activate(&*cat, "covid19", 3, Utc::now()).await.expect("on");
        cat.corrupt_current("{\"id\": \"covid19\"}");
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(line.for_new_call().await.key(), "covid19@2");
        assert_eq!(line.reads(), 3);
    }
}
