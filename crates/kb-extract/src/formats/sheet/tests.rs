use super::*;
use kb_core::Mark;
use std::io::{Cursor, Write};
use std::path::Path;
use std::time::{Duration, Instant};

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/sheets")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_fixture(name: &str, format: SourceFormat) -> Read {
    read(format, &fixture(name), &LoadLimits::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The rows the marks name, in order, as `sheet:row`.
fn rows(marks: &[Mark]) -> Vec<String> {
    marks
        .iter()
        .map(|m| match &m.place {
            Place::Row { sheet, row } => format!("{sheet}:{row}"),
            other => panic!("not a row: {other:?}"),
        })
        .collect()
}

/// The text each mark starts, up to the next mark.
fn marked_text(read: &Read) -> Vec<&str> {
    read.marks
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let end = read.marks.get(i + 1).map_or(read.markdown.len(), |n| n.at);
            read.markdown[m.at..end].trim()
        })
        .collect()
}

fn limits(max_sheet_cells: u64) -> LoadLimits {
    LoadLimits {
        max_sheet_cells,
        ..LoadLimits::default()
    }
}

// --- building workbooks --------------------------------------------------------------------

const MAIN: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
const RELS: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";

use crate::formats::package::stored_zip as zip;

/// An XLSX whose sheets are `(name, state, sheetData inner XML)`.
fn xlsx(sheets: &[(&str, &str, &str)]) -> Vec<u8> {
    let mut entries = String::new();
    let mut rels = String::new();
    let mut parts: Vec<(String, String)> = Vec::new();
    for (i, (name, state, data)) in sheets.iter().enumerate() {
        let n = i + 1;
        entries.push_str(&format!(
            r#"<sheet name="{name}" sheetId="{n}" state="{state}" r:id="rId{n}"/>"#
        ));
        rels.push_str(&format!(
            r#"<Relationship Id="rId{n}" Type="{RELS}/worksheet" Target="worksheets/sheet{n}.xml"/>"#
        ));
        parts.push((
            format!("xl/worksheets/sheet{n}.xml"),
            format!(r#"<worksheet xmlns="{MAIN}"><sheetData>{data}</sheetData></worksheet>"#),
        ));
    }
    parts.push((
        "_rels/.rels".into(),
        format!(
            r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="{RELS}/officeDocument" Target="xl/workbook.xml"/></Relationships>"#
        ),
    ));
    parts.push((
        "xl/workbook.xml".into(),
        format!(
            r#"<workbook xmlns="{MAIN}" xmlns:r="{RELS}"><sheets>{entries}</sheets></workbook>"#
        ),
    ));
    parts.push((
        "xl/_rels/workbook.xml.rels".into(),
        format!(
            r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{rels}</Relationships>"#
        ),
    ));
    let parts: Vec<(&str, &[u8])> = parts
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_bytes()))
        .collect();
    zip(&parts)
}

fn inline(cell: &str, text: &str) -> String {
    format!(r#"<c r="{cell}" t="inlineStr"><is><t>{text}</t></is></c>"#)
}

/// An ODS whose content.xml body (inside `office:spreadsheet`) is `tables`.
fn ods(styles: &str, tables: &str, extra: &[(&str, &[u8])]) -> Vec<u8> {
    let content = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"><office:automatic-styles>{styles}</office:automatic-styles><office:body><office:spreadsheet>{tables}</office:spreadsheet></office:body></office:document-content>"#
    );
    let mut parts: Vec<(&str, &[u8])> = vec![
        (
            "mimetype",
            b"application/vnd.oasis.opendocument.spreadsheet".as_slice(),
        ),
        ("content.xml", content.as_bytes()),
    ];
    parts.extend_from_slice(extra);
    zip(&parts)
}

// --- fixtures ------------------------------------------------------------------------------

