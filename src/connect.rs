//! Amazon Connect's side of the contract (DESIGN.md §2): a ContactFlowEvent in, a flat
//! map of strings out. The event is checked here, once, so the rest of the code only sees
//! valid domain values.

use crate::domain::ContactId;
use crate::domain::{CallFacts, Invocation, Lang, Outcome, Questionnaire, Reply};
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;
use std::borrow::Cow;
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
    // One pass over the bytes, borrowing strings from them and skipping what is not read.
    match serde_json::from_slice::<wire::Obj<wire::Event>>(bytes) {
        Ok(wire::Obj(event)) => from_wire(event, hasher),
        Err(e) => {
            let value: Value =
                serde_json::from_slice(bytes).map_err(|e| InputError::NotJson(e.to_string()))?;
            Err(diagnose(&value, &e))
        }
    }
}

/// Checks a ContactFlowEvent given as JSON (the in-process Lambda of `triage call`, the
/// demo and load generators) exactly as [`parse_bytes`] checks bytes.
pub fn parse_event(value: Value, hasher: Option<&CallerHasher>) -> Result<TurnRequest, InputError> {
    match <wire::Obj<wire::Event> as serde::Deserialize>::deserialize(&value) {
        Ok(wire::Obj(event)) => from_wire(event, hasher),
        Err(e) => Err(diagnose(&value, &e)),
    }
}

/// Words what is wrong with an event the wire types refused.
fn diagnose(value: &Value, e: &dyn std::fmt::Display) -> InputError {
    let bad = |why: &str| InputError::NotContactFlowEvent(why.to_string());
    let Some(object) = value.as_object() else {
        return bad("expected a JSON object");
    };
    let Some(details) = object.get("Details").and_then(Value::as_object) else {
        return bad("no Details object");
    };
    let Some(contact) = details.get("ContactData").and_then(Value::as_object) else {
        return bad("no Details.ContactData object");
    };
    for key in [
        "Channel",
        "InitiationMethod",
        "InitialContactId",
        "PreviousContactId",
    ] {
        if let Some(v) = contact.get(key).filter(|v| !v.is_string() && !v.is_null()) {
            return bad(&format!(
                "Details.ContactData.{key} is {}; Connect sends a string or null",
                wire::kind_of(v)
            ));
        }
    }
    bad(&e.to_string())
}

/// The checked request from a ContactFlowEvent as read off the wire.
fn from_wire(
    event: wire::Event<'_>,
    hasher: Option<&CallerHasher>,
) -> Result<TurnRequest, InputError> {
    let details = event.details.0;
    let data = details.contact_data.0;
    let raw_id = match data.contact_id {
        wire::Field::Text(id) => id.into_owned(),
        wire::Field::Missing => return Err(InputError::NoContactId("ContactId is missing".into())),
        wire::Field::Other(kind) => {
            return Err(InputError::NoContactId(format!(
                "ContactId is {kind}, not a string"
            )))
        }
    };
    let contact_id =
        ContactId::from_string(raw_id).map_err(|e| InputError::NoContactId(e.to_string()))?;

    // Parameters win over contact attributes of the same name.
    let (params, attrs) = (details.parameters, data.attributes);
    let lang_raw = params.lang.or(attrs.lang).filter(|l| !l.trim().is_empty());
    let turn = params.turn.or(attrs.turn).map(Cow::into_owned);
    let answer = params.answer.or(attrs.answer).map(Cow::into_owned);
    let lang = lang_raw.as_deref().and_then(Lang::parse);
    let short = |v: Option<wire::Text<'_>>| {
        v.map(|t| t.0).filter(|s| !s.is_empty()).map(|s| {
            match s.char_indices().nth(MAX_FACT_CHARS) {
                Some((cut, _)) => s[..cut].to_string(),
                None => s.into_owned(),
            }
        })
    };
    let caller = match (hasher, data.customer_endpoint.address) {
        (Some(h), Some(number)) if !number.trim().is_empty() => Some(CallerNumber {
            number: number.into_owned(),
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
                channel: short(data.channel),
                initiation_method: short(data.initiation_method),
                initial_contact_id: short(data.initial_contact_id),
                previous_contact_id: short(data.previous_contact_id),
                caller_hash: None,
            },
        },
    })
}

