//! Settings: every environment variable the service reads, read once, into one value that
//! is passed in (to the store, the SDK client, the turn). Nothing else in the crate reads
//! the environment; the AWS SDK reads the standard AWS settings itself (`AWS_ENDPOINT_URL`,
//! `AWS_REGION`, credentials, profiles). See docs/contracts.md, "Settings".

use crate::connect::{CallerHasher, CallerKeyError};
use crate::store::dynamodb::{DynamoOptions, DynamoSettings, SdkLimits};
use crate::store::StoreSpec;
use std::time::Duration;

/// What the Lambda and the CLI are configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `TRIAGE_STORE`: where events live (`file:PATH`, `dynamodb:TABLE`, `memory`).
    pub store: Option<StoreSpec>,
    /// `TRIAGE_TABLE`: the table the Lambda uses when `TRIAGE_STORE` is not set.
    pub table: Option<String>,
    /// `TRIAGE_CALLER_HASH_KEY`: the key callers' numbers are hashed with (none: no hash).
    pub caller_hasher: Option<CallerHasher>,
    /// `TRIAGE_RETENTION_DAYS`, `TRIAGE_DAY_SHARDS`, `TRIAGE_DYNAMODB_CLIENT`: the DynamoDB
    /// store's options.
    pub dynamo: DynamoSettings,
    /// `TRIAGE_DDB_ATTEMPT_TIMEOUT_MS`, `TRIAGE_DDB_OPERATION_TIMEOUT_MS`: the SDK's limits.
    pub sdk: SdkLimits,
    /// `TRIAGE_TURN_BUDGET_MS`: the time budget of one turn's store work.
    pub turn_budget: TurnBudget,
    /// `TRIAGE_CONNECT_INSTANCE_ARN`: the instance whose contact events are recorded (the
    /// template sets it; unset, every instance's are).
    pub connect_instance_arn: Option<String>,
    /// `TRIAGE_AUDIO_STREAM_PREFIX`: the instance's media streams prefix; a call's audio is
    /// recorded only from a stream with it (unset: any Kinesis video stream). The template
    /// sets it when AudioStreaming is on.
    pub audio_stream_prefix: Option<String>,
    /// `TRIAGE_WARM_CALLS`: calls whose histories the Lambda keeps between invocations
    /// (0..=10,000; default [`crate::store::warm::DEFAULT_WARM_CALLS`]; 0 turns it off).
    /// Only `bootstrap` uses it.
    pub warm_calls: usize,
    /// `TRIAGE_QUESTIONNAIRE_REFRESH_SECONDS`: how often a process looks for a newly
    /// activated questionnaire version, at most (1..=3,600; default 60;
    /// [`crate::questionnaires`]).
    pub questionnaire_refresh: Duration,
    /// `TRIAGE_FHIR_BASE`: the canonical base URL of the FHIR resources `triage` writes
    /// (default [`crate::read::export::DEFAULT_FHIR_BASE`], a reserved example domain).
    pub fhir_base: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            store: None,
            table: None,
            caller_hasher: None,
            dynamo: DynamoSettings::default(),
            sdk: SdkLimits::default(),
            turn_budget: TurnBudget::default(),
            connect_instance_arn: None,
            audio_stream_prefix: None,
            warm_calls: crate::store::warm::DEFAULT_WARM_CALLS,
            questionnaire_refresh: crate::questionnaires::DEFAULT_REFRESH,
            fhir_base: crate::read::export::DEFAULT_FHIR_BASE.to_string(),
        }
    }
}

/// Time budget for one turn's store work. Connect waits at most 8 s for a Lambda
/// (`InvocationTimeLimitSeconds` is 1..=8); 5 s leaves room for a cold start and the trip
/// back to Connect, so the caller always hears our apology rather than Connect's error.
pub const DEFAULT_TURN_BUDGET: Duration = Duration::from_secs(5);

/// The time budget of one turn ([`DEFAULT_TURN_BUDGET`] unless set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnBudget(pub Duration);

impl Default for TurnBudget {
    fn default() -> Self {
        TurnBudget(DEFAULT_TURN_BUDGET)
    }
}

