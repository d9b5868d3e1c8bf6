//! `triage connect-tests`: the line's scenarios (`connect/scenarios.json`) as Amazon
//! Connect's native test cases, in Connect's testing language, so the very scenarios the
//! simulator runs can run against a deployed instance.
//!
//! Each scenario is first run through the simulator ([`run_scenario`]); a scenario whose run
//! does not come out as the file says is refused, so a test case never asserts what our own
//! twin of the line does not do. The run gives what the caller hears before each key, the
//! keys, and the contact attributes at the end; from them:
//!
//! | observation | event | actions |
//! |---|---|---|
//! | `test-started` | `TestInitiated` | log `$.ContactId` (for `triage trail`); the overrides of the scenario's hospital queue state |
//! | `prompt-N` | `MessageReceived`: the prompt's first sentence, `Inclusion` | send the key as `DtmfInput`; nothing for a timeout (the flow's own 5 s limit runs out) |
//! | `hospital-transfer` | `FlowActionStarted` `TransferContactToQueue` | `Assert` each `triage_*` attribute `Equals`, then `EndTest` before any agent is offered the contact |
//! | `final-message` | `MessageReceived`: the last thing the caller hears | the same asserts, then `EndTest` |
//!
//! The testing language, as AWS documents it (the pages differ in places; where they do,
//! the devguide's page for the element wins, and what stays unverified is said here):
//! - Content: `Version` `2019-10-30`, `Metadata`, `Observations`:
//!   <https://docs.aws.amazon.com/connect/latest/devguide/testing-language-observations.html>
//!   (the API reference's example shows `2025-06-21`; the devguide's `2019-10-30` is used).
//!   `Usage` is left out: its casing differs between pages, and the default is "exactly
//!   once" (<https://docs.aws.amazon.com/connect/latest/adminguide/testing-simulation-observe-block.html>).
//! - Events: <https://docs.aws.amazon.com/connect/latest/devguide/testing-language-events.html>;
//!   `MessageReceived` with `MatchingCriteria` an object inside `Properties`
//!   (<https://docs.aws.amazon.com/connect/latest/devguide/testing-language-events-message-received.html>);
//!   `FlowActionStarted` (<https://docs.aws.amazon.com/connect/latest/devguide/testing-language-events-flow-action-started.html>).
//! - Actions: `SendInstruction` (<https://docs.aws.amazon.com/connect/latest/devguide/testing-language-actions-send-instruction.html>),
//!   `Assert` (<https://docs.aws.amazon.com/connect/latest/devguide/testing-language-actions-assertion.html>),
//!   `TestControl` (<https://docs.aws.amazon.com/connect/latest/devguide/testing-language-actions-test-control.html>),
//!   `OverrideSystemBehavior` (<https://docs.aws.amazon.com/connect/latest/devguide/testing-language-actions-override-system-behavior.html>):
//!   hours of operation mocked `OutOfHours`, the queue mocked `QueueAtCapacity`.
//! - The test case: `CreateTestCase` (<https://docs.aws.amazon.com/connect/latest/APIReference/API_CreateTestCase.html>),
//!   `AWS::Connect::TestCase` (<https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-connect-testcase.html>).
//!
//! Unverified (no instance here): the shape of `InitializationData` (documented only as
//! "initial custom attributes", a JSON string; `{"Attributes": {...}, "SegmentAttributes": {}}`
//! is used), how `MessageReceived` sees a text-to-speech prompt (hence `Inclusion` of one
//! sentence, not the whole prompt), and whether `CheckHoursOfOperation` accepts a mocked
//! result (the page documents it). [`check_content`] checks the content against the pages
//! above; `scripts/check-template.sh` checks it again against `connect/testing-language.schema.json`.

use crate::flow::{CallEnd, Flow};
use crate::sim::call::Press;
use crate::sim::scenarios::{run_scenario, Scenario, ScenarioError, ScenarioFile, ScenarioRun};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The testing language's version (devguide, Observations).
pub const TEST_LANGUAGE_VERSION: &str = "2019-10-30";

/// Connect's limit on a test case's `Content` (CreateTestCase; `AWS::Connect::TestCase`).
pub const MAX_CONTENT_CHARS: usize = 256_000;
/// `Name`: 1 to 127 characters (`AWS::Connect::TestCase`).
pub const MAX_NAME_CHARS: usize = 127;
/// `Description`: at most 500 characters (`AWS::Connect::TestCase`).
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// Where the test cases run: the instance, the flow they enter, and the resources they
/// override. [`Deployment::placeholders`] gives `${...}` names that `template.yaml`'s
/// `Fn::Sub` fills (and that a person fills for `aws connect create-test-case`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// The Connect instance's ARN (`InstanceArn`; the CLI's `--instance-id` takes it too).
    pub instance_arn: String,
    /// The triage flow's ARN or id (`EntryPoint.VoiceCallEntryPointParameters.FlowId`).
    pub flow_arn: String,
    /// The hospital queue (`HospitalQueueArn`): the transfer the hospital test cases watch.
    pub hospital_queue_arn: String,
    /// The hospital queue's hours of operation, mocked closed by the scenarios that say so.
    pub hospital_hours_arn: String,
}

