//! `triage audio CONTACT_ID --out call.wav`: a call's audio from Kinesis Video Streams as a
//! WAV (issue 17, point 5). The call's `AudioStreamed` event says where it is (stream ARN,
//! start fragment); [`kvs`] asks `GetDataEndpoint` then `GetMedia` from there; [`mkv`]
//! reads the Matroska stream as it arrives; [`tracks`] keeps this call's fragments of the
//! two tracks, placed by time; [`wav`] writes them, left the caller (`AUDIO_FROM_CUSTOMER`),
//! right the line (`AUDIO_TO_CUSTOMER`), 8 kHz 16-bit, through a temporary file beside the
//! target that is renamed onto it.
//!
//! Where the reading stops:
//! - a fragment whose `ContactId` tag names another contact (Connect reuses a stream for
//!   the next call; GetMedia does not stop at the call's end): the normal end of a call
//!   whose stream was reused;
//! - the stream ends (GetMedia's body closes);
//! - no bytes for [`FetchOptions::idle`] (10 s by default): the normal end of a call whose
//!   stream nobody used since (GetMedia keeps waiting for more), said on stderr.
//!
//! A stream cut in the middle of an element (the body ended, or went idle, inside one) is
//! an error and nothing is written, unless `--partial` is given: then the fragments read
//! whole (and the whole blocks of the cut one) are written, and the summary says it was cut.
//! An error chunk (`AWS_KINESISVIDEO_ERROR_CODE`) is always an error.
//!
//! Unverified (no real Connect stream was read; the fixtures follow the one third-party
//! capture in docs/research/kinesis-video-media-streams.md, section 5):
//! - the CodecID Connect gives its tracks (`A_AAC` in that capture, over PCM): ignored here;
//! - whether `FRAGMENT_NUMBER` with `AfterFragmentNumber` returns the start fragment itself
//!   or begins after it (the StartSelector page's wording changed): if after, the first
//!   fragment (about a second) of the call is not in the WAV;
//! - GetMedia's `Content-Type` for Connect's streams: not checked;
//! - whether Connect's Segments and Clusters have unknown sizes: both are read;
//! - the `ContactId` tag's place (after the Cluster in that capture): read anywhere in the
//!   fragment.

pub mod kvs;
pub mod mkv;
pub mod tracks;
pub mod wav;

use crate::domain::{ContactId, Event, EventKind};
use bytes::Bytes;
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

/// Why a call's audio could not be written. One line each, saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("call {0} has no audio: streaming was off for it (the stack's AudioStreaming parameter, and the flow's Start media streaming block before the Lambda's first turn); `triage trail {0}` shows its events")]
    NoAudio(ContactId),
    #[error(transparent)]
    Mkv(#[from] mkv::MkvError),
    #[error("Kinesis Video Streams sent error {code} in the media stream{}: {}{}", after_fragment.as_deref().map(|f| format!(" after fragment {f}")).unwrap_or_default(), error_meaning(code), error_hint(code))]
    StreamError {
        code: String,
        after_fragment: Option<String>,
    },
    #[error("{0}")]
    Kvs(String),
    #[error("the media stream broke after {read} bytes: {why}; try again (or keep what was read with --partial)")]
    Broken { read: u64, why: String },
    #[error("the media stream is not 16-bit PCM: {0}; is it Connect's media stream?")]
    NotPcm(String),
    #[error("the call's audio does not line up: {0}")]
    Timeline(String),
    #[error("the stream's first fragment after {start} is contact {other}'s, not {contact}'s: the stream was reused and this call's audio is not there (past its retention, or the recorded start fragment is wrong)")]
    OtherContact {
        start: String,
        other: String,
        contact: ContactId,
    },
    #[error("no audio of call {contact} in the stream after fragment {start} ({fragments} fragments read, no block of AUDIO_FROM_CUSTOMER or AUDIO_TO_CUSTOMER{ignored}): nothing written")]
    Empty {
        contact: ContactId,
        start: String,
        fragments: u64,
        ignored: String,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// What GetMedia's error codes mean (the GetMedia page, "Errors" of the Payload:
/// https://docs.aws.amazon.com/kinesisvideostreams/latest/dg/API_dataplane_GetMedia.html).
pub fn error_meaning(code: &str) -> &'static str {
    match code {
        "3002" => "error writing to the stream",
        "4000" => "the requested fragment is not found",
        "4500" => "access denied for the stream's KMS key",
        "4501" => "the stream's KMS key is disabled",
        "4502" => "validation error on the stream's KMS key",
        "4503" => "the KMS key of the stream is unavailable",
        "4504" => "invalid usage of the stream's KMS key",
        "4505" => "invalid state of the stream's KMS key",
        "4506" => "the stream's KMS key is not found",
        "5000" => "internal error",
        _ => "an error code the GetMedia documentation does not list",
    }
}

fn error_hint(code: &str) -> &'static str {
    match code {
        "4000" => " (the call's audio is past AudioRetentionHours, or the start fragment is wrong)",
        c if c.starts_with("45") => " (use credentials allowed kms:Decrypt on the stack's key through Kinesis Video: the analysts' policy with audio on)",
        "3002" | "5000" => " (try again)",
        _ => "",
    }
}

