//! Errors as the API answers them: a status and `{"error":{"code":...,"field":...,"message":...}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// A refused request or a failure, with the status it is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Stable kebab-case code.
    pub code: &'static str,
    /// The request field at fault, if one is.
    pub field: Option<String>,
    /// For people.
    pub message: String,
}

impl ApiError {
    /// 400 for `field`.
    pub fn bad_request(code: &'static str, field: Option<String>, message: String) -> Self {
        ApiError { status: 400, code, field, message }
    }

    /// Any status.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, field: None, message: message.into() }
    }

    /// 404: no run has this ID.
    pub fn unknown_run(id: &str) -> Self {
        ApiError::new(404, "unknown-test-id", format!("no run has the ID {id:?}"))
    }

    /// 500 from a database error.
    pub fn database(error: rusqlite::Error) -> Self {
        ApiError::new(500, "database", error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({ "error": { "code": self.code, "field": self.field, "message": self.message } });
        (status, Json(body)).into_response()
    }
}
