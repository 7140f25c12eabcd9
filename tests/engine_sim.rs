//! The engine end to end against the simulator and a real private Postgres.

mod support;

use std::collections::BTreeSet;

use serde_json::json;
use support::{
    ALL_PAGES, EngineSetup, catalog_pages, done_pages, ids, import_all, importable_ids, scalar,
    sim_config, sim_get, sim_post, stored_live_ids, stored_title,
};
use tmdbsync::sim::SimConfig;
use tmdbsync::stage::RunLabel;
use tmdbsync::stage::bulk::{self, BulkOptions};
use tmdbsync::stage::delta::{self, DeltaOptions};

const SEED: u64 = 7;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_and_bulk_import_exactly_the_non_adult_ids_then_a_second_run_fetches_nothing() {
    let catalog = SimConfig {
        adult_movies: 60,
        ..sim_config(5000, SEED)
    };
    let setup = EngineSetup::imported(catalog, 2000).await;
    let (engine, store, sim) = setup.parts();

    let expected = importable_ids(sim).await;
    assert_eq!(expected.len(), 5000);
    assert_eq!(
        stored_live_ids(store).await,
        expected,
        "stored ids differ from the simulator's non-adult catalog"
    );

    // Credits, genres and external ids came with each movie and landed in their tables.
    assert_eq!(
        scalar(store, "SELECT count(*) FROM movies m WHERE NOT EXISTS (SELECT 1 FROM credits c WHERE c.movie_id = m.id)
                        AND jsonb_array_length(m.raw->'credits'->'cast') + jsonb_array_length(m.raw->'credits'->'crew') > 0").await,
        0
    );
    assert_eq!(
        scalar(store, "SELECT count(*) FROM credits").await,
        scalar(store, "SELECT sum(jsonb_array_length(raw->'credits'->'cast') + jsonb_array_length(raw->'credits'->'crew'))::bigint FROM movies").await
    );
    assert_eq!(
        scalar(store, "SELECT count(*) FROM movie_genres").await,
        scalar(
            store,
            "SELECT sum(jsonb_array_length(raw->'genres'))::bigint FROM movies"
        )
        .await
    );
    assert_eq!(
        scalar(store, "SELECT count(*) FROM movies WHERE imdb_id IS DISTINCT FROM NULLIF(raw->'external_ids'->>'imdb_id', '')").await,
        0
    );
    assert!(
        scalar(
            store,
            "SELECT count(*) FROM movies WHERE imdb_id IS NOT NULL"
        )
        .await
            > 4000
    );
    assert!(scalar(store, "SELECT count(*) FROM credits").await > 5 * 5000);
    // People are shared across movies (the collaboration graph needs that).
    assert!(
        scalar(store, "SELECT count(*) FROM people").await
            < scalar(
                store,
                "SELECT count(DISTINCT (movie_id, person_id)) FROM credits"
            )
            .await
    );

    // Every page is done, and the run's counters equal the tables.
    let pages = catalog_pages(store).await;
    assert_eq!(done_pages(store).await, pages);
    assert_eq!(
        scalar(store, "SELECT count(*) FROM bulk_pages").await,
        pages
    );
    let run: (i32, i32, i32, i32) = sqlx::query_as(
        "SELECT movies_imported, movies_skipped, pages_processed, errors_count FROM sync_runs WHERE run_type = 'bulk'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        run.0 as i64,
        scalar(store, "SELECT count(*) FROM movies").await
    );
    assert_eq!(
        run.1 as i64,
        scalar(store, "SELECT count(*) FROM catalog_ids WHERE adult").await
    );
    assert_eq!(run.2 as i64, pages);
    assert_eq!(
        run.3 as i64,
        scalar(store, "SELECT count(*) FROM sync_errors").await
    );
    assert_eq!(run.3, 0);

    // A second run asks TMDb for no details and imports nothing.
    sim_post(sim, "/__sim/stats/reset", json!({})).await;
    let label = RunLabel::default();
    let again = bulk::run(
        engine,
        BulkOptions {
            pages: Some(tmdbsync::plan::pages::PageRange {
                from: 1,
                to: pages as i32,
            }),
            ..ALL_PAGES
        },
        &label,
    )
    .await
    .unwrap();
    assert_eq!(again.counters.movies_imported, 0);
    let next = bulk::run(engine, ALL_PAGES, &label).await.unwrap();
    assert_eq!(next.counters.movies_imported, 0);
    let stats = sim_get(sim, "/__sim/stats").await;
    assert_eq!(stats["requests"]["details"], json!(0), "{stats}");

    // A manual re-import of pages 1-2 fetches every non-adult movie on them again.
    let on_pages = scalar(
        store,
        "SELECT count(*) FROM catalog_ids WHERE ordinal <= 40 AND NOT adult",
    )
    .await;
    let reimport = BulkOptions {
        pages: Some(tmdbsync::plan::pages::PageRange { from: 1, to: 2 }),
        refetch: true,
        ..ALL_PAGES
    };
    let again = bulk::run(engine, reimport, &label).await.unwrap();
    assert_eq!(again.counters.movies_updated as i64, on_pages);
    assert_eq!(again.counters.movies_imported, 0);
    let stats = sim_get(sim, "/__sim/stats").await;
    assert_eq!(stats["requests"]["details"], json!(on_pages), "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_after_three_days_refetches_exactly_changed_and_added_ids_and_marks_deleted() {
    let setup = EngineSetup::imported(sim_config(3000, SEED), 2000).await;
    let (engine, store, sim) = setup.parts();
    let first_day = scalar(
        store,
        "SELECT (min(export_date) - date '2000-01-01')::bigint FROM catalog_exports",
    )
    .await;

    let advanced = sim_post(sim, "/__sim/advance?days=3", json!({})).await;
    let (changed, deleted, added) = (
        ids(&advanced["changed"]),
        ids(&advanced["deleted"]),
        ids(&advanced["added"]),
    );
    assert!(
        !changed.is_empty() && !deleted.is_empty() && !added.is_empty(),
        "{advanced}"
    );
    sim_post(sim, "/__sim/stats/reset", json!({})).await;

    let report = delta::run(engine, DeltaOptions::default(), &RunLabel::default())
        .await
        .unwrap();
    assert!(report.succeeded, "{}", report.message);

    let stats = sim_get(sim, "/__sim/stats?ids=true").await;
    let fetched = ids(&stats["details_ids"]);
    let wanted: BTreeSet<i64> = changed.union(&added).copied().collect();
    assert_eq!(
        fetched
            .difference(&deleted)
            .copied()
            .collect::<BTreeSet<_>>(),
        wanted
    );

    let marked: BTreeSet<i64> =
        sqlx::query_scalar::<_, i64>("SELECT id FROM movies WHERE deleted_at IS NOT NULL")
            .fetch_all(store.pool())
            .await
            .unwrap()
            .into_iter()
            .collect();
    assert_eq!(marked, deleted);
    assert_eq!(stored_live_ids(store).await, importable_ids(sim).await);
    assert_eq!(report.counters.movies_imported as usize, added.len());
    assert_eq!(report.counters.movies_deleted as usize, deleted.len());

    // The changed movies carry the simulator's new version.
    for id in changed.iter().take(5) {
        let body = sim_get(sim, &format!("/3/movie/{id}?api_key=k")).await;
        assert_eq!(json!(stored_title(store, *id).await), body["title"]);
    }
    // The watermark covers the finished days: the first export day and the two days after it;
    // the current day is read again next time.
    let days: Vec<i64> =
        sqlx::query_scalar("SELECT (day - date '2000-01-01')::bigint FROM delta_days ORDER BY day")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(days, vec![first_day, first_day + 1, first_day + 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_lose_nothing_and_only_exhausted_retries_count_as_errors() {
    let setup = EngineSetup::start(sim_config(2000, SEED), 2000).await;
    let (engine, store, sim) = setup.parts();
    sim_post(
        sim,
        "/__sim/faults",
        json!({"error_rate": 0.05, "malformed_rate": 0.01, "reset_rate": 0.01}),
    )
    .await;
    import_all(engine).await;

    assert_eq!(stored_live_ids(store).await, importable_ids(sim).await);
    assert_eq!(
        scalar(
            store,
            "SELECT count(*) FROM movies WHERE deleted_at IS NOT NULL"
        )
        .await,
        0
    );
    let stats = sim_get(sim, "/__sim/stats").await;
    assert!(
        stats["errors_injected"].as_i64().unwrap() > 50,
        "faults were injected: {stats}"
    );
    let recorded = scalar(store, "SELECT count(*) FROM sync_errors").await;
    assert_eq!(
        recorded,
        scalar(
            store,
            "SELECT COALESCE(sum(errors_count), 0)::bigint FROM sync_runs"
        )
        .await
    );
    assert_eq!(
        scalar(store, "SELECT count(*) FROM sync_errors WHERE attempts < 6").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_limit_below_the_budget_is_absorbed_by_backing_off() {
    let setup = EngineSetup::start(sim_config(400, SEED), 80).await;
    let (engine, store, sim) = setup.parts();
    sim_post(sim, "/__sim/faults", json!({"rps": 40})).await;
    import_all(engine).await;
    assert_eq!(stored_live_ids(store).await, importable_ids(sim).await);
    let stats = sim_get(sim, "/__sim/stats").await;
    assert!(
        stats["rate_limited"].as_i64().unwrap() > 0,
        "the simulator limited us: {stats}"
    );
    assert_eq!(scalar(store, "SELECT count(*) FROM sync_errors").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delta_watermark_holds_before_a_window_with_a_failed_id_and_the_next_run_retries_it() {
    let setup = EngineSetup::imported(sim_config(1000, SEED), 2000).await;
    let (engine, store, sim) = setup.parts();
    let advanced = sim_post(sim, "/__sim/advance?days=2", json!({})).await;
    let victim = *ids(&advanced["changed"])
        .iter()
        .next()
        .expect("a changed id");
    sim_post(sim, "/__sim/faults", json!({"fail_ids": [victim]})).await;

    let first = delta::run(engine, DeltaOptions::default(), &RunLabel::default())
        .await
        .unwrap();
    assert_eq!(first.counters.errors, 1, "{}", first.message);
    assert_eq!(
        scalar(store, "SELECT count(*) FROM delta_days").await,
        0,
        "watermark must not move"
    );
    assert_eq!(
        scalar(
            store,
            &format!("SELECT count(*) FROM sync_errors WHERE movie_id = {victim}")
        )
        .await,
        1
    );
    let stale_title = stored_title(store, victim).await;

    sim_post(sim, "/__sim/faults", json!({"fail_ids": []})).await;
    let second = delta::run(engine, DeltaOptions::default(), &RunLabel::default())
        .await
        .unwrap();
    assert_eq!(second.counters.errors, 0, "{}", second.message);
    assert!(scalar(store, "SELECT count(*) FROM delta_days").await >= 2);
    let body = sim_get(sim, &format!("/3/movie/{victim}?api_key=k")).await;
    let title = stored_title(store, victim).await;
    assert_eq!(json!(title), body["title"]);
    assert_ne!(
        title, stale_title,
        "the retried movie now carries its new version"
    );
}