/// Where a call's audio is: its first `AudioStreamed` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRef {
    pub stream_arn: String,
    pub start_fragment: String,
    /// More than one `AudioStreamed` (never written by the Lambda): how many.
    pub recorded: usize,
}

/// The call's stream, from its events.
pub fn stream_of(contact: &ContactId, events: &[Event]) -> Result<StreamRef, AudioError> {
    let mut found = events.iter().filter_map(|e| match &e.kind {
        EventKind::AudioStreamed {
            stream_arn,
            start_fragment,
            ..
        } => Some((stream_arn, start_fragment)),
        _ => None,
    });
    let (arn, fragment) = found
        .next()
        .ok_or_else(|| AudioError::NoAudio(contact.clone()))?;
    Ok(StreamRef {
        stream_arn: arn.clone(),
        start_fragment: fragment.clone(),
        recorded: 1 + found.count(),
    })
}

/// How a fetch reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchOptions {
    /// No bytes for this long: the stream is taken to have ended.
    pub idle: Duration,
    /// Write what was read of a stream cut mid-element, instead of failing.
    pub partial: bool,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            idle: Duration::from_secs(DEFAULT_IDLE_SECONDS),
            partial: false,
        }
    }
}

/// Default idle limit (`--idle-seconds`). Connect sends a fragment about every second
/// while a call streams; 10 s of nothing is a stream nobody writes to.
pub const DEFAULT_IDLE_SECONDS: u64 = 10;

/// How the read of the stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// A fragment of this other contact came next.
    OtherContact(String),
    /// GetMedia's body ended.
    StreamEnded,
    /// No bytes for this long.
    Idle(Duration),
}

/// Progress of a fetch, for stderr.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub seconds: f64,
    pub bytes: u64,
    pub fragments: u64,
}

/// A source of the stream's bytes: GetMedia's body, or a test's.
pub trait Chunks {
    /// The next bytes; `None` at the end; an error when the transfer broke.
    fn next_chunk(&mut self) -> impl Future<Output = Option<Result<Bytes, String>>> + Send;
}

impl Chunks for aws_smithy_types::byte_stream::ByteStream {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, String>> {
        self.next()
            .await
            .map(|r| r.map_err(|e| aws_sdk_kinesisvideo::error::DisplayErrorContext(e).to_string()))
    }
}

/// What was read of a call's audio.
#[derive(Debug)]
pub struct Fetched {
    pub audio: tracks::CallAudio,
    pub end: End,
    pub bytes: u64,
    /// The stream was cut mid-element and `--partial` kept what was read: the error.
    pub cut: Option<mkv::MkvError>,
}

/// Reads the stream from `source` until it ends ([`End`]), keeping `contact`'s audio.
/// `progress` is called about every two seconds of a long read.
pub async fn read_stream<C: Chunks>(
    source: &mut C,
    contact: &ContactId,
    start_fragment: &str,
    opts: FetchOptions,
    mut progress: impl FnMut(Progress),
) -> Result<Fetched, AudioError> {
    let mut demux = mkv::Demuxer::new();
    let mut audio = tracks::CallAudio::new(contact.as_str());
    let started = Instant::now();
    let mut last_progress = started;
    let end = loop {
        let chunk = match tokio::time::timeout(opts.idle, source.next_chunk()).await {
            Err(_) => break End::Idle(opts.idle),
            Ok(None) => break End::StreamEnded,
            Ok(Some(Err(why))) => {
                if opts.partial {
                    tracing::warn!(%why, "the media stream broke; keeping what was read (--partial)");
                    break End::StreamEnded;
                }
                return Err(AudioError::Broken {
                    read: demux.read(),
                    why,
                });
            }
            Ok(Some(Ok(chunk))) => chunk,
        };
        if demux.push(&chunk, &mut audio)? == mkv::Flow::Stop {
            break match audio.stop.clone() {
                Some(tracks::Stop::OtherContact(other)) => End::OtherContact(other),
                None => End::StreamEnded,
            };
        }
        if last_progress.elapsed() >= Duration::from_secs(2) {
            last_progress = Instant::now();
            progress(Progress {
                seconds: audio.seconds(),
                bytes: demux.read(),
                fragments: audio.fragments,
            });
        }
    };
    let cut = match demux.finish() {
        Ok(()) => None,
        Err(e) if opts.partial => Some(e),
        Err(e) => {
            return Err(match end {
                End::Idle(idle) => AudioError::Mkv(mkv::MkvError::Truncated {
                    read: demux.read(),
                    inside: match e {
                        mkv::MkvError::Truncated { inside, .. } => format!(
                            "{inside}, and then nothing came for {} s (keep what was read with --partial)",
                            idle.as_secs()
                        ),
                        other => other.to_string(),
                    },
                }),
                _ => AudioError::Mkv(e),
            })
        }
    };
    audio.finish()?;
    if audio.fragments == 0 {
        if let End::OtherContact(other) = &end {
            return Err(AudioError::OtherContact {
                start: start_fragment.to_string(),
                other: other.clone(),
                contact: contact.clone(),
            });
        }
    }
    if audio.caller.pcm.is_empty() && audio.line.pcm.is_empty() {
        return Err(AudioError::Empty {
            contact: contact.clone(),
            start: start_fragment.to_string(),
            fragments: audio.fragments,
            ignored: if audio.ignored_tracks.is_empty() {
                String::new()
            } else {
                format!("; tracks named {}", audio.ignored_tracks.join(", "))
            },
        });
    }
    Ok(Fetched {
        bytes: demux.read(),
        audio,
        end,
        cut,
    })
}

