//! PDF text layers → Markdown with one `# Page N` heading per page.
//!
//! Parsing is `lopdf`'s (objects, streams, encryption with an empty user password, font
//! encodings and ToUnicode maps), with every stream's decompressed size bounded. The text of a
//! page is read from its content stream here, not with `lopdf`'s `extract_text`, to keep words
//! apart: a move to a new line (`Td`, `TD`, `Tm`, `T*`, `'`, `"`) becomes a line break, a move
//! along the same line a space, and a wide gap inside a `TJ` array a space. Whether text is on
//! the same line is told by its baseline on the page (through `cm` and the matrices of form
//! XObjects), so cells and lines drawn in text objects of their own join up. Text drawn by form
//! XObjects (`Do`) is read too.
//!
//! Tables drawn as text are found from where the pieces of each line start (see [`layout`])
//! and written as pipe tables, the first row as the header; the rest of a page is its lines.
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

mod layout;

use super::ocr::{self, ScanPage};
use super::{MarkdownWriter, Read};
use crate::{LoadError, LoadLimits, SourceFormat};
use kb_core::Place;
use layout::{Block, Origin, PageText};
use lopdf::content::Content;
use lopdf::{Dictionary, Document, Encoding, Object, ObjectId};
use std::collections::{BTreeMap, HashSet};

