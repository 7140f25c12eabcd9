//! What `tmdbsync run` does, a TmdbSync does too: the Discover catalog source (release-date
//! windows under the page cap, a pass for movies without a date, what it cannot reach counted)
//! and the daily refetch of stale movies, through the library, the CLI and a Job's worker
//! environment, against the simulator and a private Postgres.

mod support;

use std::process::Command;

use serde_json::{Value, json};
use support::{
    ALL_PAGES, BIN, EngineSetup, TestDb, get_json, http_get, importable_ids, output, scalar,
    sim_config, sim_get, status_json, stderr, stored_live_ids, tmdbsync, tmdbsync_run,
};
use tmdbsync::api::{SyncRun, TmdbSync};
use tmdbsync::controller::job::{JobPlan, build_job};
use tmdbsync::plan::RunType;
use tmdbsync::plan::discover::initial_windows;
use tmdbsync::plan::health::SyncHealth;
use tmdbsync::sim::{SimConfig, SimHandle};
use tmdbsync::stage::catalog::{self, CatalogSource};
use tmdbsync::stage::delta::{self, DeltaOptions};
use tmdbsync::stage::discover::DiscoverOptions;
use tmdbsync::stage::{RunLabel, bulk};
use tmdbsync::store::Store;
use tmdbsync::store::runs::{self, RunStatus};

