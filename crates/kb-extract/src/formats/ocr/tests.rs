//! OCR of the scans in tests/fixtures/scans (made by tests/fixtures/make_scan_fixtures.py)
//! with the real Tesseract and pdftoppm, and of made-up files with stand-in programs (shell
//! scripts that answer like Tesseract) where the engine's reading is not what is tested.
//!
//! Tests that need the real engine are skipped with a printed reason when it is not
//! installed, and fail instead when `KB_REQUIRE_OCR=1` (or `KB_REQUIRE_MODEL=1`, which
//! scripts/test.sh sets) says it must be.

use super::OcrSettings;
use crate::{LoadError, LoadLimits, LoadedDocument, SourceFormat, parse_bytes_with_limits};
use kb_core::{Mark, Place};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn scan(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/scans")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whether the real engine, its languages and the renderer are here; panics if they must be.
fn ocr_installed() -> bool {
    let probe = super::Engine::probe(&OcrSettings::default())
        .and_then(|_| super::engine::check_renderer(&OcrSettings::default()));
    match probe {
        Ok(()) => true,
        Err(e) => {
            let required = ["KB_REQUIRE_OCR", "KB_REQUIRE_MODEL"]
                .iter()
                .any(|v| std::env::var(v).is_ok_and(|v| v == "1"));
            assert!(!required, "OCR tests must run but cannot: {e}");
            eprintln!("skipped: {e} (set KB_REQUIRE_OCR=1 to make this a failure)");
            false
        }
    }
}

fn limits_with(ocr: OcrSettings) -> LoadLimits {
    LoadLimits {
        ocr,
        ..LoadLimits::default()
    }
}

fn read(name: &str, ocr: OcrSettings) -> Result<LoadedDocument, LoadError> {
    let format = SourceFormat::from_path(Path::new(name)).expect("a fixture kb reads");
    parse_bytes_with_limits(Path::new(name), format, &scan(name), &limits_with(ocr))
}

/// The text from each mark to the next (trimmed: a mark is set before the blank line that
/// separates its block from the one before), by place.
fn by_place(doc: &LoadedDocument) -> Vec<(Place, &str)> {
    let mut out = Vec::new();
    for (i, mark) in doc.marks.iter().enumerate() {
        let end = doc.marks.get(i + 1).map_or(doc.text.len(), |m| m.at);
        out.push((mark.place.clone(), doc.text[mark.at..end].trim()));
    }
    out
}

/// A folder with stand-in programs; dropped at the end of the test.
struct Fakes {
    dir: tempfile::TempDir,
}

impl Fakes {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// An executable shell script named `name`.
    fn script(&self, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// A Tesseract that knows `languages` and reads the word `word` at confidence `conf` on
    /// every picture, counting the pictures it reads in the file `calls`.
    fn tesseract(&self, languages: &str, word: &str, conf: u32) -> PathBuf {
        let calls = self.calls_file();
        let langs: String = languages
            .split(' ')
            .map(|l| format!("echo {l}; "))
            .collect();
        self.script(
            "tesseract",
            &format!(
                r#"case "$1" in
  --version) echo "tesseract 5.3.0-stand-in"; exit 0;;
  --list-langs) echo 'List of available languages in "/stand-in/" (3):'; {langs}exit 0;;
esac
echo "$1" >> '{calls}'
printf 'level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n5\t1\t1\t1\t1\t1\t0\t0\t9\t9\t{conf}\t{word}\n' > "$2.tsv""#,
                calls = calls.display()
            ),
        )
    }

    /// A pdftoppm that writes an empty file where the page picture should be.
    fn pdftoppm(&self) -> PathBuf {
        self.script(
            "pdftoppm",
            r#"[ "$1" = -v ] && exit 0; for last; do :; done; : > "$last.png""#,
        )
    }

    /// The real Tesseract, with every picture it reads counted.
    fn counting_tesseract(&self) -> PathBuf {
        let calls = self.calls_file();
        self.script(
            "tesseract",
            &format!(
                r#"case "$1" in --version|--list-langs) ;; *) echo "$1" >> '{}';; esac
exec tesseract "$@""#,
                calls.display()
            ),
        )
    }

    fn calls_file(&self) -> PathBuf {
        self.dir.path().join("calls")
    }

    fn calls(&self) -> usize {
        std::fs::read_to_string(self.calls_file()).map_or(0, |s| s.lines().count())
    }
}

