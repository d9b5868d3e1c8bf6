//! A push reader of the Matroska (EBML) byte stream that GetMedia sends: fragments, each its
//! own EBML header and Segment, one after another (the older
//! https://docs.aws.amazon.com/connect/latest/adminguide/access-media-stream-data.html sample
//! counts one fragment per EBML header). Bytes go in as they arrive ([`Demuxer::push`]); what
//! the audio needs comes out as [`Item`]s: a new fragment, its tracks, its blocks with their
//! time, its tags. Everything else (SeekHead, Cues, Void, CRC-32, the EBML header's fields)
//! is skipped without being kept, so memory stays at one element header plus the largest
//! block or tag read ([`MAX_BLOCK_BYTES`]), whatever the length of the stream.
//!
//! Read: `Segment` and `Cluster` of unknown size (the end of such an element is the first
//! element that cannot be its child, as the Matroska spec, RFC 9559 section 6.2, says),
//! `Info/TimestampScale`, `Tracks/TrackEntry` (`TrackNumber`, `Name`, `CodecID`),
//! `Cluster/Timestamp`, `SimpleBlock` and `BlockGroup/Block` (unlaced only: a laced block is
//! an error), `Tags/Tag/SimpleTag` (`TagName`, `TagString`, nested SimpleTags too). Element
//! ids and the block header are from RFC 9559 (https://www.rfc-editor.org/rfc/rfc9559) and
//! EBML, RFC 8794 (https://www.rfc-editor.org/rfc/rfc8794).

/// The largest block, or string value, read whole. Connect's blocks hold tens of
/// milliseconds of 8 kHz audio (a few hundred bytes; ffmpeg writes 2,048); anything near this
/// is not Connect's audio.
pub const MAX_BLOCK_BYTES: u64 = 4 << 20;

// Element ids (RFC 8794 section 11.2, RFC 9559 section 5.1), marker bits kept as written.
pub const EBML: u32 = 0x1A45_DFA3;
pub const SEGMENT: u32 = 0x1853_8067;
pub const INFO: u32 = 0x1549_A966;
pub const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
pub const TRACKS: u32 = 0x1654_AE6B;
pub const TRACK_ENTRY: u32 = 0xAE;
pub const TRACK_NUMBER: u32 = 0xD7;
pub const NAME: u32 = 0x536E;
pub const CODEC_ID: u32 = 0x86;
pub const CLUSTER: u32 = 0x1F43_B675;
pub const TIMESTAMP: u32 = 0xE7;
pub const SIMPLE_BLOCK: u32 = 0xA3;
pub const BLOCK_GROUP: u32 = 0xA0;
pub const BLOCK: u32 = 0xA1;
pub const TAGS: u32 = 0x1254_C367;
pub const TAG: u32 = 0x7373;
pub const SIMPLE_TAG: u32 = 0x67C8;
pub const TAG_NAME: u32 = 0x45A3;
pub const TAG_STRING: u32 = 0x4487;
pub const VOID: u32 = 0xEC;
pub const CRC32: u32 = 0xBF;
// Cluster children besides the above (for ending an unknown-size Cluster).
const SILENT_TRACKS: u32 = 0x5854;
const POSITION: u32 = 0xA7;
const PREV_SIZE: u32 = 0xAB;
const ENCRYPTED_BLOCK: u32 = 0xAF;

/// What the stream holds, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// A Segment begins: a new fragment, whose tracks follow.
    Fragment,
    /// One track of the fragment (`TrackEntry`).
    Track {
        number: u64,
        name: String,
        codec: String,
    },
    /// A block: its track, its time in nanoseconds (the Cluster's timestamp plus the block's
    /// relative one, in units of the Segment's TimestampScale), its payload.
    Block {
        track: u64,
        time_ns: i128,
        data: &'a [u8],
    },
    /// A `SimpleTag` with a string value.
    Tag { name: String, value: String },
}

/// Whether the reader goes on after an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// The consumer has what it wants: the rest of the stream is not read.
    Stop,
}

