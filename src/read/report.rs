//! `triage report`: one self-contained HTML page (no network: data and script inline) with
//! charts of outcomes per day, yes-rate per question and the drop-off funnel, drawn as SVG by
//! the page's own script from the statistics embedded in it. After drawing, the script
//! writes what it drew into `#render-check` (`data-day-bars`, `data-yes-bars`,
//! `data-funnel-bars`), so a headless browser's DOM dump proves the charts rendered.

use super::stats::Stats;

/// Outcome colours, in stacking order.
pub const OUTCOMES: [(&str, &str); 6] = [
    ("hospital", "#c0392b"),
    ("monitor", "#e67e22"),
    ("clear", "#27ae60"),
    ("exited", "#7f8c8d"),
    ("abandoned", "#34495e"),
    ("open", "#bdc3c7"),
];

/// Bars the page's script draws for `stats`: (outcomes per day, yes-rate, funnel). Stacked
/// day bars have one segment per non-zero outcome count.
pub fn expected_bars(stats: &Stats) -> (usize, usize, usize) {
    let day = stats
        .days
        .iter()
        .map(|d| {
            [
                d.hospital,
                d.monitor,
                d.clear,
                d.exited,
                d.abandoned,
                d.open,
            ]
            .iter()
            .filter(|n| **n > 0)
            .count()
        })
        .sum();
    let yes = stats
        .questions
        .iter()
        .filter(|q| q.yes_rate.is_some())
        .count();
    (day, yes, stats.questions.len())
}

/// The page: `templates/report.html` through askama, which escapes the title and the range
/// as HTML text. The statistics and the colours go in as JSON inside
/// `<script type="application/json">`, where "<" is escaped so it can never close the tag.
#[derive(askama::Template)]
#[template(path = "report.html")]
struct Page<'a> {
    title: &'a str,
    range: String,
    data: String,
    colours: String,
}

/// Why the page could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("the statistics do not serialise: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the report template failed: {0}")]
    Template(#[from] askama::Error),
}

/// The page. `title` is shown as text (escaped).
pub fn render(stats: &Stats, title: &str) -> Result<String, RenderError> {
    let json = |v: String| v.replace('<', "\\u003c");
    let page = Page {
        title,
        range: format!("{} to {}, {} calls", stats.from, stats.to, stats.calls),
        data: json(serde_json::to_string(stats)?),
        colours: json(serde_json::to_string(&OUTCOMES)?),
    };
    Ok(askama::Template::render(&page)?)
}
