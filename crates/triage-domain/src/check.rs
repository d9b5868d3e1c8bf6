//! `triage questionnaire check`: everything wrong with a questionnaire document at once,
//! each problem with its JSON path, its line where it can be told, and what to do about it.
//! The format is written down in `docs/questionnaire.md` and as a JSON Schema in
//! `schemas/questionnaire.schema.json`; this is the one check the line, the publisher and
//! the CLI share ([`Questionnaire::from_json`] runs it).

use crate::questionnaire::{Lang, Localized, Questionnaire, QuestionnaireError};
use std::collections::HashMap;
use std::fmt;

/// The largest document read (a questionnaire of 64 questions in two languages is a few
/// tens of KB): a bigger file is refused before it is parsed.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// The longest text Connect can speak in one prompt: Amazon Polly's SynthesizeSpeech, which
/// Connect's text-to-speech calls, takes at most 3,000 billed characters (6,000 in all)
/// (<https://docs.aws.amazon.com/botocore/latest/reference/services/polly/client/exceptions/TextLengthExceededException.html>).
/// Counted in characters of the whole composed prompt (apology + question + instructions).
pub const MAX_PROMPT_CHARS: usize = 3_000;

/// The most questions a questionnaire may have.
pub const MAX_QUESTIONS: usize = 64;

/// The largest weight or threshold (keeps the reachability check exact and small).
pub const MAX_POINTS: u32 = 10_000;

/// One thing wrong with a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: a JSON path (`$.questions[1].text.en`).
    pub path: String,
    /// The line of the document where that value starts, when it could be told.
    pub line: Option<usize>,
    /// What is wrong.
    pub what: String,
    /// What to do about it.
    pub fix: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}: {}; {}", self.path, self.what, self.fix),
            None => write!(f, "{}: {}; {}", self.path, self.what, self.fix),
        }
    }
}

impl Questionnaire {
    /// Parses and checks a questionnaire document ([`check`]: every problem,
    /// joined, in the error).
    pub fn from_json(text: &str) -> Result<Questionnaire, QuestionnaireError> {
        let q: Questionnaire =
            serde_json::from_str(text).map_err(|e| QuestionnaireError::Json(e.to_string()))?;
        if let Err(problems) = check(text) {
            let all: Vec<String> = problems.iter().map(ToString::to_string).collect();
            return Err(QuestionnaireError::Invalid(q.key(), all.join("; ")));
        }
        for i in 0..q.questions.len() {
            q.prompts(i);
        }
        Ok(q)
    }
}

/// Checks a questionnaire document: the parsed questionnaire, or every problem found.
pub fn check(text: &str) -> Result<Questionnaire, Vec<Problem>> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(vec![Problem {
            path: "$".into(),
            line: None,
            what: format!(
                "the document is {} bytes, more than the {MAX_DOCUMENT_BYTES} a questionnaire may have",
                text.len()
            ),
            fix: "check that this is the questionnaire file".into(),
        }]);
    }
    // Unknown and missing fields everywhere at once (serde stops at the first).
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        let fields = structural(&v, text);
        if !fields.is_empty() {
            return Err(fields);
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let q: Questionnaire = match serde_path_to_error::deserialize(&mut de) {
        Ok(q) => q,
        Err(e) => return Err(vec![from_serde(&e)]),
    };
    if let Err(e) = de.end() {
        return Err(vec![Problem {
            path: "$".into(),
            line: Some(e.line()),
            what: format!("text after the questionnaire's object: {e}"),
            fix: "a file holds one questionnaire object".into(),
        }]);
    }
    let problems = semantic(&q, text);
    if problems.is_empty() {
        Ok(q)
    } else {
        Err(problems)
    }
}

