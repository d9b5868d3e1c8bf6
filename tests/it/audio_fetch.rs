//! `triage audio CONTACT_ID --out call.wav` (issue 17, point 5), the real binary against a
//! local Kinesis Video Streams on loopback ([`Kvs`]): `POST /getDataEndpoint` answers its
//! own address, `POST /getMedia` a Matroska stream, chunked, as GetMedia sends it; both
//! record the requests, so the tests check what was asked (the stream ARN, the start
//! selector, SigV4 with the service `kinesisvideo` in the ARN's region).
//!
//! The calls are made through `triage invoke` with Connect's `MediaStreams` block, so the
//! `AudioStreamed` event is the Lambda's own. The streams:
//! - Connect-like ([`connect_stream`]), written here byte by byte: two tracks named
//!   `AUDIO_FROM_CUSTOMER` and `AUDIO_TO_CUSTOMER` with CodecID `A_AAC` over 16-bit PCM,
//!   fragments of one EBML header and Segment each (some of unknown size, their Clusters
//!   too), Cluster timestamps in epoch milliseconds, the `AWS_KINESISVIDEO_*` tags before
//!   the Cluster and `ContactId` after it, and a last fragment of another contact;
//! - Debian's ffmpeg: four one-second files (`-output_ts_offset`), one written to a pipe
//!   (unknown-size Segment), concatenated: 440 Hz on the caller's track, 880 Hz on the line's.

use crate::cli::{stderr, Triage};
use crate::events::{contact_event, new_contact_id};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const START_FRAGMENT: &str = "91343852333181432392682062622220590765191907586";
/// The first Cluster's time: epoch milliseconds, as in Connect's streams.
const BASE_MS: u64 = 1_726_677_688_724;

fn stream_arn(cid: &str) -> String {
    format!("arn:aws:kinesisvideo:eu-west-1:123456789012:stream/connect-triage-connect-line-contact-{cid}/1726677687000")
}

// ---- the local Kinesis Video Streams -------------------------------------------------------

/// What `POST /getMedia` answers.
#[derive(Clone)]
enum Reply {
    /// 200 and these bytes, chunked (`chunk` bytes a chunk); then the body ends, or the
    /// connection stays open with nothing more for `hold` (GetMedia waiting for new data).
    Media {
        bytes: Vec<u8>,
        chunk: usize,
        hold: Option<Duration>,
    },
    /// An error response, as the service sends one.
    Error {
        status: u16,
        kind: &'static str,
        message: &'static str,
    },
}

#[derive(Debug, Clone)]
struct Request {
    path: String,
    authorization: String,
    body: Value,
}

/// Kinesis Video Streams' two calls, on a loopback port, one thread per connection.
struct Kvs {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl Kvs {
    fn start(reply: Reply) -> Kvs {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (reqs, halt) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (reqs, reply) = (reqs.clone(), reply.clone());
                std::thread::spawn(move || serve(conn, port, &reqs, &reply));
            }
        });
        Kvs {
            port,
            requests,
            stop,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("requests").clone()
    }
}

