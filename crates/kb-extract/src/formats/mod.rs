//! Readers for each kind of source file, and the Markdown they write.
//!
//! HTML, DOCX and PDF are turned into Markdown text so that the Markdown splitter can cut them
//! at headings and give every chunk a heading path: `#` headings, `- ` / `1. ` list items and
//! pipe tables. Text taken from the source is escaped where it would otherwise read as
//! structure (a line starting with `#` or a code fence), so the only headings in the output are
//! the ones the writer put there.

pub(crate) mod docx;
pub(crate) mod html;
pub(crate) mod mail;
pub(crate) mod ocr;
pub(crate) mod office;
pub(crate) mod package;
pub(crate) mod pdf;
pub(crate) mod sheet;
pub(crate) mod text;

use crate::{DocumentPart, Quoted};
use kb_core::{Mark, MessageHeaders, Place};

/// What a reader of one of the newer formats (sheets, slides, mail, images) makes of a file:
/// see the [`crate::LoadedDocument`] fields of the same names.
#[derive(Debug, Default)]
pub(crate) struct Read {
    pub(crate) title: Option<String>,
    pub(crate) markdown: String,
    pub(crate) marks: Vec<Mark>,
    pub(crate) notes: Vec<String>,
    pub(crate) message: Option<MessageHeaders>,
    pub(crate) parts: Vec<DocumentPart>,
    pub(crate) quoted: Option<Quoted>,
}

/// Builds Markdown one block at a time: blocks are separated by a blank line, consecutive list
/// items by a single newline.
#[derive(Debug, Default)]
pub(crate) struct MarkdownWriter {
    out: String,
    in_list: bool,
    marks: Vec<Mark>,
}

impl MarkdownWriter {
    /// Says that the blocks written from here on come from `place` (a page, slide or sheet
    /// row), for the location of the chunks cut from them.
    pub(crate) fn mark(&mut self, place: Place) {
        let at = self.out.len();
        match self.marks.last_mut() {
            // Nothing was written since the last mark: this one replaces it.
            Some(last) if last.at == at => last.place = place,
            _ => self.marks.push(Mark { at, place }),
        }
    }

    /// A `#` heading; `level` is clamped to 1..=6. Empty headings are dropped.
    pub(crate) fn heading(&mut self, level: usize, text: &str) {
        let text = collapse_whitespace(text);
        if text.is_empty() {
            return;
        }
        self.start_block(false);
        self.out.push_str(&"#".repeat(level.clamp(1, 6)));
        self.out.push(' ');
        self.out.push_str(&text);
    }

    /// A paragraph. Line breaks in `text` are kept; other whitespace runs become one space.
    pub(crate) fn paragraph(&mut self, text: &str) {
        let lines: Vec<String> = text
            .lines()
            .map(collapse_whitespace)
            .filter(|l| !l.is_empty())
            .collect();
        if lines.is_empty() {
            return;
        }
        self.start_block(false);
        for (i, line) in lines.iter().enumerate() {
            if i > 0 {
                self.out.push('\n');
            }
            push_escaped_line(&mut self.out, line);
        }
    }

    /// Lines kept as they are (preformatted text), each escaped and right-trimmed.
    pub(crate) fn preformatted(&mut self, text: &str) {
        let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
        let start = lines.iter().position(|l| !l.trim().is_empty());
        let end = lines.iter().rposition(|l| !l.trim().is_empty());
        let (Some(start), Some(end)) = (start, end) else {
            return;
        };
        self.start_block(false);
        for (i, line) in lines[start..=end].iter().enumerate() {
            if i > 0 {
                self.out.push('\n');
            }
            push_escaped_line(&mut self.out, line);
        }
    }

    /// A list item `marker text` indented by `depth` levels (0 = top level). An empty
    /// `marker` continues the previous item.
    pub(crate) fn list_item(&mut self, depth: usize, marker: &str, text: &str) {
        let text = collapse_whitespace(text);
        if text.is_empty() {
            return;
        }
        self.start_block(true);
        self.out.push_str(&"  ".repeat(depth.min(8)));
        if marker.is_empty() {
            self.out.push_str("  ");
        } else {
            self.out.push_str(marker);
            self.out.push(' ');
        }
        self.out.push_str(&text);
    }

