//! `$.Path` references to the flow data (`$.External.text`, `$.Attributes.turn`, ...) and
//! deployment placeholders `${Name}`, as found in parameter values.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use crate::error::{invalid, FlowError};

/// Roots of the flow data that `$.` references may use here.
const REFERENCE_ROOTS: [&str; 15] = [
    "External",
    "Lex",
    "LanguageCode",
    "MediaStreams",
    "Attributes",
    "StoredCustomerInput",
    "ContactId",
    "InitialContactId",
    "PreviousContactId",
    "Channel",
    "InstanceARN",
    "InitiationMethod",
    "CustomerEndpoint",
    "SystemEndpoint",
    "Queue",
];

/// `(start, end, path)` of each `$.Path` reference embedded in `text` (a path starts with
/// a letter and runs over letters, digits, `_` and inner dots).
pub(crate) fn scan_references(text: &str) -> Vec<(usize, usize, &str)> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && bytes.get(i + 1) == Some(&b'.') {
            let start = i + 2;
            if bytes.get(start).is_some_and(|b| b.is_ascii_alphabetic()) {
                let mut end = start;
                while end < bytes.len()
                    && (bytes[end].is_ascii_alphanumeric()
                        || bytes[end] == b'_'
                        || bytes[end] == b'.')
                {
                    end += 1;
                }
                while end > start && bytes[end - 1] == b'.' {
                    end -= 1;
                }
                found.push((i, end, &text[start..end]));
                i = end;
                continue;
            }
        }
        i += 1;
    }
    found
}

/// The path when `value` is exactly one reference, e.g. `$.External.text` -> `External.text`.
pub(crate) fn whole_reference(value: &str) -> Option<&str> {
    match scan_references(value).as_slice() {
        [(0, end, path)] if *end == value.len() => Some(path),
        _ => None,
    }
}

/// Refuses references to flow data this interpreter does not have (e.g. `$.Lex.Slots.x`),
/// and `$.External` or `$.Attributes` without a key.
pub(crate) fn check_references(action: &str, text: &str) -> Result<(), FlowError> {
    for (_, _, path) in scan_references(text) {
        let mut parts = path.splitn(2, '.');
        let root = parts.next().unwrap_or_default();
        let rest = parts.next();
        if !REFERENCE_ROOTS.contains(&root) {
            return Err(invalid(
                action,
                &format!(
                    "the reference $.{path} is not understood here (known: {})",
                    REFERENCE_ROOTS.map(|r| format!("$.{r}")).join(", ")
                ),
            ));
        }
        if root == "Lex" {
            let known = matches!(
                rest,
                Some("IntentName" | "IntentConfidence.Score" | "DialogState")
            ) || rest.is_some_and(|r| {
                r.strip_prefix("SessionAttributes.")
                    .is_some_and(|k| !k.is_empty())
            });
            if !known {
                return Err(invalid(
                    action,
                    &format!("the reference $.{path} is not simulated (known: $.Lex.IntentName, $.Lex.IntentConfidence.Score, $.Lex.DialogState, $.Lex.SessionAttributes.KEY)"),
                ));
            }
        }
        if matches!(root, "External" | "Attributes" | "MediaStreams") && rest.is_none() {
            return Err(invalid(
                action,
                &format!("the reference $.{root} needs a key, e.g. $.{root}.name"),
            ));
        }
    }
    Ok(())
}

/// `(start, end, name)` of each `${Name}` placeholder in `text`.
pub(crate) fn scan_placeholders(text: &str) -> Vec<(usize, usize, &str)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = text[from..].find("${") {
        let start = from + offset;
        let Some(close) = text[start + 2..].find('}') else {
            break;
        };
        let end = start + 2 + close + 1;
        let name = &text[start + 2..end - 1];
        if !name.is_empty() {
            found.push((start, end, name));
        }
        from = end;
    }
    found
}

/// Adds the names of the `${Name}` placeholders anywhere in `value` (object keys included).
pub(crate) fn collect_placeholders(value: &Value, into: &mut BTreeSet<String>) {
    match value {
        Value::String(s) => {
            for (_, _, name) in scan_placeholders(s) {
                into.insert(name.to_string());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_placeholders(v, into)),
        Value::Object(map) => {
            for (key, v) in map {
                for (_, _, name) in scan_placeholders(key) {
                    into.insert(name.to_string());
                }
                collect_placeholders(v, into);
            }
        }
        _ => {}
    }
}

/// `text` with each `${Name}` replaced by `params[Name]`.
pub(crate) fn substitute(
    text: &str,
    params: &HashMap<String, String>,
) -> Result<String, FlowError> {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end, name) in scan_placeholders(text) {
        let value = params
            .get(name)
            .ok_or_else(|| FlowError::MissingPlaceholder {
                name: name.to_string(),
            })?;
        out.push_str(&text[last..start]);
        out.push_str(value);
        last = end;
    }
    out.push_str(&text[last..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_are_found_whole_and_embedded() {
        assert_eq!(whole_reference("$.External.text"), Some("External.text"));
        assert_eq!(whole_reference(" $.External.text"), None);
        let found: Vec<&str> = scan_references("Hola $.Attributes.name. $.1 $ .x $.Channel")
            .into_iter()
            .map(|(_, _, path)| path)
            .collect();
        assert_eq!(found, ["Attributes.name", "Channel"]);
        assert!(check_references("a", "$.Attributes").is_err());
        assert!(check_references("a", "$.Lex.Slots.x").is_err());
        assert!(check_references("a", "$.Lex.SessionAttributes").is_err());
        assert!(check_references("a", "$.Lex.IntentConfidence.Score").is_ok());
        assert!(check_references("a", "$.Lex.SessionAttributes.input_mode").is_ok());
        assert!(check_references("a", "$.Nothing.x").is_err());
        assert!(check_references("a", "$.Queue.ARN and $.StoredCustomerInput").is_ok());
    }

    #[test]
    fn placeholders_are_collected_and_substituted() {
        let mut names = BTreeSet::new();
        collect_placeholders(
            &json!({"${Key}": ["x ${A} y ${B}", 5, "${}", "${open"]}),
            &mut names,
        );
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(names, ["A", "B", "Key"]);
        let params = HashMap::from([("A".to_string(), "1".to_string())]);
        assert_eq!(substitute("<${A}>", &params).ok().as_deref(), Some("<1>"));
        assert!(matches!(
            substitute("${B}", &params),
            Err(FlowError::MissingPlaceholder { name }) if name == "B"
        ));
    }
}
