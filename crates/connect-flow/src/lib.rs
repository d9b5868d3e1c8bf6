//! A local interpreter of the Amazon Connect flow language (`"Version": "2019-10-30"`), the
//! JSON that `AWS::Connect::ContactFlow` deploys. `triage call` uses it to run a whole phone
//! call in a terminal through the very flow that `template.yaml` deploys
//! (`connect/triage-flow.json`, see `connect/README.md`).
//!
//! Only the actions that flow needs are understood; any other action type is refused when
//! the flow is parsed, so a flow that runs here cannot silently skip a step:
//!
//! | action | simulated as |
//! |---|---|
//! | `MessageParticipant` | [`Caller::hear`] the `Text` (or `SSML`) |
//! | `GetParticipantInput` | store mode only: hear the prompt, [`Caller::press`]; the digits (or `Timeout`) become `$.StoredCustomerInput` |
//! | `UpdateContactAttributes` | sets `$.Attributes.*` |
//! | `InvokeLambdaFunction` | sends a `ContactFlowEvent` to a [`Lambda`]; its answer becomes `$.External.*` |
//! | `Compare` | evaluates `Conditions` against `ComparisonValue` |
//! | `UpdateContactTargetQueue`, `TransferContactToQueue` | ends the call with [`CallEnd::Transferred`] |
//! | `DisconnectParticipant` | ends the call with [`CallEnd::Disconnected`] |
//!
//! Values may reference the flow data (`$.External.x`, `$.Attributes.x`,
//! `$.StoredCustomerInput`, `$.ContactId`, ...), either as the whole value or embedded in a
//! text, and deployment placeholders `${Name}` (filled from the `params` given to [`run`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The only flow-language version Connect accepts.
pub const FLOW_VERSION: &str = "2019-10-30";

/// A call that runs this many actions without ending is stopped with
/// [`FlowError::TooManySteps`].
pub const MAX_STEPS: usize = 500;

/// The largest Lambda response Connect accepts (32 KB).
pub const MAX_LAMBDA_RESPONSE_BYTES: usize = 32 * 1024;

/// Extra time given to [`Caller::press`] beyond the flow's input time limit before the
/// interpreter itself treats the input as timed out.
const PRESS_GRACE: Duration = Duration::from_secs(1);

/// Action types this interpreter runs.
pub const SUPPORTED_ACTIONS: [&str; 8] = [
    "MessageParticipant",
    "GetParticipantInput",
    "UpdateContactAttributes",
    "InvokeLambdaFunction",
    "Compare",
    "UpdateContactTargetQueue",
    "TransferContactToQueue",
    "DisconnectParticipant",
];

/// Roots of the flow data that `$.` references may use here.
const REFERENCE_ROOTS: [&str; 12] = [
    "External",
    "Attributes",
    "StoredCustomerInput",
    "ContactId",
    "InitialContactId",
    "PreviousContactId",
    "Channel",
    "InstanceARN",
    "InitiationMethod",
    "CustomerEndpoint",
    "SystemEndpoint",
    "Queue",
];

const NO_MATCHING_ERROR: &str = "NoMatchingError";
const NO_MATCHING_CONDITION: &str = "NoMatchingCondition";

/// Everything that stops a flow from being loaded or a call from being simulated. The
/// branches a real call can take (a Lambda error, a timeout, a full queue) are not errors:
/// they follow the flow's own `Errors` transitions.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("the flow is not valid flow-language JSON ({0}); it needs Version, StartAction and Actions[] of {{Identifier, Type, Parameters, Transitions}}")]
    Json(#[from] serde_json::Error),
    #[error("the flow has Version {found:?}; Connect only accepts \"{FLOW_VERSION}\", set that")]
    Version { found: String },
    #[error("two actions share the Identifier {id:?}; give each action a unique Identifier")]
    DuplicateAction { id: String },
    #[error("action Identifier {id:?} is not valid in Connect ({why}); rename it")]
    BadIdentifier { id: String, why: String },
    #[error(
        "StartAction {start:?} is not the Identifier of any action; point it at the first action"
    )]
    MissingStart { start: String },
    #[error("action {action:?} transitions to {target:?}, which is not an action of this flow; add that action or point the transition at an existing Identifier")]
    DanglingTransition { action: String, target: String },
    #[error("action {id:?} has type {kind:?}, which the local simulator does not run (supported: {}); remove it from the flow or teach the connect-flow crate to run it", SUPPORTED_ACTIONS.join(", "))]
    Unsupported { id: String, kind: String },
    #[error("action {action:?}: {problem}")]
    InvalidParameter { action: String, problem: String },
    #[error("the flow needs a value for the placeholder ${{{name}}}; pass {name}=<value> in the parameters of the run")]
    MissingPlaceholder { name: String },
    #[error(
        "action {action:?} has no transition for {branch}; add it to the action's Transitions"
    )]
    NoTransition { action: String, branch: String },
    #[error("the call ran {limit} actions without ending; the flow loops forever (does the Lambda ever answer continue=0?)")]
    TooManySteps { limit: usize },
}

/// What the caller did when asked for input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerInput {
    /// Keys pressed (`0`-`9`, `*`, `#`). An empty string counts as no input.
    Digits(String),
    /// Nothing was pressed within the time limit.
    Timeout,
    /// The caller hung up.
    HangUp,
}

/// The person on the phone.
#[async_trait::async_trait]
pub trait Caller: Send {
    /// Speak `text` to the caller (text-to-speech in Connect).
    async fn hear(&mut self, text: &str);
    /// Wait up to `timeout` for the first key; collect at most `max_digits` keys.
    async fn press(&mut self, timeout: Duration, max_digits: usize) -> CallerInput;
}

/// The AWS Lambda functions the flow invokes.
#[async_trait::async_trait]
pub trait Lambda: Send + Sync {
    /// Invoke `function_arn` synchronously with `event` (a `ContactFlowEvent`). `Err` is a
    /// failed invocation (the flow takes its error branch); its text is only logged.
    async fn invoke(&self, function_arn: &str, event: Value) -> Result<Value, String>;
}

/// The contact (the call) the flow runs for, as Connect describes it to a Lambda.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub contact_id: String,
    /// The caller's number (E.164), `None` when withheld or on non-voice channels.
    pub customer_number: Option<String>,
    /// The number the caller dialled.
    pub system_number: Option<String>,
    /// `VOICE` for a phone call; `GetParticipantInput` takes its error branch otherwise.
    pub channel: String,
    pub instance_arn: String,
    /// User-defined contact attributes the call starts with (e.g. `lang` set by an
    /// upstream flow).
    pub attributes: BTreeMap<String, String>,
}

impl Contact {
    /// An inbound voice contact with no known numbers and no attributes.
    pub fn voice(contact_id: impl Into<String>, instance_arn: impl Into<String>) -> Contact {
        Contact {
            contact_id: contact_id.into(),
            customer_number: None,
            system_number: None,
            channel: "VOICE".to_string(),
            instance_arn: instance_arn.into(),
            attributes: BTreeMap::new(),
        }
    }
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEnd {
    /// The flow hung up (`DisconnectParticipant`).
    Disconnected,
    /// The contact was put in a queue (`TransferContactToQueue`); `queue` is the queue id
    /// or ARN set by `UpdateContactTargetQueue`.
    Transferred { queue: String },
    /// The caller hung up while asked for input.
    HungUp,
}

/// The result of a simulated call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallReport {
    pub end: CallEnd,
    /// The user-defined contact attributes at the end of the call.
    pub attributes: BTreeMap<String, String>,
    /// How many actions ran.
    pub steps: usize,
}

