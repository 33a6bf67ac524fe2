//! Pipe tables in Markdown text, found so that a chunk starting among a table's rows can repeat
//! the table's header (see [`super::ChunkSplitter`]).
//!
//! A table is recognised as GitHub-flavoured Markdown reads one, kept to what can be told for
//! sure line by line: a header row and a delimiter row (`| --- | :-: |`) that both hold a pipe
//! and have the same number of cells, followed by at least one body row; body rows run up to
//! the first line that is blank, holds no pipe, or opens a code fence, a heading or a block
//! quote. Lines indented four
//! spaces or more (indented code) and lines inside fenced code blocks are never table rows.
//! A table that GitHub would carry on past a row without a pipe ends earlier here: a chunk
//! starting in those rows then goes without the header, which is what happened before.

use std::ops::Range;

/// Where a pipe table's parts are in the document's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PipeTable {
    /// The header row and the delimiter row, with the delimiter row's line break: what a
    /// chunk starting among the body rows repeats.
    pub(super) header: Range<usize>,
    /// From the first body row's first byte to the last body row's last byte (its line break
    /// left out).
    pub(super) body: Range<usize>,
}

/// The pipe tables of `text`, in document order.
pub(super) fn pipe_tables(text: &str) -> Vec<PipeTable> {
    let lines = lines(text);
    let mut tables = Vec::new();
    let mut fence: Option<&str> = None;
    let mut i = 0;
    while i < lines.len() {
        let (start, line) = lines[i];
        let trimmed = line.trim_start();
        if let Some(f) = fence {
            if trimmed.starts_with(f) {
                fence = None;
            }
            i += 1;
            continue;
        }
        if let Some(f) = fence_opening(trimmed) {
            fence = Some(f);
            i += 1;
            continue;
        }
        let Some(&(_, delimiter)) = lines.get(i + 1) else {
            break;
        };
        let header_cells = row_cells(line);
        if !is_body_row(line) || header_cells != delimiter_cells(delimiter) {
            i += 1;
            continue;
        }
        let rows = lines[i + 2..]
            .iter()
            .take_while(|(_, row)| is_body_row(row))
            .count();
        if rows == 0 {
            i += 2;
            continue;
        }
        let (body_start, _) = lines[i + 2];
        let (last_start, last) = lines[i + 1 + rows];
        tables.push(PipeTable {
            header: start..body_start,
            body: body_start..last_start + last.len(),
        });
        i += 2 + rows;
    }
    tables
}

/// Each line's byte offset and text, without its line break (`\n` or `\r\n`).
fn lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let content = line.strip_suffix('\n').unwrap_or(line);
        let content = content.strip_suffix('\r').unwrap_or(content);
        out.push((offset, content));
        offset += line.len();
    }
    out
}

/// The fence a line (already trimmed at the start) opens, as [`super::markdown_headings`]
/// reads fences.
fn fence_opening(trimmed: &str) -> Option<&'static str> {
    ["```", "~~~"].into_iter().find(|f| trimmed.starts_with(f))
}

/// Whether a line can be a table's header row or, after its delimiter row, one more body row:
/// it holds a pipe and does not open a block of another kind (code fence, heading, block quote). A
/// leading `#` or `>` ends the table even where GitHub would read a row (`#1 | x`): the table
/// then ends early, which only costs the rows after it their repeated header.
fn is_body_row(line: &str) -> bool {
    let opens_block = unindented(line).is_some_and(|body| {
        fence_opening(body).is_some() || body.starts_with('#') || body.starts_with('>')
    });
    row_cells(line).is_some() && !opens_block
}

/// The line without its indentation, if it is indented less than four columns.
fn unindented(line: &str) -> Option<&str> {
    let body = line.trim_start_matches(' ');
    (line.len() - body.len() < 4 && !body.starts_with('\t')).then_some(body)
}

/// The number of cells of a table row, if the line can be one: not blank, not indented as
/// code, and holding a pipe that is not escaped.
fn row_cells(line: &str) -> Option<usize> {
    let body = unindented(line)?.trim_end();
    let pipes = cell_pipes(body);
    if body.is_empty() || pipes.is_empty() {
        return None;
    }
    // Outer pipes are optional and do not separate cells.
    let leading = pipes.first() == Some(&0);
    let trailing = pipes.last() == Some(&(body.len() - 1)) && (body.len() > 1 || !leading);
    Some(pipes.len() + 1 - usize::from(leading) - usize::from(trailing))
}

/// The number of cells of a delimiter row (`| --- | :-: |`), if the line is one.
fn delimiter_cells(line: &str) -> Option<usize> {
    let body = unindented(line)?.trim_end();
    if !body.contains('|') {
        // `---` alone is a thematic break or a setext heading underline.
        return None;
    }
    let inner = body.strip_prefix('|').unwrap_or(body);
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut cells = 0;
    for cell in inner.split('|') {
        let cell = cell.trim();
        let dashes = cell.strip_prefix(':').unwrap_or(cell);
        let dashes = dashes.strip_suffix(':').unwrap_or(dashes);
        if dashes.is_empty() || !dashes.bytes().all(|b| b == b'-') {
            return None;
        }
        cells += 1;
    }
    Some(cells)
}

