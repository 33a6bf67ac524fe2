//! Route handlers, one module per area.

pub mod admin;
pub mod ask;
pub mod health;
pub mod openai;
pub mod passages;
pub mod web;

use crate::error::ApiError;
use axum::extract::FromRequest;

/// `Json` whose rejections use kb's error body.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for ApiJson<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound
}
