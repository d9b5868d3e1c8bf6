//! One call's two tracks, gathered from the stream's items ([`super::mkv::Item`]).
//!
//! - **Which track is which**: by `Name` (Connect's `AUDIO_FROM_CUSTOMER`, what the caller
//!   says, and `AUDIO_TO_CUSTOMER`, what the caller hears: the line's prompts and the agent;
//!   https://docs.aws.amazon.com/connect/latest/adminguide/access-media-stream-data.html).
//!   `Track_audio/L16` or an empty name is the caller's, as AWS's own consumer sample reads
//!   older streams (amazon-connect-realtime-transcription, `KVSUtils.java`). `CodecID` is
//!   not looked at: one capture shows Connect labels the tracks `A_AAC` over 16-bit PCM.
//! - **What a block holds**: signed 16-bit little-endian mono PCM at 8 kHz (the same page:
//!   "16-bit signed PCM Mono format"; the 8 kHz from plan-live-media-streams.html).
//! - **Whose fragment**: Connect reuses streams across calls, and GetMedia does not stop at
//!   the call's end; each fragment carries a `ContactId` tag (after its Cluster), so a
//!   fragment's blocks are held until the fragment ends and kept only if the tag names this
//!   call, or if the fragment has no such tag (a stream of one call, or not Connect's). The
//!   first tag naming another contact ends the call's audio: that fragment is dropped and
//!   nothing after it is read (what AWS's samples do: `KVSContactTagProcessor.java`,
//!   connect-kvs-consumer-demo's `LMSTagVisitor.java`).
//! - **Alignment**: a block's time is its Cluster's timestamp plus its own (epoch
//!   milliseconds in Connect's streams); the WAV starts at the earliest block of the call's
//!   fragments, on either track, and each block goes at its time (to the sample, 125 us).
//!   A block within [`TOLERANCE_SAMPLES`] of where its track ends is appended (timestamps
//!   are rounded to the millisecond); later, the gap is silence; earlier (an overlap), its
//!   first samples that overlap are dropped, so the two tracks never drift apart. A track with
//!   no block is silence for the whole call.
//! - **Errors in the stream**: an `AWS_KINESISVIDEO_ERROR_CODE` tag (GetMedia's error
//!   chunk, https://docs.aws.amazon.com/kinesisvideostreams/latest/dg/API_dataplane_GetMedia.html)
//!   stops the read with an error naming the code.

use super::mkv::{Flow, Item, Sink};
use super::wav::SAMPLE_RATE;
use super::AudioError;

/// Connect's track of what the caller says.
pub const FROM_CUSTOMER: &str = "AUDIO_FROM_CUSTOMER";
/// Connect's track of what the caller hears.
pub const TO_CUSTOMER: &str = "AUDIO_TO_CUSTOMER";
/// The older name of the caller's track (AWS's sample reads it as the caller's).
pub const LEGACY_FROM_CUSTOMER: &str = "Track_audio/L16";

/// A block this close to where its track ends (in samples, 2 ms) is appended there.
pub const TOLERANCE_SAMPLES: i64 = 16;
/// The longest call kept (4 hours of audio, 230 MB per track in memory): a block later than
/// this means the stream's timestamps jump, and the fetch stops with an error.
pub const MAX_SAMPLES: i64 = 4 * 3600 * SAMPLE_RATE as i64;

/// Which side of the call a track is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// What the caller says (left channel).
    Caller,
    /// What the caller hears (right channel).
    Line,
}

impl Role {
    fn of(name: &str) -> Option<Role> {
        match name.trim() {
            FROM_CUSTOMER | LEGACY_FROM_CUSTOMER | "" => Some(Role::Caller),
            TO_CUSTOMER => Some(Role::Line),
            _ => None,
        }
    }
}

/// One side's samples and what happened placing them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Track {
    pub pcm: Vec<i16>,
    pub blocks: u64,
    /// Samples of silence put in gaps between blocks.
    pub gap_samples: u64,
    /// Samples dropped because they overlapped the track's end.
    pub overlap_samples: u64,
}

