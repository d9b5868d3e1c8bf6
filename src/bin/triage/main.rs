//! `triage`: the connect-triage command line (see `triage --help`). `main` reads the
//! settings once, parses the arguments, runs the one function of the verb asked for, and
//! prints the error chain once (as ripgrep does).

/// mimalloc: fewer, cheaper allocations per turn than glibc's allocator (see benches/turn_cost.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod args;
mod verbs;

use args::{Cli, Command};
use clap::Parser;
use connect_triage::read::ReadError;
use connect_triage::store::StoreSpec;
use connect_triage::Settings;
use std::process::ExitCode;

/// The default event log: a local file, no AWS account needed.
pub const DEFAULT_STORE: &str = "file:.triage/events.jsonl";

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    connect_triage::logging::init_cli(cli.verbose);
    match run(cli).await {
        Ok(code) => code,
        // `triage ... | head` closing the pipe early is not an error.
        Err(e) if e.chain().any(closed_pipe) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes, then a non-zero exit.
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}

/// Whether an error (one link of a chain) is the reader of our output having gone away:
/// an I/O error of kind `BrokenPipe`, as is or inside the CSV and JSON writers' errors
/// (`csv::Error` converts into an `io::Error` of kind `Other` and names no source).
fn closed_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    let csv_broken =
        |c: &csv::Error| matches!(c.kind(), csv::ErrorKind::Io(io) if io.kind() == BrokenPipe);
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        return io.kind() == BrokenPipe
            || io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<csv::Error>())
                .is_some_and(csv_broken);
    }
    let json_broken = |j: &serde_json::Error| j.io_error_kind() == Some(BrokenPipe);
    // The readers' errors hold those transparently (their chain stops at them).
    if let Some(r) = e.downcast_ref::<ReadError>() {
        return match r {
            ReadError::Io(io) => closed_pipe(io),
            ReadError::Csv(c) => csv_broken(c),
            ReadError::Json(j) => json_broken(j),
            _ => false,
        };
    }
    e.downcast_ref::<csv::Error>().is_some_and(csv_broken)
        || e.downcast_ref::<serde_json::Error>()
            .is_some_and(json_broken)
}

/// Dispatches to the verb's function.
async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = Settings::from_env()?;
    let spec = match (cli.store, &settings.store) {
        (Some(spec), _) => spec,
        (None, Some(spec)) => spec.clone(),
        (None, None) => StoreSpec::parse(DEFAULT_STORE)?,
    };
    let ctx = verbs::Ctx { spec, settings };
    match cli.command {
        Command::Call {
            answers,
            say,
            speech,
            audio,
            lang,
            contact_id,
            caller,
            format,
            flow,
            hospital_hours,
            hospital_queue,
        } => {
            let call = verbs::CallArgs {
                speech: speech || say.is_some(),
                answers: answers.or(say).map(|s| s.0),
                audio,
                lang,
                contact_id,
                caller,
                format,
                flow_file: flow,
                center: connect_triage::flow::CenterState {
                    hours_open: hospital_hours == args::Hours::Open,
                    queue_at_capacity: hospital_queue == args::QueueState::Full,
                },
            };
            verbs::call(&ctx, call).await
        }
        Command::ConnectTests(args) => verbs::connect_tests(args).await,
        Command::Questionnaire(q) => match q {
            args::QuestionnaireCommand::Check { file } => verbs::questionnaire_check(&file),
            args::QuestionnaireCommand::Publish { file } => {
                verbs::questionnaire_publish(&ctx, &file).await
            }
            args::QuestionnaireCommand::List { format } => {
                verbs::questionnaire_list(&ctx, format).await
            }
            args::QuestionnaireCommand::Show { version } => {
                verbs::questionnaire_show(&ctx, &version.id, version.version).await
            }
            args::QuestionnaireCommand::Activate { version } => {
                verbs::questionnaire_activate(&ctx, &version.id, version.version).await
            }
            args::QuestionnaireCommand::Fhir { version } => {
                verbs::questionnaire_fhir(&ctx, &version.id, version.version).await
            }
            args::QuestionnaireCommand::Live { on, format } => {
                verbs::questionnaire_live(&ctx, on, format).await
            }
        },
        Command::Invoke => verbs::invoke(&ctx).await,
        Command::Migrate { dir } => verbs::migrate(&ctx, dir.as_deref()).await,
        Command::Loadtest {
            concurrency,
            seconds,
            minutes,
        } => {
            let seconds = match (seconds, minutes) {
                (Some(s), _) => s,
                (None, Some(m)) => m.saturating_mul(60),
                (None, None) => 60,
            };
            verbs::loadtest(&ctx, concurrency, seconds).await
        }
        Command::Trail { contact_id, format } => verbs::trail(&ctx, &contact_id, format).await,
        Command::Calls {
            range,
            outcome,
            caller,
            format,
            source,
        } => verbs::calls(&ctx, &range, outcome, caller, format, source).await,
        Command::Stats {
            range,
            format,
            section,
            source,
            top_callers,
        } => verbs::stats(&ctx, &range, format, section, source, top_callers).await,
        Command::Project {
            rebuild,
            status: _,
            from,
            to,
            format,
        } => verbs::project(&ctx, rebuild, from, to, format).await,
        Command::Export {
            range,
            format,
            out,
            progress_every,
        } => verbs::export_rows(&ctx, &range, format, out.as_deref(), progress_every).await,
        Command::Report {
            range,
            out,
            progress_every,
            source,
        } => verbs::report(&ctx, &range, &out, progress_every, source).await,
        Command::AthenaSql { out, published } => {
            verbs::athena_sql(&ctx, out.as_deref(), published).await
        }
        Command::SeedDemo {
            calls,
            days,
            first_day,
            seed,
        } => verbs::seed_demo_calls(&ctx, calls, days, first_day, seed).await,
        Command::Audio {
            contact_id,
            out,
            idle_seconds,
            partial,
        } => verbs::audio(&ctx, &contact_id, &out, idle_seconds, partial).await,
    }
}
