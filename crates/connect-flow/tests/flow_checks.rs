//! Parsing and checking flows: what is accepted and what is refused, and how.

mod common;

use common::{minimal, TRIAGE_FLOW};
use connect_flow::{Flow, FlowError, FLOW_VERSION};
use serde_json::{json, Value};

#[test]
fn the_embedded_flow_parses_and_names_its_placeholders() {
    let flow = Flow::from_json(TRIAGE_FLOW).expect("the embedded flow is valid");
    assert_eq!(flow.start_action(), "set-logging");
    assert_eq!(flow.len(), 37);
    assert!(
        flow.prompts_before_voice().is_empty(),
        "every prompt comes after the voice is set: {:?}",
        flow.prompts_before_voice()
    );
    let names: Vec<&str> = flow.placeholders().iter().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "AnswersBotAliasArn",
            "AudioStreaming",
            "EngineEn",
            "EngineEs",
            "FlowLogging",
            "HospitalQueueArn",
            "NurseTaskFlowId",
            "RecordAgentLeg",
            "StyleEn",
            "StyleEs",
            "TriageFunctionArn",
            "VoiceEn",
            "VoiceEs"
        ]
    );
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
        {"Identifier": "a", "Type": "CheckMetricData", "Parameters": {}, "Transitions": {}}
    ]));
    let error = Flow::from_json(&text).expect_err("unsupported");
    let message = error.to_string();
    assert!(matches!(error, FlowError::Unsupported { .. }));
    assert!(
        message.contains("CheckMetricData") && message.contains("\"a\""),
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

    let bad_id =
        minimal(json!([{"Identifier": "a:b", "Type": "DisconnectParticipant", "Transitions": {}}]));
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

/// The problem of a flow whose only action `a` has this `Type` and these `Parameters`
/// (`Ok` when it is accepted).
fn problem_of(kind: &str, parameters: Value) -> Result<(), String> {
    // Compare's catch-all branch is NoMatchingCondition; every other action's is NoMatchingError.
    let catch_all = if kind == "Compare" {
        "NoMatchingCondition"
    } else {
        "NoMatchingError"
    };
    let text = minimal(json!([
        {"Identifier": "a", "Type": kind, "Parameters": parameters,
         "Transitions": {"NextAction": "a", "Errors": [{"NextAction": "a", "ErrorType": catch_all}]}}
    ]));
    match Flow::from_json(&text) {
        Ok(_) => Ok(()),
        Err(FlowError::InvalidParameter { action, problem }) => {
            assert_eq!(action, "a");
            Err(problem)
        }
        Err(other) => panic!("{kind} {parameters}: not a parameter error: {other}"),
    }
}

fn store_input(extra: Value) -> Value {
    let mut parameters = json!({
        "Text": "press", "StoreInput": "True", "InputTimeLimitSeconds": "5",
        "InputValidation": {"CustomValidation": {"MaximumLength": "1"}}
    });
    if let (Some(into), Value::Object(extra)) = (parameters.as_object_mut(), extra) {
        into.extend(extra);
    }
    parameters
}

#[test]
fn parameter_errors_name_the_parameter() {
    let cases = [
        (
            "MessageParticipant",
            json!({"Text": true}),
            "Parameters.Text",
        ),
        (
            "GetParticipantInput",
            store_input(json!({"InputValidation": [{"CustomValidation": {"MaximumLength": "1"}}]})),
            "Parameters.InputValidation",
        ),
        (
            "GetParticipantInput",
            store_input(json!({"InputValidation": {"CustomValidation": {"MaximumLength": []}}})),
            "Parameters.InputValidation.CustomValidation.MaximumLength",
        ),
        (
            "GetParticipantInput",
            store_input(json!({"InputValidation": {"CustomValidation": {}}})),
            "MaximumLength",
        ),
        (
            "UpdateContactAttributes",
            json!({"Attributes": {"name": {"first": "Ana"}}}),
            "Attributes.name must be a string",
        ),
        (
            "InvokeLambdaFunction",
            json!({"InvocationTimeLimitSeconds": "8"}),
            "LambdaFunctionARN",
        ),
        ("Compare", json!({}), "ComparisonValue"),
        ("UpdateContactTargetQueue", json!({}), "QueueId"),
    ];
    for (kind, parameters, named) in cases {
        let problem = problem_of(kind, parameters.clone()).expect_err("refused");
        assert!(problem.contains(named), "{kind} {parameters}: {problem}");
    }
}

#[test]
fn parameters_are_strings_but_numbers_are_tolerated() {
    let numbers = store_input(json!({
        "Text": 42, "InputTimeLimitSeconds": 5,
        "InputValidation": {"CustomValidation": {"MaximumLength": 2}}
    }));
    assert_eq!(problem_of("GetParticipantInput", numbers), Ok(()));
    let lambda = json!({"LambdaFunctionARN": "arn:aws:lambda:x", "InvocationTimeLimitSeconds": 8,
                        "LambdaInvocationAttributes": {"n": 1}});
    assert_eq!(problem_of("InvokeLambdaFunction", lambda), Ok(()));
    // The older name of the input time limit is read when the current one is absent.
    let older = json!({"Text": "press", "StoreInput": "True", "InputTimeoutSeconds": "5",
                       "InputValidation": {"PhoneNumberValidation": {}}});
    assert_eq!(problem_of("GetParticipantInput", older), Ok(()));
}

#[test]
fn what_cannot_be_simulated_is_refused_with_its_reason() {
    let cases = [
        (
            "MessageParticipant",
            json!({"PromptId": null}),
            "audio prompts",
        ),
        (
            "MessageParticipant",
            json!({"Text": "a", "SSML": "<speak>a</speak>"}),
            "not both",
        ),
        ("MessageParticipant", json!({}), "needs a Text"),
        (
            "GetParticipantInput",
            store_input(json!({"InputTimeLimitSeconds": "0"})),
            "from 1 to 180",
        ),
        (
            "GetParticipantInput",
            store_input(json!({"InputValidation": {}})),
            "CustomValidation or PhoneNumberValidation",
        ),
        (
            "InvokeLambdaFunction",
            json!({"LambdaFunctionARN": "x", "InvocationTimeLimitSeconds": "9"}),
            "from 1 to 8",
        ),
        (
            "InvokeLambdaFunction",
            json!({"LambdaFunctionARN": "x", "InvocationTimeLimitSeconds": "8", "InvocationType": "ASYNCHRONOUS"}),
            "use SYNCHRONOUS",
        ),
        (
            "InvokeLambdaFunction",
            json!({"LambdaFunctionARN": "x", "InvocationTimeLimitSeconds": "8", "ResponseValidation": {"ResponseType": "XML"}}),
            "Connect takes STRING_MAP, JSON",
        ),
        (
            "UpdateContactTargetQueue",
            json!({"AgentId": "agent"}),
            "AgentId",
        ),
        (
            "Compare",
            json!({"ComparisonValue": "x"}),
            "single JSONPath",
        ),
        ("UpdateContactAttributes", json!({}), "needs an Attributes"),
        (
            "UpdateContactAttributes",
            json!({"Attributes": {"x": "$.Attributes"}}),
            "needs a key",
        ),
        ("DisconnectParticipant", json!(["x"]), "must be an object"),
    ];
    for (kind, parameters, reason) in cases {
        let problem = problem_of(kind, parameters.clone()).expect_err("refused");
        assert!(problem.contains(reason), "{kind} {parameters}: {problem}");
    }
}

#[test]
fn absent_or_null_parameters_are_none() {
    for text in [
        minimal(json!([{"Identifier": "a", "Type": "DisconnectParticipant", "Transitions": {}}])),
        minimal(
            json!([{"Identifier": "a", "Type": "DisconnectParticipant", "Parameters": null, "Transitions": {}}]),
        ),
        minimal(
            json!([{"Identifier": "a", "Type": "TransferContactToQueue", "Parameters": {}, "Transitions": {}}]),
        ),
    ] {
        assert!(Flow::from_json(&text).is_ok(), "{text}");
    }
    // A parameter Connect's reference does not list is refused, not ignored.
    let err = Flow::from_json(&minimal(
        json!([{"Identifier": "a", "Type": "TransferContactToQueue", "Parameters": {"Ignored": 1}, "Transitions": {}}]),
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("Ignored is not a parameter Connect knows here")
            && err.contains("docs.aws.amazon.com"),
        "{err}"
    );
}

#[test]
fn a_document_without_the_flow_shape_is_a_json_error() {
    let no_type = minimal(json!([{"Identifier": "a", "Parameters": {}, "Transitions": {}}]));
    let error = Flow::from_json(&no_type).expect_err("no Type");
    assert!(matches!(error, FlowError::Json(_)));
    assert!(error.to_string().contains("Type"), "{error}");
    let bad_operand = minimal(json!([{"Identifier": "a", "Type": "Compare",
        "Parameters": {"ComparisonValue": "$.External.x"},
        "Transitions": {"Conditions": [{"NextAction": "a", "Condition": {"Operator": "Equals"}}]}}]));
    assert!(matches!(
        Flow::from_json(&bad_operand),
        Err(FlowError::Json(_))
    ));
}

/// The reference (reference/actions.json) is what Connect would refuse: a value Connect needs
/// static given as a `$.` reference, a listed value misspelt, an ErrorType the action lacks.
#[test]
fn the_reference_refuses_what_connect_would() {
    let cases = [
        (
            "GetParticipantInput",
            store_input(json!({"InputTimeLimitSeconds": "$.External.seconds"})),
            "InputTimeLimitSeconds must be defined statically",
        ),
        (
            "InvokeLambdaFunction",
            json!({"LambdaFunctionARN": "x", "InvocationTimeLimitSeconds": "8", "InvocationType": "SYNC"}),
            "InvocationType",
        ),
    ];
    for (kind, parameters, says) in cases {
        let problem = problem_of(kind, parameters.clone()).expect_err("refused");
        assert!(problem.contains(says), "{kind} {parameters}: {problem}");
        assert!(
            problem.contains("docs.aws.amazon.com/connect"),
            "cites the page: {problem}"
        );
    }
    let err = Flow::from_json(&minimal(json!([{
        "Identifier": "a", "Type": "DisconnectParticipant", "Parameters": {},
        "Transitions": {"Errors": [{"NextAction": "a", "ErrorType": "QueueAtCapacity"}]}
    }])))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("ErrorType \"QueueAtCapacity\" is not one DisconnectParticipant has"),
        "{err}"
    );
}
