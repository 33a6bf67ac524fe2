//! Questions with known answering documents, over the shared ingested handbook.

use crate::helpers::{cited_documents, samples_dir, scores, shared_app, test_settings};
use serde_json::{Value, json};
use std::path::Path;

/// `answer.min_score` of the settings the test servers run with.
pub fn min_score() -> f64 {
    f64::from(test_settings(Path::new("unused")).answer.min_score)
}

/// The source file of the sample document `document` (an id such as `hr/salary-bands.md`),
/// as it is on disk: the samples are UTF-8 Markdown and text, whose `byte_range`s index the file.
pub fn source_file(document: &str) -> String {
    let path = samples_dir().join(document);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Checks that `passage` (a citation or a search result) names a passage of its document:
/// the document's source file at `byte_range` is exactly the passage's text (`text_key`).
pub fn assert_byte_range_locates(passage: &Value, text_key: &str) {
    let document = passage["document"].as_str().expect("document");
    if !(document.ends_with(".md") || document.ends_with(".txt")) {
        // The byte range of a document made from a file (a spreadsheet, an e-mail, an
        // attachment inside one) indexes the text kb made of it, not the file.
        return;
    }
    let text = source_file(document);
    let range = passage["byte_range"].as_array().expect("byte_range");
    let (start, end) = (
        range[0].as_u64().unwrap() as usize,
        range[1].as_u64().unwrap() as usize,
    );
    let expected = passage[text_key].as_str().expect("passage text");
    assert!(
        start < end && end <= text.len(),
        "{document}: byte_range {start}..{end} outside its {} bytes: {passage}",
        text.len()
    );
    let at_range = text.get(start..end).unwrap_or_else(|| {
        panic!("{document}: byte_range {start}..{end} cuts a character: {passage}")
    });
    assert_eq!(
        at_range, expected,
        "{document}: the text at byte_range {start}..{end} is not the passage"
    );
}

/// (question, the documents that answer it). Phrased unlike the documents on purpose.
const QUESTIONS: &[(&str, &[&str])] = &[
    (
        "How many vacation days do new employees get?",
        &["leave-policy.md"],
    ),
    (
        "When do I need a doctor's note if I am sick?",
        &["leave-policy.md"],
    ),
    (
        "How long is paid parental leave for the primary caregiver?",
        &["parental-leave.md"],
    ),
    (
        "How many days a week can I work from home?",
        &["remote-work.md"],
    ),
    (
        "What is the maximum hotel price per night when travelling to Zurich?",
        &["travel.md"],
    ),
    (
        "Is alcohol reimbursed as a business expense?",
        &["expenses.md"],
    ),
    ("How often is my laptop replaced?", &["equipment.md"]),
    (
        "How long are application logs kept?",
        &["data-retention.md"],
    ),
    (
        "When are promotion decisions made?",
        &["performance-reviews.md", "hr/salary-bands.md"],
    ),
    (
        "How much does the company contribute to my pension?",
        &["benefits.md"],
    ),
    (
        "How long is the probation period for new hires?",
        &["onboarding.md"],
    ),
    (
        "What is the value limit for accepting gifts?",
        &["code-of-conduct.md"],
    ),
];

#[tokio::test]
async fn answers_cite_the_document_that_holds_the_answer() {
    let app = shared_app().app();
    let mut misses = Vec::new();
    for (question, holders) in QUESTIONS {
        let answer = app.ask(question).await;
        assert_eq!(answer["mode"], "extractive", "{answer}");
        for c in answer["citations"].as_array().unwrap() {
            assert_byte_range_locates(c, "snippet");
            let score = c["score"].as_f64().unwrap();
            assert!(score >= min_score(), "{question:?}: score {score}: {c}");
        }
        // Source [1], the passage ranked first for the question, holds the answer ...
        let (status, search) = app.post("/v1/search", &json!({ "query": question })).await;
        assert_eq!(status, 200, "{search}");
        let top = search["results"][0]["document"]
            .as_str()
            .unwrap_or_default();
        // ... and so does the first source the answer cites, not just any of them.
        let cited = cited_documents(&answer);
        let first_cited = cited.first().map(String::as_str).unwrap_or_default();
        if !holders.contains(&top) || !holders.contains(&first_cited) {
            misses.push(format!(
                "{question:?}: expected one of {holders:?} as [1] and first cited; [1] is {top}, cited {cited:?}; answer: {}",
                answer["answer"]
            ));
        }
    }
    assert!(misses.is_empty(), "wrong citations:\n{}", misses.join("\n"));
}

#[tokio::test]
async fn answers_carry_numbered_citations_with_passages() {
    let app = shared_app().app();

    let answer = app
        .ask("How many vacation days do new employees get?")
        .await;

    let text = answer["answer"].as_str().unwrap();
    assert!(text.contains("25"), "answer should state 25 days: {text}");
    let citations = answer["citations"].as_array().unwrap();
    assert_eq!(citations[0]["n"], 1, "the best source is cited: {answer}");
    assert_eq!(citations[0]["document"], "leave-policy.md", "{answer}");
    let min_score = min_score();
    for c in citations {
        let n = c["n"].as_u64().unwrap();
        assert!(text.contains(&format!("[{n}]")), "[{n}] not in {text}");
        assert!(!c["snippet"].as_str().unwrap().is_empty());
        assert_byte_range_locates(c, "snippet");
        assert!(
            c["path"]
                .as_str()
                .unwrap()
                .ends_with(c["document"].as_str().unwrap())
        );
        let score = c["score"].as_f64().unwrap();
        assert!(
            (min_score..=1.0).contains(&score),
            "score {score} below answer.min_score {min_score}: {c}"
        );
    }
    assert_eq!(answer["removed_citations"], 0);
    assert!(answer["timings"]["total_ms"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn out_of_scope_questions_are_refused_without_guessing() {
    let app = shared_app().app();
    for question in [
        "What is the boiling point of mercury in kelvin?",
        "Who won the football world cup in 1998?",
        "How do I bake sourdough bread?",
    ] {
        let answer = app.ask(question).await;
        assert_eq!(answer["mode"], "not_found", "{question}: {answer}");
        assert!(answer["citations"].as_array().unwrap().is_empty());
        assert!(
            answer["answer"]
                .as_str()
                .unwrap()
                .contains("could not find this in the knowledge base")
        );
    }
}

#[tokio::test]
async fn search_returns_ranked_chunks_and_honours_document_filters() {
    let app = shared_app().app();

    let (status, body) = app
        .post(
            "/v1/search",
            &json!({"query": "hotel cap per night", "top_k": 4}),
        )
        .await;

    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    // Two sample documents give hotel caps per night: the travel policy and the list of caps
    // attached to Finance's e-mail about the 2027 caps.
    let documents: Vec<&str> = results
        .iter()
        .map(|r| r["document"].as_str().unwrap())
        .collect();
    assert!(
        [
            "travel.md",
            "mail/2026-11-16-hotel-caps-2027.eml#attachment/hotel-caps-2027.csv"
        ]
        .contains(&documents[0]),
        "{documents:?}"
    );
    assert!(documents.contains(&"travel.md"), "{documents:?}");
    let scores = scores(results);
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "not ranked: {scores:?}"
    );

    let (status, body) = app
        .post(
            "/v1/search",
            &json!({"query": "hotel cap per night", "filter": {"documents": ["expenses.md"]}}),
        )
        .await;
    assert_eq!(status, 200);
    let results = body["results"].as_array().unwrap();
    assert!(!results.is_empty());
    assert!(results.iter().all(|r| r["document"] == "expenses.md"));
}

#[tokio::test]
async fn reingesting_unchanged_files_makes_no_embedding_calls() {
    let shared = shared_app();
    let first = &shared.first_ingest;
    assert!(first["stats"]["added"].as_u64().unwrap() >= 20, "{first}");
    assert!(first["stats"]["embedding_calls"].as_u64().unwrap() > 0);
    // Every sample is read; the scans only where OCR is installed (scripts/test.sh installs it).
    let failures = first["failures"].as_array().unwrap();
    assert!(
        failures.is_empty()
            || !crate::helpers::ocr_installed()
                && failures.iter().all(|f| f["reason"]
                    .as_str()
                    .unwrap()
                    .starts_with("OCR is not installed")),
        "{first}"
    );

    let again = shared.app().ingest(&[crate::helpers::samples_dir()]).await;

    assert_eq!(again["stats"]["embedding_calls"], 0, "{again}");
    assert_eq!(again["stats"]["added"], 0);
    assert_eq!(again["stats"]["updated"], 0);
    assert_eq!(again["stats"]["unchanged"], first["stats"]["added"]);
}
