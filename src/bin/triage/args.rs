//! The command line's grammar (clap). What each verb does is in `verbs.rs`, one function
//! per verb; values are parsed into their domain types here (`FromStr`/`ValueEnum`), so a
//! verb only ever sees valid values. The verbs are a contract: docs/contracts.md, "CLI".

use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use connect_triage::domain::{ContactId, Lang};
use connect_triage::output::Format;
use connect_triage::read::export::ExportFormat;
use connect_triage::read::stats::Section;
use connect_triage::read::{Source, Status, DEFAULT_ABANDON_MINUTES};
use connect_triage::sim::call::{parse_answers, parse_say, Press};
use connect_triage::store::StoreSpec;

#[derive(Debug, Parser)]
#[command(
    name = "triage",
    version,
    about = "Event-sourced phone-line triage for Amazon Connect: run calls, serve the Lambda contract, read answer trails"
)]
pub struct Cli {
    /// Where events live: file:PATH (local append-only log) or dynamodb:TABLE (endpoint and
    /// credentials from the standard AWS settings, e.g. AWS_ENDPOINT_URL). Default:
    /// TRIAGE_STORE, else file:.triage/events.jsonl.
    #[arg(long, global = true)]
    pub store: Option<StoreSpec>,

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
        #[arg(long, value_parser = answers, conflicts_with = "say")]
        answers: Option<Script>,
        /// What the caller says to the answers bot, in order (the line with SpeechInput
        /// Enabled; implies --speech): words in either language (sí, no, claro, salir,
        /// yes, nope, exit, ...), keys (1, 0, *) pressed to the bot, t for silence.
        /// Example: --say "sí,no,no,salir"
        #[arg(long, value_parser = said)]
        say: Option<Script>,
        /// Ask through the answers bot (connect/lex-bot.json) as a stack with SpeechInput
        /// Enabled does: words typed in interactive mode are spoken answers.
        #[arg(long)]
        speech: bool,
        /// Stream the caller's audio as a stack with AudioStreaming Enabled does: the
        /// recording notice, media streaming, and the audio's place in the trail.
        #[arg(long)]
        audio: bool,
        /// Language of the call: es (the seed's Spanish) or en.
        #[arg(long, default_value = "es")]
        lang: Lang,
        /// The ContactId to use (default: a new UUID).
        #[arg(long)]
        contact_id: Option<ContactId>,
        /// The caller's number as Connect would send it (stored only as a keyed hash when
        /// TRIAGE_CALLER_HASH_KEY is set, never as is).
        #[arg(long, default_value = "+34600000000")]
        caller: String,
        /// How the trail is shown at the end.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Run (and so check) this flow file instead of connect/triage-flow.json: for
        /// people who edit the flow. Checked against Connect's reference first.
        #[arg(long)]
        flow: Option<std::path::PathBuf>,
        /// The hospital queue's hours when the call reaches it (CheckHoursOfOperation).
        #[arg(long, value_enum, default_value_t = Hours::Open)]
        hospital_hours: Hours,
        /// The hospital queue's state when the call is transferred (a full queue takes
        /// TransferContactToQueue's QueueAtCapacity branch).
        #[arg(long, value_enum, default_value_t = QueueState::Available)]
        hospital_queue: QueueState,
    },
    /// The line's scenarios (connect/scenarios.json) as Amazon Connect native test cases:
    /// one CreateTestCase request per scenario in DIR, for
    /// `aws connect create-test-case --cli-input-json file://DIR/NAME.json`. Each scenario is
    /// run through the simulator first; one it does not bear out is refused. ARNs left out
    /// stay ${...} placeholders (named on stderr).
    ConnectTests(ConnectTestsArgs),
    /// Questionnaires as data (docs/questionnaire.md, schemas/questionnaire.schema.json).
    #[command(subcommand)]
    Questionnaire(QuestionnaireCommand),
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
        contact_id: ContactId,
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
        outcome: Option<Status>,
        /// Only this caller's calls (the keyed hash of the number, as `triage stats` shows);
        /// read through the by-caller index.
        #[arg(long)]
        caller: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// model: the read model's call summaries (one item per call); events: every
        /// call's events, folded on the spot.
        #[arg(long, value_enum, default_value_t = Source::Model)]
        source: Source,
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
        /// model: the read model's per-day counters (days x shards reads, whatever the
        /// number of calls); events: every call's events, folded on the spot.
        #[arg(long, value_enum, default_value_t = Source::Model)]
        source: Source,
        /// List this many repeat callers, most calls on one day first (the day rows count
        /// every repeat caller whatever this is).
        #[arg(long, default_value_t = connect_triage::store::model::DEFAULT_TOP_CALLERS)]
        top_callers: usize,
    },
    /// The read model (per-day counters and call summaries that `stats`, `report` and
    /// `calls` read). On AWS the projector function keeps it from the table's stream; the
    /// file store's is brought up to date whenever it is read.
    Project {
        /// Replay the events of every call started from --from to --to into the model
        /// (after a change of the projection, or to fill it). Idempotent; run it again to
        /// finish a run that was cut short. Progress on stderr.
        #[arg(long, conflicts_with = "status", required_unless_present = "status")]
        rebuild: bool,
        /// How far the model is behind the events of --from..--to (default: yesterday and
        /// today, UTC): calls and events not in it yet, and the age of the oldest.
        #[arg(long)]
        status: bool,
        /// First UTC day, YYYY-MM-DD (inclusive).
        #[arg(long, required_if_eq("rebuild", "true"))]
        from: Option<String>,
        /// Last UTC day, YYYY-MM-DD (inclusive).
        #[arg(long, required_if_eq("rebuild", "true"))]
        to: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
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
        /// model: the read model's per-day counters; events: every call's events.
        #[arg(long, value_enum, default_value_t = Source::Model)]
        source: Source,
    },
    /// The Athena views over DynamoDB's exports to S3 (triage_questions, triage_events,
    /// triage_calls, triage_answers: the rows of `export`) and the README's queries, as
    /// SQL. With --out DIR, one file each (DIR/views/NN_NAME.sql, DIR/queries/NAME.sql);
    /// otherwise all on stdout, each statement ended by `;`. Run the views in order once.
    AthenaSql {
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Also the questionnaire versions published in the store (--store) in the
        /// `triage_questions` view: run it again, and the view's CREATE in Athena, after
        /// each publication.
        #[arg(long)]
        published: bool,
    },
    /// SYNTHETIC demo data: plays N made-up calls through the real Lambda turn, spread over
    /// D past days. Contact ids start with `demo-`. Never run it against production.
    SeedDemo {
        #[arg(long, default_value_t = 200)]
        calls: u32,
        #[arg(long, default_value_t = 7)]
        days: u32,
        /// First day of the data (default: D days before today, so the last is yesterday).
        #[arg(long, value_parser = day)]
        first_day: Option<NaiveDate>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// A call's audio as a WAV (8 kHz, 16-bit, stereo: left the caller, right what the
    /// caller heard), fetched from Kinesis Video Streams where its AudioStreamed event says
    /// (GetDataEndpoint, then GetMedia). Credentials and endpoint: the standard AWS settings
    /// (AWS_ENDPOINT_URL_KINESIS_VIDEO for this service alone). Progress on stderr.
    Audio {
        contact_id: ContactId,
        /// The WAV to write (written beside it first, then renamed: never a half file).
        #[arg(long)]
        out: std::path::PathBuf,
        /// Stop reading after this many seconds without bytes: the end of a stream nobody
        /// used after the call.
        #[arg(long, default_value_t = connect_triage::read::audio::DEFAULT_IDLE_SECONDS)]
        idle_seconds: u64,
        /// Write what was read when the stream is cut in the middle (otherwise an error,
        /// and no file).
        #[arg(long)]
        partial: bool,
    },
}

