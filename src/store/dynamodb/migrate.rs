//! `triage migrate`: creates and evolves the DynamoDB table from `migrations/NNNN_name.json`.
//!
//! Each file holds one DynamoDB API call in the API's own field names:
//! `{"operation": "CreateTable" | "UpdateTable" | "UpdateTimeToLive", "input": {...}}`. The
//! input's `TableName` is a placeholder, replaced by the target table. Only the fields the
//! migrations use are supported; any other field is refused with a clear error, before
//! anything is applied (see [`Migrations::parse`]).
//!
//! Applying is idempotent. Before each migration, its effect is looked for (the table exists
//! with the same keys / the index exists / TTL is enabled on the same attribute); when it is
//! there the migration is skipped, saying so. After the table and every index are ACTIVE
//! (polled with a bounded wait, see [`MAX_WAIT`]), the migration is recorded in the table
//! itself, as a plain item under partition key [`MIGRATIONS_KEY`] (`#migrations`), sort key
//! = the migration number, with `migration`, `operation`, `outcome` and `applied_at`. That
//! key can never be a call: Connect ContactIds are UUIDs, without `#`; the store refuses to
//! append to `#` keys, and readers that scan the whole table must skip them.
//!
//! The migrations are embedded in the binary ([`Migrations::embedded`]); a directory can be
//! used instead ([`Migrations::from_dir`]).

use crate::store::dynamodb::{MIGRATIONS_KEY, PK, SK};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CreateGlobalSecondaryIndexAction,
    GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TableDescription, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_dynamodb::Client;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The migrations shipped with this build, in order.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "0001_create_table.json",
        include_str!("../../../migrations/0001_create_table.json"),
    ),
    (
        "0002_by_day_index.json",
        include_str!("../../../migrations/0002_by_day_index.json"),
    ),
    (
        "0003_by_caller_index.json",
        include_str!("../../../migrations/0003_by_caller_index.json"),
    ),
    (
        "0004_ttl.json",
        include_str!("../../../migrations/0004_ttl.json"),
    ),
    (
        "0005_stream.json",
        include_str!("../../../migrations/0005_stream.json"),
    ),
    (
        "0006_read_model.json",
        include_str!("../../../migrations/0006_read_model.json"),
    ),
];

/// Longest wait for the table or an index to become ACTIVE. A new table is ACTIVE in
/// seconds; an index on an empty or small table in a few minutes; backfilling a big table
/// takes longer, and a re-run picks up where this one stopped.
pub const MAX_WAIT: Duration = Duration::from_secs(20 * 60);

/// How often a long wait reports progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// A migration file that cannot be used (bad name, bad JSON, unsupported field).
    #[error("migration {file}: {why}")]
    Bad { file: String, why: String },
    /// A DynamoDB call failed.
    #[error("migration {migration}: DynamoDB {op} failed: {message}")]
    Aws {
        migration: String,
        op: &'static str,
        message: String,
    },
    /// The table or an index did not become ACTIVE in time.
    #[error("migration {migration}: {what} is not ACTIVE after {waited:?}; run `triage migrate` again later")]
    Timeout {
        migration: String,
        what: String,
        waited: Duration,
    },
    /// The table holds something that contradicts a migration (e.g. other keys).
    #[error("migration {migration}: {why}")]
    Mismatch { migration: String, why: String },
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrateReport {
    pub table: String,
    /// Names of the migrations applied by this run, in order.
    pub applied: Vec<String>,
    /// Migrations whose effect was already there: (name, why skipped).
    pub skipped: Vec<(String, String)>,
}

impl MigrateReport {
    /// True when the run changed nothing.
    pub fn is_noop(&self) -> bool {
        self.applied.is_empty()
    }
}

/// One migration file, parsed and checked.
#[derive(Debug, Clone)]
pub struct Migration {
    /// The `NNNN` of `NNNN_name.json`.
    pub number: u32,
    /// The file name without `.json`, e.g. `0002_by_day_index`.
    pub name: String,
    op: Op,
    /// Applies to the read model's table (`TABLE-model`) rather than the events table.
    on_model: bool,
}

/// `TableName` placeholder of migrations that apply to the events table.
pub const EVENTS_TABLE_PLACEHOLDER: &str = "triage-events";
/// `TableName` placeholder of migrations that apply to the read model's table.
pub const MODEL_TABLE_PLACEHOLDER: &str = "triage-events-model";

