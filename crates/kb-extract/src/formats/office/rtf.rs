//! Rich Text Format: a small reader of RTF's groups, control words and destinations.
//!
//! It keeps the document's text and its structure (paragraphs, headings from outline levels
//! or heading styles, list items, tables), decodes `\'hh` bytes in the code page of the
//! document (`\ansicpg`) or of the font in use (`\fcharset`), and `\uN` Unicode escapes with
//! their `\ucN` fallback characters skipped. Destinations that are not the body text (font,
//! colour and style tables, document information other than the title, pictures, headers and
//! footers, footnotes, comments, field instructions and every `{\*\…}` group) are left out,
//! as is hidden text (`\v`). Work is linear in the file size and group nesting is bounded.

use super::{Block, MarkdownWriter, Marker, Read};
use crate::{LoadError, SourceFormat};
use encoding_rs::Encoding;
use std::collections::HashMap;

/// Deeper group nesting than this is refused: real documents stay far below it.
const MAX_DEPTH: usize = 512;

/// Destinations whose text is not the document's body text.
const SKIPPED_DESTINATIONS: &[&str] = &[
    "colortbl",
    "pict",
    "header",
    "headerl",
    "headerr",
    "headerf",
    "footer",
    "footerl",
    "footerr",
    "footerf",
    "footnote",
    "annotation",
    "atnid",
    "atnauthor",
    "fldinst",
    "objdata",
    "objclass",
    "objname",
    "nonshppict",
    "themedata",
    "colorschememapping",
    "datastore",
    "latentstyles",
    "listtable",
    "listoverridetable",
    "rsidtbl",
    "xmlnstbl",
    "generator",
    "mmathPr",
    "pgdsctbl",
    "revtbl",
    "filetbl",
    "private",
    "bkmkstart",
    "bkmkend",
    "txe",
    "xe",
    "tc",
    "sp",
    "sn",
    "sv",
    "userprops",
    "docvar",
    "template",
    "pn",
];

pub(super) fn read(bytes: &[u8]) -> Result<Read, LoadError> {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let body = bytes[start..]
        .strip_prefix(b"\xef\xbb\xbf")
        .unwrap_or(&bytes[start..]);
    if !body.starts_with(b"{\\rtf") {
        return Err(corrupt(
            "it does not start with {\\rtf, so it is not an RTF file; check the extension",
        ));
    }
    let mut parser = Parser::new();
    parser.run(body)?;
    Ok(parser.finish())
}

fn corrupt(detail: impl Into<String>) -> LoadError {
    LoadError::Corrupt {
        format: SourceFormat::Rtf,
        detail: detail.into(),
    }
}

/// Where the text of a group goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Destination {
    Body,
    FontTable,
    StyleSheet,
    /// `\info`: only its `\title` is read.
    Info,
    Title,
    /// `\listtext` / `\pntext`: the marker a list item shows.
    ListText,
    Skip,
}

/// What each group sets and its end restores.
#[derive(Debug, Clone, Copy)]
struct GroupState {
    destination: Destination,
    /// Fallback characters after a `\uN` (`\ucN`).
    unicode_skip: usize,
    font: Option<i32>,
    hidden: bool,
}

/// Paragraph properties, reset by `\pard`.
#[derive(Debug, Default, Clone)]
struct ParagraphState {
    style: i32,
    outline: Option<i32>,
    list: Option<i32>,
    list_level: usize,
    in_table: bool,
}

/// A style of the style sheet being read.
#[derive(Debug, Default)]
struct StyleEntry {
    number: i32,
    outline: Option<i32>,
    name: String,
}

