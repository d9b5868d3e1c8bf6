//! `triage call`: a whole phone call in the terminal. It runs the very Connect flow that
//! `template.yaml` deploys (`connect/triage-flow.json`) through [`crate::flow`], with the
//! Lambda invocation served in-process by [`App`], exactly as the deployed Lambda would.

use crate::app::App;
use crate::flow::{self, CallEnd, CallReport, Caller, CallerInput, Contact, Flow, Lambda};
use async_trait::async_trait;
use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The instance a local call belongs to (the flow crate's, so every local event agrees).
pub use crate::flow::LOCAL_INSTANCE_ARN;

/// Placeholder values for the flow's `${...}` parameters when run locally.
pub const LOCAL_FUNCTION_ARN: &str = "arn:aws:lambda:local:000000000000:function:triage";
/// The flow local nurse tasks are routed to (a stack with `NurseTaskFlowId`).
pub const LOCAL_NURSE_FLOW_ARN: &str =
    "arn:aws:connect:local:000000000000:instance/local/contact-flow/nurse-tasks";
pub const LOCAL_QUEUE_ARN: &str =
    "arn:aws:connect:local:000000000000:instance/local/queue/hospital-triage";

/// The flow that `template.yaml` deploys (`connect/triage-flow.json`), embedded at build time.
pub const TRIAGE_FLOW_JSON: &str = include_str!("../../connect/triage-flow.json");

/// The Polly voice of each language (`connect/voices.json`): the one place it is written.
/// `scripts/gen-template.py` puts the same values into the deployed flow.
pub const VOICES_JSON: &str = include_str!("../../connect/voices.json");

/// The flow's `${Name}` placeholders for the voices: `VoiceEs`, `EngineEs`, `StyleEs`,
/// `VoiceEn`, ... from [`VOICES_JSON`].
pub fn voice_placeholders() -> Result<HashMap<String, String>, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct One {
        voice: String,
        engine: String,
        style: String,
    }
    let voices: HashMap<String, One> = serde_json::from_str(VOICES_JSON)?;
    let mut out = HashMap::new();
    for (lang, suffix) in [("es", "Es"), ("en", "En")] {
        if let Some(v) = voices.get(lang) {
            out.insert(format!("Voice{suffix}"), v.voice.clone());
            out.insert(format!("Engine{suffix}"), v.engine.clone());
            out.insert(format!("Style{suffix}"), v.style.clone());
        }
    }
    Ok(out)
}

/// [`TRIAGE_FLOW_JSON`], parsed and checked.
pub fn triage_flow() -> Result<Flow, flow::FlowError> {
    Flow::from_json(TRIAGE_FLOW_JSON)
}

/// The in-process Lambda: the same [`App::handle_value`] as `bootstrap`.
pub struct AppLambda<'a>(pub &'a App);

#[async_trait]
impl Lambda for AppLambda<'_> {
    async fn invoke(
        &self,
        _function_arn: &str,
        event: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let response = self
            .0
            .handle_value(event)
            .await
            .map_err(|e| e.to_string())?;
        serde_json::to_value(response).map_err(|e| e.to_string())
    }
}

/// One scripted key press.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Press {
    Keys(String),
    Timeout,
}

/// A scripted answer that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswersError {
    #[error("an empty answer in --answers: use t for a timeout")]
    Empty,
    #[error("answer {0:?} is longer than 8 keys")]
    TooLong(String),
}

/// Parses `--answers 1,0,*,t`: digits or keys as typed, `t`/`timeout` for no key at all.
pub fn parse_answers(s: &str) -> Result<Vec<Press>, AnswersError> {
    s.split(',')
        .map(|a| a.trim())
        .map(|a| match a {
            "t" | "timeout" => Ok(Press::Timeout),
            "" => Err(AnswersError::Empty),
            a if a.chars().count() > 8 => Err(AnswersError::TooLong(a.to_string())),
            a => Ok(Press::Keys(a.to_string())),
        })
        .collect()
}

/// What the caller hears, printed; the keys come from a script or the terminal.
pub struct TerminalCaller<W: Write + Send> {
    script: Option<std::vec::IntoIter<Press>>,
    stdin: Option<tokio::io::Lines<BufReader<tokio::io::Stdin>>>,
    out: W,
}

impl<W: Write + Send> TerminalCaller<W> {
    pub fn scripted(answers: Vec<Press>, out: W) -> Self {
        TerminalCaller {
            script: Some(answers.into_iter()),
            stdin: None,
            out,
        }
    }

    pub fn interactive(out: W) -> Self {
        TerminalCaller {
            script: None,
            stdin: Some(BufReader::new(tokio::io::stdin()).lines()),
            out,
        }
    }
}