/// What was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub caller_seconds: f64,
    pub line_seconds: f64,
    pub seconds: f64,
    pub file_bytes: u64,
    pub stream_bytes: u64,
    pub fragments: u64,
}

/// Writes the fetched audio to `out` (never a half file: see [`wav::write`]).
pub fn write_wav(fetched: &Fetched, out: &Path) -> Result<Written, AudioError> {
    let a = &fetched.audio;
    let file_bytes =
        wav::write(out, &a.caller.pcm, &a.line.pcm).map_err(|source| AudioError::Write {
            path: out.display().to_string(),
            source,
        })?;
    Ok(Written {
        caller_seconds: a.caller.seconds(),
        line_seconds: a.line.seconds(),
        seconds: a.seconds(),
        file_bytes,
        stream_bytes: fetched.bytes,
        fragments: a.fragments,
    })
}

/// The whole fetch: GetDataEndpoint, GetMedia, the read of the stream.
pub async fn fetch(
    contact: &ContactId,
    stream: &StreamRef,
    opts: FetchOptions,
    progress: impl FnMut(Progress),
) -> Result<Fetched, AudioError> {
    let mut media = kvs::get_media(&stream.stream_arn, &stream.start_fragment).await?;
    tracing::info!(
        content_type = media.content_type.as_deref().unwrap_or("-"),
        endpoint = %media.endpoint,
        "GetMedia answered"
    );
    read_stream(
        &mut media.body,
        contact,
        &stream.start_fragment,
        opts,
        progress,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    struct Script(VecDeque<Option<Result<Bytes, String>>>);

    impl Chunks for Script {
        fn next_chunk(&mut self) -> impl Future<Output = Option<Result<Bytes, String>>> + Send {
            let next = self.0.pop_front();
            async move {
                match next {
                    Some(n) => n,
                    // Nothing more, and the stream stays open.
                    None => std::future::pending().await,
                }
            }
        }
    }

    fn contact() -> ContactId {
        ContactId::parse("0b1c5a0e-0000-4000-8000-000000000001").expect("id")
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_stream_ends_the_read_and_a_cut_one_is_an_error() {
        let opts = FetchOptions {
            idle: Duration::from_secs(3),
            partial: false,
        };
        // Nothing at all, then idle: no audio.
        let mut s = Script(VecDeque::new());
        let err = read_stream(&mut s, &contact(), "1", opts, |_| {})
            .await
            .expect_err("empty");
        assert!(err.to_string().contains("no audio of call"), "{err}");
        // Half an element header, then idle: cut.
        let mut s = Script(VecDeque::from([Some(Ok(Bytes::from_static(&[
            0x1A, 0x45,
        ])))]));
        let err = read_stream(&mut s, &contact(), "1", opts, |_| {})
            .await
            .expect_err("cut");
        let msg = err.to_string();
        assert!(
            msg.contains("was cut") && msg.contains("nothing came for 3 s"),
            "{msg}"
        );
        // A broken transfer.
        let mut s = Script(VecDeque::from([Some(Err("reset by peer".to_string()))]));
        let err = read_stream(&mut s, &contact(), "1", opts, |_| {})
            .await
            .expect_err("broken");
        assert!(
            err.to_string()
                .contains("broke after 0 bytes: reset by peer"),
            "{err}"
        );
    }

    #[test]
    fn the_stream_is_the_first_audio_streamed_event() {
        assert!(matches!(
            stream_of(&contact(), &[]),
            Err(AudioError::NoAudio(_))
        ));
        let msg = AudioError::NoAudio(contact()).to_string();
        assert!(msg.contains("has no audio: streaming was off"), "{msg}");
        let err = AudioError::StreamError {
            code: "4501".into(),
            after_fragment: Some("7".into()),
        };
        assert_eq!(
            err.to_string(),
            "Kinesis Video Streams sent error 4501 in the media stream after fragment 7: the stream's KMS key is disabled (use credentials allowed kms:Decrypt on the stack's key through Kinesis Video: the analysts' policy with audio on)"
        );
    }
}
