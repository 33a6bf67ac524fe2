//! Questions with known answering documents, over the shared ingested handbook.

use crate::helpers::{cited_documents, scores, shared_app};
use serde_json::json;

/// (question, document that answers it). Phrased unlike the documents on purpose.
const QUESTIONS: &[(&str, &str)] = &[
    (
        "How many vacation days do new employees get?",
        "leave-policy.md",
    ),
    (
        "When do I need a doctor's note if I am sick?",
        "leave-policy.md",
    ),
    (
        "How long is paid parental leave for the primary caregiver?",
        "parental-leave.md",
    ),
    (
        "How many days a week can I work from home?",
        "remote-work.md",
    ),
    (
        "What is the maximum hotel price per night when travelling to Zurich?",
        "travel.md",
    ),
    (
        "Is alcohol reimbursed as a business expense?",
        "expenses.md",
    ),
    ("How often is my laptop replaced?", "equipment.md"),
    ("How long are application logs kept?", "data-retention.md"),
    (
        "When are promotion decisions made?",
        "performance-reviews.md",
    ),
    (
        "How much does the company contribute to my pension?",
        "benefits.md",
    ),
    (
        "How long is the probation period for new hires?",
        "onboarding.md",
    ),
    (
        "What is the value limit for accepting gifts?",
        "code-of-conduct.md",
    ),
];

#[tokio::test]
async fn answers_cite_the_document_that_holds_the_answer() {
    let app = shared_app().app();
    let mut misses = Vec::new();
    for (question, expected) in QUESTIONS {
        let answer = app.ask(question).await;
        assert_eq!(answer["mode"], "extractive", "{answer}");
        let cited = cited_documents(&answer);
        if !cited.iter().any(|d| d == expected) {
            misses.push(format!(
                "{question:?}: expected {expected}, cited {cited:?}; answer: {}",
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
    assert!(!citations.is_empty());
    for c in citations {
        let n = c["n"].as_u64().unwrap();
        assert!(text.contains(&format!("[{n}]")), "[{n}] not in {text}");
        let range = c["byte_range"].as_array().unwrap();
        assert!(range[0].as_u64().unwrap() < range[1].as_u64().unwrap());
        assert!(!c["snippet"].as_str().unwrap().is_empty());
        assert!(
            c["path"]
                .as_str()
                .unwrap()
                .ends_with(c["document"].as_str().unwrap())
        );
        assert!(c["score"].as_f64().unwrap() > 0.0);
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
    assert_eq!(results[0]["document"], "travel.md");
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
    assert!(first["failures"].as_array().unwrap().is_empty(), "{first}");

    let again = shared.app().ingest(&[crate::helpers::samples_dir()]).await;

    assert_eq!(again["stats"]["embedding_calls"], 0, "{again}");
    assert_eq!(again["stats"]["added"], 0);
    assert_eq!(again["stats"]["updated"], 0);
    assert_eq!(again["stats"]["unchanged"], first["stats"]["added"]);
}
