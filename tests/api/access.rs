//! Access control: API keys, roles, access groups inside the index filter, and limits.
//!
//! Four documents about the same thing (an annual bonus), each readable by other groups and
//! each holding a codeword of its own, and a key for every combination of groups. Whatever a
//! key asks, searches or streams, nothing of a document outside its groups may come back: not
//! in the results, the sources, the citations, the answer, the stream, nor in the prompt the
//! chat model receives. The OpenAI-compatible facade (`/v1/chat/completions`, plain and
//! streamed) builds its own filter, so it is in the same matrix.

use crate::helpers::{
    ADMIN_TOKEN, QdrantServer, TestApp, spawn_app, spawn_app_with, use_fake_chat,
};
use crate::stream::stream_as;
use kb_config::Settings;
use kb_testkit::{FakeEngine, Route};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// (file, groups, codeword, effective date) of the test documents.
const DOCUMENTS: [(&str, &str, &str, &str); 4] = [
    ("bonus-hr.md", "[hr]", "OSPREY", "2025-01-01"),
    ("bonus-finance.md", "[finance]", "HERON", "2026-01-01"),
    ("bonus-joint.md", "[hr, finance]", "EGRET", "2026-06-30"),
    ("bonus-public.md", "[all]", "WREN", ""),
];

const QUESTIONS: [&str; 3] = [
    "When is the annual bonus paid to employees?",
    "What is the secret bonus codeword?",
    "How is the bonus approved and by whom?",
];

fn write_documents(dir: &std::path::Path) {
    for (file, groups, codeword, date) in DOCUMENTS {
        let team = file.trim_start_matches("bonus-").trim_end_matches(".md");
        let date = if date.is_empty() {
            String::new()
        } else {
            format!("effective_date: {date}\n")
        };
        std::fs::write(
            dir.join(file),
            format!(
                "---\ntitle: Annual Bonus ({team})\ngroups: {groups}\ntags: [bonus, {team}]\n{date}---\n\
                 # Annual Bonus\n\n\
                 The annual bonus for employees is paid in March and approved by the board. \
                 The {team} bonus codeword is {codeword}. Bonus questions go to the {team} desk.\n"
            ),
        )
        .unwrap();
    }
}

/// A reader key (or admin) and the documents it may read.
struct Key {
    label: &'static str,
    key: String,
    readable: BTreeSet<&'static str>,
}

impl Key {
    /// The codewords of the documents this key may read.
    fn readable_codewords(&self) -> BTreeSet<&'static str> {
        DOCUMENTS
            .iter()
            .filter(|(file, ..)| self.readable.contains(file))
            .map(|(_, _, codeword, _)| *codeword)
            .collect()
    }

    /// Fails unless the last prompt the engine was sent (by `what`) holds the codeword of every
    /// document this key may read and of no other.
    fn assert_last_prompt_is_readable(&self, engine: &FakeEngine, what: &str, context: &str) {
        let prompt = engine
            .last_request(Route::Chat)
            .expect("the model was asked")
            .to_string();
        assert_eq!(
            codewords(&prompt),
            self.readable_codewords(),
            "{context}: the prompt of {what} holds exactly the readable documents: {prompt}"
        );
    }

    /// Fails if `text` names a document or codeword this key may not read.
    fn assert_clean(&self, what: &str, text: &str) {
        for (file, _, codeword, _) in DOCUMENTS {
            if !self.readable.contains(file) {
                assert!(
                    !text.contains(codeword) && !text.contains(file),
                    "{}: {what} leaks {file}: {text}",
                    self.label
                );
            }
        }
    }
}

