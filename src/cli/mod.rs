//! What each command does: shared set-up (connecting, the engine, signals, stage options) here,
//! the commands in [`run`], [`db`] and [`serve`].

pub(crate) mod db;
pub(crate) mod run;
pub(crate) mod serve;

use crate::{DbArgs, EngineArgs, EnrichArgs, TimeoutArgs};
use std::time::Duration;
use tmdbsync::exit::ExitCode;
use tmdbsync::plan::RunType;
use tmdbsync::plan::enrich::EnrichStage;
use tmdbsync::plan::health::SyncFacts;
use tmdbsync::stage::bulk::BulkOptions;
use tmdbsync::stage::catalog::CatalogSource;
use tmdbsync::stage::delta::DeltaOptions;
use tmdbsync::stage::enrich::EnrichOptions;
use tmdbsync::stage::{Engine, Progress, RunControl, RunLabel, StageError};
use tmdbsync::store::{Store, StoreError};
use tmdbsync::tmdb::{ApiKey, TmdbClient, TmdbConfig};

/// Connects and migrates (commands that write).
pub(crate) async fn connect(db: &DbArgs) -> Result<Store, (ExitCode, String)> {
    let store_error = |e: StoreError| (ExitCode::from(&e), e.to_string());
    let store = Store::connect(&db.database_url, 8)
        .await
        .map_err(store_error)?;
    store.migrate().await.map_err(store_error)?;
    Ok(store)
}

/// Connects read-only and checks the schema without changing it (commands that only read).
pub(crate) async fn connect_read_only(db: &DbArgs) -> Result<Store, (ExitCode, String)> {
    let store_error = |e: StoreError| (ExitCode::from(&e), e.to_string());
    let store = Store::connect_read_only(&db.database_url, 2)
        .await
        .map_err(store_error)?;
    store.check_schema().await.map_err(store_error)?;
    Ok(store)
}

/// What `--sync NAMESPACE/NAME` says about the sync the database belongs to (nothing when the
/// flag is absent).
pub(crate) fn sync_facts(sync: Option<&str>) -> Result<SyncFacts, (ExitCode, String)> {
    sync.map_or_else(
        || Ok(SyncFacts::default()),
        |s| SyncFacts::named(s).map_err(|e| (ExitCode::Config, e)),
    )
}

/// Checks that `value` of `flag` is an http(s) URL with a host; the error names the fix, with
/// `example` (the flag's default).
pub(crate) fn http_url(flag: &str, value: &str, example: &str) -> Result<(), (ExitCode, String)> {
    let shown = tmdbsync::redact::redact_patterns(value);
    let bad = |why: String| {
        Err((
            ExitCode::Config,
            format!("{flag} {shown:?} {why}: give an http:// or https:// URL such as {example}"),
        ))
    };
    match reqwest::Url::parse(value) {
        Err(e) => bad(format!("is not a URL ({e})")),
        Ok(u) if !matches!(u.scheme(), "http" | "https") => bad(format!(
            "has the scheme {}:// which tmdbsync cannot use",
            u.scheme()
        )),
        Ok(u) if u.host_str().is_none_or(str::is_empty) => bad("has no host".into()),
        Ok(_) => Ok(()),
    }
}

pub(crate) fn fail((code, message): (ExitCode, String)) -> ExitCode {
    eprintln!("tmdbsync: error: {message}");
    code
}

