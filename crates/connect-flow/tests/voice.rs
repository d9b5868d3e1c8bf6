//! `UpdateContactTextToSpeechVoice` (Set voice): the voice later prompts are spoken with,
//! its error branch, and the check that no prompt is reachable before a voice is set.

mod common;

use common::minimal;
use connect_flow::{run, CallEnd, Caller, CallerInput, Contact, Flow, Lambda, Voice};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

#[derive(Default)]
struct Ear {
    /// What was heard, each with the voice it was spoken in.
    heard: Vec<(Option<String>, String)>,
    voice: Option<String>,
}

#[async_trait::async_trait]
impl Caller for Ear {
    async fn hear(&mut self, text: &str) {
        self.heard.push((self.voice.clone(), text.to_string()));
    }
    async fn voice(&mut self, voice: &Voice) {
        self.voice = Some(voice.name.clone());
    }
    async fn press(&mut self, _: Duration, _: usize) -> CallerInput {
        CallerInput::HangUp
    }
}

struct NoLambda;

#[async_trait::async_trait]
impl Lambda for NoLambda {
    async fn invoke(&self, _: &str, _: Value) -> Result<Value, String> {
        Err("no Lambda here".into())
    }
}

fn set_voice(id: &str, voice: &str, engine: &str, next: &str, on_error: &str) -> Value {
    json!({
        "Identifier": id,
        "Type": "UpdateContactTextToSpeechVoice",
        "Parameters": {"TextToSpeechVoice": voice, "TextToSpeechEngine": engine},
        "Transitions": {"NextAction": next, "Errors": [{"NextAction": on_error, "ErrorType": "NoMatchingError"}]}
    })
}

fn say(id: &str, text: &str, next: &str) -> Value {
    json!({
        "Identifier": id,
        "Type": "MessageParticipant",
        "Parameters": {"Text": text},
        "Transitions": {"NextAction": next, "Errors": [{"NextAction": next, "ErrorType": "NoMatchingError"}]}
    })
}

fn bye() -> Value {
    json!({"Identifier": "bye", "Type": "DisconnectParticipant", "Parameters": {}, "Transitions": {}})
}

async fn call(flow: &Flow) -> (Ear, connect_flow::CallReport) {
    let mut ear = Ear::default();
    let contact = Contact::voice("c-1", "arn:aws:connect:eu-west-1:111122223333:instance/i");
    let report = run(flow, &contact, &NoLambda, &mut ear, &HashMap::new())
        .await
        .expect("the call runs");
    (ear, report)
}

#[tokio::test]
async fn prompts_after_a_set_voice_are_spoken_in_that_voice() {
    let flow = Flow::from_json(&minimal(json!([
        say("a", "before", "v"),
        set_voice("v", "Lucia", "neural", "b", "bye"),
        say("b", "after", "bye"),
        bye(),
    ])))
    .expect("valid");
    let (ear, report) = call(&flow).await;
    assert_eq!(
        ear.heard,
        [
            (None, "before".to_string()),
            (Some("Lucia".to_string()), "after".to_string())
        ]
    );
    assert_eq!(report.end, CallEnd::Disconnected);
    assert_eq!(
        report.voice,
        Some(Voice {
            name: "Lucia".into(),
            engine: Some("neural".into()),
            style: None
        })
    );
    assert_eq!(
        flow.prompts_before_voice(),
        [("a".to_string(), vec!["a".to_string()])],
        "`a` comes before the voice"
    );
}

#[tokio::test]
async fn an_engine_polly_does_not_have_takes_the_error_branch() {
    let flow = Flow::from_json(&minimal(json!([
        set_voice("a", "Lucia", "turbo", "ok", "failed"),
        say("ok", "set", "bye"),
        say("failed", "not set", "bye"),
        bye(),
    ])))
    .expect("valid");
    let (ear, report) = call(&flow).await;
    assert_eq!(ear.heard, [(None, "not set".to_string())]);
    assert_eq!(report.voice, None);
    // The error branch reaches a prompt without a voice; the success branch does not.
    let unvoiced: Vec<String> = flow
        .prompts_before_voice()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(unvoiced, ["failed"]);
}

#[test]
fn a_flow_that_sets_the_voice_first_has_no_unvoiced_prompt() {
    let flow = Flow::from_json(&minimal(json!([
        set_voice("a", "Joanna", "neural", "b", "bye"),
        say("b", "hello", "bye"),
        bye(),
    ])))
    .expect("valid");
    assert!(flow.prompts_before_voice().is_empty());
}

#[test]
fn a_set_voice_needs_a_voice() {
    let err = Flow::from_json(&minimal(json!([
        set_voice("a", " ", "neural", "bye", "bye"),
        bye(),
    ])))
    .unwrap_err()
    .to_string();
    assert!(err.contains("TextToSpeechVoice is empty"), "{err}");
    let err = Flow::from_json(&minimal(json!([{
        "Identifier": "a",
        "Type": "UpdateContactTextToSpeechVoice",
        "Parameters": {"TextToSpeechEngine": "neural"},
        "Transitions": {"NextAction": "bye", "Errors": [{"NextAction": "bye", "ErrorType": "NoMatchingError"}]}
    }, bye()])))
    .unwrap_err()
    .to_string();
    assert!(err.contains("TextToSpeechVoice"), "{err}");
}

#[test]
fn connect_requires_the_set_voice_error_branch() {
    let err = Flow::from_json(&minimal(json!([{
        "Identifier": "a",
        "Type": "UpdateContactTextToSpeechVoice",
        "Parameters": {"TextToSpeechVoice": "Lucia"},
        "Transitions": {"NextAction": "bye"}
    }, bye()])))
    .unwrap_err();
    assert!(
        matches!(&err, connect_flow::FlowError::MissingErrorBranch { action, branch, .. } if action == "a" && branch == "NoMatchingError"),
        "{err}"
    );
}
