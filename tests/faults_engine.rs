//! Faults that must never cost a run its secrets or its time, in-process against the simulator,
//! misbehaving local servers and a private Postgres: keys echoed back by a proxy are redacted
//! everywhere, silent servers fail each stage within its timeouts, each run records only its own
//! requests, a broken export is a data error, and a down OMDb costs exactly the failure limit.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::fake_http::{Behaviour, FakeHttp};
use support::{
    TestDb, engine_with, import_all, pages, scalar, sim_config, sim_get, sim_post, store_and_sim,
};
use tmdbsync::model::ErrorCategory;
use tmdbsync::omdb::{OmdbClient, OmdbConfig};
use tmdbsync::plan::enrich::EnrichStage;
use tmdbsync::sim::SimHandle;
use tmdbsync::stage::bulk;
use tmdbsync::stage::delta::{self, DeltaOptions};
use tmdbsync::stage::enrich::omdb::MAX_FAILURES_IN_A_ROW;
use tmdbsync::stage::enrich::{self, EnrichOptions};
use tmdbsync::stage::{Engine, RunLabel, StageError, catalog};
use tmdbsync::store::Store;
use tmdbsync::tmdb::{ApiKey, TmdbConfig, TmdbError};

const TMDB_KEY: &str = "sekrit-tmdb-key-4242";
const OMDB_KEY: &str = "omdbsekrit77";

const SEED: u64 = 3;

/// Short timeouts and backoff so a fault costs the test a second, not minutes.
fn short_timeouts(c: &mut TmdbConfig) {
    c.timeout = Duration::from_secs(3);
    c.connect_timeout = Duration::from_secs(1);
    c.read_timeout = Duration::from_millis(400);
    c.export_idle_timeout = Duration::from_millis(400);
    c.export_timeout = Duration::from_secs(10);
    c.backoff_base = Duration::from_millis(20);
}

fn engine_at(store: &Store, tmdb_url: &str, export_url: &str) -> Engine {
    let mut config = TmdbConfig::new(tmdb_url, ApiKey::new(TMDB_KEY));
    config.requests_per_second = 2000;
    short_timeouts(&mut config);
    engine_with(store.clone(), config, export_url)
}

/// A private Postgres, the simulator with `movies` movies, and an engine against both.
async fn start(movies: u64) -> (TestDb, Store, SimHandle, Engine) {
    let (db, store, sim) = store_and_sim(sim_config(movies, SEED)).await;
    let engine = engine_at(&store, &sim.tmdb_url(), &sim.export_url());
    (db, store, sim, engine)
}

/// OMDb enrichment's report says it stopped at the limit of failed calls in a row.
fn assert_stopped_at_failure_limit(message: &str) {
    assert!(
        message.contains("stopped after 20 failed OMDb calls in a row"),
        "{message}"
    );
}

fn omdb_options(url: &str) -> EnrichOptions {
    let mut config = OmdbConfig::new(url, ApiKey::new(OMDB_KEY));
    config.timeout = Duration::from_secs(3);
    config.read_timeout = Duration::from_millis(300);
    EnrichOptions {
        stages: vec![EnrichStage::Omdb],
        omdb: Some(OmdbClient::new(config).expect("omdb client")),
        omdb_daily_limit: 1000,
        ..Default::default()
    }
}

async fn texts(store: &Store, sql: &'static str) -> Vec<String> {
    sqlx::query_scalar(sql)
        .fetch_all(store.pool())
        .await
        .unwrap()
}

