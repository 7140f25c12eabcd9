//! The `tmdbsync` command line: parse, set up logging, dispatch. No logic lives here.

use std::net::SocketAddr;
use std::process::ExitCode as ProcessExit;
use std::time::Duration;

use anyhow::Context as _;
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

use tmdbsync::ExitCode;
use tmdbsync::plan::RunType;
use tmdbsync::plan::enrich::{EnrichStage, StagePlan};
use tmdbsync::stage::bulk::BulkOptions;
use tmdbsync::stage::delta::DeltaOptions;
use tmdbsync::stage::enrich::EnrichOptions;
use tmdbsync::stage::{Engine, Progress, RunControl, RunLabel, StageError};
use tmdbsync::store::{Store, StoreError};
use tmdbsync::tmdb::{ApiKey, TmdbClient, TmdbConfig};

#[derive(Parser)]
#[command(
    name = "tmdbsync",
    version,
    about = "Mirror the TMDb movie catalog into Postgres and keep it fresh"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a deterministic synthetic TMDb (and OMDb) until killed.
    Simulate(SimulateArgs),
    /// Apply the database migrations.
    Migrate(DbArgs),
    /// Run sync stages once, in-process (catalog, bulk, delta by default).
    Run(RunArgs),
    /// Print the Sync Health report (text, JSON, or the web page as one HTML file).
    Status(StatusArgs),
    /// Serve the Sync Health web page of a database (read-only, no cluster needed).
    Dashboard(DashboardArgs),
    /// Print the CustomResourceDefinitions (YAML) generated from the Rust types.
    Crd,
    /// Run one stage of a SyncRun inside a Job pod (configured by the Job's environment).
    Worker(WorkerArgs),
    /// Run the operator (TmdbSync and SyncRun reconcilers).
    Controller(ControllerArgs),
}

#[derive(Args)]
struct DbArgs {
    /// Postgres URL (postgres://user:pass@host/db; a unix socket as ?host=/path).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
}

#[derive(Args)]
struct SimulateArgs {
    /// Address to listen on (port 0 picks a free one; the URL is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:8765")]
    addr: SocketAddr,
    /// Non-adult movies in the catalog.
    #[arg(long, default_value_t = 5000)]
    movies: u64,
    /// Adult movies in the catalog (flagged adult in the export).
    #[arg(long, default_value_t = 0)]
    adult_movies: u64,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Requests per second allowed before answering 429.
    #[arg(long)]
    rps: Option<u32>,
    /// Delay added to every response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Fraction of TMDb requests answered with a 5xx.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// First simulated day (default: 30 days before today).
    #[arg(long)]
    start_date: Option<NaiveDate>,
    /// Fraction of movies served as poison records (NUL characters, numbers out of range, wrong
    /// JSON types, broken export lines), the same ones for a seed; `GET /__sim/glitches` lists them.
    #[arg(long, default_value_t = 0.0, value_parser = tmdbsync::sim::glitch::parse_rate)]
    glitch_rate: f64,
}

#[derive(Args)]
struct EngineArgs {
    #[command(flatten)]
    db: DbArgs,
    /// TMDb API key (v3 key or v4 read token).
    #[arg(long, env = "TMDB_API_KEY", hide_env_values = true)]
    api_key: String,
    /// TMDb API base URL.
    #[arg(long, env = "TMDB_URL", default_value = "https://api.themoviedb.org/3")]
    tmdb_url: String,
    /// Base URL of TMDb's daily ID exports.
    #[arg(
        long,
        env = "TMDB_EXPORT_URL",
        default_value = "https://files.tmdb.org/p/exports"
    )]
    export_url: String,
    /// Requests per second to TMDb.
    #[arg(long, env = "TMDBSYNC_RPS", default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    rps: u32,
    /// Detail requests in flight at once.
    #[arg(long, env = "TMDBSYNC_CONCURRENCY", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=512))]
    concurrency: u32,
    /// Most open connections to TMDb.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=512))]
    max_connections: u32,
    /// Import adult titles too.
    #[arg(long, env = "TMDBSYNC_INCLUDE_ADULT")]
    include_adult: bool,
    /// `language` for movie details.
    #[arg(long, env = "TMDBSYNC_LANGUAGE")]
    language: Option<String>,
    /// Days the first delta run looks back when no catalog date is known.
    #[arg(long, env = "TMDBSYNC_LOOKBACK_DAYS", default_value_t = 1)]
    lookback_days: u32,
    #[command(flatten)]
    timeouts: TimeoutArgs,
    #[command(flatten)]
    faults: FaultArgs,
}

