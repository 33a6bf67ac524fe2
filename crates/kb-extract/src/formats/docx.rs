//! Word documents (DOCX) → Markdown.
//!
//! A DOCX is a zip of XML parts. The main document part (found through `_rels/.rels`), its
//! styles, its numbering definitions and the core properties are read through
//! [`super::package`], within one expansion budget ([`LoadLimits::max_expanded_bytes`]), and
//! parsed with `quick-xml`, which expands no custom entities.
//!
//! Kept: paragraphs; headings (paragraph styles named "heading N" or "Title", or with an
//! outline level, following `basedOn`); list items (numbering on the paragraph or its style,
//! `- ` for bullets, `N.` counted for numbered levels, indented by level); tables (pipe tables,
//! merged cells padded, nested tables flattened into their cell); text boxes; tabs and line
//! breaks. Skipped: deleted tracked changes, field instructions, the fallback copy of
//! alternate content, headers, footers, footnotes and comments.
//!
//! An encrypted DOCX is an OLE container, not a zip: it is recognised and refused as
//! encrypted; a legacy `.doc` renamed `.docx` is refused with a hint.
//!
//! `styles` reads the styles and numbering parts (which styles are headings, which lists
//! count); this module reads the package and walks the document body.

mod styles;

use super::package::Package;
use super::{MarkdownWriter, push_entity};
use crate::{LoadError, LoadLimits, SourceFormat};
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use std::collections::HashMap;
use styles::{Numbering, Styles};

/// A DOCX as Markdown, with the title from its core properties if it has one.
#[derive(Debug)]
pub(crate) struct DocxText {
    pub(crate) title: Option<String>,
    pub(crate) markdown: String,
}

pub(crate) fn to_markdown(bytes: &[u8], limits: &LoadLimits) -> Result<DocxText, LoadError> {
    let mut package =
        Package::open_document(bytes, SourceFormat::Docx, limits, "Word 97-2003 .doc")?;
    let main = package
        .read("_rels/.rels")?
        .and_then(|rels| main_document_part(&rels))
        .unwrap_or_else(|| "word/document.xml".to_owned());
    let folder = main.rsplit_once('/').map_or("", |(dir, _)| dir);
    let in_folder = |name: &str| {
        if folder.is_empty() {
            name.to_owned()
        } else {
            format!("{folder}/{name}")
        }
    };
    let document = package
        .read(&main)?
        .ok_or_else(|| corrupt(format!("it has no {main}, so it is not a Word document")))?;
    let styles = match package.read(&in_folder("styles.xml"))? {
        Some(xml) => Styles::parse(&xml)?,
        None => Styles::default(),
    };
    let numbering = match package.read(&in_folder("numbering.xml"))? {
        Some(xml) => Numbering::parse(&xml)?,
        None => Numbering::default(),
    };
    let title = package
        .read("docProps/core.xml")?
        .and_then(|core| core_title(&core));

    let markdown = Body::new(&styles, &numbering).convert(&document)?;
    Ok(DocxText { title, markdown })
}

fn corrupt(detail: impl Into<String>) -> LoadError {
    LoadError::Corrupt {
        format: SourceFormat::Docx,
        detail: detail.into(),
    }
}

fn xml_error(part: &str, error: impl std::fmt::Display) -> LoadError {
    corrupt(format!("{part} is not well-formed XML ({error})"))
}

/// The value of the attribute with local name `name`.
fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name)
        .and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

/// The target of the officeDocument relationship in `_rels/.rels`.
fn main_document_part(rels: &str) -> Option<String> {
    let mut reader = Reader::from_str(rels);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) if e.local_name().as_ref() == "Relationship" => {
                let is_main = attr(&e, "Type").is_some_and(|t| t.ends_with("/officeDocument"));
                if is_main {
                    return attr(&e, "Target").map(|t| t.trim_start_matches('/').to_owned());
                }
            }
            Ok(Event::Eof) | Err(_) => return None,
            _ => {}
        }
    }
}

