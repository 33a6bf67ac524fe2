//! The mail reader on the fixtures in tests/fixtures/mail (made by
//! tests/fixtures/make_mail_fixtures.py) and on generated bad input.

use super::*;
use crate::{LoadedDocument, load_file, parse_bytes, parse_bytes_with_limits};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/mail")
        .join(name)
}

fn load(name: &str) -> Result<LoadedDocument, LoadError> {
    load_file(&fixture(name), 20 * 1024 * 1024)
}

fn eml(bytes: &[u8]) -> Result<LoadedDocument, LoadError> {
    parse_bytes(Path::new("test.eml"), SourceFormat::Eml, bytes)
}

fn fragments(doc: &LoadedDocument) -> Vec<&str> {
    doc.parts.iter().map(|p| p.fragment.as_str()).collect()
}

fn part<'a>(doc: &'a LoadedDocument, fragment: &str) -> &'a LoadedDocument {
    &doc.parts
        .iter()
        .find(|p| p.fragment == fragment)
        .unwrap_or_else(|| panic!("no part {fragment} in {:?}", fragments(doc)))
        .document
}

#[test]
fn plain_message_keeps_its_headers_and_text() {
    let doc = load("plain.eml").unwrap();

    assert_eq!(doc.source_format, SourceFormat::Eml);
    assert_eq!(doc.format, crate::DocumentFormat::Markdown);
    assert_eq!(doc.title, "Q3 offsite venue");
    assert_eq!(
        doc.message,
        Some(MessageHeaders {
            from: Some("Alice Martin <alice@example.com>".into()),
            to: vec![
                "Bob Stone <bob@example.com>".into(),
                "carol@example.com".into()
            ],
            cc: vec!["Dan Wu <dan@example.com>".into()],
            date: Some("2025-03-03T09:15:00+01:00".into()),
            subject: Some("Q3 offsite venue".into()),
            message_id: Some("offsite-1@example.com".into()),
        })
    );
    assert!(
        doc.text.starts_with(
            "# Q3 offsite venue\n\nFrom: Alice Martin <alice@example.com>\n\
             To: Bob Stone <bob@example.com>, carol@example.com\n\
             Cc: Dan Wu <dan@example.com>\n\
             Date: Mon, 03 Mar 2025 09:15:00 +0100\n\n\
             Hi all,\n\n\
             The Q3 offsite will be at the Lakeside Lodge in Annecy, 16-18 September.\n\
             Budget per person is 850 EUR including travel."
        ),
        "{}",
        doc.text
    );
    // A body line that starts with '#' is not a heading.
    assert!(doc.text.contains("\n\\# of rooms: 24\n"), "{}", doc.text);
    assert_eq!(doc.quoted, None);
    assert!(doc.parts.is_empty());
    assert!(doc.notes.is_empty(), "{:?}", doc.notes);
}

#[test]
fn html_only_message_is_read_as_markdown() {
    let doc = load("html-only.eml").unwrap();

    assert_eq!(doc.title, "Supplier shortlist");
    assert!(doc.text.contains("## Shortlist"), "{}", doc.text);
    assert!(
        doc.text
            .contains("We keep Kestrel Foods and Orchard Supply."),
        "{}",
        doc.text
    );
    assert!(doc.text.contains("| Kestrel Foods | 91 |"), "{}", doc.text);
    assert!(!doc.text.contains("ignored") && !doc.text.contains("color"));
}

#[test]
fn quoted_printable_body_and_encoded_subject_are_decoded() {
    let doc = load("quoted-printable.eml").unwrap();

    assert_eq!(doc.title, "Café budget");
    assert_eq!(
        doc.message.as_ref().unwrap().date.as_deref(),
        Some("2025-03-05T08:00:00-05:00")
    );
    assert!(
        doc.text.contains(
            "The café on the ground floor reopens on 1 April. Its budget line stays at 12,000 EUR a year"
        ),
        "{}",
        doc.text
    );
}

#[test]
fn base64_body_is_decoded() {
    let doc = load("base64.eml").unwrap();

    assert!(
        doc.text.contains(
            "Parking permits for 2025 are issued by Ingrid at reception — bring your badge."
        ),
        "{}",
        doc.text
    );
}

