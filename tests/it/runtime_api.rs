//! A small Lambda Runtime API server on loopback (the HTTP interface AWS Lambda gives a
//! custom runtime: `GET /2018-06-01/runtime/invocation/next`, `POST .../{id}/response`,
//! `POST .../{id}/error`), so the real `bootstrap` binary can be driven as Lambda drives it.

use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Result<Value, String>>>>>;
type Nexts = Arc<Mutex<Vec<std::time::Instant>>>;
type Queue = Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Vec<u8>)>>>;

pub struct RuntimeApi {
    pub addr: SocketAddr,
    /// When each `GET .../invocation/next` arrived (cold start = the first one).
    pub nexts: Nexts,
    queue: mpsc::UnboundedSender<(String, Vec<u8>)>,
    pending: Pending,
    next_id: Mutex<u64>,
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = mpsc::unbounded_channel();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let pending: Pending = Arc::default();
        let nexts: Nexts = Arc::default();
        let (p, n) = (pending.clone(), nexts.clone());
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve(sock, rx.clone(), p.clone(), n.clone()));
            }
        });
        RuntimeApi {
            addr,
            nexts,
            queue: tx,
            pending,
            next_id: Mutex::new(0),
        }
    }

    /// Starts `bootstrap` against this API with the given extra environment.
    pub fn spawn_bootstrap(&self, env: &[(&str, &str)]) -> Child {
        self.spawn(env!("CARGO_BIN_EXE_bootstrap"), env)
    }

    /// Starts `bootstrap` with its logs thrown away: for long runs, where nobody reads the
    /// piped logs and a full pipe would stall the function (used by benches/process.rs).
    #[allow(dead_code)]
    pub fn spawn_bootstrap_quiet(&self, env: &[(&str, &str)]) -> Child {
        let mut child = self.spawn(env!("CARGO_BIN_EXE_bootstrap"), env);
        // Drain both pipes in the background.
        for mut pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut pipe, &mut tokio::io::sink()).await;
            });
        }
        child
    }

    /// Starts a Lambda runtime binary against this API with the given extra environment.
    pub fn spawn(&self, program: &str, env: &[(&str, &str)]) -> Child {
        let mut cmd = Command::new(program);
        cmd.env("AWS_LAMBDA_RUNTIME_API", self.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "triage")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.spawn().expect("start bootstrap")
    }

    /// One invocation: the function's response, or the body of its error report.
    pub async fn invoke_raw(&self, payload: Vec<u8>) -> Result<Value, String> {
        let id = {
            let mut n = self.next_id.lock().expect("lock");
            *n += 1;
            format!("req-{n}")
        };
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("lock").insert(id.clone(), tx);
        self.queue.send((id, payload)).expect("queue");
        match tokio::time::timeout(Duration::from_secs(30), rx).await {
            Ok(Ok(r)) => r,
            _ => Err("no answer from the function within 30 s".into()),
        }
    }

    pub async fn invoke(&self, event: &Value) -> Result<Value, String> {
        self.invoke_raw(event.to_string().into_bytes()).await
    }
}

async fn serve(sock: TcpStream, queue: Queue, pending: Pending, nexts: Nexts) {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    loop {
        let mut request_line = String::new();
        if r.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let body = read_body(&mut r, &headers).await;
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            if let Ok(mut n) = nexts.lock() {
                n.push(std::time::Instant::now());
            }
            let next = queue.lock().await.recv().await;
            let Some((id, payload)) = next else { return };
            let deadline = chrono::Utc::now().timestamp_millis() + 8_000;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: {id}\r\n\
                 Lambda-Runtime-Deadline-Ms: {deadline}\r\nLambda-Runtime-Invoked-Function-Arn: \
                 arn:aws:lambda:us-east-1:000000000000:function:triage\r\nLambda-Runtime-Trace-Id: \
                 Root=1-00000000-000000000000000000000000\r\nContent-Length: {}\r\n\r\n",
                payload.len()
            );
            if w.write_all(head.as_bytes()).await.is_err() || w.write_all(&payload).await.is_err() {
                return;
            }
            continue;
        }
        let segs: Vec<&str> = path.split('/').collect();
        // /2018-06-01/runtime/invocation/{id}/response|error
        if method == "POST" && segs.len() == 6 && segs[3] == "invocation" {
            let result = match segs[5] {
                "response" => serde_json::from_slice(&body).map_err(|e| e.to_string()),
                _ => Err(String::from_utf8_lossy(&body).into_owned()),
            };
            if let Some(tx) = pending.lock().expect("lock").remove(segs[4]) {
                let _ = tx.send(result);
            }
        }
        let ok = "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"status\":\"OK\"}\n";
        if w.write_all(ok.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn read_body(
    r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    headers: &HashMap<String, String>,
) -> Vec<u8> {
    let mut body = Vec::new();
    if let Some(n) = headers
        .get("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        body.resize(n, 0);
        let _ = r.read_exact(&mut body).await;
    } else if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        loop {
            let mut size = String::new();
            if r.read_line(&mut size).await.unwrap_or(0) == 0 {
                break;
            }
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            if r.read_exact(&mut chunk).await.is_err() {
                break;
            }
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    body
}

/// Everything the child wrote to stdout so far (its logs), after it is killed.
pub async fn stop_and_collect_logs(mut child: Child) -> String {
    let _ = child.start_kill();
    let mut out = String::new();
    if let Some(mut so) = child.stdout.take() {
        let _ = so.read_to_string(&mut out).await;
    }
    let mut err = String::new();
    if let Some(mut se) = child.stderr.take() {
        let _ = se.read_to_string(&mut err).await;
    }
    out + &err
}