impl Deployment {
    /// The template's names: `${ConnectInstanceArn}`, `${TriageFlowArn}`,
    /// `${HospitalQueueArn}`, `${HospitalHoursArn}`.
    pub fn placeholders() -> Self {
        Deployment {
            instance_arn: "${ConnectInstanceArn}".into(),
            flow_arn: "${TriageFlowArn}".into(),
            hospital_queue_arn: "${HospitalQueueArn}".into(),
            hospital_hours_arn: "${HospitalHoursArn}".into(),
        }
    }
}

/// One generated test case.
#[derive(Debug, Clone)]
pub struct TestCase {
    /// The scenario's name in file-name form (`star-at-question-1`).
    pub slug: String,
    /// Whether it overrides the hospital's hours (the template deploys it only when
    /// `HospitalHoursArn` is given).
    pub needs_hours: bool,
    /// The `CreateTestCase` request, as `aws connect create-test-case --cli-input-json` reads
    /// it: `InstanceId`, `Name`, `Description`, `Content` (a JSON string), `EntryPoint`,
    /// `InitializationData` (a JSON string), `Status`.
    pub request: Value,
}

/// A scenario that cannot become a test case.
#[derive(Debug, thiserror::Error)]
pub enum ConnectTestsError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("scenario {name:?}: the simulator {actual}, the file expects {expected}; fix connect/scenarios.json or the flow, then generate again")]
    Diverges {
        name: String,
        expected: String,
        actual: String,
    },
    #[error("scenario {name:?}: the generated test case breaks the testing language: {problems}")]
    Invalid { name: String, problems: String },
}

/// What the file expects and the simulator did not do, or `None` when the run agrees.
pub fn divergence(scenario: &Scenario, run: &ScenarioRun) -> Option<(String, String)> {
    if run.end() != scenario.expect.end {
        return Some((
            format!("the call to end {:?}", scenario.expect.end),
            format!("ends it {:?}", run.end()),
        ));
    }
    let outcome = run.report.attributes.get("triage_outcome");
    if outcome.map(String::as_str) != Some(scenario.expect.outcome.as_str()) {
        return Some((
            format!("triage_outcome {:?}", scenario.expect.outcome),
            format!("sets {outcome:?}"),
        ));
    }
    let heard: Vec<&str> = run.heard().collect();
    for words in &scenario.expect.hears {
        if !heard.iter().any(|h| h.contains(words.as_str())) {
            return Some((
                format!("the caller to hear {words:?}"),
                format!("says only {heard:?}"),
            ));
        }
    }
    None
}

/// The part of a prompt a test case waits for: its first sentence, which is what tells the
/// line's prompts apart (they share their instructions), without the final stop.
pub fn distinctive(prompt: &str) -> &str {
    let first = match prompt.find(". ") {
        Some(i) => &prompt[..i],
        None => prompt,
    };
    first.trim().trim_end_matches('.').trim()
}

fn message_received(id: &str, text: &str) -> Value {
    json!({
        "Identifier": format!("{id}-event"),
        "Type": "MessageReceived",
        "Actor": "System",
        "Properties": { "Text": text, "MatchingCriteria": { "Type": "Inclusion" } }
    })
}

/// Chains `actions` (each `{Identifier, Type, Parameters}`) with `Transitions.NextAction`;
/// the last one gets empty transitions.
fn chain(mut actions: Vec<Value>) -> Vec<Value> {
    let ids: Vec<Value> = actions.iter().map(|a| a["Identifier"].clone()).collect();
    for (i, action) in actions.iter_mut().enumerate() {
        action["Transitions"] = match ids.get(i + 1) {
            Some(next) => json!({ "NextAction": next }),
            None => json!({}),
        };
    }
    actions
}

fn observation(id: &str, event: Value, actions: Vec<Value>, next: Option<&str>) -> Value {
    json!({
        "Identifier": id,
        "Event": event,
        "Actions": chain(actions),
        "Transitions": { "NextObservations": next.map(|n| vec![n]).unwrap_or_default() }
    })
}

fn dtmf(id: &str, keys: &str) -> Value {
    json!({
        "Identifier": id,
        "Type": "SendInstruction",
        "Parameters": {
            "ActionType": "SendInstruction",
            "Actor": "Customer",
            "Instruction": { "Type": "DtmfInput", "Properties": { "Value": keys } }
        }
    })
}

fn log_data(id: &str, expressions: Value) -> Value {
    json!({
        "Identifier": id,
        "Type": "TestControl",
        "Parameters": {
            "ActionType": "TestControl",
            "Command": { "Type": "LogData", "Properties": { "Expressions": expressions } }
        }
    })
}

fn end_test(id: &str) -> Value {
    json!({
        "Identifier": id,
        "Type": "TestControl",
        "Parameters": { "ActionType": "TestControl", "Command": { "Type": "EndTest" } }
    })
}

fn assert_equals(id: &str, attribute: &str, value: &str) -> Value {
    json!({
        "Identifier": id,
        "Type": "Assert",
        "Parameters": {
            "Namespace": format!("$.Attributes.{attribute}"),
            "Operator": "Equals",
            "Operand": value
        }
    })
}

fn override_action(id: &str, action_type: &str, parameters: Value, response: Value) -> Value {
    json!({
        "Identifier": id,
        "Type": "OverrideSystemBehavior",
        "Parameters": {
            "ActionType": "OverrideSystemBehavior",
            "Behavior": {
                "Type": "FlowAction",
                "Properties": {
                    "ActionType": action_type,
                    "ActionParameters": parameters,
                    "Strategy": { "Type": "MockResponse", "Response": response }
                }
            }
        }
    })
}

