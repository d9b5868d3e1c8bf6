//! Running one contact through a [`Flow`]: the flow data (`$.` values), what each action
//! does, and where the call goes next.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::FlowError;
use crate::event::{contact_flow_event_with, Contact, ContactData};
use crate::lex::{self, DtmfSettings, InputMode, Recognized};
use crate::model::{Action, BotSpec, Flow, InputSpec, LambdaSpec, Step};
use crate::refs::{scan_references, substitute, whole_reference};

/// A call that runs this many actions without ending is stopped with
/// [`FlowError::TooManySteps`].
pub const MAX_STEPS: usize = 500;

/// The largest Lambda response Connect accepts (32 KB).
pub const MAX_LAMBDA_RESPONSE_BYTES: usize = 32 * 1024;

/// Extra time given to [`Caller::press`] beyond the flow's input time limit before the
/// interpreter itself treats the input as timed out.
const PRESS_GRACE: Duration = Duration::from_secs(1);

/// The catch-all `ErrorType` of an action's `Errors`.
const NO_MATCHING_ERROR: &str = "NoMatchingError";
/// The `ErrorType` a `Compare` takes when no condition holds.
const NO_MATCHING_CONDITION: &str = "NoMatchingCondition";
/// `TransferContactToQueue`'s error when the queue is full.
const QUEUE_AT_CAPACITY: &str = "QueueAtCapacity";
/// `ConnectParticipantWithLexBot`'s error the simulator takes when the caller neither
/// speaks nor presses a key (see [`crate::lex`]).
const INPUT_TIME_LIMIT_EXCEEDED: &str = "InputTimeLimitExceeded";

/// How long a simulated bot waits for the caller to start answering. Lex's own no-input
/// timeout (session attribute `x-amz-lex:audio:start-timeout-ms`) is not simulated.
pub const BOT_ANSWER_WAIT: Duration = Duration::from_secs(5);

/// How long a simulated bot waits for its code hook Lambda.
const CODE_HOOK_LIMIT: Duration = Duration::from_secs(10);

/// The language of a contact no `UpdateContactData` has given one: what a Lex V2 bot then
/// needs a locale for.
pub const DEFAULT_LANGUAGE_CODE: &str = "en-US";

/// What the caller did when asked for input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerInput {
    /// Keys pressed (`0`-`9`, `*`, `#`). An empty string counts as no input.
    Digits(String),
    /// Words spoken (to a bot: [`Caller::answer`]). Asked for keys, words are no key.
    Words(String),
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
    /// The voice later prompts are spoken with changed (an
    /// `UpdateContactTextToSpeechVoice` ran). Until then Connect speaks with Joanna.
    async fn voice(&mut self, _voice: &Voice) {}
    /// Wait up to `timeout` for the first key; collect at most `max_digits` keys.
    async fn press(&mut self, timeout: Duration, max_digits: usize) -> CallerInput;
    /// Answer a bot (`ConnectParticipantWithLexBot`) within `timeout`: speak
    /// ([`CallerInput::Words`]) or press keys. By default the caller presses keys.
    async fn answer(&mut self, timeout: Duration) -> CallerInput {
        self.press(timeout, 1024).await
    }
}

