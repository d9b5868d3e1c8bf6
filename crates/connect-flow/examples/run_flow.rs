//! Runs a Connect flow file with a scripted caller and a toy Lambda, printing the call.
//!
//! ```sh
//! cargo run -p connect-flow --example run_flow -- [FLOW.json] [ANSWERS] [Name=value ...]
//! ```
//!
//! - `FLOW.json`: the flow (default: the repository's `connect/triage-flow.json`).
//! - `ANSWERS`: what the caller does at each GetParticipantInput, comma separated: keys
//!   (`1`, `*`, `12#`), `timeout` or `hangup`. When they run out, the caller hangs up.
//!   Default: `1,2,9`.
//! - `Name=value`: a value for the flow's `${Name}` placeholder; any not given is
//!   `local:Name`.
//!
//! The toy Lambda answers a fixed STRING_MAP in the shape connect-triage's flow reads
//! (`continue`, `text`, `turn`, `outcome`): another question, unless the answer it is sent
//! is `0` (a clear outcome: goodbye) or `9` (a `hospital` outcome: the flow transfers).

use std::collections::{HashMap, VecDeque};
use std::error::Error;
use std::process::ExitCode;
use std::time::Duration;

use connect_flow::{run, Caller, CallerInput, Contact, Flow, Lambda, LOCAL_INSTANCE_ARN};
use serde_json::{json, Value};

const DEFAULT_FLOW: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../connect/triage-flow.json"
);
const DEFAULT_ANSWERS: &str = "1,2,9";

/// Does what the script says at each question, then hangs up.
struct ScriptedCaller {
    script: VecDeque<CallerInput>,
}

impl ScriptedCaller {
    fn new(answers: &str) -> ScriptedCaller {
        let script = answers
            .split(',')
            .map(str::trim)
            .filter(|answer| !answer.is_empty())
            .map(|answer| match answer {
                "timeout" => CallerInput::Timeout,
                "hangup" => CallerInput::HangUp,
                keys => CallerInput::Digits(keys.to_string()),
            })
            .collect();
        ScriptedCaller { script }
    }
}

#[async_trait::async_trait]
impl Caller for ScriptedCaller {
    async fn hear(&mut self, text: &str) {
        println!("caller hears:   {text}");
    }

    async fn press(&mut self, timeout: Duration, max_digits: usize) -> CallerInput {
        let input = self.script.pop_front().unwrap_or(CallerInput::HangUp);
        let shown = match &input {
            CallerInput::Digits(keys) => keys.clone(),
            CallerInput::Words(words) => format!("says {words:?}"),
            CallerInput::Timeout => format!("nothing (waits {}s)", timeout.as_secs()),
            CallerInput::HangUp => "hangs up".to_string(),
        };
        println!("caller presses: {shown} (up to {max_digits} keys)");
        input
    }
}

/// Answers a fixed STRING_MAP, chosen by the `answer` parameter it is sent.
struct ToyLambda;

#[async_trait::async_trait]
impl Lambda for ToyLambda {
    async fn invoke(&self, function_arn: &str, event: Value) -> Result<Value, String> {
        let parameters = &event["Details"]["Parameters"];
        println!("lambda gets:    {parameters} ({function_arn})");
        let answer = parameters["answer"].as_str().unwrap_or_default();
        Ok(match answer {
            "0" => {
                json!({"continue": "0", "text": "Thank you. Goodbye.", "outcome": "clear", "score": "0"})
            }
            "9" => {
                json!({"continue": "0", "text": "Please hold: we are transferring you.", "outcome": "hospital", "score": "60"})
            }
            _ => {
                json!({"continue": "1", "text": "Press a key: 0 to finish, 9 for the hospital.", "turn": "toy-turn", "score": "0"})
            }
        })
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match call().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("run_flow: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn call() -> Result<(), Box<dyn Error>> {
    let mut positional = Vec::new();
    let mut params = HashMap::new();
    for arg in std::env::args().skip(1) {
        match arg.split_once('=') {
            Some((name, value)) => {
                params.insert(name.to_string(), value.to_string());
            }
            None => positional.push(arg),
        }
    }
    let path = positional.first().map_or(DEFAULT_FLOW, String::as_str);
    let answers = positional.get(1).map_or(DEFAULT_ANSWERS, String::as_str);

    let text = std::fs::read_to_string(path).map_err(|error| format!("{path}: {error}"))?;
    let flow = Flow::from_json(&text).map_err(|error| format!("{path}: {error}"))?;
    for name in flow.placeholders() {
        params
            .entry(name.clone())
            .or_insert_with(|| format!("local:{name}"));
    }
    println!(
        "flow {path}: {} actions, starts at {:?}",
        flow.len(),
        flow.start_action()
    );

    let contact = Contact::voice("00000000-0000-4000-8000-000000000001", LOCAL_INSTANCE_ARN)
        .with_customer_number("+34600000000")
        .with_attribute("lang", "en");
    let mut caller = ScriptedCaller::new(answers);
    let report = run(&flow, &contact, &ToyLambda, &mut caller, &params).await?;
    println!(
        "call ended:     {:?} after {} actions; attributes {:?}",
        report.end, report.steps, report.attributes
    );
    Ok(())
}
