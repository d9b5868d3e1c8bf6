//! The response Connect gets (docs/contracts.md, "Output").

use crate::domain::{Lang, Outcome, Questionnaire, Reply};
use std::collections::BTreeMap;

/// The response Connect gets: a flat map of strings. Its keys, in the order they are
/// written: `continue`, `outcome`, `question`, `score`, `text`, `triage_outcome`,
/// `triage_questionnaire`, `triage_score`, `triage_summary`, `turn` (only those that apply;
/// see docs/contracts.md, "Output"). Texts are borrowed from the questionnaire; numbers are
/// written once; the hand-off (`triage_*`, when the triage is over) is composed once.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    said: Said,
    score: Digits,
    text: &'static str,
    /// For a `hospital` outcome: what to do when nobody can take the transfer.
    no_agent_text: Option<&'static str>,
    /// For a `hospital` outcome: the nurse team's task, should nobody take the transfer.
    task_description: Option<String>,
    /// The hand-off attributes, when the triage is over (the apology's included).
    handoff: Option<Box<HandoffKeys>>,
}

/// The values of the `triage_*` keys.
#[derive(Clone, PartialEq, Eq)]
struct HandoffKeys {
    outcome: &'static str,
    questionnaire: String,
    summary: String,
}

/// What a response tells the flow.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Said {
    /// Ask this question; the answer comes back with this turn token.
    Ask {
        question: &'static str,
        turn: Digits,
    },
    /// The triage is over with this outcome.
    End(Outcome),
    /// The store could not be reached in time: a calm apology, `outcome=error`. Never an
    /// event: nothing was recorded.
    Apology,
}

impl Response {
    /// Every key a response can hold, in the order they are written.
    pub const KEYS: [&'static str; 12] = [
        "continue",
        "no_agent_text",
        "outcome",
        "question",
        "score",
        "task_description",
        "text",
        "triage_outcome",
        "triage_questionnaire",
        "triage_score",
        "triage_summary",
        "turn",
    ];

    /// The `outcome` of an apology (store unavailable), which no event ever records.
    pub const APOLOGY_OUTCOME: &'static str = "error";

    /// The calm apology given when the store cannot be reached, in the call's language and
    /// with its score as far as it is known.
    pub fn apology(q: &'static Questionnaire, lang: Lang, score: u32) -> Response {
        Response {
            said: Said::Apology,
            score: Digits::new(u64::from(score)),
            text: q.texts.error.get(lang),
            no_agent_text: None,
            task_description: None,
            handoff: Some(Box::new(HandoffKeys {
                outcome: Self::APOLOGY_OUTCOME,
                questionnaire: q.key(),
                summary: String::new(),
            })),
        }
    }

    /// For a `hospital` outcome, the description of the task the flow creates for the nurse
    /// team when nobody can take the call: the outcome, score, questionnaire and yes answers,
    /// and the command that shows the whole trail. Never a phone number. Other responses are
    /// unchanged.
    pub fn with_contact(mut self, contact_id: &crate::domain::ContactId) -> Response {
        if let (Said::End(crate::domain::Outcome::Hospital), Some(h)) = (&self.said, &self.handoff)
        {
            self.task_description = Some(format!(
                "Hospital triage (score {}, {}) and nobody could take the call. Yes answers: {}. Trail: triage trail {contact_id}",
                self.score.as_str(),
                h.questionnaire,
                if h.summary.is_empty() { "none" } else { &h.summary },
            ));
        }
        self
    }

    /// Whether this is the apology.
    pub fn is_apology(&self) -> bool {
        matches!(self.said, Said::Apology)
    }

    /// The value of one key, as Connect sees it.
    pub fn get(&self, key: &str) -> Option<&str> {
        match (key, &self.said) {
            ("continue", Said::Ask { .. }) => Some("1"),
            ("continue", _) => Some("0"),
            ("no_agent_text", _) => self.no_agent_text,
            ("task_description", _) => self.task_description.as_deref(),
            ("outcome", Said::End(o)) => Some(o.as_str()),
            ("outcome", Said::Apology) => Some(Self::APOLOGY_OUTCOME),
            ("question", Said::Ask { question, .. }) => Some(question),
            ("score", _) => Some(self.score.as_str()),
            ("text", _) => Some(self.text),
            ("turn", Said::Ask { turn, .. }) => Some(turn.as_str()),
            ("triage_outcome", _) => self.handoff.as_ref().map(|h| h.outcome),
            ("triage_questionnaire", _) => self.handoff.as_ref().map(|h| h.questionnaire.as_str()),
            ("triage_score", _) => self.handoff.as_ref().map(|_| self.score.as_str()),
            ("triage_summary", _) => self.handoff.as_ref().map(|h| h.summary.as_str()),
            _ => None,
        }
    }

    /// The keys present and their values, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        Self::KEYS
            .iter()
            .filter_map(move |&k| self.get(k).map(|v| (k, v)))
    }

    /// The response as an owned map (for the flow interpreter and tests).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

impl From<Reply<'static>> for Response {
    fn from(reply: Reply<'static>) -> Response {
        let said = match reply {
            Reply::Ask { question, turn, .. } => Said::Ask {
                question,
                turn: Digits::new(turn),
            },
            Reply::End { outcome, .. } => Said::End(outcome),
        };
        let no_agent_text = match reply {
            Reply::End {
                outcome: crate::domain::Outcome::Hospital,
                call,
                ..
            } => call
                .questionnaire
                .texts
                .no_agent
                .as_ref()
                .map(|t| t.get(call.lang)),
            _ => None,
        };
        let handoff = reply.handoff().map(|h| {
            Box::new(HandoffKeys {
                outcome: h.outcome.as_str(),
                questionnaire: h.questionnaire,
                summary: h.summary,
            })
        });
        Response {
            said,
            score: Digits::new(u64::from(reply.score())),
            text: reply.text(),
            no_agent_text,
            task_description: None,
            handoff,
        }
    }
}

impl serde::Serialize for Response {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// A number's decimal digits, kept inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Digits {
    buf: [u8; 20],
    len: u8,
}

impl Digits {
    fn new(n: u64) -> Digits {
        let mut itoa = itoa::Buffer::new();
        let text = itoa.format(n).as_bytes();
        let mut buf = [0u8; 20];
        buf[..text.len()].copy_from_slice(text);
        Digits {
            buf,
            len: text.len() as u8,
        }
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("")
    }
}
