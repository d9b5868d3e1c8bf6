//! `triage call`: a whole phone call in the terminal. It runs the very Connect flow that
//! `template.yaml` deploys (`connect/triage-flow.json`) through [`crate::flow`], with the
//! Lambda invocation served in-process by [`App`], exactly as the deployed Lambda would.

use crate::app::App;
use crate::flow::lex::{LexBot, LexLocale};
use crate::flow::{
    self, CallEnd, CallReport, Caller, CallerInput, Contact, Flow, Lambda, MediaStream,
};
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
/// The answers bot's alias on the local instance (a stack with `SpeechInput` Enabled).
pub const LOCAL_BOT_ALIAS_ARN: &str =
    "arn:aws:lex:local:000000000000:bot-alias/LOCALBOTID/LOCALALIAS";
/// The prefix of the local instance's media streams (the template's `AudioStreamPrefix`).
pub const LOCAL_AUDIO_STREAM_PREFIX: &str = "connect-triage";

/// The answers bot (connect/lex-bot.json, as template.yaml deploys it) on the local
/// instance: the same intents and sample utterances per locale, the same confidence
/// threshold, and the in-process Lambda as its code hook.
pub fn answers_bot() -> LexBot {
    let bot = crate::connect::speech::bot();
    LexBot {
        locales: bot
            .locales
            .iter()
            .map(|l| LexLocale {
                locale_id: l.locale_id.clone(),
                intents: bot
                    .intents
                    .iter()
                    .map(|i| {
                        let samples = l.utterances.get(&i.name).cloned().unwrap_or_default();
                        (i.name.clone(), samples)
                    })
                    .collect(),
            })
            .collect(),
        nlu_threshold_pct: (bot.nlu_confidence_threshold * 100.0)
            .round()
            .clamp(0.0, 100.0) as u8,
        code_hook: Some(LOCAL_FUNCTION_ARN.to_string()),
    }
}

/// Where the local instance streams a contact's audio (`AudioStreaming` Enabled): a stream
/// named as Connect names them (`PREFIX-connect-ALIAS-contact-ID`), a 47-digit fragment.
pub fn local_media_stream(contact_id: &str) -> MediaStream {
    let start_ms = chrono::Utc::now().timestamp_millis();
    MediaStream {
        stream_arn: format!(
            "arn:aws:kinesisvideo:local:000000000000:stream/{LOCAL_AUDIO_STREAM_PREFIX}-connect-local-contact-{contact_id}/{start_ms}"
        ),
        start_fragment: "91343852333181432392682062622220590765191907586".to_string(),
        start_ms,
    }
}

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

/// The in-process Lambda: the same [`App::handle_any`] as `bootstrap`, so it serves the
/// flow's turns and the answers bot's code hook alike.
pub struct AppLambda<'a>(pub &'a App);

#[async_trait]
impl Lambda for AppLambda<'_> {
    async fn invoke(
        &self,
        _function_arn: &str,
        event: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let bytes = serde_json::to_vec(&event).map_err(|e| e.to_string())?;
        let handled = self.0.handle_any(&bytes).await.map_err(|e| e.to_string())?;
        serde_json::to_value(handled).map_err(|e| e.to_string())
    }
}

/// One scripted answer: keys, words (to the answers bot), or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Press {
    Keys(String),
    Say(String),
    Timeout,
}

/// A scripted answer that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswersError {
    #[error("an empty answer in --answers: use t for a timeout")]
    Empty,
    #[error("answer {0:?} is longer than 8 keys")]
    TooLong(String),
    #[error("an empty answer in --say: use t for silence")]
    EmptySay,
    #[error("answer {0:?} in --say is longer than 200 characters")]
    TooLongSay(String),
}

/// Parses `--say "sí,no,1,salir,t"`: words said to the answers bot; an answer made only of
/// keys (`0`-`9`, `*`, `#`) is pressed instead; `t`/`timeout` is silence.
pub fn parse_say(s: &str) -> Result<Vec<Press>, AnswersError> {
    s.split(',')
        .map(|a| a.trim())
        .map(|a| match a {
            "t" | "timeout" => Ok(Press::Timeout),
            "" => Err(AnswersError::EmptySay),
            a if a.chars().count() > 200 => Err(AnswersError::TooLongSay(a.to_string())),
            a if is_keys(a) => Ok(Press::Keys(a.to_string())),
            a => Ok(Press::Say(a.to_string())),
        })
        .collect()
}

/// Whether `s` is only keys a phone has.
fn is_keys(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
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

    async fn answer(&mut self, timeout: Duration) -> CallerInput {
        if self.script.is_some() {
            return self.next_scripted(timeout, 1024);
        }
        let prompt = format!(
            "  🎙  say your answer (sí/no/salir, yes/no/exit) or press a key, then Enter ({} s; Ctrl-D hangs up): ",
            timeout.as_secs()
        );
        match self.read_line(&prompt, timeout, "(silence)").await {
            Ok(line) if line.is_empty() => CallerInput::Timeout,
            Ok(line) if is_keys(&line) => CallerInput::Digits(line),
            Ok(line) => CallerInput::Words(line),
            Err(end) => end,
        }
    }

    async fn press(&mut self, timeout: Duration, max_digits: usize) -> CallerInput {
        if self.script.is_some() {
            return self.next_scripted(timeout, max_digits);
        }
        let prompt = format!(
            "  ☎  press a key and Enter ({} s; * leaves; Ctrl-D hangs up): ",
            timeout.as_secs()
        );
        match self.read_line(&prompt, timeout, "(timeout)").await {
            Ok(line) => CallerInput::Digits(line.chars().take(max_digits.max(1)).collect()),
            Err(end) => end,
        }
    }
}

