//! An Amazon Lex V2 bot as `ConnectParticipantWithLexBot` meets it, simulated: the bot's
//! intents and sample utterances per locale ([`LexBot`]), a matcher that folds case,
//! accents and punctuation ([`fold`]), Lex's DTMF handling as the session attributes set it
//! ([`DtmfSettings`]), and the bot's code hook: a Lambda invoked with a Lex V2 event
//! ([`code_hook_event`]) whose session attributes and intent come back to the flow.
//!
//! What Connect and Lex document, and what this twin assumes where they are silent:
//! - The action's result is the intent Lex returned; `$.Lex.IntentName`,
//!   `$.Lex.IntentConfidence.Score`, `$.Lex.SessionAttributes.*` and `$.Lex.DialogState`
//!   hold it afterwards
//!   (<https://docs.aws.amazon.com/connect/latest/adminguide/connect-attrib-list.html>,
//!   "Amazon Lex contact attributes").
//! - The bot's locale must match the contact's language (`UpdateContactData`
//!   `LanguageCode`, `es-ES` for the locale `es_ES`); without one the contact's language is
//!   `en-US`. A bot without the contact's locale takes the error branch
//!   (<https://docs.aws.amazon.com/connect/latest/adminguide/set-voice.html>).
//! - Keys reach Lex as DTMF: `#` ends the input, `*` clears it and ends it, at most 1024
//!   keys, each changeable with `x-amz-lex:dtmf:*` session attributes
//!   (<https://docs.aws.amazon.com/connect/latest/adminguide/get-customer-input.html>).
//! - Matching is the twin's, not Lex's: a folded utterance equal to a sample utterance
//!   scores 1.00; an input holding a sample utterance's words in order scores the share of
//!   the input they cover; the best intent wins, a tie or a score under the bot's
//!   `NluConfidenceThreshold` is `FallbackIntent`. Keys are matched as text against the
//!   samples (so `1` matches nothing unless a sample is `1`): whether Lex maps a key to
//!   "one"/"uno" is not documented for Lex V2, so the bot's code hook, not the matcher, is
//!   what turns keys into answers.
//! - Silence (no speech, no key) takes the `InputTimeLimitExceeded` error branch (else
//!   `NoMatchingError`). Connect documents that error for the action's syntax only; what a
//!   real bot does with silence is not documented.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// The intent Lex returns when nothing matched (`AMAZON.FallbackIntent`, as the bot names
/// it).
pub const FALLBACK_INTENT: &str = "FallbackIntent";

/// A Lex V2 bot behind one alias, as the simulator runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexBot {
    /// One entry per locale the bot is built for.
    pub locales: Vec<LexLocale>,
    /// `NluConfidenceThreshold` in hundredths: a best match under it is `FallbackIntent`.
    pub nlu_threshold_pct: u8,
    /// The code hook Lambda of the alias's locales (fulfillment), if any: invoked through
    /// the flow's [`crate::Lambda`] with a Lex V2 event ([`code_hook_event`]).
    pub code_hook: Option<String>,
}

/// One locale of a [`LexBot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexLocale {
    /// Lex's locale id, e.g. `es_ES`.
    pub locale_id: String,
    /// (intent name, sample utterances), in the bot's order.
    pub intents: Vec<(String, Vec<String>)>,
}

/// What the bot made of one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recognized {
    /// The intent (or [`FALLBACK_INTENT`]).
    pub intent: String,
    /// Its confidence in hundredths; none for the fallback intent.
    pub confidence_pct: Option<u8>,
}

/// How the caller answered the bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputMode {
    /// Spoken words (Lex's `Speech`).
    Speech,
    /// Keys (Lex's `DTMF`).
    Dtmf,
}

impl InputMode {
    /// Lex's name for it (`inputMode` of a code hook event).
    pub fn as_lex(self) -> &'static str {
        match self {
            InputMode::Speech => "Speech",
            InputMode::Dtmf => "DTMF",
        }
    }
}

/// Lex's DTMF settings for one input, from the `x-amz-lex:dtmf:...:*:*` session attributes
/// the flow passes (wildcard intent and slot only; the bot has no slots).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtmfSettings {
    /// Ends the input (not part of it). Default `#`.
    pub end_character: char,
    /// Clears the keys so far and ends the input. Default `*`.
    pub deletion_character: char,
    /// Keys after which the input ends. Default 1024.
    pub max_length: usize,
}

impl Default for DtmfSettings {
    fn default() -> Self {
        DtmfSettings {
            end_character: '#',
            deletion_character: '*',
            max_length: 1024,
        }
    }
}

