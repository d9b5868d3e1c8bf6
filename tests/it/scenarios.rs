//! The line's scenarios (`connect/scenarios.json`), each run through the flow that
//! `template.yaml` deploys with the in-process Lambda, as `triage call` runs them: how the
//! call ends, what the caller hears, and the triage the agent and contact record get. The
//! same file is Amazon Connect's native test cases (`connect/test-cases/`, written by
//! `triage connect-tests`): they must be what the generator writes today.

use connect_triage::sim::call::triage_flow;
use connect_triage::sim::connect_tests::{check_content, generate, Deployment};
use connect_triage::sim::scenarios::{run_scenario, ScenarioFile};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

#[tokio::test]
async fn every_scenario_of_the_line_runs_as_the_file_says() {
    let file = ScenarioFile::embedded().expect("connect/scenarios.json reads");
    assert!(
        file.scenarios.len() >= 8,
        "the issue's scenarios are all there"
    );
    let flow = triage_flow().expect("the deployed flow");
    for s in &file.scenarios {
        let run = run_scenario(&flow, s)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", s.name));
        let heard: Vec<&str> = run.heard().collect();
        assert_eq!(run.end(), s.expect.end, "{}: {heard:?}", s.name);
        assert_eq!(
            run.report
                .attributes
                .get("triage_outcome")
                .map(String::as_str),
            Some(s.expect.outcome.as_str()),
            "{}: {:?}",
            s.name,
            run.report.attributes
        );
        for words in &s.expect.hears {
            assert!(
                heard.iter().any(|h| h.contains(words.as_str())),
                "{}: no {words:?} in {heard:?}",
                s.name
            );
        }
        assert!(run.report.voice.is_some(), "{}: the voice was set", s.name);
        assert_eq!(
            run.turns.len(),
            s.keys.len(),
            "{}: one prompt waited for each key",
            s.name
        );
    }
}

fn committed() -> BTreeMap<String, Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("connect/test-cases");
    std::fs::read_dir(&dir)
        .expect("connect/test-cases")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let name = p.file_stem().expect("stem").to_string_lossy().to_string();
            let text = std::fs::read_to_string(&p).expect("read");
            (name, serde_json::from_str(&text).expect("json"))
        })
        .collect()
}

#[tokio::test]
async fn the_committed_native_test_cases_are_what_triage_connect_tests_writes() {
    let flow = triage_flow().expect("flow");
    let file = ScenarioFile::embedded().expect("scenarios");
    let cases = generate(&flow, &file, &Deployment::placeholders())
        .await
        .expect("generate");
    let generated: BTreeMap<String, Value> =
        cases.into_iter().map(|c| (c.slug, c.request)).collect();
    let on_disk = committed();
    assert_eq!(
        on_disk.keys().collect::<Vec<_>>(),
        generated.keys().collect::<Vec<_>>(),
        "connect/test-cases/ holds one file per scenario: run triage connect-tests --out connect/test-cases, then scripts/gen-template.py"
    );
    for (name, request) in &generated {
        assert_eq!(
            &on_disk[name], request,
            "connect/test-cases/{name}.json is stale: run triage connect-tests --out connect/test-cases, then scripts/gen-template.py"
        );
        let content: Value =
            serde_json::from_str(request["Content"].as_str().expect("string")).expect("json");
        assert_eq!(check_content(&content), Vec::<String>::new(), "{name}");
    }
}