impl Migration {
    /// The table it applies to when the events table is `table`.
    pub fn target(&self, table: &str) -> String {
        if self.on_model {
            crate::read::model_table(table)
        } else {
            table.to_string()
        }
    }

    /// The DynamoDB operation it calls.
    pub fn operation(&self) -> &'static str {
        match self.op {
            Op::CreateTable(_) => "CreateTable",
            Op::UpdateTable(_) => "UpdateTable",
            Op::UpdateTimeToLive(_) => "UpdateTimeToLive",
        }
    }
}

/// An ordered, checked list of migrations.
#[derive(Debug, Clone)]
pub struct Migrations(Vec<Migration>);

impl Migrations {
    /// The migrations embedded in this build (`migrations/` at build time).
    pub fn embedded() -> Result<Migrations, MigrateError> {
        Migrations::parse(EMBEDDED.iter().map(|(n, t)| (n.to_string(), t.to_string())))
    }

    /// The `NNNN_name.json` files of a directory.
    pub fn from_dir(dir: &Path) -> Result<Migrations, MigrateError> {
        let bad = |why: String| MigrateError::Bad {
            file: dir.display().to_string(),
            why,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| bad(format!("cannot list: {e}")))? {
            let path: PathBuf = entry.map_err(|e| bad(format!("cannot list: {e}")))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| bad(format!("{} is not a UTF-8 name", path.display())))?
                .to_string();
            let text = std::fs::read_to_string(&path)
                .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
            files.push((name, text));
        }
        Migrations::parse(files)
    }

    /// Parses `(file name, JSON text)` pairs; sorts them by number; refuses duplicates.
    pub fn parse(
        files: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Migrations, MigrateError> {
        let mut list = Vec::new();
        for (file, text) in files {
            let bad = |why: String| MigrateError::Bad {
                file: file.clone(),
                why,
            };
            let name = file
                .strip_suffix(".json")
                .ok_or_else(|| bad("the name must end in .json".into()))?
                .to_string();
            let number = name
                .split_once('_')
                .map(|(n, _)| n)
                .filter(|n| n.len() == 4 && n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse::<u32>().ok())
                .ok_or_else(|| bad("the name must be NNNN_name.json".into()))?;
            let op = parse_op(&text).map_err(|e| bad(e.0))?;
            let on_model = match op.table_name() {
                EVENTS_TABLE_PLACEHOLDER => false,
                MODEL_TABLE_PLACEHOLDER => true,
                other => {
                    return Err(bad(format!(
                        "TableName {other:?} is neither {EVENTS_TABLE_PLACEHOLDER:?} (the events table) nor {MODEL_TABLE_PLACEHOLDER:?} (its read model); the placeholders are replaced by the tables `--store dynamodb:TABLE` names"
                    )))
                }
            };
            list.push(Migration {
                number,
                name,
                op,
                on_model,
            });
        }
        list.sort_by_key(|m| m.number);
        for pair in list.windows(2) {
            if pair[0].number == pair[1].number {
                return Err(MigrateError::Bad {
                    file: pair[1].name.clone(),
                    why: format!("number {:04} is used twice", pair[1].number),
                });
            }
        }
        if let Some(first) = list.first() {
            if !matches!(first.op, Op::CreateTable(_)) {
                return Err(MigrateError::Bad {
                    file: first.name.clone(),
                    why: "the first migration must be CreateTable".into(),
                });
            }
        }
        Ok(Migrations(list))
    }

    pub fn list(&self) -> &[Migration] {
        &self.0
    }

    /// Only the migrations `keep` accepts (e.g. tests that leave out TTL).
    pub fn retain(mut self, keep: impl FnMut(&Migration) -> bool) -> Migrations {
        self.0.retain(keep);
        self
    }
}

