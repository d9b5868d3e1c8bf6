//! Amazon Connect's side of the contract (docs/contracts.md, "The Connect <-> Lambda
//! contract"): a ContactFlowEvent in ([`parse_bytes`], read by [`wire`] in one borrowing
//! pass), a flat map of strings out ([`Response`]). The event is checked here, once, so the
//! rest of the code only sees valid domain values.

mod caller;
pub mod contact_event;
pub mod lex_hook;
pub mod media;
mod response;
pub mod speech;
mod wire;

pub use caller::{CallerHasher, CallerKeyError, CallerNumber};
pub use contact_event::{parse_contact_event, ContactEvent};
pub use response::Response;

use crate::domain::ContactId;
use crate::domain::{CallFacts, Invocation, Lang};
use serde_json::Value;
use std::borrow::Cow;

/// Largest invocation accepted by `triage invoke` (Connect's own events are a few KB; a
/// Lambda payload is at most 6 MB). Larger input is refused before it is parsed.
pub const MAX_INVOCATION_BYTES: usize = 1024 * 1024;

/// Longest contact-data value kept in an event (ids, channel, method).
const MAX_FACT_CHARS: usize = 256;

/// A ContactFlowEvent that cannot be served: a Lambda error, nothing is written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InputError {
    #[error("the invocation is not JSON: {0}")]
    NotJson(String),
    #[error("the invocation is {0} bytes; at most {MAX_INVOCATION_BYTES} are accepted")]
    TooLarge(usize),
    #[error("the invocation is not a Connect ContactFlowEvent: {0}")]
    NotContactFlowEvent(String),
    #[error("the ContactFlowEvent has no usable Details.ContactData.ContactId: {0}")]
    NoContactId(String),
    #[error("the invocation is an Amazon Connect contact event, but not a usable one: {0}")]
    NotContactEvent(String),
    #[error("the invocation is an Amazon Lex V2 code hook event, but not a usable one: {0}")]
    NotLexHookEvent(String),
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
    /// What the event said of the call's audio (the service checks the stream's prefix and
    /// puts it in `invocation.audio`).
    pub media: media::Media,
}

impl TurnRequest {
    /// The invocation with the caller's hash filled in, for a call that starts now.
    pub fn starting_invocation(&self) -> Invocation {
        let mut inv = self.invocation.clone();
        inv.facts.caller_hash = self.caller.as_ref().map(CallerNumber::hash);
        inv
    }

    /// No turn token and no answer (absent or blank): how a call's first invocation reads
    /// (the flow has set no `turn` attribute yet). Only a hint ([`crate::app`]): a Connect
    /// retry of the first invocation reads the same.
    pub fn looks_like_a_first_invocation(&self) -> bool {
        let blank = |v: &Option<String>| v.as_deref().is_none_or(|t| t.trim().is_empty());
        blank(&self.invocation.turn) && blank(&self.invocation.answer)
    }
}

/// What the Lambda can be invoked with. Not boxed: the turn is the hot path, and the value
/// is taken apart at once.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Invoked {
    /// A ContactFlowEvent: one turn of a call.
    Turn(TurnRequest),
    /// An Amazon Connect contact event (EventBridge).
    ContactEvent(ContactEvent),
    /// The answers bot's code hook (Amazon Lex V2): see [`lex_hook`].
    LexHook(lex_hook::LexHookEvent),
}

/// Reads an invocation: a ContactFlowEvent on the hot path ([`parse_bytes`]); only when
/// that does not read, a Connect contact event or a Lex V2 code hook event. Anything else
/// keeps the ContactFlowEvent's error, which says what is wrong with it.
pub fn parse_invocation(
    bytes: &[u8],
    hasher: Option<&CallerHasher>,
) -> Result<Invoked, InputError> {
    match parse_bytes(bytes, hasher) {
        Ok(req) => Ok(Invoked::Turn(req)),
        Err(turn_error) => {
            let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
                return Err(turn_error);
            };
            if let Some(event) = parse_contact_event(&value) {
                return event.map(Invoked::ContactEvent);
            }
            match lex_hook::parse_lex_hook(&value) {
                Some(event) => event
                    .map(Invoked::LexHook)
                    .map_err(InputError::NotLexHookEvent),
                None => Err(turn_error),
            }
        }
    }
}

