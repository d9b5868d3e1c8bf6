//! `triage call`: whole calls through the deployed flow, scripted and interactive.

use crate::cli::{run_triage, stderr, Triage};

fn call(t: &Triage, args: &[&str], stdin: &[u8]) -> String {
    let mut all = vec!["call"];
    all.extend_from_slice(args);
    let out = t.run(&all, stdin);
    assert!(out.status.success(), "triage call failed: {}", stderr(&out));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn scripted_calls_end_as_the_seed_says() {
    let t = Triage::new();
    let out = call(&t, &["--answers", "1,1,1"], b"");
    assert!(
        out.contains("Sus síntomas requieren de revisión médica"),
        "{out}"
    );
    assert!(
        out.contains("transferred to queue"),
        "hospital goes to the queue: {out}"
    );
    assert!(
        out.contains("TriageConcluded") && out.contains("hospital"),
        "{out}"
    );

    let out = call(&t, &["--answers", "0,0,0,0,0,0,0"], b"");
    assert!(out.contains("Su diagnóstico no indica"), "{out}");
    assert!(out.contains("disconnected"), "{out}");

    let out = call(
        &t,
        &["--answers", "1,7,0,t,1,0,0,0", "--format", "csv"],
        b"",
    );
    assert!(out.contains("No he entendido su respuesta"), "{out}");
    assert!(out.contains("InputRejected,breathing"), "{out}");
    assert!(out.contains(",25,monitor"), "{out}");

    let out = call(&t, &["--answers", "1,*", "--lang", "en"], b"");
    assert!(out.contains("You have left the questionnaire"), "{out}");
    assert!(out.contains("CallExited"), "{out}");
}

#[test]
fn a_call_whose_caller_hangs_up_keeps_what_was_answered() {
    let t = Triage::new();
    let out = call(&t, &["--answers", "1,0", "--contact-id", "hangup-1"], b"");
    assert!(out.contains("hangs up"), "{out}");
    let trail = t.run(&["trail", "hangup-1", "--format", "json"], b"");
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&trail.stdout).expect("json");
    assert_eq!(rows.len(), 3, "started and two answers");
}

#[test]
fn interactive_calls_read_keys_from_the_terminal() {
    let t = Triage::new();
    let out = call(&t, &["--contact-id", "interactive-1"], b"1\n1\n1\n");
    assert!(out.contains("press a key"), "{out}");
    assert!(out.contains("hospital"), "{out}");
}

#[test]
fn bad_arguments_are_clear() {
    let out = run_triage("file:/dev/null/x", &["call", "--lang", "fr"], b"");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("use es or en"), "{}", stderr(&out));
    let out = run_triage("nosuch:thing", &["trail", "x"], b"");
    assert!(stderr(&out).contains("file:PATH"), "{}", stderr(&out));
}

#[test]
fn each_language_is_spoken_by_its_own_voice_before_the_first_prompt() {
    let t = Triage::new();
    for (lang, voice, first) in [
        (
            "es",
            "voice Lucia (Neural)",
            "Pulse 1 si has tenido contacto",
        ),
        (
            "en",
            "voice Joanna (Neural)",
            "Press 1 if you have been in contact",
        ),
    ] {
        let out = call(&t, &["--answers", "*", "--lang", lang], b"");
        let voiced = out
            .find(voice)
            .unwrap_or_else(|| panic!("{lang}: no {voice}: {out}"));
        let prompt = out
            .find(first)
            .unwrap_or_else(|| panic!("{lang}: no prompt: {out}"));
        assert!(
            voiced < prompt,
            "{lang}: the voice is set before the first prompt: {out}"
        );
        assert_eq!(out.matches("🗣").count(), 1, "{lang}: set once: {out}");
    }
}