impl<W: Write + Send> TerminalCaller<W> {
    /// Asks with `prompt` and reads one line from the terminal (trimmed) within `timeout`;
    /// `Err` is how the wait ended otherwise: a hang-up (end of input) or a timeout (after
    /// printing `timed_out`).
    async fn read_line(
        &mut self,
        prompt: &str,
        timeout: Duration,
        timed_out: &str,
    ) -> Result<String, CallerInput> {
        let Some(lines) = &mut self.stdin else {
            return Err(CallerInput::HangUp);
        };
        let _ = write!(self.out, "{prompt}");
        let _ = self.out.flush();
        match tokio::time::timeout(timeout, lines.next_line()).await {
            Ok(Ok(Some(line))) => Ok(line.trim().to_string()),
            Ok(_) => {
                let _ = writeln!(self.out);
                Err(CallerInput::HangUp)
            }
            Err(_) => {
                let _ = writeln!(self.out, "{timed_out}");
                Err(CallerInput::Timeout)
            }
        }
    }

    /// The script's next answer.
    fn next_scripted(&mut self, timeout: Duration, max_digits: usize) -> CallerInput {
        let Some(script) = &mut self.script else {
            return CallerInput::HangUp;
        };
        match script.next() {
            Some(Press::Keys(k)) => {
                let _ = writeln!(self.out, "  ☎  caller presses {k}");
                CallerInput::Digits(k.chars().take(max_digits.max(1)).collect())
            }
            Some(Press::Say(words)) => {
                let _ = writeln!(self.out, "  🎙  caller says «{words}»");
                CallerInput::Words(words)
            }
            Some(Press::Timeout) => {
                let _ = writeln!(self.out, "  ☎  (nothing for {} s)", timeout.as_secs());
                CallerInput::Timeout
            }
            None => {
                let _ = writeln!(
                    self.out,
                    "  ☎  caller hangs up (no more answers in the script)"
                );
                CallerInput::HangUp
            }
        }
    }
}

/// Largest flow file `triage call --flow` reads (Connect's CreateContactFlow takes a
/// `Content` of at most 256,000 characters; the margin is for UTF-8).
pub const MAX_FLOW_FILE_BYTES: u64 = 1024 * 1024;

/// Runs one call through `flow` (the embedded [`triage_flow`], or another flow file), with
/// the deployment's placeholders filled as locally: the in-process Lambda, a local hospital
/// queue and the voices of `connect/voices.json`; `SpeechInput` is Enabled when the
/// contact's instance has the answers bot at [`LOCAL_BOT_ALIAS_ARN`] ([`answers_bot`]), and
/// `AudioStreaming` when it has a media stream ([`local_media_stream`]). Returns the flow's
/// report.
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
        (
            "AnswersBotAliasArn".to_string(),
            if contact.bots.contains_key(LOCAL_BOT_ALIAS_ARN) {
                LOCAL_BOT_ALIAS_ARN.to_string()
            } else {
                String::new()
            },
        ),
        (
            "AudioStreaming".to_string(),
            if contact.media_stream.is_some() {
                "Enabled"
            } else {
                "Disabled"
            }
            .to_string(),
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

/// What the answers bot heard, and whether the audio streamed, as lines for the terminal
/// (never the words: the intent and how it was given).
pub fn describe_speech(report: &CallReport) -> Vec<String> {
    let mut lines: Vec<String> = report
        .bot_answers
        .iter()
        .map(|a| {
            let how = match (a.mode, a.confidence_pct) {
                (flow::lex::InputMode::Dtmf, _) => "keys".to_string(),
                (flow::lex::InputMode::Speech, Some(p)) => format!("speech {p}%"),
                (flow::lex::InputMode::Speech, None) => "speech".to_string(),
            };
            format!("  🎙  answers bot: {} ({how})", a.intent)
        })
        .collect();
    match report.media_streaming {
        Some(true) => {
            lines.push("  🔴 the caller's audio streamed to Kinesis Video Streams".into())
        }
        Some(false) => lines.push("  ⏹  audio streaming stopped".into()),
        None => {}
    }
    lines
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

    #[test]
    fn said_answers_parse() {
        assert_eq!(
            parse_say("sí, no ,1,*, t,Claro que sí").expect("valid"),
            vec![
                Press::Say("sí".into()),
                Press::Say("no".into()),
                Press::Keys("1".into()),
                Press::Keys("*".into()),
                Press::Timeout,
                Press::Say("Claro que sí".into()),
            ]
        );
        assert_eq!(parse_say("sí,,no"), Err(AnswersError::EmptySay));
        assert!(parse_say(&"a".repeat(201)).is_err());
    }

    #[test]
    fn the_local_bot_is_the_deployed_one() {
        let bot = answers_bot();
        let es = bot.locale("es-ES").expect("es_ES");
        let en = bot.locale("en-US").expect("en_US");
        assert_eq!(bot.recognize(es, "¡Sí!").intent, "Yes");
        assert_eq!(bot.recognize(es, "SALIR").intent, "Leave");
        assert_eq!(bot.recognize(en, "Nope.").intent, "No");
        assert_eq!(bot.nlu_threshold_pct, 40);
        assert!(local_media_stream("c-1")
            .stream_arn
            .contains(":stream/connect-triage-"));
    }
}
