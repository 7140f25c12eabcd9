//! The client's rate against a rate-limiting TMDb (the simulator, counting on its side): under a
//! server limit far below the budget the client slows down to it and every movie is stored with
//! few 429s; at the budget no wall-clock second carries more than the budget, from the first; a
//! run whose movies keep failing completes with exit code 5 and counts every request it made.
//! Connections are a budget too: a client never has more requests in flight than its cap, and the
//! pods of a run, configured as its Job configures them, stay within TMDb's cap together.

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};
use support::{
    ALL_PAGES, BIN, TestDb, engine, importable_ids, output, sim_get, sim_post, start_sim,
    stored_live_ids, tmdbsync_run,
};
use tmdbsync::sim::SimHandle;
use tmdbsync::stage::bulk;
use tmdbsync::stage::{Engine, RunLabel, catalog};

/// The simulator's seed.
const SEED: u64 = 17;

async fn load_catalog(engine: &Engine) {
    let c = catalog::run(engine, &RunLabel::default()).await.unwrap();
    assert!(c.succeeded, "{}", c.message);
}

/// `/3/` requests the simulator received per unix second, in order.
fn per_second(stats: &Value) -> Vec<(u64, u64)> {
    stats["requests_per_second"]
        .as_array()
        .expect("requests_per_second")
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_u64().unwrap()))
        .collect()
}

