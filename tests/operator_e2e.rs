//! The operator end to end on a real control plane (etcd, kube-apiserver, kube-controller-manager)
//! with the node agent running Job pods as local processes, a real Postgres and the simulator.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, ListParams};
use serde_json::json;
use support::TestDb;
use support::cluster::*;
use tmdbsync::api::{RunPhase, SyncPhase, SyncRun, TmdbSync};
use tmdbsync::sim::{self, SimConfig, SimHandle};

const BIN: &str = env!("CARGO_BIN_EXE_tmdbsync");
const API_KEY: &str = "e2e-secret-key-7f3a";

/// A controller process, killed on drop; its stderr goes to `log`.
struct ControllerProcess {
    child: Child,
    log: PathBuf,
    metrics_addr: String,
}

impl ControllerProcess {
    fn start(cluster: &Cluster, ns: &str, extra: &[&str]) -> Self {
        let log = std::env::temp_dir().join(format!(
            "tmdbsync-controller-{ns}-{}.log",
            fastrand::u32(..)
        ));
        let metrics_addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
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
                &metrics_addr,
            ])
            .args(extra)
            .env("KUBECONFIG", cluster.kubeconfig())
            .env("TMDBSYNC_LOG_FORMAT", "json")
            .env("RUST_LOG", "info,tmdbsync=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start the controller");
        ControllerProcess {
            child,
            log,
            metrics_addr,
        }
    }

    async fn http_status(&self, path: &str) -> u16 {
        tmdbsync::http_client_builder()
            .build()
            .unwrap()
            .get(format!("http://{}{path}", self.metrics_addr))
            .send()
            .await
            .map_or(0, |r| r.status().as_u16())
    }

    async fn metrics(&self) -> String {
        tmdbsync::http_client_builder()
            .build()
            .unwrap()
            .get(format!("http://{}/metrics", self.metrics_addr))
            .send()
            .await
            .expect("metrics endpoint")
            .text()
            .await
            .unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn install_crds(cluster: &Cluster) {
    let crds = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/tmdbsync.io.yaml");
    cluster.kubectl_ok(["apply", "--server-side", "--force-conflicts", "-f", crds]);
    cluster.kubectl_ok([
        "wait",
        "--for=condition=Established",
        "--timeout=30s",
        "crd/tmdbsyncs.tmdbsync.io",
        "crd/syncruns.tmdbsync.io",
    ]);
}

fn secrets(cluster: &Cluster, ns: &str, api_key: &str, db_url: &str) {
    cluster.kubectl_ok([
        "-n",
        ns,
        "create",
        "secret",
        "generic",
        "tmdb",
        &format!("--from-literal=api-key={api_key}"),
    ]);
    cluster.kubectl_ok([
        "-n",
        ns,
        "create",
        "secret",
        "generic",
        "cinegraph-db",
        &format!("--from-literal=url={db_url}"),
    ]);
}

fn tmdb_sync(sim: &SimHandle, schedule: &str) -> serde_json::Value {
    json!({
        "apiVersion": "tmdbsync.io/v1alpha1",
        "kind": "TmdbSync",
        "metadata": {"name": "cinegraph"},
        "spec": {
            "tmdb": {
                "apiKeySecretRef": {"name": "tmdb", "key": "api-key"},
                "baseUrl": sim.tmdb_url(),
                "exportBaseUrl": sim.export_url(),
                "requestsPerSecond": 400
            },
            "database": {"urlSecretRef": {"name": "cinegraph-db", "key": "url"}},
            "bulk": {"schedule": schedule, "pagesPerRun": 1000},
            "delta": {"schedule": schedule},
            "jobTemplate": {"backoffLimitPerIndex": 1}
        }
    })
}

async fn start_sim(movies: u64) -> SimHandle {
    let config = SimConfig {
        movies,
        seed: 3,
        ..Default::default()
    };
    sim::spawn(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn phase(r: &SyncRun) -> Option<RunPhase> {
    r.status.as_ref().and_then(|s| s.phase)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_runs_import_the_catalog_and_a_manual_delta_brings_changes_in() {
    let cluster = Cluster::shared();
    install_crds(cluster);
    let ns = cluster.namespace("e2e-sync");
    let db = TestDb::start();
    let sim = start_sim(500).await;
    secrets(cluster, &ns, API_KEY, &db.url);
    let controller = ControllerProcess::start(cluster, &ns, &[]);
    cluster.kubectl_stdin(
        ["-n", &ns, "apply", "-f", "-"],
        &tmdb_sync(&sim, "* * * * *").to_string(),
    );

    let client = cluster.client();
    let syncs: Api<TmdbSync> = Api::namespaced(client.clone(), &ns);
    let runs: Api<SyncRun> = Api::namespaced(client.clone(), &ns);
    // The next minute boundary schedules Catalog, Bulk and Delta; they run one after the other.
    let sync = wait_for(&syncs, "cinegraph", Duration::from_secs(150), |s| {
        s.status.as_ref().is_some_and(|st| {
            st.phase == Some(SyncPhase::Maintaining)
                && st.last_runs.as_ref().is_some_and(|l| l.delta.is_some())
        })
    })
    .await;
    let progress = sync.status.as_ref().unwrap().progress.clone().unwrap();
    assert_eq!(progress.tmdb_total, 500);
    assert_eq!(progress.imported, 500);
    assert_eq!(progress.percent_complete, 100.0);
    assert_eq!(progress.last_page_processed, progress.total_pages);
    assert_eq!(progress.estimated_days_remaining, Some(0.0));

    let all = runs.list(&ListParams::default()).await.unwrap().items;
    let bulk = all
        .iter()
        .find(|r| r.metadata.name.as_deref().unwrap().contains("-bulk-"))
        .expect("a bulk run");
    assert_eq!(phase(bulk), Some(RunPhase::Succeeded), "{:?}", bulk.status);
    let store = db.store().await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM movies")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(stored, 500);
    let st = bulk.status.as_ref().unwrap();
    assert_eq!(
        st.movies_imported as i64, stored,
        "the SyncRun mirrors Postgres"
    );
    assert_eq!(st.pages_processed, progress.total_pages);
    let row: (i32, String) =
        sqlx::query_as("SELECT movies_imported, status FROM sync_runs WHERE name = $1")
            .bind(bulk.metadata.name.as_deref().unwrap())
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(row, (st.movies_imported, "completed".to_string()));
    let names: Vec<String> = all
        .iter()
        .map(|r| r.metadata.name.clone().unwrap())
        .collect();
    for t in ["catalog", "bulk", "delta"] {
        let n = names
            .iter()
            .filter(|n| n.starts_with(&format!("cinegraph-{t}-")))
            .count();
        assert!(n >= 1, "a {t} run: {names:?}");
        assert!(
            names
                .iter()
                .any(|n| n.len() == format!("cinegraph-{t}-").len() + 12),
            "deterministic name: {names:?}"
        );
    }
    // The Jobs were Indexed and owned by their runs.
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    let job = jobs
        .get(bulk.metadata.name.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(
        job.spec.as_ref().unwrap().completion_mode.as_deref(),
        Some("Indexed")
    );
    assert_eq!(
        job.metadata.owner_references.as_ref().unwrap()[0].kind,
        "SyncRun"
    );

    // kubectl shows the columns.
    let table = cluster.kubectl_ok(["-n", &ns, "get", "tmdbsyncs"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "PHASE",
            "PROGRESS",
            "IMPORTED",
            "ETA",
            "LAST-BULK",
            "LAST-DELTA",
            "AGE"
        ],
        "{table}"
    );
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        &row[..4],
        ["cinegraph", "Maintaining", "100", "500"],
        "{table}"
    );
    let table = cluster.kubectl_ok(["-n", &ns, "get", "syncruns"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME", "SYNC", "TYPE", "PHASE", "PAGES", "IMPORTED", "SKIPPED", "ERRORS", "DURATION",
            "AGE"
        ],
        "{table}"
    );
    let bulk_line = table.lines().find(|l| l.contains("-bulk-")).unwrap();
    let cols: Vec<&str> = bulk_line.split_whitespace().collect();
    assert_eq!(
        &cols[1..8],
        [
            "cinegraph",
            "Bulk",
            "Succeeded",
            &progress.total_pages.to_string(),
            "500",
            "0",
            "0"
        ],
        "{table}"
    );

    assert_eq!(
        controller.http_status("/readyz").await,
        200,
        "ready once caches synced"
    );
    assert_eq!(controller.http_status("/healthz").await, 200);
    // The controller's metrics come from Postgres and the resources.
    let metrics = controller.metrics().await;
    let sel = format!(r#"namespace="{ns}",sync="cinegraph""#);
    for line in [
        format!("tmdbsync_imported_movies{{{sel}}} 500"),
        format!("tmdbsync_catalog_movies{{{sel}}} 500"),
        format!("tmdbsync_coverage_ratio{{{sel}}} 1"),
    ] {
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    let requests_2xx = metrics
        .lines()
        .find(|l| {
            // Labels print sorted: namespace, status_class, sync.
            l.starts_with("tmdbsync_tmdb_requests_total")
                && l.contains(&format!(r#"namespace="{ns}""#))
                && l.contains(r#"status_class="2xx""#)
                && l.contains(r#"sync="cinegraph""#)
        })
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .expect("2xx request counter");
    assert!(requests_2xx >= 500.0, "{requests_2xx}");
    assert!(
        metrics.contains(r#"result="succeeded""#) && metrics.contains("tmdbsync_reconcile_total")
    );

    // A day passes; a manual Delta SyncRun brings the changes in.
    let advanced = support::sim_post(&sim, "/__sim/advance?days=1", json!({})).await;
    let changed: Vec<i64> = advanced["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let manual = json!({
        "apiVersion": "tmdbsync.io/v1alpha1", "kind": "SyncRun",
        "metadata": {"name": "catch-up"},
        "spec": {"syncRef": {"name": "cinegraph"}, "type": "Delta"}
    });
    cluster.kubectl_stdin(["-n", &ns, "apply", "-f", "-"], &manual.to_string());
    let done = wait_for(&runs, "catch-up", Duration::from_secs(90), |r| {
        phase(r).is_some_and(RunPhase::is_finished)
    })
    .await;
    assert_eq!(phase(&done), Some(RunPhase::Succeeded), "{:?}", done.status);
    assert!(
        done.metadata
            .owner_references
            .as_ref()
            .is_some_and(|o| o[0].kind == "TmdbSync"),
        "manual runs are adopted"
    );
    for id in changed.iter().take(3) {
        let body = support::sim_get(&sim, &format!("/3/movie/{id}?api_key=k")).await;
        let title: String = sqlx::query_scalar("SELECT title FROM movies WHERE id = $1")
            .bind(id)
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(json!(title), body["title"]);
    }

    // Secrets never show up in statuses, events, logs or metrics.
    let everything = format!(
        "{}\n{}\n{}\n{}\n{metrics}",
        cluster.kubectl_ok(["-n", &ns, "get", "tmdbsyncs,syncruns,jobs", "-o", "yaml"]),
        cluster.kubectl_ok(["-n", &ns, "get", "events", "-o", "yaml"]),
        controller.log(),
        pod_logs(cluster, &ns),
    );
    assert!(everything.contains("RunSucceeded"), "events were published");
    assert!(!everything.contains(API_KEY), "the API key leaked");
    assert!(
        !everything.contains(db.socket_dir().to_str().unwrap()),
        "the database URL leaked"
    );

    // Deleting the TmdbSync removes its runs and Jobs (garbage collection) and keeps the data.
    syncs
        .delete("cinegraph", &DeleteParams::foreground())
        .await
        .unwrap();
    eventually(
        "runs and jobs are collected",
        Duration::from_secs(60),
        || async {
            let r = runs.list(&ListParams::default()).await.unwrap().items.len();
            let j = jobs.list(&ListParams::default()).await.unwrap().items.len();
            (r == 0 && j == 0).then_some(())
        },
    )
    .await;
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM movies")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(kept >= 500);
}

fn pod_logs(cluster: &Cluster, ns: &str) -> String {
    let mut all = String::new();
    if let Ok(dir) = std::fs::read_dir(cluster.pod_logs_dir()) {
        for e in dir.flatten() {
            if e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{ns}_"))
            {
                all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_or_reported_and_a_bad_key_fails_after_one_pod() {
    let cluster = Cluster::shared();
    install_crds(cluster);
    let ns = cluster.namespace("e2e-bad");
    let db = TestDb::start();
    let sim = start_sim(100).await;
    let _controller = ControllerProcess::start(cluster, &ns, &[]);
    let client = cluster.client();
    let syncs: Api<TmdbSync> = Api::namespaced(client.clone(), &ns);
    let runs: Api<SyncRun> = Api::namespaced(client.clone(), &ns);

    // Refused by the API server (schema and CEL rules).
    let refused = [
        (
            json!({"apiVersion": "tmdbsync.io/v1alpha1", "kind": "SyncRun", "metadata": {"name": "r1"},
                "spec": {"syncRef": {"name": "x"}, "type": "Bulk", "pages": {"from": 9, "to": 3}}}),
            "pages.from must not be after pages.to",
        ),
        (
            json!({"apiVersion": "tmdbsync.io/v1alpha1", "kind": "SyncRun", "metadata": {"name": "r2"},
                "spec": {"syncRef": {"name": "x"}, "type": "Weekly"}}),
            "Unsupported value",
        ),
        (
            json!({"apiVersion": "tmdbsync.io/v1alpha1", "kind": "SyncRun", "metadata": {"name": "r3"},
                "spec": {"syncRef": {"name": "x"}, "type": "Delta", "window": {"start": "2026-03-09", "end": "2026-03-01"}}}),
            "window.start must not be after window.end",
        ),
        (
            json!({"apiVersion": "tmdbsync.io/v1alpha1", "kind": "SyncRun", "metadata": {"name": "r4"},
                "spec": {"syncRef": {"name": "x"}, "type": "Catalog", "pages": {"from": 1, "to": 2}}}),
            "pages apply to Bulk runs only",
        ),
        (
            json!({"apiVersion": "tmdbsync.io/v1alpha1", "kind": "TmdbSync", "metadata": {"name": "s1"},
                "spec": {"tmdb": {"apiKeySecretRef": {"name": "tmdb", "key": "api-key"}, "requestsPerSecond": 0},
                         "database": {"urlSecretRef": {"name": "db", "key": "url"}}}}),
            "requestsPerSecond",
        ),
        (
            json!({"apiVersion": "tmdbsync.io/v1alpha1", "kind": "TmdbSync", "metadata": {"name": "s2"},
                "spec": {"tmdb": {"apiKeySecretRef": {"name": "tmdb", "key": "api-key"}}}}),
            "database",
        ),
    ];
    for (obj, expect) in refused {
        let out = kubectl_apply(cluster, &ns, &obj.to_string());
        assert!(!out.0, "the API server accepted {obj}");
        assert!(
            out.1.contains(expect),
            "refusal of {obj} should mention {expect:?}: {}",
            out.1
        );
    }

    // Reported by the controller as conditions: bad cron, bad time zone, missing secret.
    let mut bad_cron = tmdb_sync(&sim, "every day at noon");
    bad_cron["metadata"]["name"] = json!("bad-cron");
    let mut bad_tz = tmdb_sync(&sim, "0 2 * * *");
    bad_tz["metadata"]["name"] = json!("bad-tz");
    bad_tz["spec"]["timeZone"] = json!("Mars/Olympus");
    let mut discover = tmdb_sync(&sim, "0 2 * * *");
    discover["metadata"]["name"] = json!("discover");
    discover["spec"]["bulk"]["source"] = json!("Discover");
    let mut no_secret = tmdb_sync(&sim, "0 2 * * *");
    no_secret["metadata"]["name"] = json!("no-secret");
    for obj in [&bad_cron, &bad_tz, &discover, &no_secret] {
        assert!(kubectl_apply(cluster, &ns, &obj.to_string()).0);
    }
    for (name, reason) in [
        ("bad-cron", "InvalidSpec"),
        ("bad-tz", "InvalidSpec"),
        ("discover", "InvalidSpec"),
        ("no-secret", "SecretNotFound"),
    ] {
        let s = wait_for(&syncs, name, Duration::from_secs(30), |s| {
            s.status.as_ref().is_some_and(|st| {
                st.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "False")
            })
        })
        .await;
        let st = s.status.unwrap();
        let ready = st.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.reason, reason, "{name}: {}", ready.message);
        assert_eq!(st.phase, Some(SyncPhase::Degraded));
    }
    let events = cluster.kubectl_ok(["-n", ns.name(), "get", "events", "-o", "json"]);
    assert!(
        events.contains("SecretNotFound") && events.contains("InvalidSpec"),
        "Warning events: {events}"
    );

    // The `invalid` key: the run fails with AuthFailed after a single pod, no retry storm.
    secrets(cluster, &ns, "invalid", &db.url);
    wait_for(&syncs, "no-secret", Duration::from_secs(60), |s| {
        s.status.as_ref().is_some_and(|st| {
            st.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
    })
    .await;
    let manual = json!({"apiVersion": "tmdbsync.io/v1alpha1", "kind": "SyncRun", "metadata": {"name": "bad-key"},
                        "spec": {"syncRef": {"name": "no-secret"}, "type": "Catalog"}});
    assert!(kubectl_apply(cluster, &ns, &manual.to_string()).0);
    let run = wait_for(&runs, "bad-key", Duration::from_secs(60), |r| {
        phase(r).is_some_and(RunPhase::is_finished)
    })
    .await;
    let st = run.status.unwrap();
    assert_eq!(st.phase, Some(RunPhase::Failed));
    assert_eq!(st.reason.as_deref(), Some("AuthFailed"), "{:?}", st.message);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pods = pods
        .list(&ListParams::default().labels("tmdbsync.io/run=bad-key"))
        .await
        .unwrap()
        .items;
    assert_eq!(pods.len(), 1, "one pod attempt only");
    let sync = wait_for(&syncs, "no-secret", Duration::from_secs(30), |s| {
        s.status.as_ref().is_some_and(|st| {
            st.conditions
                .iter()
                .any(|c| c.type_ == "CredentialsValid" && c.status == "False")
        })
    })
    .await;
    assert_eq!(sync.status.unwrap().phase, Some(SyncPhase::Degraded));
}

fn kubectl_apply(cluster: &Cluster, ns: &str, manifest: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new(cluster.kubectl_path())
        .args([
            "--kubeconfig",
            cluster.kubeconfig().to_str().unwrap(),
            "-n",
            ns,
            "apply",
            "-f",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(manifest.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn manual(name: &str, kind: &str) -> String {
    json!({"apiVersion": "tmdbsync.io/v1alpha1", "kind": "SyncRun", "metadata": {"name": name},
           "spec": {"syncRef": {"name": "cinegraph"}, "type": kind}})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_controller_mid_run_duplicates_nothing_and_the_run_finishes() {
    let cluster = Cluster::shared();
    install_crds(cluster);
    let ns = cluster.namespace("e2e-restart");
    let db = TestDb::start();
    let sim = start_sim(2000).await;
    secrets(cluster, &ns, API_KEY, &db.url);
    let mut sync = tmdb_sync(&sim, "0 3 1 1 *");
    sync["spec"]["tmdb"]["requestsPerSecond"] = json!(150);
    assert!(kubectl_apply(cluster, &ns, &sync.to_string()).0);
    let client = cluster.client();
    let runs: Api<SyncRun> = Api::namespaced(client.clone(), &ns);
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);

    let first = ControllerProcess::start(cluster, &ns, &[]);
    assert!(kubectl_apply(cluster, &ns, &manual("load-catalog", "Catalog")).0);
    let c = wait_for(&runs, "load-catalog", Duration::from_secs(60), |r| {
        phase(r).is_some_and(RunPhase::is_finished)
    })
    .await;
    assert_eq!(phase(&c), Some(RunPhase::Succeeded), "{:?}", c.status);
    assert!(kubectl_apply(cluster, &ns, &manual("import", "Bulk")).0);
    wait_for(&runs, "import", Duration::from_secs(60), |r| {
        r.status
            .as_ref()
            .is_some_and(|s| s.phase == Some(RunPhase::Running) && s.movies_imported > 0)
    })
    .await;
    drop(first); // SIGKILL mid-run
    let _second = ControllerProcess::start(cluster, &ns, &[]);
    let done = wait_for(&runs, "import", Duration::from_secs(120), |r| {
        phase(r).is_some_and(RunPhase::is_finished)
    })
    .await;
    assert_eq!(phase(&done), Some(RunPhase::Succeeded), "{:?}", done.status);

    let run_names: Vec<String> = runs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|r| r.metadata.name)
        .collect();
    assert_eq!(run_names.len(), 2, "no duplicate SyncRun: {run_names:?}");
    let job_names: Vec<String> = jobs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|j| j.metadata.name)
        .collect();
    assert_eq!(job_names.len(), 2, "one Job per run: {job_names:?}");
    let import_pods = pods
        .list(&ListParams::default().labels("tmdbsync.io/run=import"))
        .await
        .unwrap()
        .items;
    assert_eq!(import_pods.len(), 1, "the Job was not recreated");
    let store = db.store().await;
    let (n, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT id) FROM movies")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!((n, distinct), (2000, 2000));
    assert_eq!(done.status.unwrap().movies_imported, 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_acts_and_killing_it_hands_over() {
    let cluster = Cluster::shared();
    install_crds(cluster);
    let ns = cluster.namespace("e2e-leader");
    let db = TestDb::start();
    let sim = start_sim(100).await;
    secrets(cluster, &ns, API_KEY, &db.url);
    assert!(kubectl_apply(cluster, &ns, &tmdb_sync(&sim, "0 3 1 1 *").to_string()).0);
    let lease_args = [
        "--leader-election",
        "--lease-namespace",
        ns.name(),
        "--lease-duration-secs",
        "4",
    ];
    let a = ControllerProcess::start(
        cluster,
        &ns,
        &[&lease_args[..], &["--instance", "replica-a"]].concat(),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let b = ControllerProcess::start(
        cluster,
        &ns,
        &[&lease_args[..], &["--instance", "replica-b"]].concat(),
    );
    let client = cluster.client();
    let runs: Api<SyncRun> = Api::namespaced(client.clone(), &ns);
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), &ns);

    assert!(kubectl_apply(cluster, &ns, &manual("first", "Catalog")).0);
    let r = wait_for(&runs, "first", Duration::from_secs(60), |r| {
        phase(r).is_some_and(RunPhase::is_finished)
    })
    .await;
    assert_eq!(phase(&r), Some(RunPhase::Succeeded));
    let lease = leases.get("tmdbsync-controller").await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("replica-a")
    );
    assert!(a.log().contains("became the leader"));
    assert_eq!(
        b.http_status("/readyz").await,
        200,
        "a standby is ready to take over"
    );
    assert!(b.log().contains("waiting to become the leader"));
    assert!(
        !b.log().contains("became the leader"),
        "the standby must not act"
    );
    assert!(!b.log().contains("scheduled run created") && !b.log().contains("RunStarted"));

    drop(a); // SIGKILL the leader: no release, the lease must expire
    eventually("replica-b takes over", Duration::from_secs(30), || async {
        let l = leases.get("tmdbsync-controller").await.ok()?;
        (l.spec?.holder_identity.as_deref() == Some("replica-b")).then_some(())
    })
    .await;
    assert!(kubectl_apply(cluster, &ns, &manual("second", "Catalog")).0);
    let r = wait_for(&runs, "second", Duration::from_secs(60), |r| {
        phase(r).is_some_and(RunPhase::is_finished)
    })
    .await;
    assert_eq!(phase(&r), Some(RunPhase::Succeeded), "{:?}", r.status);
    assert!(b.log().contains("became the leader"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_enrich_runs_follow_the_imports_and_report_per_stage_counters() {
    let cluster = Cluster::shared();
    install_crds(cluster);
    let ns = cluster.namespace("e2e-enrich");
    let db = TestDb::start();
    let sim = start_sim(300).await;
    secrets(cluster, &ns, API_KEY, &db.url);
    cluster.kubectl_ok([
        "-n",
        &ns,
        "create",
        "secret",
        "generic",
        "omdb",
        "--from-literal=key=omdb-e2e-key-91c2",
    ]);
    let _controller = ControllerProcess::start(cluster, &ns, &[]);
    let mut spec = tmdb_sync(&sim, "* * * * *");
    spec["spec"]["enrichment"] = json!({
        "schedule": "* * * * *",
        "omdb": {"enabled": true, "baseUrl": sim.omdb_url(), "dailyLimit": 40,
                 "apiKeySecretRef": {"name": "omdb", "key": "key"}}
    });
    cluster.kubectl_stdin(["-n", &ns, "apply", "-f", "-"], &spec.to_string());

    let client = cluster.client();
    let syncs: Api<TmdbSync> = Api::namespaced(client.clone(), &ns);
    let runs: Api<SyncRun> = Api::namespaced(client.clone(), &ns);
    let sync = wait_for(&syncs, "cinegraph", Duration::from_secs(180), |s| {
        s.status.as_ref().is_some_and(|st| {
            st.last_runs
                .as_ref()
                .and_then(|l| l.enrich.as_ref())
                .is_some_and(|e| e.phase == RunPhase::Succeeded)
                && st
                    .side_jobs
                    .iter()
                    .any(|j| j.stage == "pqs" && j.percent == 100.0)
        })
    })
    .await;
    let status = sync.status.unwrap();
    assert!(status.next_runs.unwrap().enrich.is_some());
    let jobs: Vec<(&str, i64, i64)> = status
        .side_jobs
        .iter()
        .map(|j| (j.stage.as_str(), j.completed, j.total))
        .collect();
    assert_eq!(jobs.len(), 3, "{jobs:?}");
    assert!(jobs.iter().all(|j| j.2 == 300), "{jobs:?}");
    assert!(jobs[0].1 >= 40, "OMDb answers and no-imdb movies: {jobs:?}");

    let all = runs.list(&ListParams::default()).await.unwrap().items;
    let enrich_name = status.last_runs.unwrap().enrich.unwrap().name;
    let enrich = all
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some(enrich_name.as_str()))
        .unwrap();
    let st = enrich.status.as_ref().unwrap();
    let stages: Vec<&str> = st.stages.iter().map(|s| s.stage.as_str()).collect();
    assert_eq!(stages, ["omdb", "collaborations", "pqs"], "{st:?}");
    assert!(st.stages[1].done > 0, "{st:?}");
    // It started only after the Bulk and Delta runs of its minute had finished.
    let minute = enrich_name.rsplit('-').next().unwrap();
    for t in ["bulk", "delta"] {
        let name = format!("cinegraph-{t}-{minute}");
        let import = all
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("{name} exists"));
        let done = import
            .status
            .as_ref()
            .unwrap()
            .completed_at
            .clone()
            .unwrap();
        assert!(
            st.started_at.clone().unwrap() >= done,
            "{name} finished first"
        );
    }
    let omdb_calls: i64 =
        sqlx::query_scalar("SELECT COALESCE(sum(calls), 0) FROM omdb_daily_calls")
            .fetch_one(db.store().await.pool())
            .await
            .unwrap();
    assert_eq!(
        omdb_calls, 40,
        "the daily limit holds across scheduled runs"
    );
    let everything = format!(
        "{}\n{}",
        cluster.kubectl_ok(["-n", &ns, "get", "tmdbsyncs,syncruns,jobs", "-o", "yaml"]),
        pod_logs(cluster, &ns),
    );
    assert!(
        !everything.contains("omdb-e2e-key-91c2"),
        "the OMDb key leaked"
    );
}
