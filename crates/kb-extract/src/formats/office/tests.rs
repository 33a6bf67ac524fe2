//! The office readers on the committed fixtures (tests/fixtures/make_office_fixtures.py) and
//! on small files built here.

use super::*;
use kb_core::Mark;
use std::path::Path;
use std::time::{Duration, Instant};

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/office")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_fixture(format: SourceFormat, name: &str) -> Result<Read, LoadError> {
    read(format, &fixture(name), &LoadLimits::default())
}

use crate::formats::package::stored_zip as zip;

/// The text each mark points at (after the blank line that separates blocks), up to the end
/// of its line.
fn marked_lines(read: &Read) -> Vec<(Place, &str)> {
    read.marks
        .iter()
        .map(|Mark { at, place }| {
            let rest = read.markdown[*at..].trim_start_matches('\n');
            (place.clone(), rest.lines().next().unwrap_or(""))
        })
        .collect()
}

// --- PPTX ------------------------------------------------------------------------------------

#[test]
fn pptx_slides_follow_presentation_order_with_titles_bullets_tables_and_notes() {
    let deck = read_fixture(SourceFormat::Pptx, "quarterly-review.pptx").unwrap();

    assert_eq!(
        deck.markdown,
        "# Revenue grew 12%\n\n\
         - Kestrel renewed at 412,000 ARR\n  - Two-year term\n- Churn fell to 3%\n\n\
         ## Notes\n\nMention the Kestrel renewal first.\n\n\
         # Budget by region\n\n\
         Figures in thousands of euros\n\n\
         | Region | Budget |\n| --- | --- |\n| North | 1,200 |\n| South | 950 |\n\n\
         # Slide 4\n\nQuestions?\n\n## Notes\n\nLeave ten minutes."
    );
    assert_eq!(deck.title.as_deref(), Some("Quarterly Review Q3"));
}

#[test]
fn pptx_marks_name_each_slide_by_its_position_and_hidden_slides_leave_a_note() {
    let deck = read_fixture(SourceFormat::Pptx, "quarterly-review.pptx").unwrap();

    assert_eq!(
        marked_lines(&deck),
        [
            (Place::Slide(1), "# Revenue grew 12%"),
            (Place::Slide(2), "# Budget by region"),
            (Place::Slide(4), "# Slide 4"),
        ]
    );
    assert_eq!(deck.notes, ["hidden slide 3 (Draft layoffs plan) skipped"]);
    assert!(!deck.markdown.contains("layoffs"));
}

#[test]
fn a_loaded_deck_locates_a_passage_on_its_slide() {
    let doc = crate::parse_bytes(
        Path::new("decks/quarterly-review.pptx"),
        SourceFormat::Pptx,
        &fixture("quarterly-review.pptx"),
    )
    .unwrap();
    let start = doc.text.find("| North").unwrap();

    let location = kb_core::locate(&doc.marks, start, start + 20);

    assert_eq!(doc.title, "Quarterly Review Q3");
    assert_eq!(location.map(|l| l.to_string()).as_deref(), Some("Slide 2"));
}

const PRESENTATION: &str = r#"<p:presentation xmlns:p="p" xmlns:r="r"><p:sldIdLst><p:sldId id="256" r:id="rId1"/></p:sldIdLst></p:presentation>"#;
const PRESENTATION_RELS: &str = r#"<Relationships><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/slide" Target="slides/slide1.xml"/></Relationships>"#;

fn one_slide_deck(slide: &str) -> Vec<u8> {
    zip(&[
        ("ppt/presentation.xml", PRESENTATION),
        ("ppt/_rels/presentation.xml.rels", PRESENTATION_RELS),
        ("ppt/slides/slide1.xml", slide),
    ])
}

