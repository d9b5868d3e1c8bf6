//! The line's scenarios (`connect/scenarios.json`), each run through the flow that
//! `template.yaml` deploys with the in-process Lambda, as `triage call` runs them: how the
//! call ends, what the caller hears, and the triage the agent and contact record get.

use connect_triage::app::App;
use connect_triage::flow::{CallEnd, CenterState, Contact};
use connect_triage::sim::call::{
    parse_answers, run_call, triage_flow, TerminalCaller, LOCAL_INSTANCE_ARN,
};
use connect_triage::store::memory::MemoryStore;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(rename = "_about")]
    _about: String,
    scenarios: Vec<Scenario>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    name: String,
    lang: String,
    keys: Vec<String>,
    #[serde(default)]
    hospital_hours: Option<String>,
    #[serde(default)]
    hospital_queue: Option<String>,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    outcome: String,
    end: String,
    hears: Vec<String>,
}

#[tokio::test]
async fn every_scenario_of_the_line_runs_as_the_file_says() {
    let file: File = serde_json::from_str(include_str!("../../connect/scenarios.json"))
        .expect("connect/scenarios.json reads");
    assert!(
        file.scenarios.len() >= 8,
        "the issue's scenarios are all there"
    );
    let flow = triage_flow().expect("the deployed flow");
    for s in file.scenarios {
        let app = App::new(Arc::new(MemoryStore::new()));
        let mut contact = Contact::voice(uuid::Uuid::now_v7().to_string(), LOCAL_INSTANCE_ARN);
        contact.attributes.insert("lang".into(), s.lang.clone());
        contact.center = CenterState {
            hours_open: s.hospital_hours.as_deref() != Some("closed"),
            queue_at_capacity: s.hospital_queue.as_deref() == Some("full"),
        };
        let keys = parse_answers(&s.keys.join(",")).expect("keys");
        let mut heard = Vec::new();
        let report = {
            let mut caller = TerminalCaller::scripted(keys, &mut heard);
            run_call(&app, &flow, &contact, &mut caller)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", s.name))
        };
        let heard = String::from_utf8(heard).expect("utf-8");
        let end = match report.end {
            CallEnd::Transferred { .. } => "transferred",
            CallEnd::Disconnected => "disconnected",
            CallEnd::HungUp => "hung up",
        };
        assert_eq!(end, s.expect.end, "{}: {heard}", s.name);
        assert_eq!(
            report.attributes.get("triage_outcome").map(String::as_str),
            Some(s.expect.outcome.as_str()),
            "{}: {:?}",
            s.name,
            report.attributes
        );
        for words in &s.expect.hears {
            assert!(
                heard.contains(words.as_str()),
                "{}: no {words:?} in {heard}",
                s.name
            );
        }
        assert!(report.voice.is_some(), "{}: the voice was set", s.name);
    }
}
