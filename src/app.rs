//! One turn of a call, shared by the Lambda and the CLI: load -> fold -> decide -> append
//! -> respond, retrying on a concurrency conflict. `triage invoke` answers exactly as the
//! deployed Lambda does because both call [`App::handle_bytes`] / [`App::handle_value`].

use crate::connect::{self, CallerHasher, InputError, TurnRequest};
use crate::domain::{
    decide, reply_recorded, reply_replayed, CallState, Decision, Event, EventKind, Lang,
    Questionnaire, ReplayReason, Reply, Warning,
};
use crate::questionnaires::LineQuestionnaire;
use crate::store::catalog::SharedCatalog;
use crate::store::warm::WarmHistories;
use crate::store::{History, SharedStore, StoreError};
use chrono::{DateTime, Utc};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, error, info, warn};
use uuid::Uuid;

pub use crate::connect::Response;

/// Load/decide/append attempts per invocation. A conflict means another invocation of the
/// same contact won the race; after re-reading, the turn is normally a retry (no write), so
/// a second attempt almost always settles it.
pub const MAX_TURN_ATTEMPTS: u32 = 3;

pub use crate::settings::DEFAULT_TURN_BUDGET;

/// Where a turn takes the time it records. The wall clock in production; the synthetic
/// demo generator (`triage seed-demo`) gives calls on past days their own clock.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

#[derive(Clone)]
pub struct App {
    store: SharedStore,
    /// What new calls are asked: the embedded default, or the catalog's active version
    /// ([`App::with_catalog`]).
    line: Arc<LineQuestionnaire>,
    hasher: Option<CallerHasher>,
    budget: Duration,
    clock: Clock,
    /// The Connect instance whose contact events are recorded (others are skipped).
    instance: Option<String>,
    /// The histories this process last saw ([`App::with_warm_histories`]); none by default.
    warm: Option<Arc<WarmHistories>>,
    /// Audio is recorded only from streams with this prefix (`TRIAGE_AUDIO_STREAM_PREFIX`).
    audio_prefix: Option<String>,
}

/// What one invocation of the Lambda was, answered: a turn of a call, or a contact event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// A ContactFlowEvent: the flow's response.
    Turn(Response),
    /// An Amazon Connect contact event: what was recorded for it.
    ContactEvent(EventOutcome),
    /// The answers bot's code hook: the answer to Lex ([`connect::lex_hook`]).
    LexHook(serde_json::Value),
}

impl serde::Serialize for Handled {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Handled::Turn(r) => r.serialize(s),
            Handled::ContactEvent(o) => o.serialize(s),
            Handled::LexHook(v) => v.serialize(s),
        }
    }
}

/// What a contact event recorded (EventBridge ignores a target's answer; it is for logs,
/// `triage invoke` and tests).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EventOutcome {
    /// The event recorded (`CallEnded`), or none.
    pub recorded: Option<&'static str>,
    /// Why nothing was recorded, when nothing was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<&'static str>,
}

impl EventOutcome {
    fn skipped(why: &'static str) -> EventOutcome {
        EventOutcome {
            recorded: None,
            skipped: Some(why),
        }
    }
}

/// An invocation that could not be served: bad input (never retried usefully), or the store
/// failing a contact event (the Lambda's error makes EventBridge's async invocation retry).
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("recording the contact event failed")]
    Store(#[source] StoreError),
}

impl App {
    pub fn new(store: SharedStore) -> App {
        App {
            store,
            line: Arc::new(LineQuestionnaire::embedded()),
            hasher: None,
            budget: DEFAULT_TURN_BUDGET,
            clock: Arc::new(Utc::now),
            instance: None,
            warm: None,
            audio_prefix: None,
        }
    }

    /// Keeps the last `capacity` calls' histories in this process, so that a turn of a call
    /// this container served last time skips its read (the Lambda, where each read is a
    /// DynamoDB `Query`). Safe with a stale history: see [`crate::store::warm`].
    pub fn with_warm_histories(mut self, capacity: usize) -> App {
        self.warm = (capacity > 0).then(|| Arc::new(WarmHistories::new(capacity)));
        self
    }

