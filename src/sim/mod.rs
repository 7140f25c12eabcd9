//! A deterministic TMDb / OMDb simulator: synthetic catalog, simulated clock, fault injection.
//!
//! TMDb API at `{base}/3`, daily exports at `{base}/p/exports`, OMDb at `{base}/omdb/`,
//! control endpoints under `{base}/__sim/`.

mod catalog;
mod control;
mod export;
mod faults;
pub mod glitch;
mod load;
mod omdb;
mod payload;
mod restore;
mod synth;
mod tmdb;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use catalog::Catalog;
use chrono::{Datelike, NaiveDate, Utc};
use faults::{Faults, Stats, Windows};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::TcpListener;

pub use catalog::AdvanceReport;

/// Simulator configuration.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Number of non-adult movies in the initial catalog.
    pub movies: u64,
    /// Number of adult movies in the initial catalog.
    pub adult_movies: u64,
    /// Seed for every generated attribute.
    pub seed: u64,
    /// TMDb requests allowed per wall-clock second (None = unlimited).
    pub rps: Option<u32>,
    /// Delay added to every response.
    pub latency_ms: u64,
    /// Initial probability of an injected HTTP 5xx on TMDb endpoints.
    pub error_rate: f64,
    /// The simulated date the clock starts at.
    pub start_date: NaiveDate,
    /// Fraction of movies served as poison records (see [`glitch`]); 0 serves clean data.
    pub glitch_rate: f64,
    /// The last page `/discover/movie` serves (TMDb: 500). A lower cap lets a small catalog show
    /// what a walk cannot reach.
    pub discover_max_page: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            movies: 5000,
            adult_movies: 0,
            seed: 42,
            rps: None,
            latency_ms: 0,
            error_rate: 0.0,
            start_date: Utc::now().date_naive() - chrono::Days::new(30),
            glitch_rate: 0.0,
            discover_max_page: 500,
        }
    }
}

/// Cache key of sorted discover orders: (day, sort code).
type SortKey = (u16, u8);

/// Generated exports (the last few) and the malformed-line count each day was published with.
#[derive(Default)]
struct ExportCache {
    files: VecDeque<(u16, Bytes)>,
    malformed: HashMap<u16, u64>,
}

/// Shared simulator state.
pub(crate) struct Sim {
    catalog: RwLock<Catalog>,
    faults: Mutex<Faults>,
    stats: Mutex<Stats>,
    windows: Mutex<Windows>,
    exports: tokio::sync::Mutex<ExportCache>,
    sorted: Mutex<HashMap<SortKey, Arc<Vec<u32>>>>,
    /// The last page discover serves.
    discover_max_page: u32,
    started: Instant,
    /// TCP connections open (every endpoint).
    connections: Arc<load::Gauge>,
    /// `/3/` requests being answered.
    in_flight: Arc<load::Gauge>,
}

type AppState = Arc<Sim>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sim {
    fn new(c: &SimConfig) -> Self {
        let t = Instant::now();
        let mut catalog = Catalog::new(c.seed, c.movies, c.adult_movies, c.start_date);
        catalog.glitch_rate = c.glitch_rate;
        tracing::info!(
            movies = catalog.movies.len(),
            elapsed_ms = t.elapsed().as_millis() as u64,
            "simulator catalog built"
        );
        Sim {
            catalog: RwLock::new(catalog),
            faults: Mutex::new(Faults::new(c.error_rate, c.rps, c.latency_ms)),
            stats: Mutex::new(Stats::default()),
            windows: Mutex::new(Windows::default()),
            exports: tokio::sync::Mutex::new(ExportCache::default()),
            sorted: Mutex::new(HashMap::new()),
            discover_max_page: c.discover_max_page.max(1),
            started: Instant::now(),
            connections: Arc::default(),
            in_flight: Arc::default(),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Catalog> {
        self.catalog.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Catalog> {
        self.catalog.write().unwrap_or_else(|e| e.into_inner())
    }

    fn faults(&self) -> Faults {
        lock(&self.faults).clone()
    }

    /// The simulated "now": the current day at 12:00 UTC plus real elapsed seconds (capped).
    fn now(&self) -> SystemTime {
        let date = self.read().date();
        let secs = self.started.elapsed().as_secs().min(43_199);
        let days = date.num_days_from_ce() as i64 - 719_163;
        let unix = days * 86_400 + 43_200 + secs as i64;
        SystemTime::UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64)
    }
}

async fn date_header(State(sim): State<AppState>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let date = httpdate::fmt_http_date(sim.now());
    if let Ok(v) = HeaderValue::from_str(&date) {
        res.headers_mut().insert(header::DATE, v);
    }
    res
}

async fn not_found() -> Response {
    faults::tmdb_error(
        StatusCode::NOT_FOUND,
        34,
        "The resource you requested could not be found.",
    )
}

fn router(sim: AppState) -> Router {
    Router::new()
        .route("/3/{*path}", get(tmdb::handle))
        .route("/p/exports/{file}", get(control::export))
        .route("/omdb", get(control::omdb))
        .route("/omdb/", get(control::omdb))
        .route("/__sim/advance", post(control::advance))
        .route(
            "/__sim/faults",
            post(control::set_faults).get(control::get_faults),
        )
        .route("/__sim/stats", get(control::stats))
        .route("/__sim/stats/reset", post(control::reset_stats))
        .route("/__sim/catalog", get(control::catalog))
        .route("/__sim/movie/{id}", get(control::movie))
        .route("/__sim/clock", get(control::clock))
        .route("/__sim/glitches", get(glitch::list))
        .route("/__sim/restore", post(restore::restore))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            sim.clone(),
            date_header,
        ))
        .with_state(sim)
}

/// A running simulator spawned by [`spawn`].
pub struct SimHandle {
    /// The address it listens on.
    pub addr: SocketAddr,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// The TMDb API base, `{base}/3`.
    pub fn tmdb_url(&self) -> String {
        format!("{}/3", self.base_url())
    }
    /// The daily export base, `{base}/p/exports`.
    pub fn export_url(&self) -> String {
        format!("{}/p/exports", self.base_url())
    }
    /// The OMDb base, `{base}/omdb/`.
    pub fn omdb_url(&self) -> String {
        format!("{}/omdb/", self.base_url())
    }
    /// Stops the server (gracefully, at most ~2 s, then aborts).
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(());
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(2), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

/// Binds `addr` (may be port 0), serves in a spawned tokio task, returns once listening.
pub async fn spawn(config: SimConfig, addr: SocketAddr) -> std::io::Result<SimHandle> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let sim = Arc::new(Sim::new(&config));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let listener = load::CountingListener::new(listener, sim.connections.clone());
    let app = router(sim);
    let task = tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = rx.await;
        });
        if let Err(e) = server.await {
            tracing::error!(error = %e, "simulator server failed");
        }
    });
    tracing::info!(%addr, "simulator listening");
    Ok(SimHandle {
        addr,
        shutdown: tx,
        task,
    })
}

/// Serves until the future is dropped or ctrl-c (for the `tmdbsync simulate` CLI command).
pub async fn serve(config: SimConfig, listener: TcpListener) -> std::io::Result<()> {
    let sim = Arc::new(Sim::new(&config));
    tracing::info!(addr = ?listener.local_addr().ok(), "simulator listening");
    let listener = load::CountingListener::new(listener, sim.connections.clone());
    axum::serve(listener, router(sim))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
