//! The `triage` command line. `main` in `src/bin/triage.rs` only parses and reports errors.

use crate::app::App;
use crate::connect::{CallerHasher, MAX_EVENT_BYTES};
use crate::output::{write_rows, Format};
use crate::store::{self, ContactId, SharedStore, StoreSpec};
use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::io::{Read, Write};
use std::process::ExitCode;

/// The default event log: a local file, no AWS account needed.
pub const DEFAULT_STORE: &str = "file:.triage/events.jsonl";

#[derive(Debug, Parser)]
#[command(
    name = "triage",
    version,
    about = "Event-sourced phone-line triage for Amazon Connect: run calls, serve the Lambda contract, read answer trails"
)]
pub struct Cli {
    /// Where events live: file:PATH (local append-only log) or dynamodb:TABLE (endpoint and
    /// credentials from the standard AWS settings, e.g. AWS_ENDPOINT_URL).
    #[arg(long, global = true, env = "TRIAGE_STORE", default_value = DEFAULT_STORE)]
    pub store: String,

    /// Log more (-v: info, -vv: debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One ContactFlowEvent JSON on stdin -> the Lambda's response JSON on stdout.
    Invoke,
    /// A contact's answer trail: every event with its time, question, answer, running
    /// score and outcome.
    Trail {
        contact_id: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let spec = StoreSpec::parse(&cli.store).map_err(anyhow::Error::msg)?;
    match cli.command {
        Command::Invoke => invoke(&spec).await,
        Command::Trail { contact_id, format } => {
            let store = open(&spec).await?;
            print_trail(&store, &contact_id, format).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn open(spec: &StoreSpec) -> Result<SharedStore> {
    store::open(spec)
        .await
        .with_context(|| format!("cannot open the event store {spec}"))
}

/// The caller-hash key from `TRIAGE_CALLER_HASH_KEY`, if set.
pub fn caller_hasher_from_env() -> Result<Option<CallerHasher>> {
    match std::env::var("TRIAGE_CALLER_HASH_KEY") {
        Ok(key) if !key.is_empty() => Ok(Some(
            CallerHasher::new(key.as_bytes())
                .map_err(anyhow::Error::msg)
                .context("TRIAGE_CALLER_HASH_KEY")?,
        )),
        _ => Ok(None),
    }
}

async fn invoke(spec: &StoreSpec) -> Result<ExitCode> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(MAX_EVENT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .context("cannot read the event from stdin")?;
    // Check the input before opening the store: a malformed event never touches it.
    crate::connect::parse_bytes(&bytes, None)?;
    let app = App::new(open(spec).await?).with_caller_hasher(caller_hasher_from_env()?);
    let response = app.handle_bytes(&bytes).await?;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &response)?;
    writeln!(out)?;
    Ok(ExitCode::SUCCESS)
}

pub async fn print_trail(store: &SharedStore, contact_id: &str, format: Format) -> Result<()> {
    let cid = ContactId::parse(contact_id).map_err(anyhow::Error::msg)?;
    let events = store.load(&cid).await?;
    if events.is_empty() {
        bail!(
            "no events for contact {cid} in {}: check the id, or pick the store with --store",
            store.describe()
        );
    }
    let rows = crate::trail::trail(&events)
        .with_context(|| format!("the events of contact {cid} do not fold"))?;
    let mut out = std::io::stdout().lock();
    write_rows(&mut out, &rows, format)?;
    Ok(())
}
