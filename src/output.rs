//! Tables, JSON and CSV for people and analysts' tools.

use serde::Serialize;
use std::io::{self, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
    Csv,
}

/// Rows that can be shown as a table or CSV (JSON uses serde).
pub trait Tabular: Serialize {
    fn headers() -> &'static [&'static str];
    fn cells(&self) -> Vec<String>;
}

pub fn write_rows<T: Tabular>(out: &mut dyn Write, rows: &[T], format: Format) -> io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, rows)?;
            writeln!(out)
        }
        Format::Csv => {
            let mut w = csv_writer(out);
            w.write_record(T::headers())?;
            for r in rows {
                w.write_record(r.cells())?;
            }
            w.flush()
        }
        Format::Table => write_table(out, T::headers(), rows.iter().map(|r| r.cells())),
    }
}

/// A CSV writer (the `csv` crate: RFC 4180 quoting, `\n` line ends) onto `out`.
pub fn csv_writer(out: &mut dyn Write) -> csv::Writer<&mut dyn Write> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(out)
}

/// Cells longer than this are cut, with `…`, in tables (CSV and JSON keep them whole).
const MAX_CELL: usize = 60;

/// A plain table for the terminal: the header, a line of dashes under each column, the
/// rows; columns two spaces apart, aligned by display width (comfy-table measures wide
/// characters, e.g. CJK or emoji, as the terminal shows them); no trailing blanks.
pub fn write_table(
    out: &mut dyn Write,
    headers: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) -> io::Result<()> {
    use comfy_table::{presets, CellAlignment, ContentArrangement, Table, TableComponent};
    let cut = |c: String| {
        if c.chars().count() > MAX_CELL {
            let kept: String = c.chars().take(MAX_CELL - 1).collect();
            format!("{kept}…")
        } else {
            c
        }
    };
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_style(TableComponent::VerticalLines, ' ')
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.to_vec());
    for r in rows {
        table.add_row(r.into_iter().map(cut).collect::<Vec<_>>());
    }
    for (i, column) in table.column_iter_mut().enumerate() {
        // One space of padding before every column but the first, plus the vertical
        // line's space: two spaces between columns.
        column.set_padding((u16::from(i > 0), 0));
        column.set_cell_alignment(CellAlignment::Left);
    }
    let widths = table.column_max_content_widths();
    let mut lines = table.lines();
    if let Some(header) = lines.next() {
        writeln!(out, "{}", header.trim_end())?;
    }
    let dashes: Vec<String> = widths.iter().map(|w| "-".repeat(usize::from(*w))).collect();
    writeln!(out, "{}", dashes.join("  "))?;
    for line in lines {
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it() {
        let mut out = Vec::new();
        csv_writer(&mut out)
            .write_record(["a", "b,c", "say \"hi\""])
            .expect("csv");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "a,\"b,c\",\"say \"\"hi\"\"\"\n"
        );
    }

    #[test]
    fn tables_align_by_display_width_and_keep_their_shape() {
        let mut out = Vec::new();
        write_table(
            &mut out,
            &["seq", "text", "n"],
            [
                vec!["1".into(), "abc".into(), "7".into()],
                vec!["10".into(), "日本".into(), "".into()],
                vec!["2".into(), "x".repeat(70), "1".into()],
            ]
            .into_iter(),
        )
        .expect("table");
        let text = String::from_utf8(out).expect("utf8");
        let cut = format!("{}…", "x".repeat(59));
        assert_eq!(
            text,
            format!(
                "seq  text{pad}  n\n---  {dashes}  -\n1    abc{pad2}  7\n10   日本\n2    {cut}  1\n",
                pad = " ".repeat(56),
                dashes = "-".repeat(60),
                pad2 = " ".repeat(57),
            )
        );
    }
}
