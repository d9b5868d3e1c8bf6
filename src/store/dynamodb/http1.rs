//! The direct client's connections to DynamoDB: HTTP/1.1 keep-alive over TCP, or over TLS
//! for `https` endpoints (issue 14).
//!
//! A turn sends one request and waits for its answer. Through the SDK's connector
//! (`aws-smithy-http-client`: hyper_util's pooled client behind the SDK's adapter) that
//! exchange went through a pool checkout, a request and header-map conversion, a channel to
//! the connection's own task and back, and the body's frame stream: about 32,000
//! instructions a request on the dev VM (callgrind, README "Performance"). Here a request
//! is the bytes [`super::sigv4::Signer::write_request`] made: one write, then reads until
//! the response is whole, on the caller's own task.
//!
//! What it keeps of a well-behaved HTTP/1.1 client (RFC 9112):
//! - responses framed by `Content-Length`, by `Transfer-Encoding: chunked`, or by the end of
//!   the connection; 1xx interim responses skipped; a response that cannot be parsed, or
//!   larger than [`MAX_RESPONSE`], is an error and its connection is dropped;
//! - keep-alive unless the server says `Connection: close` or speaks HTTP/1.0; a
//!   connection idle for [`IDLE_LIMIT`], or that became readable while idle (the server
//!   closed it, or sent what nobody asked for), is dropped, not reused;
//! - a request on a reused connection that gets no byte back before the connection ends
//!   (the server closed it as the request went out) is sent once more on a new one, as
//!   hyper_util's pool does for requests it could not send. DynamoDB's writes here are
//!   conditional and the store checks whether a lost write landed, so a second copy never
//!   records twice;
//! - `TCP_NODELAY` on every socket (issue 14, point 3), a connect timeout, and TLS 1.2/1.3
//!   through rustls on ring with the SDK's cipher suites, the platform's root certificates
//!   (`rustls-native-certs`, which honours `SSL_CERT_FILE` and `SSL_CERT_DIR`) and ALPN
//!   `http/1.1`, as the SDK's own connector sets them up.
//!
//! Not here: proxies (the SDK's connector in this crate has none configured either), HTTP/2,
//! compression (DynamoDB's JSON answers are sent plain unless asked).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// A connection idle this long is closed rather than reused. hyper_util's pool (the SDK's
/// connector) keeps idle connections 90 s; servers and load balancers commonly close them
/// after 60. Under that, a frozen Lambda container that wakes up later simply reconnects.
pub const IDLE_LIMIT: Duration = Duration::from_secs(50);
/// Idle connections kept per endpoint (a Lambda container serves one turn at a time; the
/// CLI's load test and the tests run several at once).
const MAX_IDLE: usize = 16;
/// The largest response read (a Query page is at most 1 MB of items, in DynamoDB JSON a
/// little more).
pub const MAX_RESPONSE: usize = 16 << 20;
/// Headers read in a response (DynamoDB sends about eight).
const MAX_HEADERS: usize = 64;

/// Where requests go: `http://host[:port]` or `https://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    tls: bool,
    /// The authority, as the `Host` header and the signature carry it.
    authority: String,
    /// The host name or address to connect to (no brackets for IPv6).
    host: String,
    port: u16,
}

impl Endpoint {
    /// An endpoint from its URI (`scheme://authority[/...]`); `None` for another scheme or a
    /// URI without a host.
    pub fn parse(uri: &str) -> Option<Endpoint> {
        let parsed: http::Uri = uri.parse().ok()?;
        let tls = match parsed.scheme_str()? {
            "https" => true,
            "http" => false,
            _ => return None,
        };
        let authority = parsed.authority()?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return None;
        }
        Some(Endpoint {
            tls,
            authority: authority.as_str().to_string(),
            host: host.to_string(),
            port: authority.port_u16().unwrap_or(if tls { 443 } else { 80 }),
        })
    }

    /// The `Host` header's value.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    pub fn is_tls(&self) -> bool {
        self.tls
    }
}

impl std::fmt::Display for Endpoint {
    /// `scheme://authority/`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}/", self.authority)
    }
}

/// A response: its status, its `x-amzn-ErrorType` header if any, and its whole body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub error_type: Option<String>,
    pub body: Vec<u8>,
}

