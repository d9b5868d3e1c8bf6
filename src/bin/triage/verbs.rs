//! One function per verb of `triage` (docs/contracts.md, "CLI"). Each takes its parsed
//! arguments and the settings, does its job through the library, and prints what the user
//! reads on stdout (progress and warnings on stderr). Errors go up to `main`, which prints
//! the chain once.

use crate::args::{ConnectTestsArgs, RangeArgs};
use anyhow::{bail, Context, Result};
use chrono::NaiveDate;
use connect_triage::app::App;
use connect_triage::connect::{CallerHasher, MAX_INVOCATION_BYTES};
use connect_triage::domain::{ContactId, Lang};
use connect_triage::flow::Contact;
use connect_triage::output::{write_rows, Format};
use connect_triage::read::export::{export, ExportFormat};
use connect_triage::read::stats::{write_stats, Section};
use connect_triage::read::{thousands, CallQuery, DayRange, Progress, Reader, Source, Status};
use connect_triage::sim::call::{
    answers_bot, describe_end, describe_handoff, local_media_stream, run_call, Press,
    TerminalCaller, LOCAL_BOT_ALIAS_ARN, LOCAL_INSTANCE_ARN,
};
use connect_triage::sim::demo::{seed_demo_with, DemoPlan, DEMO_HASH_KEY, DEMO_PREFIX};
use connect_triage::sim::loadtest;
use connect_triage::store::dynamodb::migrate::{migrate as apply_migrations, Migrations};
use connect_triage::store::{self, SharedStore, StoreSpec};
use connect_triage::Settings;
use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

/// What every verb gets: the store the command line (or `TRIAGE_STORE`) names, and the
/// settings read from the environment at start.
pub struct Ctx {
    pub spec: StoreSpec,
    pub settings: Settings,
}

impl Ctx {
    async fn store(&self) -> Result<SharedStore> {
        store::open(&self.spec, &self.settings.dynamo_options())
            .await
            .with_context(|| format!("cannot open the event store {}", self.spec))
    }

    /// The reader of the store, with every questionnaire version of its catalog known to
    /// the fold (an unreadable one is named on stderr).
    async fn reader(&self) -> Result<Reader> {
        let reader = connect_triage::read::open_reader(&self.spec, &self.settings.dynamo_options())
            .await
            .with_context(|| format!("cannot open the event store {}", self.spec))?;
        match reader.catalog() {
            Some(catalog) => load_versions(&**catalog).await?,
            None => versions(self).await?,
        };
        Ok(reader)
    }

    fn app(&self, store: SharedStore) -> App {
        App::new(store).with_settings(&self.settings)
    }

    /// The store and an [`App`] on it that follows the store's questionnaire catalog, as
    /// the Lambda does.
    async fn line_app(&self) -> Result<App> {
        let (store, catalog) =
            store::open_with_catalog(&self.spec, &self.settings.dynamo_options())
                .await
                .with_context(|| format!("cannot open the event store {}", self.spec))?;
        Ok(self
            .app(store)
            .with_catalog(catalog, self.settings.questionnaire_refresh))
    }
}

fn query(range: &RangeArgs) -> Result<CallQuery> {
    let days = DayRange::parse(&range.from, &range.to).map_err(anyhow::Error::msg)?;
    let mut q = CallQuery::new(days);
    q.abandon_after = chrono::Duration::minutes(i64::from(range.abandon_after));
    Ok(q)
}

fn say(line: impl std::fmt::Display) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    Ok(())
}

/// What `triage call` is asked for.
pub struct CallArgs {
    pub answers: Option<Vec<Press>>,
    /// Ask through the answers bot (SpeechInput Enabled).
    pub speech: bool,
    /// Stream the caller's audio (AudioStreaming Enabled).
    pub audio: bool,
    pub lang: Lang,
    pub contact_id: Option<ContactId>,
    pub caller: String,
    pub format: Format,
    pub flow_file: Option<std::path::PathBuf>,
    /// The hospital queue's hours and capacity, as the simulated instance has them.
    pub center: connect_triage::flow::CenterState,
}