async fn health(store: &Store, sim: &SimHandle) -> SyncHealth {
    let inputs = tmdbsync::store::health::health_inputs(store, 10)
        .await
        .unwrap();
    let today: chrono::NaiveDate = sim_get(sim, "/__sim/clock").await["date"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    SyncHealth::compute(&inputs, today)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_stores_everything_it_reaches_and_counts_the_export_ids_it_cannot() {
    // A cap of 3 pages (60 results a query) on both sides makes a small catalog behave like
    // TMDb's: windows must split, and the pass without a date filter cannot reach every movie
    // that has no release date.
    const CAP: u32 = 3;
    let config = SimConfig {
        adult_movies: 20,
        discover_max_page: CAP,
        ..sim_config(1_500, 23)
    };
    let setup = EngineSetup::start(config, 5_000).await;
    let (engine, store, sim) = setup.parts();
    let label = RunLabel::default();
    let source = CatalogSource::Discover(DiscoverOptions { max_page: CAP });
    let c = catalog::run_from(engine, source, &label)
        .await
        .expect("catalog run");
    assert!(c.succeeded, "{}", c.message);
    eprintln!("catalog: {}", c.message);
    // The walk never asked for a page past the cap (the simulator would have refused it).
    assert!(!c.message.contains("failed"), "{}", c.message);
    let b = bulk::run(engine, ALL_PAGES, &label)
        .await
        .expect("bulk run");
    assert!(b.succeeded, "{}", b.message);

    let export = importable_ids(sim).await;
    let stored = stored_live_ids(store).await;
    assert!(stored.is_subset(&export), "stored ids the export lacks");
    let missing: Vec<i64> = export.difference(&stored).copied().collect();
    assert!(
        !missing.is_empty(),
        "a cap of {CAP} pages should leave some movies out of reach"
    );
    // Every dated movie was reachable through some window: what is missing has no release date.
    let past_cap = format!(
        "{}/discover/movie?api_key=k&page={}",
        sim.tmdb_url(),
        CAP + 1
    );
    assert_eq!(
        http_get(&past_cap).await.0,
        400,
        "the simulator serves past its cap"
    );
    for id in &missing {
        let m = get_json(&format!("{}/movie/{id}?api_key=k", sim.tmdb_url())).await;
        assert_eq!(m["release_date"], json!(""), "movie {id} has a date: {m}");
    }
    let no_date_stored = scalar(
        store,
        "SELECT count(*) FROM movies WHERE release_date IS NULL",
    )
    .await;
    assert!(no_date_stored > 0, "the pass without a date found nothing");

    // The coverage `tmdbsync status` and the TmdbSync status show: nothing silently missing.
    let h = health(store, sim).await;
    let cov = h
        .discover
        .clone()
        .expect("discover coverage in the health report");
    let cmp = cov.export.clone().expect("compared with the export");
    assert_eq!(cmp.ids as usize, export.len());
    assert_eq!(cmp.not_reachable as usize, missing.len());
    assert_eq!(cov.listed as usize, stored.len());
    assert_eq!(cov.reported as usize, export.len());
    assert_eq!(cov.not_reachable as usize, missing.len());
    assert!(
        cov.windows as usize > initial_windows(chrono::Utc::now().date_naive()).len(),
        "no window was split: {cov:?}"
    );
    assert_eq!(cov.without_date, no_date_stored as u64);
    let line = format!("{} export ids not reachable by discover", missing.len());
    assert!(c.message.contains(&line), "{}", c.message);
    let text = tmdbsync::report::render(&h);
    assert!(text.contains(&line), "{text}");
    assert_eq!(h.tmdb_total as usize, stored.len());
    assert_eq!(h.remaining, 0);
}

/// A TmdbSync as a user applies it, against the simulator.
fn tmdb_sync(sim: &SimHandle, extra: Value) -> TmdbSync {
    let mut spec = json!({
        "tmdb": {"apiKeySecretRef": {"name": "tmdb", "key": "api-key"},
                 "baseUrl": sim.tmdb_url(), "exportBaseUrl": sim.export_url(),
                 "requestsPerSecond": 2000},
        "database": {"urlSecretRef": {"name": "db", "key": "url"}},
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    serde_json::from_value(json!({
        "apiVersion": "tmdbsync.io/v1alpha1", "kind": "TmdbSync",
        "metadata": {"name": "cine", "namespace": "media", "uid": "u1"},
        "spec": spec,
    }))
    .unwrap()
}

/// Runs the worker of a `run_type` SyncRun named `name` the way its Job's pod would: the Job's
/// arguments and environment, with the two Secrets resolved.
async fn run_worker(db: &TestDb, sync: &TmdbSync, name: &str, run_type: &str) -> String {
    let run: SyncRun = serde_json::from_value(json!({
        "apiVersion": "tmdbsync.io/v1alpha1", "kind": "SyncRun",
        "metadata": {"name": name, "namespace": "media", "uid": format!("uid-{name}")},
        "spec": {"syncRef": {"name": "cine"}, "type": run_type, "trigger": "Scheduled"},
    }))
    .unwrap();
    let plan = JobPlan {
        image: "tmdbsync".into(),
        pods: 1,
        pages: None,
        ttl_seconds: 60,
        resources: None,
    };
    let job = build_job(&run, sync, &plan);
    let container = job.spec.unwrap().template.spec.unwrap().containers[0].clone();
    let mut cmd = Command::new(BIN);
    cmd.args(container.args.unwrap())
        .env_remove("DATABASE_URL")
        .env_remove("TMDB_API_KEY");
    for var in container.env.unwrap() {
        let value = match (var.value, var.name.as_str()) {
            (Some(v), _) => v,
            (None, "DATABASE_URL") => db.url.clone(),
            (None, "TMDB_API_KEY") => "k".into(),
            (None, other) => panic!("unexpected secret env {other}"),
        };
        cmd.env(&var.name, value);
    }
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stderr(&out)
}

/// Records the outcome of a finished Job as the controller does (the run keeps its message).
async fn finish_run(store: &Store, name: &str, run_type: RunType) -> String {
    let message: String = sqlx::query_scalar("SELECT message FROM sync_runs WHERE name = $1")
        .bind(name)
        .fetch_one(store.pool())
        .await
        .unwrap();
    runs::finalize_named(store, name, run_type, RunStatus::Completed, &message)
        .await
        .unwrap();
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tmdb_sync_gets_the_discover_source_and_the_daily_stale_refetch_through_its_jobs() {
    let db = TestDb::start();
    let store = db.store().await;
    let sim = support::start_sim(600, 31).await;
    let sync = tmdb_sync(
        &sim,
        json!({"bulk": {"source": "Discover"}, "refresh": {"staleMoviesPerDay": 40}}),
    );

    run_worker(&db, &sync, "cine-catalog-1", "Catalog").await;
    let message = finish_run(&store, "cine-catalog-1", RunType::Catalog).await;
    assert!(
        message.contains("discover listed 600 of the 600 movies")
            && message.contains("0 export ids not reachable by discover"),
        "{message}"
    );
    run_worker(&db, &sync, "cine-bulk-1", "Bulk").await;
    finish_run(&store, "cine-bulk-1", RunType::Bulk).await;
    assert_eq!(stored_live_ids(&store).await, importable_ids(&sim).await);

    // Delta runs refetch the stalest movies within the day's budget, shared by the day's runs.
    let before = sim_get(&sim, "/__sim/stats").await["requests"]["details"]
        .as_i64()
        .unwrap();
    run_worker(&db, &sync, "cine-delta-1", "Delta").await;
    let first = finish_run(&store, "cine-delta-1", RunType::Delta).await;
    assert!(
        first.contains("refetched 40 movies fetched longest ago"),
        "{first}"
    );
    run_worker(&db, &sync, "cine-delta-2", "Delta").await;
    let second = finish_run(&store, "cine-delta-2", RunType::Delta).await;
    assert!(!second.contains("refetched"), "{second}");
    let after = sim_get(&sim, "/__sim/stats").await["requests"]["details"]
        .as_i64()
        .unwrap();
    assert_eq!(
        after - before,
        40,
        "the day's budget was spent more than once"
    );
    assert_eq!(
        scalar(
            &store,
            "SELECT COALESCE(sum((metadata->>'stale_refreshed')::bigint), 0)::bigint FROM sync_runs"
        )
        .await,
        40
    );

    // `tmdbsync status` reads the coverage the Job recorded.
    let text = output(tmdbsync(&["status", "--database-url", &db.url])).await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("Catalog from discover: discover listed 600 of the 600 movies"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tmdbsync_run_takes_the_discover_source_and_status_reports_its_coverage() {
    let db = TestDb::start();
    let sim = support::start_sim(400, 5).await;
    let mut cmd = tmdbsync_run(&db, &sim, "k");
    cmd.args([
        "--rps",
        "1000",
        "--bulk-source",
        "discover",
        "--stages",
        "catalog,bulk",
    ]);
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("0 export ids not reachable by discover (of 400"),
        "{}",
        stderr(&out)
    );
    let store = db.store().await;
    assert_eq!(stored_live_ids(&store).await, importable_ids(&sim).await);

    let v = status_json(&db).await;
    assert_eq!(v["discover"]["listed"], json!(400));
    assert_eq!(v["discover"]["not_reachable"], json!(0));
    assert_eq!(v["discover"]["export"]["not_reachable"], json!(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stale_refetch_is_a_budget_per_day_not_per_run() {
    let setup = EngineSetup::imported(sim_config(300, 9), 5_000).await;
    let (engine, store, _) = setup.parts();
    let label = RunLabel::default();
    let options = DeltaOptions {
        refresh_stale: 50,
        ..Default::default()
    };
    let oldest: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM movies WHERE deleted_at IS NULL ORDER BY fetched_at, id LIMIT 30",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let first = delta::run(
        engine,
        DeltaOptions {
            refresh_stale: 30,
            ..options
        },
        &label,
    )
    .await
    .unwrap();
    assert_eq!(first.counters.movies_updated, 30, "{}", first.message);
    // The oldest were refetched: none of them is among the 30 oldest any more.
    let refetched_old = scalar(
        store,
        &format!(
            "SELECT count(*) FROM (SELECT id FROM movies ORDER BY fetched_at, id LIMIT 30) s
             WHERE id IN ({})",
            oldest
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ),
    )
    .await;
    assert_eq!(refetched_old, 0);
    // A budget of 50 a day leaves 20 after the first run's 30, then nothing.
    let second = delta::run(engine, options, &label).await.unwrap();
    assert_eq!(second.counters.movies_updated, 20, "{}", second.message);
    assert!(
        second
            .message
            .contains("refetched 20 movies fetched longest ago (at most 50 a day)")
    );
    let third = delta::run(engine, options, &label).await.unwrap();
    assert_eq!(third.counters.movies_updated, 0, "{}", third.message);
}
