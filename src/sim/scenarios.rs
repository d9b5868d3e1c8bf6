//! The line's scenarios (`connect/scenarios.json`): one file, run by the simulator in the
//! tests (`tests/it/scenarios.rs`) and turned into Amazon Connect's native test cases by
//! [`crate::sim::connect_tests`] (`triage connect-tests`).
//!
//! A scenario is a caller: the call's language, the keys pressed one prompt after another
//! (`1` yes, `0` no, `*` leave, `t` no key at all, anything else an invalid key), the state
//! of the hospital's queue, and what must come of it.

use crate::app::App;
use crate::flow::{CallEnd, CallReport, Caller, CallerInput, CenterState, Contact, Flow, Voice};
use crate::sim::call::{parse_answers, run_call, AnswersError, Press, LOCAL_INSTANCE_ARN};
use crate::store::memory::MemoryStore;
use async_trait::async_trait;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// `connect/scenarios.json`, embedded at build time.
pub const SCENARIOS_JSON: &str = include_str!("../../connect/scenarios.json");

/// The scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    #[serde(rename = "_about")]
    pub about: String,
    pub scenarios: Vec<Scenario>,
}

/// One caller of the line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Unique in the file; the native test case is named after it.
    pub name: String,
    /// The call's `lang` contact attribute (`es`, `en`).
    pub lang: String,
    /// The keys, one entry per prompt: `1`, `0`, `*`, `t` (no key), or an invalid key.
    pub keys: Vec<String>,
    /// `open` (default) or `closed`: the hospital queue's hours of operation.
    #[serde(default)]
    pub hospital_hours: Option<String>,
    /// `available` (default) or `full`: the hospital queue's capacity.
    #[serde(default)]
    pub hospital_queue: Option<String>,
    pub expect: Expect,
}

/// What must come of a scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The `triage_outcome` attribute the agent and the contact record get.
    pub outcome: String,
    /// `transferred`, `disconnected` or `hung up`.
    pub end: String,
    /// Words the caller must hear somewhere in the call.
    pub hears: Vec<String>,
}

/// A scenario file that is not one.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("the scenario file is not valid: {0} (see connect/scenarios.json for the format)")]
    Json(#[from] serde_json::Error),
    #[error("scenario {name:?}: {source}")]
    Keys {
        name: String,
        #[source]
        source: AnswersError,
    },
    #[error("scenario {name:?}: {field} is {value:?}; use {allowed}")]
    Value {
        name: String,
        field: &'static str,
        value: String,
        allowed: &'static str,
    },
    #[error("two scenarios are named {0:?}: names must be unique (they name the test cases)")]
    Duplicate(String),
    #[error("the scenario file has no scenarios")]
    Empty,
    #[error("scenario {name:?} does not run through the flow: {message}")]
    Run { name: String, message: String },
}

impl ScenarioFile {
    /// Reads and checks a scenario file.
    pub fn from_json(text: &str) -> Result<Self, ScenarioError> {
        let file: ScenarioFile = serde_json::from_str(text)?;
        if file.scenarios.is_empty() {
            return Err(ScenarioError::Empty);
        }
        let mut names = std::collections::HashSet::new();
        for s in &file.scenarios {
            if !names.insert(s.name.as_str()) {
                return Err(ScenarioError::Duplicate(s.name.clone()));
            }
            s.presses()?;
            s.center()?;
            let check = |field, value: &str, allowed: &[&str], message: &'static str| {
                if allowed.contains(&value) {
                    Ok(())
                } else {
                    Err(ScenarioError::Value {
                        name: s.name.clone(),
                        field,
                        value: value.to_string(),
                        allowed: message,
                    })
                }
            };
            check(
                "expect.end",
                &s.expect.end,
                &["transferred", "disconnected", "hung up"],
                "transferred, disconnected or hung up",
            )?;
            check("lang", &s.lang, &["es", "en"], "es or en")?;
        }
        Ok(file)
    }

    /// The embedded `connect/scenarios.json`.
    pub fn embedded() -> Result<Self, ScenarioError> {
        Self::from_json(SCENARIOS_JSON)
    }
}