/// The triage attributes the agent and the contact record get, asserted one by one.
fn handoff_asserts(attributes: &BTreeMap<String, String>) -> Vec<Value> {
    attributes
        .iter()
        .filter(|(k, _)| k.starts_with("triage_"))
        .map(|(k, v)| assert_equals(&format!("assert-{}", k.replace('_', "-")), k, v))
        .collect()
}

/// The test case's `Content` for one scenario and its simulated run.
pub fn content(scenario: &Scenario, run: &ScenarioRun, at: &Deployment) -> Value {
    let mut observations = Vec::new();
    let first_prompt = if run.turns.is_empty() {
        "final-message"
    } else {
        "prompt-1"
    };
    let center = run.center;
    let mut start = vec![log_data(
        "log-contact",
        json!({ "contact_id": "$.ContactId", "lang": "$.Attributes.lang" }),
    )];
    if !center.hours_open {
        start.push(override_action(
            "hospital-hours-closed",
            "CheckHoursOfOperation",
            json!({ "HoursOfOperationId": at.hospital_hours_arn }),
            json!({ "Type": "ExecutionResult", "ExecutionResult": { "Value": "OutOfHours" } }),
        ));
    }
    if center.queue_at_capacity {
        start.push(override_action(
            "hospital-queue-full",
            "TransferContactToQueue",
            json!({ "QueueId": at.hospital_queue_arn }),
            json!({ "Type": "Error", "Error": { "Value": "QueueAtCapacity" } }),
        ));
    }
    observations.push(observation(
        "test-started",
        json!({ "Identifier": "test-started-event", "Type": "TestInitiated", "Actor": "System", "Properties": {} }),
        start,
        Some(first_prompt),
    ));
    let hung_up = matches!(run.report.end, CallEnd::HungUp);
    let last = match &run.report.end {
        CallEnd::Transferred { .. } => "hospital-transfer",
        _ => "final-message",
    };
    for (i, turn) in run.turns.iter().enumerate() {
        let id = format!("prompt-{}", i + 1);
        let next = if i + 1 < run.turns.len() {
            format!("prompt-{}", i + 2)
        } else {
            last.to_string()
        };
        let prompt = turn.heard.last().map(String::as_str).unwrap_or_default();
        let actions = match &turn.press {
            Press::Keys(keys) => vec![dtmf(&format!("{id}-press"), keys)],
            // Words to the answers bot: the testing language's TextUtterance.
            Press::Say(words) => vec![json!({
                "Identifier": format!("{id}-say"),
                "Type": "SendInstruction",
                "Parameters": {
                    "ActionType": "SendInstruction",
                    "Actor": "Customer",
                    "Instruction": { "Type": "TextUtterance", "Properties": { "Value": words } }
                }
            })],
            // No key: the flow's GetParticipantInput times out by itself (5 s).
            Press::Timeout => vec![log_data(
                &format!("{id}-silence"),
                json!({ "no_key_at_turn": "$.Attributes.turn" }),
            )],
        };
        observations.push(observation(
            &id,
            message_received(&id, distinctive(prompt)),
            actions,
            Some(&next),
        ));
    }
    let mut end = if hung_up {
        vec![json!({
            "Identifier": "caller-hangs-up",
            "Type": "SendInstruction",
            "Parameters": {
                "ActionType": "SendInstruction",
                "Actor": "Customer",
                "Instruction": { "Type": "Disconnect" }
            }
        })]
    } else {
        handoff_asserts(&run.report.attributes)
    };
    end.push(end_test("end-test"));
    let event = match &run.report.end {
        CallEnd::Transferred { .. } => json!({
            "Identifier": "hospital-transfer-event",
            "Type": "FlowActionStarted",
            "Actor": "System",
            "Properties": {
                "ActionType": "TransferContactToQueue",
                "ActionParameters": { "QueueId": at.hospital_queue_arn }
            }
        }),
        _ => {
            let text = run
                .heard_after
                .last()
                .or_else(|| run.turns.last().and_then(|t| t.heard.last()))
                .map(String::as_str)
                .unwrap_or_default();
            message_received(last, distinctive(text))
        }
    };
    observations.push(observation(last, event, end, None));
    json!({
        "Version": TEST_LANGUAGE_VERSION,
        "Metadata": {
            "generated_by": "triage connect-tests from connect/scenarios.json",
            "scenario": scenario.name,
            "keys": scenario.keys.join(",")
        },
        "Observations": observations
    })
}

