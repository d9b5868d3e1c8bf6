//! Where a call's audio is: `Details.ContactData.MediaStreams.Customer.Audio` of the
//! ContactFlowEvent, present once the flow ran `UpdateContactMediaStreamingBehavior`
//! (https://docs.aws.amazon.com/connect/latest/adminguide/connect-lambda-functions.html:
//! `StreamARN`, `StartFragmentNumber`, `StartTimestamp` as strings, the timestamp in epoch
//! milliseconds; attribute names in
//! https://docs.aws.amazon.com/connect/latest/adminguide/connect-attrib-list.html, "Media
//! streams attributes"). Read leniently: a missing block (streaming off), a null `Audio`,
//! or anything malformed is no audio, with the reason for the logs; never an error of the
//! turn.

use crate::domain::AudioStream;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Longest stream ARN taken (KVS ARNs are far shorter).
const MAX_ARN_CHARS: usize = 1024;
/// Longest fragment number taken (they are decimal strings of about 47 digits).
const MAX_FRAGMENT_CHARS: usize = 128;

/// What the event said of the audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Media {
    /// No `MediaStreams` block, or no audio in it: streaming is off for this call.
    None,
    /// The caller's audio stream.
    Audio(AudioStream),
    /// A block that does not read: why (logged, nothing recorded).
    Malformed(String),
}

/// Reads the `MediaStreams` value of `ContactData`, if present.
pub fn read(v: Option<&Value>) -> Media {
    let Some(v) = v else {
        return Media::None;
    };
    let audio = match v {
        Value::Null => return Media::None,
        Value::Object(_) => match v.pointer("/Customer/Audio") {
            None | Some(Value::Null) => return Media::None,
            Some(a @ Value::Object(_)) => a,
            Some(_) => {
                return Media::Malformed("MediaStreams.Customer.Audio is not an object".into())
            }
        },
        _ => return Media::Malformed("MediaStreams is not an object".into()),
    };
    let text = |key: &str| match audio.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(_)) => Ok(None),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(format!("MediaStreams.Customer.Audio.{key} is not a string")),
    };
    let (arn, fragment, started) = match (
        text("StreamARN"),
        text("StartFragmentNumber"),
        text("StartTimestamp"),
    ) {
        (Ok(a), Ok(f), Ok(t)) => (a, f, t),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return Media::Malformed(e),
    };
    let Some(arn) = arn else {
        return Media::Malformed("MediaStreams.Customer.Audio has no StreamARN".into());
    };
    if arn.chars().count() > MAX_ARN_CHARS
        || !arn.starts_with("arn:")
        || !arn.contains(":kinesisvideo:")
        || !arn.contains(":stream/")
    {
        return Media::Malformed("StreamARN is not a Kinesis video stream ARN".into());
    }
    let Some(fragment) = fragment else {
        return Media::Malformed("MediaStreams.Customer.Audio has no StartFragmentNumber".into());
    };
    if fragment.len() > MAX_FRAGMENT_CHARS || !fragment.bytes().all(|b| b.is_ascii_digit()) {
        return Media::Malformed("StartFragmentNumber is not a decimal fragment number".into());
    }
    let stream_started_at = match started {
        None => None,
        Some(t) => match t
            .parse::<i64>()
            .ok()
            .and_then(DateTime::<Utc>::from_timestamp_millis)
        {
            Some(t) => Some(t),
            None => return Media::Malformed("StartTimestamp is not epoch milliseconds".into()),
        },
    };
    Media::Audio(AudioStream {
        stream_arn: arn,
        start_fragment: fragment,
        stream_started_at,
    })
}

/// Whether `arn` names a stream of `prefix` (the instance's media streams storage prefix:
/// Connect names its streams `PREFIX-connect-...`).
pub fn has_prefix(arn: &str, prefix: &str) -> bool {
    arn.split_once(":stream/")
        .is_some_and(|(_, name)| name.starts_with(&format!("{prefix}-")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:kinesisvideo:eu-west-1:123456789012:stream/connect-triage-connect-line-contact-0b1c/1571360125131";

    #[test]
    fn the_audio_block_reads_as_connect_sends_it() {
        let raw = format!(
            r#"{{"Customer":{{"Audio":{{"StartFragmentNumber":"91343852333181432392682062622220590765191907586","StartTimestamp":"1571360125131","StreamARN":"{ARN}"}}}}}}"#
        );
        let v: Value = serde_json::from_str(&raw).expect("JSON");
        let Media::Audio(a) = read(Some(&v)) else {
            panic!("{:?}", read(Some(&v)))
        };
        assert_eq!(a.stream_arn, ARN);
        assert_eq!(a.start_fragment.len(), 47);
        assert_eq!(
            a.stream_started_at.map(|t| t.timestamp_millis()),
            Some(1_571_360_125_131)
        );
        assert!(has_prefix(&a.stream_arn, "connect-triage"));
        assert!(!has_prefix(&a.stream_arn, "other"));
    }

    #[test]
    fn anything_else_is_no_audio_or_a_reason() {
        assert_eq!(read(None), Media::None);
        let json = |s: &str| serde_json::from_str::<Value>(s).expect("JSON");
        assert_eq!(read(Some(&Value::Null)), Media::None);
        assert_eq!(
            read(Some(&json(r#"{"Customer":{"Audio":null}}"#))),
            Media::None
        );
        for bad in [
            "[1]",
            "\"x\"",
            r#"{"Customer":{"Audio":[]}}"#,
            r#"{"Customer":{"Audio":{"StartFragmentNumber":"1"}}}"#,
            r#"{"Customer":{"Audio":{"StreamARN":"arn:aws:s3:::b","StartFragmentNumber":"1"}}}"#,
            &format!(
                r#"{{"Customer":{{"Audio":{{"StreamARN":"{ARN}","StartFragmentNumber":"12x"}}}}}}"#
            ),
            &format!(
                r#"{{"Customer":{{"Audio":{{"StreamARN":"{ARN}","StartFragmentNumber":"1","StartTimestamp":"soon"}}}}}}"#
            ),
            r#"{"Customer":{"Audio":{"StreamARN":{"x":1},"StartFragmentNumber":"1"}}}"#,
        ] {
            assert!(
                matches!(read(Some(&json(bad))), Media::Malformed(_)),
                "{bad}"
            );
        }
    }
}