/// Why an exchange failed. Every kind is worth another attempt: nothing came back that
/// says the request was refused.
#[derive(Debug)]
pub enum ExchangeError {
    /// No connection within the connect timeout.
    ConnectTimeout,
    /// No connection: the address did not resolve, or refused, or TLS failed.
    Connect(io::Error),
    /// The connection failed while sending or receiving.
    Io(io::Error),
    /// What came back is not an HTTP/1.1 response this client reads.
    Malformed(String),
}

impl std::fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExchangeError::ConnectTimeout => {
                f.write_str("no connection within the connect timeout")
            }
            ExchangeError::Connect(e) => write!(f, "could not connect: {e}"),
            ExchangeError::Io(e) => write!(f, "the connection failed: {e}"),
            ExchangeError::Malformed(why) => write!(f, "the response is not HTTP/1.1: {why}"),
        }
    }
}

impl std::error::Error for ExchangeError {}

/// Keep-alive connections to one endpoint.
pub struct Connections {
    endpoint: Endpoint,
    connect_timeout: Duration,
    idle: Mutex<Vec<Idle>>,
    /// Made at the first TLS connection (loading the platform's roots takes milliseconds).
    tls: OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("endpoint", &self.endpoint)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

struct Idle {
    stream: Stream,
    since: Instant,
}

impl Connections {
    pub fn new(endpoint: Endpoint, connect_timeout: Duration) -> Connections {
        Connections {
            endpoint,
            connect_timeout,
            idle: Mutex::new(Vec::new()),
            tls: OnceLock::new(),
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends `request` (a whole HTTP/1.1 request) and reads its response, on an idle
    /// connection if one is alive, else on a new one.
    pub async fn exchange(&self, request: &[u8]) -> Result<Reply, ExchangeError> {
        let (mut stream, mut reused) = match self.take_idle() {
            Some(idle) => (idle, true),
            None => (self.connect().await?, false),
        };
        loop {
            match round_trip(&mut stream, request).await {
                Ok((reply, keep)) => {
                    if keep {
                        self.put_idle(stream);
                    }
                    return Ok(reply);
                }
                // Closed under the request before a byte came back: once more, on a new one.
                Err(Failed {
                    received: false, ..
                }) if reused => {
                    stream = self.connect().await?;
                    reused = false;
                }
                Err(Failed { error, .. }) => return Err(error),
            }
        }
    }

    /// An idle connection that is still worth using, if any.
    fn take_idle(&self) -> Option<Stream> {
        loop {
            let Idle { mut stream, since } = self.lock().pop()?;
            if since.elapsed() < IDLE_LIMIT && stream.quiet() {
                return Some(stream);
            }
        }
    }

    fn put_idle(&self, stream: Stream) {
        let mut idle = self.lock();
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                stream,
                since: Instant::now(),
            });
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        // A poisoned lock only means a panic elsewhere mid-push: the list is whole.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn connect(&self) -> Result<Stream, ExchangeError> {
        let e = &self.endpoint;
        let tcp = tokio::time::timeout(
            self.connect_timeout,
            TcpStream::connect((e.host.as_str(), e.port)),
        )
        .await
        .map_err(|_| ExchangeError::ConnectTimeout)?
        .map_err(ExchangeError::Connect)?;
        tcp.set_nodelay(true).map_err(ExchangeError::Connect)?;
        if !e.tls {
            return Ok(Stream::Plain(tcp));
        }
        let config = self
            .tls
            .get_or_init(tls_config)
            .clone()
            .map_err(|why| ExchangeError::Connect(io::Error::other(why)))?;
        let name = rustls::pki_types::ServerName::try_from(e.host.clone()).map_err(|err| {
            ExchangeError::Connect(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{:?} is not a TLS server name: {err}", e.host),
            ))
        })?;
        let tls = tokio::time::timeout(
            self.connect_timeout,
            tokio_rustls::TlsConnector::from(config).connect(name, tcp),
        )
        .await
        .map_err(|_| ExchangeError::ConnectTimeout)?
        .map_err(ExchangeError::Connect)?;
        Ok(Stream::Tls(Box::new(tls)))
    }
}

