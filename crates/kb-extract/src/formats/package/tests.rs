use super::*;

fn limits(max_expanded_bytes: u64) -> LoadLimits {
    LoadLimits {
        max_expanded_bytes,
        ..LoadLimits::default()
    }
}

/// Sets the "encrypted" flag of every entry, in both the local and the central headers, as
/// a zip written with a password has it.
fn flag_encrypted(bytes: &mut [u8]) {
    for at in 0..bytes.len().saturating_sub(10) {
        match &bytes[at..at + 4] {
            b"PK\x03\x04" => bytes[at + 6] |= 1,
            b"PK\x01\x02" => bytes[at + 8] |= 1,
            _ => {}
        }
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn parts_are_read_as_text_without_a_byte_order_mark_and_missing_parts_are_none() {
    let bytes = stored_zip(&[
        ("word/document.xml", "\u{feff}<w:document/>".as_bytes()),
        ("docProps/core.xml", b"<core/>"),
    ]);
    let mut package = Package::open(&bytes, SourceFormat::Docx, &LoadLimits::default()).unwrap();

    assert_eq!(package.names(), ["word/document.xml", "docProps/core.xml"]);
    assert_eq!(
        package.read("word/document.xml").unwrap().as_deref(),
        Some("<w:document/>")
    );
    assert_eq!(package.read("word/styles.xml").unwrap(), None);
    let err = package
        .require("content.xml", "an OpenDocument file")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "DOCX file is corrupt or unreadable: it has no content.xml, so it is not an OpenDocument \
         file; save it again from its application"
    );
}

#[test]
fn a_file_that_is_not_a_zip_is_corrupt_and_names_its_format() {
    let err = Package::open(b"hello", SourceFormat::Ods, &LoadLimits::default())
        .err()
        .unwrap();
    assert!(
        err.to_string().starts_with(
            "ODS file is corrupt or unreadable: not a zip archive, so not an ODS file ("
        ),
        "{err}"
    );

    let err = Package::open(b"hello", SourceFormat::Docx, &LoadLimits::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("so not a DOCX file ("), "{err}");
}

#[test]
fn ole_files_are_refused_as_encrypted_packages_or_legacy_formats() {
    let mut legacy = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1".to_vec();
    legacy.extend_from_slice(&[0; 512]);
    let mut encrypted = legacy.clone();
    encrypted.extend("EncryptedPackage".encode_utf16().flat_map(u16::to_le_bytes));

    let open = |bytes: &[u8]| {
        Package::open_document(
            bytes,
            SourceFormat::Pptx,
            &LoadLimits::default(),
            "PowerPoint 97-2003 .ppt",
        )
        .err()
        .unwrap()
        .to_string()
    };

    assert_eq!(
        open(&legacy),
        "PPTX file is corrupt or unreadable: it is an old PowerPoint 97-2003 .ppt file; save it \
         as .pptx"
    );
    assert_eq!(
        open(&encrypted),
        "PPTX is encrypted; remove the password and ingest again"
    );
}

#[test]
fn encrypted_entries_are_refused_as_encrypted() {
    let mut bytes = stored_zip(&[("content.xml", b"<secret/>")]);
    flag_encrypted(&mut bytes);
    let mut package = Package::open(&bytes, SourceFormat::Odt, &LoadLimits::default()).unwrap();

    let err = package.read("content.xml").unwrap_err();

    assert_eq!(
        err.to_string(),
        "ODT is encrypted; remove the password and ingest again"
    );
    let err = package.inflate_all(|_| true).unwrap_err();
    assert!(matches!(err, LoadError::Encrypted { .. }), "{err}");
}

#[test]
fn one_budget_covers_all_the_parts_read() {
    let part = vec![b'x'; 600];
    let bytes = stored_zip(&[("a.xml", &part), ("b.xml", &part)]);
    let mut package = Package::open(&bytes, SourceFormat::Docx, &limits(1000)).unwrap();

    assert_eq!(
        package.read_bytes("a.xml").unwrap().map(|b| b.len()),
        Some(600)
    );
    let err = package.read_bytes("b.xml").unwrap_err();

    assert!(
        matches!(
            err,
            LoadError::ExpandsTooMuch {
                format: SourceFormat::Docx,
                limit: 1000
            }
        ),
        "{err}"
    );
}

#[test]
fn inflating_all_parts_counts_only_the_wanted_ones() {
    let part = vec![b'x'; 600];
    let bytes = stored_zip(&[("a.xml", &part), ("b.bin", &part), ("c.xml", &part)]);

    let mut package = Package::open(&bytes, SourceFormat::Xlsx, &limits(1300)).unwrap();
    package.inflate_all(|n| n.ends_with(".xml")).unwrap();

    let mut package = Package::open(&bytes, SourceFormat::Xlsx, &limits(1100)).unwrap();
    let err = package.inflate_all(|n| n.ends_with(".xml")).unwrap_err();
    assert!(
        matches!(err, LoadError::ExpandsTooMuch { limit: 1100, .. }),
        "{err}"
    );
    // Refused on the declared sizes, before anything was inflated.
    assert_eq!(package.left, 1100);
}

#[test]
fn a_streamed_part_is_read_whole_within_the_budget() {
    let bytes = stored_zip(&[("content.xml", b"<office:document-content/>")]);
    let mut package = Package::open(&bytes, SourceFormat::Ods, &LoadLimits::default()).unwrap();

    let mut part = package.part("content.xml").unwrap().unwrap();
    let mut text = String::new();
    let read = part
        .read_to_string(&mut text)
        .map_err(|e| corrupt(SourceFormat::Ods, e.to_string()));

    assert_eq!(part.check(read).unwrap(), 26);
    assert_eq!(text, "<office:document-content/>");
}

#[test]
fn a_stream_that_never_ends_is_cut_one_byte_past_the_budget() {
    // What an entry that lies about its size looks like from inside the zip reader, had it
    // not checked the declared size itself.
    let mut left = 10_000u64;
    let mut stream = Budgeted::new(io::repeat(b'x'), &mut left);
    let mut sink = Vec::new();

    let err = stream.read_to_end(&mut sink).unwrap_err();

    assert_eq!(err.kind(), io::ErrorKind::Other);
    assert!(stream.over);
    assert!(sink.len() <= 10_000, "{}", sink.len());
}

#[test]
fn zip_entries_that_lie_about_their_size_are_refused_within_the_budget() {
    // 12 MB of XML declared as small: whatever the budget, it is never inflated whole.
    let bytes = fixture("zip-bomb-lying-size.docx");
    for budget in [1024, 64 * 1024, 4 * 1024 * 1024] {
        let mut package = Package::open(&bytes, SourceFormat::Docx, &limits(budget)).unwrap();
        let names = package.names();

        let errors: Vec<LoadError> = names
            .iter()
            .filter_map(|name| package.read_bytes(name).err())
            .collect();

        assert!(
            errors.iter().any(|e| matches!(
                e,
                LoadError::Corrupt { .. } | LoadError::ExpandsTooMuch { .. }
            )),
            "budget {budget}: {errors:?}"
        );
    }
}
