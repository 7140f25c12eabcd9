//! The controller at scale (issue 13, point 4), a benchmark on the real control plane:
//! `scripts/bench-controller.sh` runs it (`cargo test --test controller_scale -- --ignored`).
//!
//! The load: `SYNCS` TmdbSyncs (default 100) in one namespace, each with `RUNS_PER_SYNC` finished
//! SyncRuns (default 100, so 10,000), created before the controller starts — the controller
//! (re)starting on a cluster that has run for a while. Each sync keeps 100 runs of history
//! (`successfulRunsLimit: 90`, `failedRunsLimit: 10`: nothing is pruned, so the 10,000 stay), its
//! schedules are not due during the benchmark (so no Job is created and no node is needed), and all
//! of them share one Postgres database (one pool; its schema exists, as it does for a controller
//! restarting; the health read runs against an empty catalogue; `scripts/bench-scale.sh`
//! measures it at 1.1 M movies). The runs are written as the controller writes finished runs: a
//! scheduled run's name, labels, owner reference and annotation, and a status with its counters
//! and conditions, every tenth one Failed.
//!
//! Measured: the time until every TmdbSync has been reconciled and the reconciles stopped (settled;
//! the finished runs, settled, are never reconciled: asserted),
//! the controller's RSS (`/proc/<pid>/status`), reconcile p50/p99 per kind from its
//! `tmdbsync_reconcile_duration_seconds` histogram, and while idle the API requests per second it
//! causes: the kube-apiserver's `apiserver_request_total` over `IDLE_SECS` (default 300 s, one
//! whole periodic TmdbSync wake-up) minus the same rate over `BASELINE_SECS` (default 60 s)
//! before the controller started (the controller-manager's own requests; no node agent runs).
//! The API server's counter has no user-agent label, so the difference is the controller's share;
//! the per resource and verb table shows what it asked for.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use support::cluster::Cluster;
use support::operator::{apply_secrets, install_crds};
use support::{BIN, TestDb, free_port};
use tmdbsync::api::conditions::merge;
use tmdbsync::api::sync_run::RunKind;
use tmdbsync::api::{FIELD_MANAGER, RunPhase, SyncRun, SyncRunStatus, TmdbSync};
use tmdbsync::plan::RunType;
use tmdbsync::plan::run::run_conditions;
use tmdbsync::plan::schedule::run_name;

/// A schedule never due during the benchmark (1 January, 03:00).
const NOT_DUE: &str = "0 3 1 1 *";
/// Requests the benchmark has in flight while it creates the load.
const CREATORS: usize = 16;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v}: not a number"))
        })
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark (minutes): scripts/bench-controller.sh"]
async fn controller_at_scale() {
    let syncs = setting("SYNCS", 100) as usize;
    let per_sync = setting("RUNS_PER_SYNC", 100) as usize;
    let baseline_secs = setting("BASELINE_SECS", 60);
    let idle_secs = setting("IDLE_SECS", 300);
    let cluster = Cluster::control_plane_only();
    install_crds(cluster);
    let ns = cluster.namespace("bench-ctl");
    let db = TestDb::start();
    // A database that has served its syncs for a while already has its schema (the first
    // controller or worker to reach a new database creates it, once).
    drop(db.store().await);
    apply_secrets(cluster, &ns, "bench-key", &db.url);
    let client = cluster.client();

    let t = Instant::now();
    let created = create_syncs(&client, &ns, syncs).await;
    create_runs(&client, &ns, &created, per_sync).await;
    println!(
        "load: {syncs} TmdbSyncs and {} SyncRuns created in {:.0} s",
        syncs * per_sync,
        t.elapsed().as_secs_f64()
    );

    // What the API server serves without the controller (the controller-manager, the node agent).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = api_requests(cluster);
    tokio::time::sleep(Duration::from_secs(baseline_secs)).await;
    let baseline = Window::between(&before, &api_requests(cluster), baseline_secs);

    let mut controller = Controller::start(cluster.kubeconfig(), &ns);
    let (settle_secs, settled) = controller.settled(syncs as u64).await;
    let rss_settled = controller.memory();
    let before = api_requests(cluster);
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let idle = Window::between(&before, &api_requests(cluster), idle_secs);
    let after = controller.metrics().await;
    let rss_idle = controller.memory();
    controller.stop();

    let report = Report {
        syncs,
        runs: syncs * per_sync,
        settle_secs,
        settled: &settled,
        after: &after,
        rss_settled,
        rss_idle,
        baseline: &baseline,
        idle: &idle,
    };
    report.print();
    assert!(
        report.reconciles_while_idle("TmdbSync") <= 2.0 * syncs as f64 * idle_secs as f64 / 300.0,
        "more TmdbSync reconciles while idle than two per sync per 5 minutes: a self-triggered loop"
    );
    assert_eq!(
        after.get("tmdbsync_reconcile_total", &[("kind", "SyncRun")]),
        0.0,
        "finished SyncRuns with their conditions written were reconciled: they are settled"
    );
}