/// The whole `CreateTestCase` request for one scenario.
pub fn request(
    scenario: &Scenario,
    run: &ScenarioRun,
    at: &Deployment,
) -> Result<Value, ConnectTestsError> {
    let content = content(scenario, run, at);
    let problems = check_content(&content);
    if !problems.is_empty() {
        return Err(ConnectTestsError::Invalid {
            name: scenario.name.clone(),
            problems: problems.join("; "),
        });
    }
    let text = serde_json::to_string_pretty(&content).unwrap_or_default();
    if text.chars().count() > MAX_CONTENT_CHARS {
        return Err(ConnectTestsError::Invalid {
            name: scenario.name.clone(),
            problems: format!("Content is longer than {MAX_CONTENT_CHARS} characters"),
        });
    }
    let name: String = format!("triage: {}", scenario.name)
        .chars()
        .take(MAX_NAME_CHARS)
        .collect();
    let description: String = format!(
        "connect-triage scenario {:?} (connect/scenarios.json): keys {}, expects {} and triage_outcome {}. Generated by triage connect-tests; do not edit here.",
        scenario.name,
        scenario.keys.join(","),
        scenario.expect.end,
        scenario.expect.outcome
    )
    .chars()
    .take(MAX_DESCRIPTION_CHARS)
    .collect();
    let init = json!({ "Attributes": { "lang": scenario.lang }, "SegmentAttributes": {} });
    Ok(json!({
        "InstanceId": at.instance_arn,
        "Name": name,
        "Description": description,
        "Content": text + "\n",
        "EntryPoint": {
            "Type": "VOICE_CALL",
            "VoiceCallEntryPointParameters": { "FlowId": at.flow_arn }
        },
        "InitializationData": init.to_string(),
        "Status": "PUBLISHED"
    }))
}

/// Every scenario of `file` as a test case, each run through `flow` first.
pub async fn generate(
    flow: &Flow,
    file: &ScenarioFile,
    at: &Deployment,
) -> Result<Vec<TestCase>, ConnectTestsError> {
    let mut out = Vec::new();
    for scenario in &file.scenarios {
        let run = run_scenario(flow, scenario).await?;
        if let Some((expected, actual)) = divergence(scenario, &run) {
            return Err(ConnectTestsError::Diverges {
                name: scenario.name.clone(),
                expected,
                actual,
            });
        }
        out.push(TestCase {
            slug: scenario.slug(),
            needs_hours: !run.center.hours_open,
            request: request(scenario, &run, at)?,
        });
    }
    Ok(out)
}

const EVENT_TYPES: [&str; 5] = [
    "TestInitiated",
    "TestCompleted",
    "MessageReceived",
    "FlowActionStarted",
    "FlowActionCompleted",
];
/// `FlowActionStarted`'s action types and the parameter each names its resource by.
const STARTED_ACTIONS: [(&str, &str); 4] = [
    ("InvokeLambdaFunction", "LambdaFunctionARN"),
    ("CheckHoursOfOperation", "HoursOfOperationId"),
    ("TransferContactToQueue", "QueueId"),
    ("ConnectParticipantWithLexBot", "LexV2Bot"),
];
const OVERRIDE_ACTIONS: [&str; 5] = [
    "InvokeLambdaFunction",
    "CheckHoursOfOperation",
    "ConnectParticipantWithLexBot",
    "TransferContactToQueue",
    "DequeueAndTransferToQueue",
];
const ASSERT_OPERATORS: [&str; 9] = [
    "Equals",
    "TextStartsWith",
    "TextEndsWith",
    "TextContains",
    "NumberGreaterThan",
    "NumberGreaterOrEqualTo",
    "NumberLessThan",
    "NumberLessOrEqualTo",
    "Exists",
];

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut at = v;
    for p in path {
        at = at.get(p)?;
    }
    at.as_str()
}