// ---- the JSON forms (DynamoDB API field names) --------------------------------------------

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct CreateTableJson {
    /// A placeholder ([`EVENTS_TABLE_PLACEHOLDER`] or [`MODEL_TABLE_PLACEHOLDER`]): the
    /// target table replaces it.
    table_name: String,
    attribute_definitions: Vec<AttrDefJson>,
    key_schema: Vec<KeyJson>,
    billing_mode: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct UpdateTableJson {
    table_name: String,
    #[serde(default)]
    attribute_definitions: Vec<AttrDefJson>,
    #[serde(default)]
    global_secondary_index_updates: Vec<GsiUpdateJson>,
    /// Turns the table's stream on (migrations never turn it off).
    #[serde(default)]
    stream_specification: Option<StreamSpecJson>,
}

/// <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_StreamSpecification.html>
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct StreamSpecJson {
    stream_enabled: bool,
    stream_view_type: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct UpdateTtlJson {
    table_name: String,
    time_to_live_specification: TtlSpecJson,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct TtlSpecJson {
    enabled: bool,
    attribute_name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct AttrDefJson {
    attribute_name: String,
    attribute_type: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct KeyJson {
    attribute_name: String,
    key_type: String,
}

/// Only `Create` is supported: migrations add indexes, they never change or drop them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct GsiUpdateJson {
    create: GsiJson,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct GsiJson {
    index_name: String,
    key_schema: Vec<KeyJson>,
    projection: ProjectionJson,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct ProjectionJson {
    projection_type: String,
    #[serde(default)]
    non_key_attributes: Option<Vec<String>>,
}

/// One migration file: `{"operation": ..., "input": {...}}`, the operation naming the
/// variant and the input its DynamoDB API input, in the API's own field names.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "operation", content = "input", deny_unknown_fields)]
enum Op {
    /// <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_CreateTable.html>
    CreateTable(CreateTableJson),
    /// <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateTable.html>
    UpdateTable(UpdateTableJson),
    /// <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateTimeToLive.html>
    UpdateTimeToLive(UpdateTtlJson),
}

impl Op {
    fn table_name(&self) -> &str {
        match self {
            Op::CreateTable(c) => &c.table_name,
            Op::UpdateTable(u) => &u.table_name,
            Op::UpdateTimeToLive(t) => &t.table_name,
        }
    }
}

/// What is wrong with a migration's content (its file is named by [`MigrateError::Bad`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
struct Invalid(String);

const OPERATIONS: &str = "CreateTable, UpdateTable, UpdateTimeToLive";

fn parse_op(text: &str) -> Result<Op, Invalid> {
    let op: Op = serde_json::from_str(text).map_err(|e| {
        let e = e.to_string();
        if e.starts_with("unknown variant") {
            Invalid(format!(
                "the operation is not supported ({OPERATIONS}): {e}"
            ))
        } else {
            Invalid(format!("not valid: {e}"))
        }
    })?;
    // Build the SDK values once now, so every enum value and required field is checked
    // before anything is applied.
    match &op {
        Op::CreateTable(c) => {
            attr_defs(&c.attribute_definitions)?;
            key_schema(&c.key_schema)?;
            billing_mode(&c.billing_mode)?;
        }
        Op::UpdateTable(u) => {
            attr_defs(&u.attribute_definitions)?;
            match (&u.stream_specification, u.global_secondary_index_updates.is_empty()) {
                (None, true) => {
                    return Err(Invalid(
                        "UpdateTable input: give GlobalSecondaryIndexUpdates or StreamSpecification".into(),
                    ))
                }
                (Some(_), false) => {
                    return Err(Invalid(
                        "UpdateTable input: one change per migration, an index or the stream (DynamoDB refuses both in one UpdateTable)".into(),
                    ))
                }
                _ => {}
            }
            if let Some(spec) = &u.stream_specification {
                stream_spec(spec)?;
            }
            gsi_updates(&u.global_secondary_index_updates)?;
        }
        Op::UpdateTimeToLive(t) => {
            ttl_spec(&t.time_to_live_specification)?;
        }
    }
    Ok(op)
}

fn stream_spec(
    spec: &StreamSpecJson,
) -> Result<aws_sdk_dynamodb::types::StreamSpecification, Invalid> {
    if !spec.stream_enabled {
        return Err(Invalid(
            "StreamSpecification: migrations turn a stream on, never off (StreamEnabled must be true)".into(),
        ));
    }
    let view = checked(
        "StreamViewType",
        &spec.stream_view_type,
        &["NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY"],
    )?;
    aws_sdk_dynamodb::types::StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(aws_sdk_dynamodb::types::StreamViewType::from(view))
        .build()
        .map_err(|e| Invalid(format!("StreamSpecification: {e}")))
}

fn checked<'a>(what: &str, value: &'a str, allowed: &[&str]) -> Result<&'a str, Invalid> {
    if allowed.contains(&value) {
        Ok(value)
    } else {
        Err(Invalid(format!(
            "{what} {value:?} is not one of {allowed:?}"
        )))
    }
}

fn attr_defs(defs: &[AttrDefJson]) -> Result<Vec<AttributeDefinition>, Invalid> {
    defs.iter()
        .map(|d| {
            let t = checked(
                "AttributeType",
                &d.attribute_type,
                ScalarAttributeType::values(),
            )?;
            AttributeDefinition::builder()
                .attribute_name(&d.attribute_name)
                .attribute_type(ScalarAttributeType::from(t))
                .build()
                .map_err(|e| Invalid(format!("AttributeDefinitions: {e}")))
        })
        .collect()
}

fn key_schema(keys: &[KeyJson]) -> Result<Vec<KeySchemaElement>, Invalid> {
    if keys.is_empty() || keys.len() > 2 {
        return Err(Invalid(format!(
            "KeySchema holds 1 or 2 keys, not {}",
            keys.len()
        )));
    }
    keys.iter()
        .map(|k| {
            let t = checked("KeyType", &k.key_type, KeyType::values())?;
            KeySchemaElement::builder()
                .attribute_name(&k.attribute_name)
                .key_type(KeyType::from(t))
                .build()
                .map_err(|e| Invalid(format!("KeySchema: {e}")))
        })
        .collect()
}

fn billing_mode(mode: &str) -> Result<BillingMode, Invalid> {
    Ok(BillingMode::from(checked(
        "BillingMode",
        mode,
        BillingMode::values(),
    )?))
}

fn gsi_updates(updates: &[GsiUpdateJson]) -> Result<Vec<GlobalSecondaryIndexUpdate>, Invalid> {
    updates
        .iter()
        .map(|u| {
            let g = &u.create;
            let pt = checked(
                "ProjectionType",
                &g.projection.projection_type,
                ProjectionType::values(),
            )?;
            let projection = Projection::builder()
                .projection_type(ProjectionType::from(pt))
                .set_non_key_attributes(g.projection.non_key_attributes.clone())
                .build();
            let create = CreateGlobalSecondaryIndexAction::builder()
                .index_name(&g.index_name)
                .set_key_schema(Some(key_schema(&g.key_schema)?))
                .projection(projection)
                .build()
                .map_err(|e| Invalid(format!("GlobalSecondaryIndexUpdates: {e}")))?;
            Ok(GlobalSecondaryIndexUpdate::builder().create(create).build())
        })
        .collect()
}

fn ttl_spec(spec: &TtlSpecJson) -> Result<TimeToLiveSpecification, Invalid> {
    TimeToLiveSpecification::builder()
        .enabled(spec.enabled)
        .attribute_name(&spec.attribute_name)
        .build()
        .map_err(|e| Invalid(format!("TimeToLiveSpecification: {e}")))
}

// ---- applying ----------------------------------------------------------------------------

/// Applies `migrations` to `table`, in order, skipping those whose effect is already there,
/// and reports each step through `progress`.
pub async fn migrate(
    client: &Client,
    table: &str,
    migrations: &Migrations,
    mut progress: impl FnMut(&str),
) -> Result<MigrateReport, MigrateError> {
    let mut report = MigrateReport {
        table: table.to_string(),
        ..MigrateReport::default()
    };
    let mut records: Option<HashMap<u32, String>> = None;
    for m in migrations.list() {
        let aws = |op: &'static str, message: String| MigrateError::Aws {
            migration: m.name.clone(),
            op,
            message,
        };
        let target = m.target(table);
        let present = effect_present(client, &target, m).await?;
        if records.is_none() {
            if let Some(desc) = describe(client, table, &m.name).await? {
                if desc.table_status() == Some(&TableStatus::Active) {
                    records = Some(read_records(client, table, &m.name).await?);
                }
            }
        }
        let recorded = records.as_ref().and_then(|r| r.get(&m.number)).cloned();
        let outcome = match (&present, &recorded) {
            (Some(what), Some(at)) => {
                let why = format!("{what}; recorded as applied at {at}");
                progress(&format!("{}: skipped: {why}", m.name));
                report.skipped.push((m.name.clone(), why));
                None
            }
            (Some(what), None) => {
                let why = format!("{what} (made outside `triage migrate`; now recorded)");
                progress(&format!("{}: skipped: {why}", m.name));
                report.skipped.push((m.name.clone(), why));
                Some("already present")
            }
            (None, _) => {
                if recorded.is_some() {
                    progress(&format!(
                        "{}: recorded as applied, but its effect is missing: applying it again",
                        m.name
                    ));
                }
                progress(&format!(
                    "{}: applying {} to {target}",
                    m.name,
                    m.operation()
                ));
                match apply(client, &target, m).await {
                    Ok(()) => {
                        report.applied.push(m.name.clone());
                        Some("applied")
                    }
                    Err(e) => match effect_present(client, &target, m).await? {
                        // Someone else applied it at the same time: fine.
                        Some(what) => {
                            let why = format!("{what} (applied concurrently by another run)");
                            progress(&format!("{}: skipped: {why}", m.name));
                            report.skipped.push((m.name.clone(), why));
                            Some("already present")
                        }
                        None => return Err(aws(m.operation(), e.0)),
                    },
                }
            }
        };
        wait_active(client, &target, m, &mut progress).await?;
        if let Some(outcome) = outcome {
            record(client, table, m, outcome).await?;
            if records.is_none() {
                records = Some(HashMap::new());
            }
        }
    }
    if report.is_noop() {
        progress(&format!(
            "{table}: nothing to do, all {} migrations are already applied",
            migrations.list().len()
        ));
    } else {
        progress(&format!(
            "{table}: applied {} migration(s), skipped {}",
            report.applied.len(),
            report.skipped.len()
        ));
    }
    Ok(report)
}

fn sdk_message<E, R>(e: SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.as_service_error() {
        Some(s) => format!(
            "{}: {}",
            s.code().unwrap_or("UnknownError"),
            s.message().unwrap_or("no message")
        ),
        None => DisplayErrorContext(&e).to_string(),
    }
}

/// The table's description, or `None` when it does not exist.
async fn describe(
    client: &Client,
    table: &str,
    migration: &str,
) -> Result<Option<TableDescription>, MigrateError> {
    match client.describe_table().table_name(table).send().await {
        Ok(out) => Ok(out.table),
        Err(e)
            if e.as_service_error()
                .map(|s| s.is_resource_not_found_exception())
                .unwrap_or(false) =>
        {
            Ok(None)
        }
        Err(e) => Err(MigrateError::Aws {
            migration: migration.to_string(),
            op: "DescribeTable",
            message: sdk_message(e),
        }),
    }
}

fn keys_of(desc: &[KeySchemaElement]) -> Vec<(String, String)> {
    desc.iter()
        .map(|k| {
            (
                k.attribute_name().to_string(),
                k.key_type().as_str().to_string(),
            )
        })
        .collect()
}

fn keys_of_json(keys: &[KeyJson]) -> Vec<(String, String)> {
    keys.iter()
        .map(|k| (k.attribute_name.clone(), k.key_type.clone()))
        .collect()
}

/// `Some(what is there)` when the migration's effect is already in place.
async fn effect_present(
    client: &Client,
    table: &str,
    m: &Migration,
) -> Result<Option<String>, MigrateError> {
    let mismatch = |why: String| MigrateError::Mismatch {
        migration: m.name.clone(),
        why,
    };
    let missing_table = || MigrateError::Mismatch {
        migration: m.name.clone(),
        why: format!("table {table} does not exist; apply the earlier migrations first"),
    };
    match &m.op {
        Op::CreateTable(c) => {
            let Some(desc) = describe(client, table, &m.name).await? else {
                return Ok(None);
            };
            let have = keys_of(desc.key_schema());
            let want = keys_of_json(&c.key_schema);
            if have != want {
                return Err(mismatch(format!(
                    "table {table} exists with keys {have:?}, not {want:?}"
                )));
            }
            Ok(Some(format!("table {table} exists")))
        }
        Op::UpdateTable(u) => {
            let desc = describe(client, table, &m.name)
                .await?
                .ok_or_else(missing_table)?;
            if let Some(spec) = &u.stream_specification {
                let have = desc.stream_specification();
                let on = have.is_some_and(|s| s.stream_enabled());
                let view = have
                    .and_then(|s| s.stream_view_type())
                    .map(|v| v.as_str().to_string());
                return match (on, view) {
                    (false, _) => Ok(None),
                    (true, Some(v)) if v == spec.stream_view_type => {
                        Ok(Some(format!("the table's stream is on ({v})")))
                    }
                    (true, v) => Err(mismatch(format!(
                        "the table's stream is on with {}, not {}; turn it off first (UpdateTable StreamEnabled=false), then migrate",
                        v.unwrap_or_else(|| "no view type".into()),
                        spec.stream_view_type
                    ))),
                };
            }
            let mut found = Vec::new();
            for g in &u.global_secondary_index_updates {
                let name = &g.create.index_name;
                match desc
                    .global_secondary_indexes()
                    .iter()
                    .find(|i| i.index_name() == Some(name.as_str()))
                {
                    None => return Ok(None),
                    Some(i) => {
                        let have = keys_of(i.key_schema());
                        let want = keys_of_json(&g.create.key_schema);
                        if have != want {
                            return Err(mismatch(format!(
                                "index {name} exists with keys {have:?}, not {want:?}"
                            )));
                        }
                        found.push(name.clone());
                    }
                }
            }
            Ok(Some(format!("index {} exists", found.join(", "))))
        }
        Op::UpdateTimeToLive(t) => {
            let out = client
                .describe_time_to_live()
                .table_name(table)
                .send()
                .await
                .map_err(|e| MigrateError::Aws {
                    migration: m.name.clone(),
                    op: "DescribeTimeToLive",
                    message: sdk_message(e),
                })?;
            let desc = out.time_to_live_description();
            let status = desc.and_then(|d| d.time_to_live_status());
            let attr = desc.and_then(|d| d.attribute_name());
            let spec = &t.time_to_live_specification;
            let on = matches!(
                status,
                Some(TimeToLiveStatus::Enabled) | Some(TimeToLiveStatus::Enabling)
            );
            match (spec.enabled, on) {
                (true, true) if attr == Some(spec.attribute_name.as_str()) => {
                    Ok(Some(format!("TTL is enabled on {}", spec.attribute_name)))
                }
                (true, true) => Err(mismatch(format!(
                    "TTL is enabled on {:?}, not {}; disable it first",
                    attr.unwrap_or("?"),
                    spec.attribute_name
                ))),
                (false, false) => Ok(Some("TTL is disabled".into())),
                _ => Ok(None),
            }
        }
    }
}

async fn apply(client: &Client, table: &str, m: &Migration) -> Result<(), Invalid> {
    match &m.op {
        Op::CreateTable(c) => client
            .create_table()
            .table_name(table)
            .set_attribute_definitions(Some(attr_defs(&c.attribute_definitions)?))
            .set_key_schema(Some(key_schema(&c.key_schema)?))
            .billing_mode(billing_mode(&c.billing_mode)?)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| Invalid(sdk_message(e))),
        Op::UpdateTable(u) => {
            let defs = attr_defs(&u.attribute_definitions)?;
            let gsis = gsi_updates(&u.global_secondary_index_updates)?;
            client
                .update_table()
                .table_name(table)
                .set_attribute_definitions((!defs.is_empty()).then_some(defs))
                .set_global_secondary_index_updates((!gsis.is_empty()).then_some(gsis))
                .set_stream_specification(
                    u.stream_specification
                        .as_ref()
                        .map(stream_spec)
                        .transpose()?,
                )
                .send()
                .await
                .map(|_| ())
                .map_err(|e| Invalid(sdk_message(e)))
        }
        Op::UpdateTimeToLive(t) => client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(ttl_spec(&t.time_to_live_specification)?)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| Invalid(sdk_message(e))),
    }
}

/// Polls DescribeTable until the table and all its indexes are ACTIVE, at most [`MAX_WAIT`].
async fn wait_active(
    client: &Client,
    table: &str,
    m: &Migration,
    progress: &mut impl FnMut(&str),
) -> Result<(), MigrateError> {
    let start = Instant::now();
    let mut last_report = Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        let pending = match describe(client, table, &m.name).await? {
            None => vec![format!("table {table} (not visible yet)")],
            Some(desc) => {
                let mut pending = Vec::new();
                if desc.table_status() != Some(&TableStatus::Active) {
                    pending.push(format!(
                        "table {table} ({})",
                        desc.table_status().map(|s| s.as_str()).unwrap_or("?")
                    ));
                }
                for i in desc.global_secondary_indexes() {
                    if i.index_status() != Some(&IndexStatus::Active) {
                        pending.push(format!(
                            "index {} ({})",
                            i.index_name().unwrap_or("?"),
                            i.index_status().map(|s| s.as_str()).unwrap_or("?")
                        ));
                    }
                }
                pending
            }
        };
        if pending.is_empty() {
            return Ok(());
        }
        let waited = start.elapsed();
        if waited >= MAX_WAIT {
            return Err(MigrateError::Timeout {
                migration: m.name.clone(),
                what: pending.join(", "),
                waited,
            });
        }
        if last_report.elapsed() >= PROGRESS_EVERY {
            progress(&format!(
                "{}: waiting for {} to become ACTIVE ({} s so far, at most {} s)",
                m.name,
                pending.join(", "),
                waited.as_secs(),
                MAX_WAIT.as_secs()
            ));
            last_report = Instant::now();
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// The migrations recorded in the table: number -> applied_at.
async fn read_records(
    client: &Client,
    table: &str,
    migration: &str,
) -> Result<HashMap<u32, String>, MigrateError> {
    let mut records = HashMap::new();
    let mut start = None;
    loop {
        let page = client
            .query()
            .table_name(table)
            .consistent_read(true)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", AttributeValue::S(MIGRATIONS_KEY.into()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| MigrateError::Aws {
                migration: migration.to_string(),
                op: "Query",
                message: sdk_message(e),
            })?;
        for item in page.items() {
            let seq = match item.get(SK) {
                Some(AttributeValue::N(n)) => n.parse::<u32>().ok(),
                _ => None,
            };
            let at = match item.get("applied_at") {
                Some(AttributeValue::S(s)) => s.clone(),
                _ => "an unknown time".into(),
            };
            if let Some(seq) = seq {
                records.insert(seq, at);
            }
        }
        start = page.last_evaluated_key().filter(|k| !k.is_empty()).cloned();
        if start.is_none() {
            return Ok(records);
        }
    }
}

async fn record(
    client: &Client,
    table: &str,
    m: &Migration,
    outcome: &str,
) -> Result<(), MigrateError> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    client
        .put_item()
        .table_name(table)
        .item(PK, AttributeValue::S(MIGRATIONS_KEY.into()))
        .item(SK, AttributeValue::N(m.number.to_string()))
        .item("migration", AttributeValue::S(m.name.clone()))
        .item("operation", AttributeValue::S(m.operation().into()))
        .item("outcome", AttributeValue::S(outcome.into()))
        .item("applied_at", AttributeValue::S(now))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| MigrateError::Aws {
            migration: m.name.clone(),
            op: "PutItem",
            message: sdk_message(e),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_migrations_parse_in_order() {
        let m = Migrations::embedded().expect("embedded migrations are valid");
        let names: Vec<&str> = m.list().iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "0001_create_table",
                "0002_by_day_index",
                "0003_by_caller_index",
                "0004_ttl",
                "0005_stream",
                "0006_read_model"
            ]
        );
        assert_eq!(m.list()[3].operation(), "UpdateTimeToLive");
    }

    #[test]
    fn embedded_matches_the_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let from_dir = Migrations::from_dir(&dir).expect("directory parses");
        let names = |m: &Migrations| m.list().iter().map(|m| m.name.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&from_dir),
            names(&Migrations::embedded().expect("embedded"))
        );
    }

    #[test]
    fn unknown_fields_and_values_are_refused() {
        let one = |name: &str, text: &str| Migrations::parse([(name.into(), text.into())]);
        let e = one(
            "0001_t.json",
            r#"{"operation":"CreateTable","input":{"TableName":"t","AttributeDefinitions":[],"KeySchema":[{"AttributeName":"a","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST","StreamSpecification":{}}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field `StreamSpecification`"), "{e}");
        let e = one(
            "0001_t.json",
            r#"{"operation":"CreateTable","input":{"TableName":"t","AttributeDefinitions":[],"KeySchema":[{"AttributeName":"a","KeyType":"HASH"}],"BillingMode":"FREE"}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("BillingMode \"FREE\""), "{e}");
        let e = one("0001_t.json", r#"{"operation":"DeleteTable","input":{}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not supported"), "{e}");
        let e = one("first.json", "{}").unwrap_err().to_string();
        assert!(e.contains("NNNN_name.json"), "{e}");
    }
}
