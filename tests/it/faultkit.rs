//! Fault-injection kit: a DynamoDB Local the test can stop and restart itself, a
//! fault-injecting TCP/HTTP proxy on loopback, a log capture, and stores/apps on any
//! endpoint. Everything listens on 127.0.0.1 only.

use aws_sdk_dynamodb::Client;
use connect_triage::app::App;
use connect_triage::store::dynamodb::{sdk_config, DynamoOptions, DynamoStore};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A DynamoDB client on `endpoint`, with the crate's own SDK settings (timeouts, retries).
pub async fn client_at(endpoint: &str) -> Client {
    let conf = aws_sdk_dynamodb::config::Builder::from(
        &sdk_config(&connect_triage::Settings::from_env().expect("settings").sdk).await,
    )
    .endpoint_url(endpoint)
    .build();
    Client::from_conf(conf)
}

/// A store on `table` through `endpoint`, made as `DynamoStore::open` makes it (the
/// turn's requests on the direct client, src/store/dynamodb/direct.rs).
pub async fn store_at(endpoint: &str, table: &str) -> DynamoStore {
    let store = DynamoStore::connect(table, DynamoOptions::default(), Some(endpoint))
        .await
        .expect("a DynamoDB store");
    assert!(
        store.direct_client().await.is_some(),
        "the direct client is on"
    );
    store
}

/// As [`store_at`], with every request through the SDK (a client made by the caller).
pub async fn sdk_store_at(endpoint: &str, table: &str) -> DynamoStore {
    DynamoStore::new(
        client_at(endpoint).await,
        table.to_string(),
        DynamoOptions::default(),
    )
}

/// An app (default 5 s budget) on `table` through `endpoint`.
pub async fn app_at(endpoint: &str, table: &str) -> App {
    App::new(Arc::new(store_at(endpoint, table).await))
}

// ---- a DynamoDB Local of the test's own -------------------------------------------------

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// DynamoDB Local from `.tools/` (installed by `scripts/dynamodb-local.sh`), persisting to a
/// temporary folder (`-sharedDb -dbPath`, not `-inMemory`), so tables survive a restart.
pub struct LocalDynamo {
    child: Option<Child>,
    port: u16,
    jar: PathBuf,
    db: tempfile::TempDir,
}

