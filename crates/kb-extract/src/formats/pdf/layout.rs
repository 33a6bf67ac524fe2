//! The lines of a PDF page with where their pieces start, and the tables those lines form.
//!
//! A page's text is kept as the content stream shows it (see [`PageText`]); beside it, each
//! line records the pieces it was drawn in: a piece starts wherever the stream moves the text
//! cursor before showing text, at a point in page space. Table cells are such pieces, so a
//! table reads as lines whose pieces start at the same x positions row after row.
//!
//! A run of lines is a table when its first line (the header) has two or more pieces, the
//! next lines each have two or more pieces that all start within a point or two of the
//! header's column starts, the lines go down the page at most [`MAX_ROW_GAP`] ems apart, and
//! there are at least three lines in all. Layouts that line up like that without being
//! tables are left as text: list items (a marker, then the item), label–value forms (every
//! first cell ends with a colon) and prose set in columns (no column holds mostly short
//! cells). Everything not in a table stays the page's text, line by line, as before.
//!
//! The work is linear in the pieces of a page: every line is looked at a bounded number of
//! times, and a line with more than [`MAX_COLUMNS`] pieces is never a table row.

use crate::formats::collapse_whitespace;

/// The most columns a table row may have; a line drawn in more pieces is text set word by
/// word, not a row.
pub(super) const MAX_COLUMNS: usize = 32;
/// The fewest lines a table has, header included.
const MIN_ROWS: usize = 3;
/// How far apart (in ems) two rows of a table may be.
const MAX_ROW_GAP: f32 = 4.0;
/// Pieces whose starts are closer than this (in ems) are one cell (a change of font, a
/// kerning move).
const MIN_COLUMN_GAP: f32 = 1.5;
/// A cell of at most this many words (and [`SHORT_CELL_CHARS`] characters) is short: a
/// table has a column of mostly short cells, prose set in columns has none.
const SHORT_CELL_WORDS: usize = 4;
const SHORT_CELL_CHARS: usize = 40;

/// Where a piece of text starts, in page space (points), and its font size there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Origin {
    pub(super) x: f32,
    pub(super) y: f32,
    pub(super) em: f32,
}

/// The text of a page in the order its content streams show it, line by line.
#[derive(Debug, Default)]
pub(super) struct PageText {
    /// The lines, separated by `\n`.
    pub(super) text: String,
    /// Where the line of the text shown last starts (in any of the page's streams).
    pub(super) shown: Option<Origin>,
    lines: Vec<Line>,
}

#[derive(Debug)]
struct Line {
    /// Byte offset of the line's first piece in the text.
    start: usize,
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, Copy)]
struct Piece {
    start: usize,
    at: Origin,
}

/// A block of a page's Markdown.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Block {
    /// Lines of text, kept as lines.
    Text(String),
    /// Rows of cells; the first row is the header.
    Table(Vec<Vec<String>>),
}

impl PageText {
    /// Says that the text shown next starts a piece at `at`; the text so far ending in a line
    /// break (or being empty) makes it the first piece of a new line.
    pub(super) fn begin_piece(&mut self, at: Origin) {
        let start = self.text.len();
        let line_start = self.text.is_empty() || self.text.ends_with('\n');
        match self.lines.last_mut() {
            Some(line) if !line_start || line.start == start => {
                match line.pieces.last_mut() {
                    // Nothing was shown since the last piece began: this one replaces it.
                    Some(last) if last.start == start => last.at = at,
                    _ => line.pieces.push(Piece { start, at }),
                }
            }
            _ => self.lines.push(Line {
                start,
                pieces: vec![Piece { start, at }],
            }),
        }
    }

    /// The page as blocks: its tables, and the text between them. A page without tables is
    /// one block of its text.
    pub(super) fn blocks(&self) -> Vec<Block> {
        let tables = self.tables();
        if tables.is_empty() {
            return vec![Block::Text(self.text.clone())];
        }
        let mut blocks = Vec::new();
        let mut from = 0;
        for table in tables {
            let start = self.lines[table.first].start;
            if let Some(text) = self.text.get(from..start)
                && !text.trim().is_empty()
            {
                blocks.push(Block::Text(text.to_owned()));
            }
            from = self.line_end(table.last);
            blocks.push(Block::Table(table.rows));
        }
        if let Some(text) = self.text.get(from..)
            && !text.trim().is_empty()
        {
            blocks.push(Block::Text(text.to_owned()));
        }
        blocks
    }

    /// The byte offset where line `i` ends (the next line's start, or the end of the text).
    fn line_end(&self, i: usize) -> usize {
        self.lines
            .get(i + 1)
            .map_or(self.text.len(), |next| next.start)
    }

    /// Line `i` as a candidate table row: its cells, left to right, with their starts.
    fn row(&self, i: usize) -> Option<Row> {
        let line = self.lines.get(i)?;
        if line.pieces.len() < 2 || line.pieces.len() > MAX_COLUMNS {
            return None;
        }
        let end = self.line_end(i);
        let mut pieces: Vec<(Origin, &str)> = line
            .pieces
            .iter()
            .enumerate()
            .map(|(k, piece)| {
                let to = line.pieces.get(k + 1).map_or(end, |p| p.start.min(end));
                let text = self.text.get(piece.start.min(to)..to).unwrap_or("");
                (piece.at, text)
            })
            .filter(|(_, text)| !text.trim().is_empty())
            .collect();
        pieces.sort_by(|a, b| a.0.x.total_cmp(&b.0.x));
        let first = pieces.first()?.0;
        let em = first.em.max(1.0);
        let mut cells: Vec<Cell> = Vec::with_capacity(pieces.len());
        for (at, text) in pieces {
            if (at.y - first.y).abs() > em * 0.3 {
                return None;
            }
            match cells.last_mut() {
                Some(cell) if at.x - cell.x < MIN_COLUMN_GAP * em => {
                    cell.text.push(' ');
                    cell.text.push_str(text);
                }
                _ => cells.push(Cell {
                    x: at.x,
                    text: text.to_owned(),
                }),
            }
        }
        if cells.len() < 2 {
            return None;
        }
        for cell in &mut cells {
            cell.text = collapse_whitespace(&cell.text);
        }
        Some(Row {
            y: first.y,
            em,
            cells,
        })
    }