/// The AWS Lambda functions the flow invokes.
#[async_trait::async_trait]
pub trait Lambda: Send + Sync {
    /// Invoke `function_arn` synchronously with `event` (a `ContactFlowEvent`, see
    /// [`contact_flow_event`]). `Err` is a failed invocation (the flow takes its error
    /// branch); its text is only logged.
    async fn invoke(&self, function_arn: &str, event: Value) -> Result<Value, String>;
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEnd {
    /// The flow hung up (`DisconnectParticipant`).
    Disconnected,
    /// The contact was put in a queue (`TransferContactToQueue`); `queue` is the queue id
    /// or ARN set by `UpdateContactTargetQueue`.
    Transferred {
        /// The queue id or ARN.
        queue: String,
    },
    /// The caller hung up while asked for input.
    HungUp,
}

/// The result of a simulated call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallReport {
    /// How the call ended.
    pub end: CallEnd,
    /// The text-to-speech voice at the end of the call (`None`: never set, Joanna).
    pub voice: Option<Voice>,
    /// Flow logging at the end of the call: `Some(true)` enabled, `Some(false)` disabled,
    /// `None` never set (the flow's own default: disabled).
    pub flow_logging: Option<bool>,
    /// Who was recorded at the end of the call (`Agent`, `Customer`), as last set.
    pub recorded: Vec<String>,
    /// The tasks the flow created (`CreateTask`), in order.
    pub tasks: Vec<Task>,
    /// The contact's language as `UpdateContactData` last set it.
    pub language: Option<String>,
    /// Media streaming at the end of the call: `Some(true)` streaming, `Some(false)`
    /// stopped, `None` never started.
    pub media_streaming: Option<bool>,
    /// The bot's answers (`ConnectParticipantWithLexBot`), in order: the intent and how the
    /// caller gave it (never the words).
    pub bot_answers: Vec<BotAnswer>,
    /// The user-defined contact attributes at the end of the call.
    pub attributes: BTreeMap<String, String>,
    /// How many actions ran.
    pub steps: usize,
}

/// One answer a bot recognized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotAnswer {
    /// The intent the flow got (after the code hook, if any).
    pub intent: String,
    /// The bot's confidence in hundredths (none for the fallback intent).
    pub confidence_pct: Option<u8>,
    /// Speech or keys.
    pub mode: InputMode,
}

/// A task `CreateTask` made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// `Name`.
    pub name: String,
    /// `Description` (empty when none).
    pub description: String,
    /// The flow that routes it (`ContactFlowId`).
    pub flow_id: Option<String>,
}

/// An Amazon Polly voice as `UpdateContactTextToSpeechVoice` sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voice {
    /// The voice's name, e.g. `Lucia`.
    pub name: String,
    /// `standard`, `neural`, `long-form` or `generative` (as given), if given.
    pub engine: Option<String>,
    /// The speaking style, if given.
    pub style: Option<String>,
}

