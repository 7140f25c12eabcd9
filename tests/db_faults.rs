//! Database faults never cost a run: Postgres restarted again and again (fast and immediate)
//! while bulk, delta and enrichment write at full speed, and every run finishes with exact counts
//! and no repeated request; a database down for longer than the outage tolerance fails the run
//! with the write's own error, never a bookkeeping one, and the run reads as failed once its lease
//! runs out.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{ALL_PAGES, TestDb, engine, scalar, sim_get, sim_post, start_sim};
use tmdbsync::omdb::{OmdbClient, OmdbConfig};
use tmdbsync::plan::enrich::EnrichStage;
use tmdbsync::stage::bulk;
use tmdbsync::stage::delta::{self, DeltaOptions};
use tmdbsync::stage::enrich::{self, EnrichOptions};
use tmdbsync::stage::{RunControl, RunLabel, StageError, catalog};
use tmdbsync::tmdb::{ApiKey, TmdbClient, TmdbConfig};

/// The simulator's seed.
const SEED: u64 = 21;

fn ids(v: &Value) -> BTreeSet<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().or_else(|| x["id"].as_i64()).unwrap())
        .collect()
}

/// Restarts the server `times` times, the first after `first` then every `every` (the server is
/// up for that long in between), alternating `-m fast` and `-m immediate`, until stopped.
struct Restarts {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u32>,
}