fn readable(files: &[&'static str]) -> BTreeSet<&'static str> {
    let mut set: BTreeSet<_> = files.iter().copied().collect();
    set.insert("bonus-public.md");
    set
}

/// Documents named in a list of results, sources or citations (the test's own files only).
fn documents(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|item| item["document"].as_str().unwrap().to_owned())
        .filter(|d| d.starts_with("bonus-"))
        .collect()
}

fn set(files: &BTreeSet<&'static str>) -> BTreeSet<String> {
    files.iter().map(|f| (*f).to_owned()).collect()
}

async fn keys_for_every_combination(app: &TestApp) -> Vec<Key> {
    let all = readable(&["bonus-hr.md", "bonus-finance.md", "bonus-joint.md"]);
    vec![
        Key {
            label: "reader without groups",
            key: app.create_key("nobody", "reader", ""),
            readable: readable(&[]),
        },
        Key {
            label: "reader of all only",
            key: app.create_key("public", "reader", "all"),
            readable: readable(&[]),
        },
        Key {
            label: "hr reader",
            key: app.create_key("hr", "reader", "hr"),
            readable: readable(&["bonus-hr.md", "bonus-joint.md"]),
        },
        Key {
            // Group names are compared exactly: `HR` is not `hr`.
            label: "HR (upper case) reader",
            key: app.create_key("upper-hr", "reader", "HR"),
            readable: readable(&[]),
        },
        Key {
            label: "finance reader",
            key: app.create_key("finance", "reader", "finance"),
            readable: readable(&["bonus-finance.md", "bonus-joint.md"]),
        },
        Key {
            label: "hr+finance reader",
            key: app.create_key("both", "reader", "hr,finance"),
            readable: all.clone(),
        },
        Key {
            label: "admin key",
            key: app.create_key("admin", "admin", ""),
            readable: all.clone(),
        },
        Key {
            label: "server admin token",
            key: ADMIN_TOKEN.to_owned(),
            readable: all,
        },
    ]
}

#[tokio::test]
async fn no_key_ever_sees_a_document_outside_its_groups() {
    access_matrix(|_| {}).await;
}

/// The same matrix with the access filter inside a Qdrant server's query (scripts/test.sh
/// starts the server).
#[tokio::test]
async fn no_key_ever_sees_a_document_outside_its_groups_on_a_qdrant_server() {
    let Some(server) = QdrantServer::from_env() else {
        return;
    };
    access_matrix(move |s| server.use_in(s)).await;
}

/// Every key asks, searches and streams every question through every route; `index` picks
/// the index backend.
async fn access_matrix(index: impl FnOnce(&mut Settings) + Send + 'static) {
    let engine = FakeEngine::builder().chat_model("fake-chat").start().await;
    let base_url = engine.base_url();
    let app = spawn_app_with(move |s| {
        use_fake_chat(s, base_url);
        s.server.rate_limit_per_minute = 0;
        s.answer.min_score = -1.0;
        index(s);
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    write_documents(dir.path());
    app.ingest(&[dir.path().to_path_buf()]).await;
    let keys = keys_for_every_combination(&app).await;

    for key in &keys {
        for question in QUESTIONS {
            let context = format!("{} asking {question:?}", key.label);

            let (status, search) = app
                .post_as(
                    &key.key,
                    "/v1/search",
                    &json!({"query": question, "top_k": 20}),
                )
                .await;
            assert_eq!(status, 200, "{context}: {search}");
            assert_eq!(
                documents(&search["results"]),
                set(&key.readable),
                "{context}: /v1/search returns exactly the readable documents"
            );
            key.assert_clean("/v1/search", &search.to_string());

            let (status, answer) = app
                .post_as(
                    &key.key,
                    "/v1/ask",
                    &json!({"question": question, "top_k": 20}),
                )
                .await;
            assert_eq!(status, 200, "{context}: {answer}");
            assert_eq!(answer["mode"], "generative", "{context}: {answer}");
            assert!(
                documents(&answer["citations"]).is_subset(&set(&key.readable)),
                "{context}: {answer}"
            );
            key.assert_clean("/v1/ask", &answer.to_string());
            key.assert_last_prompt_is_readable(&engine, "/v1/ask", &context);

            let (status, _, events) = stream_as(&app, &key.key, question).await;
            assert_eq!(status, 200, "{context}");
            let (name, sources) = &events[0];
            assert_eq!(name, "sources", "{context}: {events:?}");
            assert_eq!(
                documents(&sources["sources"]),
                set(&key.readable),
                "{context}: the stream's sources are exactly the readable documents"
            );
            for (name, data) in &events {
                key.assert_clean(&format!("stream event {name}"), &data.to_string());
            }
            key.assert_last_prompt_is_readable(&engine, "/v1/ask/stream", &context);

            let (status, completion) = complete_as(&app, &key.key, question).await;
            assert_eq!(status, 200, "{context}: {completion}");
            assert!(
                documents(&completion["sources"]).is_subset(&set(&key.readable)),
                "{context}: the facade's sources: {completion}"
            );
            key.assert_clean("/v1/chat/completions", &completion.to_string());
            key.assert_last_prompt_is_readable(&engine, "/v1/chat/completions", &context);

            let (status, chunks) = complete_stream_as(&app, &key.key, question).await;
            assert_eq!(status, 200, "{context}: {chunks:?}");
            assert_eq!(
                chunks.last(),
                Some(&Value::String("[DONE]".into())),
                "{context}: {chunks:?}"
            );
            let sources = chunks
                .iter()
                .find_map(|chunk| chunk.get("sources"))
                .unwrap_or_else(|| panic!("{context}: no chunk carries sources: {chunks:?}"));
            assert!(
                documents(sources).is_subset(&set(&key.readable)),
                "{context}: the facade stream's sources: {sources}"
            );
            for chunk in &chunks {
                key.assert_clean("/v1/chat/completions stream chunk", &chunk.to_string());
            }
            key.assert_last_prompt_is_readable(&engine, "the streamed facade", &context);
        }
    }
}

/// The test documents' codewords that `text` contains.
fn codewords(text: &str) -> BTreeSet<&'static str> {
    DOCUMENTS
        .iter()
        .map(|(_, _, codeword, _)| *codeword)
        .filter(|codeword| text.contains(codeword))
        .collect()
}

/// The question as an OpenAI chat completion (`stream: false`), with `credential`.
async fn complete_as(app: &TestApp, credential: &str, question: &str) -> (u16, Value) {
    app.post_as(
        credential,
        "/v1/chat/completions",
        &json!({"model": "kb", "messages": [{"role": "user", "content": question}]}),
    )
    .await
}

/// The question as a streamed OpenAI chat completion, with `credential`: the status and every
/// `data:` payload (JSON chunks, then the string `[DONE]`).
async fn complete_stream_as(app: &TestApp, credential: &str, question: &str) -> (u16, Vec<Value>) {
    let response = app
        .post_request("/v1/chat/completions", credential)
        .json(&json!({
            "model": "kb",
            "stream": true,
            "messages": [{"role": "user", "content": question}],
        }))
        .send()
        .await
        .expect("request failed");
    let status = response.status().as_u16();
    let body = response.text().await.expect("stream body");
    let chunks = body
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.into())))
        .collect();
    (status, chunks)
}

