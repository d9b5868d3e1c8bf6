//! Amazon Connect's side of the contract (DESIGN.md §2): a ContactFlowEvent in, a flat
//! map of strings out. The event is checked here, once, so the rest of the code only sees
//! valid domain values.

use crate::domain::{CallFacts, Invocation, Lang, Reply};
use crate::store::ContactId;
use aws_lambda_events::event::connect::ConnectEvent;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;
use std::collections::BTreeMap;

/// Largest invocation accepted by `triage invoke` (Connect's own events are a few KB; a
/// Lambda payload is at most 6 MB). Larger input is refused before it is parsed.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// Longest contact-data value kept in an event (ids, channel, method).
const MAX_FACT_CHARS: usize = 256;

/// A ContactFlowEvent that cannot be served: a Lambda error, nothing is written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InputError {
    #[error("the invocation is not JSON: {0}")]
    NotJson(String),
    #[error("the invocation is {0} bytes; at most {MAX_EVENT_BYTES} are accepted")]
    TooLarge(usize),
    #[error("the invocation is not a Connect ContactFlowEvent: {0}")]
    NotContactFlowEvent(String),
    #[error("the ContactFlowEvent has no usable Details.ContactData.ContactId: {0}")]
    NoContactId(String),
}

/// One invocation, checked: whose call it is and what it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnRequest {
    pub contact_id: ContactId,
    pub invocation: Invocation,
    /// The `lang` asked for, if it was not one we speak (it falls back to Spanish).
    pub unknown_lang: bool,
    /// The caller's number, when a hash key is configured: hashed only if the call starts
    /// with this invocation (HMAC costs more than the rest of a turn).
    pub caller: Option<CallerNumber>,
}

impl TurnRequest {
    /// The invocation with the caller's hash filled in, for a call that starts now.
    pub fn starting_invocation(&self) -> Invocation {
        let mut inv = self.invocation.clone();
        inv.facts.caller_hash = self.caller.as_ref().map(CallerNumber::hash);
        inv
    }
}

/// Keyed hash of callers' numbers (HMAC-SHA256, hex): stable, so repeat callers can be
/// found, and useless without the key.
#[derive(Clone)]
pub struct CallerHasher {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for CallerHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallerHasher(..)")
    }
}

impl CallerHasher {
    /// A hasher with `key`; keys shorter than 16 bytes are refused.
    pub fn new(key: &[u8]) -> Result<CallerHasher, String> {
        if key.len() < 16 {
            return Err("the caller hash key must be at least 16 bytes".into());
        }
        let mac = Hmac::<Sha256>::new_from_slice(key).map_err(|e| e.to_string())?;
        Ok(CallerHasher { mac })
    }

    pub fn hash(&self, number: &str) -> String {
        let normalised: String = number
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect();
        let mut mac = self.mac.clone();
        mac.update(normalised.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Parses raw bytes (the Lambda payload, or stdin of `triage invoke`).
pub fn parse_bytes(bytes: &[u8], hasher: Option<&CallerHasher>) -> Result<TurnRequest, InputError> {
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(InputError::TooLarge(bytes.len()));
    }
    // Fast path: an event as Connect sends it for a voice call deserialises straight into
    // aws_lambda_events' type. Anything else (null endpoints, numbers in attributes, no
    // ContactId) takes the mending path, which also words the errors.
    if let Ok(event) = serde_json::from_slice::<ConnectEvent>(bytes) {
        if event.details.contact_data.contact_id.is_some() {
            return from_connect_event(event, hasher);
        }
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| InputError::NotJson(e.to_string()))?;
    parse_event(value, hasher)
}

/// Checks a ContactFlowEvent and turns it into a domain invocation. What
/// `aws_lambda_events` rejects but Connect sends is mended first: null endpoints (chat,
/// tasks), and attribute or parameter values that are numbers, booleans or null.
pub fn parse_event(
    mut value: Value,
    hasher: Option<&CallerHasher>,
) -> Result<TurnRequest, InputError> {
    let bad = |why: &str| InputError::NotContactFlowEvent(why.to_string());
    let details = value
        .as_object_mut()
        .ok_or_else(|| bad("expected a JSON object"))?
        .get_mut("Details")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| bad("no Details object"))?;
    if let Some(params) = details.get_mut("Parameters") {
        flatten_strings(params);
    }
    let contact = details
        .get_mut("ContactData")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| bad("no Details.ContactData object"))?;
    match contact.get("ContactId") {
        Some(Value::String(_)) => {}
        Some(other) => {
            return Err(InputError::NoContactId(format!(
                "ContactId is {}, not a string",
                json_kind(other)
            )))
        }
        None => return Err(InputError::NoContactId("ContactId is missing".into())),
    }
    for key in ["CustomerEndpoint", "SystemEndpoint"] {
        if !matches!(contact.get(key), Some(Value::Object(_))) {
            contact.insert(key.into(), Value::Object(Map::new()));
        }
    }
    if let Some(attrs) = contact.get_mut("Attributes") {
        flatten_strings(attrs);
    }
    for key in ["Queue", "Name"] {
        if contact.get(key).is_some_and(|v| !v.is_object()) {
            contact.remove(key);
        }
    }
    let event: ConnectEvent = serde_json::from_value(value).map_err(|e| bad(&e.to_string()))?;
    from_connect_event(event, hasher)
}

