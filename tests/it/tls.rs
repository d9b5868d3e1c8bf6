//! The direct client over TLS, as on AWS (`https://dynamodb.REGION.amazonaws.com`): the real
//! `bootstrap` serves a whole call through a TLS endpoint on loopback (a proxy in front of
//! the test's DynamoDB, with a certificate of a test CA the function is told to trust
//! through `SSL_CERT_FILE`), keeps one connection for the call's writes (the endpoint keeps
//! connections alive, as DynamoDB does), and refuses an endpoint whose certificate it
//! cannot verify.

use crate::events::{contact_event, field, new_contact_id};
use crate::runtime_api::{stop_and_collect_logs, RuntimeApi};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A test CA and a certificate it signed for `localhost` and 127.0.0.1, made with the
/// machine's `openssl`: (CA certificate, server certificate, server key) file paths.
fn certificates(dir: &Path, ca_name: &str) -> (String, String, String) {
    let path = |f: &str| dir.join(f).display().to_string();
    let ext = path("server.ext");
    std::fs::write(
        &ext,
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write the extensions file");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl (Debian's openssl package) to make test certificates");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let subject = format!("/CN={ca_name}");
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &path("ca.key"),
        "-out",
        &path("ca.pem"),
        "-days",
        "2",
        "-subj",
        &subject,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &path("server.key"),
        "-out",
        &path("server.csr"),
        "-subj",
        "/CN=localhost",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        &path("server.csr"),
        "-CA",
        &path("ca.pem"),
        "-CAkey",
        &path("ca.key"),
        "-CAcreateserial",
        "-out",
        &path("server.pem"),
        "-days",
        "2",
        "-extfile",
        &ext,
    ]);
    (path("ca.pem"), path("server.pem"), path("server.key"))
}

/// What the proxy saw: per TLS connection, the DynamoDB operations it carried; and the
/// handshakes that failed.
#[derive(Default)]
struct Seen {
    connections: Vec<Vec<String>>,
    failed_handshakes: usize,
}

/// A TLS endpoint on 127.0.0.1 that forwards each connection's requests to `upstream`
/// (plain HTTP) and their answers back. Returns its port and what it saw.
async fn tls_proxy(cert: &str, key: &str, upstream: String) -> (u16, Arc<Mutex<Seen>>) {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .expect("server certificate")
        .collect::<Result<_, _>>()
        .expect("server certificate PEM");
    let key = PrivateKeyDer::from_pem_file(key).expect("server key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server TLS config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let upstream = upstream.clone();
            let record = record.clone();
            tokio::spawn(async move {
                let tls = match acceptor.accept(tcp).await {
                    Ok(tls) => tls,
                    Err(_) => {
                        record.lock().expect("lock").failed_handshakes += 1;
                        return;
                    }
                };
                let index = {
                    let mut seen = record.lock().expect("lock");
                    seen.connections.push(Vec::new());
                    seen.connections.len() - 1
                };
                let Ok(up) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut client_read, mut client_write) = tokio::io::split(tls);
                let (mut up_read, mut up_write) = up.into_split();
                let answers = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut up_read, &mut client_write).await;
                    let _ = client_write.shutdown().await;
                });
                let mut buf = vec![0u8; 64 << 10];
                loop {
                    let n = match client_read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    // The operation of each request that starts in this read (requests are
                    // written whole, one write each, by every client here).
                    let text = String::from_utf8_lossy(&buf[..n]).to_lowercase();
                    for line in text.lines() {
                        if let Some(op) = line.strip_prefix("x-amz-target: dynamodb_20120810.") {
                            record.lock().expect("lock").connections[index]
                                .push(op.trim().to_string());
                        }
                    }
                    if up_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = up_write.shutdown().await;
                let _ = answers.await;
            });
        }
    });
    (port, seen)
}

#[tokio::test]
async fn bootstrap_serves_a_call_over_tls_on_one_connection_and_checks_the_certificate() {
    let (_store, table) = crate::helpers::dynamodb_store().await;
    // Behind the TLS endpoint, the meter (benches/common/capacity.rs): it keeps its client's
    // connection alive whatever the DynamoDB behind it does (LocalStack answers every
    // request with `Connection: close`), so the connections seen here are the function's.
    let meter = crate::meter::Meter::start(&crate::helpers::endpoint())
        .await
        .expect("meter");
    let upstream = meter
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = certificates(dir.path(), "triage test CA");
    let (port, seen) = tls_proxy(&cert, &key, upstream).await;
    let https = format!("https://localhost:{port}");

    // Trusting the test CA: a whole call, a Connect retry among its turns.
    let api = RuntimeApi::start().await;
    let child = api.spawn_bootstrap(&[
        ("TRIAGE_TABLE", &table),
        ("AWS_ENDPOINT_URL", &https),
        ("SSL_CERT_FILE", &ca),
    ]);
    let cid = new_contact_id();
    let mut r = api
        .invoke(&contact_event(&cid, &[]))
        .await
        .expect("first turn");
    for i in 0..7 {
        assert_eq!(field(&r, "continue"), "1", "turn {i}: {r}");
        let ev = contact_event(&cid, &[("answer", "0"), ("turn", field(&r, "turn"))]);
        r = api.invoke(&ev).await.expect("turn");
        if i == 3 {
            assert_eq!(
                api.invoke(&ev).await.expect("retry"),
                r,
                "a retry answers alike"
            );
        }
    }
    assert_eq!(field(&r, "outcome"), "clear", "{r}");
    let logs = stop_and_collect_logs(child).await;
    {
        let seen_now = seen.lock().expect("lock");
        let writes: Vec<&Vec<String>> = seen_now
            .connections
            .iter()
            .filter(|ops| ops.iter().any(|op| op == "transactwriteitems"))
            .collect();
        println!(
            "tls: operations per TLS connection {:?}",
            seen_now.connections
        );
        assert_eq!(
            writes.len(),
            1,
            "the call's writes on one connection: {logs}"
        );
        assert_eq!(
            writes[0]
                .iter()
                .filter(|op| *op == "transactwriteitems")
                .count(),
            7,
            "seven answers, seven writes"
        );
        assert_eq!(seen_now.failed_handshakes, 0);
    }

    // Trusting another CA only: nothing reaches DynamoDB, the caller hears the apology,
    // and the log says why.
    let other = tempfile::tempdir().expect("tempdir");
    let (other_ca, _, _) = certificates(other.path(), "some other CA");
    let before = seen.lock().expect("lock").connections.len();
    let api = RuntimeApi::start().await;
    let child = api.spawn_bootstrap(&[
        ("TRIAGE_TABLE", &table),
        ("AWS_ENDPOINT_URL", &https),
        ("SSL_CERT_FILE", &other_ca),
    ]);
    let r = api
        .invoke(&contact_event(&new_contact_id(), &[]))
        .await
        .expect("an answer, not a Lambda error");
    assert_eq!(field(&r, "outcome"), "error", "{r}");
    let logs = stop_and_collect_logs(child).await;
    let seen_now = seen.lock().expect("lock");
    assert_eq!(seen_now.connections.len(), before, "no request got through");
    assert!(
        seen_now.failed_handshakes > 0,
        "the client refused the certificate"
    );
    assert!(
        logs.to_lowercase().contains("certificate"),
        "the log names the certificate problem: {logs}"
    );
}