/// The Polly engines (<https://docs.aws.amazon.com/polly/latest/dg/voice-engines-polly.html>);
/// Connect takes the error branch for any other (the reference: "Results in error if voice
/// or engine are invalid").
pub const POLLY_ENGINES: [&str; 4] = ["standard", "neural", "long-form", "generative"];

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
    let mut data = FlowData {
        contact,
        params,
        attributes: contact.attributes.clone(),
        external: Value::Null,
        stored_input: None,
        target_queue: None,
        voice: None,
        flow_logging: None,
        recorded: Vec::new(),
        tasks: Vec::new(),
        contact_data: ContactData::default(),
        media_streaming: None,
        lex: None,
        bot_answers: Vec::new(),
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
        let next = match &action.step {
            Step::SetLogging { behavior } => match data.resolve(behavior)?.as_str() {
                "Enabled" => {
                    data.flow_logging = Some(true);
                    Next::Success
                }
                "Disabled" => {
                    data.flow_logging = Some(false);
                    Next::Success
                }
                other => {
                    return Err(FlowError::InvalidParameter {
                        action: action.id.clone(),
                        problem: format!(
                            "FlowLoggingBehavior is {other:?} once resolved; Connect takes Enabled or Disabled"
                        ),
                    })
                }
            },
            Step::SetRecording { participants } => {
                let mut who = Vec::with_capacity(participants.len());
                for p in participants {
                    who.push(data.resolve(p)?);
                }
                data.recorded = who;
                Next::Success
            }
            Step::SetVoice {
                voice,
                engine,
                style,
            } => {
                let name = data.resolve(voice)?;
                let engine = match engine {
                    Some(e) => Some(data.resolve(e)?),
                    None => None,
                };
                let style = match style {
                    Some(s) => Some(data.resolve(s)?),
                    None => None,
                };
                let engine_ok = engine.as_deref().is_none_or(|e| {
                    POLLY_ENGINES
                        .iter()
                        .any(|known| known.eq_ignore_ascii_case(e))
                });
                if name.trim().is_empty() || !engine_ok {
                    Next::Error(NO_MATCHING_ERROR)
                } else {
                    let voice = Voice {
                        name,
                        engine,
                        style,
                    };
                    caller.voice(&voice).await;
                    data.voice = Some(voice);
                    Next::Success
                }
            }
            Step::Message { text } => {
                caller.hear(&data.resolve(text)?).await;
                Next::Success
            }
            Step::GetInput(spec) => get_input(&mut data, spec, caller).await?,
            Step::AskBot(spec) => ask_bot(&mut data, spec, action, caller, lambda).await?,
            Step::SetContactData { language_code } => match language_code {
                None => Next::Success,
                Some(code) => {
                    let code = data.resolve(code)?;
                    if valid_language_code(&code) {
                        data.contact_data.language_code = Some(code);
                        Next::Success
                    } else {
                        tracing::warn!(action = %action.id, language = %code, "not a language code (xx-XX); the flow takes its error branch");
                        Next::Error(NO_MATCHING_ERROR)
                    }
                }
            },
            Step::SetMediaStreaming { enabled } => {
                if contact.channel != "VOICE" {
                    // "This is supported only by the voice channel."
                    Next::Error(NO_MATCHING_ERROR)
                } else if *enabled {
                    match (&contact.media_stream, &data.contact_data.media) {
                        (_, Some((_, None))) => {
                            data.media_streaming = Some(true);
                            Next::Success
                        }
                        (Some(stream), _) => {
                            data.contact_data.media = Some((stream.clone(), None));
                            data.media_streaming = Some(true);
                            Next::Success
                        }
                        (None, _) => {
                            tracing::warn!(action = %action.id, "the instance has no media streams storage; the flow takes its error branch");
                            Next::Error(NO_MATCHING_ERROR)
                        }
                    }
                } else {
                    if let Some((_, stopped @ None)) = &mut data.contact_data.media {
                        *stopped = Some(now_ms());
                    }
                    if data.media_streaming.is_some() {
                        data.media_streaming = Some(false);
                    }
                    Next::Success
                }
            }
            Step::SetAttributes { attributes } => {
                let mut resolved = Vec::with_capacity(attributes.len());
                for (key, value) in attributes {
                    resolved.push((data.resolve(key)?, data.resolve(value)?));
                }
                data.attributes.extend(resolved);
                Next::Success
            }
            Step::InvokeLambda(spec) => invoke(&mut data, spec, &action.id, lambda).await?,
            Step::Compare { value } => {
                let value = data.resolve_opt(value)?;
                let matched = value.as_deref().and_then(|value| {
                    action
                        .conditions
                        .iter()
                        .find(|c| c.operator.holds(value, &c.operand))
                });
                match matched {
                    Some(condition) => Next::Condition(condition.next.clone()),
                    None => Next::Error(NO_MATCHING_CONDITION),
                }
            }
            Step::SetQueue { queue } => {
                let queue = data.resolve(queue)?;
                if queue.is_empty() {
                    Next::Error(NO_MATCHING_ERROR)
                } else {
                    data.target_queue = Some(queue);
                    Next::Success
                }
            }
            Step::TransferToQueue => match &data.target_queue {
                Some(_) if contact.center.queue_at_capacity => Next::Error(QUEUE_AT_CAPACITY),
                Some(queue) => Next::End(CallEnd::Transferred {
                    queue: queue.clone(),
                }),
                None => Next::Error(NO_MATCHING_ERROR),
            },
            Step::CreateTask {
                name,
                description,
                flow_id,
            } => {
                let name = data.resolve(name)?;
                let description = match description {
                    Some(d) => data.resolve(d)?,
                    None => String::new(),
                };
                let flow_id = match flow_id {
                    Some(f) => Some(data.resolve(f)?).filter(|f| !f.is_empty()),
                    None => None,
                };
                if name.is_empty() || flow_id.is_none() {
                    // Connect needs a name and a flow to route the task to.
                    Next::Error(NO_MATCHING_ERROR)
                } else {
                    data.tasks.push(Task {
                        name,
                        description,
                        flow_id,
                    });
                    Next::Success
                }
            }
            Step::CheckHours => {
                let want = if contact.center.hours_open { "True" } else { "False" };
                match action
                    .conditions
                    .iter()
                    .find(|c| c.operator.holds(want, &c.operand))
                {
                    Some(condition) => Next::Condition(condition.next.clone()),
                    None => Next::Error(NO_MATCHING_ERROR),
                }
            }
            Step::Disconnect => Next::End(CallEnd::Disconnected),
        };
        current = match next {
            Next::Success => action.next_target()?.to_string(),
            Next::Error(kind) => action.error_target(kind)?.to_string(),
            Next::Condition(target) => target,
            Next::End(end) => {
                return Ok(CallReport {
                    end,
                    voice: data.voice,
                    flow_logging: data.flow_logging,
                    recorded: data.recorded,
                    tasks: data.tasks,
                    language: data.contact_data.language_code,
                    media_streaming: data.media_streaming,
                    bot_answers: data.bot_answers,
                    attributes: data.attributes,
                    steps,
                })
            }
        };
    }
}

