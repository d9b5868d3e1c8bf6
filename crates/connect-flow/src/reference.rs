//! Connect's flow-language reference as data: `reference/actions.json`, written from AWS's
//! action pages (each entry cites its page). The one definition of what an action takes:
//! [`check`] holds every action of a flow to it when the flow is parsed, before the
//! simulator reads the parameters it runs. A flow that passes names only parameters the
//! reference lists, gives every required one, gives static values where Connect needs them
//! (a `$.` reference where the page says "Must be defined statically" is refused), uses
//! listed values, and defines every error branch the page says must always be defined.

use crate::error::FlowError;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The reference file, embedded at build time.
pub const REFERENCE_JSON: &str = include_str!("../reference/actions.json");

/// The whole reference: one entry per action type.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    /// What the file is and where it comes from.
    #[serde(rename = "_about")]
    pub about: String,
    /// Action type -> its description.
    pub actions: BTreeMap<String, ActionRef>,
}

/// What one action type takes, as its reference page says.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRef {
    /// The action's reference page.
    pub doc: String,
    /// Its parameters.
    pub parameters: BTreeMap<String, ParamRef>,
    /// Its error branches.
    pub errors: ErrorsRef,
    /// Whether it has `Transitions.Conditions`.
    pub conditions: bool,
    /// Whether it has a success `NextAction`.
    pub next_action: bool,
}

/// One parameter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamRef {
    /// Must the action give it?
    pub required: bool,
    /// May its value be a `$.` reference (resolved when the action runs)?
    pub dynamic: bool,
    /// The literal values allowed, when the page lists them.
    #[serde(default)]
    pub values: Vec<String>,
    /// For an object parameter: its fields.
    #[serde(default)]
    pub fields: BTreeMap<String, ParamRef>,
    /// For an object whose keys are free (string values).
    #[serde(default)]
    pub map: bool,
    /// The page's own caveat, or where the page was silent.
    #[serde(default)]
    pub note: Option<String>,
}

/// The error branches of an action.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorsRef {
    /// Branches that must always be defined.
    pub required: Vec<String>,
    /// Every `ErrorType` the page lists.
    pub allowed: Vec<String>,
}

/// The embedded reference. A broken file is a build defect, caught by this crate's tests;
/// should it ever happen at run time, every flow is refused with the reason.
pub fn reference() -> Result<&'static Reference, &'static str> {
    static REFERENCE: OnceLock<Result<Reference, String>> = OnceLock::new();
    REFERENCE
        .get_or_init(|| serde_json::from_str(REFERENCE_JSON).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(String::as_str)
}

/// Holds one action (its type, parameters and transitions) to the reference.
pub(crate) fn check(
    id: &str,
    kind: &str,
    parameters: &Map<String, Value>,
    next_action: bool,
    errors: &[&str],
    conditions: bool,
) -> Result<(), FlowError> {
    let reference = reference().map_err(|why| FlowError::InvalidParameter {
        action: id.to_string(),
        problem: format!("the embedded flow-language reference does not read: {why}"),
    })?;
    let Some(action) = reference.actions.get(kind) else {
        return Err(FlowError::Unsupported {
            id: id.to_string(),
            kind: kind.to_string(),
        });
    };
    let bad = |problem: String| FlowError::InvalidParameter {
        action: id.to_string(),
        problem: format!("{problem} (Connect's reference: {})", action.doc),
    };
    check_object(parameters, &action.parameters, "", &bad)?;
    for required in &action.errors.required {
        if !errors.contains(&required.as_str()) {
            return Err(FlowError::MissingErrorBranch {
                action: id.to_string(),
                branch: required.clone(),
                doc: action.doc.clone(),
            });
        }
    }
    if let Some(unknown) = errors
        .iter()
        .find(|e| !action.errors.allowed.iter().any(|a| a == *e))
    {
        return Err(bad(format!(
            "ErrorType {unknown:?} is not one {kind} has (it has: {})",
            action.errors.allowed.join(", ")
        )));
    }
    if conditions && !action.conditions {
        return Err(bad(format!("{kind} has no Conditions; remove them")));
    }
    if next_action && !action.next_action {
        return Err(bad(format!(
            "{kind} has no NextAction: the contact does not go on from it"
        )));
    }
    Ok(())
}

fn check_object(
    given: &Map<String, Value>,
    spec: &BTreeMap<String, ParamRef>,
    path: &str,
    bad: &dyn Fn(String) -> FlowError,
) -> Result<(), FlowError> {
    for (name, value) in given {
        let here = format!("{path}{name}");
        let Some(param) = spec.get(name) else {
            let known: Vec<&str> = spec.keys().map(String::as_str).collect();
            return Err(bad(format!(
                "{here} is not a parameter Connect knows here (it knows: {}); remove it or fix its name",
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            )));
        };
        check_value(value, param, &here, bad)?;
    }
    for (name, param) in spec {
        if param.required && !given.contains_key(name) {
            return Err(bad(format!("the {path}{name} parameter is required")));
        }
    }
    Ok(())
}

fn check_value(
    value: &Value,
    param: &ParamRef,
    here: &str,
    bad: &dyn Fn(String) -> FlowError,
) -> Result<(), FlowError> {
    match value {
        Value::Object(fields) if param.map => {
            for (key, v) in fields {
                if !matches!(v, Value::String(_) | Value::Number(_)) {
                    return Err(bad(format!("{here}.{key} must be a string")));
                }
            }
            Ok(())
        }
        Value::Object(fields) if !param.fields.is_empty() => {
            check_object(fields, &param.fields, &format!("{here}."), bad)
        }
        Value::String(text) => {
            let dynamic = text.contains("$.");
            if dynamic && !param.dynamic {
                return Err(bad(format!(
                    "{here} must be defined statically in Connect, not {text:?}"
                )));
            }
            // Deployment placeholders (`${Name}`) and references are checked once resolved.
            let literal = !dynamic && !text.contains("${");
            if literal && !param.values.is_empty() && !param.values.iter().any(|v| v == text) {
                return Err(bad(format!(
                    "{here} is {text:?}; Connect takes {}",
                    param.values.join(", ")
                )));
            }
            Ok(())
        }
        // Numbers and other shapes are the simulator's parsing to judge (it tolerates
        // numbers where Connect writes strings, and names the wrong type otherwise).
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SUPPORTED_ACTIONS;

    #[test]
    fn the_reference_reads_and_describes_every_action_the_simulator_runs() {
        let r = reference().expect("reference/actions.json reads");
        // Every action the simulator runs is described; the reference may describe more
        // (actions a flow may be checked for before the simulator learns to run them).
        for kind in SUPPORTED_ACTIONS {
            assert!(
                r.actions.contains_key(kind),
                "{kind} is not in reference/actions.json"
            );
        }
        for (kind, action) in &r.actions {
            assert!(
                action
                    .doc
                    .starts_with("https://docs.aws.amazon.com/connect/"),
                "{kind}: cite the reference page"
            );
            for required in &action.errors.required {
                assert!(
                    action.errors.allowed.contains(required),
                    "{kind}: {required}"
                );
            }
        }
    }
}
