//! The `tmdbsync` command line: parse, set up logging, dispatch. No logic lives here.

use std::net::SocketAddr;
use std::process::ExitCode as ProcessExit;

use anyhow::Context as _;
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

use tmdbsync::ExitCode;
use tmdbsync::plan::RunType;
use tmdbsync::plan::health::SyncHealth;
use tmdbsync::stage::bulk::BulkOptions;
use tmdbsync::stage::delta::DeltaOptions;
use tmdbsync::stage::{Engine, Progress, RunLabel, StageError};
use tmdbsync::store::Store;
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
    /// Print the Sync Health report.
    Status(StatusArgs),
    /// Print the CustomResourceDefinitions (YAML) generated from the Rust types.
    Crd,
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
}

#[derive(Args)]
struct RunArgs {
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
    /// Stages to run, in this order.
    #[arg(long, value_delimiter = ',', default_value = "catalog,bulk,delta")]
    stages: Vec<RunType>,
    /// Bulk pages (20 movies each) this run takes, from the first page not done.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(i32).range(1..))]
    pages: i32,
    /// Requests per second to TMDb.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    rps: u32,
    /// Detail requests in flight at once.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=512))]
    concurrency: u32,
    /// Most open connections to TMDb.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=512))]
    max_connections: u32,
    /// Import adult titles too.
    #[arg(long)]
    include_adult: bool,
    /// Days the first delta run looks back when no catalog date is known.
    #[arg(long, default_value_t = 1)]
    lookback_days: u32,
    /// Also refetch this many movies fetched longest ago (delta stage).
    #[arg(long, default_value_t = 0)]
    refresh_stale: i64,
    /// Per-request timeout to TMDb, in seconds.
    #[arg(long, default_value_t = 20)]
    timeout_secs: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Args)]
struct StatusArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
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

async fn connect(db: &DbArgs) -> Result<Store, (ExitCode, String)> {
    let store = Store::connect(&db.database_url, 8).await.map_err(|e| {
        let code = StageError::from(e);
        (ExitCode::from(&code), code.to_string())
    })?;
    store
        .migrate()
        .await
        .map_err(|e| (ExitCode::Retryable, e.to_string()))?;
    Ok(store)
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

async fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let key = ApiKey::new(a.api_key.clone());
    if key.is_empty() {
        return Ok(fail((ExitCode::Config, "the TMDb API key is empty".into())));
    }
    let store = match connect(&a.db).await {
        Ok(s) => s,
        Err(e) => return Ok(fail(e)),
    };
    let mut config = TmdbConfig::new(&a.tmdb_url, key);
    config.requests_per_second = a.rps;
    config.max_connections = a.max_connections as usize;
    config.timeout = std::time::Duration::from_secs(a.timeout_secs);
    let tmdb = TmdbClient::new(config).context("building the TMDb client")?;
    let engine = Engine {
        store,
        tmdb,
        export_url: a.export_url.clone(),
        include_adult: a.include_adult,
        concurrency: a.concurrency as usize,
        progress: Progress::auto(),
    };
    let label = RunLabel::default();
    let mut all_ok = true;
    for stage in &a.stages {
        let result = match stage {
            RunType::Catalog => tmdbsync::stage::catalog::run(&engine, &label).await,
            RunType::Bulk => {
                let options = BulkOptions {
                    pages: None,
                    pages_per_run: a.pages,
                    shard: None,
                };
                tmdbsync::stage::bulk::run(&engine, options, &label).await
            }
            RunType::Delta => {
                let options = DeltaOptions {
                    lookback_days: a.lookback_days,
                    window: None,
                    refresh_stale: a.refresh_stale,
                };
                tmdbsync::stage::delta::run(&engine, options, &label).await
            }
            RunType::Enrich => Err(StageError::Config(
                "the enrich stage is not available yet".into(),
            )),
        };
        match result {
            Ok(report) => {
                eprintln!("tmdbsync: {stage}: {}", report.message);
                all_ok &= report.succeeded;
            }
            Err(e) => {
                return Ok(fail((
                    ExitCode::from(&e),
                    format!("{stage} stage failed: {e}"),
                )));
            }
        }
    }
    Ok(if all_ok {
        ExitCode::Success
    } else {
        ExitCode::Retryable
    })
}

async fn status(a: StatusArgs) -> anyhow::Result<ExitCode> {
    let store = match connect(&a.db).await {
        Ok(s) => s,
        Err(e) => return Ok(fail(e)),
    };
    let inputs = tmdbsync::store::health::health_inputs(&store, 10).await?;
    let health = SyncHealth::compute(&inputs, chrono::Utc::now().date_naive());
    match a.format {
        Format::Text => print!("{}", tmdbsync::report::render(&health)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&health)?),
    }
    Ok(ExitCode::Success)
}
