//! Test support: a private Postgres started from the system's binaries in a temp dir (unix socket
//! only, torn down on drop), the simulator, the engine and the catalog + bulk prelude of engine
//! tests. The end-to-end harness is in [`cluster`] (the control plane) and [`operator`] (CRDs,
//! Secrets, manifests, the controller process).
#![allow(dead_code)]
pub mod cluster;
pub mod fake_http;
pub mod operator;
mod process;

pub use process::*;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tmdbsync::sim::{self, SimConfig, SimHandle};
use tmdbsync::stage::bulk::{self, BulkOptions};
use tmdbsync::stage::{Engine, Progress, RunLabel, catalog};
use tmdbsync::store::Store;
use tmdbsync::tmdb::{ApiKey, TmdbClient, TmdbConfig};

/// A throwaway Postgres server.
pub struct TestDb {
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<String>,
    /// Commits wait for the WAL flush, so a crash (immediate stop) loses no acknowledged commit.
    durable: bool,
    /// Also listens on 127.0.0.1 at this port (for clients that cannot reach the socket).
    tcp_port: Option<u16>,
    /// Another address it listens on (with `tcp_port`), e.g. a bridge that pods reach.
    extra_listen: Option<String>,
    pub url: String,
}

fn pg_bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("TMDBSYNC_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|p| p.join("initdb").exists());
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions
        .pop()
        .expect("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql) and TMDBSYNC_PG_BIN unset")
}

