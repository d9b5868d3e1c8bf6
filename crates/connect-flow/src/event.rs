//! The contact a flow runs for, and the `ContactFlowEvent` Amazon Connect sends a Lambda
//! function about it.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::lex::LexBot;

/// An Amazon Connect instance ARN for local runs, in no real account: what
/// [`voice_event`] puts in `InstanceARN`.
pub const LOCAL_INSTANCE_ARN: &str =
    "arn:aws:connect:local:000000000000:instance/00000000-0000-4000-8000-000000000000";

/// The number a [`voice_event`] caller dialled (its `SystemEndpoint`).
pub const LOCAL_SYSTEM_NUMBER: &str = "+34900000000";

/// The contact (the call) the flow runs for, as Connect describes it to a Lambda.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// `ContactId` (also sent as `InitialContactId` and `PreviousContactId`).
    pub contact_id: String,
    /// The caller's number (E.164), `None` when withheld or on non-voice channels.
    pub customer_number: Option<String>,
    /// The number the caller dialled.
    pub system_number: Option<String>,
    /// `VOICE` for a phone call; `GetParticipantInput` takes its error branch otherwise.
    pub channel: String,
    /// The ARN of the Connect instance.
    pub instance_arn: String,
    /// User-defined contact attributes the call starts with (e.g. `lang` set by an
    /// upstream flow).
    pub attributes: BTreeMap<String, String>,
    /// The contact center as this contact meets it (hours, queue capacity): what a real
    /// instance decides and a simulation is told.
    pub center: CenterState,
    /// The Amazon Lex V2 bots the instance has, by alias ARN
    /// (`ConnectParticipantWithLexBot`'s `LexV2Bot.AliasArn`).
    pub bots: BTreeMap<String, LexBot>,
    /// Where the instance streams this contact's audio once
    /// `UpdateContactMediaStreamingBehavior` enables it; `None`: the instance has no media
    /// streams storage, and enabling takes the error branch.
    pub media_stream: Option<MediaStream>,
}

/// The Kinesis video stream a contact's audio goes to, as the Lambda later reads it in
/// `Details.ContactData.MediaStreams.Customer.Audio`
/// (<https://docs.aws.amazon.com/connect/latest/adminguide/media-streaming-attributes.html>).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaStream {
    /// `StreamARN`.
    pub stream_arn: String,
    /// `StartFragmentNumber` (a decimal string; real ones have ~47 digits).
    pub start_fragment: String,
    /// `StartTimestamp`, epoch milliseconds.
    pub start_ms: i64,
}

/// What the flow has set on the contact that Connect reports in later `ContactFlowEvent`s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactData {
    /// `LanguageCode`, once `UpdateContactData` set it.
    pub language_code: Option<String>,
    /// The audio stream, once streaming started; with the stop time once it stopped.
    pub media: Option<(MediaStream, Option<i64>)>,
}

/// The state of the contact center a simulated contact meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CenterState {
    /// `CheckHoursOfOperation` finds the hours open (its `True` condition).
    pub hours_open: bool,
    /// `TransferContactToQueue` finds the queue at capacity (its `QueueAtCapacity` error).
    pub queue_at_capacity: bool,
}

impl Default for CenterState {
    fn default() -> Self {
        CenterState {
            hours_open: true,
            queue_at_capacity: false,
        }
    }
}

impl Contact {
    /// An inbound voice contact with no known numbers and no attributes.
    pub fn voice(contact_id: impl Into<String>, instance_arn: impl Into<String>) -> Contact {
        Contact {
            contact_id: contact_id.into(),
            customer_number: None,
            system_number: None,
            channel: "VOICE".to_string(),
            instance_arn: instance_arn.into(),
            attributes: BTreeMap::new(),
            center: CenterState::default(),
            bots: BTreeMap::new(),
            media_stream: None,
        }
    }

    /// The contact with the caller's number (E.164) known.
    pub fn with_customer_number(mut self, number: impl Into<String>) -> Contact {
        self.customer_number = Some(number.into());
        self
    }

    /// The contact with the dialled number (E.164) known.
    pub fn with_system_number(mut self, number: impl Into<String>) -> Contact {
        self.system_number = Some(number.into());
        self
    }

    /// The contact starting with this user-defined attribute.
    pub fn with_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Contact {
        self.attributes.insert(key.into(), value.into());
        self
    }

