//! Loading the real files in tests/fixtures (made by tests/fixtures/make_fixtures.py).

use crate::*;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

fn load(name: &str) -> Result<LoadedDocument, LoadError> {
    load_file(&fixture(name), 20 * 1024 * 1024)
}

const FIXTURES: &[&str] = &[
    "travel-policy.pdf",
    "scanned-memo.pdf",
    "encrypted.pdf",
    "owner-locked.pdf",
    "truncated.pdf",
    "expense-policy.docx",
    "encrypted.docx",
    "zip-bomb.docx",
    "zip-bomb-lying-size.docx",
    "intranet-page.html",
    "legacy-page-windows-1252.html",
    "commute-allowance-gbk.txt",
    "utf16le-bom.txt",
    "utf16be-bom.md",
    "cafe-menu-windows-1252.txt",
    "empty.txt",
    "image-named.txt",
];

fn headings(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with('#')).collect()
}

#[test]
fn pdf_text_layer_has_one_heading_per_page() {
    let doc = load("travel-policy.pdf").unwrap();

    assert_eq!(doc.source_format, SourceFormat::Pdf);
    assert_eq!(doc.format, DocumentFormat::Markdown);
    assert_eq!(doc.title, "Travel Policy");
    assert_eq!(doc.encoding, None);
    assert_eq!(headings(&doc.text), ["# Page 1", "# Page 2", "# Page 3"]);
    let page2 = &doc.text[doc.text.find("# Page 2").unwrap()..doc.text.find("# Page 3").unwrap()];
    assert!(page2.contains("Trips longer than five days need approval from a director."));
    // Embedded TrueType subset: text comes through its ToUnicode map.
    assert!(
        page2.contains("Café receipts under 20 € need no itemised bill."),
        "{page2}"
    );
    // A line of text that starts with '#' is not a heading.
    assert!(page2.contains("\\# of nights over the cap"), "{page2}");
}

#[test]
fn pdf_pages_are_marked_where_they_start() {
    let doc = load("travel-policy.pdf").unwrap();

    let pages: Vec<(usize, kb_core::Place)> =
        doc.marks.iter().map(|m| (m.at, m.place.clone())).collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    for (i, (at, place)) in pages.iter().enumerate() {
        assert_eq!(*place, kb_core::Place::Page(i as u32 + 1));
        let heading = format!("# Page {}", i + 1);
        assert_eq!(
            doc.text[*at..].trim_start().get(..heading.len()),
            Some(&*heading)
        );
    }
    let approval = doc.text.find("approval from a director").unwrap();
    assert_eq!(
        kb_core::locate(&doc.marks, approval, approval + 10),
        Some(kb_core::Location::Pages { first: 2, last: 2 })
    );
}

#[test]
fn pdf_with_an_owner_password_only_is_read() {
    let doc = load("owner-locked.pdf").unwrap();

    assert!(
        doc.text
            .contains("In an emergency call the 24-hour assistance line")
    );
}

#[test]
fn scanned_pdf_is_skipped_with_a_reason_when_ocr_is_off() {
    let limits = LoadLimits {
        ocr: OcrSettings::DISABLED,
        ..LoadLimits::default()
    };
    let err = load_file_with_limits(&fixture("scanned-memo.pdf"), &limits).unwrap_err();

    assert!(matches!(err, LoadError::OcrDisabled { .. }));
    assert_eq!(
        err.to_string(),
        "PDF needs OCR, which is turned off; set ingest.ocr.enabled = true to read it"
    );
}

#[test]
fn encrypted_pdf_and_docx_are_skipped_as_encrypted() {
    let pdf = load("encrypted.pdf").unwrap_err();
    let docx = load("encrypted.docx").unwrap_err();

    assert_eq!(
        pdf.to_string(),
        "PDF is encrypted; remove the password and ingest again"
    );
    assert!(matches!(
        docx,
        LoadError::Encrypted {
            format: SourceFormat::Docx
        }
    ));
}