/// How deep form XObjects may nest inside each other before the rest is ignored.
const MAX_FORM_DEPTH: usize = 8;
/// How many graphics states (`q`) are kept for `Q` to restore; deeper saves are counted.
const MAX_SAVED_STATES: usize = 64;
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
        total += text.text.len();
        if total > limit {
            return Err(LoadError::ExpandsTooMuch {
                format: SourceFormat::Pdf,
                limit: limits.max_expanded_bytes,
            });
        }
        if !text.text.trim().is_empty() {
            texts.insert(number, text.blocks());
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
        texts.insert(
            number,
            text.split("\n\n")
                .map(|p| Block::Text(p.to_owned()))
                .collect(),
        );
    }

    let mut out = MarkdownWriter::default();
    for (number, blocks) in &texts {
        out.mark(Place::Page(*number));
        out.heading(1, &format!("Page {number}"));
        for block in blocks {
            match block {
                Block::Text(text) => out.paragraph(text),
                Block::Table(rows) => out.table(rows),
            }
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
    fn page_text(&mut self, page_id: ObjectId) -> lopdf::Result<PageText> {
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
        let mut text = PageText::default();
        let mut seen = HashSet::new();
        let scope = Scope {
            fonts: &fonts,
            resources: &resources,
            ctm: Matrix::IDENTITY,
            depth: 0,
        };
        self.read_content(&content, &scope, &mut seen, &mut text)?;
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
        scope: &Scope<'_, 'a>,
        seen: &mut HashSet<ObjectId>,
        out: &mut PageText,
    ) -> lopdf::Result<()> {
        let content = Content::decode(content)?;
        let mut state = TextState {
            ctm: scope.ctm,
            ..TextState::default()
        };
        // Graphics states saved by `q`; saves past the bound are counted, not kept.
        let mut saved: Vec<Matrix> = Vec::new();
        let mut unsaved = 0usize;
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
                "q" if saved.len() < MAX_SAVED_STATES => saved.push(state.ctm),
                "q" => unsaved += 1,
                "Q" if unsaved > 0 => unsaved -= 1,
                "Q" => {
                    if let Some(ctm) = saved.pop() {
                        state.ctm = ctm;
                    }
                }
                "cm" => {
                    if let Some(m) = Matrix::from_operands(operands) {
                        state.ctm = m.then(&state.ctm);
                    }
                }
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
                    let tx = operands.first().and_then(number).unwrap_or(0.0);
                    let ty = operands.get(1).and_then(number).unwrap_or(0.0);
                    if op.operator == "TD" {
                        state.leading = -ty;
                    }
                    state.line_matrix = Matrix::translate(tx, ty).then(&state.line_matrix);
                    state.moved = true;
                }
                "Tm" => {
                    state.line_matrix = Matrix::from_operands(operands).unwrap_or(Matrix::IDENTITY);
                    state.moved = true;
                    // Placed anew: whether it starts a new line is told by where it is.
                    state.new_line = false;
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
                    let encoding = state.font.as_ref().and_then(|f| scope.fonts.get(f));
                    if let Some(encoding) = encoding {
                        state.position(out);
                        show(encoding, shown, &mut out.text);
                    }
                }
                "Do" if scope.depth < MAX_FORM_DEPTH => {
                    if let Some(name) = operands.first().and_then(|o| o.as_name().ok()) {
                        self.read_form(name, scope, state.ctm, seen, out)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Reads the text of the form XObject `name`, if that is what it names, drawn where the
    /// matrix `ctm` puts it.
    fn read_form(
        &mut self,
        name: &[u8],
        outer: &Scope<'_, 'a>,
        ctm: Matrix,
        seen: &mut HashSet<ObjectId>,
        out: &mut PageText,
    ) -> lopdf::Result<()> {
        let doc = self.doc;
        let Some(reference) = outer.resources.iter().find_map(|r| {
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
        let form_matrix = stream
            .dict
            .get(b"Matrix")
            .and_then(Object::as_array)
            .ok()
            .and_then(|m| Matrix::from_operands(m))
            .unwrap_or(Matrix::IDENTITY);
        let ctm = form_matrix.then(&ctm);
        let own = stream
            .dict
            .get_deref(b"Resources", doc)
            .and_then(Object::as_dict)
            .ok();
        match own {
            Some(own) => {
                let fonts = self.encodings(dictionary_fonts(doc, own))?;
                let resources = [own];
                let form = Scope {
                    fonts: &fonts,
                    resources: &resources,
                    ctm,
                    depth: outer.depth + 1,
                };
                self.read_content(&content, &form, seen, out)
            }
            None => {
                let form = Scope {
                    ctm,
                    depth: outer.depth + 1,
                    ..*outer
                };
                self.read_content(&content, &form, seen, out)
            }
        }
    }
}

/// What a content stream is read with: the fonts and resources it may name, the matrix that
/// places it on the page, and how deep in forms it is.
#[derive(Clone, Copy)]
struct Scope<'s, 'a> {
    fonts: &'s Fonts<'a>,
    resources: &'s [&'a Dictionary],
    ctm: Matrix,
    depth: usize,
}

/// An affine matrix `[a b c d e f]` as PDF writes them (a row vector times the matrix).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Matrix([f32; 6]);

impl Matrix {
    const IDENTITY: Self = Self([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);

    fn translate(x: f32, y: f32) -> Self {
        Self([1.0, 0.0, 0.0, 1.0, x, y])
    }

    /// The matrix of six numbers (`cm`, `Tm` operands, a form's `/Matrix`).
    fn from_operands(operands: &[Object]) -> Option<Self> {
        let numbers: Vec<f32> = operands.iter().map(number).collect::<Option<_>>()?;
        <[f32; 6]>::try_from(numbers).ok().map(Self)
    }

    /// `self` followed by `next`: the matrix `self × next`.
    fn then(&self, next: &Self) -> Self {
        let [a, b, c, d, e, f] = self.0;
        let [a2, b2, c2, d2, e2, f2] = next.0;
        Self([
            a * a2 + b * c2,
            a * b2 + b * d2,
            c * a2 + d * c2,
            c * b2 + d * d2,
            e * a2 + f * c2 + e2,
            e * b2 + f * d2 + f2,
        ])
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
    /// The cursor moved since the last text was shown.
    moved: bool,
    /// `T*` or a quote operator asked for a new line.
    new_line: bool,
    /// The text line matrix (`Tlm`): where the current line starts, in text space.
    line_matrix: Matrix,
    /// The current transformation matrix, from user space to the page.
    ctm: Matrix,
}

impl Default for TextState {
    fn default() -> Self {
        Self {
            font: None,
            font_size: 12.0,
            leading: 0.0,
            moved: false,
            new_line: false,
            line_matrix: Matrix::IDENTITY,
            ctm: Matrix::IDENTITY,
        }
    }
}

impl TextState {
    fn begin_text(&mut self) {
        self.line_matrix = Matrix::IDENTITY;
        self.moved = true;
        // The text is placed anew: whether it starts a new line is told by where it is.
        self.new_line = false;
    }

    fn next_line(&mut self) {
        self.line_matrix = Matrix::translate(0.0, -self.leading).then(&self.line_matrix);
        self.new_line = true;
    }

    /// Where the current line starts on the page, and the font size there.
    fn origin(&self) -> Origin {
        let [a, b, c, d, e, f] = self.line_matrix.then(&self.ctm).0;
        Origin {
            x: e,
            y: f,
            em: self.font_size.abs() * (a * d - b * c).abs().sqrt(),
        }
    }

    /// Writes the separator the cursor movement since the last shown text calls for, and
    /// starts a piece of the line where the cursor moved to.
    fn position(&mut self, page: &mut PageText) {
        let origin = self.origin();
        let height = origin.em.max(1.0);
        let same_line = page
            .shown
            .is_some_and(|shown| (shown.y - origin.y).abs() < height * 0.5);
        let out = &mut page.text;
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
        if self.moved || out.is_empty() || out.ends_with('\n') {
            page.begin_piece(origin);
        }
        page.shown = Some(origin);
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
        pdf_with_form(
            operations,
            Content { operations: vec![] },
            [1, 0, 0, 1, 0, 0],
        )
    }

    /// A one-page PDF whose content stream may draw the form XObject `Fm1`, of content `form`
    /// and matrix `matrix`.
    fn pdf_with_form(operations: Vec<Operation>, form: Content, matrix: [i64; 6]) -> Vec<u8> {
        let mut doc = Document::with_version("1.5");
        let pages_id = doc.new_object_id();
        let font_id = doc.add_object(dictionary! {
            "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
            "Encoding" => "WinAnsiEncoding",
        });
        let form_id = doc.add_object(Stream::new(
            dictionary! {
                "Type" => "XObject", "Subtype" => "Form",
                "BBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
                "Matrix" => matrix.iter().map(|&n| n.into()).collect::<Vec<Object>>(),
            },
            form.encode().unwrap(),
        ));
        let resources_id = doc.add_object(dictionary! {
            "Font" => dictionary! { "F1" => font_id },
            "XObject" => dictionary! { "Fm1" => form_id },
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

    /// `Tm` placing the text at `(x, y)`, unscaled.
    fn move_to(x: i64, y: i64) -> Operation {
        op(
            "Tm",
            vec![1.into(), 0.into(), 0.into(), 1.into(), x.into(), y.into()],
        )
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

    fn table_fixture(name: &str) -> Read {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/pdf-tables")
            .join(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        to_markdown(&bytes, &LoadLimits::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// The Markdown of page `n` (after its heading, up to the next page's).
    fn page(markdown: &str, n: u32) -> &str {
        let start = markdown
            .find(&format!("# Page {n}\n\n"))
            .expect("page heading")
            + 10;
        let end = markdown[start..]
            .find("\n\n# Page ")
            .map_or(markdown.len(), |e| start + e);
        &markdown[start..end]
    }

    #[test]
    fn a_table_among_paragraphs_becomes_a_pipe_table_with_its_header() {
        let pdf = table_fixture("policy-table.pdf");

        assert_eq!(
            page(&pdf.markdown, 1),
            "Travel allowances\n\
             Hotel and meal allowances depend on the traveller's grade.\n\n\
             | Grade | Hotel cap | Per diem |\n\
             | --- | --- | --- |\n\
             | Staff | 150 EUR | 40 EUR |\n\
             | Manager | 200 EUR | 55 EUR |\n\
             | Director | 260 EUR | 70 EUR |\n\n\
             Costs above the cap need a director's approval before the trip.\n\
             • Book through the travel desk\n\
             • Keep every receipt\n\
             • Claim within 30 days\n\
             1 Photograph the receipt\n\
             2 Submit it within 30 days\n\
             3 Wait for approval"
        );
        let table = pdf.markdown.find("| Grade |").unwrap();
        assert_eq!(
            kb_core::locate(&pdf.marks, table, table + 10)
                .unwrap()
                .to_string(),
            "p. 1"
        );
    }

    #[test]
    fn a_long_table_is_one_pipe_table_whose_rows_follow_its_header() {
        let pdf = table_fixture("policy-table.pdf");
        let page = page(&pdf.markdown, 2);

        let (heading, table) = page.split_once("\n\n").unwrap();
        let lines: Vec<&str> = table.lines().collect();

        // What kb-ingest's splitter takes for a pipe table (a header row, a delimiter row, then
        // body rows up to a blank line), so that a chunk starting among the rows repeats the
        // header.
        assert_eq!(heading, "City rates");
        assert_eq!(lines.len(), 32, "{table}");
        assert_eq!(lines[0], "| City | Hotel cap | Meal rate |");
        assert_eq!(lines[1], "| --- | --- | --- |");
        assert_eq!(lines[2], "| Amsterdam | 210 EUR | 45 EUR |");
        assert_eq!(lines[31], "| Zurich | 270 CHF | 75 CHF |");
        assert!(
            lines[2..]
                .iter()
                .all(|l| l.starts_with("| ") && l.ends_with(" |") && l.matches(" | ").count() == 2),
            "{table}"
        );
    }

    #[test]
    fn prose_in_columns_lists_and_forms_stay_text() {
        let pdf = table_fixture("layouts-not-tables.pdf");

        assert!(!pdf.markdown.contains('|'), "{}", pdf.markdown);
        assert!(
            page(&pdf.markdown, 1).starts_with(
                "Employees who travel for work book their trains and Contractors who travel for \
                 work book their trains\nflights through"
            ),
            "{}",
            pdf.markdown
        );
        assert_eq!(
            page(&pdf.markdown, 3),
            "• Book through the travel desk\n• Keep every receipt\n• Claim within 30 days\n\
             Name: Dana Ortiz\nGrade: Manager\nOffice: Berlin"
        );
    }

    #[test]
    fn a_cell_drawn_in_a_form_xobject_is_placed_by_the_form_matrix() {
        // Row 3's second cell is drawn by a form moved 200 pt right and 600 pt up: on the page
        // it lines up with the column above it.
        let mut operations = vec![op("BT", vec![]), op("Tf", vec!["F1".into(), 10.into()])];
        for (y, cells) in [(640, ["Grade", "Hotel cap"]), (624, ["Staff", "150 EUR"])] {
            operations.push(move_to(72, y));
            operations.push(op("Tj", vec![text(cells[0])]));
            operations.push(move_to(200, y));
            operations.push(op("Tj", vec![text(cells[1])]));
        }
        operations.extend([
            move_to(72, 608),
            op("Tj", vec![text("Manager")]),
            op("ET", vec![]),
            op("q", vec![]),
            op(
                "cm",
                vec![1.into(), 0.into(), 0.into(), 1.into(), 100.into(), 0.into()],
            ),
            op("Do", vec!["Fm1".into()]),
            op("Q", vec![]),
        ]);
        let form = Content {
            operations: vec![
                op("BT", vec![]),
                op("Tf", vec!["F1".into(), 10.into()]),
                op("Td", vec![0.into(), 8.into()]),
                op("Tj", vec![text("200 EUR")]),
                op("ET", vec![]),
            ],
        };
        let bytes = pdf_with_form(operations, form, [1, 0, 0, 1, 100, 600]);

        let pdf = to_markdown(&bytes, &LoadLimits::default()).unwrap();

        assert_eq!(
            pdf.markdown,
            "# Page 1\n\n| Grade | Hotel cap |\n| --- | --- |\n| Staff | 150 EUR |\n| Manager | 200 EUR |"
        );
    }

    #[test]
    fn a_page_of_a_hundred_thousand_text_runs_is_read_in_bounded_time() {
        // 50,000 rows of two aligned cells, then 1,000 lines of 50 pieces each.
        let mut operations = vec![op("BT", vec![]), op("Tf", vec!["F1".into(), 1.into()])];
        for i in 0..50_000i64 {
            let y = 800_000 - 2 * i;
            for (x, cell) in [(10, "key"), (100, "value")] {
                operations.push(move_to(x, y));
                operations.push(op("Tj", vec![text(cell)]));
            }
        }
        for i in 0..1_000i64 {
            operations.push(move_to(0, i * 2));
            for _ in 0..50 {
                operations.push(op("Td", vec![5.into(), 0.into()]));
                operations.push(op("Tj", vec![text("w")]));
            }
        }
        operations.push(op("ET", vec![]));
        let bytes = pdf_with_content(operations);
        let started = std::time::Instant::now();

        let pdf = to_markdown(&bytes, &LoadLimits::default()).unwrap();

        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
        assert!(
            pdf.markdown
                .starts_with("# Page 1\n\n| key | value |\n| --- | --- |\n| key | value |")
        );
        assert_eq!(pdf.markdown.matches("| key | value |").count(), 50_000);
        let tail = &pdf.markdown[pdf.markdown.len() - 300..];
        assert!(
            pdf.markdown
                .ends_with(&format!("\n{}", ["w"; 50].join(" "))),
            "{tail:?}"
        );
        assert!(!tail.contains('|'), "{tail:?}");
    }
}