    /// The contact's instance has `bot` behind the alias `alias_arn`.
    pub fn with_bot(mut self, alias_arn: impl Into<String>, bot: LexBot) -> Contact {
        self.bots.insert(alias_arn.into(), bot);
        self
    }

    /// The contact's instance streams audio to `stream` when the flow enables it.
    pub fn with_media_stream(mut self, stream: MediaStream) -> Contact {
        self.media_stream = Some(stream);
        self
    }
}

/// The `ContactFlowEvent` that Amazon Connect sends to a Lambda function invoked from a
/// flow, in the shape documented under "Function input" in
/// <https://docs.aws.amazon.com/connect/latest/adminguide/connect-lambda-functions.html>:
///
/// ```text
/// {"Name": "ContactFlowEvent",
///  "Details": {"ContactData": {"Attributes", "Channel", "ContactId", "CustomerEndpoint",
///                              "InitialContactId", "InitiationMethod", "InstanceARN",
///                              "PreviousContactId", "Queue", "SystemEndpoint"},
///              "Parameters": {...}}}
/// ```
///
/// `attributes` are the contact's user-defined attributes at the time of the invocation
/// (the [`Contact::attributes`] it started with, as changed by UpdateContactAttributes);
/// `queue_arn` is the queue set by UpdateContactTargetQueue, if any (sent as
/// `{"ARN", "Name": null}`, else `Queue` is `null`); `parameters` are the invoking action's
/// `LambdaInvocationAttributes`, resolved. The contact is an inbound one (`INBOUND`) that
/// starts its chain (`InitialContactId` and `PreviousContactId` are its `ContactId`); a
/// known number is a `{"Address", "Type": "TELEPHONE_NUMBER"}` endpoint, an unknown one
/// `null`. This is the event [`run`](crate::run) sends to its [`Lambda`](crate::Lambda).
pub fn contact_flow_event(
    contact: &Contact,
    attributes: &BTreeMap<String, String>,
    queue_arn: Option<&str>,
    parameters: Map<String, Value>,
) -> Value {
    contact_flow_event_with(
        contact,
        attributes,
        queue_arn,
        &ContactData::default(),
        parameters,
    )
}

/// [`contact_flow_event`] with what the flow has set on the contact so far: its
/// `LanguageCode` (as the example event of
/// <https://docs.aws.amazon.com/connect/latest/adminguide/connect-lambda-functions.html>
/// carries it) and, once streaming started, `MediaStreams.Customer.Audio` (`StreamARN`,
/// `StartFragmentNumber`, `StartTimestamp`, and `StopTimestamp` once stopped; every value a
/// string, as on that page). Left out while unset (whether Connect sends them empty or not
/// at all is not documented).
pub fn contact_flow_event_with(
    contact: &Contact,
    attributes: &BTreeMap<String, String>,
    queue_arn: Option<&str>,
    data: &ContactData,
    parameters: Map<String, Value>,
) -> Value {
    let endpoint = |number: &Option<String>| match number {
        Some(address) => json!({"Address": address, "Type": "TELEPHONE_NUMBER"}),
        None => Value::Null,
    };
    let queue = match queue_arn {
        Some(arn) => json!({"ARN": arn, "Name": Value::Null}),
        None => Value::Null,
    };
    let mut contact_data = json!({
        "Attributes": attributes,
        "Channel": contact.channel,
        "ContactId": contact.contact_id,
        "CustomerEndpoint": endpoint(&contact.customer_number),
        "InitialContactId": contact.contact_id,
        "InitiationMethod": "INBOUND",
        "InstanceARN": contact.instance_arn,
        "PreviousContactId": contact.contact_id,
        "Queue": queue,
        "SystemEndpoint": endpoint(&contact.system_number),
    });
    if let Value::Object(fields) = &mut contact_data {
        if let Some(code) = &data.language_code {
            fields.insert("LanguageCode".into(), Value::String(code.clone()));
        }
        if let Some((stream, stopped)) = &data.media {
            let mut audio = json!({
                "StreamARN": stream.stream_arn,
                "StartFragmentNumber": stream.start_fragment,
                "StartTimestamp": stream.start_ms.to_string(),
            });
            if let (Some(stop), Value::Object(a)) = (stopped, &mut audio) {
                a.insert("StopTimestamp".into(), Value::String(stop.to_string()));
            }
            fields.insert("MediaStreams".into(), json!({"Customer": {"Audio": audio}}));
        }
    }
    json!({
        "Name": "ContactFlowEvent",
        "Details": {
            "ContactData": contact_data,
            "Parameters": parameters,
        }
    })
}