/// Where the items go.
pub trait Sink {
    type Error: From<MkvError>;
    fn item(&mut self, item: Item<'_>) -> Result<Flow, Self::Error>;
}

/// Why the stream does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MkvError {
    /// The stream ended in the middle of an element.
    #[error("the Matroska stream was cut: it ended after {} bytes, {inside}", crate::read::thousands(*.read))]
    Truncated { read: u64, inside: String },
    #[error("the Matroska stream does not read at byte {at}: {why}")]
    Malformed { at: u64, why: String },
    #[error("a laced block (track {track}) at byte {at}: Connect's audio blocks are not laced and this reader reads none; is this Connect's media stream?")]
    Laced { at: u64, track: u64 },
}

/// An element's name for messages.
pub fn name(id: u32) -> String {
    let known = match id {
        EBML => "EBML header",
        SEGMENT => "Segment",
        INFO => "Info",
        TIMESTAMP_SCALE => "TimestampScale",
        TRACKS => "Tracks",
        TRACK_ENTRY => "TrackEntry",
        TRACK_NUMBER => "TrackNumber",
        NAME => "Name",
        CODEC_ID => "CodecID",
        CLUSTER => "Cluster",
        TIMESTAMP => "Timestamp",
        SIMPLE_BLOCK => "SimpleBlock",
        BLOCK_GROUP => "BlockGroup",
        BLOCK => "Block",
        TAGS => "Tags",
        TAG => "Tag",
        SIMPLE_TAG => "SimpleTag",
        TAG_NAME => "TagName",
        TAG_STRING => "TagString",
        VOID => "Void",
        CRC32 => "CRC-32",
        _ => return format!("element 0x{id:X}"),
    };
    known.to_string()
}

/// A variable-size integer (RFC 8794 section 4): its value (marker bit removed unless
/// `keep_marker`), its length in bytes, and whether every value bit is 1 (an unknown size).
/// `Ok(None)`: more bytes are needed. `max_len` is 4 for ids, 8 for sizes.
pub fn vint(
    b: &[u8],
    max_len: usize,
    keep_marker: bool,
) -> Result<Option<(u64, usize, bool)>, String> {
    let Some(&first) = b.first() else {
        return Ok(None);
    };
    let len = first.leading_zeros() as usize + 1;
    if len > max_len {
        return Err(format!(
            "a variable-size integer of more than {max_len} bytes (first byte 0x{first:02X})"
        ));
    }
    if b.len() < len {
        return Ok(None);
    }
    let marker = 0x80u8 >> (len - 1);
    let mut value = u64::from(if keep_marker { first } else { first & !marker });
    let mut all_ones = first & (marker - 1) == marker - 1;
    for &byte in &b[1..len] {
        value = (value << 8) | u64::from(byte);
        all_ones &= byte == 0xFF;
    }
    Ok(Some((value, len, all_ones)))
}

/// An element header: id (marker kept), data size (`None`: unknown), header length.
pub fn header(b: &[u8]) -> Result<Option<(u32, Option<u64>, usize)>, String> {
    let Some((id, id_len, _)) = vint(b, 4, true)? else {
        return Ok(None);
    };
    let Some((size, size_len, unknown)) = vint(&b[id_len..], 8, false)? else {
        return Ok(None);
    };
    // u32::try_from cannot fail for 4 bytes; written so nothing here can panic.
    let id = u32::try_from(id).map_err(|_| "an element id over 4 bytes".to_string())?;
    Ok(Some((id, (!unknown).then_some(size), id_len + size_len)))
}

/// An element still open: its end (`None`: unknown size), where it started.
#[derive(Debug, Clone, Copy)]
struct Open {
    id: u32,
    end: Option<u64>,
    at: u64,
}

/// A TrackEntry being read.
#[derive(Debug, Default)]
struct TrackEntry {
    number: Option<u64>,
    name: String,
    codec: String,
}

/// A SimpleTag being read.
#[derive(Debug, Default)]
struct SimpleTag {
    name: Option<String>,
    value: Option<String>,
}

