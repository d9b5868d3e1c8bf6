//! From flow-language JSON to a checked [`Flow`].
//!
//! Two readings. The document is read first (`Version`, `StartAction`, and each action's
//! `Identifier`, `Type`, raw `Parameters` and `Transitions`): a document that does not have
//! that shape is [`FlowError::Json`]. Then each action's `Type` and `Parameters` are read
//! as [`ActionParameters`], an enum tagged by `Type` with one typed struct of parameters per
//! supported action, so that a parameter error names its action and the parameter's path
//! ([`FlowError::InvalidParameter`]) and an unknown type is [`FlowError::Unsupported`].
//! Parameters this interpreter does not use (Connect-only settings) are ignored.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::{self, value::MapDeserializer, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{invalid, FlowError};
use crate::model::{
    Action, BotSpec, Condition, Flow, InputSpec, LambdaSpec, Operator, Step, FLOW_VERSION,
    SUPPORTED_ACTIONS,
};
use crate::refs::{check_references, collect_placeholders, whole_reference};

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
}

// ---------------------------------------------------------------------------------------
// The document

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawFlow {
    version: String,
    start_action: String,
    actions: Vec<RawAction>,
}

/// An action as written; its `Type` and `Parameters` are read again as [`ActionParameters`].
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

// ---------------------------------------------------------------------------------------
// The parameters of each supported action

/// A supported action type with its `Parameters`, as the flow language writes an action
/// (`{"Type": "...", "Parameters": {...}}`, adjacently tagged). One variant per entry of
/// [`SUPPORTED_ACTIONS`].
#[derive(Deserialize)]
#[serde(tag = "Type", content = "Parameters")]
enum ActionParameters {
    CheckHoursOfOperation(#[allow(dead_code)] CheckHours),
    ConnectParticipantWithLexBot(ConnectParticipantWithLexBot),
    UpdateContactData(UpdateContactData),
    UpdateContactMediaStreamingBehavior(SetMediaStreaming),
    CreateTask(CreateTask),
    UpdateFlowLoggingBehavior(SetLogging),
    UpdateContactRecordingBehavior(SetRecording),
    UpdateContactTextToSpeechVoice(SetVoice),
    MessageParticipant(MessageParticipant),
    GetParticipantInput(GetParticipantInput),
    UpdateContactAttributes(UpdateContactAttributes),
    InvokeLambdaFunction(InvokeLambdaFunction),
    Compare(Compare),
    UpdateContactTargetQueue(UpdateContactTargetQueue),
    TransferContactToQueue(NoParameters),
    DisconnectParticipant(NoParameters),
}

/// `MessageParticipant`: a prompt to play.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MessageParticipant {
    text: Option<StringParam>,
    #[serde(rename = "SSML")]
    ssml: Option<StringParam>,
    #[serde(default, deserialize_with = "present")]
    prompt_id: bool,
    #[serde(default, deserialize_with = "present")]
    media: bool,
}

