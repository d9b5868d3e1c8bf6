//! Events as DynamoDB JSON, and back, for the direct client (issue 14).
//!
//! The SDK path turns an event into an [`Item`] (`serde_dynamo` into a `HashMap` of the SDK's
//! `AttributeValue`s, each name and string allocated), adds the store's attributes, and the
//! request serialises that map again; a `Query` answer goes the other way through the same
//! map and a `serde_json::Value`. Here the event's own `Serialize` writes the item's DynamoDB
//! JSON straight into the request body, and a `Query` answer's items are read straight into
//! the `serde_json::Value` the event reader takes.
//!
//! The items are the ones [`DynamoStore::to_item`](super::DynamoStore::to_item) makes,
//! attribute for attribute (tests below, for every kind of event and for arbitrary text):
//! the event's fields as `serde_dynamo` maps them (strings `S`, numbers `N`, booleans
//! `BOOL`, `None` and unit `NULL`, sequences `L`, maps and structs `M`, unit variants by
//! name), plus `contact_id`, `expires_at` and, on `CallStarted`, `day_shard` and
//! `started_at` (module docs of [`super`]). DynamoDB JSON:
//! <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_AttributeValue.html>.

use super::{
    day_shard, DynamoOptions, ADDED_ATTRIBUTES, DAY_SHARD, EXPIRES_AT, PK, SK, STARTED_AT,
};
use crate::domain::{event_from_json, ContactId, Event, EventKind};
use crate::store::{StoreError, MAX_EVENT_BYTES};
use serde::ser::{self, Impossible, Serialize};
use serde_json::value::RawValue;

/// One event's item: its DynamoDB JSON (`{"name":{"S":"..."},...}`) and the size DynamoDB
/// counts (as [`super::item_size`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedItem {
    pub json: Vec<u8>,
    pub size: usize,
}

/// The item `event` of `contact_id` is stored as (the same attributes as
/// [`super::DynamoStore::to_item`]), refused over [`MAX_EVENT_BYTES`].
pub fn event_item(
    contact_id: &ContactId,
    event: &Event,
    opts: &DynamoOptions,
) -> Result<EncodedItem, StoreError> {
    let unwritable = |e: Error| {
        StoreError::Invalid(format!(
            "event {} of contact {contact_id} cannot be written as a DynamoDB item: {}",
            event.seq, e.0
        ))
    };
    let mut json = Vec::with_capacity(512);
    json.push(b'{');
    let mut size = event
        .serialize(ItemWriter { out: &mut json })
        .map_err(unwritable)?;
    let mut attribute = |out: &mut Vec<u8>, name: &str, value: Attr<'_>| {
        if out.len() > 1 {
            out.push(b',');
        }
        string(out, name);
        out.push(b':');
        size += name.len()
            + match value {
                Attr::S(s) => {
                    out.extend_from_slice(b"{\"S\":");
                    string(out, s);
                    out.push(b'}');
                    s.len()
                }
                Attr::N(n) => {
                    let mut digits = itoa::Buffer::new();
                    let digits = digits.format(n);
                    out.extend_from_slice(b"{\"N\":\"");
                    out.extend_from_slice(digits.as_bytes());
                    out.extend_from_slice(b"\"}");
                    digits.len() + 1
                }
            };
    };
    attribute(&mut json, PK, Attr::S(contact_id.as_str()));
    let expires = event
        .at
        .timestamp()
        .saturating_add(i64::from(opts.retention_days) * 86_400);
    attribute(&mut json, EXPIRES_AT, Attr::N(expires));
    if let EventKind::CallStarted { .. } = event.kind {
        let shard = day_shard(contact_id.as_str(), event.at, opts.day_shards);
        attribute(&mut json, DAY_SHARD, Attr::S(&shard));
        let at = event
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        attribute(&mut json, STARTED_AT, Attr::S(&at));
    }
    json.push(b'}');
    if size > MAX_EVENT_BYTES {
        return Err(StoreError::Invalid(format!(
            "event {} ({}) of contact {contact_id} is {size} bytes as a DynamoDB item; at most {MAX_EVENT_BYTES} are allowed",
            event.seq,
            event.kind.name()
        )));
    }
    Ok(EncodedItem { json, size })
}

enum Attr<'a> {
    S(&'a str),
    N(i64),
}

/// `"#seq":"seq"`-style expression attribute names, and the conditions of an append.
const SEQ_NAMES: &str = r##""ExpressionAttributeNames":{"#seq":"seq"}"##;

