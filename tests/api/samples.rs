//! The sample handbook's company files beyond Markdown, asked about through the real server:
//! every answer cites the sheet and rows, the slide, the scanned page or the e-mail it came
//! from, and the cited passage can be opened where it is. A mixed folder of company files is
//! read almost whole, and what is not read is listed with a reason.

use crate::helpers::{
    ADMIN_TOKEN, ocr_installed, samples_dir, shared_app, spawn_app, workspace_root,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The citations of an answer to `question` that name `document`.
async fn citations_of(question: &str, document: &str) -> (Value, Vec<Value>) {
    let answer = shared_app().app().ask(question).await;
    let cited: Vec<Value> = answer["citations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["document"] == document)
        .cloned()
        .collect();
    assert!(
        !cited.is_empty(),
        "{question:?} does not cite {document}: {answer:#}"
    );
    (answer, cited)
}

/// Whether a citation's location spans `n` (a page, slide or row number).
fn spans(citation: &Value, n: u64) -> bool {
    let location = &citation["location"];
    location["first"].as_u64().is_some_and(|f| f <= n)
        && location["last"].as_u64().is_some_and(|l| n <= l)
}

#[tokio::test]
async fn a_budget_line_is_cited_by_its_sheet_and_row() {
    let (answer, cited) = citations_of(
        "What is the 2027 budget for Customer Success?",
        "finance/budget-2027.xlsx",
    )
    .await;

    // Row 5 of the sheet (header in row 1): the value, not a formula; the header repeated.
    assert!(
        answer["answer"].as_str().unwrap().contains("1,870,000"),
        "{answer:#}"
    );
    let row = cited
        .iter()
        .find(|c| spans(c, 5))
        .unwrap_or_else(|| panic!("no citation of row 5: {cited:#?}"));
    assert_eq!(row["location"]["kind"], "rows");
    assert_eq!(row["location"]["sheet"], "Department budgets");
    assert!(
        row["location_label"]
            .as_str()
            .unwrap()
            .starts_with("Sheet Department budgets, rows "),
        "{row}"
    );
    assert!(
        row["snippet"]
            .as_str()
            .unwrap()
            .contains("Department: Customer Success; Cost centre: CC-220"),
        "{row}"
    );

    // The passage opens where the citation says, with the same location.
    let n = row["chunk"].as_u64().unwrap();
    let (status, passage) = shared_app()
        .app()
        .get(
            &format!("/v1/documents/finance%2Fbudget-2027.xlsx/chunks/{n}"),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, 200, "{passage}");
    assert_eq!(passage["chunk"]["location"], row["location"], "{passage}");
}

#[tokio::test]
async fn the_total_is_the_formulas_saved_value() {
    let (answer, _) = citations_of(
        "What is the total of the department budgets for 2027?",
        "finance/budget-2027.xlsx",
    )
    .await;
    let text = answer["answer"].as_str().unwrap();
    assert!(text.contains("16,660,000"), "{answer:#}");
    assert!(!text.contains("SUM("), "{answer:#}");
}

#[tokio::test]
async fn a_slide_is_cited_by_its_number_and_hidden_slides_and_sheets_stay_out() {
    let (answer, cited) = citations_of(
        "When are the company wellbeing days in 2027?",
        "hr/all-hands-2026-q4.pptx",
    )
    .await;
    assert!(
        answer["answer"]
            .as_str()
            .unwrap()
            .contains("2 July and Friday 8 October 2027"),
        "{answer:#}"
    );
    // The deck's fifth slide (the hidden third one still counts in the numbering).
    assert!(cited.iter().any(|c| spans(c, 5)), "{cited:#?}");
    assert!(
        cited.iter().all(|c| c["location"]["kind"] == "slides"
            && c["location_label"].as_str().unwrap().starts_with("Slide")),
        "{cited:#?}"
    );

    // Left out, and said so.
    let notes = shared_app().first_ingest["notes"].to_string();
    assert!(
        notes.contains("hidden sheet Scenario drafts skipped"),
        "{notes}"
    );
    assert!(notes.contains("hidden slide 3"), "{notes}");
    let (status, found) = shared_app()
        .app()
        .post_as(
            ADMIN_TOKEN,
            "/v1/search",
            &json!({"query": "hiring freeze scenario reorganisation options board review", "top_k": 20}),
        )
        .await;
    assert_eq!(status, 200);
    for hit in found["results"].as_array().unwrap() {
        let text = hit["text"].as_str().unwrap();
        assert!(
            !text.contains("Hiring freeze") && !text.contains("reorganisation"),
            "{hit}"
        );
    }
}

#[tokio::test]
async fn an_e_mail_is_cited_with_its_sender_and_date() {
    let (answer, cited) = citations_of(
        "What is the new hotel cap for Paris in 2027?",
        "mail/2026-11-16-hotel-caps-2027.eml",
    )
    .await;
    assert!(
        answer["answer"].as_str().unwrap().contains("EUR 250"),
        "{answer:#}"
    );
    let message = &cited[0]["message"];
    assert_eq!(
        message["from"], "Finance Team <finance@kestrelwood.com>",
        "{message}"
    );
    assert!(
        message["date"].as_str().unwrap().starts_with("2026-11-16"),
        "{message}"
    );
    assert_eq!(
        message["subject"],
        "Hotel caps for 2027: Paris and Singapore move to EUR 250"
    );
}

#[tokio::test]
async fn scanned_notices_in_english_and_chinese_are_cited_by_page() {
    if !ocr_installed() {
        return;
    }
    let (answer, cited) = citations_of(
        "When is the next evacuation drill in the Berlin office?",
        "facilities/fire-safety-notice-berlin.png",
    )
    .await;
    assert!(
        answer["answer"].as_str().unwrap().contains("11 March 2027"),
        "{answer:#}"
    );
    assert_eq!(cited[0]["location_label"], "p. 1", "{cited:#?}");

    let (answer, cited) = citations_of(
        "2027年春节放假几天？",
        "zh/shanghai-spring-festival-notice.png",
    )
    .await;
    assert!(
        answer["answer"].as_str().unwrap().contains("共 7 天"),
        "{answer:#}"
    );
    assert_eq!(cited[0]["location_label"], "p. 1", "{cited:#?}");
}

/// Copy `from` into `to`, folders included, leaving out what matches `skip`.
fn copy_tree(from: &Path, to: &Path, skip: &dyn Fn(&Path) -> bool) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if skip(&path) {
            continue;
        }
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target, skip);
        } else {
            fs::copy(&path, &target).unwrap();
        }
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Files made broken or empty on purpose: they carry no text anyone could read. (The zip
/// bombs that inflate to 12 MB are read under the default budget; a truncated message keeps
/// the parts before the cut. Those carry text.)
const UNREADABLE: &[&str] = &[
    "empty.txt",
    "encrypted.docx",
    "encrypted.pdf",
    "truncated.pdf",
    "zip-bomb-lying-size.docx",
    "image-named.txt",
    "office/encrypted.odt",
    "office/truncated.pptx",
    "office/truncated.rtf",
    "office/deep-nesting.rtf",
    "mail/garbage.eml",
    "scans/noise.png",
    "sheets/renewals-encrypted.xlsx",
    "sheets/zip-bomb-lying-size.xlsx",
];

#[tokio::test]
async fn a_mixed_folder_of_company_files_is_read_and_every_file_is_accounted_for() {
    if !ocr_installed() {
        return;
    }
    // The handbook and every reader's fixtures: policies, mail, mailboxes, sheets, decks,
    // scans, PDFs with tables, and files broken in every way the readers know.
    let folder = tempfile::tempdir().unwrap();
    copy_tree(&samples_dir(), &folder.path().join("handbook"), &|_| false);
    copy_tree(
        &workspace_root().join("tests/fixtures"),
        &folder.path().join("project"),
        &|p| p.file_name().unwrap() == "eval-tiny" || p.extension().is_some_and(|e| e == "py"),
    );
    let files = files_under(folder.path());
    let app = spawn_app().await;

    let report = app.ingest(&[folder.path().to_path_buf()]).await;

    let relative = |p: &str| {
        Path::new(p)
            .strip_prefix(folder.path())
            .unwrap_or(Path::new(p))
            .to_string_lossy()
            .into_owned()
    };
    let failed: Vec<(String, String)> = report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                relative(f["path"].as_str().unwrap()),
                f["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let passed_over: BTreeSet<String> = report["passed_over"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| relative(p.as_str().unwrap()))
        .collect();
    let documents: BTreeSet<String> = report["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d[0].as_str().unwrap().to_owned())
        .collect();

    let mut carrying_text = 0;
    let mut read = 0;
    let mut wrong = Vec::new();
    for file in &files {
        let name = file
            .strip_prefix(folder.path())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let is_document = documents.contains(&name)
            || documents.iter().any(|d| d.starts_with(&format!("{name}#")));
        let failure = failed.iter().find(|(path, _)| *path == name);
        // No file in silence: each is a document, a failure with a reason, or listed as
        // passed over.
        assert!(
            is_document || failure.is_some() || passed_over.contains(&name),
            "{name} is not accounted for in {report:#}"
        );
        if let Some((_, reason)) = failure {
            assert!(reason.len() > 10, "{name}: reason {reason:?}");
        }
        let broken = UNREADABLE
            .iter()
            .any(|u| name.ends_with(&format!("project/{u}")));
        if broken {
            if is_document || failure.is_none() {
                wrong.push(format!(
                    "{name}: broken on purpose, yet not listed as failed"
                ));
            }
        } else {
            carrying_text += 1;
            if is_document {
                read += 1;
            } else {
                eprintln!("not read: {name}: {failure:?}");
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    let share = f64::from(read) / f64::from(carrying_text);
    eprintln!(
        "{read} of {carrying_text} files that carry text were read ({:.1}%); {} files in all",
        share * 100.0,
        files.len()
    );
    assert!(
        carrying_text >= 60,
        "the folder is too small: {carrying_text}"
    );
    assert!(
        share >= 0.95,
        "only {read} of {carrying_text} files were read"
    );
}
