//! HL7 FHIR R4 (4.0.1) for health systems: a questionnaire version as a `Questionnaire`
//! resource ([`questionnaire_resource`]) and one call as a `QuestionnaireResponse`
//! ([`questionnaire_response`]), as JSON values. Pure: no I/O; a caller writes the responses
//! one a line as FHIR NDJSON (<https://hl7.org/fhir/R4/nd-json.html>, MIME type
//! `application/fhir+ndjson`, one resource type per file). `scripts/fhir-validate.py`
//! parses both with the `fhir.resources` models and checks that they agree.
//!
//! Spec pages: `Questionnaire` <https://hl7.org/fhir/R4/questionnaire.html>,
//! `QuestionnaireResponse` <https://hl7.org/fhir/R4/questionnaireresponse.html>, data types
//! <https://hl7.org/fhir/R4/datatypes.html>, JSON (primitive extensions as `_element`)
//! <https://hl7.org/fhir/R4/json.html#primitive>, canonical references
//! <https://hl7.org/fhir/R4/references.html#canonical>.
//!
//! # The choices
//!
//! **Ids** (`id`: `[A-Za-z0-9\-\.]{1,64}`, <https://hl7.org/fhir/R4/datatypes.html#id>). The
//! questionnaire's is `{id}-{version}` (`covid19-1`), its `_` written `.` (a slug has no
//! `.`, so no two questionnaires share an id); a response's is the contact id (Connect's are
//! lowercase UUIDs). Anything that does not fit as it is (too long, another character, an
//! upper-case letter: the id type calls ids case-insensitive) becomes `sha256-` and 57 hex
//! digits of its SHA-256, and so does anything that already starts with `sha256-`:
//! different inputs never get the same id (short of a hash collision). The full contact id
//! is always in `identifier`.
//!
//! **Canonical URLs.** `url` = `{canonical_base}/Questionnaire/{questionnaire id}`, `version` = the
//! questionnaire's version as a string, and a response's `questionnaire` is
//! `{url}|{version}` (a canonical pinned to a version). Our own definitions live under the
//! same base: `{base}/StructureDefinition/triage-*` (extensions),
//! `{base}/CodeSystem/triage-outcome` (outcome codes) and
//! `{base}/sid/amazon-connect-contact-id` (the identifier system). A trailing `/` of the
//! base is ignored.
//!
//! **Names and languages.** `name` is the id in PascalCase (`Covid19`: `que-0` wants
//! `[A-Z]([A-Za-z0-9_]){0,254}`), `title` the questionnaire's title (or `id@version`).
//! `language` is `es`, the seed's primary language (`Resource.language`); every Spanish text
//! carries its English in the translation extension on the primitive
//! (`_text.extension`, <https://hl7.org/fhir/R4/extension-translation.html>: sub-extensions
//! `lang` valueCode and `content` valueString, or valueMarkdown on markdown). The
//! questionnaire format's `title` is not translated: it is written as it is, whatever its
//! language (the seed's is English), since R4 has no way to mark one element's language.
//!
//! **Questions.** One item per question in order: `linkId` = question id, `type` `boolean`,
//! `text` = the question. `required` (an answer must be present in a `completed` response)
//! is `true` only for the questions every call concluded by its answers was asked: those
//! whose preceding weights add up to less than the hospital threshold. A later question can
//! be skipped by a `hospital` conclusion (the seed's: fever onwards, after 15 + 25 + 15 =
//! 55 >= 50), and a validator would otherwise reject those completed responses.
//!
//! **Weights and thresholds.** `ordinalValue`
//! (<https://hl7.org/fhir/R4/extension-ordinalvalue.html>) does not fit: it goes on a
//! `Coding` or an `answerOption`, and a boolean item has neither: its answers are
//! `valueBoolean`, and `que-5` gives it no `answerOption`. So extensions of our
//! own, each valueInteger: `{base}/StructureDefinition/triage-weight` on each question item,
//! and `triage-hospital-threshold`, `triage-monitor-threshold` and `triage-max-rejections` on
//! the Questionnaire. `description` (markdown, translated) states the rule they make: a yes
//! adds its weight; after any answer a score at or above the hospital threshold ends the
//! call (`hospital`); after the last one, at or above the monitor threshold is `monitor`,
//! below it `clear`; `*` or too many invalid keys is `exited`; hanging up is `abandoned`.
//!
//! **The result.** Two read-only items after the questions (`que-9` forbids `readOnly` only
//! on display items): `triage.score` (`integer`) and `triage.outcome` (`choice`, its
//! `answerOption`s the codes `hospital`, `monitor`, `clear`, `exited`, `abandoned` of
//! `{base}/CodeSystem/triage-outcome`, each displayed with the questionnaire's final message
//! for it, Spanish with `_display` translated; `abandoned`, which has no message, with a fixed
//! text). Their linkIds have a `.`, which no question id can have, so they never collide with a
//! question (`que-2`: linkIds are unique).
//!
//! **Responses.** `status`
//! (<https://hl7.org/fhir/R4/valueset-questionnaire-answers-status.html>): `completed` for
//! a call concluded by its answers (hospital, monitor, clear), `stopped` ("partially filled
//! out ... but has been abandoned") for `exited` and `abandoned`, `in-progress` for an open
//! call. `authored` (dateTime, UTC with milliseconds) is when it ended, or its last turn
//! while open. `language` is the call's; each answer is an item with the question's text in
//! that language and one `valueBoolean`, in questionnaire order;
//! then `triage.score` (valueInteger) for a completed call (a stopped call's partial sum
//! decided nothing, and its answers give it), and `triage.outcome` (valueCoding, displayed in
//! the call's language) for every call but an open one. `identifier` (one, R4's
//! `QuestionnaireResponse.identifier` is 0..1) holds the ContactId. The caller's hash is an
//! internal pseudonym and is never written: there is no `subject`, `author` or `source`.
//! A call with no item yet has no `item` (`ele-1`: an element has a value or children).

