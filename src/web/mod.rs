//! The controller's HTTP endpoints: `/metrics` (Prometheus text format), `/healthz` (the process
//! serves) and `/readyz` (connected to the API server: reconciling, or a standby ready to take over
//! the leader Lease). The Sync Health pages and downloads live in [`dashboard`].

pub mod dashboard;
pub mod download;
pub mod page;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::telemetry::metrics::Metrics;

/// Shared readiness flag.
#[derive(Debug, Default, Clone)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks the process ready (or not).
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    /// Whether the process is ready.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

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
                if app.ready.get() {
                    (StatusCode::OK, "ready")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not ready")
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
