//! The `tmdbsync` command line: the arguments, and one call per command into [`cli`]. No logic
//! lives here.

mod cli;

use std::net::SocketAddr;
use std::process::ExitCode as ProcessExit;
use std::time::Duration;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

use tmdbsync::exit::ExitCode;
use tmdbsync::plan::RunType;
use tmdbsync::plan::enrich::{EnrichStage, StagePlan};
use tmdbsync::stage::catalog::CatalogSource;

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
    /// Most connections to TMDb open at once (requests in flight); a Job pod gets its run's share.
    #[arg(long, env = "TMDBSYNC_MAX_CONNECTIONS", default_value_t = tmdbsync::plan::run::TMDB_CONNECTIONS, value_parser = clap::value_parser!(u32).range(1..=512))]
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
    /// Where the catalog stage lists movie ids from: TMDb's daily export, or `/discover/movie`
    /// walked in release-date windows (for hosts that cannot reach the export; says how much of
    /// the catalog it cannot reach).
    #[arg(
        long,
        env = "TMDBSYNC_BULK_SOURCE",
        value_enum,
        default_value = "export"
    )]
    bulk_source: BulkSource,
    /// Delta stage: also refetch up to this many movies a day, the ones fetched longest ago (all
    /// delta runs of the last 24 hours share it; 0: none).
    #[arg(long, env = "TMDBSYNC_REFRESH_STALE", default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..))]
    refresh_stale: i64,
    /// Bulk stage: pages planned and fetched at a time (20 movies a page); bounds the memory a run
    /// holds, whatever its pages per run or the catalog's size.
    #[arg(long, env = "TMDBSYNC_BULK_CHUNK_PAGES", default_value_t = tmdbsync::stage::bulk::DEFAULT_CHUNK_PAGES, value_parser = clap::value_parser!(i32).range(1..))]
    bulk_chunk_pages: i32,
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

/// `--job-resources`: a Kubernetes `ResourceRequirements` as JSON.
fn job_resources(s: &str) -> Result<k8s_openapi::api::core::v1::ResourceRequirements, String> {
    serde_json::from_str(s).map_err(|e| {
        format!("not a Kubernetes resources object ({{\"requests\": …, \"limits\": …}}): {e}")
    })
}

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
    /// Resources of worker pods when a TmdbSync sets no `jobTemplate.resources`, as JSON
    /// (`{"requests":{"memory":"128Mi"},"limits":{"memory":"256Mi"}}`; default: 100m CPU and
    /// 128Mi requested, 256Mi memory limit).
    #[arg(long, env = "TMDBSYNC_JOB_RESOURCES", value_parser = job_resources)]
    job_resources: Option<k8s_openapi::api::core::v1::ResourceRequirements>,
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
    /// Seconds the API server may stay silent, or a watch keep failing, before /readyz reports
    /// not ready.
    #[arg(long, env = "TMDBSYNC_API_GRACE_SECS", default_value_t = tmdbsync::telemetry::readiness::DEFAULT_GRACE.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    api_grace_secs: u64,
}

/// `--bulk-source` (the TmdbSync's `bulk.source`).
#[derive(Clone, Copy, ValueEnum)]
enum BulkSource {
    Export,
    Discover,
}

impl From<BulkSource> for CatalogSource {
    fn from(s: BulkSource) -> Self {
        match s {
            BulkSource::Export => CatalogSource::Export,
            BulkSource::Discover => CatalogSource::Discover(Default::default()),
        }
    }
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
    let args = Cli::parse();
    tmdbsync::telemetry::init();
    tmdbsync::http::install_crypto_provider();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let code = runtime.block_on(async {
        match args.command {
            Command::Simulate(a) => cli::serve::simulate(a).await,
            Command::Migrate(a) => cli::db::migrate(a).await,
            Command::Run(a) => cli::run::run(a).await,
            Command::Status(a) => cli::db::status(a).await,
            Command::Dashboard(a) => cli::serve::dashboard(a).await,
            Command::Worker(a) => cli::run::worker(a).await,
            Command::Controller(a) => cli::serve::controller(a).await,
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
