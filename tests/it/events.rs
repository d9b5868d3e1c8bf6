//! ContactFlowEvents as Amazon Connect sends them.

use serde_json::{json, Value};

pub const CALLER: &str = "+34600111222";

/// A voice contact's event with these Parameters (the flow's Lambda invocation attributes).
pub fn contact_event(contact_id: &str, params: &[(&str, &str)]) -> Value {
    let params: serde_json::Map<String, Value> = params
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    json!({
        "Name": "ContactFlowEvent",
        "Details": {
            "ContactData": {
                "Attributes": {},
                "Channel": "VOICE",
                "ContactId": contact_id,
                "CustomerEndpoint": {"Address": CALLER, "Type": "TELEPHONE_NUMBER"},
                "InitialContactId": contact_id,
                "InitiationMethod": "INBOUND",
                "InstanceARN": "arn:aws:connect:eu-west-1:000000000000:instance/00000000-0000-0000-0000-000000000000",
                "PreviousContactId": contact_id,
                "Queue": null,
                "SystemEndpoint": {"Address": "+34900000000", "Type": "TELEPHONE_NUMBER"}
            },
            "Parameters": params
        }
    })
}

pub fn new_contact_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub fn field<'a>(response: &'a Value, key: &str) -> &'a str {
    response[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key:?} in {response}"))
}