impl DtmfSettings {
    /// The settings `attributes` (the action's `LexSessionAttributes`, resolved) give.
    pub fn from_session_attributes(attributes: &BTreeMap<String, String>) -> DtmfSettings {
        let mut s = DtmfSettings::default();
        let single = |v: &str| {
            let mut chars = v.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Some(c),
                _ => None,
            }
        };
        for (key, value) in attributes {
            match key.as_str() {
                "x-amz-lex:dtmf:end-character:*:*" => {
                    if let Some(c) = single(value) {
                        s.end_character = c;
                    }
                }
                "x-amz-lex:dtmf:deletion-character:*:*" => {
                    if let Some(c) = single(value) {
                        s.deletion_character = c;
                    }
                }
                "x-amz-lex:dtmf:max-length:*:*" => {
                    if let Ok(n) = value.trim().parse::<usize>() {
                        s.max_length = n.clamp(1, 1024);
                    }
                }
                _ => {}
            }
        }
        s
    }

    /// The keys Lex takes from what was pressed: up to the end character, cleared by the
    /// deletion character, at most `max_length`.
    pub fn collect(&self, pressed: &str) -> String {
        let mut keys = String::new();
        for key in pressed.chars() {
            if key == self.end_character {
                break;
            }
            if key == self.deletion_character {
                keys.clear();
                break;
            }
            keys.push(key);
            if keys.chars().count() >= self.max_length {
                break;
            }
        }
        keys
    }
}

/// Folds text as the matcher compares it: lower case, accents off (`sí` = `si`, `ñ` = `n`),
/// punctuation as spaces, spaces collapsed.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        let base = match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ñ' => 'n',
            'ç' => 'c',
            c if c.is_alphanumeric() || c == '*' || c == '#' => c,
            _ => ' ',
        };
        out.push(base);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl LexBot {
    /// The locale serving a contact whose language is `language_code` (`es-ES` -> `es_ES`).
    pub fn locale(&self, language_code: &str) -> Option<&LexLocale> {
        let wanted = language_code.replace('-', "_");
        self.locales
            .iter()
            .find(|l| l.locale_id.eq_ignore_ascii_case(&wanted))
    }

    /// What the bot makes of `input` in `locale` (see the module docs for the scoring).
    pub fn recognize(&self, locale: &LexLocale, input: &str) -> Recognized {
        let folded = fold(input);
        let said: Vec<&str> = folded.split(' ').filter(|w| !w.is_empty()).collect();
        let fallback = Recognized {
            intent: FALLBACK_INTENT.to_string(),
            confidence_pct: None,
        };
        if said.is_empty() {
            return fallback;
        }
        let mut scores: Vec<(&str, u32)> = Vec::new();
        for (intent, samples) in &locale.intents {
            let best = samples.iter().map(|s| score(&said, s)).max().unwrap_or(0);
            scores.push((intent.as_str(), best));
        }
        scores.sort_by_key(|s| std::cmp::Reverse(s.1));
        match scores.as_slice() {
            [(intent, best), rest @ ..]
                if *best >= u32::from(self.nlu_threshold_pct)
                    && rest.first().is_none_or(|(_, second)| second < best) =>
            {
                Recognized {
                    intent: (*intent).to_string(),
                    confidence_pct: Some((*best).min(100) as u8),
                }
            }
            _ => fallback,
        }
    }
}

/// A sample utterance's score against the words said, in hundredths: 100 when they are the
/// same, the share of the words it covers when they hold it in order, else 0.
fn score(said: &[&str], sample: &str) -> u32 {
    let sample = fold(sample);
    let words: Vec<&str> = sample.split(' ').filter(|w| !w.is_empty()).collect();
    if words.is_empty() || words.len() > said.len() {
        return 0;
    }
    let holds = said.windows(words.len()).any(|w| w == words.as_slice());
    if holds {
        (100 * words.len() / said.len()) as u32
    } else {
        0
    }
}

/// The Lex V2 event a code hook Lambda receives for one recognized input
/// (<https://docs.aws.amazon.com/lexv2/latest/dg/lambda-input-format.html>), as the bot
/// fulfils an intent: `FulfillmentCodeHook`, the input mode and transcript, the session
/// attributes, the intent `ReadyForFulfillment`, and the interpretation with its
/// confidence.
pub fn code_hook_event(
    session_id: &str,
    locale_id: &str,
    mode: InputMode,
    transcript: &str,
    recognized: &Recognized,
    session_attributes: &BTreeMap<String, String>,
) -> Value {
    let intent = json!({
        "name": recognized.intent,
        "slots": {},
        "state": "ReadyForFulfillment",
        "confirmationState": "None",
    });
    let mut interpretation = Map::new();
    interpretation.insert("intent".into(), intent.clone());
    if let Some(pct) = recognized.confidence_pct {
        interpretation.insert("nluConfidence".into(), json!(f64::from(pct) / 100.0));
    }
    json!({
        "messageVersion": "1.0",
        "invocationSource": "FulfillmentCodeHook",
        "inputMode": mode.as_lex(),
        "responseContentType": "text/plain; charset=utf-8",
        "sessionId": session_id,
        "inputTranscript": transcript,
        "bot": {
            "id": "LOCALBOTID",
            "name": "local-twin",
            "aliasId": "LOCALALIAS",
            "aliasName": "live",
            "localeId": locale_id,
            "version": "1",
        },
        "interpretations": [Value::Object(interpretation)],
        "requestAttributes": {},
        "sessionState": {
            "sessionAttributes": session_attributes,
            "intent": intent,
            "originatingRequestId": session_id,
        },
    })
}