#[test]
fn an_english_policy_page_is_read_as_one_marked_page() {
    if !ocr_installed() {
        return;
    }
    let doc = read("leave-policy.png", OcrSettings::default()).unwrap();

    assert!(doc.text.contains("Annual Leave Policy"), "{}", doc.text);
    assert!(
        doc.text.contains("receive 25 days of paid annual leave"),
        "{}",
        doc.text
    );
    assert!(doc.text.contains("31 March"), "{}", doc.text);
    assert!(
        !doc.text.contains("# Page"),
        "one picture has no page heading"
    );
    assert_eq!(
        doc.marks,
        [Mark {
            at: 0,
            place: Place::Page(1)
        }]
    );
    assert_eq!(doc.title, "leave policy");
    assert_eq!(doc.source_format, SourceFormat::Image);
    assert!(doc.notes.is_empty(), "{:?}", doc.notes);
}

#[test]
fn a_chinese_page_is_read_without_spaces_between_characters() {
    if !ocr_installed() {
        return;
    }
    let doc = read("leave-policy-zh.png", OcrSettings::default()).unwrap();

    assert!(doc.text.contains("年假政策"), "{}", doc.text);
    assert!(doc.text.contains("二十五天带薪年假"), "{}", doc.text);
    assert!(doc.text.contains("部门经理批准"), "{}", doc.text);
}

#[test]
fn a_page_scanned_sideways_is_turned_and_read() {
    if !ocr_installed() {
        return;
    }
    let doc = read("travel-rules-rotated.jpg", OcrSettings::default()).unwrap();

    assert!(doc.text.contains("Travel Expense Rules"), "{}", doc.text);
    assert!(doc.text.contains("up to 180 EUR per night"), "{}", doc.text);
}

#[test]
fn a_scanned_pdf_is_read_page_by_page() {
    if !ocr_installed() {
        return;
    }
    let doc = read("board-minutes-scan.pdf", OcrSettings::default()).unwrap();

    let pages = by_place(&doc);
    assert_eq!(pages.len(), 2, "{}", doc.text);
    assert_eq!(pages[0].0, Place::Page(1));
    assert!(pages[0].1.starts_with("# Page 1\n\n"), "{}", pages[0].1);
    assert!(
        pages[0]
            .1
            .contains("budget of 1.2 million EUR for the Kestrel project"),
        "{}",
        pages[0].1
    );
    assert_eq!(pages[1].0, Place::Page(2));
    assert!(pages[1].1.starts_with("# Page 2\n\n"), "{}", pages[1].1);
    assert!(
        pages[1]
            .1
            .contains("Maria Chen will sign the supplier contract"),
        "{}",
        pages[1].1
    );
    assert!(doc.notes.is_empty(), "{:?}", doc.notes);
}

#[test]
fn a_pdf_keeps_its_text_pages_and_reads_its_scanned_ones() {
    if !ocr_installed() {
        return;
    }
    let doc = read("mixed-text-and-scan.pdf", OcrSettings::default()).unwrap();

    let pages = by_place(&doc);
    assert_eq!(pages.len(), 2, "{}", doc.text);
    assert_eq!(
        pages[0],
        (
            Place::Page(1),
            "# Page 1\n\nEmployment Contract\nThis contract starts on 1 July 2024."
        )
    );
    assert_eq!(pages[1].0, Place::Page(2));
    assert!(pages[1].1.contains("Signed Addendum"), "{}", pages[1].1);
    assert!(
        pages[1]
            .1
            .contains("notice period is extended to three months"),
        "{}",
        pages[1].1
    );
}