/// `GetParticipantInput`: a prompt, then DTMF input.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetParticipantInput {
    text: Option<StringParam>,
    #[serde(rename = "SSML")]
    ssml: Option<StringParam>,
    #[serde(default, deserialize_with = "present")]
    prompt_id: bool,
    #[serde(default, deserialize_with = "present")]
    media: bool,
    store_input: Option<StringParam>,
    input_time_limit_seconds: Option<StringParam>,
    /// The name older reference pages give `InputTimeLimitSeconds`; only read (and so
    /// only checked) when that is absent.
    input_timeout_seconds: Option<Value>,
    input_validation: Option<Object<InputValidation>>,
    #[serde(rename = "DTMFConfiguration")]
    dtmf_configuration: Option<Object<DtmfConfiguration>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InputValidation {
    custom_validation: Option<Object<CustomValidation>>,
    #[serde(default, deserialize_with = "present")]
    phone_number_validation: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CustomValidation {
    maximum_length: StringParam,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DtmfConfiguration {
    input_termination_sequence: Option<StringParam>,
    disable_cancel_key: Option<StringParam>,
}

/// `ConnectParticipantWithLexBot` (the Get customer input block with a bot):
/// <https://docs.aws.amazon.com/connect/latest/APIReference/participant-actions-connectparticipantwithlexbot.html>.
/// Lex V2 only (`LexV2Bot`); chat-only settings are checked, not simulated.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConnectParticipantWithLexBot {
    text: Option<StringParam>,
    #[serde(rename = "SSML")]
    ssml: Option<StringParam>,
    #[serde(default, deserialize_with = "present")]
    prompt_id: bool,
    #[serde(default, deserialize_with = "present")]
    media: bool,
    #[serde(rename = "LexV2Bot")]
    lex_v2_bot: Option<Object<LexV2Bot>>,
    #[serde(default, deserialize_with = "present")]
    lex_bot: bool,
    lex_session_attributes: Option<StringMap>,
    #[allow(dead_code)] // chat only
    lex_initilization_data: Option<Value>,
    #[allow(dead_code)] // chat only
    lex_timeout_seconds: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LexV2Bot {
    alias_arn: StringParam,
}

/// `UpdateContactData`:
/// <https://docs.aws.amazon.com/connect/latest/APIReference/contact-actions-updatecontactdata.html>.
/// Only `LanguageCode` is simulated; the other fields are checked against the reference.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateContactData {
    language_code: Option<StringParam>,
}

/// `UpdateContactMediaStreamingBehavior` (Start / Stop media streaming):
/// <https://docs.aws.amazon.com/connect/latest/APIReference/contact-actions-updatecontactmediastreamingbehavior.html>.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SetMediaStreaming {
    media_streaming_state: StringParam,
    #[serde(default)]
    participants: Vec<Object<StreamedParticipant>>,
    media_stream_type: Option<StringParam>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StreamedParticipant {
    participant_type: StringParam,
    #[serde(default)]
    media_directions: Vec<StringParam>,
}

/// `UpdateContactAttributes`: user-defined attributes to set.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateContactAttributes {
    attributes: Option<StringMap>,
}

/// `InvokeLambdaFunction`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InvokeLambdaFunction {
    #[serde(rename = "LambdaFunctionARN")]
    lambda_function_arn: StringParam,
    invocation_time_limit_seconds: StringParam,
    invocation_type: Option<StringParam>,
    response_validation: Option<Object<ResponseValidation>>,
    lambda_invocation_attributes: Option<StringMap>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ResponseValidation {
    response_type: StringParam,
}

/// `CheckHoursOfOperation`: by the hours given, or the current queue's.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CheckHours {
    #[allow(dead_code)] // which hours: the simulation is told whether they are open
    hours_of_operation_id: Option<StringParam>,
}

/// `CreateTask` (the Create task block):
/// <https://docs.aws.amazon.com/connect/latest/APIReference/createtask.html>. The simulator
/// needs a `Name`; references, attributes and scheduling are checked, not simulated.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateTask {
    name: Option<StringParam>,
    description: Option<StringParam>,
    contact_flow_id: Option<StringParam>,
    #[allow(dead_code)]
    task_template_id: Option<StringParam>,
    #[allow(dead_code)]
    references: Option<Value>,
    #[allow(dead_code)]
    attributes: Option<Value>,
    #[allow(dead_code)]
    delay_seconds: Option<Value>,
    #[allow(dead_code)]
    scheduled_time: Option<Value>,
}

/// `UpdateFlowLoggingBehavior` (Set logging behavior):
/// <https://docs.aws.amazon.com/connect/latest/APIReference/flow-control-actions-updateflowloggingbehavior.html>.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SetLogging {
    flow_logging_behavior: StringParam,
}

/// `UpdateContactRecordingBehavior` (Set recording and analytics behavior):
/// <https://docs.aws.amazon.com/connect/latest/APIReference/contact-actions-updatecontactrecordingbehavior.html>.
/// Only who is recorded is simulated; analytics settings are read and kept as given.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SetRecording {
    recording_behavior: Option<Object<RecordingBehavior>>,
    #[allow(dead_code)] // checked against the reference; not simulated
    analytics_behavior: Option<Value>,
}

/// `RecordingBehavior` of [`SetRecording`].
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RecordingBehavior {
    #[serde(default)]
    recorded_participants: Vec<StringParam>,
    #[allow(dead_code)] // checked against the reference; not simulated
    #[serde(rename = "IVRRecordingBehavior")]
    ivr_recording_behavior: Option<StringParam>,
    #[allow(dead_code)]
    screen_recorded_participants: Option<Value>,
}

