//! The HTTP API (docs/dashboard.md) and the dashboard's files.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::{Stream, StreamExt};
use serde_json::{json, Value};
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tower_http::services::ServeDir;

use crate::daemon::Daemon;
use crate::error::ApiError;
use crate::request;

/// Most runs a history request returns.
pub const MAX_HISTORY: u64 = 1_000;

/// The router over `daemon`, serving the dashboard from `web_dir` and its third-party files (the charting
/// library) from `vendor_dir` under `/vendor/`.
pub fn router(daemon: Arc<Daemon>, web_dir: &Path, vendor_dir: &Path) -> Router {
    Router::new()
        .route("/api/stress/start", post(start))
        .route("/api/stress/compare", post(compare))
        .route("/api/stress/status/{id}", get(status))
        .route("/api/stress/history", get(history))
        .route("/api/stress/{id}", get(full))
        .route("/api/stress/{id}/export", get(export))
        .route("/api/stream", get(stream))
        .route("/api/system", get(system))
        .nest_service("/vendor", ServeDir::new(vendor_dir))
        .fallback_service(ServeDir::new(web_dir))
        .with_state(daemon)
}

fn seed() -> u64 {
    sis_testing::host_random_bytes().map_or(0, |bytes| u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8])))
}

fn id(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| ApiError::unknown_run(text))
}

async fn start(State(daemon): State<Arc<Daemon>>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let spec = request::start(&body, seed())?;
    daemon.start(spec).await.map(Json)
}

async fn compare(State(daemon): State<Arc<Daemon>>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let spec = request::compare(&body, seed())?;
    daemon.start(spec).await.map(Json)
}

async fn status(State(daemon): State<Arc<Daemon>>, UrlPath(test_id): UrlPath<String>) -> Result<Json<Value>, ApiError> {
    daemon.status(id(&test_id)?).map(Json)
}

async fn history(
    State(daemon): State<Arc<Daemon>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    if let Some(key) = query.keys().find(|key| key.as_str() != "limit") {
        return Err(ApiError::bad_request("unknown-field", Some(key.clone()), "the only parameter is limit".into()));
    }
    let limit = match query.get("limit") {
        None => 20,
        Some(text) => text.parse::<u64>().ok().filter(|limit| (1..=MAX_HISTORY).contains(limit)).ok_or_else(|| {
            ApiError::bad_request(
                "out-of-range",
                Some("limit".into()),
                format!("must be in 1..={MAX_HISTORY}, got {text:?}"),
            )
        })?,
    };
    daemon.history(limit).map(Json)
}

async fn full(State(daemon): State<Arc<Daemon>>, UrlPath(test_id): UrlPath<String>) -> Result<Json<Value>, ApiError> {
    daemon.full(id(&test_id)?).map(Json)
}

async fn export(
    State(daemon): State<Arc<Daemon>>,
    UrlPath(test_id): UrlPath<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let id = id(&test_id)?;
    match query.get("format").map(String::as_str) {
        Some("csv") => {
            let text = daemon.csv(id)?;
            let disposition = format!("attachment; filename=\"sis-run-{id}.csv\"");
            Ok(([(header::CONTENT_TYPE, "text/csv".to_string()), (header::CONTENT_DISPOSITION, disposition)], text)
                .into_response())
        }
        Some("json") => {
            let value = daemon.full(id)?;
            let disposition = format!("attachment; filename=\"sis-run-{id}.json\"");
            Ok(([(header::CONTENT_DISPOSITION, disposition)], Json(value)).into_response())
        }
        other => Err(ApiError::bad_request(
            "invalid-value",
            Some("format".into()),
            format!("format is csv or json, got {:?}", other.unwrap_or("nothing")),
        )),
    }
}

async fn stream(State(daemon): State<Arc<Daemon>>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = BroadcastStream::new(daemon.live.subscribe()).map(|message| {
        Ok(match message {
            Ok(message) => Event::default().event(message.name).data(message.data.to_string()),
            // The browser fell behind the stream: it is told how many messages it lost.
            Err(BroadcastStreamRecvError::Lagged(missed)) => {
                Event::default().event("lagged").data(json!({ "missed": missed }).to_string())
            }
        })
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn system(State(daemon): State<Arc<Daemon>>) -> Result<Json<Value>, ApiError> {
    let kernel = daemon.kernel_if_booted().await;
    let (schema, current_run) = daemon.state()?;
    Ok(Json(json!({
        "kernel": kernel.map(|kernel| json!({
            "running": kernel.running(),
            "address": kernel.address.to_string(),
            "qemu_pid": kernel.pid(),
        })),
        "schema_version": schema,
        "data_dir": daemon.data_dir,
        "current_run": current_run,
    })))
}