#[test]
fn truncated_pdf_is_corrupt() {
    let err = load("truncated.pdf").unwrap_err();

    assert!(
        matches!(
            err,
            LoadError::Corrupt {
                format: SourceFormat::Pdf,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn docx_headings_lists_and_tables_become_markdown() {
    let doc = load("expense-policy.docx").unwrap();

    assert_eq!(doc.source_format, SourceFormat::Docx);
    assert_eq!(doc.title, "Expense Policy");
    assert_eq!(
        headings(&doc.text),
        [
            "# Expense Policy",
            "## What you can claim",
            "## How to claim",
            "## Limits"
        ]
    );
    assert!(
        doc.text
            .contains("- Train and economy flights\n- Hotels up to the city cap\n")
    );
    assert!(
        doc.text.contains(
            "1. Photograph the receipt\n2. Submit it within 30 days\n3. Wait for approval"
        )
    );
    assert!(doc.text.contains(
        "| City | Hotel cap | Meal rate |\n| --- | --- | --- |\n| Berlin | 180 EUR | 28 EUR |\n| Toronto | 240 CAD | 60 CAD |"
    ), "{}", doc.text);
    assert!(
        doc.text
            .ends_with("Questions go to finance@kestrelwood.example.")
    );
}

#[test]
fn docx_zip_bomb_is_refused_by_the_expansion_cap() {
    // 12 MB of XML in a 13 KB file: over the cap of a 256 KiB file limit (2.5 MiB).
    let limits = LoadLimits::for_max_file_bytes(256 * 1024);

    let honest = load_file_with_limits(&fixture("zip-bomb.docx"), &limits).unwrap_err();
    let lying = load_file_with_limits(&fixture("zip-bomb-lying-size.docx"), &limits).unwrap_err();

    assert_eq!(
        honest.to_string(),
        "DOCX expands to more than 2621440 bytes; refusing (zip bomb?); if the file is genuine, raise ingest.max_file_bytes"
    );
    // zip itself stops at the declared size: a lie is corruption.
    assert!(
        matches!(
            lying,
            LoadError::Corrupt {
                format: SourceFormat::Docx,
                ..
            }
        ),
        "{lying}"
    );
    assert!(
        lying
            .to_string()
            .contains("larger than its declared uncompressed size")
    );
}

#[test]
fn docx_that_expands_within_the_cap_loads() {
    let doc = load("zip-bomb.docx").unwrap();

    assert_eq!(doc.text, "Hello from the bomb");
}

#[test]
fn html_keeps_headings_lists_and_tables_and_drops_the_rest() {
    let doc = load("intranet-page.html").unwrap();

    assert_eq!(doc.source_format, SourceFormat::Html);
    assert_eq!(doc.title, "Remote Work Guide");
    assert_eq!(doc.encoding, Some("UTF-8"));
    assert_eq!(
        headings(&doc.text),
        [
            "# Remote Work Guide",
            "## Equipment",
            "## Allowances",
            "### How to apply"
        ]
    );
    assert!(
        doc.text
            .contains("- A monitor, on request\n  - 27-inch for developers")
    );
    assert!(doc.text.contains(
        "Monthly allowance by office\n\n| Office | Internet | Furniture |\n| --- | --- | --- |\n| Berlin | 30 EUR | 300 EUR once |\n| Toronto | 45 CAD | 400 CAD \\| once |"
    ), "{}", doc.text);
    assert!(doc.text.contains("1. Ask your manager\n2. File the form"));
    assert!(
        doc.text
            .contains("\\# of days is counted per calendar week.\nPublic holidays do not count.")
    );
    for dropped in [
        "Home",
        "All policies",
        "trackingId",
        "font-family",
        "injected",
        "Enable JavaScript",
    ] {
        assert!(!doc.text.contains(dropped), "{dropped} in {}", doc.text);
    }
}

#[test]
fn html_declared_legacy_charset_is_decoded() {
    let doc = load("legacy-page-windows-1252.html").unwrap();

    assert_eq!(doc.encoding, Some("windows-1252"));
    assert_eq!(doc.title, "Café rules");
    assert!(
        doc.text
            .contains("Crème brûlée costs 4 € – pay at the till.")
    );
}

#[test]
fn gbk_chinese_text_is_detected_and_decoded() {
    let doc = load("commute-allowance-gbk.txt").unwrap();

    assert_eq!(doc.encoding, Some("GBK"));
    assert_eq!(doc.title, "上海办公室通勤补贴");
    assert!(doc.text.contains("每月五百元的通勤补贴"));
}

#[test]
fn utf16_with_a_byte_order_mark_is_decoded() {
    let text = load("utf16le-bom.txt").unwrap();
    let markdown = load("utf16be-bom.md").unwrap();

    assert_eq!(text.encoding, Some("UTF-16LE"));
    assert!(text.text.starts_with("Parking rules\n"));
    assert!(text.text.contains("Überstunden"));
    assert_eq!(markdown.encoding, Some("UTF-16BE"));
    assert_eq!(markdown.title, "Bicycle Policy");
    assert_eq!(markdown.front_matter.groups, ["all"]);
    assert!(markdown.text.starts_with("# Bicycles"));
}

#[test]
fn windows_1252_text_is_detected_and_decoded() {
    let doc = load("cafe-menu-windows-1252.txt").unwrap();

    assert_eq!(doc.encoding, Some("windows-1252"));
    assert!(doc.text.contains("Crème brûlée – 4 €"));
}

#[test]
fn empty_and_binary_files_with_text_names_are_skipped() {
    assert!(matches!(load("empty.txt"), Err(LoadError::Empty)));
    assert!(matches!(load("image-named.txt"), Err(LoadError::Binary)));
}

#[test]
fn every_fixture_loaded_as_every_format_gives_a_result_not_a_panic() {
    for name in FIXTURES {
        let bytes = std::fs::read(fixture(name)).unwrap();
        for format in SourceFormat::ALL {
            let result = parse_bytes(Path::new("x"), format, &bytes);
            assert!(
                !matches!(result, Err(LoadError::ReaderCrashed { .. })),
                "{format}: {result:?}"
            );
        }
    }
}
