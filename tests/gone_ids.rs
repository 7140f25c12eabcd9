//! Honest accounting of ids TMDb does not serve (404), their weekly recheck, and run messages that
//! describe the whole run, against the simulator and a real private Postgres.

mod support;

use std::collections::BTreeSet;

use serde_json::json;
use support::{
    ALL_PAGES, EngineSetup, catalog_pages, ids, import_all, load_catalog, scalar, scheduled,
    shard_of, sim_config, sim_get, sim_post,
};
use tmdbsync::plan::health::SyncHealth;
use tmdbsync::plan::status::{Phase, PhaseInputs, phase};
use tmdbsync::sim::SimHandle;
use tmdbsync::stage::bulk;
use tmdbsync::stage::delta::{self, DeltaOptions};
use tmdbsync::stage::{Engine, RunLabel, catalog};
use tmdbsync::store::Store;

const SEED: u64 = 11;

async fn catalog_ids(store: &Store) -> BTreeSet<i64> {
    sqlx::query_scalar::<_, i64>("SELECT id FROM catalog_ids")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .into_iter()
        .collect()
}

async fn health(store: &Store, sim: &SimHandle) -> SyncHealth {
    let inputs = tmdbsync::store::health::health_inputs(store, 10)
        .await
        .unwrap();
    let clock = sim_get(sim, "/__sim/clock").await;
    let today = clock["date"].as_str().unwrap().parse().unwrap();
    SyncHealth::compute(&inputs, today)
}

fn maintaining(h: &SyncHealth) -> bool {
    phase(PhaseInputs {
        spec_usable: true,
        catalog_loaded: h.tmdb_total > 0,
        bulk_complete: h.bulk_complete(),
        ..Default::default()
    }) == Phase::Maintaining
}