#[test]
fn utf8_encoded_words_and_chinese_body_are_decoded() {
    let doc = load("chinese-utf8.eml").unwrap();

    assert_eq!(doc.title, "季度预算审批");
    let headers = doc.message.as_ref().unwrap();
    assert_eq!(
        headers.from.as_deref(),
        Some("张伟 <zhang.wei@example.com>")
    );
    assert_eq!(headers.to, ["李娜 <li.na@example.com>"]);
    assert_eq!(headers.date.as_deref(), Some("2025-03-07T16:45:00+08:00"));
    assert!(
        doc.text.starts_with("# 季度预算审批\n\nFrom: 张伟"),
        "{}",
        doc.text
    );
    assert!(
        doc.text
            .contains("第三季度的市场预算为十二万元，请在周五前审批。"),
        "{}",
        doc.text
    );
}

#[test]
fn gb2312_subject_and_gbk_body_are_decoded() {
    let doc = load("chinese-gb2312.eml").unwrap();

    assert_eq!(doc.title, "年度报销政策");
    assert_eq!(
        doc.message.as_ref().unwrap().from.as_deref(),
        Some("王芳 <wang.fang@example.com>")
    );
    assert!(
        doc.text
            .contains("报销单须在出差结束后十五天内提交给财务部。"),
        "{}",
        doc.text
    );
}

#[test]
fn attachments_of_types_kb_reads_become_parts_and_the_others_notes() {
    let doc = load("attachments.eml").unwrap();
    let headers = doc.message.clone().unwrap();

    // The sheet reader is another piece of issue 16: budget.xlsx is a part once it reads
    // XLSX, a note saying why not until then; either way it is never passed over.
    let xlsx_part = doc
        .parts
        .iter()
        .any(|p| p.fragment == "attachment/budget.xlsx");
    let xlsx_note = doc
        .notes
        .iter()
        .any(|n| n.starts_with("attachment budget.xlsx: "));
    assert!(
        xlsx_part != xlsx_note,
        "{:?} {:?}",
        fragments(&doc),
        doc.notes
    );
    let mut expected = vec![
        "attachment/expense-policy.docx",
        "attachment/notes.txt",
        "attachment/notes-2.txt",
    ];
    if xlsx_part {
        expected.insert(0, "attachment/budget.xlsx");
    }
    assert_eq!(fragments(&doc), expected);

    let docx = part(&doc, "attachment/expense-policy.docx");
    assert_eq!(docx.source_format, SourceFormat::Docx);
    assert_eq!(docx.title, "Expense Policy");
    assert_eq!(docx.message.as_ref(), Some(&headers));
    let notes = part(&doc, "attachment/notes.txt");
    assert_eq!(notes.text, "Venue deposit is due on 30 April.");
    assert_eq!(notes.message.as_ref(), Some(&headers));
    assert_eq!(
        part(&doc, "attachment/notes-2.txt").text,
        "Second notes file: book the coaches."
    );

    let other_notes: Vec<&String> = doc
        .notes
        .iter()
        .filter(|n| !n.starts_with("attachment budget.xlsx: "))
        .collect();
    assert_eq!(other_notes.len(), 2, "{:?}", doc.notes);
    assert_eq!(other_notes[0], "attachment logo.gif: not a type kb reads");
    assert!(
        other_notes[1].starts_with("attachment broken.docx: DOCX file is corrupt"),
        "{}",
        other_notes[1]
    );
    // The text/plain body is read, not its HTML alternative with the inline image.
    assert!(
        doc.text
            .ends_with("Attached: the budget, the expense policy and my notes.")
    );
}