#[test]
fn each_page_of_a_multi_page_tiff_is_a_page() {
    if !ocr_installed() {
        return;
    }
    let doc = read("two-page-scan.tif", OcrSettings::default()).unwrap();

    let pages = by_place(&doc);
    assert_eq!(pages.len(), 2, "{}", doc.text);
    assert_eq!(pages[0].0, Place::Page(1));
    assert!(pages[0].1.starts_with("# Page 1\n\n"));
    assert!(pages[0].1.contains("Purchase order 4471"), "{}", pages[0].1);
    assert_eq!(pages[1].0, Place::Page(2));
    assert!(pages[1].1.contains("Hamburg warehouse"), "{}", pages[1].1);
    assert_eq!(doc.title, "two page scan", "not \"Page 1\"");
}

#[test]
fn noise_is_skipped_for_its_low_confidence() {
    if !ocr_installed() {
        return;
    }
    let err = read("noise.png", OcrSettings::default()).unwrap_err();

    let message = err.to_string();
    assert!(matches!(err, LoadError::OcrNoText { .. }), "{err:?}");
    assert!(
        message.starts_with("OCR found no text to keep: page 1: OCR confidence "),
        "{message}"
    );
    assert!(
        message.ends_with(" below 50 (ingest.ocr.min_confidence), skipped"),
        "{message}"
    );
}

#[test]
fn a_page_over_its_time_is_killed_and_noted() {
    if !ocr_installed() {
        return;
    }
    let hurried = OcrSettings {
        page_timeout: Duration::from_millis(5),
        ..OcrSettings::default()
    };
    let started = Instant::now();

    let image = read("leave-policy.png", hurried.clone()).unwrap_err();
    let pdf = read("board-minutes-scan.pdf", hurried).unwrap_err();

    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        image.to_string(),
        "OCR found no text to keep: page 1: OCR took longer than 0.005 s (ingest.ocr.page_timeout_secs), skipped"
    );
    assert_eq!(
        pdf.to_string(),
        "OCR found no text to keep: page 1: OCR took longer than 0.005 s (ingest.ocr.page_timeout_secs), skipped; \
         page 2: OCR took longer than 0.005 s (ingest.ocr.page_timeout_secs), skipped"
    );
}

