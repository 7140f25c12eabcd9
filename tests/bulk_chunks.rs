//! Bulk runs cut into chunks of pages (what bounds a worker's memory): a run over many chunks,
//! alone or sharded, stores every movie exactly once and checkpoints every page; and the Sync
//! Health counts kept with the writes equal an exact count. Real Postgres and the simulator.

mod support;

use serde_json::json;
use support::{
    ALL_PAGES, EngineSetup, catalog_pages, done_pages, importable_ids, load_catalog, scalar,
    scheduled, shard_of, sim_config, sim_get, stored_live_ids,
};
use tmdbsync::plan::pages::PageRange;
use tmdbsync::sim::SimConfig;
use tmdbsync::stage::RunLabel;
use tmdbsync::stage::bulk::{self, BulkOptions};
use tmdbsync::store::Store;

/// Pages per chunk in these tests: a few pages, so a catalog of 1,540 movies (77 pages) takes 11
/// chunks.
const CHUNK: i32 = 7;

fn catalog_config() -> SimConfig {
    SimConfig {
        adult_movies: 40,
        ..sim_config(1500, 11)
    }
}

/// An engine cutting bulk runs into chunks of [`CHUNK`] pages, with the catalog loaded.
async fn chunked_with_catalog() -> EngineSetup {
    let mut setup = EngineSetup::start(catalog_config(), 100_000).await;
    setup.engine.bulk_chunk_pages = CHUNK;
    load_catalog(&setup.engine).await;
    setup
}

/// The stored counts equal what `health_counts_now()` counts now.
async fn assert_counts_exact(store: &Store) {
    let stored: Vec<i64> = sqlx::query_scalar(
        "SELECT unnest(ARRAY[total, imported, pipeline_total, omdb_done, collaborations_done,
             pqs_done, missing_imdb_id]) FROM health_counts",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let exact: Vec<i64> = sqlx::query_scalar(
        "SELECT unnest(ARRAY[total, imported, pipeline_total, omdb_done, collaborations_done,
             pqs_done, missing_imdb_id]) FROM health_counts_now()",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(stored, exact, "health_counts against an exact count");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_many_chunks_stores_every_movie_once_and_checkpoints_every_page() {
    let setup = chunked_with_catalog().await;
    let (engine, store, sim) = setup.parts();
    let label = RunLabel::default();
    let pages = catalog_pages(store).await;
    assert!(
        pages > 3 * i64::from(CHUNK),
        "{pages} pages make several chunks"
    );
    // Some movies already stored mid-range: the chunks skip them without a request.
    let first = bulk::run(
        engine,
        BulkOptions {
            pages: Some(PageRange { from: 10, to: 20 }),
            ..ALL_PAGES
        },
        &label,
    )
    .await
    .unwrap();
    assert!(first.succeeded, "{}", first.message);
    let before = sim_get(sim, "/__sim/stats").await["requests"]["details"]
        .as_i64()
        .unwrap();
    assert_eq!(before, i64::from(first.counters.movies_imported));

    let report = bulk::run(engine, ALL_PAGES, &label).await.unwrap();
    assert!(report.succeeded, "{}", report.message);
    assert_eq!(stored_live_ids(store).await, importable_ids(sim).await);
    let stored = scalar(store, "SELECT count(*) FROM movies").await;
    let details = sim_get(sim, "/__sim/stats").await["requests"]["details"].clone();
    assert_eq!(details, json!(stored), "each movie fetched exactly once");
    assert_eq!(
        i64::from(report.counters.movies_imported),
        stored - i64::from(first.counters.movies_imported)
    );
    assert_eq!(
        i64::from(report.counters.pages_processed),
        pages - 11,
        "every open page, once"
    );
    assert_eq!(done_pages(store).await, pages);
    assert_eq!(
        i64::from(first.counters.movies_skipped + report.counters.movies_skipped),
        scalar(store, "SELECT count(*) FROM catalog_ids WHERE adult").await
    );
    assert_counts_exact(store).await;
    assert_eq!(
        scalar(store, "SELECT imported FROM health_counts").await,
        stored
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_cut_into_chunks_split_the_pages_without_losing_one() {
    let setup = chunked_with_catalog().await;
    let (engine, store, sim) = setup.parts();
    let pages = catalog_pages(store).await as i32;
    let label = scheduled("chunks-bulk-202601010200");
    let shard = |index| shard_of(pages, index, 3);
    let (a, b, c) = tokio::join!(
        bulk::run(engine, shard(0), &label),
        bulk::run(engine, shard(1), &label),
        bulk::run(engine, shard(2), &label)
    );
    for r in [a, b, c] {
        assert!(r.unwrap().succeeded);
    }
    assert_eq!(stored_live_ids(store).await, importable_ids(sim).await);
    let stored = scalar(store, "SELECT count(*) FROM movies").await;
    assert_eq!(
        sim_get(sim, "/__sim/stats").await["requests"]["details"],
        json!(stored),
        "the shards split the pages: no movie fetched twice"
    );
    assert_eq!(done_pages(store).await, i64::from(pages));
    assert_eq!(
        scalar(store, "SELECT sum(attempts)::bigint FROM bulk_pages").await,
        i64::from(pages),
        "each page recorded once"
    );
    assert_counts_exact(store).await;
}
