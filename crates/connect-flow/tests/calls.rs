//! Whole calls through a flow, with a scripted caller and Lambda.

mod common;

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use common::{minimal, TRIAGE_FLOW};
use connect_flow::{
    run, CallEnd, Caller, CallerInput, Contact, Flow, FlowError, Lambda, MAX_STEPS,
};
use serde_json::{json, Value};

const QUEUE: &str = "arn:aws:connect:eu-west-1:111122223333:instance/i-1/queue/q-hospital";
const FUNCTION: &str = "arn:aws:lambda:eu-west-1:111122223333:function:triage";

fn params() -> HashMap<String, String> {
    HashMap::from([
        ("TriageFunctionArn".to_string(), FUNCTION.to_string()),
        ("HospitalQueueArn".to_string(), QUEUE.to_string()),
        ("FlowLogging".to_string(), "Disabled".to_string()),
        ("RecordAgentLeg".to_string(), "Disabled".to_string()),
        ("NurseTaskFlowId".to_string(), "nurse-flow".to_string()),
        // Speech and audio off, as the template's defaults.
        ("AnswersBotAliasArn".to_string(), String::new()),
        ("AudioStreaming".to_string(), "Disabled".to_string()),
        ("VoiceEs".to_string(), "Lucia".to_string()),
        ("EngineEs".to_string(), "Neural".to_string()),
        ("StyleEs".to_string(), "None".to_string()),
        ("VoiceEn".to_string(), "Joanna".to_string()),
        ("EngineEn".to_string(), "Neural".to_string()),
        ("StyleEn".to_string(), "None".to_string()),
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
    // The flow's switches (speech and audio off) and the turn.
    assert_eq!(
        data["Attributes"],
        json!({"lang": "es", "turn": "t1", "speech_bot": "", "audio_streaming": "Disabled"})
    );
    assert_eq!(data["LanguageCode"], "es-ES");
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
    let mut only_function = params();
    only_function.remove("HospitalQueueArn");
    let error = run(&flow, &contact(), &lambda, &mut caller, &only_function)
        .await
        .expect_err("missing placeholder");
    assert!(matches!(&error, FlowError::MissingPlaceholder { name } if name == "HospitalQueueArn"));
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

#[tokio::test]
async fn the_lambda_gets_the_crate_s_contact_flow_event() {
    let flow = Flow::from_json(TRIAGE_FLOW).expect("flow");
    let lambda = FakeLambda::new(vec![question("Q1", "t1"), last("Bye", "exited")]);
    let mut caller = FakeCaller::new(vec![digits("2")]);
    let contact = contact();
    run(&flow, &contact, &lambda, &mut caller, &params())
        .await
        .expect("call");
    let mut attributes = contact.attributes.clone();
    attributes.insert("turn".to_string(), "t1".to_string());
    attributes.insert("speech_bot".to_string(), String::new());
    attributes.insert("audio_streaming".to_string(), "Disabled".to_string());
    let parameters = json!({"answer": "2", "turn": "t1", "lang": "es"});
    let Value::Object(parameters) = parameters else {
        unreachable!("an object")
    };
    let data = connect_flow::ContactData {
        language_code: Some("es-ES".to_string()),
        media: None,
    };
    assert_eq!(
        lambda.calls()[1].1,
        connect_flow::contact_flow_event_with(&contact, &attributes, None, &data, parameters)
    );
}
