use super::*;
use std::io::{Cursor, Write};

const W: &str = r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main""#;

fn docx(document_body: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let document = format!("<w:document {W}><w:body>{document_body}</w:body></w:document>");
    zip.start_file("word/document.xml", options).unwrap();
    zip.write_all(document.as_bytes()).unwrap();
    for (name, content) in extra {
        zip.start_file(*name, options).unwrap();
        zip.write_all(content.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    out.into_inner()
}

fn md(body: &str) -> String {
    to_markdown(&docx(body, &[]), &LoadLimits::default())
        .unwrap()
        .markdown
}

#[test]
fn heading_styles_without_a_styles_part_use_built_in_ids() {
    let out = md(
        r#"<w:p><w:pPr><w:pStyle w:val="Heading2"/></w:pPr><w:r><w:t>Scope</w:t></w:r></w:p><w:p><w:r><w:t xml:space="preserve">A &amp; B </w:t></w:r><w:r><w:tab/><w:t>c</w:t></w:r></w:p>"#,
    );

    assert_eq!(out, "## Scope\n\nA & B c");
}

#[test]
fn custom_styles_inherit_heading_levels_and_outline_levels_count() {
    let styles = r#"<w:styles xmlns:w="w">
        <w:style w:type="paragraph" w:styleId="berschrift2"><w:name w:val="heading 2"/></w:style>
        <w:style w:type="paragraph" w:styleId="PolicyHeading"><w:name w:val="Policy Heading"/><w:basedOn w:val="berschrift2"/><w:rPr><w:b/></w:rPr></w:style>
        <w:style w:type="paragraph" w:styleId="Chapter"><w:name w:val="Chapter"/><w:pPr><w:outlineLvl w:val="0"/></w:pPr></w:style>
        <w:style w:type="paragraph" w:styleId="Loop"><w:name w:val="Loop"/><w:basedOn w:val="Loop"/></w:style>
    </w:styles>"#;
    let para = |style: &str, text: &str| {
        format!(
            r#"<w:p><w:pPr><w:pStyle w:val="{style}"/></w:pPr><w:r><w:t>{text}</w:t></w:r></w:p>"#
        )
    };
    let body = [
        para("Chapter", "One"),
        para("PolicyHeading", "Scope"),
        para("Loop", "body"),
    ]
    .concat();

    let doc = to_markdown(
        &docx(&body, &[("word/styles.xml", styles)]),
        &LoadLimits::default(),
    )
    .unwrap();

    assert_eq!(doc.markdown, "# One\n\n## Scope\n\nbody");
}

#[test]
fn deleted_text_field_codes_and_fallback_copies_are_skipped() {
    let out = md(
        r#"<w:p><w:r><w:t>kept</w:t></w:r><w:del><w:r><w:delText>gone</w:delText></w:r></w:del><w:r><w:instrText>HYPERLINK "x"</w:instrText></w:r><mc:AlternateContent xmlns:mc="m"><mc:Choice><w:r><w:t> once</w:t></w:r></mc:Choice><mc:Fallback><w:r><w:t> twice</w:t></w:r></mc:Fallback></mc:AlternateContent></w:p>"#,
    );

    assert_eq!(out, "kept once");
}

#[test]
fn merged_cells_are_padded_and_nested_tables_flattened() {
    let out = md(
        r#"<w:tbl><w:tr><w:tc><w:tcPr><w:gridSpan w:val="2"/></w:tcPr><w:p><w:r><w:t>wide</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>c</w:t></w:r></w:p></w:tc></w:tr><w:tr><w:tc><w:tbl><w:tr><w:tc><w:p><w:r><w:t>in</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>ner</w:t></w:r></w:p></w:tc></w:tr></w:tbl></w:tc><w:tc><w:p><w:r><w:t>b</w:t></w:r></w:p></w:tc><w:tc><w:p/></w:tc></w:tr></w:tbl>"#,
    );

    assert_eq!(
        out,
        "| wide |  | c |\n| --- | --- | --- |\n| in ner; | b |  |"
    );
}

#[test]
fn numbered_lists_count_and_bullets_do_not() {
    let numbering = r#"<w:numbering xmlns:w="w"><w:abstractNum w:abstractNumId="0"><w:lvl w:ilvl="0"><w:numFmt w:val="decimal"/></w:lvl><w:lvl w:ilvl="1"><w:numFmt w:val="bullet"/></w:lvl></w:abstractNum><w:num w:numId="5"><w:abstractNumId w:val="0"/></w:num></w:numbering>"#;
    let item = |level: u32, text: &str| {
        format!(
            r#"<w:p><w:pPr><w:numPr><w:ilvl w:val="{level}"/><w:numId w:val="5"/></w:numPr></w:pPr><w:r><w:t>{text}</w:t></w:r></w:p>"#
        )
    };
    let body = [item(0, "one"), item(1, "dot"), item(0, "two")].concat();

    let doc = to_markdown(
        &docx(&body, &[("word/numbering.xml", numbering)]),
        &LoadLimits::default(),
    )
    .unwrap();

    assert_eq!(doc.markdown, "1. one\n  - dot\n2. two");
}

#[test]
fn a_zip_without_a_document_part_is_not_a_word_document() {
    let mut out = Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    zip.start_file("xl/workbook.xml", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.finish().unwrap();

    let err = to_markdown(&out.into_inner(), &LoadLimits::default()).unwrap_err();

    assert!(err.to_string().contains("not a Word document"), "{err}");
}

#[test]
fn malformed_xml_is_corrupt_not_a_panic() {
    let err = to_markdown(&docx("<w:p><w:r><w:t>open", &[]), &LoadLimits::default()).unwrap_err();

    assert!(matches!(err, LoadError::Corrupt { .. }), "{err}");
}