/// Byte offsets of the pipes in `row` that separate cells (not escaped with a backslash).
fn cell_pipes(row: &str) -> Vec<usize> {
    let bytes = row.as_bytes();
    (0..bytes.len())
        .filter(|&i| bytes[i] == b'|' && (i == 0 || bytes[i - 1] != b'\\'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(&str, &str)> {
        pipe_tables(text)
            .into_iter()
            .map(|t| (&text[t.header], &text[t.body]))
            .collect()
    }

    #[test]
    fn a_table_is_its_header_and_delimiter_rows_then_its_body_rows() {
        let text =
            "Intro.\n\n| City | Cap |\n| --- | ---: |\n| Berlin | 180 |\n| Paris | 150 |\n\nAfter.";

        assert_eq!(
            found(text),
            [(
                "| City | Cap |\n| --- | ---: |\n",
                "| Berlin | 180 |\n| Paris | 150 |"
            )]
        );
    }

    #[test]
    fn outer_pipes_are_optional_and_escaped_pipes_do_not_separate_cells() {
        let text = "City | Cap\n:-- | --\nBerlin | 180 \\| EUR\n";

        assert_eq!(
            found(text),
            [("City | Cap\n:-- | --\n", "Berlin | 180 \\| EUR")]
        );
    }

    #[test]
    fn header_and_delimiter_rows_must_have_as_many_cells() {
        assert!(found("| a | b | c |\n| --- | --- |\n| 1 | 2 | 3 |\n").is_empty());
        assert!(found("| a \\| b |\n| --- | --- |\n| 1 | 2 |\n").is_empty());
    }

    #[test]
    fn dashes_without_a_pipe_are_a_heading_underline_not_a_table() {
        assert!(found("Title | x\n---\ntext | y\n").is_empty());
        assert!(found("Title\n---\ntext\n").is_empty());
    }

    #[test]
    fn a_table_without_body_rows_is_not_counted() {
        assert!(found("| a | b |\n| --- | --- |\n\n| c | d |\n").is_empty());
        assert!(found("| a | b |\n| --- | --- |").is_empty());
    }

    #[test]
    fn body_rows_end_at_a_blank_line_a_line_without_a_pipe_or_a_fence() {
        let text = "| a | b |\n|---|---|\n| 1 | 2 |\nplain line\n| 3 | 4 |\n";
        assert_eq!(found(text), [("| a | b |\n|---|---|\n", "| 1 | 2 |")]);

        let text = "| a | b |\n|---|---|\n| 1 | 2 |\n```\n| x | y |\n|---|---|\n| 5 | 6 |\n```\n";
        assert_eq!(found(text), [("| a | b |\n|---|---|\n", "| 1 | 2 |")]);
    }

    #[test]
    fn a_heading_or_a_quote_ends_the_body_rows() {
        let text = "| a | b |\n|---|---|\n| 1 | 2 |\n# Next | part\n| 3 | 4 |\n";
        assert_eq!(found(text), [("| a | b |\n|---|---|\n", "| 1 | 2 |")]);

        let text = "| a | b |\n|---|---|\n| 1 | 2 |\n> quoted | text\n";
        assert_eq!(found(text), [("| a | b |\n|---|---|\n", "| 1 | 2 |")]);

        assert!(found("# a | b\n|---|---|\n| 1 | 2 |\n").is_empty());
    }

    #[test]
    fn tables_in_code_blocks_are_not_tables() {
        assert!(found("```\n| a | b |\n| --- | --- |\n| 1 | 2 |\n```\n").is_empty());
        assert!(found("    | a | b |\n    | --- | --- |\n    | 1 | 2 |\n").is_empty());
    }

    #[test]
    fn two_tables_one_after_the_other_are_two_tables() {
        let text = "| a | b |\n| - | - |\n| 1 | 2 |\n\n| c |\n| - |\n| 3 |\n| 4 |";

        assert_eq!(
            found(text),
            [
                ("| a | b |\n| - | - |\n", "| 1 | 2 |"),
                ("| c |\n| - |\n", "| 3 |\n| 4 |"),
            ]
        );
    }

    #[test]
    fn carriage_returns_stay_in_the_header_and_out_of_the_body_end() {
        let text = "| a | b |\r\n| - | - |\r\n| 1 | 2 |\r\n";

        assert_eq!(found(text), [("| a | b |\r\n| - | - |\r\n", "| 1 | 2 |")]);
    }

    #[test]
    fn a_single_pipe_is_an_empty_row_of_one_cell() {
        assert_eq!(row_cells("|"), Some(1));
        assert_eq!(row_cells("||"), Some(1));
        assert_eq!(row_cells("a|"), Some(1));
        assert_eq!(row_cells("| a | b |"), Some(2));
        assert_eq!(row_cells("no pipe"), None);
        assert_eq!(delimiter_cells("|"), None);
        assert_eq!(delimiter_cells("| :-: |"), Some(1));
    }
}