/// A parsed and checked flow.
#[derive(Debug, Clone)]
pub struct Flow {
    start: String,
    actions: HashMap<String, Action>,
    placeholders: BTreeSet<String>,
}

#[derive(Debug, Clone)]
struct Action {
    id: String,
    step: Step,
    next: Option<String>,
    /// (ErrorType, NextAction), in the flow's order.
    errors: Vec<(String, String)>,
    conditions: Vec<Condition>,
}

#[derive(Debug, Clone)]
enum Step {
    Message { text: String },
    GetInput(InputSpec),
    SetAttributes { attributes: Vec<(String, String)> },
    InvokeLambda(LambdaSpec),
    Compare { value: String },
    SetQueue { queue: String },
    TransferToQueue,
    Disconnect,
}

#[derive(Debug, Clone)]
struct InputSpec {
    text: Option<String>,
    timeout: Duration,
    max_digits: usize,
    terminator: String,
    cancel_key: bool,
}

#[derive(Debug, Clone)]
struct LambdaSpec {
    arn: String,
    timeout: Duration,
    attributes: Vec<(String, String)>,
    string_map: bool,
}

#[derive(Debug, Clone)]
struct Condition {
    operator: Operator,
    operand: String,
    next: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Equals,
    TextStartsWith,
    TextEndsWith,
    TextContains,
    NumberGreaterThan,
    NumberGreaterOrEqualTo,
    NumberLessThan,
    NumberLessOrEqualTo,
}

impl Operator {
    fn parse(name: &str) -> Option<Operator> {
        Some(match name {
            "Equals" => Operator::Equals,
            "TextStartsWith" => Operator::TextStartsWith,
            "TextEndsWith" => Operator::TextEndsWith,
            "TextContains" => Operator::TextContains,
            "NumberGreaterThan" => Operator::NumberGreaterThan,
            "NumberGreaterOrEqualTo" => Operator::NumberGreaterOrEqualTo,
            "NumberLessThan" => Operator::NumberLessThan,
            "NumberLessOrEqualTo" => Operator::NumberLessOrEqualTo,
            _ => return None,
        })
    }

