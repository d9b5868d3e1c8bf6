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

/// The page. `title` is shown as text (escaped).
pub fn render(stats: &Stats, title: &str) -> Result<String, serde_json::Error> {
    // Inside <script>, "<" must never start a tag: JSON allows it escaped.
    let data = serde_json::to_string(stats)?.replace('<', "\\u003c");
    let colours = serde_json::to_string(&OUTCOMES)?;
    Ok(PAGE
        .replace("{{TITLE}}", &escape(title))
        .replace(
            "{{RANGE}}",
            &escape(&format!(
                "{} to {}, {} calls",
                stats.from, stats.to, stats.calls
            )),
        )
        .replace("{{COLOURS}}", &colours)
        .replace("{{DATA}}", &data))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{TITLE}}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; }
.legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
svg text { font-size: 11px; fill: #333; }
#render-check { color: #888; font-size: 12px; }
</style>
</head>
<body>
<h1>{{TITLE}}</h1>
<p>{{RANGE}}</p>
<h2>Outcomes per day</h2>
<div class="legend" id="legend"></div>
<svg id="chart-days" width="900" height="280" role="img" aria-label="outcomes per day"></svg>
<h2>Yes-rate per question</h2>
<svg id="chart-yes" width="900" height="60" role="img" aria-label="yes-rate per question"></svg>
<h2>Drop-off funnel (calls asked each question; exits and hang-ups there)</h2>
<svg id="chart-funnel" width="900" height="60" role="img" aria-label="drop-off funnel"></svg>
<p id="render-check">charts not drawn (scripts disabled?)</p>
<script type="application/json" id="stats">{{DATA}}</script>
<script>
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var stats = JSON.parse(document.getElementById("stats").textContent);
  var colours = {{COLOURS}};
  function el(parent, name, attrs, text) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    parent.appendChild(e);
    return e;
  }
  var legend = document.getElementById("legend");
  colours.forEach(function (c) {
    var s = document.createElement("span");
    var i = document.createElement("i");
    i.style.background = c[1];
    s.appendChild(i);
    s.appendChild(document.createTextNode(c[0]));
    legend.appendChild(s);
  });

  // Outcomes per day: one stacked bar per day.
  var days = document.getElementById("chart-days");
  var H = 220, top = 20, left = 40;
  var max = Math.max.apply(null, [1].concat(stats.days.map(function (d) { return d.calls; })));
  var bw = Math.max(4, Math.min(60, (860 - left) / Math.max(1, stats.days.length) - 6));
  var dayBars = 0;
  el(days, "line", { x1: left, y1: top + H, x2: 890, y2: top + H, stroke: "#999" });
  el(days, "text", { x: 2, y: top + 10 }, String(max));
  stats.days.forEach(function (d, i) {
    var x = left + 6 + i * (bw + 6), y = top + H;
    colours.forEach(function (c) {
      var n = d[c[0]] || 0;
      if (n <= 0) return;
      var h = n / max * H;
      y -= h;
      var r = el(days, "rect", { "class": "bar day-bar", x: x, y: y, width: bw, height: h, fill: c[1] });
      el(r, "title", {}, d.day + " " + c[0] + ": " + n);
      dayBars++;
    });
    if (stats.days.length <= 31) el(days, "text", { x: x, y: top + H + 14 }, d.day.slice(5));
  });

  // Horizontal bars, one row per question.
  function rows(svg, value, label, maxValue, cls, fill, extra) {
    var n = 0, rowH = 24, labelW = 160, width = 460;
    svg.setAttribute("height", String(10 + rowH * stats.questions.length));
    stats.questions.forEach(function (q, i) {
      var y = 6 + i * rowH;
      el(svg, "text", { x: 0, y: y + 15 }, q.position + ". " + q.question);
      var v = value(q);
      if (v === null || v === undefined) {
        el(svg, "text", { x: labelW, y: y + 15 }, "no answers");
        return;
      }
      var w = maxValue > 0 ? v / maxValue * width : 0;
      var r = el(svg, "rect", { "class": "bar " + cls, x: labelW, y: y + 3, width: Math.max(w, 1), height: rowH - 8, fill: fill });
      el(r, "title", {}, q.text);
      el(svg, "text", { x: labelW + Math.max(w, 1) + 6, y: y + 15 }, label(q) + (extra ? extra(q) : ""));
      n++;
    });
    return n;
  }
  var yesBars = rows(document.getElementById("chart-yes"),
    function (q) { return q.yes_rate; },
    function (q) { return Math.round(q.yes_rate * 100) + "% yes (" + q.yes + "/" + (q.yes + q.no) + ")"; },
    1, "yes-bar", "#2980b9");
  var maxAsked = Math.max.apply(null, [0].concat(stats.questions.map(function (q) { return q.asked; })));
  var funnelBars = rows(document.getElementById("chart-funnel"),
    function (q) { return q.asked; },
    function (q) { return q.asked + " asked"; },
    maxAsked, "funnel-bar", "#8e44ad",
    function (q) { return (q.exits || q.hangups) ? ", " + q.exits + " exits, " + q.hangups + " hang-ups" : ""; });

  var check = document.getElementById("render-check");
  check.setAttribute("data-day-bars", String(dayBars));
  check.setAttribute("data-yes-bars", String(yesBars));
  check.setAttribute("data-funnel-bars", String(funnelBars));
  check.textContent = "drawn: " + dayBars + " day bars, " + yesBars + " yes-rate bars, " + funnelBars + " funnel bars";
})();
</script>
</body>
</html>
"##;
