//! PowerPoint 2007+ decks (PresentationML): slides in the order `ppt/presentation.xml` lists
//! them, each slide's shapes in reading order, tables, and the speaker notes.

use super::xml::{
    Relationship, attr, element_text, prefixed_attr, push_entity, push_text, relationships,
    xml_error, xml_reader,
};
use super::{Block, Marker, Read, Shape, Slide, reading_order, write_slides};
use crate::formats::package::Package;
use crate::{LoadError, LoadLimits, SourceFormat};
use quick_xml::events::{BytesStart, Event};
use std::collections::HashMap;

const FORMAT: SourceFormat = SourceFormat::Pptx;

/// Shapes whose tops are this close (a quarter inch, in EMU) read as one row, left to right.
const ROW_BAND: i64 = 228_600;

/// Placeholders that repeat on every slide or only picture the slide: not slide text.
const SKIPPED_PLACEHOLDERS: &[&str] = &["sldNum", "dt", "ftr", "hdr", "sldImg"];

pub(super) fn read(bytes: &[u8], limits: &LoadLimits) -> Result<Read, LoadError> {
    let mut package = Package::open_document(bytes, FORMAT, limits, "PowerPoint 97-2003 .ppt")?;
    let main = relationships(&mut package, "")?
        .into_iter()
        .find(|r| r.is("officeDocument"))
        .map_or_else(|| "ppt/presentation.xml".to_owned(), |r| r.target);
    let presentation = package.require(&main, "a PowerPoint presentation")?;
    let slide_ids = slide_list(&presentation).map_err(|e| xml_error(FORMAT, &main, e))?;
    let rels = relationships(&mut package, &main)?;
    let title = package
        .read("docProps/core.xml")?
        .and_then(|core| element_text(&core, "title"));

    let mut layouts: HashMap<String, Vec<ParsedShape>> = HashMap::new();
    let mut slides = Vec::with_capacity(slide_ids.len());
    for id in &slide_ids {
        let part = rels.iter().find(|r| &r.id == id && r.is("slide"));
        let Some(xml) = (match part {
            Some(rel) => package.read(&rel.target)?,
            None => None,
        }) else {
            slides.push(Slide {
                missing: true,
                ..Slide::default()
            });
            continue;
        };
        let part = part.map(|r| r.target.clone()).unwrap_or_default();
        let slide_rels = relationships(&mut package, &part)?;
        let layout = match find(&slide_rels, "slideLayout") {
            Some(target) => {
                if !layouts.contains_key(&target) {
                    let shapes = match package.read(&target)? {
                        Some(xml) => parse(&xml, &target, Kind::Slide)?.shapes,
                        None => Vec::new(),
                    };
                    layouts.insert(target.clone(), shapes);
                }
                layouts.get(&target)
            }
            None => None,
        };
        let parsed = parse(&xml, &part, Kind::Slide)?;
        let mut slide = parsed.into_slide(layout.map(Vec::as_slice).unwrap_or_default());
        if let Some(target) = find(&slide_rels, "notesSlide")
            && let Some(xml) = package.read(&target)?
        {
            slide.notes = parse(&xml, &target, Kind::Notes)?
                .shapes
                .into_iter()
                .filter(|s| s.placeholder.as_ref().is_some_and(|p| p.kind == "body"))
                .flat_map(|s| s.shape.blocks)
                .collect();
        }
        slides.push(slide);
    }
    Ok(write_slides(slides, title))
}

fn find(rels: &[Relationship], kind: &str) -> Option<String> {
    rels.iter().find(|r| r.is(kind)).map(|r| r.target.clone())
}