fn command_stdout(cmd: &mut Command) -> String {
    let out = cmd.output().expect("running a command");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl TestDb {
    /// Starts a server (as the `postgres` user when we are root: initdb refuses root).
    pub fn start() -> TestDb {
        Self::start_with(false, None)
    }

    /// Starts a server that also listens on 127.0.0.1 at a free port (see [`TestDb::tcp_port`]),
    /// for clients in a container; `url` stays the socket's.
    pub fn start_tcp() -> TestDb {
        Self::start_with(false, Some(free_port()))
    }

    /// [`TestDb::start_tcp`], also listening on `addr` (an address of this machine) and trusting
    /// clients on the networks this machine is directly connected to (pg_hba `samenet`).
    pub fn start_tcp_on(addr: &str) -> TestDb {
        let mut db = Self::start_with(false, Some(free_port()));
        db.extra_listen = Some(addr.to_string());
        let hba = db.data_dir().join("pg_hba.conf");
        let mut rules = std::fs::read_to_string(&hba).expect("read pg_hba.conf");
        rules.push_str("host all all samenet trust\n");
        std::fs::write(&hba, rules).expect("write pg_hba.conf");
        db.restart_fast();
        db
    }

    /// Starts a server whose acknowledged commits survive a crash (`synchronous_commit=on`), for
    /// tests that stop it with `-m immediate` while it is written to.
    pub fn start_durable() -> TestDb {
        Self::start_with(true, None)
    }

    fn start_with(durable: bool, tcp_port: Option<u16>) -> TestDb {
        let bin = pg_bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("tmdbsync-pg-")
            .tempdir()
            .expect("tempdir");
        let is_root = command_stdout(Command::new("id").arg("-u")) == "0";
        let run_as = is_root.then(|| "postgres".to_string());
        if let Some(user) = &run_as {
            let uid: u32 = command_stdout(Command::new("id").args(["-u", user]))
                .parse()
                .expect("postgres user exists");
            let gid: u32 = command_stdout(Command::new("id").args(["-g", user]))
                .parse()
                .expect("postgres group");
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown temp dir");
        }
        let db = TestDb {
            // The socket's name carries the port.
            url: format!(
                "postgres:///postgres?host={}&user=postgres{}",
                dir.path().display(),
                tcp_port.map(|p| format!("&port={p}")).unwrap_or_default()
            ),
            dir,
            bin,
            run_as,
            durable,
            tcp_port,
            extra_listen: None,
        };
        let data = db.data_dir();
        db.pg(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        db.start_server();
        db
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The socket directory.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The TCP port on 127.0.0.1 of a server started with [`TestDb::start_tcp`].
    pub fn tcp_port(&self) -> Option<u16> {
        self.tcp_port
    }

    fn pg(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let out = cmd
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running {tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
    }

    fn start_server(&self) {
        let listen = match self.tcp_port {
            Some(port) => match &self.extra_listen {
                Some(addr) => format!("-c listen_addresses=127.0.0.1,{addr} -p {port}"),
                None => format!("-c listen_addresses=127.0.0.1 -p {port}"),
            },
            None => "-c listen_addresses=''".to_string(),
        };
        let opts = format!(
            "-k {} {listen} -c fsync=off -c synchronous_commit={} -c full_page_writes=off -c max_connections=200 -c shared_buffers=128MB",
            self.dir.path().display(),
            if self.durable { "on" } else { "off" }
        );
        let log = self.dir.path().join("server.log");
        self.pg(
            "pg_ctl",
            &[
                "-D",
                self.data_dir().to_str().unwrap(),
                "-o",
                &opts,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
    }

    /// Stops the server abruptly (a crash, as far as clients can tell).
    pub fn stop(&self) {
        self.pg(
            "pg_ctl",
            &[
                "-D",
                self.data_dir().to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    /// Starts the server again after `stop`.
    pub fn restart(&self) {
        self.start_server();
    }

    /// Restarts the server the way `pg_ctl restart -m fast` does: sessions are terminated
    /// (SQLSTATE 57P01), open transactions rolled back, then the server starts again.
    pub fn restart_fast(&self) {
        self.pg(
            "pg_ctl",
            &[
                "-D",
                self.data_dir().to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
        self.start_server();
    }

    /// Crashes and restarts the server (`-m immediate`: no clean shutdown, crash recovery).
    pub fn restart_immediate(&self) {
        self.stop();
        self.start_server();
    }

    /// A connected, migrated store.
    pub async fn store(&self) -> Store {
        let store = Store::connect(&self.url, 16)
            .await
            .expect("connect to test db");
        store.migrate().await.expect("migrate");
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let exe = self.bin.join("pg_ctl");
        let data = self.data_dir();
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        let _ = cmd
            .args([
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .output();
    }
}

/// The simulator with `movies` movies (none adult) generated from `seed`, on a free local port.
pub async fn start_sim(movies: u64, seed: u64) -> SimHandle {
    spawn_sim(sim_config(movies, seed)).await
}

/// The simulator with `config` on a free local port.
pub async fn spawn_sim(config: SimConfig) -> SimHandle {
    sim::spawn(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator")
}

/// A local TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// Bulk options for a run over the next `pages_per_run` open pages.
pub fn pages(pages_per_run: i32) -> BulkOptions {
    BulkOptions {
        pages: None,
        pages_per_run,
        shard: None,
        refetch: false,
    }
}

/// Bulk options for a run over every open page.
pub const ALL_PAGES: BulkOptions = BulkOptions {
    pages: None,
    pages_per_run: 100_000,
    shard: None,
    refetch: false,
};

/// What an engine test runs against: a private Postgres with a migrated store, the simulator and an
/// engine against both.
/// Dropping it stops the simulator and the database server: keep it for the whole test and borrow
/// its [`parts`](EngineSetup::parts).
pub struct EngineSetup {
    /// The engine (the simulator's TMDb and export, test-friendly backoff).
    pub engine: Engine,
    /// The engine's store.
    pub store: Store,
    /// The simulator.
    pub sim: SimHandle,
    /// The database server (stopped when dropped).
    pub db: TestDb,
}

impl EngineSetup {
    /// Postgres, the simulator with `config`, and an engine allowed `rps` requests a second.
    pub async fn start(config: SimConfig, rps: u32) -> EngineSetup {
        let (db, store, sim) = store_and_sim(config).await;
        let engine = engine(store.clone(), &sim, rps);
        EngineSetup {
            engine,
            store,
            sim,
            db,
        }
    }

    /// The engine, its store and the simulator.
    pub fn parts(&self) -> (&Engine, &Store, &SimHandle) {
        (&self.engine, &self.store, &self.sim)
    }

    /// [`start`](EngineSetup::start), then the whole catalog imported ([`import_all`]).
    pub async fn imported(config: SimConfig, rps: u32) -> EngineSetup {
        let setup = EngineSetup::start(config, rps).await;
        import_all(&setup.engine).await;
        setup
    }
}

/// A private Postgres with a migrated store, and the simulator with `config`. Keep the database
/// for the whole test: dropping it stops the server.
pub async fn store_and_sim(config: SimConfig) -> (TestDb, Store, SimHandle) {
    let db = TestDb::start();
    let store = db.store().await;
    let sim = spawn_sim(config).await;
    (db, store, sim)
}

/// `movies` simulated movies (none adult) generated from `seed`; the other settings as default.
pub fn sim_config(movies: u64, seed: u64) -> SimConfig {
    SimConfig {
        movies,
        seed,
        ..Default::default()
    }
}

/// The prelude of engine tests: a Catalog run, then one Bulk run over every page; both must succeed.
pub async fn import_all(engine: &Engine) {
    load_catalog(engine).await;
    let b = bulk::run(engine, ALL_PAGES, &RunLabel::default())
        .await
        .expect("bulk run");
    assert!(b.succeeded, "{}", b.message);
}

/// The one `bigint` a query returns.
pub async fn scalar(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// Runs the catalog stage, which must succeed.
pub async fn load_catalog(engine: &Engine) {
    let report = catalog::run(engine, &RunLabel::default()).await.unwrap();
    assert!(report.succeeded, "catalog: {}", report.message);
}

/// Pages of the stored catalog (20 ids a page).
pub async fn catalog_pages(store: &Store) -> i64 {
    scalar(store, "SELECT (max(ordinal) + 19) / 20 FROM catalog_ids").await
}

/// Bulk pages checkpointed done.
pub async fn done_pages(store: &Store) -> i64 {
    scalar(
        store,
        "SELECT count(*) FROM bulk_pages WHERE status = 'done'",
    )
    .await
}

/// The label of a scheduled run named `name` (what a Job's pods carry).
pub fn scheduled(name: &str) -> RunLabel {
    RunLabel {
        name: Some(name.into()),
        trigger: Some("scheduled".into()),
    }
}

/// Shard `index` of `count` of a bulk run over pages `1..=pages`.
pub fn shard_of(pages: i32, index: u32, count: u32) -> BulkOptions {
    BulkOptions {
        pages: Some(tmdbsync::plan::pages::PageRange { from: 1, to: pages }),
        shard: Some((index, count)),
        ..ALL_PAGES
    }
}

/// The stored title of movie `id`.
pub async fn stored_title(store: &Store, id: i64) -> String {
    sqlx::query_scalar("SELECT title FROM movies WHERE id = $1")
        .bind(id)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// The ids of a JSON array of numbers.
pub fn ids(v: &Value) -> BTreeSet<i64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_i64().expect("id"))
        .collect()
}

/// `GET url`: the answer's status and body, or status 0 and no body when nothing answers (within
/// 30 s).
pub async fn http_get(url: &str) -> (u16, String) {
    let http = tmdbsync::http::http_client_builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    match http.get(url).send().await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

/// `GET url` answered with JSON; panics when nothing answers or the body is not JSON.
pub async fn get_json(url: &str) -> Value {
    let (status, body) = http_get(url).await;
    serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("GET {url}: {status} {body:?} is not JSON: {e}"))
}

/// An engine against the simulator, allowed `rps` requests a second, with test-friendly backoff.
pub fn engine(store: Store, sim: &SimHandle, rps: u32) -> Engine {
    let mut config = TmdbConfig::new(sim.tmdb_url(), ApiKey::new("test-key"));
    config.requests_per_second = rps;
    config.backoff_base = Duration::from_millis(50);
    config.timeout = Duration::from_secs(5);
    engine_with(store, config, &sim.export_url())
}

/// An engine with the TMDb client `config` and the daily export at `export_url`.
pub fn engine_with(store: Store, config: TmdbConfig, export_url: &str) -> Engine {
    Engine {
        store,
        tmdb: TmdbClient::new(config).expect("client"),
        export_url: export_url.to_string(),
        include_adult: false,
        concurrency: 20,
        bulk_chunk_pages: tmdbsync::stage::bulk::DEFAULT_CHUNK_PAGES,
        progress: Progress::lines(),
        marks: Default::default(),
        runs: Default::default(),
    }
}

/// GET a simulator control endpoint as JSON.
pub async fn sim_get(sim: &SimHandle, path: &str) -> Value {
    sim_json(http().get(format!("{}{path}", sim.base_url()))).await
}

/// POST to a simulator control endpoint with a JSON body.
pub async fn sim_post(sim: &SimHandle, path: &str, body: Value) -> Value {
    sim_json(http().post(format!("{}{path}", sim.base_url())).json(&body)).await
}

fn http() -> reqwest::Client {
    tmdbsync::http::http_client_builder().build().unwrap()
}

async fn sim_json(request: reqwest::RequestBuilder) -> Value {
    request
        .send()
        .await
        .expect("sim request")
        .json()
        .await
        .expect("sim json")
}

/// The ids a sync imports from the simulator's catalog: live and not adult.
pub async fn importable_ids(sim: &SimHandle) -> BTreeSet<i64> {
    sim_get(sim, "/__sim/catalog").await["live"]
        .as_array()
        .expect("the simulator lists live movies")
        .iter()
        .filter(|m| m["adult"] == serde_json::json!(false))
        .map(|m| m["id"].as_i64().expect("numeric id"))
        .collect()
}

/// The ids of the movies stored and not deleted.
pub async fn stored_live_ids(store: &Store) -> BTreeSet<i64> {
    let v: Vec<i64> = sqlx::query_scalar("SELECT id FROM movies WHERE deleted_at IS NULL")
        .fetch_all(store.pool())
        .await
        .expect("reading stored ids");
    v.into_iter().collect()
}
