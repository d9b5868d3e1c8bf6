//! Shared test helpers.

use chrono::{DateTime, TimeZone, Utc};
use connect_triage::domain::ContactId;
use connect_triage::domain::{CallFacts, Event, EventKind, Lang, Outcome, SCHEMA_VERSION};
use connect_triage::settings::dynamodb_client_from_env as client_from_env;
use connect_triage::store::dynamodb::migrate::{migrate, MigrateReport, Migrations};
use connect_triage::store::dynamodb::{DynamoOptions, DynamoStore};
use uuid::Uuid;

/// A fresh contact id (a UUID, like Connect's).
pub fn contact() -> ContactId {
    ContactId::parse(&Uuid::now_v7().to_string()).expect("a UUID is a valid ContactId")
}

/// A recent time with millisecond precision (what the stores keep), `ms` after now. Recent,
/// so that no TTL sweeper finds the events already expired.
pub fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(Utc::now().timestamp_millis() + ms)
        .single()
        .expect("valid time")
}

fn event(seq: u64, kind: EventKind) -> Event {
    Event {
        seq,
        event_id: Uuid::now_v7(),
        at: at(seq as i64 * 1_000),
        schema: SCHEMA_VERSION,
        turn: seq.saturating_sub(1),
        kind,
    }
}

/// A CallStarted with every optional fact filled in.
pub fn started(seq: u64) -> Event {
    event(
        seq,
        EventKind::CallStarted {
            questionnaire: "covid19".into(),
            questionnaire_version: 1,
            lang: Lang::En,
            facts: CallFacts {
                channel: Some("VOICE".into()),
                initiation_method: Some("INBOUND".into()),
                initial_contact_id: Some("11111111-2222-3333-4444-555555555555".into()),
                previous_contact_id: Some("66666666-7777-8888-9999-000000000000".into()),
                caller_hash: Some("ab".repeat(32)),
            },
        },
    )
}

/// A CallStarted with no optional facts (chat, task, unknown caller).
pub fn started_bare(seq: u64) -> Event {
    event(
        seq,
        EventKind::CallStarted {
            questionnaire: "covid19".into(),
            questionnaire_version: 1,
            lang: Lang::Es,
            facts: CallFacts::default(),
        },
    )
}

pub fn answered(seq: u64, yes: bool, raw: &str) -> Event {
    event(
        seq,
        EventKind::AnswerRecorded {
            question: format!("q{seq}"),
            yes,
            raw: raw.into(),
            mode: Default::default(),
            confidence_pct: None,
        },
    )
}

pub fn rejected(seq: u64, raw: &str) -> Event {
    event(
        seq,
        EventKind::InputRejected {
            question: "q1".into(),
            raw: raw.into(),
            raw_len: raw.len() as u64 + 100,
        },
    )
}

pub fn exited(seq: u64) -> Event {
    event(
        seq,
        EventKind::CallExited {
            question: "q3".into(),
        },
    )
}

pub fn concluded(seq: u64, outcome: Outcome, reason: Option<&str>) -> Event {
    event(
        seq,
        EventKind::TriageConcluded {
            outcome,
            score: 55,
            reason: reason.map(str::to_string),
        },
    )
}

/// One event of every kind (and both shapes of the optional fields), seq 1..
pub fn every_kind() -> Vec<Event> {
    let mut events = vec![
        started(1),
        answered(2, true, "1"),
        answered(3, false, ""),
        rejected(4, "9#"),
        exited(5),
        concluded(6, Outcome::Hospital, None),
        concluded(7, Outcome::Exited, Some("caller pressed *")),
        started_bare(8),
        // Schema 2: a spoken answer, and where the audio is (with and without its time).
        event(
            9,
            EventKind::AnswerRecorded {
                question: "q9".into(),
                yes: true,
                raw: "1".into(),
                mode: connect_triage::domain::InputMode::Speech,
                confidence_pct: Some(87),
            },
        ),
        event(
            10,
            EventKind::AudioStreamed {
                stream_arn: "arn:aws:kinesisvideo:eu-west-1:123456789012:stream/p-connect-x/1"
                    .into(),
                start_fragment: "91343852333181432392682062622220590765191907586".into(),
                stream_started_at: Some(at(1_571_360_125_131)),
            },
        ),
        event(
            11,
            EventKind::AudioStreamed {
                stream_arn: "arn:aws:kinesisvideo:eu-west-1:123456789012:stream/p-connect-y/2"
                    .into(),
                start_fragment: "1".into(),
                stream_started_at: None,
            },
        ),
    ];
    for (i, e) in events.iter_mut().enumerate() {
        e.seq = i as u64 + 1;
    }
    events
}

