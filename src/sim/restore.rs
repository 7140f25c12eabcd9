//! `POST /__sim/restore`: TMDb serving deleted ids again, for tests of the gone-id recheck.

use super::{AppState, lock};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;

/// The request body: `{"ids": [..]}`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RestoreRequest {
    ids: Vec<u32>,
}

/// Serves the listed deleted movies again (not listed in the changes feed, so only a recheck finds
/// them); answers with the ids that were deleted and are live now.
pub async fn restore(State(sim): State<AppState>, body: Bytes) -> Response {
    let request: RestoreRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": e.to_string()})),
            )
                .into_response();
        }
    };
    let restored: Vec<u32> = {
        let mut cat = sim.write();
        request
            .ids
            .into_iter()
            .filter(|id| cat.restore(*id))
            .collect()
    };
    lock(&sim.sorted).clear();
    Json(json!({ "restored": restored })).into_response()
}
