//! Events: what happened in a call, in the past tense. One stream per ContactId; events are
//! appended, never changed. Every event carries its position (`seq`), a UUID v7 id, the
//! time it was recorded (UTC, ms), the schema version it was written with, and the `turn`
//! it answered (the stream version the deciding invocation saw), which is how a retried
//! invocation finds the response it was given the first time.

use super::questionnaire::Lang;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The schema version this build writes. Older versions are upcast on read.
pub const SCHEMA_VERSION: u16 = 2;

/// How an answer was given: keys pressed (DTMF, the default and every schema-1 answer), or
/// said to the Amazon Lex answers bot (connect/lex-bot.json).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputMode {
    #[default]
    Dtmf,
    Speech,
}

impl InputMode {
    pub fn as_str(self) -> &'static str {
        match self {
            InputMode::Dtmf => "dtmf",
            InputMode::Speech => "speech",
        }
    }

    fn is_dtmf(&self) -> bool {
        *self == InputMode::Dtmf
    }
}

/// Longest raw caller input kept in an event, in characters; longer input is cut and its
/// length recorded, so a hostile or broken flow cannot bloat the store.
pub const MAX_RAW_CHARS: usize = 16;

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Score reached the hospital threshold: go to hospital at once.
    Hospital,
    /// Finished with a score at or above the monitor threshold: watch your symptoms.
    Monitor,
    /// Finished below the monitor threshold: no sign of infection.
    Clear,
    /// The caller pressed `*` (or gave too many invalid inputs).
    Exited,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Hospital => "hospital",
            Outcome::Monitor => "monitor",
            Outcome::Clear => "clear",
            Outcome::Exited => "exited",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Some(match s {
            "hospital" => Outcome::Hospital,
            "monitor" => Outcome::Monitor,
            "clear" => Outcome::Clear,
            "exited" => Outcome::Exited,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Facts about the contact, taken from Connect's ContactData on the first invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallFacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiation_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_contact_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_contact_id: Option<String>,
    /// Keyed hash (HMAC-SHA256, hex) of the caller's number. Never the number itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_hash: Option<String>,
}

/// What happened. Serialised with a `type` tag and plain fields, so the same shape is a JSON
/// line in the file store and plain attributes in DynamoDB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum EventKind {
    CallStarted {
        questionnaire: String,
        questionnaire_version: u32,
        lang: Lang,
        #[serde(flatten)]
        facts: CallFacts,
    },
    AnswerRecorded {
        question: String,
        yes: bool,
        /// The key as Connect stored it; for a spoken answer, the key its intent stands
        /// for. Never a transcript.
        raw: String,
        /// How it was given (schema 2; schema-1 answers were all keyed). Written only for
        /// speech, so keyed answers keep their schema-1 shape.
        #[serde(default, skip_serializing_if = "InputMode::is_dtmf")]
        mode: InputMode,
        /// For speech: the bot's confidence in the intent, in percent, when Connect gave it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confidence_pct: Option<u8>,
    },
    InputRejected {
        question: String,
        raw: String,
        raw_len: u64,
    },
    CallExited {
        question: String,
    },
    TriageConcluded {
        outcome: Outcome,
        score: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Where the call's audio is (schema 2): Connect streamed the caller's audio to Kinesis
    /// Video Streams (`Details.ContactData.MediaStreams.Customer.Audio`). Recorded once per
    /// call, before the turn's other events; `triage audio` reads the audio from there.
    AudioStreamed {
        stream_arn: String,
        /// The fragment the call's audio starts at (a decimal string of up to 128 digits).
        start_fragment: String,
        /// When the stream started, if Connect said. (Not `started_at`: the DynamoDB store
        /// adds that attribute to `CallStarted` items for its indexes.)
        #[serde(default, skip_serializing_if = "Option::is_none", with = "millis_opt")]
        stream_started_at: Option<DateTime<Utc>>,
    },
    /// Connect reported the contact disconnected (its contact event `DISCONNECTED`): when,
    /// and why if it said. The last event of a stream; at most one.
    CallEnded {
        #[serde(with = "millis")]
        ended_at: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disconnect_reason: Option<String>,
    },
}

impl EventKind {
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::CallStarted { .. } => "CallStarted",
            EventKind::AnswerRecorded { .. } => "AnswerRecorded",
            EventKind::InputRejected { .. } => "InputRejected",
            EventKind::CallExited { .. } => "CallExited",
            EventKind::AudioStreamed { .. } => "AudioStreamed",
            EventKind::TriageConcluded { .. } => "TriageConcluded",
            EventKind::CallEnded { .. } => "CallEnded",
        }
    }
}