/// The push reader. Feed it with [`push`](Demuxer::push), end with
/// [`finish`](Demuxer::finish).
#[derive(Debug)]
pub struct Demuxer {
    /// Bytes not consumed yet, from `buf[start..]`.
    buf: Vec<u8>,
    start: usize,
    /// Absolute offset of `buf[start]` in the stream.
    pos: u64,
    /// Bytes of a skipped element still to come.
    skip: u64,
    /// The skipped element, for a message if the stream ends inside it.
    skipping: u32,
    stack: Vec<Open>,
    scale_ns: u64,
    cluster_timestamp: Option<u64>,
    track: Option<TrackEntry>,
    tags: Vec<SimpleTag>,
    stopped: bool,
}

impl Default for Demuxer {
    fn default() -> Self {
        Demuxer::new()
    }
}

/// The default TimestampScale: 1 ms (RFC 9559, `TimestampScale`).
const DEFAULT_SCALE_NS: u64 = 1_000_000;

impl Demuxer {
    pub fn new() -> Demuxer {
        Demuxer {
            buf: Vec::new(),
            start: 0,
            pos: 0,
            skip: 0,
            skipping: 0,
            stack: Vec::new(),
            scale_ns: DEFAULT_SCALE_NS,
            cluster_timestamp: None,
            track: None,
            tags: Vec::new(),
            stopped: false,
        }
    }

    /// Bytes of the stream consumed so far.
    pub fn consumed(&self) -> u64 {
        self.pos
    }

    /// Bytes given so far.
    pub fn read(&self) -> u64 {
        self.pos + (self.buf.len() - self.start) as u64
    }

    /// Reads what `chunk` completes, handing items to `sink`. After a [`Flow::Stop`] nothing
    /// more is read.
    pub fn push<S: Sink>(&mut self, chunk: &[u8], sink: &mut S) -> Result<Flow, S::Error> {
        if self.stopped {
            return Ok(Flow::Stop);
        }
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(chunk);
        let flow = self.run(sink)?;
        if flow == Flow::Stop {
            self.stopped = true;
        }
        Ok(flow)
    }

    /// The stream ended: an error if it ended inside an element of known size (or inside an
    /// element header). Elements of unknown size may end with the stream.
    pub fn finish(&self) -> Result<(), MkvError> {
        if self.stopped {
            return Ok(());
        }
        let pending = self.buf.len() - self.start;
        let short = |n: u64, id: u32| {
            format!(
                "{} bytes short of the end of its {}",
                thousands(n),
                name(id)
            )
        };
        let inside = if self.skip > 0 {
            Some(short(self.skip, self.skipping))
        } else if pending > 0 {
            Some(match header(&self.buf[self.start..]) {
                Ok(Some((id, Some(size), len))) => {
                    short((size + len as u64).saturating_sub(pending as u64), id)
                }
                _ => "in the middle of an element header".to_string(),
            })
        } else {
            self.stack
                .iter()
                .rev()
                .find_map(|o| o.end.filter(|&e| e > self.pos).map(|e| (o.id, e)))
                .map(|(id, end)| short(end - self.pos, id))
        };
        match inside {
            Some(inside) => Err(MkvError::Truncated {
                read: self.read(),
                inside,
            }),
            None => Ok(()),
        }
    }

    fn malformed(&self, at: u64, why: impl Into<String>) -> MkvError {
        MkvError::Malformed {
            at,
            why: why.into(),
        }
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.pos += n as u64;
    }