/// `UpdateContactTextToSpeechVoice` (the Set voice block):
/// <https://docs.aws.amazon.com/connect/latest/APIReference/contact-actions-updatecontacttexttospeechvoice.html>.
/// Voice, engine and style may be static or dynamic.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SetVoice {
    text_to_speech_voice: StringParam,
    text_to_speech_engine: Option<StringParam>,
    text_to_speech_style: Option<StringParam>,
}

/// `Compare`: the value the `Conditions` are evaluated against.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Compare {
    comparison_value: StringParam,
}

/// `UpdateContactTargetQueue`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateContactTargetQueue {
    /// Optional here so that an `AgentId` is refused first, with its own reason.
    queue_id: Option<StringParam>,
    #[serde(default, deserialize_with = "present")]
    agent_id: bool,
}

/// The parameters of an action that needs none (any given are ignored).
#[derive(Deserialize)]
struct NoParameters {}

/// A parameter value. The flow language writes every value as a string; a number is
/// tolerated and read as its text (`8` as `"8"`).
struct StringParam(String);

impl<'de> Deserialize<'de> for StringParam {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let unexpected = match Value::deserialize(deserializer)? {
            Value::String(text) => return Ok(StringParam(text)),
            Value::Number(number) => return Ok(StringParam(number.to_string())),
            Value::Null => de::Unexpected::Unit,
            Value::Bool(b) => de::Unexpected::Bool(b),
            Value::Array(_) => de::Unexpected::Seq,
            Value::Object(_) => de::Unexpected::Map,
        };
        Err(de::Error::invalid_type(unexpected, &"a string"))
    }
}

/// An object of [`StringParam`] values (`Attributes`, `LambdaInvocationAttributes`), in
/// the order the object is read.
struct StringMap(Vec<(String, String)>);

impl<'de> Deserialize<'de> for StringMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = StringMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StringMap, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((key, StringParam(value))) = map.next_entry::<String, _>()? {
                    pairs.push((key, value));
                }
                Ok(StringMap(pairs))
            }
        }
        deserializer.deserialize_map(Pairs)
    }
}

/// A nested parameter object (`InputValidation`, ...). Only a JSON object is one: serde
/// would otherwise also read a struct from an array of its fields.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Fields<T> {
            type Value = Object<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Object)
            }
        }
        deserializer.deserialize_map(Fields(PhantomData))
    }
}

/// For settings that are refused whatever their value: `true` when the key is there at
/// all, even with `null` (with `#[serde(default)]`, `false` when it is absent).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(deserializer).map(|_| true)
}

impl ActionParameters {
    /// Reads an action's `Type` and `Parameters` (an object; `null` or absent is none).
    fn read(id: &str, kind: String, parameters: Value) -> Result<ActionParameters, FlowError> {
        let parameters = match parameters {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            _ => return Err(invalid(id, "Parameters must be an object")),
        };
        if !SUPPORTED_ACTIONS.contains(&kind.as_str()) {
            return Err(FlowError::Unsupported {
                id: id.to_string(),
                kind,
            });
        }
        read_tagged(kind, parameters).map_err(|problem| invalid(id, &problem))
    }

