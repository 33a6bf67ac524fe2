//! OpenDocument text (ODT) and presentations (ODP): `content.xml` read as headings,
//! paragraphs, lists and tables; a presentation's `draw:page`s as slides with their
//! `presentation:notes`.

use super::xml::{attr, corrupt, element_text, push_entity, push_text, xml_error, xml_reader};
use super::{Block, MarkdownWriter, Marker, Read, Shape, Slide, reading_order, write_blocks};
use crate::formats::package::Package;
use crate::{LoadError, LoadLimits, SourceFormat};
use quick_xml::events::{BytesStart, Event};
use std::collections::HashMap;

/// Shapes whose tops are this close (a quarter inch, in hundredths of a millimetre) read as
/// one row, left to right.
const ROW_BAND: i64 = 635;

/// How many cells `number-columns-repeated` / `number-rows-repeated` may add to a file's
/// tables in all: a few bytes of XML can ask for billions of cells.
const MAX_REPEATS: usize = 100_000;

/// Elements whose content is not the document's running text: comments, footnotes, change
/// tracking, generated indexes (they repeat the headings), shape titles and descriptions.
const SKIPPED: &[&str] = &[
    "annotation",
    "note",
    "tracked-changes",
    "table-of-content",
    "alphabetical-index",
    "illustration-index",
    "table-index",
    "object-index",
    "user-index",
    "bibliography",
    "title",
    "desc",
    "forms",
    "sequence-decls",
    "variable-decls",
    "user-field-decls",
];

/// Drawing elements that are a shape of a slide, with a position of their own.
const SHAPES: &[&str] = &[
    "frame",
    "custom-shape",
    "rect",
    "ellipse",
    "circle",
    "polygon",
    "polyline",
    "regular-polygon",
    "path",
    "line",
    "connector",
    "caption",
    "measure",
    "g",
];

/// Presentation placeholders that repeat on every slide: not slide text.
const SKIPPED_CLASSES: &[&str] = &["page-number", "footer", "date-time", "header", "handout"];

pub(super) fn read(
    format: SourceFormat,
    bytes: &[u8],
    limits: &LoadLimits,
) -> Result<Read, LoadError> {
    let legacy = match format {
        SourceFormat::Odp => "PowerPoint 97-2003 .ppt",
        _ => "Word 97-2003 .doc",
    };
    let mut package = Package::open_document(bytes, format, limits, legacy)?;
    if let Some(manifest) = package.read("META-INF/manifest.xml")?
        && is_encrypted(&manifest)
    {
        return Err(LoadError::Encrypted { format });
    }
    let content = package.require("content.xml", "an OpenDocument file")?;
    let mut styles = Styles::default();
    if let Some(xml) = package.read("styles.xml")? {
        styles
            .parse(&xml)
            .map_err(|e| xml_error(format, "styles.xml", e))?;
    }
    styles
        .parse(&content)
        .map_err(|e| xml_error(format, "content.xml", e))?;
    let title = package
        .read("meta.xml")?
        .and_then(|meta| element_text(&meta, "title"));

    let body = Walker::new(&styles)
        .run(&content)
        .map_err(|e| xml_error(format, "content.xml", e))?;
    let mut read = match body.kind {
        Some(BodyKind::Text) => {
            let mut out = MarkdownWriter::default();
            write_blocks(&mut out, &body.blocks);
            Read {
                title,
                markdown: out.finish(),
                ..Read::default()
            }
        }
        Some(BodyKind::Presentation) => super::write_slides(body.slides, title),
        Some(BodyKind::Other(kind)) => {
            return Err(corrupt(
                format,
                format!(
                    "it is an OpenDocument {kind}, not a text document or presentation; give it the extension of its kind (.ods for a spreadsheet)"
                ),
            ));
        }
        None => {
            return Err(corrupt(
                format,
                "content.xml has no office:body; save it again from its application",
            ));
        }
    };
    if body.repeats_capped {
        read.notes.push(format!(
            "repeated table rows and columns cut short: they would add more than {MAX_REPEATS} cells"
        ));
    }
    Ok(read)
}

/// Whether the manifest says any part is encrypted (`manifest:encryption-data`).
fn is_encrypted(manifest: &str) -> bool {
    let mut reader = xml_reader(manifest);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) if e.local_name().as_ref() == "encryption-data" => return true,
            Ok(Event::Eof) | Err(_) => return false,
            _ => {}
        }
    }
}

/// What the styles say: which list levels are bullets, which drawing pages are hidden.
#[derive(Debug, Default)]
struct Styles {
    /// (list style, level from 1) → numbered.
    list_levels: HashMap<(String, usize), bool>,
    hidden_pages: Vec<String>,
}