/// Parses raw bytes (the Lambda payload, or stdin of `triage invoke`).
pub fn parse_bytes(bytes: &[u8], hasher: Option<&CallerHasher>) -> Result<TurnRequest, InputError> {
    if bytes.len() > MAX_INVOCATION_BYTES {
        return Err(InputError::TooLarge(bytes.len()));
    }
    // One pass over the bytes, borrowing strings from them and skipping what is not read.
    match serde_json::from_slice::<wire::Obj<wire::ContactFlowEvent>>(bytes) {
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
    match <wire::Obj<wire::ContactFlowEvent> as serde::Deserialize>::deserialize(&value) {
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
    event: wire::ContactFlowEvent<'_>,
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
    let heard = speech::heard(
        params.intent.as_deref(),
        params.confidence.as_deref(),
        params.input_mode.as_deref(),
        params.dtmf.as_deref(),
    );
    let (answer, mode, confidence_pct) = match heard {
        Some(h) => (Some(h.answer), h.mode, h.confidence_pct),
        None => (
            params.answer.or(attrs.answer).map(Cow::into_owned),
            crate::domain::InputMode::Dtmf,
            None,
        ),
    };
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
    let media = media::read(data.media_streams.as_ref());
    Ok(TurnRequest {
        media,
        contact_id,
        unknown_lang: lang_raw.is_some() && lang.is_none(),
        caller,
        invocation: Invocation {
            turn,
            answer,
            mode,
            confidence_pct,
            audio: None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Reply;
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
        let big = vec![b' '; MAX_INVOCATION_BYTES + 1];
        assert_eq!(
            parse_bytes(&big, None),
            Err(InputError::TooLarge(MAX_INVOCATION_BYTES + 1))
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
        assert_eq!(end.iter().count(), 8, "{end:?}");
        assert_eq!(end.get("triage_outcome"), Some("error"));
        assert_eq!(end.get("triage_questionnaire"), Some("covid19@1"));
        assert_eq!(end.get("triage_summary"), Some(""));
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
    fn a_concluded_call_hands_off_its_outcome_score_and_yes_answers() {
        use crate::domain::Concluded;
        let q = crate::domain::Questionnaire::embedded();
        let end = |lang, yes| {
            Response::from(Reply::End {
                outcome: crate::domain::Outcome::Hospital,
                text: "Vaya al hospital",
                score: 55,
                call: Concluded {
                    questionnaire: q,
                    lang,
                    yes,
                },
            })
        };
        let es = end(Lang::Es, 0b111);
        assert_eq!(es.get("triage_outcome"), Some("hospital"));
        assert_eq!(es.get("triage_score"), Some("55"));
        assert_eq!(es.get("triage_questionnaire"), Some("covid19@1"));
        assert_eq!(
            es.get("triage_summary"),
            Some("contacto con un caso confirmado, dificultad al respirar, pérdida de gusto u olfato")
        );
        assert_eq!(es.get("turn"), None);
        let en = end(Lang::En, 0b100_0000);
        assert_eq!(en.get("triage_summary"), Some("headache"));
        assert_eq!(end(Lang::En, 0).get("triage_summary"), Some(""));
        // Keys stay alphabetical, as Connect's STRING_MAP is written.
        let keys: Vec<&str> = es.iter().map(|(k, _)| k).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn a_long_summary_is_cut_with_a_marker() {
        use crate::domain::{Concluded, CUT_MARK, MAX_SUMMARY_CHARS};
        let mut q = crate::domain::Questionnaire::embedded().clone();
        for question in &mut q.questions {
            question.label = Some(crate::domain::questionnaire::Localized {
                es: "síntoma con una descripción muy larga".into(),
                en: "a symptom with a very long description".into(),
            });
        }
        let q: &'static crate::domain::Questionnaire = Box::leak(Box::new(q));
        let summary = Concluded {
            questionnaire: q,
            lang: Lang::Es,
            yes: u64::MAX,
        }
        .summary();
        assert_eq!(summary.chars().count(), MAX_SUMMARY_CHARS);
        assert!(summary.ends_with(CUT_MARK), "{summary}");
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
