//! Amazon Connect's contact events, as EventBridge delivers them to a Lambda target: an
//! envelope (`detail-type` `Amazon Connect Contact Event`, `source` `aws.connect`, `time`)
//! around `detail` (`eventType`, `contactId`, `instanceArn`, `disconnectTimestamp`, ...).
//! See <https://docs.aws.amazon.com/connect/latest/adminguide/contact-events.html> and the
//! samples in `tests/fixtures/contact-events/`. Only what recording a hang-up needs is read;
//! every other field is ignored, as the page asks of consumers.

use super::InputError;
use crate::domain::ContactId;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// The `detail-type` of Connect's contact events.
pub const DETAIL_TYPE: &str = "Amazon Connect Contact Event";

/// Longest disconnect reason kept (Connect's are short codes such as `CUSTOMER_DISCONNECT`).
const MAX_REASON_CHARS: usize = 64;

/// One contact event, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactEvent {
    pub contact_id: ContactId,
    /// `detail.eventType`: `DISCONNECTED`, `INITIATED`, ...
    pub event_type: String,
    /// `detail.instanceArn`, when given.
    pub instance_arn: Option<String>,
    /// When the contact disconnected: `detail.disconnectTimestamp`, else the envelope's
    /// `time`.
    pub at: Option<DateTime<Utc>>,
    /// `detail.disconnectReason`, when given.
    pub disconnect_reason: Option<String>,
}

/// `Some` when `value` is a Connect contact event (by its `detail-type`), checked; `None`
/// for anything else, which is then not this reader's to judge.
pub fn parse_contact_event(value: &Value) -> Option<Result<ContactEvent, InputError>> {
    let object = value.as_object()?;
    if object.get("detail-type").and_then(Value::as_str) != Some(DETAIL_TYPE) {
        return None;
    }
    let bad = |why: &str| InputError::NotContactEvent(why.to_string());
    let Some(detail) = object.get("detail").and_then(Value::as_object) else {
        return Some(Err(bad("no detail object")));
    };
    // The page's samples spell keys both camelCase and PascalCase: take either.
    let field = |key: &str| {
        detail.get(key).or_else(|| {
            let mut upper = key.to_string();
            if let Some(first) = upper.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            detail.get(&upper)
        })
    };
    let text = |key: &str| field(key).and_then(Value::as_str);
    let contact_id = match text("contactId") {
        None => return Some(Err(bad("detail.contactId is missing or not a string"))),
        Some(id) => match ContactId::parse(id) {
            Ok(id) => id,
            Err(e) => return Some(Err(bad(&format!("detail.contactId: {e}")))),
        },
    };
    let Some(event_type) = text("eventType") else {
        return Some(Err(bad("detail.eventType is missing or not a string")));
    };
    let time = |raw: Option<&str>| {
        raw.and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let at = time(text("disconnectTimestamp"))
        .or_else(|| time(object.get("time").and_then(Value::as_str)));
    // Documented only for outbound campaigns, as a code; the page does not say whether it
    // is a string or `{"Code": ...}` (the API's DisconnectReason): take both.
    let disconnect_reason = match field("disconnectReason") {
        Some(Value::String(r)) => Some(r.as_str()),
        Some(Value::Object(o)) => o
            .get("Code")
            .or_else(|| o.get("code"))
            .and_then(Value::as_str),
        _ => None,
    }
    .filter(|r| !r.is_empty())
    .map(|r| r.chars().take(MAX_REASON_CHARS).collect());
    Some(Ok(ContactEvent {
        contact_id,
        event_type: event_type.to_string(),
        instance_arn: text("instanceArn").map(str::to_string),
        at,
        disconnect_reason,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(detail: Value) -> Value {
        json!({
            "version": "0",
            "id": "6f5e1f9c-0000-0000-0000-000000000000",
            "detail-type": DETAIL_TYPE,
            "source": "aws.connect",
            "account": "111122223333",
            "time": "2026-03-02T10:00:05Z",
            "region": "us-east-1",
            "resources": [],
            "detail": detail
        })
    }

    #[test]
    fn a_disconnect_is_read() {
        let e = parse_contact_event(&event(json!({
            "eventType": "DISCONNECTED",
            "contactId": "4a573372-1f28-4e26-b97b-000000000101",
            "instanceArn": "arn:aws:connect:us-east-1:111122223333:instance/i",
            "disconnectTimestamp": "2026-03-02T10:00:04.123Z",
            "disconnectReason": "CUSTOMER_DISCONNECT",
            "somethingNew": {"ignored": true}
        })))
        .expect("a contact event")
        .expect("valid");
        assert_eq!(e.event_type, "DISCONNECTED");
        assert_eq!(e.disconnect_reason.as_deref(), Some("CUSTOMER_DISCONNECT"));
        assert_eq!(e.at.map(|t| t.timestamp_millis()), Some(1_772_445_604_123));
    }

    #[test]
    fn without_a_disconnect_time_the_envelope_time_is_used() {
        let e = parse_contact_event(&event(json!({
            "eventType": "DISCONNECTED",
            "contactId": "c-1"
        })))
        .expect("a contact event")
        .expect("valid");
        assert_eq!(e.at.map(|t| t.timestamp()), Some(1_772_445_605));
        assert_eq!(e.disconnect_reason, None);
    }

    #[test]
    fn bad_contact_events_are_clear_errors_and_others_are_not_ours() {
        assert!(parse_contact_event(&json!({"Details": {}})).is_none());
        assert!(parse_contact_event(&json!([1])).is_none());
        let err = parse_contact_event(&event(json!({"eventType": "DISCONNECTED"})))
            .expect("a contact event")
            .unwrap_err();
        assert!(err.to_string().contains("contactId"), "{err}");
        let err = parse_contact_event(&json!({"detail-type": DETAIL_TYPE}))
            .expect("a contact event")
            .unwrap_err();
        assert!(err.to_string().contains("no detail"), "{err}");
    }
}