    fn run<S: Sink>(&mut self, sink: &mut S) -> Result<Flow, S::Error> {
        loop {
            if self.skip > 0 {
                let avail = (self.buf.len() - self.start) as u64;
                let n = self.skip.min(avail);
                // n <= avail, a usize.
                self.consume(usize::try_from(n).unwrap_or(usize::MAX));
                self.skip -= n;
                if self.skip > 0 {
                    return Ok(Flow::Continue);
                }
            }
            // Close the elements that end here.
            while let Some(top) = self.stack.last().copied() {
                if top.end == Some(self.pos) {
                    self.stack.pop();
                    if self.close(top.id, sink)? == Flow::Stop {
                        return Ok(Flow::Stop);
                    }
                } else {
                    break;
                }
            }
            let at = self.pos;
            let (id, size, hlen) = match header(&self.buf[self.start..]) {
                Ok(Some(h)) => h,
                Ok(None) => return Ok(Flow::Continue),
                Err(why) => return Err(self.malformed(at, why).into()),
            };
            // Elements of unknown size end at the first element that is not their child.
            while let Some(top) = self.stack.last().copied() {
                if top.end.is_none() && !is_child(top.id, id) {
                    self.stack.pop();
                    if self.close(top.id, sink)? == Flow::Stop {
                        return Ok(Flow::Stop);
                    }
                } else {
                    break;
                }
            }
            let parent = self.stack.last().copied();
            if let (Some(p), Some(size)) = (parent, size) {
                if let Some(end) = p.end {
                    if at + hlen as u64 + size > end {
                        return Err(self
                            .malformed(
                                at,
                                format!(
                                    "{} of {} bytes runs past the end of its {} (started at byte {})",
                                    name(id),
                                    thousands(size),
                                    name(p.id),
                                    p.at
                                ),
                            )
                            .into());
                    }
                }
            }
            let parent_id = parent.map(|p| p.id);
            match kind(id, parent_id) {
                Kind::Master => {
                    if size.is_none() && !matches!(id, SEGMENT | CLUSTER) {
                        return Err(self
                            .malformed(at, format!("{} of unknown size", name(id)))
                            .into());
                    }
                    if id == SEGMENT && parent.is_some() {
                        return Err(self
                            .malformed(
                                at,
                                format!("a Segment inside {}", name(parent_id.unwrap_or(0))),
                            )
                            .into());
                    }
                    self.consume(hlen);
                    self.stack.push(Open {
                        id,
                        end: size.map(|s| self.pos + s),
                        at,
                    });
                    if self.open(id, sink)? == Flow::Stop {
                        return Ok(Flow::Stop);
                    }
                }
                Kind::Value => {
                    let Some(size) = size else {
                        return Err(self
                            .malformed(at, format!("{} of unknown size", name(id)))
                            .into());
                    };
                    if size > MAX_BLOCK_BYTES {
                        return Err(self
                            .malformed(
                                at,
                                format!(
                                    "{} of {} bytes, more than the {} read whole: not Connect's audio",
                                    name(id),
                                    thousands(size),
                                    thousands(MAX_BLOCK_BYTES)
                                ),
                            )
                            .into());
                    }
                    // size <= MAX_BLOCK_BYTES, a usize.
                    let total = hlen + usize::try_from(size).unwrap_or(usize::MAX);
                    if self.buf.len() - self.start < total {
                        return Ok(Flow::Continue);
                    }
                    let from = self.start + hlen;
                    let to = self.start + total;
                    let flow = self.value(id, at, from, to, sink)?;
                    self.consume(total);
                    if flow == Flow::Stop {
                        return Ok(Flow::Stop);
                    }
                }
                Kind::Skip => {
                    if id == EBML && parent.is_some() {
                        return Err(self
                            .malformed(
                                at,
                                format!("an EBML header inside {}", name(parent_id.unwrap_or(0))),
                            )
                            .into());
                    }
                    let Some(size) = size else {
                        return Err(self
                            .malformed(at, format!("{} of unknown size", name(id)))
                            .into());
                    };
                    self.consume(hlen);
                    self.skip = size;
                    self.skipping = id;
                }
            }
        }
    }

    fn open<S: Sink>(&mut self, id: u32, sink: &mut S) -> Result<Flow, S::Error> {
        match id {
            SEGMENT => {
                self.scale_ns = DEFAULT_SCALE_NS;
                self.cluster_timestamp = None;
                self.track = None;
                self.tags.clear();
                sink.item(Item::Fragment)
            }
            CLUSTER => {
                self.cluster_timestamp = None;
                Ok(Flow::Continue)
            }
            TRACK_ENTRY => {
                self.track = Some(TrackEntry::default());
                Ok(Flow::Continue)
            }
            SIMPLE_TAG => {
                self.tags.push(SimpleTag::default());
                Ok(Flow::Continue)
            }
            _ => Ok(Flow::Continue),
        }
    }

