//! Retrieval modes over HTTP: `retrieval` on `/v1/search` and `/v1/ask`.

use crate::helpers::{cited_documents, scores, shared_app};
use serde_json::{Value, json};

fn results(body: &Value) -> &Vec<Value> {
    body["results"].as_array().expect("results")
}

#[tokio::test]
async fn every_retrieval_mode_is_selectable_per_search_request() {
    let app = shared_app().app();

    for mode in ["dense", "sparse", "hybrid"] {
        let (status, body) = app
            .post(
                "/v1/search",
                &json!({"query": "hotel cap per night", "top_k": 4, "retrieval": mode}),
            )
            .await;

        assert_eq!(status, 200, "{mode}: {body}");
        let results = results(&body);
        assert_eq!(results.len(), 4, "{mode}: {body}");
        assert_eq!(results[0]["document"], "travel.md", "{mode}: {body}");
        let scores = scores(results);
        assert!(
            scores.windows(2).all(|w| w[0] >= w[1]),
            "{mode}: {scores:?}"
        );
        for r in results {
            let cosine = r["cosine"].as_f64().unwrap();
            assert!((-1.0..=1.0).contains(&cosine), "{mode}: {r}");
        }
        let (top_score, top_cosine) = (scores[0], results[0]["cosine"].as_f64().unwrap());
        match mode {
            "dense" => assert!((top_score - top_cosine).abs() < 1e-6, "{body}"),
            // BM25 scores are not bounded by 1; RRF scores are at most 2/60.
            "sparse" => assert!(top_score > 1.0, "{body}"),
            _ => assert!(top_score > 0.0 && top_score <= 2.0 / 60.0 + 1e-6, "{body}"),
        }
    }
}

#[tokio::test]
async fn an_unknown_retrieval_mode_is_an_invalid_request() {
    let app = shared_app().app();

    let (status, body) = app
        .post(
            "/v1/search",
            &json!({"query": "hotel cap per night", "retrieval": "bm42"}),
        )
        .await;

    assert!(status == 400 || status == 422, "{status}: {body}");
    assert_eq!(body["error"]["code"], "invalid_request", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("hybrid"),
        "names the choices: {body}"
    );
}

#[tokio::test]
async fn ask_answers_in_every_mode_and_refuses_on_the_cosine() {
    let app = shared_app().app();

    for mode in ["dense", "sparse", "hybrid"] {
        let (status, answer) = app
            .post(
                "/v1/ask",
                &json!({"question": "How many vacation days do new employees get?", "retrieval": mode}),
            )
            .await;
        assert_eq!(status, 200, "{mode}: {answer}");
        assert_eq!(answer["mode"], "extractive", "{mode}: {answer}");
        let cited = cited_documents(&answer);
        assert!(
            cited.iter().any(|d| d == "leave-policy.md"),
            "{mode}: {answer}"
        );
        for c in answer["citations"].as_array().unwrap() {
            // Citation scores are cosines whatever the mode, at or above answer.min_score.
            let score = c["score"].as_f64().unwrap();
            assert!((0.2..=1.0).contains(&score), "{mode}: {c}");
        }

        // BM25 finds passages that share a word ("policy") with this question, but none is
        // close enough in meaning: refused in every mode.
        let (status, refused) = app
            .post(
                "/v1/ask",
                &json!({"question": "What is the policy on feeding the office goldfish on Mars?", "retrieval": mode}),
            )
            .await;
        assert_eq!(status, 200, "{mode}: {refused}");
        assert_eq!(refused["mode"], "not_found", "{mode}: {refused}");
    }
}