use super::{AnswerFact, CallSummary, Status};
use crate::domain::questionnaire::Localized;
use crate::domain::{Lang, Outcome, Questionnaire};
use chrono::SecondsFormat;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// FHIR's translation extension (<https://hl7.org/fhir/R4/extension-translation.html>).
pub const TRANSLATION: &str = "http://hl7.org/fhir/StructureDefinition/translation";

/// The language resources are written in; the others go in translations.
pub const PRIMARY_LANG: Lang = Lang::Es;

/// Every language a questionnaire speaks, the primary one first.
const LANGS: [Lang; 2] = [Lang::Es, Lang::En];

/// linkId of the call's score: a `.` no question id has.
pub const SCORE_LINK_ID: &str = "triage.score";

/// linkId of the call's outcome.
pub const OUTCOME_LINK_ID: &str = "triage.outcome";

/// The outcome codes of `{base}/CodeSystem/triage-outcome`, in order.
pub const OUTCOME_CODES: [&str; 5] = ["hospital", "monitor", "clear", "exited", "abandoned"];

/// Prefix of an id made from a hash (and of no id taken as it is).
const HASHED_ID_PREFIX: &str = "sha256-";

/// The longest FHIR id.
const MAX_ID_LEN: usize = 64;

/// The canonical URL of a questionnaire: `{canonical_base}/Questionnaire/{id}`.
pub fn questionnaire_url(q: &Questionnaire, canonical_base: &str) -> String {
    format!("{}/Questionnaire/{}", base(canonical_base), q.id)
}

/// The questionnaire's canonical pinned to its version: `{url}|{version}`, what a response's
/// `questionnaire` says.
pub fn questionnaire_canonical(q: &Questionnaire, canonical_base: &str) -> String {
    canonical(canonical_base, &q.id, q.version)
}

