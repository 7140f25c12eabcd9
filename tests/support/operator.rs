//! The operator's end-to-end harness on the test control plane ([`super::cluster`]): the CRDs, the
//! Secrets and manifests the tests apply, a controller process, and waiting for runs.
//!
//! ```ignore
//! mod support;
//! use support::cluster::*;
//! use support::operator::*;
//!
//! let cluster = Cluster::shared();
//! install_crds(cluster);
//! let ns = cluster.namespace("e2e-x");
//! apply_secrets(cluster, &ns, "the-key", &db.url);
//! let controller = ControllerProcess::start(cluster, &ns, &[]);
//! apply(cluster, &ns, &tmdb_sync(&sim).schedule("* * * * *"));
//! apply(cluster, &ns, &sync_run("first", "Catalog"));
//! let runs: Api<SyncRun> = Api::namespaced(cluster.client(), &ns);
//! let run = run_succeeded(&runs, "first", Duration::from_secs(60)).await;
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kube::Api;
use serde::Serialize;
use serde_json::{Value, json};
use tmdbsync::api::{RunPhase, SyncRun};
use tmdbsync::sim::SimHandle;

use super::BIN;
use super::cluster::{Cluster, wait_for};

/// The TmdbSync that [`tmdb_sync`] builds and [`sync_run`] refers to.
pub const SYNC: &str = "cinegraph";
/// A cron schedule that is not due during a test (1 January, 03:00): runs are started by hand.
pub const NOT_DUE: &str = "0 3 1 1 *";

/// Applies `crds/tmdbsync.io.yaml` (server-side, so every test may) and waits until both CRDs are
/// Established. The chart's `helm install` creates them only where missing, so chart tests call this
/// too to have the current ones.
pub fn install_crds(cluster: &Cluster) {
    install_crd_file(
        cluster,
        concat!(env!("CARGO_MANIFEST_DIR"), "/crds/tmdbsync.io.yaml"),
    );
}

/// Applies the CRD file `path` (server-side, forcing: it replaces whatever version is installed)
/// and waits until both CRDs are Established.
pub fn install_crd_file(cluster: &Cluster, path: &str) {
    cluster.kubectl_ok(["apply", "--server-side", "--force-conflicts", "-f", path]);
    cluster.kubectl_ok([
        "wait",
        "--for=condition=Established",
        "--timeout=30s",
        "crd/tmdbsyncs.tmdbsync.io",
        "crd/syncruns.tmdbsync.io",
    ]);
}

/// Creates or replaces Secret `name` with `data` in `ns`. Server-side apply: no
/// last-applied-configuration annotation repeats the values.
pub fn apply_secret(cluster: &Cluster, ns: &str, name: &str, data: &[(&str, &str)]) {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                        "stringData": data});
    cluster.kubectl_stdin(
        ["-n", ns, "apply", "--server-side", "-f", "-"],
        &secret.to_string(),
    );
}

/// The Secrets a [`tmdb_sync`] reads: `tmdb` (`api-key`) and `cinegraph-db` (`url`), created or
/// replaced.
pub fn apply_secrets(cluster: &Cluster, ns: &str, api_key: &str, db_url: &str) {
    apply_secret(cluster, ns, "tmdb", &[("api-key", api_key)]);
    apply_secret(cluster, ns, "cinegraph-db", &[("url", db_url)]);
}

/// `kubectl apply` of `manifest` in `ns`; panics when the API server refuses it.
pub fn apply(cluster: &Cluster, ns: &str, manifest: &impl Serialize) {
    if let Err(refusal) = try_apply(cluster, ns, manifest) {
        panic!("kubectl apply refused it: {refusal}");
    }
}

