//! Paragraph styles (headings, list numbering, `basedOn` chains) and numbering definitions
//! (bullets or counted), from `styles.xml` and `numbering.xml`.

use super::{attr, xml_error};
use crate::LoadError;
use quick_xml::Reader;
use quick_xml::events::Event;
use std::collections::HashMap;

/// What a paragraph style says about headings and lists.
#[derive(Debug, Default, Clone)]
struct Style {
    name: String,
    based_on: Option<String>,
    outline_level: Option<u8>,
    num_id: Option<String>,
    num_level: Option<u32>,
}

#[derive(Debug, Default)]
pub(super) struct Styles(HashMap<String, Style>);

impl Styles {
    pub(super) fn parse(xml: &str) -> Result<Self, LoadError> {
        let mut reader = Reader::from_str(xml);
        let mut styles = HashMap::new();
        let mut current: Option<(String, Style)> = None;
        let mut skip = 0usize;
        loop {
            let event = reader
                .read_event()
                .map_err(|e| xml_error("styles.xml", e))?;
            let (e, empty) = match &event {
                Event::Start(e) => (e, false),
                Event::Empty(e) => (e, true),
                Event::End(e) => {
                    let name = e.local_name();
                    if skip > 0 {
                        skip -= 1;
                    } else if name.as_ref() == "style"
                        && let Some((id, style)) = current.take()
                    {
                        styles.insert(id, style);
                    }
                    continue;
                }
                Event::Eof => break,
                _ => continue,
            };
            if skip > 0 {
                skip += usize::from(!empty);
                continue;
            }
            let Some((_, style)) = current.as_mut() else {
                if e.local_name().as_ref() == "style"
                    && let Some(id) = attr(e, "styleId")
                {
                    current = Some((id, Style::default()));
                }
                continue;
            };
            match e.local_name().as_ref() {
                // Formatting changes keep the old properties: not what the style says now.
                "pPrChange" | "rPr" | "tblPr" | "trPr" | "tcPr" if !empty => skip = 1,
                "name" => style.name = attr(e, "val").unwrap_or_default(),
                "basedOn" => style.based_on = attr(e, "val"),
                "outlineLvl" => style.outline_level = attr(e, "val").and_then(|v| v.parse().ok()),
                "numId" => style.num_id = attr(e, "val"),
                "ilvl" => style.num_level = attr(e, "val").and_then(|v| v.parse().ok()),
                _ => {}
            }
        }
        Ok(Self(styles))
    }

    /// The style `id` and its `basedOn` ancestors, nearest first (at most 16: cycles are cut).
    fn chain<'a>(&'a self, id: &str) -> impl Iterator<Item = &'a Style> + 'a {
        let mut next = self.0.get(id);
        std::iter::from_fn(move || {
            let style = next?;
            next = style.based_on.as_ref().and_then(|b| self.0.get(b));
            Some(style)
        })
        .take(16)
    }

    /// The heading level (1–6) a paragraph style gives, if it is a heading style. A style id
    /// the styles part does not define is read as a built-in id ("Heading1", "Title").
    pub(super) fn heading_level(&self, id: &str) -> Option<usize> {
        if !self.0.contains_key(id) {
            return heading_from_name(id);
        }
        self.chain(id).find_map(|style| {
            heading_from_name(&style.name).or(style
                .outline_level
                .filter(|l| *l < 6)
                .map(|l| usize::from(l) + 1))
        })
    }

    /// The numbering (id, level) a paragraph style gives its paragraphs.
    pub(super) fn numbering(&self, id: &str) -> Option<(String, u32)> {
        self.chain(id).find_map(|style| {
            let num_id = style.num_id.clone()?;
            Some((num_id, style.num_level.unwrap_or(0)))
        })
    }
}

/// "heading 2" / "Heading2" → 2; "Title" → 1.
fn heading_from_name(name: &str) -> Option<usize> {
    let lower = name.to_ascii_lowercase().replace(' ', "");
    if lower == "title" {
        return Some(1);
    }
    let level: usize = lower.strip_prefix("heading")?.parse().ok()?;
    (1..=6).contains(&level).then_some(level)
}

/// Which numbering instances are bullets and which count.
#[derive(Debug, Default)]
pub(super) struct Numbering {
    /// numId → abstractNumId.
    instances: HashMap<String, String>,
    /// (abstractNumId, level) → number format ("bullet", "decimal", …).
    formats: HashMap<(String, u32), String>,
}

impl Numbering {
    pub(super) fn parse(xml: &str) -> Result<Self, LoadError> {
        let mut reader = Reader::from_str(xml);
        let mut numbering = Self::default();
        let mut abstract_id: Option<String> = None;
        let mut level: Option<u32> = None;
        let mut num_id: Option<String> = None;
        loop {
            let event = reader
                .read_event()
                .map_err(|e| xml_error("numbering.xml", e))?;
            match &event {
                Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                    "abstractNum" => abstract_id = attr(e, "abstractNumId"),
                    "lvl" => level = attr(e, "ilvl").and_then(|v| v.parse().ok()),
                    "numFmt" => {
                        if let (Some(a), Some(l), Some(f)) = (&abstract_id, level, attr(e, "val")) {
                            numbering.formats.insert((a.clone(), l), f);
                        }
                    }
                    "num" => num_id = attr(e, "numId"),
                    "abstractNumId" => {
                        if let (Some(n), Some(a)) = (&num_id, attr(e, "val")) {
                            numbering.instances.insert(n.clone(), a);
                        }
                    }
                    _ => {}
                },
                Event::End(e) => match e.local_name().as_ref() {
                    "abstractNum" => abstract_id = None,
                    "lvl" => level = None,
                    "num" => num_id = None,
                    _ => {}
                },
                Event::Eof => break,
                _ => {}
            }
        }
        Ok(numbering)
    }

    pub(super) fn is_bullet(&self, num_id: &str, level: u32) -> bool {
        self.instances
            .get(num_id)
            .and_then(|a| self.formats.get(&(a.clone(), level)))
            .is_none_or(|f| f == "bullet" || f == "none")
    }
}