/// Riding out faults (see docs/faults.md).
#[derive(Args)]
struct FaultArgs {
    /// Seconds database work keeps retrying through an outage (restart, fail-over, lost
    /// connection) before the run fails.
    #[arg(long, env = "TMDBSYNC_DB_OUTAGE_SECS", default_value_t = tmdbsync::store::retry::DEFAULT_OUTAGE_TOLERANCE.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    db_outage_secs: u64,
    /// Seconds a run stays alive without a heartbeat (sent every quarter of it); a run whose
    /// process died reads as failed after this long.
    #[arg(long, env = "TMDBSYNC_RUN_LEASE_SECS", default_value_t = tmdbsync::stage::liveness::DEFAULT_RUN_LEASE.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    run_lease_secs: u64,
    /// Seconds a run waits while another run holds its stage of the database, before it exits
    /// with code 1 (0: do not wait).
    #[arg(long, env = "TMDBSYNC_STAGE_WAIT_SECS", default_value_t = tmdbsync::stage::liveness::DEFAULT_STAGE_WAIT.as_secs())]
    stage_wait_secs: u64,
}

/// Network timeouts, in seconds (0 is refused: it cannot work).
#[derive(Args)]
struct TimeoutArgs {
    /// Longest one TMDb or OMDb request may take, answer included.
    #[arg(long, env = "TMDBSYNC_TIMEOUT_SECS", default_value_t = tmdbsync::tmdb::client::DEFAULT_TIMEOUT_SECS)]
    timeout_secs: u64,
    /// Longest a connect (TCP and TLS) to TMDb, its export host or OMDb may take.
    #[arg(long, env = "TMDBSYNC_CONNECT_TIMEOUT_SECS", default_value_t = tmdbsync::tmdb::client::DEFAULT_CONNECT_TIMEOUT_SECS)]
    connect_timeout_secs: u64,
    /// Longest a TMDb or OMDb request may wait for the next bytes of the answer.
    #[arg(long, env = "TMDBSYNC_READ_TIMEOUT_SECS", default_value_t = tmdbsync::tmdb::client::DEFAULT_READ_TIMEOUT_SECS)]
    read_timeout_secs: u64,
    /// Longest the export download may receive nothing before it fails.
    #[arg(long, env = "TMDBSYNC_EXPORT_IDLE_TIMEOUT_SECS", default_value_t = tmdbsync::tmdb::client::DEFAULT_EXPORT_IDLE_TIMEOUT_SECS)]
    export_idle_timeout_secs: u64,
    /// Longest the whole export download may take.
    #[arg(long, env = "TMDBSYNC_EXPORT_TIMEOUT_SECS", default_value_t = tmdbsync::tmdb::client::DEFAULT_EXPORT_TIMEOUT_SECS)]
    export_timeout_secs: u64,
}

impl TimeoutArgs {
    /// The timeouts, or the configuration error naming the flag that is 0.
    fn durations(&self) -> Result<[Duration; 5], (ExitCode, String)> {
        let all = [
            ("--timeout-secs", self.timeout_secs),
            ("--connect-timeout-secs", self.connect_timeout_secs),
            ("--read-timeout-secs", self.read_timeout_secs),
            ("--export-idle-timeout-secs", self.export_idle_timeout_secs),
            ("--export-timeout-secs", self.export_timeout_secs),
        ];
        if let Some((flag, _)) = all.iter().find(|(_, v)| *v == 0) {
            return Err((
                ExitCode::Config,
                format!(
                    "{flag} is 0, so no request could ever finish: give it at least 1 (second)"
                ),
            ));
        }
        Ok(all.map(|(_, v)| Duration::from_secs(v)))
    }
}

