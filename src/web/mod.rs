//! The controller's HTTP endpoints: `/metrics` (Prometheus text format), `/healthz` (the process
//! serves) and `/readyz` (200 or 503 with the reason: reconciling with synced watches, or a standby
//! that could take over the leader Lease; see [`crate::telemetry::readiness`]).
//! The Sync Health pages and downloads live in [`dashboard`].

pub mod dashboard;
pub mod download;
pub mod page;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::telemetry::metrics::Metrics;
pub use crate::telemetry::readiness::Readiness;

#[derive(Clone)]
struct AppState {
    ready: Readiness,
    metrics: Arc<Metrics>,
}

/// The router, for tests and for [`serve`].
pub fn router(ready: Readiness, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(|State(app): State<AppState>| async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    app.metrics.render(),
                )
            }),
        )
        .route(
            "/readyz",
            get(|State(app): State<AppState>| async move {
                let verdict = app.ready.verdict();
                if verdict.ready {
                    (StatusCode::OK, format!("ready: {}\n", verdict.reason))
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("not ready: {}\n", verdict.reason),
                    )
                }
            }),
        )
        .with_state(AppState { ready, metrics })
}

/// Serves the endpoints on a bound listener until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    ready: Readiness,
    metrics: Arc<Metrics>,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(addr = %addr, "health endpoints listening");
    }
    axum::serve(listener, router(ready, metrics)).await
}