/// Reads at most `limit` bytes of `path` as text; a longer file is an error.
fn read_small(path: &Path, limit: u64, what: &str) -> Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)
        .with_context(|| format!("cannot open the {what} {}", path.display()))?
        .take(limit + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    if text.len() as u64 > limit {
        bail!("the {what} {} is over {limit} bytes", path.display());
    }
    Ok(text)
}

/// The deployed flow, or `path` loaded and checked against Connect's reference.
fn load_flow(path: Option<&Path>) -> Result<connect_triage::flow::Flow> {
    let Some(path) = path else {
        return Ok(connect_triage::sim::call::triage_flow()?);
    };
    // Connect's CreateContactFlow takes at most 256,000 characters; the limit has margin.
    let text = read_small(
        path,
        connect_triage::sim::call::MAX_FLOW_FILE_BYTES,
        "flow file",
    )?;
    connect_triage::flow::Flow::from_json(&text)
        .with_context(|| format!("the flow file {} cannot be run", path.display()))
}

/// `triage connect-tests`: one CreateTestCase request per scenario, written to `--out`.
pub async fn connect_tests(args: ConnectTestsArgs) -> Result<ExitCode> {
    use connect_triage::sim::connect_tests::{generate, Deployment};
    use connect_triage::sim::scenarios::ScenarioFile;
    let flow = load_flow(args.flow.as_deref())?;
    let file = match args.scenarios.as_deref() {
        None => ScenarioFile::embedded()?,
        Some(path) => ScenarioFile::from_json(&read_small(path, 1024 * 1024, "scenario file")?)
            .with_context(|| format!("the scenario file {} cannot be used", path.display()))?,
    };
    let defaults = Deployment::placeholders();
    let mut placeholders = Vec::new();
    let mut pick = |given: Option<String>, default: String, flag: &str| match given {
        Some(v) if !v.trim().is_empty() => v,
        _ => {
            placeholders.push(format!("{default} (--{flag})"));
            default
        }
    };
    let at = Deployment {
        instance_arn: pick(args.instance_arn, defaults.instance_arn, "instance-arn"),
        flow_arn: pick(args.flow_arn, defaults.flow_arn, "flow-arn"),
        hospital_queue_arn: pick(
            args.hospital_queue_arn,
            defaults.hospital_queue_arn,
            "hospital-queue-arn",
        ),
        hospital_hours_arn: pick(
            args.hospital_hours_arn,
            defaults.hospital_hours_arn,
            "hospital-hours-arn",
        ),
    };
    // Every scenario is generated (and so checked) before anything is written.
    let cases = generate(&flow, &file, &at).await?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    for case in &cases {
        let path = args.out.join(format!("{}.json", case.slug));
        let text = serde_json::to_string_pretty(&case.request)? + "\n";
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        say(path.display())?;
    }
    eprintln!(
        "{} test cases from {} scenarios; create each with: aws connect create-test-case --cli-input-json file://{}/NAME.json",
        cases.len(),
        file.scenarios.len(),
        args.out.display()
    );
    if !placeholders.is_empty() {
        eprintln!(
            "placeholders left to fill before creating them: {}",
            placeholders.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `triage call`: a whole phone call through the deployed flow, then its trail.
pub async fn call(ctx: &Ctx, args: CallArgs) -> Result<ExitCode> {
    let CallArgs {
        answers,
        speech,
        audio,
        lang,
        contact_id,
        caller,
        format,
        flow_file,
        center,
    } = args;
    // The flow is loaded and checked (against Connect's reference too) before anything runs.
    let flow = load_flow(flow_file.as_deref())?;
    let contact_id = match contact_id {
        Some(id) => id,
        None => ContactId::parse(&uuid::Uuid::now_v7().to_string())?,
    };
    let app = ctx.line_app().await?;
    let store = app.store().clone();
    let mut contact = Contact::voice(contact_id.as_str(), LOCAL_INSTANCE_ARN);
    contact.customer_number = Some(caller);
    contact.center = center;
    contact
        .attributes
        .insert("lang".into(), lang.as_str().into());
    if speech {
        contact = contact.with_bot(LOCAL_BOT_ALIAS_ARN, answers_bot());
    }
    if audio {
        contact = contact.with_media_stream(local_media_stream(contact_id.as_str()));
    }
    say(format!(
        "📞 call {contact_id} ({lang}{}{}), events in {}",
        if speech { ", answers by voice" } else { "" },
        if audio { ", audio streamed" } else { "" },
        store.describe()
    ))?;
    let report = match answers {
        Some(script) => {
            let mut c = TerminalCaller::scripted(script, std::io::stdout());
            run_call(&app, &flow, &contact, &mut c).await?
        }
        None => {
            let mut c = TerminalCaller::interactive(std::io::stdout());
            run_call(&app, &flow, &contact, &mut c).await?
        }
    };
    say(format!(
        "📴 {} after {} flow steps",
        describe_end(&report.end),
        report.steps
    ))?;
    for line in connect_triage::sim::call::describe_speech(&report) {
        say(line)?;
    }
    for line in connect_triage::sim::call::describe_tasks(&report.tasks) {
        say(line)?;
    }
    let handoff = describe_handoff(&report.attributes);
    if !handoff.is_empty() {
        say("\nContact attributes for the agent and the contact record:")?;
        for line in handoff {
            say(line)?;
        }
    }
    say(format!("\nRecorded trail (triage trail {contact_id}):"))?;
    print_trail(&store, &contact_id, format).await?;
    Ok(ExitCode::SUCCESS)
}

/// `triage invoke`: one event on stdin (a ContactFlowEvent or a contact event), the
/// Lambda's response on stdout.
pub async fn invoke(ctx: &Ctx) -> Result<ExitCode> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(MAX_INVOCATION_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .context("cannot read the event from stdin")?;
    // Check the input before opening the store: a malformed event never touches it. A
    // ContactFlowEvent, or a Connect contact event, answered as the Lambda answers it.
    connect_triage::connect::parse_invocation(&bytes, None)?;
    let app = ctx.line_app().await?;
    let response = app.handle_any(&bytes).await?;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &response)?;
    writeln!(out)?;
    Ok(ExitCode::SUCCESS)
}

/// `triage migrate`: create or update the DynamoDB table.
pub async fn migrate(ctx: &Ctx, dir: Option<&Path>) -> Result<ExitCode> {
    let StoreSpec::DynamoDb(table) = &ctx.spec else {
        bail!("migrate works on DynamoDB: pass --store dynamodb:TABLE (or set TRIAGE_STORE)");
    };
    let migrations = match dir {
        Some(d) => Migrations::from_dir(d)?,
        None => Migrations::embedded()?,
    };
    let client = connect_triage::store::dynamodb::client(&ctx.settings.sdk).await;
    let report = apply_migrations(&client, table, &migrations, |m| eprintln!("{m}"))
        .await
        .with_context(|| format!("migrating table {table}"))?;
    // Progress and each migration's fate went to stderr; stdout gets the verdict.
    if report.is_noop() {
        say(format!("table {table} is up to date: nothing to do"))?;
    } else {
        say(format!(
            "table {table}: applied {} migration(s)",
            report.applied.len()
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `triage loadtest`: concurrent simulated calls, then an audit of every trail.
pub async fn loadtest(ctx: &Ctx, concurrency: usize, seconds: u64) -> Result<ExitCode> {
    if concurrency == 0 || concurrency > 10_000 {
        bail!("--concurrency must be 1..=10000");
    }
    let store = ctx.store().await?;
    let describe = store.describe();
    let opts = loadtest::Options {
        concurrency,
        duration: std::time::Duration::from_secs(seconds),
    };
    let r = loadtest::run(ctx.app(store), &opts).await?;
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

/// `triage trail`: one call's events as analysts read them.
pub async fn trail(ctx: &Ctx, contact_id: &ContactId, format: Format) -> Result<ExitCode> {
    versions(ctx).await?;
    print_trail(&ctx.store().await?, contact_id, format).await?;
    Ok(ExitCode::SUCCESS)
}

/// `triage calls`: one row per call of a range.
pub async fn calls(
    ctx: &Ctx,
    range: &RangeArgs,
    outcome: Option<Status>,
    caller: Option<String>,
    format: Format,
    source: Source,
) -> Result<ExitCode> {
    let mut query = query(range)?;
    query.caller_hash = caller;
    let reader = ctx.reader().await?;
    let rows = match (source, &query.caller_hash) {
        (Source::Model, None) => {
            let model = reader.model().await?;
            connect_triage::read::calls::calls_from_model(&*model, &query, outcome).await?
        }
        _ => connect_triage::read::calls::calls(&reader, &query, outcome).await?,
    };
    write_rows(&mut std::io::stdout().lock(), &rows, format)?;
    Ok(ExitCode::SUCCESS)
}

/// `triage stats`: per day, per question, repeat callers.
pub async fn stats(
    ctx: &Ctx,
    range: &RangeArgs,
    format: Format,
    section: Section,
    source: Source,
    top_callers: usize,
) -> Result<ExitCode> {
    if format == Format::Csv && section == Section::All {
        bail!("CSV holds one table: pick it with --section days|questions|callers");
    }
    let mut query = query(range)?;
    query.top_callers = top_callers;
    let reader = ctx.reader().await?;
    let stats = read_stats(&reader, &query, source, 0).await?;
    write_stats(&mut std::io::stdout().lock(), &stats, format, section)?;
    Ok(ExitCode::SUCCESS)
}

/// The statistics of `query` from the read model or the events.
async fn read_stats(
    reader: &Reader,
    query: &CallQuery,
    source: Source,
    progress_every: u64,
) -> Result<connect_triage::read::stats::Stats> {
    Ok(match source {
        Source::Model => {
            let model = reader.model().await?;
            let (stats, updated) =
                connect_triage::read::stats::stats_from_model(&*model, query).await?;
            let when = updated.map_or_else(
                || "never changed by the projector".to_string(),
                |t| {
                    format!(
                        "last changed {} ({} s ago)",
                        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        (chrono::Utc::now() - t).num_seconds().max(0)
                    )
                },
            );
            eprintln!(
                "figures from the read model {} ({when} for these days); `triage project --status` shows how far it is behind the events, `--source events` reads them instead",
                model.describe()
            );
            stats
        }
        Source::Events => {
            connect_triage::read::stats::stats(reader, query, |n| {
                if progress_every > 0 && n % progress_every == 0 {
                    eprintln!("read {} calls...", thousands(n));
                }
            })
            .await?
        }
    })
}

/// `triage project`: rebuild the read model from the events of a range, or show its lag.
pub async fn project(
    ctx: &Ctx,
    rebuild: bool,
    from: Option<String>,
    to: Option<String>,
    format: Format,
) -> Result<ExitCode> {
    let today = chrono::Utc::now().date_naive();
    let day = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    let from = from.unwrap_or_else(|| day(today - chrono::Duration::days(1)));
    let to = to.unwrap_or_else(|| day(today));
    let days = DayRange::parse(&from, &to).map_err(anyhow::Error::msg)?;
    let reader = ctx.reader().await?;
    if rebuild {
        let started = std::time::Instant::now();
        let run = connect_triage::read::project::rebuild(&reader, days, |r| {
            if r.calls % 1000 == 0 {
                eprintln!(
                    "projected {} calls ({} changed)...",
                    thousands(r.calls),
                    thousands(r.changed)
                );
            }
        })
        .await
        .context("the rebuild stopped; run the same command again to finish it (calls already done are skipped)")?;
        say(format!(
            "rebuilt the read model of {from} to {to}: {} calls, {} brought up to date, in {:.1} s",
            thousands(run.calls),
            thousands(run.changed),
            started.elapsed().as_secs_f64()
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    let lag = connect_triage::read::project::lag(&reader, days, chrono::Utc::now()).await?;
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &lag)?;
            writeln!(out)?;
        }
        _ => {
            writeln!(
                out,
                "read model of {}: {} calls from {from} to {to}, {} behind ({} events), lag {} s{}",
                reader
                    .model_as_is()
                    .map(|m| m.describe())
                    .unwrap_or_default(),
                thousands(lag.calls),
                thousands(lag.calls_behind),
                thousands(lag.events_behind),
                lag.lag_seconds,
                lag.oldest_unprojected
                    .as_deref()
                    .map(|o| format!(" (oldest event not in it: {o})"))
                    .unwrap_or_default()
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `triage export`: one flat row per answer, streamed.
pub async fn export_rows(
    ctx: &Ctx,
    range: &RangeArgs,
    format: ExportFormat,
    out: Option<&Path>,
    progress_every: u64,
) -> Result<ExitCode> {
    let query = query(range)?;
    let reader = ctx.reader().await?;
    let progress = |p: Progress| {
        eprintln!(
            "exported {} answers from {} calls...",
            thousands(p.answers),
            thousands(p.calls)
        )
    };
    let done = match out {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut w = std::io::BufWriter::new(file);
            export(
                &reader,
                &query,
                &mut w,
                format,
                &ctx.settings.fhir_base,
                progress_every,
                progress,
            )
            .await?
        }
        None => {
            let mut w = std::io::BufWriter::new(std::io::stdout().lock());
            export(
                &reader,
                &query,
                &mut w,
                format,
                &ctx.settings.fhir_base,
                progress_every,
                progress,
            )
            .await?
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

/// `triage report`: the HTML page with charts.
pub async fn report(
    ctx: &Ctx,
    range: &RangeArgs,
    out: &Path,
    progress_every: u64,
    source: Source,
) -> Result<ExitCode> {
    let query = query(range)?;
    let reader = ctx.reader().await?;
    let stats = read_stats(&reader, &query, source, progress_every).await?;
    let title = format!("connect-triage report, {}", reader.describe());
    let html = connect_triage::read::report::render(&stats, &title)?;
    std::fs::write(out, html).with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!(
        "report of {} calls ({} to {}) written to {}",
        thousands(stats.calls),
        stats.from,
        stats.to,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `triage questionnaire check FILE`: every problem, one a line, `FILE:LINE: PATH: ...`.
pub fn questionnaire_check(file: &Path) -> Result<ExitCode> {
    use connect_triage::domain::check::{check, MAX_DOCUMENT_BYTES};
    let text = read_small(file, MAX_DOCUMENT_BYTES as u64, "questionnaire file")?;
    match check(&text) {
        Ok(q) => {
            println!(
                "{}: {} can be published: {} questions, es and en, hospital at {}, monitor at {}",
                file.display(),
                q.key(),
                q.questions.len(),
                q.hospital_threshold,
                q.monitor_threshold
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(problems) => {
            for p in &problems {
                match p.line {
                    Some(line) => eprintln!(
                        "{}:{line}: {}: {}; {}",
                        file.display(),
                        p.path,
                        p.what,
                        p.fix
                    ),
                    None => eprintln!("{}: {}: {}; {}", file.display(), p.path, p.what, p.fix),
                }
            }
            eprintln!(
                "{}: {} problem{}: nothing can be published from it",
                file.display(),
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
            Ok(ExitCode::from(1))
        }
    }
}

impl Ctx {
    async fn catalog(&self) -> Result<connect_triage::store::catalog::SharedCatalog> {
        store::open_catalog(&self.spec, &self.settings.dynamo_options())
            .await
            .with_context(|| format!("cannot open the questionnaire catalog of {}", self.spec))
    }
}

/// `triage questionnaire publish FILE`.
pub async fn questionnaire_publish(ctx: &Ctx, file: &Path) -> Result<ExitCode> {
    use connect_triage::domain::check::MAX_DOCUMENT_BYTES;
    use connect_triage::questionnaires::{publish, PublishError, Published};
    let text = read_small(file, MAX_DOCUMENT_BYTES as u64, "questionnaire file")?;
    let catalog = ctx.catalog().await?;
    match publish(&*catalog, &text, chrono::Utc::now()).await {
        Ok(Published::New(v)) => {
            say(format!(
                "published {} in {} (sha256 {}); new calls start on it once you run `triage questionnaire activate {}`",
                v.key(),
                catalog.describe(),
                &v.sha256[..12],
                v.key()
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Ok(Published::Same { key, built_in }) => {
            say(format!(
                "{key} is {} with this content already: nothing to do",
                if built_in { "built in" } else { "published" }
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(PublishError::Problems(problems)) => {
            for p in &problems {
                let line = p.line.map(|l| format!(":{l}")).unwrap_or_default();
                eprintln!(
                    "{}{line}: {}: {}; {}",
                    file.display(),
                    p.path,
                    p.what,
                    p.fix
                );
            }
            eprintln!(
                "{}: {} problem(s): nothing was published (`triage questionnaire check` shows the same)",
                file.display(),
                problems.len()
            );
            Ok(ExitCode::from(1))
        }
        Err(e @ PublishError::Store(_)) => Err(e.into()),
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            eprintln!("nothing was published");
            Ok(ExitCode::from(1))
        }
    }
}

/// Every version this store and build know, the readable ones registered for the fold.
async fn versions(ctx: &Ctx) -> Result<connect_triage::questionnaires::Versions> {
    load_versions(&*ctx.catalog().await?).await
}

/// [`versions`] from an open catalog; what cannot be read is named on stderr.
async fn load_versions(
    catalog: &dyn connect_triage::store::catalog::Catalog,
) -> Result<connect_triage::questionnaires::Versions> {
    let versions = connect_triage::questionnaires::load(catalog).await?;
    for u in &versions.unreadable {
        eprintln!(
            "warning: questionnaire record {} in {} cannot be read: {}",
            u.at,
            catalog.describe(),
            u.why
        );
    }
    Ok(versions)
}

#[derive(serde::Serialize)]
struct VersionRow {
    questionnaire: String,
    published: String,
    sha256: String,
    active: bool,
    questions: usize,
    state: String,
}

impl connect_triage::output::Tabular for VersionRow {
    fn headers() -> &'static [&'static str] {
        &[
            "questionnaire",
            "published",
            "sha256",
            "active",
            "questions",
            "state",
        ]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.questionnaire.clone(),
            self.published.clone(),
            self.sha256[..12.min(self.sha256.len())].to_string(),
            if self.active { "yes" } else { "" }.to_string(),
            self.questions.to_string(),
            self.state.clone(),
        ]
    }
}

#[derive(serde::Serialize)]
struct LiveRow {
    questionnaire: String,
    from: String,
    until: String,
}

impl connect_triage::output::Tabular for LiveRow {
    fn headers() -> &'static [&'static str] {
        &["questionnaire", "from", "until"]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.questionnaire.clone(),
            self.from.clone(),
            self.until.clone(),
        ]
    }
}

fn live_rows(live: Vec<connect_triage::questionnaires::Live>) -> Vec<LiveRow> {
    let when = |t: Option<chrono::DateTime<chrono::Utc>>, none: &str| {
        t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_else(|| none.to_string())
    };
    live.into_iter()
        .map(|l| LiveRow {
            questionnaire: l.key,
            from: when(l.from, "(built in, before any activation)"),
            until: when(l.until, "(now)"),
        })
        .collect()
}

/// `triage questionnaire list`.
pub async fn questionnaire_list(ctx: &Ctx, format: Format) -> Result<ExitCode> {
    let versions = versions(ctx).await?;
    let active = versions.active();
    let rows: Vec<VersionRow> = versions
        .versions
        .iter()
        .map(|v| VersionRow {
            questionnaire: v.key(),
            published: v
                .published_at
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_else(|| "built in".into()),
            sha256: v.sha256.clone(),
            active: v.key() == active,
            questions: v.questionnaire.as_ref().map_or(0, |q| q.questions.len()),
            state: match &v.questionnaire {
                Ok(_) => "ok".into(),
                Err(why) => format!("unreadable: {why}"),
            },
        })
        .collect();
    let timeline = live_rows(versions.timeline());
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(
                &mut out,
                &serde_json::json!({"active": active, "versions": rows, "activations": timeline}),
            )?;
            writeln!(out)?;
        }
        Format::Csv => write_rows(&mut out, &rows, format)?,
        Format::Table => {
            write_rows(&mut out, &rows, format)?;
            writeln!(out)?;
            writeln!(out, "new calls start on {active}; the activation log:")?;
            write_rows(&mut out, &timeline, format)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `triage questionnaire show ID[@VERSION]`: the document, as stored.
pub async fn questionnaire_show(ctx: &Ctx, id: &str, version: Option<u32>) -> Result<ExitCode> {
    say(find_version(ctx, id, version).await?.canonical_json())?;
    Ok(ExitCode::SUCCESS)
}

/// `ID@VERSION` (ID alone: its newest version), embedded or published and readable.
async fn find_version(
    ctx: &Ctx,
    id: &str,
    version: Option<u32>,
) -> Result<&'static connect_triage::domain::Questionnaire> {
    let versions = versions(ctx).await?;
    let found = versions
        .versions
        .iter()
        .filter(|v| v.id == id && version.is_none_or(|n| v.version == n))
        .max_by_key(|v| v.version);
    let Some(v) = found else {
        let known: Vec<String> = versions.versions.iter().map(|v| v.key()).collect();
        bail!(
            "no questionnaire {id}{} is embedded or published; known: {}",
            version.map(|n| format!("@{n}")).unwrap_or_default(),
            known.join(", ")
        );
    };
    match &v.questionnaire {
        Ok(q) => Ok(q),
        Err(why) => bail!("{} is stored but cannot be read: {why}", v.key()),
    }
}

/// `triage questionnaire activate ID@VERSION`.
pub async fn questionnaire_activate(ctx: &Ctx, id: &str, version: Option<u32>) -> Result<ExitCode> {
    let Some(version) = version else {
        bail!("name the version to activate: triage questionnaire activate {id}@VERSION");
    };
    let catalog = ctx.catalog().await?;
    let a = connect_triage::questionnaires::activate(&*catalog, id, version, chrono::Utc::now())
        .await?;
    say(format!(
        "activation {}: new calls start on {} from {} (calls in progress finish on their own version; Lambdas follow within {} s)",
        a.seq,
        a.key(),
        a.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ctx.settings.questionnaire_refresh.as_secs()
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// `triage questionnaire fhir ID[@VERSION]`: the version as a FHIR R4 `Questionnaire`.
pub async fn questionnaire_fhir(ctx: &Ctx, id: &str, version: Option<u32>) -> Result<ExitCode> {
    let q = find_version(ctx, id, version).await?;
    let resource = connect_triage::read::fhir::questionnaire_resource(q, &ctx.settings.fhir_base);
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &resource)?;
    writeln!(out)?;
    Ok(ExitCode::SUCCESS)
}

/// `triage questionnaire live --on DAY`.
pub async fn questionnaire_live(ctx: &Ctx, day: NaiveDate, format: Format) -> Result<ExitCode> {
    let versions = versions(ctx).await?;
    let rows = live_rows(versions.live_during(day));
    write_rows(&mut std::io::stdout().lock(), &rows, format)?;
    Ok(ExitCode::SUCCESS)
}

/// `triage athena-sql`: the views and queries of the Athena path, to files or stdout.
pub async fn athena_sql(ctx: &Ctx, out: Option<&Path>, published: bool) -> Result<ExitCode> {
    use connect_triage::domain::Questionnaire;
    use connect_triage::read::athena::files_with;
    let mut known: Vec<&'static Questionnaire> = Questionnaire::catalog().to_vec();
    if published {
        for v in versions(ctx).await?.versions {
            if let (Ok(q), Some(_)) = (v.questionnaire, v.published_at) {
                known.push(q);
            }
        }
    }
    let files = || files_with(&known);
    match out {
        Some(dir) => {
            for (path, sql) in files() {
                let path = dir.join(path);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("creating {}", parent.display()))?;
                }
                std::fs::write(&path, sql)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            for (_, sql) in files() {
                writeln!(stdout, "{};\n", sql.trim_end())?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `triage seed-demo`: SYNTHETIC calls through the real turn.
pub async fn seed_demo_calls(
    ctx: &Ctx,
    calls: u32,
    days: u32,
    first_day: Option<NaiveDate>,
    seed: u64,
) -> Result<ExitCode> {
    let first_day = first_day.unwrap_or_else(|| {
        chrono::Utc::now().date_naive() - chrono::Duration::days(i64::from(days))
    });
    let hasher = match &ctx.settings.caller_hasher {
        Some(h) => h.clone(),
        None => CallerHasher::new(DEMO_HASH_KEY)?,
    };
    let app = ctx.line_app().await?.with_caller_hasher(Some(hasher));
    let store = app.store().clone();
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
    let report = seed_demo_with(app, &plan, |n| {
        if n % 100 == 0 {
            eprintln!("played {n} of {calls} demo calls...");
        }
    })
    .await?;
    say(format!(
        "seeded {} synthetic calls ({} turns, {} hung up) from {first_day} to {last}",
        report.calls, report.turns, report.hung_up
    ))?;
    Ok(ExitCode::SUCCESS)
}

async fn print_trail(store: &SharedStore, cid: &ContactId, format: Format) -> Result<()> {
    let events = store.load(cid).await?;
    if events.is_empty() {
        bail!(
            "no events for contact {cid} in {}: check the id, or pick the store with --store",
            store.describe()
        );
    }
    let rows = connect_triage::read::trail::trail(&events)
        .with_context(|| format!("the events of contact {cid} do not fold"))?;
    write_rows(&mut std::io::stdout().lock(), &rows, format)?;
    Ok(())
}

/// `triage audio`: the call's audio from Kinesis Video Streams, as a WAV at `out`.
pub async fn audio(
    ctx: &Ctx,
    cid: &ContactId,
    out: &Path,
    idle_seconds: u64,
    partial: bool,
) -> Result<ExitCode> {
    use connect_triage::read::audio::{self, End, FetchOptions};
    let store = ctx.store().await?;
    let events = store.load(cid).await?;
    if events.is_empty() {
        bail!(
            "no events for contact {cid} in {}: check the id, or pick the store with --store",
            store.describe()
        );
    }
    let stream = audio::stream_of(cid, &events)?;
    if stream.recorded > 1 {
        eprintln!(
            "call {cid} has {} AudioStreamed events: reading the first's stream",
            stream.recorded
        );
    }
    let opts = FetchOptions {
        idle: std::time::Duration::from_secs(idle_seconds.max(1)),
        partial,
    };
    let fetched = audio::fetch(cid, &stream, opts, |p| {
        eprintln!(
            "read {:.1} s of audio ({} fragments, {} bytes)...",
            p.seconds,
            thousands(p.fragments),
            thousands(p.bytes)
        )
    })
    .await?;
    let why = match &fetched.end {
        End::OtherContact(other) => format!("the stream went on to contact {other}"),
        End::StreamEnded => "the stream ended".to_string(),
        End::Idle(idle) => format!(
            "nothing came for {} s: taken as the end of the call's audio (--idle-seconds)",
            idle.as_secs()
        ),
    };
    eprintln!("stopped reading: {why}");
    if let Some(cut) = &fetched.cut {
        eprintln!("--partial: writing what was read before the cut ({cut})");
    }
    let a = &fetched.audio;
    for (name, track) in [("caller", &a.caller), ("line", &a.line)] {
        if track.pcm.is_empty() {
            eprintln!("no {name} track in the stream: its channel is silent");
        }
    }
    if a.untagged_fragments > 0 {
        eprintln!(
            "{} of {} fragments had no ContactId tag: kept as this call's",
            thousands(a.untagged_fragments),
            thousands(a.fragments)
        );
    }
    if !a.ignored_tracks.is_empty() {
        eprintln!(
            "tracks left out (neither side of the call): {}",
            a.ignored_tracks.join(", ")
        );
    }
    let w = audio::write_wav(&fetched, out)?;
    say(format!(
        "wrote {}: {:.1} s (caller {:.1} s, line {:.1} s), 8 kHz 16-bit stereo, left the caller, right the line; {} bytes, from {} fragments ({} bytes) of {}{}",
        out.display(),
        w.seconds,
        w.caller_seconds,
        w.line_seconds,
        thousands(w.file_bytes),
        thousands(w.fragments),
        thousands(w.stream_bytes),
        stream.stream_arn,
        if fetched.cut.is_some() { "; CUT SHORT (--partial)" } else { "" }
    ))?;
    Ok(ExitCode::SUCCESS)
}