/// The ContactFlowEvent as it arrives, reduced to what a turn reads. Strings are borrowed
/// from the input where they hold no escapes. Leniencies are those of Connect itself:
/// endpoints are null for chats and tasks; attribute and parameter values may be numbers,
/// booleans or null (numbers and booleans count as their text, null as absent; nested
/// values are ignored); every other field is skipped unread.
mod wire {
    use serde::de::value::MapAccessDeserializer;
    use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde::Deserialize;
    use serde_json::Number;
    use std::borrow::Cow;
    use std::fmt;
    use std::marker::PhantomData;

    #[derive(Deserialize)]
    pub struct Event<'a> {
        #[serde(rename = "Details", borrow)]
        pub details: Obj<Details<'a>>,
    }

    #[derive(Deserialize)]
    pub struct Details<'a> {
        #[serde(rename = "ContactData", borrow)]
        pub contact_data: Obj<ContactData<'a>>,
        #[serde(rename = "Parameters", default, borrow)]
        pub parameters: Picked<'a>,
    }

    #[derive(Deserialize)]
    pub struct ContactData<'a> {
        #[serde(rename = "ContactId", default, borrow)]
        pub contact_id: Field<'a>,
        #[serde(rename = "Channel", default, borrow)]
        pub channel: Option<Text<'a>>,
        #[serde(rename = "InitiationMethod", default, borrow)]
        pub initiation_method: Option<Text<'a>>,
        #[serde(rename = "InitialContactId", default, borrow)]
        pub initial_contact_id: Option<Text<'a>>,
        #[serde(rename = "PreviousContactId", default, borrow)]
        pub previous_contact_id: Option<Text<'a>>,
        /// Null for chats and tasks; anything but an object holds no address.
        #[serde(rename = "CustomerEndpoint", default, borrow)]
        pub customer_endpoint: Picked<'a>,
        #[serde(rename = "Attributes", default, borrow)]
        pub attributes: Picked<'a>,
    }

    /// A JSON object read as `T`. (Serde's derived structs also take arrays, by position,
    /// which no ContactFlowEvent is.)
    pub struct Obj<T>(pub T);

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V<T>(PhantomData<T>);
            impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
                type Value = Obj<T>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Obj<T>, A::Error> {
                    T::deserialize(MapAccessDeserializer::new(a)).map(Obj)
                }
            }
            d.deserialize_map(V(PhantomData))
        }
    }

    /// A string, borrowed when it can be.
    pub struct Text<'a>(pub Cow<'a, str>);

    impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Text<'de>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a string")
                }
                fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                    Ok(Text(Cow::Borrowed(v)))
                }
                fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                    Ok(Text(Cow::Owned(v.to_string())))
                }
                fn visit_string<E>(self, v: String) -> Result<Text<'de>, E> {
                    Ok(Text(Cow::Owned(v)))
                }
            }
            d.deserialize_str(V)
        }
    }

    /// Any JSON value, keeping strings (borrowed when they can be) and scalars, only the
    /// kind of an array, and only what a turn reads of an object (the rest is skipped).
    enum Loose<'a> {
        Text(Cow<'a, str>),
        Number(Number),
        Bool(bool),
        Null,
        Array,
        Object(Picked<'a>),
    }

    impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Loose<'de>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("any JSON value")
                }
                fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Loose<'de>, E> {
                    Ok(Loose::Text(Cow::Borrowed(v)))
                }
                fn visit_str<E>(self, v: &str) -> Result<Loose<'de>, E> {
                    Ok(Loose::Text(Cow::Owned(v.to_string())))
                }
                fn visit_string<E>(self, v: String) -> Result<Loose<'de>, E> {
                    Ok(Loose::Text(Cow::Owned(v)))
                }
                fn visit_bool<E>(self, v: bool) -> Result<Loose<'de>, E> {
                    Ok(Loose::Bool(v))
                }
                fn visit_i64<E>(self, v: i64) -> Result<Loose<'de>, E> {
                    Ok(Loose::Number(v.into()))
                }
                fn visit_u64<E>(self, v: u64) -> Result<Loose<'de>, E> {
                    Ok(Loose::Number(v.into()))
                }
                fn visit_f64<E>(self, v: f64) -> Result<Loose<'de>, E> {
                    Ok(Number::from_f64(v).map_or(Loose::Null, Loose::Number))
                }
                fn visit_unit<E>(self) -> Result<Loose<'de>, E> {
                    Ok(Loose::Null)
                }
                fn visit_none<E>(self) -> Result<Loose<'de>, E> {
                    Ok(Loose::Null)
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Loose<'de>, A::Error> {
                    while a.next_element::<IgnoredAny>()?.is_some() {}
                    Ok(Loose::Array)
                }
                fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Loose<'de>, A::Error> {
                    let mut p = Picked::default();
                    while let Some(key) = a.next_key::<Text<'de>>()? {
                        let slot = match &*key.0 {
                            "turn" => &mut p.turn,
                            "answer" => &mut p.answer,
                            "lang" => &mut p.lang,
                            "Address" => &mut p.address,
                            _ => {
                                a.next_value::<IgnoredAny>()?;
                                continue;
                            }
                        };
                        *slot = scalar_text(a.next_value::<Loose<'de>>()?);
                    }
                    Ok(Loose::Object(p))
                }
            }
            d.deserialize_any(V)
        }
    }

    impl Loose<'_> {
        /// What the value is, for people: "a string", "null", "a number", ...
        fn kind(&self) -> &'static str {
            match self {
                Loose::Text(_) => "a string",
                Loose::Number(_) => "a number",
                Loose::Bool(_) => "a boolean",
                Loose::Null => "null",
                Loose::Array => "an array",
                Loose::Object(_) => "an object",
            }
        }
    }

    /// What a JSON value is, for people (see [`Loose`]).
    pub fn kind_of(v: &serde_json::Value) -> &'static str {
        Loose::deserialize(v).map_or("unreadable", |l| l.kind())
    }

    /// A field that must be a string, remembering what it was when it is not.
    #[derive(Default)]
    pub enum Field<'a> {
        #[default]
        Missing,
        Text(Cow<'a, str>),
        /// Present but not a string: "null", "a number", ...
        Other(&'static str),
    }

    impl<'de: 'a, 'a> Deserialize<'de> for Field<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            Ok(match Loose::deserialize(d)? {
                Loose::Text(t) => Field::Text(t),
                other => Field::Other(other.kind()),
            })
        }
    }

    /// The values a turn reads from a flat map of strings (Parameters or Attributes).
    #[derive(Default)]
    pub struct Picked<'a> {
        pub turn: Option<Cow<'a, str>>,
        pub answer: Option<Cow<'a, str>>,
        pub lang: Option<Cow<'a, str>>,
        /// An endpoint's `Address` (the caller's number in `CustomerEndpoint`).
        pub address: Option<Cow<'a, str>>,
    }

    /// One value of a flat map as text: strings as they are, numbers and booleans as their
    /// JSON text; `None` for null and nested values.
    fn scalar_text(v: Loose<'_>) -> Option<Cow<'_, str>> {
        match v {
            Loose::Text(t) => Some(t),
            Loose::Number(n) => Some(Cow::Owned(n.to_string())),
            Loose::Bool(b) => Some(Cow::Borrowed(if b { "true" } else { "false" })),
            Loose::Null | Loose::Array | Loose::Object(_) => None,
        }
    }

    impl<'de: 'a, 'a> Deserialize<'de> for Picked<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            // Anything but an object holds none of the values a turn reads.
            Ok(match Loose::deserialize(d)? {
                Loose::Object(picked) => picked,
                _ => Picked::default(),
            })
        }
    }
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

