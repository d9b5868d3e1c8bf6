//! The projector against real stream engines (DynamoDB Local's Streams, and LocalStack's
//! when `scripts/test.sh` runs the suite on it): a harness reads the events table's stream
//! (DescribeStream, GetShardIterator, GetRecords), turns each record into the JSON Lambda's
//! event source mapping delivers (checked by parsing it as `aws_lambda_events`' type;
//! shape: <https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html>), and hands the
//! projector batches with duplicates, reordering, a batch cut in half and retried, and a
//! record that is not an event. The model it makes must give exactly the figures of the
//! events path, and delivering everything again must change nothing.
//!
//! The file store's model gets the same check on several thousand calls
//! (`file_model_matches_the_events`).

use crate::helpers::{endpoint, migrate_test_table, new_table_name};
use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_sdk_dynamodbstreams::types::{AttributeValue as Sav, ShardIteratorType};
use chrono::{NaiveDate, TimeZone, Utc};
use connect_triage::connect::CallerHasher;
use connect_triage::domain::{ContactId, Event, EventKind};
use connect_triage::read::calls::{calls, calls_from_model};
use connect_triage::read::stats::{stats, stats_from_model};
use connect_triage::read::stream::handle_batch;
use connect_triage::read::{CallQuery, DayRange, Reader};
use connect_triage::sim::demo::{seed_demo, DemoPlan, DEMO_HASH_KEY, DEMO_PREFIX};
use connect_triage::store::dynamodb::migrate::Migrations;
use connect_triage::store::dynamodb::model::DynamoModel;
use connect_triage::store::dynamodb::{DynamoOptions, DynamoStore};
use connect_triage::store::model::ReadModel;
use connect_triage::store::{EventStore, SharedStore};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

const FIRST_DAY: &str = "2026-03-01";
const DAYS: u32 = 3;

fn first_day() -> NaiveDate {
    NaiveDate::parse_from_str(FIRST_DAY, "%Y-%m-%d").expect("day")
}

fn range() -> DayRange {
    DayRange::parse(FIRST_DAY, "2026-03-03").expect("range")
}

fn demo_ids(seed: u64, calls: u32) -> Vec<ContactId> {
    (0..calls)
        .map(|i| ContactId::parse(&format!("{DEMO_PREFIX}{seed:x}-{i:06}")).expect("demo id"))
        .collect()
}

/// Seeds `calls` demo calls (exits, invalid keys, time-outs, hang-ups), then records
/// Connect's `CallEnded` for every fifth unfinished one, as the contact-event rule would.
async fn seed(store: SharedStore, calls: u32, seed_n: u64) -> Vec<ContactId> {
    let plan = DemoPlan {
        calls,
        days: DAYS,
        first_day: first_day(),
        seed: seed_n,
    };
    seed_demo(
        store.clone(),
        &plan,
        CallerHasher::new(DEMO_HASH_KEY).expect("key"),
        |_| {},
    )
    .await
    .expect("seeded");
    let ids = demo_ids(seed_n, calls);
    let mut ended = 0;
    for id in &ids {
        let h = store.load(id).await.expect("load");
        let last = h.last().expect("events").clone();
        let done = h.iter().any(|e| {
            matches!(
                e.kind,
                EventKind::TriageConcluded { .. } | EventKind::CallEnded { .. }
            )
        });
        if !done && fnv(id).is_multiple_of(5) {
            let at = last.at + chrono::Duration::seconds(20);
            let e = Event {
                seq: last.seq + 1,
                event_id: uuid::Uuid::now_v7(),
                at,
                schema: connect_triage::domain::SCHEMA_VERSION,
                turn: last.turn,
                kind: EventKind::CallEnded {
                    ended_at: at,
                    disconnect_reason: Some("CUSTOMER_DISCONNECT".into()),
                },
            };
            store
                .append(id, last.seq, vec![e])
                .await
                .expect("CallEnded");
            ended += 1;
        }
    }
    assert!(ended > 0, "some calls end with Connect's CallEnded");
    ids
}