/// The body of a `PutItem` of `item` if its key is free
/// (<https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_PutItem.html>).
pub fn put_new_body(out: &mut Vec<u8>, table: &str, item: &EncodedItem) {
    out.extend_from_slice(b"{\"TableName\":");
    string(out, table);
    out.extend_from_slice(b",\"Item\":");
    out.extend_from_slice(&item.json);
    out.extend_from_slice(b",\"ConditionExpression\":\"attribute_not_exists(#seq)\",");
    out.extend_from_slice(SEQ_NAMES.as_bytes());
    out.push(b'}');
}

/// The body of a `TransactWriteItems`: a `ConditionCheck` that item `(contact_id, check)`
/// exists (when given), then a `Put` of each item if its key is free; `token` is the
/// idempotency token kept over the attempts
/// (<https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html>).
pub fn transact_body(
    out: &mut Vec<u8>,
    table: &str,
    contact_id: &str,
    check: Option<u64>,
    items: &[EncodedItem],
    token: &str,
) {
    out.extend_from_slice(b"{\"TransactItems\":[");
    let mut first = true;
    if let Some(seq) = check {
        out.extend_from_slice(b"{\"ConditionCheck\":{\"TableName\":");
        string(out, table);
        out.extend_from_slice(b",\"Key\":{");
        string(out, PK);
        out.extend_from_slice(b":{\"S\":");
        string(out, contact_id);
        out.extend_from_slice(b"},");
        string(out, SK);
        out.extend_from_slice(b":{\"N\":\"");
        out.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
        out.extend_from_slice(b"\"}},\"ConditionExpression\":\"attribute_exists(#seq)\",");
        out.extend_from_slice(SEQ_NAMES.as_bytes());
        out.extend_from_slice(b"}}");
        first = false;
    }
    for item in items {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(b"{\"Put\":");
        put_new_body(out, table, item);
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"ClientRequestToken\":");
    string(out, token);
    out.push(b'}');
}

/// The body of one page of the consistent `Query` of partition `contact_id`, from `start`
/// (the previous page's `LastEvaluatedKey`, as DynamoDB sent it)
/// (<https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Query.html>).
pub fn query_body(
    out: &mut Vec<u8>,
    table: &str,
    contact_id: &str,
    limit: Option<i32>,
    start: Option<&RawValue>,
) {
    out.extend_from_slice(b"{\"TableName\":");
    string(out, table);
    out.extend_from_slice(
        b",\"ConsistentRead\":true,\"KeyConditionExpression\":\"#pk = :pk\",\
          \"ExpressionAttributeNames\":{\"#pk\":",
    );
    string(out, PK);
    out.extend_from_slice(b"},\"ExpressionAttributeValues\":{\":pk\":{\"S\":");
    string(out, contact_id);
    out.extend_from_slice(b"}}");
    if let Some(limit) = limit {
        out.extend_from_slice(b",\"Limit\":");
        out.extend_from_slice(itoa::Buffer::new().format(limit).as_bytes());
    }
    if let Some(start) = start {
        out.extend_from_slice(b",\"ExclusiveStartKey\":");
        out.extend_from_slice(start.get().as_bytes());
    }
    out.push(b'}');
}

/// One page of a `Query` answer: its events (or why an item is not one) and the key to go
/// on from, if any.
pub struct Page {
    pub items: Vec<Result<Event, StoreError>>,
    pub last: Option<Box<RawValue>>,
}

/// Reads a `Query` answer whose items are events. An answer that is not a `Query` result
/// is an error; an item that is not an event is [`StoreError::Corrupt`] in its place, as
/// [`super::DynamoStore::from_item`] says it.
pub fn query_page(bytes: &[u8]) -> Result<Page, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Raw<'a> {
        #[serde(rename = "Items", default)]
        items: Vec<ItemValue>,
        #[serde(rename = "LastEvaluatedKey", borrow, default)]
        last: Option<&'a RawValue>,
    }
    let raw: Raw<'_> = serde_json::from_slice(bytes)?;
    let last = match raw.last {
        Some(k) if !matches!(k.get().trim(), "{}" | "null") => Some(k.to_owned()),
        _ => None,
    };
    Ok(Page {
        items: raw.items.into_iter().map(ItemValue::into_event).collect(),
        last,
    })
}

/// An item read as the JSON its attributes stand for (`{"S":"a"}` as `"a"`, `{"N":"1"}` as
/// `1`...), as `serde_dynamo` reads it, or why it cannot be.
struct ItemValue {
    map: serde_json::Map<String, serde_json::Value>,
    /// The first attribute value with no JSON form (a binary), if any.
    unreadable: Option<String>,
}

