//! `localstack/ready.d/init.sh`, the hook Docker users of LocalStack get, run for real with
//! `awslocal` against the endpoint under test (LocalStack on `scripts/test.sh`'s LocalStack
//! pass, DynamoDB Local on the other): it builds the table `triage migrate` builds, a second
//! run changes nothing, `triage migrate` then finds every step in place, and a whole call
//! runs through `triage call --store dynamodb:TABLE` on the table it made. On the LocalStack
//! pass the real `awslocal` runs it (`TRIAGE_TEST_AWSLOCAL`).

use crate::cli::{run_triage, stderr};
use crate::events::new_contact_id;
use crate::helpers::{drop_table, endpoint, migrate_test_table, new_table_name};
use aws_sdk_dynamodb::Client;
use connect_triage::settings::dynamodb_client_from_env as client_from_env;
use connect_triage::store::dynamodb::migrate::{migrate, Migrations};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `awslocal` to run the hook with: `TRIAGE_TEST_AWSLOCAL` (required to exist: the
/// LocalStack pass of `scripts/test.sh` sets it), else the one `scripts/localstack.sh
/// install` puts in its venv, else a two-line stand-in that does what awslocal does (the
/// machine's AWS CLI with `--endpoint-url`), written into `scratch`.
fn awslocal(scratch: &Path) -> PathBuf {
    if let Some(path) = std::env::var_os("TRIAGE_TEST_AWSLOCAL").map(PathBuf::from) {
        assert!(
            path.is_file(),
            "TRIAGE_TEST_AWSLOCAL={} is not a file: run scripts/localstack.sh install",
            path.display()
        );
        return path;
    }
    let installed =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/localstack/venv/bin/awslocal");
    if installed.is_file() {
        return installed;
    }
    let which = Command::new("sh")
        .args(["-c", "command -v aws"])
        .output()
        .expect("sh runs");
    assert!(
        which.status.success(),
        "neither awslocal (scripts/localstack.sh install) nor the AWS CLI (`aws`) is installed"
    );
    let shim = scratch.join("awslocal");
    std::fs::write(
        &shim,
        "#!/bin/sh\nexec aws --endpoint-url \"http://$LOCALSTACK_HOST\" \"$@\"\n",
    )
    .expect("write the awslocal stand-in");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    shim
}

/// Runs the hook once for `table`, as LocalStack's container runs it (`awslocal` on PATH,
/// the migrations folder mounted), against the endpoint under test.
fn run_hook(table: &str, awslocal: &Path) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = awslocal.parent().expect("awslocal's folder");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // awslocal finds LocalStack through LOCALSTACK_HOST (host:port).
    let url = endpoint();
    let host = url
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/');
    Command::new("bash")
        .arg(root.join("localstack/ready.d/init.sh"))
        .env("PATH", path)
        .env("LOCALSTACK_HOST", host)
        .env("TRIAGE_TABLE", table)
        .env("MIGRATIONS_DIR", root.join("migrations"))
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .expect("bash runs the hook")
}