/// The flow data of one running contact: what `$.` references read.
struct FlowData<'a> {
    contact: &'a Contact,
    params: &'a HashMap<String, String>,
    /// `$.Attributes`.
    attributes: BTreeMap<String, String>,
    /// `$.External`: the last valid Lambda response.
    external: Value,
    /// `$.StoredCustomerInput`.
    stored_input: Option<String>,
    /// `$.Queue.ARN`.
    target_queue: Option<String>,
    /// The text-to-speech voice set so far.
    voice: Option<Voice>,
    /// Flow logging as set so far.
    flow_logging: Option<bool>,
    /// Who is recorded, as set so far.
    recorded: Vec<String>,
    /// Tasks created so far.
    tasks: Vec<Task>,
    /// What the flow set on the contact that the event reports (language, audio stream).
    contact_data: ContactData,
    /// Media streaming as set so far.
    media_streaming: Option<bool>,
    /// `$.Lex`: the last bot interaction.
    lex: Option<LexResult>,
    /// Every bot answer so far.
    bot_answers: Vec<BotAnswer>,
}

/// What `$.Lex.*` reads after a bot interaction.
struct LexResult {
    intent: String,
    confidence_pct: Option<u8>,
    session_attributes: BTreeMap<String, String>,
}

impl FlowData<'_> {
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
            "Lex" => {
                let lex = self.lex.as_ref()?;
                match rest? {
                    "IntentName" => Some(lex.intent.clone()),
                    "IntentConfidence.Score" => lex
                        .confidence_pct
                        .map(|p| format!("{:.2}", f64::from(p) / 100.0)),
                    "DialogState" => Some("Fulfilled".to_string()),
                    other => other
                        .strip_prefix("SessionAttributes.")
                        .and_then(|key| lex.session_attributes.get(key).cloned()),
                }
            }
            "LanguageCode" => self.contact_data.language_code.clone(),
            "MediaStreams" => {
                let (stream, stopped) = self.contact_data.media.as_ref()?;
                match rest? {
                    "Customer.Audio.StreamARN" => Some(stream.stream_arn.clone()),
                    "Customer.Audio.StartFragmentNumber" => Some(stream.start_fragment.clone()),
                    "Customer.Audio.StartTimestamp" => Some(stream.start_ms.to_string()),
                    "Customer.Audio.StopTimestamp" => stopped.map(|s| s.to_string()),
                    _ => None,
                }
            }
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

    /// Like [`FlowData::resolve_opt`], with missing data read as an empty string.
    fn resolve(&self, raw: &str) -> Result<String, FlowError> {
        Ok(self.resolve_opt(raw)?.unwrap_or_default())
    }

    /// The `ContactFlowEvent` for a Lambda invoked now with `parameters`.
    fn event(&self, parameters: Map<String, Value>) -> Value {
        contact_flow_event_with(
            self.contact,
            &self.attributes,
            self.target_queue.as_deref(),
            &self.contact_data,
            parameters,
        )
    }
}