impl ItemValue {
    fn into_event(mut self) -> Result<Event, StoreError> {
        let key = {
            let s = |k: &str| match self.map.get(k) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Number(n)) => n.to_string(),
                _ => "?".into(),
            };
            format!("({}, {})", s(PK), s(SK))
        };
        if let Some(why) = self.unreadable {
            return Err(StoreError::Corrupt(format!(
                "item {key} is not JSON-like: {why}"
            )));
        }
        for a in ADDED_ATTRIBUTES {
            self.map.remove(a);
        }
        event_from_json(serde_json::Value::Object(self.map))
            .map_err(|e| StoreError::Corrupt(format!("item {key}: {e}")))
    }
}

impl<'de> serde::Deserialize<'de> for ItemValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = ItemValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a DynamoDB item")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<ItemValue, A::Error> {
                let mut map = serde_json::Map::new();
                let mut unreadable = None;
                while let Some(name) = m.next_key::<String>()? {
                    match m.next_value::<AttrValue>()?.0 {
                        Ok(v) => {
                            map.insert(name, v);
                        }
                        Err(why) => {
                            unreadable.get_or_insert(format!("attribute {name}: {why}"));
                        }
                    }
                }
                Ok(ItemValue { map, unreadable })
            }
        }
        d.deserialize_map(Visit)
    }
}

/// One attribute value read as JSON, or why it has no JSON form.
struct AttrValue(Result<serde_json::Value, String>);

impl<'de> serde::Deserialize<'de> for AttrValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = AttrValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a DynamoDB attribute value such as {\"S\": \"text\"}")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<AttrValue, A::Error> {
                use serde::de::Error;
                use serde_json::Value;
                let kind: String = m
                    .next_key()?
                    .ok_or_else(|| A::Error::custom("an attribute value with no type"))?;
                let value = match kind.as_str() {
                    "S" => Ok(Value::String(m.next_value()?)),
                    "N" => number(&m.next_value::<String>()?),
                    "BOOL" => Ok(Value::Bool(m.next_value()?)),
                    "NULL" => {
                        m.next_value::<serde::de::IgnoredAny>()?;
                        Ok(Value::Null)
                    }
                    "M" => {
                        let inner: ItemValue = m.next_value()?;
                        match inner.unreadable {
                            Some(why) => Err(why),
                            None => Ok(Value::Object(inner.map)),
                        }
                    }
                    "L" => m
                        .next_value::<Vec<AttrValue>>()?
                        .into_iter()
                        .map(|v| v.0)
                        .collect::<Result<Vec<_>, _>>()
                        .map(Value::Array),
                    "SS" => Ok(Value::Array(
                        m.next_value::<Vec<String>>()?
                            .into_iter()
                            .map(Value::String)
                            .collect(),
                    )),
                    "NS" => m
                        .next_value::<Vec<String>>()?
                        .iter()
                        .map(|n| number(n))
                        .collect::<Result<Vec<_>, _>>()
                        .map(Value::Array),
                    "B" | "BS" => {
                        m.next_value::<serde::de::IgnoredAny>()?;
                        Err(format!("a binary ({kind}) value has no JSON form"))
                    }
                    other => {
                        return Err(A::Error::custom(format!(
                            "unknown attribute value type {other:?}"
                        )))
                    }
                };
                if m.next_key::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(A::Error::custom("an attribute value with two types"));
                }
                Ok(AttrValue(value))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// A DynamoDB number as `serde_dynamo` reads it: an `i64`, else a `u64`, else an `f64`.
fn number(n: &str) -> Result<serde_json::Value, String> {
    if let Ok(i) = n.parse::<i64>() {
        return Ok(i.into());
    }
    if let Ok(u) = n.parse::<u64>() {
        return Ok(u.into());
    }
    n.parse::<f64>()
        .map(|f| {
            serde_json::Number::from_f64(f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null)
        })
        .map_err(|e| format!("{n:?} is not a number: {e}"))
}

/// A JSON string of `s`, escaped as `serde_json` escapes it.
fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Why a value cannot be written as DynamoDB JSON.
#[derive(Debug)]
pub struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

// ---- the item: a map of attributes ------------------------------------------------------

/// Writes a struct or map as an item's attributes (`"name":value,...`, no braces),
/// returning their size.
struct ItemWriter<'a> {
    out: &'a mut Vec<u8>,
}

/// Methods of a serde `Serializer` that refuse what they are given, saying `$why`.
macro_rules! refuse {
    ($why:expr => $($f:ident($($t:ty),*) -> $r:ty),* $(,)?) => {
        $(fn $f(self, $(_: $t),*) -> Result<$r, Error> {
            Err(Error($why.into()))
        })*
    };
}

