//! Spreadsheets (XLSX, XLS, ODS, CSV, TSV) → Markdown records.
//!
//! Each sheet becomes a section under a `# <sheet name>` heading (a CSV or TSV file is one
//! sheet without a heading; its rows are located in a sheet named [`DELIMITED_SHEET`], which
//! `parse_bytes_with_limits` renames after the file's stem, as a spreadsheet program does). The
//! header row is the first non-empty row; each following non-empty row is written as one
//! paragraph that repeats the headers, so a chunk stands on its own:
//!
//! ```text
//! # Renewals
//!
//! Customer: Kestrel; ARR: 412,000; Renewal: 2025-12-31
//! ```
//!
//! Empty cells are left out; a column whose header is empty is named by its letter (`G:`). A
//! first row that holds a single value (a title, often merged across the table) above a row
//! with more values is written as a paragraph, and the header is the row after it. Values of
//! merged cells fill their whole region, so a header merged over two columns names both. Every
//! record is marked with its row number as the spreadsheet shows it ([`Place::Row`]); the
//! heading with the header's row.
//!
//! Values are the ones the application last computed and saved (never formulas; a formula
//! without a saved value is an empty cell), written as a person reads them (see `value.rs`):
//! dates `2025-12-31`, date-times `2025-12-31 14:30`, whole numbers without `.0`, no float
//! noise, percentages, thousands separators and decimals when the cell's number format asks
//! for them, booleans `TRUE`/`FALSE`.
//!
//! Hidden sheets are skipped with a note; so are chart sheets. Work is bounded by
//! [`LoadLimits`]: the zip parts of XLSX and ODS may not inflate past `max_expanded_bytes`, and
//! at most `max_sheet_cells` non-empty cells are read from one file: the sheet where the limit
//! is reached keeps its rows up to there, with a note, and later sheets are skipped with a
//! note. Readers: `workbook.rs` (XLSX and XLS, through `calamine`), `ods.rs` (ODS, streamed
//! with `quick-xml`), `delimited.rs` (CSV and TSV, with `csv`).

mod delimited;
mod ods;
#[cfg(test)]
mod tests;
mod value;
mod workbook;

