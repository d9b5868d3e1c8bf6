//! The pure domain: questionnaire (data), events, state, decide/evolve.
//! No I/O, no clock, no AWS types: time and ids come in as arguments.

pub mod decide;
pub mod event;
pub mod questionnaire;
pub mod state;

pub use decide::{decide, Answer, Decision, Invocation, ReplayReason, TurnArg, Warning};
pub use event::{event_from_json, CallFacts, Event, EventKind, Outcome, SCHEMA_VERSION};
pub use questionnaire::{Lang, Questionnaire};
pub use state::{CallState, FoldError, Reply};

/// The reply a decision gives, folded from the history it was decided on: the new events
/// appended for `Record`, the prefix up to `upto` for `Replay`.
pub fn reply_after(history: &[Event], decision: &Decision) -> Result<Reply, FoldError> {
    let state = match decision {
        Decision::Record { events, .. } => {
            let mut state = CallState::fold(history)?;
            for e in events {
                state.evolve(e, &Questionnaire::lookup)?;
            }
            state
        }
        Decision::Replay { upto, .. } => {
            let n = usize::try_from(*upto)
                .unwrap_or(usize::MAX)
                .min(history.len());
            CallState::fold(&history[..n])?
        }
    };
    state.reply().ok_or_else(|| FoldError {
        seq: state.version,
        kind: "-",
        why: "the call has no reply (not started)".into(),
    })
}

#[cfg(test)]
mod tests;
