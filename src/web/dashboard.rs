//! The Sync Health page over HTTP, read-only (only GET routes; no button changes anything).
//!
//! * `tmdbsync dashboard --database-url URL --addr ADDR` (no cluster): `/` is the panel of that
//!   database; `/health.json`, `/report.csv?days=N`, `/report.json?days=N` beside it.
//! * The controller, on its HTTP port: `/` lists every TmdbSync it watches with its phase;
//!   `/syncs/{namespace}/{name}` is a sync's panel, with `…/health.json`, `…/report.csv` and
//!   `…/report.json`. The controller supplies the syncs through [`SyncDirectory`] (the web layer
//!   knows no cluster).
//!
//! `health.json` is the same document as `tmdbsync status -o json`: both come from
//! [`health_of`]. Pages take `?refresh=SECONDS` (0 turns refreshing off).

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures::future::BoxFuture;
use serde::Deserialize;

use super::page::{self, PageOptions, SyncListing};
use crate::plan::health::{SyncFacts, SyncHealth, SyncReport};
use crate::store::{Store, StoreError};

/// Runs listed in the panel's "Recent runs".
pub const RECENT_RUNS: i64 = 10;

/// Seconds between refreshes of a served page.
pub const REFRESH_SECS: u32 = 30;

/// Days a report covers when `?days` is not given.
pub const DEFAULT_REPORT_DAYS: u32 = 30;

/// The Sync Health of the database behind `store`, with what the cluster knows (`facts`): the
/// one function the terminal panel, the web page and their JSON are made from.
pub async fn health_of(store: &Store, facts: &SyncFacts) -> Result<SyncHealth, StoreError> {
    let inputs = crate::store::health::health_inputs(store, RECENT_RUNS).await?;
    Ok(SyncHealth::build(&inputs, facts))
}

/// The report over the last `days` days (clamped to 1..=366).
pub async fn report_of(
    store: &Store,
    facts: &SyncFacts,
    days: u32,
) -> Result<SyncReport, StoreError> {
    let inputs = crate::store::health::report_inputs(store, days).await?;
    Ok(SyncReport::build(&inputs, facts, days))
}