#[derive(Args)]
struct EnrichArgs {
    /// OMDb base URL.
    #[arg(long, env = "OMDB_URL", default_value = tmdbsync::omdb::DEFAULT_URL)]
    omdb_url: String,
    /// OMDb API key (without one the OMDb stage only records movies lacking an imdb id).
    #[arg(long, env = "OMDB_API_KEY", hide_env_values = true)]
    omdb_api_key: Option<String>,
    /// OMDb calls per UTC day, across all runs.
    #[arg(long, env = "TMDBSYNC_OMDB_DAILY_LIMIT", default_value_t = 1000, value_parser = clap::value_parser!(i32).range(0..))]
    omdb_daily_limit: i32,
    /// Cast members billed under this order count as key people (collaborations, PQS).
    #[arg(long, env = "TMDBSYNC_TOP_CAST", default_value_t = tmdbsync::plan::enrich::DEFAULT_TOP_CAST, value_parser = clap::value_parser!(i32).range(1..))]
    top_cast: i32,
}

/// `--stages` of `tmdbsync run`.
#[derive(Clone)]
struct StageList(Vec<StagePlan>);

fn stage_list(s: &str) -> Result<StageList, String> {
    tmdbsync::plan::enrich::parse_stages(s).map(StageList)
}

/// `--stages` of `tmdbsync worker enrich`.
#[derive(Clone)]
struct EnrichList(Vec<EnrichStage>);

fn enrich_list(s: &str) -> Result<EnrichList, String> {
    tmdbsync::plan::enrich::parse_enrich_stages(s).map(EnrichList)
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    enrich: EnrichArgs,
    /// Stages to run, in this order (`enrich` = omdb,collaborations,pqs).
    #[arg(long, default_value = "catalog,bulk,delta", value_parser = stage_list)]
    stages: StageList,
    /// Bulk pages (20 movies each) this run takes, from the first page not done.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(i32).range(1..))]
    pages: i32,
    /// Also refetch this many movies fetched longest ago (delta stage).
    #[arg(long, default_value_t = 0)]
    refresh_stale: i64,
}

#[derive(Args)]
struct WorkerArgs {
    /// The stage this Job runs.
    stage: RunType,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    enrich: EnrichArgs,
    /// Enrich: the enrichment stages to run.
    #[arg(long = "stages", env = "TMDBSYNC_ENRICH_STAGES", default_value = "omdb,collaborations,pqs", value_parser = enrich_list)]
    enrich_stages: EnrichList,
    /// The SyncRun this pod works for (all pods of the run share its counters).
    #[arg(long, env = "TMDBSYNC_RUN_NAME")]
    run_name: String,
    /// Scheduled or manual.
    #[arg(long, env = "TMDBSYNC_TRIGGER", default_value = "manual")]
    trigger: String,
    /// First bulk page of the run.
    #[arg(long, env = "TMDBSYNC_PAGES_FROM", requires = "pages_to")]
    pages_from: Option<i32>,
    /// Last bulk page of the run.
    #[arg(long, env = "TMDBSYNC_PAGES_TO", requires = "pages_from")]
    pages_to: Option<i32>,
    /// First day of an explicit delta window.
    #[arg(long, env = "TMDBSYNC_WINDOW_START", requires = "window_end")]
    window_start: Option<NaiveDate>,
    /// Last day of an explicit delta window.
    #[arg(long, env = "TMDBSYNC_WINDOW_END", requires = "window_start")]
    window_end: Option<NaiveDate>,
    /// Refetch every movie of the page range (a manual re-import).
    #[arg(long, env = "TMDBSYNC_REFETCH")]
    refetch: bool,
    /// This pod's shard (the Job's completion index).
    #[arg(long, env = "JOB_COMPLETION_INDEX", default_value_t = 0)]
    shard_index: u32,
    /// Pods sharing the run.
    #[arg(long, env = "TMDBSYNC_SHARDS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    shards: u32,
}