fn total_requests(stats: &Value) -> u64 {
    let r = &stats["requests"];
    ["details", "changes", "discover", "latest", "configuration"]
        .iter()
        .map(|k| r[*k].as_u64().unwrap())
        .sum::<u64>()
        + stats["rate_limited"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_allowing_5_per_second_slows_a_budget_of_40_to_it_and_every_movie_is_stored() {
    let db = TestDb::start();
    let store = db.store().await;
    let sim = start_sim(200, SEED).await;
    let engine = engine(store.clone(), &sim, 40);
    load_catalog(&engine).await;
    sim_post(&sim, "/__sim/stats/reset", json!({})).await;
    sim_post(&sim, "/__sim/faults", json!({"rps": 5})).await;

    let started = Instant::now();
    let report = bulk::run(&engine, ALL_PAGES, &RunLabel::default())
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert!(report.succeeded, "{}", report.message);
    assert_eq!(report.counters.errors, 0, "{}", report.message);
    assert_eq!(stored_live_ids(&store).await, importable_ids(&sim).await);

    let stats = sim_get(&sim, "/__sim/stats?seconds=true").await;
    let total = total_requests(&stats);
    let limited = stats["rate_limited"].as_u64().unwrap();
    let share = limited as f64 / total as f64;
    let seconds = per_second(&stats);
    eprintln!(
        "5 rps server: {total} requests, {limited} answered 429 ({:.1} %), {elapsed:?}, client rate \
         now {:.2}; per second: {:?}",
        share * 100.0,
        engine.tmdb.allowed_rate(),
        seconds.iter().map(|s| s.1).collect::<Vec<_>>()
    );
    assert!(share < 0.05, "{limited} of {total} requests answered 429");
    // Settled near 5: after the first seconds the client used the server's allowance (full
    // seconds only, the last one is partial) without sending much beyond it.
    let steady: Vec<u64> = seconds[5..seconds.len() - 1].iter().map(|s| s.1).collect();
    let mean = steady.iter().sum::<u64>() as f64 / steady.len() as f64;
    assert!(
        (3.5..=5.5).contains(&mean),
        "mean requests per second after the start: {mean:.2}"
    );
    let rate = engine.tmdb.allowed_rate();
    assert!((2.0..=6.5).contains(&rate), "allowed rate {rate:.2}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_server_limit_no_wall_clock_second_carries_more_than_the_budget_from_the_first() {
    let db = TestDb::start();
    let store = db.store().await;
    let sim = start_sim(400, SEED).await;
    let engine = engine(store.clone(), &sim, 40);
    load_catalog(&engine).await;
    sim_post(&sim, "/__sim/stats/reset", json!({})).await;
    sim_post(&sim, "/__sim/faults", json!({"rps": 40})).await;

    let report = bulk::run(&engine, ALL_PAGES, &RunLabel::default())
        .await
        .unwrap();
    assert!(report.succeeded, "{}", report.message);
    assert_eq!(stored_live_ids(&store).await, importable_ids(&sim).await);

    let stats = sim_get(&sim, "/__sim/stats?seconds=true").await;
    let seconds = per_second(&stats);
    eprintln!(
        "40 rps server, budget 40: per second {:?}, 429s {}",
        seconds.iter().map(|s| s.1).collect::<Vec<_>>(),
        stats["rate_limited"]
    );
    assert!(
        stats["max_requests_in_any_second"].as_u64().unwrap() <= 40,
        "{stats}"
    );
    assert_eq!(stats["rate_limited"], json!(0), "{stats}");
    // And the budget is used: every full second but the first and the last carries at least 34.
    for (second, n) in &seconds[1..seconds.len() - 1] {
        assert!(*n >= 34, "second {second} carried only {n}: {seconds:?}");
    }
}

fn run_cmd(db: &TestDb, sim: &SimHandle, extra: &[&str]) -> Command {
    let mut cmd = tmdbsync_run(db, sim, "test-key");
    cmd.args(extra);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn movies_failing_every_try_end_the_run_completed_with_errors_and_count_each_request() {
    let db = TestDb::start();
    let store = db.store().await;
    let sim = start_sim(8, SEED).await;
    let out = output(run_cmd(&db, &sim, &["--stages", "catalog"])).await;
    assert_eq!(out.status.code(), Some(0));
    // The first four ids the bulk run asks for answer 500 on every try, and the server allows 2
    // requests a second against a budget of 40: its first 429 falls on one of them (the third
    // request of a second is one of the first four ids, however the seconds fall).
    let failing: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM catalog_ids ORDER BY ordinal LIMIT 4")
            .fetch_all(store.pool())
            .await
            .unwrap();
    sim_post(&sim, "/__sim/stats/reset", json!({})).await;
    sim_post(
        &sim,
        "/__sim/faults",
        json!({"fail_ids": failing, "rps": 2}),
    )
    .await;

    let out = output(run_cmd(&db, &sim, &["--stages", "bulk", "--rps", "40"])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("completed with 4 unresolved errors"),
        "{stderr}"
    );
    let (status, message): (String, String) =
        sqlx::query_as("SELECT status, message FROM sync_runs WHERE run_type = 'bulk'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(status, "completed");
    assert!(message.contains("4 movies still failing"), "{message}");

    let stats = sim_get(&sim, "/__sim/stats?ids=true").await;
    let asked: BTreeMap<String, u64> =
        serde_json::from_value(stats["details_requests_by_id"].clone()).unwrap();
    let rows: Vec<(i64, i32, String)> =
        sqlx::query_as("SELECT movie_id, attempts, message FROM sync_errors")
            .fetch_all(store.pool())
            .await
            .unwrap();
    let mut recorded: Vec<i64> = rows.iter().map(|r| r.0).collect();
    recorded.sort_unstable();
    let mut expected = failing.clone();
    expected.sort_unstable();
    assert_eq!(recorded, expected, "one error row per failing id");
    for (id, attempts, message) in &rows {
        let requests = asked[&id.to_string()];
        eprintln!(
            "movie {id}: {attempts} attempts recorded, {requests} requests received: {message}"
        );
        assert_eq!(*attempts as u64, requests, "movie {id}: {message}");
        assert!(*attempts >= 6, "two passes of three tries: {attempts}");
    }
    let attempts: i32 = rows.iter().map(|r| r.1).sum();
    assert!(
        attempts > 6 * 4,
        "the 429 tries are counted too: {attempts} attempts, {} answered 429",
        stats["rate_limited"]
    );
    // Every other movie is stored.
    let stored = stored_live_ids(&store).await;
    let live = importable_ids(&sim).await;
    assert_eq!(stored.len() + failing.len(), live.len());
}

/// The simulator's peaks of `/3/` requests in flight and of open connections since the last reset.
fn load_peaks(stats: &Value) -> (u64, u64) {
    (
        stats["max_requests_in_flight"]
            .as_u64()
            .expect("max_requests_in_flight"),
        stats["max_open_connections"]
            .as_u64()
            .expect("max_open_connections"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_never_has_more_requests_in_flight_than_its_connection_cap() {
    let db = TestDb::start();
    let store = db.store().await;
    let sim = start_sim(120, SEED).await;
    let mut config =
        tmdbsync::tmdb::TmdbConfig::new(sim.tmdb_url(), tmdbsync::tmdb::ApiKey::new("k"));
    config.requests_per_second = 1000;
    config.max_connections = 3;
    let engine = support::engine_with(store.clone(), config, &sim.export_url());
    assert_eq!(
        engine.concurrency, 20,
        "more fetches wait than the cap lets through"
    );
    load_catalog(&engine).await;
    sim_post(&sim, "/__sim/faults", json!({"latency_ms": 60})).await;
    sim_post(&sim, "/__sim/stats/reset", json!({})).await;

    let report = bulk::run(&engine, ALL_PAGES, &RunLabel::default())
        .await
        .unwrap();
    assert!(report.succeeded, "{}", report.message);
    assert_eq!(stored_live_ids(&store).await, importable_ids(&sim).await);
    let stats = sim_get(&sim, "/__sim/stats").await;
    let (in_flight, connections) = load_peaks(&stats);
    eprintln!("cap 3: at most {in_flight} requests in flight, {connections} connections open");
    assert_eq!(in_flight, 3, "the cap is reached and never passed: {stats}");
    // Open connections: the client's 3, its export download's (idle since the catalog run) and
    // this test's own control connection.
    assert!(connections <= 3 + 2, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pods_of_a_run_share_tmdbs_connection_cap_as_their_job_configures_them() {
    use tmdbsync::controller::job::{JobPlan, build_job};
    use tmdbsync::plan::run::TMDB_CONNECTIONS;

    const PODS: i32 = 4;
    let db = TestDb::start();
    let store = db.store().await;
    let sim = start_sim(400, SEED).await;
    load_catalog(&engine(store.clone(), &sim, 1000)).await;
    // Answers take 150 ms and the budget allows 250 requests a second per pod: only the
    // connection share limits how many requests a pod has in flight.
    sim_post(&sim, "/__sim/faults", json!({"latency_ms": 150})).await;
    sim_post(&sim, "/__sim/stats/reset", json!({})).await;

    let sync: tmdbsync::api::TmdbSync = serde_json::from_value(json!({
        "apiVersion": "tmdbsync.io/v1alpha1", "kind": "TmdbSync",
        "metadata": {"name": "cine", "namespace": "media", "uid": "u1"},
        "spec": {
            "tmdb": {"apiKeySecretRef": {"name": "tmdb", "key": "api-key"},
                     "baseUrl": sim.tmdb_url(), "exportBaseUrl": sim.export_url(),
                     "requestsPerSecond": 1000},
            "database": {"urlSecretRef": {"name": "db", "key": "url"}}
        }
    }))
    .unwrap();
    let run: tmdbsync::api::SyncRun = serde_json::from_value(json!({
        "apiVersion": "tmdbsync.io/v1alpha1", "kind": "SyncRun",
        "metadata": {"name": "cine-bulk-1", "namespace": "media", "uid": "u2"},
        "spec": {"syncRef": {"name": "cine"}, "type": "Bulk", "parallelism": PODS}
    }))
    .unwrap();
    let total_pages = tmdbsync::plan::pages::total_pages(400);
    let plan = JobPlan {
        image: "img".into(),
        pods: PODS,
        pages: Some(tmdbsync::plan::pages::PageRange {
            from: 1,
            to: total_pages,
        }),
        ttl_seconds: 60,
        resources: None,
    };
    let job = build_job(&run, &sync, &plan);
    let container = &job.spec.unwrap().template.spec.unwrap().containers[0];
    let args = container.args.clone().unwrap();
    // The pod's environment as the kubelet would give it: secrets resolved.
    let env: Vec<(String, String)> = container
        .env
        .clone()
        .unwrap()
        .into_iter()
        .map(|e| {
            let value = match (e.value, e.name.as_str()) {
                (Some(v), _) => v,
                (None, "DATABASE_URL") => db.url.clone(),
                (None, "TMDB_API_KEY") => "test-key".into(),
                (None, other) => panic!("unexpected secret {other}"),
            };
            (e.name, value)
        })
        .collect();
    let share = env
        .iter()
        .find(|(k, _)| k == "TMDBSYNC_MAX_CONNECTIONS")
        .unwrap()
        .1
        .clone();
    assert_eq!(share, (TMDB_CONNECTIONS / PODS as u32).to_string());

    let pods: Vec<_> = (0..PODS)
        .map(|index| {
            let mut cmd = Command::new(BIN);
            cmd.args(&args)
                .env_clear()
                .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .env("JOB_COMPLETION_INDEX", index.to_string());
            output(cmd)
        })
        .collect();
    for (index, out) in futures::future::join_all(pods)
        .await
        .into_iter()
        .enumerate()
    {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "pod {index}: {stderr}");
    }
    assert_eq!(stored_live_ids(&store).await, importable_ids(&sim).await);

    let stats = sim_get(&sim, "/__sim/stats").await;
    let (in_flight, connections) = load_peaks(&stats);
    eprintln!(
        "{PODS} pods with {share} connections each: at most {in_flight} requests in flight, \
         {connections} connections open (TMDb cap {TMDB_CONNECTIONS})"
    );
    assert!(
        in_flight <= u64::from(TMDB_CONNECTIONS),
        "the run's pods together passed TMDb's cap: {stats}"
    );
    assert!(
        in_flight > u64::from(TMDB_CONNECTIONS) / PODS as u64,
        "the pods worked at the same time: {stats}"
    );
    // Connections too (one more: this test's control connection).
    assert!(connections <= u64::from(TMDB_CONNECTIONS) + 1, "{stats}");
}
