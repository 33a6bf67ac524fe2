//! kb's HTTP service: `POST /v1/ask`, `POST /v1/search`, a cited passage in its context
//! (`GET /v1/documents/{id}/chunks/{n}`), the OpenAI-compatible facade, admin routes for
//! documents and ingest, health probes, `/openapi.json` and the chat page at `/`.
//! Every `/v1` route needs a credential ([`auth`]); `/healthz`, `/readyz`, `/metrics`, `/` and
//! `/openapi.json` are open so that probes, scrapers and browsers need none. [`Application`]
//! binds, serves and shuts down gracefully; [`Server`] is `kb serve` assembled over the
//! components `kb_app` opens from the settings.

pub mod auth;
pub mod disclosure;
pub mod error;
pub mod host;
pub mod ingest_roots;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod routes;
mod server;
pub mod state;

pub use error::ApiError;
pub use server::{ServeError, Server, Stopped, open_components};
pub use state::AppState;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use kb_config::Settings;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP surface over an [`AppState`].
pub fn router(state: AppState, settings: &Settings) -> Router {
    // Admin ingest runs as long as the documents take; everything else is bounded.
    let bounded = Router::new()
        .merge(routes::health::routes())
        .merge(routes::ask::routes())
        .merge(routes::passages::routes())
        .merge(routes::openai::routes())
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(settings.server.request_timeout_secs),
        ))
        // The timeout answers with a bare 408 (no handler returns one): give it kb's JSON error.
        .layer(axum::middleware::map_response(
            |response: axum::response::Response| async move {
                if response.status() == axum::http::StatusCode::REQUEST_TIMEOUT {
                    axum::response::IntoResponse::into_response(ApiError::Timeout)
                } else {
                    response
                }
            },
        ));
    metrics::handle();
    Router::new()
        .merge(bounded)
        .merge(routes::admin::routes())
        .merge(routes::web::routes())
        .merge(openapi::routes())
        .route("/metrics", axum::routing::get(metrics::render))
        .route_layer(axum::middleware::from_fn(metrics::track))
        .fallback(routes::not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(settings.server.max_body_bytes))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let matched = req
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map(|p| p.as_str().to_owned());
                let request_id = req
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                tracing::info_span!(
                    "http",
                    method = %req.method(),
                    path = matched.as_deref().unwrap_or(req.uri().path()),
                    request_id,
                    key = tracing::field::Empty,
                )
            }),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
}

impl Application {
    /// Bind `server.host:server.port` (port 0 picks a free one) over already-built state.
    /// On a loopback address, requests whose `Host` names another server are refused
    /// ([`host`]: DNS rebinding).
    pub async fn build(settings: &Settings, state: AppState) -> std::io::Result<Self> {
        let listener =
            TcpListener::bind((settings.server.host.as_str(), settings.server.port)).await?;
        let mut router = router(state.clone(), settings);
        let bound = listener.local_addr()?.ip();
        if let Some(allowed) = host::AllowedHosts::for_listener(bound, &settings.server.host) {
            router = router.layer(axum::middleware::from_fn_with_state(
                std::sync::Arc::new(allowed),
                host::check,
            ));
        }
        Ok(Self {
            listener,
            router,
            state,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("BUG: a bound listener has an address")
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve until `shutdown` resolves, then finish in-flight requests.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Serve until Ctrl-C or SIGTERM.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