#[test]
fn xlsx_rows_become_records_with_cached_values_formats_and_merged_headers() {
    let read = read_fixture("renewals.xlsx", SourceFormat::Xlsx);

    assert_eq!(
        read.markdown,
        "# Renewals\n\n\
         Customer: Kestrel; Contact: Ana Ruiz; Contact: ana@kestrel.example; ARR: 412,000; \
         Renewal: 2025-12-31; Share: 12.5%; G: multi-year; Active: TRUE\n\n\
         Customer: Osprey; Contact: Li Wei; ARR: 98500.5; Renewal: 2026-01-15 14:30; \
         Share: 30.0%; Active: FALSE\n\n\
         Customer: Total; ARR: 510,501; Share: 0.3\n\n\
         # Notes\n\n\
         Board notes 2025\n\n\
         Date: 2025-03-14; Decision: Approve the Kestrel renewal at 412,000"
    );
    assert_eq!(
        rows(&read.marks),
        [
            "Renewals:1",
            "Renewals:2",
            "Renewals:4",
            "Renewals:5",
            "Notes:1",
            "Notes:4"
        ]
    );
    assert_eq!(
        marked_text(&read)[2].split(';').next(),
        Some("Customer: Osprey")
    );
    assert_eq!(read.notes, ["hidden sheet Archive skipped"]);
    assert_eq!(read.title.as_deref(), Some("Customer renewals 2025"));
    assert!(!read.markdown.contains("SUM"), "formulas are never read");
}

#[test]
fn ods_cells_give_values_spans_repeats_and_hidden_tables() {
    let read = read_fixture("budget.ods", SourceFormat::Ods);

    assert_eq!(
        read.markdown,
        "# Budget\n\n\
         Line: Travel; Amount: 12500; Amount: 12500 EUR; Share: 25%; Due: 2025-12-31; \
         Approved: TRUE\n\n\
         Line: Spare; Amount: 0.1\n\n\
         Line: Spare; Amount: 0.1\n\n\
         Line: Total; Amount: 12500.2; Due: 2026-01-15 14:30"
    );
    assert_eq!(
        rows(&read.marks),
        ["Budget:1", "Budget:2", "Budget:3", "Budget:4", "Budget:5"]
    );
    assert_eq!(read.notes, ["hidden sheet Old skipped"]);
}

#[test]
fn xls_sheets_are_read_with_dates_and_hidden_sheets_skipped() {
    let read = read_fixture("staff.xls", SourceFormat::Xls);

    assert_eq!(
        read.markdown,
        "# Staff\n\n\
         Name: Mara Olsen; Team: Finance; Started: 2019-04-01; Days off: 25\n\n\
         Name: Tom Berger; Team: Sales; Started: 2021-09-15; Days off: 22.5"
    );
    assert_eq!(rows(&read.marks), ["Staff:1", "Staff:2", "Staff:3"]);
    assert_eq!(read.notes, ["hidden sheet Payroll skipped"]);
}

#[test]
fn a_workbook_with_the_other_excel_format_inside_is_read_as_what_it_is() {
    let xls_named_xlsx = read_fixture("staff.xls", SourceFormat::Xlsx);
    let xlsx_named_xls = read_fixture("renewals.xlsx", SourceFormat::Xls);

    assert!(
        xls_named_xlsx
            .markdown
            .starts_with("# Staff\n\nName: Mara Olsen")
    );
    assert!(
        xlsx_named_xls
            .markdown
            .starts_with("# Renewals\n\nCustomer: Kestrel")
    );
}

#[test]
fn gbk_csv_with_chinese_headers_is_decoded_and_rows_repeat_them() {
    let read = read_fixture("suppliers-gbk.csv", SourceFormat::Csv);

    assert_eq!(
        read.markdown,
        "供应商: 华东精密; 城市: 上海; 年度合同额: 1,250,000\n\n\
         供应商: 北方物流; 城市: 天津; 年度合同额: 380000"
    );
    assert_eq!(rows(&read.marks), ["Sheet1:2", "Sheet1:3"]);
    assert!(read.notes.is_empty());
}

#[test]
fn semicolon_csv_keeps_decimal_commas_and_counts_rows_as_a_spreadsheet_does() {
    let read = read_fixture("prices-semicolon.csv", SourceFormat::Csv);

    assert_eq!(
        read.markdown,
        "Item: Espresso; Price: 2,40; Note: single shot no sugar\n\n\
         Item: Cappuccino; Price: 3,10"
    );
    // The quoted field's line break starts no row; the empty line is row 3.
    assert_eq!(rows(&read.marks), ["Sheet1:2", "Sheet1:4"]);
}

#[test]
fn tsv_rows_may_be_ragged_and_extra_columns_are_named_by_letter() {
    let read = read_fixture("inventory.tsv", SourceFormat::Tsv);

    assert_eq!(
        read.markdown,
        "Part: M6 bolt; Stock: 1200; Bin: A-03\n\n\
         Part: Washer\n\n\
         Part: Hex \"nut\"; Stock: 40; Bin: B-11; D: extra"
    );
    assert_eq!(rows(&read.marks), ["Sheet1:2", "Sheet1:3", "Sheet1:4"]);
}