#[derive(Args)]
struct ControllerArgs {
    /// Watch only this namespace (default: all).
    #[arg(long, env = "TMDBSYNC_NAMESPACE")]
    namespace: Option<String>,
    /// Worker image for Jobs when a TmdbSync names none.
    #[arg(
        long,
        env = "TMDBSYNC_WORKER_IMAGE",
        default_value = "ghcr.io/tmdbsync/tmdbsync:latest"
    )]
    worker_image: String,
    /// Seconds between counter mirrors of a running SyncRun.
    #[arg(long, default_value_t = 5)]
    mirror_interval_secs: u64,
    /// This replica's name in events and in the leader Lease (the pod name).
    #[arg(long, env = "POD_NAME")]
    instance: Option<String>,
    /// Act only while holding the leader Lease, so several replicas never act at once.
    #[arg(long, env = "TMDBSYNC_LEADER_ELECTION")]
    leader_election: bool,
    /// Namespace of the leader Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// Name of the leader Lease.
    #[arg(long, default_value = "tmdbsync-controller")]
    lease_name: String,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "TMDBSYNC_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Seconds a Lease stays valid without renewal (renewals every 2/15 of it, give up after 2/3).
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(3..))]
    lease_duration_secs: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
    /// The Sync Health web page as one self-contained HTML file.
    Html,
}

#[derive(Args)]
struct StatusArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Output format (`-o json` is the same document as the web page's health.json).
    #[arg(
        long,
        short = 'o',
        visible_alias = "output",
        value_enum,
        default_value = "text"
    )]
    format: Format,
    /// The TmdbSync this database belongs to (NAMESPACE/NAME), so alerts name `kubectl
    /// tmdbsync` commands.
    #[arg(long)]
    sync: Option<String>,
}

#[derive(Args)]
struct DashboardArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Address to serve the page on (port 0 picks a free one; the URL is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:8090")]
    addr: SocketAddr,
    /// The TmdbSync this database belongs to (NAMESPACE/NAME), so the page names `kubectl
    /// tmdbsync` commands; without it the page names `tmdbsync` commands.
    #[arg(long)]
    sync: Option<String>,
}

fn main() -> ProcessExit {
    let cli = Cli::parse();
    tmdbsync::telemetry::init();
    tmdbsync::install_crypto_provider();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let code = runtime.block_on(async {
        match cli.command {
            Command::Simulate(a) => simulate(a).await,
            Command::Migrate(a) => migrate(a).await,
            Command::Run(a) => run(a).await,
            Command::Status(a) => status(a).await,
            Command::Dashboard(a) => dashboard(a).await,
            Command::Worker(a) => worker(a).await,
            Command::Controller(a) => controller(a).await,
            Command::Crd => {
                print!("{}", tmdbsync::api::crds_yaml());
                Ok(ExitCode::Success)
            }
        }
    });
    match code {
        Ok(code) => ProcessExit::from(code as u8),
        Err(e) => {
            eprintln!("tmdbsync: error: {e:#}");
            ProcessExit::from(ExitCode::Retryable as u8)
        }
    }
}

