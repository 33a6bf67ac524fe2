//! The chat page at `GET /`: plain HTML, CSS and JavaScript under `crates/kb-server/web/`,
//! compiled into the binary (no build step, no files to deploy). The page asks
//! `/v1/ask/stream` with the API key the user entered (kept in the browser's localStorage),
//! opens a cited passage in its context beside the answer, and renders only text nodes and
//! DOM nodes it builds itself (`markdown.js`), never model output or document text as HTML;
//! a strict Content-Security-Policy allows nothing but this server's own script, style and API.

use crate::state::AppState;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX_HTML: &str = include_str!("../../web/index.html");
const APP_JS: &str = include_str!("../../web/app.js");
const MARKDOWN_JS: &str = include_str!("../../web/markdown.js");
const APP_CSS: &str = include_str!("../../web/app.css");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/assets/app.js", get(script))
        .route("/assets/markdown.js", get(markdown_script))
        .route("/assets/app.css", get(stylesheet))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // The assets change with the binary; revalidate rather than serve a stale page.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The chat page.
#[utoipa::path(get, path = "/", tag = "web",
    responses((status = 200, content_type = "text/html", body = String)))]
pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

/// The chat page's script.
#[utoipa::path(get, path = "/assets/app.js", tag = "web",
    responses((status = 200, content_type = "text/javascript", body = String)))]
pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// The chat page's Markdown reader: passages rendered as DOM nodes, never as HTML.
#[utoipa::path(get, path = "/assets/markdown.js", tag = "web",
    responses((status = 200, content_type = "text/javascript", body = String)))]
pub async fn markdown_script() -> Response {
    asset("text/javascript; charset=utf-8", MARKDOWN_JS)
}

/// The chat page's stylesheet.
#[utoipa::path(get, path = "/assets/app.css", tag = "web",
    responses((status = 200, content_type = "text/css", body = String)))]
pub async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}