// --- refused files -------------------------------------------------------------------------

#[test]
fn encrypted_xlsx_is_refused_as_encrypted() {
    let err = read(
        SourceFormat::Xlsx,
        &fixture("renewals-encrypted.xlsx"),
        &LoadLimits::default(),
    )
    .unwrap_err();

    assert!(
        matches!(
            err,
            LoadError::Encrypted {
                format: SourceFormat::Xlsx
            }
        ),
        "{err}"
    );
}

#[test]
fn encrypted_ods_is_refused_as_encrypted() {
    let manifest = br#"<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="content.xml"><manifest:encryption-data manifest:checksum-type="SHA1/1K"/></manifest:file-entry></manifest:manifest>"#;
    let bytes = ods("", "", &[("META-INF/manifest.xml", manifest)]);

    let err = read(SourceFormat::Ods, &bytes, &LoadLimits::default()).unwrap_err();

    assert!(matches!(err, LoadError::Encrypted { .. }), "{err}");
}

#[test]
fn xlsx_parts_that_inflate_past_the_limit_are_refused() {
    let filler = " ".repeat(2 * 1024 * 1024);
    let bytes = xlsx(&[(
        "Bomb",
        "visible",
        &format!("{}{filler}", inline("A1", "hello")),
    )]);
    let limits = LoadLimits {
        max_expanded_bytes: 1024 * 1024,
        ..LoadLimits::default()
    };

    let err = read(SourceFormat::Xlsx, &bytes, &limits).unwrap_err();

    assert!(
        matches!(
            err,
            LoadError::ExpandsTooMuch {
                format: SourceFormat::Xlsx,
                limit: 1_048_576
            }
        ),
        "{err}"
    );
}