    fn close<S: Sink>(&mut self, id: u32, sink: &mut S) -> Result<Flow, S::Error> {
        match id {
            TRACK_ENTRY => match self.track.take() {
                Some(TrackEntry {
                    number: Some(number),
                    name,
                    codec,
                }) => sink.item(Item::Track {
                    number,
                    name,
                    codec,
                }),
                _ => Ok(Flow::Continue),
            },
            SIMPLE_TAG => match self.tags.pop() {
                Some(SimpleTag {
                    name: Some(name),
                    value: Some(value),
                }) => sink.item(Item::Tag { name, value }),
                _ => Ok(Flow::Continue),
            },
            CLUSTER => {
                self.cluster_timestamp = None;
                Ok(Flow::Continue)
            }
            _ => Ok(Flow::Continue),
        }
    }

    /// A value element whose bytes are `buf[from..to]`.
    fn value<S: Sink>(
        &mut self,
        id: u32,
        at: u64,
        from: usize,
        to: usize,
        sink: &mut S,
    ) -> Result<Flow, S::Error> {
        let data = &self.buf[from..to];
        match id {
            TIMESTAMP_SCALE => {
                let scale = uint(data).map_err(|why| self.malformed(at, why))?;
                if scale == 0 {
                    return Err(self.malformed(at, "a TimestampScale of 0").into());
                }
                self.scale_ns = scale;
            }
            TRACK_NUMBER => {
                let n = uint(data).map_err(|why| self.malformed(at, why))?;
                if let Some(t) = self.track.as_mut() {
                    t.number = Some(n);
                }
            }
            NAME => {
                let s = text(data);
                if let Some(t) = self.track.as_mut() {
                    t.name = s;
                }
            }
            CODEC_ID => {
                let s = text(data);
                if let Some(t) = self.track.as_mut() {
                    t.codec = s;
                }
            }
            TIMESTAMP => {
                self.cluster_timestamp = Some(uint(data).map_err(|why| self.malformed(at, why))?);
            }
            TAG_NAME => {
                let s = text(data);
                if let Some(t) = self.tags.last_mut() {
                    t.name = Some(s);
                }
            }
            TAG_STRING => {
                let s = text(data);
                if let Some(t) = self.tags.last_mut() {
                    t.value = Some(s);
                }
            }
            SIMPLE_BLOCK | BLOCK => {
                // RFC 9559 section 10: track number (a vint), a signed 16-bit timestamp
                // relative to the Cluster's, flags; lacing in bits 0x06 of the flags.
                let (track, tlen) = match vint(data, 8, false) {
                    Ok(Some((t, l, _))) => (t, l),
                    Ok(None) => {
                        return Err(self
                            .malformed(at, format!("{} too short for its header", name(id)))
                            .into())
                    }
                    Err(why) => return Err(self.malformed(at, why).into()),
                };
                let Some(&[hi, lo, flags]) = data.get(tlen..tlen + 3) else {
                    return Err(self
                        .malformed(at, format!("{} too short for its header", name(id)))
                        .into());
                };
                if flags & 0x06 != 0 {
                    return Err(MkvError::Laced { at, track }.into());
                }
                let Some(cluster) = self.cluster_timestamp else {
                    return Err(self
                        .malformed(at, format!("{} before its Cluster's Timestamp", name(id)))
                        .into());
                };
                let relative = i16::from_be_bytes([hi, lo]);
                let Some(time_ns) = (i128::from(cluster) + i128::from(relative))
                    .checked_mul(i128::from(self.scale_ns))
                else {
                    return Err(self
                        .malformed(at, format!("{} at a time past any clock", name(id)))
                        .into());
                };
                return sink.item(Item::Block {
                    track,
                    time_ns,
                    data: &data[tlen + 3..],
                });
            }
            _ => {}
        }
        Ok(Flow::Continue)
    }
}

/// How an element is read, given its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Entered: its children are read.
    Master,
    /// Read whole (a number, a string, a block).
    Value,
    /// Passed over without being kept.
    Skip,
}