/// `triage questionnaire ...`.
#[derive(Debug, clap::Subcommand)]
pub enum QuestionnaireCommand {
    /// Checks a questionnaire file and prints every problem with its JSON path, its line
    /// and the fix (ids, translations, reachable outcomes, prompt lengths, unknown
    /// fields). Exit 0 when it can be published, 1 when not.
    Check { file: std::path::PathBuf },
    /// Checks FILE and stores it as an immutable version in the store (--store): refused,
    /// with nothing written, when it has a problem, when that id@version is published with
    /// other content (the difference is shown) or when a higher version is published.
    Publish { file: std::path::PathBuf },
    /// Every version: embedded and published, which one new calls start on, and the
    /// activation log (which version was live when).
    List {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// One version's document as stored (ID: the newest version of that id).
    Show {
        #[arg(value_parser = version_ref)]
        version: VersionRef,
    },
    /// From now on, new calls start on ID@VERSION (recorded in the activation log with its
    /// time; calls in progress finish on their own version). Lambdas follow within a
    /// minute (TRIAGE_QUESTIONNAIRE_REFRESH_SECONDS).
    Activate {
        #[arg(value_parser = version_ref)]
        version: VersionRef,
    },
    /// The version (ID: the newest) as an HL7 FHIR R4 `Questionnaire` resource (canonical
    /// URL TRIAGE_FHIR_BASE/Questionnaire/ID, its version, items with their texts, English
    /// as FHIR's translation extension, weights and thresholds as extensions). `triage
    /// export --format fhir` writes the calls as `QuestionnaireResponse`s that point at it.
    Fhir {
        #[arg(value_parser = version_ref)]
        version: VersionRef,
    },
    /// Which version(s) new calls started on during a UTC day, from the activation log.
    Live {
        /// YYYY-MM-DD.
        #[arg(long, value_parser = day)]
        on: NaiveDate,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

/// `ID` or `ID@VERSION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRef {
    pub id: String,
    pub version: Option<u32>,
}

fn version_ref(s: &str) -> Result<VersionRef, String> {
    let (id, version) = match s.split_once('@') {
        Some((id, v)) => (
            id,
            Some(v.parse::<u32>().map_err(|_| {
                format!("{s:?}: the version after @ is a whole number, e.g. covid19@2")
            })?),
        ),
        None => (s, None),
    };
    if id.is_empty() {
        return Err(format!("{s:?}: name a questionnaire, e.g. covid19@2"));
    }
    Ok(VersionRef {
        id: id.to_string(),
        version,
    })
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

/// `--hospital-hours`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Hours {
    Open,
    Closed,
}

/// `--hospital-queue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QueueState {
    Available,
    Full,
}

/// The keys of `--answers`, in order.
#[derive(Debug, Clone)]
pub struct Script(pub Vec<Press>);

/// `--answers 1,0,*,t` (see [`parse_answers`]).
fn answers(s: &str) -> Result<Script, String> {
    parse_answers(s).map(Script).map_err(|e| e.to_string())
}

/// `--say "sí,no,1,t"` (see [`parse_say`]).
fn said(s: &str) -> Result<Script, String> {
    parse_say(s).map(Script).map_err(|e| e.to_string())
}

/// A UTC day, `YYYY-MM-DD`.
fn day(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|e| format!("{s:?} is not a day written YYYY-MM-DD (e.g. 2026-03-01): {e}"))
}

/// What `triage connect-tests` is asked for.
#[derive(clap::Args, Debug)]
pub struct ConnectTestsArgs {
    /// Folder to write the requests to (created if missing).
    #[arg(long)]
    pub out: std::path::PathBuf,
    /// The Connect instance's ARN.
    #[arg(long)]
    pub instance_arn: Option<String>,
    /// The triage flow's ARN (the stack's ContactFlowArn output).
    #[arg(long)]
    pub flow_arn: Option<String>,
    /// The hospital queue's ARN (the stack's HospitalQueueArn parameter).
    #[arg(long)]
    pub hospital_queue_arn: Option<String>,
    /// The hospital queue's hours of operation ARN (`aws connect describe-queue` gives its
    /// id, `describe-hours-of-operation` its ARN), mocked closed by the scenarios that say so.
    #[arg(long)]
    pub hospital_hours_arn: Option<String>,
    /// Another scenario file instead of connect/scenarios.json.
    #[arg(long)]
    pub scenarios: Option<std::path::PathBuf>,
    /// Another flow file instead of connect/triage-flow.json (the scenarios run through it).
    #[arg(long)]
    pub flow: Option<std::path::PathBuf>,
}
