//! E-mail: one message (`.eml`: RFC 5322 with MIME) or a mailbox of them (`.mbox`).
//!
//! A message is parsed with `mail-parser` (quoted-printable and base64 bodies, RFC 2047 encoded
//! words, legacy charsets such as GBK, GB2312 and Big5 through `encoding_rs`). Its text is:
//!
//! ```text
//! # <Subject>
//!
//! From: …
//! To: …
//! Cc: …
//! Date: <as written>
//!
//! <the text/plain body; else the HTML body as Markdown>
//!
//! <the quotation of an earlier message, if any: see `quote.rs`>
//! ```
//!
//! so that every chunk cut from it says who wrote it and when. The headers also go to
//! [`kb_core::MessageHeaders`] (the date as RFC 3339 when it can be read).
//!
//! Attachments of a type kb reads become documents of their own (`attachment/<name>`) that
//! carry the message's headers; a forwarded message (`message/rfc822`) is read the same way,
//! its own attachments flattened into this message's parts (`attachment/fwd.eml/attachment/x`).
//! Attachments kb does not read, and those that fail to load, become notes. Inline images
//! (those a body shows by `cid:`) are part of the body, not attachments.
//!
//! Bounds: a pre-scan refuses a message with more than [`MAX_BOUNDARY_LINES`] MIME boundary
//! lines before it is parsed (a mail bomb), at most [`MAX_PARTS`] parts are read, messages are
//! read inside each other at most [`MAX_MESSAGE_DEPTH`] deep, and the decoded parts together
//! may not exceed [`LoadLimits::max_expanded_bytes`].

mod mbox;
mod quote;
#[cfg(test)]
mod tests;

use super::{MarkdownWriter, Read, collapse_whitespace};
use crate::{DocumentPart, LoadError, LoadLimits, LoadedDocument, Quoted, SourceFormat};
use kb_core::MessageHeaders;
use mail_parser::{
    Address, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};
use std::cell::Cell;
use std::collections::HashSet;
use std::path::Path;

/// The most MIME parts (bodies and attachments) read from one message; the rest are left out
/// with a note.
pub(crate) const MAX_PARTS: usize = 1_000;

/// A message with more lines that look like MIME boundaries (`--…`) than this is refused
/// before it is parsed: the parser would allocate a part for each.
pub(crate) const MAX_BOUNDARY_LINES: usize = 10 * MAX_PARTS;

/// How deeply messages are read inside each other (a message forwarding a message forwarding
/// a message); deeper ones become notes.
pub(crate) const MAX_MESSAGE_DEPTH: usize = 3;

/// The longest attachment name kept in a fragment, in characters.
const MAX_NAME_CHARS: usize = 120;

