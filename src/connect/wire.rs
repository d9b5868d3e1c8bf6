//! The ContactFlowEvent as it arrives, reduced to what a turn reads. Strings are borrowed
//! from the input where they hold no escapes. Leniencies are those of Connect itself:
//! endpoints are null for chats and tasks; attribute and parameter values may be numbers,
//! booleans or null (numbers and booleans count as their text, null as absent; nested
//! values are ignored); every other field is skipped unread.
use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Number;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

#[derive(Deserialize)]
pub struct ContactFlowEvent<'a> {
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
    /// Where the call's audio is streamed (src/connect/media.rs); absent unless the flow
    /// started media streaming.
    #[serde(rename = "MediaStreams", default)]
    pub media_streams: Option<serde_json::Value>,
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
                        "intent" => &mut p.intent,
                        "confidence" => &mut p.confidence,
                        "input_mode" => &mut p.input_mode,
                        "dtmf" => &mut p.dtmf,
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
    /// The answers bot's path (src/connect/speech.rs): `$.Lex.IntentName`,
    /// `$.Lex.IntentConfidence.Score`, how the caller answered, the keys pressed.
    pub intent: Option<Cow<'a, str>>,
    pub confidence: Option<Cow<'a, str>>,
    pub input_mode: Option<Cow<'a, str>>,
    pub dtmf: Option<Cow<'a, str>>,
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
