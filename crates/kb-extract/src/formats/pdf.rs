//! PDF text layers → Markdown with one `# Page N` heading per page.
//!
//! Parsing is `lopdf`'s (objects, streams, encryption with an empty user password, font
//! encodings and ToUnicode maps), with every stream's decompressed size bounded. The text of a
//! page is read from its content stream here, not with `lopdf`'s `extract_text`, to keep words
//! apart: a move to a new line (`Td`, `TD`, `Tm`, `T*`, `'`, `"`) becomes a line break, a move
//! along the same line a space, and a wide gap inside a `TJ` array a space. Text drawn by form
//! XObjects (`Do`) is read too.
//!
//! Pages are the top-level headings and nothing else is a heading (text lines that look like
//! Markdown headings are escaped), so every chunk's heading path is `["Page N"]`, N counted
//! from 1 in file order: a citation can say "p. 4". Blank pages are left out.
//!
//! A page that draws something (an image, paths, or text in a font without a Unicode mapping)
//! but gives no text is a scan: it is read by OCR ([`super::ocr`]) and takes its place among
//! the text pages, so a PDF with some text pages keeps those and reads the rest. Pages OCR
//! leaves out are listed in the notes; a PDF that ends up with no text at all fails with the
//! reason (OCR turned off, not installed, nothing legible).

use super::ocr::{self, ScanPage};
use super::{MarkdownWriter, Read};
use crate::{LoadError, LoadLimits, SourceFormat};
use kb_core::Place;
use lopdf::content::Content;
use lopdf::{Dictionary, Document, Encoding, Object, ObjectId};
use std::collections::{BTreeMap, HashSet};

/// How deep form XObjects may nest inside each other before the rest is ignored.
const MAX_FORM_DEPTH: usize = 8;
/// How many `/Parent` links are followed to find a page's inherited `/MediaBox`.
const MAX_PAGE_TREE_DEPTH: usize = 32;
/// The page size assumed when a page gives none: US Letter, in points.
const DEFAULT_MEDIA_BOX: (f64, f64) = (612.0, 792.0);