impl Event {
    /// Bytes of text the event holds (ids, raw input, facts): with the fixed fields, a
    /// bound on the size of its serialised form that costs no serialisation.
    pub fn text_bytes(&self) -> usize {
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        match &self.kind {
            EventKind::CallStarted {
                questionnaire,
                facts,
                ..
            } => {
                questionnaire.len()
                    + opt(&facts.channel)
                    + opt(&facts.initiation_method)
                    + opt(&facts.initial_contact_id)
                    + opt(&facts.previous_contact_id)
                    + opt(&facts.caller_hash)
            }
            EventKind::AnswerRecorded { question, raw, .. }
            | EventKind::InputRejected { question, raw, .. } => question.len() + raw.len(),
            EventKind::CallExited { question } => question.len(),
            EventKind::AudioStreamed {
                stream_arn,
                start_fragment,
                ..
            } => stream_arn.len() + start_fragment.len(),
            EventKind::TriageConcluded { reason, .. } => opt(reason),
            EventKind::CallEnded {
                disconnect_reason, ..
            } => opt(disconnect_reason),
        }
    }
}

/// One recorded event of one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the call's stream: 1, 2, 3...
    pub seq: u64,
    pub event_id: Uuid,
    #[serde(with = "millis")]
    pub at: DateTime<Utc>,
    /// Schema version the event was written with.
    pub schema: u16,
    /// The turn this event answered: the stream version seen by the invocation that
    /// recorded it (0 for the first invocation).
    pub turn: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    /// Stamps the envelope on what one turn decided: the events of a stream at `version`
    /// get `seq` `version + 1`, `version + 2`, ..., `turn` = `version` (the turn they answer),
    /// one time `at` and an id each from `new_id`, and this build's schema version. The one
    /// place an event's envelope is made.
    pub fn stamp(
        version: u64,
        kinds: Vec<EventKind>,
        at: DateTime<Utc>,
        new_id: &mut dyn FnMut() -> Uuid,
    ) -> Vec<Event> {
        kinds
            .into_iter()
            .zip(version + 1..)
            .map(|(kind, seq)| Event {
                seq,
                event_id: new_id(),
                at,
                schema: SCHEMA_VERSION,
                turn: version,
                kind,
            })
            .collect()
    }
}

/// Cuts caller input to [`MAX_RAW_CHARS`] characters; returns the kept text and the
/// original length in bytes.
pub fn bounded_raw(raw: &str) -> (String, u64) {
    (raw.chars().take(MAX_RAW_CHARS).collect(), raw.len() as u64)
}

/// Reads one event from its JSON form (file line or DynamoDB item turned into JSON),
/// upcasting older schema versions. Unknown future versions are refused, never guessed.
pub fn event_from_json(mut value: serde_json::Value) -> Result<Event, EventReadError> {
    let schema = value
        .get("schema")
        .and_then(|s| s.as_u64())
        .ok_or(EventReadError::NoSchema)?;
    match schema {
        // 1 -> 2: `AnswerRecorded` gained `mode` and `confidence_pct`; a schema-1 answer was
        // keyed (mode `dtmf`, the default) with no confidence: nothing to rewrite.
        // An upcaster for a later version N goes here, rewriting `value` from N to N+1.
        1 | 2 => {}
        v => return Err(EventReadError::TooNew(v)),
    }
    if let Some(obj) = value.as_object_mut() {
        obj.insert("schema".into(), SCHEMA_VERSION.into());
    }
    serde_json::from_value(value).map_err(EventReadError::Shape)
}

/// Why stored data does not read back as an event.
#[derive(Debug, thiserror::Error)]
pub enum EventReadError {
    #[error("event has no numeric `schema`")]
    NoSchema,
    #[error("event schema {0} is newer than this build understands ({SCHEMA_VERSION}); upgrade connect-triage")]
    TooNew(u64),
    #[error("event does not match the schema: {0}")]
    Shape(serde_json::Error),
}

/// [`millis`] for an optional time.
mod millis_opt {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| {
            DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

/// Timestamps are written as RFC 3339 UTC with milliseconds: `2026-11-25T14:03:07.123Z`.
mod millis {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sample() -> Event {
        Event {
            seq: 1,
            event_id: Uuid::nil(),
            at: Utc
                .timestamp_millis_opt(1_764_079_387_123)
                .single()
                .expect("valid time"),
            schema: SCHEMA_VERSION,
            turn: 0,
            kind: EventKind::CallStarted {
                questionnaire: "covid19".into(),
                questionnaire_version: 1,
                lang: Lang::Es,
                facts: CallFacts {
                    channel: Some("VOICE".into()),
                    ..CallFacts::default()
                },
            },
        }
    }

    #[test]
    fn events_are_flat_json() {
        let v = serde_json::to_value(sample()).expect("serialise");
        assert_eq!(v["type"], "CallStarted");
        assert_eq!(v["channel"], "VOICE");
        assert_eq!(v["at"], "2025-11-25T14:03:07.123Z");
        assert_eq!(event_from_json(v).expect("read back"), sample());
    }

    #[test]
    fn future_schema_is_refused() {
        let mut v = serde_json::to_value(sample()).expect("serialise");
        v["schema"] = 9.into();
        assert!(event_from_json(v)
            .unwrap_err()
            .to_string()
            .contains("upgrade"));
    }

    #[test]
    fn raw_input_is_bounded() {
        let big = "7".repeat(100_000);
        let (kept, len) = bounded_raw(&big);
        assert_eq!(kept.len(), MAX_RAW_CHARS);
        assert_eq!(len, 100_000);
        assert_eq!(bounded_raw("١").0, "١");
    }
}