    /// Connect's semantics: numeric operators are false when either side is not a number.
    fn holds(self, value: &str, operand: &str) -> bool {
        let numbers = || match (value.trim().parse::<f64>(), operand.trim().parse::<f64>()) {
            (Ok(a), Ok(b)) => Some((a, b)),
            _ => None,
        };
        match self {
            Operator::Equals => value == operand,
            Operator::TextStartsWith => value.starts_with(operand),
            Operator::TextEndsWith => value.ends_with(operand),
            Operator::TextContains => value.contains(operand),
            Operator::NumberGreaterThan => numbers().is_some_and(|(a, b)| a > b),
            Operator::NumberGreaterOrEqualTo => numbers().is_some_and(|(a, b)| a >= b),
            Operator::NumberLessThan => numbers().is_some_and(|(a, b)| a < b),
            Operator::NumberLessOrEqualTo => numbers().is_some_and(|(a, b)| a <= b),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Parsing

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawFlow {
    version: String,
    start_action: String,
    actions: Vec<RawAction>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawAction {
    identifier: String,
    #[serde(rename = "Type")]
    kind: String,
    #[serde(default)]
    parameters: Value,
    #[serde(default)]
    transitions: RawTransitions,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawTransitions {
    #[serde(default)]
    next_action: Option<String>,
    #[serde(default)]
    errors: Vec<RawError>,
    #[serde(default)]
    conditions: Vec<RawCondition>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawError {
    next_action: String,
    error_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawCondition {
    next_action: String,
    condition: RawConditionBody,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawConditionBody {
    operator: String,
    operands: Vec<Value>,
}

impl Flow {
    /// Parses a flow-language document and checks it: the version, unique and valid
    /// Identifiers, a StartAction that exists, transitions that all lead to existing
    /// actions, supported action types and the parameters this interpreter relies on.
    pub fn from_json(text: &str) -> Result<Flow, FlowError> {
        let raw: RawFlow = serde_json::from_str(text)?;
        if raw.version != FLOW_VERSION {
            return Err(FlowError::Version { found: raw.version });
        }
        let mut placeholders = BTreeSet::new();
        let mut actions = HashMap::new();
        for raw_action in raw.actions {
            check_identifier(&raw_action.identifier)?;
            collect_placeholders(&raw_action.parameters, &mut placeholders);
            let action = parse_action(raw_action)?;
            if actions.contains_key(&action.id) {
                return Err(FlowError::DuplicateAction { id: action.id });
            }
            actions.insert(action.id.clone(), action);
        }
        if !actions.contains_key(&raw.start_action) {
            return Err(FlowError::MissingStart {
                start: raw.start_action,
            });
        }
        // Report dangling transitions in a stable order (by action id).
        let mut ids: Vec<&String> = actions.keys().collect();
        ids.sort();
        for id in ids {
            let Some(action) = actions.get(id) else {
                continue;
            };
            let targets = action
                .next
                .iter()
                .chain(action.errors.iter().map(|(_, target)| target))
                .chain(action.conditions.iter().map(|c| &c.next));
            for target in targets {
                if !actions.contains_key(target) {
                    return Err(FlowError::DanglingTransition {
                        action: action.id.clone(),
                        target: target.clone(),
                    });
                }
            }
        }
        Ok(Flow {
            start: raw.start_action,
            actions,
            placeholders,
        })
    }

    /// The `${Name}` placeholders the flow uses; [`run`] needs a value for each.
    pub fn placeholders(&self) -> &BTreeSet<String> {
        &self.placeholders
    }

    /// The Identifier of the first action.
    pub fn start_action(&self) -> &str {
        &self.start
    }

    /// How many actions the flow has.
    pub fn len(&self) -> usize {
        self.actions.len()
    }

    /// Whether the flow has no actions (never true for a flow that parsed).
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

/// Connect's rules for Identifiers: up to 50 characters, none of `% : ( \ / ) = $ , ; [ ] { }`.
fn check_identifier(id: &str) -> Result<(), FlowError> {
    let bad = |why: String| FlowError::BadIdentifier {
        id: id.to_string(),
        why,
    };
    if id.is_empty() {
        return Err(bad("it is empty".into()));
    }
    if id.chars().count() > 50 {
        return Err(bad("longer than 50 characters".into()));
    }
    if let Some(c) = id.chars().find(|c| "%:(\\/)=$,;[]{}".contains(*c)) {
        return Err(bad(format!("it contains {c:?}")));
    }
    Ok(())
}

fn collect_placeholders(value: &Value, into: &mut BTreeSet<String>) {
    match value {
        Value::String(s) => {
            for (_, _, name) in scan_placeholders(s) {
                into.insert(name.to_string());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_placeholders(v, into)),
        Value::Object(map) => {
            for (key, v) in map {
                for (_, _, name) in scan_placeholders(key) {
                    into.insert(name.to_string());
                }
                collect_placeholders(v, into);
            }
        }
        _ => {}
    }
}

fn parse_action(raw: RawAction) -> Result<Action, FlowError> {
    let id = raw.identifier;
    let empty = Map::new();
    let params = match &raw.parameters {
        Value::Object(map) => map,
        Value::Null => &empty,
        _ => return Err(invalid(&id, "Parameters must be an object")),
    };
    let step = match raw.kind.as_str() {
        "MessageParticipant" => Step::Message {
            text: prompt(&id, params)?.ok_or_else(|| {
                invalid(&id, "MessageParticipant needs a Text (or SSML) to speak")
            })?,
        },
        "GetParticipantInput" => Step::GetInput(parse_input(&id, params)?),
        "UpdateContactAttributes" => Step::SetAttributes {
            attributes: string_map(&id, params, "Attributes")?.ok_or_else(|| {
                invalid(&id, "UpdateContactAttributes needs an Attributes object")
            })?,
        },
        "InvokeLambdaFunction" => Step::InvokeLambda(parse_lambda(&id, params)?),
        "Compare" => {
            let value = required_str(&id, params, "ComparisonValue")?;
            if whole_reference(&value).is_none() {
                return Err(invalid(
                    &id,
                    "ComparisonValue must be a single JSONPath reference such as $.External.x",
                ));
            }
            check_references(&id, &value)?;
            Step::Compare { value }
        }
        "UpdateContactTargetQueue" => {
            if params.contains_key("AgentId") {
                return Err(invalid(
                    &id,
                    "AgentId (agent queues) is not simulated; use QueueId",
                ));
            }
            let queue = required_str(&id, params, "QueueId")?;
            check_references(&id, &queue)?;
            Step::SetQueue { queue }
        }
        "TransferContactToQueue" => Step::TransferToQueue,
        "DisconnectParticipant" => Step::Disconnect,
        other => {
            return Err(FlowError::Unsupported {
                id,
                kind: other.to_string(),
            })
        }
    };
    let transitions = raw.transitions;
    if !transitions.conditions.is_empty() && !matches!(step, Step::Compare { .. }) {
        return Err(invalid(
            &id,
            "Conditions are only evaluated on Compare here (GetParticipantInput in store mode has none); move them to a Compare action",
        ));
    }
    let mut conditions = Vec::with_capacity(transitions.conditions.len());
    for raw_condition in transitions.conditions {
        let body = raw_condition.condition;
        let operator = Operator::parse(&body.operator).ok_or_else(|| {
            invalid(
                &id,
                &format!(
                    "condition operator {:?} is not one of Equals, TextStartsWith, TextEndsWith, TextContains, NumberGreaterThan, NumberGreaterOrEqualTo, NumberLessThan, NumberLessOrEqualTo",
                    body.operator
                ),
            )
        })?;
        let operand = match body.operands.as_slice() {
            [single] => scalar_string(single)
                .ok_or_else(|| invalid(&id, "a condition operand must be a string"))?,
            _ => {
                return Err(invalid(
                    &id,
                    &format!("operator {} takes exactly one operand", body.operator),
                ))
            }
        };
        conditions.push(Condition {
            operator,
            operand,
            next: raw_condition.next_action,
        });
    }
    Ok(Action {
        id,
        step,
        next: transitions.next_action,
        errors: transitions
            .errors
            .into_iter()
            .map(|e| (e.error_type, e.next_action))
            .collect(),
        conditions,
    })
}

fn invalid(action: &str, problem: &str) -> FlowError {
    FlowError::InvalidParameter {
        action: action.to_string(),
        problem: problem.to_string(),
    }
}

/// Flow-language parameters are strings; numbers are tolerated.
fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn optional_str(
    action: &str,
    params: &Map<String, Value>,
    key: &str,
) -> Result<Option<String>, FlowError> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => scalar_string(value)
            .map(Some)
            .ok_or_else(|| invalid(action, &format!("{key} must be a string"))),
    }
}

fn required_str(action: &str, params: &Map<String, Value>, key: &str) -> Result<String, FlowError> {
    optional_str(action, params, key)?
        .ok_or_else(|| invalid(action, &format!("the {key} parameter is required")))
}

fn object<'a>(
    action: &str,
    params: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, FlowError> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(invalid(action, &format!("{key} must be an object"))),
    }
}

/// An object of string values, e.g. `Attributes` or `LambdaInvocationAttributes`.
fn string_map(
    action: &str,
    params: &Map<String, Value>,
    key: &str,
) -> Result<Option<Vec<(String, String)>>, FlowError> {
    let Some(map) = object(action, params, key)? else {
        return Ok(None);
    };
    let mut pairs = Vec::with_capacity(map.len());
    for (name, value) in map {
        let value = scalar_string(value)
            .ok_or_else(|| invalid(action, &format!("{key}.{name} must be a string")))?;
        check_references(action, name)?;
        check_references(action, &value)?;
        pairs.push((name.clone(), value));
    }
    Ok(Some(pairs))
}

fn positive_seconds(action: &str, raw: &str, key: &str, max: u64) -> Result<Duration, FlowError> {
    match raw.trim().parse::<u64>() {
        Ok(n) if n > 0 && n <= max => Ok(Duration::from_secs(n)),
        _ => Err(invalid(
            action,
            &format!("{key} must be a whole number of seconds from 1 to {max}, not {raw:?}"),
        )),
    }
}

/// The text to speak: `Text` or `SSML` (played as written). Audio prompts cannot be
/// simulated.
fn prompt(action: &str, params: &Map<String, Value>) -> Result<Option<String>, FlowError> {
    if params.contains_key("PromptId") || params.contains_key("Media") {
        return Err(invalid(
            action,
            "audio prompts (PromptId, Media) are not simulated; use Text or SSML",
        ));
    }
    let text = optional_str(action, params, "Text")?;
    let ssml = optional_str(action, params, "SSML")?;
    let chosen = match (text, ssml) {
        (Some(_), Some(_)) => return Err(invalid(action, "give Text or SSML, not both")),
        (text, ssml) => text.or(ssml),
    };
    if let Some(text) = &chosen {
        check_references(action, text)?;
    }
    Ok(chosen)
}

fn parse_input(action: &str, params: &Map<String, Value>) -> Result<InputSpec, FlowError> {
    let store = optional_str(action, params, "StoreInput")?.unwrap_or_default();
    if !store.eq_ignore_ascii_case("true") {
        return Err(invalid(
            action,
            "only store mode is simulated: set \"StoreInput\": \"True\" and read $.StoredCustomerInput",
        ));
    }
    // The current reference names it InputTimeLimitSeconds; older pages say InputTimeoutSeconds.
    let raw_timeout = match optional_str(action, params, "InputTimeLimitSeconds")? {
        Some(raw) => raw,
        None => optional_str(action, params, "InputTimeoutSeconds")?
            .ok_or_else(|| invalid(action, "the InputTimeLimitSeconds parameter is required"))?,
    };
    let timeout = positive_seconds(action, &raw_timeout, "InputTimeLimitSeconds", 180)?;
    let validation = object(action, params, "InputValidation")?.ok_or_else(|| {
        invalid(
            action,
            "InputValidation is required in store mode (e.g. {\"CustomValidation\": {\"MaximumLength\": \"1\"}})",
        )
    })?;
    let max_digits = match object(action, validation, "CustomValidation")? {
        Some(custom) => {
            let raw = required_str(action, custom, "MaximumLength")?;
            match raw.trim().parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(invalid(
                        action,
                        &format!("MaximumLength must be a positive whole number, not {raw:?}"),
                    ))
                }
            }
        }
        None if validation.contains_key("PhoneNumberValidation") => 20,
        None => {
            return Err(invalid(
                action,
                "InputValidation needs CustomValidation or PhoneNumberValidation",
            ))
        }
    };
    let dtmf = object(action, params, "DTMFConfiguration")?;
    let (terminator, cancel_key) = match dtmf {
        Some(dtmf) => (
            optional_str(action, dtmf, "InputTerminationSequence")?
                .unwrap_or_else(|| "#".to_string()),
            !optional_str(action, dtmf, "DisableCancelKey")?
                .unwrap_or_default()
                .eq_ignore_ascii_case("true"),
        ),
        None => ("#".to_string(), true),
    };
    Ok(InputSpec {
        text: prompt(action, params)?,
        timeout,
        max_digits,
        terminator,
        cancel_key,
    })
}

fn parse_lambda(action: &str, params: &Map<String, Value>) -> Result<LambdaSpec, FlowError> {
    let arn = required_str(action, params, "LambdaFunctionARN")?;
    check_references(action, &arn)?;
    let raw_timeout = required_str(action, params, "InvocationTimeLimitSeconds")?;
    let timeout = positive_seconds(action, &raw_timeout, "InvocationTimeLimitSeconds", 8)?;
    if let Some(kind) = optional_str(action, params, "InvocationType")? {
        if kind != "SYNCHRONOUS" {
            return Err(invalid(
                action,
                &format!("InvocationType {kind:?} is not simulated; use SYNCHRONOUS"),
            ));
        }
    }
    let string_map = match object(action, params, "ResponseValidation")? {
        None => true,
        Some(validation) => match required_str(action, validation, "ResponseType")?.as_str() {
            "STRING_MAP" => true,
            "JSON" => false,
            other => {
                return Err(invalid(
                    action,
                    &format!(
                        "ResponseValidation.ResponseType must be STRING_MAP or JSON, not {other:?}"
                    ),
                ))
            }
        },
    };
    Ok(LambdaSpec {
        arn,
        timeout,
        attributes: string_map_or_empty(action, params, "LambdaInvocationAttributes")?,
        string_map,
    })
}

fn string_map_or_empty(
    action: &str,
    params: &Map<String, Value>,
    key: &str,
) -> Result<Vec<(String, String)>, FlowError> {
    Ok(string_map(action, params, key)?.unwrap_or_default())
}

// ---------------------------------------------------------------------------------------
// References `$.Path` and placeholders `${Name}`

/// `(start, end, path)` of each `$.Path` reference embedded in `text` (a path starts with
/// a letter and runs over letters, digits, `_` and inner dots).
fn scan_references(text: &str) -> Vec<(usize, usize, &str)> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && bytes.get(i + 1) == Some(&b'.') {
            let start = i + 2;
            if bytes.get(start).is_some_and(|b| b.is_ascii_alphabetic()) {
                let mut end = start;
                while end < bytes.len()
                    && (bytes[end].is_ascii_alphanumeric()
                        || bytes[end] == b'_'
                        || bytes[end] == b'.')
                {
                    end += 1;
                }
                while end > start && bytes[end - 1] == b'.' {
                    end -= 1;
                }
                found.push((i, end, &text[start..end]));
                i = end;
                continue;
            }
        }
        i += 1;
    }
    found
}

/// The path when `value` is exactly one reference, e.g. `$.External.text` -> `External.text`.
fn whole_reference(value: &str) -> Option<&str> {
    match scan_references(value).as_slice() {
        [(0, end, path)] if *end == value.len() => Some(path),
        _ => None,
    }
}

fn check_references(action: &str, text: &str) -> Result<(), FlowError> {
    for (_, _, path) in scan_references(text) {
        let mut parts = path.splitn(2, '.');
        let root = parts.next().unwrap_or_default();
        let rest = parts.next();
        if !REFERENCE_ROOTS.contains(&root) {
            return Err(invalid(
                action,
                &format!(
                    "the reference $.{path} is not understood here (known: {})",
                    REFERENCE_ROOTS.map(|r| format!("$.{r}")).join(", ")
                ),
            ));
        }
        if matches!(root, "External" | "Attributes") && rest.is_none() {
            return Err(invalid(
                action,
                &format!("the reference $.{root} needs a key, e.g. $.{root}.name"),
            ));
        }
    }
    Ok(())
}

/// `(start, end, name)` of each `${Name}` placeholder in `text`.
fn scan_placeholders(text: &str) -> Vec<(usize, usize, &str)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = text[from..].find("${") {
        let start = from + offset;
        let Some(close) = text[start + 2..].find('}') else {
            break;
        };
        let end = start + 2 + close + 1;
        let name = &text[start + 2..end - 1];
        if !name.is_empty() {
            found.push((start, end, name));
        }
        from = end;
    }
    found
}

fn substitute(text: &str, params: &HashMap<String, String>) -> Result<String, FlowError> {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end, name) in scan_placeholders(text) {
        let value = params
            .get(name)
            .ok_or_else(|| FlowError::MissingPlaceholder {
                name: name.to_string(),
            })?;
        out.push_str(&text[last..start]);
        out.push_str(value);
        last = end;
    }
    out.push_str(&text[last..]);
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Running a call

/// The flow data of one running contact.
struct CallState<'a> {
    contact: &'a Contact,
    params: &'a HashMap<String, String>,
    attributes: BTreeMap<String, String>,
    external: Value,
    stored_input: Option<String>,
    target_queue: Option<String>,
}

