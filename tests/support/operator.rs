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
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use kube::Api;
use serde::Serialize;
use serde_json::{Value, json};
use tmdbsync::api::{RunPhase, SyncRun};
use tmdbsync::sim::SimHandle;

use super::cluster::{Cluster, wait_for};
use super::{BIN, Daemon, http_get};

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

/// The reconcilers' rules as `(group, resource, verbs)`: what src/controller calls (see the
/// README's RBAC table for the call behind each verb). The chart grants exactly these.
pub const CONTROLLER_RULES: [(&str, &str, &[&str]); 9] = [
    ("tmdbsync.io", "tmdbsyncs", &["get", "list", "watch"]),
    ("tmdbsync.io", "tmdbsyncs/status", &["patch"]),
    (
        "tmdbsync.io",
        "syncruns",
        &["list", "watch", "create", "patch", "delete"],
    ),
    ("tmdbsync.io", "syncruns/status", &["patch"]),
    ("batch", "jobs", &["get", "list", "watch", "create"]),
    ("", "secrets", &["get"]),
    ("tmdbsync.io", "tmdbsyncs/finalizers", &["update"]),
    ("tmdbsync.io", "syncruns/finalizers", &["update"]),
    ("events.k8s.io", "events", &["create", "patch"]),
];

/// Role `name` with the [`CONTROLLER_RULES`] on the resources `granted` keeps.
pub fn controller_role(name: &str, granted: impl Fn(&str) -> bool) -> Value {
    let rules: Vec<Value> = CONTROLLER_RULES
        .iter()
        .filter(|(_, resource, _)| granted(resource))
        .map(|(group, resource, verbs)| {
            json!({"apiGroups": [group], "resources": [resource], "verbs": verbs})
        })
        .collect();
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
           "metadata": {"name": name}, "rules": rules})
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

/// The command line of a test controller (after the binary) for namespace `ns`: worker image
/// `tmdbsync:e2e` (the node agent runs [`BIN`]), status mirrored every second, metrics on
/// `metrics_addr`. Its environment is [`CONTROLLER_ENV`].
pub fn controller_args(ns: &str, metrics_addr: SocketAddr) -> Vec<String> {
    [
        "controller",
        "--namespace",
        ns,
        "--worker-image",
        "tmdbsync:e2e",
        "--mirror-interval-secs",
        "1",
        "--metrics-addr",
        &metrics_addr.to_string(),
    ]
    .map(String::from)
    .to_vec()
}

/// A test controller's environment: JSON logs at debug level.
pub const CONTROLLER_ENV: [(&str, &str); 2] = [
    ("TMDBSYNC_LOG_FORMAT", "json"),
    ("RUST_LOG", "info,tmdbsync=debug"),
];

/// A `tmdbsync controller` process, killed on drop; its stdout and stderr go to a log file.
pub struct ControllerProcess {
    process: Daemon,
    metrics_addr: SocketAddr,
}

impl ControllerProcess {
    /// The controller of namespace `ns` ([`controller_args`], metrics on a free port) with `extra`
    /// arguments.
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
        let process = Daemon::spawn(
            "controller",
            Command::new(BIN)
                .args(controller_args(ns, metrics_addr))
                .args(extra)
                .env("KUBECONFIG", cluster.kubeconfig())
                .envs(CONTROLLER_ENV)
                .envs(env.iter().copied()),
            log,
        );
        ControllerProcess {
            process,
            metrics_addr,
        }
    }

    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// The HTTP status of `GET <path>` on the metrics address (0 when nothing answers).
    pub async fn http_status(&self, path: &str) -> u16 {
        self.http_text(path).await.0
    }

    /// The HTTP status and body of `GET <path>` (status 0 when nothing answers).
    pub async fn http_text(&self, path: &str) -> (u16, String) {
        http_get(&format!("http://{}{path}", self.metrics_addr)).await
    }

    /// Waits up to `timeout` for the process to exit and returns its status (`None`: still running).
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        self.process.wait_exit(timeout).await
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        let (status, text) = self.http_text("/metrics").await;
        assert_ne!(status, 0, "nothing answers on {}", self.metrics_addr);
        text
    }

    /// The log so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    /// Kills the process (SIGKILL: no lease release, no cleanup) and reaps it.
    pub fn stop(&mut self) {
        self.process.stop();
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
