//! `triage seed-demo`: SYNTHETIC calls for trying the analysts' verbs and testing them.
//! Every call is a real conversation with [`App`] (the Lambda's turn, through
//! [`App::handle_value`] with Connect `ContactFlowEvent`s), so the events are exactly what
//! production records; only the clock is the call's own ([`App::with_clock`]), so calls can
//! land on past days. Contact ids start with [`DEMO_PREFIX`]; callers' numbers are made up
//! (`+34699xxxxxx`) and stored only as keyed hashes.

use super::rng::SimRng;
use crate::app::App;
use crate::connect::CallerHasher;
use crate::store::SharedStore;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Every demo contact id starts with this.
pub const DEMO_PREFIX: &str = "demo-";

/// The caller-hash key used when `TRIAGE_CALLER_HASH_KEY` is not set (synthetic numbers
/// only: this key protects nothing).
pub const DEMO_HASH_KEY: &[u8] = b"connect-triage synthetic demo data, not a secret";

/// Calls played at once.
pub const PARALLEL_CALLS: usize = 8;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoPlan {
    pub calls: u32,
    pub days: u32,
    pub first_day: NaiveDate,
    pub seed: u64,
}

/// What was generated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DemoReport {
    pub calls: u32,
    /// Calls the synthetic caller hung up on mid-questionnaire.
    pub hung_up: u32,
    pub turns: u64,
}

/// Why demo data could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("--calls and --days must be at least 1")]
    Empty,
    #[error("demo day out of range")]
    DayOutOfRange,
    #[error("demo call {contact_id}")]
    Refused {
        contact_id: String,
        #[source]
        source: crate::connect::InputError,
    },
    #[error("the store failed during demo call {contact_id}: {response}")]
    StoreFailed {
        contact_id: String,
        response: String,
    },
    #[error("a demo call task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// Chance (percent) of a "yes" to the question at each position: some symptoms are common.
const YES_PERCENT: [u64; 8] = [30, 12, 18, 35, 45, 40, 50, 30];

use crate::flow::voice_event as event;

/// One synthetic call: returns (turns, hung up).
async fn play(
    app: App,
    clock: Arc<AtomicI64>,
    plan: &DemoPlan,
    i: u32,
) -> Result<(u64, bool), DemoError> {
    let mut rng =
        SimRng::seeded(plan.seed ^ (u64::from(i) + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let day = plan
        .first_day
        .checked_add_signed(Duration::days(rng.below(u64::from(plan.days.max(1))) as i64))
        .ok_or(DemoError::DayOutOfRange)?;
    // Between 07:00 and 22:00 UTC.
    let start = day.and_time(chrono::NaiveTime::MIN).and_utc()
        + Duration::seconds(7 * 3600 + rng.below(15 * 3600) as i64)
        + Duration::milliseconds(rng.below(1000) as i64);
    clock.store(start.timestamp_millis(), Ordering::SeqCst);
    let contact_id = format!("{DEMO_PREFIX}{:x}-{i:06}", plan.seed);
    // Three numbers for every four calls: some people call again.
    let pool = (u64::from(plan.calls) * 3 / 4).max(1);
    let caller = format!("+34699{:06}", rng.below(pool));
    let lang = if rng.chance(80) { "es" } else { "en" };

    let mut turns = 1u64;
    let refused = |source| DemoError::Refused {
        contact_id: contact_id.clone(),
        source,
    };
    let mut resp = app
        .handle_value(event(&contact_id, &caller, &[("lang", lang)]))
        .await
        .map_err(refused)?;
    let mut position = 0usize;
    while resp.get("continue") == Some("1") {
        clock.fetch_add(3_000 + rng.below(12_000) as i64, Ordering::SeqCst);
        if rng.chance(4) {
            return Ok((turns, true));
        }
        let answer = if rng.chance(2) {
            "*"
        } else if rng.chance(3) {
            "7"
        } else if rng.chance(YES_PERCENT[position.min(YES_PERCENT.len() - 1)]) {
            "1"
        } else if rng.chance(10) {
            "Timeout"
        } else {
            "0"
        };
        let turn = resp.get("turn").map(str::to_string).unwrap_or_default();
        resp = app
            .handle_value(event(
                &contact_id,
                &caller,
                &[("answer", answer), ("turn", &turn), ("lang", lang)],
            ))
            .await
            .map_err(refused)?;
        turns += 1;
        if answer != "7" {
            position += 1;
        }
    }
    if resp.get("outcome") == Some("error") {
        return Err(DemoError::StoreFailed {
            contact_id,
            response: format!("{resp:?}"),
        });
    }
    Ok((turns, false))
}

/// Plays `plan.calls` synthetic calls against `store`, [`PARALLEL_CALLS`] at a time.
pub async fn seed_demo(
    store: SharedStore,
    plan: &DemoPlan,
    hasher: CallerHasher,
    progress: impl FnMut(u32),
) -> Result<DemoReport, DemoError> {
    seed_demo_with(
        App::new(store).with_caller_hasher(Some(hasher)),
        plan,
        progress,
    )
    .await
}

/// [`seed_demo`] through `base` (its store, caller hasher and questionnaire catalog: calls
/// start on the version `base` would start a real call on now).
pub async fn seed_demo_with(
    base: App,
    plan: &DemoPlan,
    mut progress: impl FnMut(u32),
) -> Result<DemoReport, DemoError> {
    if plan.calls == 0 || plan.days == 0 {
        return Err(DemoError::Empty);
    }
    let mut report = DemoReport::default();
    let mut running = tokio::task::JoinSet::new();
    let mut next = 0u32;
    loop {
        while next < plan.calls && running.len() < PARALLEL_CALLS {
            let clock = Arc::new(AtomicI64::new(0));
            let read = clock.clone();
            let app = base.clone().with_clock(Arc::new(move || {
                DateTime::<Utc>::from_timestamp_millis(read.load(Ordering::SeqCst))
                    .unwrap_or_default()
            }));
            let plan = plan.clone();
            let i = next;
            running.spawn(async move { play(app, clock, &plan, i).await });
            next += 1;
        }
        let Some(done) = running.join_next().await else {
            return Ok(report);
        };
        let (turns, hung_up) = done.map_err(DemoError::Task)??;
        report.calls += 1;
        report.turns += turns;
        report.hung_up += u32::from(hung_up);
        progress(report.calls);
    }
}