    /// The [`Step`], checking what serde cannot: values in range, modes and prompts that
    /// can be simulated, and the `$.` references.
    fn into_step(self, id: &str) -> Result<Step, FlowError> {
        Ok(match self {
            ActionParameters::CheckHoursOfOperation(_) => Step::CheckHours,
            ActionParameters::ConnectParticipantWithLexBot(p) => Step::AskBot(bot(id, p)?),
            ActionParameters::UpdateContactData(p) => {
                let language_code = p.language_code.map(|StringParam(c)| c);
                if let Some(code) = &language_code {
                    check_references(id, code)?;
                }
                Step::SetContactData { language_code }
            }
            ActionParameters::UpdateContactMediaStreamingBehavior(p) => Step::SetMediaStreaming {
                enabled: media_streaming(id, p)?,
            },
            ActionParameters::CreateTask(p) => {
                let name = p
                    .name
                    .ok_or_else(|| invalid(id, "CreateTask needs a Name for the task"))?
                    .0;
                let description = p.description.map(|d| d.0);
                let flow_id = p.contact_flow_id.map(|f| f.0);
                for value in std::iter::once(&name).chain(&description).chain(&flow_id) {
                    check_references(id, value)?;
                }
                Step::CreateTask {
                    name,
                    description,
                    flow_id,
                }
            }
            ActionParameters::UpdateFlowLoggingBehavior(p) => {
                let behavior = p.flow_logging_behavior.0;
                check_references(id, &behavior)?;
                Step::SetLogging { behavior }
            }
            ActionParameters::UpdateContactRecordingBehavior(p) => Step::SetRecording {
                participants: p
                    .recording_behavior
                    .map(|Object(r)| r.recorded_participants.into_iter().map(|s| s.0).collect())
                    .unwrap_or_default(),
            },
            ActionParameters::UpdateContactTextToSpeechVoice(p) => {
                let voice = p.text_to_speech_voice.0;
                let engine = p.text_to_speech_engine.map(|e| e.0);
                let style = p.text_to_speech_style.map(|e| e.0);
                for value in std::iter::once(&voice).chain(&engine).chain(&style) {
                    check_references(id, value)?;
                }
                if voice.trim().is_empty() {
                    return Err(invalid(
                        id,
                        "TextToSpeechVoice is empty: name an Amazon Polly voice (e.g. Lucia)",
                    ));
                }
                Step::SetVoice {
                    voice,
                    engine,
                    style,
                }
            }
            ActionParameters::MessageParticipant(p) => Step::Message {
                text: prompt(id, p.text, p.ssml, p.prompt_id || p.media)?.ok_or_else(|| {
                    invalid(id, "MessageParticipant needs a Text (or SSML) to speak")
                })?,
            },
            ActionParameters::GetParticipantInput(p) => Step::GetInput(input(id, p)?),
            ActionParameters::UpdateContactAttributes(p) => Step::SetAttributes {
                attributes: checked_pairs(
                    id,
                    p.attributes.ok_or_else(|| {
                        invalid(id, "UpdateContactAttributes needs an Attributes object")
                    })?,
                )?,
            },
            ActionParameters::InvokeLambdaFunction(p) => Step::InvokeLambda(lambda(id, p)?),
            ActionParameters::Compare(p) => {
                let value = p.comparison_value.0;
                if whole_reference(&value).is_none() {
                    return Err(invalid(
                        id,
                        "ComparisonValue must be a single JSONPath reference such as $.External.x",
                    ));
                }
                check_references(id, &value)?;
                Step::Compare { value }
            }
            ActionParameters::UpdateContactTargetQueue(p) => {
                if p.agent_id {
                    return Err(invalid(
                        id,
                        "AgentId (agent queues) is not simulated; use QueueId",
                    ));
                }
                let queue = p
                    .queue_id
                    .ok_or_else(|| invalid(id, "the QueueId parameter is required"))?
                    .0;
                check_references(id, &queue)?;
                Step::SetQueue { queue }
            }
            ActionParameters::TransferContactToQueue(NoParameters {}) => Step::TransferToQueue,
            ActionParameters::DisconnectParticipant(NoParameters {}) => Step::Disconnect,
        })
    }
}

/// Deserializes `{"Type": kind, "Parameters": parameters}` as [`ActionParameters`]; an
/// error reads `<path>: <what is wrong>`, e.g. `Parameters.InputValidation: invalid type:
/// sequence, expected an object`. (`Type` is given first so that serde does not buffer
/// the parameters, which would lose the path.)
fn read_tagged(kind: String, parameters: Map<String, Value>) -> Result<ActionParameters, String> {
    let tagged = [
        (Value::from("Type"), Value::String(kind)),
        (Value::from("Parameters"), Value::Object(parameters)),
    ];
    let deserializer = MapDeserializer::<_, serde_json::Error>::new(tagged.into_iter());
    serde_path_to_error::deserialize(deserializer)
        .map_err(|error| format!("{}: {}", error.path(), error.inner()))
}