#[test]
fn forwarded_message_is_a_part_with_its_own_headers_and_attachments() {
    let doc = load("forwarded.eml").unwrap();

    assert_eq!(
        fragments(&doc),
        [
            "attachment/catering-quote.eml",
            "attachment/catering-quote.eml/attachment/menu.txt"
        ]
    );
    let forwarded = part(&doc, "attachment/catering-quote.eml");
    assert_eq!(forwarded.source_format, SourceFormat::Eml);
    assert_eq!(forwarded.title, "Catering quote");
    let inner_headers = forwarded.message.clone().unwrap();
    assert_eq!(
        inner_headers.from.as_deref(),
        Some("Orchard Supply <sales@orchard.example.org>")
    );
    assert!(forwarded.text.contains("31 EUR per person per day"));
    assert!(forwarded.parts.is_empty(), "flattened into the outer parts");
    let menu = part(&doc, "attachment/catering-quote.eml/attachment/menu.txt");
    assert_eq!(menu.text, "Menu: soup, salad, tarte tatin.");
    assert_eq!(menu.message, Some(inner_headers));
    assert!(doc.text.contains("Forwarding the catering quote"));
    assert!(!doc.text.contains("31 EUR"), "{}", doc.text);
}

#[test]
fn reply_marks_where_its_quotation_of_the_earlier_message_starts() {
    let doc = load("reply.eml").unwrap();

    let quoted = doc.quoted.clone().expect("a quotation");
    assert_eq!(quoted.message_id, "offsite-1@example.com");
    let (own, quotation) = doc.text.split_at(quoted.start);
    assert!(
        own.contains("I will book the coach from Geneva airport."),
        "{own}"
    );
    assert!(!own.contains("Lakeside"), "{own}");
    assert!(
        quotation.starts_with(
            "On Mon, 3 Mar 2025 at 09:15, Alice Martin <alice@example.com> wrote:\n> Hi all,"
        ),
        "{quotation}"
    );
    assert!(quotation.ends_with("> Budget per person is 850 EUR including travel."));
}

#[test]
fn quotation_without_in_reply_to_stays_unmarked() {
    let doc =
        eml(b"From: a@x.com\nSubject: hi\n\nYes.\n\nOn Mon, Alice wrote:\n> Booked?\n").unwrap();

    assert_eq!(doc.quoted, None);
    assert!(
        doc.text.ends_with("On Mon, Alice wrote:\n> Booked?"),
        "{}",
        doc.text
    );
}

#[test]
fn mailbox_is_an_index_with_one_part_per_message() {
    let doc = load("thread.mbox").unwrap();

    assert_eq!(doc.source_format, SourceFormat::Mbox);
    assert_eq!(doc.title, "thread");
    assert_eq!(doc.message, None);
    assert_eq!(
        doc.text,
        "1. 2025-03-11 09:00 — Facilities <facilities@example.com> — Office move\n\
         2. 2025-03-11 09:30 — Dan Wu <dan@example.com> — Re: Office move\n\
         3. 2025-03-12 08:00 — Facilities <facilities@example.com> — Floor plan"
    );
    assert_eq!(
        fragments(&doc),
        [
            "message/1",
            "message/2",
            "message/3",
            "message/3/attachment/plan.txt"
        ]
    );
    let first = part(&doc, "message/1");
    assert_eq!(first.title, "Office move");
    assert!(
        first
            .text
            .ends_with("We move to the fourth floor on 2 May.\nPack your desk by 30 April.")
    );

    // The reply quotes message 1 of the same mailbox: the quotation is gone.
    let reply = part(&doc, "message/2");
    assert_eq!(reply.quoted, None);
    assert!(
        reply.text.ends_with("Will the lockers move too?"),
        "{}",
        reply.text
    );

    // ">From " in the body is unquoted.
    let third = part(&doc, "message/3");
    assert!(
        third
            .text
            .contains("\n\nFrom the lift, turn left for the kitchen."),
        "{}",
        third.text
    );
    let plan = part(&doc, "message/3/attachment/plan.txt");
    assert_eq!(
        plan.message.as_ref().and_then(|m| m.subject.as_deref()),
        Some("Floor plan")
    );
}

#[test]
fn truncated_message_keeps_what_arrived() {
    let doc = load("truncated.eml").unwrap();

    assert_eq!(doc.title, "Offsite budget and policy");
    assert!(doc.text.contains("Attached: the budget"));
    // The cut falls inside the DOCX attachment: it fails to load and says so, and so does
    // the message, for the attachments after it.
    assert!(
        doc.notes
            .iter()
            .any(|n| n.starts_with("attachment expense-policy.docx: ")),
        "{:?}",
        doc.notes
    );
    assert_eq!(
        doc.notes.last().map(String::as_str),
        Some(
            "the message ends before its last MIME part is closed (cut off?); parts after the cut are missing"
        )
    );
}