impl Drop for Kvs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One request on `conn`, answered, then the connection is closed.
fn serve(conn: TcpStream, port: u16, requests: &Mutex<Vec<Request>>, reply: &Reply) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let (mut length, mut authorization) = (0usize, String::new());
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        let (name, value) = h.split_once(':').unwrap_or((&h, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap_or(0),
            "authorization" => authorization = value.trim().to_string(),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    requests.lock().expect("requests").push(Request {
        path: path.clone(),
        authorization: authorization.clone(),
        body,
    });
    let mut out = conn;
    let respond = |out: &mut TcpStream, status: &str, headers: &str, body: &[u8]| {
        let _ = write!(
            out,
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
            body.len()
        );
        let _ = out.write_all(body);
    };
    if !authorization.contains("/kinesisvideo/aws4_request") {
        respond(
            &mut out,
            "403 Forbidden",
            "Content-Type: application/json\r\n",
            br#"{"message":"not signed for kinesisvideo"}"#,
        );
        return;
    }
    match (path.as_str(), reply) {
        ("/getDataEndpoint", _) => {
            let body = json!({ "DataEndpoint": format!("http://127.0.0.1:{port}") }).to_string();
            respond(
                &mut out,
                "200 OK",
                "Content-Type: application/json\r\n",
                body.as_bytes(),
            );
        }
        ("/getMedia", Reply::Media { bytes, chunk, hold }) => {
            let _ = write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: video/webm\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            );
            for part in bytes.chunks((*chunk).max(1)) {
                let ok = write!(out, "{:x}\r\n", part.len()).is_ok()
                    && out.write_all(part).is_ok()
                    && out.write_all(b"\r\n").is_ok()
                    && out.flush().is_ok();
                if !ok {
                    return; // the reader hung up
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            match hold {
                Some(hold) => std::thread::sleep(*hold),
                None => {
                    let _ = out.write_all(b"0\r\n\r\n");
                }
            }
        }
        (
            "/getMedia",
            Reply::Error {
                status,
                kind,
                message,
            },
        ) => {
            let body = json!({ "message": message }).to_string();
            respond(
                &mut out,
                &format!("{status} Error"),
                &format!("Content-Type: application/json\r\nx-amzn-ErrorType: {kind}:http://internal.amazon.com/coral/com.amazonaws.kinesis.video.v20170930/\r\nx-amz-RequestId: 00000000-0000-0000-0000-000000000000\r\n"),
                body.as_bytes(),
            );
        }
        _ => respond(&mut out, "404 Not Found", "", b""),
    }
}

// ---- EBML, written by hand ------------------------------------------------------------------

const EBML: u32 = 0x1A45_DFA3;
const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const CLUSTER: u32 = 0x1F43_B675;
const TAGS: u32 = 0x1254_C367;
const TAG: u32 = 0x7373;
const SIMPLE_TAG: u32 = 0x67C8;

fn id_bytes(id: u32) -> Vec<u8> {
    id.to_be_bytes()
        .into_iter()
        .skip_while(|&b| b == 0)
        .collect()
}

/// An element with its size in the fewest bytes.
fn el(id: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = id_bytes(id);
    let n = payload.len() as u64;
    let len = (1..=8).find(|&l| n < (1u64 << (7 * l)) - 1).expect("size");
    let marked = n | (1u64 << (7 * len));
    v.extend_from_slice(&marked.to_be_bytes()[8 - len as usize..]);
    v.extend_from_slice(payload);
    v
}

/// An element of unknown size (every value bit set, 8 bytes), as live Matroska writers do.
fn el_unknown(id: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = id_bytes(id);
    v.extend_from_slice(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
    v.extend_from_slice(payload);
    v
}

fn uint(id: u32, n: u64) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let skip = bytes.iter().take(7).take_while(|&&b| b == 0).count();
    el(id, &bytes[skip..])
}

fn text(id: u32, s: &str) -> Vec<u8> {
    el(id, s.as_bytes())
}

fn tags(pairs: &[(&str, &str)]) -> Vec<u8> {
    let simple: Vec<u8> = pairs
        .iter()
        .flat_map(|(n, v)| el(SIMPLE_TAG, &[text(0x45A3, n), text(0x4487, v)].concat()))
        .collect();
    el(TAGS, &el(TAG, &[el(0x63C0, &[]), simple].concat()))
}

fn ebml_header() -> Vec<u8> {
    el(
        EBML,
        &[
            uint(0x4286, 1),
            uint(0x42F7, 1),
            uint(0x42F2, 4),
            uint(0x42F3, 8),
            text(0x4282, "matroska"),
            uint(0x4287, 2),
            uint(0x4285, 2),
        ]
        .concat(),
    )
}

fn track_entry(number: u64, name: &str) -> Vec<u8> {
    el(
        TRACK_ENTRY,
        &[
            uint(0xD7, number),
            uint(0x73C5, number),
            text(0x536E, name),
            text(0x86, "A_AAC"),
            el(0x63A2, &[0x15, 0x88]),
            uint(0x83, 2),
            el(0xE1, &el(0xB5, &8000f64.to_be_bytes())),
        ]
        .concat(),
    )
}

fn simple_block(track: u8, relative_ms: i16, samples: &[i16]) -> Vec<u8> {
    let mut b = vec![0x80 | track];
    b.extend_from_slice(&relative_ms.to_be_bytes());
    b.push(0x80); // keyframe, unlaced
    for s in samples {
        b.extend_from_slice(&s.to_le_bytes());
    }
    el(0xA3, &b)
}

/// What the caller says at sample `n` of the call (a ramp), and what the line plays.
fn caller_at(n: usize) -> i16 {
    ((n * 37) % 20_000) as i16 - 10_000
}
fn line_at(n: usize) -> i16 {
    15_000 - ((n * 11) % 30_000) as i16
}

/// Samples of a 125 ms block.
const BLOCK: usize = 1_000;

/// One Connect-like fragment: second `second` of contact `contact`'s stream, with the blocks
/// `skip` leaves out ((track, block index) pairs), written with unknown sizes when `live`.
fn fragment(contact: &str, second: usize, skip: &[(u8, usize)], live: bool) -> Vec<u8> {
    let info = el(
        INFO,
        &[
            uint(0x2A_D7B1, 1_000_000),
            text(0x7BA9, "Kinesis Video SDK"),
            text(0x4D80, "Kinesis Video SDK 1.0"),
            text(0x5741, "Kinesis Video SDK 1.0"),
        ]
        .concat(),
    );
    let tracks = el(
        TRACKS,
        &[
            track_entry(1, "AUDIO_FROM_CUSTOMER"),
            track_entry(2, "AUDIO_TO_CUSTOMER"),
        ]
        .concat(),
    );
    let number = format!("{}{second:02}", &START_FRAGMENT[..45]);
    let before = tags(&[
        ("AWS_KINESISVIDEO_FRAGMENT_NUMBER", &number),
        ("AWS_KINESISVIDEO_SERVER_TIMESTAMP", "1726677687.758"),
        ("AWS_KINESISVIDEO_PRODUCER_TIMESTAMP", "1726677688.724"),
    ]);
    let mut cluster = uint(0xE7, BASE_MS + 1_000 * second as u64);
    for k in 0..8 {
        let first = second * 8_000 + k * BLOCK;
        for track in [1u8, 2] {
            if skip.contains(&(track, k)) {
                continue;
            }
            let f = if track == 1 { caller_at } else { line_at };
            let samples: Vec<i16> = (first..first + BLOCK).map(f).collect();
            cluster.extend(simple_block(track, (k * 125) as i16, &samples));
        }
    }
    let cluster = if live {
        el_unknown(CLUSTER, &cluster)
    } else {
        el(CLUSTER, &cluster)
    };
    let after = tags(&[
        ("ContactId", contact),
        ("InstanceId", "e7d3f6a4-0000-4000-8000-000000000000"),
        ("MimeType", "audio/L16;rate=8000;channels=1;"),
        ("AUDIO_FROM_CUSTOMER", "1"),
        ("AUDIO_TO_CUSTOMER", "2"),
        ("Events", "[]"),
        ("AWS_KINESISVIDEO_MILLIS_BEHIND_NOW", "2170"),
        ("AWS_KINESISVIDEO_CONTINUATION_TOKEN", &number),
    ]);
    let segment = [info, tracks, before, cluster, after].concat();
    let segment = if live {
        el_unknown(SEGMENT, &segment)
    } else {
        el(SEGMENT, &segment)
    };
    [ebml_header(), segment].concat()
}

/// Three seconds of `contact`'s call, then a second of the next call on the same stream.
/// The line starts 250 ms after the caller (its first two blocks are missing), and the
/// caller's fifth block of the second second is lost (a gap).
fn connect_stream(contact: &str) -> Vec<Vec<u8>> {
    vec![
        fragment(contact, 0, &[(2, 0), (2, 1)], true),
        fragment(contact, 1, &[(1, 4)], false),
        fragment(contact, 2, &[], true),
        fragment("0b1c0000-0000-4000-8000-00000000beef", 3, &[], true),
    ]
}

/// A GetMedia error chunk: a fragment whose tags say what went wrong.
fn error_fragment(code: &str) -> Vec<u8> {
    let segment = el(
        SEGMENT,
        &tags(&[
            ("AWS_KINESISVIDEO_ERROR_CODE", code),
            (
                "AWS_KINESISVIDEO_ERROR_ID",
                "77b8e9a0-0000-4000-8000-000000000000",
            ),
        ]),
    );
    [ebml_header(), segment].concat()
}

// ---- the command line -----------------------------------------------------------------------

/// A call recorded by `triage invoke` with Connect's MediaStreams block (the Lambda's path):
/// its contact id.
fn call_with_audio(t: &Triage, cid: &str) {
    let mut ev = contact_event(cid, &[]);
    ev["Details"]["ContactData"]["MediaStreams"] = json!({"Customer": {"Audio": {
        "StartFragmentNumber": START_FRAGMENT,
        "StartTimestamp": "1726677688724",
        "StreamARN": stream_arn(cid),
    }}});
    let out = crate::cli::run_triage_with(
        &t.store(),
        &["invoke"],
        ev.to_string().as_bytes(),
        &[("TRIAGE_AUDIO_STREAM_PREFIX", "connect-triage")],
    );
    assert!(out.status.success(), "invoke: {}", stderr(&out));
    let log = std::fs::read_to_string(t.log()).expect("log");
    assert!(
        log.lines()
            .any(|l| l.contains("AudioStreamed") && l.contains(cid)),
        "{log}"
    );
}

/// `triage audio` with the local service's endpoint and test credentials.
fn audio(t: &Triage, kvs: Option<&Kvs>, args: &[&str]) -> Output {
    let endpoint = kvs.map_or("http://127.0.0.1:9".to_string(), Kvs::url);
    // No profile of the machine's: empty AWS config files.
    let empty = t.dir.path().join("aws");
    std::fs::create_dir_all(&empty).expect("mkdir");
    for f in ["config", "credentials"] {
        std::fs::write(empty.join(f), "").expect("empty AWS file");
    }
    Command::new(env!("CARGO_BIN_EXE_triage"))
        .arg("audio")
        .args(args)
        .env("TRIAGE_STORE", t.store())
        .env("AWS_ENDPOINT_URL_KINESIS_VIDEO", endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", empty.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", empty.join("credentials"))
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run triage audio")
}

/// A failure: non-zero, one line `error: ...` holding every one of `wants`, nothing on stdout.
fn assert_one_line_error(out: &Output, wants: &[&str]) -> String {
    let err = stderr(out);
    assert!(!out.status.success(), "succeeded: {err}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let last = err.lines().last().unwrap_or_default().to_string();
    assert!(last.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "{err}"
    );
    for w in wants {
        assert!(last.contains(w), "{w:?} not in {last}");
    }
    last
}

/// The WAV's two channels, after checking its header says 8 kHz 16-bit stereo PCM.
fn read_wav(path: &std::path::Path) -> (Vec<i16>, Vec<i16>) {
    let wav = std::fs::read(path).expect("the WAV");
    assert!(wav.len() >= 44, "{} bytes", wav.len());
    let u16_at = |i: usize| u16::from_le_bytes([wav[i], wav[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([wav[i], wav[i + 1], wav[i + 2], wav[i + 3]]);
    assert_eq!(&wav[0..4], b"RIFF");
    assert_eq!(u32_at(4) as usize, wav.len() - 8);
    assert_eq!(&wav[8..16], b"WAVEfmt ");
    assert_eq!((u16_at(20), u16_at(22), u32_at(24)), (1, 2, 8_000));
    assert_eq!((u32_at(28), u16_at(32), u16_at(34)), (32_000, 4, 16));
    assert_eq!(&wav[36..40], b"data");
    assert_eq!(u32_at(40) as usize, wav.len() - 44);
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for frame in wav[44..].chunks_exact(4) {
        left.push(i16::from_le_bytes([frame[0], frame[1]]));
        right.push(i16::from_le_bytes([frame[2], frame[3]]));
    }
    (left, right)
}

/// Files in `dir` other than the event log (and its companions): what a run left there.
fn left_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wav") || n.contains(".partial"))
        .collect();
    names.sort();
    names
}

// ---- the tests ------------------------------------------------------------------------------

#[test]
fn a_connect_stream_becomes_the_calls_wav_with_both_tracks_aligned() {
    let t = Triage::new();
    let cid = new_contact_id();
    call_with_audio(&t, &cid);
    // The next call's fragment comes, then GetMedia waits for more: the read must stop at
    // the other contact's tag, not at the idle limit.
    let kvs = Kvs::start(Reply::Media {
        bytes: connect_stream(&cid).concat(),
        chunk: 1_500,
        hold: Some(Duration::from_secs(30)),
    });
    let wav = t.dir.path().join("call.wav");
    let out = audio(
        &t,
        Some(&kvs),
        &[
            &cid,
            "--out",
            wav.to_str().expect("path"),
            "--idle-seconds",
            "20",
        ],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    // Where the read stopped is in the message: at the next contact's tag (with the idle
    // limit, 20 s, it would say "nothing came for 20 s"; past the hold, that the stream ended).
    assert!(
        err.contains("the stream went on to contact 0b1c0000-0000-4000-8000-00000000beef"),
        "{err}"
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(
        said.contains("3.0 s (caller 3.0 s, line 3.0 s)") && said.contains("from 3 fragments"),
        "{said}"
    );
    assert!(said.contains(&format!("{} bytes", "96,044")), "{said}");

    // Every sample where it belongs: the caller's ramp with its lost block as silence; the
    // line's from 250 ms on; nothing of the next call.
    let (left, right) = read_wav(&wav);
    let n = 3 * 8_000;
    assert_eq!((left.len(), right.len()), (n, n));
    for i in 0..n {
        let lost = (8_000 + 4 * BLOCK..8_000 + 5 * BLOCK).contains(&i);
        assert_eq!(
            left[i],
            if lost { 0 } else { caller_at(i) },
            "left sample {i}"
        );
        assert_eq!(
            right[i],
            if i < 2 * BLOCK { 0 } else { line_at(i) },
            "right sample {i}"
        );
    }
    assert_eq!(left_in(t.dir.path()), ["call.wav"]);

    // What was asked: the ARN's endpoint, then its media after the recorded fragment,
    // signed for kinesisvideo in the ARN's region.
    let reqs = kvs.requests();
    let paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/getDataEndpoint", "/getMedia"]);
    assert_eq!(
        reqs[0].body,
        json!({"APIName": "GET_MEDIA", "StreamARN": stream_arn(&cid)})
    );
    assert_eq!(
        reqs[1].body,
        json!({
            "StreamARN": stream_arn(&cid),
            "StartSelector": {"StartSelectorType": "FRAGMENT_NUMBER", "AfterFragmentNumber": START_FRAGMENT}
        })
    );
    for r in &reqs {
        assert!(
            r.authorization
                .starts_with("AWS4-HMAC-SHA256 Credential=test/")
                && r.authorization
                    .contains("/eu-west-1/kinesisvideo/aws4_request"),
            "{}",
            r.authorization
        );
    }
}

/// Debian's ffmpeg, or a failure that says how to get it.
fn ffmpeg() -> &'static str {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join("ffmpeg").is_file()));
    assert!(
        found,
        "this test makes its Matroska fixture with ffmpeg, which is not on PATH: install ffmpeg (apt-get install ffmpeg) or run scripts/test.sh"
    );
    "ffmpeg"
}

/// Second `second` of two sine tracks (440 Hz the caller, 880 Hz the line) as ffmpeg writes
/// Matroska, to a file (sizes known) or to a pipe (a Segment of unknown size).
fn ffmpeg_second(dir: &std::path::Path, second: u32, pipe: bool) -> Vec<u8> {
    let out = dir.join(format!("s{second}.mkv"));
    let mut cmd = Command::new(ffmpeg());
    cmd.args(["-hide_banner", "-loglevel", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=8000:duration=1",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=880:sample_rate=8000:duration=1",
        ])
        .args([
            "-map",
            "0:a",
            "-map",
            "1:a",
            "-c:a",
            "pcm_s16le",
            "-ar",
            "8000",
            "-ac",
            "1",
        ])
        .args(["-metadata:s:a:0", "title=AUDIO_FROM_CUSTOMER"])
        .args(["-metadata:s:a:1", "title=AUDIO_TO_CUSTOMER"])
        .args(["-output_ts_offset", &second.to_string(), "-f", "matroska"]);
    if pipe {
        let run = cmd
            .arg("pipe:")
            .stdin(Stdio::null())
            .output()
            .expect("run ffmpeg");
        assert!(
            run.status.success(),
            "ffmpeg: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        run.stdout
    } else {
        let run = cmd
            .arg(&out)
            .stdin(Stdio::null())
            .output()
            .expect("run ffmpeg");
        assert!(
            run.status.success(),
            "ffmpeg: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        std::fs::read(&out).expect("ffmpeg's file")
    }
}

/// Sign changes of a signal (zeros skipped): twice its frequency per second, for a sine.
fn crossings(s: &[i16]) -> usize {
    let signs: Vec<bool> = s.iter().filter(|&&x| x != 0).map(|&x| x > 0).collect();
    signs.windows(2).filter(|w| w[0] != w[1]).count()
}

#[test]
fn an_ffmpeg_stream_without_contact_tags_is_read_until_it_goes_quiet() {
    let t = Triage::new();
    let cid = new_contact_id();
    call_with_audio(&t, &cid);
    let fixtures = tempfile::tempdir().expect("tempdir");
    let stream: Vec<u8> = (0..4)
        .flat_map(|s| ffmpeg_second(fixtures.path(), s, s == 3))
        .collect();
    let kvs = Kvs::start(Reply::Media {
        bytes: stream,
        chunk: 4_096,
        hold: Some(Duration::from_secs(20)),
    });
    let wav = t.dir.path().join("ffmpeg.wav");
    let out = audio(
        &t,
        Some(&kvs),
        &[
            &cid,
            "--out",
            wav.to_str().expect("path"),
            "--idle-seconds",
            "1",
        ],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    // Where the read stopped is in the message (the stream itself ends only after 20 s).
    assert!(err.contains("nothing came for 1 s"), "{err}");
    assert!(
        err.contains("4 of 4 fragments had no ContactId tag"),
        "{err}"
    );
    let (left, right) = read_wav(&wav);
    // Four seconds at 8 kHz, the fragments end to end (Cluster timestamps 0, 1, 2, 3 s).
    assert_eq!((left.len(), right.len()), (32_000, 32_000));
    let (l, r) = (crossings(&left), crossings(&right));
    // 440 Hz: 880 sign changes a second; 880 Hz: 1,760.
    assert!((3_480..=3_560).contains(&l), "left: {l} sign changes");
    assert!((7_000..=7_080).contains(&r), "right: {r} sign changes");
    // ffmpeg's sine is at an eighth of full scale (4,095), on both channels.
    for ch in [&left, &right] {
        assert_eq!(ch.iter().map(|x| i32::from(*x).abs()).max(), Some(4_095));
    }
}

#[test]
fn a_cut_stream_is_one_line_and_no_file_unless_partial() {
    let t = Triage::new();
    let cid = new_contact_id();
    call_with_audio(&t, &cid);
    let frags = connect_stream(&cid);
    // Cut in the middle of the second fragment's Cluster (inside a block), then the body ends.
    let cut = frags[0].len() + frags[1].len() / 2;
    let bytes = frags.concat()[..cut].to_vec();
    let kvs = Kvs::start(Reply::Media {
        bytes,
        chunk: 700,
        hold: None,
    });
    let wav = t.dir.path().join("cut.wav");
    let path = wav.to_str().expect("path");
    let out = audio(&t, Some(&kvs), &[&cid, "--out", path]);
    assert_one_line_error(
        &out,
        &[
            "the Matroska stream was cut",
            &format!(
                "after {} bytes",
                connect_triage::read::thousands(cut as u64)
            ),
            "bytes short of the end of its SimpleBlock",
        ],
    );
    assert_eq!(left_in(t.dir.path()), Vec::<String>::new());

    // --partial: what was read whole, and the summary says it was cut.
    let out = audio(&t, Some(&kvs), &[&cid, "--out", path, "--partial"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("CUT SHORT (--partial)"));
    let (left, _) = read_wav(&wav);
    assert!(left.len() > 8_000 && left.len() < 16_000, "{}", left.len());
    assert_eq!(
        left[..8_000],
        (0..8_000).map(caller_at).collect::<Vec<_>>()[..]
    );
}

#[test]
fn an_error_chunk_names_its_code() {
    let t = Triage::new();
    let cid = new_contact_id();
    call_with_audio(&t, &cid);
    let kvs = Kvs::start(Reply::Media {
        bytes: error_fragment("4000"),
        chunk: 64,
        hold: None,
    });
    let wav = t.dir.path().join("call.wav");
    let out = audio(
        &t,
        Some(&kvs),
        &[&cid, "--out", wav.to_str().expect("path")],
    );
    assert_one_line_error(
        &out,
        &[
            "sent error 4000",
            "the requested fragment is not found",
            "AudioRetentionHours",
        ],
    );
    assert!(!wav.exists());
}

#[test]
fn a_missing_stream_is_a_clear_error() {
    let t = Triage::new();
    let cid = new_contact_id();
    call_with_audio(&t, &cid);
    let kvs = Kvs::start(Reply::Error {
        status: 404,
        kind: "ResourceNotFoundException",
        message: "The requested stream is not found or not active.",
    });
    let wav = t.dir.path().join("call.wav");
    let out = audio(
        &t,
        Some(&kvs),
        &[&cid, "--out", wav.to_str().expect("path")],
    );
    assert_one_line_error(
        &out,
        &[
            "GetMedia",
            "no such stream in eu-west-1",
            "ResourceNotFoundException",
            "describe-stream",
        ],
    );
    assert!(!wav.exists());
}

#[test]
fn a_call_without_audio_or_an_unknown_one_says_so() {
    let t = Triage::new();
    let cid = new_contact_id();
    // A call with no MediaStreams: streaming was off.
    let first = t.invoke(&contact_event(&cid, &[]));
    assert_eq!(first["question"], "contact");
    let wav = t.dir.path().join("call.wav");
    let path = wav.to_str().expect("path");
    let out = audio(&t, None, &[&cid, "--out", path]);
    assert_one_line_error(
        &out,
        &[
            &format!("call {cid} has no audio: streaming was off"),
            "AudioStreaming",
        ],
    );
    let other = new_contact_id();
    let out = audio(&t, None, &[&other, "--out", path]);
    assert_one_line_error(
        &out,
        &[&format!("no events for contact {other}"), "--store"],
    );
    assert!(!wav.exists());
}
