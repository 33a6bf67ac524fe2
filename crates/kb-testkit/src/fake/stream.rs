//! Streamed bodies (SSE frames, with a pause between chunks) and bodies spoiled as a fault
//! says: cut mid-way, stalled, or not JSON.

use crate::fault::Fault;
use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::state::AppState;

pub(super) fn prefix(opening: Bytes, words: &[Bytes], n: usize) -> Vec<Bytes> {
    let mut out = vec![opening];
    out.extend(words.iter().take(n).cloned());
    out
}

pub(super) fn sse(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// How a streamed body ends: normally, by cutting the connection, or by going silent.
pub(super) enum StreamPlan {
    Whole(Vec<Bytes>),
    Cut(Vec<Bytes>),
    Stall(Vec<Bytes>),
}

pub(super) fn streamed(
    state: &AppState,
    plan: StreamPlan,
    delay: Duration,
    content_type: &str,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let state = state.clone();
    tokio::spawn(async move {
        let (chunks, ending) = match plan {
            StreamPlan::Whole(c) => (c, None),
            StreamPlan::Cut(c) => (c, Some(false)),
            StreamPlan::Stall(c) => (c, Some(true)),
        };
        for (i, bytes) in chunks.into_iter().enumerate() {
            if i > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if tx.send(Ok(bytes)).await.is_err() {
                // The client went away (hyper dropped the body).
                state.abandoned_streams.fetch_add(1, Ordering::SeqCst);
                return;
            }
            state.streamed_chunks.fetch_add(1, Ordering::SeqCst);
        }
        match ending {
            None => {}
            Some(stall) => {
                if stall {
                    tokio::select! {
                        () = state.shutdown.cancelled() => {}
                        () = tx.closed() => return,
                    }
                }
                // Let hyper flush what was sent: it drops unflushed bytes when the body fails.
                tokio::time::sleep(Duration::from_millis(50)).await;
                // An error in the body makes hyper drop the connection mid-response.
                let cut = std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "fake cut");
                let _ = tx.send(Err(cut)).await;
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from_stream(body))
        .expect("BUG: static response parts are valid")
}

/// A `200` JSON answer, spoiled as the fault says.
pub(super) fn json_body(state: &AppState, body: Value, fault: Option<Fault>) -> Response {
    let bytes = Bytes::from(body.to_string());
    let half = bytes.slice(..bytes.len() / 2);
    match fault {
        Some(Fault::MalformedJson) => (
            [(header::CONTENT_TYPE, "application/json")],
            "{\"object\": \"list\", \"data\": [{\"embedding\": [0.1, ",
        )
            .into_response(),
        Some(Fault::CutStream { .. }) => streamed(
            state,
            StreamPlan::Cut(vec![half]),
            Duration::ZERO,
            "application/json",
        ),
        Some(Fault::StallStream { .. }) => streamed(
            state,
            StreamPlan::Stall(vec![half]),
            Duration::ZERO,
            "application/json",
        ),
        _ => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
    }
}