/// Checks a test case's `Content` against the testing language as the pages cited in this
/// module document it: the version, each event and action shape and its allowed values,
/// identifiers unique, every `NextAction` and `NextObservations` naming something that
/// exists, every observation reachable from a starting one, and an `EndTest` that ends it.
/// Returns the problems, each with where it is; empty when there are none.
pub fn check_content(content: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut bad = |at: String, what: &str| problems.push(format!("{at}: {what}"));
    if content.get("Version").and_then(Value::as_str) != Some(TEST_LANGUAGE_VERSION) {
        bad("Version".into(), "must be \"2019-10-30\"");
    }
    if let Some(m) = content.get("Metadata") {
        if !m.is_object() {
            bad("Metadata".into(), "must be an object");
        }
    }
    for key in content
        .as_object()
        .map(|o| o.keys().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        if !["Version", "Metadata", "Observations"].contains(&key.as_str()) {
            bad(key.clone(), "is not a key of the testing language");
        }
    }
    let Some(observations) = content.get("Observations").and_then(Value::as_array) else {
        bad("Observations".into(), "must be an array");
        return problems;
    };
    if observations.is_empty() {
        bad("Observations".into(), "must not be empty");
    }
    let ids: Vec<&str> = observations
        .iter()
        .map(|o| {
            o.get("Identifier")
                .and_then(Value::as_str)
                .unwrap_or_default()
        })
        .collect();
    let mut seen = HashSet::new();
    let mut all_ids = HashSet::new();
    let mut targets: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut ends = false;
    for (i, o) in observations.iter().enumerate() {
        let at = format!("Observations[{i}]");
        let id = ids[i];
        if id.is_empty() {
            bad(format!("{at}.Identifier"), "must be a non-empty string");
        } else if !seen.insert(id) {
            bad(format!("{at}.Identifier"), "is used twice");
        }
        if o.get("Usage").is_some() {
            bad(format!("{at}.Usage"), "left out: the pages disagree on its casing and the default (exactly once) is what a scenario needs");
        }
        let event = &o["Event"];
        let kind = str_at(event, &["Type"]).unwrap_or_default();
        if let Some(eid) = str_at(event, &["Identifier"]) {
            if !all_ids.insert(eid.to_string()) {
                bad(format!("{at}.Event.Identifier"), "is used twice");
            }
        } else {
            bad(
                format!("{at}.Event.Identifier"),
                "must be given (the console needs it)",
            );
        }
        if !EVENT_TYPES.contains(&kind) {
            bad(format!("{at}.Event.Type"), "must be one of TestInitiated, TestCompleted, MessageReceived, FlowActionStarted, FlowActionCompleted");
        }
        if str_at(event, &["Actor"]) != Some("System") {
            bad(format!("{at}.Event.Actor"), "must be \"System\"");
        }
        let props = &event["Properties"];
        if !props.is_object() {
            bad(format!("{at}.Event.Properties"), "must be an object");
        }
        match kind {
            "MessageReceived" => {
                let given = ["PromptId", "Text", "SSML", "Media"]
                    .iter()
                    .filter(|k| props.get(**k).is_some())
                    .count();
                if given != 1 {
                    bad(
                        format!("{at}.Event.Properties"),
                        "needs exactly one of PromptId, Text, SSML, Media",
                    );
                }
                if props
                    .get("Text")
                    .is_some_and(|t| t.as_str().is_none_or(str::is_empty))
                {
                    bad(
                        format!("{at}.Event.Properties.Text"),
                        "must be a non-empty string",
                    );
                }
                match str_at(props, &["MatchingCriteria", "Type"]) {
                    Some("Similarity" | "Inclusion") => {}
                    _ => bad(format!("{at}.Event.Properties.MatchingCriteria"), "must be {\"Type\": \"Similarity\"} or {\"Type\": \"Inclusion\"}, inside Properties"),
                }
                if event.get("MatchingCriteria").is_some() {
                    bad(
                        format!("{at}.Event.MatchingCriteria"),
                        "belongs inside Properties",
                    );
                }
            }
            "FlowActionStarted" => {
                let action = str_at(props, &["ActionType"]).unwrap_or_default();
                match STARTED_ACTIONS.iter().find(|(a, _)| *a == action) {
                    Some((_, param)) if props["ActionParameters"].get(param).is_some() => {}
                    Some((_, param)) => bad(format!("{at}.Event.Properties.ActionParameters"), &format!("must name the resource ({param})")),
                    None => bad(format!("{at}.Event.Properties.ActionType"), "must be InvokeLambdaFunction, CheckHoursOfOperation, TransferContactToQueue or ConnectParticipantWithLexBot"),
                }
            }
            "TestInitiated" | "TestCompleted"
                if props.as_object().is_some_and(|p| !p.is_empty()) =>
            {
                bad(
                    format!("{at}.Event.Properties"),
                    "must be empty for this event",
                );
            }
            _ => {}
        }
        let actions = o.get("Actions").and_then(Value::as_array);
        let Some(actions) = actions else {
            bad(format!("{at}.Actions"), "must be an array");
            continue;
        };
        let action_ids: HashSet<&str> = actions
            .iter()
            .filter_map(|a| a.get("Identifier").and_then(Value::as_str))
            .collect();
        if action_ids.len() != actions.len() {
            bad(
                format!("{at}.Actions"),
                "every action needs its own Identifier",
            );
        }
        for (j, a) in actions.iter().enumerate() {
            let at = format!("{at}.Actions[{j}]");
            if let Some(aid) = a.get("Identifier").and_then(Value::as_str) {
                if !all_ids.insert(aid.to_string()) && !action_ids.contains(aid) {
                    bad(format!("{at}.Identifier"), "is used twice");
                }
            }
            let p = &a["Parameters"];
            match str_at(a, &["Type"]).unwrap_or_default() {
                "SendInstruction" => {
                    if str_at(p, &["ActionType"]) != Some("SendInstruction") {
                        bad(
                            format!("{at}.Parameters.ActionType"),
                            "must be \"SendInstruction\"",
                        );
                    }
                    if str_at(p, &["Actor"]) != Some("Customer") {
                        bad(format!("{at}.Parameters.Actor"), "must be \"Customer\"");
                    }
                    match str_at(p, &["Instruction", "Type"]).unwrap_or_default() {
                        "DtmfInput" => {
                            let v = str_at(p, &["Instruction", "Properties", "Value"])
                                .unwrap_or_default();
                            if v.is_empty()
                                || !v
                                    .chars()
                                    .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
                            {
                                bad(
                                    format!("{at}.Parameters.Instruction.Properties.Value"),
                                    "must be phone keys (0-9, *, #)",
                                );
                            }
                        }
                        "TextUtterance" | "Disconnect" => {}
                        _ => bad(
                            format!("{at}.Parameters.Instruction.Type"),
                            "must be DtmfInput, TextUtterance or Disconnect",
                        ),
                    }
                }
                "Assert" => {
                    if !str_at(p, &["Namespace"]).is_some_and(|n| n.starts_with("$.")) {
                        bad(
                            format!("{at}.Parameters.Namespace"),
                            "must be a JSON path ($.Attributes.name)",
                        );
                    }
                    let op = str_at(p, &["Operator"]).unwrap_or_default();
                    if !ASSERT_OPERATORS.contains(&op) {
                        bad(
                            format!("{at}.Parameters.Operator"),
                            "is not an operator of the Assert action",
                        );
                    }
                    if op != "Exists" && p.get("Operand").and_then(Value::as_str).is_none() {
                        bad(format!("{at}.Parameters.Operand"), "must be a string");
                    }
                    if p.get("ActionType").is_some() {
                        bad(
                            format!("{at}.Parameters.ActionType"),
                            "Assert's parameters have none",
                        );
                    }
                }
                "TestControl" => {
                    if str_at(p, &["ActionType"]) != Some("TestControl") {
                        bad(
                            format!("{at}.Parameters.ActionType"),
                            "must be \"TestControl\"",
                        );
                    }
                    match str_at(p, &["Command", "Type"]).unwrap_or_default() {
                        "EndTest" => ends = true,
                        "LogData" => {
                            let ok = p["Command"]["Properties"]["Expressions"]
                                .as_object()
                                .is_some_and(|e| !e.is_empty() && e.values().all(Value::is_string));
                            if !ok {
                                bad(
                                    format!("{at}.Parameters.Command.Properties.Expressions"),
                                    "must map labels to JSON paths",
                                );
                            }
                        }
                        _ => bad(
                            format!("{at}.Parameters.Command.Type"),
                            "must be EndTest or LogData",
                        ),
                    }
                }
                "OverrideSystemBehavior" => {
                    if str_at(p, &["ActionType"]) != Some("OverrideSystemBehavior") {
                        bad(
                            format!("{at}.Parameters.ActionType"),
                            "must be \"OverrideSystemBehavior\"",
                        );
                    }
                    let b = &p["Behavior"];
                    if str_at(b, &["Type"]) != Some("FlowAction") {
                        bad(
                            format!("{at}.Parameters.Behavior.Type"),
                            "must be \"FlowAction\"",
                        );
                    }
                    let action = str_at(b, &["Properties", "ActionType"]).unwrap_or_default();
                    if !OVERRIDE_ACTIONS.contains(&action) {
                        bad(
                            format!("{at}.Parameters.Behavior.Properties.ActionType"),
                            "cannot be overridden",
                        );
                    }
                    let params = &b["Properties"]["ActionParameters"];
                    if params
                        .as_object()
                        .is_none_or(|o| o.is_empty() || o.values().any(|v| v.as_str() == Some("")))
                    {
                        bad(
                            format!("{at}.Parameters.Behavior.Properties.ActionParameters"),
                            "must name the resource overridden",
                        );
                    }
                    let strategy = &b["Properties"]["Strategy"];
                    match str_at(strategy, &["Type"]).unwrap_or_default() {
                        "SubstituteResource" if str_at(strategy, &["SubstituteArn"]).is_some() => {}
                        "MockResponse" => {
                            let r = &strategy["Response"];
                            let value = match str_at(r, &["Type"]) {
                                Some("ExecutionResult") => r["ExecutionResult"]
                                    .get("Value")
                                    .or(r["ExecutionResult"].get("LoadedData")),
                                Some("Error") => r["Error"].get("Value"),
                                _ => None,
                            };
                            let allowed: &[&str] = match (action, str_at(r, &["Type"])) {
                                ("CheckHoursOfOperation", Some("ExecutionResult")) => {
                                    &["InHours", "OutOfHours"]
                                }
                                ("CheckHoursOfOperation", Some("Error")) => &["NoMatchingError"],
                                (
                                    "TransferContactToQueue" | "DequeueAndTransferToQueue",
                                    Some("Error"),
                                ) => &["QueueAtCapacity", "NoMatchingError"],
                                (
                                    "InvokeLambdaFunction" | "ConnectParticipantWithLexBot",
                                    Some("Error"),
                                ) => &["TimeLimitExceeded", "NoMatchingError"],
                                (
                                    "InvokeLambdaFunction" | "ConnectParticipantWithLexBot",
                                    Some("ExecutionResult"),
                                ) => &[],
                                _ => {
                                    bad(
                                        format!(
                                            "{at}.Parameters.Behavior.Properties.Strategy.Response"
                                        ),
                                        "is not a response this action can be mocked with",
                                    );
                                    &[]
                                }
                            };
                            match value.and_then(Value::as_str) {
                                Some(v) if allowed.is_empty() || allowed.contains(&v) => {}
                                _ => bad(
                                    format!(
                                        "{at}.Parameters.Behavior.Properties.Strategy.Response"
                                    ),
                                    &format!("needs a value of {allowed:?}"),
                                ),
                            }
                        }
                        _ => bad(
                            format!("{at}.Parameters.Behavior.Properties.Strategy"),
                            "must be SubstituteResource (with SubstituteArn) or MockResponse",
                        ),
                    }
                }
                _ => bad(
                    format!("{at}.Type"),
                    "must be SendInstruction, Assert, TestControl or OverrideSystemBehavior",
                ),
            }
            match a.get("Transitions").and_then(|t| t.get("NextAction")) {
                None => {}
                Some(Value::String(n))
                    if action_ids.contains(n.as_str())
                        && n != str_at(a, &["Identifier"]).unwrap_or_default() => {}
                Some(_) => bad(
                    format!("{at}.Transitions.NextAction"),
                    "must name another action of this observation (leave it out for the last)",
                ),
            }
        }
        let next: Vec<&str> = o
            .get("Transitions")
            .and_then(|t| t.get("NextObservations"))
            .and_then(Value::as_array)
            .map(|v| v.iter().map(|n| n.as_str().unwrap_or_default()).collect())
            .unwrap_or_default();
        for n in &next {
            if !ids.contains(n) {
                bad(
                    format!("{at}.Transitions.NextObservations"),
                    &format!("names {n:?}, which is no observation"),
                );
            }
        }
        targets.insert(id, next);
    }
    if !ends {
        bad(
            "Observations".into(),
            "no EndTest: the run would time out after 5 minutes and fail",
        );
    }
    // Reachability: observations nobody leads to are active from the start.
    let pointed: HashSet<&str> = targets.values().flatten().copied().collect();
    let mut reached: HashSet<&str> = ids
        .iter()
        .copied()
        .filter(|i| !pointed.contains(i))
        .collect();
    if reached.is_empty() && !ids.is_empty() {
        bad(
            "Observations".into(),
            "every observation is led to by another: none would start",
        );
    }
    let mut frontier: Vec<&str> = reached.iter().copied().collect();
    while let Some(at) = frontier.pop() {
        for n in targets.get(at).into_iter().flatten() {
            if reached.insert(n) {
                frontier.push(n);
            }
        }
    }
    for id in &ids {
        if !reached.contains(id) {
            bad(format!("Observations[{id}]"), "cannot be reached");
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::call::triage_flow;

    async fn generated() -> Vec<TestCase> {
        let flow = triage_flow().expect("flow");
        let file = ScenarioFile::embedded().expect("scenarios");
        generate(&flow, &file, &Deployment::placeholders())
            .await
            .expect("every scenario generates")
    }

    fn content_of(case: &TestCase) -> Value {
        serde_json::from_str(case.request["Content"].as_str().expect("a string")).expect("json")
    }

    #[test]
    fn the_first_sentence_tells_prompts_apart() {
        assert_eq!(
            distinctive("Pulse 1 si tiene tos seca. De lo contrario, pulse 0 o espere."),
            "Pulse 1 si tiene tos seca"
        );
        assert_eq!(
            distinctive("No he entendido su respuesta. Pulse 1 si tiene tos seca."),
            "No he entendido su respuesta"
        );
        assert_eq!(distinctive("Adiós."), "Adiós");
    }

    #[tokio::test]
    async fn every_scenario_is_a_valid_test_case() {
        for case in generated().await {
            let content = content_of(&case);
            assert_eq!(
                check_content(&content),
                Vec::<String>::new(),
                "{}",
                case.slug
            );
            assert_eq!(case.request["Status"], "PUBLISHED");
            assert_eq!(case.request["EntryPoint"]["Type"], "VOICE_CALL");
            let init: Value =
                serde_json::from_str(case.request["InitializationData"].as_str().expect("string"))
                    .expect("json");
            assert!(init["Attributes"]["lang"].is_string());
        }
    }

    #[tokio::test]
    async fn the_hospital_case_presses_the_keys_and_ends_at_the_transfer() {
        let cases = generated().await;
        let case = cases
            .iter()
            .find(|c| c.slug == "hospital")
            .expect("hospital");
        let content = content_of(case);
        let obs = content["Observations"].as_array().expect("array");
        let keys: Vec<&str> = obs
            .iter()
            .flat_map(|o| o["Actions"].as_array().into_iter().flatten())
            .filter_map(|a| str_at(a, &["Parameters", "Instruction", "Properties", "Value"]))
            .collect();
        assert_eq!(keys, ["1", "1", "1"]);
        let last = obs.last().expect("last");
        assert_eq!(last["Event"]["Type"], "FlowActionStarted");
        assert_eq!(
            last["Event"]["Properties"]["ActionParameters"]["QueueId"],
            "${HospitalQueueArn}"
        );
        let asserted: Vec<(&str, &str)> = last["Actions"]
            .as_array()
            .expect("actions")
            .iter()
            .filter(|a| a["Type"] == "Assert")
            .map(|a| {
                (
                    str_at(a, &["Parameters", "Namespace"]).unwrap_or_default(),
                    str_at(a, &["Parameters", "Operand"]).unwrap_or_default(),
                )
            })
            .collect();
        assert!(
            asserted.contains(&("$.Attributes.triage_outcome", "hospital")),
            "{asserted:?}"
        );
        assert!(
            asserted.contains(&("$.Attributes.triage_questionnaire", "covid19@1")),
            "{asserted:?}"
        );
        assert!(
            asserted.contains(&("$.Attributes.triage_score", "55")),
            "{asserted:?}"
        );
        assert_eq!(
            last["Actions"]
                .as_array()
                .and_then(|a| a.last())
                .and_then(|a| str_at(a, &["Parameters", "Command", "Type"])),
            Some("EndTest")
        );
        // Question 1 in Spanish is the first prompt waited for.
        assert_eq!(
            obs[1]["Event"]["Properties"]["Text"],
            "Pulse 1 si has tenido contacto con algún caso confirmado"
        );
    }

    #[tokio::test]
    async fn timeouts_invalid_keys_closed_hours_and_english_are_what_the_file_says() {
        let cases = generated().await;
        let by = |slug: &str| content_of(cases.iter().find(|c| c.slug == slug).expect(slug));
        let timeout = by("a-timeout-is-a-no");
        assert_eq!(
            timeout["Observations"][1]["Actions"][0]["Parameters"]["Command"]["Type"], "LogData",
            "no key is sent at a timeout"
        );
        let invalid = by("an-invalid-key-then-a-valid-one");
        assert_eq!(
            invalid["Observations"][2]["Event"]["Properties"]["Text"],
            "No he entendido su respuesta"
        );
        let closed = cases
            .iter()
            .find(|c| c.slug == "the-hospital-queue-closed")
            .expect("closed");
        assert!(closed.needs_hours);
        let closed = content_of(closed);
        let start = &closed["Observations"][0]["Actions"];
        assert!(start.as_array().expect("actions").iter().any(|a| {
            str_at(a, &["Parameters", "Behavior", "Properties", "ActionType"])
                == Some("CheckHoursOfOperation")
        }));
        assert_eq!(
            closed["Observations"]
                .as_array()
                .expect("obs")
                .last()
                .expect("last")["Event"]["Type"],
            "MessageReceived"
        );
        let english = cases.iter().find(|c| c.slug == "english").expect("english");
        assert!(english.request["InitializationData"]
            .as_str()
            .expect("s")
            .contains("\"en\""));
        assert!(
            content_of(english)["Observations"][1]["Event"]["Properties"]["Text"]
                .as_str()
                .expect("text")
                .starts_with("Press 1 if")
        );
    }

    #[tokio::test]
    async fn a_scenario_the_simulator_does_not_bear_out_is_refused() {
        let flow = triage_flow().expect("flow");
        let mut file = ScenarioFile::embedded().expect("scenarios");
        file.scenarios[0].expect.outcome = "clear".into();
        let e = generate(&flow, &file, &Deployment::placeholders())
            .await
            .unwrap_err();
        assert!(matches!(e, ConnectTestsError::Diverges { .. }), "{e}");
        assert!(e.to_string().contains("triage_outcome"), "{e}");
    }

    #[test]
    fn the_check_finds_what_breaks_the_language() {
        let good = json!({
            "Version": "2019-10-30",
            "Observations": [
                { "Identifier": "a", "Event": { "Identifier": "ae", "Type": "TestInitiated", "Actor": "System", "Properties": {} },
                  "Actions": [], "Transitions": { "NextObservations": ["b"] } },
                { "Identifier": "b", "Event": { "Identifier": "be", "Type": "MessageReceived", "Actor": "System",
                    "Properties": { "Text": "hola", "MatchingCriteria": { "Type": "Inclusion" } } },
                  "Actions": [
                    { "Identifier": "k", "Type": "SendInstruction", "Parameters": { "ActionType": "SendInstruction", "Actor": "Customer",
                      "Instruction": { "Type": "DtmfInput", "Properties": { "Value": "1" } } }, "Transitions": { "NextAction": "e" } },
                    { "Identifier": "e", "Type": "TestControl", "Parameters": { "ActionType": "TestControl", "Command": { "Type": "EndTest" } }, "Transitions": {} }
                  ], "Transitions": { "NextObservations": [] } }
            ]
        });
        assert_eq!(check_content(&good), Vec::<String>::new());
        let broken = |path: &str, value: Value| {
            let mut c = good.clone();
            *c.pointer_mut(path).expect(path) = value;
            let problems = check_content(&c);
            assert!(!problems.is_empty(), "{path} = {c} passed");
            problems.join("; ")
        };
        assert!(broken("/Version", json!("2025-06-21")).contains("Version"));
        assert!(broken(
            "/Observations/1/Event/Properties/MatchingCriteria",
            json!("Similarity")
        )
        .contains("MatchingCriteria"));
        assert!(broken(
            "/Observations/1/Actions/0/Parameters/Instruction/Properties/Value",
            json!("x")
        )
        .contains("phone keys"));
        assert!(broken(
            "/Observations/1/Actions/0/Transitions/NextAction",
            json!("")
        )
        .contains("NextAction"));
        assert!(
            broken("/Observations/0/Transitions/NextObservations", json!(["c"]))
                .contains("no observation")
        );
        assert!(broken(
            "/Observations/1/Actions/1/Parameters/Command/Type",
            json!("Stop")
        )
        .contains("EndTest"));
        assert!(broken("/Observations/1/Event/Type", json!("PromptPlayed")).contains("Event.Type"));
        assert!(broken("/Observations/1/Identifier", json!("a")).contains("twice"));
        assert!(broken(
            "/Observations/1/Actions/1/Parameters/Command",
            json!({"Type": "LogData"})
        )
        .contains("EndTest"));
        let mut cycle = good.clone();
        cycle["Observations"][1]["Transitions"]["NextObservations"] = json!(["a"]);
        assert!(check_content(&cycle).join(";").contains("none would start"));
        let mut usage = good.clone();
        usage["Observations"][0]["Usage"] = json!({"Type": "EXACTLY"});
        assert!(check_content(&usage).join(";").contains("Usage"));
        let mut mock = good.clone();
        mock["Observations"][0]["Actions"] = json!([override_action(
            "o",
            "CheckHoursOfOperation",
            json!({"HoursOfOperationId": "arn"}),
            json!({"Type": "ExecutionResult", "ExecutionResult": {"Value": "Closed"}})
        )]);
        assert!(check_content(&mock).join(";").contains("InHours"));
        mock["Observations"][0]["Actions"][0]["Parameters"]["Behavior"]["Properties"]["Strategy"]
            ["Response"]["ExecutionResult"]["Value"] = json!("OutOfHours");
        assert_eq!(check_content(&mock), Vec::<String>::new());
        mock["Observations"][0]["Actions"][0]["Parameters"]["Behavior"]["Properties"]
            ["ActionParameters"] = json!({});
        assert!(check_content(&mock).join(";").contains("ActionParameters"));
    }
}
