//! Error responses: one JSON shape with stable codes.

use crate::helpers::shared_app;
use serde_json::json;

#[tokio::test]
async fn bad_requests_get_invalid_request_with_a_message_naming_the_field() {
    let app = shared_app().app();

    let (status, body) = app.post("/v1/ask", &json!({"question": "   "})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_request");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("question")
    );

    let (status, body) = app
        .post("/v1/ask", &json!({"question": "leave?", "top_k": 10_000}))
        .await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("top_k"));

    let (status, body) = app.post("/v1/ask", &json!({"query": "wrong field"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_request");

    let r = app
        .post_request("/v1/ask", crate::helpers::ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_request");
}

#[tokio::test]
async fn admin_routes_need_the_admin_token() {
    let app = shared_app().app();

    let (status, body) = app.get("/v1/documents", None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");

    let (status, _) = app.get("/v1/documents", Some("wrong")).await;
    assert_eq!(status, 401);

    let (status, body) = app
        .get("/v1/documents", Some(crate::helpers::ADMIN_TOKEN))
        .await;
    assert_eq!(status, 200);
    assert!(body["documents"].as_array().unwrap().len() >= 20);
}

#[tokio::test]
async fn unknown_routes_and_probes() {
    let app = shared_app().app();

    let (status, body) = app.get("/v1/nope", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");

    let (status, body) = app.get("/healthz", None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ready");
    assert!(
        body.get("points").is_none(),
        "an open probe carries no counts: {body}"
    );
    let (_, docs) = app
        .get("/v1/documents", Some(crate::helpers::ADMIN_TOKEN))
        .await;
    assert!(docs["index_points"].as_u64().unwrap() > 100, "{docs}");
}
