//! Nagle's delay (issue 14, point 3): `bootstrap` served by a Lambda Runtime API that
//! writes each answer's headers and body in two segments, as a plain socket with Nagle's
//! algorithm on does. With a client that sends without `TCP_NODELAY`, each turn can wait
//! for a delayed ACK (~40 ms on Linux) instead of taking a few milliseconds. The Runtime API
//! client is patched to set it (patches/README.md). The test serves whole calls through the
//! real binary and prints the latency per turn (a figure, not a timed assertion: the
//! machine's load is not the test's business); it fails if a turn is not served or answers
//! wrongly.

use crate::events::{contact_event, field, new_contact_id};
use crate::meter::{read_message, Message};
use crate::runtime_api::RuntimeApi;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Headers, then the body: two writes, Nagle on (the socket's default).
async fn answer(
    w: &mut BufReader<TcpStream>,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
) {
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let s = w.get_mut();
    let _ = s.write_all(head.as_bytes()).await;
    let _ = s.write_all(body).await;
}

/// A Runtime API on one port: events from `events`, responses to `responses`.
async fn serve(
    listener: TcpListener,
    events: mpsc::Receiver<Vec<u8>>,
    responses: mpsc::Sender<(Vec<u8>, Instant)>,
) {
    let events = std::sync::Arc::new(tokio::sync::Mutex::new(events));
    let mut n = 0u64;
    while let Ok((socket, _)) = listener.accept().await {
        assert!(
            !socket.nodelay().unwrap_or(true),
            "the server keeps Nagle on"
        );
        let events = events.clone();
        let responses = responses.clone();
        n += 1;
        let conn = n;
        tokio::spawn(async move {
            let mut r = BufReader::new(socket);
            let mut id = 0u64;
            while let Some(Message {
                start: line, body, ..
            }) = read_message(&mut r, true).await
            {
                if line.starts_with("GET /2018-06-01/runtime/invocation/next") {
                    let Some(event) = events.lock().await.recv().await else {
                        return;
                    };
                    id += 1;
                    let deadline = (std::time::SystemTime::now() + Duration::from_secs(30))
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis())
                        .unwrap_or_default();
                    answer(
                        &mut r,
                        "200 OK",
                        &[
                            ("Content-Type", "application/json".into()),
                            ("Lambda-Runtime-Aws-Request-Id", format!("c{conn}-{id}")),
                            ("Lambda-Runtime-Deadline-Ms", deadline.to_string()),
                            (
                                "Lambda-Runtime-Invoked-Function-Arn",
                                "arn:aws:lambda:us-east-1:000000000000:function:triage".into(),
                            ),
                        ],
                        &event,
                    )
                    .await;
                } else if line.starts_with("POST") {
                    let at = Instant::now();
                    answer(
                        &mut r,
                        "202 Accepted",
                        &[("Content-Type", "application/json".into())],
                        br#"{"status":"OK"}"#,
                    )
                    .await;
                    let _ = responses.send((body, at)).await;
                } else {
                    answer(&mut r, "404 Not Found", &[], b"").await;
                }
            }
        });
    }
}

#[tokio::test]
async fn turns_from_a_runtime_api_that_writes_headers_and_body_apart_do_not_stall() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (event_tx, event_rx) = mpsc::channel::<Vec<u8>>(1);
    let (resp_tx, mut resp_rx) = mpsc::channel(1);
    tokio::spawn(serve(listener, event_rx, resp_tx));
    // The spawner of runtime_api.rs, pointed at this server.
    let mut api = RuntimeApi::start().await;
    api.addr = addr;
    let _child = api.spawn_bootstrap_quiet(&[("TRIAGE_STORE", "memory")]);
    let mut latencies = Vec::new();
    for _call in 0..6 {
        let cid = new_contact_id();
        let mut params: Vec<(String, String)> = vec![("lang".into(), "es".into())];
        for turn in 0..8 {
            let p: Vec<(&str, &str)> = params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let sent = Instant::now();
            event_tx
                .send(contact_event(&cid, &p).to_string().into_bytes())
                .await
                .expect("the server runs");
            let (body, _) = tokio::time::timeout(Duration::from_secs(20), resp_rx.recv())
                .await
                .expect("bootstrap answered within 20 s")
                .expect("a response");
            latencies.push(sent.elapsed());
            let r: Value = serde_json::from_slice(&body).expect("a JSON response");
            if turn < 7 {
                assert_eq!(field(&r, "continue"), "1", "turn {turn}: {r}");
                params = vec![
                    ("lang".into(), "es".into()),
                    ("answer".into(), "0".into()),
                    ("turn".into(), field(&r, "turn").to_string()),
                ];
            } else {
                assert_eq!(field(&r, "outcome"), "clear", "{r}");
            }
        }
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let over_35 = latencies.iter().filter(|d| ms(**d) >= 35.0).count();
    println!(
        "nagle: {} turns through a Runtime API writing headers and body apart: p50 {:.2} ms, max {:.2} ms, {} turns at 35 ms or more (a delayed-ACK stall is ~40 ms)",
        latencies.len(),
        ms(latencies[latencies.len() / 2]),
        ms(latencies[latencies.len() - 1]),
        over_35
    );
}