#[test]
fn a_second_read_of_an_unchanged_file_comes_from_the_cache() {
    if !ocr_installed() {
        return;
    }
    let fakes = Fakes::new();
    let cache = tempfile::tempdir().unwrap();
    let settings = OcrSettings {
        cache_dir: Some(cache.path().to_owned()),
        tesseract: Some(fakes.counting_tesseract()),
        ..OcrSettings::default()
    };

    let first = read("mixed-text-and-scan.pdf", settings.clone()).unwrap();
    assert_eq!(fakes.calls(), 1, "the text page is not OCR'd");
    let again = read(
        "mixed-text-and-scan.pdf",
        OcrSettings {
            // The renderer is not needed either.
            pdftoppm: Some(fakes.dir.path().join("no-such-pdftoppm")),
            ..settings.clone()
        },
    )
    .unwrap();
    assert_eq!(fakes.calls(), 1, "the second read ran OCR");
    assert_eq!(again, first);

    let image = read("leave-policy.png", settings.clone()).unwrap();
    assert_eq!(read("leave-policy.png", settings.clone()).unwrap(), image);
    assert_eq!(fakes.calls(), 2);

    // Corrupt entries are read again, and replaced.
    for entry in walk(cache.path()) {
        std::fs::write(entry, b"{ not json").unwrap();
    }
    assert_eq!(read("leave-policy.png", settings.clone()).unwrap(), image);
    assert_eq!(fakes.calls(), 3);
    assert_eq!(read("leave-policy.png", settings).unwrap(), image);
    assert_eq!(fakes.calls(), 3);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn without_tesseract_or_pdftoppm_the_file_is_skipped_with_what_to_install() {
    let fakes = Fakes::new();
    let missing = OcrSettings {
        tesseract: Some(fakes.dir.path().join("no-such-tesseract")),
        ..OcrSettings::default()
    };
    let no_renderer = OcrSettings {
        tesseract: Some(fakes.tesseract("eng chi_sim osd", "x", 90)),
        pdftoppm: Some(fakes.dir.path().join("pdftoppm")),
        ..OcrSettings::default()
    };

    let image = read("leave-policy.png", missing.clone()).unwrap_err();
    let pdf = read("board-minutes-scan.pdf", missing.clone()).unwrap_err();
    let unrendered = read("board-minutes-scan.pdf", no_renderer.clone()).unwrap_err();
    let mixed = read("mixed-text-and-scan.pdf", missing).unwrap();
    let mixed_unrendered = read("mixed-text-and-scan.pdf", no_renderer).unwrap();

    let not_installed = "OCR is not installed (apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim tesseract-ocr-osd poppler-utils)";
    for err in [image, pdf, unrendered] {
        assert!(matches!(err, LoadError::OcrNotInstalled), "{err:?}");
        assert_eq!(err.to_string(), not_installed);
    }
    // A PDF with text pages of its own keeps them, and says what it could not read.
    for doc in [mixed, mixed_unrendered] {
        assert!(doc.text.contains("This contract starts on 1 July 2024."));
        assert!(!doc.text.contains("# Page 2"));
        assert_eq!(
            doc.notes,
            [format!(
                "page 2 has no text layer, not read: {not_installed}"
            )]
        );
    }
}

#[test]
fn a_language_that_is_not_installed_is_named_with_its_package() {
    let fakes = Fakes::new();
    let settings = OcrSettings {
        tesseract: Some(fakes.tesseract("eng osd", "x", 90)),
        ..OcrSettings::default()
    };

    let err = read("leave-policy.png", settings).unwrap_err();

    assert_eq!(
        err.to_string(),
        "OCR language chi_sim is not installed (apt-get install tesseract-ocr-chi-sim); install it or remove it from ingest.ocr.languages"
    );
}

#[test]
fn with_ocr_turned_off_scans_are_skipped_and_text_pages_kept() {
    let off = OcrSettings {
        enabled: false,
        ..OcrSettings::default()
    };

    let image = read("leave-policy.png", off.clone()).unwrap_err();
    let scanned = read("board-minutes-scan.pdf", off.clone()).unwrap_err();
    let mixed = read("mixed-text-and-scan.pdf", off).unwrap();

    assert_eq!(
        image.to_string(),
        "image needs OCR, which is turned off; set ingest.ocr.enabled = true to read it"
    );
    assert_eq!(
        scanned.to_string(),
        "PDF needs OCR, which is turned off; set ingest.ocr.enabled = true to read it"
    );
    assert!(mixed.text.contains("This contract starts on 1 July 2024."));
    assert!(!mixed.text.contains("# Page 2"));
    assert_eq!(
        mixed.notes,
        ["page 2 has no text layer, not read: OCR is turned off (ingest.ocr.enabled)"]
    );
}

#[test]
fn a_ten_thousand_page_scan_is_read_up_to_max_pages_and_the_rest_noted() {
    let fakes = Fakes::new();
    let settings = OcrSettings {
        tesseract: Some(fakes.tesseract("eng chi_sim osd", "scanned", 90)),
        pdftoppm: Some(fakes.pdftoppm()),
        max_pages: 3,
        ..OcrSettings::default()
    };
    let pdf = image_only_pdf(10_000);
    let started = Instant::now();

    let doc = parse_bytes_with_limits(
        Path::new("archive.pdf"),
        SourceFormat::Pdf,
        &pdf,
        &limits_with(settings),
    )
    .unwrap();

    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fakes.calls(), 3);
    assert_eq!(
        doc.text,
        "# Page 1\n\nscanned\n\n# Page 2\n\nscanned\n\n# Page 3\n\nscanned"
    );
    assert_eq!(
        doc.notes,
        [
            "pages 4–10000 have no text layer, not read: OCR reads at most 3 pages of a file (ingest.ocr.max_pages)"
        ]
    );
}

#[test]
fn a_tiff_with_more_pages_than_max_pages_is_refused_before_ocr() {
    let settings = OcrSettings {
        max_pages: 1,
        tesseract: Some(PathBuf::from("/no/such/tesseract")),
        ..OcrSettings::default()
    };

    let err = read("two-page-scan.tif", settings).unwrap_err();

    assert_eq!(
        err.to_string(),
        "image has 2 pages, more than OCR reads from one file (ingest.ocr.max_pages = 1); split it or raise the setting"
    );
}

