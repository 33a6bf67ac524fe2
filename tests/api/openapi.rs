//! `GET /openapi.json`: a valid OpenAPI 3.1 document that lists every route the router serves.

use crate::helpers::{shared_app, workspace_root};
use regex::Regex;
use serde_json::Value;
use std::collections::BTreeSet;

/// (method, path) of every `.route("PATH", get(..).post(..))` registered in kb-server's code.
fn routes_in_code() -> BTreeSet<(String, String)> {
    let route =
        Regex::new(r#"\.route\(\s*"([^"]+)",\s*((?:[\w:]+\([^()]*\)\s*\.?\s*)+),?\s*\)"#).unwrap();
    let method = Regex::new(r"(?:^|[.:])(get|post|put|patch|delete)\(").unwrap();
    let mut found = BTreeSet::new();
    let src = workspace_root().join("crates/kb-server/src");
    let mut files = vec![src.join("lib.rs")];
    for entry in std::fs::read_dir(src.join("routes")).unwrap() {
        files.push(entry.unwrap().path());
    }
    files.push(src.join("openapi.rs"));
    for file in files {
        let code = std::fs::read_to_string(&file).unwrap();
        for m in route.captures_iter(&code) {
            for verb in method.captures_iter(&m[2]) {
                found.insert((verb[1].to_owned(), m[1].to_owned()));
            }
        }
    }
    found
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.insert((method.clone(), path.clone()));
        }
    }
    out
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_and_lists_every_route() {
    // Arrange
    let app = shared_app().app();

    // Act
    let response = app
        .client
        .get(format!("{}/openapi.json", app.address))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();

    // Assert: OpenAPI 3.1, parsed by an independent implementation of the specification ...
    assert_eq!(status, 200);
    let spec = oas3::from_json(&text).unwrap_or_else(|e| panic!("not valid OpenAPI: {e}\n{text}"));
    assert!(spec.openapi.starts_with("3.1"), "{}", spec.openapi);
    let doc: Value = serde_json::from_str(&text).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path} documents no response"
            );
        }
    }
    // ... with every route registered in the code ...
    let in_code = routes_in_code();
    assert!(
        in_code.len() >= 16,
        "the route scan found too little: {in_code:?}"
    );
    let documented = documented(&doc);
    let missing: Vec<_> = in_code.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes missing from /openapi.json: {missing:?}"
    );
    // ... and no route that the router does not serve.
    let fallback = app
        .client
        .get(format!("{}/v1/no-such-route", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(
        fallback.status(),
        404,
        "the probe below relies on the fallback's 404"
    );
    for (method, path) in &documented {
        let url = format!("{}{}", app.address, path.replace("{id}", "no-such-doc.md"));
        let request = match method.as_str() {
            "get" => app.client.get(&url),
            "post" => app.client.post(&url),
            "delete" => app.client.delete(&url),
            other => panic!("unexpected method {other} for {path}"),
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_ne!(status, 405, "{method} {path}: not served");
        assert!(
            !(status == 404 && body["error"]["code"] == "not_found"),
            "{method} {path}: the router has no such route"
        );
    }
}