/// The TLS settings of the SDK's own connector (aws-smithy-http-client's rustls provider on
/// ring): TLS 1.2 and 1.3 with its cipher suites, the platform's roots, ALPN `http/1.1`.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::CipherSuite as S;
    let base = rustls::crypto::ring::default_provider();
    let wanted = [
        S::TLS13_AES_256_GCM_SHA384,
        S::TLS13_AES_128_GCM_SHA256,
        S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        S::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    let cipher_suites = wanted
        .iter()
        .filter_map(|w| base.cipher_suites.iter().find(|s| s.suite() == *w).copied())
        .collect();
    let provider = rustls::crypto::CryptoProvider {
        cipher_suites,
        ..base
    };
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _unparsable) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(format!(
            "no root certificates found to check DynamoDB's TLS certificate against \
             (install the platform's CA bundle, or point SSL_CERT_FILE at one){}",
            if found.errors.is_empty() {
                String::new()
            } else {
                format!("; loading them failed: {:?}", found.errors)
            }
        ));
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS settings: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A failed round trip, and whether any of the response had come back.
struct Failed {
    error: ExchangeError,
    received: bool,
}

/// Writes `request`, reads the response: the reply, and whether the connection may be
/// used again.
async fn round_trip(stream: &mut Stream, request: &[u8]) -> Result<(Reply, bool), Failed> {
    let io = |error: io::Error, received: bool| Failed {
        error: ExchangeError::Io(error),
        received,
    };
    stream.write_all(request).await.map_err(|e| io(e, false))?;
    stream.flush().await.map_err(|e| io(e, false))?;
    let mut buf: Vec<u8> = Vec::with_capacity(8 << 10);
    loop {
        let head = read_head(stream, &mut buf).await?;
        if (100..200).contains(&head.status) {
            // An interim response (100 Continue...): the real one follows.
            buf.drain(..head.length);
            continue;
        }
        buf.drain(..head.length);
        let (body, ends_with_connection) = match head.framing {
            Framing::Length(n) => {
                fill(stream, &mut buf, n).await?;
                // Bytes past the body were never asked for: do not reuse the connection.
                let extra = buf.len() > n;
                buf.truncate(n);
                (buf, extra)
            }
            Framing::Chunked => (read_chunked(stream, buf).await?, false),
            Framing::Close => {
                loop {
                    if buf.len() > MAX_RESPONSE {
                        return Err(malformed("a body longer than the limit"));
                    }
                    buf.reserve(8 << 10);
                    match stream.read_buf(&mut buf).await {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) => return Err(io(e, true)),
                    }
                }
                (buf, true)
            }
        };
        let keep = head.keep_alive && !ends_with_connection;
        return Ok((
            Reply {
                status: head.status,
                error_type: head.error_type,
                body,
            },
            keep,
        ));
    }
}

fn malformed(why: &str) -> Failed {
    Failed {
        error: ExchangeError::Malformed(why.to_string()),
        received: true,
    }
}

/// How a response's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    Close,
}

#[derive(Debug)]
struct Head {
    /// Bytes of the status line and headers, blank line included.
    length: usize,
    status: u16,
    error_type: Option<String>,
    framing: Framing,
    keep_alive: bool,
}

/// Reads until `buf` holds a whole response head, and parses it.
async fn read_head(stream: &mut Stream, buf: &mut Vec<u8>) -> Result<Head, Failed> {
    loop {
        if let Some(head) = parse_head(buf)? {
            return Ok(head);
        }
        if buf.len() > 64 << 10 {
            return Err(malformed("a response head over 64 KB"));
        }
        let received = !buf.is_empty();
        read_more(stream, buf, received).await?;
    }
}

/// Reads at least one more byte into `buf`; the end of the connection is an error.
async fn read_more(stream: &mut Stream, buf: &mut Vec<u8>, received: bool) -> Result<(), Failed> {
    if buf.capacity() - buf.len() < 4 << 10 {
        buf.reserve(8 << 10);
    }
    match stream.read_buf(buf).await {
        Ok(0) => Err(Failed {
            error: ExchangeError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                if received {
                    "the connection closed in the middle of the response"
                } else {
                    "the connection closed before any response"
                },
            )),
            received,
        }),
        Ok(_) => Ok(()),
        Err(e) => Err(Failed {
            // A reset before any byte came back is the same stale connection as an EOF.
            error: ExchangeError::Io(e),
            received,
        }),
    }
}

/// Reads until `buf` holds at least `n` bytes.
async fn fill(stream: &mut Stream, buf: &mut Vec<u8>, n: usize) -> Result<(), Failed> {
    if n > MAX_RESPONSE {
        return Err(malformed("a body longer than the limit"));
    }
    if buf.capacity() < n {
        buf.reserve(n - buf.len());
    }
    while buf.len() < n {
        read_more(stream, buf, true).await?;
    }
    Ok(())
}

