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
            writeln!(
                out,
                "{}",
                csv_line(T::headers().iter().map(|h| h.to_string()))
            )?;
            for r in rows {
                writeln!(out, "{}", csv_line(r.cells().into_iter()))?;
            }
            Ok(())
        }
        Format::Table => write_table(out, T::headers(), rows.iter().map(|r| r.cells())),
    }
}

pub fn csv_line(cells: impl Iterator<Item = String>) -> String {
    cells
        .map(|c| {
            if c.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

const MAX_CELL: usize = 60;

pub fn write_table(
    out: &mut dyn Write,
    headers: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) -> io::Result<()> {
    let rows: Vec<Vec<String>> = rows
        .map(|r| {
            r.into_iter()
                .map(|c| {
                    if c.chars().count() > MAX_CELL {
                        let cut: String = c.chars().take(MAX_CELL - 1).collect();
                        format!("{cut}…")
                    } else {
                        c
                    }
                })
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    writeln!(
        out,
        "{}",
        line(headers.iter().map(|h| h.to_string()).collect())
    )?;
    writeln!(
        out,
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  ")
    )?;
    for r in rows {
        writeln!(out, "{}", line(r))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it() {
        let l = csv_line(["a".into(), "b,c".into(), "say \"hi\"".into()].into_iter());
        assert_eq!(l, "a,\"b,c\",\"say \"\"hi\"\"\"");
    }
}