/// The checked request from a well-formed ContactFlowEvent.
fn from_connect_event(
    mut event: ConnectEvent,
    hasher: Option<&CallerHasher>,
) -> Result<TurnRequest, InputError> {
    let data = &mut event.details.contact_data;
    let raw_id = data.contact_id.take().unwrap_or_default();
    let contact_id = ContactId::from_string(raw_id).map_err(InputError::NoContactId)?;

    // Values are moved out of the event, not copied: this runs on every turn.
    let params = &mut event.details.parameters;
    let attrs = &mut data.attributes;
    let mut param = |key: &str| params.remove(key).or_else(|| attrs.remove(key));
    let lang_raw = param("lang").filter(|l| !l.trim().is_empty());
    let (turn, answer) = (param("turn"), param("answer"));
    let lang = lang_raw.as_deref().and_then(Lang::parse);
    let short = |v: &mut Option<String>| {
        v.take().filter(|s| !s.is_empty()).map(|mut s| {
            if let Some((cut, _)) = s.char_indices().nth(MAX_FACT_CHARS) {
                s.truncate(cut);
            }
            s
        })
    };
    let caller = match (hasher, data.customer_endpoint.address.take()) {
        (Some(h), Some(number)) if !number.trim().is_empty() => Some(CallerNumber {
            number,
            hasher: h.clone(),
        }),
        _ => None,
    };
    Ok(TurnRequest {
        contact_id,
        unknown_lang: lang_raw.is_some() && lang.is_none(),
        caller,
        invocation: Invocation {
            turn,
            answer,
            lang,
            facts: CallFacts {
                channel: short(&mut data.channel),
                initiation_method: short(&mut data.initiation_method),
                initial_contact_id: short(&mut data.initial_contact_id),
                previous_contact_id: short(&mut data.previous_contact_id),
                caller_hash: None,
            },
        },
    })
}

/// The caller's number, kept only until it is hashed (on a call's first invocation), with
/// the key to hash it. Its `Debug` never shows the number.
#[derive(Clone)]
pub struct CallerNumber {
    number: String,
    hasher: CallerHasher,
}

impl CallerNumber {
    /// The keyed hash that is stored (HMAC-SHA256, hex).
    pub fn hash(&self) -> String {
        self.hasher.hash(&self.number)
    }
}

impl std::fmt::Debug for CallerNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallerNumber(<redacted>)")
    }
}

impl PartialEq for CallerNumber {
    fn eq(&self, other: &Self) -> bool {
        self.hash() == other.hash()
    }
}

impl Eq for CallerNumber {}

/// Connect's STRING_MAP validation wants a flat object of strings: numbers and booleans
/// become their text, null and nested values are dropped.
fn flatten_strings(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, v| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)));
            for v in map.values_mut() {
                if !v.is_string() {
                    *v = Value::String(v.to_string());
                }
            }
        }
        _ => *v = Value::Object(Map::new()),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A voice contact's ContactFlowEvent as Amazon Connect sends it, with these Parameters
/// (the flow's Lambda invocation attributes). For the synthetic callers of `seed-demo` and
/// `loadtest`, the tests and the benchmarks.
pub fn voice_event(contact_id: &str, caller: &str, params: &[(&str, &str)]) -> Value {
    let params: Map<String, Value> = params
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    serde_json::json!({
        "Name": "ContactFlowEvent",
        "Details": {
            "ContactData": {
                "Attributes": {},
                "Channel": "VOICE",
                "ContactId": contact_id,
                "CustomerEndpoint": {"Address": caller, "Type": "TELEPHONE_NUMBER"},
                "InitialContactId": contact_id,
                "InitiationMethod": "INBOUND",
                "InstanceARN": crate::call::LOCAL_INSTANCE_ARN,
                "PreviousContactId": contact_id,
                "Queue": null,
                "SystemEndpoint": {"Address": "+34900000000", "Type": "TELEPHONE_NUMBER"}
            },
            "Parameters": params
        }
    })
}