impl CallState<'_> {
    fn lookup(&self, path: &str) -> Option<String> {
        let mut parts = path.splitn(2, '.');
        let root = parts.next().unwrap_or_default();
        let rest = parts.next();
        let endpoint = |number: &Option<String>| match rest {
            Some("Address") => number.clone(),
            Some("Type") => number.as_ref().map(|_| "TELEPHONE_NUMBER".to_string()),
            _ => None,
        };
        match root {
            "External" => {
                let mut value = &self.external;
                for key in rest?.split('.') {
                    value = value.get(key)?;
                }
                match value {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                }
            }
            "Attributes" => self.attributes.get(rest?).cloned(),
            "StoredCustomerInput" => self.stored_input.clone(),
            "ContactId" | "InitialContactId" | "PreviousContactId" => {
                Some(self.contact.contact_id.clone())
            }
            "Channel" => Some(self.contact.channel.clone()),
            "InstanceARN" => Some(self.contact.instance_arn.clone()),
            "InitiationMethod" => Some("INBOUND".to_string()),
            "CustomerEndpoint" => endpoint(&self.contact.customer_number),
            "SystemEndpoint" => endpoint(&self.contact.system_number),
            "Queue" => match rest {
                Some("ARN") => self.target_queue.clone(),
                _ => None,
            },
            _ => None,
        }
    }

    /// Resolves a parameter value: placeholders first, then `$.` references. A value that
    /// is a single reference to missing data is `None`.
    fn resolve_opt(&self, raw: &str) -> Result<Option<String>, FlowError> {
        let text = substitute(raw, self.params)?;
        if let Some(path) = whole_reference(&text) {
            return Ok(self.lookup(path));
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for (start, end, path) in scan_references(&text) {
            out.push_str(&text[last..start]);
            out.push_str(&self.lookup(path).unwrap_or_default());
            last = end;
        }
        out.push_str(&text[last..]);
        Ok(Some(out))
    }

    /// Like [`CallState::resolve_opt`], with missing data read as an empty string.
    fn resolve(&self, raw: &str) -> Result<String, FlowError> {
        Ok(self.resolve_opt(raw)?.unwrap_or_default())
    }

    fn event(&self, parameters: Map<String, Value>) -> Value {
        let endpoint = |number: &Option<String>| match number {
            Some(address) => json!({"Address": address, "Type": "TELEPHONE_NUMBER"}),
            None => Value::Null,
        };
        let queue = match &self.target_queue {
            Some(arn) => json!({"ARN": arn, "Name": Value::Null}),
            None => Value::Null,
        };
        let contact = self.contact;
        json!({
            "Name": "ContactFlowEvent",
            "Details": {
                "ContactData": {
                    "Attributes": self.attributes,
                    "Channel": contact.channel,
                    "ContactId": contact.contact_id,
                    "CustomerEndpoint": endpoint(&contact.customer_number),
                    "InitialContactId": contact.contact_id,
                    "InitiationMethod": "INBOUND",
                    "InstanceARN": contact.instance_arn,
                    "PreviousContactId": contact.contact_id,
                    "Queue": queue,
                    "SystemEndpoint": endpoint(&contact.system_number),
                },
                "Parameters": parameters,
            }
        })
    }
}