/// Creates `n` TmdbSyncs and returns them as created (with their uids).
async fn create_syncs(client: &Client, ns: &str, n: usize) -> Vec<TmdbSync> {
    let api: Api<TmdbSync> = Api::namespaced(client.clone(), ns);
    futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move {
                let sync: TmdbSync = serde_json::from_value(json!({
                    "apiVersion": "tmdbsync.io/v1alpha1", "kind": "TmdbSync",
                    "metadata": {"name": format!("sync-{i:03}")},
                    "spec": {
                        "tmdb": {"apiKeySecretRef": {"name": "tmdb", "key": "api-key"},
                                 "baseUrl": "http://127.0.0.1:9/3"},
                        "database": {"urlSecretRef": {"name": "cinegraph-db", "key": "url"}},
                        "bulk": {"schedule": NOT_DUE},
                        "delta": {"schedule": NOT_DUE},
                        "enrichment": {"schedule": NOT_DUE},
                        "history": {"successfulRunsLimit": 90, "failedRunsLimit": 10}
                    }
                }))
                .expect("a TmdbSync");
                api.create(&PostParams::default(), &sync).await
            }
        })
        .buffer_unordered(CREATORS)
        .try_collect()
        .await
        .expect("create the TmdbSyncs")
}

/// Creates `per_sync` finished runs of each sync, one day apart per four types, then their status.
async fn create_runs(client: &Client, ns: &str, syncs: &[TmdbSync], per_sync: usize) {
    let api: Api<SyncRun> = Api::namespaced(client.clone(), ns);
    let first_day = Utc::now() - chrono::Duration::days(1 + per_sync as i64 / 4);
    let origin = first_day
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let runs = syncs
        .iter()
        .flat_map(|s| (0..per_sync).map(move |i| finished_run(s, i, origin)));
    futures::stream::iter(runs)
        .map(|(run, status)| {
            let api = api.clone();
            async move {
                let name = run.name_any();
                api.create(&PostParams::default(), &run).await?;
                let patch = json!({"apiVersion": "tmdbsync.io/v1alpha1", "kind": "SyncRun",
                                   "status": status});
                api.patch_status(
                    &name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&patch),
                )
                .await
            }
        })
        .buffer_unordered(CREATORS)
        .try_for_each(|_| async { Ok(()) })
        .await
        .expect("create the SyncRuns");
}

