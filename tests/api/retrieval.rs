//! Retrieval modes over HTTP: `retrieval` on `/v1/search` and `/v1/ask`.

use crate::ask::{assert_byte_range_locates, min_score};
use crate::helpers::{
    ADMIN_TOKEN, TestApp, app_with_chat, cited_documents, scores, shared_app, test_settings,
};
use crate::stream::stream_body_as;
use kb_testkit::FakeEngine;
use serde_json::{Value, json};
use std::path::Path;

fn results(body: &Value) -> &Vec<Value> {
    body["results"].as_array().expect("results")
}

const HOTEL_CAPS_ATTACHMENT: &str =
    "mail/2026-11-16-hotel-caps-2027.eml#attachment/hotel-caps-2027.csv";

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
        // Two sample documents give hotel caps per night: the travel policy and the list of
        // caps attached to Finance's e-mail about the 2027 caps.
        let documents: Vec<&str> = results
            .iter()
            .map(|r| r["document"].as_str().unwrap())
            .collect();
        assert!(
            ["travel.md", HOTEL_CAPS_ATTACHMENT].contains(&documents[0]),
            "{mode}: {body}"
        );
        assert!(documents.contains(&"travel.md"), "{mode}: {body}");
        let scores = scores(results);
        assert!(
            scores.windows(2).all(|w| w[0] >= w[1]),
            "{mode}: {scores:?}"
        );
        for r in results {
            let cosine = r["cosine"].as_f64().unwrap();
            assert!((-1.0..=1.0).contains(&cosine), "{mode}: {r}");
            assert_byte_range_locates(r, "text");
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
        let min_score = min_score();
        for c in answer["citations"].as_array().unwrap() {
            // Citation scores are cosines whatever the mode, at or above answer.min_score.
            let score = c["score"].as_f64().unwrap();
            assert!(
                (min_score..=1.0).contains(&score),
                "{mode}: score {score}, answer.min_score {min_score}: {c}"
            );
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
        assert_eq!(refused["retrieval"], mode, "{refused}");
    }
}

/// A query the three modes rank differently over the sample handbook (found by trying them):
/// among the passages that reach `answer.min_score`, dense puts a `benefits.md` passage first
/// (closest in meaning), sparse a `performance-reviews.md` one (the rare words "GmbH" and
/// "Toronto" in one passage), hybrid a `travel.md` one (second in both lists, so first by RRF).
const MODE_QUERY: &str = "GmbH Berlin Toronto";
const MODE_TOPS: [(&str, &str); 3] = [
    ("dense", "benefits.md"),
    ("sparse", "performance-reviews.md"),
    ("hybrid", "travel.md"),
];

/// (document, chunk) of a citation, a source or a search result.
fn passage(v: &Value) -> (String, u64) {
    (
        v["document"].as_str().expect("document").to_owned(),
        v["chunk"].as_u64().expect("chunk"),
    )
}

/// The passages of a `mode` search for `query` that an answer may use (cosine at or above
/// `answer.min_score`), in the mode's order: what `/v1/ask` numbers `[1]`, `[2]`, ...
async fn answerable(app: &TestApp, query: &str, mode: &str) -> Vec<(String, u64)> {
    let (status, body) = app
        .post("/v1/search", &json!({"query": query, "retrieval": mode}))
        .await;
    assert_eq!(status, 200, "{mode}: {body}");
    let min_score = min_score();
    results(&body)
        .iter()
        .filter(|r| r["cosine"].as_f64().unwrap() >= min_score)
        .map(passage)
        .collect()
}

#[tokio::test]
async fn ask_and_its_stream_name_the_retrieval_mode_that_ran_and_rank_by_it() {
    let app = shared_app().app();

    for (mode, top) in MODE_TOPS {
        let expected = answerable(&app, MODE_QUERY, mode).await;
        assert_eq!(
            expected.first().map(|(d, _)| d.as_str()),
            Some(top),
            "{mode}: the sample handbook no longer ranks {MODE_QUERY:?} apart: {expected:?}"
        );
        let body = json!({"question": MODE_QUERY, "retrieval": mode});

        let (status, answer) = app.post("/v1/ask", &body).await;

        assert_eq!(status, 200, "{mode}: {answer}");
        assert_eq!(answer["retrieval"], mode, "{answer}");
        let citations = answer["citations"].as_array().unwrap();
        assert!(!citations.is_empty(), "{mode}: {answer}");
        for c in citations {
            let n = c["n"].as_u64().unwrap() as usize;
            assert_eq!(
                Some(&passage(c)),
                expected.get(n - 1),
                "{mode}: [{n}] is not passage {n} of the mode's ranking {expected:?}: {answer}"
            );
        }

        let (status, _, events) = stream_body_as(&app, ADMIN_TOKEN, &body).await;

        assert_eq!(status, 200, "{mode}: {events:?}");
        let (name, sources) = &events[0];
        assert_eq!(name, "sources", "{events:?}");
        assert_eq!(sources["retrieval"], mode, "{sources}");
        let listed: Vec<_> = sources["sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(passage)
            .collect();
        assert_eq!(listed, expected, "{mode}: sources in the mode's order");
        let (name, done) = events.last().unwrap();
        assert_eq!(name, "done", "{events:?}");
        assert_eq!(done["retrieval"], mode, "{done}");
        assert_eq!(done["citations"], answer["citations"], "{mode}");
    }
}

#[tokio::test]
async fn without_a_retrieval_mode_ask_runs_and_names_the_configured_default() {
    let app = shared_app().app();
    let default = test_settings(Path::new("unused"))
        .answer
        .retrieval
        .to_string();
    let expected = answerable(&app, MODE_QUERY, &default).await;

    let answer = app.ask(MODE_QUERY).await;
    let (status, _, events) =
        stream_body_as(&app, ADMIN_TOKEN, &json!({"question": MODE_QUERY})).await;

    assert_eq!(answer["retrieval"], default.as_str(), "{answer}");
    let first = &answer["citations"][0];
    assert_eq!(
        Some(&passage(first)),
        expected.get(first["n"].as_u64().unwrap() as usize - 1),
        "{answer}"
    );
    assert_eq!(status, 200);
    assert_eq!(events[0].1["retrieval"], default.as_str(), "{events:?}");
    assert_eq!(
        events.last().unwrap().1["retrieval"],
        default.as_str(),
        "{events:?}"
    );
}

#[tokio::test]
async fn generated_answers_name_the_retrieval_mode_too() {
    let engine = FakeEngine::builder().chat_model("fake-chat").start().await;
    let (app, _dir) = app_with_chat(&engine).await;

    for mode in ["dense", "sparse", "hybrid"] {
        let body = json!({"question": "Where is my locker?", "retrieval": mode});

        let (status, answer) = app.post("/v1/ask", &body).await;
        let (stream_status, _, events) = stream_body_as(&app, ADMIN_TOKEN, &body).await;

        assert_eq!(status, 200, "{mode}: {answer}");
        assert_eq!(answer["mode"], "generative", "{answer}");
        assert_eq!(answer["retrieval"], mode, "{answer}");
        assert_eq!(stream_status, 200);
        assert_eq!(events[0].0, "sources", "{events:?}");
        assert_eq!(events[0].1["retrieval"], mode, "{events:?}");
        let (name, done) = events.last().unwrap();
        assert_eq!(name, "done", "{events:?}");
        assert_eq!(done["mode"], "generative", "{done}");
        assert_eq!(done["retrieval"], mode, "{done}");
    }
}