    /// New calls start on the version `catalog` has active (read at most once per
    /// `refresh`); calls in progress finish on their own version, read from `catalog` when
    /// this process has not seen it (see [`crate::questionnaires`]).
    pub fn with_catalog(mut self, catalog: SharedCatalog, refresh: Duration) -> App {
        self.line = Arc::new(LineQuestionnaire::following(catalog, refresh));
        self
    }

    /// What new calls are asked, as this process knows it.
    pub fn line(&self) -> &LineQuestionnaire {
        &self.line
    }

    /// Makes the version a stored call started on known to the fold, if it is not yet (a
    /// version published after this process read the catalog, or never active here).
    async fn know_version(&self, history: &[Event]) {
        if let Some(Event {
            kind:
                EventKind::CallStarted {
                    questionnaire,
                    questionnaire_version,
                    ..
                },
            ..
        }) = history.first()
        {
            if let Err(why) = self
                .line
                .resolve(questionnaire, *questionnaire_version)
                .await
            {
                warn!(questionnaire = %questionnaire, version = questionnaire_version, %why, "the call's questionnaire version cannot be read");
            }
        }
    }

    /// How many calls' histories are kept warm (tests).
    pub fn warm_calls(&self) -> usize {
        self.warm.as_ref().map_or(0, |w| w.len())
    }

    /// The deployment's settings: the caller-hash key and the turn budget.
    pub fn with_settings(self, settings: &crate::Settings) -> App {
        let mut app = self
            .with_caller_hasher(settings.caller_hasher.clone())
            .with_budget(settings.turn_budget.0);
        app.instance = settings.connect_instance_arn.clone();
        app.audio_prefix = settings.audio_stream_prefix.clone();
        app
    }

    /// Record contact events of this Connect instance only (others are logged and skipped).
    pub fn with_instance(mut self, instance_arn: Option<String>) -> App {
        self.instance = instance_arn;
        self
    }

    /// Serves whatever the Lambda was invoked with: a ContactFlowEvent (a turn, read on the
    /// hot path exactly as [`App::handle_bytes`] reads it) or, when that does not read, an
    /// Amazon Connect contact event from EventBridge (docs/contracts.md, "Contact events").
    pub async fn handle_any(&self, bytes: &[u8]) -> Result<Handled, HandleError> {
        match connect::parse_invocation(bytes, self.hasher.as_ref())? {
            connect::Invoked::Turn(req) => Ok(Handled::Turn(self.turn(req).await)),
            connect::Invoked::ContactEvent(event) => self
                .contact_event(event)
                .await
                .map(Handled::ContactEvent)
                .map_err(HandleError::Store),
            connect::Invoked::LexHook(event) => {
                // The mode only: never the words (src/connect/lex_hook.rs).
                info!(source = %event.source, input_mode = %event.input_mode, "answers bot code hook");
                Ok(Handled::LexHook(connect::lex_hook::respond(&event)))
            }
        }
    }