async fn simulate(a: SimulateArgs) -> anyhow::Result<ExitCode> {
    let mut config = tmdbsync::sim::SimConfig {
        movies: a.movies,
        adult_movies: a.adult_movies,
        seed: a.seed,
        rps: a.rps,
        latency_ms: a.latency_ms,
        error_rate: a.error_rate,
        glitch_rate: a.glitch_rate,
        ..Default::default()
    };
    if let Some(d) = a.start_date {
        config.start_date = d;
    }
    let listener = tokio::net::TcpListener::bind(a.addr)
        .await
        .with_context(|| format!("binding {}", a.addr))?;
    let addr = listener.local_addr()?;
    println!(
        "tmdbsync simulator listening on http://{addr} (TMDb /3, exports /p/exports, OMDb /omdb/)"
    );
    tokio::select! {
        r = tmdbsync::sim::serve(config, listener) => r?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(ExitCode::Success)
}

/// Connects and migrates (commands that write).
async fn connect(db: &DbArgs) -> Result<Store, (ExitCode, String)> {
    let store_error = |e: StoreError| (ExitCode::from(&e), e.to_string());
    let store = Store::connect(&db.database_url, 8)
        .await
        .map_err(store_error)?;
    store.migrate().await.map_err(store_error)?;
    Ok(store)
}

/// Connects read-only and checks the schema without changing it (commands that only read).
async fn connect_read_only(db: &DbArgs) -> Result<Store, (ExitCode, String)> {
    let store_error = |e: StoreError| (ExitCode::from(&e), e.to_string());
    let store = Store::connect_read_only(&db.database_url, 2)
        .await
        .map_err(store_error)?;
    store.check_schema().await.map_err(store_error)?;
    Ok(store)
}

/// Checks that `value` of `flag` is an http(s) URL with a host; the error names the fix, with
/// `example` (the flag's default).
fn http_url(flag: &str, value: &str, example: &str) -> Result<(), (ExitCode, String)> {
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

fn fail((code, message): (ExitCode, String)) -> ExitCode {
    eprintln!("tmdbsync: error: {message}");
    code
}

async fn migrate(a: DbArgs) -> anyhow::Result<ExitCode> {
    match connect(&a).await {
        Ok(_) => {
            eprintln!("tmdbsync: database is migrated");
            Ok(ExitCode::Success)
        }
        Err(e) => Ok(fail(e)),
    }
}

async fn engine(a: &EngineArgs) -> Result<Engine, ExitCode> {
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
        progress: Progress::auto(),
        marks: Default::default(),
        runs: RunControl::new(
            Duration::from_secs(a.faults.run_lease_secs),
            Duration::from_secs(a.faults.stage_wait_secs),
        ),
    })
}

