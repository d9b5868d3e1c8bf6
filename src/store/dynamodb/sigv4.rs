//! Signature Version 4 for the direct client's DynamoDB requests, written straight into the
//! request's bytes (issue 14).
//!
//! The direct client sends three kinds of request, all `POST /` with a JSON body and the same
//! five or six headers. `aws-sigv4` (the SDK's signer) signs any request: it builds the
//! canonical request and the string to sign as owned strings, sorts and lower-cases the
//! headers, formats the date through `fmt`, and derives the signing key (four HMACs) every
//! time: about 38,000 instructions a request on the dev VM besides SHA-256 itself, where
//! this signer and the connection's exchange together take about 10,000 (callgrind,
//! README "Performance"). This module knows the request's shape, so it hashes
//! the canonical request as it goes, formats the date by hand and keeps the signing key for
//! the day it is valid.
//!
//! The algorithm is AWS's
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html>):
//! 1. the canonical request: method, path `/`, empty query, the signed headers as
//!    `name:value` lines in name order, a blank line, the signed header names joined by `;`,
//!    and the hex SHA-256 of the body;
//! 2. the string to sign: `AWS4-HMAC-SHA256`, the `x-amz-date`, the scope
//!    `YYYYMMDD/region/dynamodb/aws4_request` and the hex SHA-256 of the canonical request;
//! 3. the signing key: HMAC-SHA256 chained over `AWS4` + secret, the date, the region,
//!    `dynamodb` and `aws4_request`; the signature is the hex HMAC of the string to sign.
//!
//! Signed here, as `aws-sigv4` signs them for DynamoDB: `content-length`, `content-type`,
//! `host`, `x-amz-date`, `x-amz-security-token` (temporary credentials, as on Lambda) and
//! `x-amz-target`. Checked against botocore's and `aws-sigv4`'s signers in the tests.