/// What a code hook's response gives back to the flow: the intent it closed with and the
/// session attributes, or why the response is not one Lex would take
/// (<https://docs.aws.amazon.com/lexv2/latest/dg/lambda-response-format.html>).
pub fn read_code_hook_response(
    response: &Value,
) -> Result<(String, BTreeMap<String, String>), String> {
    let state = response
        .get("sessionState")
        .and_then(Value::as_object)
        .ok_or("the code hook's response has no sessionState object")?;
    let action = state
        .get("dialogAction")
        .and_then(|a| a.get("type"))
        .and_then(Value::as_str)
        .ok_or("sessionState.dialogAction.type is missing")?;
    if action != "Close" {
        return Err(format!(
            "dialogAction {action:?}: the twin simulates fulfilment hooks that Close"
        ));
    }
    let intent = state
        .get("intent")
        .and_then(|i| i.get("name"))
        .and_then(Value::as_str)
        .ok_or("sessionState.intent.name is missing")?
        .to_string();
    let mut attributes = BTreeMap::new();
    if let Some(map) = state.get("sessionAttributes") {
        let map = map
            .as_object()
            .ok_or("sessionState.sessionAttributes is not an object")?;
        for (k, v) in map {
            let v = v
                .as_str()
                .ok_or_else(|| format!("session attribute {k:?} is not a string"))?;
            attributes.insert(k.clone(), v.to_string());
        }
    }
    Ok((intent, attributes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bot() -> LexBot {
        LexBot {
            locales: vec![LexLocale {
                locale_id: "es_ES".into(),
                intents: vec![
                    (
                        "Yes".into(),
                        vec!["sí".into(), "claro que sí".into(), "sí tengo".into()],
                    ),
                    ("No".into(), vec!["no".into(), "para nada".into()]),
                    ("Leave".into(), vec!["salir".into()]),
                ],
            }],
            nlu_threshold_pct: 40,
            code_hook: None,
        }
    }

    #[test]
    fn folding_drops_case_accents_and_punctuation() {
        assert_eq!(fold("  ¡Sí, CLARO!  "), "si claro");
        assert_eq!(fold("Año"), "ano");
        assert_eq!(fold("*"), "*");
    }

    #[test]
    fn the_matcher_scores_as_documented() {
        let b = bot();
        let es = b.locale("es-ES").expect("es_ES");
        let r = |s: &str| b.recognize(es, s);
        assert_eq!(r("Sí").intent, "Yes");
        assert_eq!(r("si").confidence_pct, Some(100));
        assert_eq!(r("¡Claro que sí!").confidence_pct, Some(100));
        // "sí tengo" covers two words of three.
        let partial = r("sí tengo fiebre");
        assert_eq!(
            (partial.intent.as_str(), partial.confidence_pct),
            ("Yes", Some(66))
        );
        // One word of three: under the threshold.
        assert_eq!(r("salir de aquí ya").intent, FALLBACK_INTENT);
        // Both intents equally: the fallback.
        assert_eq!(r("sí no").intent, FALLBACK_INTENT);
        assert_eq!(r("").intent, FALLBACK_INTENT);
        assert_eq!(r("1").intent, FALLBACK_INTENT);
        assert!(b.locale("en-US").is_none());
    }

    #[test]
    fn dtmf_follows_the_session_attributes() {
        let default = DtmfSettings::default();
        assert_eq!(default.collect("*"), "");
        assert_eq!(default.collect("12#3"), "12");
        let ours = DtmfSettings::from_session_attributes(&BTreeMap::from([
            (
                "x-amz-lex:dtmf:deletion-character:*:*".to_string(),
                "D".to_string(),
            ),
            ("x-amz-lex:dtmf:max-length:*:*".to_string(), "1".to_string()),
        ]));
        assert_eq!(ours.collect("*"), "*");
        assert_eq!(ours.collect("10"), "1");
    }

    #[test]
    fn a_code_hook_response_is_read_or_refused() {
        let ok = json!({"sessionState": {"dialogAction": {"type": "Close"},
            "intent": {"name": "Yes", "state": "Fulfilled"},
            "sessionAttributes": {"input_mode": "DTMF"}}});
        let (intent, attrs) = read_code_hook_response(&ok).expect("valid");
        assert_eq!(intent, "Yes");
        assert_eq!(attrs.get("input_mode").map(String::as_str), Some("DTMF"));
        assert!(read_code_hook_response(&json!({"sessionState": {}})).is_err());
        assert!(read_code_hook_response(&json!({"sessionState": {"dialogAction": {"type": "Delegate"}, "intent": {"name": "Yes"}}})).is_err());
    }
}