/// The response Connect gets: a flat map of strings (sorted, for stable output).
pub fn response_map(reply: Reply) -> BTreeMap<&'static str, String> {
    let mut m = BTreeMap::new();
    m.insert("continue", if reply.cont { "1" } else { "0" }.into());
    m.insert("text", reply.text);
    m.insert("score", itoa::Buffer::new().format(reply.score).to_owned());
    if let Some(turn) = reply.turn {
        m.insert("turn", itoa::Buffer::new().format(turn).to_owned());
    }
    if let Some(outcome) = reply.outcome {
        m.insert("outcome", outcome.as_str().into());
    }
    if let Some(q) = reply.question {
        m.insert("question", q);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(attrs: Value, params: Value) -> Value {
        json!({
            "Name": "ContactFlowEvent",
            "Details": {
                "ContactData": {
                    "Attributes": attrs,
                    "Channel": "VOICE",
                    "ContactId": "4a573372-1f28-4e26-b97b-000000000001",
                    "CustomerEndpoint": {"Address": "+34600000000", "Type": "TELEPHONE_NUMBER"},
                    "InitialContactId": "4a573372-1f28-4e26-b97b-000000000001",
                    "InitiationMethod": "INBOUND",
                    "InstanceARN": "arn:aws:connect:eu-west-1:000000000000:instance/x",
                    "PreviousContactId": null,
                    "Queue": null,
                    "SystemEndpoint": {"Address": "+34900000000", "Type": "TELEPHONE_NUMBER"}
                },
                "Parameters": params
            }
        })
    }

    #[test]
    fn parameters_win_over_attributes() {
        let r = parse_event(
            event(json!({"answer": "0", "turn": "3"}), json!({"answer": "1"})),
            None,
        )
        .expect("valid");
        assert_eq!(r.invocation.answer.as_deref(), Some("1"));
        assert_eq!(r.invocation.turn.as_deref(), Some("3"));
        assert_eq!(r.invocation.facts.caller_hash, None, "no key: no hash");
    }

    #[test]
    fn null_endpoints_and_odd_values_are_accepted() {
        let mut ev = event(
            json!({"answer": 1, "turn": null, "x": {"a": 1}}),
            json!(null),
        );
        ev["Details"]["ContactData"]["CustomerEndpoint"] = Value::Null;
        ev["Details"]["ContactData"]["SystemEndpoint"] = Value::Null;
        let r = parse_event(ev, None).expect("chat and task contacts are valid");
        assert_eq!(r.invocation.answer.as_deref(), Some("1"));
        assert_eq!(r.invocation.turn, None);
    }

    #[test]
    fn bad_events_are_clear_errors() {
        assert!(matches!(
            parse_bytes(b"{not json", None),
            Err(InputError::NotJson(_))
        ));
        assert!(matches!(
            parse_bytes(b"{\"Name\":\"x\"}", None),
            Err(InputError::NotContactFlowEvent(_))
        ));
        let mut ev = event(json!({}), json!({}));
        ev["Details"]["ContactData"]
            .as_object_mut()
            .expect("object")
            .remove("ContactId");
        let err = parse_event(ev, None).unwrap_err();
        assert!(err.to_string().contains("ContactId is missing"), "{err}");
        let mut ev = event(json!({}), json!({}));
        ev["Details"]["ContactData"]["ContactId"] = json!(42);
        assert!(parse_event(ev, None)
            .unwrap_err()
            .to_string()
            .contains("a number"));
        let big = vec![b' '; MAX_EVENT_BYTES + 1];
        assert_eq!(
            parse_bytes(&big, None),
            Err(InputError::TooLarge(MAX_EVENT_BYTES + 1))
        );
    }

    #[test]
    fn callers_are_hashed_never_kept() {
        let h = CallerHasher::new(b"0123456789abcdef-test-key").expect("key");
        let r = parse_event(event(json!({}), json!({})), Some(&h)).expect("valid");
        assert_eq!(
            r.invocation.facts.caller_hash, None,
            "hashed only when a call starts"
        );
        let hash = r.starting_invocation().facts.caller_hash.expect("hash");
        assert_eq!(hash.len(), 64);
        assert_eq!(hash, h.hash("+34 600 000 000"), "stable across formatting");
        assert!(!format!("{r:?}").contains("600000000"));
        assert!(CallerHasher::new(b"short").is_err());
    }

    #[test]
    fn languages() {
        let r = parse_event(event(json!({}), json!({"lang": "EN"})), None).expect("valid");
        assert_eq!((r.invocation.lang, r.unknown_lang), (Some(Lang::En), false));
        let r = parse_event(event(json!({}), json!({"lang": "fr"})), None).expect("valid");
        assert_eq!((r.invocation.lang, r.unknown_lang), (None, true));
    }
}