/// `kubectl apply` of `manifest` in `ns`: `Ok` with kubectl's output, or `Err` with it when the
/// API server refused the object.
pub fn try_apply(cluster: &Cluster, ns: &str, manifest: &impl Serialize) -> Result<String, String> {
    let manifest = serde_json::to_string(manifest).expect("a manifest serializes");
    let out = cluster.kubectl_input(["-n", ns, "apply", "-f", "-"], &manifest);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// A manifest as JSON, changed field by field before it is applied.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct Manifest(Value);

/// TmdbSync [`SYNC`] against `sim`: the Secrets of [`apply_secrets`], 400 requests/s, 1000 pages a
/// bulk run, one retry per Job index, and bulk and delta schedules [`NOT_DUE`].
pub fn tmdb_sync(sim: &SimHandle) -> Manifest {
    Manifest(json!({
        "apiVersion": "tmdbsync.io/v1alpha1",
        "kind": "TmdbSync",
        "metadata": {"name": SYNC},
        "spec": {
            "tmdb": {
                "apiKeySecretRef": {"name": "tmdb", "key": "api-key"},
                "baseUrl": sim.tmdb_url(),
                "exportBaseUrl": sim.export_url(),
                "requestsPerSecond": 400
            },
            "database": {"urlSecretRef": {"name": "cinegraph-db", "key": "url"}},
            "bulk": {"schedule": NOT_DUE, "pagesPerRun": 1000},
            "delta": {"schedule": NOT_DUE},
            "jobTemplate": {"backoffLimitPerIndex": 1}
        }
    }))
}

/// A manual SyncRun `name` of `run_type` (`Catalog`, `Bulk`, `Delta`, `Enrich`) for [`SYNC`].
pub fn sync_run(name: &str, run_type: &str) -> Manifest {
    Manifest(json!({
        "apiVersion": "tmdbsync.io/v1alpha1", "kind": "SyncRun", "metadata": {"name": name},
        "spec": {"syncRef": {"name": SYNC}, "type": run_type}
    }))
}

impl Manifest {
    /// Renames the object.
    pub fn named(self, name: &str) -> Self {
        self.set("metadata.name", json!(name))
    }

    /// A TmdbSync's bulk and delta schedules.
    pub fn schedule(self, cron: &str) -> Self {
        self.set("spec.bulk.schedule", json!(cron))
            .set("spec.delta.schedule", json!(cron))
    }

    /// Sets the field at the dotted `path` (e.g. `spec.timeZone`), creating objects on the way.
    pub fn set(mut self, path: &str, value: Value) -> Self {
        let mut at = &mut self.0;
        for key in path.split('.') {
            at = &mut at[key];
        }
        *at = value;
        self
    }
}

/// A `tmdbsync controller` process, killed on drop; its stdout and stderr go to a log file.
pub struct ControllerProcess {
    child: Child,
    log: PathBuf,
    metrics_addr: SocketAddr,
}

impl ControllerProcess {
    /// The controller of namespace `ns` with `extra` arguments: worker image `tmdbsync:e2e` (the
    /// node agent runs [`BIN`]), status mirrored every second, metrics on a free port, JSON logs at
    /// debug level.
    pub fn start(cluster: &Cluster, ns: &str, extra: &[&str]) -> Self {
        Self::start_with(cluster, ns, extra, &[], None)
    }

    /// [`start`](Self::start) with extra environment variables and, when given, the metrics
    /// address (default: a free port).
    pub fn start_with(
        cluster: &Cluster,
        ns: &str,
        extra: &[&str],
        env: &[(&str, &str)],
        metrics_addr: Option<SocketAddr>,
    ) -> Self {
        let log = std::env::temp_dir().join(format!(
            "tmdbsync-controller-{ns}-{}.log",
            fastrand::u32(..)
        ));
        let metrics_addr =
            metrics_addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], super::free_port())));
        let out = std::fs::File::create(&log).expect("create the controller log");
        let child = Command::new(BIN)
            .args([
                "controller",
                "--namespace",
                ns,
                "--worker-image",
                "tmdbsync:e2e",
                "--mirror-interval-secs",
                "1",
                "--metrics-addr",
                &metrics_addr.to_string(),
            ])
            .args(extra)
            .env("KUBECONFIG", cluster.kubeconfig())
            .env("TMDBSYNC_LOG_FORMAT", "json")
            .env("RUST_LOG", "info,tmdbsync=debug")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup the controller log"))
            .stderr(out)
            .spawn()
            .expect("start the controller");
        ControllerProcess {
            child,
            log,
            metrics_addr,
        }
    }

    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// The HTTP status of `GET <path>` on the metrics address (0 when nothing answers).
    pub async fn http_status(&self, path: &str) -> u16 {
        self.get(path).await.map_or(0, |r| r.status().as_u16())
    }

    /// The HTTP status and body of `GET <path>` (status 0 when nothing answers).
    pub async fn http_text(&self, path: &str) -> (u16, String) {
        match self.get(path).await {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    }

    /// Waits up to `timeout` for the process to exit and returns its status (`None`: still running).
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the controller") {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        let response = self.get("/metrics").await.expect("metrics endpoint");
        response.text().await.unwrap()
    }

    async fn get(&self, path: &str) -> reqwest::Result<reqwest::Response> {
        let http = tmdbsync::http::http_client_builder().build().unwrap();
        http.get(format!("http://{}{path}", self.metrics_addr))
            .send()
            .await
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Kills the process (SIGKILL: no lease release, no cleanup) and reaps it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A SyncRun's phase.
pub fn run_phase(run: &SyncRun) -> Option<RunPhase> {
    run.status.as_ref().and_then(|s| s.phase)
}

/// Waits until SyncRun `name` has finished (succeeded or failed) and returns it.
pub async fn run_finished(runs: &Api<SyncRun>, name: &str, timeout: Duration) -> SyncRun {
    wait_for(runs, name, timeout, |r| {
        run_phase(r).is_some_and(RunPhase::is_finished)
    })
    .await
}

/// Waits until SyncRun `name` has finished and asserts that it succeeded.
pub async fn run_succeeded(runs: &Api<SyncRun>, name: &str, timeout: Duration) -> SyncRun {
    let run = run_finished(runs, name, timeout).await;
    assert_eq!(
        run_phase(&run),
        Some(RunPhase::Succeeded),
        "{name}: {:?}",
        run.status
    );
    run
}