#[test]
fn a_zip_that_lies_about_its_sizes_is_refused_as_corrupt() {
    let err = read(
        SourceFormat::Xlsx,
        &fixture("zip-bomb-lying-size.xlsx"),
        &LoadLimits::default(),
    )
    .unwrap_err();

    assert!(matches!(err, LoadError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("sheet1.xml"), "{err}");
}

#[test]
fn files_that_are_not_spreadsheets_are_corrupt_with_a_hint() {
    let err = read(SourceFormat::Xlsx, b"hello, world", &LoadLimits::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "XLSX file is corrupt or unreadable: it is neither an Excel workbook (.xlsx, a zip) nor \
         an Excel 97-2003 one (.xls); open it in a spreadsheet application and save it as .xlsx"
    );

    let err = read(
        SourceFormat::Ods,
        &zip(&[("a.txt", b"x")]),
        &LoadLimits::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("no content.xml"), "{err}");
}

#[test]
fn a_workbook_with_only_hidden_or_empty_sheets_has_no_text() {
    let bytes = xlsx(&[
        (
            "Secret",
            "hidden",
            &format!(r#"<row r="1">{}</row>"#, inline("A1", "x")),
        ),
        ("Empty", "visible", ""),
    ]);

    let err = read(SourceFormat::Xlsx, &bytes, &LoadLimits::default()).unwrap_err();

    assert!(matches!(err, LoadError::NoText), "{err}");
}

// --- values --------------------------------------------------------------------------------

#[test]
fn formulas_without_a_saved_value_are_empty_cells_and_errors_show_as_excel_shows_them() {
    let data = [
        r#"<row r="1">"#,
        &inline("A1", "Item"),
        &inline("B1", "Result"),
        r#"</row><row r="2">"#,
        &inline("A2", "never computed"),
        r#"<c r="B2"><f>SUM(C1:C9)</f></c></row><row r="3">"#,
        &inline("A3", "text result"),
        r#"<c r="B3" t="str"><f>"a"&amp;"b"</f><v>ab</v></c></row><row r="4">"#,
        &inline("A4", "error"),
        r#"<c r="B4" t="e"><f>1/0</f><v>#DIV/0!</v></c></row><row r="5">"#,
        &inline("A5", "bool"),
        r#"<c r="B5" t="b"><v>1</v></c></row>"#,
    ]
    .concat();
    let bytes = xlsx(&[("Calc", "visible", &data)]);

    let read = read(SourceFormat::Xlsx, &bytes, &LoadLimits::default()).unwrap();

    assert_eq!(
        read.markdown,
        "# Calc\n\nItem: never computed\n\nItem: text result; Result: ab\n\n\
         Item: error; Result: #DIV/0!\n\nItem: bool; Result: TRUE"
    );
}

#[test]
fn title_rows_header_only_sheets_and_unnamed_columns() {
    let mut titled = Grid::new("Plan");
    let mut budget = CellBudget::new(100);
    titled.put(0, 0, "Plan 2026", &mut budget);
    titled.put(0, 1, "Plan 2026", &mut budget);
    titled.put(2, 0, "Step", &mut budget);
    titled.put(2, 1, "Owner", &mut budget);
    titled.put(3, 0, "Hire", &mut budget);
    titled.put(3, 27, "  urgent\n now ", &mut budget);
    let mut header_only = Grid::new("Empty table");
    header_only.put(4, 1, "Name", &mut budget);
    header_only.put(4, 2, "Email", &mut budget);
    let mut one_column = Grid::new("List");
    one_column.put(0, 0, "Name", &mut budget);
    one_column.put(1, 0, "Ana", &mut budget);

    let mut w = MarkdownWriter::default();
    write_sheet(&mut w, &titled, true);
    write_sheet(&mut w, &header_only, true);
    write_sheet(&mut w, &one_column, true);
    let (markdown, marks) = w.finish_marked();

    assert_eq!(
        markdown,
        "# Plan\n\nPlan 2026\n\nStep: Hire; AB: urgent now\n\n\
         # Empty table\n\nName; Email\n\n# List\n\nName: Ana"
    );
    assert_eq!(
        rows(&marks),
        ["Plan:1", "Plan:4", "Empty table:5", "List:1", "List:2"]
    );
}

#[test]
fn merged_values_fill_their_region_in_rows_that_have_values() {
    let mut budget = CellBudget::new(100);
    let mut grid = Grid::new("Sales");
    grid.put(0, 0, "Quarter", &mut budget);
    grid.put(0, 1, "Region", &mut budget);
    grid.put(1, 0, "Q1", &mut budget);
    grid.put(1, 1, "North", &mut budget);
    grid.put(2, 1, "South", &mut budget);
    grid.merged = vec![
        Region {
            first: (1, 0),
            last: (9, 0),
        },
        // A region whose first cell is empty fills nothing.
        Region {
            first: (5, 5),
            last: (6, 6),
        },
    ];

    grid.fill_merged(&mut CellBudget::new(100));

    let mut w = MarkdownWriter::default();
    write_sheet(&mut w, &grid, false);
    assert_eq!(
        w.finish(),
        "Quarter: Q1; Region: North\n\nQuarter: Q1; Region: South"
    );
}

#[test]
fn column_letters_count_like_a_spreadsheet() {
    assert_eq!(column_letters(0), "A");
    assert_eq!(column_letters(25), "Z");
    assert_eq!(column_letters(26), "AA");
    assert_eq!(column_letters(701), "ZZ");
    assert_eq!(column_letters(702), "AAA");
    assert_eq!(column_letters(MAX_COLUMNS - 1), "XFD");
}

// --- bounds --------------------------------------------------------------------------------

#[test]
fn a_sheet_over_the_cell_limit_is_cut_at_a_whole_row_and_later_sheets_skipped() {
    let mut data = String::new();
    for r in 1..=1000 {
        data.push_str(&format!(
            r#"<row r="{r}"><c r="A{r}"><v>{r}</v></c><c r="B{r}"><v>{}</v></c><c r="C{r}"><v>1.5</v></c></row>"#,
            r * 2
        ));
    }
    let bytes = xlsx(&[("Log", "visible", &data), ("Later", "visible", &data)]);

    let read = read(SourceFormat::Xlsx, &bytes, &limits(100)).unwrap();

    // 100 cells: rows 1–33 whole (99 cells); row 34 is cut off, so it is left out.
    assert_eq!(
        read.notes,
        [
            "sheet Log: only the first 33 rows read (over 100 cells)",
            "sheet Later skipped: the file has more than 100 cells, the most kb reads from one file"
        ]
    );
    assert_eq!(read.marks.len(), 33);
    assert!(
        read.markdown.ends_with("1: 33; 2: 66; 1.5: 1.5"),
        "{}",
        read.markdown
    );
}

#[test]
fn ods_rows_and_cells_repeated_a_million_times_stay_within_the_cell_limit() {
    let tables = r#"<table:table table:name="Bomb"><table:table-row table:number-rows-repeated="1048576"><table:table-cell office:value-type="string" table:number-columns-repeated="16384"><text:p>x</text:p></table:table-cell></table:table-row></table:table><table:table table:name="After"><table:table-row><table:table-cell><text:p>y</text:p></table:table-cell></table:table-row></table:table>"#;
    let bytes = ods("", tables, &[]);
    let started = Instant::now();

    let read = read(SourceFormat::Ods, &bytes, &limits(50_000)).unwrap();

    assert!(started.elapsed() < Duration::from_secs(20));
    // 16,384 cells a row: three whole rows fit in 50,000; the header is one, so two records.
    assert_eq!(read.marks.len(), 3);
    assert_eq!(
        read.notes,
        [
            "sheet Bomb: only the first 3 rows read (over 50,000 cells)",
            "sheet After skipped: the file has more than 50,000 cells, the most kb reads from one file"
        ]
    );
}

#[test]
fn ods_entities_are_not_expanded() {
    let content = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><office:document-content xmlns:office="o" xmlns:table="t" xmlns:text="x"><office:body><office:spreadsheet><table:table table:name="T"><table:table-row><table:table-cell><text:p>a&lol3;b &amp; c</text:p></table:table-cell></table:table-row></table:table></office:spreadsheet></office:body></office:document-content>"#;
    let bytes = zip(&[("content.xml", content.as_bytes())]);

    let read = read(SourceFormat::Ods, &bytes, &LoadLimits::default()).unwrap();

    assert_eq!(read.markdown, "# T\n\nab & c");
}

#[test]
fn a_huge_csv_is_capped_at_the_cell_limit() {
    let mut csv = String::from("id,name\n");
    for i in 0..200_000 {
        csv.push_str(&format!("{i},item {i}\n"));
    }

    let read = read(SourceFormat::Csv, csv.as_bytes(), &limits(1001)).unwrap();

    assert_eq!(
        read.notes,
        ["sheet Sheet1: only the first 500 rows read (over 1,001 cells)"]
    );
    assert_eq!(read.marks.len(), 499);
}

/// A BIFF8 record.
fn biff(typ: u16, data: &[u8]) -> Vec<u8> {
    let mut out = typ.to_le_bytes().to_vec();
    out.extend_from_slice(&u16::try_from(data.len()).unwrap().to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// A NUMBER record for `(row, col)`.
fn number_record(row: u16, col: u16) -> Vec<u8> {
    let mut data = row.to_le_bytes().to_vec();
    data.extend_from_slice(&col.to_le_bytes());
    data.extend_from_slice(&[0, 0]);
    data.extend_from_slice(&1f64.to_le_bytes());
    biff(0x0203, &data)
}

/// A workbook stream with one sheet `name` holding cells at `cells`.
fn biff_workbook(name: &str, cells: &[(u16, u16)]) -> Vec<u8> {
    let bof = biff(0x0809, &[0x00, 0x06, 0x05, 0x00, 0, 0, 0, 0]);
    let eof = biff(0x000A, &[]);
    let bound_len = 4 + 8 + name.len();
    let sheet_at = u32::try_from(bof.len() + bound_len + eof.len()).unwrap();
    let mut bound = sheet_at.to_le_bytes().to_vec();
    bound.extend_from_slice(&[0, 0, u8::try_from(name.len()).unwrap(), 0]);
    bound.extend_from_slice(name.as_bytes());
    let mut stream = [bof.clone(), biff(0x0085, &bound), eof.clone()].concat();
    assert_eq!(stream.len(), sheet_at as usize);
    stream.extend_from_slice(&bof);
    for (row, col) in cells {
        stream.extend_from_slice(&number_record(*row, *col));
    }
    stream.extend_from_slice(&eof);
    stream
}

#[test]
fn xls_sheet_extents_come_from_the_cell_records() {
    let stream = biff_workbook("Wide", &[(3, 2), (9, 0), (5, 7)]);

    assert_eq!(
        workbook::sheet_extents(&stream).unwrap(),
        [workbook::Extent {
            name: "Wide".into(),
            cells: 7 * 8
        }]
    );
    // Truncated streams end the scan without a panic; a sheet past the end is an error.
    assert!(workbook::sheet_extents(&stream[..30]).is_err());
    for cut in 0..stream.len() {
        let _ = workbook::sheet_extents(&stream[..cut]);
    }
}

#[test]
fn an_xls_spanning_more_cells_than_it_may_allocate_is_refused_before_it_is_parsed() {
    let stream = biff_workbook("Corners", &[(0, 0), (65_535, 255)]);
    let mut file = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
    file.create_stream("/Workbook")
        .unwrap()
        .write_all(&stream)
        .unwrap();
    file.flush().unwrap();
    let bytes = file.into_inner().into_inner();

    let err = read(SourceFormat::Xls, &bytes, &LoadLimits::default()).unwrap_err();

    assert_eq!(
        err.to_string(),
        "XLS sheet Corners spans 16777216 cells (rows × columns), more than the 2000000 kb reads \
         from an Excel 97-2003 file; save it as .xlsx (kb then reads what fits) or split it"
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any bytes as CSV: a result, never a panic; marks in order, rows from 1.
        #[test]
        fn csv_never_panics_and_marks_rows_in_order(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            if let Ok(read) = read(SourceFormat::Csv, &bytes, &limits(500)) {
                prop_assert!(read.marks.windows(2).all(|w| w[0].at < w[1].at));
                for mark in &read.marks {
                    let Place::Row { row, .. } = &mark.place else { panic!("not a row") };
                    prop_assert!(*row >= 1);
                }
            }
        }

        /// A grid of plain words written as CSV comes back as records naming each header.
        #[test]
        fn csv_grids_come_back_as_records(
            grid in proptest::collection::vec(proptest::collection::vec("[a-z]{1,8}", 3), 2..20),
        ) {
            // Distinct headers: a header of one repeated word would read as a title.
            let mut grid = grid;
            for (i, h) in grid[0].iter_mut().enumerate() {
                h.push_str(&i.to_string());
            }
            let csv: String = grid.iter().map(|r| r.join(",") + "\r\n").collect();

            let read = read(SourceFormat::Csv, csv.as_bytes(), &LoadLimits::default()).unwrap();

            let expected: Vec<String> = grid[1..]
                .iter()
                .map(|r| {
                    r.iter()
                        .zip(&grid[0])
                        .map(|(v, h)| format!("{h}: {v}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .collect();
            prop_assert_eq!(read.markdown, expected.join("\n\n"));
            let expected_rows: Vec<String> = (2..=grid.len()).map(|r| format!("Sheet1:{r}")).collect();
            prop_assert_eq!(rows(&read.marks), expected_rows);
        }
    }
}

#[test]
fn chunks_are_located_by_sheet_and_rows_and_untitled_workbooks_by_file_name() {
    let doc = crate::parse_bytes(
        Path::new("hr/staff-list.xls"),
        SourceFormat::Xls,
        &fixture("staff.xls"),
    )
    .unwrap();
    let titled = crate::parse_bytes(
        Path::new("renewals.xlsx"),
        SourceFormat::Xlsx,
        &fixture("renewals.xlsx"),
    )
    .unwrap();

    assert_eq!(doc.title, "staff list");
    assert_eq!(doc.notes, ["hidden sheet Payroll skipped"]);
    assert_eq!(titled.title, "Customer renewals 2025");
    let notes_at = titled.text.find("# Notes").unwrap();
    let first_sheet = kb_core::locate(&titled.marks, 0, notes_at).unwrap();
    assert_eq!(first_sheet.to_string(), "Sheet Renewals, rows 1–5");
    let osprey = titled.text.find("Customer: Osprey").unwrap();
    let located = kb_core::locate(&titled.marks, osprey, osprey + 20).unwrap();
    assert_eq!(located.to_string(), "Sheet Renewals, row 4");
}

#[test]
fn damaged_fixtures_give_errors_not_panics() {
    let names = [
        "renewals.xlsx",
        "budget.ods",
        "staff.xls",
        "suppliers-gbk.csv",
        "prices-semicolon.csv",
        "inventory.tsv",
    ];
    let formats = [
        SourceFormat::Xlsx,
        SourceFormat::Xls,
        SourceFormat::Ods,
        SourceFormat::Csv,
        SourceFormat::Tsv,
    ];
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for name in names {
        let bytes = fixture(name);
        let mut inputs: Vec<Vec<u8>> = [1, 30, bytes.len() / 3, bytes.len() / 2, bytes.len() - 1]
            .iter()
            .map(|&cut| bytes[..cut].to_vec())
            .collect();
        for _ in 0..40 {
            let mut flipped = bytes.clone();
            for _ in 0..3 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = usize::try_from(state % bytes.len() as u64).unwrap();
                flipped[at] ^= u8::try_from(state >> 56).unwrap() | 1;
            }
            inputs.push(flipped);
        }
        for input in &inputs {
            for format in formats {
                // A panic here fails the test (in ingest it would be caught and reported as a
                // crashed reader).
                let _ = read(format, input, &limits(10_000));
            }
        }
    }
}