impl Styles {
    fn parse(&mut self, xml: &str) -> Result<(), quick_xml::Error> {
        let mut reader = xml_reader(xml);
        let mut list_style: Option<String> = None;
        let mut page_style: Option<String> = None;
        loop {
            match reader.read_event()? {
                Event::Start(e) => match e.local_name().as_ref() {
                    "list-style" => list_style = attr(&e, "name"),
                    "style" => {
                        page_style = attr(&e, "family")
                            .filter(|f| f == "drawing-page")
                            .and(attr(&e, "name"));
                    }
                    "drawing-page-properties" => {
                        if let Some(name) = &page_style
                            && attr(&e, "visibility").is_some_and(|v| v == "hidden")
                        {
                            self.hidden_pages.push(name.clone());
                        }
                    }
                    name @ ("list-level-style-number"
                    | "list-level-style-bullet"
                    | "list-level-style-image") => {
                        if let Some(style) = &list_style {
                            let level = attr(&e, "level").and_then(|l| l.parse().ok()).unwrap_or(1);
                            // A number format of "" shows no number.
                            let numbered = name == "list-level-style-number"
                                && attr(&e, "num-format").is_some_and(|f| !f.is_empty());
                            self.list_levels.insert((style.clone(), level), numbered);
                        }
                    }
                    _ => {}
                },
                Event::End(e) => match e.local_name().as_ref() {
                    "list-style" => list_style = None,
                    "style" => page_style = None,
                    _ => {}
                },
                Event::Eof => return Ok(()),
                _ => {}
            }
        }
    }