#[test]
fn pictures_too_large_or_not_pictures_at_all_never_reach_the_engine() {
    let fakes = Fakes::new();
    let limits = limits_with(OcrSettings {
        tesseract: Some(fakes.tesseract("eng chi_sim osd", "x", 90)),
        ..OcrSettings::default()
    });
    let mut bomb = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    bomb.extend_from_slice(&100_000u32.to_be_bytes());
    bomb.extend_from_slice(&100_000u32.to_be_bytes());
    bomb.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 0]);
    let list = b"/etc/passwd\n/srv/kb/secret.png\n";

    let bomb = parse_bytes_with_limits(Path::new("a.png"), SourceFormat::Image, &bomb, &limits)
        .unwrap_err();
    let list = parse_bytes_with_limits(Path::new("a.png"), SourceFormat::Image, list, &limits)
        .unwrap_err();

    assert_eq!(
        bomb.to_string(),
        "image is 100000×100000 pixels, over the 50000000-pixel limit for OCR; scale it down and ingest again"
    );
    assert_eq!(
        list.to_string(),
        "image file is corrupt or unreadable: it is not a PNG, JPEG, WebP or TIFF picture"
    );
    assert_eq!(fakes.calls(), 0);
}

#[test]
fn a_huge_pdf_page_is_rendered_at_a_lower_resolution() {
    assert_eq!(super::render_dpi(595.0, 842.0), Some(300));
    // 200 × 200 inches: 35 dpi keeps it within 50 megapixels.
    assert_eq!(super::render_dpi(14_400.0, 14_400.0), Some(35));
    assert_eq!(super::render_dpi(1e9, 1e9), None);
    assert_eq!(super::render_dpi(f64::NAN, 1.0), Some(300));
}

/// A PDF of `pages` pages that each draw the same small image and nothing else.
fn image_only_pdf(pages: usize) -> Vec<u8> {
    use lopdf::{Document, Object, Stream, dictionary};
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let image_id = doc.add_object(Stream::new(
        dictionary! {
            "Type" => "XObject", "Subtype" => "Image", "Width" => 8, "Height" => 8,
            "ColorSpace" => "DeviceGray", "BitsPerComponent" => 8,
        },
        vec![255; 64],
    ));
    let content_id = doc.add_object(Stream::new(
        dictionary! {},
        b"q 100 0 0 100 0 0 cm /Im1 Do Q".to_vec(),
    ));
    let resources_id = doc.add_object(dictionary! {
        "XObject" => dictionary! { "Im1" => image_id },
    });
    let kids: Vec<Object> = (0..pages)
        .map(|_| {
            doc.add_object(dictionary! {
                "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
            })
            .into()
        })
        .collect();
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => kids, "Count" => pages as i64,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).unwrap();
    bytes
}

#[test]
fn a_file_read_in_part_is_a_new_version_once_more_of_it_can_be_read() {
    if !ocr_installed() {
        return;
    }
    let fakes = Fakes::new();
    let not_installed = OcrSettings {
        tesseract: Some(fakes.dir.path().join("no-such-tesseract")),
        ..OcrSettings::default()
    };
    let installed = OcrSettings {
        tesseract: Some(fakes.tesseract("eng chi_sim osd", "Addendum", 90)),
        ..OcrSettings::default()
    };

    let partial = read("mixed-text-and-scan.pdf", not_installed.clone()).unwrap();
    let partial_again = read("mixed-text-and-scan.pdf", not_installed).unwrap();
    let whole = read("mixed-text-and-scan.pdf", installed).unwrap();

    assert_eq!(partial.notes.len(), 1, "{:?}", partial.notes);
    assert_eq!(
        partial.content_hash, partial_again.content_hash,
        "the same partial read is the same version: an unchanged file"
    );
    assert!(whole.notes.is_empty(), "{:?}", whole.notes);
    assert!(whole.text.contains("Addendum"), "{}", whole.text);
    assert_ne!(
        whole.content_hash, partial.content_hash,
        "reading the page OCR left out makes a new version"
    );
    assert_eq!(
        whole.content_hash,
        kb_core::content_hash(&scan("mixed-text-and-scan.pdf")),
        "a file read whole is versioned by its bytes alone"
    );
}
