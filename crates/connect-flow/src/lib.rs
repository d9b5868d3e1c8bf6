//! A local interpreter of the Amazon Connect flow language (`"Version": "2019-10-30"`), the
//! JSON that `AWS::Connect::ContactFlow` deploys. It parses and checks a flow
//! ([`Flow::from_json`]) and runs one contact through it ([`run`]) with a simulated
//! [`Caller`] and [`Lambda`]. connect-triage's `triage call` uses it to run a whole phone
//! call in a terminal through the very flow that its `template.yaml` deploys
//! (`connect/triage-flow.json`); nothing here depends on that service.
//!
//! Only the actions below are understood; any other action type is refused when the flow
//! is parsed, so a flow that runs here cannot silently skip a step:
//!
//! | action | simulated as |
//! |---|---|
//! | `UpdateContactTextToSpeechVoice` | sets the Polly voice (and engine, style) later prompts are spoken with ([`Caller::voice`]); an engine Polly does not have takes the error branch. [`Flow::prompts_before_voice`] finds prompts some path reaches before a voice is set |
//! | `UpdateFlowLoggingBehavior` | flow logging on or off ([`CallReport::flow_logging`]) |
//! | `UpdateContactRecordingBehavior` | who is recorded from then on ([`CallReport::recorded`]); analytics settings are checked, not simulated |
//! | `MessageParticipant` | [`Caller::hear`] the `Text` (or `SSML`) |
//! | `GetParticipantInput` | store mode only: hear the prompt, [`Caller::press`]; the digits (or `Timeout`) become `$.StoredCustomerInput` |
//! | `ConnectParticipantWithLexBot` | Lex V2 only: hear the prompt, [`Caller::answer`] by voice or keys; the contact's bot ([`Contact::bots`], [`lex::LexBot`]) matches the words against its sample utterances in the contact's locale and runs its code hook through the [`Lambda`]; the intent is the result its `Equals` conditions test, and `$.Lex.*` holds it (see [`lex`]) |
//! | `UpdateContactData` | `LanguageCode` becomes the contact's language (`$.LanguageCode`, the bot's locale, the event's `LanguageCode`); other fields are checked, not simulated |
//! | `UpdateContactMediaStreamingBehavior` | the customer's audio streams to [`Contact::media_stream`] (the event's `MediaStreams`) from then on ([`CallReport::media_streaming`]); an instance without media streams storage takes the error branch |
//! | `UpdateContactAttributes` | sets `$.Attributes.*` |
//! | `InvokeLambdaFunction` | sends a `ContactFlowEvent` ([`contact_flow_event`]) to a [`Lambda`]; its answer becomes `$.External.*` |
//! | `Compare` | evaluates `Conditions` against `ComparisonValue` |
//! | `CreateTask` | a [`Task`] in [`CallReport::tasks`]; without a name or a `ContactFlowId` to route it, the error branch |
//! | `CheckHoursOfOperation` | its `True` or `False` condition, as [`CenterState::hours_open`] says |
//! | `UpdateContactTargetQueue`, `TransferContactToQueue` | ends the call with [`CallEnd::Transferred`], or the `QueueAtCapacity` error branch when [`CenterState::queue_at_capacity`] |
//! | `DisconnectParticipant` | ends the call with [`CallEnd::Disconnected`] |
//!
//! Values may reference the flow data (`$.External.x`, `$.Attributes.x`,
//! `$.StoredCustomerInput`, `$.ContactId`, ...), either as the whole value or embedded in a
//! text, and deployment placeholders `${Name}` (filled from the `params` given to [`run`]).
//!
//! The crate's `README.md` lists the conventions the simulator follows where Connect's
//! documentation is silent, with a usage example; `examples/run_flow.rs` runs a flow file
//! with a scripted caller.
//!
//! Modules: `model` (the checked flow), `parse` (from JSON, with the checks), `refs` (`$.`
//! references and `${}` placeholders), `run` (a contact through the flow), `event` (the
//! contact and its `ContactFlowEvent`), `error`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod event;
pub mod lex;
mod model;
mod parse;
pub mod reference;
mod refs;
mod run;

pub use error::FlowError;
pub use event::{
    contact_flow_event, contact_flow_event_with, voice_event, CenterState, Contact, ContactData,
    MediaStream, LOCAL_INSTANCE_ARN, LOCAL_SYSTEM_NUMBER,
};
pub use model::{Flow, FLOW_VERSION, SUPPORTED_ACTIONS};
pub use run::{
    run, BotAnswer, CallEnd, CallReport, Caller, CallerInput, Lambda, Task, Voice, BOT_ANSWER_WAIT,
    DEFAULT_LANGUAGE_CODE, MAX_LAMBDA_RESPONSE_BYTES, MAX_STEPS, POLLY_ENGINES,
};

/// The README's code examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