/// The `i`th run of `sync` (Catalog, Bulk, Delta, Enrich on each day from midnight `origin`), finished as
/// the controller leaves a run: the status its reconciler would write, conditions included.
fn finished_run(sync: &TmdbSync, i: usize, origin: DateTime<Utc>) -> (SyncRun, SyncRunStatus) {
    let kinds = [
        (RunKind::Catalog, 2, 0),
        (RunKind::Bulk, 2, 5),
        (RunKind::Delta, 4, 0),
        (RunKind::Enrich, 5, 0),
    ];
    let (kind, hour, minute) = kinds[i % 4];
    let at = origin
        + chrono::Duration::days((i / 4) as i64)
        + chrono::Duration::hours(hour)
        + chrono::Duration::minutes(minute);
    let sync_name = sync.name_any();
    let name = run_name(&sync_name, RunType::from(kind), at);
    let run: SyncRun = serde_json::from_value(json!({
        "apiVersion": "tmdbsync.io/v1alpha1", "kind": "SyncRun",
        "metadata": {
            "name": name,
            "labels": {"tmdbsync.io/sync": sync_name, "tmdbsync.io/type": RunType::from(kind).as_str(),
                       "app.kubernetes.io/managed-by": "tmdbsync"},
            "annotations": {"tmdbsync.io/scheduled-at": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)},
            "ownerReferences": [{"apiVersion": "tmdbsync.io/v1alpha1", "kind": "TmdbSync",
                                 "name": sync_name, "uid": sync.uid().expect("created"),
                                 "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {"syncRef": {"name": sync_name}, "type": kind, "trigger": "Scheduled"}
    }))
    .expect("a SyncRun");
    let failed = i % 10 == 9;
    let (phase, reason, message) = if failed {
        (
            RunPhase::Failed,
            "RetriesExhausted",
            "Job failed: a pod failed after 2 retries (exit code 1)",
        )
    } else {
        (RunPhase::Succeeded, "Completed", "completed")
    };
    let done = at + chrono::Duration::minutes(42);
    let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let status = SyncRunStatus {
        observed_generation: Some(1),
        phase: Some(phase),
        job_name: Some(name),
        started_at: Some(stamp(at)),
        completed_at: Some(stamp(done)),
        duration: Some("42m0s".into()),
        pages_total: if kind == RunKind::Bulk { 200 } else { 0 },
        pages_processed: if kind == RunKind::Bulk { 200 } else { 0 },
        movies_imported: if kind == RunKind::Bulk { 3_990 } else { 0 },
        movies_updated: if kind == RunKind::Delta { 1_200 } else { 0 },
        movies_skipped: 10,
        errors: if failed { 3 } else { 0 },
        reason: Some(reason.into()),
        message: Some(message.into()),
        conditions: merge(
            &[],
            &run_conditions(Some(phase), Some(reason), Some(message)),
            Some(1),
            done,
        ),
        ..Default::default()
    };
    (run, status)
}

/// The `tmdbsync controller` process under test (the binary of `TMDBSYNC_BENCH_BIN`, default this
/// checkout's debug build), killed on drop.
struct Controller {
    child: Child,
    metrics_addr: SocketAddr,
    http: reqwest::Client,
}

impl Controller {
    /// Starts it on namespace `ns` with leader election, as the chart runs it (without when
    /// `TMDBSYNC_BENCH_ELECTION=0`), logging at info.
    fn start(kubeconfig: &std::path::Path, ns: &str) -> Self {
        let bin = std::env::var("TMDBSYNC_BENCH_BIN").unwrap_or_else(|_| BIN.to_string());
        let election = std::env::var("TMDBSYNC_BENCH_ELECTION").map_or(true, |v| v != "0");
        let metrics_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let log = std::env::temp_dir().join(format!("tmdbsync-bench-controller-{ns}.log"));
        let out = std::fs::File::create(&log).expect("create the controller log");
        println!("controller: {bin} (log {})", log.display());
        let child = Command::new(&bin)
            .args([
                "controller",
                "--namespace",
                ns,
                "--worker-image",
                "tmdbsync:bench",
            ])
            .args(match election {
                true => vec!["--leader-election", "--lease-namespace", ns],
                false => vec![],
            })
            .arg("--metrics-addr")
            .arg(metrics_addr.to_string())
            .env("KUBECONFIG", kubeconfig)
            .env("TMDBSYNC_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup the log"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start {bin}: {e}"));
        let http = tmdbsync::http::http_client_builder().build().unwrap();
        Controller {
            child,
            metrics_addr,
            http,
        }
    }

    /// Its metrics, parsed (empty while it does not answer).
    async fn metrics(&self) -> Samples {
        let url = format!("http://{}/metrics", self.metrics_addr);
        match self.http.get(url).send().await {
            Ok(r) => Samples::parse(&r.text().await.unwrap_or_default()),
            Err(_) => Samples::default(),
        }
    }

    /// Waits until every TmdbSync has been reconciled and no reconcile happened for 15 s (the
    /// finished runs are settled: none is reconciled); returns the seconds from start to the last
    /// reconcile, and the metrics then.
    async fn settled(&mut self, syncs: u64) -> (f64, Samples) {
        let started = Instant::now();
        let (mut last_total, mut last_change) = (-1.0, Instant::now());
        let mut settle = 0.0;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the controller exited: {status}");
            }
            let m = self.metrics().await;
            let done = |kind: &str, n: u64| {
                m.get("tmdbsync_reconcile_total", &[("kind", kind)]) >= n as f64
            };
            let total = m.sum("tmdbsync_reconcile_total", &[]);
            if total != last_total {
                (last_total, last_change) = (total, Instant::now());
                settle = started.elapsed().as_secs_f64();
            }
            if done("TmdbSync", syncs) && last_change.elapsed() >= Duration::from_secs(15) {
                return (settle, m);
            }
            assert!(
                started.elapsed() < Duration::from_secs(900),
                "not settled in 15 minutes: {total} reconciles"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// (VmRSS, VmHWM) in MiB.
    fn memory(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the controller's /proc status");
        let kib = |field: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .expect("a memory field")
        };
        (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The API server's `apiserver_request_total`.
fn api_requests(cluster: &Cluster) -> Samples {
    let mut s = Samples::parse(&cluster.kubectl_ok(["get", "--raw", "/metrics"]));
    s.0.retain(|(name, _), _| name == "apiserver_request_total");
    s
}

/// Prometheus text samples: (name, labels) → value.
#[derive(Default, Clone)]
struct Samples(BTreeMap<(String, BTreeMap<String, String>), f64>);

impl Samples {
    fn parse(text: &str) -> Self {
        let mut out = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, labels(rest.trim_end_matches('}'))),
                None => (series, BTreeMap::new()),
            };
            out.insert((name.to_string(), labels), value);
        }
        Samples(out)
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        want: &'a [(&str, &str)],
    ) -> impl Iterator<Item = (&'a BTreeMap<String, String>, f64)> + 'a {
        self.0.iter().filter_map(move |((n, l), v)| {
            (n == name && want.iter().all(|(k, w)| l.get(*k).is_some_and(|x| x == w)))
                .then_some((l, *v))
        })
    }

    /// Every sample of `self` less the same series in `earlier` (counters over a window).
    fn minus(&self, earlier: &Samples) -> Samples {
        let mut out = self.clone();
        for (key, v) in out.0.iter_mut() {
            *v -= earlier.0.get(key).copied().unwrap_or(0.0);
        }
        out
    }

    fn sum(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        // Folded from +0.0: `Sum` of no floats is -0.0, printed "-0".
        self.matching(name, want)
            .fold(0.0, |total, (_, v)| total + v)
    }

    fn get(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        self.sum(name, want)
    }

    /// The `q` quantile of histogram `name` for `kind`, interpolated within its bucket as
    /// Prometheus' `histogram_quantile` does.
    fn quantile(&self, name: &str, kind: &str, q: f64) -> f64 {
        let mut buckets: Vec<(f64, f64)> = self
            .matching(&format!("{name}_bucket"), &[("kind", kind)])
            .map(|(l, v)| (l["le"].parse::<f64>().unwrap_or(f64::INFINITY), v))
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let Some(&(_, total)) = buckets.last() else {
            return f64::NAN;
        };
        let rank = q * total;
        let (mut lower, mut below) = (0.0, 0.0);
        for (le, count) in buckets {
            if count >= rank {
                if le.is_infinite() {
                    return lower;
                }
                return lower + (le - lower) * (rank - below) / (count - below).max(1.0);
            }
            (lower, below) = (le, count);
        }
        lower
    }
}

fn labels(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let end = after.find('"').unwrap_or(after.len());
        out.insert(
            key.trim_start_matches(',').to_string(),
            after[..end].to_string(),
        );
        rest = &after[(end + 1).min(after.len())..];
    }
    out
}

/// API requests per second over a window, by verb and resource.
struct Window {
    secs: u64,
    by_request: BTreeMap<String, f64>,
}

impl Window {
    fn between(before: &Samples, after: &Samples, secs: u64) -> Self {
        let mut by_request = BTreeMap::new();
        for ((_, l), v) in &after.0 {
            let was = before
                .0
                .iter()
                .find(|((_, bl), _)| bl == l)
                .map_or(0.0, |(_, v)| *v);
            if *v > was {
                let sub = l.get("subresource").filter(|s| !s.is_empty());
                let what = format!(
                    "{} {}{}",
                    l.get("verb").map_or("", String::as_str),
                    l.get("resource").map_or("", String::as_str),
                    sub.map(|s| format!("/{s}")).unwrap_or_default()
                );
                *by_request.entry(what).or_insert(0.0) += v - was;
            }
        }
        Window { secs, by_request }
    }

    fn rate(&self) -> f64 {
        self.by_request.values().sum::<f64>() / self.secs as f64
    }
}

struct Report<'a> {
    syncs: usize,
    runs: usize,
    settle_secs: f64,
    settled: &'a Samples,
    after: &'a Samples,
    rss_settled: (f64, f64),
    rss_idle: (f64, f64),
    baseline: &'a Window,
    idle: &'a Window,
}

impl Report<'_> {
    fn reconciles_while_idle(&self, kind: &str) -> f64 {
        let n = |s: &Samples| s.get("tmdbsync_reconcile_total", &[("kind", kind)]);
        n(self.after) - n(self.settled)
    }

    fn print(&self) {
        let h = "tmdbsync_reconcile_duration_seconds";
        println!(
            "== controller at scale: {} TmdbSyncs, {} SyncRuns ==",
            self.syncs, self.runs
        );
        println!(
            "settled after        {:.1} s (last reconcile of the start-up)",
            self.settle_secs
        );
        println!(
            "RSS                  {:.1} MiB settled, {:.1} MiB after idle, peak {:.1} MiB (target < 64)",
            self.rss_settled.0,
            self.rss_idle.0,
            self.rss_idle.1.max(self.rss_settled.1)
        );
        let idle = self.after.minus(self.settled);
        for kind in ["TmdbSync", "SyncRun"] {
            let count = self
                .after
                .get("tmdbsync_reconcile_total", &[("kind", kind)]);
            let errors = self
                .after
                .sum("tmdbsync_reconcile_errors_total", &[("kind", kind)]);
            if count == 0.0 {
                println!("reconcile {kind:<9}  none");
                continue;
            }
            println!(
                "reconcile {kind:<9}  p50 {:.1} ms, p99 {:.1} ms over {count} reconciles ({errors} failed) (target p99 < 100)",
                1000.0 * self.after.quantile(h, kind, 0.5),
                1000.0 * self.after.quantile(h, kind, 0.99),
            );
            let n = idle.get("tmdbsync_reconcile_total", &[("kind", kind)]);
            if n > 0.0 {
                println!(
                    "  while idle         p50 {:.1} ms, p99 {:.1} ms over {n} reconciles",
                    1000.0 * idle.quantile(h, kind, 0.5),
                    1000.0 * idle.quantile(h, kind, 0.99),
                );
            }
        }
        let idle_secs = self.idle.secs;
        println!(
            "idle {idle_secs} s           {} TmdbSync and {} SyncRun reconciles",
            self.reconciles_while_idle("TmdbSync"),
            self.reconciles_while_idle("SyncRun")
        );
        println!(
            "API requests/s idle  {:.2} with the controller, {:.2} without ({} s before it started): {:.2} req/s its own",
            self.idle.rate(),
            self.baseline.rate(),
            self.baseline.secs,
            self.idle.rate() - self.baseline.rate()
        );
        println!("requests while idle (per second, with − without the controller):");
        let keys: std::collections::BTreeSet<&String> = self
            .idle
            .by_request
            .keys()
            .chain(self.baseline.by_request.keys())
            .collect();
        let mut rows: Vec<(String, f64)> = keys
            .into_iter()
            .map(|k| {
                let per = |w: &Window| w.by_request.get(k).copied().unwrap_or(0.0) / w.secs as f64;
                (k.clone(), per(self.idle) - per(self.baseline))
            })
            .collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (what, rate) in rows.iter().filter(|r| r.1.abs() >= 0.005) {
            println!("  {rate:>7.3}  {what}");
        }
    }
}