impl Track {
    /// Puts `samples` at `at` (samples from the start of the call).
    fn place(&mut self, at: i64, samples: &[i16]) -> Result<(), String> {
        let len = self.pcm.len() as i64;
        let at = if at.saturating_sub(len).saturating_abs() <= TOLERANCE_SAMPLES {
            len
        } else {
            at
        };
        let end = at.saturating_add(samples.len() as i64);
        if end > MAX_SAMPLES {
            return Err(format!(
                "a block {:.1} s after the call's first: the stream's timestamps jump (the most kept is {} hours)",
                at as f64 / f64::from(SAMPLE_RATE),
                MAX_SAMPLES / (3600 * i64::from(SAMPLE_RATE))
            ));
        }
        self.blocks += 1;
        let mut samples = samples;
        if at > len {
            // at <= MAX_SAMPLES, a usize.
            self.pcm.resize(usize::try_from(at).unwrap_or(0), 0);
            self.gap_samples += (at - len) as u64;
        } else if at < len {
            let skip = usize::try_from(len.saturating_sub(at))
                .unwrap_or(usize::MAX)
                .min(samples.len());
            self.overlap_samples += skip as u64;
            samples = &samples[skip..];
        }
        self.pcm.extend_from_slice(samples);
        Ok(())
    }

    pub fn seconds(&self) -> f64 {
        self.pcm.len() as f64 / f64::from(SAMPLE_RATE)
    }
}

/// A block of the fragment being read, held until its `ContactId` is known.
#[derive(Debug)]
struct Held {
    role: Role,
    time_ns: i128,
    samples: Vec<i16>,
}

/// Whose the fragment being read is, as far as its tags said.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    Unknown,
    Ours,
}

/// Why reading stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// A fragment of another contact: the stream went on to the next call.
    OtherContact(String),
}

/// The call's audio, gathered as the stream is read.
#[derive(Debug)]
pub struct CallAudio {
    contact: String,
    pub caller: Track,
    pub line: Track,
    /// Time of the first sample (ns, the stream's clock): the earliest block kept.
    t0: Option<i128>,
    /// Fragments kept (this call's, or untagged).
    pub fragments: u64,
    /// Fragments kept that had no `ContactId` tag.
    pub untagged_fragments: u64,
    /// The fragment number of the last fragment kept, when its tags said.
    pub last_fragment: Option<String>,
    pub stop: Option<Stop>,
    /// Track names that are neither side (blocks ignored), and blocks of no known track.
    pub ignored_tracks: Vec<String>,
    pub ignored_blocks: u64,
    // The fragment being read.
    in_fragment: bool,
    roles: Vec<(u64, Role)>,
    held: Vec<Held>,
    held_samples: usize,
    owner: Owner,
    fragment_number: Option<String>,
}

impl CallAudio {
    /// For the call whose `ContactId` tags read `contact`.
    pub fn new(contact: &str) -> CallAudio {
        CallAudio {
            contact: contact.trim().to_string(),
            caller: Track::default(),
            line: Track::default(),
            t0: None,
            fragments: 0,
            untagged_fragments: 0,
            last_fragment: None,
            stop: None,
            ignored_tracks: Vec::new(),
            ignored_blocks: 0,
            in_fragment: false,
            roles: Vec::new(),
            held: Vec::new(),
            held_samples: 0,
            owner: Owner::Unknown,
            fragment_number: None,
        }
    }

    /// Samples kept so far, in seconds (the longer track).
    pub fn seconds(&self) -> f64 {
        self.caller.seconds().max(self.line.seconds())
    }

    /// The stream ended (or is given up on): the fragment being read is kept if it is ours.
    pub fn finish(&mut self) -> Result<(), AudioError> {
        self.end_fragment()
    }

    fn end_fragment(&mut self) -> Result<(), AudioError> {
        if !self.in_fragment {
            return Ok(());
        }
        self.in_fragment = false;
        self.roles.clear();
        let held = std::mem::take(&mut self.held);
        self.held_samples = 0;
        let number = self.fragment_number.take();
        if self.owner == Owner::Unknown {
            self.untagged_fragments += 1;
        }
        self.owner = Owner::Unknown;
        self.fragments += 1;
        if number.is_some() {
            self.last_fragment = number;
        }
        if self.t0.is_none() {
            self.t0 = held.iter().map(|h| h.time_ns).min();
        }
        let Some(t0) = self.t0 else {
            return Ok(());
        };
        for h in held {
            // ns to samples at 8 kHz, rounded to the nearest.
            let at = h
                .time_ns
                .saturating_sub(t0)
                .saturating_mul(i128::from(SAMPLE_RATE));
            let at = at.saturating_add(at.signum() * 500_000_000) / 1_000_000_000;
            let at = i64::try_from(at).unwrap_or(if at < 0 { i64::MIN } else { i64::MAX });
            let track = match h.role {
                Role::Caller => &mut self.caller,
                Role::Line => &mut self.line,
            };
            track.place(at, &h.samples).map_err(AudioError::Timeline)?;
        }
        Ok(())
    }
}

