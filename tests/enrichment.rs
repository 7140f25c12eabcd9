//! The enrichment stages (OMDb, collaborations, PQS) against the simulator and a private Postgres.

mod support;

use serde_json::{Value, json};
use support::{
    EngineSetup, TestDb, output, scalar, sim_config, sim_get, sim_post, start_sim, status_json,
    stderr, tmdbsync, tmdbsync_run,
};
use tmdbsync::exit::ExitCode;
use tmdbsync::omdb::{OmdbClient, OmdbConfig};
use tmdbsync::plan::enrich::{EnrichStage, KEY_CREW_JOBS, PQS_REFERENCE_YEAR};
use tmdbsync::sim::SimHandle;
use tmdbsync::stage::delta::{self, DeltaOptions};
use tmdbsync::stage::enrich::{self, EnrichOptions};
use tmdbsync::stage::{Engine, RunLabel, StageError, StageReport};
use tmdbsync::store::{Store, pqs};
use tmdbsync::tmdb::ApiKey;

const SEED: u64 = 5;

fn options(
    sim: &SimHandle,
    key: Option<&str>,
    limit: i32,
    stages: &[EnrichStage],
) -> EnrichOptions {
    EnrichOptions {
        stages: stages.to_vec(),
        omdb: key.map(|k| {
            OmdbClient::new(OmdbConfig::new(sim.omdb_url(), ApiKey::new(k))).expect("client")
        }),
        omdb_daily_limit: limit,
        ..Default::default()
    }
}

async fn enrich_run(engine: &Engine, options: &EnrichOptions) -> StageReport {
    let r = enrich::run(engine, options, &RunLabel::default())
        .await
        .expect("enrich run");
    assert!(r.succeeded, "{}", r.message);
    r
}

async fn omdb_requests(sim: &SimHandle) -> i64 {
    sim_get(sim, "/__sim/stats").await["requests"]["omdb"]
        .as_i64()
        .unwrap()
}

