//! Questionnaires as data: the JSON Schema in schemas/ and `triage questionnaire check`
//! agree on the seed and on broken documents, and the CLI names each problem's path.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn seed() -> Value {
    let text = std::fs::read_to_string(root().join("crates/triage-domain/src/covid19.v1.json"))
        .expect("the seed's questionnaire");
    serde_json::from_str(&text).expect("JSON")
}

/// Broken copies of the seed, each with the path `triage questionnaire check` must name.
fn broken() -> Vec<(&'static str, Value, &'static str)> {
    let mut out = Vec::new();
    let mut d = seed();
    d["questions"][0]["wieght"] = 3.into();
    out.push(("unknown field", d, "$.questions[0].wieght"));
    let mut d = seed();
    if let Some(t) = d["questions"][2]["text"].as_object_mut() {
        t.remove("en");
    }
    out.push(("missing translation", d, "$.questions[2].text"));
    let mut d = seed();
    d["texts"]["monitor"]["es"] = "".into();
    out.push(("empty text", d, "$.texts.monitor.es"));
    let mut d = seed();
    d["id"] = "COVID 19".into();
    out.push(("bad id", d, "$.id"));
    let mut d = seed();
    d["monitor_threshold"] = 0.into();
    out.push(("monitor 0", d, "$.monitor_threshold"));
    let mut d = seed();
    d["questions"][1]["text"]["en"] = "x".repeat(3_001).into();
    out.push(("prompt too long", d, "$.questions[1].text.en"));
    out
}

#[test]
fn the_schema_takes_the_seed_and_refuses_what_the_checker_refuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = vec![];
    let seed_path = dir.path().join("seed.json");
    std::fs::write(&seed_path, seed().to_string()).expect("write");
    for (i, (what, doc, _)) in broken().into_iter().enumerate() {
        let p = dir.path().join(format!("broken-{i}.json"));
        std::fs::write(&p, doc.to_string()).expect("write");
        files.push((what, p));
    }
    let script = r#"
import json, sys
from jsonschema import Draft202012Validator
schema = json.load(open(sys.argv[1]))
Draft202012Validator.check_schema(schema)
v = Draft202012Validator(schema)
for path in sys.argv[2:]:
    errors = sorted(v.iter_errors(json.load(open(path))), key=lambda e: list(e.absolute_path))
    print(json.dumps({"file": path, "errors": [e.message for e in errors]}))
"#;
    let mut cmd = Command::new(crate::helpers::pyenv_python());
    cmd.arg("-c")
        .arg(script)
        .arg(root().join("schemas/questionnaire.schema.json"))
        .arg(&seed_path);
    for (_, p) in &files {
        cmd.arg(p);
    }
    let out = cmd.output().expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(results.len(), files.len() + 1);
    assert_eq!(
        results[0]["errors"],
        Value::Array(vec![]),
        "the seed against the schema"
    );
    for ((what, _), r) in files.iter().zip(&results[1..]) {
        assert!(
            !r["errors"].as_array().expect("errors").is_empty(),
            "the schema took the {what} document"
        );
    }
}

#[test]
fn questionnaire_check_names_each_problem_and_refuses_huge_files() {
    let triage = |file: &Path| {
        Command::new(env!("CARGO_BIN_EXE_triage"))
            .args(["questionnaire", "check"])
            .arg(file)
            .output()
            .expect("run triage")
    };
    let out = triage(&root().join("crates/triage-domain/src/covid19.v1.json"));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("covid19@1 can be published"));
    let dir = tempfile::tempdir().expect("tempdir");
    for (what, doc, path) in broken() {
        let file = dir.path().join("q.json");
        std::fs::write(&file, serde_json::to_string_pretty(&doc).expect("JSON")).expect("write");
        let out = triage(&file);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        let line = err
            .lines()
            .find(|l| l.contains(&format!(": {path}:")))
            .unwrap_or_else(|| panic!("{what}: no problem at {path}:\n{err}"));
        // FILE:LINE: PATH: what; fix
        let after = line
            .strip_prefix(&format!("{}:", file.display()))
            .unwrap_or("");
        assert!(
            after
                .split(':')
                .next()
                .is_some_and(|n| n.parse::<usize>().is_ok()),
            "{what}: no line number: {line}"
        );
        assert!(line.contains("; "), "{what}: no fix: {line}");
    }
    let huge = dir.path().join("huge.json");
    std::fs::write(&huge, vec![b' '; 10 * 1024 * 1024]).expect("write");
    let out = triage(&huge);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("over 262144 bytes"));
}