impl Scenario {
    /// The keys as the simulator presses them.
    pub fn presses(&self) -> Result<Vec<Press>, ScenarioError> {
        parse_answers(&self.keys.join(",")).map_err(|source| ScenarioError::Keys {
            name: self.name.clone(),
            source,
        })
    }

    /// The hospital queue's state.
    pub fn center(&self) -> Result<CenterState, ScenarioError> {
        let hours_open = match self.hospital_hours.as_deref() {
            None | Some("open") => true,
            Some("closed") => false,
            Some(other) => {
                return Err(ScenarioError::Value {
                    name: self.name.clone(),
                    field: "hospital_hours",
                    value: other.to_string(),
                    allowed: "open or closed",
                })
            }
        };
        let queue_at_capacity = match self.hospital_queue.as_deref() {
            None | Some("available") => false,
            Some("full") => true,
            Some(other) => {
                return Err(ScenarioError::Value {
                    name: self.name.clone(),
                    field: "hospital_queue",
                    value: other.to_string(),
                    allowed: "available or full",
                })
            }
        };
        Ok(CenterState {
            hours_open,
            queue_at_capacity,
        })
    }

    /// A file-name-safe form of the name: `star-at-question-1`.
    pub fn slug(&self) -> String {
        let mut out = String::new();
        for c in self.name.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            } else if !out.ends_with('-') && !out.is_empty() {
                out.push('-');
            }
        }
        out.trim_end_matches('-').to_string()
    }
}

/// One prompt that waited for keys, and what the caller did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// What the caller heard since the previous key (the last entry is the prompt that
    /// asked for this one).
    pub heard: Vec<String>,
    pub press: Press,
}

/// A scenario run through the simulator.
#[derive(Debug, Clone)]
pub struct ScenarioRun {
    pub report: CallReport,
    /// Every prompt that asked for keys, in order.
    pub turns: Vec<Turn>,
    /// What the caller heard after the last key.
    pub heard_after: Vec<String>,
    /// The voices set, in order.
    pub voices: Vec<Voice>,
    /// The hospital queue's state the call met.
    pub center: CenterState,
}

impl ScenarioRun {
    /// Everything heard, in order.
    pub fn heard(&self) -> impl Iterator<Item = &str> {
        self.turns
            .iter()
            .flat_map(|t| t.heard.iter())
            .chain(self.heard_after.iter())
            .map(String::as_str)
    }

    /// How the call ended, in the scenario file's words.
    pub fn end(&self) -> &'static str {
        match self.report.end {
            CallEnd::Transferred { .. } => "transferred",
            CallEnd::Disconnected => "disconnected",
            CallEnd::HungUp => "hung up",
        }
    }
}

/// A caller that presses a scenario's keys and writes down each prompt.
struct Recorder {
    script: std::vec::IntoIter<Press>,
    heard: Vec<String>,
    turns: Vec<Turn>,
    voices: Vec<Voice>,
}

#[async_trait]
impl Caller for Recorder {
    async fn hear(&mut self, text: &str) {
        self.heard.push(text.to_string());
    }

    async fn voice(&mut self, voice: &Voice) {
        self.voices.push(voice.clone());
    }

    async fn press(&mut self, _timeout: Duration, max_digits: usize) -> CallerInput {
        let heard = std::mem::take(&mut self.heard);
        match self.script.next() {
            Some(press) => {
                let input = match &press {
                    Press::Keys(k) => {
                        CallerInput::Digits(k.chars().take(max_digits.max(1)).collect())
                    }
                    Press::Say(words) => CallerInput::Words(words.clone()),
                    Press::Timeout => CallerInput::Timeout,
                };
                self.turns.push(Turn { heard, press });
                input
            }
            None => {
                self.heard = heard;
                CallerInput::HangUp
            }
        }
    }
}