#[test]
fn the_agent_and_the_contact_record_get_the_triage_as_contact_attributes() {
    let t = Triage::new();
    let out = call(&t, &["--answers", "1,1,1", "--caller", "+34611222333"], b"");
    let attrs = out
        .split("Contact attributes for the agent and the contact record:")
        .nth(1)
        .and_then(|rest| rest.split("Recorded trail").next())
        .unwrap_or_else(|| panic!("no hand-off attributes printed: {out}"));
    for line in [
        "triage_outcome = hospital",
        "triage_score = 55",
        "triage_questionnaire = covid19@1",
        "triage_summary = contacto con un caso confirmado, dificultad al respirar, pérdida de gusto u olfato",
    ] {
        assert!(attrs.contains(line), "{line}: {attrs}");
    }
    assert!(
        !attrs.contains("611222333"),
        "never a phone number: {attrs}"
    );
    let out = call(&t, &["--answers", "0,0,0,0,0,0,0", "--lang", "en"], b"");
    assert!(out.contains("triage_outcome = clear"), "{out}");
    assert!(
        out.contains("triage_summary = \n"),
        "no yes answers, empty summary: {out}"
    );
}

/// `triage call --flow FILE` runs another flow, and refuses one Connect would refuse, at load
/// time, naming the action and the fix.
#[test]
fn another_flow_file_is_checked_then_run() {
    let t = Triage::new();
    let original = include_str!("../../connect/triage-flow.json");
    let write = |name: &str, text: &str| {
        let path = t.dir.path().join(name);
        std::fs::write(&path, text).expect("write the flow");
        path.display().to_string()
    };
    // An edited flow that is still valid: the apology worded otherwise. It runs.
    let edited = write("edited.json", &original.replace("Lo sentimos", "Disculpe"));
    let out = call(&t, &["--flow", &edited, "--answers", "*"], b"");
    assert!(out.contains("exited"), "{out}");

    let mut flow: serde_json::Value = serde_json::from_str(original).expect("json");
    let actions = flow["Actions"].as_array_mut().expect("actions");
    type Breaks = Box<dyn Fn(&mut Vec<serde_json::Value>)>;
    let cases: Vec<(&str, Breaks, &str)> = vec![
        (
            "unknown action",
            Box::new(|a| a[0]["Type"] = "PlayMusicOnHold".into()),
            "does not run",
        ),
        (
            "unknown parameter",
            Box::new(|a| a[0]["Parameters"]["Colour"] = "blue".into()),
            "Colour is not a parameter Connect knows here",
        ),
        (
            "missing NoMatchingError",
            Box::new(|a| {
                // Connect requires GetParticipantInput's NoMatchingError branch.
                let ask = a
                    .iter_mut()
                    .find(|x| x["Identifier"] == "ask-question")
                    .expect("ask-question");
                ask["Transitions"]["Errors"] = serde_json::json!([]);
            }),
            "has no Errors entry for NoMatchingError",
        ),
    ];
    let pristine = actions.clone();
    let recorded = t.lines();
    for (what, break_it, says) in cases {
        let mut broken = pristine.clone();
        break_it(&mut broken);
        flow["Actions"] = serde_json::Value::Array(broken);
        let path = write("broken.json", &flow.to_string());
        let out = t.run(&["call", "--flow", &path, "--answers", "1"], b"");
        assert!(!out.status.success(), "{what}: refused");
        let err = stderr(&out);
        assert!(err.contains(says), "{what}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{what}: one line: {err}");
        assert_eq!(
            t.lines(),
            recorded,
            "{what}: refused before any turn, nothing recorded"
        );
    }
}

/// A hospital caller whom nobody can take (the queue closed or full) hears what to do, in
/// their language, and the call ends instead of waiting in a queue no one answers.
#[test]
fn a_hospital_caller_with_nobody_to_take_the_call_hears_what_to_do() {
    let t = Triage::new();
    for (args, lang, says) in [
        (
            ["--hospital-hours", "closed"],
            "es",
            "no hay nadie disponible para atenderle",
        ),
        (
            ["--hospital-queue", "full"],
            "en",
            "No one is available to take your call right now",
        ),
    ] {
        let mut all = vec!["--answers", "1,1,1", "--lang", lang];
        all.extend_from_slice(&args);
        let out = call(&t, &all, b"");
        assert!(out.contains(says), "{args:?}: {out}");
        assert!(!out.contains("transferred to queue"), "{args:?}: {out}");
        assert!(
            out.contains("the flow disconnected the call"),
            "{args:?}: {out}"
        );
        assert!(
            out.contains("triage_outcome = hospital"),
            "the record still says so: {out}"
        );
    }
    let open = call(&t, &["--answers", "1,1,1"], b"");
    assert!(open.contains("transferred to queue"), "{open}");
    assert!(!open.contains("no hay nadie disponible"), "{open}");
}