struct Parser {
    groups: Vec<GroupState>,
    state: GroupState,
    default_encoding: &'static Encoding,
    /// The font of text that names none (`\deffN`).
    default_font: Option<i32>,
    /// Font number → the encoding its charset or code page names.
    fonts: HashMap<i32, &'static Encoding>,
    /// The font being defined in the font table.
    font_definition: Option<i32>,
    /// Style number → heading level.
    headings: HashMap<i32, usize>,
    style: Option<StyleEntry>,
    /// Bytes (text or `\'hh`) not yet decoded, and the encoding they are in.
    pending: Vec<u8>,
    /// Fallback characters still to skip after a `\uN`.
    skip_fallback: usize,
    high_surrogate: Option<u16>,
    title: String,
    paragraph: ParagraphState,
    text: String,
    marker: String,
    cell: String,
    row: Vec<String>,
    table: Vec<Vec<String>>,
    blocks: Vec<Block>,
}

impl Parser {
    fn new() -> Self {
        Self {
            groups: Vec::new(),
            state: GroupState {
                destination: Destination::Body,
                unicode_skip: 1,
                font: None,
                hidden: false,
            },
            default_encoding: encoding_rs::WINDOWS_1252,
            default_font: None,
            fonts: HashMap::new(),
            font_definition: None,
            headings: HashMap::new(),
            style: None,
            pending: Vec::new(),
            skip_fallback: 0,
            high_surrogate: None,
            title: String::new(),
            paragraph: ParagraphState::default(),
            text: String::new(),
            marker: String::new(),
            cell: String::new(),
            row: Vec::new(),
            table: Vec::new(),
            blocks: Vec::new(),
        }
    }

    fn run(&mut self, rtf: &[u8]) -> Result<(), LoadError> {
        let mut i = 0;
        // The document group itself is opened by the first `{`.
        let mut opened = false;
        while i < rtf.len() {
            let b = rtf[i];
            match b {
                b'{' => {
                    self.flush();
                    if opened {
                        if self.groups.len() >= MAX_DEPTH {
                            return Err(corrupt(format!(
                                "groups are nested more than {MAX_DEPTH} deep; save the document again from a word processor"
                            )));
                        }
                        self.groups.push(self.state);
                    }
                    opened = true;
                    self.skip_fallback = 0;
                    i += 1;
                }
                b'}' => {
                    self.flush();
                    self.end_group();
                    self.skip_fallback = 0;
                    i += 1;
                    match self.groups.pop() {
                        Some(state) => self.state = state,
                        // The document group is closed: anything after it is not RTF.
                        None => return Ok(()),
                    }
                }
                b'\\' => i = self.control(rtf, i + 1),
                b'\r' | b'\n' => i += 1,
                b'\t' => {
                    self.flush();
                    self.push_str("\t");
                    i += 1;
                }
                _ => {
                    self.byte(b);
                    i += 1;
                }
            }
        }
        Err(corrupt(
            "the file ends inside an unclosed group, so it is truncated; save it again",
        ))
    }