fn assert_no_key(what: &str, text: &str) {
    assert!(
        !text.contains(TMDB_KEY) && !text.contains(OMDB_KEY),
        "{what} carries a key: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_echoed_by_a_proxy_reach_no_error_run_or_sync_errors_row_in_any_stage() {
    let (_db, store, sim, good) = start(100).await;
    let proxy = FakeHttp::start(Behaviour::Echo502 {
        configuration_ok: true,
    })
    .await;
    let echo_all = FakeHttp::start(Behaviour::Echo502 {
        configuration_ok: false,
    })
    .await;
    let label = RunLabel::default();

    // Catalog: the credentials check itself goes through the echoing proxy.
    let e = catalog::run(
        &engine_at(&store, &echo_all.url(), &sim.export_url()),
        &label,
    )
    .await
    .expect_err("a 502 on /configuration fails the stage");
    let text = e.to_string();
    assert_no_key("the catalog error", &text);
    assert!(
        text.contains("HTTP 502") && text.contains("api_key=<redacted>"),
        "the echo reached the message, redacted: {text}"
    );
    assert!(!text.contains('\n'), "one line: {text}");

    // Load the catalog and one page from the simulator, then run bulk and delta through the proxy.
    assert!(catalog::run(&good, &label).await.unwrap().succeeded);
    assert!(bulk::run(&good, pages(1), &label).await.unwrap().succeeded);
    let proxied = engine_at(&store, &proxy.url(), &sim.export_url());
    let bulk_report = bulk::run(&proxied, pages(2), &label).await.unwrap();
    assert_eq!(bulk_report.counters.errors, 40, "{}", bulk_report.message);
    let delta_error = delta::run(&proxied, DeltaOptions::default(), &label)
        .await
        .expect_err("the changes feed answers 502");
    assert_no_key("the delta error", &delta_error.to_string());

    // OMDb through the proxy.
    let omdb = FakeHttp::start(Behaviour::Echo502 {
        configuration_ok: false,
    })
    .await;
    let report = enrich::run(&good, &omdb_options(&omdb.url()), &label)
        .await
        .unwrap();
    assert_no_key("the enrich message", &report.message);

    let errors = texts(&store, "SELECT message FROM sync_errors").await;
    for m in &errors {
        assert_no_key("a sync_errors row", m);
    }
    let echoed = |needle: &str| errors.iter().filter(|m| m.contains(needle)).count();
    assert!(
        echoed("api_key=<redacted>") > 0,
        "bulk's echoed errors are recorded, redacted: {errors:?}"
    );
    assert!(
        echoed("apikey=<redacted>") > 0,
        "OMDb's echoed errors are recorded, redacted: {errors:?}"
    );
    let runs = texts(
        &store,
        "SELECT coalesce(message, '') || ' ' || metadata::text FROM sync_runs",
    )
    .await;
    for r in &runs {
        assert_no_key("a sync_runs row", r);
    }
    assert!(
        runs.iter().any(|r| r.contains("api_key=<redacted>")),
        "delta's failure is recorded, redacted: {runs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_fails_each_stage_within_its_timeouts_with_a_message_naming_the_flag() {
    let (_db, store, sim, good) = start(100).await;
    let silent = FakeHttp::start(Behaviour::Silent).await;
    let stalling = FakeHttp::start(Behaviour::StallAfterHeaders).await;
    let label = RunLabel::default();
    let deaf = engine_at(&store, &silent.url(), &sim.export_url());

    // TMDb never answers: three tries of 0.4 s each, then the stage fails.
    let timed = |name: &'static str, started: Instant, e: StageError| {
        let elapsed = started.elapsed();
        eprintln!("{name}: failed after {elapsed:?}: {e}");
        assert!(elapsed < Duration::from_secs(4), "{name} took {elapsed:?}");
        e.to_string()
    };
    let t = Instant::now();
    let e = catalog::run(&deaf, &label).await.unwrap_err();
    let text = timed("catalog", t, e);
    assert!(text.contains("--read-timeout-secs"), "{text}");
    let t = Instant::now();
    let e = bulk::run(&deaf, pages(1), &label).await.unwrap_err();
    assert!(timed("bulk", t, e).contains("did not answer in time"));
    let t = Instant::now();
    let e = delta::run(&deaf, DeltaOptions::default(), &label)
        .await
        .unwrap_err();
    assert!(timed("delta", t, e).contains("did not answer in time"));

    // The export host never answers, or stops sending after the first bytes.
    for (name, host) in [("export silent", &silent), ("export stalled", &stalling)] {
        let t = Instant::now();
        let e = catalog::run(&engine_at(&store, &sim.tmdb_url(), &host.url()), &label)
            .await
            .unwrap_err();
        let text = timed(name, t, e);
        assert!(
            text.contains("no data for 0.4 s (--export-idle-timeout-secs)"),
            "{text}"
        );
    }
    assert_eq!(scalar(&store, "SELECT count(*) FROM catalog_ids").await, 0);

    // OMDb never answers: the stage stops after the failure limit, within the read timeouts.
    import_all(&good).await;
    let before = silent.connections();
    let t = Instant::now();
    let report = enrich::run(&good, &omdb_options(&silent.url()), &label)
        .await
        .unwrap();
    let elapsed = t.elapsed();
    eprintln!("omdb: {elapsed:?}: {}", report.message);
    assert!(elapsed < Duration::from_secs(5), "omdb took {elapsed:?}");
    assert_stopped_at_failure_limit(&report.message);
    assert_eq!(silent.connections() - before, MAX_FAILURES_IN_A_ROW as u64);
    let errors = texts(&store, "SELECT message FROM sync_errors").await;
    assert!(
        errors.iter().all(|m| m.contains("--read-timeout-secs")),
        "{errors:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_run_records_only_the_requests_it_made() {
    let (_db, store, sim, engine) = start(200).await;
    let label = RunLabel::default();
    let api_requests = |stats: &serde_json::Value| -> i64 {
        ["details", "changes", "discover", "latest", "configuration"]
            .iter()
            .map(|k| stats["requests"][k].as_i64().unwrap())
            .sum()
    };
    for stage in ["catalog", "bulk", "delta"] {
        let before = api_requests(&sim_get(&sim, "/__sim/stats").await);
        let report = match stage {
            "catalog" => catalog::run(&engine, &label).await,
            "bulk" => bulk::run(&engine, pages(3), &label).await,
            _ => delta::run(&engine, DeltaOptions::default(), &label).await,
        }
        .unwrap();
        assert!(report.succeeded, "{}", report.message);
        let made = api_requests(&sim_get(&sim, "/__sim/stats").await) - before;
        let recorded: i64 = sqlx::query_scalar(
            "SELECT COALESCE(sum(requests), 0)::bigint FROM run_requests WHERE run_id = $1",
        )
        .bind(report.run_id)
        .fetch_one(store.pool())
        .await
        .unwrap();
        eprintln!("{stage}: made {made}, recorded {recorded}");
        assert!(made > 0);
        assert_eq!(recorded, made, "{stage} records its own requests only");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_export_is_a_data_error_that_loads_nothing() {
    let (_db, store, sim, engine) = start(100).await;
    let html = FakeHttp::start(Behaviour::Html200).await;
    let label = RunLabel::default();
    let data_error = |e: StageError| match e {
        StageError::Tmdb(t @ TmdbError::MalformedExport(_)) => {
            assert_eq!(t.category(), ErrorCategory::Data);
            t.to_string()
        }
        other => panic!("not a data error: {other:?}"),
    };

    // An HTML page where the gzip file should be.
    let e = catalog::run(&engine_at(&store, &sim.tmdb_url(), &html.url()), &label)
        .await
        .unwrap_err();
    let text = data_error(e);
    assert!(text.contains("is not gzip data"), "{text}");
    assert!(text.contains("<html>"), "says what came instead: {text}");

    // 2 malformed lines of 102 is more than 1 %: nothing is loaded, the run fails.
    sim_post(&sim, "/__sim/faults", json!({"export_malformed_lines": 2})).await;
    let text = data_error(catalog::run(&engine, &label).await.unwrap_err());
    assert!(
        text.contains("2 malformed lines of 102, more than 1 %"),
        "{text}"
    );
    assert_eq!(scalar(&store, "SELECT count(*) FROM catalog_ids").await, 0);
    let failed = texts(
        &store,
        "SELECT message FROM sync_runs WHERE run_type = 'catalog' AND status = 'failed' ORDER BY id",
    )
    .await;
    assert_eq!(failed.len(), 2, "both runs are failures: {failed:?}");
    assert!(failed[1].contains("nothing was loaded"), "{failed:?}");

    // The next day's file has 1 malformed line of about 100, within the limit: loaded, counted.
    sim_post(&sim, "/__sim/faults", json!({"export_malformed_lines": 1})).await;
    sim_post(&sim, "/__sim/advance?days=1", json!({})).await;
    let report = catalog::run(&engine, &label).await.unwrap();
    assert!(report.succeeded);
    assert!(
        report.message.contains(" 1 malformed lines skipped"),
        "{}",
        report.message
    );
    assert!(scalar(&store, "SELECT count(*) FROM catalog_ids").await >= 90);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_omdb_costs_exactly_the_failure_limit_of_calls_and_quota() {
    let (_db, store, _sim, good) = start(120).await;
    let label = RunLabel::default();
    import_all(&good).await;
    let pending = scalar(
        &store,
        "SELECT count(*) FROM movies WHERE imdb_id IS NOT NULL",
    )
    .await;
    assert!(pending > 2 * MAX_FAILURES_IN_A_ROW as i64, "{pending}");

    let down = FakeHttp::start(Behaviour::Echo502 {
        configuration_ok: false,
    })
    .await;
    let report = enrich::run(&good, &omdb_options(&down.url()), &label)
        .await
        .unwrap();
    assert_stopped_at_failure_limit(&report.message);
    assert_eq!(
        down.connections(),
        MAX_FAILURES_IN_A_ROW as u64,
        "calls made"
    );
    assert_eq!(
        scalar(
            &store,
            "SELECT COALESCE(sum(calls), 0)::bigint FROM omdb_daily_calls"
        )
        .await,
        MAX_FAILURES_IN_A_ROW as i64,
        "quota spent"
    );
    assert_eq!(
        scalar(&store, "SELECT count(*) FROM sync_errors").await,
        MAX_FAILURES_IN_A_ROW as i64
    );
    assert_eq!(
        scalar(&store, "SELECT count(*) FROM movie_pipeline WHERE omdb_at IS NOT NULL AND omdb_outcome <> 'no_imdb_id'").await,
        0,
        "failed movies stay pending"
    );
}
