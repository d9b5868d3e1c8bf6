//! The questionnaire as versioned data. The default is embedded in the binary from
//! `covid19.v1.json`; calls record the id and version they used, so an old call's trail
//! is always read with the texts it was asked with.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

/// The language a call is held in. Spanish is the seed's and the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Es,
    En,
}

impl Lang {
    /// Parses `es` / `en` (any case, surrounding blanks ignored). `None` for anything else.
    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_ascii_lowercase().as_str() {
            "es" => Some(Lang::Es),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Es => "es",
            Lang::En => "en",
        }
    }
}

/// A language code that is not one this service speaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("use es or en")]
pub struct UnknownLang;

impl std::str::FromStr for Lang {
    type Err = UnknownLang;
    fn from_str(s: &str) -> Result<Lang, UnknownLang> {
        Lang::parse(s).ok_or(UnknownLang)
    }
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text in every supported language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Localized {
    pub es: String,
    pub en: String,
}

impl Localized {
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Es => &self.es,
            Lang::En => &self.en,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// Stable id, recorded with every answer (`contact`, `breathing`, ...).
    pub id: String,
    /// A few words for an agent's screen ("tos seca"), used in the hand-off summary.
    /// Optional: without one the id is shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<Localized>,
    /// Points added to the score on a "yes".
    pub weight: u32,
    pub text: Localized,
    /// What the caller hears, composed once (see [`Questionnaire::prompts`]) so a turn's
    /// reply borrows its text instead of building it.
    #[serde(skip)]
    prompts: PromptCache,
}

/// A question's composed [`Prompts`], once they are composed. Derived from the question and
/// its questionnaire, so it takes no part in comparisons.
#[derive(Debug, Clone, Default)]
struct PromptCache(OnceLock<Prompts>);

impl PartialEq for PromptCache {
    fn eq(&self, _: &PromptCache) -> bool {
        true
    }
}

impl Eq for PromptCache {}

/// A question's spoken texts, composed from the questionnaire's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompts {
    /// Question, then instructions.
    pub ask: Localized,
    /// Apology for the invalid key, question, instructions.
    pub ask_again: Localized,
}

impl Question {
    /// The question's short label in `lang`, or its id when it has none.
    pub fn label(&self, lang: Lang) -> &str {
        self.label.as_ref().map_or(&self.id, |l| l.get(lang))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Texts {
    /// Appended to every question (the seed's `textEnd`).
    pub instructions: Localized,
    /// Put before a question asked again after an invalid key.
    pub not_understood: Localized,
    pub hospital: Localized,
    pub monitor: Localized,
    pub clear: Localized,
    pub exited: Localized,
    pub error: Localized,
    /// Said to a `hospital` caller when nobody can take the transfer (the hospital queue is
    /// closed, full or not configured). Optional: without it the final message stands alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_agent: Option<Localized>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Questionnaire {
    pub id: String,
    pub version: u32,
    #[serde(default)]
    pub title: String,
    /// After any answer, a score at or above this ends the call with `hospital`.
    pub hospital_threshold: u32,
    /// After the last question, a score at or above this is `monitor`, else `clear`.
    pub monitor_threshold: u32,
    /// Invalid inputs tolerated in one call before it is ended as `exited`.
    pub max_rejections: u32,
    pub questions: Vec<Question>,
    pub texts: Texts,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QuestionnaireError {
    #[error("questionnaire is not valid JSON: {0}")]
    Json(String),
    #[error("questionnaire {0}: {1}")]
    Invalid(String, String),
}

const EMBEDDED_COVID19_V1: &str = include_str!("covid19.v1.json");

/// A version with the same `id@version` as a known one but other content.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("questionnaire {0} is already known with other content; versions never change")]
pub struct RegisterError(pub String);

type Registry = RwLock<HashMap<(String, u32), &'static Questionnaire>>;

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(Registry::default)
}

impl Questionnaire {
    /// `id@version`, as shown to people.
    pub fn key(&self) -> String {
        format!("{}@{}", self.id, self.version)
    }

    /// The embedded default questionnaire (the seed's, `covid19@1`).
    pub fn embedded() -> &'static Questionnaire {
        static Q: OnceLock<Questionnaire> = OnceLock::new();
        Q.get_or_init(|| match Questionnaire::from_json(EMBEDDED_COVID19_V1) {
            Ok(q) => q,
            // The embedded file is checked by a unit test; reaching this is a build defect.
            Err(e) => panic!("embedded questionnaire is broken: {e}"),
        })
    }

    /// Every questionnaire version this build knows, for reading old calls.
    pub fn catalog() -> &'static [&'static Questionnaire] {
        static C: OnceLock<Vec<&'static Questionnaire>> = OnceLock::new();
        C.get_or_init(|| vec![Questionnaire::embedded()])
    }

