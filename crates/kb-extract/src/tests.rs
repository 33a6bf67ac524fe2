//! Tests of loading: text offsets, titles, refused files, formats.

use super::*;

pub(super) fn md(bytes: &str) -> Result<LoadedDocument, LoadError> {
    parse_bytes(
        Path::new("leave.md"),
        SourceFormat::Markdown,
        bytes.as_bytes(),
    )
}

#[test]
fn the_text_of_a_utf8_markdown_or_text_file_says_where_it_starts_in_the_file() {
    let cases: &[(SourceFormat, &str, &str)] = &[
        (SourceFormat::Markdown, "# Leave\n\nBody.\n", "# Leave"),
        (
            SourceFormat::Markdown,
            "\u{feff}---\ntitle: Leave\n---\n\n# Leave\n\nBody.\n",
            "# Leave",
        ),
        (
            SourceFormat::Markdown,
            "---\r\ngroups: [hr]\r\n---\r\n\r\n# Leave\r\n\r\nBody.\r\n",
            "# Leave",
        ),
        (
            SourceFormat::Text,
            "\u{feff}\u{feff}Plain text.\n",
            "Plain text.",
        ),
    ];
    for (format, file, first) in cases {
        let doc = parse_bytes(Path::new("doc"), *format, file.as_bytes()).unwrap();
        let offset = doc.source_offset.expect("a UTF-8 file's text is its own");
        assert!(doc.text.starts_with(first), "{file:?}: {:?}", doc.text);
        assert_eq!(
            &file.as_bytes()[offset..offset + doc.text.len()],
            doc.text.as_bytes(),
            "{file:?}"
        );
    }
}

#[test]
fn converted_or_re_encoded_text_has_no_offset_in_the_file() {
    let (gbk, _, _) = encoding_rs::GBK.encode("年假规定：新员工每年十五天年假。\n");
    let html = b"<html><body><h1>Leave</h1><p>Body.</p></body></html>";
    for (format, bytes) in [
        (SourceFormat::Text, &gbk[..]),
        (SourceFormat::Html, &html[..]),
    ] {
        let doc = parse_bytes(Path::new("doc"), format, bytes).unwrap();
        assert_eq!(doc.source_offset, None, "{format}");
    }
}

#[test]
fn title_falls_back_to_first_heading_then_file_name() {
    assert_eq!(
        md("intro\n# Travel Policy\n").unwrap().title,
        "Travel Policy"
    );
    assert_eq!(md("just text").unwrap().title, "leave");
}

#[test]
fn empty_and_binary_files_are_rejected_with_reasons() {
    assert!(matches!(md("  \n"), Err(LoadError::Empty)));
    assert!(matches!(
        parse_bytes(Path::new("a.txt"), SourceFormat::Text, b"ab\0cd"),
        Err(LoadError::Binary)
    ));
}

#[test]
fn damaged_utf8_is_refused_with_the_offset_of_the_bad_bytes() {
    let text = "# Überstunden – Zuschläge für Nächte gelten in Köln, München und Düsseldorf\n";
    let bytes = [text.as_bytes(), b"\xff"].concat();

    let err = parse_bytes(Path::new("a.md"), SourceFormat::Markdown, &bytes).unwrap_err();

    assert_eq!(
        err.to_string(),
        format!(
            "not valid UTF-8 text (bad bytes at byte {}); fix the file or save it again as UTF-8",
            text.len()
        )
    );
}

#[test]
fn files_over_the_size_cap_are_refused_before_parsing() {
    let limits = LoadLimits::for_max_file_bytes(4);

    let err = parse_bytes_with_limits(Path::new("a.txt"), SourceFormat::Text, b"12345", &limits)
        .unwrap_err();

    assert!(matches!(err, LoadError::TooLarge { size: 5, limit: 4 }));
}

#[test]
fn every_format_has_an_extension_and_a_text_format() {
    for format in SourceFormat::ALL {
        let (ext, _) = SourceFormat::EXTENSIONS
            .iter()
            .find(|(_, f)| *f == format)
            .unwrap_or_else(|| panic!("{format} has no extension"));
        let name = format!("x.{}", ext.to_uppercase());
        assert_eq!(SourceFormat::from_path(Path::new(&name)), Some(format));
    }
    assert_eq!(
        DocumentFormat::from_path(Path::new("a.PDF")),
        Some(DocumentFormat::Markdown)
    );
    assert_eq!(SourceFormat::from_path(Path::new("old.doc")), None);
}

#[test]
fn unsupported_extensions_are_refused() {
    assert_eq!(DocumentFormat::from_path(Path::new("a.exe")), None);
    assert_eq!(
        DocumentFormat::from_path(Path::new("A.MD")),
        Some(DocumentFormat::Markdown)
    );
}

mod fixtures;

#[test]
fn an_unreadable_file_keeps_the_io_error_as_cause() {
    // Arrange
    let io = std::io::Error::other("permission denied");

    // Act
    let error = LoadError::from(io);

    // Assert
    let source = std::error::Error::source(&error).expect("the io error is the source");
    assert!(source.is::<std::io::Error>(), "{source:?}");
    assert_eq!(
        kb_core::error::chain(&error).to_string(),
        "cannot read file: permission denied"
    );
}

#[test]
fn the_rows_of_a_csv_file_are_located_in_a_sheet_named_after_the_file() {
    let csv = "Office,Room,Seats\nBerlin,Spree,12\nToronto,Humber,10\n";

    let doc = parse_bytes(
        Path::new("facilities/meeting-rooms.csv"),
        SourceFormat::Csv,
        csv.as_bytes(),
    )
    .unwrap();

    let at = doc.text.find("Humber").unwrap();
    assert_eq!(
        kb_core::locate(&doc.marks, at, at + 6),
        Some(kb_core::Location::Rows {
            sheet: "meeting-rooms".into(),
            first: 3,
            last: 3
        })
    );
}