/// A PDF's text as Markdown (its text layer, and OCR of its scanned pages), with the title
/// from its metadata if it has one, a page mark per page and notes on the pages left out.
pub(crate) fn to_markdown(bytes: &[u8], limits: &LoadLimits) -> Result<Read, LoadError> {
    let head = &bytes[..bytes.len().min(1024)];
    if find(head, b"%PDF-").is_none() {
        return Err(corrupt("no %PDF- header, so not a PDF file"));
    }
    let tail = &bytes[bytes.len().saturating_sub(1024)..];
    if find(tail, b"%%EOF").is_none() {
        return Err(corrupt("no %%EOF marker at the end: the file is truncated"));
    }
    let limit = usize::try_from(limits.max_expanded_bytes).unwrap_or(usize::MAX);
    let options = lopdf::LoadOptions {
        max_decompressed_size: Some(limit),
        ..Default::default()
    };
    let doc = Document::load_mem_with_options(bytes, options).map_err(|e| pdf_error(e, limit))?;
    if doc.is_encrypted() {
        return Err(LoadError::Encrypted {
            format: SourceFormat::Pdf,
        });
    }
    let pages = doc.get_pages();
    if pages.is_empty() {
        return Err(corrupt("it has no pages"));
    }

    let mut reader = PageReader {
        doc: &doc,
        limit,
        text_shown: false,
        painted: false,
    };
    let mut texts = BTreeMap::new();
    let mut scans = Vec::new();
    let mut total = 0usize;
    for (number, page_id) in pages {
        reader.painted = false;
        let text = reader
            .page_text(page_id)
            .map_err(|e| match pdf_error(e, limit) {
                LoadError::Corrupt { format, detail } => LoadError::Corrupt {
                    format,
                    detail: format!("page {number}: {detail}"),
                },
                other => other,
            })?;
        total += text.len();
        if total > limit {
            return Err(LoadError::ExpandsTooMuch {
                format: SourceFormat::Pdf,
                limit: limits.max_expanded_bytes,
            });
        }
        if !text.trim().is_empty() {
            texts.insert(number, vec![text]);
        } else if reader.painted {
            let (width_pt, height_pt) = media_box(&doc, page_id);
            scans.push(ScanPage {
                number,
                width_pt,
                height_pt,
            });
        }
    }
    let scanned = ocr::read_pdf_pages(bytes, &scans, &limits.ocr, !texts.is_empty())?;
    for (number, text) in scanned.pages {
        total += text.len();
        if total > limit {
            return Err(LoadError::ExpandsTooMuch {
                format: SourceFormat::Pdf,
                limit: limits.max_expanded_bytes,
            });
        }
        texts.insert(number, text.split("\n\n").map(str::to_owned).collect());
    }

    let mut out = MarkdownWriter::default();
    for (number, paragraphs) in &texts {
        out.mark(Place::Page(*number));
        out.heading(1, &format!("Page {number}"));
        for paragraph in paragraphs {
            out.paragraph(paragraph);
        }
    }
    let (markdown, marks) = out.finish_marked();
    if markdown.is_empty() {
        return Err(if scans.is_empty() {
            LoadError::NoTextLayer
        } else if !limits.ocr.enabled && reader.text_shown {
            corrupt(
                "its text cannot be decoded (fonts without a Unicode mapping); set ingest.ocr.enabled = true to read it by OCR",
            )
        } else if !limits.ocr.enabled {
            LoadError::OcrDisabled {
                format: SourceFormat::Pdf,
            }
        } else {
            LoadError::OcrNoText {
                reasons: ocr::nothing_read(&scanned.notes),
            }
        });
    }
    Ok(Read {
        title: info_title(&doc),
        markdown,
        marks,
        notes: scanned.notes,
        ..Read::default()
    })
}

/// A page's `/MediaBox` width and height in points (times its `/UserUnit`), inherited from
/// the page tree if the page has none.
fn media_box(doc: &Document, page_id: ObjectId) -> (f64, f64) {
    let mut node = doc.get_dictionary(page_id).ok();
    for _ in 0..MAX_PAGE_TREE_DEPTH {
        let Some(dict) = node else { break };
        let corners: Option<Vec<f64>> = dict
            .get_deref(b"MediaBox", doc)
            .and_then(Object::as_array)
            .ok()
            .map(|a| a.iter().filter_map(number).map(f64::from).collect());
        if let Some([x0, y0, x1, y1]) = corners.as_deref() {
            let unit = dict
                .get(b"UserUnit")
                .ok()
                .and_then(number)
                .map_or(1.0, f64::from);
            return ((x1 - x0).abs() * unit, (y1 - y0).abs() * unit);
        }
        node = dict
            .get_deref(b"Parent", doc)
            .and_then(Object::as_dict)
            .ok();
    }
    DEFAULT_MEDIA_BOX
}

fn corrupt(detail: impl Into<String>) -> LoadError {
    LoadError::Corrupt {
        format: SourceFormat::Pdf,
        detail: detail.into(),
    }
}

fn pdf_error(error: lopdf::Error, limit: usize) -> LoadError {
    match error {
        lopdf::Error::InvalidPassword | lopdf::Error::Decryption(_) => LoadError::Encrypted {
            format: SourceFormat::Pdf,
        },
        lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { .. }) => {
            LoadError::ExpandsTooMuch {
                format: SourceFormat::Pdf,
                limit: limit as u64,
            }
        }
        other => corrupt(other.to_string()),
    }
}

/// The `/Title` of the document information dictionary.
fn info_title(doc: &Document) -> Option<String> {
    let info = doc.trailer.get_deref(b"Info", doc).ok()?.as_dict().ok()?;
    let title = lopdf::decode_text_string(info.get_deref(b"Title", doc).ok()?).ok()?;
    let title = super::collapse_whitespace(&title.replace(|c: char| c.is_control(), " "));
    (!title.is_empty()).then_some(title)
}