/// A setting that cannot be used: which, what it holds, and what it takes.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{name}={value:?} is not a whole number in {min}..={max}")]
    Number {
        name: &'static str,
        value: String,
        min: u64,
        max: u64,
    },
    #[error("TRIAGE_STORE={0:?}: use file:PATH, dynamodb:TABLE or memory")]
    Store(String),
    #[error("TRIAGE_DYNAMODB_CLIENT={0:?}: use direct (the default) or sdk")]
    Writes(String),
    #[error("TRIAGE_CALLER_HASH_KEY")]
    CallerKey(#[source] CallerKeyError),
    #[error("TRIAGE_FHIR_BASE={0:?}: use an absolute https:// (or http://) URL without spaces, e.g. https://fhir.health.example/triage")]
    FhirBase(String),
}

impl Settings {
    /// Reads the settings from the process environment. The only place the crate reads it.
    pub fn from_env() -> Result<Settings, SettingsError> {
        Settings::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `var` (a name -> value lookup), for tests.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingsError> {
        let set = |name: &str| var(name).filter(|v| !v.is_empty());
        let number = |name: &'static str, min: u64, max: u64| -> Result<Option<u64>, _> {
            match set(name) {
                None => Ok(None),
                Some(value) => match value.trim().parse::<u64>() {
                    Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                    _ => Err(SettingsError::Number {
                        name,
                        value,
                        min,
                        max,
                    }),
                },
            }
        };
        let ms = |name: &'static str, default: Duration| -> Result<Duration, SettingsError> {
            Ok(number(name, 1, 3_600_000)?.map_or(default, Duration::from_millis))
        };
        let defaults = Settings::default();
        let store = match set("TRIAGE_STORE") {
            Some(s) => Some(StoreSpec::parse(&s).map_err(|_| SettingsError::Store(s))?),
            None => None,
        };
        let caller_hasher = match set("TRIAGE_CALLER_HASH_KEY") {
            Some(key) => Some(CallerHasher::new(key.as_bytes()).map_err(SettingsError::CallerKey)?),
            None => None,
        };
        Ok(Settings {
            store,
            table: set("TRIAGE_TABLE"),
            caller_hasher,
            dynamo: DynamoSettings {
                retention_days: number("TRIAGE_RETENTION_DAYS", 1, 36_500)?
                    .map_or(defaults.dynamo.retention_days, |n| n as u32),
                day_shards: number("TRIAGE_DAY_SHARDS", 1, 1_000)?
                    .map_or(defaults.dynamo.day_shards, |n| n as u32),
                direct_client: match set("TRIAGE_DYNAMODB_CLIENT").as_deref().map(str::trim) {
                    None | Some("direct") => true,
                    Some("sdk") => false,
                    Some(other) => return Err(SettingsError::Writes(other.to_string())),
                },
            },
            sdk: SdkLimits {
                attempt_timeout: ms(
                    "TRIAGE_DDB_ATTEMPT_TIMEOUT_MS",
                    defaults.sdk.attempt_timeout,
                )?,
                operation_timeout: ms(
                    "TRIAGE_DDB_OPERATION_TIMEOUT_MS",
                    defaults.sdk.operation_timeout,
                )?,
            },
            turn_budget: TurnBudget(ms("TRIAGE_TURN_BUDGET_MS", defaults.turn_budget.0)?),
            connect_instance_arn: set("TRIAGE_CONNECT_INSTANCE_ARN"),
            audio_stream_prefix: set("TRIAGE_AUDIO_STREAM_PREFIX"),
            warm_calls: number("TRIAGE_WARM_CALLS", 0, 10_000)?
                .map_or(defaults.warm_calls, |n| n as usize),
            questionnaire_refresh: number("TRIAGE_QUESTIONNAIRE_REFRESH_SECONDS", 1, 3_600)?
                .map_or(defaults.questionnaire_refresh, Duration::from_secs),
            fhir_base: match set("TRIAGE_FHIR_BASE") {
                None => defaults.fhir_base,
                Some(b)
                    if (b.starts_with("https://") || b.starts_with("http://"))
                        && !b.contains(char::is_whitespace)
                        && !b.contains(['|', '#', '?']) =>
                {
                    b
                }
                Some(b) => return Err(SettingsError::FhirBase(b)),
            },
        })
    }

    /// The DynamoDB store's options these settings give.
    pub fn dynamo_options(&self) -> DynamoOptions {
        DynamoOptions::from_settings(&self.dynamo, self.sdk)
    }

    /// The store the Lambda uses: `TRIAGE_STORE`, else `dynamodb:` + `TRIAGE_TABLE` (default
    /// `triage-events`).
    pub fn lambda_store(&self) -> StoreSpec {
        self.store.clone().unwrap_or_else(|| {
            StoreSpec::DynamoDb(
                self.table
                    .clone()
                    .unwrap_or_else(|| "triage-events".to_string()),
            )
        })
    }
}