const NOT_AN_ITEM: &str = "an item must be a struct or a map";
const NOT_A_NAME: &str = "an attribute name must be a string";

impl<'a> ser::Serializer for ItemWriter<'a> {
    type Ok = usize;
    type Error = Error;
    type SerializeSeq = Impossible<usize, Error>;
    type SerializeTuple = Impossible<usize, Error>;
    type SerializeTupleStruct = Impossible<usize, Error>;
    type SerializeTupleVariant = Impossible<usize, Error>;
    type SerializeMap = Nested<'a>;
    type SerializeStruct = Nested<'a>;
    type SerializeStructVariant = Impossible<usize, Error>;

    refuse!(NOT_AN_ITEM =>
        serialize_bool(bool) -> usize,
        serialize_i8(i8) -> usize,
        serialize_i16(i16) -> usize,
        serialize_i32(i32) -> usize,
        serialize_i64(i64) -> usize,
        serialize_u8(u8) -> usize,
        serialize_u16(u16) -> usize,
        serialize_u32(u32) -> usize,
        serialize_u64(u64) -> usize,
        serialize_f32(f32) -> usize,
        serialize_f64(f64) -> usize,
        serialize_char(char) -> usize,
        serialize_str(&str) -> usize,
        serialize_bytes(&[u8]) -> usize,
        serialize_none() -> usize,
        serialize_unit() -> usize,
        serialize_unit_struct(&'static str) -> usize,
        serialize_unit_variant(&'static str, u32, &'static str) -> usize,
        serialize_seq(Option<usize>) -> Self::SerializeSeq,
        serialize_tuple(usize) -> Self::SerializeTuple,
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct,
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant,
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant,
    );

    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<usize, Error> {
        v.serialize(self)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<usize, Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<usize, Error> {
        Err(Error(NOT_AN_ITEM.into()))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Nested<'a>, Error> {
        Ok(Nested::item(self.out))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Nested<'a>, Error> {
        Ok(Nested::item(self.out))
    }
}

// ---- attribute names: strings only -------------------------------------------------------

struct KeyWriter;

impl ser::Serializer for KeyWriter {
    type Ok = String;
    type Error = Error;
    type SerializeSeq = Impossible<String, Error>;
    type SerializeTuple = Impossible<String, Error>;
    type SerializeTupleStruct = Impossible<String, Error>;
    type SerializeTupleVariant = Impossible<String, Error>;
    type SerializeMap = Impossible<String, Error>;
    type SerializeStruct = Impossible<String, Error>;
    type SerializeStructVariant = Impossible<String, Error>;

    fn serialize_str(self, v: &str) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_char(self, v: char) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<String, Error> {
        Ok(variant.to_string())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<String, Error> {
        v.serialize(self)
    }
    refuse!(NOT_A_NAME =>
        serialize_bool(bool) -> String,
        serialize_i8(i8) -> String,
        serialize_i16(i16) -> String,
        serialize_i32(i32) -> String,
        serialize_i64(i64) -> String,
        serialize_u8(u8) -> String,
        serialize_u16(u16) -> String,
        serialize_u32(u32) -> String,
        serialize_u64(u64) -> String,
        serialize_f32(f32) -> String,
        serialize_f64(f64) -> String,
        serialize_bytes(&[u8]) -> String,
        serialize_none() -> String,
        serialize_unit() -> String,
        serialize_unit_struct(&'static str) -> String,
        serialize_seq(Option<usize>) -> Self::SerializeSeq,
        serialize_tuple(usize) -> Self::SerializeTuple,
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct,
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant,
        serialize_map(Option<usize>) -> Self::SerializeMap,
        serialize_struct(&'static str, usize) -> Self::SerializeStruct,
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant,
    );
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<String, Error> {
        Err(Error(NOT_A_NAME.into()))
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String, Error> {
        Err(Error(NOT_A_NAME.into()))
    }
}

// ---- attribute values --------------------------------------------------------------------

/// Writes one attribute value (`{"S":"..."}`...), returning the size DynamoDB counts.
struct ValueWriter<'a> {
    out: &'a mut Vec<u8>,
}

impl ValueWriter<'_> {
    fn number(self, digits: &str) -> Result<usize, Error> {
        self.out.extend_from_slice(b"{\"N\":\"");
        self.out.extend_from_slice(digits.as_bytes());
        self.out.extend_from_slice(b"\"}");
        Ok(digits.len() + 1)
    }
    fn text(self, s: &str) -> Result<usize, Error> {
        self.out.extend_from_slice(b"{\"S\":");
        string(self.out, s);
        self.out.push(b'}');
        Ok(s.len())
    }
    fn null(self) -> Result<usize, Error> {
        self.out.extend_from_slice(b"{\"NULL\":true}");
        Ok(1)
    }
}

/// A list's elements, or a map's entries: `{"L":[...]}`, `{"M":{...}}`; with `wrap`, the
/// whole inside `{"M":{"variant":...}}`. Or an item's attributes, unwrapped.
struct Nested<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
    size: usize,
    key: Option<String>,
    /// An item's attributes: no braces, no overhead, and no attribute the store adds.
    item: bool,
    /// Closing bytes: `]}` or `}}`, plus `}}` when wrapped in a variant.
    close: &'static [u8],
    /// Added to the size at the end: the variant's name and overhead.
    wrap_size: Option<usize>,
}

impl<'a> Nested<'a> {
    fn open(out: &'a mut Vec<u8>, list: bool, variant: Option<&'static str>) -> Nested<'a> {
        if let Some(v) = variant {
            out.extend_from_slice(b"{\"M\":{");
            string(out, v);
            out.push(b':');
        }
        out.extend_from_slice(if list { b"{\"L\":[" } else { b"{\"M\":{" });
        let close: &'static [u8] = match (list, variant.is_some()) {
            (true, false) => b"]}",
            (false, false) => b"}}",
            (true, true) => b"]}}}",
            (false, true) => b"}}}}",
        };
        Nested {
            out,
            first: true,
            size: 3,
            key: None,
            item: false,
            close,
            // A variant's map: 3 of overhead, 1 for its one entry, the name.
            wrap_size: variant.map(|v| 3 + 1 + v.len()),
        }
    }
    /// An item's attributes, written after its opening brace.
    fn item(out: &'a mut Vec<u8>) -> Nested<'a> {
        Nested {
            out,
            first: true,
            size: 0,
            key: None,
            item: true,
            close: b"",
            wrap_size: None,
        }
    }
    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.size += 1 + v.serialize(ValueWriter { out: self.out })?;
        Ok(())
    }
    fn entry<T: Serialize + ?Sized>(&mut self, name: &str, v: &T) -> Result<(), Error> {
        if self.item && ADDED_ATTRIBUTES.contains(&name) {
            return Err(Error(format!(
                "its field {name:?} is an attribute the store adds"
            )));
        }
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        string(self.out, name);
        self.out.push(b':');
        // A map counts 1 per entry; an item's attributes count their names and values only.
        self.size +=
            usize::from(!self.item) + name.len() + v.serialize(ValueWriter { out: self.out })?;
        Ok(())
    }
    fn close(self) -> Result<usize, Error> {
        self.out.extend_from_slice(self.close);
        Ok(self.size + self.wrap_size.unwrap_or(0))
    }
}

/// The four list-like serde traits, each an element at a time.
macro_rules! list_like {
    ($($trait:ident::$method:ident),*) => {
        $(impl ser::$trait for Nested<'_> {
            type Ok = usize;
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
                self.element(v)
            }
            fn end(self) -> Result<usize, Error> {
                self.close()
            }
        })*
    };
}