/// The `Questionnaire` resource of a questionnaire version (see the module's doc).
pub fn questionnaire_resource(q: &Questionnaire, canonical_base: &str) -> Value {
    let b = base(canonical_base);
    let mut items: Vec<Value> = Vec::with_capacity(q.questions.len() + 2);
    // Highest score a call can have before each question: all yes so far.
    let mut before = 0u64;
    for question in &q.questions {
        let mut item = json!({
            "linkId": question.id,
            "type": "boolean",
            "required": before < u64::from(q.hospital_threshold),
            "extension": [integer_extension(b, "triage-weight", question.weight)],
        });
        put_text(&mut item, "text", &question.text, "valueString");
        items.push(item);
        before += u64::from(question.weight);
    }
    let mut score = json!({
        "linkId": SCORE_LINK_ID,
        "type": "integer",
        "readOnly": true,
    });
    put_text(&mut score, "text", &score_text(), "valueString");
    items.push(score);
    let options: Vec<Value> = OUTCOME_CODES
        .iter()
        .map(|code| {
            let mut coding = json!({ "system": outcome_system(b), "code": code });
            put_text(
                &mut coding,
                "display",
                &outcome_display(q, code),
                "valueString",
            );
            json!({ "valueCoding": coding })
        })
        .collect();
    let mut outcome = json!({
        "linkId": OUTCOME_LINK_ID,
        "type": "choice",
        "readOnly": true,
        "answerOption": options,
    });
    put_text(&mut outcome, "text", &outcome_text(), "valueString");
    items.push(outcome);

    let title = if q.title.trim().is_empty() {
        q.key()
    } else {
        q.title.clone()
    };
    let mut r = json!({
        "resourceType": "Questionnaire",
        "id": questionnaire_id(q),
        "url": questionnaire_url(q, b),
        "version": q.version.to_string(),
        "name": computable_name(&q.id),
        "title": title,
        "status": "active",
        "language": PRIMARY_LANG.as_str(),
        "extension": [
            integer_extension(b, "triage-hospital-threshold", q.hospital_threshold),
            integer_extension(b, "triage-monitor-threshold", q.monitor_threshold),
            integer_extension(b, "triage-max-rejections", q.max_rejections),
        ],
        "item": items,
    });
    put_text(&mut r, "description", &description(q), "valueMarkdown");
    r
}

/// One call as a `QuestionnaireResponse` (see the module's doc). `q` is the call's
/// questionnaire (`Questionnaire::lookup(&call.questionnaire, call.questionnaire_version)`):
/// texts come from it; the response names the version the call recorded, whatever `q` is.
pub fn questionnaire_response(
    call: &CallSummary,
    q: &Questionnaire,
    canonical_base: &str,
) -> Value {
    let b = base(canonical_base);
    let lang = call.lang;
    // Texts from `q` only when it is the call's own questionnaire.
    let own = q.id == call.questionnaire && q.version == call.questionnaire_version;
    let position = |a: &AnswerFact| {
        own.then(|| q.question_by_id(&a.question).map(|(i, _)| i))
            .flatten()
            .unwrap_or(a.index)
    };
    let mut answers: Vec<&AnswerFact> = call.answers.iter().collect();
    answers.sort_by_key(|a| (position(a), a.seq));
    let mut items: Vec<Value> = answers
        .iter()
        .map(|a| {
            let text = own
                .then(|| q.question_by_id(&a.question))
                .flatten()
                .map_or(a.question_text.as_str(), |(_, question)| {
                    question.text.get(lang)
                });
            let mut item = json!({
                "linkId": a.question,
                "answer": [{ "valueBoolean": a.yes }],
            });
            if !text.is_empty() {
                item["text"] = text.into();
            }
            item
        })
        .collect();
    if matches!(call.status, Status::Concluded(o) if o != Outcome::Exited) {
        items.push(json!({
            "linkId": SCORE_LINK_ID,
            "text": score_text().get(lang),
            "answer": [{ "valueInteger": call.score }],
        }));
    }
    if let Some(code) = outcome_code(call.status) {
        let mut coding = json!({ "system": outcome_system(b), "code": code });
        if own {
            coding["display"] = outcome_display(q, code).get(lang).into();
        }
        items.push(json!({
            "linkId": OUTCOME_LINK_ID,
            "text": outcome_text().get(lang),
            "answer": [{ "valueCoding": coding }],
        }));
    }
    let authored = call
        .ended_at
        .unwrap_or(call.last_at)
        .to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut r = json!({
        "resourceType": "QuestionnaireResponse",
        "id": response_id(call.contact_id.as_str()),
        "identifier": {
            "system": format!("{b}/sid/amazon-connect-contact-id"),
            "value": call.contact_id.as_str(),
        },
        "questionnaire": canonical(b, &call.questionnaire, call.questionnaire_version),
        "status": response_status(call.status),
        "authored": authored,
        "language": lang.as_str(),
    });
    if !items.is_empty() {
        r["item"] = Value::Array(items);
    }
    r
}