#[async_trait]
impl<W: Write + Send> Caller for TerminalCaller<W> {
    async fn hear(&mut self, text: &str) {
        let _ = writeln!(self.out, "  🔊 {text}");
    }

    async fn voice(&mut self, voice: &crate::flow::Voice) {
        let engine = voice.engine.as_deref().unwrap_or("standard");
        let _ = writeln!(self.out, "  🗣  voice {} ({engine})", voice.name);
    }

    async fn press(&mut self, timeout: Duration, max_digits: usize) -> CallerInput {
        if let Some(script) = &mut self.script {
            return match script.next() {
                Some(Press::Keys(k)) => {
                    let _ = writeln!(self.out, "  ☎  caller presses {k}");
                    CallerInput::Digits(k.chars().take(max_digits.max(1)).collect())
                }
                Some(Press::Timeout) => {
                    let _ = writeln!(self.out, "  ☎  (no key for {} s)", timeout.as_secs());
                    CallerInput::Timeout
                }
                None => {
                    let _ = writeln!(self.out, "  ☎  caller hangs up (no more --answers)");
                    CallerInput::HangUp
                }
            };
        }
        let Some(lines) = &mut self.stdin else {
            return CallerInput::HangUp;
        };
        let _ = write!(
            self.out,
            "  ☎  press a key and Enter ({} s; * leaves; Ctrl-D hangs up): ",
            timeout.as_secs()
        );
        let _ = self.out.flush();
        match tokio::time::timeout(timeout, lines.next_line()).await {
            Ok(Ok(Some(line))) => {
                CallerInput::Digits(line.trim().chars().take(max_digits.max(1)).collect())
            }
            Ok(_) => {
                let _ = writeln!(self.out);
                CallerInput::HangUp
            }
            Err(_) => {
                let _ = writeln!(self.out, "(timeout)");
                CallerInput::Timeout
            }
        }
    }
}

/// Largest flow file `triage call --flow` reads (Connect's CreateContactFlow takes a
/// `Content` of at most 256,000 characters; the margin is for UTF-8).
pub const MAX_FLOW_FILE_BYTES: u64 = 1024 * 1024;

/// Runs one call through `flow` (the embedded [`triage_flow`], or another flow file), with
/// the deployment's placeholders filled as locally: the in-process Lambda, a local hospital
/// queue and the voices of `connect/voices.json`. Returns the flow's report.
pub async fn run_call(
    app: &App,
    flow: &Flow,
    contact: &Contact,
    caller: &mut dyn Caller,
) -> Result<CallReport, flow::FlowError> {
    let mut params = HashMap::from([
        (
            "TriageFunctionArn".to_string(),
            LOCAL_FUNCTION_ARN.to_string(),
        ),
        ("HospitalQueueArn".to_string(), LOCAL_QUEUE_ARN.to_string()),
        // The template's switches, at their defaults.
        ("FlowLogging".to_string(), "Disabled".to_string()),
        ("RecordAgentLeg".to_string(), "Disabled".to_string()),
        (
            "NurseTaskFlowId".to_string(),
            LOCAL_NURSE_FLOW_ARN.to_string(),
        ),
    ]);
    // A broken voices file leaves the placeholders unfilled: the run then names them.
    params.extend(voice_placeholders().unwrap_or_default());
    flow::run(flow, contact, &AppLambda(app), caller, &params).await
}

/// The contact attributes the agent and the contact record get when triage ends
/// (`triage_outcome`, `triage_score`, `triage_questionnaire`, `triage_summary`), as lines
/// for the terminal; none when the flow set none.
pub fn describe_handoff(attributes: &std::collections::BTreeMap<String, String>) -> Vec<String> {
    attributes
        .iter()
        .filter(|(k, _)| k.starts_with("triage_"))
        .map(|(k, v)| format!("  {k} = {v}"))
        .collect()
}

/// The tasks the flow created, as lines for the terminal.
pub fn describe_tasks(tasks: &[crate::flow::Task]) -> Vec<String> {
    tasks
        .iter()
        .map(|t| {
            format!(
                "  📋 task for the nurse team: {}: {}",
                t.name, t.description
            )
        })
        .collect()
}

/// How a call ended, for people.
pub fn describe_end(end: &CallEnd) -> String {
    match end {
        CallEnd::Disconnected => "the flow disconnected the call".into(),
        CallEnd::Transferred { queue } => format!("transferred to queue {queue}"),
        CallEnd::HungUp => "the caller hung up".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse() {
        assert_eq!(
            parse_answers("1, 0,*,t").expect("valid"),
            vec![
                Press::Keys("1".into()),
                Press::Keys("0".into()),
                Press::Keys("*".into()),
                Press::Timeout
            ]
        );
        assert!(parse_answers("1,,0").is_err());
    }
}
