//! The answers bot's code hook: the same function, invoked by Amazon Lex V2 (not Connect)
//! when the bot fulfils an intent, so that the flow learns *how* the caller answered.
//!
//! Connect passes the intent and its confidence to the flow (`$.Lex.IntentName`,
//! `$.Lex.IntentConfidence.Score`) but no attribute saying whether the caller spoke or
//! pressed keys (https://docs.aws.amazon.com/connect/latest/adminguide/connect-attrib-list.html,
//! "Amazon Lex contact attributes"), and keys may match no sample utterance at all. Lex's
//! code hook event has both: `inputMode` (`DTMF`, `Speech` or `Text`) and `inputTranscript`
//! (for DTMF, the keys) (https://docs.aws.amazon.com/lexv2/latest/dg/lambda-input-format.html).
//! The hook copies the mode into the session attribute `input_mode` and, for keys only, the
//! keys into `dtmf`, and closes the intent as fulfilled
//! (https://docs.aws.amazon.com/lexv2/latest/dg/lambda-response-format.html,
//! https://docs.aws.amazon.com/lexv2/latest/dg/lambda-common-structures.html); the flow
//! passes `$.Lex.SessionAttributes.input_mode` / `.dtmf` on to the turn
//! ([`crate::connect::speech`]).
//!
//! Never the words: a spoken transcript is neither copied, stored nor logged. Nothing is
//! written to the store here; the turn that follows records the answer.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Longest key sequence copied into `dtmf` (the flow sets Lex's DTMF max length to 1).
const MAX_KEYS: usize = 16;

/// A Lex V2 code hook invocation, as far as the hook reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexHookEvent {
    /// `invocationSource`: `DialogCodeHook` or `FulfillmentCodeHook`.
    pub source: String,
    /// `inputMode`.
    pub input_mode: String,
    /// The keys, when the caller pressed keys (checked: keys only, at most 16).
    pub keys: Option<String>,
    /// `sessionState.sessionAttributes`.
    pub session_attributes: BTreeMap<String, String>,
    /// `sessionState.intent` as Lex sent it (name, slots, state, ...).
    pub intent: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    message_version: Option<String>,
    invocation_source: String,
    input_mode: Option<String>,
    #[serde(default)]
    input_transcript: Option<String>,
    session_state: WireSession,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSession {
    #[serde(default)]
    session_attributes: Option<BTreeMap<String, String>>,
    #[serde(default)]
    intent: Option<Map<String, Value>>,
}

/// Reads a Lex V2 code hook event: `None` when `value` is not one (no `invocationSource` /
/// `sessionState`), `Some(Err)` when it is one but unusable.
pub fn parse_lex_hook(value: &Value) -> Option<Result<LexHookEvent, String>> {
    let object = value.as_object()?;
    if !(object.contains_key("invocationSource") && object.contains_key("sessionState")) {
        return None;
    }
    Some(read(value))
}

fn read(value: &Value) -> Result<LexHookEvent, String> {
    let wire = Wire::deserialize(value).map_err(|e| e.to_string())?;
    if wire.message_version.as_deref().is_some_and(|v| v != "1.0") {
        return Err(format!(
            "messageVersion {:?}: this hook answers Lex V2's 1.0",
            wire.message_version.unwrap_or_default()
        ));
    }
    let input_mode = wire.input_mode.unwrap_or_else(|| "Speech".to_string());
    let keys = if input_mode.eq_ignore_ascii_case("dtmf") {
        wire.input_transcript
            .map(|t| t.trim().to_string())
            .filter(|t| {
                !t.is_empty()
                    && t.chars().count() <= MAX_KEYS
                    && t.chars()
                        .all(|c| c.is_ascii_digit() || "*#ABCD".contains(c))
            })
    } else {
        None
    };
    Ok(LexHookEvent {
        source: wire.invocation_source,
        input_mode,
        keys,
        session_attributes: wire.session_state.session_attributes.unwrap_or_default(),
        intent: wire.session_state.intent.unwrap_or_default(),
    })
}