thread_local! {
    /// How many messages are being read on this thread, one inside the other.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Counts one more message being read for as long as it lives (also when a reader panics).
struct Nesting;

impl Nesting {
    fn enter() -> Self {
        DEPTH.with(|d| d.set(d.get() + 1));
        Self
    }

    fn depth() -> usize {
        DEPTH.with(Cell::get)
    }
}

impl Drop for Nesting {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Reads an `.eml` or `.mbox` file.
pub(crate) fn read(
    format: SourceFormat,
    bytes: &[u8],
    limits: &LoadLimits,
) -> Result<Read, LoadError> {
    let _nesting = Nesting::enter();
    match format {
        SourceFormat::Mbox => mbox::read(bytes, limits),
        _ => read_message(bytes, limits),
    }
}

fn corrupt(detail: impl Into<String>) -> LoadError {
    LoadError::Corrupt {
        format: SourceFormat::Eml,
        detail: detail.into(),
    }
}

/// Reads one message.
fn read_message(bytes: &[u8], limits: &LoadLimits) -> Result<Read, LoadError> {
    let bytes = skip_preamble(bytes);
    check_starts_with_headers(bytes)?;
    check_boundary_lines(bytes)?;
    let message = MessageParser::default()
        .parse(bytes)
        .filter(|m| !m.parts.is_empty())
        .ok_or_else(|| corrupt("no e-mail headers found; is it an e-mail message?"))?;
    let headers = message_headers(&message);
    if headers == MessageHeaders::default() {
        return Err(corrupt(
            "it has none of the headers From, To, Cc, Date, Subject or Message-ID; is it an e-mail message?",
        ));
    }
    let mut budget = Budget {
        left: limits.max_expanded_bytes,
        limit: limits.max_expanded_bytes,
    };
    let mut read = Read {
        title: headers.subject.clone(),
        message: Some(headers.clone()),
        ..Read::default()
    };
    let mut walked = 0;
    let body = body_markdown(&message, &mut walked, &mut budget, &mut read.notes)?;
    read_attachments(
        &message,
        &headers,
        limits,
        &mut walked,
        &mut budget,
        &mut read,
    )?;

    if is_cut_off(&message, bytes) {
        read.notes.push(
            "the message ends before its last MIME part is closed (cut off?); parts after the cut are missing"
                .to_owned(),
        );
    }

    let mut markdown = header_block(&message, &headers);
    let quotation = quote::quotation_start(&body);
    let (own, quoted) = match quotation {
        Some(at) => (body[..at].trim_end(), body[at..].trim()),
        None => (body.trim_end(), ""),
    };
    if !own.trim().is_empty() {
        markdown.push_str("\n\n");
        markdown.push_str(own.trim_start_matches('\n'));
    }
    if !quoted.is_empty() {
        markdown.push_str("\n\n");
        let start = markdown.len();
        markdown.push_str(quoted);
        read.quoted = replied_to(&message).map(|message_id| Quoted { message_id, start });
    }
    read.markdown = markdown;
    Ok(read)
}

/// A multipart message whose closing boundary (`--boundary--`) never comes.
fn is_cut_off(message: &Message<'_>, bytes: &[u8]) -> bool {
    let Some(boundary) = message
        .content_type()
        .filter(|ct| ct.ctype().eq_ignore_ascii_case("multipart"))
        .and_then(|ct| ct.attribute("boundary"))
    else {
        return false;
    };
    let closing = format!("--{boundary}--");
    !bytes
        .windows(closing.len())
        .any(|w| w == closing.as_bytes())
}

/// Decoded bytes that may still be taken from the message's parts.
struct Budget {
    left: u64,
    limit: u64,
}

impl Budget {
    fn take(&mut self, bytes: usize, format: SourceFormat) -> Result<(), LoadError> {
        let bytes = bytes as u64;
        if bytes > self.left {
            return Err(LoadError::ExpandsTooMuch {
                format,
                limit: self.limit,
            });
        }
        self.left -= bytes;
        Ok(())
    }
}

/// Skips a byte-order mark, leading blank lines and an mbox `From ` line, which some programs
/// keep when they save one message.
fn skip_preamble(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let bytes = &bytes[start..];
    if bytes.starts_with(b"From ") {
        let end = bytes
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| i + 1);
        return &bytes[end..];
    }
    bytes
}

/// A header field line: a name of printable ASCII without spaces, then a colon.
pub(crate) fn is_header_line(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    (1..=76).contains(&colon) && line[..colon].iter().all(|b| b.is_ascii_graphic())
}

/// Refuses files that are not mail before the parser makes a best effort of them.
fn check_starts_with_headers(bytes: &[u8]) -> Result<(), LoadError> {
    if bytes[..bytes.len().min(1024)].contains(&0) {
        return Err(LoadError::Binary);
    }
    let first_line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    if !is_header_line(first_line) {
        return Err(corrupt(
            "it does not start with e-mail headers (From:, To:, Subject:, …); is it an e-mail message?",
        ));
    }
    Ok(())
}

/// Refuses a message with so many MIME boundary lines that parsing it would be a mail bomb.
fn check_boundary_lines(bytes: &[u8]) -> Result<(), LoadError> {
    let boundaries = bytes
        .split(|&b| b == b'\n')
        .filter(|line| line.starts_with(b"--"))
        .take(MAX_BOUNDARY_LINES + 1)
        .count();
    if boundaries > MAX_BOUNDARY_LINES {
        return Err(corrupt(format!(
            "it has more than {MAX_BOUNDARY_LINES} MIME boundary lines (a mail bomb?); refusing"
        )));
    }
    Ok(())
}

/// The headers kept with the message's documents.
fn message_headers(message: &Message<'_>) -> MessageHeaders {
    let text = |s: &str| Some(collapse_whitespace(s)).filter(|s| !s.is_empty());
    MessageHeaders {
        from: message.from().and_then(|a| addresses(a).into_iter().next()),
        to: message.to().map(addresses).unwrap_or_default(),
        cc: message.cc().map(addresses).unwrap_or_default(),
        date: date(message),
        subject: message.subject().and_then(text),
        message_id: message.message_id().and_then(text),
    }
}

/// Each address as `Name <address>`, or the address or name alone.
fn addresses(address: &Address<'_>) -> Vec<String> {
    address
        .iter()
        .filter_map(|a| {
            let name = a.name().map(collapse_whitespace).filter(|n| !n.is_empty());
            let addr = a.address().map(str::trim).filter(|a| !a.is_empty());
            match (name, addr) {
                (Some(name), Some(addr)) if name != addr => Some(format!("{name} <{addr}>")),
                (_, Some(addr)) => Some(addr.to_owned()),
                (Some(name), None) => Some(name),
                (None, None) => None,
            }
        })
        .collect()
}

/// The Date header as RFC 3339 when it can be read, else as written.
fn date(message: &Message<'_>) -> Option<String> {
    let parsed = message
        .date()
        .filter(|d| d.is_valid())
        .map(mail_parser::DateTime::to_rfc3339)
        .filter(|d| chrono::DateTime::parse_from_rfc3339(d).is_ok());
    parsed.or_else(|| raw_date(message))
}

fn raw_date(message: &Message<'_>) -> Option<String> {
    message
        .header_raw(mail_parser::HeaderName::Date)
        .map(collapse_whitespace)
        .filter(|d| !d.is_empty())
}

/// The Message-ID this message replies to: In-Reply-To, else the last of References.
fn replied_to(message: &Message<'_>) -> Option<String> {
    let first = |value: &HeaderValue<'_>| match value {
        HeaderValue::Text(id) => Some(id.to_string()),
        HeaderValue::TextList(ids) => ids.first().map(ToString::to_string),
        _ => None,
    };
    let last = |value: &HeaderValue<'_>| match value {
        HeaderValue::Text(id) => Some(id.to_string()),
        HeaderValue::TextList(ids) => ids.last().map(ToString::to_string),
        _ => None,
    };
    first(message.in_reply_to())
        .or_else(|| last(message.references()))
        .map(|id| {
            id.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
        .filter(|id| !id.is_empty())
}

/// `# Subject` and a paragraph of who wrote to whom, and when.
fn header_block(message: &Message<'_>, headers: &MessageHeaders) -> String {
    let mut w = MarkdownWriter::default();
    if let Some(subject) = &headers.subject {
        w.heading(1, subject);
    }
    let mut lines = Vec::new();
    if let Some(from) = &headers.from {
        lines.push(format!("From: {from}"));
    }
    if !headers.to.is_empty() {
        lines.push(format!("To: {}", headers.to.join(", ")));
    }
    if !headers.cc.is_empty() {
        lines.push(format!("Cc: {}", headers.cc.join(", ")));
    }
    // As written: "Mon, 3 Mar 2025 09:15:00 +0100" reads better than RFC 3339.
    if let Some(date) = raw_date(message).or_else(|| headers.date.clone()) {
        lines.push(format!("Date: {date}"));
    }
    w.paragraph(&lines.join("\n"));
    w.finish()
}

/// The message's text: its text/plain parts, else its HTML parts as Markdown.
fn body_markdown(
    message: &Message<'_>,
    walked: &mut usize,
    budget: &mut Budget,
    notes: &mut Vec<String>,
) -> Result<String, LoadError> {
    let part = |id: &u32| message.parts.get(*id as usize);
    let has_plain = message
        .text_body
        .iter()
        .filter_map(part)
        .any(|p| matches!(p.body, PartType::Text(_)));
    let ids = if has_plain {
        &message.text_body
    } else {
        &message.html_body
    };
    let mut blocks = Vec::new();
    for (n, body) in ids.iter().filter_map(part).enumerate() {
        if *walked >= MAX_PARTS {
            notes.push(format!(
                "only the first {MAX_PARTS} MIME parts were read; {} more body parts left out",
                ids.len() - n
            ));
            break;
        }
        *walked += 1;
        match &body.body {
            PartType::Text(text) if has_plain => {
                budget.take(text.len(), SourceFormat::Eml)?;
                blocks.push(plain_to_markdown(text));
            }
            PartType::Html(html) => {
                budget.take(html.len(), SourceFormat::Eml)?;
                match super::html::to_markdown(html) {
                    Ok(page) => blocks.push(page.markdown),
                    Err(e) => notes.push(format!("HTML body: {e}")),
                }
            }
            _ => {}
        }
    }
    blocks.retain(|b| !b.trim().is_empty());
    Ok(blocks.join("\n\n"))
}

/// Plain text as Markdown: blank lines separate paragraphs, line breaks are kept.
fn plain_to_markdown(text: &str) -> String {
    let mut w = MarkdownWriter::default();
    let mut block = String::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            w.paragraph(&block);
            block.clear();
        } else {
            let mut clean = String::with_capacity(line.len());
            super::push_clean(&mut clean, line);
            block.push_str(&clean);
            block.push('\n');
        }
    }
    w.paragraph(&block);
    w.finish()
}