/// `n` answers numbered from `first`.
pub fn answers(first: u64, n: u64) -> Vec<Event> {
    (first..first + n)
        .map(|s| answered(s, s % 2 == 0, "1"))
        .collect()
}

static MIGRATING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The DynamoDB endpoint under test: `AWS_ENDPOINT_URL`, or else the test binary's own
/// DynamoDB Local, installed and started on first use (see [`crate::ddb_local`]). Panics
/// (never skips) when there can be none, saying why and what to run.
pub fn endpoint() -> String {
    crate::ddb_local::endpoint()
}

/// A fresh, uniquely named table, created by `migrate` (every migration but TTL, see
/// [`test_migrations`]), and a store on it.
pub async fn dynamodb_store() -> (DynamoStore, String) {
    dynamodb_store_with(DynamoOptions::default()).await
}

/// As [`dynamodb_store`], with store options.
pub async fn dynamodb_store_with(opts: DynamoOptions) -> (DynamoStore, String) {
    // The endpoint first: it may have to start DynamoDB Local.
    let table = new_table_name();
    let client = client_from_env().await;
    migrate_test_table(&client, &table, &test_migrations()).await;
    // Connected as `DynamoStore::open` connects (appends on the direct path unless `opts`
    // say otherwise), to the endpoint the environment names.
    let store = DynamoStore::connect(table.clone(), opts, None)
        .await
        .expect("a DynamoDB store");
    (store, table)
}

/// A unique table name; makes sure there is an endpoint (starting DynamoDB Local if need be).
pub fn new_table_name() -> String {
    endpoint();
    format!("it-{}", Uuid::now_v7().simple())
}

/// The migrations test tables get: all but `UpdateTimeToLive`.
///
/// Why: DynamoDB Local (and LocalStack, which runs it) gives every TTL-enabled table an
/// expiry sweeper that holds one thread of a fixed pool of 10 (hardcoded), and index builds
/// need a thread from the same pool. After 7 TTL-enabled tables in one instance, every
/// later index stays CREATING forever. So only the migration tests enable TTL, and they
/// drop their tables ([`drop_table`]). The `expires_at` attribute is written regardless.
///
/// Nor the stream (`0005_stream`): LocalStack runs every table's stream on kinesis-local,
/// and a hundred test tables streaming at once slow its writes past the store's 1 s
/// attempt limit. Tests of the stream itself (tests/it/projector.rs) and of the
/// migrations turn it on.
pub fn test_migrations() -> Migrations {
    Migrations::embedded()
        .expect("embedded migrations")
        .retain(|m| m.operation() != "UpdateTimeToLive" && m.name != "0005_stream")
}

/// Runs `migrations` into `table`, one test at a time, within a bounded time.
pub async fn migrate_test_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    migrations: &Migrations,
) -> MigrateReport {
    // One at a time keeps DynamoDB Local's single index builder from being the bottleneck.
    let _one_at_a_time = MIGRATING.lock().await;
    match tokio::time::timeout(
        std::time::Duration::from_secs(90),
        migrate(client, table, migrations, |_| {}),
    )
    .await
    {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => panic!("migrating test table {table}: {e}"),
        Err(_) => panic!(
            "migrating test table {table} took over 90 s: an index stuck in CREATING? \
             (DynamoDB Local builds no index once 7 TTL-enabled tables exist; see test_migrations)"
        ),
    }
}

/// Drops a test table (TTL off first, which frees DynamoDB Local's sweeper thread at once).
pub async fn drop_table(client: &aws_sdk_dynamodb::Client, table: &str) {
    let _ = client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
                .enabled(false)
                .attribute_name("expires_at")
                .build()
                .expect("spec"),
        )
        .send()
        .await;
    client
        .delete_table()
        .table_name(table)
        .send()
        .await
        .unwrap_or_else(|e| panic!("dropping {table}: {e:?}"));
    // Its read model's table, when the migrations made one.
    let _ = client
        .delete_table()
        .table_name(format!("{table}-model"))
        .send()
        .await;
}

/// The Python of scripts/pyenv.sh (installed on first use, pinned in
/// tests/python-requirements.txt): the checkers' interpreter.
pub fn pyenv_python() -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pyenv.sh");
    let out = std::process::Command::new(script)
        .output()
        .expect("run scripts/pyenv.sh");
    assert!(
        out.status.success(),
        "scripts/pyenv.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