/// The hook's answer to Lex: the session attributes with `input_mode` (and `dtmf` for keys,
/// removed otherwise), and the intent closed as fulfilled (`FulfillmentCodeHook`) or handed
/// back to Lex (`Delegate`, for a dialog code hook).
pub fn respond(event: &LexHookEvent) -> Value {
    let mut attributes = event.session_attributes.clone();
    attributes.insert("input_mode".to_string(), event.input_mode.clone());
    match &event.keys {
        Some(keys) => {
            attributes.insert("dtmf".to_string(), keys.clone());
        }
        None => {
            attributes.remove("dtmf");
        }
    }
    let mut intent = event.intent.clone();
    if !intent.contains_key("name") {
        intent.insert(
            "name".into(),
            Value::String(super::speech::FALLBACK_INTENT.into()),
        );
    }
    let dialog_action = if event.source == "DialogCodeHook" {
        json!({"type": "Delegate"})
    } else {
        intent.insert("state".into(), Value::String("Fulfilled".into()));
        json!({"type": "Close"})
    };
    json!({
        "sessionState": {
            "sessionAttributes": attributes,
            "dialogAction": dialog_action,
            "intent": intent,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(mode: &str, transcript: &str, source: &str) -> Value {
        json!({
            "messageVersion": "1.0",
            "invocationSource": source,
            "inputMode": mode,
            "inputTranscript": transcript,
            "sessionId": "c-1",
            "bot": {"localeId": "es_ES"},
            "sessionState": {
                "sessionAttributes": {"x-amz-lex:dtmf:max-length:*:*": "1", "dtmf": "stale"},
                "intent": {"name": "FallbackIntent", "slots": {}, "state": "ReadyForFulfillment"}
            }
        })
    }

    #[test]
    fn keys_are_copied_and_words_never_are() {
        let keyed = parse_lex_hook(&event("DTMF", "*", "FulfillmentCodeHook"))
            .expect("a hook event")
            .expect("usable");
        let out = respond(&keyed);
        let attrs = &out["sessionState"]["sessionAttributes"];
        assert_eq!(attrs["input_mode"], "DTMF");
        assert_eq!(attrs["dtmf"], "*");
        assert_eq!(attrs["x-amz-lex:dtmf:max-length:*:*"], "1");
        assert_eq!(out["sessionState"]["dialogAction"]["type"], "Close");
        assert_eq!(out["sessionState"]["intent"]["state"], "Fulfilled");
        assert_eq!(out["sessionState"]["intent"]["name"], "FallbackIntent");

        let spoken = parse_lex_hook(&event("Speech", "sí tengo fiebre", "FulfillmentCodeHook"))
            .expect("a hook event")
            .expect("usable");
        let out = respond(&spoken);
        let text = out.to_string();
        assert!(!text.contains("fiebre"), "{text}");
        assert_eq!(
            out["sessionState"]["sessionAttributes"]["input_mode"],
            "Speech"
        );
        assert!(out["sessionState"]["sessionAttributes"]
            .get("dtmf")
            .is_none());

        // Keys that are not keys are not copied.
        let odd = parse_lex_hook(&event("DTMF", "hello", "FulfillmentCodeHook"))
            .expect("a hook event")
            .expect("usable");
        assert_eq!(odd.keys, None);
    }

    #[test]
    fn a_dialog_hook_delegates_and_other_events_are_not_hooks() {
        let dialog = parse_lex_hook(&event("Speech", "si", "DialogCodeHook"))
            .expect("a hook event")
            .expect("usable");
        assert_eq!(
            respond(&dialog)["sessionState"]["dialogAction"]["type"],
            "Delegate"
        );
        assert!(parse_lex_hook(&json!({"Details": {}})).is_none());
        assert!(
            parse_lex_hook(&json!({"invocationSource": 1, "sessionState": {}}))
                .expect("looks like one")
                .is_err()
        );
        let mut v2 = event("Speech", "si", "FulfillmentCodeHook");
        v2["messageVersion"] = json!("2.0");
        assert!(parse_lex_hook(&v2).expect("looks like one").is_err());
    }
}