impl Sink for CallAudio {
    type Error = AudioError;

    fn item(&mut self, item: Item<'_>) -> Result<Flow, AudioError> {
        match item {
            Item::Fragment => {
                self.end_fragment()?;
                self.in_fragment = true;
            }
            Item::Track { number, name, .. } => match Role::of(&name) {
                Some(role) if !self.roles.iter().any(|&(_, r)| r == role) => {
                    self.roles.push((number, role));
                }
                _ => {
                    if !self.ignored_tracks.contains(&name) {
                        self.ignored_tracks.push(name);
                    }
                }
            },
            Item::Block {
                track,
                time_ns,
                data,
            } => {
                self.in_fragment = true;
                let Some(&(_, role)) = self.roles.iter().find(|&&(n, _)| n == track) else {
                    self.ignored_blocks += 1;
                    return Ok(Flow::Continue);
                };
                if data.len() % 2 != 0 {
                    return Err(AudioError::NotPcm(format!(
                        "a block of {} bytes on track {track}: 16-bit PCM blocks have an even length",
                        data.len()
                    )));
                }
                self.held_samples += data.len() / 2;
                if self.held_samples as i64 > 2 * MAX_SAMPLES {
                    return Err(AudioError::Timeline(format!(
                        "one fragment holds more than {} hours of audio: the stream is not Connect's (its fragments are about a second)",
                        MAX_SAMPLES / (3600 * i64::from(SAMPLE_RATE))
                    )));
                }
                self.held.push(Held {
                    role,
                    time_ns,
                    samples: data
                        .chunks_exact(2)
                        .map(|c| i16::from_le_bytes([c[0], c[1]]))
                        .collect(),
                });
            }
            Item::Tag { name, value } => match name.as_str() {
                "ContactId" => {
                    if value.trim().eq_ignore_ascii_case(&self.contact) {
                        self.owner = Owner::Ours;
                    } else {
                        // Another call's fragment: dropped, and the end of this call's audio.
                        self.held.clear();
                        self.held_samples = 0;
                        self.in_fragment = false;
                        self.roles.clear();
                        self.stop = Some(Stop::OtherContact(value.trim().to_string()));
                        return Ok(Flow::Stop);
                    }
                }
                "AWS_KINESISVIDEO_FRAGMENT_NUMBER" => {
                    self.fragment_number = Some(value.trim().to_string());
                }
                "AWS_KINESISVIDEO_ERROR_CODE" => {
                    return Err(AudioError::StreamError {
                        code: value.trim().to_string(),
                        after_fragment: self.last_fragment.clone(),
                    })
                }
                _ => {}
            },
        }
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i128 = 1_000_000;

    fn feed(a: &mut CallAudio, items: Vec<Item<'_>>) -> Flow {
        for i in items {
            if a.item(i).expect("item") == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn tracks<'a>() -> Vec<Item<'a>> {
        vec![
            Item::Fragment,
            Item::Track {
                number: 1,
                name: FROM_CUSTOMER.into(),
                codec: "A_AAC".into(),
            },
            Item::Track {
                number: 2,
                name: TO_CUSTOMER.into(),
                codec: "A_AAC".into(),
            },
        ]
    }

    #[test]
    fn blocks_go_at_their_time_and_gaps_are_silence() {
        let mut a = CallAudio::new("c-1");
        let one = [1u8, 0, 1, 0]; // two samples of 1
        let two = [2u8, 0, 2, 0];
        let mut items = tracks();
        // The line starts 5 ms (40 samples) after the caller; the caller has a 10 ms gap.
        items.extend([
            Item::Block {
                track: 1,
                time_ns: 1_000 * MS,
                data: &one,
            },
            Item::Block {
                track: 2,
                time_ns: 1_005 * MS,
                data: &two,
            },
            Item::Block {
                track: 1,
                time_ns: 1_010 * MS,
                data: &one,
            },
            Item::Tag {
                name: "ContactId".into(),
                value: "C-1".into(),
            },
        ]);
        assert_eq!(feed(&mut a, items), Flow::Continue);
        a.finish().expect("finish");
        assert_eq!(a.fragments, 1);
        assert_eq!(a.untagged_fragments, 0);
        let mut caller = vec![1, 1];
        caller.resize(80, 0);
        caller.extend([1, 1]);
        assert_eq!(a.caller.pcm, caller);
        let mut line = vec![0; 40];
        line.extend([2, 2]);
        assert_eq!(a.line.pcm, line);
        // Within 2 ms of the track's end: appended (timestamps are whole milliseconds).
        let mut t = Track::default();
        t.place(0, &[1; 10]).expect("place");
        t.place(10 + TOLERANCE_SAMPLES, &[2]).expect("place");
        assert_eq!(t.pcm.len(), 11);
        assert_eq!(a.caller.gap_samples, 78);
    }

    #[test]
    fn another_contacts_fragment_ends_the_call_and_is_dropped() {
        let mut a = CallAudio::new("c-1");
        let s = [5u8, 0];
        let mut items = tracks();
        items.extend([
            Item::Block {
                track: 1,
                time_ns: 0,
                data: &s,
            },
            Item::Tag {
                name: "ContactId".into(),
                value: "c-1".into(),
            },
        ]);
        items.extend(tracks());
        items.extend([
            Item::Block {
                track: 1,
                time_ns: MS / 8,
                data: &s,
            },
            Item::Tag {
                name: "ContactId".into(),
                value: "c-2".into(),
            },
        ]);
        assert_eq!(feed(&mut a, items), Flow::Stop);
        a.finish().expect("finish");
        assert_eq!(a.caller.pcm, [5]);
        assert_eq!(a.fragments, 1);
        assert_eq!(a.stop, Some(Stop::OtherContact("c-2".into())));
    }

    #[test]
    fn unnamed_and_legacy_tracks_are_the_caller_others_are_ignored() {
        assert_eq!(Role::of(""), Some(Role::Caller));
        assert_eq!(Role::of(LEGACY_FROM_CUSTOMER), Some(Role::Caller));
        assert_eq!(Role::of(TO_CUSTOMER), Some(Role::Line));
        assert_eq!(Role::of("VIDEO"), None);
        let mut a = CallAudio::new("c-1");
        let s = [1u8, 0];
        feed(
            &mut a,
            vec![
                Item::Fragment,
                Item::Track {
                    number: 3,
                    name: "VIDEO".into(),
                    codec: String::new(),
                },
                Item::Block {
                    track: 3,
                    time_ns: 0,
                    data: &s,
                },
            ],
        );
        a.finish().expect("finish");
        assert_eq!(a.ignored_tracks, ["VIDEO"]);
        assert_eq!(a.ignored_blocks, 1);
        assert!(a.caller.pcm.is_empty());
    }

    #[test]
    fn overlaps_are_dropped_and_odd_blocks_refused() {
        let mut t = Track::default();
        t.place(0, &[1; 100]).expect("place");
        // 50 samples early: the first 50 are dropped.
        t.place(50, &[2; 100]).expect("place");
        assert_eq!(t.pcm.len(), 150);
        assert_eq!(t.overlap_samples, 50);
        assert_eq!(t.pcm[99..101], [1, 2]);
        // A jump past the limit is an error, not an allocation.
        assert!(t.place(MAX_SAMPLES, &[1]).is_err());
        let mut a = CallAudio::new("c-1");
        let mut items = tracks();
        let odd = [1u8, 0, 1];
        items.push(Item::Block {
            track: 1,
            time_ns: 0,
            data: &odd,
        });
        let err = items
            .into_iter()
            .map(|i| a.item(i))
            .find_map(Result::err)
            .expect("odd block");
        assert!(err.to_string().contains("even length"), "{err}");
    }

    #[test]
    fn an_error_chunk_names_its_code() {
        let mut a = CallAudio::new("c-1");
        let err = a
            .item(Item::Tag {
                name: "AWS_KINESISVIDEO_ERROR_CODE".into(),
                value: "4000".into(),
            })
            .expect_err("error chunk");
        let msg = err.to_string();
        assert!(msg.contains("4000"), "{msg}");
        assert!(msg.contains("not found"), "{msg}");
    }
}