#[test]
fn binary_garbage_is_refused() {
    let err = load("garbage.eml").unwrap_err();

    assert!(matches!(err, LoadError::Binary), "{err}");
}

#[test]
fn text_that_is_not_mail_is_refused_with_a_reason() {
    let err = eml(b"Dear all, the party is on Friday.\n").unwrap_err();

    assert!(
        err.to_string()
            .contains("does not start with e-mail headers"),
        "{err}"
    );
    let err = eml(b"X-Unknown: 1\n\nbody\n").unwrap_err();
    assert!(
        err.to_string().contains("none of the headers From"),
        "{err}"
    );
}

/// A message whose body is `depth` multiparts nested inside each other around one text part.
fn nested_multiparts(depth: usize) -> Vec<u8> {
    let mut out = String::from("From: a@x.com\nSubject: nested\nMIME-Version: 1.0\n");
    for level in 0..depth {
        out.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{level}\"\n\n--b{level}\n"
        ));
    }
    out.push_str("Content-Type: text/plain\n\nThe innermost words.\n");
    for level in (0..depth).rev() {
        out.push_str(&format!("--b{level}--\n"));
    }
    out.into_bytes()
}

#[test]
fn five_hundred_nested_multiparts_are_read_quickly() {
    let bytes = nested_multiparts(500);

    let started = Instant::now();
    let doc = eml(&bytes).unwrap();

    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(doc.text.ends_with("The innermost words."), "{}", doc.text);
}

#[test]
fn message_with_too_many_boundaries_is_refused_before_parsing() {
    let bytes = nested_multiparts(MAX_BOUNDARY_LINES);

    let started = Instant::now();
    let err = eml(&bytes).unwrap_err();

    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(err.to_string().contains("a mail bomb?"), "{err}");
}

#[test]
fn parts_beyond_the_limit_are_left_out_with_a_note() {
    let extra = 20;
    let mut out = String::from(
        "From: a@x.com\nSubject: many\nContent-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nSee the files.\n",
    );
    for n in 0..MAX_PARTS + extra {
        out.push_str(&format!(
            "--b\nContent-Type: text/plain\nContent-Disposition: attachment; filename=\"f{n}.txt\"\n\nfile {n}\n"
        ));
    }
    out.push_str("--b--\n");

    let doc = eml(out.as_bytes()).unwrap();

    // One part is the body.
    assert_eq!(doc.parts.len(), MAX_PARTS - 1);
    assert_eq!(
        doc.notes,
        [format!(
            "only the first {MAX_PARTS} MIME parts were read; {} more attachments left out",
            extra + 1
        )]
    );
}

#[test]
fn decoded_parts_over_the_expansion_limit_are_refused() {
    let mut bytes = b"From: a@x.com\nSubject: big\n\n".to_vec();
    bytes.extend(std::iter::repeat_n(b'x', 10_000));
    let limits = LoadLimits {
        max_file_bytes: 1024 * 1024,
        max_expanded_bytes: 5_000,
        ..LoadLimits::default()
    };

    let err = parse_bytes_with_limits(Path::new("big.eml"), SourceFormat::Eml, &bytes, &limits)
        .unwrap_err();

    assert!(matches!(err, LoadError::ExpandsTooMuch { .. }), "{err}");
}

/// A message that forwards a message that forwards a message …, `depth` deep.
fn forwarded_chain(depth: usize) -> Vec<u8> {
    let mut message = "From: z@x.com\nSubject: level 0\n\nThe innermost message.\n".to_owned();
    for level in 1..=depth {
        message = format!(
            "From: a@x.com\nSubject: level {level}\nContent-Type: multipart/mixed; boundary=\"b{level}\"\n\n\
             --b{level}\nContent-Type: text/plain\n\nForwarding.\n\
             --b{level}\nContent-Type: message/rfc822\nContent-Disposition: attachment; filename=\"fwd.eml\"\n\n\
             {message}\n--b{level}--\n"
        );
    }
    message.into_bytes()
}

