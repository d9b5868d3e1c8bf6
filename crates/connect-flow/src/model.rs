//! The checked flow: its actions, what each one does ([`Step`]), its transitions and the
//! `Compare` conditions. [`crate::parse`] builds it; [`crate::run`] runs it.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// The only flow-language version Connect accepts.
pub const FLOW_VERSION: &str = "2019-10-30";

/// Action types this interpreter runs.
pub const SUPPORTED_ACTIONS: [&str; 16] = [
    "CheckHoursOfOperation",
    "ConnectParticipantWithLexBot",
    "UpdateContactData",
    "UpdateContactMediaStreamingBehavior",
    "CreateTask",
    "UpdateFlowLoggingBehavior",
    "UpdateContactRecordingBehavior",
    "UpdateContactTextToSpeechVoice",
    "MessageParticipant",
    "GetParticipantInput",
    "UpdateContactAttributes",
    "InvokeLambdaFunction",
    "Compare",
    "UpdateContactTargetQueue",
    "TransferContactToQueue",
    "DisconnectParticipant",
];

/// A parsed and checked flow.
#[derive(Debug, Clone)]
pub struct Flow {
    pub(crate) start: String,
    pub(crate) actions: HashMap<String, Action>,
    pub(crate) placeholders: BTreeSet<String>,
}

impl Flow {
    /// The `${Name}` placeholders the flow uses; [`run`](crate::run) needs a value for each.
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

    /// Every prompt (`MessageParticipant`, `GetParticipantInput`) that some path of the flow
    /// graph reaches before an `UpdateContactTextToSpeechVoice` has succeeded on it, with one
    /// such path (action Identifiers from the start). Such a prompt is spoken by Connect's
    /// default voice, Joanna (English), whatever the caller's language: a flow that speaks
    /// to callers in another language wants this empty. Every branch counts: success,
    /// conditions and every error branch (a failed Set voice leaves the voice unset).
    pub fn prompts_before_voice(&self) -> Vec<(String, Vec<String>)> {
        use std::collections::HashSet;
        let mut found: Vec<(String, Vec<String>)> = Vec::new();
        let mut seen: HashSet<(String, bool)> = HashSet::new();
        // (action, voice set on the way here, the path to it)
        let mut stack = vec![(self.start.clone(), false, vec![self.start.clone()])];
        while let Some((id, voiced, path)) = stack.pop() {
            if !seen.insert((id.clone(), voiced)) {
                continue;
            }
            let Some(action) = self.actions.get(&id) else {
                continue;
            };
            let prompt = matches!(
                action.step,
                Step::Message { .. } | Step::GetInput(_) | Step::AskBot(_)
            );
            if prompt && !voiced && !found.iter().any(|(p, _)| *p == id) {
                found.push((id.clone(), path.clone()));
            }
            let sets_voice = matches!(action.step, Step::SetVoice { .. });
            let mut go = |target: &String, voiced: bool| {
                let mut next = path.clone();
                next.push(target.clone());
                stack.push((target.clone(), voiced, next));
            };
            if let Some(next) = &action.next {
                go(next, voiced || sets_voice);
            }
            for c in &action.conditions {
                go(&c.next, voiced);
            }
            for (_, target) in &action.errors {
                go(target, voiced);
            }
        }
        found.sort();
        found
    }
}

/// One action: what it does and where the call goes after it.
#[derive(Debug, Clone)]
pub(crate) struct Action {
    pub(crate) id: String,
    pub(crate) step: Step,
    /// `Transitions.NextAction`, the success branch.
    pub(crate) next: Option<String>,
    /// (ErrorType, NextAction), in the flow's order.
    pub(crate) errors: Vec<(String, String)>,
    /// `Transitions.Conditions` (only on `Compare`), in the flow's order.
    pub(crate) conditions: Vec<Condition>,
}