/// What a table is, as far as the migrations shape it: keys, attributes, indexes, billing, TTL.
async fn shape(client: &Client, table: &str) -> Value {
    let t = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .expect("describe table");
    let t = t.table().expect("table description");
    let keys = |ks: &[aws_sdk_dynamodb::types::KeySchemaElement]| {
        ks.iter()
            .map(|k| json!([k.attribute_name(), k.key_type().as_str()]))
            .collect::<Vec<_>>()
    };
    let mut attributes: Vec<Value> = t
        .attribute_definitions()
        .iter()
        .map(|a| json!([a.attribute_name(), a.attribute_type().as_str()]))
        .collect();
    attributes.sort_by_key(|v| v.to_string());
    let mut indexes: Vec<Value> = t
        .global_secondary_indexes()
        .iter()
        .map(|i| {
            json!({
                "name": i.index_name(),
                "keys": keys(i.key_schema()),
                "projection": i.projection().and_then(|p| p.projection_type()).map(|p| p.as_str().to_string()),
                "status": i.index_status().map(|s| s.as_str().to_string()),
            })
        })
        .collect();
    indexes.sort_by_key(|v| v["name"].to_string());
    let ttl = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .expect("describe ttl");
    let ttl = ttl.time_to_live_description();
    json!({
        "keys": keys(t.key_schema()),
        "attributes": attributes,
        "indexes": indexes,
        "billing": t.billing_mode_summary().and_then(|b| b.billing_mode()).map(|b| b.as_str().to_string()),
        "ttl": [ttl.and_then(|d| d.attribute_name()), ttl.and_then(|d| d.time_to_live_status()).map(|s| s.as_str().to_string())],
        "stream": t.stream_specification().map(|s| json!([s.stream_enabled(), s.stream_view_type().map(|v| v.as_str().to_string())])),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_init_hook_builds_the_table_migrate_builds_and_a_call_runs_on_it() {
    let client = client_from_env().await;
    let migrations = Migrations::embedded().expect("embedded migrations");
    let names: Vec<String> = migrations.list().iter().map(|m| m.name.clone()).collect();

    // The hook, twice.
    let scratch = tempfile::tempdir().expect("scratch dir");
    let awslocal = awslocal(scratch.path());
    let hooked = new_table_name();
    let first = tokio::task::spawn_blocking({
        let (t, a) = (hooked.clone(), awslocal.clone());
        move || run_hook(&t, &a)
    })
    .await
    .expect("join");
    let said = String::from_utf8_lossy(&first.stdout).to_string();
    assert!(first.status.success(), "{}\n{said}", stderr(&first));
    for m in &names {
        assert!(
            said.contains(&format!("{m}: applied")),
            "{m} applied: {said}"
        );
    }
    let second = tokio::task::spawn_blocking({
        let (t, a) = (hooked.clone(), awslocal.clone());
        move || run_hook(&t, &a)
    })
    .await
    .expect("join");
    let again = String::from_utf8_lossy(&second.stdout).to_string();
    assert!(second.status.success(), "{}\n{again}", stderr(&second));
    assert!(
        !again.contains("applied"),
        "a second run changes nothing: {again}"
    );
    assert_eq!(again.matches(": skipped").count(), names.len(), "{again}");

    // The same table as `triage migrate` makes.
    let migrated = new_table_name();
    migrate_test_table(&client, &migrated, &migrations).await;
    assert_eq!(
        shape(&client, &hooked).await,
        shape(&client, &migrated).await,
        "init.sh and triage migrate build different tables"
    );
    assert_eq!(
        shape(&client, &format!("{hooked}-model")).await,
        shape(&client, &format!("{migrated}-model")).await,
        "init.sh and triage migrate build different read-model tables"
    );

    // `triage migrate` on the hook's table finds every step in place and records it.
    let report = migrate(&client, &hooked, &migrations, |_| {})
        .await
        .expect("migrate after the hook");
    assert!(report.is_noop(), "{report:?}");
    assert!(
        report
            .skipped
            .iter()
            .all(|(_, why)| why.contains("now recorded")),
        "{report:?}"
    );

    // A whole call on the hook's table.
    let cid = new_contact_id();
    let out = tokio::task::spawn_blocking({
        let (store, cid) = (format!("dynamodb:{hooked}"), cid.clone());
        move || {
            run_triage(
                &store,
                &["call", "--answers", "1,1,1", "--contact-id", &cid],
                b"",
            )
        }
    })
    .await
    .expect("join");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{text}", stderr(&out));
    assert!(text.contains("hospital"), "15+25+15 >= 50: {text}");
    let trail = run_triage(
        &format!("dynamodb:{hooked}"),
        &["trail", &cid, "--format", "json"],
        b"",
    );
    assert!(trail.status.success(), "{}", stderr(&trail));
    let rows: Value = serde_json::from_slice(&trail.stdout).expect("trail json");
    assert_eq!(
        rows.as_array().map(Vec::len),
        Some(5),
        "start, 3 answers, conclusion: {rows}"
    );

    drop_table(&client, &hooked).await;
    drop_table(&client, &migrated).await;
}
