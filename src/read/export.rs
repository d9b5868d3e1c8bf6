//! `triage export`: one flat row per answer, for DuckDB, pandas or a spreadsheet. Rows are
//! written as each call is read: memory stays constant whatever the range.

use super::{for_each_call, CallQuery, Progress, Reader};
use crate::output::csv_writer;
use chrono::SecondsFormat;
use serde::Serialize;
use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated, with a header line; `yes` is `true`/`false`.
    Csv,
    /// HL7 FHIR R4: one `QuestionnaireResponse` per call (not per answer), one a line, as
    /// FHIR Bulk Data files are (NDJSON); each names its questionnaire version's canonical
    /// (`triage questionnaire fhir ID@VERSION` writes that `Questionnaire`). See
    /// [`super::fhir`].
    Fhir,
}

/// The canonical base URL of FHIR resources when `TRIAGE_FHIR_BASE` is not set: a reserved
/// example domain, to be replaced by the health authority's own.
pub const DEFAULT_FHIR_BASE: &str = "https://connect-triage.example/fhir";

/// One answer, with what analysts group by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnswerRow<'a> {
    pub contact_id: &'a str,
    pub started: String,
    pub question: &'a str,
    /// 1-based position of the question in the questionnaire.
    pub position: usize,
    pub question_text: &'a str,
    pub yes: bool,
    /// The key as Connect stored it (`1`, `0`, `Timeout`, empty).
    pub raw: &'a str,
    pub at: String,
    pub seq: u64,
    pub lang: &'static str,
    /// The call's outcome: `hospital`, `monitor`, `clear`, `exited`, `abandoned`, `open`.
    pub outcome: &'static str,
    /// The call's final score.
    pub score: u32,
    pub caller_hash: &'a str,
}

pub const HEADERS: [&str; 13] = [
    "contact_id",
    "started",
    "question",
    "position",
    "question_text",
    "yes",
    "raw",
    "at",
    "seq",
    "lang",
    "outcome",
    "score",
    "caller_hash",
];

impl AnswerRow<'_> {
    fn cells(&self) -> Vec<String> {
        vec![
            self.contact_id.to_string(),
            self.started.clone(),
            self.question.to_string(),
            self.position.to_string(),
            self.question_text.to_string(),
            self.yes.to_string(),
            self.raw.to_string(),
            self.at.clone(),
            self.seq.to_string(),
            self.lang.to_string(),
            self.outcome.to_string(),
            self.score.to_string(),
            self.caller_hash.to_string(),
        ]
    }
}

/// Where the rows go: CSV through the `csv` crate's writer, or JSON lines.
enum Sink<'a> {
    Csv(Box<csv::Writer<&'a mut dyn Write>>),
    Jsonl(&'a mut dyn Write),
    Fhir(&'a mut dyn Write),
}

/// Writes every answer of `query` to `out`; calls `progress` after every `every` calls and
/// at the end (once: not twice when the total is a multiple of `every`). Returns the totals.
/// `fhir_base` is the canonical base of [`ExportFormat::Fhir`]'s references.
pub async fn export(
    reader: &Reader,
    query: &CallQuery,
    out: &mut dyn Write,
    format: ExportFormat,
    fhir_base: &str,
    every: u64,
    mut progress: impl FnMut(Progress),
) -> Result<Progress, super::ReadError> {
    let mut done = Progress::default();
    let mut sink = match format {
        ExportFormat::Csv => {
            let mut w = csv_writer(out);
            w.write_record(HEADERS)?;
            Sink::Csv(Box::new(w))
        }
        ExportFormat::Jsonl => Sink::Jsonl(out),
        ExportFormat::Fhir => Sink::Fhir(out),
    };
    for_each_call(reader, query, |call, _| {
        if let Sink::Fhir(out) = &mut sink {
            // The call's own version: every version the reader could read is known.
            let response = match crate::domain::Questionnaire::lookup(
                &call.questionnaire,
                call.questionnaire_version,
            ) {
                Some(q) => super::fhir::questionnaire_response(&call, q, fhir_base),
                None => {
                    return Err(super::ReadError::Fold {
                        contact_id: call.contact_id.clone(),
                        source: crate::domain::FoldError {
                            seq: 1,
                            kind: "CallStarted",
                            why: format!(
                                "questionnaire {}@{} is not known",
                                call.questionnaire, call.questionnaire_version
                            ),
                        },
                    })
                }
            };
            serde_json::to_writer(&mut **out, &response)?;
            writeln!(out)?;
            done.answers += call.answers.len() as u64;
            done.calls += 1;
            if every > 0 && done.calls % every == 0 {
                progress(done);
            }
            return Ok(());
        }
        let t = |at: chrono::DateTime<chrono::Utc>| at.to_rfc3339_opts(SecondsFormat::Millis, true);
        let started = t(call.started_at);
        for a in &call.answers {
            let row = AnswerRow {
                contact_id: call.contact_id.as_str(),
                started: started.clone(),
                question: &a.question,
                position: a.index + 1,
                question_text: &a.question_text,
                yes: a.yes,
                raw: &a.raw,
                at: t(a.at),
                seq: a.seq,
                lang: call.lang.as_str(),
                outcome: call.status.as_str(),
                score: call.score,
                caller_hash: call.caller_hash.as_deref().unwrap_or_default(),
            };
            match &mut sink {
                Sink::Jsonl(out) => {
                    serde_json::to_writer(&mut **out, &row)?;
                    writeln!(out)?;
                }
                Sink::Csv(w) => w.write_record(row.cells())?,
                Sink::Fhir(_) => {}
            }
            done.answers += 1;
        }
        done.calls += 1;
        if every > 0 && done.calls % every == 0 {
            progress(done);
        }
        Ok(())
    })
    .await?;
    match &mut sink {
        Sink::Jsonl(out) | Sink::Fhir(out) => out.flush()?,
        Sink::Csv(w) => w.flush()?,
    }
    if every == 0 || done.calls % every != 0 {
        progress(done);
    }
    Ok(done)
}