/// Runs `scenario` through `flow` with a fresh in-memory Lambda, as `triage call` does.
pub async fn run_scenario(flow: &Flow, scenario: &Scenario) -> Result<ScenarioRun, ScenarioError> {
    let app = App::new(Arc::new(MemoryStore::new()));
    let mut contact = Contact::voice(uuid::Uuid::now_v7().to_string(), LOCAL_INSTANCE_ARN);
    contact
        .attributes
        .insert("lang".into(), scenario.lang.clone());
    let center = scenario.center()?;
    contact.center = center;
    let mut caller = Recorder {
        script: scenario.presses()?.into_iter(),
        heard: Vec::new(),
        turns: Vec::new(),
        voices: Vec::new(),
    };
    let report = run_call(&app, flow, &contact, &mut caller)
        .await
        .map_err(|e| ScenarioError::Run {
            name: scenario.name.clone(),
            message: e.to_string(),
        })?;
    Ok(ScenarioRun {
        report,
        turns: caller.turns,
        heard_after: caller.heard,
        voices: caller.voices,
        center,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_file_reads() {
        let file = ScenarioFile::embedded().expect("connect/scenarios.json");
        assert!(file.scenarios.len() >= 8);
    }

    #[test]
    fn bad_files_are_refused_with_the_scenario_named() {
        let one = |extra: &str| {
            format!(
                r#"{{"_about":"","scenarios":[{{"name":"a","lang":"es","keys":["1"],{extra}"expect":{{"outcome":"x","end":"disconnected","hears":[]}}}}]}}"#
            )
        };
        assert!(ScenarioFile::from_json(&one("")).is_ok());
        let e = ScenarioFile::from_json(&one(r#""hospital_hours":"shut","#)).unwrap_err();
        assert!(e.to_string().contains("open or closed"), "{e}");
        let e = ScenarioFile::from_json(&one(r#""hospital_queue":"busy","#)).unwrap_err();
        assert!(e.to_string().contains("available or full"), "{e}");
        let e = ScenarioFile::from_json(&one(r#""colour":"red","#)).unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
        let e = ScenarioFile::from_json(r#"{"_about":"","scenarios":[]}"#).unwrap_err();
        assert!(matches!(e, ScenarioError::Empty));
        let two = r#"{"_about":"","scenarios":[
            {"name":"a","lang":"es","keys":["1"],"expect":{"outcome":"x","end":"disconnected","hears":[]}},
            {"name":"a","lang":"es","keys":["1"],"expect":{"outcome":"x","end":"disconnected","hears":[]}}]}"#;
        assert!(matches!(
            ScenarioFile::from_json(two).unwrap_err(),
            ScenarioError::Duplicate(_)
        ));
        let bad_lang = one("").replace(r#""lang":"es""#, r#""lang":"fr""#);
        assert!(ScenarioFile::from_json(&bad_lang)
            .unwrap_err()
            .to_string()
            .contains("es or en"));
        let bad_end = one("").replace("disconnected", "vanished");
        assert!(ScenarioFile::from_json(&bad_end)
            .unwrap_err()
            .to_string()
            .contains("transferred"));
        let empty_key = one("").replace(r#"["1"]"#, r#"["1",""]"#);
        assert!(matches!(
            ScenarioFile::from_json(&empty_key).unwrap_err(),
            ScenarioError::Keys { .. }
        ));
    }

    #[test]
    fn slugs_are_file_names() {
        let file = ScenarioFile::embedded().expect("embedded");
        let slugs: Vec<String> = file.scenarios.iter().map(Scenario::slug).collect();
        assert!(
            slugs.contains(&"star-at-question-1".to_string()),
            "{slugs:?}"
        );
        assert!(
            slugs.contains(&"an-invalid-key-then-a-valid-one".to_string()),
            "{slugs:?}"
        );
        for s in &slugs {
            assert!(
                s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "{s}"
            );
        }
    }
}