    /// The tables of the page, in order.
    fn tables(&self) -> Vec<Table> {
        let mut tables = Vec::new();
        let mut i = 0;
        while i < self.lines.len() {
            let Some(header) = self.row(i) else {
                i += 1;
                continue;
            };
            let columns: Vec<f32> = header.cells.iter().map(|c| c.x).collect();
            let mut rows = vec![header];
            let mut last = i;
            while let Some(row) = self.row(last + 1) {
                let above = rows.last().expect("BUG: a table starts with its header");
                let gap = above.y - row.y;
                if !(gap > 0.0 && gap <= MAX_ROW_GAP * above.em.max(row.em)) {
                    break;
                }
                let Some(placed) = place(&row, &columns) else {
                    break;
                };
                rows.push(Row {
                    cells: placed,
                    ..row
                });
                last += 1;
            }
            if rows.len() >= MIN_ROWS && looks_like_a_table(&rows, columns.len()) {
                tables.push(Table {
                    first: i,
                    last,
                    rows: rows
                        .into_iter()
                        .map(|r| r.cells.into_iter().map(|c| c.text).collect())
                        .collect(),
                });
            }
            // Lines of a run that is not a table are not tried again as headers: a page of
            // aligned lines costs one pass, not one per line.
            i = last + 1;
        }
        tables
    }
}

#[derive(Debug)]
struct Table {
    first: usize,
    last: usize,
    rows: Vec<Vec<String>>,
}

#[derive(Debug)]
struct Row {
    /// Baseline, in page space.
    y: f32,
    em: f32,
    cells: Vec<Cell>,
}

#[derive(Debug, Clone, Default)]
struct Cell {
    x: f32,
    text: String,
}

/// The cells of `row` laid out in `columns` (empty where the row has none), or `None` when a
/// cell starts off every column or two share one.
fn place(row: &Row, columns: &[f32]) -> Option<Vec<Cell>> {
    let tolerance = 1.0 + 0.1 * row.em;
    let mut placed = vec![Cell::default(); columns.len()];
    let mut column = 0;
    for cell in &row.cells {
        while column < columns.len() && columns[column] < cell.x - tolerance {
            column += 1;
        }
        if column == columns.len() || (columns[column] - cell.x).abs() > tolerance {
            return None;
        }
        placed[column] = cell.clone();
        column += 1;
    }
    Some(placed)
}

/// Whether aligned rows are a table rather than a list, a form or prose set in columns.
fn looks_like_a_table(rows: &[Row], columns: usize) -> bool {
    let firsts: Vec<&str> = rows
        .iter()
        .map(|r| cell(r, 0))
        .filter(|t| !t.is_empty())
        .collect();
    let markers = firsts.iter().filter(|t| is_list_marker(t)).count();
    if markers * 2 >= firsts.len() || counts_up(&firsts) {
        return false;
    }
    if firsts.iter().all(|t| t.ends_with(':')) {
        return false;
    }
    (0..columns).any(|c| {
        let cells: Vec<&str> = rows
            .iter()
            .map(|r| cell(r, c))
            .filter(|t| !t.is_empty())
            .collect();
        let short = cells
            .iter()
            .filter(|t| {
                t.split_whitespace().count() <= SHORT_CELL_WORDS
                    && t.chars().count() <= SHORT_CELL_CHARS
            })
            .count();
        !cells.is_empty() && short * 4 >= cells.len() * 3
    })
}

/// Whether `cells` are the numbers of a list: 1, 2, 3 (or 1., 2., 3.), one after the other.
fn counts_up(cells: &[&str]) -> bool {
    let numbers: Option<Vec<u32>> = cells
        .iter()
        .map(|t| {
            t.trim_start_matches('(')
                .trim_end_matches(['.', ')'])
                .parse()
                .ok()
        })
        .collect();
    numbers.is_some_and(|n| n.windows(2).all(|w| w[0].checked_add(1) == Some(w[1])))
}

fn cell(row: &Row, column: usize) -> &str {
    row.cells.get(column).map_or("", |cell| cell.text.as_str())
}

/// A bullet (`•`, `-`, `*`, …) or a list number, letter or roman numeral (`1.`, `a)`,
/// `(iv)`).
fn is_list_marker(text: &str) -> bool {
    const BULLETS: &str = "•◦▪▫‣⁃-–—*·●○■□►▶➢✓✔";
    let text = text.trim();
    if !text.is_empty() && text.chars().count() <= 2 && text.chars().all(|c| BULLETS.contains(c)) {
        return true;
    }
    let inner = text
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .or_else(|| text.strip_suffix('.'))
        .or_else(|| text.strip_suffix(')'));
    inner.is_some_and(|t| {
        let n = t.chars().count();
        (1..=3).contains(&n) && t.chars().all(|c| c.is_ascii_digit())
            || n == 1 && t.chars().all(char::is_alphabetic)
            || (1..=4).contains(&n) && t.chars().all(|c| "ivxlcIVXLC".contains(c))
    })
}

#[cfg(test)]
mod tests;
