//! Processes of the tests: the `tmdbsync` binary run as a command, and daemons (servers a test
//! starts) killed on drop with their output in a log file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use tmdbsync::sim::SimHandle;

use super::TestDb;

/// The tmdbsync binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_tmdbsync");

/// Runs a command off the async runtime and returns its output.
pub async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("run tmdbsync"))
        .await
        .unwrap()
}

/// A command's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `tmdbsync ARGS`: the binary under test with text logs, and none of the settings this
/// environment may carry (`DATABASE_URL`, the API keys, the TMDb URLs).
pub fn tmdbsync(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("TMDBSYNC_LOG_FORMAT", "text");
    for var in [
        "DATABASE_URL",
        "TMDB_API_KEY",
        "TMDB_URL",
        "TMDB_EXPORT_URL",
        "OMDB_API_KEY",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// `tmdbsync run` against `db` and the simulator, with the TMDb API key `key` in the environment
/// (as a Job passes it); add the stages and other flags with `.args`.
pub fn tmdbsync_run(db: &TestDb, sim: &SimHandle, key: &str) -> Command {
    let mut cmd = tmdbsync(&[
        "run",
        "--database-url",
        &db.url,
        "--tmdb-url",
        &sim.tmdb_url(),
        "--export-url",
        &sim.export_url(),
    ]);
    cmd.env("TMDB_API_KEY", key);
    cmd
}

/// What `tmdbsync status --format json` prints for `db` (it must succeed).
pub async fn status_json(db: &TestDb) -> serde_json::Value {
    let out = output(tmdbsync(&[
        "status",
        "--format",
        "json",
        "--database-url",
        &db.url,
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("status prints JSON")
}

/// A process a test starts and stops, killed (SIGKILL: no cleanup) and reaped on drop; its
/// stdout and stderr go to a log file.
pub struct Daemon {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` (stdin closed) as the daemon `name`, logging to `log`.
    pub fn spawn(name: &str, cmd: &mut Command, log: PathBuf) -> Daemon {
        let out = std::fs::File::create(&log).expect("create a daemon log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup the log"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Daemon {
            name: name.to_string(),
            child,
            log,
        }
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last lines of the log, headed by the daemon's name, for failure messages.
    pub fn tail(&self) -> String {
        log_tail(&self.name, &self.log)
    }

    /// Waits up to `timeout` for the process to exit and returns its status (`None`: still running).
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll a daemon") {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last 25 lines of the log file `log`, headed by `name`.
pub fn log_tail(name: &str, log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    format!(
        "--- {name} ({}), last lines:\n{}",
        log.display(),
        lines[lines.len().saturating_sub(25)..].join("\n")
    )
}
