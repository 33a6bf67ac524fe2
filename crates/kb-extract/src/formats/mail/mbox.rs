//! Mailboxes (`.mbox`, mboxrd and mboxo): one document per message.
//!
//! A message starts at a line `From <sender> <date>` that begins the file or is followed by a
//! header line; in the body, one `>` is taken off lines that read `>From `, `>>From `, …
//! (mboxrd quoting; mboxo quoted only `From `, the same for all but lines that were `>From `
//! before quoting). Each message is read as an `.eml` file and becomes the part `message/<n>`
//! (1-based, in file order); its attachments become `message/<n>/attachment/<name>`. The
//! mailbox's own text is an index: one list item per message, "date — from — subject".
//!
//! A reply that quotes a message of the same mailbox loses the quotation: those words are in
//! the quoted message's own document already.

use super::{MAX_PARTS, is_header_line, push_flattened};
use crate::formats::{MarkdownWriter, Read};
use crate::{LoadError, LoadLimits, LoadedDocument, SourceFormat};
use std::collections::HashSet;
use std::path::Path;

/// The most messages read from one mailbox; the rest are left out with a note.
pub(super) const MAX_MESSAGES: usize = 10 * MAX_PARTS;

/// Reads a mailbox.
pub(super) fn read(bytes: &[u8], limits: &LoadLimits) -> Result<Read, LoadError> {
    let (messages, total) = split(bytes)?;
    let mut notes = Vec::new();
    if total > messages.len() {
        notes.push(format!(
            "only the first {MAX_MESSAGES} messages were read; {} more left out",
            total - messages.len()
        ));
    }
    let mut left = limits.max_expanded_bytes;
    let mut loaded: Vec<(usize, LoadedDocument)> = Vec::new();
    let mut first_error = None;
    for (i, message) in messages.iter().enumerate() {
        let n = i + 1;
        let message_limits = LoadLimits {
            max_file_bytes: limits.max_file_bytes,
            max_expanded_bytes: left,
            ..limits.clone()
        };
        let name = format!("message-{n}.eml");
        match crate::parse_bytes_with_limits(
            Path::new(&name),
            SourceFormat::Eml,
            message,
            &message_limits,
        ) {
            Ok(document) => {
                let spent = document.text.len()
                    + document
                        .parts
                        .iter()
                        .map(|p| p.document.text.len())
                        .sum::<usize>();
                left = left.saturating_sub(spent as u64);
                loaded.push((n, document));
            }
            Err(e) => {
                notes.push(format!("message {n}: {e}"));
                first_error.get_or_insert(e);
            }
        }
    }
    if loaded.is_empty() {
        let detail = match first_error {
            Some(e) => format!("none of its {} messages could be read: {e}", messages.len()),
            None => "it holds no messages".to_owned(),
        };
        return Err(LoadError::Corrupt {
            format: SourceFormat::Mbox,
            detail,
        });
    }

    let in_mailbox: HashSet<String> = loaded
        .iter()
        .filter_map(|(_, d)| d.message.as_ref()?.message_id.clone())
        .collect();
    let mut w = MarkdownWriter::default();
    let mut parts = Vec::new();
    for (n, mut document) in loaded {
        if let Some(quoted) = &document.quoted
            && in_mailbox.contains(&quoted.message_id)
            && quoted.start <= document.text.len()
            && document.text.is_char_boundary(quoted.start)
        {
            document.text.truncate(quoted.start);
            document.text.truncate(document.text.trim_end().len());
            document.quoted = None;
        }
        w.list_item(0, &format!("{n}."), &index_entry(&document));
        push_flattened(&mut parts, &format!("message/{n}"), document);
    }
    Ok(Read {
        title: None,
        markdown: w.finish(),
        notes,
        parts,
        ..Read::default()
    })
}

/// "2025-03-11 09:00 — Facilities <facilities@example.com> — Office move".
fn index_entry(document: &LoadedDocument) -> String {
    let headers = document.message.clone().unwrap_or_default();
    let date = headers.date.map(|d| {
        chrono::DateTime::parse_from_rfc3339(&d)
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or(d)
    });
    let fields = [
        date,
        headers.from,
        Some(headers.subject.unwrap_or_else(|| "(no subject)".to_owned())),
    ];
    let entry: Vec<String> = fields.into_iter().flatten().collect();
    entry.join(" — ")
}

/// The messages of the mailbox (unquoted), at most [`MAX_MESSAGES`], and how many it holds.
fn split(bytes: &[u8]) -> Result<(Vec<Vec<u8>>, usize), LoadError> {
    let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
    let first = lines
        .iter()
        .position(|l| !l.trim_ascii().is_empty())
        .unwrap_or(lines.len());
    if !lines.get(first).is_some_and(|l| l.starts_with(b"From ")) {
        return Err(LoadError::Corrupt {
            format: SourceFormat::Mbox,
            detail: "it does not start with a \"From \" line, so it is not an mbox mailbox; save a single message as .eml".to_owned(),
        });
    }
    let mut messages: Vec<Vec<u8>> = Vec::new();
    let mut total = 0;
    for (i, line) in lines.iter().enumerate().skip(first) {
        let separator = line.starts_with(b"From ")
            && (i == first || lines.get(i + 1).is_some_and(|next| is_header_line(next)));
        if separator {
            total += 1;
            if total <= MAX_MESSAGES {
                messages.push(Vec::new());
            }
            continue;
        }
        if total > MAX_MESSAGES {
            continue;
        }
        let Some(message) = messages.last_mut() else {
            continue;
        };
        let quotes = line.iter().take_while(|&&b| b == b'>').count();
        if quotes > 0 && line[quotes..].starts_with(b"From ") {
            message.extend_from_slice(&line[1..]);
        } else {
            message.extend_from_slice(line);
        }
    }
    messages.retain(|m| !m.trim_ascii().is_empty());
    Ok((messages, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_at_from_lines_followed_by_headers() {
        let mbox = b"From a@x Mon Mar  3 09:00:00 2025\nSubject: one\n\nFrom the lift, turn left.\n>From here on\n>>From there\n\nFrom b@x Mon Mar  3 10:00:00 2025\nSubject: two\n\nbody\n";

        let (messages, total) = split(mbox).unwrap();

        assert_eq!(total, 2);
        assert_eq!(
            String::from_utf8_lossy(&messages[0]),
            "Subject: one\n\nFrom the lift, turn left.\nFrom here on\n>From there\n\n"
        );
        assert_eq!(
            String::from_utf8_lossy(&messages[1]),
            "Subject: two\n\nbody\n"
        );
    }

    #[test]
    fn a_file_that_does_not_start_with_a_from_line_is_not_a_mailbox() {
        let err = split(b"Subject: hello\n\nbody\n").unwrap_err();

        assert!(err.to_string().contains("not an mbox mailbox"), "{err}");
    }
}