#[tokio::test]
async fn naming_a_forbidden_document_or_tag_does_not_bypass_groups() {
    let app = spawn_app_with(|s| s.server.rate_limit_per_minute = 0).await;
    let dir = tempfile::tempdir().unwrap();
    write_documents(dir.path());
    app.ingest(&[dir.path().to_path_buf()]).await;
    let finance = app.create_key("finance", "reader", "finance");

    let (status, body) = app
        .post_as(
            &finance,
            "/v1/search",
            &json!({"query": "bonus codeword OSPREY", "filter": {"documents": ["bonus-hr.md"]}}),
        )
        .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"], json!([]), "{body}");
    let (status, body) = app
        .post_as(
            &finance,
            "/v1/ask",
            &json!({"question": "What is the hr bonus codeword?", "filter": {"documents": ["bonus-hr.md"]}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["mode"], "not_found", "{body}");
    assert!(!body.to_string().contains("OSPREY"), "{body}");
    let (status, body) = app
        .post_as(
            &finance,
            "/v1/search",
            &json!({"query": "bonus codeword", "filter": {"tags": ["hr", "joint"]}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        documents(&body["results"]),
        set(&BTreeSet::from(["bonus-joint.md"])),
        "of the documents tagged hr or joint, finance may read only the joint one"
    );
}

#[tokio::test]
async fn search_and_ask_filter_by_tags_and_effective_date() {
    let app = spawn_app_with(|s| s.answer.min_score = -1.0).await;
    let dir = tempfile::tempdir().unwrap();
    write_documents(dir.path());
    app.ingest(&[dir.path().to_path_buf()]).await;
    let search = |filter: Value| {
        let app = &app;
        async move {
            let body = json!({"query": "annual bonus", "top_k": 20, "filter": filter});
            let (status, body) = app.post("/v1/search", &body).await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    let docs = |files: &[&'static str]| set(&files.iter().copied().collect());

    let tagged = search(json!({"tags": ["hr", "finance"]})).await;
    let from_2026 = search(json!({"effective_date": {"from": "2026-01-01"}})).await;
    let until_2026 = search(json!({"effective_date": {"to": "2026-01-01"}})).await;
    let both = search(json!({"tags": ["joint", "hr"], "effective_date": {"from": "2026-01-01", "to": "2026-12-31"}})).await;

    assert_eq!(
        documents(&tagged["results"]),
        docs(&["bonus-finance.md", "bonus-hr.md"])
    );
    assert_eq!(
        documents(&from_2026["results"]),
        docs(&["bonus-finance.md", "bonus-joint.md"])
    );
    assert_eq!(
        documents(&until_2026["results"]),
        docs(&["bonus-finance.md", "bonus-hr.md"])
    );
    assert_eq!(documents(&both["results"]), docs(&["bonus-joint.md"]));
    let hit = &both["results"][0];
    assert_eq!(
        (&hit["effective_date"], &hit["tags"]),
        (&json!("2026-06-30"), &json!(["bonus", "joint"]))
    );
    let (status, answer) = app
        .post(
            "/v1/ask",
            &json!({"question": "annual bonus?", "filter": {"tags": ["finance"]}}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        documents(&answer["citations"]),
        docs(&["bonus-finance.md"]),
        "{answer}"
    );

    for bad in [
        json!({"effective_date": {"from": "2026-02-01", "to": "2026-01-01"}}),
        json!({"effective_date": {"from": "1 March"}}),
        json!({"tag": ["hr"]}),
    ] {
        let (status, body) = app
            .post("/v1/search", &json!({"query": "bonus", "filter": bad}))
            .await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (400, &json!("invalid_request")),
            "{bad}: {body}"
        );
    }
}

#[tokio::test]
async fn credentials_are_checked_and_readers_stay_off_admin_routes() {
    let app = spawn_app().await;
    let reader = app.create_key("reader", "reader", "hr");
    let admin = app.create_key("admin", "admin", "");
    let search = json!({"query": "vacation"});

    for (credential, expected) in [
        (None, 401),
        (
            Some("kbk_0000000000000000000000000000000000000000000000000000000000000000"),
            401,
        ),
        (Some("not-a-key"), 401),
        (Some(reader.as_str()), 200),
        (Some(admin.as_str()), 200),
    ] {
        let mut request = app.client.post(format!("{}/v1/search", app.address));
        if let Some(credential) = credential {
            request = request.bearer_auth(credential);
        }
        let response = request.json(&search).send().await.unwrap();
        assert_eq!(response.status(), expected, "{credential:?}");
        if expected == 401 {
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "unauthorized", "{body}");
        }
    }

    for path in ["/v1/documents", "/v1/documents/leave-policy.md"] {
        let (status, body) = app.get(path, Some(reader.as_str())).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (403, &json!("forbidden")),
            "{path}"
        );
    }
    let (status, body) = app
        .post_as(&reader, "/v1/admin/ingest", &json!({"paths": ["/tmp"]}))
        .await;
    assert_eq!((status, &body["error"]["code"]), (403, &json!("forbidden")));
    let r = app
        .client
        .delete(format!("{}/v1/documents/x.md", app.address))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (status, body) = app.get("/v1/documents", Some(admin.as_str())).await;
    assert_eq!(status, 200, "{body}");
    for open in ["/healthz", "/readyz"] {
        assert_eq!(app.get(open, None).await.0, 200, "{open} needs no key");
    }
    assert!(app.metrics().await.contains("kb_http_requests_total"));
}

#[tokio::test]
async fn a_revoked_key_is_refused() {
    let app = spawn_app_with(|s| s.server.key_cache_secs = 0).await;
    let key = app.create_key("temp", "reader", "");
    let search = json!({"query": "vacation"});
    assert_eq!(app.post_as(&key, "/v1/search", &search).await.0, 200);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kb"))
        .arg("--data-dir")
        .arg(&app.data_dir)
        .env_remove("KB_CONFIG")
        .args(["keys", "revoke", "temp"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    let (status, body) = app.post_as(&key, "/v1/search", &search).await;
    assert_eq!(status, 401, "{body}");
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_with_retry_after() {
    let app = spawn_app_with(|s| {
        s.server.rate_limit_per_minute = 6;
        s.server.rate_limit_burst = 2;
    })
    .await;
    let key = app.create_key("busy", "reader", "");
    let other = app.create_key("calm", "reader", "");
    let search = json!({"query": "vacation"});

    assert_eq!(app.post_as(&key, "/v1/search", &search).await.0, 200);
    assert_eq!(app.post_as(&key, "/v1/search", &search).await.0, 200);
    let response = app
        .post_request("/v1/search", &key)
        .json(&search)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 429);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&wait), "{wait}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert_eq!(app.post_as(&other, "/v1/search", &search).await.0, 200);
    for _ in 0..4 {
        let (status, _) = app.post("/v1/search", &search).await;
        assert_eq!(status, 200, "the server's admin token is not limited");
    }
}

#[tokio::test]
async fn oversized_questions_and_bodies_are_refused_naming_the_limit() {
    let app = spawn_app_with(|s| s.server.max_body_bytes = 4096).await;

    let (status, body) = app
        .post("/v1/ask", &json!({"question": "why? ".repeat(500)}))
        .await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("over the limit of 2000"), "{message}");

    let (status, body) = app
        .post("/v1/ask", &json!({"question": "x".repeat(5000)}))
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("server.max_body_bytes")
    );
}

#[test]
fn ingest_flags_give_files_without_their_own_metadata_groups_tags_and_owner() {
    let data = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(
        docs.path().join("payroll.txt"),
        "Payroll runs on the 25th.\n",
    )
    .unwrap();
    std::fs::write(
        docs.path().join("canteen.txt"),
        "The canteen opens at noon.\n",
    )
    .unwrap();
    std::fs::write(
        docs.path().join("canteen.txt.meta.yaml"),
        "groups: [all]\ntags: [food]\neffective_date: 2026-05-01\n",
    )
    .unwrap();
    let kb = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kb"))
            .arg("--data-dir")
            .arg(data.path())
            .env(
                "KB__EMBEDDER__LOCAL__MODEL_DIR",
                crate::helpers::model_dir(),
            )
            .env_remove("KB_CONFIG")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "kb {args:?}: {out:?}");
        out.stdout
    };

    kb(&[
        "ingest",
        "--groups",
        "finance,hr",
        "--tags",
        "payroll",
        "--owner",
        "Finance Team",
        docs.path().to_str().unwrap(),
    ]);

    let listed: Value = serde_json::from_slice(&kb(&["docs", "list", "--json"])).unwrap();
    let doc = |id: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .unwrap_or_else(|| panic!("{id} not listed: {listed}"))
            .clone()
    };
    let payroll = doc("payroll.txt");
    assert_eq!(payroll["groups"], json!(["finance", "hr"]));
    assert_eq!(payroll["tags"], json!(["payroll"]));
    assert_eq!(payroll["owner"], "Finance Team");
    let canteen = doc("canteen.txt");
    assert_eq!(canteen["groups"], json!(["all"]), "the sidecar wins");
    assert_eq!(canteen["tags"], json!(["food"]));
    assert_eq!(canteen["effective_date"], "2026-05-01");
    assert_eq!(
        canteen["owner"], "Finance Team",
        "the flag fills what the sidecar leaves out"
    );
    assert_eq!(
        listed.as_array().unwrap().len(),
        2,
        "the sidecar is not a document"
    );
}