/// Font name → encoding, for the fonts a content stream may select with `Tf`.
type Fonts<'a> = BTreeMap<Vec<u8>, Encoding<'a>>;

struct PageReader<'a> {
    doc: &'a Document,
    limit: usize,
    /// Whether any text-showing operator was seen, decodable or not.
    text_shown: bool,
    /// Whether the page being read draws anything (text, an image, a path, a shading).
    painted: bool,
}

impl<'a> PageReader<'a> {
    fn page_text(&mut self, page_id: ObjectId) -> lopdf::Result<String> {
        let fonts = self.encodings(self.doc.get_page_fonts(page_id)?)?;
        let content = self.doc.get_page_content_with_limit(page_id, self.limit)?;
        let (direct, ids) = self.doc.get_page_resources(page_id)?;
        let resources: Vec<&Dictionary> = direct
            .into_iter()
            .chain(
                ids.iter()
                    .filter_map(|id| self.doc.get_dictionary(*id).ok()),
            )
            .collect();
        let mut text = String::new();
        let mut seen = HashSet::new();
        self.read_content(&content, &fonts, &resources, 0, &mut seen, &mut text)?;
        Ok(text)
    }

    fn encodings(&self, fonts: BTreeMap<Vec<u8>, &'a Dictionary>) -> lopdf::Result<Fonts<'a>> {
        let mut out = BTreeMap::new();
        for (name, font) in fonts {
            match font.get_font_encoding_with_limit(self.doc, self.limit) {
                Ok(encoding) => {
                    out.insert(name, encoding);
                }
                Err(e @ lopdf::Error::Decompress(_)) => return Err(e),
                // A font kb cannot decode contributes no text; the others still do.
                Err(_) => {}
            }
        }
        Ok(out)
    }

    /// Appends the text a content stream shows to `out`.
    fn read_content(
        &mut self,
        content: &[u8],
        fonts: &Fonts<'a>,
        resources: &[&'a Dictionary],
        depth: usize,
        seen: &mut HashSet<ObjectId>,
        out: &mut String,
    ) -> lopdf::Result<()> {
        let content = Content::decode(content)?;
        let mut state = TextState::default();
        for op in &content.operations {
            let operands = &op.operands;
            if matches!(
                op.operator.as_str(),
                "Do" | "BI"
                    | "sh"
                    | "f"
                    | "F"
                    | "f*"
                    | "B"
                    | "B*"
                    | "b"
                    | "b*"
                    | "S"
                    | "s"
                    | "Tj"
                    | "TJ"
                    | "'"
                    | "\""
            ) {
                self.painted = true;
            }
            match op.operator.as_str() {
                "BT" => state.begin_text(),
                "Tf" => {
                    state.font = operands
                        .first()
                        .and_then(|o| o.as_name().ok())
                        .map(<[u8]>::to_vec);
                    state.font_size = operands.get(1).and_then(number).unwrap_or(state.font_size);
                }
                "TL" => state.leading = operands.first().and_then(number).unwrap_or(0.0),
                "Td" | "TD" => {
                    let ty = operands.get(1).and_then(number).unwrap_or(0.0);
                    if op.operator == "TD" {
                        state.leading = -ty;
                    }
                    state.line_y += ty * state.scale;
                    state.moved = true;
                }
                "Tm" => {
                    state.scale = operands.get(3).and_then(number).unwrap_or(1.0);
                    state.line_y = operands.get(5).and_then(number).unwrap_or(0.0);
                    state.moved = true;
                }
                "T*" => state.next_line(),
                "Tj" | "TJ" | "'" | "\"" => {
                    if op.operator != "Tj" && op.operator != "TJ" {
                        state.next_line();
                    }
                    let shown = if op.operator == "\"" {
                        operands.get(2).map(std::slice::from_ref).unwrap_or(&[])
                    } else {
                        operands.as_slice()
                    };
                    self.text_shown = true;
                    let encoding = state.font.as_ref().and_then(|f| fonts.get(f));
                    if let Some(encoding) = encoding {
                        state.position(out);
                        show(encoding, shown, out);
                    }
                }
                "Do" if depth < MAX_FORM_DEPTH => {
                    if let Some(name) = operands.first().and_then(|o| o.as_name().ok()) {
                        self.read_form(name, fonts, resources, depth, seen, out)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Reads the text of the form XObject `name`, if that is what it names.
    fn read_form(
        &mut self,
        name: &[u8],
        fonts: &Fonts<'a>,
        resources: &[&'a Dictionary],
        depth: usize,
        seen: &mut HashSet<ObjectId>,
        out: &mut String,
    ) -> lopdf::Result<()> {
        let doc = self.doc;
        let Some(reference) = resources.iter().find_map(|r| {
            r.get_deref(b"XObject", doc)
                .and_then(Object::as_dict)
                .and_then(|x| x.get(name))
                .and_then(Object::as_reference)
                .ok()
        }) else {
            return Ok(());
        };
        if !seen.insert(reference) {
            return Ok(());
        }
        let Ok(stream) = doc.get_object(reference).and_then(Object::as_stream) else {
            return Ok(());
        };
        if stream.dict.get(b"Subtype").and_then(Object::as_name).ok() != Some(b"Form") {
            return Ok(());
        }
        let content = stream.get_plain_content_with_limit(self.limit)?;
        let own = stream
            .dict
            .get_deref(b"Resources", doc)
            .and_then(Object::as_dict)
            .ok();
        match own {
            Some(own) => {
                let form_fonts = self.encodings(dictionary_fonts(doc, own))?;
                let form_resources = [own];
                self.read_content(&content, &form_fonts, &form_resources, depth + 1, seen, out)
            }
            None => self.read_content(&content, fonts, resources, depth + 1, seen, out),
        }
    }
}

/// The fonts a `/Resources` dictionary names.
fn dictionary_fonts<'a>(
    doc: &'a Document,
    resources: &'a Dictionary,
) -> BTreeMap<Vec<u8>, &'a Dictionary> {
    let mut fonts = BTreeMap::new();
    if let Ok(dict) = resources.get_deref(b"Font", doc).and_then(Object::as_dict) {
        for (name, font) in dict.iter() {
            if let Ok((_, Object::Dictionary(font))) = doc.dereference(font) {
                fonts.insert(name.clone(), font);
            }
        }
    }
    fonts
}

/// Where the text cursor is, as far as line breaks and word gaps go.
#[derive(Debug)]
struct TextState {
    font: Option<Vec<u8>>,
    font_size: f32,
    leading: f32,
    /// Vertical scale of the text matrix (its `d`), to turn `Td` offsets into page units.
    scale: f32,
    /// Baseline of the current line in the text object's coordinates.
    line_y: f32,
    /// Baseline of the last text shown, in this content stream.
    shown_y: Option<f32>,
    /// The cursor moved since the last text was shown.
    moved: bool,
    /// `T*` or a quote operator asked for a new line.
    new_line: bool,
}

impl Default for TextState {
    fn default() -> Self {
        Self {
            font: None,
            font_size: 12.0,
            leading: 0.0,
            scale: 1.0,
            line_y: 0.0,
            shown_y: None,
            moved: false,
            new_line: false,
        }
    }
}

impl TextState {
    fn begin_text(&mut self) {
        self.scale = 1.0;
        self.line_y = 0.0;
        self.moved = true;
    }

    fn next_line(&mut self) {
        self.line_y -= self.leading * self.scale;
        self.new_line = true;
    }

    /// Writes the separator the cursor movement since the last shown text calls for.
    fn position(&mut self, out: &mut String) {
        let height = (self.font_size * self.scale).abs().max(1.0);
        let same_line = self
            .shown_y
            .is_some_and(|y| (y - self.line_y).abs() < height * 0.5);
        if !out.is_empty() {
            if self.new_line || !same_line {
                if !out.ends_with('\n') {
                    out.truncate(out.trim_end_matches(' ').len());
                    out.push('\n');
                }
            } else if self.moved && !out.ends_with(char::is_whitespace) {
                out.push(' ');
            }
        }
        self.shown_y = Some(self.line_y);
        self.moved = false;
        self.new_line = false;
    }
}

/// Appends the strings of a `Tj`/`TJ` operand list; a `TJ` adjustment wider than about a fifth
/// of an em is a word gap.
fn show(encoding: &Encoding<'_>, operands: &[Object], out: &mut String) {
    for operand in operands {
        match operand {
            Object::String(bytes, _) => {
                if let Ok(text) = Document::decode_text(encoding, bytes) {
                    super::push_clean(out, &text.replace('\n', " "));
                }
            }
            Object::Array(items) => {
                for item in items {
                    match item {
                        Object::String(..) => show(encoding, std::slice::from_ref(item), out),
                        other => {
                            if number(other).is_some_and(|n| n < -200.0)
                                && !out.ends_with(char::is_whitespace)
                            {
                                out.push(' ');
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

fn number(object: &Object) -> Option<f32> {
    object.as_float().ok().filter(|n| n.is_finite())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lopdf::content::Operation;
    use lopdf::{Stream, dictionary};

    /// A one-page PDF with a Helvetica font and the given content stream.
    fn pdf_with_content(operations: Vec<Operation>) -> Vec<u8> {
        let mut doc = Document::with_version("1.5");
        let pages_id = doc.new_object_id();
        let font_id = doc.add_object(dictionary! {
            "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
            "Encoding" => "WinAnsiEncoding",
        });
        let resources_id = doc.add_object(dictionary! {
            "Font" => dictionary! { "F1" => font_id },
        });
        let content = Content { operations }.encode().unwrap();
        let content_id = doc.add_object(Stream::new(dictionary! {}, content));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
        });
        doc.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! {
                "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1,
                "Resources" => resources_id, "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
            }),
        );
        let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
        doc.trailer.set("Root", catalog_id);
        let mut bytes = Vec::new();
        doc.save_to(&mut bytes).unwrap();
        bytes
    }

    fn op(operator: &str, operands: Vec<Object>) -> Operation {
        Operation::new(operator, operands)
    }

    fn text(s: &str) -> Object {
        Object::string_literal(s)
    }

    #[test]
    fn line_moves_become_line_breaks_and_same_line_moves_spaces() {
        let bytes = pdf_with_content(vec![
            op("BT", vec![]),
            op("Tf", vec!["F1".into(), 12.into()]),
            op("Td", vec![72.into(), 700.into()]),
            op("Tj", vec![text("first")]),
            op("Td", vec![40.into(), 0.into()]),
            op("Tj", vec![text("line")]),
            op("Td", vec![(-40).into(), (-14).into()]),
            op(
                "TJ",
                vec![Object::Array(vec![
                    text("second"),
                    (-300).into(),
                    text("line"),
                    (-20).into(),
                    text("!"),
                ])],
            ),
            op("ET", vec![]),
        ]);

        let pdf = to_markdown(&bytes, &LoadLimits::default()).unwrap();

        assert_eq!(pdf.markdown, "# Page 1\n\nfirst line\nsecond line!");
    }

    #[test]
    fn a_page_without_text_operators_means_no_text_layer() {
        let bytes = pdf_with_content(vec![op("q", vec![]), op("Q", vec![])]);

        assert!(matches!(
            to_markdown(&bytes, &LoadLimits::default()),
            Err(LoadError::NoTextLayer)
        ));
    }

    #[test]
    fn bytes_that_are_not_a_pdf_are_corrupt() {
        assert!(matches!(
            to_markdown(b"<html>not a pdf</html>", &LoadLimits::default()),
            Err(LoadError::Corrupt { .. })
        ));
    }
}