use aws_credential_types::Credentials;
use chrono::{DateTime, Datelike, Timelike, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::sync::Mutex;
use std::time::SystemTime;

type HmacSha256 = Hmac<Sha256>;

/// The content type of every DynamoDB JSON 1.0 request.
const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// Signs DynamoDB requests in one region, keeping the signing key of the current day.
#[derive(Debug)]
pub struct Signer {
    region: String,
    key: Mutex<Option<DayKey>>,
}

/// A signing key and what it was derived from.
#[derive(Debug, Clone)]
struct DayKey {
    date: [u8; 8],
    secret: String,
    key: [u8; 32],
}

/// `YYYYMMDD` and `YYYYMMDDTHHMMSSZ` of a time, in UTC.
struct Stamp {
    date: [u8; 8],
    datetime: [u8; 16],
}

impl Stamp {
    fn of(time: SystemTime) -> Stamp {
        let t: DateTime<Utc> = time.into();
        let mut datetime = *b"00000000T000000Z";
        let mut put = |at: usize, width: usize, mut v: u32| {
            for i in (at..at + width).rev() {
                datetime[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, t.year().clamp(0, 9999) as u32);
        put(4, 2, t.month());
        put(6, 2, t.day());
        put(9, 2, t.hour());
        put(11, 2, t.minute());
        put(13, 2, t.second());
        let mut date = [0u8; 8];
        date.copy_from_slice(&datetime[..8]);
        Stamp { date, datetime }
    }
}

impl Signer {
    pub fn new(region: impl Into<String>) -> Signer {
        Signer {
            region: region.into(),
            key: Mutex::new(None),
        }
    }

    /// Appends to `out` the whole HTTP/1.1 request `POST /` of DynamoDB operation `op`
    /// (`PutItem`, `Query`, `TransactWriteItems`...) to `host` with `body`, signed with
    /// `creds` at `time`: the head, then the body.
    pub fn write_request(
        &self,
        out: &mut Vec<u8>,
        host: &str,
        op: &str,
        body: &[u8],
        creds: &Credentials,
        time: SystemTime,
    ) {
        let stamp = Stamp::of(time);
        let datetime = ascii(&stamp.datetime);
        let date = ascii(&stamp.date);
        let mut length = itoa::Buffer::new();
        let length = length.format(body.len());
        let token = creds.session_token();
        let signed_headers = if token.is_some() {
            "content-length;content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
        } else {
            "content-length;content-type;host;x-amz-date;x-amz-target"
        };

        // 1. The canonical request, hashed as it is written.
        let mut canonical = Sha256::new();
        for part in [
            "POST\n/\n\ncontent-length:",
            length,
            "\ncontent-type:",
            CONTENT_TYPE,
            "\nhost:",
            host,
            "\nx-amz-date:",
            datetime,
            "\n",
        ] {
            canonical.update(part.as_bytes());
        }
        if let Some(token) = token {
            for part in ["x-amz-security-token:", token, "\n"] {
                canonical.update(part.as_bytes());
            }
        }
        for part in [
            "x-amz-target:DynamoDB_20120810.",
            op,
            "\n\n",
            signed_headers,
            "\n",
        ] {
            canonical.update(part.as_bytes());
        }
        canonical.update(hex(&Sha256::digest(body)).as_bytes());
        let canonical = hex(&canonical.finalize());

        // 2. The string to sign, HMAC'd as it is written with (3.) the day's key.
        let key = self.signing_key(&stamp.date, creds.secret_access_key());
        let mut mac = hmac_with(&key);
        mac.update(b"AWS4-HMAC-SHA256\n");
        mac.update(datetime.as_bytes());
        mac.update(b"\n");
        self.scope(&mut |s| mac.update(s.as_bytes()), date);
        mac.update(b"\n");
        mac.update(canonical.as_bytes());
        let signature = hex(&mac.finalize().into_bytes());

        // The head, then the body.
        let mut head = |s: &str| out.extend_from_slice(s.as_bytes());
        for part in [
            "POST / HTTP/1.1\r\nhost: ",
            host,
            "\r\ncontent-type: ",
            CONTENT_TYPE,
            "\r\nx-amz-target: DynamoDB_20120810.",
            op,
            "\r\ncontent-length: ",
            length,
            "\r\nx-amz-date: ",
            datetime,
            "\r\n",
        ] {
            head(part);
        }
        if let Some(token) = token {
            for part in ["x-amz-security-token: ", token, "\r\n"] {
                head(part);
            }
        }
        for part in [
            "authorization: AWS4-HMAC-SHA256 Credential=",
            creds.access_key_id(),
            "/",
        ] {
            head(part);
        }
        self.scope(&mut head, date);
        for part in [
            ", SignedHeaders=",
            signed_headers,
            ", Signature=",
            signature.as_str(),
            "\r\n\r\n",
        ] {
            head(part);
        }
        out.extend_from_slice(body);
    }

    /// `YYYYMMDD/region/dynamodb/aws4_request`, in parts.
    fn scope(&self, write: &mut dyn FnMut(&str), date: &str) {
        for part in [date, "/", self.region.as_str(), "/dynamodb/aws4_request"] {
            write(part);
        }
    }

    /// The day's signing key for `secret`, derived once a day (or when the secret changes).
    fn signing_key(&self, date: &[u8; 8], secret: &str) -> [u8; 32] {
        // A poisoned lock only means a panic elsewhere mid-update: the value is whole.
        let mut cached = self.key.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = cached
            .as_ref()
            .filter(|k| &k.date == date && k.secret == secret)
        {
            return k.key;
        }
        let mut key = [0u8; 32];
        let mut mac = hmac_with_secret(secret);
        mac.update(date);
        let k_date = mac.finalize().into_bytes();
        let next = |k: &[u8], data: &[u8]| {
            let mut mac = hmac_with(k);
            mac.update(data);
            mac.finalize().into_bytes()
        };
        let k_region = next(&k_date, self.region.as_bytes());
        let k_service = next(&k_region, b"dynamodb");
        key.copy_from_slice(&next(&k_service, b"aws4_request"));
        *cached = Some(DayKey {
            date: *date,
            secret: secret.to_string(),
            key,
        });
        key
    }
}

/// An HMAC-SHA256 keyed with `key` (HMAC takes keys of any length).
fn hmac_with(key: &[u8]) -> HmacSha256 {
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

/// The first HMAC of the chain, keyed with `AWS4` + the secret.
fn hmac_with_secret(secret: &str) -> HmacSha256 {
    let mut k = Vec::with_capacity(4 + secret.len());
    k.extend_from_slice(b"AWS4");
    k.extend_from_slice(secret.as_bytes());
    hmac_with(&k)
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// The ASCII digits of a stamp as a `&str`.
fn ascii(bytes: &[u8]) -> &str {
    // Only ASCII digits, `T` and `Z` are ever written into a stamp.
    std::str::from_utf8(bytes).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;
    use aws_smithy_runtime_api::client::identity::Identity;
    use std::time::Duration;

    /// The request's head as (lower-case name, value) pairs, and its body.
    fn parse(request: &[u8]) -> (String, Vec<(String, String)>, Vec<u8>) {
        let end = request
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a head and a body");
        let head = std::str::from_utf8(&request[..end]).expect("an ASCII head");
        let body = &request[end + 4..];
        let mut lines = head.split("\r\n");
        let start = lines.next().expect("a request line").to_string();
        let headers = lines
            .map(|l| {
                let (k, v) = l.split_once(": ").expect("name: value");
                (k.to_string(), v.to_string())
            })
            .collect();
        (start, headers, body.to_vec())
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }

    /// What `aws-sigv4` (the SDK's signer, as the direct client used it before) makes of
    /// the same request: its `authorization`, `x-amz-date` and `x-amz-security-token`.
    fn sdk_signature(
        host: &str,
        region: &str,
        creds: &Credentials,
        op: &str,
        body: &[u8],
        time: SystemTime,
    ) -> (String, String, Option<String>) {
        let uri = format!("https://{host}/");
        let length = body.len().to_string();
        let target = format!("DynamoDB_20120810.{op}");
        let headers = [
            ("host", host),
            ("content-type", CONTENT_TYPE),
            ("x-amz-target", target.as_str()),
            ("content-length", length.as_str()),
        ];
        let identity: Identity = creds.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name("dynamodb")
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .expect("signing parameters")
            .into();
        let signable =
            SignableRequest::new("POST", &uri, headers.into_iter(), SignableBody::Bytes(body))
                .expect("signable");
        let (instructions, _) = sign(signable, &params).expect("signed").into_parts();
        let (added, _) = instructions.into_parts();
        let get = |name: &str| {
            added
                .iter()
                .find(|h| h.name() == name)
                .map(|h| h.value().to_string())
        };
        (
            get("authorization").unwrap_or_default(),
            get("x-amz-date").unwrap_or_default(),
            get("x-amz-security-token"),
        )
    }

    #[test]
    fn the_request_is_a_post_with_the_operation_and_the_body() {
        let creds = Credentials::new("AKID", "secret", None, None, "test");
        let mut out = Vec::new();
        Signer::new("us-east-1").write_request(
            &mut out,
            "127.0.0.1:8000",
            "Query",
            b"{\"a\":1}",
            &creds,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_633_600),
        );
        let (start, headers, body) = parse(&out);
        assert_eq!(start, "POST / HTTP/1.1");
        assert_eq!(header(&headers, "host"), "127.0.0.1:8000");
        assert_eq!(header(&headers, "content-type"), CONTENT_TYPE);
        assert_eq!(header(&headers, "x-amz-target"), "DynamoDB_20120810.Query");
        assert_eq!(header(&headers, "content-length"), "7");
        assert_eq!(header(&headers, "x-amz-date"), "20251202T000000Z");
        assert!(headers.iter().all(|(k, _)| k != "x-amz-security-token"));
        assert!(header(&headers, "authorization").starts_with(
            "AWS4-HMAC-SHA256 Credential=AKID/20251202/us-east-1/dynamodb/aws4_request, \
             SignedHeaders=content-length;content-type;host;x-amz-date;x-amz-target, Signature="
        ));
        assert_eq!(body, b"{\"a\":1}");
    }

    /// The same signature as `aws-sigv4` over many requests: operations, bodies, hosts,
    /// regions, with and without a session token, across days (the cached key must follow
    /// the date and the secret).
    #[test]
    fn signatures_agree_with_aws_sigv4() {
        let signers = [Signer::new("us-east-1"), Signer::new("eu-west-1")];
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for i in 0..300 {
            let signer = &signers[i % 2];
            let op = ["PutItem", "Query", "TransactWriteItems"][(next() % 3) as usize];
            let host = [
                "dynamodb.us-east-1.amazonaws.com",
                "localhost:4566",
                "127.0.0.1:8000",
            ][(next() % 3) as usize];
            let token = (next() % 2 == 0).then(|| format!("token/{}+=", next()));
            let secret = ["s3cret/KEY+1", "another-secret"][(next() % 2) as usize];
            let creds = Credentials::new("AKIDEXAMPLE", secret, token, None, "test");
            let body: Vec<u8> = (0..next() % 3000)
                .map(|_| b"{}\"ab cd\xc3\xa9:0,[]"[(next() % 15) as usize])
                .collect();
            // Two days around a midnight, to the second.
            let time = SystemTime::UNIX_EPOCH
                + Duration::from_secs(1_764_633_600 - 2 + next() % 5)
                + Duration::from_millis(next() % 1000);
            let mut out = Vec::new();
            signer.write_request(&mut out, host, op, &body, &creds, time);
            let (_, headers, sent) = parse(&out);
            let (authorization, date, token) =
                sdk_signature(host, &signer.region, &creds, op, &body, time);
            assert_eq!(
                header(&headers, "authorization"),
                authorization,
                "request {i}"
            );
            assert_eq!(header(&headers, "x-amz-date"), date, "request {i}");
            assert_eq!(
                headers
                    .iter()
                    .find(|(k, _)| k == "x-amz-security-token")
                    .map(|(_, v)| v.clone()),
                token,
                "request {i}"
            );
            assert_eq!(sent, body);
        }
    }

    /// The signature the direct client sends is the one botocore (Python's AWS SDK, an
    /// independent SigV4 implementation) computes for the same request, time and keys.
    #[test]
    fn sigv4_agrees_with_botocore() {
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("session-token/xyz=".into()),
            None,
            "test",
        );
        let body = br#"{"TableName":"t","Item":{"seq":{"N":"1"}}}"#;
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_633_600); // 2025-12-02T00:00:00Z
        let mut request = Vec::new();
        Signer::new("eu-west-1").write_request(
            &mut request,
            "dynamodb.eu-west-1.amazonaws.com",
            "PutItem",
            body,
            &creds,
            time,
        );
        let (_, headers, _) = parse(&request);
        let script = r#"
import sys, json, datetime
from unittest import mock
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
body = sys.stdin.buffer.read()
req = AWSRequest(method="POST", url="https://dynamodb.eu-west-1.amazonaws.com/", data=body,
    headers={"Content-Type": "application/x-amz-json-1.0",
             "X-Amz-Target": "DynamoDB_20120810.PutItem",
             "Content-Length": str(len(body))})
creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token/xyz=")
with mock.patch("botocore.auth.get_current_datetime",
                return_value=datetime.datetime(2025, 12, 2, 0, 0, 0)):
    SigV4Auth(creds, "dynamodb", "eu-west-1").add_auth(req)
print(json.dumps({"authorization": req.headers["Authorization"], "date": req.headers["X-Amz-Date"]}))
"#;
        let mut child = std::process::Command::new("python3")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("python3 (with botocore: pip install boto3) to check SigV4 against");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(body)
            .expect("body to python");
        let out = child.wait_with_output().expect("python3 ran");
        assert!(
            out.status.success(),
            "botocore could not sign: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("botocore's JSON");
        assert_eq!(
            header(&headers, "x-amz-date"),
            theirs["date"].as_str().unwrap_or_default()
        );
        assert_eq!(
            header(&headers, "x-amz-security-token"),
            "session-token/xyz="
        );
        assert_eq!(
            header(&headers, "authorization"),
            theirs["authorization"].as_str().unwrap_or_default()
        );
    }
}