/// The response Connect gets: a flat map of strings. Its keys, in the order they are
/// written: `continue`, `outcome`, `question`, `score`, `text`, `turn` (only those that
/// apply; see docs/contracts.md, "Output"). Texts are borrowed from the questionnaire;
/// numbers are written once.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Response {
    said: Said,
    score: Digits,
    text: &'static str,
}

/// What a response tells the flow.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Said {
    /// Ask this question; the answer comes back with this turn token.
    Ask {
        question: &'static str,
        turn: Digits,
    },
    /// The triage is over with this outcome.
    End(Outcome),
    /// The store could not be reached in time: a calm apology, `outcome=error`. Never an
    /// event: nothing was recorded.
    Apology,
}

impl Response {
    /// Every key a response can hold, in the order they are written.
    pub const KEYS: [&'static str; 6] =
        ["continue", "outcome", "question", "score", "text", "turn"];

    /// The `outcome` of an apology (store unavailable), which no event ever records.
    pub const APOLOGY_OUTCOME: &'static str = "error";

    /// The calm apology given when the store cannot be reached, in the call's language and
    /// with its score as far as it is known.
    pub fn apology(q: &'static Questionnaire, lang: Lang, score: u32) -> Response {
        Response {
            said: Said::Apology,
            score: Digits::new(u64::from(score)),
            text: q.texts.error.get(lang),
        }
    }

    /// Whether this is the apology.
    pub fn is_apology(&self) -> bool {
        matches!(self.said, Said::Apology)
    }

    /// The value of one key, as Connect sees it.
    pub fn get(&self, key: &str) -> Option<&str> {
        match (key, &self.said) {
            ("continue", Said::Ask { .. }) => Some("1"),
            ("continue", _) => Some("0"),
            ("outcome", Said::End(o)) => Some(o.as_str()),
            ("outcome", Said::Apology) => Some(Self::APOLOGY_OUTCOME),
            ("question", Said::Ask { question, .. }) => Some(question),
            ("score", _) => Some(self.score.as_str()),
            ("text", _) => Some(self.text),
            ("turn", Said::Ask { turn, .. }) => Some(turn.as_str()),
            _ => None,
        }
    }

    /// The keys present and their values, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        Self::KEYS
            .iter()
            .filter_map(move |&k| self.get(k).map(|v| (k, v)))
    }

