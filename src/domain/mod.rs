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
    reply_from(CallState::fold(history)?, history, decision)
}

/// [`reply_after`] for a caller that holds `state`, the fold of all of `history` already
/// (taken by value: it is evolved in place).
pub fn reply_from(
    state: CallState<'static>,
    history: &[Event],
    decision: &Decision,
) -> Result<Reply, FoldError> {
    let after = match decision {
        Decision::Record { events, .. } => {
            let mut next = state;
            for e in events {
                next.evolve(e, &Questionnaire::lookup)?;
            }
            next
        }
        Decision::Replay { upto, .. } if *upto == state.version => state,
        Decision::Replay { upto, .. } => {
            let n = usize::try_from(*upto)
                .unwrap_or(usize::MAX)
                .min(history.len());
            CallState::fold(&history[..n])?
        }
    };
    after.reply().ok_or_else(|| FoldError {
        seq: after.version,
        kind: "-",
        why: "the call has no reply (not started)".into(),
    })
}

#[cfg(test)]
mod tests;
