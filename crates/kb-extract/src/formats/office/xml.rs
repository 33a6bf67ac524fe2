//! The small XML helpers the PPTX and OpenDocument readers share, and the relationships of
//! OOXML parts. The zip package itself is read by [`crate::formats::package`].

use crate::formats::package::Package;
use crate::{LoadError, SourceFormat};
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

pub(super) fn corrupt(format: SourceFormat, detail: impl Into<String>) -> LoadError {
    LoadError::Corrupt {
        format,
        detail: detail.into(),
    }
}

pub(super) fn xml_error(
    format: SourceFormat,
    part: &str,
    error: impl std::fmt::Display,
) -> LoadError {
    corrupt(format, format!("{part} is not well-formed XML ({error})"))
}

/// A reader for one XML part: empty elements read as a start and an end, so that callers
/// handle one shape of event.
pub(super) fn xml_reader(xml: &str) -> Reader<&[u8]> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().expand_empty_elements = true;
    reader
}

/// The value of the attribute whose local name is `name` and that has no namespace prefix
/// when `prefixed` is false, or has one when it is true (`r:id` beside `id`).
fn find_attr(e: &BytesStart<'_>, name: &str, prefixed: Option<bool>) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| {
            a.key.local_name().as_ref() == name
                && prefixed.is_none_or(|p| a.key.prefix().is_some() == p)
        })
        .and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

/// The value of the attribute with local name `name`, whatever its prefix.
pub(super) fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    find_attr(e, name, None)
}

/// The value of a namespaced attribute (`r:id`), not the plain one of the same local name.
pub(super) fn prefixed_attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    find_attr(e, name, Some(true))
}

pub(super) use crate::formats::push_entity;

/// Appends XML text, line breaks in the markup becoming spaces (in these formats a line
/// break is an element of its own).
pub(super) fn push_text(out: &mut String, text: &str) {
    for c in text.chars() {
        if c.is_control() {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
}

/// The text of the first element with local name `element` (`dc:title` of a core or meta
/// part), whitespace collapsed; `None` when absent or empty.
pub(super) fn element_text(xml: &str, element: &str) -> Option<String> {
    let mut reader = xml_reader(xml);
    let mut inside = false;
    let mut text = String::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) if e.local_name().as_ref() == element => inside = true,
            Ok(Event::End(e)) if inside && e.local_name().as_ref() == element => break,
            Ok(Event::Text(t)) if inside => push_text(&mut text, &t.xml10_content()),
            Ok(Event::CData(t)) if inside => push_text(&mut text, &t),
            Ok(Event::GeneralRef(r)) if inside => push_entity(&mut text, &r),
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    let text = super::super::collapse_whitespace(&text);
    (!text.is_empty()).then_some(text)
}

/// A relationship of an OOXML part.
#[derive(Debug, Clone)]
pub(super) struct Relationship {
    pub(super) id: String,
    /// The relationship type URI; compare its last segment ("slide", "notesSlide").
    pub(super) kind: String,
    /// The target part, resolved to a path inside the package.
    pub(super) target: String,
}

/// The relationships of `part` (from `<folder>/_rels/<file>.rels`); external targets are
/// left out. A package without the relationships part has none.
pub(super) fn relationships(
    package: &mut Package<'_>,
    part: &str,
) -> Result<Vec<Relationship>, LoadError> {
    let (folder, file) = part.rsplit_once('/').unwrap_or(("", part));
    let rels_name = if folder.is_empty() {
        format!("_rels/{file}.rels")
    } else {
        format!("{folder}/_rels/{file}.rels")
    };
    let Some(xml) = package.read(&rels_name)? else {
        return Ok(Vec::new());
    };
    let mut reader = xml_reader(&xml);
    let mut out = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) if e.local_name().as_ref() == "Relationship" => {
                if attr(&e, "TargetMode").is_some_and(|m| m.eq_ignore_ascii_case("external")) {
                    continue;
                }
                if let (Some(id), Some(kind), Some(target)) =
                    (attr(&e, "Id"), attr(&e, "Type"), attr(&e, "Target"))
                {
                    out.push(Relationship {
                        id,
                        kind,
                        target: resolve(part, &target),
                    });
                }
            }
            Ok(Event::Eof) => break,
            Err(e) => return Err(xml_error(package.format(), &rels_name, e)),
            _ => {}
        }
    }
    Ok(out)
}

impl Relationship {
    /// Whether the relationship type's last segment is `kind` ("slide", "notesSlide").
    pub(super) fn is(&self, kind: &str) -> bool {
        self.kind.rsplit('/').next() == Some(kind)
    }
}

/// The path inside the package of `target`, relative to the folder of part `from` (or
/// absolute when it starts with `/`). `..` never climbs above the package root.
pub(super) fn resolve(from: &str, target: &str) -> String {
    let joined = match target.strip_prefix('/') {
        Some(absolute) => absolute.to_owned(),
        None => match from.rsplit_once('/') {
            Some((folder, _)) => format!("{folder}/{target}"),
            None => target.to_owned(),
        },
    };
    let mut segments: Vec<&str> = Vec::new();
    for segment in joined.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    segments.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_resolve_against_the_source_folder_and_never_above_the_root() {
        assert_eq!(
            resolve("ppt/presentation.xml", "slides/slide1.xml"),
            "ppt/slides/slide1.xml"
        );
        assert_eq!(
            resolve("ppt/slides/slide1.xml", "../notesSlides/notesSlide1.xml"),
            "ppt/notesSlides/notesSlide1.xml"
        );
        assert_eq!(resolve("ppt/slides/s.xml", "/ppt/x.xml"), "ppt/x.xml");
        assert_eq!(resolve("a/b.xml", "../../../../etc/passwd"), "etc/passwd");
    }
}