/// Where an action sends the call next.
enum Outcome {
    Next,
    Error(&'static str),
    Goto(String),
    End(CallEnd),
}

impl Action {
    fn next_target(&self) -> Result<&str, FlowError> {
        self.next.as_deref().ok_or_else(|| FlowError::NoTransition {
            action: self.id.clone(),
            branch: "NextAction".to_string(),
        })
    }

    /// The `Errors` entry for `kind`, else the catch-all `NoMatchingError` one.
    fn error_target(&self, kind: &str) -> Result<&str, FlowError> {
        let find = |wanted: &str| {
            self.errors
                .iter()
                .find(|(error_type, _)| error_type == wanted)
                .map(|(_, target)| target.as_str())
        };
        find(kind)
            .or_else(|| find(NO_MATCHING_ERROR))
            .ok_or_else(|| FlowError::NoTransition {
                action: self.id.clone(),
                branch: format!("the error {kind}"),
            })
    }
}

/// What Connect stores from the keys a caller pressed, or `None` for keys a phone cannot
/// send. `*` clears what came before it unless the cancel key is disabled; the
/// termination sequence ends the input and is not stored; input stops at `max_digits`.
fn collect_digits(keys: &str, spec: &InputSpec) -> Option<String> {
    let mut buffer = String::new();
    for key in keys.chars() {
        if !(key.is_ascii_digit() || key == '*' || key == '#') {
            return None;
        }
        if key == '*' && spec.cancel_key {
            buffer.clear();
            continue;
        }
        buffer.push(key);
        if !spec.terminator.is_empty() && buffer.ends_with(&spec.terminator) {
            buffer.truncate(buffer.len() - spec.terminator.len());
            break;
        }
        if buffer.chars().count() >= spec.max_digits {
            break;
        }
    }
    Some(buffer)
}

/// What a STRING_MAP (or JSON) validated Lambda response may be.
fn valid_response(response: &Value, string_map: bool) -> Result<(), String> {
    let size = response.to_string().len();
    if size > MAX_LAMBDA_RESPONSE_BYTES {
        return Err(format!(
            "the response is {size} bytes; Connect accepts at most {MAX_LAMBDA_RESPONSE_BYTES}"
        ));
    }
    if string_map {
        let Value::Object(map) = response else {
            return Err("STRING_MAP needs a flat JSON object".to_string());
        };
        if let Some((key, _)) = map.iter().find(|(_, v)| !v.is_string()) {
            return Err(format!(
                "STRING_MAP needs string values, but {key:?} is not a string"
            ));
        }
    }
    Ok(())
}

/// Runs one whole call through `flow`, from its StartAction until it disconnects,
/// transfers, or the caller hangs up.
///
/// `params` fills the `${Name}` placeholders (all of [`Flow::placeholders`] must be given).
/// Branches a real call can take (Lambda errors and timeouts, invalid responses, input
/// errors, a transfer without a queue) follow the flow's `Errors` transitions; a
/// [`FlowError`] means the flow or the parameters are wrong, or the call never ends.
pub async fn run(
    flow: &Flow,
    contact: &Contact,
    lambda: &dyn Lambda,
    caller: &mut dyn Caller,
    params: &HashMap<String, String>,
) -> Result<CallReport, FlowError> {
    if let Some(name) = flow.placeholders.iter().find(|n| !params.contains_key(*n)) {
        return Err(FlowError::MissingPlaceholder { name: name.clone() });
    }
    let mut state = CallState {
        contact,
        params,
        attributes: contact.attributes.clone(),
        external: Value::Null,
        stored_input: None,
        target_queue: None,
    };
    let mut current = flow.start.clone();
    let mut previous = current.clone();
    let mut steps = 0;
    loop {
        if steps >= MAX_STEPS {
            return Err(FlowError::TooManySteps { limit: MAX_STEPS });
        }
        let action = flow
            .actions
            .get(&current)
            .ok_or_else(|| FlowError::DanglingTransition {
                action: previous.clone(),
                target: current.clone(),
            })?;
        previous.clone_from(&current);
        steps += 1;
        tracing::debug!(action = %action.id, step = steps, "flow action");
        let outcome = match &action.step {
            Step::Message { text } => {
                caller.hear(&state.resolve(text)?).await;
                Outcome::Next
            }
            Step::GetInput(spec) => get_input(&mut state, spec, caller).await?,
            Step::SetAttributes { attributes } => {
                let mut resolved = Vec::with_capacity(attributes.len());
                for (key, value) in attributes {
                    resolved.push((state.resolve(key)?, state.resolve(value)?));
                }
                state.attributes.extend(resolved);
                Outcome::Next
            }
            Step::InvokeLambda(spec) => invoke(&mut state, spec, &action.id, lambda).await?,
            Step::Compare { value } => {
                let value = state.resolve_opt(value)?;
                let matched = value.as_deref().and_then(|value| {
                    action
                        .conditions
                        .iter()
                        .find(|c| c.operator.holds(value, &c.operand))
                });
                match matched {
                    Some(condition) => Outcome::Goto(condition.next.clone()),
                    None => Outcome::Error(NO_MATCHING_CONDITION),
                }
            }
            Step::SetQueue { queue } => {
                let queue = state.resolve(queue)?;
                if queue.is_empty() {
                    Outcome::Error(NO_MATCHING_ERROR)
                } else {
                    state.target_queue = Some(queue);
                    Outcome::Next
                }
            }
            Step::TransferToQueue => match &state.target_queue {
                Some(queue) => Outcome::End(CallEnd::Transferred {
                    queue: queue.clone(),
                }),
                None => Outcome::Error(NO_MATCHING_ERROR),
            },
            Step::Disconnect => Outcome::End(CallEnd::Disconnected),
        };
        current = match outcome {
            Outcome::Next => action.next_target()?.to_string(),
            Outcome::Error(kind) => action.error_target(kind)?.to_string(),
            Outcome::Goto(target) => target,
            Outcome::End(end) => {
                return Ok(CallReport {
                    end,
                    attributes: state.attributes,
                    steps,
                })
            }
        };
    }
}

/// `GetParticipantInput` in store mode. As Connect documents for "Store customer input",
/// a timeout takes the success branch with `$.StoredCustomerInput` = `Timeout`; the error
/// branch is taken on non-voice channels and for keys a phone cannot send.
async fn get_input(
    state: &mut CallState<'_>,
    spec: &InputSpec,
    caller: &mut dyn Caller,
) -> Result<Outcome, FlowError> {
    if state.contact.channel != "VOICE" {
        return Ok(Outcome::Error(NO_MATCHING_ERROR));
    }
    if let Some(text) = &spec.text {
        caller.hear(&state.resolve(text)?).await;
    }
    let pressed = tokio::time::timeout(
        spec.timeout + PRESS_GRACE,
        caller.press(spec.timeout, spec.max_digits),
    )
    .await
    .unwrap_or(CallerInput::Timeout);
    let stored = match pressed {
        CallerInput::HangUp => return Ok(Outcome::End(CallEnd::HungUp)),
        CallerInput::Timeout => "Timeout".to_string(),
        CallerInput::Digits(keys) => match collect_digits(&keys, spec) {
            None => return Ok(Outcome::Error(NO_MATCHING_ERROR)),
            Some(digits) if digits.is_empty() => "Timeout".to_string(),
            Some(digits) => digits,
        },
    };
    state.stored_input = Some(stored);
    Ok(Outcome::Next)
}

/// `InvokeLambdaFunction`, synchronous, within `InvocationTimeLimitSeconds`.
async fn invoke(
    state: &mut CallState<'_>,
    spec: &LambdaSpec,
    action: &str,
    lambda: &dyn Lambda,
) -> Result<Outcome, FlowError> {
    let arn = state.resolve(&spec.arn)?;
    let mut parameters = Map::new();
    for (key, value) in &spec.attributes {
        parameters.insert(state.resolve(key)?, Value::String(state.resolve(value)?));
    }
    let event = state.event(parameters);
    let failure = match tokio::time::timeout(spec.timeout, lambda.invoke(&arn, event)).await {
        Err(_) => format!("no answer within {}s", spec.timeout.as_secs()),
        Ok(Err(error)) => error,
        Ok(Ok(response)) => match valid_response(&response, spec.string_map) {
            Ok(()) => {
                state.external = response;
                return Ok(Outcome::Next);
            }
            Err(why) => why,
        },
    };
    tracing::warn!(%action, function = %arn, error = %failure, "Lambda invocation failed; the flow takes its error branch");
    Ok(Outcome::Error(NO_MATCHING_ERROR))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real flow to run: connect-triage's own (this crate's tests use it as a fixture).
    const TRIAGE_FLOW: &str = include_str!("../../../connect/triage-flow.json");
    use std::collections::VecDeque;
    use std::sync::Mutex;