/// What an action does, one variant per supported action type. Texts may still hold
/// `$.` references and `${Name}` placeholders: they are resolved when the action runs.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// `UpdateFlowLoggingBehavior`: flow logs on (`Enabled`) or off (`Disabled`).
    SetLogging { behavior: String },
    /// `UpdateContactRecordingBehavior`: who is recorded from now on (`Agent`, `Customer`).
    SetRecording { participants: Vec<String> },
    /// `UpdateContactTextToSpeechVoice`: the Polly voice (and engine, style) every later
    /// prompt is spoken with.
    SetVoice {
        voice: String,
        engine: Option<String>,
        style: Option<String>,
    },
    /// `MessageParticipant`: speak `text`.
    Message { text: String },
    /// `GetParticipantInput` in store mode.
    GetInput(InputSpec),
    /// `ConnectParticipantWithLexBot`: the prompt, then the caller answers an Amazon Lex V2
    /// bot; the intent it returns is the result the conditions are evaluated against.
    AskBot(BotSpec),
    /// `UpdateContactData`: the contact's language (`LanguageCode`), when given.
    SetContactData { language_code: Option<String> },
    /// `UpdateContactMediaStreamingBehavior`: the customer's audio streamed to Kinesis Video
    /// Streams from now on (`Enabled`) or no longer (`Disabled`).
    SetMediaStreaming { enabled: bool },
    /// `UpdateContactAttributes`: (key, value) pairs.
    SetAttributes { attributes: Vec<(String, String)> },
    /// `InvokeLambdaFunction`.
    InvokeLambda(LambdaSpec),
    /// `Compare`: `value` (a single `$.` reference) against the action's conditions.
    Compare { value: String },
    /// `CheckHoursOfOperation`: open or closed, by the hours given or the queue's.
    CheckHours,
    /// `CreateTask`: a task (name, description) for the flow `ContactFlowId` to route.
    CreateTask {
        name: String,
        description: Option<String>,
        flow_id: Option<String>,
    },
    /// `UpdateContactTargetQueue`: the queue id or ARN.
    SetQueue { queue: String },
    /// `TransferContactToQueue`.
    TransferToQueue,
    /// `DisconnectParticipant`.
    Disconnect,
}

/// `GetParticipantInput` in store mode.
#[derive(Debug, Clone)]
pub(crate) struct InputSpec {
    /// The prompt, spoken before the caller presses keys.
    pub(crate) text: Option<String>,
    /// `InputTimeLimitSeconds`.
    pub(crate) timeout: Duration,
    /// `InputValidation.CustomValidation.MaximumLength` (20 for a phone number).
    pub(crate) max_digits: usize,
    /// `DTMFConfiguration.InputTerminationSequence` (`#` by default).
    pub(crate) terminator: String,
    /// Whether `*` clears the keys pressed so far (not `DTMFConfiguration.DisableCancelKey`).
    pub(crate) cancel_key: bool,
}

/// `ConnectParticipantWithLexBot` with a Lex V2 bot.
#[derive(Debug, Clone)]
pub(crate) struct BotSpec {
    /// The prompt spoken before the caller answers.
    pub(crate) text: Option<String>,
    /// `LexV2Bot.AliasArn` (static or a `$.` reference).
    pub(crate) alias_arn: String,
    /// `LexSessionAttributes`: (key, value) pairs passed to the bot.
    pub(crate) session_attributes: Vec<(String, String)>,
}

/// `InvokeLambdaFunction`, synchronous.
#[derive(Debug, Clone)]
pub(crate) struct LambdaSpec {
    /// `LambdaFunctionARN`.
    pub(crate) arn: String,
    /// `InvocationTimeLimitSeconds`.
    pub(crate) timeout: Duration,
    /// `LambdaInvocationAttributes`, sent as the event's `Details.Parameters`.
    pub(crate) attributes: Vec<(String, String)>,
    /// `ResponseValidation.ResponseType` is `STRING_MAP` (the default), not `JSON`.
    pub(crate) string_map: bool,
}

/// One of a `Compare` action's `Conditions`.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    pub(crate) operator: Operator,
    pub(crate) operand: String,
    /// The action the call goes to when the condition holds.
    pub(crate) next: String,
}

/// A condition's `Operator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operator {
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
    /// The operator named `name` in the flow language.
    pub(crate) fn parse(name: &str) -> Option<Operator> {
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
    pub(crate) fn holds(self, value: &str, operand: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_operators_follow_connect() {
        assert!(Operator::Equals.holds("1", "1"));
        assert!(!Operator::Equals.holds("01", "1"));
        assert!(Operator::NumberGreaterOrEqualTo.holds("50", "50"));
        assert!(Operator::NumberLessThan.holds("2.5", "10"));
        assert!(!Operator::NumberGreaterThan.holds("abc", "1"));
        assert!(Operator::TextContains.holds("hospital", "spit"));
    }
}
