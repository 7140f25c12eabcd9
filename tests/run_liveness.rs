//! One writer per stage and honest run states: two `tmdbsync run` at once take turns (or the
//! second exits 1 naming the holder) and never fetch a movie twice; shards of one named run share
//! their stage while a different run is refused; a frozen run is taken over and its late writes
//! are refused; a run stopped by SIGTERM is recorded as interrupted at once, one killed by SIGKILL
//! reads failed in `tmdbsync status` once its lease runs out (without `status` writing) and the
//! next run records it.

mod support;

use std::collections::BTreeSet;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{
    TestDb, engine, importable_ids, output, scalar, scheduled, sim_config, sim_get, sim_post,
    start_sim, status_json, stderr, store_and_sim, tmdbsync_run,
};
use tmdbsync::plan::RunType;
use tmdbsync::sim::SimHandle;
use tmdbsync::stage::bulk::{self, BulkOptions};
use tmdbsync::stage::{RunControl, RunLabel, StageError, catalog};
use tmdbsync::store::Store;
use tmdbsync::store::runs::{self, RunStatus};

/// Movies in the simulated catalog (50 bulk pages).
const MOVIES: u64 = 1000;
/// The simulator's seed.
const SEED: u64 = 17;

/// `tmdbsync run` at up to 1000 requests/s and 1000 pages a run, stderr kept (stdout dropped).
fn run_cmd(db: &TestDb, sim: &SimHandle, extra: &[&str]) -> Command {
    let mut cmd = tmdbsync_run(db, sim, "good");
    cmd.args(["--rps", "1000", "--pages", "1000"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

async fn wait_child(child: Child) -> Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().expect("wait tmdbsync"))
        .await
        .unwrap()
}

fn last_line(o: &Output) -> String {
    stderr(o).lines().last().unwrap_or_default().to_string()
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on a child this test spawned and has not reaped yet.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill {sig}");
}

async fn raw_status(store: &Store, run: i64) -> (String, Option<String>) {
    sqlx::query_as("SELECT status, message FROM sync_runs WHERE id = $1")
        .bind(run)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// Waits until `sql` (a count) reaches `n`.
async fn wait_for(store: &Store, sql: &str, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while scalar(store, sql).await < n {
        assert!(Instant::now() < deadline, "waited too long for: {sql}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn stored_ids(store: &Store) -> Vec<i64> {
    sqlx::query_scalar("SELECT id FROM movies ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap()
}

/// A database with the simulator's catalog loaded (a catalog run), and the simulator's answers
/// then slowed to 20 ms, so that a bulk run lasts long enough for another process to meet it.
async fn catalog_loaded_and_slow() -> (TestDb, Store, SimHandle) {
    let (db, store, sim) = store_and_sim(sim_config(MOVIES, SEED)).await;
    let c = catalog::run(&engine(store.clone(), &sim, 10_000), &RunLabel::default())
        .await
        .unwrap();
    assert!(c.succeeded, "{}", c.message);
    sim_post(&sim, "/__sim/faults", json!({"latency_ms": 20})).await;
    (db, store, sim)
}

/// Every live movie stored exactly once; returns how many there are.
async fn assert_stored_once(store: &Store, sim: &SimHandle) -> usize {
    let stored = stored_ids(store).await;
    let unique: BTreeSet<i64> = stored.iter().copied().collect();
    assert_eq!(stored.len(), unique.len());
    assert_eq!(unique, importable_ids(sim).await);
    unique.len()
}

/// Every live movie stored exactly once, each fetched exactly once.
async fn assert_exact(store: &Store, sim: &SimHandle) {
    let stored = assert_stored_once(store, sim).await;
    let stats = sim_get(sim, "/__sim/stats").await;
    assert_eq!(
        stats["requests"]["details"].as_i64().unwrap(),
        stored as i64,
        "a movie was fetched twice: {stats}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cli_runs_at_once_take_turns_and_never_fetch_a_movie_twice() {
    let db = TestDb::start();
    let sim = start_sim(MOVIES, SEED).await;
    sim_post(&sim, "/__sim/faults", json!({"latency_ms": 10})).await;
    let first = run_cmd(&db, &sim, &["--stages", "catalog,bulk"])
        .spawn()
        .unwrap();
    let second = run_cmd(&db, &sim, &["--stages", "catalog,bulk"])
        .spawn()
        .unwrap();
    let (first, second) = tokio::join!(wait_child(first), wait_child(second));
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    assert!(
        [&first, &second]
            .iter()
            .any(|o| stderr(o).contains("another run holds this stage; waiting")),
        "the runs never met:\n{}\n{}",
        stderr(&first),
        stderr(&second)
    );
    let store = db.store().await;
    assert_exact(&store, &sim).await;
    let runs: Vec<(String, String, i32)> = sqlx::query_as(
        "SELECT run_type, status, movies_imported FROM sync_runs ORDER BY run_type, movies_imported",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        runs,
        vec![
            ("bulk".into(), "completed".into(), 0),
            ("bulk".into(), "completed".into(), MOVIES as i32),
            ("catalog".into(), "completed".into(), 0),
            ("catalog".into(), "completed".into(), 0),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_waiting_a_second_run_exits_1_naming_the_run_that_holds_the_stage() {
    let (db, store, sim) = catalog_loaded_and_slow().await;
    sim_post(&sim, "/__sim/stats/reset", json!({})).await;
    let first = run_cmd(&db, &sim, &["--stages", "bulk"]).spawn().unwrap();
    wait_for(&store, "SELECT count(*) FROM movies", 100).await;
    let holder = scalar(
        &store,
        "SELECT max(id) FROM sync_runs WHERE run_type = 'bulk'",
    )
    .await;

    let started = Instant::now();
    let second = output(run_cmd(
        &db,
        &sim,
        &["--stages", "bulk", "--stage-wait-secs", "0"],
    ))
    .await;
    assert_eq!(second.status.code(), Some(1), "{}", stderr(&second));
    assert!(started.elapsed() < Duration::from_secs(5));
    let line = last_line(&second);
    for needle in [
        "bulk stage failed: another bulk run holds the bulk stage of this database",
        &format!("run {holder} (`tmdbsync run` on "),
        "retry when it has finished",
    ] {
        assert!(line.contains(needle), "{needle:?} not in: {line}");
    }

    let first = wait_child(first).await;
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert_exact(&store, &sim).await;
    assert_eq!(
        scalar(
            &store,
            "SELECT count(*) FROM sync_runs WHERE run_type = 'bulk'"
        )
        .await,
        1,
        "the refused run left no row"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_of_one_named_run_share_the_stage_and_another_run_is_refused() {
    let (_db, store, sim) = catalog_loaded_and_slow().await;
    let base = engine(store.clone(), &sim, 10_000);
    sim_post(&sim, "/__sim/stats/reset", json!({})).await;
    let no_wait = |e: &tmdbsync::stage::Engine| {
        let mut e = e.clone();
        e.runs = RunControl::new(Duration::from_secs(60), Duration::ZERO);
        e
    };
    let shard = |index: u32| BulkOptions {
        pages: Some(tmdbsync::plan::pages::PageRange { from: 1, to: 50 }),
        pages_per_run: 50,
        shard: Some((index, 2)),
        refetch: false,
    };
    // Each shard pod has its own engine (process), and none waits: a shard refused would fail.
    let pods: Vec<_> = (0..2)
        .map(|index| {
            let e = no_wait(&engine(store.clone(), &sim, 10_000));
            let label = scheduled("cinegraph-bulk-a");
            tokio::spawn(async move { bulk::run(&e, shard(index), &label).await })
        })
        .collect();
    wait_for(&store, "SELECT count(*) FROM movies", 200).await;
    let other = no_wait(&base);
    let refused = bulk::run(&other, shard(0), &scheduled("cinegraph-bulk-b")).await;
    let Err(StageError::Busy(message)) = refused else {
        panic!("another run was let in: {refused:?}");
    };
    assert!(message.contains("SyncRun cinegraph-bulk-a"), "{message}");
    for pod in pods {
        let report = pod.await.unwrap().expect("a shard runs");
        assert!(report.succeeded, "{}", report.message);
    }
    assert_exact(&store, &sim).await;

    // The run holds its stage until the operator records its outcome; then the next run goes.
    runs::finalize_named(
        &store,
        "cinegraph-bulk-a",
        RunType::Bulk,
        RunStatus::Completed,
        "done",
    )
    .await
    .unwrap();
    let next = bulk::run(&other, shard(0), &scheduled("cinegraph-bulk-b"))
        .await
        .expect("the next run opens");
    assert!(next.succeeded);
    assert_eq!(next.counters.movies_imported, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_run_is_taken_over_and_its_late_writes_are_refused() {
    let (db, store, sim) = catalog_loaded_and_slow().await;
    let lease = ["--run-lease-secs", "1"];
    let zombie = run_cmd(&db, &sim, &[&["--stages", "bulk"][..], &lease].concat())
        .spawn()
        .unwrap();
    wait_for(&store, "SELECT count(*) FROM movies", 300).await;
    signal(&zombie, libc::SIGSTOP);
    let zombie_run = scalar(
        &store,
        "SELECT max(id) FROM sync_runs WHERE run_type = 'bulk'",
    )
    .await;

    let next = output(run_cmd(
        &db,
        &sim,
        &[&["--stages", "bulk"][..], &lease].concat(),
    ))
    .await;
    assert_eq!(next.status.code(), Some(0), "{}", stderr(&next));
    let next_run = scalar(
        &store,
        "SELECT max(id) FROM sync_runs WHERE run_type = 'bulk'",
    )
    .await;
    assert!(next_run > zombie_run);
    let (status, message) = raw_status(&store, zombie_run).await;
    assert_eq!(status, "failed");
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.starts_with("interrupted: the process running it stopped")),
        "{message:?}"
    );
    let counters = "SELECT (movies_imported + movies_updated + pages_processed)::bigint FROM sync_runs WHERE id = ";
    let before = scalar(&store, &format!("{counters}{zombie_run}")).await;

    // The zombie wakes up with fetched movies to write: every write is refused.
    signal(&zombie, libc::SIGCONT);
    let zombie = wait_child(zombie).await;
    assert_eq!(zombie.status.code(), Some(1), "{}", stderr(&zombie));
    assert!(
        last_line(&zombie).contains("was declared dead while this process still worked for it"),
        "{}",
        stderr(&zombie)
    );
    assert_eq!(
        scalar(&store, &format!("{counters}{zombie_run}")).await,
        before
    );
    assert_eq!(raw_status(&store, zombie_run).await.0, "failed");
    let late_pages = scalar(
        &store,
        &format!(
            "SELECT count(*) FROM bulk_pages WHERE run_id = {zombie_run}
               AND completed_at > (SELECT started_at FROM sync_runs WHERE id = {next_run})"
        ),
    )
    .await;
    assert_eq!(
        late_pages, 0,
        "the zombie checkpointed pages after the takeover"
    );
    assert_stored_once(&store, &sim).await;
    assert_eq!(
        scalar(
            &store,
            "SELECT count(*) FROM bulk_pages WHERE status <> 'done'"
        )
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_is_recorded_at_once_and_a_sigkilled_run_reads_failed_after_its_lease() {
    let (db, store, sim) = catalog_loaded_and_slow().await;
    let args = ["--stages", "bulk", "--run-lease-secs", "1"];

    let terminated = run_cmd(&db, &sim, &args).spawn().unwrap();
    wait_for(&store, "SELECT count(*) FROM movies", 200).await;
    let term_run = scalar(&store, "SELECT max(id) FROM sync_runs").await;
    signal(&terminated, libc::SIGTERM);
    let terminated = wait_child(terminated).await;
    assert_eq!(terminated.status.code(), Some(1), "{}", stderr(&terminated));
    assert!(
        last_line(&terminated).contains("stopped by SIGTERM"),
        "{}",
        stderr(&terminated)
    );
    let (status, message) = raw_status(&store, term_run).await;
    assert_eq!(status, "failed");
    assert_eq!(
        message.as_deref(),
        Some("interrupted: stopped by SIGTERM before it finished")
    );

    let killed = run_cmd(&db, &sim, &args).spawn().unwrap();
    wait_for(&store, "SELECT count(*) FROM movies", 600).await;
    let kill_run = scalar(&store, "SELECT max(id) FROM sync_runs").await;
    let mut killed = killed;
    killed.kill().unwrap(); // SIGKILL
    killed.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let v = status_json(&db).await;
    let shown = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == json!(kill_run))
        .expect("the killed run is listed")
        .clone();
    assert_eq!(shown["status"], json!("failed"), "{shown}");
    assert!(
        shown["message"].as_str().unwrap().starts_with(
            "interrupted: the process running it stopped without recording an outcome (no heartbeat since "
        ),
        "{shown}"
    );
    assert_eq!(
        raw_status(&store, kill_run).await.0,
        "running",
        "status never writes"
    );

    // Any later run records it, a delta as well as a bulk run.
    let delta = output(run_cmd(&db, &sim, &["--stages", "delta"])).await;
    assert_eq!(delta.status.code(), Some(0), "{}", stderr(&delta));
    assert_eq!(raw_status(&store, kill_run).await.0, "failed");
}
