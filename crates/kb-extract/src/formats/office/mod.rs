//! Slides and office text: PPTX and ODP decks, ODT documents and RTF files → Markdown.
//!
//! A deck becomes one `# <slide title>` section per slide ("Slide N" when the slide has no
//! title), in the order the presentation shows them, each preceded by a
//! [`Place::Slide`] mark so that a chunk cites its slide. The slide's text frames follow in
//! reading order (top to bottom, then left to right), bullets as list items, tables as pipe
//! tables, then the speaker notes under `## Notes`. Hidden slides are left out with a note.
//!
//! ODT and RTF documents become Markdown the way DOCX does: headings, paragraphs, lists and
//! tables, without places (they have no pages a reader could check).
//!
//! The zip formats are read through [`super::package`], as DOCX is: every part read counts
//! against one expansion budget ([`LoadLimits::max_expanded_bytes`]), so a zip bomb is refused with
//! [`LoadError::ExpandsTooMuch`]. XML entities are never expanded beyond the five predefined
//! ones and character references, so a "billion laughs" document stays its own size.

mod odf;
mod pptx;
mod rtf;
#[cfg(test)]
mod tests;
mod xml;

use super::{MarkdownWriter, Read};
use crate::{LoadError, LoadLimits, SourceFormat};
use kb_core::Place;

/// Reads a PPTX, ODT, ODP or RTF file.
pub(crate) fn read(
    format: SourceFormat,
    bytes: &[u8],
    limits: &LoadLimits,
) -> Result<Read, LoadError> {
    match format {
        SourceFormat::Pptx => pptx::read(bytes, limits),
        SourceFormat::Odt | SourceFormat::Odp => odf::read(format, bytes, limits),
        SourceFormat::Rtf => rtf::read(bytes),
        _ => Err(LoadError::Unsupported),
    }
}

/// A block of text as the source lays it out, before it is written as Markdown.
#[derive(Debug, Clone, PartialEq)]
enum Block {
    Heading(usize, String),
    Paragraph(String),
    /// A list item `depth` levels deep (0 = top level).
    Item {
        depth: usize,
        marker: Marker,
        text: String,
    },
    /// Rows of cells; the first row is the header.
    Table(Vec<Vec<String>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    Bullet,
    Numbered,
    /// A paragraph that continues the item before it (no marker of its own).
    Continued,
}

/// One slide of a deck.
#[derive(Debug, Default)]
struct Slide {
    title: Option<String>,
    body: Vec<Block>,
    notes: Vec<Block>,
    hidden: bool,
    /// Listed in the deck but absent from the file.
    missing: bool,
}

/// Writes blocks, numbering counted list items level by level.
fn write_blocks(out: &mut MarkdownWriter, blocks: &[Block]) {
    let mut counters: Vec<u32> = Vec::new();
    for block in blocks {
        match block {
            Block::Item {
                depth,
                marker,
                text,
            } => {
                let depth = (*depth).min(8);
                counters.resize(depth + 1, 0);
                let marker = match marker {
                    Marker::Bullet => {
                        counters[depth] = 0;
                        "-".to_owned()
                    }
                    Marker::Numbered => {
                        counters[depth] += 1;
                        format!("{}.", counters[depth])
                    }
                    Marker::Continued => String::new(),
                };
                out.list_item(depth, &marker, text);
            }
            other => {
                counters.clear();
                out.end_list();
                match other {
                    Block::Heading(level, text) => out.heading(*level, text),
                    Block::Paragraph(text) => out.paragraph(text),
                    Block::Table(rows) => out.table(rows),
                    Block::Item { .. } => {}
                }
            }
        }
    }
    out.end_list();
}

/// Writes a deck: one marked section per shown slide, a note for each hidden one.
fn write_slides(slides: Vec<Slide>, title: Option<String>) -> Read {
    let mut out = MarkdownWriter::default();
    let mut notes = Vec::new();
    for (n, slide) in (1u32..).zip(slides) {
        let heading = slide
            .title
            .map(|t| super::collapse_whitespace(&t))
            .filter(|t| !t.is_empty());
        if slide.missing {
            notes.push(format!(
                "slide {n} is listed in the deck but missing from the file; skipped"
            ));
            continue;
        }
        if slide.hidden {
            notes.push(match heading {
                Some(title) => format!("hidden slide {n} ({title}) skipped"),
                None => format!("hidden slide {n} skipped"),
            });
            continue;
        }
        out.mark(Place::Slide(n));
        out.heading(1, &heading.unwrap_or_else(|| format!("Slide {n}")));
        write_blocks(&mut out, &slide.body);
        if slide.notes.iter().any(has_text) {
            out.heading(2, "Notes");
            write_blocks(&mut out, &slide.notes);
        }
    }
    let (markdown, marks) = out.finish_marked();
    Read {
        title,
        markdown,
        marks,
        notes,
        ..Read::default()
    }
}

fn has_text(block: &Block) -> bool {
    match block {
        Block::Heading(_, text) | Block::Paragraph(text) | Block::Item { text, .. } => {
            !text.trim().is_empty()
        }
        Block::Table(rows) => rows.iter().flatten().any(|c| !c.trim().is_empty()),
    }
}

/// A shape of a slide with the place it is drawn at, for reading order.
#[derive(Debug)]
struct Shape {
    /// Top, then left edge, in the format's units; `None` when the file does not say.
    position: Option<(i64, i64)>,
    blocks: Vec<Block>,
}

/// The blocks of a slide's shapes in reading order: top to bottom, then left to right;
/// shapes whose position is unknown keep their order after the placed ones.
fn reading_order(mut shapes: Vec<Shape>) -> Vec<Block> {
    // A stable sort on a total key: unplaced shapes sort last, in document order.
    shapes.sort_by_key(|s| match s.position {
        Some((top, left)) => (0u8, top, left),
        None => (1, 0, 0),
    });
    shapes.into_iter().flat_map(|s| s.blocks).collect()
}