/// A DynamoDB client with the SDK limits of the environment's settings (the defaults when
/// the settings cannot be read), for tools and tests that build one by hand; `scripts/
/// test-moto.sh` raises the limits this way for moto.
pub async fn dynamodb_client_from_env() -> aws_sdk_dynamodb::Client {
    let limits = Settings::from_env().map(|s| s.sdk).unwrap_or_default();
    crate::store::dynamodb::client(&limits).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_vars(|k| vars.get(k).cloned())
    }

    #[test]
    fn nothing_set_gives_the_production_defaults() {
        let s = from(&[]).expect("defaults");
        assert_eq!(s.dynamo, DynamoSettings::default());
        assert_eq!(s.sdk, SdkLimits::default());
        assert_eq!(s.turn_budget.0, Duration::from_secs(5));
        assert!(s.caller_hasher.is_none());
        assert_eq!(
            s.lambda_store(),
            StoreSpec::DynamoDb("triage-events".into())
        );
    }

    #[test]
    fn every_variable_is_read() {
        let s = from(&[
            ("TRIAGE_STORE", "file:/tmp/e.jsonl"),
            ("TRIAGE_CALLER_HASH_KEY", "0123456789abcdef-key"),
            ("TRIAGE_RETENTION_DAYS", "30"),
            ("TRIAGE_DAY_SHARDS", "4"),
            ("TRIAGE_DDB_ATTEMPT_TIMEOUT_MS", "4000"),
            ("TRIAGE_DDB_OPERATION_TIMEOUT_MS", "8000"),
            ("TRIAGE_TURN_BUDGET_MS", "20000"),
        ])
        .expect("valid");
        assert_eq!(s.store, Some(StoreSpec::File("/tmp/e.jsonl".into())));
        assert!(s.caller_hasher.is_some());
        assert_eq!((s.dynamo.retention_days, s.dynamo.day_shards), (30, 4));
        assert_eq!(s.sdk.attempt_timeout, Duration::from_millis(4000));
        assert_eq!(s.sdk.operation_timeout, Duration::from_millis(8000));
        assert_eq!(s.turn_budget.0, Duration::from_millis(20000));
        let table = from(&[("TRIAGE_TABLE", "calls")]).expect("valid");
        assert_eq!(table.lambda_store(), StoreSpec::DynamoDb("calls".into()));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = from(&[("TRIAGE_DAY_SHARDS", "0")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "TRIAGE_DAY_SHARDS=\"0\" is not a whole number in 1..=1000"
        );
        assert!(from(&[("TRIAGE_STORE", "postgres:x")])
            .unwrap_err()
            .to_string()
            .contains("file:PATH"));
        let key = from(&[("TRIAGE_CALLER_HASH_KEY", "short")]).unwrap_err();
        assert!(std::error::Error::source(&key).is_some(), "{key}");
        assert_eq!(
            from(&[("TRIAGE_DYNAMODB_CLIENT", "fast")])
                .unwrap_err()
                .to_string(),
            "TRIAGE_DYNAMODB_CLIENT=\"fast\": use direct (the default) or sdk"
        );
    }

    #[test]
    fn the_dynamodb_client_is_direct_unless_told() {
        assert!(from(&[]).expect("valid").dynamo.direct_client);
        let on = from(&[("TRIAGE_DYNAMODB_CLIENT", "direct")]).expect("valid");
        assert!(on.dynamo_options().direct_client);
        let off = from(&[("TRIAGE_DYNAMODB_CLIENT", "sdk")]).expect("valid");
        assert!(!off.dynamo_options().direct_client);
    }
}