/// `dc:title` from `docProps/core.xml`.
fn core_title(core: &str) -> Option<String> {
    let mut reader = Reader::from_str(core);
    let mut in_title = false;
    let mut title = String::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) if e.local_name().as_ref() == "title" => in_title = true,
            Ok(Event::End(e)) if e.local_name().as_ref() == "title" => break,
            Ok(Event::Text(t)) if in_title => title.push_str(&t.xml10_content()),
            Ok(Event::GeneralRef(r)) if in_title => push_entity(&mut title, &r),
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    let title = super::collapse_whitespace(&title);
    (!title.is_empty()).then_some(title)
}

/// A paragraph being read.
#[derive(Debug, Default)]
struct Paragraph {
    text: String,
    style: Option<String>,
    num_id: Option<String>,
    num_level: Option<u32>,
    outline_level: Option<u8>,
}

#[derive(Debug, Default)]
struct Table {
    rows: Vec<Vec<String>>,
    row: Option<Vec<String>>,
    cell: Option<String>,
    span: usize,
}

/// Elements whose content is not part of the document's text.
const SKIPPED: &[&str] = &[
    "delText",
    "instrText",
    "Fallback",
    "pPrChange",
    "rPrChange",
    "rPr",
    "footnoteReference",
    "endnoteReference",
    "commentReference",
];

struct Body<'a> {
    styles: &'a Styles,
    numbering: &'a Numbering,
    out: MarkdownWriter,
    paragraphs: Vec<Paragraph>,
    tables: Vec<Table>,
    /// (numId, level) → the next number of a counted list.
    counters: HashMap<(String, u32), u32>,
    in_text: bool,
    in_ppr: bool,
}

impl<'a> Body<'a> {
    fn new(styles: &'a Styles, numbering: &'a Numbering) -> Self {
        Self {
            styles,
            numbering,
            out: MarkdownWriter::default(),
            paragraphs: Vec::new(),
            tables: Vec::new(),
            counters: HashMap::new(),
            in_text: false,
            in_ppr: false,
        }
    }

