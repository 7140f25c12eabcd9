//! Test support: a private Postgres started from the system's binaries in a temp dir (unix socket
//! only, torn down on drop), and helpers to start the simulator and the engine.
#![allow(dead_code)]
pub mod cluster;
pub mod fake_http;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tmdbsync::stage::{Engine, Progress};
use tmdbsync::store::Store;
use tmdbsync::tmdb::{ApiKey, TmdbClient, TmdbConfig};

/// A throwaway Postgres server.
pub struct TestDb {
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<String>,
    /// Commits wait for the WAL flush, so a crash (immediate stop) loses no acknowledged commit.
    durable: bool,
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

fn output(cmd: &mut Command) -> String {
    let out = cmd.output().expect("running a command");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl TestDb {
    /// Starts a server (as the `postgres` user when we are root: initdb refuses root).
    pub fn start() -> TestDb {
        Self::start_with(false)
    }

    /// Starts a server whose acknowledged commits survive a crash (`synchronous_commit=on`), for
    /// tests that stop it with `-m immediate` while it is written to.
    pub fn start_durable() -> TestDb {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> TestDb {
        let bin = pg_bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("tmdbsync-pg-")
            .tempdir()
            .expect("tempdir");
        let is_root = output(Command::new("id").arg("-u")) == "0";
        let run_as = is_root.then(|| "postgres".to_string());
        if let Some(user) = &run_as {
            let uid: u32 = output(Command::new("id").args(["-u", user]))
                .parse()
                .expect("postgres user exists");
            let gid: u32 = output(Command::new("id").args(["-g", user]))
                .parse()
                .expect("postgres group");
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown temp dir");
        }
        let db = TestDb {
            url: format!(
                "postgres:///postgres?host={}&user=postgres",
                dir.path().display()
            ),
            dir,
            bin,
            run_as,
            durable,
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
        let opts = format!(
            "-k {} -c listen_addresses='' -c fsync=off -c synchronous_commit={} -c full_page_writes=off -c max_connections=200 -c shared_buffers=128MB",
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

/// An engine against the simulator at `tmdb_url`/`export_url` with test-friendly backoff.
pub fn engine(store: Store, sim: &tmdbsync::sim::SimHandle, rps: u32) -> Engine {
    let mut config = TmdbConfig::new(sim.tmdb_url(), ApiKey::new("test-key"));
    config.requests_per_second = rps;
    config.backoff_base = Duration::from_millis(50);
    config.timeout = Duration::from_secs(5);
    Engine {
        store,
        tmdb: TmdbClient::new(config).expect("client"),
        export_url: sim.export_url(),
        include_adult: false,
        concurrency: 20,
        progress: Progress::lines(),
        marks: Default::default(),
        runs: Default::default(),
    }
}

/// GET a simulator control endpoint as JSON.
pub async fn sim_get(sim: &tmdbsync::sim::SimHandle, path: &str) -> serde_json::Value {
    tmdbsync::http_client_builder()
        .build()
        .unwrap()
        .get(format!("{}{path}", sim.base_url()))
        .send()
        .await
        .expect("sim request")
        .json()
        .await
        .expect("sim json")
}

/// POST to a simulator control endpoint with a JSON body.
pub async fn sim_post(
    sim: &tmdbsync::sim::SimHandle,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    tmdbsync::http_client_builder()
        .build()
        .unwrap()
        .post(format!("{}{path}", sim.base_url()))
        .json(&body)
        .send()
        .await
        .expect("sim request")
        .json()
        .await
        .expect("sim json")
}