fn parse_action(raw: RawAction) -> Result<Action, FlowError> {
    let id = raw.identifier;
    // Connect's reference first (what Connect itself would refuse), then what the simulator
    // can run.
    if let Value::Object(parameters) = &raw.parameters {
        let errors: Vec<&str> = raw
            .transitions
            .errors
            .iter()
            .map(|e| e.error_type.as_str())
            .collect();
        crate::reference::check(
            &id,
            &raw.kind,
            parameters,
            raw.transitions.next_action.is_some(),
            &errors,
            !raw.transitions.conditions.is_empty(),
        )?;
    }
    let step = ActionParameters::read(&id, raw.kind, raw.parameters)?.into_step(&id)?;
    let transitions = raw.transitions;
    if !transitions.conditions.is_empty()
        && !matches!(
            step,
            Step::Compare { .. } | Step::CheckHours | Step::AskBot(_)
        )
    {
        return Err(invalid(
            &id,
            "Conditions are only evaluated on Compare, CheckHoursOfOperation and ConnectParticipantWithLexBot here (GetParticipantInput in store mode has none); move them to a Compare action",
        ));
    }
    // "Conditions are supported, but only the Equals operator" (the action's reference page).
    if matches!(step, Step::AskBot(_))
        && transitions
            .conditions
            .iter()
            .any(|c| c.condition.operator != "Equals")
    {
        return Err(invalid(
            &id,
            "ConnectParticipantWithLexBot's conditions take the Equals operator only (an intent name)",
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

/// Flow-language values are strings; numbers are tolerated (as for [`StringParam`]).
fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The pairs of a [`StringMap`], their keys and values checked for `$.` references.
fn checked_pairs(action: &str, map: StringMap) -> Result<Vec<(String, String)>, FlowError> {
    for (name, value) in &map.0 {
        check_references(action, name)?;
        check_references(action, value)?;
    }
    Ok(map.0)
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

/// The text to speak: `Text` or `SSML` (played as written). Audio prompts (`PromptId`,
/// `Media`: `audio`) cannot be simulated.
fn prompt(
    action: &str,
    text: Option<StringParam>,
    ssml: Option<StringParam>,
    audio: bool,
) -> Result<Option<String>, FlowError> {
    if audio {
        return Err(invalid(
            action,
            "audio prompts (PromptId, Media) are not simulated; use Text or SSML",
        ));
    }
    let chosen = match (text, ssml) {
        (Some(_), Some(_)) => return Err(invalid(action, "give Text or SSML, not both")),
        (text, ssml) => text.or(ssml).map(|StringParam(text)| text),
    };
    if let Some(text) = &chosen {
        check_references(action, text)?;
    }
    Ok(chosen)
}

/// `GetParticipantInput`: only store mode, with DTMF input, is simulated.
fn input(action: &str, p: GetParticipantInput) -> Result<InputSpec, FlowError> {
    let store = p.store_input.map(|StringParam(s)| s).unwrap_or_default();
    if !store.eq_ignore_ascii_case("true") {
        return Err(invalid(
            action,
            "only store mode is simulated: set \"StoreInput\": \"True\" and read $.StoredCustomerInput",
        ));
    }
    // The current reference names it InputTimeLimitSeconds; older pages say InputTimeoutSeconds.
    let raw_timeout = match (p.input_time_limit_seconds, p.input_timeout_seconds) {
        (Some(StringParam(raw)), _) => raw,
        (None, None | Some(Value::Null)) => {
            return Err(invalid(
                action,
                "the InputTimeLimitSeconds parameter is required",
            ))
        }
        (None, Some(older)) => {
            StringParam::deserialize(older)
                .map_err(|error| {
                    invalid(action, &format!("Parameters.InputTimeoutSeconds: {error}"))
                })?
                .0
        }
    };
    let timeout = positive_seconds(action, &raw_timeout, "InputTimeLimitSeconds", 180)?;
    let Some(Object(validation)) = p.input_validation else {
        return Err(invalid(
            action,
            "InputValidation is required in store mode (e.g. {\"CustomValidation\": {\"MaximumLength\": \"1\"}})",
        ));
    };
    let max_digits = match validation.custom_validation {
        Some(Object(CustomValidation {
            maximum_length: StringParam(raw),
        })) => match raw.trim().parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(invalid(
                    action,
                    &format!("MaximumLength must be a positive whole number, not {raw:?}"),
                ))
            }
        },
        None if validation.phone_number_validation => 20,
        None => {
            return Err(invalid(
                action,
                "InputValidation needs CustomValidation or PhoneNumberValidation",
            ))
        }
    };
    let (terminator, cancel_key) = match p.dtmf_configuration {
        Some(Object(dtmf)) => (
            dtmf.input_termination_sequence
                .map_or_else(|| "#".to_string(), |StringParam(s)| s),
            !dtmf
                .disable_cancel_key
                .is_some_and(|StringParam(s)| s.eq_ignore_ascii_case("true")),
        ),
        None => ("#".to_string(), true),
    };
    Ok(InputSpec {
        text: prompt(action, p.text, p.ssml, p.prompt_id || p.media)?,
        timeout,
        max_digits,
        terminator,
        cancel_key,
    })
}

/// `ConnectParticipantWithLexBot`: a Lex V2 bot (`LexV2Bot.AliasArn`), a text prompt.
fn bot(action: &str, p: ConnectParticipantWithLexBot) -> Result<BotSpec, FlowError> {
    if p.lex_bot {
        return Err(invalid(
            action,
            "LexBot (Amazon Lex classic) is not simulated; use LexV2Bot.AliasArn",
        ));
    }
    let Some(Object(LexV2Bot {
        alias_arn: StringParam(alias_arn),
    })) = p.lex_v2_bot
    else {
        return Err(invalid(
            action,
            "ConnectParticipantWithLexBot needs LexV2Bot.AliasArn (the bot alias to talk to)",
        ));
    };
    check_references(action, &alias_arn)?;
    let session_attributes = match p.lex_session_attributes {
        Some(map) => checked_pairs(action, map)?,
        None => Vec::new(),
    };
    Ok(BotSpec {
        text: prompt(action, p.text, p.ssml, p.prompt_id || p.media)?,
        alias_arn,
        session_attributes,
    })
}

/// `UpdateContactMediaStreamingBehavior`: the state (static), audio of the customer only,
/// as the reference allows today.
fn media_streaming(action: &str, p: SetMediaStreaming) -> Result<bool, FlowError> {
    let enabled = match p.media_streaming_state.0.as_str() {
        "Enabled" => true,
        "Disabled" => false,
        other => {
            return Err(invalid(
                action,
                &format!("MediaStreamingState must be Enabled or Disabled, not {other:?}"),
            ))
        }
    };
    if let Some(StringParam(kind)) = &p.media_stream_type {
        if kind != "Audio" {
            return Err(invalid(
                action,
                &format!("MediaStreamType {kind:?}: only Audio is supported"),
            ));
        }
    }
    if enabled && p.participants.is_empty() {
        return Err(invalid(
            action,
            "Participants is empty: name the Customer and the MediaDirections (From, To) to stream",
        ));
    }
    for Object(participant) in &p.participants {
        if participant.participant_type.0 != "Customer" {
            return Err(invalid(
                action,
                &format!(
                    "ParticipantType {:?}: only Customer is supported",
                    participant.participant_type.0
                ),
            ));
        }
        if participant.media_directions.is_empty() {
            return Err(invalid(
                action,
                "MediaDirections is empty: give From, To or both",
            ));
        }
        if let Some(StringParam(d)) = participant
            .media_directions
            .iter()
            .find(|StringParam(d)| d != "From" && d != "To")
        {
            return Err(invalid(
                action,
                &format!("MediaDirections {d:?}: only From and To exist"),
            ));
        }
    }
    Ok(enabled)
}

/// `InvokeLambdaFunction`: only synchronous invocations are simulated.
fn lambda(action: &str, p: InvokeLambdaFunction) -> Result<LambdaSpec, FlowError> {
    let StringParam(arn) = p.lambda_function_arn;
    check_references(action, &arn)?;
    let StringParam(raw_timeout) = p.invocation_time_limit_seconds;
    let timeout = positive_seconds(action, &raw_timeout, "InvocationTimeLimitSeconds", 8)?;
    if let Some(StringParam(kind)) = p.invocation_type {
        if kind != "SYNCHRONOUS" {
            return Err(invalid(
                action,
                &format!("InvocationType {kind:?} is not simulated; use SYNCHRONOUS"),
            ));
        }
    }
    let string_map = match p.response_validation {
        None => true,
        Some(Object(ResponseValidation {
            response_type: StringParam(kind),
        })) => match kind.as_str() {
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
    let attributes = match p.lambda_invocation_attributes {
        Some(map) => checked_pairs(action, map)?,
        None => Vec::new(),
    };
    Ok(LambdaSpec {
        arn,
        timeout,
        attributes,
        string_map,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_action_is_a_variant() {
        for kind in SUPPORTED_ACTIONS {
            // Empty parameters may be refused, but never for the Type itself.
            if let Err(problem) = read_tagged(kind.to_string(), Map::new()) {
                assert!(problem.starts_with("Parameters"), "{kind}: {problem}");
            }
        }
        let unknown = read_tagged("Loop".to_string(), Map::new()).err();
        assert!(unknown.is_some_and(|problem| problem.starts_with("Type:")));
    }
}