    fn convert(mut self, xml: &str) -> Result<String, LoadError> {
        let mut reader = Reader::from_str(xml);
        let mut skip = 0usize;
        loop {
            let event = reader
                .read_event()
                .map_err(|e| xml_error("the document", e))?;
            match event {
                Event::Start(e) => {
                    if skip > 0 || SKIPPED.contains(&e.local_name().as_ref()) {
                        skip += 1;
                    } else {
                        self.start(&e, false);
                    }
                }
                Event::Empty(e) if skip == 0 && !SKIPPED.contains(&e.local_name().as_ref()) => {
                    self.start(&e, true);
                    self.end(e.local_name().as_ref());
                }
                Event::End(e) => {
                    if skip > 0 {
                        skip -= 1;
                    } else {
                        self.end(e.local_name().as_ref());
                    }
                }
                Event::Text(t) if skip == 0 && self.in_text => {
                    if let Some(p) = self.paragraphs.last_mut() {
                        super::push_clean(&mut p.text, &t.xml10_content());
                    }
                }
                Event::CData(t) if skip == 0 && self.in_text => {
                    if let Some(p) = self.paragraphs.last_mut() {
                        super::push_clean(&mut p.text, &t);
                    }
                }
                Event::GeneralRef(r) if skip == 0 && self.in_text => {
                    if let Some(p) = self.paragraphs.last_mut() {
                        push_entity(&mut p.text, &r);
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        Ok(self.out.finish())
    }

    fn start(&mut self, e: &BytesStart<'_>, empty: bool) {
        let name = e.local_name();
        let paragraph = self.paragraphs.last_mut();
        match (name.as_ref(), paragraph) {
            ("p", _) => self.paragraphs.push(Paragraph::default()),
            ("pPr", Some(_)) if !empty => self.in_ppr = true,
            ("pStyle", Some(p)) if self.in_ppr => p.style = attr(e, "val"),
            ("numId", Some(p)) if self.in_ppr => p.num_id = attr(e, "val"),
            ("ilvl", Some(p)) if self.in_ppr => {
                p.num_level = attr(e, "val").and_then(|v| v.parse().ok());
            }
            ("outlineLvl", Some(p)) if self.in_ppr => {
                p.outline_level = attr(e, "val").and_then(|v| v.parse().ok());
            }
            ("t", Some(_)) if !empty => self.in_text = true,
            ("tab" | "ptab", Some(p)) if !self.in_ppr => p.text.push('\t'),
            ("br", Some(p)) => {
                let page_or_column = attr(e, "type").is_some_and(|t| t != "textWrapping");
                p.text.push(if page_or_column { ' ' } else { '\n' });
            }
            ("cr", Some(p)) => p.text.push('\n'),
            ("noBreakHyphen", Some(p)) => p.text.push('-'),
            ("tbl", _) => self.tables.push(Table::default()),
            ("tr", _) => {
                if let Some(t) = self.tables.last_mut() {
                    t.row = Some(Vec::new());
                }
            }
            ("tc", _) => {
                if let Some(t) = self.tables.last_mut() {
                    t.cell = Some(String::new());
                    t.span = 1;
                }
            }
            ("gridSpan", _) => {
                if let Some(t) = self.tables.last_mut() {
                    t.span = attr(e, "val")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1)
                        .clamp(1, 64);
                }
            }
            _ => {}
        }
    }

    fn end(&mut self, name: &str) {
        match name {
            "pPr" => self.in_ppr = false,
            "t" => self.in_text = false,
            "p" => {
                if let Some(p) = self.paragraphs.pop() {
                    self.paragraph(p);
                }
            }
            "tc" => {
                if let Some(t) = self.tables.last_mut()
                    && let Some(cell) = t.cell.take()
                {
                    let row = t.row.get_or_insert_with(Vec::new);
                    row.push(super::collapse_whitespace(&cell));
                    row.extend(std::iter::repeat_n(String::new(), t.span - 1));
                }
            }
            "tr" => {
                if let Some(t) = self.tables.last_mut()
                    && let Some(row) = t.row.take()
                {
                    t.rows.push(row);
                }
            }
            "tbl" => {
                let Some(table) = self.tables.pop() else {
                    return;
                };
                match self.tables.last_mut().and_then(|t| t.cell.as_mut()) {
                    // A table inside a cell: its text, row by row, joins the outer cell.
                    Some(cell) => {
                        for row in &table.rows {
                            cell.push(' ');
                            cell.push_str(&row.join(" "));
                            cell.push(';');
                        }
                    }
                    None => self.out.table(&table.rows),
                }
            }
            _ => {}
        }
    }

    fn paragraph(&mut self, p: Paragraph) {
        if let Some(cell) = self.tables.last_mut().and_then(|t| t.cell.as_mut()) {
            if !cell.is_empty() {
                cell.push(' ');
            }
            cell.push_str(&p.text);
            return;
        }
        if p.text.trim().is_empty() {
            return;
        }
        let style = p.style.as_deref();
        let level = style.and_then(|s| self.styles.heading_level(s)).or(p
            .outline_level
            .filter(|l| *l < 6)
            .map(|l| usize::from(l) + 1));
        if let Some(level) = level {
            self.out.heading(level, &p.text);
            return;
        }
        let numbering = match (p.num_id, p.num_level) {
            (Some(id), level) => Some((id, level.unwrap_or(0))),
            (None, level) => style
                .and_then(|s| self.styles.numbering(s))
                .map(|(id, l)| (id, level.unwrap_or(l))),
        };
        match numbering.filter(|(id, _)| id != "0") {
            Some((id, level)) => {
                let marker = if self.numbering.is_bullet(&id, level) {
                    "-".to_owned()
                } else {
                    self.counters.retain(|(i, l), _| *i != id || *l <= level);
                    let n = self.counters.entry((id, level)).or_insert(0);
                    *n += 1;
                    format!("{n}.")
                };
                let depth = usize::try_from(level).unwrap_or(0).min(8);
                self.out.list_item(depth, &marker, &p.text);
            }
            None => self.out.paragraph(&p.text.replace('\t', " ")),
        }
    }
}

#[cfg(test)]
mod tests;