/// What a part that is not a body is.
enum Attachment<'a> {
    /// A file kb may read, with the name it came with (or one made from its type).
    File { name: String, bytes: &'a [u8] },
    /// A part with no name whose type kb does not read.
    Unnamed { mime: String },
}

/// Reads the attachments into `read.parts` (or notes).
fn read_attachments(
    message: &Message<'_>,
    headers: &MessageHeaders,
    limits: &LoadLimits,
    walked: &mut usize,
    budget: &mut Budget,
    read: &mut Read,
) -> Result<(), LoadError> {
    let mut used = HashSet::new();
    for (n, id) in message.attachments.iter().enumerate() {
        if *walked >= MAX_PARTS {
            read.notes.push(format!(
                "only the first {MAX_PARTS} MIME parts were read; {} more attachments left out",
                message.attachments.len() - n
            ));
            break;
        }
        *walked += 1;
        let Some(part) = message.parts.get(*id as usize) else {
            continue;
        };
        let Some(found) = attachment(message, part, n + 1) else {
            continue;
        };
        let (name, bytes) = match found {
            Attachment::File { name, bytes } => (name, bytes),
            Attachment::Unnamed { mime } => {
                read.notes
                    .push(format!("unnamed attachment ({mime}): not a type kb reads"));
                continue;
            }
        };
        budget.take(bytes.len(), SourceFormat::Eml)?;
        let name = unique(sanitize(&name), &mut used);
        let Some(format) = SourceFormat::from_path(Path::new(&name)) else {
            read.notes
                .push(format!("attachment {name}: not a type kb reads"));
            continue;
        };
        if matches!(format, SourceFormat::Eml | SourceFormat::Mbox)
            && Nesting::depth() >= MAX_MESSAGE_DEPTH
        {
            read.notes.push(format!(
                "attachment {name}: messages inside messages are read {MAX_MESSAGE_DEPTH} deep at most; not read"
            ));
            continue;
        }
        // Each attachment may expand (a DOCX is a zip) only within what the message has left.
        let attachment_limits = LoadLimits {
            max_file_bytes: limits.max_file_bytes,
            max_expanded_bytes: budget.left,
            ..limits.clone()
        };
        match crate::parse_bytes_with_limits(Path::new(&name), format, bytes, &attachment_limits) {
            Ok(mut document) => {
                budget.take(document.text.len(), format)?;
                if document.message.is_none() {
                    document.message = Some(headers.clone());
                }
                push_flattened(&mut read.parts, &format!("attachment/{name}"), document);
            }
            Err(e) => read.notes.push(format!("attachment {name}: {e}")),
        }
    }
    Ok(())
}