/// Resolves on SIGTERM (a pod being stopped) or SIGINT (Ctrl-C), naming it.
async fn shutdown_signal() -> &'static str {
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
async fn until_signal(
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

fn enrich_options(
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

async fn run_stage(
    engine: &Engine,
    stage: RunType,
    label: &RunLabel,
    bulk: BulkOptions,
    delta: DeltaOptions,
    enrich: &EnrichOptions,
) -> Result<tmdbsync::stage::StageReport, StageError> {
    match stage {
        RunType::Catalog => tmdbsync::stage::catalog::run(engine, label).await,
        RunType::Bulk => tmdbsync::stage::bulk::run(engine, bulk, label).await,
        RunType::Delta => tmdbsync::stage::delta::run(engine, delta, label).await,
        RunType::Enrich => tmdbsync::stage::enrich::run(engine, enrich, label).await,
    }
}

async fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    // Check the OMDb settings before any stage runs, not when the enrich stage comes.
    if let Err(code) = enrich_options(&a.enrich, &a.engine.timeouts, Vec::new()) {
        return Ok(code);
    }
    let engine = match engine(&a.engine).await {
        Ok(e) => e,
        Err(code) => return Ok(code),
    };
    let label = RunLabel::default();
    let bulk = BulkOptions {
        pages: None,
        pages_per_run: a.pages,
        shard: None,
        refetch: false,
    };
    let delta = DeltaOptions {
        lookback_days: a.engine.lookback_days,
        window: None,
        refresh_stale: a.refresh_stale,
    };
    let work = async {
        let mut all_ok = true;
        let mut unresolved = 0i64;
        for plan in &a.stages.0 {
            let (stage, stages) = match plan {
                StagePlan::Tmdb(t) => (*t, Vec::new()),
                StagePlan::Enrich(s) => (RunType::Enrich, s.clone()),
            };
            let enrich = match enrich_options(&a.enrich, &a.engine.timeouts, stages) {
                Ok(e) => e,
                Err(code) => return code,
            };
            match run_stage(&engine, stage, &label, bulk, delta, &enrich).await {
                Ok(report) => {
                    // The stage's summary is the run's closing log line (stage::close_run).
                    all_ok &= report.succeeded;
                    unresolved += i64::from(report.counters.errors);
                }
                Err(e) => {
                    return fail((ExitCode::from(&e), format!("{stage} stage failed: {e}")));
                }
            }
        }
        if !all_ok {
            ExitCode::Retryable
        } else if unresolved > 0 {
            eprintln!(
                "tmdbsync: completed with {unresolved} unresolved errors (movies still failing after \
                 every try, listed in sync_errors); the next run retries them (exit code 5)"
            );
            ExitCode::CompletedWithErrors
        } else {
            ExitCode::Success
        }
    };
    Ok(until_signal(&engine, work).await)
}

async fn worker(a: WorkerArgs) -> anyhow::Result<ExitCode> {
    let engine = match engine(&a.engine).await {
        Ok(mut e) => {
            e.progress = Progress::lines();
            e
        }
        Err(code) => return Ok(code),
    };
    let label = RunLabel {
        name: Some(a.run_name.clone()),
        trigger: Some(a.trigger.clone()),
    };
    let bulk = BulkOptions {
        pages: a
            .pages_from
            .zip(a.pages_to)
            .map(|(from, to)| tmdbsync::plan::pages::PageRange { from, to }),
        pages_per_run: 200,
        shard: Some((a.shard_index, a.shards)),
        refetch: a.refetch,
    };
    let delta = DeltaOptions {
        lookback_days: a.engine.lookback_days,
        window: a
            .window_start
            .zip(a.window_end)
            .map(|(start, end)| tmdbsync::plan::windows::DeltaWindow { start, end }),
        refresh_stale: 0,
    };
    let enrich = match enrich_options(&a.enrich, &a.engine.timeouts, a.enrich_stages.0.clone()) {
        Ok(e) => e,
        Err(code) => return Ok(code),
    };
    tracing::info!(run = %a.run_name, stage = %a.stage, shard = a.shard_index, shards = a.shards, "worker starting");
    let work = async {
        match run_stage(&engine, a.stage, &label, bulk, delta, &enrich).await {
            Ok(report) => {
                // The summary is the run's closing log line (stage::close_run). Movies still
                // failing do not fail the pod: the run completed (exit code 5 is `tmdbsync
                // run`'s; a failed pod would be retried or fail the Job).
                if report.succeeded {
                    ExitCode::Success
                } else {
                    ExitCode::Retryable
                }
            }
            Err(e) => fail((ExitCode::from(&e), format!("{} stage failed: {e}", a.stage))),
        }
    };
    Ok(until_signal(&engine, work).await)
}

async fn controller(a: ControllerArgs) -> anyhow::Result<ExitCode> {
    use tmdbsync::controller::leader::{LeaderElector, LeaseTiming, default_identity};
    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API")?;
    let config = tmdbsync::controller::ControllerConfig {
        namespace: a.namespace,
        worker_image: a.worker_image,
        mirror_interval: std::time::Duration::from_secs(a.mirror_interval_secs),
        ..Default::default()
    };
    let ready = tmdbsync::web::Readiness::default();
    let metrics = std::sync::Arc::new(tmdbsync::telemetry::metrics::Metrics::new());
    let listener = tokio::net::TcpListener::bind(a.metrics_addr)
        .await
        .with_context(|| format!("binding {}", a.metrics_addr))?;
    let identity = a.instance.clone().unwrap_or_else(default_identity);
    let ctx = std::sync::Arc::new(tmdbsync::controller::Context::new(
        client.clone(),
        config,
        Some(identity.clone()),
        metrics.clone(),
    ));
    tokio::spawn(tmdbsync::web::dashboard::serve_controller(
        listener,
        ready.clone(),
        metrics,
        std::sync::Arc::new(tmdbsync::controller::dashboard::ControllerDirectory::new(
            ctx.clone(),
        )),
    ));
    if !a.leader_election {
        tracing::info!("controller starting (no leader election)");
        ready.set(true);
        tmdbsync::controller::run(client, ctx).await;
        return Ok(ExitCode::Success);
    }
    let lease = std::time::Duration::from_secs(a.lease_duration_secs);
    let timing = LeaseTiming {
        lease_duration: lease,
        renew_deadline: lease * 2 / 3,
        retry_period: lease * 2 / 15,
    };
    let elector = LeaderElector::new(
        client.clone(),
        &a.lease_namespace,
        &a.lease_name,
        &identity,
        timing,
    );
    // A standby is ready: it is healthy and can take over, so rolling updates can proceed.
    ready.set(true);
    tracing::info!(identity = %identity, lease = %a.lease_name, "waiting to become the leader");
    tokio::select! {
        r = elector.acquire() => r.context("acquiring the leader lease")?,
        _ = tokio::signal::ctrl_c() => return Ok(ExitCode::Success),
    }
    tracing::info!(identity = %identity, "became the leader; controller starting");
    let handle = elector.renew_in_background();
    let lost = handle.lost();
    tokio::select! {
        _ = tmdbsync::controller::run(client, ctx) => {
            handle.release().await;
            Ok(ExitCode::Success)
        }
        _ = lost => {
            // Stop acting at once; Kubernetes restarts the pod, which then queues for the lease.
            eprintln!("tmdbsync: error: lost the leader lease; exiting so another replica takes over");
            Ok(ExitCode::Retryable)
        }
    }
}

/// Reads only: works on a read replica, and never creates or migrates a schema.
async fn status(a: StatusArgs) -> anyhow::Result<ExitCode> {
    let store = match connect_read_only(&a.db).await {
        Ok(s) => s,
        Err(e) => return Ok(fail(e)),
    };
    let facts = match a
        .sync
        .as_deref()
        .map(tmdbsync::plan::health::SyncFacts::named)
    {
        Some(Err(e)) => return Ok(fail((ExitCode::Config, e))),
        Some(Ok(f)) => f,
        None => Default::default(),
    };
    let health = match tmdbsync::web::dashboard::health_of(&store, &facts).await {
        Ok(h) => h,
        Err(e) => return Ok(fail((ExitCode::from(&e), e.to_string()))),
    };
    match a.format {
        Format::Text => print!("{}", tmdbsync::report::render(&health)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&health)?),
        Format::Html => print!("{}", tmdbsync::web::dashboard::health_file(&health)),
    }
    Ok(ExitCode::Success)
}

/// Serves the Sync Health page of one database, read-only, until killed.
async fn dashboard(a: DashboardArgs) -> anyhow::Result<ExitCode> {
    let facts = match a
        .sync
        .as_deref()
        .map(tmdbsync::plan::health::SyncFacts::named)
    {
        Some(Err(e)) => return Ok(fail((ExitCode::Config, e))),
        Some(Ok(f)) => f,
        None => Default::default(),
    };
    let store = match connect_read_only(&a.db).await {
        Ok(s) => s,
        Err(e) => return Ok(fail(e)),
    };
    let listener = tokio::net::TcpListener::bind(a.addr)
        .await
        .with_context(|| format!("binding {}", a.addr))?;
    println!("tmdbsync dashboard on http://{}/", listener.local_addr()?);
    tokio::select! {
        r = tmdbsync::web::dashboard::serve_database(listener, store, facts) => r?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(ExitCode::Success)
}