fn fnv(id: &ContactId) -> u64 {
    connect_triage::store::dynamodb::fnv1a64(id.to_string().as_bytes())
}

/// Figures and rows on both paths, at `now` (before the calls end: some open; long after:
/// every silent one abandoned).
async fn assert_same_figures(reader: &Reader, model: &dyn ReadModel, what: &str) {
    let late = CallQuery::new(range());
    let mut during = CallQuery::new(range());
    during.now = Utc
        .with_ymd_and_hms(2026, 3, 3, 15, 0, 0)
        .single()
        .expect("time");
    // Long after the projector last moved the counters: every open call is stale, and the
    // model answers from its counters alone (no open call read).
    let mut much_later = CallQuery::new(range());
    much_later.now = Utc::now() + chrono::Duration::days(1);
    for q in [&late, &during, &much_later] {
        let from_events = stats(reader, q, |_| {}).await.expect("stats from events");
        let (from_model, updated) = stats_from_model(model, q).await.expect("stats from model");
        assert!(
            updated.is_some(),
            "{what}: the counters say when they were last changed"
        );
        assert!(from_events.calls > 0);
        assert_eq!(from_model, from_events, "{what}: stats at {}", q.now);
        let rows_events = calls(reader, q, None).await.expect("calls from events");
        let rows_model = calls_from_model(model, q, None)
            .await
            .expect("calls from model");
        assert_eq!(rows_model, rows_events, "{what}: calls at {}", q.now);
    }
    let st = stats(reader, &late, |_| {}).await.expect("stats");
    let sum =
        |f: fn(&connect_triage::read::stats::DayRow) -> u64| st.days.iter().map(f).sum::<u64>();
    assert!(
        sum(|d| d.abandoned) > 0 && sum(|d| d.exited) > 0,
        "{what}: hang-ups and exits"
    );
    assert!(sum(|d| d.repeat_callers) > 0, "{what}: repeat callers");
    assert!(!st.repeat_callers.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_model_matches_the_events() {
    let dir = tempfile::tempdir().expect("dir");
    let log = dir.path().join("events.jsonl");
    let file = Arc::new(connect_triage::store::file::FileStore::open(&log).expect("file store"));
    seed(file.clone(), 3_000, 11).await;
    let spec = connect_triage::store::StoreSpec::File(log.clone());
    let reader = connect_triage::read::open_reader(&spec, &DynamoOptions::default())
        .await
        .expect("reader");
    let model = reader.model().await.expect("model brought up to date");
    assert_same_figures(&reader, &*model, "file").await;
    // Opened again from its file: the same figures, nothing to project.
    let again = connect_triage::store::model::FileModel::open(&log).expect("model file");
    assert_eq!(
        again.snapshot(),
        connect_triage::store::model::FileModel::open(&log)
            .expect("model file")
            .snapshot()
    );
    let lag = connect_triage::read::project::lag(&reader, range(), Utc::now())
        .await
        .expect("lag");
    assert_eq!(
        (lag.calls, lag.calls_behind, lag.lag_seconds),
        (3_000, 0, 0)
    );
    // A rebuild of a model that is up to date changes nothing.
    let run = connect_triage::read::project::rebuild(&reader, range(), |_| {})
        .await
        .expect("rebuild");
    assert_eq!((run.calls, run.changed), (3_000, 0));
}

/// A store that projects each call into a model right after every append: the model then
/// moves by every delta a call goes through (open, answered, hung up...), not just once.
struct ProjectEveryAppend {
    inner: Arc<connect_triage::store::file::FileStore>,
    model: Arc<connect_triage::store::model::MemoryModel>,
}

#[async_trait::async_trait]
impl EventStore for ProjectEveryAppend {
    async fn load(
        &self,
        id: &ContactId,
    ) -> Result<connect_triage::store::History, connect_triage::store::StoreError> {
        self.inner.load(id).await
    }
    async fn append(
        &self,
        id: &ContactId,
        expected: u64,
        events: Vec<Event>,
    ) -> Result<(), connect_triage::store::StoreError> {
        self.inner.append(id, expected, events).await?;
        connect_triage::read::project::project_call(&*self.inner, &*self.model, 8, id)
            .await
            .expect("projected");
        Ok(())
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_model_moved_by_every_event_matches_the_events() {
    let dir = tempfile::tempdir().expect("dir");
    let file = Arc::new(
        connect_triage::store::file::FileStore::open(dir.path().join("e.jsonl")).expect("file"),
    );
    let model = Arc::new(connect_triage::store::model::MemoryModel::new());
    let store = Arc::new(ProjectEveryAppend {
        inner: file.clone(),
        model: model.clone(),
    });
    seed(store, 1_500, 5).await;
    let reader = Reader::new(file);
    assert_same_figures(&reader, &*model, "projected at every append").await;
}

// ---- the stream harness -----------------------------------------------------------------

fn attr(v: &Sav) -> Value {
    match v {
        Sav::S(s) => json!({ "S": s }),
        Sav::N(n) => json!({ "N": n }),
        Sav::Bool(b) => json!({ "BOOL": b }),
        Sav::Null(_) => json!({ "NULL": true }),
        Sav::Ss(v) => json!({ "SS": v }),
        Sav::Ns(v) => json!({ "NS": v }),
        Sav::L(v) => json!({ "L": v.iter().map(attr).collect::<Vec<_>>() }),
        Sav::M(m) => json!({ "M": image(m) }),
        other => panic!("the events table holds no {other:?}"),
    }
}

fn image(m: &std::collections::HashMap<String, Sav>) -> Map<String, Value> {
    m.iter().map(|(k, v)| (k.clone(), attr(v))).collect()
}

/// One stream record as Lambda's event source mapping hands it to a function.
fn lambda_record(r: &aws_sdk_dynamodbstreams::types::Record, arn: &str) -> Value {
    let d = r
        .dynamodb
        .as_ref()
        .expect("a stream record's dynamodb part");
    let mut dynamodb = json!({
        "ApproximateCreationDateTime": d.approximate_creation_date_time.map(|t| t.secs()).unwrap_or(0),
        "Keys": image(d.keys.as_ref().expect("keys")),
        "SequenceNumber": d.sequence_number.clone().expect("sequence number"),
        "SizeBytes": d.size_bytes.unwrap_or(0),
        "StreamViewType": d.stream_view_type.as_ref().map(|v| v.as_str()).unwrap_or("NEW_IMAGE"),
    });
    if let Some(new) = &d.new_image {
        dynamodb["NewImage"] = Value::Object(image(new));
    }
    json!({
        "eventID": r.event_id.clone().unwrap_or_default(),
        "eventName": r.event_name.as_ref().map(|e| e.as_str()).unwrap_or("INSERT"),
        "eventVersion": r.event_version.clone().unwrap_or_else(|| "1.1".into()),
        "eventSource": "aws:dynamodb",
        "awsRegion": r.aws_region.clone().unwrap_or_else(|| "us-east-1".into()),
        "eventSourceARN": arn,
        "dynamodb": dynamodb,
    })
}

/// Follows a table's stream as Lambda's poller does: every shard from its start, each
/// shard's iterator kept between polls.
struct StreamTail {
    streams: aws_sdk_dynamodbstreams::Client,
    arn: String,
    iterators: std::collections::HashMap<String, Option<String>>,
    seen: std::collections::HashSet<String>,
}

impl StreamTail {
    async fn new(table: &str) -> StreamTail {
        // The stream engines answer more slowly than the table (LocalStack's runs on
        // kinesis-local): the harness waits longer than the Lambda's 1 s / 2.5 s.
        let limits = connect_triage::store::dynamodb::SdkLimits {
            attempt_timeout: Duration::from_secs(20),
            operation_timeout: Duration::from_secs(60),
        };
        let config = connect_triage::store::dynamodb::sdk_config(&limits).await;
        let ddb = aws_sdk_dynamodb::Client::new(&config);
        let desc = ddb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .expect("DescribeTable");
        let arn = desc
            .table
            .and_then(|t| t.latest_stream_arn)
            .expect("the table has a stream (migration 0005)");
        StreamTail {
            streams: aws_sdk_dynamodbstreams::Client::new(&config),
            arn,
            iterators: Default::default(),
            seen: Default::default(),
        }
    }

    /// The records written since the last poll (shards may appear while we read).
    async fn poll(&mut self) -> Vec<Value> {
        let mut start: Option<String> = None;
        loop {
            let d = self
                .streams
                .describe_stream()
                .stream_arn(&self.arn)
                .set_exclusive_start_shard_id(start.clone())
                .send()
                .await
                .expect("DescribeStream");
            let d = d.stream_description.expect("description");
            for shard in d.shards.unwrap_or_default() {
                let id = shard.shard_id.expect("shard id");
                if !self.iterators.contains_key(&id) {
                    let it = self
                        .streams
                        .get_shard_iterator()
                        .stream_arn(&self.arn)
                        .shard_id(&id)
                        .shard_iterator_type(ShardIteratorType::TrimHorizon)
                        .send()
                        .await
                        .expect("GetShardIterator");
                    self.iterators.insert(id, it.shard_iterator);
                }
            }
            start = d.last_evaluated_shard_id;
            if start.is_none() {
                break;
            }
        }
        let mut records = Vec::new();
        for it in self.iterators.values_mut() {
            // At most 20 reads a shard a poll: LocalStack can answer an open shard's
            // iterator with the same records again and again.
            let mut reads = 0;
            while let Some(current) = it.clone().filter(|_| reads < 20) {
                reads += 1;
                let out = self
                    .streams
                    .get_records()
                    .shard_iterator(current)
                    .limit(1000)
                    .send()
                    .await
                    .expect("GetRecords");
                let got = out.records.unwrap_or_default();
                let empty = got.is_empty();
                // Each record once, by its sequence number.
                for r in &got {
                    let seq = r
                        .dynamodb
                        .as_ref()
                        .and_then(|d| d.sequence_number.clone())
                        .unwrap_or_default();
                    if self.seen.insert(seq) {
                        records.push(lambda_record(r, &self.arn));
                    }
                }
                *it = out.next_shard_iterator;
                if empty {
                    break;
                }
            }
        }
        records
    }
}

fn is_event_record(r: &Value) -> bool {
    !r["dynamodb"]["Keys"]["contact_id"]["S"]
        .as_str()
        .unwrap_or("#")
        .starts_with('#')
}

/// The events store as of the records delivered so far: a call's events up to the highest
/// `seq` of its records handed to the projector. Lambda hands a batch right after its
/// records are written, when the call's later events do not exist yet; the harness reads
/// the stream after the fact, so without this the projector would find every call already
/// finished and never move a summary twice.
struct AsOfDelivered {
    inner: Arc<DynamoStore>,
    seen: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

impl AsOfDelivered {
    fn deliver(&self, records: &[Value]) {
        let mut seen = self.seen.lock().expect("lock");
        for r in records {
            let keys = &r["dynamodb"]["Keys"];
            if let (Some(id), Some(seq)) = (
                keys["contact_id"]["S"].as_str(),
                keys["seq"]["N"]
                    .as_str()
                    .and_then(|n| n.parse::<u64>().ok()),
            ) {
                let e = seen.entry(id.to_string()).or_insert(0);
                *e = (*e).max(seq);
            }
        }
    }
}

#[async_trait::async_trait]
impl EventStore for AsOfDelivered {
    async fn load(
        &self,
        id: &ContactId,
    ) -> Result<connect_triage::store::History, connect_triage::store::StoreError> {
        let upto = self
            .seen
            .lock()
            .expect("lock")
            .get(&id.to_string())
            .copied()
            .unwrap_or(0);
        let all = self.inner.load(id).await?;
        Ok(all
            .iter()
            .filter(|e| e.seq <= upto)
            .cloned()
            .collect::<Vec<_>>()
            .into())
    }
    async fn append(
        &self,
        _: &ContactId,
        _: u64,
        _: Vec<Event>,
    ) -> Result<(), connect_triage::store::StoreError> {
        unreachable!("the projector never appends")
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

fn batch(records: &[Value]) -> StreamEvent {
    serde_json::from_value(json!({ "Records": records }))
        .expect("the records parse as Lambda's DynamoDB event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn projector_on_the_tables_stream() {
    endpoint();
    let table = new_table_name();
    let client = connect_triage::settings::dynamodb_client_from_env().await;
    // Every migration but TTL (see helpers::test_migrations): the stream is on before the
    // first event, and the model table exists.
    let migrations = Migrations::embedded()
        .expect("embedded")
        .retain(|m| m.operation() != "UpdateTimeToLive");
    migrate_test_table(&client, &table, &migrations).await;
    // The stream's engine slows the table's writes (LocalStack's most, with the other tests
    // running): the seeding store waits longer than the Lambda's 1 s / 2.5 s.
    let opts = DynamoOptions {
        limits: connect_triage::store::dynamodb::SdkLimits {
            attempt_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
        },
        ..DynamoOptions::default()
    };
    let store = DynamoStore::connect(table.clone(), opts, None)
        .await
        .expect("store");
    let store = Arc::new(store);
    let model: Arc<dyn ReadModel> = Arc::new(DynamoModel::new(
        &store,
        connect_triage::read::model_table(&table),
    ));
    let shards = store.options().day_shards;
    let as_of = Arc::new(AsOfDelivered {
        inner: store.clone(),
        seen: Default::default(),
    });
    let events: Arc<dyn EventStore> = as_of.clone();
    // The projector follows the stream while the calls are being made, so it sees calls
    // half way and moves their summaries and counters many times.
    // LocalStack's stream engine (kinesis-local) is several times slower than DynamoDB
    // Local's: its pass (TRIAGE_TEST_AWSLOCAL set by scripts/test.sh) seeds fewer calls.
    let calls = if std::env::var_os("TRIAGE_TEST_AWSLOCAL").is_some() {
        300
    } else {
        600
    };
    // LocalStack's stream starts a moment after UpdateTable turns it on, and writes made
    // before that never reach it: seed only once a probe item (a `#` key, which the
    // projector skips) has come through.
    let mut tail = StreamTail::new(&table).await;
    let mut records: Vec<Value> = Vec::new();
    let probe_deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut n = 0u64;
    loop {
        n += 1;
        client
            .put_item()
            .table_name(&table)
            .item(
                "contact_id",
                aws_sdk_dynamodb::types::AttributeValue::S("#probe".into()),
            )
            .item(
                "seq",
                aws_sdk_dynamodb::types::AttributeValue::N(n.to_string()),
            )
            .send()
            .await
            .expect("probe item");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let got = tail.poll().await;
        let through = got
            .iter()
            .any(|r| r["dynamodb"]["Keys"]["contact_id"]["S"] == "#probe");
        records.extend(got);
        if through {
            break;
        }
        assert!(
            std::time::Instant::now() < probe_deadline,
            "the table's stream carried nothing after 60 s"
        );
    }
    let mut seeding = Some(tokio::spawn(seed(store.clone(), calls, 23)));
    let mut delivered = 0usize;
    let mut batches = 0usize;
    let mut total: Option<usize> = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        let new = tail.poll().await;
        // Batches of at most 100, each delivered out of order (reversed, then halves
        // swapped) with its first 10 records again at the end; every third one cut in
        // half first, then retried whole.
        for chunk in new.chunks(100) {
            let mut b: Vec<Value> = chunk.iter().rev().cloned().collect();
            let half = b.len() / 2;
            b.rotate_left(half);
            b.extend(chunk.iter().take(10).cloned());
            if batches % 3 == 2 {
                as_of.deliver(&b[..half]);
                let r = handle_batch(events.clone(), model.clone(), shards, &batch(&b[..half]))
                    .await
                    .expect("half a batch");
                assert!(r.failures.is_empty(), "{:?}", r.failures);
            }
            as_of.deliver(&b);
            let r = handle_batch(events.clone(), model.clone(), shards, &batch(&b))
                .await
                .expect("a batch");
            assert!(r.failures.is_empty(), "{:?}", r.failures);
            delivered += r.records;
            batches += 1;
        }
        records.extend(new);
        if seeding.as_ref().is_some_and(|s| s.is_finished()) {
            let ids = seeding.take().expect("seeding").await.expect("seeding");
            let mut n = 0;
            for id in &ids {
                n += store.load(id).await.expect("load").len();
            }
            total = Some(n);
            continue;
        }
        if let Some(total) = total {
            if records.iter().filter(|r| is_event_record(r)).count() >= total {
                assert!(delivered > total);
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the stream holds {} records after 180 s (events written: {total:?})",
            records.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        batches > 5,
        "the projector followed the calls in {batches} batches"
    );
    // Table metadata on the stream (DynamoDB Local carries the `#migrations` records that
    // `triage migrate` wrote after turning the stream on; LocalStack's stream may start
    // later): skipped, never a failure.
    let mut meta = records
        .iter()
        .find(|r| is_event_record(r))
        .expect("an event record")
        .clone();
    meta["dynamodb"]["Keys"] = json!({"contact_id": {"S": "#migrations"}, "seq": {"N": "6"}});
    meta["dynamodb"]["NewImage"] = json!({
        "contact_id": {"S": "#migrations"}, "seq": {"N": "6"},
        "migration": {"S": "0006_read_model"}, "outcome": {"S": "applied"}
    });
    meta["dynamodb"]["SequenceNumber"] = json!("999999999999999999998");
    let r = handle_batch(events.clone(), model.clone(), shards, &batch(&[meta]))
        .await
        .expect("a batch");
    assert_eq!((r.skipped, r.failures.len(), r.calls), (1, 0, 0), "{r:?}");

    // A record that is not an event: reported by its sequence number, never a crash.
    let mut bad = records
        .iter()
        .find(|r| r["dynamodb"]["NewImage"]["type"]["S"] == "AnswerRecorded")
        .expect("an answer record")
        .clone();
    bad["dynamodb"]["NewImage"]["type"] = json!({"S": "SomethingElse"});
    bad["dynamodb"]["SequenceNumber"] = json!("999999999999999999999");
    let good = records.last().expect("records").clone();
    let r = handle_batch(events.clone(), model.clone(), shards, &batch(&[good, bad]))
        .await
        .expect("a batch");
    assert_eq!(r.failures.len(), 1, "{:?}", r.failures);
    assert_eq!(r.failures[0].0, "999999999999999999999");
    assert!(
        r.failures[0].1.contains("not an event"),
        "{}",
        r.failures[0].1
    );
    let response = serde_json::to_value(r.response()).expect("response");
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": "999999999999999999999"}]})
    );

    let reader = Reader::new(store.clone()).with_model(model.clone(), shards);
    assert_same_figures(&reader, &*model, "DynamoDB").await;

    // Everything again, in one go per 100: the model does not move.
    let before = model.day_counts(range()).await.expect("counts");
    for chunk in records.chunks(100) {
        let r = handle_batch(events.clone(), model.clone(), shards, &batch(chunk))
            .await
            .expect("again");
        assert_eq!(r.changed, 0, "a redelivered record changed the model");
    }
    assert_eq!(model.day_counts(range()).await.expect("counts"), before);
}