/// Adds `document` as the part `fragment`, and the documents inside it as parts of their own
/// after it (`fragment/…`), so that every part is one level deep.
pub(crate) fn push_flattened(
    parts: &mut Vec<DocumentPart>,
    fragment: &str,
    mut document: LoadedDocument,
) {
    let inner = std::mem::take(&mut document.parts);
    parts.push(DocumentPart {
        fragment: fragment.to_owned(),
        document,
    });
    parts.extend(inner.into_iter().map(|part| DocumentPart {
        fragment: format!("{fragment}/{}", part.fragment),
        document: part.document,
    }));
}

/// What a non-body part is, or `None` for parts that are no attachment: multipart containers,
/// inline images and unnamed alternative texts (a text/calendar beside the text/plain).
fn attachment<'a>(
    message: &'a Message<'_>,
    part: &'a MessagePart<'_>,
    n: usize,
) -> Option<Attachment<'a>> {
    let mime = part
        .content_type()
        .map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_owned(),
        })
        .unwrap_or_else(|| "text/plain".to_owned())
        .to_ascii_lowercase();
    let disposition = part.content_disposition();
    let is_attachment = disposition.is_some_and(|d| d.is_attachment());
    let name = part
        .attachment_name()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    let bytes: &[u8] = match &part.body {
        PartType::Multipart(_) => return None,
        PartType::Message(nested) => message_bytes(message, part, nested),
        PartType::Text(_) | PartType::Html(_) | PartType::Binary(_) | PartType::InlineBinary(_) => {
            part.contents()
        }
    };
    if !is_attachment && mime.starts_with("image/") {
        // Shown in the body (inline, or referred to by its Content-ID).
        let inline = disposition.is_some_and(|d| d.is_inline())
            || part.content_id().is_some()
            || matches!(part.body, PartType::InlineBinary(_));
        if inline || name.is_none() {
            return None;
        }
    }
    match name {
        Some(name) => Some(Attachment::File { name, bytes }),
        None => match extension_for(&mime) {
            Some(ext) if matches!(part.body, PartType::Message(_)) => {
                let subject = part
                    .message()
                    .and_then(|m| m.subject())
                    .map(collapse_whitespace)
                    .filter(|s| !s.is_empty());
                let stem = subject.unwrap_or_else(|| format!("message-{n}"));
                Some(Attachment::File {
                    name: format!("{stem}.{ext}"),
                    bytes,
                })
            }
            Some(ext) if is_attachment || !part.is_text() => Some(Attachment::File {
                name: format!("attachment-{n}.{ext}"),
                bytes,
            }),
            // An alternative rendering of the body or a part the sender did not name.
            _ if part.is_text() && !is_attachment => None,
            _ => Some(Attachment::Unnamed { mime }),
        },
    }
}

