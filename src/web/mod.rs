//! The controller's HTTP endpoints: `/healthz` (the process serves) and `/readyz` (the reconcilers
//! run: this replica leads, or needs no election).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

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

/// The router, for tests and for [`serve`].
pub fn router(ready: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(ready): State<Readiness>| async move {
                if ready.get() {
                    (StatusCode::OK, "ready")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not ready")
                }
            }),
        )
        .with_state(ready)
}

/// Serves the endpoints on a bound listener until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, ready: Readiness) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(addr = %addr, "health endpoints listening");
    }
    axum::serve(listener, router(ready)).await
}
