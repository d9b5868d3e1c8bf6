//! A Lambda Runtime API on loopback, served by axum, so the real `bootstrap` binary can be
//! driven as Lambda drives a custom runtime. The paths, headers and status codes are those
//! of <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>:
//!
//! - `GET /2018-06-01/runtime/invocation/next`: the next event (long poll), with
//!   `Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms`, `-Invoked-Function-Arn`, `-Trace-Id`;
//! - `POST /2018-06-01/runtime/invocation/{AwsRequestId}/response`: the function's answer;
//! - `POST /2018-06-01/runtime/invocation/{AwsRequestId}/error`: an invocation error;
//! - `POST /2018-06-01/runtime/init/error`: the function could not start.
//!
//! The three POSTs answer `202 Accepted`; an unknown request id `400`. An init error fails
//! every waiting invocation and every later one, as Lambda fails them.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

type Answer = Result<Value, String>;
type Nexts = Arc<Mutex<Vec<Instant>>>;
type Queue = Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Vec<u8>)>>>;

/// Lambda's limit on a synchronous response; axum's default (2 MB) is lower.
const MAX_BODY: usize = 6 * 1024 * 1024;

pub struct RuntimeApi {
    pub addr: SocketAddr,
    /// When each `GET .../invocation/next` arrived (cold start = the first one).
    pub nexts: Nexts,
    queue: mpsc::UnboundedSender<(String, Vec<u8>)>,
    waiting: Arc<Mutex<Waiting>>,
    next_id: AtomicU64,
    server: tokio::task::JoinHandle<()>,
}

/// Invocations sent and not yet answered, and the init error that fails them all.
#[derive(Default)]
struct Waiting {
    answers: HashMap<String, oneshot::Sender<Answer>>,
    init_error: Option<String>,
}

/// What the handlers share.
#[derive(Clone)]
struct Api {
    queue: Queue,
    waiting: Arc<Mutex<Waiting>>,
    nexts: Nexts,
}

/// A panicking test must not turn every later request into a second panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = mpsc::unbounded_channel();
        let api = Api {
            queue: Arc::new(tokio::sync::Mutex::new(rx)),
            waiting: Arc::default(),
            nexts: Arc::default(),
        };
        let (waiting, nexts) = (api.waiting.clone(), api.nexts.clone());
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(api);
        let server = tokio::spawn(async move {
            // Ends only when the listener fails; the task is aborted on drop.
            let _ = axum::serve(listener, app).await;
        });
        RuntimeApi {
            addr,
            nexts,
            queue: tx,
            waiting,
            next_id: AtomicU64::new(0),
            server,
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
        self.spawn_with_args(program, &[], env)
    }

    /// As [`RuntimeApi::spawn`], with arguments (`node script.js`, say).
    pub fn spawn_with_args(&self, program: &str, args: &[&str], env: &[(&str, &str)]) -> Child {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env("AWS_LAMBDA_RUNTIME_API", self.addr.to_string())
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
        let id = format!("req-{}", self.next_id.fetch_add(1, Ordering::Relaxed) + 1);
        let (tx, rx) = oneshot::channel();
        {
            let mut waiting = lock(&self.waiting);
            if let Some(e) = &waiting.init_error {
                return Err(format!("the function failed to initialise: {e}"));
            }
            waiting.answers.insert(id.clone(), tx);
        }
        self.queue
            .send((id, payload))
            .map_err(|_| "the Runtime API server has stopped".to_string())?;
        match tokio::time::timeout(Duration::from_secs(30), rx).await {
            Ok(Ok(r)) => r,
            _ => Err("no answer from the function within 30 s".into()),
        }
    }

    pub async fn invoke(&self, event: &Value) -> Result<Value, String> {
        self.invoke_raw(event.to_string().into_bytes()).await
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// `GET .../invocation/next`: waits for an invocation, sends it with Lambda's headers.
async fn next(State(api): State<Api>) -> Response {
    lock(&api.nexts).push(Instant::now());
    let Some((id, payload)) = api.queue.lock().await.recv().await else {
        return (StatusCode::GONE, "the test is over").into_response();
    };
    let deadline = chrono::Utc::now().timestamp_millis() + 8_000;
    let headers = [
        ("content-type", "application/json".to_string()),
        ("lambda-runtime-aws-request-id", id),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:000000000000:function:triage".into(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000".into(),
        ),
    ];
    (headers, payload).into_response()
}

/// `POST .../invocation/{id}/response`: the function's answer, which must be JSON.
async fn response(State(api): State<Api>, Path(id): Path<String>, body: Bytes) -> Response {
    let answer = serde_json::from_slice(&body).map_err(|e| e.to_string());
    settle(&api, &id, answer)
}

/// `POST .../invocation/{id}/error`: the error report's body is the invocation's error.
async fn error(State(api): State<Api>, Path(id): Path<String>, body: Bytes) -> Response {
    settle(&api, &id, Err(String::from_utf8_lossy(&body).into_owned()))
}

/// `POST .../init/error`: fails what waits and whatever comes later.
async fn init_error(State(api): State<Api>, body: Bytes) -> Response {
    let e = String::from_utf8_lossy(&body).into_owned();
    let mut waiting = lock(&api.waiting);
    for (_, tx) in waiting.answers.drain() {
        let _ = tx.send(Err(format!("the function failed to initialise: {e}")));
    }
    waiting.init_error = Some(e);
    accepted()
}

fn settle(api: &Api, id: &str, answer: Answer) -> Response {
    match lock(&api.waiting).answers.remove(id) {
        Some(tx) => {
            // The invoker may have given up (timed out) already: nothing to tell.
            let _ = tx.send(answer);
            accepted()
        }
        None => (
            StatusCode::BAD_REQUEST,
            [("content-type", "application/json")],
            format!(
                r#"{{"errorMessage":"unknown request id {id}","errorType":"InvalidRequestID"}}"#
            ),
        )
            .into_response(),
    }
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        [("content-type", "application/json")],
        r#"{"status":"OK"}"#,
    )
        .into_response()
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