    /// Records a contact's `DISCONNECTED` as `CallEnded`: conditionally, once. A redelivered
    /// event, another event type, another instance's contact, or a contact this service never
    /// saw records nothing (the last two are logged).
    #[tracing::instrument(name = "contact_event", skip_all, fields(contact_id = %event.contact_id))]
    pub async fn contact_event(
        &self,
        event: connect::ContactEvent,
    ) -> Result<EventOutcome, StoreError> {
        if event.event_type != "DISCONNECTED" {
            info!(event_type = %event.event_type, "contact event of another type: recorded nothing");
            return Ok(EventOutcome::skipped("not a DISCONNECTED event"));
        }
        if let (Some(ours), Some(theirs)) = (&self.instance, &event.instance_arn) {
            if ours != theirs {
                warn!(instance = %theirs, "contact event of another Connect instance: recorded nothing");
                return Ok(EventOutcome::skipped("another Connect instance"));
            }
        }
        let mut last_conflict = None;
        for _ in 1..=MAX_TURN_ATTEMPTS {
            let history = self.store.load(&event.contact_id).await?;
            self.know_version(&history).await;
            let state = CallState::fold(&history)
                .map_err(|e| StoreError::Corrupt(format!("the call's events do not fold: {e}")))?;
            if state.started.is_none() {
                warn!("DISCONNECTED for a contact this service never saw: recorded nothing");
                return Ok(EventOutcome::skipped("a contact this service never saw"));
            }
            let now = (self.clock)();
            let ended_at = event.at.unwrap_or(now);
            let Some(kind) =
                crate::domain::decide_ended(&state, ended_at, event.disconnect_reason.clone())
            else {
                info!("the call's end is recorded already: recorded nothing");
                return Ok(EventOutcome::skipped("recorded already"));
            };
            let version = state.version;
            drop(history);
            let events = Event::stamp(version, vec![kind], now, &mut event_ids(now));
            match self.store.append(&event.contact_id, version, events).await {
                Ok(()) => {
                    info!(version = version + 1, "recorded CallEnded");
                    return Ok(EventOutcome {
                        recorded: Some("CallEnded"),
                        skipped: None,
                    });
                }
                Err(e) if e.is_conflict() => last_conflict = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_conflict
            .unwrap_or_else(|| StoreError::Unavailable("too many concurrent writers".into())))
    }

    /// Take the time of recorded events from `clock` instead of the wall clock.
    pub fn with_clock(mut self, clock: Clock) -> App {
        self.clock = clock;
        self
    }

    /// Hash callers' numbers with this key (otherwise no caller hash is stored).
    pub fn with_caller_hasher(mut self, hasher: Option<CallerHasher>) -> App {
        self.hasher = hasher;
        self
    }

    pub fn with_budget(mut self, budget: Duration) -> App {
        self.budget = budget;
        self
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// Serves one invocation given as raw bytes (`triage invoke`).
    pub async fn handle_bytes(&self, bytes: &[u8]) -> Result<Response, InputError> {
        let req = connect::parse_bytes(bytes, self.hasher.as_ref())?;
        Ok(self.turn(req).await)
    }

    /// Serves one invocation given as JSON (the Lambda runtime has parsed it already).
    pub async fn handle_value(&self, event: serde_json::Value) -> Result<Response, InputError> {
        let req = connect::parse_event(event, self.hasher.as_ref())?;
        Ok(self.turn(req).await)
    }

    /// One turn, within the time budget. Store trouble never becomes a Lambda error: the
    /// caller hears a calm apology (`outcome=error`) and nothing partial is written.
    #[tracing::instrument(name = "turn", skip_all, fields(contact_id = %req.contact_id))]
    pub async fn turn(&self, mut req: TurnRequest) -> Response {
        match std::mem::replace(&mut req.media, connect::media::Media::None) {
            connect::media::Media::None => {}
            connect::media::Media::Malformed(why) => {
                warn!(%why, "MediaStreams does not read: the call's audio is not recorded")
            }
            connect::media::Media::Audio(a) => match &self.audio_prefix {
                Some(p) if !connect::media::has_prefix(&a.stream_arn, p) => warn!(
                    prefix = %p,
                    "the audio stream is not one of this stack's: the call's audio is not recorded"
                ),
                _ => req.invocation.audio = Some(a),
            },
        }
        if req.unknown_lang {
            warn!("unknown lang parameter; the call is held in Spanish");
        }
        let lang = req.invocation.lang.unwrap_or_default();
        let mut known = Known {
            lang,
            score: 0,
            questionnaire: self.line.cached(),
        };
        match within(self.budget, self.attempts(&req, &mut known)).await {
            Some(Ok(reply)) => Response::from(reply).with_contact(&req.contact_id),
            Some(Err(e)) => {
                error!(error = %e, "turn failed; answering with the apology");
                known.apology()
            }
            None => {
                error!(
                    budget_ms = self.budget.as_millis() as u64,
                    "turn ran out of time; answering with the apology"
                );
                known.apology()
            }
        }
    }

    async fn attempts(
        &self,
        req: &TurnRequest,
        known: &mut Known,
    ) -> Result<Reply<'static>, TurnError> {
        let mut last_conflict = None;
        // The first attempt may start from a hint; every later one reads the store. The hint
        // is the warm history, or, for an invocation that looks like a call's first (no turn
        // token, no answer), an empty one: a new call then costs no `Query` of a partition
        // that holds nothing. Wrong hints are safe: the append is conditional on the version
        // (0 here), so a call that did start (a Connect retry of its first invocation, or a
        // flow that passes no turn token) answers `Conflict` and the turn re-reads.
        let mut warm = self.warm.as_deref();
        let mut attempt = 0;
        while attempt < MAX_TURN_ATTEMPTS {
            let hint = warm.take().and_then(|w| {
                w.get(&req.contact_id)
                    .or_else(|| req.looks_like_a_first_invocation().then(History::default))
            });
            let from_warm = hint.is_some();
            if !from_warm {
                attempt += 1;
            }
            let history = match hint {
                Some(h) => h,
                None => self.store.load(&req.contact_id).await?,
            };
            self.know_version(&history).await;
            let state = CallState::fold(&history)?;
            if let Some(started) = &state.started {
                known.lang = started.lang;
                known.questionnaire = started.questionnaire;
            }
            known.score = state.score;
            let starting;
            let invocation = if state.started.is_none() {
                starting = req.starting_invocation();
                &starting
            } else {
                &req.invocation
            };
            let new_calls = if state.started.is_none() {
                self.line.for_new_call().await
            } else {
                known.questionnaire
            };
            let (decision, warning) = decide(new_calls, &state, invocation);
            match warning {
                Some(Warning::NoTurnToken) => warn!(
                    "answer without a turn token: retries cannot be told apart for this call; \
                     pass $.Attributes.turn as the `turn` parameter"
                ),
                Some(Warning::AnswerBeforeFirstQuestion) => {
                    warn!("an answer came with the first invocation; it was not recorded")
                }
                None => {}
            }
            match decision {
                Decision::Replay { .. } if from_warm => {
                    // A decision that writes nothing is never taken on a hint: another
                    // container may have moved the call on. Read the store and decide again.
                    continue;
                }
                Decision::Replay { reason, upto } => {
                    // The history was just read: as good a hint for the call's next turn as
                    // the one an append leaves (after a Connect retry, the next answer then
                    // needs no read). A call that is over is not kept.
                    if let Some(w) = &self.warm {
                        if matches!(reason, ReplayReason::Retry(_) | ReplayReason::UnknownTurn) {
                            w.put(&req.contact_id, history.clone());
                        } else {
                            w.forget(&req.contact_id);
                        }
                    }
                    match reason {
                        ReplayReason::Retry(turn) => info!(turn, "retry: recorded nothing"),
                        ReplayReason::UnknownTurn => warn!(
                            version = state.version,
                            "turn token is not one this call issued: recorded nothing, repeated the current prompt"
                        ),
                        ReplayReason::Concluded => info!("call already concluded: recorded nothing"),
                        ReplayReason::Ended => {
                            info!("the contact has disconnected: recorded nothing")
                        }
                    }
                    return Ok(reply_replayed(state, &history, upto)?);
                }
                Decision::Record(kinds) => {
                    // The envelope, stamped here and only here: one clock reading gives the
                    // events their time and their ids' time.
                    let now = (self.clock)();
                    let expected_version = state.version;
                    let events = Event::stamp(expected_version, kinds, now, &mut event_ids(now));
                    let reply = reply_recorded(state, &events)?;
                    // What the history will be once the append lands, for the warm cache.
                    let next = self
                        .warm
                        .as_ref()
                        .map(|_| (history.clone(), events.clone()));
                    // The snapshot is not needed any more: a store that lends its stream
                    // can then append to it in place.
                    drop(history);
                    let version = expected_version + events.len() as u64;
                    let kinds = tracing::enabled!(tracing::Level::DEBUG).then(|| {
                        events
                            .iter()
                            .map(|e| e.kind.name())
                            .collect::<Vec<_>>()
                            .join(",")
                    });
                    match self
                        .store
                        .append(&req.contact_id, expected_version, events)
                        .await
                    {
                        Ok(()) => {
                            // DEBUG, not INFO: the trail in the store is the turn's record, and a log
                            // line per turn was a tenth of the turn's CPU in bootstrap (pipe
                            // write, JSON formatting) and CloudWatch ingestion on the bill.
                            debug!(version, events = kinds.as_deref().unwrap_or(""), "recorded");
                            if let (Some(w), Some((mut h, events))) = (&self.warm, next) {
                                if matches!(reply, Reply::End { .. }) {
                                    w.forget(&req.contact_id);
                                } else {
                                    h.extend(events);
                                    w.put(&req.contact_id, h);
                                }
                            }
                            return Ok(reply);
                        }
                        Err(e) if e.is_conflict() => {
                            if let Some(w) = &self.warm {
                                w.forget(&req.contact_id);
                            }
                            if from_warm {
                                debug!(
                                    "the call moved on since this container last saw it \
                                     (another container, or an earlier attempt of this \
                                     invocation); re-reading"
                                );
                            } else {
                                info!(
                                    attempt,
                                    "lost a race with a concurrent invocation; re-reading"
                                );
                            }
                            last_conflict = Some(e);
                        }
                        Err(e) => {
                            if let Some(w) = &self.warm {
                                w.forget(&req.contact_id);
                            }
                            return Err(e.into());
                        }
                    }
                }
            }
        }
        Err(TurnError::Store(last_conflict.unwrap_or_else(|| {
            StoreError::Unavailable("too many concurrent invocations".into())
        })))
    }
}

/// Runs `work` within `budget`; `None` if the budget ran out first. tokio's own timeout:
/// it polls its timer even when the work has spent tokio's cooperative budget, so busy work
/// still times out (tested below). An earlier hand-written version armed the timer lazily,
/// at the work's first wait; measured side by side with `cargo bench --bench turn_cost`
/// (memory store, where that laziness would show most), the two were within the run-to-run
/// noise (ratio to the seed 0.73-0.84 for this against 0.74-0.77), so the plain one stays.
async fn within<F: Future>(budget: Duration, work: F) -> Option<F::Output> {
    tokio::time::timeout(budget, work).await.ok()
}

/// A UUID v7 for each event of one turn, all from the turn's clock reading `at` (the
/// injected clock's, in `seed-demo`): its millisecond, then a counter that keeps the turn's
/// ids in order, then random bits. Ids only need to be unique (74 random bits, and the
/// DynamoDB store's lost-response check compares them); `seq` orders events.
fn event_ids(at: DateTime<Utc>) -> impl FnMut() -> Uuid {
    let secs = u64::try_from(at.timestamp()).unwrap_or(0);
    let nanos = at.timestamp_subsec_nanos();
    let context = uuid::ContextV7::new();
    move || Uuid::new_v7(uuid::Timestamp::from_unix(&context, secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_that_never_waits_is_done_even_with_no_budget_left() {
        assert_eq!(within(Duration::ZERO, async { 7 }).await, Some(7));
    }

    #[tokio::test(start_paused = true)]
    async fn slow_work_runs_out_of_budget() {
        let slow = tokio::time::sleep(Duration::from_secs(60));
        assert_eq!(within(Duration::from_secs(5), slow).await, None);
        let quick = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            "done"
        };
        assert_eq!(within(Duration::from_secs(5), quick).await, Some("done"));
    }

    // Real time: a paused clock only advances when the runtime idles, which busy work never
    // lets it do.
    #[tokio::test]
    async fn work_that_spends_the_cooperative_budget_still_times_out() {
        let busy = async {
            loop {
                tokio::task::consume_budget().await;
            }
        };
        // tokio's own timeout around it turns a regression into a failure, not a hang.
        let outcome = tokio::time::timeout(
            Duration::from_secs(10),
            within(Duration::from_millis(50), busy),
        )
        .await;
        assert_eq!(outcome, Ok(None::<()>), "the budget did not stop busy work");
    }

    #[test]
    fn a_turns_event_ids_share_its_time_and_keep_their_order() {
        let at = DateTime::parse_from_rfc3339("2026-03-01T10:00:00.123Z")
            .expect("time")
            .with_timezone(&Utc);
        let mut next = event_ids(at);
        let ids: Vec<Uuid> = (0..3).map(|_| next()).collect();
        for id in &ids {
            assert_eq!(id.get_version_num(), 7);
            let (secs, nanos) = id.get_timestamp().expect("v7 time").to_unix();
            assert_eq!((secs, nanos / 1_000_000), (1_772_359_200, 123));
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    }
}

/// What is known of the call when a turn fails, to word the apology.
struct Known {
    lang: Lang,
    score: u32,
    questionnaire: &'static Questionnaire,
}

impl Known {
    fn apology(&self) -> Response {
        Response::apology(self.questionnaire, self.lang, self.score)
    }
}

#[derive(Debug, thiserror::Error)]
enum TurnError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the call's events do not fold: {0}")]
    Fold(#[from] crate::domain::FoldError),
}