/// A response's `status` for a call's.
pub fn response_status(status: Status) -> &'static str {
    match status {
        Status::Concluded(Outcome::Hospital | Outcome::Monitor | Outcome::Clear) => "completed",
        Status::Concluded(Outcome::Exited) | Status::Abandoned => "stopped",
        Status::Open => "in-progress",
    }
}

/// The logical id of a call's response: its contact id, or a hash of it (module doc).
pub fn response_id(contact_id: &str) -> String {
    fhir_id(contact_id, contact_id)
}

/// The logical id of a questionnaire version: `{id}-{version}`, `_` as `.`.
pub fn questionnaire_id(q: &Questionnaire) -> String {
    let candidate = format!("{}-{}", q.id.replace('_', "."), q.version);
    fhir_id(&candidate, &q.key())
}

fn base(canonical_base: &str) -> &str {
    canonical_base.trim_end_matches('/')
}

fn canonical(canonical_base: &str, id: &str, version: u32) -> String {
    format!("{}/Questionnaire/{id}|{version}", base(canonical_base))
}

fn outcome_system(base: &str) -> String {
    format!("{base}/CodeSystem/triage-outcome")
}

fn integer_extension(base: &str, name: &str, value: u32) -> Value {
    json!({ "url": format!("{base}/StructureDefinition/{name}"), "valueInteger": value })
}

/// `candidate` when it is an id as it is, else `sha256-` and 57 hex digits of `seed`'s hash.
fn fhir_id(candidate: &str, seed: &str) -> String {
    let fits = !candidate.is_empty()
        && candidate.len() <= MAX_ID_LEN
        && !candidate.starts_with(HASHED_ID_PREFIX)
        && candidate
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.');
    if fits {
        return candidate.to_string();
    }
    let digest = Sha256::digest(seed.as_bytes());
    let mut id = String::with_capacity(MAX_ID_LEN);
    id.push_str(HASHED_ID_PREFIX);
    for byte in digest {
        id.push_str(&format!("{byte:02x}"));
    }
    id.truncate(MAX_ID_LEN);
    id
}

/// `covid19` as `Covid19`, `sore_throat-v2` as `SoreThroatV2`: `que-0`'s
/// `[A-Z]([A-Za-z0-9_]){0,254}`.
fn computable_name(id: &str) -> String {
    let mut name = String::with_capacity(id.len() + 1);
    for part in id.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            name.push(first.to_ascii_uppercase());
            name.extend(chars);
        }
    }
    if !name.starts_with(|c: char| c.is_ascii_uppercase()) {
        name.insert(0, 'Q');
    }
    name.truncate(255);
    name
}

/// Sets `key` to the primary language's text and `_key` to the others' translations.
fn put_text(target: &mut Value, key: &str, text: &Localized, content_type: &str) {
    target[key] = text.get(PRIMARY_LANG).into();
    let translations: Vec<Value> = LANGS
        .iter()
        .filter(|&&l| l != PRIMARY_LANG)
        .map(|&l| {
            let mut content = serde_json::Map::new();
            content.insert("url".into(), "content".into());
            content.insert(content_type.into(), text.get(l).into());
            json!({
                "url": TRANSLATION,
                "extension": [{ "url": "lang", "valueCode": l.as_str() }, content],
            })
        })
        .collect();
    if !translations.is_empty() {
        target[format!("_{key}")] = json!({ "extension": translations });
    }
}

fn outcome_code(status: Status) -> Option<&'static str> {
    match status {
        Status::Concluded(o) => Some(o.as_str()),
        Status::Abandoned => Some("abandoned"),
        Status::Open => None,
    }
}

/// What an outcome code is shown as: the questionnaire's final message for it.
fn outcome_display(q: &Questionnaire, code: &str) -> Localized {
    match Outcome::parse(code) {
        Some(Outcome::Hospital) => q.texts.hospital.clone(),
        Some(Outcome::Monitor) => q.texts.monitor.clone(),
        Some(Outcome::Clear) => q.texts.clear.clone(),
        Some(Outcome::Exited) => q.texts.exited.clone(),
        None => localized(
            "La persona que llamaba colgó antes del final.",
            "The caller hung up before the end.",
        ),
    }
}