/// The relationship ids of the slides, in presentation order.
fn slide_list(xml: &str) -> Result<Vec<String>, quick_xml::Error> {
    let mut reader = xml_reader(xml);
    let mut ids = Vec::new();
    let mut in_list = false;
    loop {
        match reader.read_event()? {
            Event::Start(e) => match e.local_name().as_ref() {
                "sldIdLst" => in_list = true,
                "sldId" if in_list => ids.extend(prefixed_attr(&e, "id")),
                _ => {}
            },
            Event::End(e) if e.local_name().as_ref() == "sldIdLst" => in_list = false,
            Event::Eof => return Ok(ids),
            _ => {}
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Slide,
    Notes,
}

/// A placeholder: its type ("title", "body", "obj" when unstated, …) and index.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Placeholder {
    kind: String,
    index: Option<String>,
}

impl Placeholder {
    fn is_title(&self) -> bool {
        self.kind == "title" || self.kind == "ctrTitle"
    }
}

#[derive(Debug)]
struct ParsedShape {
    placeholder: Option<Placeholder>,
    shape: Shape,
    /// The text of a title placeholder (kept out of `shape.blocks`).
    title: String,
}

#[derive(Debug)]
struct Parsed {
    hidden: bool,
    shapes: Vec<ParsedShape>,
}

impl Parsed {
    fn into_slide(self, layout: &[ParsedShape]) -> Slide {
        let mut title = None;
        let mut shapes = Vec::new();
        for mut parsed in self.shapes {
            if let Some(ph) = &parsed.placeholder {
                if ph.is_title() {
                    if title.is_none() && !parsed.title.trim().is_empty() {
                        title = Some(parsed.title);
                    }
                    continue;
                }
                if parsed.shape.position.is_none() {
                    parsed.shape.position = layout_position(layout, ph);
                }
            }
            shapes.push(parsed.shape);
        }
        Slide {
            title,
            body: reading_order(shapes),
            notes: Vec::new(),
            hidden: self.hidden,
            missing: false,
        }
    }
}

/// Where the layout puts the placeholder a slide inherits: same index, else same type.
fn layout_position(layout: &[ParsedShape], ph: &Placeholder) -> Option<(i64, i64)> {
    let same = |f: &dyn Fn(&Placeholder) -> bool| {
        layout
            .iter()
            .find(|s| s.placeholder.as_ref().is_some_and(f))
            .and_then(|s| s.shape.position)
    };
    match &ph.index {
        Some(index) => {
            same(&|p| p.index.as_ref() == Some(index)).or_else(|| same(&|p| p.kind == ph.kind))
        }
        None => same(&|p| p.kind == ph.kind),
    }
}

/// A paragraph being read.
#[derive(Debug, Default)]
struct Paragraph {
    level: usize,
    /// `Some(None)`: bullets turned off (`a:buNone`); `None`: as the placeholder says.
    bullet: Option<Option<Marker>>,
    text: String,
}

#[derive(Debug, Default)]
struct Table {
    rows: Vec<Vec<String>>,
    row: Option<Vec<String>>,
    cell: Option<String>,
}

#[derive(Debug)]
struct Current {
    placeholder: Option<Placeholder>,
    position: Option<(i64, i64)>,
    blocks: Vec<Block>,
    title: String,
    kind: Kind,
    table: Option<Table>,
    paragraph: Option<Paragraph>,
    in_properties: bool,
    in_text: bool,
}

/// Reads the shapes of a slide, layout or notes part.
fn parse(xml: &str, part: &str, kind: Kind) -> Result<Parsed, LoadError> {
    let mut reader = xml_reader(xml);
    let mut parsed = Parsed {
        hidden: false,
        shapes: Vec::new(),
    };
    let mut first = true;
    // Group shapes: their children are placed where the outermost group is.
    let mut groups: Vec<Option<(i64, i64)>> = Vec::new();
    let mut in_group_properties = false;
    let mut current: Option<Current> = None;
    let mut skip = 0usize;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| xml_error(FORMAT, part, e))?;
        match event {
            Event::Start(e) => {
                let name = e.local_name();
                let name = name.as_ref();
                if first {
                    first = false;
                    parsed.hidden = attr(&e, "show").is_some_and(|s| s == "0" || s == "false");
                }
                if skip > 0 || name == "Fallback" || name == "extLst" {
                    skip += 1;
                    continue;
                }
                match (name, current.as_mut()) {
                    ("grpSp", None) => groups.push(None),
                    ("grpSpPr", None) => in_group_properties = true,
                    ("off", None) if in_group_properties => {
                        if let Some(slot) = groups.last_mut() {
                            *slot = offset(&e);
                        }
                    }
                    ("sp" | "graphicFrame", None) => {
                        let group = groups.iter().flatten().next().copied();
                        current = Some(Current {
                            placeholder: None,
                            position: group,
                            blocks: Vec::new(),
                            title: String::new(),
                            kind,
                            table: None,
                            paragraph: None,
                            in_properties: false,
                            in_text: false,
                        });
                    }
                    (_, Some(shape)) => shape.start(name, &e),
                    _ => {}
                }
            }
            Event::End(e) => {
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                let name = e.local_name();
                match (name.as_ref(), current.as_mut()) {
                    ("grpSp", None) => {
                        groups.pop();
                    }
                    ("grpSpPr", None) => in_group_properties = false,
                    ("sp" | "graphicFrame", Some(_)) => {
                        if let Some(shape) = current.take().and_then(Current::finish) {
                            parsed.shapes.push(shape);
                        }
                    }
                    (name, Some(shape)) => shape.end(name),
                    _ => {}
                }
            }
            Event::Text(t) if skip == 0 => {
                if let Some(text) = current.as_mut().and_then(Current::text_sink) {
                    push_text(text, &t.xml10_content());
                }
            }
            Event::CData(t) if skip == 0 => {
                if let Some(text) = current.as_mut().and_then(Current::text_sink) {
                    push_text(text, &t);
                }
            }
            Event::GeneralRef(r) if skip == 0 => {
                if let Some(text) = current.as_mut().and_then(Current::text_sink) {
                    push_entity(text, &r);
                }
            }
            Event::Eof => return Ok(parsed),
            _ => {}
        }
    }
}

