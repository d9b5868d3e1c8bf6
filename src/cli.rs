//! The `triage` command line. `main` in `src/bin/triage.rs` only parses and reports errors.

use crate::analytics::demo::{seed_demo, DemoPlan, DEMO_HASH_KEY, DEMO_PREFIX};
use crate::analytics::export::{export, ExportFormat};
use crate::analytics::stats::{write_stats, Section};
use crate::analytics::{thousands, CallQuery, DayRange, Progress, Status, DEFAULT_ABANDON_MINUTES};
use crate::app::App;
use crate::call::{describe_end, run_call, TerminalCaller};
use crate::connect::{CallerHasher, MAX_EVENT_BYTES};
use crate::domain::ContactId;
use crate::domain::Lang;
use crate::flow::Contact;
use crate::output::{write_rows, Format};
use crate::store::{self, SharedStore, StoreSpec};
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
    /// One row per call started in a range of UTC days (from the by-day or by-caller index,
    /// never a table scan): contact id, started, ended, outcome, score, answers, abandoned.
    Calls {
        #[command(flatten)]
        range: RangeArgs,
        /// Only calls with this outcome: hospital, monitor, clear, exited, abandoned
        /// (hung up) or open (may still be going on).
        #[arg(long)]
        outcome: Option<String>,
        /// Only this caller's calls (the keyed hash of the number, as `triage stats` shows).
        #[arg(long)]
        caller: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Calls and outcomes per day, yes-rate and drop-off (exits, hang-ups) per question,
    /// repeat callers.
    Stats {
        #[command(flatten)]
        range: RangeArgs,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Only one part (CSV needs one): days, questions or callers.
        #[arg(long, value_enum, default_value_t = Section::All)]
        section: Section,
    },
    /// One flat row per answer (for DuckDB, pandas, spreadsheets), streamed as calls are
    /// read. Progress goes to stderr.
    Export {
        #[command(flatten)]
        range: RangeArgs,
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Write here instead of stdout.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Report progress on stderr every this many calls.
        #[arg(long, default_value_t = 1000)]
        progress_every: u64,
    },
    /// A self-contained HTML page (no network) with charts of outcomes per day, yes-rate
    /// per question and the drop-off funnel.
    Report {
        #[command(flatten)]
        range: RangeArgs,
        #[arg(long)]
        out: std::path::PathBuf,
        /// Report progress on stderr every this many calls.
        #[arg(long, default_value_t = 1000)]
        progress_every: u64,
    },
    /// SYNTHETIC demo data: plays N made-up calls through the real Lambda turn, spread over
    /// D past days. Contact ids start with `demo-`. Never run it against production.
    SeedDemo {
        #[arg(long, default_value_t = 200)]
        calls: u32,
        #[arg(long, default_value_t = 7)]
        days: u32,
        /// First day of the data (default: D days before today, so the last is yesterday).
        #[arg(long)]
        first_day: Option<String>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// The range of UTC days an analysts' verb reads.
#[derive(Debug, clap::Args)]
pub struct RangeArgs {
    /// First UTC day, YYYY-MM-DD (inclusive).
    #[arg(long)]
    pub from: String,
    /// Last UTC day, YYYY-MM-DD (inclusive).
    #[arg(long)]
    pub to: String,
    /// A call with no conclusion this many minutes after its last event counts as
    /// abandoned (hung up) at its pending question.
    #[arg(long, default_value_t = DEFAULT_ABANDON_MINUTES)]
    pub abandon_after: u32,
}

impl RangeArgs {
    fn query(&self) -> Result<CallQuery> {
        let days = DayRange::parse(&self.from, &self.to).map_err(anyhow::Error::msg)?;
        let mut q = CallQuery::new(days);
        q.abandon_after = chrono::Duration::minutes(i64::from(self.abandon_after));
        Ok(q)
    }
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
        Command::Calls {
            range,
            outcome,
            caller,
            format,
        } => {
            let mut query = range.query()?;
            let only = outcome
                .as_deref()
                .map(|o| {
                    Status::parse(o).ok_or_else(|| {
                        anyhow::anyhow!("--outcome {o:?}: use one of {}", Status::ALL.join(", "))
                    })
                })
                .transpose()?;
            query.caller_hash = caller;
            let reader = open_reader(&spec).await?;
            let rows = crate::analytics::calls::calls(&reader, &query, only).await?;
            let mut out = std::io::stdout().lock();
            write_rows(&mut out, &rows, format)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Stats {
            range,
            format,
            section,
        } => {
            if format == Format::Csv && section == Section::All {
                bail!("CSV holds one table: pick it with --section days|questions|callers");
            }
            let query = range.query()?;
            let reader = open_reader(&spec).await?;
            let stats = crate::analytics::stats::stats(&reader, &query, |_| {}).await?;
            let mut out = std::io::stdout().lock();
            write_stats(&mut out, &stats, format, section)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Export {
            range,
            format,
            out,
            progress_every,
        } => {
            let query = range.query()?;
            let reader = open_reader(&spec).await?;
            let progress = |p: Progress| {
                eprintln!(
                    "exported {} answers from {} calls...",
                    thousands(p.answers),
                    thousands(p.calls)
                )
            };
            let done = match &out {
                Some(path) => {
                    let file = std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    let mut w = std::io::BufWriter::new(file);
                    export(&reader, &query, &mut w, format, progress_every, progress).await?
                }
                None => {
                    let mut w = std::io::BufWriter::new(std::io::stdout().lock());
                    export(&reader, &query, &mut w, format, progress_every, progress).await?
                }
            };
            eprintln!(
                "export done: {} answers from {} calls, {} to {}",
                thousands(done.answers),
                thousands(done.calls),
                query.days.from,
                query.days.to
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Report {
            range,
            out,
            progress_every,
        } => {
            let query = range.query()?;
            let reader = open_reader(&spec).await?;
            let stats = crate::analytics::stats::stats(&reader, &query, |n| {
                if progress_every > 0 && n % progress_every == 0 {
                    eprintln!("read {} calls...", thousands(n));
                }
            })
            .await?;
            let title = format!("connect-triage report, {}", reader.describe());
            let html = crate::analytics::report::render(&stats, &title)?;
            std::fs::write(&out, html)
                .with_context(|| format!("cannot write {}", out.display()))?;
            eprintln!(
                "report of {} calls ({} to {}) written to {}",
                thousands(stats.calls),
                stats.from,
                stats.to,
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::SeedDemo {
            calls,
            days,
            first_day,
            seed,
        } => {
            let first_day = match first_day {
                Some(d) => chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                    .with_context(|| format!("--first-day {d:?} is not YYYY-MM-DD"))?,
                None => chrono::Utc::now().date_naive() - chrono::Duration::days(i64::from(days)),
            };
            let hasher = match caller_hasher_from_env()? {
                Some(h) => h,
                None => CallerHasher::new(DEMO_HASH_KEY).map_err(anyhow::Error::msg)?,
            };
            let store = open(&spec).await?;
            let last = first_day + chrono::Duration::days(i64::from(days.max(1)) - 1);
            eprintln!(
                "*** SYNTHETIC DEMO DATA *** {calls} made-up calls (contact ids {DEMO_PREFIX}...), {first_day} to {last}, seed {seed}, into {}",
                store.describe()
            );
            let plan = DemoPlan {
                calls,
                days,
                first_day,
                seed,
            };
            let report = seed_demo(store, &plan, hasher, |n| {
                if n % 100 == 0 {
                    eprintln!("played {n} of {calls} demo calls...");
                }
            })
            .await?;
            println!(
                "seeded {} synthetic calls ({} turns, {} hung up) from {first_day} to {last}",
                report.calls, report.turns, report.hung_up
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn open_reader(spec: &StoreSpec) -> Result<crate::analytics::Reader> {
    crate::analytics::open_reader(spec)
        .await
        .with_context(|| format!("cannot open the event store {spec}"))
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