fn from_serde(e: &serde_path_to_error::Error<serde_json::Error>) -> Problem {
    let inner = e.inner();
    let path = e.path().to_string();
    let path = if path == "." || path.is_empty() {
        "$".to_string()
    } else {
        format!("$.{path}")
    };
    let msg = inner.to_string();
    // serde_json appends " at line L column C": the line is given separately.
    let what = msg
        .rsplit_once(" at line ")
        .map_or(msg.as_str(), |(m, _)| m)
        .to_string();
    let fix = if what.starts_with("unknown field") {
        "remove it, or correct its spelling (docs/questionnaire.md lists every field)"
    } else if what.starts_with("missing field") {
        "add it: every text is given in every language (es, en), every outcome has its message"
    } else if what.starts_with("invalid type") {
        "give the value the type docs/questionnaire.md says"
    } else {
        "see docs/questionnaire.md for the format"
    };
    let line = (inner.line() > 0).then_some(inner.line());
    Problem {
        path,
        line,
        what,
        fix: fix.into(),
    }
}

/// The fields of each object of the format: (required, optional).
const TOP: (&[&str], &[&str]) = (
    &[
        "id",
        "version",
        "hospital_threshold",
        "monitor_threshold",
        "max_rejections",
        "questions",
        "texts",
    ],
    &["title"],
);
const QUESTION: (&[&str], &[&str]) = (&["id", "weight", "text"], &["label"]);
const TEXTS: (&[&str], &[&str]) = (
    &[
        "instructions",
        "not_understood",
        "hospital",
        "monitor",
        "clear",
        "exited",
        "error",
    ],
    &["no_agent"],
);
const LOCALIZED: (&[&str], &[&str]) = (&["es", "en"], &[]);