    /// The response as an owned map (for the flow interpreter and tests).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

impl From<Reply<'static>> for Response {
    fn from(reply: Reply<'static>) -> Response {
        let said = match reply {
            Reply::Ask { question, turn, .. } => Said::Ask {
                question,
                turn: Digits::new(turn),
            },
            Reply::End { outcome, .. } => Said::End(outcome),
        };
        Response {
            said,
            score: Digits::new(u64::from(reply.score())),
            text: reply.text(),
        }
    }
}

impl serde::Serialize for Response {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// A number's decimal digits, kept inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Digits {
    buf: [u8; 20],
    len: u8,
}

impl Digits {
    fn new(n: u64) -> Digits {
        let mut itoa = itoa::Buffer::new();
        let text = itoa.format(n).as_bytes();
        let mut buf = [0u8; 20];
        buf[..text.len()].copy_from_slice(text);
        Digits {
            buf,
            len: text.len() as u8,
        }
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("")
    }
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
    fn endpoints_of_any_shape_are_accepted() {
        let h = CallerHasher::new(b"0123456789abcdef-test-key").expect("key");
        let with = |endpoint: Value| {
            let mut ev = event(json!({}), json!({}));
            ev["Details"]["ContactData"]["CustomerEndpoint"] = endpoint;
            let r = parse_event(ev.clone(), Some(&h)).expect("accepted");
            assert_eq!(
                parse_bytes(ev.to_string().as_bytes(), Some(&h)),
                Ok(r.clone())
            );
            r.starting_invocation().facts.caller_hash
        };
        for no_number in [
            json!(null),
            json!("x"),
            json!([1]),
            json!({}),
            json!({"Address": null}),
        ] {
            assert_eq!(with(no_number.clone()), None, "{no_number}");
        }
        assert_eq!(
            with(json!({"Address": 34600000000u64, "Type": 3})),
            Some(h.hash("34600000000")),
            "a number counts as its digits"
        );
    }