    /// Finds a known version by id and version: one this build embeds, or one
    /// [`Questionnaire::register`]ed by this process (a version published to the store).
    pub fn lookup(id: &str, version: u32) -> Option<&'static Questionnaire> {
        Self::catalog()
            .iter()
            .copied()
            .find(|q| q.id == id && q.version == version)
            .or_else(|| {
                let registry = registry().read().unwrap_or_else(|p| p.into_inner());
                registry.get(&(id.to_string(), version)).copied()
            })
    }

    /// Makes a published version known to [`Questionnaire::lookup`] for the rest of the
    /// process, and returns it. Versions are immutable, so each `id@version` is held once
    /// (interned: it lives as long as the process, which reads a handful of versions); the
    /// same `id@version` with other content is refused, embedded ones included.
    pub fn register(q: Questionnaire) -> Result<&'static Questionnaire, RegisterError> {
        if let Some(known) = Self::catalog()
            .iter()
            .copied()
            .find(|k| k.id == q.id && k.version == q.version)
        {
            return if *known == q {
                Ok(known)
            } else {
                Err(RegisterError(q.key()))
            };
        }
        let mut registry = registry().write().unwrap_or_else(|p| p.into_inner());
        let key = (q.id.clone(), q.version);
        if let Some(known) = registry.get(&key).copied() {
            return if *known == q {
                Ok(known)
            } else {
                Err(RegisterError(q.key()))
            };
        }
        // Compose every prompt once, before the version is shared.
        for i in 0..q.questions.len() {
            let _ = q.prompts(i);
        }
        let leaked: &'static Questionnaire = Box::leak(Box::new(q));
        registry.insert(key, leaked);
        Ok(leaked)
    }

    /// The form a version is stored and compared in: the parsed questionnaire as indented
    /// JSON, fields in the format's order. Two documents that differ only in spacing or
    /// field order have the same canonical form.
    pub fn canonical_json(&self) -> String {
        // A struct of strings and numbers always serialises.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn question(&self, index: usize) -> Option<&Question> {
        self.questions.get(index)
    }

    /// What the caller hears for question `index`: the question and the instructions, and
    /// the same after an invalid key with the apology first. Composed on first use (and
    /// for every question by [`Questionnaire::from_json`]), then borrowed.
    pub fn prompts(&self, index: usize) -> Option<&Prompts> {
        let q = self.questions.get(index)?;
        let texts = &self.texts;
        Some(q.prompts.0.get_or_init(|| {
            let join = |parts: &[&Localized]| Localized {
                es: parts.iter().map(|p| p.es.as_str()).collect(),
                en: parts.iter().map(|p| p.en.as_str()).collect(),
            };
            Prompts {
                ask: join(&[&q.text, &texts.instructions]),
                ask_again: join(&[&texts.not_understood, &q.text, &texts.instructions]),
            }
        }))
    }

    pub fn question_by_id(&self, id: &str) -> Option<(usize, &Question)> {
        self.questions.iter().enumerate().find(|(_, q)| q.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_questionnaire_is_the_seed() {
        let q = Questionnaire::embedded();
        let weights: Vec<u32> = q.questions.iter().map(|q| q.weight).collect();
        assert_eq!(weights, [15, 25, 15, 10, 10, 10, 10]);
        assert_eq!((q.hospital_threshold, q.monitor_threshold), (50, 25));
        assert_eq!(
            q.questions[0].text.es,
            "Pulse 1 si has tenido contacto con algún caso confirmado"
        );
        assert_eq!(Questionnaire::lookup("covid19", 1), Some(q));
        assert_eq!(Questionnaire::lookup("covid19", 2), None);
    }

    #[test]
    fn registered_versions_are_found_and_never_change() {
        let mut q = Questionnaire::embedded().clone();
        q.version = 900;
        q.questions[0].weight = 5;
        let held = Questionnaire::register(q.clone()).expect("a new version registers");
        assert_eq!(Questionnaire::lookup("covid19", 900), Some(held));
        assert!(std::ptr::eq(
            Questionnaire::register(q.clone()).expect("the same again"),
            held
        ));
        let mut other = q.clone();
        other.questions[0].weight = 6;
        assert_eq!(
            Questionnaire::register(other),
            Err(RegisterError("covid19@900".into()))
        );
        let mut seed = Questionnaire::embedded().clone();
        seed.hospital_threshold = 40;
        assert!(
            Questionnaire::register(seed).is_err(),
            "the embedded covid19@1 stays"
        );
        assert!(Questionnaire::register(Questionnaire::embedded().clone()).is_ok());
    }

    #[test]
    fn canonical_form_ignores_spacing() {
        let q = Questionnaire::embedded();
        let again = Questionnaire::from_json(&q.canonical_json()).expect("reads back");
        assert_eq!(&again, q);
        assert_eq!(again.canonical_json(), q.canonical_json());
    }

    #[test]
    fn rejects_broken_documents() {
        assert!(matches!(
            Questionnaire::from_json("{"),
            Err(QuestionnaireError::Json(_))
        ));
        let mut doc: serde_json::Value =
            serde_json::from_str(EMBEDDED_COVID19_V1).expect("embedded json");
        doc["questions"][1]["id"] = "contact".into();
        let err = Questionnaire::from_json(&doc.to_string()).unwrap_err();
        assert!(err.to_string().contains("also the id of"), "{err}");
    }

    #[test]
    fn prompts_are_composed_however_the_questionnaire_was_read() {
        let direct: Questionnaire =
            serde_json::from_str(EMBEDDED_COVID19_V1).expect("embedded json");
        let checked = Questionnaire::embedded();
        assert_eq!(&direct, checked);
        let p = direct.prompts(2).expect("third question");
        assert_eq!(p, checked.prompts(2).expect("third question"));
        assert_eq!(
            p.ask_again.en,
            format!(
                "{}{}{}",
                direct.texts.not_understood.en,
                direct.questions[2].text.en,
                direct.texts.instructions.en
            )
        );
        assert_eq!(direct.prompts(direct.questions.len()), None);
    }

    #[test]
    fn lang_parses_loosely() {
        assert_eq!(Lang::parse(" EN "), Some(Lang::En));
        assert_eq!(Lang::parse("es"), Some(Lang::Es));
        assert_eq!(Lang::parse("fr"), None);
    }
}