    const QUEUE: &str = "arn:aws:connect:eu-west-1:111122223333:instance/i-1/queue/q-hospital";
    const FUNCTION: &str = "arn:aws:lambda:eu-west-1:111122223333:function:triage";

    fn params() -> HashMap<String, String> {
        HashMap::from([
            ("TriageFunctionArn".to_string(), FUNCTION.to_string()),
            ("HospitalQueueArn".to_string(), QUEUE.to_string()),
        ])
    }

    fn contact() -> Contact {
        let mut contact = Contact::voice(
            "11111111-2222-3333-4444-555555555555",
            "arn:aws:connect:eu-west-1:111122223333:instance/i-1",
        );
        contact.customer_number = Some("+34600000000".to_string());
        contact.system_number = Some("+34900000000".to_string());
        contact
            .attributes
            .insert("lang".to_string(), "es".to_string());
        contact
    }

    /// Answers with scripted responses and records every (ARN, event) it receives.
    struct FakeLambda {
        responses: Mutex<VecDeque<Result<Value, String>>>,
        calls: Mutex<Vec<(String, Value)>>,
    }

    impl FakeLambda {
        fn new(responses: Vec<Result<Value, String>>) -> FakeLambda {
            FakeLambda {
                responses: Mutex::new(responses.into()),
                calls: Mutex::new(Vec::new()),
            }
        }
        fn calls(&self) -> Vec<(String, Value)> {
            self.calls.lock().expect("lock").clone()
        }
        fn parameters(&self) -> Vec<Value> {
            self.calls()
                .into_iter()
                .map(|(_, event)| event["Details"]["Parameters"].clone())
                .collect()
        }
    }

    #[async_trait::async_trait]
    impl Lambda for FakeLambda {
        async fn invoke(&self, function_arn: &str, event: Value) -> Result<Value, String> {
            self.calls
                .lock()
                .expect("lock")
                .push((function_arn.to_string(), event));
            self.responses
                .lock()
                .expect("lock")
                .pop_front()
                .unwrap_or_else(|| Err("no scripted response left".to_string()))
        }
    }

    /// Always asks the next question.
    struct EndlessLambda;

    #[async_trait::async_trait]
    impl Lambda for EndlessLambda {
        async fn invoke(&self, _: &str, _: Value) -> Result<Value, String> {
            Ok(json!({"continue": "1", "text": "again?", "turn": "t"}))
        }
    }

    /// Never answers in time.
    struct SlowLambda;

    #[async_trait::async_trait]
    impl Lambda for SlowLambda {
        async fn invoke(&self, _: &str, _: Value) -> Result<Value, String> {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(json!({"continue": "0", "text": "too late"}))
        }
    }

    #[derive(Default)]
    struct FakeCaller {
        script: VecDeque<CallerInput>,
        heard: Vec<String>,
        asked: Vec<(Duration, usize)>,
    }

    impl FakeCaller {
        fn new(script: Vec<CallerInput>) -> FakeCaller {
            FakeCaller {
                script: script.into(),
                ..FakeCaller::default()
            }
        }
    }

    #[async_trait::async_trait]
    impl Caller for FakeCaller {
        async fn hear(&mut self, text: &str) {
            self.heard.push(text.to_string());
        }
        async fn press(&mut self, timeout: Duration, max_digits: usize) -> CallerInput {
            self.asked.push((timeout, max_digits));
            self.script
                .pop_front()
                .unwrap_or(CallerInput::Digits("1".into()))
        }
    }

    fn question(text: &str, turn: &str) -> Result<Value, String> {
        Ok(json!({"continue": "1", "text": text, "turn": turn, "score": "0", "question": "q"}))
    }

    fn last(text: &str, outcome: &str) -> Result<Value, String> {
        Ok(json!({"continue": "0", "text": text, "outcome": outcome, "score": "60"}))
    }

