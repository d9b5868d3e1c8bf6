//! The benches' DynamoDB: `AWS_ENDPOINT_URL` when set, else a DynamoDB Local of their own
//! (started as the tests start theirs, tests/it/ddb_local.rs), and fresh tables made by the
//! project's migrations.

use connect_triage::store::dynamodb::migrate::{migrate, Migrations};
use std::time::Duration;

/// The endpoint and where it came from: `AWS_ENDPOINT_URL`, or the bench's own DynamoDB
/// Local (started here). The error says what to install.
pub fn endpoint() -> Result<(String, &'static str), String> {
    // ddb_local::endpoint panics with what to install; say it as the bench's own error.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let url = std::panic::catch_unwind(super::ddb_local::endpoint);
    std::panic::set_hook(hook);
    match url {
        Ok(url) if endpoint_given() => Ok((url, "AWS_ENDPOINT_URL")),
        Ok(url) => Ok((url, "the bench's own DynamoDB Local")),
        Err(p) => {
            let why = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!(
                "no DynamoDB to run against: {}",
                why.replace("no DynamoDB for the tests: ", "")
            ))
        }
    }
}

/// Whether the bench was started with `AWS_ENDPOINT_URL` set. Not `std::env::var`: before
/// `main`, tests/it/ddb_local.rs sets it to the port its own server will take. Linux keeps
/// the environment the process was started with in `/proc/self/environ`.
fn endpoint_given() -> bool {
    std::fs::read("/proc/self/environ").is_ok_and(|env| {
        env.split(|&b| b == 0)
            .any(|kv| kv.starts_with(b"AWS_ENDPOINT_URL=") && kv.len() > 17)
    })
}

/// A table made by the embedded migrations but TTL (see `test_migrations` in
/// tests/it/helpers.rs for why), with its read model's table.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), String> {
    let migrations = Migrations::embedded()
        .map_err(|e| e.to_string())?
        .retain(|m| m.operation() != "UpdateTimeToLive");
    match tokio::time::timeout(
        Duration::from_secs(120),
        migrate(client, table, &migrations, |_| {}),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("creating table {table}: {e}")),
        Err(_) => Err(format!(
            "creating table {table} took over 120 s (an index stuck in CREATING?)"
        )),
    }
}