/// `TCP_NODELAY` of every socket of process `pid` connected to `peer`, read by copying each
/// socket into this process (`pidfd_getfd`, Linux 5.6+; the test owns the child).
fn nodelay_towards(pid: u32, peer: std::net::SocketAddr) -> Result<Vec<bool>, String> {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: plain syscalls; every fd they return is owned and closed by OwnedFd.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_int, 0) };
    if pidfd < 0 {
        return Err(format!("pidfd_open: {}", std::io::Error::last_os_error()));
    }
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as libc::c_int) };
    let mut found = Vec::new();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_err(|e| e.to_string())?;
    for entry in fds.flatten() {
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"));
        let Some(target) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<libc::c_int>().ok())
        else {
            continue;
        };
        if !is_socket {
            continue;
        }
        use std::os::fd::AsRawFd;
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target, 0) };
        if fd < 0 {
            return Err(format!("pidfd_getfd: {}", std::io::Error::last_os_error()));
        }
        let fd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
        let std_socket = std::net::TcpStream::from(fd);
        if std_socket.peer_addr().ok() == Some(peer) {
            found.push(std_socket.nodelay().map_err(|e| e.to_string())?);
        }
        // Dropping the copy closes this process's descriptor only.
    }
    Ok(found)
}

#[tokio::test]
async fn the_runtime_api_and_dynamodb_sockets_send_without_nagle() {
    // The Runtime API: the server above. DynamoDB: a listener that accepts and never answers,
    // so the client's connection stays open while it is looked at.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let api_addr = listener.local_addr().expect("addr");
    let (event_tx, event_rx) = mpsc::channel::<Vec<u8>>(1);
    let (resp_tx, _resp_rx) = mpsc::channel(1);
    tokio::spawn(serve(listener, event_rx, resp_tx));
    let dynamo = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let dynamo_addr = dynamo.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = dynamo.accept().await {
            held.push(s);
        }
    });
    let mut api = RuntimeApi::start().await;
    api.addr = api_addr;
    let endpoint = format!("http://{dynamo_addr}");
    let child = api.spawn_bootstrap_quiet(&[
        ("TRIAGE_STORE", "dynamodb:nagle"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("TRIAGE_TURN_BUDGET_MS", "20000"),
    ]);
    let pid = child.id().expect("pid");
    event_tx
        .send(
            contact_event(&new_contact_id(), &[("lang", "es")])
                .to_string()
                .into_bytes(),
        )
        .await
        .expect("sent");
    // Wait until both connections are up: the turn's Query hangs on the silent endpoint.
    let mut seen = (Vec::new(), Vec::new());
    for _ in 0..200 {
        seen = (
            nodelay_towards(pid, api_addr).expect("read the sockets"),
            nodelay_towards(pid, dynamo_addr).expect("read the sockets"),
        );
        if !seen.0.is_empty() && !seen.1.is_empty() {
            // The connector sets TCP_NODELAY just after connect(): on a loaded machine the
            // socket can be seen in between. Read again once it has settled.
            tokio::time::sleep(Duration::from_millis(200)).await;
            seen = (
                nodelay_towards(pid, api_addr).expect("read the sockets"),
                nodelay_towards(pid, dynamo_addr).expect("read the sockets"),
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (runtime_api, dynamodb) = seen;
    println!("nagle: TCP_NODELAY of bootstrap's sockets: Runtime API {runtime_api:?}, DynamoDB {dynamodb:?}");
    assert!(
        !runtime_api.is_empty(),
        "bootstrap connected to the Runtime API"
    );
    assert!(!dynamodb.is_empty(), "bootstrap connected to DynamoDB");
    assert!(
        runtime_api.iter().all(|n| *n),
        "the Runtime API client sends without Nagle's delay"
    );
    assert!(
        dynamodb.iter().all(|n| *n),
        "the DynamoDB client sends without Nagle's delay"
    );
}