fn kind(id: u32, parent: Option<u32>) -> Kind {
    match (parent, id) {
        (None, SEGMENT) => Kind::Master,
        (Some(SEGMENT), INFO | TRACKS | CLUSTER | TAGS) => Kind::Master,
        (Some(INFO), TIMESTAMP_SCALE) => Kind::Value,
        (Some(TRACKS), TRACK_ENTRY) => Kind::Master,
        (Some(TRACK_ENTRY), TRACK_NUMBER | NAME | CODEC_ID) => Kind::Value,
        (Some(CLUSTER), TIMESTAMP | SIMPLE_BLOCK) => Kind::Value,
        (Some(CLUSTER), BLOCK_GROUP) => Kind::Master,
        (Some(BLOCK_GROUP), BLOCK) => Kind::Value,
        (Some(TAGS), TAG) => Kind::Master,
        (Some(TAG | SIMPLE_TAG), SIMPLE_TAG) => Kind::Master,
        (Some(SIMPLE_TAG), TAG_NAME | TAG_STRING) => Kind::Value,
        _ => Kind::Skip,
    }
}

/// Whether `id` may be a child of the unknown-size `parent` (Segment or Cluster): the first
/// element that may not ends the parent (RFC 9559 section 6.2, "Unknown-sized elements").
fn is_child(parent: u32, id: u32) -> bool {
    match parent {
        // A Segment's unknown size ends at the next fragment.
        SEGMENT => !matches!(id, EBML | SEGMENT),
        CLUSTER => matches!(
            id,
            TIMESTAMP
                | SILENT_TRACKS
                | POSITION
                | PREV_SIZE
                | SIMPLE_BLOCK
                | BLOCK_GROUP
                | ENCRYPTED_BLOCK
                | VOID
                | CRC32
        ),
        _ => true,
    }
}

/// An unsigned integer element: 0 to 8 bytes, big-endian.
fn uint(b: &[u8]) -> Result<u64, String> {
    if b.len() > 8 {
        return Err(format!("an unsigned integer of {} bytes", b.len()));
    }
    Ok(b.iter().fold(0u64, |v, &x| (v << 8) | u64::from(x)))
}

