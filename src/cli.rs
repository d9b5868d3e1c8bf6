//! The `triage` command line. `main` in `src/bin/triage.rs` only parses and reports errors.

use crate::app::App;
use crate::call::{describe_end, run_call, TerminalCaller};
use crate::connect::{CallerHasher, MAX_EVENT_BYTES};
use crate::domain::Lang;
use crate::flow::Contact;
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
    /// A whole phone call in the terminal, through the Connect flow that template.yaml
    /// deploys, answered as the Lambda answers. Interactive unless --answers is given.
    Call {
        /// Keys the caller presses, in order: 1 yes, 0 no, * leave, t no key (timeout).
        /// Anything else is an invalid key (asked again). Example: --answers 1,0,*
        #[arg(long)]
        answers: Option<String>,
        /// Language of the call: es (the seed's Spanish) or en.
        #[arg(long, default_value = "es")]
        lang: String,
        /// The ContactId to use (default: a new UUID).
        #[arg(long)]
        contact_id: Option<String>,
        /// The caller's number as Connect would send it (stored only as a keyed hash when
        /// TRIAGE_CALLER_HASH_KEY is set, never as is).
        #[arg(long, default_value = "+34600000000")]
        caller: String,
        /// How the trail is shown at the end.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// One ContactFlowEvent JSON on stdin -> the Lambda's response JSON on stdout.
    Invoke,
    /// Create or update the DynamoDB table of --store dynamodb:TABLE by applying the
    /// migrations (built in; or --dir) in order. Idempotent: a second run changes nothing.
    Migrate {
        /// Apply the migrations in this folder instead of the ones built into the binary.
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// Soak test: C concurrent simulated calls through the Lambda's code path for a while
    /// (random answers, invalid keys, retries), then an audit of every trail: no lost or
    /// duplicate answer, every call concluded. Prints calls/s and turn latency; exits 1 if
    /// the audit fails.
    Loadtest {
        /// Calls in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// How long to run, in seconds (default 60).
        #[arg(long, conflicts_with = "minutes")]
        seconds: Option<u64>,
        /// How long to run, in minutes.
        #[arg(long)]
        minutes: Option<u64>,
    },
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
        Command::Migrate { dir } => migrate(&spec, dir.as_deref()).await,
        Command::Call {
            answers,
            lang,
            contact_id,
            caller,
            format,
        } => {
            let lang = Lang::parse(&lang)
                .ok_or_else(|| anyhow::anyhow!("--lang {lang:?}: use es or en"))?;
            let script = answers
                .as_deref()
                .map(crate::call::parse_answers)
                .transpose()
                .map_err(anyhow::Error::msg)
                .context("--answers")?;
            let contact_id = match contact_id {
                Some(id) => ContactId::parse(&id)
                    .map_err(anyhow::Error::msg)?
                    .to_string(),
                None => uuid::Uuid::now_v7().to_string(),
            };
            let store = open(&spec).await?;
            let app = App::new(store.clone()).with_caller_hasher(caller_hasher_from_env()?);
            let mut contact = Contact::voice(&contact_id, crate::call::LOCAL_INSTANCE_ARN);
            contact.customer_number = Some(caller);
            contact
                .attributes
                .insert("lang".into(), lang.as_str().into());
            let say = |line: String| -> Result<()> {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{line}")?;
                Ok(())
            };
            say(format!(
                "📞 call {contact_id} ({}), events in {}",
                lang.as_str(),
                store.describe()
            ))?;
            let report = match script {
                Some(script) => {
                    let mut c = TerminalCaller::scripted(script, std::io::stdout());
                    run_call(&app, &contact, &mut c).await?
                }
                None => {
                    let mut c = TerminalCaller::interactive(std::io::stdout());
                    run_call(&app, &contact, &mut c).await?
                }
            };
            say(format!(
                "📴 {} after {} flow steps\n\nRecorded trail (triage trail {contact_id}):",
                describe_end(&report.end),
                report.steps
            ))?;
            print_trail(&store, &contact_id, format).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Loadtest {
            concurrency,
            seconds,
            minutes,
        } => {
            let secs = match (seconds, minutes) {
                (Some(s), _) => s,
                (None, Some(m)) => m.saturating_mul(60),
                (None, None) => 60,
            };
            if concurrency == 0 || concurrency > 10_000 {
                bail!("--concurrency must be 1..=10000");
            }
            let store = open(&spec).await?;
            let describe = store.describe();
            let app = App::new(store);
            let opts = crate::loadtest::Options {
                concurrency,
                duration: std::time::Duration::from_secs(secs),
            };
            let r = crate::loadtest::run(app, &opts)
                .await
                .map_err(anyhow::Error::msg)?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "loadtest on {describe}: {} calls, {} turns in {:.1} s, concurrency {concurrency}\n\
                 calls/s {:.1}, turns/s {:.1}; turn latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms\n\
                 retries {} (same response each time), apologies {}\n\
                 audit: {} calls, {} lost answers, {} duplicates, {} not concluded: {}",
                r.calls,
                r.turns,
                r.elapsed.as_secs_f64(),
                r.calls_per_sec(),
                r.turns as f64 / r.elapsed.as_secs_f64().max(1e-9),
                r.p50.as_secs_f64() * 1e3,
                r.p99.as_secs_f64() * 1e3,
                r.max.as_secs_f64() * 1e3,
                r.retries,
                r.apologies,
                r.audit.calls,
                r.audit.lost,
                r.audit.duplicates,
                r.audit.unconcluded,
                if r.audit.ok() { "ok" } else { "FAILED" }
            )?;
            for p in r.audit.problems.iter().take(20) {
                writeln!(out, "  {p}")?;
            }
            Ok(if r.audit.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
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

async fn migrate(spec: &StoreSpec, dir: Option<&std::path::Path>) -> Result<ExitCode> {
    let StoreSpec::DynamoDb(table) = spec else {
        bail!("migrate works on DynamoDB: pass --store dynamodb:TABLE (or set TRIAGE_STORE)");
    };
    let migrations = match dir {
        Some(d) => crate::migrate::Migrations::from_dir(d)?,
        None => crate::migrate::Migrations::embedded()?,
    };
    let client = crate::store::dynamodb::client_from_env().await;
    let report = crate::migrate::migrate(&client, table, &migrations, |m| eprintln!("{m}"))
        .await
        .with_context(|| format!("migrating table {table}"))?;
    // Progress and each migration's fate went to stderr; stdout gets the verdict.
    let mut out = std::io::stdout().lock();
    if report.is_noop() {
        writeln!(out, "table {table} is up to date: nothing to do")?;
    } else {
        writeln!(
            out,
            "table {table}: applied {} migration(s)",
            report.applied.len()
        )?;
    }
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