async fn outcome(store: &Store, name: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM movie_pipeline WHERE omdb_outcome = $1")
        .bind(name)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn omdb_stays_within_the_daily_limit_records_outcomes_and_asks_again_only_after_a_change() {
    let setup = EngineSetup::imported(sim_config(400, SEED), 10_000).await;
    let (e, _, sim) = setup.parts();
    let omdb = [EnrichStage::Omdb];

    enrich_run(e, &options(sim, Some("k"), 120, &omdb)).await;
    assert_eq!(omdb_requests(sim).await, 120, "exactly the daily limit");
    assert_eq!(
        scalar(&e.store, "SELECT calls::bigint FROM omdb_daily_calls").await,
        120
    );
    let no_imdb = scalar(
        &e.store,
        "SELECT count(*) FROM movies WHERE imdb_id IS NULL",
    )
    .await;
    assert!(no_imdb > 0);
    assert_eq!(
        outcome(&e.store, "no_imdb_id").await,
        no_imdb,
        "recorded without a call"
    );
    assert_eq!(
        outcome(&e.store, "found").await + outcome(&e.store, "not_found").await,
        120
    );
    // The limit holds across runs of the same day.
    let again = enrich_run(e, &options(sim, Some("k"), 120, &omdb)).await;
    assert_eq!(omdb_requests(sim).await, 120, "{}", again.message);
    assert!(again.message.contains("daily limit"), "{}", again.message);

    enrich_run(e, &options(sim, Some("k"), 100_000, &omdb)).await;
    let with_imdb = 400 - no_imdb;
    assert_eq!(omdb_requests(sim).await, with_imdb, "each movie asked once");
    let not_found = outcome(&e.store, "not_found").await;
    assert!(not_found > 0, "the simulator misses ~3 % of ids");
    assert_eq!(outcome(&e.store, "found").await, with_imdb - not_found);
    assert_eq!(
        scalar(&e.store, "SELECT count(*) FROM omdb_ratings").await,
        with_imdb - not_found
    );
    let typed = scalar(
        &e.store,
        "SELECT count(*) FROM omdb_ratings WHERE imdb_rating BETWEEN 1.5 AND 9.5
           AND imdb_votes > 0 AND raw ->> 'Response' = 'True'",
    )
    .await;
    assert_eq!(typed, with_imdb - not_found);
    assert!(
        scalar(
            &e.store,
            "SELECT count(*) FROM omdb_ratings WHERE box_office IS NULL"
        )
        .await
            > 0,
        "\"N/A\" box office is null"
    );

    // Nothing is asked twice; a movie changed by a delta is asked again.
    enrich_run(e, &options(sim, Some("k"), 100_000, &omdb)).await;
    assert_eq!(
        omdb_requests(sim).await,
        with_imdb,
        "not-found ids are not re-asked"
    );
    sim_post(sim, "/__sim/advance?days=3", json!({})).await;
    let d = delta::run(e, DeltaOptions::default(), &RunLabel::default())
        .await
        .unwrap();
    assert!(d.succeeded);
    let refetched_with_imdb = scalar(
        &e.store,
        "SELECT count(*) FROM movie_pipeline p JOIN movies m ON m.id = p.movie_id
         WHERE m.deleted_at IS NULL AND m.imdb_id IS NOT NULL AND p.omdb_at < p.details_at
           OR p.omdb_at IS NULL AND m.deleted_at IS NULL AND m.imdb_id IS NOT NULL",
    )
    .await;
    assert!(refetched_with_imdb > 0);
    enrich_run(e, &options(sim, Some("k"), 100_000, &omdb)).await;
    assert_eq!(
        omdb_requests(sim).await,
        with_imdb + refetched_with_imdb,
        "only changed or new movies are asked again"
    );
    let counters: Value = sqlx::query_scalar(
        "SELECT metadata -> 'stages' FROM sync_runs WHERE run_type = 'enrich' ORDER BY id LIMIT 1",
    )
    .fetch_one(e.store.pool())
    .await
    .unwrap();
    assert_eq!(counters[0]["stage"], json!("omdb"));
    assert_eq!(counters[0]["done"], json!(120 + no_imdb));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn omdb_request_limit_reached_stops_for_the_day_without_marking_movies() {
    let setup = EngineSetup::imported(sim_config(200, SEED), 10_000).await;
    let (e, _, sim) = setup.parts();
    sim_post(sim, "/__sim/faults", json!({"omdb_daily_limit": 5})).await;
    let omdb = [EnrichStage::Omdb];
    let r = enrich_run(e, &options(sim, Some("k"), 1000, &omdb)).await;
    assert!(r.message.contains("Request limit reached"), "{}", r.message);
    let asked = outcome(&e.store, "found").await + outcome(&e.store, "not_found").await;
    assert_eq!(asked, 5, "only answered movies are recorded");
    assert_eq!(
        scalar(&e.store, "SELECT count(*) FROM sync_errors").await,
        0
    );
    let before = omdb_requests(sim).await;
    enrich_run(e, &options(sim, Some("k"), 1000, &omdb)).await;
    assert_eq!(
        omdb_requests(sim).await,
        before,
        "no call for the rest of the day"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_omdb_key_fails_the_run_with_the_credentials_exit_code() {
    let setup = EngineSetup::imported(sim_config(100, SEED), 10_000).await;
    let (e, _, sim) = setup.parts();
    let err = enrich::run(
        e,
        &options(sim, Some("invalid"), 1000, &EnrichStage::ALL),
        &RunLabel::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StageError::OmdbCredentials(_)), "{err}");
    assert_eq!(ExitCode::from(&err), ExitCode::Credentials);
    assert!(
        !err.to_string().contains("invalid"),
        "the key is not repeated: {err}"
    );
    assert_eq!(
        scalar(
            &e.store,
            "SELECT count(*) FROM sync_errors WHERE category = 'auth'"
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &e.store,
            "SELECT count(*) FROM sync_runs WHERE run_type = 'enrich' AND status = 'failed'"
        )
        .await,
        1
    );
}

type Pair = (i64, i64, i32, Option<i16>, Option<i16>);

async fn stored_pairs(store: &Store) -> Vec<Pair> {
    sqlx::query_as("SELECT * FROM collaborations ORDER BY person_a, person_b")
        .fetch_all(store.pool())
        .await
        .unwrap()
}

/// Collaborations recomputed from `credits` alone (no snapshot).
async fn pairs_from_scratch(store: &Store, top_cast: i32) -> Vec<Pair> {
    sqlx::query_as(
        "WITH key AS (
             SELECT DISTINCT c.movie_id, c.person_id,
                 extract(year FROM m.release_date)::smallint AS y
             FROM credits c JOIN movies m ON m.id = c.movie_id AND m.deleted_at IS NULL
             WHERE (c.kind = 'cast' AND c.cast_order < $1) OR (c.kind = 'crew' AND c.job = ANY($2)))
         SELECT a.person_id, b.person_id, count(*)::int, min(a.y), max(a.y)
         FROM key a JOIN key b ON a.movie_id = b.movie_id AND a.person_id < b.person_id
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind(top_cast)
    .bind(KEY_CREW_JOBS)
    .fetch_all(store.pool())
    .await
    .unwrap()
}

type Score = (i64, String, f64, f64, f64, f64, i32, i64, Option<i16>);

async fn stored_scores(store: &Store) -> Vec<Score> {
    sqlx::query_as(
        "SELECT person_id, score::text, quality, reach, volume, recency, movie_count, votes,
             last_year FROM person_quality_scores ORDER BY person_id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collaborations_and_pqs_after_a_delta_equal_a_full_recomputation() {
    let setup = EngineSetup::imported(sim_config(1500, SEED), 10_000).await;
    let (e, _, sim) = setup.parts();
    let first = enrich_run(e, &options(sim, Some("k"), 300, &EnrichStage::ALL)).await;
    let top_cast = EnrichOptions::default().top_cast;
    let before = stored_pairs(&e.store).await;
    assert!(before.len() > 1000, "{}", first.message);
    assert_eq!(before, pairs_from_scratch(&e.store, top_cast).await);

    let advanced = sim_post(sim, "/__sim/advance?days=6", json!({})).await;
    assert!(
        advanced["changed"].as_array().unwrap().len() > 30,
        "{advanced}"
    );
    let d = delta::run(e, DeltaOptions::default(), &RunLabel::default())
        .await
        .unwrap();
    assert!(d.succeeded, "{}", d.message);
    // More OMDb answers arrive too, so PQS must follow ratings as well as credits.
    let second = enrich_run(e, &options(sim, Some("k"), 600, &EnrichStage::ALL)).await;
    let after = stored_pairs(&e.store).await;
    assert_ne!(
        before, after,
        "the delta changed credits: {}",
        second.message
    );
    assert!(
        !second.message.contains("(0 with new key people)"),
        "{}",
        second.message
    );
    assert_eq!(after, pairs_from_scratch(&e.store, top_cast).await);
    assert!(after.iter().all(|p| p.0 < p.1 && p.2 > 0));

    let incremental = stored_scores(&e.store).await;
    assert!(incremental.len() > 100);
    assert!(incremental.iter().all(|s| {
        let score: f64 = s.1.parse().unwrap();
        (0.0..=100.0).contains(&score)
    }));
    sqlx::query("TRUNCATE person_quality_scores")
        .execute(e.store.pool())
        .await
        .unwrap();
    pqs::queue_everyone(&e.store).await.unwrap();
    while pqs::score_queued(&e.store, 500, PQS_REFERENCE_YEAR)
        .await
        .unwrap()
        > 0
    {}
    assert_eq!(incremental, stored_scores(&e.store).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_runs_enrich_stages_and_status_shows_side_jobs_and_missing_imdb_ids() {
    let db = TestDb::start();
    let sim = start_sim(300, SEED).await;
    let mut run = tmdbsync_run(&db, &sim, "k");
    run.args(["--rps", "1000", "--stages", "catalog,bulk,enrich"])
        .args(["--omdb-url", &sim.omdb_url()])
        .args(["--omdb-api-key", "k", "--omdb-daily-limit", "50"]);
    let out = output(run).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    // The stage's summary is said once: the run's closing log line.
    assert!(
        err.contains("run_type=enrich") && err.contains("omdb:"),
        "{err}"
    );
    assert!(!err.contains("tmdbsync: enrich:"), "{err}");
    assert!(
        !err.contains('\x1b'),
        "piped logs carry no colour codes: {err}"
    );

    let v = status_json(&db).await;
    let jobs = &v["side_jobs"];
    let stages: Vec<&str> = jobs["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["omdb", "collaborations", "pqs"]);
    let missing = jobs["missing_imdb_id"].as_i64().unwrap();
    assert!(missing > 0);
    assert_eq!(jobs["stages"][0]["done"], json!(50 + missing));
    assert_eq!(jobs["stages"][0]["total"], json!(300));
    assert_eq!(jobs["stages"][1]["percent"], json!(100.0));
    let text = output(tmdbsync(&[
        "status",
        "--format",
        "text",
        "--database-url",
        &db.url,
    ]))
    .await;
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    let omdb_line = format!(
        "OMDb Enrichment: {:.1}% complete ({} / 300)",
        (50 + missing) as f64 * 100.0 / 300.0,
        50 + missing
    );
    assert!(text.contains(&omdb_line), "{text}");
    assert!(
        text.contains("Collaborations: 100.0% complete (300 / 300)"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{missing} movies missing OMDb data (no IMDb ID)")),
        "{text}"
    );
}