list_like!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Nested<'_> {
    type Ok = usize;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.key = Some(key.serialize(KeyWriter)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        let key = self
            .key
            .take()
            .ok_or_else(|| Error("a map value without its key".into()))?;
        self.entry(&key, v)
    }
    fn end(self) -> Result<usize, Error> {
        self.close()
    }
}

/// The two struct-like serde traits, each a named entry at a time.
macro_rules! struct_like {
    ($($trait:ident),*) => {
        $(impl ser::$trait for Nested<'_> {
            type Ok = usize;
            type Error = Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                v: &T,
            ) -> Result<(), Error> {
                self.entry(key, v)
            }
            fn end(self) -> Result<usize, Error> {
                self.close()
            }
        })*
    };
}

struct_like!(SerializeStruct, SerializeStructVariant);

/// Integers as `{"N":"digits"}`.
macro_rules! integers {
    ($($f:ident($t:ty)),* $(,)?) => {
        $(fn $f(self, v: $t) -> Result<usize, Error> {
            self.number(itoa::Buffer::new().format(v))
        })*
    };
}

impl<'a> ser::Serializer for ValueWriter<'a> {
    type Ok = usize;
    type Error = Error;
    type SerializeSeq = Nested<'a>;
    type SerializeTuple = Nested<'a>;
    type SerializeTupleStruct = Nested<'a>;
    type SerializeTupleVariant = Nested<'a>;
    type SerializeMap = Nested<'a>;
    type SerializeStruct = Nested<'a>;
    type SerializeStructVariant = Nested<'a>;

