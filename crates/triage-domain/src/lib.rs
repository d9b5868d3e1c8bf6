//! The pure domain of connect-triage: the questionnaire (data), events, the call's state
//! (fold/evolve), and `decide`. No I/O, no clock, no AWS types: time and ids come in as
//! arguments (to [`Event::stamp`]). The contracts it implements (events, the turn rules)
//! are written down in the repository's `docs/contracts.md`.

pub mod check;
pub mod decide;
pub mod event;
pub mod ids;
pub mod questionnaire;
pub mod state;

pub use decide::{
    decide, decide_ended, Answer, AudioStream, Decision, Invocation, ReplayReason, TurnArg, Warning,
};
pub use event::{
    event_from_json, CallFacts, Event, EventKind, EventReadError, InputMode, Outcome,
    SCHEMA_VERSION,
};
pub use ids::{ContactId, ContactIdError};
pub use questionnaire::{Lang, Questionnaire, RegisterError, UnknownLang};
pub use state::{CallState, Concluded, FoldError, Handoff, Reply, CUT_MARK, MAX_SUMMARY_CHARS};

/// The reply once `events` (a `Record` decision's) are appended to the stream `state` is
/// the fold of.
pub fn reply_recorded(
    mut state: CallState<'static>,
    events: &[Event],
) -> Result<Reply<'static>, FoldError> {
    for e in events {
        state.evolve(e, &Questionnaire::lookup)?;
    }
    announced(&state)
}

/// The reply given at version `upto` of `history` (`state` is the fold of all of it).
pub fn reply_replayed(
    state: CallState<'static>,
    history: &[Event],
    upto: u64,
) -> Result<Reply<'static>, FoldError> {
    if upto == state.version {
        return announced(&state);
    }
    let n = usize::try_from(upto)
        .unwrap_or(usize::MAX)
        .min(history.len());
    announced(&CallState::fold(&history[..n])?)
}

/// The reply `state` announces; a stream that has not started has none.
pub fn announced(state: &CallState<'static>) -> Result<Reply<'static>, FoldError> {
    state.reply().ok_or_else(|| FoldError {
        seq: state.version,
        kind: "-",
        why: "the call has no reply (not started)".into(),
    })
}

#[cfg(test)]
mod tests;