/// The head at the start of `buf`, if it is all there.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, Failed> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let length = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(malformed(&e.to_string())),
    };
    let status = response.code.unwrap_or(0);
    let mut error_type = None;
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut close = response.version != Some(1);
    for h in response.headers.iter() {
        let value = || std::str::from_utf8(h.value).map(str::trim);
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = value()
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .ok_or_else(|| malformed("a Content-Length that is not a number"))?;
            if content_length.is_some_and(|m| m != n) {
                return Err(malformed("two different Content-Lengths"));
            }
            content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value().is_ok_and(|v| {
                v.rsplit(',')
                    .next()
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
            });
            if !chunked {
                return Err(malformed("a transfer coding other than chunked"));
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            if let Ok(v) = value() {
                if v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")) {
                    close = true;
                } else if v
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("keep-alive"))
                    && response.version == Some(0)
                {
                    close = false;
                }
            }
        } else if h.name.eq_ignore_ascii_case("x-amzn-errortype") {
            error_type = value().ok().map(str::to_string);
        }
    }
    // RFC 9112, 6.3: chunked wins over a length; 1xx, 204 and 304 have no body.
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Length(0)
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = content_length {
        Framing::Length(n)
    } else {
        Framing::Close
    };
    Ok(Some(Head {
        length,
        status,
        error_type,
        framing,
        keep_alive: !close,
    }))
}

/// Decodes a chunked body whose first bytes are in `buf`; trailers are read and dropped.
async fn read_chunked(stream: &mut Stream, mut buf: Vec<u8>) -> Result<Vec<u8>, Failed> {
    let mut body = Vec::new();
    let mut at = 0; // where the next chunk-size line starts in `buf`
    loop {
        // The chunk-size line.
        let (size, line) = loop {
            match httparse::parse_chunk_size(&buf[at..]) {
                Ok(httparse::Status::Complete((n, size))) => break (size, n),
                Ok(httparse::Status::Partial) => {
                    if buf.len() - at > 4 << 10 {
                        return Err(malformed("a chunk-size line over 4 KB"));
                    }
                    read_more(stream, &mut buf, true).await?
                }
                Err(_) => return Err(malformed("a bad chunk-size line")),
            }
        };
        at += line;
        if size == 0 {
            break;
        }
        let size = usize::try_from(size)
            .ok()
            .filter(|s| body.len() + s <= MAX_RESPONSE)
            .ok_or_else(|| malformed("a body longer than the limit"))?;
        fill(stream, &mut buf, at + size + 2).await?;
        body.extend_from_slice(&buf[at..at + size]);
        if &buf[at + size..at + size + 2] != b"\r\n" {
            return Err(malformed("a chunk not followed by CRLF"));
        }
        at += size + 2;
        // Keep the buffer small on long bodies.
        if at > 64 << 10 {
            buf.drain(..at);
            at = 0;
        }
    }
    // Trailers: header lines up to an empty line.
    loop {
        if let Some(end) = find_crlf(&buf[at..]) {
            let empty = end == 0;
            at += end + 2;
            if empty {
                return Ok(body);
            }
            continue;
        }
        if buf.len() - at > 64 << 10 {
            return Err(malformed("trailers over 64 KB"));
        }
        read_more(stream, &mut buf, true).await?;
    }
}

fn find_crlf(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\r\n")
}