    fn digits(keys: &str) -> CallerInput {
        CallerInput::Digits(keys.to_string())
    }

    fn minimal(actions: Value) -> String {
        json!({"Version": FLOW_VERSION, "StartAction": "a", "Actions": actions}).to_string()
    }

    #[test]
    fn the_embedded_flow_parses_and_names_its_placeholders() {
        let flow = Flow::from_json(TRIAGE_FLOW).expect("the embedded flow is valid");
        assert_eq!(flow.start_action(), "invoke-triage");
        assert_eq!(flow.len(), 11);
        let names: Vec<&str> = flow.placeholders().iter().map(String::as_str).collect();
        assert_eq!(names, ["HospitalQueueArn", "TriageFunctionArn"]);
    }

    #[test]
    fn a_dangling_transition_is_refused_naming_the_action_and_target() {
        let text = minimal(json!([
            {"Identifier": "a", "Type": "MessageParticipant", "Parameters": {"Text": "hi"},
             "Transitions": {"NextAction": "b", "Errors": [{"NextAction": "nowhere", "ErrorType": "NoMatchingError"}]}},
            {"Identifier": "b", "Type": "DisconnectParticipant", "Parameters": {}, "Transitions": {}}
        ]));
        let error = Flow::from_json(&text).expect_err("dangling");
        assert!(
            matches!(&error, FlowError::DanglingTransition { action, target } if action == "a" && target == "nowhere")
        );
        let message = error.to_string();
        assert!(
            message.contains("\"a\"") && message.contains("\"nowhere\""),
            "{message}"
        );
    }

    #[test]
    fn an_unsupported_action_is_refused_naming_type_and_id() {
        let text = minimal(json!([
            {"Identifier": "a", "Type": "ConnectParticipantWithLexBot", "Parameters": {}, "Transitions": {}}
        ]));
        let error = Flow::from_json(&text).expect_err("unsupported");
        let message = error.to_string();
        assert!(matches!(error, FlowError::Unsupported { .. }));
        assert!(
            message.contains("ConnectParticipantWithLexBot") && message.contains("\"a\""),
            "{message}"
        );
    }

    #[test]
    fn structural_mistakes_are_refused() {
        let missing_start = json!({"Version": FLOW_VERSION, "StartAction": "x", "Actions": [
            {"Identifier": "a", "Type": "DisconnectParticipant", "Parameters": {}, "Transitions": {}}
        ]});
        assert!(
            matches!(Flow::from_json(&missing_start.to_string()), Err(FlowError::MissingStart { start }) if start == "x")
        );

        let duplicate = minimal(json!([
            {"Identifier": "a", "Type": "DisconnectParticipant", "Transitions": {}},
            {"Identifier": "a", "Type": "DisconnectParticipant", "Transitions": {}}
        ]));
        assert!(matches!(
            Flow::from_json(&duplicate),
            Err(FlowError::DuplicateAction { .. })
        ));

        let version = json!({"Version": "2020-01-01", "StartAction": "a", "Actions": []});
        assert!(matches!(
            Flow::from_json(&version.to_string()),
            Err(FlowError::Version { .. })
        ));

        let bad_id = minimal(
            json!([{"Identifier": "a:b", "Type": "DisconnectParticipant", "Transitions": {}}]),
        );
        assert!(matches!(
            Flow::from_json(&bad_id),
            Err(FlowError::BadIdentifier { .. })
        ));

        let menu_mode = minimal(json!([
            {"Identifier": "a", "Type": "GetParticipantInput",
             "Parameters": {"Text": "press", "StoreInput": "False", "InputTimeLimitSeconds": "5"},
             "Transitions": {"NextAction": "a", "Errors": [{"NextAction": "a", "ErrorType": "NoMatchingError"}]}}
        ]));
        assert!(matches!(
            Flow::from_json(&menu_mode),
            Err(FlowError::InvalidParameter { .. })
        ));

        let unknown_reference = minimal(json!([
            {"Identifier": "a", "Type": "MessageParticipant", "Parameters": {"Text": "$.Lex.Slots.x"},
             "Transitions": {"NextAction": "a"}}
        ]));
        let error = Flow::from_json(&unknown_reference).expect_err("unknown reference");
        assert!(error.to_string().contains("$.Lex.Slots.x"), "{error}");

        assert!(matches!(Flow::from_json("{"), Err(FlowError::Json(_))));
    }

    #[tokio::test]
    async fn a_whole_call_ends_in_the_hospital_queue() {
        let flow = Flow::from_json(TRIAGE_FLOW).expect("flow");
        let lambda = FakeLambda::new(vec![
            question("Q1", "t1"),
            question("Q2", "t2"),
            last("Go to hospital", "hospital"),
        ]);
        let mut caller = FakeCaller::new(vec![digits("1"), CallerInput::Timeout]);
        let report = run(&flow, &contact(), &lambda, &mut caller, &params())
            .await
            .expect("call");

        assert_eq!(
            report.end,
            CallEnd::Transferred {
                queue: QUEUE.to_string()
            }
        );
        assert_eq!(caller.heard, ["Q1", "Q2", "Go to hospital"]);
        assert_eq!(
            caller.asked,
            [(Duration::from_secs(5), 1), (Duration::from_secs(5), 1)]
        );
        assert_eq!(
            report.attributes.get("turn").map(String::as_str),
            Some("t2")
        );

        let calls = lambda.calls();
        assert!(calls.iter().all(|(arn, _)| arn == FUNCTION));
        let parameters = lambda.parameters();
        assert_eq!(
            parameters[0],
            json!({"answer": "", "turn": "", "lang": "es"})
        );
        assert_eq!(
            parameters[1],
            json!({"answer": "1", "turn": "t1", "lang": "es"})
        );
        assert_eq!(
            parameters[2],
            json!({"answer": "Timeout", "turn": "t2", "lang": "es"})
        );

        let event = &calls[1].1;
        assert_eq!(event["Name"], "ContactFlowEvent");
        let data = &event["Details"]["ContactData"];
        assert_eq!(data["ContactId"], "11111111-2222-3333-4444-555555555555");
        assert_eq!(data["Channel"], "VOICE");
        assert_eq!(data["InitiationMethod"], "INBOUND");
        assert_eq!(
            data["CustomerEndpoint"],
            json!({"Address": "+34600000000", "Type": "TELEPHONE_NUMBER"})
        );
        assert_eq!(data["Attributes"], json!({"lang": "es", "turn": "t1"}));
        assert_eq!(data["Queue"], Value::Null);
        // The event reads as the Lambda runtime's own type for Connect events.
        let typed: aws_lambda_events::event::connect::ConnectEvent =
            serde_json::from_value(event.clone()).expect("a ConnectEvent");
        assert_eq!(
            typed.details.parameters.get("turn").map(String::as_str),
            Some("t1")
        );
    }

    #[tokio::test]
    async fn star_is_delivered_and_a_clear_outcome_disconnects() {
        let flow = Flow::from_json(TRIAGE_FLOW).expect("flow");
        let lambda = FakeLambda::new(vec![question("Q1", "t1"), last("Bye", "exited")]);
        let mut caller = FakeCaller::new(vec![digits("*")]);
        let report = run(&flow, &contact(), &lambda, &mut caller, &params())
            .await
            .expect("call");
        assert_eq!(report.end, CallEnd::Disconnected);
        assert_eq!(lambda.parameters()[1]["answer"], "*");
        assert_eq!(caller.heard, ["Q1", "Bye"]);
    }