/// Where an action sends the call next.
enum Next {
    /// The success branch, `NextAction`.
    Success,
    /// The `Errors` entry for this `ErrorType` (else `NoMatchingError`).
    Error(&'static str),
    /// The target of the `Compare` condition that held.
    Condition(String),
    /// Nowhere: the call is over.
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

/// `GetParticipantInput` in store mode. As Connect documents for "Store customer input",
/// a timeout takes the success branch with `$.StoredCustomerInput` = `Timeout`; the error
/// branch is taken on non-voice channels and for keys a phone cannot send.
async fn get_input(
    data: &mut FlowData<'_>,
    spec: &InputSpec,
    caller: &mut dyn Caller,
) -> Result<Next, FlowError> {
    if data.contact.channel != "VOICE" {
        return Ok(Next::Error(NO_MATCHING_ERROR));
    }
    if let Some(text) = &spec.text {
        caller.hear(&data.resolve(text)?).await;
    }
    let pressed = tokio::time::timeout(
        spec.timeout + PRESS_GRACE,
        caller.press(spec.timeout, spec.max_digits),
    )
    .await
    .unwrap_or(CallerInput::Timeout);
    let stored = match pressed {
        CallerInput::HangUp => return Ok(Next::End(CallEnd::HungUp)),
        // A keypad does not hear words.
        CallerInput::Timeout | CallerInput::Words(_) => "Timeout".to_string(),
        CallerInput::Digits(keys) => match collect_digits(&keys, spec) {
            None => return Ok(Next::Error(NO_MATCHING_ERROR)),
            Some(digits) if digits.is_empty() => "Timeout".to_string(),
            Some(digits) => digits,
        },
    };
    data.stored_input = Some(stored);
    Ok(Next::Success)
}

/// `ConnectParticipantWithLexBot` with a Lex V2 bot of the contact's instance: the prompt,
/// the caller's answer (words or keys, keys as the session attributes' DTMF settings
/// collect them), the bot's intent in the contact's locale, its code hook; then the
/// condition naming the intent, else `NoMatchingCondition`. See [`crate::lex`].
async fn ask_bot(
    data: &mut FlowData<'_>,
    spec: &BotSpec,
    action: &Action,
    caller: &mut dyn Caller,
    lambda: &dyn Lambda,
) -> Result<Next, FlowError> {
    let alias = data.resolve(&spec.alias_arn)?;
    let Some(bot) = data.contact.bots.get(&alias) else {
        tracing::warn!(action = %action.id, alias = %alias, "no Lex bot behind this alias on the instance; the flow takes its error branch");
        return Ok(Next::Error(NO_MATCHING_ERROR));
    };
    let language = data
        .contact_data
        .language_code
        .clone()
        .unwrap_or_else(|| DEFAULT_LANGUAGE_CODE.to_string());
    let Some(locale) = bot.locale(&language) else {
        tracing::warn!(action = %action.id, %language, "the bot has no locale for the contact's language; the flow takes its error branch");
        return Ok(Next::Error(NO_MATCHING_ERROR));
    };
    let mut attributes = BTreeMap::new();
    for (key, value) in &spec.session_attributes {
        attributes.insert(data.resolve(key)?, data.resolve(value)?);
    }
    if let Some(text) = &spec.text {
        caller.hear(&data.resolve(text)?).await;
    }
    let answered = tokio::time::timeout(
        BOT_ANSWER_WAIT + PRESS_GRACE,
        caller.answer(BOT_ANSWER_WAIT),
    )
    .await
    .unwrap_or(CallerInput::Timeout);
    let (mode, transcript) = match answered {
        CallerInput::HangUp => return Ok(Next::End(CallEnd::HungUp)),
        CallerInput::Timeout => return Ok(Next::Error(INPUT_TIME_LIMIT_EXCEEDED)),
        CallerInput::Words(words) if words.trim().is_empty() => {
            return Ok(Next::Error(INPUT_TIME_LIMIT_EXCEEDED))
        }
        CallerInput::Words(words) => (InputMode::Speech, words),
        CallerInput::Digits(keys) if keys.is_empty() => {
            return Ok(Next::Error(INPUT_TIME_LIMIT_EXCEEDED))
        }
        CallerInput::Digits(keys) => (
            InputMode::Dtmf,
            DtmfSettings::from_session_attributes(&attributes).collect(&keys),
        ),
    };
    let recognized = bot.recognize(locale, &transcript);
    let (intent, attributes) = match &bot.code_hook {
        None => (recognized.intent.clone(), attributes),
        Some(function) => {
            let event = lex::code_hook_event(
                &data.contact.contact_id,
                &locale.locale_id,
                mode,
                &transcript,
                &recognized,
                &attributes,
            );
            let answer = tokio::time::timeout(CODE_HOOK_LIMIT, lambda.invoke(function, event))
                .await
                .map_err(|_| "no answer in time".to_string())
                .and_then(|r| r)
                .and_then(|response| lex::read_code_hook_response(&response));
            match answer {
                Ok(closed) => closed,
                Err(why) => {
                    tracing::warn!(action = %action.id, function = %function, error = %why, "the bot's code hook failed; the flow takes its error branch");
                    return Ok(Next::Error(NO_MATCHING_ERROR));
                }
            }
        }
    };
    let Recognized { confidence_pct, .. } = recognized;
    data.bot_answers.push(BotAnswer {
        intent: intent.clone(),
        confidence_pct,
        mode,
    });
    let next = action
        .conditions
        .iter()
        .find(|c| c.operator.holds(&intent, &c.operand))
        .map(|c| Next::Condition(c.next.clone()))
        .unwrap_or(Next::Error(NO_MATCHING_CONDITION));
    data.lex = Some(LexResult {
        intent,
        confidence_pct,
        session_attributes: attributes,
    });
    Ok(next)
}

/// A language code as Connect writes them: `es-ES`, `en-US`.
fn valid_language_code(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 5
        && b[0].is_ascii_lowercase()
        && b[1].is_ascii_lowercase()
        && b[2] == b'-'
        && b[3].is_ascii_uppercase()
        && b[4].is_ascii_uppercase()
}

/// Now, in epoch milliseconds.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
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

/// `InvokeLambdaFunction`, synchronous, within `InvocationTimeLimitSeconds`.
async fn invoke(
    data: &mut FlowData<'_>,
    spec: &LambdaSpec,
    action: &str,
    lambda: &dyn Lambda,
) -> Result<Next, FlowError> {
    let arn = data.resolve(&spec.arn)?;
    let mut parameters = Map::new();
    for (key, value) in &spec.attributes {
        parameters.insert(data.resolve(key)?, Value::String(data.resolve(value)?));
    }
    let event = data.event(parameters);
    let failure = match tokio::time::timeout(spec.timeout, lambda.invoke(&arn, event)).await {
        Err(_) => format!("no answer within {}s", spec.timeout.as_secs()),
        Ok(Err(error)) => error,
        Ok(Ok(response)) => match valid_response(&response, spec.string_map) {
            Ok(()) => {
                data.external = response;
                return Ok(Next::Success);
            }
            Err(why) => why,
        },
    };
    tracing::warn!(%action, function = %arn, error = %failure, "Lambda invocation failed; the flow takes its error branch");
    Ok(Next::Error(NO_MATCHING_ERROR))
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn responses_are_validated_as_connect_does() {
        assert!(valid_response(&json!({"a": "1"}), true).is_ok());
        assert!(valid_response(&json!({"a": 1}), true).is_err());
        assert!(valid_response(&json!(["a"]), true).is_err());
        assert!(valid_response(&json!({"a": {"b": 1}}), false).is_ok());
        let big = "x".repeat(MAX_LAMBDA_RESPONSE_BYTES);
        assert!(valid_response(&json!({ "a": big }), true).is_err());
    }
}
