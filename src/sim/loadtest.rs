//! `triage loadtest`: a soak of simulated calls through the Lambda's own code path
//! ([`App::handle_value`] with ContactFlowEvents), then an audit of every trail.
//!
//! Each of `concurrency` workers runs calls back to back until the time is up: random
//! answers (yes, no, invalid keys, now and then `*`), and now and then a retry of the
//! invocation it just made (as Connect does after a timeout), which must get the very same
//! response. An apology (`outcome=error`) is retried a few times, as a caller would call
//! again. The audit then reads every call's trail from the store and checks that every
//! answer the driver got a new turn for is in the trail exactly once, that nothing else
//! was recorded, and that every call concluded.

use super::rng::SimRng;
use crate::app::{App, Response};
use crate::domain::ContactId;
use crate::domain::{CallState, EventKind};
use crate::store::SharedStore;
use serde_json::Value;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Options {
    pub concurrency: usize,
    pub duration: Duration,
}

/// One answer the service took: the turn it answered and the key sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub turn: u64,
    pub answer: String,
}

/// What the driver saw of one call.
#[derive(Debug, Clone)]
pub struct CallLog {
    pub contact_id: String,
    pub accepted: Vec<Accepted>,
    pub concluded: bool,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Audit {
    pub calls: usize,
    pub lost: usize,
    pub duplicates: usize,
    pub unconcluded: usize,
    pub problems: Vec<String>,
}

impl Audit {
    pub fn ok(&self) -> bool {
        self.lost == 0 && self.duplicates == 0 && self.unconcluded == 0 && self.problems.is_empty()
    }
}

#[derive(Debug)]
pub struct Report {
    pub elapsed: Duration,
    pub calls: usize,
    pub turns: usize,
    pub retries: usize,
    pub apologies: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub audit: Audit,
}

impl Report {
    pub fn calls_per_sec(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn event(contact_id: &str, turn: Option<&str>, answer: Option<&str>) -> Value {
    let params: Vec<(&str, &str)> = [("turn", turn), ("answer", answer)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    crate::flow::voice_event(contact_id, "+34600000000", &params)
}

struct Worker {
    app: App,
    rng: SimRng,
    latencies: Vec<Duration>,
    retries: usize,
    apologies: usize,
}

/// Why a soak stopped before its audit: the service answered against its contract.
#[derive(Debug, thiserror::Error)]
pub enum LoadtestError {
    #[error("the turn refused a well-formed event")]
    Refused(#[from] crate::connect::InputError),
    #[error("a response to go on has no turn")]
    NoTurn,
    #[error("call {contact_id}: a retry of turn {turn} answered {again}, the first time {first}")]
    RetryDiffers {
        contact_id: String,
        turn: String,
        again: String,
        first: String,
    },
    #[error("call {contact_id} did not end within {MAX_STEPS} steps")]
    Endless { contact_id: String },
    #[error("a worker task failed")]
    Task(#[source] tokio::task::JoinError),
}

const APOLOGY_RETRIES: usize = 5;
const MAX_STEPS: usize = 200;

impl Worker {
    async fn invoke(&mut self, ev: Value) -> Result<Response, LoadtestError> {
        let t = Instant::now();
        let r = self.app.handle_value(ev).await.map_err(LoadtestError::from);
        self.latencies.push(t.elapsed());
        r
    }

    /// One invocation, repeated while the store answers with the apology.
    async fn invoke_until_served(&mut self, ev: &Value) -> Result<Response, LoadtestError> {
        let mut r = self.invoke(ev.clone()).await?;
        for _ in 0..APOLOGY_RETRIES {
            if r.get("outcome") != Some("error") {
                break;
            }
            self.apologies += 1;
            r = self.invoke(ev.clone()).await?;
        }
        Ok(r)
    }

    async fn call(&mut self) -> Result<CallLog, LoadtestError> {
        let contact_id = uuid::Uuid::now_v7().to_string();
        let mut log = CallLog {
            contact_id: contact_id.clone(),
            accepted: Vec::new(),
            concluded: false,
        };
        let mut r = self
            .invoke_until_served(&event(&contact_id, None, None))
            .await?;
        for _ in 0..MAX_STEPS {
            if r.get("continue") != Some("1") {
                log.concluded = r.get("outcome") != Some("error");
                return Ok(log);
            }
            let turn = r
                .get("turn")
                .map(str::to_string)
                .ok_or(LoadtestError::NoTurn)?;
            let answer = match self.rng.below(100) {
                0..=39 => "1",
                40..=74 => "0",
                75..=82 => "Timeout",
                83..=89 => "7",
                90..=96 => "#",
                _ => "*",
            };
            let ev = event(&contact_id, Some(&turn), Some(answer));
            let next = self.invoke_until_served(&ev).await?;
            if next.get("outcome") == Some("error") {
                // Still unavailable after the retries: the caller hung up mid-call.
                return Ok(log);
            }
            let turn_n: u64 = turn.parse().map_err(|_| LoadtestError::NoTurn)?;
            if next.get("turn") != Some(turn.as_str()) {
                log.accepted.push(Accepted {
                    turn: turn_n,
                    answer: answer.to_string(),
                });
            }
            if self.rng.below(100) < 15 {
                // Connect's retry of the same invocation: same response, nothing new.
                self.retries += 1;
                let again = self.invoke_until_served(&ev).await?;
                if again != next && again.get("outcome") != Some("error") {
                    return Err(LoadtestError::RetryDiffers {
                        contact_id,
                        turn,
                        again: format!("{again:?}"),
                        first: format!("{next:?}"),
                    });
                }
            }
            r = next;
        }
        Err(LoadtestError::Endless { contact_id })
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs the soak, then audits every call's trail.
pub async fn run(app: App, opts: &Options) -> Result<Report, LoadtestError> {
    let start = Instant::now();
    let deadline = start + opts.duration;
    let mut tasks = Vec::new();
    for w in 0..opts.concurrency.max(1) {
        let seed = (std::process::id() as u64) << 32
            ^ (start.elapsed().as_nanos() as u64)
            ^ (w as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut worker = Worker {
            app: app.clone(),
            rng: SimRng::seeded(seed),
            latencies: Vec::new(),
            retries: 0,
            apologies: 0,
        };
        tasks.push(tokio::spawn(async move {
            let mut calls = Vec::new();
            let mut failure = None;
            while Instant::now() < deadline {
                match worker.call().await {
                    Ok(log) => calls.push(log),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            (worker, calls, failure)
        }));
    }
    let mut calls = Vec::new();
    let mut latencies = Vec::new();
    let (mut retries, mut apologies) = (0, 0);
    let mut problems = Vec::new();
    for t in tasks {
        let (worker, c, failure) = t.await.map_err(LoadtestError::Task)?;
        calls.extend(c);
        latencies.extend(worker.latencies);
        retries += worker.retries;
        apologies += worker.apologies;
        problems.extend(failure);
    }
    let elapsed = start.elapsed();
    latencies.sort();
    let mut audit = audit(app.store(), &calls).await;
    audit
        .problems
        .extend(problems.iter().map(ToString::to_string));
    Ok(Report {
        elapsed,
        calls: calls.len(),
        turns: latencies.len(),
        retries,
        apologies,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
        audit,
    })
}

/// Checks each call's stored trail against what the driver saw.
pub async fn audit(store: &SharedStore, calls: &[CallLog]) -> Audit {
    let mut a = Audit {
        calls: calls.len(),
        ..Audit::default()
    };
    for call in calls {
        let id = match ContactId::parse(&call.contact_id) {
            Ok(id) => id,
            Err(e) => {
                a.problems.push(e.to_string());
                continue;
            }
        };
        let events = match store.load(&id).await {
            Ok(ev) => ev,
            Err(e) => {
                a.problems.push(format!("call {id}: {e}"));
                continue;
            }
        };
        match CallState::fold(&events) {
            Ok(state) if call.concluded && !state.is_concluded() => a.unconcluded += 1,
            Ok(_) => {}
            Err(e) => a.problems.push(format!("call {id} does not fold: {e}")),
        }
        if !call.concluded {
            a.unconcluded += 1;
        }
        // The answer each turn recorded: AnswerRecorded, InputRejected or CallExited.
        let answered: Vec<(u64, Option<&str>)> = events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::AnswerRecorded { raw, .. } | EventKind::InputRejected { raw, .. } => {
                    Some((e.turn, Some(raw.as_str())))
                }
                EventKind::CallExited { .. } => Some((e.turn, None)),
                _ => None,
            })
            .collect();
        for acc in &call.accepted {
            let found: Vec<&(u64, Option<&str>)> =
                answered.iter().filter(|(t, _)| *t == acc.turn).collect();
            match found.as_slice() {
                [] => {
                    a.lost += 1;
                    a.problems.push(format!(
                        "call {id}: the answer to turn {} is not stored",
                        acc.turn
                    ));
                }
                [(_, raw)] => {
                    if let Some(raw) = raw {
                        if *raw != acc.answer {
                            a.problems.push(format!(
                                "call {id}: turn {} stored {raw:?}, the caller sent {:?}",
                                acc.turn, acc.answer
                            ));
                        }
                    }
                }
                more => {
                    a.duplicates += more.len() - 1;
                    a.problems.push(format!(
                        "call {id}: turn {} answered {} times",
                        acc.turn,
                        more.len()
                    ));
                }
            }
        }
        // Anything stored that the driver was never told about counts as a duplicate.
        let extra = answered
            .iter()
            .filter(|(t, _)| !call.accepted.iter().any(|acc| acc.turn == *t))
            .count();
        if extra > 0 {
            a.duplicates += extra;
            a.problems.push(format!(
                "call {id}: {extra} answer(s) stored that no response announced"
            ));
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use std::sync::Arc;

    fn rt() -> Result<tokio::runtime::Runtime, std::io::Error> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    }

    #[test]
    fn a_short_soak_on_memory_passes_its_audit() -> Result<(), Box<dyn std::error::Error>> {
        let app = App::new(Arc::new(MemoryStore::new()));
        let opts = Options {
            concurrency: 4,
            duration: Duration::from_millis(300),
        };
        let report = rt()?.block_on(run(app, &opts))?;
        assert!(report.calls > 0, "{report:?}");
        assert!(report.audit.ok(), "{:?}", report.audit);
        Ok(())
    }

    /// The audit finds a lost answer and a duplicate: it can fail.
    #[test]
    fn the_audit_finds_lost_and_duplicate_answers() -> Result<(), Box<dyn std::error::Error>> {
        let rt = rt()?;
        let store: SharedStore = Arc::new(MemoryStore::new());
        let app = App::new(store.clone());
        let cid = "4a573372-1f28-4e26-b97b-0000000000aa";
        rt.block_on(app.handle_value(event(cid, None, None)))?;
        rt.block_on(app.handle_value(event(cid, Some("1"), Some("1"))))?;
        let honest = CallLog {
            contact_id: cid.into(),
            accepted: vec![Accepted {
                turn: 1,
                answer: "1".into(),
            }],
            concluded: false,
        };
        let a = rt.block_on(audit(&store, std::slice::from_ref(&honest)));
        assert_eq!((a.lost, a.duplicates, a.unconcluded), (0, 0, 1), "{a:?}");
        let mut claims_more = honest.clone();
        claims_more.accepted.push(Accepted {
            turn: 2,
            answer: "0".into(),
        });
        let a = rt.block_on(audit(&store, &[claims_more]));
        assert_eq!(a.lost, 1, "{a:?}");
        let mut claims_less = honest;
        claims_less.accepted.clear();
        let a = rt.block_on(audit(&store, &[claims_less]));
        assert_eq!(a.duplicates, 1, "{a:?}");
        Ok(())
    }
}