impl Restarts {
    fn start(db: &Arc<TestDb>, times: u32, first: Duration, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (db, flag) = (db.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut n = 0;
            while n < times {
                std::thread::sleep(if n == 0 { first } else { every });
                if flag.load(Ordering::SeqCst) {
                    return n;
                }
                if n % 2 == 0 {
                    db.restart_fast();
                } else {
                    db.restart_immediate();
                }
                n += 1;
            }
            n
        });
        Restarts { stop, thread }
    }

    /// Stops restarting; returns how many restarts there were.
    fn finish(self) -> u32 {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("restart thread")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarts_during_bulk_delta_and_enrichment_cost_no_run_and_no_request() {
    let db = Arc::new(TestDb::start_durable());
    let store = db.store().await;
    let sim = start_sim(1000, SEED).await;
    let mut e = engine(store.clone(), &sim, 100_000);
    // The default request timeout: a request in flight outlives a restart.
    let mut config = TmdbConfig::new(sim.tmdb_url(), ApiKey::new("test-key"));
    config.requests_per_second = 100_000;
    e.tmdb = TmdbClient::new(config).expect("client");
    let label = RunLabel::default();
    assert!(catalog::run(&e, &label).await.unwrap().succeeded);
    // Slow answers stretch each stage over several restarts whatever the machine's speed; the
    // client itself is not throttled.
    sim_post(&sim, "/__sim/faults", json!({"latency_ms": 50})).await;

    // Bulk.
    sim_post(&sim, "/__sim/stats/reset", json!({})).await;
    let restarts = Restarts::start(
        &db,
        4,
        Duration::from_millis(800),
        Duration::from_millis(1500),
    );
    let started = Instant::now();
    let report = bulk::run(&e, ALL_PAGES, &label).await.expect("bulk run");
    let bulk_restarts = restarts.finish();
    eprintln!(
        "bulk: {bulk_restarts} restarts in {:?}: {}",
        started.elapsed(),
        report.message
    );
    assert!(
        bulk_restarts >= 2,
        "only {bulk_restarts} restarts during bulk"
    );
    assert!(report.succeeded, "{}", report.message);
    let truth = sim_get(&sim, "/__sim/catalog").await;
    let live = ids(&truth["live"]);
    let stored: BTreeSet<i64> =
        sqlx::query_scalar::<_, i64>("SELECT id FROM movies WHERE deleted_at IS NULL")
            .fetch_all(store.pool())
            .await
            .unwrap()
            .into_iter()
            .collect();
    assert_eq!(stored, live);
    assert_eq!(report.counters.movies_imported as usize, live.len());
    assert_eq!(report.counters.errors, 0);
    let stats = sim_get(&sim, "/__sim/stats").await;
    let details = stats["requests"]["details"].as_i64().unwrap();
    assert_eq!(
        details,
        stats["details_ids_unique"].as_i64().unwrap() + report.counters.movies_deleted as i64,
        "a movie was requested twice: {stats}"
    );
    assert_eq!(
        scalar(
            &store,
            "SELECT count(*) FROM bulk_pages WHERE status <> 'done'"
        )
        .await,
        0
    );
    let bad_credits = scalar(
        &store,
        "SELECT count(*) FROM movies m WHERE (SELECT count(*) FROM credits c WHERE c.movie_id = m.id)
           <> jsonb_array_length(m.raw->'credits'->'cast') + jsonb_array_length(m.raw->'credits'->'crew')",
    )
    .await;
    assert_eq!(bad_credits, 0);

    // Delta.
    let advanced = sim_post(&sim, "/__sim/advance?days=2", json!({})).await;
    let (changed, deleted, added) = (
        ids(&advanced["changed"]),
        ids(&advanced["deleted"]),
        ids(&advanced["added"]),
    );
    sim_post(&sim, "/__sim/stats/reset", json!({})).await;
    let restarts = Restarts::start(
        &db,
        3,
        Duration::from_millis(300),
        Duration::from_millis(800),
    );
    // The changes plus a refresh of the stalest stored movies.
    let refresh = 600;
    let options = DeltaOptions {
        refresh_stale: refresh,
        ..Default::default()
    };
    let report = delta::run(&e, options, &label).await.expect("delta run");
    let delta_restarts = restarts.finish();
    eprintln!("delta: {delta_restarts} restarts: {}", report.message);
    assert!(
        delta_restarts >= 2,
        "only {delta_restarts} restarts during delta"
    );
    assert!(report.succeeded, "{}", report.message);
    assert_eq!(report.counters.movies_imported as usize, added.len());
    assert_eq!(report.counters.movies_deleted as usize, deleted.len());
    assert_eq!(
        report.counters.movies_updated as usize,
        changed.difference(&deleted).count() + refresh as usize
    );
    let stats = sim_get(&sim, "/__sim/stats").await;
    assert_eq!(
        stats["requests"]["details"].as_i64().unwrap(),
        stats["details_ids_unique"].as_i64().unwrap() + deleted.len() as i64,
        "a movie was requested twice: {stats}"
    );

    // Enrichment: OMDb lookups under frequent restarts, then collaborations and person scores,
    // whose single large transaction needs a few seconds between two restarts.
    let pending_omdb = scalar(
        &store,
        "SELECT count(*) FROM movie_pipeline p JOIN movies m ON m.id = p.movie_id
         WHERE m.deleted_at IS NULL AND m.imdb_id <> ''",
    )
    .await;
    sim_post(&sim, "/__sim/stats/reset", json!({})).await;
    let options = EnrichOptions {
        stages: vec![EnrichStage::Omdb],
        omdb: Some(
            OmdbClient::new(OmdbConfig::new(sim.omdb_url(), ApiKey::new("k"))).expect("client"),
        ),
        omdb_daily_limit: 100_000,
        omdb_concurrency: 8,
        ..Default::default()
    };
    let restarts = Restarts::start(
        &db,
        3,
        Duration::from_millis(300),
        Duration::from_millis(800),
    );
    let report = enrich::run(&e, &options, &label).await.expect("enrich run");
    let omdb_restarts = restarts.finish();
    eprintln!("omdb: {omdb_restarts} restarts: {}", report.message);
    assert!(
        omdb_restarts >= 2,
        "only {omdb_restarts} restarts during OMDb"
    );
    assert!(report.succeeded, "{}", report.message);
    let stats = sim_get(&sim, "/__sim/stats").await;
    assert_eq!(
        stats["requests"]["omdb"].as_i64().unwrap(),
        pending_omdb,
        "each movie with an imdb id is asked once: {stats}"
    );
    assert_eq!(
        scalar(&store, "SELECT calls::bigint FROM omdb_daily_calls").await,
        pending_omdb
    );
    let options = EnrichOptions {
        stages: vec![EnrichStage::Collaborations, EnrichStage::Pqs],
        ..Default::default()
    };
    // The restart starts with the run, so it always lands inside it (a fast machine finished
    // both stages within 500 ms once, before a later restart came).
    let restarts = Restarts::start(&db, 1, Duration::ZERO, Duration::ZERO);
    let report = enrich::run(&e, &options, &label).await.expect("enrich run");
    let late_restarts = restarts.finish();
    eprintln!(
        "collaborations, pqs: {late_restarts} restarts: {}",
        report.message
    );
    assert!(late_restarts >= 1);
    assert!(report.succeeded, "{}", report.message);
    let unfinished = scalar(
        &store,
        "SELECT count(*) FROM movie_pipeline p JOIN movies m ON m.id = p.movie_id
         WHERE m.deleted_at IS NULL AND (p.omdb_at IS NULL OR p.collaborations_at IS NULL
             OR p.pqs_at IS NULL)",
    )
    .await;
    assert_eq!(unfinished, 0);

    // Every run completed, none was left running or double-counted.
    let statuses: Vec<(String, String)> =
        sqlx::query_as("SELECT run_type, status FROM sync_runs ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert!(
        statuses.iter().all(|(_, s)| s == "completed"),
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_down_longer_than_the_tolerance_fails_the_run_with_the_write_error() {
    let db = TestDb::start();
    let store = db
        .store()
        .await
        .with_outage_tolerance(Duration::from_secs(2));
    let sim = start_sim(2000, SEED).await;
    let mut e = engine(store.clone(), &sim, 100_000);
    e.runs = RunControl::new(Duration::from_secs(1), Duration::ZERO);
    let label = RunLabel::default();
    assert!(catalog::run(&e, &label).await.unwrap().succeeded);
    sim_post(&sim, "/__sim/faults", json!({"latency_ms": 30})).await;

    let bulk_engine = e.clone();
    let task =
        tokio::spawn(async move { bulk::run(&bulk_engine, ALL_PAGES, &RunLabel::default()).await });
    let deadline = Instant::now() + Duration::from_secs(30);
    while scalar(&store, "SELECT count(*) FROM movies").await < 300 {
        assert!(Instant::now() < deadline, "bulk did not get going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let run_id = scalar(
        &store,
        "SELECT max(id) FROM sync_runs WHERE run_type = 'bulk'",
    )
    .await;
    db.stop();
    let down = Instant::now();
    let outcome = task.await.unwrap();
    let failed_after = down.elapsed();
    let Err(StageError::Store(error)) = outcome else {
        panic!("expected a database error, got {outcome:?}");
    };
    let message = error.to_string();
    eprintln!("failed after {failed_after:?}: {message}");
    assert!(message.starts_with("database error while"), "{message}");
    for bookkeeping in ["request counts", "run message", "closing", "heartbeat"] {
        assert!(!message.contains(bookkeeping), "{message}");
    }
    assert!(
        failed_after >= Duration::from_secs(2) && failed_after < Duration::from_secs(20),
        "{failed_after:?}"
    );

    // Back up: nothing could record the outcome, so the row still says running; every reader
    // sees it failed once its lease ran out, and the next run records it.
    db.restart();
    let store = db.store().await;
    let raw: String = sqlx::query_scalar("SELECT status FROM sync_runs WHERE id = $1")
        .bind(run_id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(raw, "running");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let seen = tmdbsync::store::runs::get_run(&store, run_id)
        .await
        .unwrap();
    assert_eq!(seen.status, "failed");
    assert!(
        seen.message
            .as_deref()
            .is_some_and(|m| m.starts_with("interrupted: the process running it stopped")),
        "{seen:?}"
    );
    let raw: String = sqlx::query_scalar("SELECT status FROM sync_runs WHERE id = $1")
        .bind(run_id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(raw, "running", "a reader never writes");
    sim_post(&sim, "/__sim/faults", json!({"latency_ms": 0})).await;
    let mut e = engine(store.clone(), &sim, 100_000);
    e.runs = RunControl::new(Duration::from_secs(1), Duration::ZERO);
    let report = delta::run(&e, DeltaOptions::default(), &label)
        .await
        .expect("a delta runs");
    assert!(report.succeeded, "{}", report.message);
    let raw: String = sqlx::query_scalar("SELECT status FROM sync_runs WHERE id = $1")
        .bind(run_id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(raw, "failed", "the next run records the dead one");
}