pub(crate) async fn engine(a: &EngineArgs) -> Result<Engine, ExitCode> {
    let key = ApiKey::new(a.api_key.clone());
    if key.is_empty() {
        return Err(fail((
            ExitCode::Config,
            "the TMDb API key is empty: set --api-key or TMDB_API_KEY".into(),
        )));
    }
    http_url("--tmdb-url", &a.tmdb_url, "https://api.themoviedb.org/3").map_err(fail)?;
    http_url(
        "--export-url",
        &a.export_url,
        "https://files.tmdb.org/p/exports",
    )
    .map_err(fail)?;
    let [
        timeout,
        connect_timeout,
        read_timeout,
        export_idle_timeout,
        export_timeout,
    ] = a.timeouts.durations().map_err(fail)?;
    let store = connect(&a.db)
        .await
        .map_err(fail)?
        .with_outage_tolerance(Duration::from_secs(a.faults.db_outage_secs));
    let mut config = TmdbConfig::new(&a.tmdb_url, key);
    config.requests_per_second = a.rps;
    config.max_connections = a.max_connections as usize;
    config.timeout = timeout;
    config.connect_timeout = connect_timeout;
    config.read_timeout = read_timeout;
    config.export_idle_timeout = export_idle_timeout;
    config.export_timeout = export_timeout;
    config.language = a.language.clone();
    let tmdb = TmdbClient::new(config).map_err(|e| fail((ExitCode::Retryable, e.to_string())))?;
    Ok(Engine {
        store,
        tmdb,
        export_url: a.export_url.clone(),
        include_adult: a.include_adult,
        concurrency: a.concurrency as usize,
        bulk_chunk_pages: a.bulk_chunk_pages,
        progress: Progress::auto(),
        marks: Default::default(),
        runs: RunControl::new(
            Duration::from_secs(a.faults.run_lease_secs),
            Duration::from_secs(a.faults.stage_wait_secs),
        ),
    })
}

/// Resolves on SIGTERM (a pod being stopped) or SIGINT (Ctrl-C), naming it.
pub(crate) async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}

/// Runs `work` unless a signal comes first; then the open run is recorded as interrupted and
/// the process exits 1.
pub(crate) async fn until_signal(
    engine: &Engine,
    work: impl std::future::Future<Output = ExitCode>,
) -> ExitCode {
    tokio::select! {
        code = work => code,
        signal = shutdown_signal() => {
            engine
                .interrupt(&format!("interrupted: stopped by {signal} before it finished"))
                .await;
            fail((
                ExitCode::Retryable,
                format!("stopped by {signal}; the run is recorded as interrupted"),
            ))
        }
    }
}

pub(crate) fn enrich_options(
    a: &EnrichArgs,
    timeouts: &TimeoutArgs,
    stages: Vec<EnrichStage>,
) -> Result<EnrichOptions, ExitCode> {
    let key = a
        .omdb_api_key
        .as_deref()
        .map(ApiKey::new)
        .filter(|k| !k.is_empty());
    let omdb = match key {
        Some(key) => {
            http_url("--omdb-url", &a.omdb_url, tmdbsync::omdb::DEFAULT_URL).map_err(fail)?;
            let [timeout, connect_timeout, read_timeout, ..] =
                timeouts.durations().map_err(fail)?;
            let mut config = tmdbsync::omdb::OmdbConfig::new(&a.omdb_url, key);
            config.timeout = timeout;
            config.connect_timeout = connect_timeout;
            config.read_timeout = read_timeout;
            Some(
                tmdbsync::omdb::OmdbClient::new(config)
                    .map_err(|e| fail((ExitCode::Retryable, e.to_string())))?,
            )
        }
        None => None,
    };
    Ok(EnrichOptions {
        stages,
        omdb,
        omdb_daily_limit: a.omdb_daily_limit,
        top_cast: a.top_cast,
        ..Default::default()
    })
}

/// The settings of each stage a run may take.
pub(crate) struct StageOptions {
    pub(crate) catalog: CatalogSource,
    pub(crate) bulk: BulkOptions,
    pub(crate) delta: DeltaOptions,
}

pub(crate) async fn run_stage(
    engine: &Engine,
    stage: RunType,
    label: &RunLabel,
    options: &StageOptions,
    enrich: &EnrichOptions,
) -> Result<tmdbsync::stage::StageReport, StageError> {
    let StageOptions {
        catalog,
        bulk,
        delta,
    } = *options;
    match stage {
        RunType::Catalog => tmdbsync::stage::catalog::run_from(engine, catalog, label).await,
        RunType::Bulk => tmdbsync::stage::bulk::run(engine, bulk, label).await,
        RunType::Delta => tmdbsync::stage::delta::run(engine, delta, label).await,
        RunType::Enrich => tmdbsync::stage::enrich::run(engine, enrich, label).await,
    }
}