/// A string element: UTF-8 (invalid bytes replaced), trailing NULs dropped (RFC 8794
/// section 7.4 allows NUL padding).
fn text(b: &[u8]) -> String {
    let end = b.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    crate::read::thousands(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vints_read_as_rfc_8794_writes_them() {
        // RFC 8794 section 4.4: the value 2 in 1 to 4 bytes.
        for b in [
            &[0x82][..],
            &[0x40, 0x02],
            &[0x20, 0x00, 0x02],
            &[0x10, 0, 0, 2],
        ] {
            assert_eq!(vint(b, 8, false), Ok(Some((2, b.len(), false))));
        }
        assert_eq!(
            vint(&[0x1A, 0x45, 0xDF, 0xA3], 4, true),
            Ok(Some((0x1A45_DFA3, 4, false)))
        );
        // Every value bit set: an unknown size (1 and 8 bytes).
        assert_eq!(vint(&[0xFF], 8, false), Ok(Some((0x7F, 1, true))));
        let unknown = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        assert_eq!(vint(&unknown, 8, false), Ok(Some(((1 << 56) - 1, 8, true))));
        // More bytes needed; too long; a zero first byte.
        assert_eq!(vint(&[0x40], 8, false), Ok(None));
        assert_eq!(vint(&[], 8, false), Ok(None));
        assert!(vint(&[0x08, 0, 0, 0, 0], 4, true).is_err());
        assert!(vint(&[0x00, 1, 2, 3, 4, 5, 6, 7, 8], 8, false).is_err());
    }

    #[test]
    fn element_headers_give_id_size_and_length() {
        assert_eq!(
            header(&[0xA3, 0x84, 1, 2, 3, 4]),
            Ok(Some((SIMPLE_BLOCK, Some(4), 2)))
        );
        assert_eq!(
            header(&[0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
            Ok(Some((SEGMENT, None, 12)))
        );
        assert_eq!(header(&[0x1F, 0x43, 0xB6, 0x75, 0x42]), Ok(None));
        assert_eq!(
            header(&[0x1F, 0x43, 0xB6, 0x75, 0x42, 0x10]),
            Ok(Some((CLUSTER, Some(0x210), 6)))
        );
        assert!(header(&[0x00, 0x81]).is_err());
    }

    #[derive(Default)]
    struct Collect(Vec<String>);

    impl Sink for Collect {
        type Error = MkvError;
        fn item(&mut self, item: Item<'_>) -> Result<Flow, MkvError> {
            self.0.push(match item {
                Item::Fragment => "fragment".to_string(),
                Item::Track { number, name, .. } => format!("track {number} {name}"),
                Item::Block {
                    track,
                    time_ns,
                    data,
                } => {
                    format!("block {track} {time_ns} {}", data.len())
                }
                Item::Tag { name, value } => format!("tag {name}={value}"),
            });
            Ok(Flow::Continue)
        }
    }

    fn el(id: u32, payload: &[u8]) -> Vec<u8> {
        let mut v: Vec<u8> = id
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        v.push(0x01); // an 8-byte size
        v.extend_from_slice(&(payload.len() as u64).to_be_bytes()[1..]);
        v.extend_from_slice(payload);
        v
    }

    fn unknown(id: u32, payload: &[u8]) -> Vec<u8> {
        let mut v: Vec<u8> = id
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        v.push(0xFF);
        v.extend_from_slice(payload);
        v
    }

    fn fragment(cluster_at: u8) -> Vec<u8> {
        let entry = [
            el(TRACK_NUMBER, &[1]),
            el(NAME, b"AUDIO_FROM_CUSTOMER"),
            el(CODEC_ID, b"A_AAC"),
        ]
        .concat();
        let block = [&[0x81u8, 0x00, 0x05, 0x80][..], &[1, 0, 2, 0]].concat();
        let cluster = [
            el(TIMESTAMP, &[cluster_at]),
            el(SIMPLE_BLOCK, &block),
            el(VOID, &[0; 3]),
        ]
        .concat();
        let tag = el(
            TAG,
            &el(
                SIMPLE_TAG,
                &[el(TAG_NAME, b"ContactId"), el(TAG_STRING, b"c-1")].concat(),
            ),
        );
        let segment = [
            el(TRACKS, &el(TRACK_ENTRY, &entry)),
            unknown(CLUSTER, &cluster),
            el(TAGS, &tag),
        ]
        .concat();
        [
            el(EBML, &el(0x4282, b"matroska")),
            unknown(SEGMENT, &segment),
        ]
        .concat()
    }

    fn read_all(bytes: &[u8], chunk: usize) -> (Collect, Result<(), MkvError>) {
        let mut d = Demuxer::new();
        let mut c = Collect::default();
        for part in bytes.chunks(chunk) {
            if let Err(e) = d.push(part, &mut c) {
                return (c, Err(e));
            }
        }
        let end = d.finish();
        (c, end)
    }

    #[test]
    fn unknown_size_segments_and_clusters_end_where_their_children_do() {
        let stream = [fragment(10), fragment(20)].concat();
        let want = [
            "fragment",
            "track 1 AUDIO_FROM_CUSTOMER",
            "block 1 15000000 4",
            "tag ContactId=c-1",
            "fragment",
            "track 1 AUDIO_FROM_CUSTOMER",
            "block 1 25000000 4",
            "tag ContactId=c-1",
        ];
        // Whole, and a byte at a time: the same items.
        for chunk in [stream.len(), 1, 7] {
            let (c, end) = read_all(&stream, chunk);
            assert_eq!(end, Ok(()));
            assert_eq!(c.0, want, "chunks of {chunk}");
        }
    }

    #[test]
    fn a_cut_stream_says_where_and_after_how_many_bytes() {
        let stream = fragment(10);
        // Cut inside the Tags (known size): an error naming it; cut inside a header too.
        let cut = &stream[..stream.len() - 3];
        let (_, end) = read_all(cut, 5);
        let err = end.expect_err("cut");
        let msg = err.to_string();
        assert!(msg.contains(&format!("after {} bytes", cut.len())), "{msg}");
        assert!(msg.contains("3 bytes short of the end of its "), "{msg}");
        let (_, end) = read_all(&stream[..1], 1);
        assert!(end
            .expect_err("cut")
            .to_string()
            .contains("in the middle of an element header"));
    }

    #[test]
    fn laced_blocks_and_overruns_are_refused() {
        let block = [&[0x81u8, 0x00, 0x00, 0x82][..], &[0; 8]].concat();
        let cluster = el(
            CLUSTER,
            &[el(TIMESTAMP, &[0]), el(SIMPLE_BLOCK, &block)].concat(),
        );
        let laced = [el(EBML, &[]), el(SEGMENT, &cluster)].concat();
        let (_, end) = read_all(&laced, 64);
        assert!(
            matches!(end, Err(MkvError::Laced { track: 1, .. })),
            "{end:?}"
        );
        // A child longer than its parent.
        let mut bad = el(SEGMENT, &el(TAGS, &[0u8; 4]));
        bad[4 + 7] = 2; // the Segment says 2 bytes
        let (_, end) = read_all(&bad, 64);
        assert!(end
            .expect_err("overrun")
            .to_string()
            .contains("runs past the end of its Segment"));
        // A block before any Timestamp.
        let early = el(
            SEGMENT,
            &el(CLUSTER, &el(SIMPLE_BLOCK, &[0x81, 0, 0, 0x80])),
        );
        let (_, end) = read_all(&early, 64);
        assert!(end
            .expect_err("no timestamp")
            .to_string()
            .contains("before its Cluster's Timestamp"));
        // A huge block is refused before it is buffered.
        let mut huge = vec![0xA3, 0x01];
        huge.extend_from_slice(&(MAX_BLOCK_BYTES + 1).to_be_bytes()[1..]);
        let mut c = Collect::default();
        let seg = [
            &unknown(SEGMENT, &unknown(CLUSTER, &el(TIMESTAMP, &[0])))[..],
            &huge,
        ]
        .concat();
        let mut d = Demuxer::new();
        let err = d.push(&seg, &mut c).expect_err("huge");
        assert!(err.to_string().contains("more than the"), "{err}");
    }

    #[test]
    fn timestamps_follow_the_segments_scale() {
        // TimestampScale 1,000 ns (1 us): Cluster 2,000 + block 5 = 2,005 us.
        let block = [&[0x82u8, 0x00, 0x05, 0x80][..], &[0; 2]].concat();
        let segment = [
            el(INFO, &el(TIMESTAMP_SCALE, &[0x03, 0xE8])),
            el(
                CLUSTER,
                &[
                    el(TIMESTAMP, &[0x07, 0xD0]),
                    el(BLOCK_GROUP, &el(BLOCK, &block)),
                ]
                .concat(),
            ),
        ]
        .concat();
        let (c, end) = read_all(&el(SEGMENT, &segment), 3);
        assert_eq!(end, Ok(()));
        assert_eq!(c.0, ["fragment", "block 2 2005000 2"]);
    }

    #[test]
    fn extreme_timestamps_are_errors_not_overflows() {
        let block = [&[0x81u8, 0x7F, 0xFF, 0x80][..], &[0; 2]].concat();
        let segment = [
            el(INFO, &el(TIMESTAMP_SCALE, &[0xFF; 8])),
            el(
                CLUSTER,
                &[el(TIMESTAMP, &[0xFF; 8]), el(SIMPLE_BLOCK, &block)].concat(),
            ),
        ]
        .concat();
        let (_, end) = read_all(&el(SEGMENT, &segment), 5);
        assert!(end
            .expect_err("overflow")
            .to_string()
            .contains("past any clock"));
    }

    proptest::proptest! {
        /// Whatever the bytes (a real fragment cut, flipped or shuffled into chunks, or
        /// noise), the reader and the call's tracks end in a value or an error: never a panic.
        #[test]
        fn no_stream_makes_the_reader_panic(
            flips in proptest::collection::vec((0usize..400, proptest::prelude::any::<u8>()), 0..6),
            cut in 0usize..400,
            chunk in 1usize..64,
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let mut stream = [fragment(10), fragment(20)].concat();
            for (at, x) in flips {
                let n = stream.len();
                stream[at % n] ^= x;
            }
            stream.truncate(cut.min(stream.len()));
            stream.extend(noise);
            let mut d = Demuxer::new();
            let mut audio = crate::read::audio::tracks::CallAudio::new("c-1");
            let mut failed = false;
            for part in stream.chunks(chunk) {
                if d.push(part, &mut audio).is_err() {
                    failed = true;
                    break;
                }
            }
            if !failed {
                let _ = d.finish();
                let _ = audio.finish();
            }
        }
    }
}