impl LocalDynamo {
    pub fn start() -> LocalDynamo {
        // The same jar the test binary's own DynamoDB Local runs (installed if missing).
        let jar = crate::ddb_local::dynamodb_local_jar().unwrap_or_else(|why| panic!("{why}"));
        let mut me = LocalDynamo {
            child: None,
            port: free_port(),
            jar,
            db: tempfile::tempdir().expect("tempdir"),
        };
        me.spawn();
        me
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let dir = self.jar.parent().expect("jar folder").to_path_buf();
        let child = Command::new("java")
            .current_dir(&dir)
            .arg(format!(
                "-Djava.library.path={}",
                dir.join("DynamoDBLocal_lib").display()
            ))
            .arg("-jar")
            .arg(&self.jar)
            .args(["-sharedDb", "-dbPath"])
            .arg(self.db.path())
            .args(["-port", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("java (17+) runs DynamoDB Local");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("DynamoDB Local exited during start-up: {status}");
                }
            }
            assert!(
                Instant::now() < deadline,
                "DynamoDB Local did not listen on port {} within 60 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s); the port then refuses
    /// connections. Not SIGKILL at once: DynamoDB Local then loses writes it acknowledged
    /// (seen here), which real DynamoDB never does and is not what this simulates.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and data folder.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for LocalDynamo {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---- a fault-injecting proxy --------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bytes go through unchanged.
    Pass,
    /// Accepts, then closes at once (nothing answers).
    Refuse,
    /// Accepts and reads, never answers.
    BlackHole,
    /// HTTP 500 InternalServerError to every request.
    Error500,
    /// HTTP 400 ThrottlingException to every request.
    Throttle,
    /// HTTP 400 ProvisionedThroughputExceededException to every request.
    ProvisionedThroughput,
    /// Reads (`Query`, `GetItem`) go through; writes are read and never answered.
    BlackHoleWrites,
    /// Reads go through; the next write is forwarded and the server answers, but the
    /// answer is dropped and the connection closed; then back to `Pass` (a lost response).
    DropResponseOnce,
}

pub struct Proxy {
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    generation: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// A proxy on a free loopback port in front of `upstream` (an `http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> Proxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("upstream is http://IP:PORT");
        assert!(upstream.ip().is_loopback(), "tests stay on 127.0.0.1");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mode = Arc::new(Mutex::new(Mode::Pass));
        let (generation, _) = watch::channel(0u64);
        let task = tokio::spawn({
            let mode = mode.clone();
            let generation = generation.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    tokio::spawn(serve(
                        client,
                        upstream,
                        mode.clone(),
                        generation.subscribe(),
                    ));
                }
            }
        });
        Proxy {
            addr,
            mode,
            generation,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Switches mode; open connections are closed, so pooled ones see the new mode.
    pub fn set(&self, m: Mode) {
        *self.mode.lock().expect("mode") = m;
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn mode(&self) -> Mode {
        *self.mode.lock().expect("mode")
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.generation.send_modify(|g| *g += 1);
    }
}

fn current(mode: &Mutex<Mode>) -> Mode {
    *mode.lock().expect("mode")
}

async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    mut generation: watch::Receiver<u64>,
) {
    generation.mark_unchanged();
    loop {
        match current(&mode) {
            Mode::Refuse => return,
            Mode::Pass => return splice(client, upstream, Vec::new(), generation).await,
            Mode::BlackHole => {
                let mut sink = [0u8; 4096];
                loop {
                    tokio::select! {
                        r = client.read(&mut sink) => if !matches!(r, Ok(n) if n > 0) { return },
                        _ = generation.changed() => return,
                    }
                }
            }
            m @ (Mode::BlackHoleWrites | Mode::DropResponseOnce) => {
                let Ok(Some(request)) = read_message(&mut client).await else {
                    return;
                };
                let head = String::from_utf8_lossy(&request).to_ascii_lowercase();
                let read = head.contains("x-amz-target: dynamodb_20120810.query")
                    || head.contains("x-amz-target: dynamodb_20120810.getitem");
                if !read && m == Mode::DropResponseOnce {
                    let Ok(mut up) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    if up.write_all(&request).await.is_err() {
                        return;
                    }
                    // Let the server finish (and commit); then lose its answer.
                    let _ = read_message(&mut up).await;
                    *mode.lock().expect("mode") = Mode::Pass;
                    return;
                }
                if !read {
                    // Swallow it: wait for the client to give up or the mode to change.
                    let mut sink = [0u8; 4096];
                    loop {
                        tokio::select! {
                            r = client.read(&mut sink) => if !matches!(r, Ok(n) if n > 0) { return },
                            _ = generation.changed() => return,
                        }
                    }
                }
                let Ok(mut up) = TcpStream::connect(upstream).await else {
                    return;
                };
                if up.write_all(&request).await.is_err() {
                    return;
                }
                let Ok(Some(response)) = read_message(&mut up).await else {
                    return;
                };
                if client.write_all(&response).await.is_err() {
                    return;
                }
            }
            fault => {
                let request = match read_message(&mut client).await {
                    Ok(Some(r)) => r,
                    _ => return,
                };
                let (status, body) = match current(&mode) {
                    Mode::Error500 => (
                        "500 Internal Server Error",
                        r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected by the test proxy"}"#,
                    ),
                    Mode::Throttle => (
                        "400 Bad Request",
                        r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#,
                    ),
                    Mode::ProvisionedThroughput => (
                        "400 Bad Request",
                        r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}"#,
                    ),
                    // The mode changed while the request was read: serve it in the new mode.
                    Mode::Pass => return splice(client, upstream, request, generation).await,
                    _ => return,
                };
                let _ = fault;
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.0\r\n\
                     x-amzn-RequestId: fault-proxy\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                if client.write_all(response.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Both directions, until either side closes or the mode changes.
async fn splice(
    mut client: TcpStream,
    upstream: SocketAddr,
    prefix: Vec<u8>,
    mut generation: watch::Receiver<u64>,
) {
    let Ok(mut up) = TcpStream::connect(upstream).await else {
        return;
    };
    if !prefix.is_empty() && up.write_all(&prefix).await.is_err() {
        return;
    }
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut up) => {}
        _ = generation.changed() => {}
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One HTTP/1.1 message with a Content-Length body (what the SDK and DynamoDB Local send).
/// `Ok(None)` when the peer closed before a message started. At most 1 MB.
async fn read_message(s: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            let total = end + 4 + len;
            while buf.len() < total {
                let n = s.read(&mut tmp).await?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&tmp[..n]);
            }
            return Ok(Some(buf));
        }
        if buf.len() > 1 << 20 {
            return Err(io::ErrorKind::InvalidData.into());
        }
        let n = s.read(&mut tmp).await?;
        if n == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

// ---- log capture --------------------------------------------------------------------------

/// Collects what `tracing` logs on this thread (use with a current-thread runtime).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Captures this thread's logs (info and up) until the guard is dropped.
    pub fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        (logs, guard)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("logs")).into_owned()
    }

    pub fn clear(&self) {
        self.0.lock().expect("logs").clear();
    }
}

impl io::Write for Logs {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("logs").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}