/// The [`contact_flow_event`] of an inbound voice call from `caller` (E.164) with these
/// string `parameters` (as a flow's `LambdaInvocationAttributes` would send them), to
/// [`LOCAL_SYSTEM_NUMBER`] in the [`LOCAL_INSTANCE_ARN`] instance, with no contact
/// attributes and no queue. For synthetic callers, tests and benchmarks.
///
/// ```
/// let event = connect_flow::voice_event("c-1", "+34600000000", &[("answer", "1")]);
/// assert_eq!(event["Details"]["ContactData"]["CustomerEndpoint"]["Address"], "+34600000000");
/// assert_eq!(event["Details"]["Parameters"]["answer"], "1");
/// ```
pub fn voice_event(contact_id: &str, caller: &str, parameters: &[(&str, &str)]) -> Value {
    let contact = Contact::voice(contact_id, LOCAL_INSTANCE_ARN)
        .with_customer_number(caller)
        .with_system_number(LOCAL_SYSTEM_NUMBER);
    let parameters = parameters
        .iter()
        .map(|(key, value)| (key.to_string(), Value::String(value.to_string())))
        .collect();
    contact_flow_event(&contact, &contact.attributes, None, parameters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::connect::ConnectEvent;

    #[test]
    fn the_event_reads_as_the_lambda_runtime_type_for_connect_events() {
        let contact = Contact::voice("c-1", "arn:aws:connect:eu-west-1:1:instance/i")
            .with_customer_number("+34600000000")
            .with_system_number("+34900000000")
            .with_attribute("lang", "es");
        let parameters = Map::from_iter([("turn".to_string(), Value::from("t1"))]);
        let event = contact_flow_event(
            &contact,
            &contact.attributes,
            Some("arn:aws:connect:eu-west-1:1:instance/i/queue/q"),
            parameters,
        );
        let typed: ConnectEvent = serde_json::from_value(event.clone()).expect("a ConnectEvent");
        let data = &typed.details.contact_data;
        assert_eq!(typed.name.as_deref(), Some("ContactFlowEvent"));
        assert_eq!(data.contact_id.as_deref(), Some("c-1"));
        assert_eq!(data.initial_contact_id.as_deref(), Some("c-1"));
        assert_eq!(data.previous_contact_id.as_deref(), Some("c-1"));
        assert_eq!(data.channel.as_deref(), Some("VOICE"));
        assert_eq!(data.initiation_method.as_deref(), Some("INBOUND"));
        assert_eq!(data.attributes.get("lang").map(String::as_str), Some("es"));
        let queue = data.queue.as_ref().expect("a queue");
        assert!(queue
            .arn
            .as_deref()
            .is_some_and(|arn| arn.ends_with("/queue/q")));
        let customer = &data.customer_endpoint;
        assert_eq!(customer.address.as_deref(), Some("+34600000000"));
        assert_eq!(customer.type_.as_deref(), Some("TELEPHONE_NUMBER"));
        assert_eq!(
            typed.details.parameters.get("turn").map(String::as_str),
            Some("t1")
        );
    }

    #[test]
    fn a_voice_event_is_the_contact_flow_event_of_a_voice_contact() {
        let event = voice_event("c-2", "+34600111222", &[("answer", "1"), ("turn", "")]);
        let contact = Contact::voice("c-2", LOCAL_INSTANCE_ARN)
            .with_customer_number("+34600111222")
            .with_system_number(LOCAL_SYSTEM_NUMBER);
        let parameters = Map::from_iter([
            ("answer".to_string(), Value::from("1")),
            ("turn".to_string(), Value::from("")),
        ]);
        assert_eq!(
            event,
            contact_flow_event(&contact, &BTreeMap::new(), None, parameters)
        );
        let data = &event["Details"]["ContactData"];
        assert_eq!(data["Attributes"], json!({}));
        assert_eq!(data["Queue"], Value::Null);
        assert_eq!(
            data["SystemEndpoint"],
            json!({"Address": LOCAL_SYSTEM_NUMBER, "Type": "TELEPHONE_NUMBER"})
        );
        assert_eq!(data["InstanceARN"], LOCAL_INSTANCE_ARN);
        let typed: Result<ConnectEvent, _> = serde_json::from_value(event);
        assert!(typed.is_ok(), "{typed:?}");
    }
}