#[test]
fn messages_inside_messages_are_read_three_deep() {
    let doc = eml(&forwarded_chain(5)).unwrap();

    assert_eq!(
        fragments(&doc),
        [
            "attachment/fwd.eml",
            "attachment/fwd.eml/attachment/fwd.eml"
        ]
    );
    assert_eq!(
        part(&doc, "attachment/fwd.eml/attachment/fwd.eml").title,
        "level 3"
    );
    let deepest = part(&doc, "attachment/fwd.eml/attachment/fwd.eml");
    assert_eq!(
        deepest.notes,
        ["attachment fwd.eml: messages inside messages are read 3 deep at most; not read"]
    );
}

#[test]
fn attachment_names_are_one_safe_segment() {
    assert_eq!(sanitize("../../etc/passwd"), "passwd");
    assert_eq!(sanitize("C:\\Users\\bob\\Q3 #1?.xlsx"), "Q3 _1_.xlsx");
    assert_eq!(sanitize(" \u{7}.. "), "attachment");
    let long = format!("{}.pdf", "a".repeat(300));
    let short = sanitize(&long);
    assert_eq!(short.chars().count(), MAX_NAME_CHARS);
    assert!(short.ends_with("a.pdf"));
}

#[test]
fn duplicate_names_are_numbered_before_the_extension() {
    let mut used = HashSet::new();

    let names: Vec<String> = ["a.txt", "a.txt", "A.TXT", "README", "README"]
        .into_iter()
        .map(|n| unique(n.to_owned(), &mut used))
        .collect();

    assert_eq!(names, ["a.txt", "a-2.txt", "A-3.TXT", "README", "README-2"]);
}

#[test]
fn mailbox_that_is_not_one_is_refused() {
    let err = parse_bytes(Path::new("x.mbox"), SourceFormat::Mbox, b"\x89PNG garbage").unwrap_err();

    assert!(err.to_string().contains("not an mbox mailbox"), "{err}");
    let err = parse_bytes(
        Path::new("x.mbox"),
        SourceFormat::Mbox,
        b"From x Mon Mar  3 09:00:00 2025\n\x00\x01\x02binary\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("none of its 1 messages"), "{err}");
}

/// The mail fixtures, cut short and with bytes flipped, read as a message and as a mailbox:
/// a result every time, never a crash.
#[test]
fn damaged_mail_never_crashes_the_reader() {
    let dir = fixture("");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert!(names.len() >= 10, "fixtures missing from {}", dir.display());
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for path in names {
        let bytes = std::fs::read(&path).unwrap();
        let mut inputs: Vec<Vec<u8>> = [1, 40, 200, bytes.len() / 3, bytes.len() - 1]
            .iter()
            .map(|&cut| bytes[..cut.min(bytes.len())].to_vec())
            .collect();
        for _ in 0..40 {
            let mut flipped = bytes.clone();
            for _ in 0..3 {
                let at = (next() as usize) % flipped.len();
                flipped[at] = [b'\n', b'-', b'>', b'=', b':', b'"', 0xff][(next() % 7) as usize];
            }
            inputs.push(flipped);
        }
        for input in &inputs {
            for format in [SourceFormat::Eml, SourceFormat::Mbox] {
                let result = parse_bytes(Path::new("damaged"), format, input);
                assert!(
                    !matches!(result, Err(LoadError::ReaderCrashed { .. })),
                    "{} as {format} crashed on {:?}",
                    path.display(),
                    String::from_utf8_lossy(input)
                );
            }
        }
    }
}

#[test]
fn big5_subject_and_body_are_decoded() {
    let doc = eml(
        b"From: a@x.com\nSubject: =?Big5?B?t3zEs7BPv/0=?=\nContent-Type: text/plain; charset=big5\n\
          Content-Transfer-Encoding: base64\n\npFW2Z6RAtn23fA==\n",
    )
    .unwrap();

    assert_eq!(doc.title, "會議記錄");
    assert!(doc.text.ends_with("下週一開會"), "{}", doc.text);
}