use super::{MarkdownWriter, Read, collapse_whitespace};
use crate::{LoadError, LoadLimits, SourceFormat};
use kb_core::Place;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The sheet name the rows of a CSV or TSV file are located in (a file of comma- or
/// tab-separated values has one sheet; spreadsheet applications that open one call it after
/// the file, which the reader does not know).
pub(crate) const DELIMITED_SHEET: &str = "Sheet1";

/// The most columns and rows a sheet has in Excel and LibreOffice: cells past them are not
/// read.
const MAX_COLUMNS: u32 = 16_384;
const MAX_ROWS: u32 = 1_048_576;

/// Reads a spreadsheet or a file of delimited values.
pub(crate) fn read(
    format: SourceFormat,
    bytes: &[u8],
    limits: &LoadLimits,
) -> Result<Read, LoadError> {
    let mut budget = CellBudget::new(limits.max_sheet_cells);
    let book = match format {
        SourceFormat::Xlsx | SourceFormat::Xls => {
            workbook::read(format, bytes, limits, &mut budget)?
        }
        SourceFormat::Ods => ods::read(bytes, limits, &mut budget)?,
        SourceFormat::Csv | SourceFormat::Tsv => delimited::read(format, bytes, &mut budget)?,
        _ => return Err(LoadError::Unsupported),
    };
    let headings = !matches!(format, SourceFormat::Csv | SourceFormat::Tsv);
    let mut w = MarkdownWriter::default();
    let mut fill = CellBudget::new(limits.max_sheet_cells);
    for mut sheet in book.sheets {
        sheet.fill_merged(&mut fill);
        write_sheet(&mut w, &sheet, headings);
    }
    let (markdown, marks) = w.finish_marked();
    if markdown.trim().is_empty() {
        return Err(LoadError::NoText);
    }
    Ok(Read {
        title: book.title,
        markdown,
        marks,
        notes: book.notes,
        ..Read::default()
    })
}

/// What a reader made of a file: its sheets in order, and notes on what it left out.
#[derive(Debug, Default)]
struct Book {
    title: Option<String>,
    sheets: Vec<Grid>,
    notes: Vec<String>,
}

impl Book {
    /// Whether the sheet `name` is read; if not, says why in a note.
    fn admits(&mut self, name: &str, kind: SheetKind, budget: &CellBudget) -> bool {
        let note = match kind {
            SheetKind::Hidden => format!("hidden sheet {name} skipped"),
            SheetKind::Chart => format!("chart sheet {name} skipped (kb does not read charts)"),
            SheetKind::Visible if budget.exhausted() => format!(
                "sheet {name} skipped: the file has more than {} cells, the most kb reads from one file",
                value::grouped(budget.limit)
            ),
            SheetKind::Visible => return true,
        };
        self.notes.push(note);
        false
    }

    /// Adds a sheet that was read, with a note if the cell limit cut it short.
    fn push(&mut self, sheet: Grid, budget: &CellBudget) {
        if let Some(row) = sheet.capped_at {
            self.notes.push(format!(
                "sheet {}: only the first {} rows read (over {} cells)",
                sheet.name,
                value::grouped(u64::from(row)),
                value::grouped(budget.limit)
            ));
        }
        self.sheets.push(sheet);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SheetKind {
    Visible,
    Hidden,
    Chart,
}

/// How many more non-empty cells may be read.
#[derive(Debug)]
struct CellBudget {
    left: u64,
    limit: u64,
}

impl CellBudget {
    fn new(limit: u64) -> Self {
        Self { left: limit, limit }
    }

    /// Takes one cell; `false` when none are left.
    fn take(&mut self) -> bool {
        if self.left == 0 {
            return false;
        }
        self.left -= 1;
        true
    }

    fn exhausted(&self) -> bool {
        self.left == 0
    }
}

/// A rectangle of merged cells, 0-based and inclusive: `(row, column)` corners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Region {
    first: (u32, u32),
    last: (u32, u32),
}

/// The non-empty cells of one sheet, as text.
#[derive(Debug)]
struct Grid {
    name: Arc<str>,
    /// Row → column → text, 0-based. Only non-empty cells are kept.
    rows: BTreeMap<u32, BTreeMap<u32, String>>,
    merged: Vec<Region>,
    /// Set when the cell limit was reached in this sheet: rows from this one (0-based) on were
    /// not read.
    capped_at: Option<u32>,
}

impl Grid {
    fn new(name: &str) -> Self {
        Self {
            name: Arc::from(name),
            rows: BTreeMap::new(),
            merged: Vec::new(),
            capped_at: None,
        }
    }

    /// Adds the text of cell `(row, col)` if it is not blank. Returns `false` (and leaves out
    /// `row`, which may be incomplete) when the budget has run out.
    fn put(&mut self, row: u32, col: u32, text: &str, budget: &mut CellBudget) -> bool {
        let text = collapse_whitespace(text);
        if text.is_empty() {
            return true;
        }
        if !budget.take() {
            self.cap(row);
            return false;
        }
        self.rows.entry(row).or_default().insert(col, text);
        true
    }

    /// Drops rows from `row` on: the cell limit was reached there.
    fn cap(&mut self, row: u32) {
        self.rows.split_off(&row);
        self.capped_at = Some(row);
    }

    /// Copies the value of each merged region's first cell into the rest of the region, in
    /// the rows that hold other values (a merged cell over rows of nothing adds no record).
    fn fill_merged(&mut self, budget: &mut CellBudget) {
        for region in std::mem::take(&mut self.merged) {
            let Some(value) = self
                .rows
                .get(&region.first.0)
                .and_then(|cells| cells.get(&region.first.1))
                .cloned()
            else {
                continue;
            };
            let last_col = region.last.1.min(MAX_COLUMNS - 1);
            for cells in self
                .rows
                .range_mut(region.first.0..=region.last.0.max(region.first.0))
                .map(|(_, cells)| cells)
            {
                for col in region.first.1..=last_col.max(region.first.1) {
                    if cells.contains_key(&col) {
                        continue;
                    }
                    if !budget.take() {
                        return;
                    }
                    cells.insert(col, value.clone());
                }
            }
        }
    }
}

/// Writes one sheet: heading, optional title line, records.
fn write_sheet(w: &mut MarkdownWriter, sheet: &Grid, heading: bool) {
    let mut rows = sheet.rows.iter();
    let Some((&first_row, first)) = rows.next() else {
        return;
    };
    let mut rows = rows.peekable();
    let place = |row: u32| Place::Row {
        sheet: sheet.name.clone(),
        row: row.saturating_add(1),
    };
    // A lone value over a wider row is the sheet's title, not its header.
    let distinct = |cells: &BTreeMap<u32, String>| {
        let mut values: Vec<&String> = cells.values().collect();
        values.dedup();
        values.len()
    };
    let is_title = distinct(first) == 1 && rows.peek().is_some_and(|(_, next)| distinct(next) >= 2);
    let (header_row, header) = if is_title {
        let (&row, cells) = rows.next().expect("BUG: peeked a row");
        (row, cells)
    } else {
        (first_row, first)
    };

    w.mark(place(if is_title { first_row } else { header_row }));
    if heading {
        w.heading(1, &sheet.name);
    }
    if is_title {
        w.paragraph(first.values().next().map_or("", String::as_str));
        w.mark(place(header_row));
    }
    let mut records = 0usize;
    for (&row, cells) in rows {
        let record: Vec<String> = cells
            .iter()
            .map(|(col, text)| {
                let name = header
                    .get(col)
                    .cloned()
                    .unwrap_or_else(|| column_letters(*col));
                format!("{name}: {text}")
            })
            .collect();
        w.mark(place(row));
        w.paragraph(&record.join("; "));
        records += 1;
    }
    if records == 0 {
        // Only a header: its names are the sheet's text.
        let names: Vec<&str> = header.values().map(String::as_str).collect();
        w.paragraph(&names.join("; "));
    }
}

/// The letters naming a 0-based column: A, …, Z, AA, AB, ….
fn column_letters(col: u32) -> String {
    let mut n = u64::from(col) + 1;
    let mut letters = Vec::new();
    while n > 0 {
        let rem = ((n - 1) % 26) as u8;
        letters.push(char::from(b'A' + rem));
        n = (n - 1) / 26;
    }
    letters.iter().rev().collect()
}