/// A connection, plain or TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    /// Whether nothing has arrived on this idle connection: no byte, no end. Costs no system
    /// call when the socket has not become readable since its last short read (tokio keeps
    /// its readiness); otherwise one non-blocking read.
    fn quiet(&mut self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut scratch = [0u8; 1];
        let mut buf = ReadBuf::new(&mut scratch);
        matches!(Pin::new(self).poll_read(&mut cx, &mut buf), Poll::Pending)
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::net::TcpListener;

    /// A server that answers the n-th request on any connection with `script(n)`: the bytes
    /// to send and whether to close the connection afterwards. Counts connections.
    struct Server {
        endpoint: Endpoint,
        accepted: Arc<AtomicUsize>,
    }

    async fn serve(script: fn(usize) -> (Vec<u8>, bool)) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let requests = requests.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        // One request: a head, then its Content-Length of body.
                        let end = loop {
                            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                break end + 4;
                            }
                            if !read_some(&mut socket, &mut buf).await {
                                return;
                            }
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                        let length: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length: "))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        while buf.len() < end + length {
                            if !read_some(&mut socket, &mut buf).await {
                                return;
                            }
                        }
                        buf.drain(..end + length);
                        let n = requests.fetch_add(1, Ordering::SeqCst);
                        let (answer, close) = script(n);
                        if socket.write_all(&answer).await.is_err() || close {
                            return;
                        }
                    }
                });
            }
        });
        Server {
            endpoint: Endpoint::parse(&format!("http://{addr}")).expect("endpoint"),
            accepted,
        }
    }

    /// Reads what the socket has into `buf`; false at its end.
    async fn read_some(socket: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
        let mut chunk = [0u8; 4096];
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    const REQUEST: &[u8] = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}";

    fn ok(body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn conns(server: &Server) -> Connections {
        Connections::new(server.endpoint.clone(), Duration::from_secs(2))
    }

    #[test]
    fn endpoints_parse_with_default_ports() {
        let e = Endpoint::parse("https://dynamodb.eu-west-1.amazonaws.com/").expect("https");
        assert!(e.is_tls());
        assert_eq!(e.authority(), "dynamodb.eu-west-1.amazonaws.com");
        assert_eq!(
            (e.host.as_str(), e.port),
            ("dynamodb.eu-west-1.amazonaws.com", 443)
        );
        let e = Endpoint::parse("http://127.0.0.1:8000").expect("http");
        assert!(!e.is_tls());
        assert_eq!((e.authority(), e.port), ("127.0.0.1:8000", 8000));
        assert_eq!(e.to_string(), "http://127.0.0.1:8000/");
        let e = Endpoint::parse("http://[::1]:9/").expect("ipv6");
        assert_eq!((e.authority(), e.host.as_str()), ("[::1]:9", "::1"));
        assert!(Endpoint::parse("ftp://x/").is_none());
        assert!(Endpoint::parse("not a uri").is_none());
    }

    #[tokio::test]
    async fn a_kept_alive_connection_serves_every_request() {
        let server = serve(|n| (ok(&format!("{{\"n\":{n}}}")), false)).await;
        let c = conns(&server);
        for n in 0..5 {
            let reply = c.exchange(REQUEST).await.expect("a reply");
            assert_eq!(reply.status, 200);
            assert_eq!(reply.body, format!("{{\"n\":{n}}}").as_bytes());
        }
        assert_eq!(server.accepted.load(Ordering::SeqCst), 1, "one connection");
    }

    #[tokio::test]
    async fn chunked_bodies_are_decoded_and_trailers_dropped() {
        let server = serve(|_| {
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-Trailer: t\r\n\r\n"
                    .to_vec(),
                false,
            )
        })
        .await;
        let c = conns(&server);
        for _ in 0..2 {
            let reply = c.exchange(REQUEST).await.expect("a reply");
            assert_eq!(reply.body, br#"{"a":1}"#);
        }
        assert_eq!(server.accepted.load(Ordering::SeqCst), 1, "kept alive");
    }

    #[tokio::test]
    async fn error_responses_carry_their_error_type() {
        let server = serve(|_| {
            (
                b"HTTP/1.1 400 Bad Request\r\nx-amzn-ErrorType: ConditionalCheckFailedException:http://internal.amazon.com/\r\nContent-Length: 2\r\n\r\n{}"
                    .to_vec(),
                false,
            )
        })
        .await;
        let reply = conns(&server).exchange(REQUEST).await.expect("a reply");
        assert_eq!(reply.status, 400);
        assert_eq!(
            reply.error_type.as_deref(),
            Some("ConditionalCheckFailedException:http://internal.amazon.com/")
        );
    }

    #[tokio::test]
    async fn connection_close_and_close_delimited_bodies_are_not_reused() {
        let server = serve(|n| {
            if n % 2 == 0 {
                (
                    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}".to_vec(),
                    true,
                )
            } else {
                (b"HTTP/1.1 200 OK\r\n\r\n{\"b\":2}".to_vec(), true)
            }
        })
        .await;
        let c = conns(&server);
        assert_eq!(c.exchange(REQUEST).await.expect("reply").body, b"{}");
        assert_eq!(
            c.exchange(REQUEST).await.expect("reply").body,
            br#"{"b":2}"#
        );
        assert_eq!(c.exchange(REQUEST).await.expect("reply").body, b"{}");
        assert_eq!(server.accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_while_idle_is_replaced_unseen() {
        // The server answers, then closes: the client sees the end while the connection
        // is idle, and the next request goes on a new one without an error.
        let server = serve(|_| (ok("{}"), true)).await;
        let c = conns(&server);
        for _ in 0..3 {
            c.exchange(REQUEST).await.expect("a reply");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(server.accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_request_lost_on_a_reused_connection_goes_once_more_on_a_new_one() {
        // The second request on the first connection is read and dropped with the
        // connection (the server closed it as the request went out): sent again, answered.
        let server = serve(|n| match n {
            0 => (ok("{\"first\":1}"), false),
            1 => (Vec::new(), true),
            _ => (ok("{\"again\":1}"), false),
        })
        .await;
        let c = conns(&server);
        assert_eq!(
            c.exchange(REQUEST).await.expect("reply").body,
            br#"{"first":1}"#
        );
        assert_eq!(
            c.exchange(REQUEST).await.expect("reply").body,
            br#"{"again":1}"#
        );
        assert_eq!(server.accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_new_connection_closed_before_any_answer_is_an_error() {
        let server = serve(|_| (Vec::new(), true)).await;
        match conns(&server).exchange(REQUEST).await {
            Err(ExchangeError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
            other => panic!("expected an I/O error, got {other:?}"),
        }
        assert_eq!(server.accepted.load(Ordering::SeqCst), 1, "not retried");
    }

    #[tokio::test]
    async fn a_body_cut_short_is_an_error() {
        let server = serve(|_| {
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}".to_vec(),
                true,
            )
        })
        .await;
        assert!(matches!(
            conns(&server).exchange(REQUEST).await,
            Err(ExchangeError::Io(_))
        ));
    }

    #[tokio::test]
    async fn what_is_not_http_is_malformed() {
        for script in [
            (|_| (b"SSH-2.0-OpenSSH\r\n\r\n".to_vec(), false)) as fn(usize) -> (Vec<u8>, bool),
            |_| {
                (
                    b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n".to_vec(),
                    false,
                )
            },
            |_| {
                (
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(),
                    false,
                )
            },
            |_| {
                (
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
                    false,
                )
            },
            |_| {
                (
                    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}".to_vec(),
                    false,
                )
            },
        ] {
            let server = serve(script).await;
            match conns(&server).exchange(REQUEST).await {
                Err(ExchangeError::Malformed(_)) => {}
                other => panic!("expected a malformed response, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn interim_responses_are_skipped() {
        let server = serve(|_| {
            let mut answer = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
            answer.extend_from_slice(&ok("{\"c\":3}"));
            (answer, false)
        })
        .await;
        let reply = conns(&server).exchange(REQUEST).await.expect("reply");
        assert_eq!((reply.status, reply.body), (200, br#"{"c":3}"#.to_vec()));
    }

    #[tokio::test]
    async fn bytes_past_the_body_retire_the_connection() {
        let server = serve(|_| {
            let mut answer = ok("{}");
            answer.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
            (answer, false)
        })
        .await;
        let c = conns(&server);
        c.exchange(REQUEST).await.expect("reply");
        c.exchange(REQUEST).await.expect("reply");
        assert_eq!(server.accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn bytes_that_arrive_while_idle_retire_the_connection() {
        // The first connection answers, then sends a stray response while idle: taken as
        // the next request's answer, it would be the wrong one.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((mut socket, _)) = listener.accept().await {
                n += 1;
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while let Ok(got) = socket.read(&mut buf).await {
                        if got == 0 {
                            return;
                        }
                        let _ = socket.write_all(&ok(&format!("{{\"conn\":{n}}}"))).await;
                        if n == 1 {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            let _ = socket.write_all(&ok("{\"stray\":1}")).await;
                        }
                    }
                });
            }
        });
        let c = Connections::new(
            Endpoint::parse(&format!("http://{addr}")).expect("endpoint"),
            Duration::from_secs(2),
        );
        assert_eq!(
            c.exchange(REQUEST).await.expect("reply").body,
            br#"{"conn":1}"#
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            c.exchange(REQUEST).await.expect("reply").body,
            br#"{"conn":2}"#
        );
    }

    #[tokio::test]
    async fn nothing_listening_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let c = Connections::new(
            Endpoint::parse(&format!("http://{addr}")).expect("endpoint"),
            Duration::from_secs(2),
        );
        assert!(matches!(
            c.exchange(REQUEST).await,
            Err(ExchangeError::Connect(_))
        ));
    }
}
