//! Answers given through the Amazon Lex V2 answers bot (connect/lex-bot.json): what the
//! flow passes after `ConnectParticipantWithLexBot`, turned into the key the turn decides
//! on, with how it was given.
//!
//! The flow's Lambda parameters on that path (docs/contracts.md, "Input"):
//! - `intent`: `$.Lex.IntentName`, the intent the bot returned;
//! - `confidence`: `$.Lex.IntentConfidence.Score`, 0.00-1.00;
//! - `input_mode`: how the caller answered, `Speech` or `DTMF` (Connect has no attribute
//!   for it: see connect/README.md, "Speech");
//! - `dtmf`: the keys, when the caller pressed them.
//!
//! Attribute names: https://docs.aws.amazon.com/connect/latest/adminguide/connect-attrib-list.html
//! ("Amazon Lex contact attributes"). An intent of the bot with at least the bot file's
//! `min_confidence` becomes its key (`Yes` 1, `No` 0, `Leave` *); anything else (the
//! fallback intent, an empty result, a low confidence) is an answer the turn does not
//! understand, recorded as an invalid input (`speech:fallback`, `speech:none`, or
//! `speech:INTENT` when unsure) and asked again. Never a
//! transcript: the bot's words are not passed to the Lambda at all.

use crate::domain::InputMode;
use serde::Deserialize;
use std::sync::OnceLock;

/// The intent Lex returns when nothing matched (every bot has it: `AMAZON.FallbackIntent`,
/// named `FallbackIntent` in template.yaml): one name for the Lambda and the simulator.
pub use crate::flow::lex::FALLBACK_INTENT;

/// The bot definition, as deployed (scripts/gen-template.py reads the same file).
pub const BOT_JSON: &str = include_str!("../../connect/lex-bot.json");

#[derive(Debug, Deserialize)]
pub struct Bot {
    pub name: String,
    pub nlu_confidence_threshold: f64,
    /// Below this confidence a matched intent is asked again.
    pub min_confidence: f64,
    pub intents: Vec<BotIntent>,
    pub locales: Vec<BotLocale>,
    /// Keys the bot takes as they are: key -> intent.
    pub dtmf: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
pub struct BotIntent {
    pub name: String,
    /// The key this intent stands for.
    pub answer: String,
}

#[derive(Debug, Deserialize)]
pub struct BotLocale {
    pub locale_id: String,
    /// The questionnaire language this locale serves (`es`, `en`).
    pub lang: String,
    /// Connect's `$.LanguageCode` for it (`es-ES`).
    pub language_code: String,
    pub voice: String,
    pub utterances: std::collections::BTreeMap<String, Vec<String>>,
}

/// The answers bot of this build. The file is checked by a unit test; reaching the panic is
/// a build defect.
pub fn bot() -> &'static Bot {
    static B: OnceLock<Bot> = OnceLock::new();
    B.get_or_init(|| match serde_json::from_str(BOT_JSON) {
        Ok(b) => b,
        Err(e) => panic!("connect/lex-bot.json is broken: {e}"),
    })
}

impl Bot {
    /// The key an intent stands for.
    pub fn answer_of(&self, intent: &str) -> Option<&str> {
        self.intents
            .iter()
            .find(|i| i.name == intent)
            .map(|i| i.answer.as_str())
    }
}

/// What the turn decides on: the key, how it was given, the confidence in percent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heard {
    pub answer: String,
    pub mode: InputMode,
    pub confidence_pct: Option<u8>,
}

/// Reads the bot path's parameters (see the module docs). `None` when the flow did not ask
/// through the bot (no `intent` parameter): the keyed path as before.
pub fn heard(
    intent: Option<&str>,
    confidence: Option<&str>,
    input_mode: Option<&str>,
    dtmf: Option<&str>,
) -> Option<Heard> {
    let intent = intent?.trim();
    let keyed = input_mode.is_some_and(|m| m.trim().eq_ignore_ascii_case("dtmf"));
    if keyed {
        // Keys pressed during the bot's prompt: taken as keys, as GetParticipantInput's are.
        let keys = dtmf.map(str::trim).filter(|k| !k.is_empty());
        let answer = match keys {
            Some(k) => k.to_string(),
            None => bot().answer_of(intent).unwrap_or("").to_string(),
        };
        return Some(Heard {
            answer,
            mode: InputMode::Dtmf,
            confidence_pct: None,
        });
    }
    let score = confidence
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .and_then(|c| c.parse::<f64>().ok())
        .filter(|c| c.is_finite() && (0.0..=1.0).contains(c));
    let pct = score.map(|c| (c * 100.0).round() as u8);
    let confident = score.is_none_or(|c| c >= bot().min_confidence);
    let answer = match bot().answer_of(intent) {
        Some(key) if confident => key.to_string(),
        // The fallback intent, an empty result, or an answer the bot was not sure of:
        // not understood, asked again. Named by its intent, never by what was said.
        _ if intent.is_empty() => "speech:none".to_string(),
        _ if intent == FALLBACK_INTENT => "speech:fallback".to_string(),
        _ => format!("speech:{intent}"),
    };
    Some(Heard {
        answer,
        mode: InputMode::Speech,
        confidence_pct: pct,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bot_file_is_whole() {
        let b = bot();
        assert_eq!(b.answer_of("Yes"), Some("1"));
        assert_eq!(b.answer_of("No"), Some("0"));
        assert_eq!(b.answer_of("Leave"), Some("*"));
        assert!(b.min_confidence > b.nlu_confidence_threshold);
        for loc in &b.locales {
            for i in &b.intents {
                assert!(
                    !loc.utterances.get(&i.name).is_none_or(Vec::is_empty),
                    "{} has no utterances for {}",
                    loc.locale_id,
                    i.name
                );
            }
            assert_eq!(loc.utterances.len(), b.intents.len(), "{}", loc.locale_id);
        }
        for (key, intent) in &b.dtmf {
            assert_eq!(b.answer_of(intent), Some(key.as_str()));
        }
    }

    #[test]
    fn spoken_intents_become_keys_and_the_rest_is_asked_again() {
        let h = |i, c, m, d| heard(i, c, m, d).expect("bot path");
        assert_eq!(
            h(Some("Yes"), Some("0.87"), Some("Speech"), None),
            Heard {
                answer: "1".into(),
                mode: InputMode::Speech,
                confidence_pct: Some(87)
            }
        );
        assert_eq!(h(Some("Leave"), Some("0.95"), None, None).answer, "*");
        // Below the bot file's min_confidence: not understood.
        assert_eq!(
            h(Some("No"), Some("0.41"), Some("Speech"), None).answer,
            "speech:No"
        );
        assert_eq!(
            h(Some("FallbackIntent"), Some(""), Some("Speech"), None).answer,
            "speech:fallback"
        );
        assert_eq!(h(Some(""), None, None, None).answer, "speech:none");
        // Keys pressed to the bot are keys.
        assert_eq!(
            h(Some("FallbackIntent"), None, Some("DTMF"), Some("1")),
            Heard {
                answer: "1".into(),
                mode: InputMode::Dtmf,
                confidence_pct: None
            }
        );
        // Nonsense confidence is no confidence.
        assert_eq!(h(Some("Yes"), Some("7"), None, None).confidence_pct, None);
        assert_eq!(
            heard(None, Some("0.9"), None, None),
            None,
            "no intent: the keyed path"
        );
    }
}