    #[test]
    fn responses_are_written_as_before() {
        let q = crate::domain::Questionnaire::embedded();
        let reply = Reply::Ask {
            question: "fever",
            text: "Pulse 1",
            turn: 12,
            score: 40,
        };
        // Connect's flat map, keys in alphabetical order, exactly as the old BTreeMap wrote it.
        assert_eq!(
            serde_json::to_string(&Response::from(reply)).expect("json"),
            r#"{"continue":"1","question":"fever","score":"40","text":"Pulse 1","turn":"12"}"#
        );
        let end = Response::apology(q, Lang::En, 25);
        let json = serde_json::to_string(&end).expect("json");
        assert!(
            json.starts_with(r#"{"continue":"0","outcome":"error","score":"25","text":""#),
            "{json}"
        );
        assert_eq!(end.get("turn"), None);
        assert_eq!(end.get("nonsense"), None);
        assert_eq!(end.iter().count(), 4, "{end:?}");
        let big = Response::from(Reply::Ask {
            question: "fever",
            text: "Pulse 1",
            turn: u64::MAX,
            score: u32::MAX,
        });
        assert_eq!(big.get("turn"), Some("18446744073709551615"));
        assert_eq!(big.get("score"), Some("4294967295"));
    }

    #[test]
    fn bytes_and_values_read_alike() {
        let cases = [
            event(
                json!({"answer": "0", "turn": "3"}),
                json!({"answer": "1", "lang": "en"}),
            ),
            event(json!({"answer": 1, "turn": 2.5, "lang": true}), json!(null)),
            event(
                json!({"turn": {"nested": 1}, "answer": [1]}),
                json!("not a map"),
            ),
            event(
                json!({"answer": "café \"1\"\n", "x": {"deep": [1, {"y": null}]}}),
                json!({}),
            ),
        ];
        for ev in cases {
            let from_value = parse_event(ev.clone(), None).expect("value");
            let from_bytes = parse_bytes(ev.to_string().as_bytes(), None).expect("bytes");
            assert_eq!(from_value, from_bytes, "{ev}");
        }
    }

    #[test]
    fn attribute_values_are_read_as_connect_sends_them() {
        let r = parse_event(
            event(
                json!({"answer": 1, "turn": 2.5, "lang": true}),
                json!({"turn": null}),
            ),
            None,
        )
        .expect("valid");
        assert_eq!(r.invocation.answer.as_deref(), Some("1"));
        assert_eq!(
            r.invocation.turn.as_deref(),
            Some("2.5"),
            "null parameter: attribute used"
        );
        assert!(r.unknown_lang);
        let r = parse_event(event(json!({"answer": "a\tb"}), json!([])), None).expect("valid");
        assert_eq!(
            r.invocation.answer.as_deref(),
            Some("a\tb"),
            "escapes are decoded"
        );
        let mut ev = event(json!({}), json!({"answer": {"nested": "1"}}));
        ev["Details"]["ContactData"]["Channel"] = json!(null);
        let r = parse_event(ev, None).expect("valid");
        assert_eq!(r.invocation.answer, None, "nested values are not answers");
        assert_eq!(r.invocation.facts.channel, None);
    }

    #[test]
    fn facts_are_kept_short() {
        let mut ev = event(json!({}), json!({}));
        ev["Details"]["ContactData"]["Channel"] = json!("é".repeat(300));
        let r = parse_event(ev, None).expect("valid");
        assert_eq!(
            r.invocation.facts.channel.map(|c| c.chars().count()),
            Some(MAX_FACT_CHARS)
        );
    }

    #[test]
    fn wrong_types_in_read_fields_are_clear_errors() {
        let mut ev = event(json!({}), json!({}));
        ev["Details"]["ContactData"]["Channel"] = json!(7);
        let err = parse_event(ev.clone(), None).unwrap_err();
        assert!(matches!(err, InputError::NotContactFlowEvent(_)), "{err}");
        assert_eq!(
            parse_bytes(ev.to_string().as_bytes(), None).unwrap_err(),
            err
        );
        let mut ev = event(json!({}), json!({}));
        ev["Details"]["ContactData"]["ContactId"] = json!(null);
        assert!(parse_event(ev, None)
            .unwrap_err()
            .to_string()
            .contains("ContactId is null"));
        let mut ev = event(json!({}), json!({}));
        ev["Details"]["ContactData"] = json!([]);
        assert!(parse_event(ev, None)
            .unwrap_err()
            .to_string()
            .contains("no Details.ContactData"));
        assert!(parse_bytes(b"[1]", None)
            .unwrap_err()
            .to_string()
            .contains("JSON object"));
    }

    #[test]
    fn languages() {
        let r = parse_event(event(json!({}), json!({"lang": "EN"})), None).expect("valid");
        assert_eq!((r.invocation.lang, r.unknown_lang), (Some(Lang::En), false));
        let r = parse_event(event(json!({}), json!({"lang": "fr"})), None).expect("valid");
        assert_eq!((r.invocation.lang, r.unknown_lang), (None, true));
    }
}
