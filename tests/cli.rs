//! The `tmdbsync` binary: bad input gives one clear line and the right exit code; a killed run
//! resumes without duplicates or gaps; `status` reports what is stored.

mod support;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{
    TestDb, importable_ids, output, sim_get, sim_post, start_sim, status_json, stderr, tmdbsync,
    tmdbsync_run,
};
use tmdbsync::sim::SimHandle;

/// `tmdbsync run` against `db` and the simulator with API key `key`, up to 1000 requests/s.
fn run_cmd(db: &TestDb, sim: &SimHandle, key: &str, extra: &[&str]) -> Command {
    let mut cmd = tmdbsync_run(db, sim, key);
    cmd.args(["--rps", "1000"]).args(extra);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_api_key_fails_fast_with_a_message_about_the_key() {
    let db = TestDb::start();
    let sim = start_sim(200, 11).await;
    let started = Instant::now();
    let out = output(run_cmd(&db, &sim, "invalid", &[])).await;
    let elapsed = started.elapsed();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let last = stderr(&out).lines().last().unwrap_or_default().to_string();
    assert!(
        last.contains("API key"),
        "last line should name the key problem: {last}"
    );
    assert!(
        !stderr(&out).contains("invalid&"),
        "the key must not leak into messages"
    );
    eprintln!("invalid key: exit after {elapsed:?}");
    // No retry of a 401: a retrying client would spend its backoff (seconds) before giving up.
    // The bound is generous so a loaded machine cannot fail it; speed belongs to benchmarks.
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flags_and_an_unreachable_database_fail_with_one_clear_line() {
    let out = output(tmdbsync(&[
        "run",
        "--database-url",
        "postgres:///x",
        "--api-key",
        "k",
        "--pages",
        "0",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--pages"), "{}", stderr(&out));

    let out = output(tmdbsync(&[
        "run",
        "--database-url",
        "postgres:///x?host=/nonexistent-socket-dir",
        "--api-key",
        "k",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    assert!(
        text.trim().lines().count() == 1 && text.contains("cannot connect to the database"),
        "{text}"
    );
    assert!(!text.contains("panicked"));

    let out = output(tmdbsync(&["migrate", "--database-url", "mysql://nope"])).await;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("invalid database URL"),
        "{}",
        stderr(&out)
    );
    let out = output(tmdbsync(&[
        "migrate",
        "--database-url",
        "postgres://user:s3cret@host:notaport/db",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("s3cret"),
        "the URL's password must not be printed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_export_lines_are_counted_and_a_missing_export_falls_back_to_the_previous_day() {
    let db = TestDb::start();
    let sim = start_sim(300, 11).await;
    // Day 1 of the simulation, before its export is out: day 0's export (300 ids) is the newest.
    // 3 bad lines of 303: under the 1 % beyond which an export is refused.
    sim_post(&sim, "/__sim/faults", json!({"export_malformed_lines": 3})).await;
    sim_post(&sim, "/__sim/advance?days=1", json!({})).await;
    sim_post(
        &sim,
        "/__sim/faults",
        json!({"publish_today_export": false}),
    )
    .await;
    let out = output(run_cmd(&db, &sim, "good", &["--stages", "catalog"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(text.contains("not published yet"), "{text}");
    assert!(text.contains("3 malformed lines skipped"), "{text}");
    let store = db.store().await;
    let (date, malformed, total): (chrono::NaiveDate, i64, i64) =
        sqlx::query_as("SELECT export_date, malformed, total_ids FROM catalog_exports")
            .fetch_one(store.pool())
            .await
            .unwrap();
    let today: String = sim_get(&sim, "/__sim/catalog").await["date"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        date,
        today
            .parse::<chrono::NaiveDate>()
            .unwrap()
            .pred_opt()
            .unwrap()
    );
    assert_eq!(malformed, 3);
    assert_eq!(total, 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_bulk_resumes_without_duplicates_or_missing_movies() {
    let db = TestDb::start();
    let sim = start_sim(3000, 11).await;
    sim_post(&sim, "/__sim/faults", json!({"latency_ms": 20})).await;
    let store = db.store().await;
    let mut child = run_cmd(
        &db,
        &sim,
        "good",
        &["--stages", "catalog,bulk", "--pages", "1000"],
    )
    // A short lease: the rerun waits for the killed run's lease to run out before it goes.
    .env("TMDBSYNC_RUN_LEASE_SECS", "1")
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM movies")
            .fetch_one(store.pool())
            .await
            .unwrap_or(0);
        if n >= 600 {
            break;
        }
        assert!(Instant::now() < deadline, "the run did not get going");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let partial: i64 = sqlx::query_scalar("SELECT count(*) FROM movies")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(
        partial < 3000,
        "killed too late to prove anything ({partial} stored)"
    );

    sim_post(&sim, "/__sim/faults", json!({"latency_ms": 0})).await;
    let out = output(run_cmd(
        &db,
        &sim,
        "good",
        &["--stages", "catalog,bulk", "--pages", "1000"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let stored: Vec<i64> = sqlx::query_scalar("SELECT id FROM movies ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap();
    let unique: BTreeSet<i64> = stored.iter().copied().collect();
    assert_eq!(stored.len(), unique.len());
    assert_eq!(unique, importable_ids(&sim).await);
    let bad_credits: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM movies m WHERE (SELECT count(*) FROM credits c WHERE c.movie_id = m.id)
           <> jsonb_array_length(m.raw->'credits'->'cast') + jsonb_array_length(m.raw->'credits'->'crew')",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(bad_credits, 0);
    let interrupted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sync_runs WHERE status = 'failed' AND message LIKE 'interrupted%'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        interrupted, 1,
        "the killed run is reported as failed, never as succeeded"
    );
    let undone: i64 = sqlx::query_scalar("SELECT count(*) FROM bulk_pages WHERE status <> 'done'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(undone, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_progress_as_text_and_json() {
    let db = TestDb::start();
    let sim = start_sim(500, 11).await;
    let out = output(run_cmd(
        &db,
        &sim,
        "good",
        &["--stages", "catalog,bulk", "--pages", "10"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let v = status_json(&db).await;
    assert_eq!(v["tmdb_total"], json!(500));
    assert_eq!(v["imported"], json!(200));
    assert_eq!(v["remaining"], json!(300));
    assert_eq!(v["percent_complete"], json!(40.0));
    assert_eq!(v["total_pages"], json!(25));
    assert_eq!(v["last_page_processed"], json!(10));
    // One run today is not a full day of data: the rate counts finished days only, and the
    // estimate waits ("calculating…").
    assert_eq!(v["today_rate"], json!(200));
    assert_eq!(v["daily_rate"], json!(0.0));
    assert_eq!(v["eta"]["state"], json!("calculating"));
    assert_eq!(v["estimated_days_remaining"], Value::Null);
    assert_eq!(v["history"].as_array().unwrap().len(), 30);
    assert_eq!(v["runs"].as_array().unwrap().len(), 2);

    let text = output(tmdbsync(&["status", "--database-url", &db.url])).await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("200 / 500 movies"), "{text}");
    assert!(text.contains("40.0%"), "{text}");
    assert!(text.contains("Last 7 days"), "{text}");
    assert!(
        text.contains("Estimated completion: calculating…"),
        "{text}"
    );
    assert!(
        !text.contains('\x1b'),
        "no colour codes off a terminal: {text}"
    );
}
