//! Bounds and crash safety (issue 6, point 5): oversized input is refused with a clear
//! error before it is read whole; the embedded event log survives writers killed
//! mid-append.

use crate::cli::{stderr, Triage};
use crate::events::{contact_event, field, new_contact_id};
use crate::helpers::{contact, rejected, started};
use connect_triage::domain::CallState;
use connect_triage::store::file::FileStore;
use connect_triage::store::{EventStore, StoreError};
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn an_oversized_invocation_on_stdin_is_refused_before_it_is_read_whole() {
    let t = Triage::new();
    let cid = new_contact_id();
    let mut ev = contact_event(&cid, &[]);
    ev["Details"]["ContactData"]["Attributes"]["big"] = Value::from("x".repeat(2 << 20));
    let bytes = serde_json::to_vec(&ev).expect("json");
    let out = t.run(&["invoke"], &bytes);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("bytes; at most 1048576 are accepted"),
        "a clear error: {err}"
    );
    assert_eq!(t.lines(), 0, "nothing written");
}

#[tokio::test]
async fn an_oversized_event_is_refused_by_the_file_and_memory_stores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = FileStore::open(dir.path().join("e.jsonl")).expect("open");
    refuses_oversized_events(&file).await;
    refuses_oversized_events(&connect_triage::store::memory::MemoryStore::new()).await;
}

async fn refuses_oversized_events(store: &dyn EventStore) {
    let id = contact();
    store
        .append(&id, 0, vec![started(1)])
        .await
        .expect("append");
    let huge = rejected(2, &"9".repeat(20_000));
    match store.append(&id, 1, vec![huge]).await {
        Err(StoreError::Invalid(why)) => assert!(why.contains("at most 16384"), "{why}"),
        other => panic!("an oversized event must be refused, got {other:?}"),
    }
    assert_eq!(store.load(&id).await.expect("load").len(), 1);
    // Escapes count: 3,000 control characters are 18,000 bytes of JSON.
    let escaped = rejected(2, &"\u{1}".repeat(3_000));
    assert!(matches!(
        store.append(&id, 1, vec![escaped]).await,
        Err(StoreError::Invalid(_))
    ));
    // Just under the cap is stored.
    store
        .append(&id, 1, vec![rejected(2, &"9".repeat(15_000))])
        .await
        .expect("15,000 bytes of input fit");
    assert_eq!(store.load(&id).await.expect("load").len(), 2);
}

/// Writers killed with SIGKILL at random points while appending, and a child process
/// killed right after writing half a batch: every acknowledged event reads back, no half
/// turn is ever seen, and the next append cuts the torn tail off.
#[test]
fn the_event_log_survives_writers_killed_mid_append() {
    let t = Triage::new();
    let bin = env!("CARGO_BIN_EXE_triage");
    let mut acknowledged: Vec<(String, Value, Value)> = Vec::new();
    for round in 0..12u64 {
        // A writer process appending a whole call, killed after a varying delay.
        let cid = new_contact_id();
        let mut child = Command::new(bin)
            .args([
                "call",
                "--answers",
                "1,0,7,1,0,1,0,0,0",
                "--contact-id",
                &cid,
            ])
            .env("TRIAGE_STORE", t.store())
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn triage");
        std::thread::sleep(Duration::from_millis(5 + round * 7));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // Whatever it left, the log reads and every stream folds (no half turn).
        let store = FileStore::open(t.log()).expect("the log opens after a kill");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("rt");
        for id in store.contacts() {
            let events = rt.block_on(store.load(&id)).expect("load");
            CallState::fold(&events).unwrap_or_else(|e| panic!("{id} does not fold: {e}"));
        }
        // An acknowledged turn in between: its response was printed, so it must stay.
        let ack = new_contact_id();
        let r1 = t.invoke(&contact_event(&ack, &[]));
        let r2 = t.invoke(&contact_event(
            &ack,
            &[("answer", "1"), ("turn", field(&r1, "turn"))],
        ));
        acknowledged.push((ack, r1, r2));
    }

    // A child process writes a whole first line of a two-event batch and half of the
    // second, then is killed before it can finish.
    let text = std::fs::read_to_string(t.log()).expect("log");
    let last: Value = serde_json::from_str(text.lines().last().expect("a line")).expect("json");
    let torn_cid = new_contact_id();
    let mut first = last.clone();
    first["contact_id"] = Value::from(torn_cid.clone());
    first["seq"] = Value::from(1);
    first["batch_rest"] = Value::from(1);
    let mut second = serde_json::to_string(&last).expect("json");
    second.truncate(second.len() / 2);
    let partial = format!("{}\n{second}", serde_json::to_string(&first).expect("json"));
    let mut child = Command::new("sh")
        .args(["-c", "cat >> \"$1\"; sleep 30", "sh"])
        .arg(t.log())
        .stdin(Stdio::piped())
        .spawn()
        .expect("sh");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(partial.as_bytes()).expect("write");
    } // EOF: cat appends and exits; the shell sleeps
    let len_with_tail = {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let len = std::fs::metadata(t.log()).expect("stat").len() as usize;
            if len >= text.len() + partial.len() {
                break len;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the partial write did not land"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let _ = child.kill();
    let _ = child.wait();

    // Readers skip the torn batch, say so, and see every acknowledged event.
    let out = t.run(&["trail", &torn_cid], b"");
    assert!(!out.status.success(), "half a turn is never shown");
    for (i, (cid, _, r2)) in acknowledged.iter().enumerate() {
        let out = t.run(&["trail", cid, "--format", "json"], b"");
        assert!(out.status.success(), "{}", stderr(&out));
        let rows: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json trail");
        assert_eq!(rows.len(), 2, "both acknowledged events of {cid}");
        let err = stderr(&out);
        if i == 0 {
            // Before any append repaired it.
            assert!(
                err.contains("skipped the last"),
                "the torn tail is reported: {err}"
            );
        }
        // And the call goes on from its acknowledged turn: the next append repairs the tail.
        let r3 = t.invoke(&contact_event(
            cid,
            &[("answer", "0"), ("turn", field(r2, "turn"))],
        ));
        assert_eq!(field(&r3, "question"), "taste_smell", "{r3}");
    }
    let repaired = std::fs::read_to_string(t.log()).expect("log");
    assert!(!repaired.contains(&torn_cid), "the torn batch was cut off");
    assert!(repaired
        .lines()
        .all(|l| serde_json::from_str::<Value>(l).is_ok()));
    assert!(repaired.ends_with('\n'));
    assert!(len_with_tail > text.len());
    let out = t.run(&["trail", &acknowledged[0].0], b"");
    assert!(
        !stderr(&out).contains("skipped"),
        "nothing left to skip: {}",
        stderr(&out)
    );
}