    fn serialize_bool(self, v: bool) -> Result<usize, Error> {
        self.out.extend_from_slice(if v {
            b"{\"BOOL\":true}"
        } else {
            b"{\"BOOL\":false}"
        });
        Ok(1)
    }
    integers!(
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
    );
    // As serde_dynamo: a float's `Display`.
    fn serialize_f32(self, v: f32) -> Result<usize, Error> {
        self.number(&v.to_string())
    }
    fn serialize_f64(self, v: f64) -> Result<usize, Error> {
        self.number(&v.to_string())
    }
    fn serialize_char(self, v: char) -> Result<usize, Error> {
        self.text(v.encode_utf8(&mut [0u8; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<usize, Error> {
        self.text(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<usize, Error> {
        self.out.extend_from_slice(b"{\"B\":\"");
        self.out
            .extend_from_slice(aws_smithy_types::base64::encode(v).as_bytes());
        self.out.extend_from_slice(b"\"}");
        Ok(v.len())
    }
    fn serialize_none(self) -> Result<usize, Error> {
        self.null()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<usize, Error> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<usize, Error> {
        self.null()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<usize, Error> {
        self.null()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<usize, Error> {
        self.text(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<usize, Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<usize, Error> {
        self.out.extend_from_slice(b"{\"M\":{");
        string(self.out, variant);
        self.out.push(b':');
        let inner = v.serialize(ValueWriter { out: self.out })?;
        self.out.extend_from_slice(b"}}");
        Ok(3 + 1 + variant.len() + inner)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Nested<'a>, Error> {
        Ok(Nested::open(self.out, true, None))
    }
    fn serialize_tuple(self, _: usize) -> Result<Nested<'a>, Error> {
        Ok(Nested::open(self.out, true, None))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Nested<'a>, Error> {
        Ok(Nested::open(self.out, true, None))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Nested<'a>, Error> {
        Ok(Nested::open(self.out, true, Some(variant)))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Nested<'a>, Error> {
        Ok(Nested::open(self.out, false, None))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Nested<'a>, Error> {
        Ok(Nested::open(self.out, false, None))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Nested<'a>, Error> {
        Ok(Nested::open(self.out, false, Some(variant)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{event_to_item, item_size, Item};
    use super::*;
    use crate::domain::{CallFacts, InputMode, Lang, Outcome};
    use aws_sdk_dynamodb::types::AttributeValue;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn envelope(seq: u64, kind: EventKind) -> Event {
        Event {
            seq,
            event_id: uuid::Uuid::from_u128(
                0x0190_0000_0000_7000_8000_0000_0000_0000 + u128::from(seq),
            ),
            at: chrono::Utc
                .timestamp_millis_opt(1_764_633_600_123 + seq as i64)
                .single()
                .unwrap_or_default(),
            schema: 2,
            turn: seq.saturating_sub(1),
            kind,
        }
    }

    /// Every kind of event, with every optional field present and absent.
    fn every_kind(text: &str) -> Vec<Event> {
        let t = || text.to_string();
        let kinds = vec![
            EventKind::CallStarted {
                questionnaire: t(),
                questionnaire_version: 3,
                lang: Lang::En,
                facts: CallFacts {
                    channel: Some(t()),
                    initiation_method: Some("INBOUND".into()),
                    initial_contact_id: Some(t()),
                    previous_contact_id: Some("p".into()),
                    caller_hash: Some(t()),
                },
            },
            EventKind::CallStarted {
                questionnaire: "covid".into(),
                questionnaire_version: 1,
                lang: Lang::Es,
                facts: CallFacts::default(),
            },
            EventKind::AnswerRecorded {
                question: t(),
                yes: true,
                raw: t(),
                mode: InputMode::Speech,
                confidence_pct: Some(87),
            },
            EventKind::AnswerRecorded {
                question: "q".into(),
                yes: false,
                raw: "0".into(),
                mode: InputMode::Dtmf,
                confidence_pct: None,
            },
            EventKind::InputRejected {
                question: t(),
                raw: t(),
                raw_len: u64::MAX,
            },
            EventKind::CallExited { question: t() },
            EventKind::TriageConcluded {
                outcome: Outcome::Hospital,
                score: 55,
                reason: Some(t()),
            },
            EventKind::TriageConcluded {
                outcome: Outcome::Clear,
                score: 0,
                reason: None,
            },
            EventKind::AudioStreamed {
                stream_arn: t(),
                start_fragment: "91343852333181432392682062607743920146264440287".into(),
                stream_started_at: chrono::Utc.timestamp_millis_opt(1_764_633_600_999).single(),
            },
            EventKind::AudioStreamed {
                stream_arn: "arn".into(),
                start_fragment: "1".into(),
                stream_started_at: None,
            },
            EventKind::CallEnded {
                ended_at: chrono::Utc
                    .timestamp_millis_opt(1_764_633_700_000)
                    .single()
                    .unwrap_or_default(),
                disconnect_reason: Some(t()),
            },
            EventKind::CallEnded {
                ended_at: chrono::Utc
                    .timestamp_millis_opt(1_764_633_700_000)
                    .single()
                    .unwrap_or_default(),
                disconnect_reason: None,
            },
        ];
        kinds
            .into_iter()
            .enumerate()
            .map(|(i, k)| envelope(i as u64 + 1, k))
            .collect()
    }

    /// An item read back from DynamoDB JSON (as the SDK's types, to compare with `to_item`).
    fn read_item(json: &[u8]) -> Item {
        fn av(v: &serde_json::Value) -> AttributeValue {
            let (kind, inner) = v
                .as_object()
                .and_then(|o| o.iter().next())
                .expect("a typed value");
            match kind.as_str() {
                "S" => AttributeValue::S(inner.as_str().expect("S").into()),
                "N" => AttributeValue::N(inner.as_str().expect("N").into()),
                "BOOL" => AttributeValue::Bool(inner.as_bool().expect("BOOL")),
                "NULL" => AttributeValue::Null(true),
                "M" => AttributeValue::M(
                    inner
                        .as_object()
                        .expect("M")
                        .iter()
                        .map(|(k, v)| (k.clone(), av(v)))
                        .collect(),
                ),
                "L" => AttributeValue::L(inner.as_array().expect("L").iter().map(av).collect()),
                other => panic!("unexpected type {other}"),
            }
        }
        let v: serde_json::Value = serde_json::from_slice(json).expect("JSON");
        v.as_object()
            .expect("an object")
            .iter()
            .map(|(k, v)| (k.clone(), av(v)))
            .collect()
    }

    fn check_alike(text: &str) {
        let cid = ContactId::parse("4a573372-1f28-4e26-b97b-0123456789ab").expect("id");
        let opts = DynamoOptions::default();
        for event in every_kind(text) {
            let ours = event_item(&cid, &event, &opts).expect("encoded");
            let theirs = event_to_item(&cid, &event, &opts).expect("to_item");
            assert_eq!(read_item(&ours.json), theirs, "{}", event.kind.name());
            assert_eq!(ours.size, item_size(&theirs), "{}", event.kind.name());
        }
    }

    #[test]
    fn items_are_the_ones_to_item_makes() {
        check_alike("plain");
        check_alike("quotes \" and \\ backslashes, \n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}, é ñ 漢字 🙂");
        check_alike("");
    }

    proptest! {
        #[test]
        fn items_of_any_text_are_the_ones_to_item_makes(text in "\\PC{0,40}|[\\x00-\\x7f]{0,40}") {
            check_alike(&text);
        }
    }

    #[test]
    fn query_pages_read_back_the_events_written() {
        let cid = ContactId::parse("4a573372-1f28-4e26-b97b-0123456789ab").expect("id");
        let events = every_kind("x \" y");
        let items: Vec<String> = events
            .iter()
            .map(|e| {
                String::from_utf8(
                    event_item(&cid, e, &DynamoOptions::default())
                        .expect("encoded")
                        .json,
                )
                .expect("utf-8")
            })
            .collect();
        let answer = format!(
            r#"{{"Count":{},"Items":[{}],"ScannedCount":{},"LastEvaluatedKey":{{"contact_id":{{"S":"c"}},"seq":{{"N":"12"}}}}}}"#,
            items.len(),
            items.join(","),
            items.len()
        );
        let page = query_page(answer.as_bytes()).expect("a page");
        let read: Vec<Event> = page
            .items
            .into_iter()
            .map(|r| r.expect("an event"))
            .collect();
        assert_eq!(read, events);
        assert_eq!(
            page.last.map(|k| k.get().to_string()).as_deref(),
            Some(r#"{"contact_id":{"S":"c"},"seq":{"N":"12"}}"#)
        );
        // The last page: no key, or an empty one.
        for last in ["", r#","LastEvaluatedKey":{}"#] {
            let page = query_page(format!(r#"{{"Items":[]{last}}}"#).as_bytes()).expect("page");
            assert!(page.items.is_empty() && page.last.is_none());
        }
    }

    #[test]
    fn items_that_are_not_events_are_corrupt_in_place() {
        let answer = br#"{"Items":[
            {"contact_id":{"S":"c"},"seq":{"N":"1"},"type":{"S":"Nope"}},
            {"contact_id":{"S":"c"},"seq":{"N":"2"},"blob":{"B":"aGk="}},
            {"contact_id":{"S":"c"},"seq":{"N":"3"},"n":{"N":"one"}}
        ]}"#;
        let page = query_page(answer).expect("a page");
        assert_eq!(page.items.len(), 3);
        for (item, key) in page.items.iter().zip(["(c, 1)", "(c, 2)", "(c, 3)"]) {
            match item {
                Err(StoreError::Corrupt(why)) => assert!(why.contains(key), "{why}"),
                other => panic!("expected a corrupt item, got {other:?}"),
            }
        }
        // What is not a Query answer at all is an error of the page.
        for bad in [
            &br#"{"Items":[{"x":{}}]}"#[..],
            br#"{"Items":[{"x":{"S":"a","N":"1"}}]}"#,
            br#"{"Items":[{"x":{"Q":1}}]}"#,
            b"<html>",
        ] {
            assert!(query_page(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn numbers_read_as_serde_dynamo_reads_them() {
        assert_eq!(number("-3"), Ok(serde_json::json!(-3)));
        assert_eq!(
            number("18446744073709551615"),
            Ok(serde_json::json!(u64::MAX))
        );
        assert_eq!(number("2.5"), Ok(serde_json::json!(2.5)));
        assert!(number("x").is_err());
    }

    #[test]
    fn request_bodies_name_the_table_key_and_conditions() {
        let cid = ContactId::parse("4a573372-1f28-4e26-b97b-0123456789ab").expect("id");
        let events = every_kind("t");
        let items: Vec<EncodedItem> = events[2..4]
            .iter()
            .map(|e| event_item(&cid, e, &DynamoOptions::default()).expect("encoded"))
            .collect();
        let item_json = |i: usize| -> serde_json::Value {
            serde_json::from_slice(&items[i].json).expect("item JSON")
        };
        let mut body = Vec::new();
        put_new_body(&mut body, "tbl", &items[0]);
        let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(
            v,
            serde_json::json!({
                "TableName": "tbl", "Item": item_json(0),
                "ConditionExpression": "attribute_not_exists(#seq)",
                "ExpressionAttributeNames": {"#seq": "seq"}
            })
        );
        let mut body = Vec::new();
        transact_body(&mut body, "tbl", cid.as_str(), Some(2), &items, "tok");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        let put = |i: usize| {
            serde_json::json!({"Put": {
                "TableName": "tbl", "Item": item_json(i),
                "ConditionExpression": "attribute_not_exists(#seq)",
                "ExpressionAttributeNames": {"#seq": "seq"}
            }})
        };
        assert_eq!(
            v,
            serde_json::json!({
                "TransactItems": [
                    {"ConditionCheck": {
                        "TableName": "tbl",
                        "Key": {"contact_id": {"S": cid.as_str()}, "seq": {"N": "2"}},
                        "ConditionExpression": "attribute_exists(#seq)",
                        "ExpressionAttributeNames": {"#seq": "seq"}
                    }},
                    put(0), put(1)
                ],
                "ClientRequestToken": "tok"
            })
        );
        let mut body = Vec::new();
        transact_body(&mut body, "tbl", cid.as_str(), None, &items[..1], "tok");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(v["TransactItems"], serde_json::json!([put(0)]));
        let start = RawValue::from_string(r#"{"seq":{"N":"7"}}"#.into()).expect("raw");
        let mut body = Vec::new();
        query_body(&mut body, "tbl", "c-1", Some(7), Some(&start));
        let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(
            v,
            serde_json::json!({
                "TableName": "tbl", "ConsistentRead": true,
                "KeyConditionExpression": "#pk = :pk",
                "ExpressionAttributeNames": {"#pk": "contact_id"},
                "ExpressionAttributeValues": {":pk": {"S": "c-1"}},
                "Limit": 7, "ExclusiveStartKey": {"seq": {"N": "7"}}
            })
        );
    }

    #[test]
    fn an_event_too_large_is_refused() {
        let cid = ContactId::parse("4a573372-1f28-4e26-b97b-0123456789ab").expect("id");
        let big = envelope(
            1,
            EventKind::CallExited {
                question: "x".repeat(MAX_EVENT_BYTES),
            },
        );
        match event_item(&cid, &big, &DynamoOptions::default()) {
            Err(StoreError::Invalid(why)) => assert!(why.contains("at most"), "{why}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