fn score_text() -> Localized {
    localized("Puntuación", "Score")
}

fn outcome_text() -> Localized {
    localized("Resultado", "Outcome")
}

fn description(q: &Questionnaire) -> Localized {
    let (h, m, r) = (q.hospital_threshold, q.monitor_threshold, q.max_rejections);
    Localized {
        es: format!(
            "Cada respuesta «sí» suma el peso de su pregunta (extensión `triage-weight`). \
             Tras cualquier respuesta, una puntuación de {h} o más termina la llamada: \
             `hospital`. Tras la última, {m} o más es `monitor`, y menos, `clear`. Pulsar \
             asterisco, o {r} teclas no válidas, termina la llamada: `exited`; colgar antes \
             del final: `abandoned`."
        ),
        en: format!(
            "Each yes answer adds its question's weight (extension `triage-weight`). After \
             any answer, a score of {h} or more ends the call: `hospital`. After the last \
             one, {m} or more is `monitor`, less is `clear`. Pressing star, or {r} invalid \
             keys, ends the call: `exited`; hanging up before the end: `abandoned`."
        ),
    }
}

fn localized(es: &str, en: &str) -> Localized {
    Localized {
        es: es.to_string(),
        en: en.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CallFacts, ContactId, Event, EventKind};
    use crate::read::summarize;
    use chrono::{DateTime, Duration, TimeZone, Utc};

    const BASE: &str = "https://triage.example.org/fhir";
    const CONTACT: &str = "4a573372-1f28-4e26-b97b-000000000001";

    fn q() -> &'static Questionnaire {
        Questionnaire::embedded()
    }

    fn at(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0)
            .single()
            .unwrap_or_default()
            + Duration::minutes(min)
    }

    fn ev(seq: u64, kind: EventKind) -> Event {
        Event {
            seq,
            event_id: uuid::Uuid::nil(),
            at: at(seq as i64),
            schema: 1,
            turn: seq,
            kind,
        }
    }

    /// A call in `lang` that answers the questions in order, then the events `tail` makes.
    fn events(lang: Lang, yes: &[bool], tail: &[EventKind]) -> Vec<Event> {
        let mut kinds = vec![EventKind::CallStarted {
            questionnaire: "covid19".into(),
            questionnaire_version: 1,
            lang,
            facts: CallFacts {
                caller_hash: Some("c0ffee-caller-hash-secret".into()),
                ..CallFacts::default()
            },
        }];
        for (question, &y) in q().questions.iter().zip(yes) {
            kinds.push(EventKind::AnswerRecorded {
                question: question.id.clone(),
                yes: y,
                raw: if y { "1" } else { "0" }.into(),
                mode: Default::default(),
                confidence_pct: None,
            });
        }
        kinds.extend(tail.iter().cloned());
        kinds
            .into_iter()
            .zip(1..)
            .map(|(kind, seq)| ev(seq, kind))
            .collect()
    }

    fn concluded(outcome: Outcome, score: u32) -> EventKind {
        EventKind::TriageConcluded {
            outcome,
            score,
            reason: None,
        }
    }

    fn summary(events: &[Event], now: DateTime<Utc>) -> CallSummary {
        let id = ContactId::parse(CONTACT).unwrap_or_else(|e| panic!("{e}"));
        summarize(&id, events, now, Duration::minutes(10)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Every kind of call: (status, summary).
    fn calls() -> Vec<(Status, CallSummary)> {
        let soon = at(5);
        let late = at(60);
        let no7 = [false; 7];
        let exited = |question: &str| EventKind::CallExited {
            question: question.into(),
        };
        let ended = EventKind::CallEnded {
            ended_at: at(5),
            disconnect_reason: Some("CUSTOMER_DISCONNECT".into()),
        };
        vec![
            (
                Status::Concluded(Outcome::Hospital),
                summary(
                    &events(
                        Lang::Es,
                        &[true, true, true],
                        &[concluded(Outcome::Hospital, 55)],
                    ),
                    soon,
                ),
            ),
            (
                Status::Concluded(Outcome::Monitor),
                summary(
                    &events(
                        Lang::En,
                        &[false, true, false, false, false, false, true],
                        &[concluded(Outcome::Monitor, 35)],
                    ),
                    soon,
                ),
            ),
            (
                Status::Concluded(Outcome::Clear),
                summary(
                    &events(Lang::Es, &no7, &[concluded(Outcome::Clear, 0)]),
                    soon,
                ),
            ),
            (
                Status::Concluded(Outcome::Exited),
                summary(
                    &events(
                        Lang::Es,
                        &[true],
                        &[exited("breathing"), concluded(Outcome::Exited, 15)],
                    ),
                    soon,
                ),
            ),
            (
                Status::Abandoned,
                summary(&events(Lang::En, &[false, true], &[ended]), soon),
            ),
            (
                Status::Abandoned,
                summary(&events(Lang::Es, &[true], &[]), late),
            ),
            (Status::Open, summary(&events(Lang::Es, &[true], &[]), soon)),
            (Status::Open, summary(&events(Lang::Es, &[], &[]), soon)),
        ]
    }

    fn is_fhir_id(s: &str) -> bool {
        (1..=64).contains(&s.len())
            && s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
    }

    fn items(r: &Value) -> &[Value] {
        r["item"].as_array().map_or(&[], Vec::as_slice)
    }

    fn link_ids(r: &Value) -> Vec<&str> {
        items(r)
            .iter()
            .filter_map(|i| i["linkId"].as_str())
            .collect()
    }

    fn translation(element: &Value) -> Option<(&str, &str)> {
        let ext = element["extension"].as_array()?;
        let t = ext.iter().find(|e| e["url"] == TRANSLATION)?;
        let parts = t["extension"].as_array()?;
        let lang = parts.iter().find(|p| p["url"] == "lang")?["valueCode"].as_str()?;
        let content = parts.iter().find(|p| p["url"] == "content")?;
        let text = content["valueString"]
            .as_str()
            .or_else(|| content["valueMarkdown"].as_str())?;
        Some((lang, text))
    }

    fn extension<'a>(element: &'a Value, name: &str) -> Option<&'a Value> {
        let url = format!("{BASE}/StructureDefinition/{name}");
        element["extension"]
            .as_array()?
            .iter()
            .find(|e| e["url"] == url.as_str())
            .map(|e| &e["valueInteger"])
    }

    #[test]
    fn the_questionnaire_resource_has_the_questionnaires_shape() {
        let r = questionnaire_resource(q(), BASE);
        assert_eq!(r["resourceType"], "Questionnaire");
        assert_eq!(r["id"], "covid19-1");
        assert_eq!(r["url"], format!("{BASE}/Questionnaire/covid19"));
        assert_eq!(r["version"], "1");
        assert_eq!(r["name"], "Covid19");
        assert_eq!(r["title"], q().title.as_str());
        assert_eq!(r["status"], "active");
        assert_eq!(r["language"], "es");
        assert_eq!(extension(&r, "triage-hospital-threshold"), Some(&json!(50)));
        assert_eq!(extension(&r, "triage-monitor-threshold"), Some(&json!(25)));
        assert_eq!(extension(&r, "triage-max-rejections"), Some(&json!(10)));
        let described = r["description"].as_str().unwrap_or_default();
        assert!(
            described.contains("50") && described.contains("25"),
            "{described}"
        );
        assert_eq!(translation(&r["_description"]).map(|t| t.0), Some("en"));

        let mut expected: Vec<&str> = q().questions.iter().map(|x| x.id.as_str()).collect();
        expected.extend([SCORE_LINK_ID, OUTCOME_LINK_ID]);
        assert_eq!(link_ids(&r), expected);
        let weights: Vec<&Value> = items(&r)[..7]
            .iter()
            .filter_map(|i| extension(i, "triage-weight"))
            .collect();
        assert_eq!(
            weights,
            [15, 25, 15, 10, 10, 10, 10]
                .map(|w| json!(w))
                .iter()
                .collect::<Vec<_>>()
        );
        // Hospital can be reached after the third question (15 + 25 + 15 = 55 >= 50).
        let required: Vec<bool> = items(&r)[..7]
            .iter()
            .map(|i| i["required"] == true)
            .collect();
        assert_eq!(required, [true, true, true, false, false, false, false]);
        for (item, question) in items(&r).iter().zip(&q().questions) {
            assert_eq!(item["type"], "boolean");
            assert_eq!(item["text"], question.text.es.as_str());
            assert_eq!(
                translation(&item["_text"]),
                Some(("en", question.text.en.as_str())),
                "{}",
                question.id
            );
        }

        let score = &items(&r)[7];
        assert_eq!(
            (&score["type"], &score["readOnly"]),
            (&json!("integer"), &json!(true))
        );
        assert_eq!(translation(&score["_text"]), Some(("en", "Score")));
        let outcome = &items(&r)[8];
        assert_eq!(
            (&outcome["type"], &outcome["readOnly"]),
            (&json!("choice"), &json!(true))
        );
        let options = outcome["answerOption"]
            .as_array()
            .map_or(&[][..], Vec::as_slice);
        let codes: Vec<&str> = options
            .iter()
            .filter_map(|o| o["valueCoding"]["code"].as_str())
            .collect();
        assert_eq!(codes, OUTCOME_CODES);
        for o in options {
            let coding = &o["valueCoding"];
            assert_eq!(
                coding["system"],
                format!("{BASE}/CodeSystem/triage-outcome")
            );
            assert!(coding["display"].as_str().is_some_and(|d| !d.is_empty()));
            assert_eq!(translation(&coding["_display"]).map(|t| t.0), Some("en"));
        }
        assert_eq!(
            options[0]["valueCoding"]["display"],
            q().texts.hospital.es.as_str()
        );
        assert_eq!(
            translation(&options[3]["valueCoding"]["_display"]),
            Some(("en", q().texts.exited.en.as_str()))
        );
    }

    #[test]
    fn a_trailing_slash_of_the_base_is_ignored() {
        let slashed = questionnaire_resource(q(), &format!("{BASE}/"));
        assert_eq!(slashed, questionnaire_resource(q(), BASE));
        assert_eq!(
            questionnaire_canonical(q(), &format!("{BASE}//")),
            format!("{BASE}/Questionnaire/covid19|1")
        );
    }

    #[test]
    fn ids_are_fhir_ids_and_never_shared() {
        assert_eq!(response_id(CONTACT), CONTACT);
        assert_eq!(response_id("demo-000042"), "demo-000042");
        let odd = [
            "Demo-Upper",
            "with_underscore",
            "sha256-looks-hashed",
            &"x".repeat(65),
            "a/b:c",
        ];
        let mut seen = std::collections::HashSet::new();
        for raw in odd {
            let id = response_id(raw);
            assert!(is_fhir_id(&id), "{raw:?} -> {id:?}");
            assert!(id.starts_with("sha256-") && id.len() == 64, "{id}");
            assert!(seen.insert(id), "{raw:?} shares an id");
        }
        assert_ne!(response_id("Demo-Upper"), response_id("demo-upper"));

        let mut other = q().clone();
        other.id = "sore_throat".into();
        other.version = 12;
        assert_eq!(questionnaire_id(&other), "sore.throat-12");
        assert_eq!(computable_name(&other.id), "SoreThroat");
        assert_eq!(computable_name("2020-flu"), "Q2020Flu");
        other.id = "x".repeat(64);
        let long = questionnaire_id(&other);
        assert!(is_fhir_id(&long) && long.starts_with("sha256-"), "{long}");
    }

    #[test]
    fn a_response_names_the_questionnaire_by_canonical_and_version() {
        let canonical = questionnaire_canonical(q(), BASE);
        assert_eq!(canonical, format!("{BASE}/Questionnaire/covid19|1"));
        let qr = questionnaire_resource(q(), BASE);
        assert_eq!(
            canonical,
            format!(
                "{}|{}",
                qr["url"].as_str().unwrap_or_default(),
                qr["version"].as_str().unwrap_or_default()
            )
        );
        for (_, call) in calls() {
            let r = questionnaire_response(&call, q(), BASE);
            assert_eq!(r["resourceType"], "QuestionnaireResponse");
            assert_eq!(r["questionnaire"], canonical.as_str());
            assert_eq!(r["id"], CONTACT);
            assert_eq!(
                r["identifier"],
                json!({ "system": format!("{BASE}/sid/amazon-connect-contact-id"), "value": CONTACT })
            );
        }
    }

    #[test]
    fn every_status_maps_to_a_response_status() {
        for (status, call) in calls() {
            assert_eq!(call.status, status, "the fixture folds to {status:?}");
            let r = questionnaire_response(&call, q(), BASE);
            let expected = match status {
                Status::Concluded(Outcome::Hospital | Outcome::Monitor | Outcome::Clear) => {
                    "completed"
                }
                Status::Concluded(Outcome::Exited) | Status::Abandoned => "stopped",
                Status::Open => "in-progress",
            };
            assert_eq!(r["status"], expected, "{status:?}");
            let ids = link_ids(&r);
            let answered = call.answers.len();
            assert_eq!(
                ids.len() - answered,
                match status {
                    Status::Concluded(Outcome::Exited) | Status::Abandoned => 1,
                    Status::Concluded(_) => 2,
                    Status::Open => 0,
                },
                "{status:?}: {ids:?}"
            );
            let outcome = items(&r)
                .iter()
                .find(|i| i["linkId"] == OUTCOME_LINK_ID)
                .map(|i| &i["answer"][0]["valueCoding"]["code"]);
            match status {
                Status::Open => assert_eq!(outcome, None),
                s => assert_eq!(outcome, Some(&json!(s.as_str()))),
            }
            if let Some(score) = items(&r).iter().find(|i| i["linkId"] == SCORE_LINK_ID) {
                assert_eq!(score["answer"][0]["valueInteger"], call.score);
            }
            let authored = call.ended_at.unwrap_or(call.last_at);
            assert_eq!(
                r["authored"],
                authored.to_rfc3339_opts(SecondsFormat::Millis, true)
            );
            assert!(r["authored"].as_str().is_some_and(|a| a.ends_with('Z')));
            assert_eq!(r["language"], call.lang.as_str());
            if answered == 0 && status == Status::Open {
                assert!(r.get("item").is_none(), "no empty item list");
            }
        }
        // Every Status is covered.
        let statuses: std::collections::HashSet<&str> =
            calls().iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(statuses.len(), Status::ALL.len());
    }

    #[test]
    fn answers_come_in_questionnaire_order_in_the_calls_language() {
        let (_, mut call) = calls().swap_remove(1);
        assert_eq!(call.lang, Lang::En);
        call.answers.reverse();
        let r = questionnaire_response(&call, q(), BASE);
        let ids = link_ids(&r);
        let expected: Vec<&str> = q().questions.iter().map(|x| x.id.as_str()).collect();
        assert_eq!(ids[..7], expected[..]);
        for (item, question) in items(&r).iter().zip(&q().questions) {
            assert_eq!(item["text"], question.text.en.as_str());
        }
        let yes: Vec<bool> = items(&r)[..7]
            .iter()
            .filter_map(|i| i["answer"][0]["valueBoolean"].as_bool())
            .collect();
        assert_eq!(yes, [false, true, false, false, false, false, true]);
        let outcome = &items(&r)[8]["answer"][0]["valueCoding"];
        assert_eq!(outcome["display"], q().texts.monitor.en.as_str());
        assert_eq!(items(&r)[7]["answer"][0]["valueInteger"], 35);
    }

    #[test]
    fn the_caller_is_not_in_the_response() {
        for (_, call) in calls() {
            assert!(call.caller_hash.is_some());
            let r = questionnaire_response(&call, q(), BASE);
            let text = r.to_string();
            assert!(!text.contains("c0ffee"), "{text}");
            for key in ["subject", "author", "source"] {
                assert!(r.get(key).is_none(), "{key}");
            }
        }
    }

    #[test]
    fn another_questionnaires_texts_are_not_used() {
        let (_, call) = calls().swap_remove(0);
        let mut other = q().clone();
        other.version = 2;
        other.questions[0].text.es = "otra".into();
        let r = questionnaire_response(&call, &other, BASE);
        assert_eq!(
            r["questionnaire"],
            format!("{BASE}/Questionnaire/covid19|1")
        );
        assert_eq!(items(&r)[0]["text"], q().questions[0].text.es.as_str());
        let outcome = items(&r).iter().find(|i| i["linkId"] == OUTCOME_LINK_ID);
        assert!(outcome.is_some_and(|o| o["answer"][0]["valueCoding"].get("display").is_none()));
    }
}
