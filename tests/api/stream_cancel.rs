//! A client that leaves `POST /v1/ask/stream` mid-answer cancels the engine call: the server
//! drops the chat stream, the engine sees its connection closed and nothing more is pulled.

use crate::helpers::app_with_chat;
use kb_testkit::FakeEngine;
use serde_json::json;
use std::time::{Duration, Instant};

/// Wait until `done` holds, up to `limit`.
async fn eventually(limit: Duration, done: impl Fn() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}

#[tokio::test]
async fn a_client_leaving_mid_stream_cancels_the_engine_call() {
    // Arrange: a long answer streamed slowly (one word each 40 ms: about 24 s in all).
    let engine = FakeEngine::builder().chat_model("fake-chat").start().await;
    let (app, _dir) = app_with_chat(&engine).await;
    let words = 600;
    engine.set_chat_reply(Some(
        "Lockers are on the second floor [1]. ".repeat(words / 7),
    ));
    engine.set_stream_chunk_delay(Duration::from_millis(40));
    let mut response = app
        .post_request("/v1/ask/stream", crate::helpers::ADMIN_TOKEN)
        .json(&json!({"question": "Where is my locker?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut seen = String::new();
    while !seen.contains("event: delta") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("no delta within 10 s")
            .unwrap()
            .expect("stream ended before the first delta");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        engine.streamed_chunks() < 20,
        "{}",
        engine.streamed_chunks()
    );

    // Act: the client goes away.
    drop(response);

    // Assert: the engine saw its stream abandoned, well before the answer's end ...
    assert!(
        eventually(Duration::from_secs(5), || engine.abandoned_streams() == 1).await,
        "the engine stream was not abandoned; chunks sent: {}",
        engine.streamed_chunks()
    );
    // ... and nothing more is pulled from it.
    let sent = engine.streamed_chunks();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(engine.streamed_chunks(), sent, "the server kept pulling");
    assert!(sent < words / 2, "{sent} chunks sent of about {words}");
}