/// A report download rendered by `render` (JSON or CSV), or 503 with the reason.
async fn report_response(
    store: &Store,
    facts: &SyncFacts,
    days: u32,
    render: fn(&SyncReport) -> Response,
) -> Response {
    match report_of(store, facts, days).await {
        Ok(report) => render(&report),
        Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// A sync's panel rendered with `options`, or 503 titled `title` with the reason.
async fn panel_response(
    store: &Store,
    facts: &SyncFacts,
    options: PageOptions,
    title: &str,
) -> Response {
    match health_of(store, facts).await {
        Ok(h) => Html(page::render_health(&h, &options)).into_response(),
        Err(e) => unavailable(title, &e.to_string()),
    }
}

/// A sync's `health.json`, or 503 with the reason.
async fn health_response(store: &Store, facts: &SyncFacts) -> Response {
    match health_of(store, facts).await {
        Ok(h) => pretty_json(&h),
        Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// The page as one self-contained file (`tmdbsync status --format html`): no refresh, no links
/// to downloads.
pub fn health_file(health: &SyncHealth) -> String {
    page::render_health(health, &PageOptions::default())
}

/// Where the controller's pages find the syncs it watches.
pub trait SyncDirectory: Send + Sync + 'static {
    /// Every TmdbSync watched, with its phase.
    fn list(&self) -> BoxFuture<'_, Result<Vec<SyncListing>, String>>;
    /// A sync's database and what its resource says.
    fn open<'a>(&'a self, namespace: &'a str, name: &'a str) -> Opening<'a>;
}

/// What [`SyncDirectory::open`] answers: the sync's database and facts, `Ok(None)` when there is
/// no such sync, or an error that is a sentence for people (a secret missing, the database
/// unreachable), never a secret.
pub type Opening<'a> = BoxFuture<'a, Result<Option<(Store, SyncFacts)>, String>>;

#[derive(Debug, Deserialize)]
struct PageQuery {
    refresh: Option<u32>,
}

impl PageQuery {
    fn refresh(&self) -> Option<u32> {
        match self.refresh {
            Some(0) => None,
            Some(s) => Some(s.max(5)),
            None => Some(REFRESH_SECS),
        }
    }
}

#[derive(Debug, Deserialize)]
struct ReportQuery {
    days: Option<u32>,
}

impl ReportQuery {
    fn days(&self) -> u32 {
        self.days
            .unwrap_or(DEFAULT_REPORT_DAYS)
            .clamp(1, crate::plan::health::MAX_REPORT_DAYS)
    }
}

fn unavailable(title: &str, message: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Html(page::problem(title, message)),
    )
        .into_response()
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

fn pretty_json<T: serde::Serialize>(value: &T) -> Response {
    match serde_json::to_string_pretty(value) {
        Ok(body) => (
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            body + "\n",
        )
            .into_response(),
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn csv_response(report: &SyncReport) -> Response {
    match super::download::report_csv(report) {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!(
                        "attachment; filename=\"tmdbsync-report-{}-{}.csv\"",
                        report.from, report.to
                    ),
                ),
            ],
            body,
        )
            .into_response(),
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// What a panel route needs: the database and the facts.
#[derive(Clone)]
struct Database {
    store: Store,
    facts: Arc<SyncFacts>,
}

/// The routes of `tmdbsync dashboard`: one database, its panel at `/`.
pub fn database_routes(store: Store, facts: SyncFacts) -> Router {
    let state = Database {
        store,
        facts: Arc::new(facts),
    };
    Router::new()
        .route(
            "/",
            get(
                |State(db): State<Database>, Query(q): Query<PageQuery>| async move {
                    let options = PageOptions {
                        base: Some(String::new()),
                        refresh_secs: q.refresh(),
                        back_to_list: false,
                    };
                    panel_response(&db.store, &db.facts, options, "Sync Health").await
                },
            ),
        )
        .route(
            "/health.json",
            get(|State(db): State<Database>| async move {
                health_response(&db.store, &db.facts).await
            }),
        )
        .route(
            "/report.json",
            get(
                |State(db): State<Database>, Query(q): Query<ReportQuery>| async move {
                    report_response(&db.store, &db.facts, q.days(), pretty_json).await
                },
            ),
        )
        .route(
            "/report.csv",
            get(
                |State(db): State<Database>, Query(q): Query<ReportQuery>| async move {
                    report_response(&db.store, &db.facts, q.days(), csv_response).await
                },
            ),
        )
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
}

/// Serves `tmdbsync dashboard` until the process ends.
pub async fn serve_database(
    listener: tokio::net::TcpListener,
    store: Store,
    facts: SyncFacts,
) -> std::io::Result<()> {
    axum::serve(listener, database_routes(store, facts)).await
}

type Directory = Arc<dyn SyncDirectory>;

/// A sync named by the path (`/syncs/{namespace}/{name}…`), opened through the directory: its
/// database and what its resource says. Extracting it answers 404 when no such sync is watched
/// and 503 when it cannot be opened.
struct WatchedSync {
    namespace: String,
    name: String,
    store: Store,
    facts: SyncFacts,
}

impl FromRequestParts<Directory> for WatchedSync {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, dir: &Directory) -> Result<Self, Response> {
        let Path((namespace, name)) = Path::<(String, String)>::from_request_parts(parts, dir)
            .await
            .map_err(IntoResponse::into_response)?;
        match dir.open(&namespace, &name).await {
            Ok(Some((store, facts))) => Ok(WatchedSync {
                namespace,
                name,
                store,
                facts,
            }),
            Ok(None) => Err((
                StatusCode::NOT_FOUND,
                Html(page::problem(
                    "Not found",
                    &format!(
                        "no TmdbSync {name} in namespace {namespace} is watched by this controller"
                    ),
                )),
            )
                .into_response()),
            Err(e) => Err(unavailable(&format!("{namespace}/{name}"), &e)),
        }
    }
}

/// The controller's Sync Health routes: `/` (every TmdbSync) and `/syncs/{namespace}/{name}`
/// with its downloads.
pub fn controller_routes(dir: Arc<dyn SyncDirectory>) -> Router {
    Router::new()
        .route(
            "/",
            get(
                |State(dir): State<Directory>, Query(q): Query<PageQuery>| async move {
                    match dir.list().await {
                        Ok(list) => Html(page::render_index(
                            &list,
                            q.refresh().unwrap_or(REFRESH_SECS),
                        ))
                        .into_response(),
                        Err(e) => unavailable("TmdbSyncs", &e),
                    }
                },
            ),
        )
        .route(
            "/syncs/{namespace}/{name}",
            get(|Query(q): Query<PageQuery>, sync: WatchedSync| async move {
                let at = format!("{}/{}", sync.namespace, sync.name);
                let options = PageOptions {
                    base: Some(format!("/syncs/{at}")),
                    refresh_secs: q.refresh(),
                    back_to_list: true,
                };
                panel_response(&sync.store, &sync.facts, options, &at).await
            }),
        )
        .route(
            "/syncs/{namespace}/{name}/health.json",
            get(|sync: WatchedSync| async move { health_response(&sync.store, &sync.facts).await }),
        )
        .route(
            "/syncs/{namespace}/{name}/report.json",
            get(
                |Query(q): Query<ReportQuery>, sync: WatchedSync| async move {
                    report_response(&sync.store, &sync.facts, q.days(), pretty_json).await
                },
            ),
        )
        .route(
            "/syncs/{namespace}/{name}/report.csv",
            get(
                |Query(q): Query<ReportQuery>, sync: WatchedSync| async move {
                    report_response(&sync.store, &sync.facts, q.days(), csv_response).await
                },
            ),
        )
        .with_state(dir)
}

/// Serves the controller's endpoints (`/metrics`, `/healthz`, `/readyz`) and its Sync Health
/// pages on one listener until the process ends.
pub async fn serve_controller(
    listener: tokio::net::TcpListener,
    ready: crate::telemetry::readiness::Readiness,
    metrics: Arc<crate::telemetry::metrics::Metrics>,
    dir: Arc<dyn SyncDirectory>,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(addr = %addr, "health endpoints and Sync Health pages listening");
    }
    axum::serve(
        listener,
        super::router(ready, metrics).merge(controller_routes(dir)),
    )
    .await
}
