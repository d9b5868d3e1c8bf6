//! Everything that stops a flow from being loaded or a call from being simulated.

use crate::model::{FLOW_VERSION, SUPPORTED_ACTIONS};

/// Everything that stops a flow from being loaded or a call from being simulated. The
/// branches a real call can take (a Lambda error, a timeout, a full queue) are not errors:
/// they follow the flow's own `Errors` transitions.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The text is not JSON, or not shaped as a flow (`Version`, `StartAction`,
    /// `Actions[]` of `{Identifier, Type, Parameters, Transitions}`).
    #[error("the flow is not valid flow-language JSON ({0}); it needs Version, StartAction and Actions[] of {{Identifier, Type, Parameters, Transitions}}")]
    Json(#[from] serde_json::Error),
    /// `Version` is not [`FLOW_VERSION`].
    #[error("the flow has Version {found:?}; Connect only accepts \"{FLOW_VERSION}\", set that")]
    Version {
        /// The `Version` the flow has.
        found: String,
    },
    /// Two actions have the same `Identifier`.
    #[error("two actions share the Identifier {id:?}; give each action a unique Identifier")]
    DuplicateAction {
        /// The shared Identifier.
        id: String,
    },
    /// An `Identifier` Connect would refuse (empty, over 50 characters, or with one of
    /// `% : ( \ / ) = $ , ; [ ] { }`).
    #[error("action Identifier {id:?} is not valid in Connect ({why}); rename it")]
    BadIdentifier {
        /// The Identifier.
        id: String,
        /// What is wrong with it.
        why: String,
    },
    /// `StartAction` names no action of the flow.
    #[error(
        "StartAction {start:?} is not the Identifier of any action; point it at the first action"
    )]
    MissingStart {
        /// The `StartAction`.
        start: String,
    },
    /// A transition leads to an Identifier that is not an action of the flow.
    #[error("action {action:?} transitions to {target:?}, which is not an action of this flow; add that action or point the transition at an existing Identifier")]
    DanglingTransition {
        /// The action the transition leaves from.
        action: String,
        /// Where it leads.
        target: String,
    },
    /// An action `Type` that is not one of [`SUPPORTED_ACTIONS`].
    #[error("action {id:?} has type {kind:?}, which the local simulator does not run (supported: {}); remove it from the flow or teach the connect-flow crate to run it", SUPPORTED_ACTIONS.join(", "))]
    Unsupported {
        /// The action's Identifier.
        id: String,
        /// Its `Type`.
        kind: String,
    },
    /// A parameter (or a transition condition) that is missing, of the wrong type, or that
    /// asks for something the simulator does not run.
    #[error("action {action:?}: {problem}")]
    InvalidParameter {
        /// The action's Identifier.
        action: String,
        /// What is wrong, naming the parameter.
        problem: String,
    },
    /// The flow uses a `${Name}` placeholder that the run was given no value for.
    #[error("the flow needs a value for the placeholder ${{{name}}}; pass {name}=<value> in the parameters of the run")]
    MissingPlaceholder {
        /// The placeholder's name.
        name: String,
    },
    /// The call took a branch the action has no transition for.
    #[error(
        "action {action:?} has no transition for {branch}; add it to the action's Transitions"
    )]
    NoTransition {
        /// The action's Identifier.
        action: String,
        /// The branch (`NextAction`, or `the error <ErrorType>`).
        branch: String,
    },
    /// An error branch Connect's reference says must always be defined is missing.
    #[error("action {action:?} has no Errors entry for {branch}, which Connect requires ({doc}); add {{\"ErrorType\": \"{branch}\", \"NextAction\": ...}} to its Transitions.Errors")]
    MissingErrorBranch {
        /// The action's Identifier.
        action: String,
        /// The `ErrorType` that must be there.
        branch: String,
        /// The reference page that says so.
        doc: String,
    },
    /// The call ran [`MAX_STEPS`](crate::MAX_STEPS) actions without ending.
    #[error("the call ran {limit} actions without ending; the flow loops forever (does the Lambda ever answer continue=0?)")]
    TooManySteps {
        /// The limit, [`MAX_STEPS`](crate::MAX_STEPS).
        limit: usize,
    },
}

/// A [`FlowError::InvalidParameter`] of `action`.
pub(crate) fn invalid(action: &str, problem: &str) -> FlowError {
    FlowError::InvalidParameter {
        action: action.to_string(),
        problem: problem.to_string(),
    }
}