/// Missing and unknown fields of every object of the document, all of them.
fn structural(v: &serde_json::Value, text: &str) -> Vec<Problem> {
    let lines = LineIndex::new(text);
    let mut out = Vec::new();
    let mut visit = |value: &serde_json::Value, path: Vec<Seg>, shape: (&[&str], &[&str])| {
        let Some(obj) = value.as_object() else {
            return;
        };
        for k in obj.keys() {
            if !shape.0.contains(&k.as_str()) && !shape.1.contains(&k.as_str()) {
                let mut at = path.clone();
                at.push(key(k));
                out.push(Problem {
                    line: lines.line_of(&at),
                    path: path_text(&at),
                    what: format!("unknown field `{k}`"),
                    fix: format!(
                        "remove it, or correct its spelling (here: {})",
                        shape
                            .0
                            .iter()
                            .chain(shape.1)
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
        for k in shape.0 {
            if !obj.contains_key(*k) {
                out.push(Problem {
                    line: lines.line_of(&path),
                    path: path_text(&path),
                    what: format!("missing field `{k}`"),
                    fix: "add it: every text is given in every language (es, en), every outcome has its message".into(),
                });
            }
        }
    };
    visit(v, vec![], TOP);
    if let Some(qs) = v.get("questions").and_then(|q| q.as_array()) {
        for (i, q) in qs.iter().enumerate() {
            let at = vec![key("questions"), Seg::Index(i)];
            visit(q, at.clone(), QUESTION);
            for field in ["text", "label"] {
                if let Some(t) = q.get(field) {
                    let mut p = at.clone();
                    p.push(key(field));
                    visit(t, p, LOCALIZED);
                }
            }
        }
    }
    if let Some(texts) = v.get("texts") {
        visit(texts, vec![key("texts")], TEXTS);
        if let Some(obj) = texts.as_object() {
            for (k, t) in obj {
                if TEXTS.0.contains(&k.as_str()) || TEXTS.1.contains(&k.as_str()) {
                    visit(t, vec![key("texts"), key(k)], LOCALIZED);
                }
            }
        }
    }
    out
}

/// Segments of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn path_text(path: &[Seg]) -> String {
    let mut s = String::from("$");
    for seg in path {
        match seg {
            Seg::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

/// Problems with a document that parsed.
fn semantic(q: &Questionnaire, text: &str) -> Vec<Problem> {
    let mut out = Vec::new();
    let lines = LineIndex::new(text);
    let mut push = |path: Vec<Seg>, what: String, fix: &str| {
        out.push(Problem {
            line: lines.line_of(&path),
            path: path_text(&path),
            what,
            fix: fix.to_string(),
        });
    };
    if !is_slug(&q.id) {
        push(
            vec![key("id")],
            format!(
                "id {:?} is not 1-64 lowercase letters, digits, _ or -",
                q.id
            ),
            "use an id like covid19 (it is part of every call's record, as id@version)",
        );
    }
    if q.version == 0 {
        push(
            vec![key("version")],
            "version 0".into(),
            "versions start at 1 and grow with every published change",
        );
    }
    if q.questions.is_empty() {
        push(
            vec![key("questions")],
            "no questions".into(),
            "add at least one question",
        );
    }
    if q.questions.len() > MAX_QUESTIONS {
        push(
            vec![key("questions")],
            format!("{} questions, more than {MAX_QUESTIONS}", q.questions.len()),
            "split it into shorter questionnaires",
        );
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, question) in q.questions.iter().enumerate() {
        let at = |field: &str| vec![key("questions"), Seg::Index(i), key(field)];
        if !is_slug(&question.id) {
            push(
                at("id"),
                format!(
                    "question id {:?} is not 1-64 lowercase letters, digits, _ or -",
                    question.id
                ),
                "use an id like dry_cough (answers are recorded by it)",
            );
        }
        if let Some(first) = seen.insert(question.id.as_str(), i) {
            push(
                at("id"),
                format!(
                    "question id {:?} is also the id of questions[{first}]",
                    question.id
                ),
                "give each question its own id",
            );
        }
        if question.weight > MAX_POINTS {
            push(
                at("weight"),
                format!("weight {} is above {MAX_POINTS}", question.weight),
                "use smaller points (only their ratio to the thresholds matters)",
            );
        }
        let mut path = at("text");
        check_localized(&question.text, &mut path, &mut push);
        if let Some(label) = &question.label {
            let mut path = at("label");
            check_localized(label, &mut path, &mut push);
        }
        for lang in LANGS {
            if let Some(p) = q.prompts(i) {
                for (what, text) in [
                    ("asked", p.ask.get(lang)),
                    ("asked again after an invalid key", p.ask_again.get(lang)),
                ] {
                    let n = text.chars().count();
                    if n > MAX_PROMPT_CHARS {
                        push(
                            vec![key("questions"), Seg::Index(i), key("text"), lang_seg(lang)],
                            format!(
                                "the prompt {what} is {n} characters, more than the {MAX_PROMPT_CHARS} Connect's text-to-speech speaks at once"
                            ),
                            "shorten the question, texts.instructions or texts.not_understood",
                        );
                    }
                }
            }
        }
    }
    let texts = &q.texts;
    for (name, t) in [
        ("instructions", &texts.instructions),
        ("not_understood", &texts.not_understood),
        ("hospital", &texts.hospital),
        ("monitor", &texts.monitor),
        ("clear", &texts.clear),
        ("exited", &texts.exited),
        ("error", &texts.error),
    ] {
        let mut path = vec![key("texts"), key(name)];
        check_localized(t, &mut path, &mut push);
        if !matches!(name, "instructions" | "not_understood") {
            for lang in LANGS {
                let extra = if name == "hospital" {
                    texts
                        .no_agent
                        .as_ref()
                        .map_or(0, |n| n.get(lang).chars().count())
                } else {
                    0
                };
                let n = t.get(lang).chars().count() + extra;
                if n > MAX_PROMPT_CHARS {
                    push(
                        vec![key("texts"), key(name), lang_seg(lang)],
                        format!(
                            "the final message is {n} characters, more than {MAX_PROMPT_CHARS}"
                        ),
                        "shorten it (for hospital, together with texts.no_agent)",
                    );
                }
            }
        }
    }
    if let Some(no_agent) = &texts.no_agent {
        let mut path = vec![key("texts"), key("no_agent")];
        check_localized(no_agent, &mut path, &mut push);
    }
    if q.max_rejections == 0 {
        push(
            vec![key("max_rejections")],
            "max_rejections is 0: the first invalid key would end the call".into(),
            "allow at least 1 (the seed's line allows 10)",
        );
    }
    thresholds(q, &mut push);
    out
}

const LANGS: [Lang; 2] = [Lang::Es, Lang::En];

fn lang_seg(lang: Lang) -> Seg {
    key(lang.as_str())
}

fn check_localized(
    t: &Localized,
    path: &mut Vec<Seg>,
    push: &mut impl FnMut(Vec<Seg>, String, &str),
) {
    for lang in LANGS {
        if t.get(lang).trim().is_empty() {
            path.push(lang_seg(lang));
            push(
                path.clone(),
                format!("the {} text is empty", lang.as_str()),
                "write it: every text is spoken in every language the line offers",
            );
            path.pop();
        }
    }
}

/// Every outcome must be reachable: `hospital` by some answers, `monitor` by a final
/// score at or above its threshold and below hospital's, `clear` by one below monitor's.
fn thresholds(q: &Questionnaire, push: &mut impl FnMut(Vec<Seg>, String, &str)) {
    let (h, m) = (q.hospital_threshold, q.monitor_threshold);
    let total: u64 = q.questions.iter().map(|x| u64::from(x.weight)).sum();
    if h > MAX_POINTS || m > MAX_POINTS {
        push(
            vec![key(if h > MAX_POINTS {
                "hospital_threshold"
            } else {
                "monitor_threshold"
            })],
            format!("a threshold above {MAX_POINTS}"),
            "use smaller points",
        );
        return;
    }
    if h == 0 {
        push(
            vec![key("hospital_threshold")],
            "hospital_threshold 0: every caller would be sent to hospital after one answer".into(),
            "set it to the score that means go to hospital now (the seed's is 50)",
        );
        return;
    }
    if total < u64::from(h) {
        push(
            vec![key("hospital_threshold")],
            format!("hospital_threshold {h} cannot be reached: all the weights add up to {total}"),
            "lower it, or raise the weights",
        );
    }
    if m > h {
        push(
            vec![key("monitor_threshold")],
            format!("monitor_threshold {m} is above hospital_threshold {h}"),
            "monitor_threshold is the lower one (the seed's: 25 and 50)",
        );
        return;
    }
    if m == 0 {
        push(
            vec![key("monitor_threshold")],
            "monitor_threshold 0: no call could end clear".into(),
            "set it to the lowest final score that means watch your symptoms",
        );
        return;
    }
    // Final scores a call can end with without reaching hospital: sums of subsets of the
    // weights below h (a sum at or above h ends the call at hospital on the way).
    let mut reach = vec![false; h as usize];
    reach[0] = true;
    for w in q.questions.iter().map(|x| x.weight as usize) {
        if w == 0 {
            continue;
        }
        for s in (w..reach.len()).rev() {
            if reach[s - w] {
                reach[s] = true;
            }
        }
    }
    if !reach[m as usize..].iter().any(|r| *r) {
        push(
            vec![key("monitor_threshold")],
            format!(
                "monitor cannot be reached: no set of yes answers scores at least {m} and below {h}"
            ),
            "lower monitor_threshold or change the weights",
        );
    }
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Where values start in a JSON text, by path: a small scanner over a text that parsed.
struct LineIndex {
    starts: Vec<(Vec<Seg>, usize)>,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let mut s = Scanner {
            b: text.as_bytes(),
            i: 0,
            line: 1,
            out: Vec::new(),
        };
        let mut path = Vec::new();
        s.value(&mut path, 0);
        LineIndex { starts: s.out }
    }

    fn line_of(&self, path: &[Seg]) -> Option<usize> {
        self.starts
            .iter()
            .find(|(p, _)| p.as_slice() == path)
            .map(|(_, l)| *l)
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    line: usize,
    out: Vec<(Vec<Seg>, usize)>,
}

impl Scanner<'_> {
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            match c {
                b'\n' => {
                    self.line += 1;
                    self.i += 1;
                }
                b' ' | b'\t' | b'\r' => self.i += 1,
                _ => break,
            }
        }
    }

    /// A string starting at `self.i` (the quote); returns its raw text between the quotes.
    fn string(&mut self) -> String {
        let start = self.i;
        self.i += 1;
        while let Some(&c) = self.b.get(self.i) {
            self.i += 1;
            match c {
                b'\\' => self.i += 1,
                b'"' => break,
                b'\n' => self.line += 1,
                _ => {}
            }
        }
        let raw = self.b.get(start..self.i).unwrap_or_default();
        serde_json::from_slice::<String>(raw).unwrap_or_default()
    }

    fn value(&mut self, path: &mut Vec<Seg>, depth: usize) {
        self.ws();
        if depth > 64 {
            return;
        }
        self.out.push((path.clone(), self.line));
        match self.b.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                loop {
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b'"') => {
                            let k = self.string();
                            self.ws();
                            if self.b.get(self.i) == Some(&b':') {
                                self.i += 1;
                            }
                            path.push(Seg::Key(k));
                            self.value(path, depth + 1);
                            path.pop();
                            self.ws();
                            if self.b.get(self.i) == Some(&b',') {
                                self.i += 1;
                            }
                        }
                        Some(b'}') => {
                            self.i += 1;
                            return;
                        }
                        _ => return,
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut n = 0;
                loop {
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b']') => {
                            self.i += 1;
                            return;
                        }
                        None => return,
                        _ => {
                            path.push(Seg::Index(n));
                            self.value(path, depth + 1);
                            path.pop();
                            n += 1;
                            self.ws();
                            if self.b.get(self.i) == Some(&b',') {
                                self.i += 1;
                            }
                        }
                    }
                }
            }
            Some(b'"') => {
                self.string();
            }
            Some(_) => {
                while let Some(&c) = self.b.get(self.i) {
                    if matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace() {
                        break;
                    }
                    self.i += 1;
                }
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = include_str!("covid19.v1.json");

    fn doc() -> serde_json::Value {
        serde_json::from_str(SEED).unwrap_or_default()
    }

    fn problems(v: &serde_json::Value) -> Vec<Problem> {
        let text = serde_json::to_string_pretty(v).unwrap_or_default();
        match check(&text) {
            Ok(q) => panic!("{} passed", q.key()),
            Err(p) => p,
        }
    }

    fn one(v: &serde_json::Value, path: &str, what: &str) -> Problem {
        let p = problems(v);
        assert!(
            p.iter().any(|x| x.path == path && x.what.contains(what)),
            "expected {path}: {what}, got {p:#?}"
        );
        p.into_iter()
            .find(|x| x.path == path && x.what.contains(what))
            .unwrap_or_else(|| unreachable!())
    }

    #[test]
    fn the_seed_passes_unchanged() {
        let q = check(SEED).unwrap_or_else(|p| panic!("{p:#?}"));
        assert_eq!(q.key(), "covid19@1");
        assert_eq!(&q, Questionnaire::embedded());
    }

    #[test]
    fn a_duplicate_id_is_found_with_its_line() {
        let mut d = doc();
        d["questions"][3]["id"] = "contact".into();
        let p = one(&d, "$.questions[3].id", "also the id of questions[0]");
        let text = serde_json::to_string_pretty(&d).unwrap_or_default();
        let line = p.line.unwrap_or(0);
        assert!(
            text.lines()
                .nth(line - 1)
                .unwrap_or("")
                .contains("\"contact\""),
            "line {line}"
        );
    }

    #[test]
    fn a_missing_translation_is_named_by_path_and_line() {
        let mut d = doc();
        if let Some(t) = d["questions"][2]["text"].as_object_mut() {
            t.remove("en");
        }
        let p = problems(&d);
        assert_eq!(p.len(), 1, "{p:#?}");
        assert_eq!(p[0].path, "$.questions[2].text");
        assert!(p[0].what.contains("missing field `en`"), "{p:?}");
        assert!(p[0].line.is_some());
        let mut d = doc();
        d["texts"]["monitor"]["es"] = " ".into();
        one(&d, "$.texts.monitor.es", "empty");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut d = doc();
        d["questions"][0]["wieght"] = 3.into();
        let p = one(&d, "$.questions[0].wieght", "unknown field `wieght`");
        assert!(p.fix.contains("spelling"));
        let mut d = doc();
        d["texts"]["hospital"]["fr"] = "Allez".into();
        one(&d, "$.texts.hospital.fr", "unknown field `fr`");
    }

    #[test]
    fn unreachable_thresholds_are_refused() {
        let mut d = doc();
        d["hospital_threshold"] = 200.into();
        one(&d, "$.hospital_threshold", "cannot be reached");
        let mut d = doc();
        d["monitor_threshold"] = 60.into();
        one(&d, "$.monitor_threshold", "above hospital_threshold");
        // Weights of 30 each and thresholds 50/40: finishing scores below 50 are 0 and 30.
        let mut d = doc();
        for i in 0..7 {
            d["questions"][i]["weight"] = 30.into();
        }
        d["monitor_threshold"] = 40.into();
        one(&d, "$.monitor_threshold", "monitor cannot be reached");
        let mut d = doc();
        d["monitor_threshold"] = 0.into();
        one(&d, "$.monitor_threshold", "no call could end clear");
    }

    #[test]
    fn a_prompt_too_long_for_connect_is_refused() {
        let mut d = doc();
        d["questions"][1]["text"]["es"] = "a".repeat(MAX_PROMPT_CHARS).into();
        let p = one(&d, "$.questions[1].text.es", "Connect's text-to-speech");
        assert!(p.what.contains("characters"));
    }

    #[test]
    fn every_unknown_and_missing_field_is_reported_at_once() {
        let mut d = doc();
        d["questions"][0]["wieght"] = 3.into();
        if let Some(t) = d["questions"][4]["text"].as_object_mut() {
            t.remove("es");
        }
        if let Some(t) = d["texts"].as_object_mut() {
            t.remove("exited");
        }
        let p = problems(&d);
        let paths: Vec<&str> = p.iter().map(|x| x.path.as_str()).collect();
        assert_eq!(
            paths,
            ["$.questions[0].wieght", "$.questions[4].text", "$.texts"],
            "{p:#?}"
        );
        assert!(p.iter().all(|x| x.line.is_some()), "{p:#?}");
    }

    #[test]
    fn many_problems_are_all_reported() {
        let mut d = doc();
        d["id"] = "COVID 19".into();
        d["questions"][1]["id"] = "contact".into();
        d["max_rejections"] = 0.into();
        d["texts"]["clear"]["en"] = "".into();
        let p = problems(&d);
        assert!(p.len() >= 4, "{p:#?}");
    }

    #[test]
    fn huge_and_broken_documents_are_refused_before_parsing() {
        let big = " ".repeat(MAX_DOCUMENT_BYTES + 1);
        let p = check(&big).err().unwrap_or_default();
        assert!(p[0].what.contains("bytes"), "{p:?}");
        let p = check("{\"id\": \"x\",\n  \"version\": }")
            .err()
            .unwrap_or_default();
        assert_eq!(p[0].line, Some(2), "{p:?}");
    }
}