    /// A pipe table; the first row is the header. Rows are padded to the widest row; tables
    /// with no text at all are dropped.
    pub(crate) fn table(&mut self, rows: &[Vec<String>]) {
        let width = rows.iter().map(Vec::len).max().unwrap_or(0);
        if width == 0 || rows.iter().flatten().all(|c| c.trim().is_empty()) {
            return;
        }
        self.start_block(false);
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                self.out.push('\n');
            }
            self.out.push('|');
            for col in 0..width {
                let cell = row.get(col).map(|c| table_cell(c)).unwrap_or_default();
                self.out.push(' ');
                self.out.push_str(&cell);
                self.out.push_str(" |");
            }
            if i == 0 {
                self.out.push('\n');
                self.out.push('|');
                self.out.push_str(&" --- |".repeat(width));
            }
        }
    }

    /// Ends a list: the next list item starts a new list, after a blank line.
    pub(crate) fn end_list(&mut self) {
        self.in_list = false;
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }

    /// The Markdown and the [`Mark`]s left in it.
    pub(crate) fn finish_marked(self) -> (String, Vec<Mark>) {
        (self.out, self.marks)
    }

    fn start_block(&mut self, list_item: bool) {
        if !self.out.is_empty() {
            self.out.push_str(if list_item && self.in_list {
                "\n"
            } else {
                "\n\n"
            });
        }
        self.in_list = list_item;
    }
}

/// Runs of whitespace (including line breaks) become one space; ends are trimmed.
pub(crate) fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Escapes a line of source text that Markdown (or the splitter's heading scan) would read as a
/// heading or a code fence.
fn push_escaped_line(out: &mut String, line: &str) {
    let body = line.trim_start();
    if body.starts_with('#') || body.starts_with("```") || body.starts_with("~~~") {
        out.push_str(&line[..line.len() - body.len()]);
        out.push('\\');
        out.push_str(body);
    } else {
        out.push_str(line);
    }
}

fn table_cell(text: &str) -> String {
    collapse_whitespace(text).replace('|', "\\|")
}

/// Appends the character an XML character reference or predefined entity stands for. Only the
/// five predefined entities are known: a document's own entities are never expanded (no
/// billion-laughs expansion).
pub(crate) fn push_entity(out: &mut String, reference: &quick_xml::events::BytesRef<'_>) {
    if let Ok(Some(c)) = reference.resolve_char_ref() {
        push_clean(out, c.encode_utf8(&mut [0; 4]));
        return;
    }
    out.push_str(match &**reference {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        _ => "",
    });
}

/// Appends text to `out`, replacing control characters (other than tab and newline) with a
/// space: they carry no meaning in a document and confuse tokenizers.
pub(crate) fn push_clean(out: &mut String, text: &str) {
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_separates_blocks_and_keeps_list_items_together() {
        let mut w = MarkdownWriter::default();
        w.heading(2, "  Equipment \n list ");
        w.list_item(0, "-", "laptop");
        w.list_item(1, "1.", "headset");
        w.paragraph("After\nthe   list");

        assert_eq!(
            w.finish(),
            "## Equipment list\n\n- laptop\n  1. headset\n\nAfter\nthe list"
        );
    }

    #[test]
    fn source_lines_that_look_like_headings_or_fences_are_escaped() {
        let mut w = MarkdownWriter::default();
        w.paragraph("# of days\n```rust");
        w.preformatted("  ~~~\n  code");

        assert_eq!(w.finish(), "\\# of days\n\\```rust\n\n  \\~~~\n  code");
    }

    #[test]
    fn tables_are_padded_and_pipes_in_cells_escaped() {
        let mut w = MarkdownWriter::default();
        w.table(&[
            vec!["City".into(), "Cap".into()],
            vec!["Berlin".into(), "180 | EUR".into(), "extra".into()],
        ]);

        assert_eq!(
            w.finish(),
            "| City | Cap |  |\n| --- | --- | --- |\n| Berlin | 180 \\| EUR | extra |"
        );
    }
}