fn shape(ph: &str, off: Option<(i64, i64)>, paragraphs: &str) -> String {
    let xfrm = off.map_or(String::new(), |(x, y)| {
        format!(r#"<a:xfrm><a:off x="{x}" y="{y}"/><a:ext cx="1" cy="1"/></a:xfrm>"#)
    });
    format!(
        r#"<p:sp><p:nvSpPr><p:nvPr>{ph}</p:nvPr></p:nvSpPr><p:spPr>{xfrm}</p:spPr><p:txBody>{paragraphs}</p:txBody></p:sp>"#
    )
}

fn slide(shapes: &[String]) -> String {
    format!(
        r#"<p:sld xmlns:p="p" xmlns:a="a"><p:cSld><p:spTree>{}</p:spTree></p:cSld></p:sld>"#,
        shapes.concat()
    )
}

#[test]
fn pptx_shapes_read_top_to_bottom_then_left_to_right() {
    let p = |t: &str| format!("<a:p><a:r><a:t>{t}</a:t></a:r></a:p>");
    let xml = slide(&[
        shape("", Some((5_000_000, 3_000_000)), &p("bottom right")),
        shape("", Some((100_000, 3_000_000)), &p("bottom left")),
        shape("", Some((4_000_000, 1_000_000)), &p("top right")),
        shape(r#"<p:ph type="ctrTitle"/>"#, None, &p("Title")),
        shape("", Some((200_000, 1_050_000)), &p("top left")),
    ]);

    let deck = read(
        SourceFormat::Pptx,
        &one_slide_deck(&xml),
        &LoadLimits::default(),
    )
    .unwrap();

    assert_eq!(
        deck.markdown,
        "# Title\n\ntop left\n\ntop right\n\nbottom left\n\nbottom right"
    );
}

#[test]
fn pptx_bullets_follow_placeholder_defaults_and_paragraph_overrides() {
    let xml = slide(&[
        shape(
            r#"<p:ph idx="1"/>"#,
            None,
            r#"<a:p><a:r><a:t>bulleted by default</a:t></a:r></a:p><a:p><a:pPr><a:buNone/></a:pPr><a:r><a:t>turned off</a:t></a:r></a:p><a:p><a:pPr lvl="1"><a:buAutoNum type="arabicPeriod"/></a:pPr><a:r><a:t>one</a:t></a:r></a:p><a:p><a:pPr lvl="1"><a:buAutoNum type="arabicPeriod"/></a:pPr><a:r><a:t>two</a:t></a:r><a:br/><a:r><a:t>wrapped</a:t></a:r></a:p>"#,
        ),
        shape(
            "",
            None,
            r#"<a:p><a:r><a:t>text box</a:t></a:r></a:p><a:p><a:pPr><a:buChar char="•"/></a:pPr><a:r><a:t>asked for</a:t></a:r></a:p>"#,
        ),
    ]);

    let deck = read(
        SourceFormat::Pptx,
        &one_slide_deck(&xml),
        &LoadLimits::default(),
    )
    .unwrap();

    assert_eq!(
        deck.markdown,
        "# Slide 1\n\n- bulleted by default\n\nturned off\n\n  1. one\n  2. two wrapped\n\ntext box\n\n- asked for"
    );
}

#[test]
fn pptx_entities_defined_in_the_file_are_never_expanded() {
    let laughs: String = (1..=9)
        .map(|i| {
            let prev = if i == 1 {
                "lol".to_owned()
            } else {
                format!("&lol{};", i - 1)
            };
            format!(r#"<!ENTITY lol{i} "{}">"#, prev.repeat(10))
        })
        .collect();
    let body = slide(&[shape(
        "",
        None,
        "<a:p><a:r><a:t>a &lol9; b &amp; c &#x4e2d;</a:t></a:r></a:p>",
    )]);
    let xml = format!("<?xml version=\"1.0\"?><!DOCTYPE p:sld [{laughs}]>{body}");
    let started = Instant::now();

    let deck = read(
        SourceFormat::Pptx,
        &one_slide_deck(&xml),
        &LoadLimits::default(),
    )
    .unwrap();

    assert_eq!(deck.markdown, "# Slide 1\n\na b & c 中");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn pptx_zip_bomb_is_refused_within_the_expansion_budget() {
    let limits = LoadLimits::for_max_file_bytes(1024 * 1024);

    let err = read(SourceFormat::Pptx, &fixture("zip-bomb.pptx"), &limits).unwrap_err();

    assert!(
        matches!(
            err,
            LoadError::ExpandsTooMuch {
                format: SourceFormat::Pptx,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn truncated_pptx_is_corrupt() {
    let err = read_fixture(SourceFormat::Pptx, "truncated.pptx").unwrap_err();

    assert!(
        matches!(
            err,
            LoadError::Corrupt {
                format: SourceFormat::Pptx,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn pptx_without_a_presentation_part_says_what_it_is_not() {
    let err = read(
        SourceFormat::Pptx,
        &zip(&[("word/document.xml", "<w:document/>")]),
        &LoadLimits::default(),
    )
    .unwrap_err();

    assert!(
        err.to_string().contains("not a PowerPoint presentation"),
        "{err}"
    );
}

#[test]
fn an_old_binary_ppt_is_told_to_be_saved_as_pptx() {
    let mut ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1".to_vec();
    ole.extend([0u8; 512]);

    let err = read(SourceFormat::Pptx, &ole, &LoadLimits::default()).unwrap_err();

    assert!(err.to_string().contains("save it as .pptx"), "{err}");
}

#[test]
fn a_slide_listed_but_missing_keeps_the_numbering_and_leaves_a_note() {
    let presentation = r#"<p:presentation xmlns:p="p" xmlns:r="r"><p:sldIdLst><p:sldId id="256" r:id="rId9"/><p:sldId id="257" r:id="rId1"/></p:sldIdLst></p:presentation>"#;
    let bytes = zip(&[
        ("ppt/presentation.xml", presentation),
        ("ppt/_rels/presentation.xml.rels", PRESENTATION_RELS),
        (
            "ppt/slides/slide1.xml",
            &slide(&[shape("", None, "<a:p><a:r><a:t>here</a:t></a:r></a:p>")]),
        ),
    ]);

    let deck = read(SourceFormat::Pptx, &bytes, &LoadLimits::default()).unwrap();

    assert_eq!(deck.markdown, "# Slide 2\n\nhere");
    assert_eq!(
        deck.marks,
        [Mark {
            at: 0,
            place: Place::Slide(2)
        }]
    );
    assert_eq!(
        deck.notes,
        ["slide 1 is listed in the deck but missing from the file; skipped"]
    );
}

// --- ODT / ODP -------------------------------------------------------------------------------

#[test]
fn odt_headings_lists_tables_and_line_breaks() {
    let doc = read_fixture(SourceFormat::Odt, "onboarding.odt").unwrap();

    assert_eq!(
        doc.markdown,
        "# First week\n\nWelcome to the team. Your equipment:\n\n\
         - Laptop\n  - Charger\n- Badge\n\n\
         ## Accounts\n\n1. Set a password\n2. Enrol two-factor\n\n\
         # Contacts\n\n| Team | Person |\n| --- | --- |\n| IT | Dana Ortiz |\n| HR | Sam Lee |\n\n\
         Office hours: 9\nto 5"
    );
    assert_eq!(doc.title.as_deref(), Some("Onboarding guide"));
    assert!(doc.marks.is_empty());
}

#[test]
fn encrypted_odt_is_refused_as_encrypted() {
    let err = read_fixture(SourceFormat::Odt, "encrypted.odt").unwrap_err();

    assert!(
        matches!(
            err,
            LoadError::Encrypted {
                format: SourceFormat::Odt
            }
        ),
        "{err}"
    );
}

#[test]
fn odp_slides_have_titles_in_reading_order_notes_and_skip_hidden_pages() {
    let deck = read_fixture(SourceFormat::Odp, "roadmap.odp").unwrap();

    assert_eq!(
        deck.markdown,
        "# What ships next\n\n- Search in 2.4\n- Offline mode in 2.5\n\n\
         ## Notes\n\nDates are targets, not promises.\n\n\
         # Risks\n\nHiring is behind plan"
    );
    assert_eq!(
        marked_lines(&deck),
        [
            (Place::Slide(1), "# What ships next"),
            (Place::Slide(3), "# Risks")
        ]
    );
    assert_eq!(deck.notes, ["hidden slide 2 (Unannounced partner) skipped"]);
    assert_eq!(deck.title.as_deref(), Some("Product roadmap"));
}

const ODF_NS: &str = r#"xmlns:office="o" xmlns:text="t" xmlns:table="tb""#;

fn odt(body: &str) -> Vec<u8> {
    let content = format!(
        r#"<office:document-content {ODF_NS}><office:body><office:text>{body}</office:text></office:body></office:document-content>"#
    );
    zip(&[("content.xml", &content)])
}

#[test]
fn odt_repeated_cells_and_rows_are_capped_not_multiplied() {
    let body = r#"<table:table><table:table-row table:number-rows-repeated="1000000000"><table:table-cell table:number-columns-repeated="1000000000"><text:p>x</text:p></table:table-cell><table:table-cell table:number-columns-repeated="16384"/></table:table-row></table:table>"#;
    let started = Instant::now();

    let doc = read(SourceFormat::Odt, &odt(body), &LoadLimits::default()).unwrap();

    assert!(started.elapsed() < Duration::from_secs(10));
    // One row of 100,001 one-letter cells ("| x ") and its separator row.
    assert!(
        doc.markdown.len() < 2_000_000,
        "{} bytes",
        doc.markdown.len()
    );
    assert_eq!(
        doc.notes,
        ["repeated table rows and columns cut short: they would add more than 100000 cells"]
    );
}

#[test]
fn odt_comments_footnotes_and_generated_indexes_are_not_text() {
    let body = r#"<text:table-of-content><text:index-body><text:p>Intro .... 1</text:p></text:index-body></text:table-of-content><text:h text:outline-level="2">Intro</text:h><text:p>Body<text:note><text:note-citation>1</text:note-citation><text:note-body><text:p>a footnote</text:p></text:note-body></text:note><office:annotation><text:p>a comment</text:p></office:annotation> &amp; more</text:p>"#;

    let doc = read(SourceFormat::Odt, &odt(body), &LoadLimits::default()).unwrap();

    assert_eq!(doc.markdown, "## Intro\n\nBody & more");
}

#[test]
fn an_odf_spreadsheet_named_odt_says_what_it_is() {
    let content = format!(
        r#"<office:document-content {ODF_NS}><office:body><office:spreadsheet/></office:body></office:document-content>"#
    );

    let err = read(
        SourceFormat::Odt,
        &zip(&[("content.xml", &content)]),
        &LoadLimits::default(),
    )
    .unwrap_err();

    assert!(
        err.to_string().contains("OpenDocument spreadsheet"),
        "{err}"
    );
}

// --- RTF -------------------------------------------------------------------------------------

#[test]
fn rtf_paragraphs_headings_lists_and_tables_without_headers_pictures_or_hidden_text() {
    let doc = read_fixture(SourceFormat::Rtf, "leave-policy.rtf").unwrap();

    assert_eq!(
        doc.markdown,
        "# Annual leave\n\n\
         Employees accrue 25 days a year; the café closes on public holidays.\n\n\
         Carry-over is capped\u{2014}see below.\n\n\
         ## Requests\n\n\
         - Ask your manager two weeks ahead.\n- Record it in the portal.\n\n\
         Allowances by grade:\n\n\
         | Grade | Days |\n| --- | --- |\n| A | 25 |\n| B | 28 |\n\n\
         Questions go to hr@example.com."
    );
    assert_eq!(doc.title.as_deref(), Some("Leave policy 2025"));
}

#[test]
fn rtf_chinese_in_gbk_hex_escapes_and_unicode_escapes() {
    let doc = read_fixture(SourceFormat::Rtf, "commute-allowance-gbk.rtf").unwrap();

    assert_eq!(
        doc.markdown,
        "# 通勤补贴规定\n\n每月交通补贴为 500 元。\n\n报销需在月底前提交 (Arial, \\u escapes)."
    );
    assert_eq!(doc.title.as_deref(), Some("通勤补贴"));
}

fn rtf(body: &str) -> String {
    read(SourceFormat::Rtf, body.as_bytes(), &LoadLimits::default())
        .unwrap()
        .markdown
}

#[test]
fn rtf_unicode_fallbacks_follow_uc_and_surrogate_pairs_combine() {
    assert_eq!(rtf(r"{\rtf1 a\u233?b}"), "aéb");
    assert_eq!(rtf(r"{\rtf1\uc2 a\u233\'65\'3fb}"), "aéb");
    assert_eq!(rtf(r"{\rtf1\uc0 a\u-3913 b}"), "a\u{f0b7}b");
    assert_eq!(rtf(r"{\rtf1 \u-10179?\u-8704?!}"), "\u{1f600}!");
    // The fallback skip ends with the group.
    assert_eq!(rtf(r"{\rtf1\uc3 {x\u233}yz}"), "xéyz");
}

#[test]
fn rtf_binary_data_and_starred_destinations_are_skipped() {
    assert_eq!(
        rtf("{\\rtf1 a{\\*\\unknown hidden}{\\pict\\bin4 }{}\\}b}"),
        "ab"
    );
    assert_eq!(
        rtf(r"{\rtf1 {\field{\*\fldinst HYPERLINK x}{\fldrslt link}} text}"),
        "link text"
    );
}

#[test]
fn rtf_font_charsets_choose_the_code_page_of_hex_escapes() {
    let body = r"{\rtf1\ansi\ansicpg1252{\fonttbl{\f0 Arial;}{\f1\fcharset204 Cyr;}}\f0 caf\'e9 {\f1 \'cf\'f0\'e8\'e2\'e5\'f2}}";

    assert_eq!(rtf(body), "café Привет");
}

#[test]
fn rtf_text_without_a_font_uses_the_default_fonts_charset() {
    let body = r"{\rtf1\ansi\deff0{\fonttbl{\f0\fcharset134 SimSun;}}\'d6\'d0\'ce\'c4}";

    assert_eq!(rtf(body), "中文");
}

#[test]
fn rtf_deep_nesting_is_refused() {
    let err = read_fixture(SourceFormat::Rtf, "deep-nesting.rtf").unwrap_err();

    assert!(err.to_string().contains("nested more than"), "{err}");
}

#[test]
fn truncated_rtf_is_refused() {
    let err = read_fixture(SourceFormat::Rtf, "truncated.rtf").unwrap_err();

    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn a_file_that_is_not_rtf_is_corrupt() {
    let err = read(SourceFormat::Rtf, b"Dear team,", &LoadLimits::default()).unwrap_err();

    assert!(
        matches!(
            err,
            LoadError::Corrupt {
                format: SourceFormat::Rtf,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rtf_of_many_megabytes_of_control_words_is_read_in_linear_time() {
    let mut body = String::from(r"{\rtf1 ");
    for _ in 0..200_000 {
        body.push_str(r"{\b\i\fs24\cf1 word}\par ");
    }
    body.push('}');
    let started = Instant::now();

    let out = rtf(&body);

    assert_eq!(out.lines().filter(|l| *l == "word").count(), 200_000);
    assert!(started.elapsed() < Duration::from_secs(20));
}

proptest::proptest! {
    #[test]
    fn rtf_reader_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        let mut input = b"{\\rtf1 ".to_vec();
        input.extend(bytes);
        let _ = read(SourceFormat::Rtf, &input, &LoadLimits::default());
    }
}