/// Loads the catalog, lets three simulated days pass (TMDb deletes some of the listed ids), then
/// imports every page: the deleted ids answer 404. Returns the listed ids TMDb no longer serves.
async fn catalog_then_deletions_then_bulk(engine: &Engine, sim: &SimHandle) -> BTreeSet<i64> {
    let label = RunLabel::default();
    let c = catalog::run(engine, &label).await.expect("catalog run");
    assert!(c.succeeded, "{}", c.message);
    let advanced = sim_post(sim, "/__sim/advance?days=3", json!({})).await;
    let listed = catalog_ids(&engine.store).await;
    let gone: BTreeSet<i64> = ids(&advanced["deleted"])
        .intersection(&listed)
        .copied()
        .collect();
    assert!(
        !gone.is_empty(),
        "the simulator deleted listed ids: {advanced}"
    );
    let b = bulk::run(engine, ALL_PAGES, &label)
        .await
        .expect("bulk run");
    assert!(b.succeeded, "{}", b.message);
    assert_eq!(
        b.counters.movies_deleted as usize,
        gone.len(),
        "{}",
        b.message
    );
    assert!(
        b.message
            .contains(&format!("{} not served by TMDb", gone.len())),
        "{}",
        b.message
    );
    gone
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_ids_that_answer_404_are_not_remaining_and_progress_reaches_100_percent() {
    let setup = EngineSetup::start(sim_config(3000, SEED), 2000).await;
    let (engine, store, sim) = setup.parts();
    let gone = catalog_then_deletions_then_bulk(engine, sim).await;

    let h = health(store, sim).await;
    assert_eq!(h.tmdb_total, 3000);
    assert_eq!(h.not_served, gone.len() as i64);
    assert_eq!(h.imported, 3000 - gone.len() as i64);
    assert_eq!(h.remaining, 0);
    assert_eq!(h.percent_complete, 100.0);
    assert_eq!(h.estimated_days_remaining, Some(0.0));
    assert!(h.bulk_complete());
    assert!(maintaining(&h));

    // Each gone id is recorded once, though none was ever imported.
    let recorded: BTreeSet<i64> = sqlx::query_scalar::<_, i64>("SELECT id FROM catalog_gone")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(recorded, gone);
    assert_eq!(
        scalar(store, "SELECT count(*) FROM movies").await,
        h.imported
    );

    // Text and JSON show the figure on its own.
    let text = tmdbsync::report::render(&h);
    assert!(
        text.contains(&format!("{} export ids not served by TMDb", gone.len())),
        "{text}"
    );
    assert!(text.contains("100.0%"), "{text}");
    let v = serde_json::to_value(&h).unwrap();
    assert_eq!(v["not_served"], json!(gone.len()));
    assert_eq!(v["remaining"], json!(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_movie_a_delta_marked_deleted_stops_counting_as_remaining() {
    let setup = EngineSetup::start(sim_config(3000, SEED), 2000).await;
    let (engine, store, sim) = setup.parts();
    import_all(engine).await;
    let label = RunLabel::default();
    let before = health(store, sim).await;
    assert_eq!((before.imported, before.remaining), (3000, 0));

    let advanced = sim_post(sim, "/__sim/advance?days=3", json!({})).await;
    let deleted = ids(&advanced["deleted"]);
    let listed_deleted: BTreeSet<i64> = deleted
        .intersection(&catalog_ids(store).await)
        .copied()
        .collect();
    assert!(!listed_deleted.is_empty(), "{advanced}");
    let d = delta::run(engine, DeltaOptions::default(), &label)
        .await
        .unwrap();
    assert!(d.succeeded, "{}", d.message);

    let h = health(store, sim).await;
    assert_eq!(h.tmdb_total, 3000, "the latest export still lists them");
    assert_eq!(h.not_served, listed_deleted.len() as i64);
    assert_eq!(h.imported, 3000 - listed_deleted.len() as i64);
    assert_eq!(h.remaining, 0);
    assert_eq!(h.percent_complete, 100.0);
    assert!(maintaining(&h));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_id_served_again_is_imported_by_the_weekly_recheck() {
    let setup = EngineSetup::start(sim_config(3000, SEED), 2000).await;
    let (engine, store, sim) = setup.parts();
    let gone = catalog_then_deletions_then_bulk(engine, sim).await;
    assert!(gone.len() >= 2, "{gone:?}");
    let back = *gone.iter().next().unwrap();
    let restored = sim_post(sim, "/__sim/restore", json!({ "ids": [back] })).await;
    assert_eq!(restored["restored"], json!([back]));
    let label = RunLabel::default();

    // Checked today: not asked again before a week has passed.
    sim_post(sim, "/__sim/stats/reset", json!({})).await;
    let early = bulk::run(engine, ALL_PAGES, &label).await.unwrap();
    assert!(early.succeeded, "{}", early.message);
    let stats = sim_get(sim, "/__sim/stats").await;
    assert_eq!(stats["requests"]["details"], json!(0), "{stats}");
    assert_eq!(health(store, sim).await.not_served, gone.len() as i64);

    // A week later the recheck asks for every gone id once and imports the one served again.
    sqlx::query("UPDATE catalog_gone SET last_checked = now() - interval '8 days'")
        .execute(store.pool())
        .await
        .unwrap();
    sim_post(sim, "/__sim/stats/reset", json!({})).await;
    let recheck = bulk::run(engine, ALL_PAGES, &label).await.unwrap();
    assert!(recheck.succeeded, "{}", recheck.message);
    let stats = sim_get(sim, "/__sim/stats?ids=true").await;
    assert_eq!(stats["requests"]["details"], json!(gone.len()), "{stats}");
    assert_eq!(recheck.counters.movies_imported, 1, "{}", recheck.message);
    assert_eq!(recheck.counters.movies_deleted, 0, "{}", recheck.message);
    assert!(
        recheck.message.contains(&format!(
            "rechecked {} ids TMDb did not serve, 1 served again",
            gone.len()
        )),
        "{}",
        recheck.message
    );
    assert_eq!(
        scalar(
            store,
            &format!("SELECT count(*) FROM movies WHERE id = {back} AND deleted_at IS NULL")
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            store,
            &format!("SELECT count(*) FROM catalog_gone WHERE id = {back}")
        )
        .await,
        0,
        "no longer recorded as gone"
    );
    let h = health(store, sim).await;
    assert_eq!(h.not_served, gone.len() as i64 - 1);
    assert_eq!(h.imported, 3000 - gone.len() as i64 + 1);
    assert_eq!((h.remaining, h.percent_complete), (0, 100.0));
    // The ids still gone were stamped checked: the next run does not ask again.
    assert_eq!(
        scalar(
            store,
            "SELECT count(*) FROM catalog_gone WHERE last_checked < now() - interval '1 day'"
        )
        .await,
        0
    );

    // The daily budget: once 100 rechecks were spent in the last 24 hours, none is made.
    sqlx::query("UPDATE catalog_gone SET last_checked = now() - interval '8 days'")
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query(
        "UPDATE sync_runs SET metadata = jsonb_set(metadata, '{gone_rechecked}', '100')
         WHERE id = $1",
    )
    .bind(recheck.run_id)
    .execute(store.pool())
    .await
    .unwrap();
    sim_post(sim, "/__sim/stats/reset", json!({})).await;
    let spent = bulk::run(engine, ALL_PAGES, &label).await.unwrap();
    assert!(spent.succeeded, "{}", spent.message);
    let stats = sim_get(sim, "/__sim/stats").await;
    assert_eq!(stats["requests"]["details"], json!(0), "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_bulk_run_message_describes_every_shard() {
    let setup = EngineSetup::start(sim_config(2000, SEED), 2000).await;
    let (engine, store, sim) = setup.parts();
    load_catalog(engine).await;
    sim_post(sim, "/__sim/advance?days=3", json!({})).await;
    let pages = catalog_pages(store).await as i32;
    let label = scheduled("cinegraph-bulk-202601010200");
    let shard = |index| shard_of(pages, index, 2);
    let (a, b) = tokio::join!(
        bulk::run(engine, shard(0), &label),
        bulk::run(engine, shard(1), &label)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.run_id, b.run_id, "both shards add to one run");

    let row = tmdbsync::store::runs::get_run_by_name(store, label.name.as_deref().unwrap())
        .await
        .unwrap()
        .expect("run row");
    let stored = scalar(store, "SELECT count(*) FROM movies").await;
    assert_eq!(row.movies_imported as i64, stored);
    let stats = sim_get(sim, "/__sim/stats").await;
    assert_eq!(
        stats["requests"]["details"],
        json!(stored + row.movies_deleted as i64),
        "the shards split the pages: {stats}"
    );
    let message = row.message.clone().expect("message");
    let expected = format!(
        "pages 1-{pages}: {} imported, {} updated, {} skipped, {} not served by TMDb (404), {} errors",
        row.movies_imported,
        row.movies_updated,
        row.movies_skipped,
        row.movies_deleted,
        row.errors_count
    );
    assert_eq!(message, expected);
    assert!(row.movies_deleted > 0, "{message}");
    assert_eq!(
        row.movies_deleted as i64,
        scalar(store, "SELECT count(*) FROM catalog_gone").await
    );
    // The shard that closed last reported the whole run too; a named run stays running for the
    // controller to finish.
    assert!(a.message == message || b.message == message, "{a:?} {b:?}");
    assert_eq!(row.status, "running");
}