/// `(top, left)` of an `a:off` element, the top in rows of [`ROW_BAND`].
fn offset(e: &BytesStart<'_>) -> Option<(i64, i64)> {
    let x: i64 = attr(e, "x")?.parse().ok()?;
    let y: i64 = attr(e, "y")?.parse().ok()?;
    Some((y.div_euclid(ROW_BAND), x))
}

impl Current {
    fn text_sink(&mut self) -> Option<&mut String> {
        if self.in_text {
            self.paragraph.as_mut().map(|p| &mut p.text)
        } else {
            None
        }
    }

    fn start(&mut self, name: &str, e: &BytesStart<'_>) {
        match name {
            "ph" => {
                self.placeholder = Some(Placeholder {
                    kind: attr(e, "type").unwrap_or_else(|| "obj".to_owned()),
                    index: attr(e, "idx"),
                });
            }
            "off" if self.position.is_none() && self.paragraph.is_none() => {
                self.position = offset(e);
            }
            "p" => {
                self.paragraph = Some(Paragraph::default());
                self.in_properties = false;
            }
            "pPr" => {
                if let Some(p) = self.paragraph.as_mut() {
                    self.in_properties = true;
                    p.level = attr(e, "lvl").and_then(|l| l.parse().ok()).unwrap_or(0);
                }
            }
            "buNone" | "buChar" | "buAutoNum" | "buBlip" if self.in_properties => {
                if let Some(p) = self.paragraph.as_mut() {
                    p.bullet = Some(match name {
                        "buNone" => None,
                        "buAutoNum" => Some(Marker::Numbered),
                        _ => Some(Marker::Bullet),
                    });
                }
            }
            "t" => self.in_text = self.paragraph.is_some(),
            "br" => {
                if let Some(p) = self.paragraph.as_mut() {
                    p.text.push('\n');
                }
            }
            "tbl" => self.table = Some(Table::default()),
            "tr" => {
                if let Some(t) = self.table.as_mut() {
                    t.row = Some(Vec::new());
                }
            }
            "tc" => {
                if let Some(t) = self.table.as_mut() {
                    t.cell = Some(String::new());
                }
            }
            _ => {}
        }
    }

    fn end(&mut self, name: &str) {
        match name {
            "pPr" => self.in_properties = false,
            "t" => self.in_text = false,
            "p" => {
                if let Some(p) = self.paragraph.take() {
                    self.paragraph(p);
                }
            }
            "tc" => {
                if let Some(t) = self.table.as_mut()
                    && let Some(cell) = t.cell.take()
                {
                    t.row
                        .get_or_insert_with(Vec::new)
                        .push(super::super::collapse_whitespace(&cell));
                }
            }
            "tr" => {
                if let Some(t) = self.table.as_mut()
                    && let Some(row) = t.row.take()
                {
                    t.rows.push(row);
                }
            }
            "tbl" => {
                if let Some(t) = self.table.take() {
                    self.blocks.push(Block::Table(t.rows));
                }
            }
            _ => {}
        }
    }

    fn paragraph(&mut self, p: Paragraph) {
        if let Some(cell) = self.table.as_mut().and_then(|t| t.cell.as_mut()) {
            if !cell.is_empty() {
                cell.push(' ');
            }
            cell.push_str(&p.text);
            return;
        }
        if p.text.trim().is_empty() {
            return;
        }
        let kind = self.placeholder.as_ref().map(|ph| ph.kind.as_str());
        if self.placeholder.as_ref().is_some_and(Placeholder::is_title) {
            if !self.title.is_empty() {
                self.title.push(' ');
            }
            self.title.push_str(&p.text);
            return;
        }
        // Body and content placeholders of a slide show bullets unless a paragraph turns
        // them off; text boxes, subtitles and notes show them only when a paragraph asks.
        let bulleted_by_default = self.kind == Kind::Slide && matches!(kind, Some("body" | "obj"));
        let marker = p
            .bullet
            .unwrap_or(bulleted_by_default.then_some(Marker::Bullet));
        self.blocks.push(match marker {
            Some(marker) => Block::Item {
                depth: p.level.min(8),
                marker,
                text: p.text,
            },
            None => Block::Paragraph(p.text),
        });
    }

    fn finish(self) -> Option<ParsedShape> {
        if let Some(ph) = &self.placeholder
            && SKIPPED_PLACEHOLDERS.contains(&ph.kind.as_str())
        {
            return None;
        }
        Some(ParsedShape {
            placeholder: self.placeholder,
            shape: Shape {
                position: self.position,
                blocks: self.blocks,
            },
            title: self.title,
        })
    }
}