    /// Reads the control word or symbol after a backslash at `i`; returns where the next
    /// token starts.
    fn control(&mut self, rtf: &[u8], mut i: usize) -> usize {
        let Some(&first) = rtf.get(i) else {
            return i;
        };
        if !first.is_ascii_alphabetic() {
            i += 1;
            match first {
                b'\'' => {
                    let hex = rtf.get(i..i + 2).and_then(|h| std::str::from_utf8(h).ok());
                    if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        self.byte(byte);
                        return i + 2;
                    }
                }
                b'\\' | b'{' | b'}' => self.byte(first),
                b'*' => {
                    self.flush();
                    self.state.destination = Destination::Skip;
                }
                b'~' => self.symbol("\u{a0}"),
                b'_' => self.symbol("-"),
                b'-' => self.symbol(""),
                b'\r' | b'\n' => self.word("par", None),
                _ => {}
            }
            return i;
        }
        let name_start = i;
        while i < rtf.len() && rtf[i].is_ascii_alphabetic() {
            i += 1;
        }
        // Names longer than any RTF control word are cut: they match nothing.
        let name = std::str::from_utf8(&rtf[name_start..i.min(name_start + 32)]).unwrap_or("");
        let negative = rtf.get(i) == Some(&b'-');
        let digits_start = i + usize::from(negative);
        let mut j = digits_start;
        while j < rtf.len() && rtf[j].is_ascii_digit() {
            j += 1;
        }
        let parameter = if j > digits_start {
            i = j;
            let digits = &rtf[digits_start..j.min(digits_start + 10)];
            let value: i64 = std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse().ok())
                .unwrap_or(0);
            let value = if negative { -value } else { value };
            Some(i32::try_from(value).unwrap_or(if negative { i32::MIN } else { i32::MAX }))
        } else {
            None
        };
        if rtf.get(i) == Some(&b' ') {
            i += 1;
        }
        if name == "bin" {
            // Binary data: its bytes are not RTF tokens.
            self.flush();
            let length = usize::try_from(parameter.unwrap_or(0)).unwrap_or(0);
            return i.saturating_add(length).min(rtf.len());
        }
        self.word(name, parameter);
        i
    }

    /// A control symbol that stands for text.
    fn symbol(&mut self, text: &str) {
        self.flush();
        if self.skip_fallback > 0 {
            self.skip_fallback -= 1;
            return;
        }
        self.push_str(text);
    }

    /// A text byte (plain or `\'hh`), decoded later with the bytes around it.
    fn byte(&mut self, byte: u8) {
        if self.skip_fallback > 0 {
            self.skip_fallback -= 1;
            return;
        }
        if self.collects_text() {
            self.pending.push(byte);
        }
    }

    fn collects_text(&self) -> bool {
        !self.state.hidden
            && matches!(
                self.state.destination,
                Destination::Body
                    | Destination::Title
                    | Destination::ListText
                    | Destination::StyleSheet
            )
    }

    fn encoding(&self) -> &'static Encoding {
        self.state
            .font
            .or(self.default_font)
            .and_then(|f| self.fonts.get(&f).copied())
            .unwrap_or(self.default_encoding)
    }

    /// Decodes the pending bytes into the current destination.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let bytes = std::mem::take(&mut self.pending);
        let (text, _, _) = self.encoding().decode(&bytes);
        self.push_str(&text);
    }

    fn push_str(&mut self, text: &str) {
        if !self.collects_text() {
            return;
        }
        if text.is_empty() {
            return;
        }
        let sink = match self.state.destination {
            Destination::Body => &mut self.text,
            Destination::Title => &mut self.title,
            Destination::ListText => &mut self.marker,
            Destination::StyleSheet => match self.style.as_mut() {
                Some(style) => &mut style.name,
                None => return,
            },
            Destination::FontTable | Destination::Info | Destination::Skip => return,
        };
        super::super::push_clean(sink, text);
    }

    fn word(&mut self, name: &str, parameter: Option<i32>) {
        self.flush();
        let destination = self.state.destination;
        // A control word counts as one fallback character of a `\uN`.
        if self.skip_fallback > 0 && name != "u" {
            self.skip_fallback -= 1;
            return;
        }
        match name {
            "ansicpg" => {
                if let Some(encoding) = parameter.and_then(code_page) {
                    self.default_encoding = encoding;
                }
            }
            "mac" => self.default_encoding = encoding_rs::MACINTOSH,
            "deff" => self.default_font = parameter,
            "uc" => {
                self.state.unicode_skip =
                    usize::try_from(parameter.unwrap_or(1)).unwrap_or(1).min(16)
            }
            "u" => self.unicode(parameter.unwrap_or(0)),
            "fonttbl" => self.state.destination = Destination::FontTable,
            "stylesheet" => self.state.destination = Destination::StyleSheet,
            "info" => self.state.destination = Destination::Info,
            "title" if destination == Destination::Info => {
                self.state.destination = Destination::Title;
            }
            "listtext" | "pntext" => {
                self.state.destination = Destination::ListText;
                self.marker.clear();
            }
            name if SKIPPED_DESTINATIONS.contains(&name) => {
                self.state.destination = Destination::Skip;
            }
            // Inside \info every other group (author, dates, …) is not read.
            _ if destination == Destination::Info => {}
            _ if destination == Destination::Skip => {}
            _ if destination == Destination::FontTable => match name {
                "f" => self.font_definition = parameter,
                "fcharset" => {
                    if let (Some(font), Some(encoding)) =
                        (self.font_definition, parameter.and_then(charset))
                    {
                        self.fonts.entry(font).or_insert(encoding);
                    }
                }
                "cpg" => {
                    if let (Some(font), Some(encoding)) =
                        (self.font_definition, parameter.and_then(code_page))
                    {
                        self.fonts.insert(font, encoding);
                    }
                }
                _ => {}
            },
            _ if destination == Destination::StyleSheet => match name {
                "s" => {
                    self.style = Some(StyleEntry {
                        number: parameter.unwrap_or(0),
                        ..StyleEntry::default()
                    });
                }
                "outlinelevel" => {
                    if let Some(style) = self.style.as_mut() {
                        style.outline = parameter;
                    }
                }
                _ => {}
            },
            // Paragraph and table words inside a list marker or the title describe those.
            _ if destination != Destination::Body && !matches!(name, "f" | "v" | "plain") => {}
            "f" => self.state.font = parameter,
            "v" => self.state.hidden = parameter != Some(0),
            "plain" => {
                self.state.hidden = false;
                self.state.font = None;
            }
            "par" | "sect" | "page" => self.end_paragraph(),
            "line" => self.push_str("\n"),
            "tab" => self.push_str("\t"),
            "emdash" => self.push_str("\u{2014}"),
            "endash" => self.push_str("\u{2013}"),
            "bullet" => self.push_str("\u{2022}"),
            "lquote" => self.push_str("\u{2018}"),
            "rquote" => self.push_str("\u{2019}"),
            "ldblquote" => self.push_str("\u{201c}"),
            "rdblquote" => self.push_str("\u{201d}"),
            "emspace" | "enspace" | "qmspace" => self.push_str(" "),
            "pard" => self.paragraph = ParagraphState::default(),
            "s" => self.paragraph.style = parameter.unwrap_or(0),
            "outlinelevel" => self.paragraph.outline = parameter,
            "ls" => self.paragraph.list = parameter,
            "ilvl" => {
                self.paragraph.list_level =
                    usize::try_from(parameter.unwrap_or(0)).unwrap_or(0).min(8);
            }
            "intbl" => self.paragraph.in_table = true,
            "itap" => self.paragraph.in_table = parameter.unwrap_or(1) > 0,
            "cell" => self.end_cell(),
            "nestcell" => self.push_str(" "),
            "row" => self.end_row(),
            _ => {}
        }
    }

    fn unicode(&mut self, value: i32) {
        // \u takes a signed 16-bit value: negative numbers are the upper half.
        let unit = u16::try_from(value.rem_euclid(0x1_0000)).unwrap_or(0xfffd);
        self.skip_fallback = self.state.unicode_skip;
        let c = match (self.high_surrogate.take(), unit) {
            (_, 0xd800..=0xdbff) => {
                self.high_surrogate = Some(unit);
                return;
            }
            (Some(high), 0xdc00..=0xdfff) => {
                char::decode_utf16([high, unit]).next().and_then(Result::ok)
            }
            (_, unit) => char::from_u32(u32::from(unit)),
        };
        if let Some(c) = c {
            self.push_str(c.encode_utf8(&mut [0; 4]));
        }
    }

    /// At a group's end: a style sheet entry is complete.
    fn end_group(&mut self) {
        if self.state.destination == Destination::StyleSheet {
            self.commit_style();
        }
        if self.state.destination == Destination::FontTable {
            self.font_definition = None;
        }
    }

    fn commit_style(&mut self) {
        let Some(style) = self.style.take() else {
            return;
        };
        let name = super::super::collapse_whitespace(style.name.trim_end_matches(';'));
        let level = style
            .outline
            .filter(|l| (0..6).contains(l))
            .and_then(|l| usize::try_from(l + 1).ok())
            .or_else(|| heading_from_name(&name));
        if let Some(level) = level {
            self.headings.insert(style.number, level);
        }
    }

    fn end_paragraph(&mut self) {
        let text = std::mem::take(&mut self.text);
        let marker = std::mem::take(&mut self.marker);
        if self.paragraph.in_table {
            if !self.cell.is_empty() {
                self.cell.push(' ');
            }
            self.cell.push_str(&text);
            return;
        }
        self.end_table();
        if text.trim().is_empty() {
            return;
        }
        let heading = self
            .paragraph
            .outline
            .filter(|l| (0..6).contains(l))
            .and_then(|l| usize::try_from(l + 1).ok())
            .or_else(|| self.headings.get(&self.paragraph.style).copied());
        let marker = marker.trim();
        self.blocks.push(if let Some(level) = heading {
            Block::Heading(level, text)
        } else if self.paragraph.list.is_some() || !marker.is_empty() {
            let numbered = marker.chars().next().is_some_and(char::is_alphanumeric)
                && marker.ends_with(['.', ')']);
            Block::Item {
                depth: self.paragraph.list_level,
                marker: if numbered {
                    Marker::Numbered
                } else {
                    Marker::Bullet
                },
                text,
            }
        } else {
            Block::Paragraph(text)
        });
    }

    fn end_cell(&mut self) {
        let text = std::mem::take(&mut self.text);
        self.marker.clear();
        if !self.cell.is_empty() && !text.is_empty() {
            self.cell.push(' ');
        }
        self.cell.push_str(&text);
        let cell = std::mem::take(&mut self.cell);
        self.row.push(super::super::collapse_whitespace(&cell));
    }

    fn end_row(&mut self) {
        let row = std::mem::take(&mut self.row);
        if !row.is_empty() {
            self.table.push(row);
        }
    }

    fn end_table(&mut self) {
        if !self.row.is_empty() || !self.cell.trim().is_empty() {
            if !self.cell.trim().is_empty() {
                let cell = std::mem::take(&mut self.cell);
                self.row.push(super::super::collapse_whitespace(&cell));
            }
            self.end_row();
        }
        self.cell.clear();
        if !self.table.is_empty() {
            let rows = std::mem::take(&mut self.table);
            self.blocks.push(Block::Table(rows));
        }
    }

    fn finish(mut self) -> Read {
        self.flush();
        // A last paragraph without \par.
        if !self.text.trim().is_empty() {
            self.end_paragraph();
        }
        self.end_table();
        let mut out = MarkdownWriter::default();
        super::write_blocks(&mut out, &self.blocks);
        let title = super::super::collapse_whitespace(&self.title);
        Read {
            title: (!title.is_empty()).then_some(title),
            markdown: out.finish(),
            ..Read::default()
        }
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

/// The encoding of a Windows code page number (`\ansicpg`, `\cpg`).
fn code_page(page: i32) -> Option<&'static Encoding> {
    let label = match page {
        65001 => "utf-8".to_owned(),
        936 => "gbk".to_owned(),
        54936 | 20936 => "gb18030".to_owned(),
        950 => "big5".to_owned(),
        932 => "shift_jis".to_owned(),
        949 => "euc-kr".to_owned(),
        874 => "windows-874".to_owned(),
        1250..=1258 => format!("windows-{page}"),
        10000 => "macintosh".to_owned(),
        10007 => "x-mac-cyrillic".to_owned(),
        20866 => "koi8-r".to_owned(),
        21866 => "koi8-u".to_owned(),
        28591..=28599 => format!("iso-8859-{}", page - 28590),
        28605 => "iso-8859-15".to_owned(),
        _ => return None,
    };
    Encoding::for_label(label.as_bytes())
}

/// The encoding of a font's `\fcharset`; `None` for the ANSI, default and symbol charsets,
/// which follow the document's `\ansicpg`.
fn charset(charset: i32) -> Option<&'static Encoding> {
    let page = match charset {
        77 => 10000,
        128 => 932,
        129 => 949,
        134 => 936,
        136 => 950,
        161 => 1253,
        162 => 1254,
        163 => 1258,
        177 => 1255,
        178 => 1256,
        186 => 1257,
        204 => 1251,
        222 => 874,
        238 => 1250,
        _ => return None,
    };
    code_page(page)
}
