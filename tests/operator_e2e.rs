//! The operator end to end on a real control plane (etcd, kube-apiserver, kube-controller-manager)
//! with the node agent running Job pods as local processes, a real Postgres and the simulator.

mod support;

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, ListParams};
use serde_json::json;
use support::cluster::*;
use support::operator::*;
use support::{TestDb, start_sim, stored_title};
use tmdbsync::api::{RunPhase, SyncPhase, SyncRun, TmdbSync};

const API_KEY: &str = "e2e-secret-key-7f3a";
/// The simulator's seed in these tests.
const SEED: u64 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_runs_import_the_catalog_and_a_manual_delta_brings_changes_in() {
    let cluster = Cluster::shared();
    install_crds(cluster);
    let ns = cluster.namespace("e2e-sync");
    let db = TestDb::start();
    let sim = start_sim(500, SEED).await;
    apply_secrets(cluster, &ns, API_KEY, &db.url);
    let controller = ControllerProcess::start(cluster, &ns, &[]);
    apply(cluster, &ns, &tmdb_sync(&sim).schedule("* * * * *"));

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
    assert_eq!(
        run_phase(bulk),
        Some(RunPhase::Succeeded),
        "{:?}",
        bulk.status
    );
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
            "READY",
            "REASON",
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
        &row[..6],
        [
            "cinegraph",
            "Maintaining",
            "True",
            "Reconciled",
            "100",
            "500"
        ],
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
    apply(cluster, &ns, &sync_run("catch-up", "Delta"));
    // A tool waits on the run's conditions (the real kubectl).
    cluster.kubectl_ok([
        "-n",
        &ns,
        "wait",
        "--for=condition=Succeeded",
        "--timeout=90s",
        "syncrun/catch-up",
    ]);
    let done = run_succeeded(&runs, "catch-up", Duration::from_secs(5)).await;
    let conditions: Vec<(&str, &str, Option<i64>)> = done
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .map(|c| (c.type_.as_str(), c.status.as_str(), c.observed_generation))
        .collect();
    assert_eq!(
        conditions,
        [
            ("Failed", "False", Some(1)),
            ("Running", "False", Some(1)),
            ("Succeeded", "True", Some(1))
        ]
    );
    assert!(
        done.metadata
            .owner_references
            .as_ref()
            .is_some_and(|o| o[0].kind == "TmdbSync"),
        "manual runs are adopted"
    );
    for id in changed.iter().take(3) {
        let body = support::sim_get(&sim, &format!("/3/movie/{id}?api_key=k")).await;
        assert_eq!(json!(stored_title(&store, *id).await), body["title"]);
    }

    // The API describes itself: `kubectl explain` shows the field descriptions, one category lists
    // both kinds, the SyncRun short name works.
    // kubectl wraps descriptions: compare with runs of whitespace as one space.
    let words = |s: String| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let explained = words(cluster.kubectl_ok(["explain", "tmdbsync.spec"]));
    for text in [
        "What to mirror and when",
        "Stops scheduling new runs while true",
        "The progressive bulk import",
        "Settings of the Kubernetes Jobs that execute the runs",
    ] {
        assert!(explained.contains(text), "{text:?} in\n{explained}");
    }
    let explained = words(cluster.kubectl_ok(["explain", "syncrun.status.conditions"]));
    assert!(
        explained.contains("kubectl wait --for=condition=Succeeded"),
        "{explained}"
    );
    // kubectl caches discovery for hours and expands categories from that cache: refresh it (the
    // CRDs may have changed since it last looked, e.g. in upgrade_e2e).
    let resources = cluster.kubectl_ok(["api-resources", "--api-group=tmdbsync.io", "-o", "wide"]);
    assert!(resources.contains("tmdb-all"), "{resources}");
    let listed = cluster.kubectl_ok(["-n", &ns, "get", "tmdb-all", "-o", "name"]);
    assert!(
        listed.contains("tmdbsync.tmdbsync.io/cinegraph")
            && listed.contains("syncrun.tmdbsync.io/catch-up"),
        "{listed}"
    );
    cluster.kubectl_ok(["-n", &ns, "get", "tmdbrun", "catch-up"]);
    cluster.kubectl_ok(["-n", &ns, "get", "tmdb", "cinegraph"]);
    // Every condition was evaluated at the current generation; OMDb (off by default) shows as
    // disabled, not 0 %.
    let sync = syncs.get("cinegraph").await.unwrap();
    let st = sync.status.clone().unwrap();
    assert_eq!(st.observed_generation, sync.metadata.generation);
    assert_eq!(st.conditions.len(), 5, "{:?}", st.conditions);
    assert!(
        st.conditions
            .iter()
            .all(|c| c.observed_generation == sync.metadata.generation),
        "{:?}",
        st.conditions
    );
    let omdb = st.side_jobs.iter().find(|j| j.stage == "omdb").unwrap();
    assert_eq!((omdb.enabled, omdb.percent), (false, None), "{omdb:?}");
    assert!(
        st.side_jobs
            .iter()
            .any(|j| j.enabled && j.percent.is_some())
    );

    // Secrets never show up in statuses, events, logs or metrics.
    let everything = format!(
        "{}\n{}\n{}\n{}\n{metrics}",
        cluster.kubectl_ok(["-n", &ns, "get", "tmdbsyncs,syncruns,jobs", "-o", "yaml"]),
        cluster.kubectl_ok(["-n", &ns, "get", "events", "-o", "yaml"]),
        controller.log(),
        cluster.namespace_pod_logs(&ns),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_or_reported_and_a_bad_key_fails_after_one_pod() {
    let cluster = Cluster::shared();
    install_crds(cluster);
    let ns = cluster.namespace("e2e-bad");
    let db = TestDb::start();
    let sim = start_sim(100, SEED).await;
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
        let refusal = try_apply(cluster, &ns, &obj).expect_err("the API server accepted it");
        assert!(
            refusal.contains(expect),
            "refusal of {obj} should mention {expect:?}: {refusal}"
        );
    }

    // Reported by the controller as conditions: bad cron, bad time zone, missing secret.
    let daily = tmdb_sync(&sim).schedule("0 2 * * *");
    for obj in [
        tmdb_sync(&sim)
            .schedule("every day at noon")
            .named("bad-cron"),
        daily
            .clone()
            .named("bad-tz")
            .set("spec.timeZone", json!("Mars/Olympus")),
        daily.named("no-secret"),
    ] {
        apply(cluster, &ns, &obj);
    }
    for (name, reason) in [
        ("bad-cron", "InvalidSpec"),
        ("bad-tz", "InvalidSpec"),
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
    apply_secrets(cluster, &ns, "invalid", &db.url);
    wait_for(&syncs, "no-secret", Duration::from_secs(60), |s| {
        s.status.as_ref().is_some_and(|st| {
            st.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
    })
    .await;
    let manual = sync_run("bad-key", "Catalog").set("spec.syncRef.name", json!("no-secret"));
    apply(cluster, &ns, &manual);
    let run = run_finished(&runs, "bad-key", Duration::from_secs(60)).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_controller_mid_run_duplicates_nothing_and_the_run_finishes() {
    let cluster = Cluster::shared();
    install_crds(cluster);
    let ns = cluster.namespace("e2e-restart");
    let db = TestDb::start();
    let sim = start_sim(2000, SEED).await;
    apply_secrets(cluster, &ns, API_KEY, &db.url);
    let sync = tmdb_sync(&sim).set("spec.tmdb.requestsPerSecond", json!(150));
    apply(cluster, &ns, &sync);
    let client = cluster.client();
    let runs: Api<SyncRun> = Api::namespaced(client.clone(), &ns);
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);

    let first = ControllerProcess::start(cluster, &ns, &[]);
    apply(cluster, &ns, &sync_run("load-catalog", "Catalog"));
    run_succeeded(&runs, "load-catalog", Duration::from_secs(60)).await;
    apply(cluster, &ns, &sync_run("import", "Bulk"));
    let running = wait_for(&runs, "import", Duration::from_secs(60), |r| {
        r.status
            .as_ref()
            .is_some_and(|s| s.phase == Some(RunPhase::Running) && s.movies_imported > 0)
    })
    .await;
    // A running run shows a duration that grows while it runs.
    let first_duration = running_secs(&running).expect("a running run shows its duration");
    wait_for(&runs, "import", Duration::from_secs(10), |r| {
        running_secs(r).is_some_and(|d| d > first_duration)
    })
    .await;
    drop(first); // SIGKILL mid-run
    let _second = ControllerProcess::start(cluster, &ns, &[]);
    let done = run_succeeded(&runs, "import", Duration::from_secs(120)).await;

    let run_names = names(&runs).await;
    assert_eq!(run_names.len(), 2, "no duplicate SyncRun: {run_names:?}");
    let job_names = names(&jobs).await;
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
    let sim = start_sim(100, SEED).await;
    apply_secrets(cluster, &ns, API_KEY, &db.url);
    apply(cluster, &ns, &tmdb_sync(&sim));
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

    apply(cluster, &ns, &sync_run("first", "Catalog"));
    run_succeeded(&runs, "first", Duration::from_secs(60)).await;
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
    apply(cluster, &ns, &sync_run("second", "Catalog"));
    run_succeeded(&runs, "second", Duration::from_secs(60)).await;
    assert!(b.log().contains("became the leader"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_enrich_runs_follow_the_imports_and_report_per_stage_counters() {
    let cluster = Cluster::shared();
    install_crds(cluster);
    let ns = cluster.namespace("e2e-enrich");
    let db = TestDb::start();
    let sim = start_sim(300, SEED).await;
    apply_secrets(cluster, &ns, API_KEY, &db.url);
    apply_secret(cluster, &ns, "omdb", &[("key", "omdb-e2e-key-91c2")]);
    let _controller = ControllerProcess::start(cluster, &ns, &[]);
    let sync = tmdb_sync(&sim).schedule("* * * * *").set(
        "spec.enrichment",
        json!({
            "schedule": "* * * * *",
            "omdb": {"enabled": true, "baseUrl": sim.omdb_url(), "dailyLimit": 40,
                     "apiKeySecretRef": {"name": "omdb", "key": "key"}}
        }),
    );
    apply(cluster, &ns, &sync);

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
                    .any(|j| j.stage == "pqs" && j.percent == Some(100.0))
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
        cluster.namespace_pod_logs(&ns),
    );
    assert!(
        !everything.contains("omdb-e2e-key-91c2"),
        "the OMDb key leaked"
    );
}

/// The duration of a running run in seconds (`1m5s` → 65), or `None` when it is not running.
fn running_secs(run: &SyncRun) -> Option<i64> {
    let st = run.status.as_ref()?;
    if st.phase != Some(RunPhase::Running) {
        return None;
    }
    let text = st.duration.as_deref()?;
    let mut total = 0;
    let mut number = String::new();
    for c in text.chars() {
        match c {
            '0'..='9' => number.push(c),
            'h' | 'm' | 's' => {
                let n: i64 = number.parse().ok()?;
                number.clear();
                total += n * match c {
                    'h' => 3600,
                    'm' => 60,
                    _ => 1,
                };
            }
            _ => return None,
        }
    }
    Some(total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_waits_for_every_watch_names_the_one_that_fails_and_a_taken_port_stops_the_process()
{
    let cluster = Cluster::shared();
    install_crds(cluster);
    let ns = cluster.namespace("e2e-ready");
    // The controller acts as a user that may not list TmdbSyncs yet.
    let user = format!("system:serviceaccount:{ns}:limited-controller");
    let role = "limited-controller";
    apply(
        cluster,
        &ns,
        &controller_role(role, |resource| !resource.starts_with("tmdbsyncs")),
    );
    apply(
        cluster,
        &ns,
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "limited-controller"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                            "name": "limited-controller"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                              "name": user}]}),
    );
    let controller = ControllerProcess::start_with(
        cluster,
        &ns,
        &["--api-grace-secs", "5"],
        &[("KUBE_RS_DEBUG_IMPERSONATE_USER", &user)],
        None,
    );
    let body = eventually(
        "/readyz says the TmdbSync watch cannot list",
        Duration::from_secs(30),
        || async {
            // Before the watch's first attempt the answer is "has not synced yet" (also 503);
            // wait for the attempt's 403.
            let (status, body) = controller.http_text("/readyz").await;
            (status == 503 && body.contains("tmdbsyncs") && body.contains("403")).then_some(body)
        },
    )
    .await;
    assert!(body.contains("may not list and watch it"), "{body}");
    eventually(
        "the failure is logged at warn with the resource",
        Duration::from_secs(30),
        || async {
            controller
                .log()
                .lines()
                .any(|l| {
                    l.contains(r#""level":"WARN""#)
                        && l.contains(r#""message":"watch failed; retrying""#)
                        && l.contains(r#""resource":"tmdbsyncs""#)
                        && l.contains("403")
                })
                .then_some(())
        },
    )
    .await;
    // After the grace the failure is still what it reports; the other watches synced.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (status, body) = controller.http_text("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("the watch of tmdbsyncs has been failing for"),
        "{body}"
    );
    assert_eq!(
        controller.http_status("/healthz").await,
        200,
        "alive all along"
    );
    assert!(!controller.log().contains("watch works again"));

    // The missing rule granted: the watch's next retry lists and the controller is ready.
    apply(cluster, &ns, &controller_role(role, |_| true));
    let body = eventually("/readyz turns 200", Duration::from_secs(60), || async {
        let (status, body) = controller.http_text("/readyz").await;
        (status == 200).then_some(body)
    })
    .await;
    assert!(
        body.starts_with("ready: reconciling; watches synced: tmdbsyncs"),
        "{body}"
    );
    assert!(
        controller.log().contains("watch works again"),
        "the recovery is logged"
    );

    // A manual run is labelled with its sync when adopted, so reconciles list runs by label.
    apply_secrets(cluster, &ns, API_KEY, "postgres://nobody@127.0.0.1:1/none");
    apply(
        cluster,
        &ns,
        &json!({"apiVersion": "tmdbsync.io/v1alpha1", "kind": "TmdbSync",
                "metadata": {"name": SYNC},
                "spec": {"tmdb": {"apiKeySecretRef": {"name": "tmdb", "key": "api-key"}},
                         "database": {"urlSecretRef": {"name": "cinegraph-db", "key": "url"}},
                         "bulk": {"schedule": NOT_DUE}, "delta": {"schedule": NOT_DUE}}}),
    );
    apply(cluster, &ns, &sync_run("by-hand", "Catalog"));
    let runs: Api<SyncRun> = Api::namespaced(cluster.client(), &ns);
    wait_for(&runs, "by-hand", Duration::from_secs(30), |r| {
        r.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("tmdbsync.io/sync"))
            .is_some_and(|v| v == SYNC)
            && r.metadata
                .owner_references
                .as_ref()
                .is_some_and(|o| o.iter().any(|o| o.kind == "TmdbSync"))
    })
    .await;

    // A second controller on the same port stops at once, saying why.
    let mut second = ControllerProcess::start_with(
        cluster,
        &ns,
        &[],
        &[("KUBE_RS_DEBUG_IMPERSONATE_USER", &user)],
        Some(controller.metrics_addr()),
    );
    let status = second
        .wait_exit(Duration::from_secs(30))
        .await
        .expect("the second controller exits");
    let log = second.log();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!(
            "tmdbsync: error: cannot serve /metrics, /healthz and /readyz on {}",
            controller.metrics_addr()
        )),
        "{log}"
    );
    assert!(log.to_lowercase().contains("in use"), "{log}");
    assert_eq!(
        controller.http_status("/readyz").await,
        200,
        "the first one carries on"
    );
}