    #[tokio::test]
    async fn hanging_up_ends_the_call() {
        let flow = Flow::from_json(TRIAGE_FLOW).expect("flow");
        let lambda = FakeLambda::new(vec![question("Q1", "t1")]);
        let mut caller = FakeCaller::new(vec![CallerInput::HangUp]);
        let report = run(&flow, &contact(), &lambda, &mut caller, &params())
            .await
            .expect("call");
        assert_eq!(report.end, CallEnd::HungUp);
        assert_eq!(lambda.calls().len(), 1);
        assert_eq!(caller.heard, ["Q1"]);
    }

    #[tokio::test]
    async fn lambda_failures_apologise_and_disconnect() {
        let flow = Flow::from_json(TRIAGE_FLOW).expect("flow");
        let not_a_string_map = Ok(json!({"continue": 1, "text": "Q1"}));
        for response in [Err("boom".to_string()), not_a_string_map, Ok(json!(["x"]))] {
            let lambda = FakeLambda::new(vec![response]);
            let mut caller = FakeCaller::new(vec![]);
            let report = run(&flow, &contact(), &lambda, &mut caller, &params())
                .await
                .expect("call");
            assert_eq!(report.end, CallEnd::Disconnected);
            assert_eq!(caller.heard.len(), 1);
            assert!(
                caller.heard[0].starts_with("Lo sentimos"),
                "{:?}",
                caller.heard
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lambda_slower_than_the_time_limit_takes_the_error_branch() {
        let flow = Flow::from_json(TRIAGE_FLOW).expect("flow");
        let mut caller = FakeCaller::new(vec![]);
        let report = run(&flow, &contact(), &SlowLambda, &mut caller, &params())
            .await
            .expect("call");
        assert_eq!(report.end, CallEnd::Disconnected);
        assert!(caller.heard[0].starts_with("Lo sentimos"));
    }

    #[tokio::test]
    async fn input_on_a_non_voice_channel_is_sent_as_a_timeout() {
        let flow = Flow::from_json(TRIAGE_FLOW).expect("flow");
        let lambda = FakeLambda::new(vec![question("Q1", "t1"), last("Done", "clear")]);
        let mut chat = contact();
        chat.channel = "CHAT".to_string();
        let mut caller = FakeCaller::new(vec![]);
        let report = run(&flow, &chat, &lambda, &mut caller, &params())
            .await
            .expect("call");
        assert_eq!(report.end, CallEnd::Disconnected);
        assert!(caller.asked.is_empty());
        assert_eq!(lambda.parameters()[1]["answer"], "Timeout");
        assert_eq!(lambda.parameters()[1]["turn"], "t1");
    }

    #[tokio::test]
    async fn a_missing_placeholder_is_named() {
        let flow = Flow::from_json(TRIAGE_FLOW).expect("flow");
        let lambda = FakeLambda::new(vec![]);
        let mut caller = FakeCaller::new(vec![]);
        let only_function =
            HashMap::from([("TriageFunctionArn".to_string(), FUNCTION.to_string())]);
        let error = run(&flow, &contact(), &lambda, &mut caller, &only_function)
            .await
            .expect_err("missing placeholder");
        assert!(
            matches!(&error, FlowError::MissingPlaceholder { name } if name == "HospitalQueueArn")
        );
        assert!(error.to_string().contains("${HospitalQueueArn}"), "{error}");
        assert!(lambda.calls().is_empty());
    }

    #[tokio::test]
    async fn an_endless_call_is_stopped() {
        let flow = Flow::from_json(TRIAGE_FLOW).expect("flow");
        let mut caller = FakeCaller::new(vec![]);
        let error = run(&flow, &contact(), &EndlessLambda, &mut caller, &params())
            .await
            .expect_err("endless");
        assert!(matches!(
            error,
            FlowError::TooManySteps { limit: MAX_STEPS }
        ));
    }

    #[tokio::test]
    async fn references_resolve_whole_and_embedded() {
        let text = minimal(json!([
            {"Identifier": "a", "Type": "UpdateContactAttributes",
             "Parameters": {"Attributes": {"name": "Ana", "copy": "$.Attributes.lang"}},
             "Transitions": {"NextAction": "b", "Errors": [{"NextAction": "c", "ErrorType": "NoMatchingError"}]}},
            {"Identifier": "b", "Type": "MessageParticipant",
             "Parameters": {"Text": "Hola $.Attributes.name. Idioma $.Attributes.copy, canal $.Channel, nada: [$.Attributes.missing]"},
             "Transitions": {"NextAction": "c"}},
            {"Identifier": "c", "Type": "DisconnectParticipant", "Parameters": {}, "Transitions": {}}
        ]));
        let flow = Flow::from_json(&text).expect("flow");
        let mut caller = FakeCaller::new(vec![]);
        let report = run(
            &flow,
            &contact(),
            &EndlessLambda,
            &mut caller,
            &HashMap::new(),
        )
        .await
        .expect("call");
        assert_eq!(caller.heard, ["Hola Ana. Idioma es, canal VOICE, nada: []"]);
        assert_eq!(
            report.attributes.get("copy").map(String::as_str),
            Some("es")
        );
        assert_eq!(report.steps, 3);
    }

    #[test]
    fn a_call_can_run_on_another_task() {
        fn assert_send<T: Send>(_: &T) {}
        let flow = Flow::from_json(TRIAGE_FLOW).expect("flow");
        let (contact, params) = (contact(), params());
        let mut caller = FakeCaller::new(vec![]);
        let call = run(&flow, &contact, &EndlessLambda, &mut caller, &params);
        assert_send(&call);
    }

    #[test]
    fn compare_operators_follow_connect() {
        assert!(Operator::Equals.holds("1", "1"));
        assert!(!Operator::Equals.holds("01", "1"));
        assert!(Operator::NumberGreaterOrEqualTo.holds("50", "50"));
        assert!(Operator::NumberLessThan.holds("2.5", "10"));
        assert!(!Operator::NumberGreaterThan.holds("abc", "1"));
        assert!(Operator::TextContains.holds("hospital", "spit"));
    }

    #[test]
    fn keys_are_collected_as_connect_stores_them() {
        let spec = |cancel_key: bool, max_digits: usize| InputSpec {
            text: None,
            timeout: Duration::from_secs(5),
            max_digits,
            terminator: "#".to_string(),
            cancel_key,
        };
        assert_eq!(collect_digits("1", &spec(false, 1)).as_deref(), Some("1"));
        assert_eq!(collect_digits("*", &spec(false, 1)).as_deref(), Some("*"));
        assert_eq!(collect_digits("*", &spec(true, 1)).as_deref(), Some(""));
        assert_eq!(collect_digits("12", &spec(false, 1)).as_deref(), Some("1"));
        assert_eq!(
            collect_digits("12#9", &spec(false, 9)).as_deref(),
            Some("12")
        );
        assert_eq!(collect_digits("1*3", &spec(true, 9)).as_deref(), Some("3"));
        assert_eq!(collect_digits("x", &spec(false, 1)), None);
    }
}