/// The bytes of a `message/rfc822` part, to read as a message of its own.
fn message_bytes<'a>(
    message: &'a Message<'_>,
    part: &'a MessagePart<'_>,
    nested: &'a Message<'_>,
) -> &'a [u8] {
    if part.encoding != mail_parser::Encoding::None {
        // Decoded from base64 or quoted-printable: the parser kept the decoded bytes.
        return nested.raw_message();
    }
    let raw = message.raw_message();
    let start = (part.offset_body as usize).min(raw.len());
    let end = (part.offset_end as usize).clamp(start, raw.len());
    if end > start {
        &raw[start..end]
    } else {
        &raw[start..]
    }
}

/// The extension of a file of a MIME type kb reads, for attachments sent without a name.
fn extension_for(mime: &str) -> Option<&'static str> {
    Some(match mime {
        "text/plain" => "txt",
        "text/markdown" => "md",
        "text/html" => "html",
        "text/csv" => "csv",
        "text/tab-separated-values" => "tsv",
        "application/pdf" => "pdf",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => "pptx",
        "application/vnd.oasis.opendocument.text" => "odt",
        "application/vnd.oasis.opendocument.spreadsheet" => "ods",
        "application/vnd.oasis.opendocument.presentation" => "odp",
        "application/rtf" | "text/rtf" => "rtf",
        "message/rfc822" => "eml",
        "application/mbox" => "mbox",
        _ => return None,
    })
}

/// An attachment's name as one safe path segment: the last component of what the sender
/// wrote, without control characters or characters that mean something in a document id
/// (`#`, `?`, `%`) or on a file system, at most [`MAX_NAME_CHARS`] characters (the extension
/// kept).
fn sanitize(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| {
            if matches!(c, '#' | '?' | '%' | '"' | '<' | '>' | '|' | '*' | ':') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned = collapse_whitespace(&cleaned);
    let cleaned = cleaned.trim_matches(['.', ' ']);
    if cleaned.is_empty() {
        return "attachment".to_owned();
    }
    if cleaned.chars().count() <= MAX_NAME_CHARS {
        return cleaned.to_owned();
    }
    let (stem, ext) = split_extension(cleaned);
    let ext: String = ext.chars().take(16).collect();
    let keep = MAX_NAME_CHARS.saturating_sub(ext.chars().count());
    let stem: String = stem.chars().take(keep).collect();
    format!("{}{ext}", stem.trim_end())
}

/// `("report", ".pdf")` for `report.pdf`; no extension for `.profile` or `README`.
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(dot) if dot > 0 => name.split_at(dot),
        _ => (name, ""),
    }
}

/// `name`, or `name-2`, `name-3`, … (before the extension) if an earlier attachment took it.
fn unique(name: String, used: &mut HashSet<String>) -> String {
    if used.insert(name.to_lowercase()) {
        return name;
    }
    let (stem, ext) = split_extension(&name);
    (2..)
        .map(|n| format!("{stem}-{n}{ext}"))
        .find(|candidate| used.insert(candidate.to_lowercase()))
        .expect("BUG: an unbounded counter always finds a free name")
}
