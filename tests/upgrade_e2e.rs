//! The upgrade path on the real control plane: resources written under the CRDs as released
//! before issue 10 (`tests/fixtures/crds-previous/`) keep working after the current CRDs and the
//! current controller take over, and nothing that was imported is imported again.

mod support;

use std::time::Duration;

use chrono::{SecondsFormat, TimeDelta, Utc};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::{Value, json};
use support::cluster::*;
use support::operator::*;
use support::{TestDb, start_sim};
use tmdbsync::api::{RunPhase, SyncPhase, SyncRun, TmdbSync};
use tmdbsync::stage::{RunLabel, bulk, catalog};

const API_KEY: &str = "upgrade-secret-key-41d8";
const MOVIES: u64 = 300;
const PAGES: i64 = 15;
const OLD_CRDS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/crds-previous/tmdbsync.io.yaml"
);

fn rfc3339(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Writes `status` on the object as the old controller did: server-side apply of the status
/// subresource under the field manager `tmdbsync`.
async fn old_status<K>(api: &Api<K>, name: &str, status: Value)
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = json!({
        "apiVersion": "tmdbsync.io/v1alpha1",
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply("tmdbsync").force(),
        &Patch::Apply(&patch),
    )
    .await
    .unwrap_or_else(|e| panic!("the old CRD refused the old status of {name}: {e}"));
}

/// The raw JSON of an object as the API server serves it (`kubectl get -o json`).
fn raw(cluster: &Cluster, ns: &str, what: &str) -> Value {
    serde_json::from_str(&cluster.kubectl_ok(["-n", ns, "get", what, "-o", "json"])).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_of_the_previous_crds_keep_working_and_nothing_is_imported_twice() {
    let cluster = Cluster::shared();
    // Replaced whole where they exist (a PUT), not applied: an apply keeps fields that another
    // manager, or none (objects written before managed fields were tracked), set on the newer
    // CRDs, such as their categories.
    if !cluster
        .kubectl(["replace", "-f", OLD_CRDS])
        .status
        .success()
    {
        install_crd_file(cluster, OLD_CRDS);
    }
    let categories = cluster.kubectl_ok([
        "get",
        "crd",
        "syncruns.tmdbsync.io",
        "-o",
        "jsonpath={.spec.names.categories}{.spec.names.shortNames}",
    ]);
    assert_eq!(categories, r#"["sr"]"#, "the old CRDs are installed");
    let ns = cluster.namespace("e2e-upgrade");
    let db = TestDb::start();
    let store = db.store().await;
    let sim = start_sim(MOVIES, 5).await;
    apply_secrets(cluster, &ns, API_KEY, &db.url);

    // What the old controller left: the catalog and every bulk page imported by its workers
    // (`sync_runs` rows named after the runs) ...
    // Six hours ago (recent enough that the sync is not stalled), on a whole minute.
    let ago = (Utc::now() - TimeDelta::hours(6)).timestamp();
    let scheduled = chrono::DateTime::from_timestamp(ago - ago % 60, 0).unwrap();
    let minute = scheduled.format("%Y%m%d%H%M").to_string();
    let catalog_run = format!("{SYNC}-catalog-{minute}");
    let bulk_run = format!("{SYNC}-bulk-{minute}");
    let engine = support::engine(store.clone(), &sim, 400);
    let label = |name: &str| RunLabel {
        name: Some(name.to_string()),
        trigger: Some("scheduled".into()),
    };
    let c = catalog::run(&engine, &label(&catalog_run)).await.unwrap();
    assert!(c.succeeded, "{}", c.message);
    let b = bulk::run(&engine, support::ALL_PAGES, &label(&bulk_run))
        .await
        .unwrap();
    assert!(b.succeeded, "{}", b.message);
    assert_eq!(b.counters.movies_imported as u64, MOVIES);
    let stats = support::sim_get(&sim, "/__sim/stats").await;
    let details_before = stats["requests"]["details"].as_u64().unwrap();
    assert_eq!(details_before, MOVIES, "one request per movie");

    // ... and its resources, status included, under the old CRDs. Schedules: bulk every minute
    // (the new controller will schedule a Bulk run at once), delta and enrichment not due.
    let client = cluster.client();
    let syncs: Api<TmdbSync> = Api::namespaced(client.clone(), &ns);
    let runs: Api<SyncRun> = Api::namespaced(client.clone(), &ns);
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    let sync = tmdb_sync(&sim)
        .set("spec.bulk.schedule", json!("* * * * *"))
        .set("spec.enrichment", json!({"schedule": NOT_DUE}));
    apply(cluster, &ns, &sync);
    let created = syncs.get(SYNC).await.unwrap();
    let owner = created.controller_owner_ref(&()).unwrap();
    let completed = scheduled + TimeDelta::minutes(3);
    let ready_since = rfc3339(scheduled - TimeDelta::days(2));
    let condition = |type_: &str, status: &str, reason: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": "as the old controller said",
               "lastTransitionTime": ready_since, "observedGeneration": 1})
    };
    old_status(
        &syncs,
        SYNC,
        json!({
            "observedGeneration": 1,
            "phase": "Maintaining",
            "progress": {"tmdbTotal": MOVIES, "imported": MOVIES, "notServed": 0, "remaining": 0,
                         "percentComplete": 100.0, "totalPages": PAGES, "lastPageProcessed": PAGES,
                         "dailyRate": 300.0, "estimatedDaysRemaining": 0.0,
                         "estimatedCompletion": scheduled.date_naive().to_string()},
            "lastRuns": {
                "catalog": {"name": catalog_run, "phase": "Succeeded", "completedAt": rfc3339(completed)},
                "bulk": {"name": bulk_run, "phase": "Succeeded", "completedAt": rfc3339(completed)}
            },
            "nextRuns": {"bulk": rfc3339(scheduled + TimeDelta::days(1))},
            "lastScheduleTimes": {"bulk": rfc3339(scheduled)},
            "sideJobs": [
                {"stage": "omdb", "completed": 0, "total": MOVIES, "percent": 0.0},
                {"stage": "collaborations", "completed": 0, "total": MOVIES, "percent": 0.0},
                {"stage": "pqs", "completed": 0, "total": MOVIES, "percent": 0.0}
            ],
            "conditions": [
                condition("CredentialsValid", "True", "Accepted"),
                condition("HighErrorRate", "False", "ErrorRateOk"),
                condition("LowImportRate", "False", "RateOk"),
                condition("Ready", "True", "Reconciled"),
                condition("Stalled", "False", "RecentSuccess"),
            ]
        }),
    )
    .await;
    for (name, run_type, counters) in [
        (&catalog_run, "Catalog", &c.counters),
        (&bulk_run, "Bulk", &b.counters),
    ] {
        let run: SyncRun = serde_json::from_value(json!({
            "apiVersion": "tmdbsync.io/v1alpha1", "kind": "SyncRun",
            "metadata": {
                "name": name,
                "labels": {"tmdbsync.io/sync": SYNC, "tmdbsync.io/type": run_type.to_lowercase(),
                           "app.kubernetes.io/managed-by": "tmdbsync"},
                "annotations": {"tmdbsync.io/scheduled-at": rfc3339(scheduled)},
                "ownerReferences": [owner],
            },
            "spec": {"syncRef": {"name": SYNC}, "type": run_type, "trigger": "Scheduled"}
        }))
        .unwrap();
        runs.create(&PostParams::default(), &run).await.unwrap();
        let mut status = json!({
            "observedGeneration": 1, "phase": "Succeeded", "jobName": name,
            "startedAt": rfc3339(scheduled), "completedAt": rfc3339(completed), "duration": "3m0s",
            "pagesTotal": if run_type == "Bulk" { PAGES } else { 0 },
            "pagesProcessed": counters.pages_processed, "moviesImported": counters.movies_imported,
            "moviesUpdated": counters.movies_updated, "moviesSkipped": counters.movies_skipped,
            "moviesDeleted": counters.movies_deleted, "errors": counters.errors,
            "reason": "Completed", "message": "completed"
        });
        if run_type == "Bulk" {
            status["plannedPages"] = json!({"from": 1, "to": PAGES});
        }
        old_status(&runs, name, status).await;
    }
    let before = raw(cluster, &ns, &format!("syncrun/{bulk_run}"));
    assert!(before["status"].get("conditions").is_none(), "{before}");

    // The upgrade: the current CRDs, then the current controller.
    install_crds(cluster);
    let names = cluster.kubectl_ok([
        "get",
        "crd",
        "syncruns.tmdbsync.io",
        "-o",
        "jsonpath={.spec.names.categories}{.spec.names.shortNames}",
    ]);
    assert_eq!(names, r#"["tmdb-all"]["tmdbrun"]"#);
    // kubectl expands categories from its discovery cache (kept for hours): `api-resources`
    // refreshes it, as a user would after the upgrade (the README says so). Then the category
    // lists the old resources of both kinds.
    let resources = cluster.kubectl_ok(["api-resources", "--api-group=tmdbsync.io", "-o", "wide"]);
    assert!(
        resources.contains("tmdb-all") && resources.contains("tmdbrun"),
        "{resources}"
    );
    let listed = cluster.kubectl_ok(["-n", &ns, "get", "tmdb-all", "-o", "name"]);
    for name in [
        format!("tmdbsync.tmdbsync.io/{SYNC}"),
        format!("syncrun.tmdbsync.io/{bulk_run}"),
    ] {
        assert!(listed.contains(&name), "{name} in {listed}");
    }
    let _controller = ControllerProcess::start(cluster, &ns, &[]);

    // Runs finished under the old controller get their conditions, dated when they finished, so
    // a tool can wait on them; they are not run again (no Job).
    for name in [&catalog_run, &bulk_run] {
        cluster.kubectl_ok([
            "-n",
            &ns,
            "wait",
            "--for=condition=Succeeded",
            "--timeout=60s",
            &format!("syncrun/{name}"),
        ]);
        let run = runs.get(name).await.unwrap();
        let st = run.status.unwrap();
        assert_eq!(st.phase, Some(RunPhase::Succeeded));
        assert_eq!(st.conditions.len(), 3, "{:?}", st.conditions);
        for c in &st.conditions {
            assert_eq!(
                c.last_transition_time.0.to_string(),
                rfc3339(completed),
                "{c:?}"
            );
        }
        assert!(jobs.get_opt(name).await.unwrap().is_none(), "{name} re-run");
    }

    // The TmdbSync reconciles under the new controller: current generation, the new status
    // fields, each condition keeping its own transition time when its status did not flip.
    let sync = wait_for(&syncs, SYNC, Duration::from_secs(60), |s| {
        s.status.as_ref().is_some_and(|st| {
            st.side_jobs.iter().any(|j| !j.enabled)
                && st.last_runs.as_ref().is_some_and(|l| l.bulk.is_some())
        })
    })
    .await;
    let st = sync.status.clone().unwrap();
    assert_eq!(st.observed_generation, sync.metadata.generation);
    assert_eq!(st.phase, Some(SyncPhase::Maintaining));
    let progress = st.progress.clone().unwrap();
    assert_eq!((progress.imported, progress.remaining), (MOVIES as i64, 0));
    let conditions: Vec<(&str, &str, String)> = st
        .conditions
        .iter()
        .map(|c| {
            (
                c.type_.as_str(),
                c.status.as_str(),
                c.last_transition_time.0.to_string(),
            )
        })
        .collect();
    for (type_, status) in [
        ("CredentialsValid", "True"),
        ("HighErrorRate", "False"),
        ("Ready", "True"),
        ("Stalled", "False"),
    ] {
        assert!(
            conditions.contains(&(type_, status, ready_since.clone())),
            "{type_}={status} keeps its transition time {ready_since}: {conditions:?}"
        );
    }
    let served = raw(cluster, &ns, &format!("tmdbsync/{SYNC}"));
    let side_jobs = served["status"]["sideJobs"].as_array().unwrap();
    let omdb = side_jobs.iter().find(|j| j["stage"] == "omdb").unwrap();
    assert_eq!(omdb["enabled"], json!(false), "{omdb}");
    assert!(omdb.get("percent").is_none(), "disabled, not 0 %: {omdb}");
    let table = cluster.kubectl_ok(["-n", &ns, "get", "tmdb"]);
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        &row[..4],
        [SYNC, "Maintaining", "True", "Reconciled"],
        "{table}"
    );

    // The next scheduled Bulk run finds every page done: it succeeds without a request.
    let new_bulk = eventually(
        "the new controller schedules a Bulk run and it finishes",
        Duration::from_secs(120),
        || async {
            runs.list(&Default::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .find(|r| {
                    r.spec.run_type == tmdbsync::api::sync_run::RunKind::Bulk
                        && r.name_any() != bulk_run
                        && run_phase(r).is_some_and(RunPhase::is_finished)
                })
        },
    )
    .await;
    let st = new_bulk.status.clone().unwrap();
    assert_eq!(
        (st.phase, st.reason.as_deref(), st.movies_imported),
        (Some(RunPhase::Succeeded), Some("NothingToDo"), 0),
        "{st:?}"
    );
    assert!(
        jobs.get_opt(&new_bulk.name_any()).await.unwrap().is_none(),
        "no Job for a Bulk run with nothing to do"
    );
    let all = runs.list(&Default::default()).await.unwrap().items;
    for r in &all {
        assert!(
            matches!(
                r.spec.run_type,
                tmdbsync::api::sync_run::RunKind::Catalog | tmdbsync::api::sync_run::RunKind::Bulk
            ),
            "only the bulk schedule is due: {}",
            r.name_any()
        );
    }
    // Let any Catalog run of the new controller finish too, then count TMDb detail requests.
    for r in all.iter().filter(|r| r.name_any() != catalog_run) {
        if r.spec.run_type == tmdbsync::api::sync_run::RunKind::Catalog {
            run_finished(&runs, &r.name_any(), Duration::from_secs(60)).await;
        }
    }
    let stats = support::sim_get(&sim, "/__sim/stats").await;
    assert_eq!(
        stats["requests"]["details"].as_u64().unwrap(),
        details_before,
        "no movie was requested again: {stats}"
    );
    let (n, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT id) FROM movies")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!((n, distinct), (MOVIES as i64, MOVIES as i64));
    let pages: (i64, i64, i32) =
        sqlx::query_as("SELECT count(*), count(DISTINCT run_id), max(attempts) FROM bulk_pages")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(pages, (PAGES, 1, 1), "every page done once, by the old run");

    // The new CRDs' descriptions are served.
    let explained = eventually(
        "kubectl explain serves the new descriptions",
        Duration::from_secs(30),
        || async {
            let out = cluster.kubectl(["explain", "syncrun.status.conditions"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.contains("Unknown").then_some(text)
        },
    )
    .await;
    assert!(explained.contains("Succeeded"), "{explained}");
}