    fn numbered(&self, style: Option<&str>, level: usize) -> bool {
        style.is_some_and(|s| {
            self.list_levels
                .get(&(s.to_owned(), level))
                .copied()
                .unwrap_or(false)
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum BodyKind {
    Text,
    Presentation,
    /// spreadsheet, drawing, chart, …
    Other(String),
}

#[derive(Debug)]
struct Body {
    kind: Option<BodyKind>,
    blocks: Vec<Block>,
    slides: Vec<Slide>,
    repeats_capped: bool,
}

#[derive(Debug, Default)]
struct Paragraph {
    heading: Option<usize>,
    text: String,
}

#[derive(Debug)]
struct List {
    style: Option<String>,
    /// Whether the open item has written its first paragraph.
    item_started: bool,
    header: bool,
}

#[derive(Debug, Default)]
struct Table {
    rows: Vec<Vec<String>>,
    row: Option<(Vec<String>, usize)>,
    cell: Option<(String, usize)>,
}

#[derive(Debug)]
struct OpenShape {
    depth: usize,
    class: Option<String>,
    position: Option<(i64, i64)>,
    blocks: Vec<Block>,
}

struct Walker<'s> {
    styles: &'s Styles,
    body: Body,
    /// Element depth inside the document.
    depth: usize,
    in_body: bool,
    skip: usize,
    paragraphs: Vec<Paragraph>,
    lists: Vec<List>,
    tables: Vec<Table>,
    repeats_left: usize,
    /// Presentation state: the open slide, its shapes, the open shape, inside notes.
    slide: Option<Slide>,
    shapes: Vec<Shape>,
    shape: Option<OpenShape>,
    notes_depth: Option<usize>,
}

impl<'s> Walker<'s> {
    fn new(styles: &'s Styles) -> Self {
        Self {
            styles,
            body: Body {
                kind: None,
                blocks: Vec::new(),
                slides: Vec::new(),
                repeats_capped: false,
            },
            depth: 0,
            in_body: false,
            skip: 0,
            paragraphs: Vec::new(),
            lists: Vec::new(),
            tables: Vec::new(),
            repeats_left: MAX_REPEATS,
            slide: None,
            shapes: Vec::new(),
            shape: None,
            notes_depth: None,
        }
    }

    fn run(mut self, xml: &str) -> Result<Body, quick_xml::Error> {
        let mut reader = xml_reader(xml);
        loop {
            match reader.read_event()? {
                Event::Start(e) => {
                    self.depth += 1;
                    if self.skip > 0 {
                        self.skip += 1;
                    } else if self.body.kind.is_some() && SKIPPED.contains(&e.local_name().as_ref())
                    {
                        self.skip = 1;
                    } else {
                        self.start(&e);
                    }
                }
                Event::End(e) => {
                    if self.skip > 0 {
                        self.skip -= 1;
                    } else {
                        self.end(e.local_name().as_ref());
                    }
                    self.depth = self.depth.saturating_sub(1);
                }
                Event::Text(t) if self.skip == 0 => {
                    if let Some(p) = self.paragraphs.last_mut() {
                        push_text(&mut p.text, &t.xml10_content());
                    }
                }
                Event::CData(t) if self.skip == 0 => {
                    if let Some(p) = self.paragraphs.last_mut() {
                        push_text(&mut p.text, &t);
                    }
                }
                Event::GeneralRef(r) if self.skip == 0 => {
                    if let Some(p) = self.paragraphs.last_mut() {
                        push_entity(&mut p.text, &r);
                    }
                }
                Event::Eof => return Ok(self.body),
                _ => {}
            }
        }
    }

    fn start(&mut self, e: &BytesStart<'_>) {
        let name = e.local_name();
        let name = name.as_ref();
        if !self.in_body {
            self.in_body = name == "body";
            return;
        }
        let Some(kind) = self.body.kind.clone() else {
            self.body.kind = Some(match name {
                "text" => BodyKind::Text,
                "presentation" => BodyKind::Presentation,
                other => BodyKind::Other(other.to_owned()),
            });
            return;
        };
        if kind == BodyKind::Presentation {
            match name {
                "page" if self.slide.is_none() => {
                    let hidden = attr(e, "style-name")
                        .is_some_and(|s| self.styles.hidden_pages.contains(&s));
                    self.slide = Some(Slide {
                        hidden,
                        ..Slide::default()
                    });
                    return;
                }
                "notes" if self.slide.is_some() => {
                    self.notes_depth = Some(self.depth);
                    return;
                }
                name if SHAPES.contains(&name)
                    && self.shape.is_none()
                    && self.notes_depth.is_none()
                    && self.slide.is_some() =>
                {
                    let position = match (attr(e, "y"), attr(e, "x")) {
                        (Some(y), Some(x)) => length(&y)
                            .zip(length(&x))
                            .map(|(y, x)| (y.div_euclid(ROW_BAND), x)),
                        _ => None,
                    };
                    self.shape = Some(OpenShape {
                        depth: self.depth,
                        class: attr(e, "class"),
                        position,
                        blocks: Vec::new(),
                    });
                    return;
                }
                _ => {}
            }
        }
        match name {
            "p" => self.paragraphs.push(Paragraph::default()),
            "h" => self.paragraphs.push(Paragraph {
                heading: Some(
                    attr(e, "outline-level")
                        .and_then(|l| l.parse().ok())
                        .unwrap_or(1usize)
                        .clamp(1, 6),
                ),
                text: String::new(),
            }),
            "s" => {
                if let Some(p) = self.paragraphs.last_mut() {
                    p.text.push(' ');
                }
            }
            "tab" => {
                if let Some(p) = self.paragraphs.last_mut() {
                    p.text.push('\t');
                }
            }
            "line-break" => {
                if let Some(p) = self.paragraphs.last_mut() {
                    p.text.push('\n');
                }
            }
            "list" => {
                // A nested list without a style of its own follows the outer one.
                let style = attr(e, "style-name")
                    .or_else(|| self.lists.last().and_then(|l| l.style.clone()));
                self.lists.push(List {
                    style,
                    item_started: false,
                    header: false,
                });
            }
            "list-item" | "list-header" => {
                if let Some(list) = self.lists.last_mut() {
                    list.item_started = false;
                    list.header = name == "list-header";
                }
            }
            "table" => self.tables.push(Table::default()),
            "table-row" => {
                let asked = repeats(e, "number-rows-repeated");
                if let Some(t) = self.tables.last_mut() {
                    t.row = Some((Vec::new(), asked));
                }
            }
            "table-cell" | "covered-table-cell" => {
                let asked = repeats(e, "number-columns-repeated");
                if let Some(t) = self.tables.last_mut() {
                    t.cell = Some((String::new(), asked));
                }
            }
            _ => {}
        }
    }

    /// How many times a row or cell that asks for `asked` copies is written, each extra copy
    /// costing `cells` cells of the file's budget.
    fn copies(&mut self, asked: usize, cells: usize) -> usize {
        let wanted = asked.saturating_sub(1);
        let extra = wanted.min(self.repeats_left / cells.max(1));
        if extra < wanted {
            self.body.repeats_capped = true;
        }
        self.repeats_left -= extra * cells.max(1);
        extra + 1
    }

    fn end(&mut self, name: &str) {
        if let Some(shape) = &self.shape
            && shape.depth == self.depth
        {
            if let Some(shape) = self.shape.take() {
                self.finish_shape(shape);
            }
            return;
        }
        match name {
            "body" => self.in_body = false,
            "p" | "h" => {
                if let Some(p) = self.paragraphs.pop() {
                    self.paragraph(p);
                }
            }
            "list" => {
                self.lists.pop();
            }
            "table-cell" | "covered-table-cell" => {
                let Some((cell, asked)) = self.tables.last_mut().and_then(|t| t.cell.take()) else {
                    return;
                };
                let copies = self.copies(asked, 1);
                if let Some(t) = self.tables.last_mut() {
                    let row = &mut t.row.get_or_insert_with(|| (Vec::new(), 1)).0;
                    let cell = super::super::collapse_whitespace(&cell);
                    row.extend(std::iter::repeat_n(cell, copies));
                }
            }
            "table-row" => {
                let Some((mut row, asked)) = self.tables.last_mut().and_then(|t| t.row.take())
                else {
                    return;
                };
                // Spreadsheet-style tables pad rows with empty repeated cells.
                while row.last().is_some_and(String::is_empty) {
                    row.pop();
                }
                if row.is_empty() {
                    return;
                }
                let copies = self.copies(asked, row.len());
                if let Some(t) = self.tables.last_mut() {
                    t.rows.extend(std::iter::repeat_n(row, copies));
                }
            }
            "table" => {
                if let Some(table) = self.tables.pop() {
                    match self.tables.last_mut().and_then(|t| t.cell.as_mut()) {
                        // A table inside a cell: its text, row by row, joins the outer cell.
                        Some((cell, _)) => {
                            for row in &table.rows {
                                cell.push(' ');
                                cell.push_str(&row.join(" "));
                                cell.push(';');
                            }
                        }
                        None => self.emit(Block::Table(table.rows)),
                    }
                }
            }
            "page" if self.notes_depth.is_none() && self.shape.is_none() => {
                if let Some(mut slide) = self.slide.take() {
                    slide.body = reading_order(std::mem::take(&mut self.shapes));
                    self.body.slides.push(slide);
                }
            }
            "notes" if self.notes_depth == Some(self.depth) => self.notes_depth = None,
            _ => {}
        }
    }

    fn paragraph(&mut self, p: Paragraph) {
        if let Some((cell, _)) = self.tables.last_mut().and_then(|t| t.cell.as_mut()) {
            if !cell.is_empty() {
                cell.push(' ');
            }
            cell.push_str(&p.text);
            return;
        }
        if p.text.trim().is_empty() {
            return;
        }
        if let Some(level) = p.heading {
            self.emit(Block::Heading(level, p.text));
            return;
        }
        let depth = self.lists.len();
        let block = match self.lists.last_mut() {
            Some(list) => {
                let marker = if list.item_started || list.header {
                    Marker::Continued
                } else if self.styles.numbered(list.style.as_deref(), depth) {
                    Marker::Numbered
                } else {
                    Marker::Bullet
                };
                list.item_started = true;
                Block::Item {
                    depth: depth - 1,
                    marker,
                    text: p.text,
                }
            }
            None => Block::Paragraph(p.text),
        };
        self.emit(block);
    }

    /// Sends a block where it belongs: the document, the open shape or the slide's notes.
    fn emit(&mut self, block: Block) {
        if self.slide.is_none() {
            if self.body.kind == Some(BodyKind::Text) {
                self.body.blocks.push(block);
            }
            return;
        }
        if self.notes_depth.is_some() {
            if let Some(slide) = self.slide.as_mut() {
                slide.notes.push(block);
            }
            return;
        }
        match self.shape.as_mut() {
            Some(shape) => shape.blocks.push(block),
            None => self.shapes.push(Shape {
                position: None,
                blocks: vec![block],
            }),
        }
    }

    fn finish_shape(&mut self, shape: OpenShape) {
        match shape.class.as_deref() {
            Some(class) if SKIPPED_CLASSES.contains(&class) => {}
            Some("title") => {
                let text: Vec<String> = shape
                    .blocks
                    .into_iter()
                    .filter_map(|b| match b {
                        Block::Heading(_, t)
                        | Block::Paragraph(t)
                        | Block::Item { text: t, .. } => Some(t),
                        Block::Table(_) => None,
                    })
                    .collect();
                if let Some(slide) = self.slide.as_mut()
                    && slide.title.is_none()
                {
                    slide.title = Some(text.join(" "));
                }
            }
            _ => self.shapes.push(Shape {
                position: shape.position,
                blocks: shape.blocks,
            }),
        }
    }
}

/// The copies a row or cell asks for (`number-rows-repeated`, `number-columns-repeated`).
fn repeats(e: &BytesStart<'_>, attribute: &str) -> usize {
    attr(e, attribute)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1usize)
        .max(1)
}

/// An ODF length ("2.5cm", "10mm", "1in", "72pt") in hundredths of a millimetre.
fn length(value: &str) -> Option<i64> {
    let value = value.trim();
    let split = value
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.trim().parse().ok()?;
    let per_unit = match unit {
        "cm" => 1000.0,
        "mm" => 100.0,
        "in" | "inch" => 2540.0,
        "pt" => 2540.0 / 72.0,
        "pc" => 2540.0 / 6.0,
        "px" => 2540.0 / 96.0,
        _ => return None,
    };
    let hundredths = (number * per_unit).round();
    // Within any real page; absurd values are not positions.
    (hundredths.is_finite() && hundredths.abs() < 1e12).then_some(hundredths as i64)
}
