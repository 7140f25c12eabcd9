//! The Sync Health page in a real browser: Debian's chromium, driven through chromium-driver
//! (installed by scripts/install-deps.sh) with fantoccini, against `tmdbsync dashboard` on a
//! private Postgres. The data is a real engine run against the simulator (today, on the
//! simulator's clock) plus 29 days of history rows inserted on the same clock, with a paused day,
//! an idle day, a failed run and a run message carrying `<script>`.
//!
//! Checks what a person sees: the percentage and counts, 7 table rows, 30 chart bars whose
//! heights follow the data, the side jobs and alerts, the markup staying text; writes a
//! screenshot to the test's output directory (`$CARGO_TARGET_TMPDIR/sync-health.png`; with
//! `TMDBSYNC_UPDATE_SCREENSHOT=1` also to docs/sync-health.png); downloads the CSV report and
//! checks that it parses and its totals equal the database; and checks that the page's
//! `health.json` is the document `tmdbsync status -o json` prints.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::NaiveDate;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use support::cluster::eventually;
use support::{
    TestDb, free_port, get_json, http_get, output, start_sim, stderr, tmdbsync, tmdbsync_run,
};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A child process killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `tmdbsync dashboard` on a free port; returns the process and its base URL.
fn start_dashboard(db: &TestDb) -> (Killed, String) {
    let mut child = tmdbsync(&[
        "dashboard",
        "--database-url",
        &db.url,
        "--addr",
        "127.0.0.1:0",
        "--sync",
        "media/cinegraph",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit())
    .spawn()
    .expect("start tmdbsync dashboard");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the dashboard's address");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .trim_end_matches('/')
        .to_string();
    (Killed(child), url)
}

/// chromium-driver on a free port, ready for sessions.
async fn start_driver() -> (Killed, String) {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            std::path::Path::new(tool).exists(),
            "{tool} is missing: run `bash scripts/install-deps.sh` (installs chromium and chromium-driver)"
        );
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    let status = format!("{url}/status");
    eventually("chromedriver starts", Duration::from_secs(20), || async {
        (http_get(&status).await.0 == 200).then_some(())
    })
    .await;
    (Killed(child), url)
}

/// A headless chromium session (as root it needs --no-sandbox).
async fn browser(driver: &str) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1100,1000", "--hide-scrollbars"],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(driver)
        .await
        .expect("a chromium session")
}

/// The history a person would see: per TMDb day (days back from today) what the inserted runs
/// did. Day 10 is paused (no run), day 20 idle, day 5 has a failed run, day 3's message is markup.
fn history_row(back: i64) -> Option<(i64, i64, i64, i64, i64, &'static str)> {
    match back {
        10 | 20 => None,
        5 => Some((40, 2, 5, 0, 9, "failed")),
        _ => Some((
            100 + 17 * back,
            3 * back,
            5 + back,
            back % 3,
            back % 4,
            "completed",
        )),
    }
}

const MARKUP: &str = "<script>window.__pwned = 1</script><b>bold</b>";

async fn insert_history(store: &tmdbsync::store::Store, offset: f64) {
    for back in 1..30i64 {
        let Some((imported, updated, skipped, deleted, errors, status)) = history_row(back) else {
            continue;
        };
        let message = if back == 3 {
            MARKUP.to_string()
        } else {
            format!("history day -{back}")
        };
        sqlx::query(
            "INSERT INTO sync_runs (run_type, trigger, status, started_at, completed_at,
                 pages_processed, movies_imported, movies_updated, movies_skipped, movies_deleted,
                 errors_count, message, tmdb_clock_offset_secs)
             VALUES ('bulk', 'scheduled', $1, now() - make_interval(days => $2::int),
                 now() - make_interval(days => $2::int) + interval '90 seconds',
                 5, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(status)
        .bind(back as i32)
        .bind(imported as i32)
        .bind(updated as i32)
        .bind(skipped as i32)
        .bind(deleted as i32)
        .bind(errors as i32)
        .bind(message)
        .bind(offset)
        .execute(store.pool())
        .await
        .unwrap();
    }
    // Paused for a few hours on day 10 (the pause is read on the latest run's clock).
    sqlx::query(
        "INSERT INTO sync_pauses (paused_at, resumed_at)
         VALUES (now() - interval '10 days' - interval '1 hour',
                 now() - interval '10 days' + interval '1 hour')",
    )
    .execute(store.pool())
    .await
    .unwrap();
    // An error within the last 24 hours, for the alert.
    sqlx::query(
        "INSERT INTO sync_errors (category, movie_id, http_status, message)
         VALUES ('network', 12, NULL, 'connection reset')",
    )
    .execute(store.pool())
    .await
    .unwrap();
}

async fn texts(c: &Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in c.find_all(Locator::Css(css)).await.unwrap() {
        out.push(e.text().await.unwrap());
    }
    out
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

fn without_generated_at(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("generated_at");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_in_a_real_browser_shows_the_sync_and_its_report_matches_the_database() {
    let db = TestDb::start();
    let sim = start_sim(500, 23).await;
    // A real run on the simulator's clock: the catalog, 10 of 25 pages, the side jobs.
    let mut run = tmdbsync_run(&db, &sim, "k");
    run.args([
        "--rps",
        "1000",
        "--stages",
        "catalog,bulk,enrich",
        "--pages",
        "10",
    ])
    .args(["--omdb-url", &sim.omdb_url(), "--omdb-api-key", "k"]);
    let out = output(run).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let store = db.store().await;
    let offset: f64 = sqlx::query_scalar(
        "SELECT tmdb_clock_offset_secs FROM sync_runs WHERE run_type = 'catalog'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(
        offset < -20.0 * 86_400.0,
        "the run recorded the simulator's clock (30 days back): {offset}"
    );
    let sim_today: NaiveDate = sim_status_date(&sim).await;
    insert_history(&store, offset).await;

    // What the database says, computed here without the code under test.
    let (total, imported): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM catalog_ids WHERE NOT adult),
                (SELECT count(*) FROM movies WHERE deleted_at IS NULL)",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!((total, imported), (500, 200));
    let today_sums: (i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT sum(movies_imported)::bigint, sum(movies_updated)::bigint,
                sum(movies_skipped)::bigint, sum(movies_deleted)::bigint, sum(errors_count)::bigint
         FROM sync_runs WHERE started_at > now() - interval '1 hour'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    let today_total = today_sums.0 + today_sums.1 + today_sums.2 + today_sums.3 + today_sums.4;
    let mut expected: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    for back in 0..30i64 {
        let day = sim_today - chrono::Days::new(back as u64);
        let t = match (back, history_row(back)) {
            (0, _) => today_total,
            (_, Some((i, u, s, d, e, _))) => i + u + s + d + e,
            (_, None) => 0,
        };
        expected.insert(day, t);
    }

    let (_dashboard, base) = start_dashboard(&db);
    let (_driver, driver_url) = start_driver().await;
    let c = browser(&driver_url).await;
    c.goto(&format!("{base}/?refresh=0")).await.unwrap();

    assert_eq!(text(&c, "#percent").await, "40.0%");
    assert_eq!(text(&c, "#counts").await, "200 of 500 movies");
    let health = get_json(&format!("{base}/health.json")).await;
    assert_eq!(
        health["today"],
        json!(sim_today.to_string()),
        "one clock: the simulator's day"
    );
    assert_eq!(health["clock"], json!("tmdb"));
    assert_eq!(health["eta"]["state"], json!("estimated"));
    assert_eq!(
        text(&c, "#eta").await,
        health["eta"]["text"].as_str().unwrap()
    );
    // The last 7 finished days' imports, averaged (days 1-7 all had runs).
    let rate = (1..=7).map(|b| history_row(b).unwrap().0).sum::<i64>() as f64 / 7.0;
    assert_eq!(
        text(&c, "#daily-rate").await,
        format!("{} movies/day", rate.round()),
        "{:#}",
        health["last_7_days"]
    );

    // The 7-day table: seven rows, day 5 failed, today ok.
    let rows = c.find_all(Locator::Css("tr.day-row")).await.unwrap();
    assert_eq!(rows.len(), 7);
    let mut statuses = Vec::new();
    for r in &rows {
        statuses.push(r.attr("data-status").await.unwrap().unwrap());
    }
    assert_eq!(statuses, ["ok", "failed", "ok", "ok", "ok", "ok", "ok"]);

    // The chart: 30 bars whose drawn heights follow the day totals.
    let bars = c
        .execute(
            "return Array.from(document.querySelectorAll('svg.chart g.day')).map(g => ({
                 day: g.dataset.day, status: g.classList[1],
                 height: Array.from(g.querySelectorAll('rect.bar'))
                     .reduce((s, r) => s + r.getBBox().height, 0)}));",
            vec![],
        )
        .await
        .unwrap();
    let bars = bars.as_array().unwrap();
    assert_eq!(bars.len(), 30);
    let max_total = *expected.values().max().unwrap() as f64;
    let tallest = bars
        .iter()
        .map(|b| b["height"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!(
        tallest > 100.0,
        "the tallest bar fills the chart: {tallest}"
    );
    for b in bars {
        let day: NaiveDate = b["day"].as_str().unwrap().parse().unwrap();
        let want = expected[&day] as f64 / max_total;
        let got = b["height"].as_f64().unwrap() / tallest;
        assert!(
            (want - got).abs() < 0.01,
            "{day}: height {got:.3} of the tallest, data {want:.3}"
        );
    }
    let status_of = |back: u64| {
        let day = (sim_today - chrono::Days::new(back)).to_string();
        bars.iter()
            .find(|b| b["day"] == json!(day))
            .map(|b| b["status"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(
        (status_of(10), status_of(20), status_of(5), status_of(0)),
        ("paused".into(), "idle".into(), "failed".into(), "ok".into())
    );

    // Side jobs: three cards with the model's percentages.
    let cards = texts(&c, "#side-jobs .card").await;
    assert_eq!(cards.len(), 3, "{cards:?}");
    for (card, job) in cards
        .iter()
        .zip(health["side_jobs"]["stages"].as_array().unwrap())
    {
        assert!(card.contains(job["label"].as_str().unwrap()), "{card}");
        assert!(
            card.contains(&format!("{:.1}%", job["percent"].as_f64().unwrap())),
            "{card}"
        );
    }

    // Alerts, each with its next step.
    let alerts = c.find_all(Locator::Css("#alerts .alert")).await.unwrap();
    let mut ids = Vec::new();
    for a in &alerts {
        ids.push(a.attr("data-alert").await.unwrap().unwrap());
        assert!(a.text().await.unwrap().contains("Next: "));
    }
    assert!(ids.contains(&"recent_errors".to_string()), "{ids:?}");
    assert!(ids.contains(&"missing_imdb_id".to_string()), "{ids:?}");

    // Read-only: where a person would act, the exact command.
    let actions = text(&c, "#actions").await;
    assert!(
        actions.contains("kubectl tmdbsync pause cinegraph -n media"),
        "{actions}"
    );
    assert_eq!(text(&c, "#sync-name").await, "media/cinegraph");

    // Markup in a run message stays text, and nothing ran.
    let runs = text(&c, "#runs").await;
    assert!(runs.contains(MARKUP), "{runs}");
    let pwned = c
        .execute("return window.__pwned === undefined;", vec![])
        .await
        .unwrap();
    assert_eq!(pwned, json!(true));
    let scripts = c
        .execute(
            "return document.querySelectorAll('script, #runs td.message b:not(.run-name)').length;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        scripts,
        json!(0),
        "refresh=0: no script; the message's <b> is text"
    );

    // The screenshot, of the whole page.
    let height = c
        .execute("return document.documentElement.scrollHeight;", vec![])
        .await
        .unwrap()
        .as_u64()
        .unwrap();
    c.set_window_size(1100, height as u32 + 140).await.unwrap();
    let png = c.screenshot().await.unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("sync-health.png");
    std::fs::write(&shot, &png).unwrap();
    eprintln!("screenshot: {}", shot.display());
    if std::env::var_os("TMDBSYNC_UPDATE_SCREENSHOT").is_some() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/sync-health.png");
        std::fs::write(docs, &png).unwrap();
    }

    // The CSV download behind the page's link parses, and its totals equal the database's.
    let href = c
        .find(Locator::Css("#report-csv"))
        .await
        .unwrap()
        .prop("href")
        .await
        .unwrap()
        .unwrap();
    c.close().await.unwrap();
    let (status, csv_text) = http_get(&href).await;
    assert_eq!(status, 200, "{csv_text}");
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, tmdbsync::web::download::CSV_COLUMNS);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut sums: BTreeMap<(String, &str), i64> = BTreeMap::new();
    let mut kinds: BTreeMap<String, i64> = BTreeMap::new();
    for record in reader.records() {
        let record = record.expect("a CSV row");
        let kind = record[col("kind")].to_string();
        *kinds.entry(kind.clone()).or_default() += 1;
        for field in ["imported", "updated", "skipped", "deleted", "errors"] {
            let v: i64 = record[col(field)].parse().unwrap();
            *sums.entry((kind.clone(), field)).or_default() += v;
        }
    }
    let db_sums: (i64, i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), sum(movies_imported)::bigint, sum(movies_updated)::bigint,
                sum(movies_skipped)::bigint, sum(movies_deleted)::bigint, sum(errors_count)::bigint
         FROM sync_runs",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(kinds["day"], 30);
    assert_eq!(kinds["run"], db_sums.0);
    for kind in ["day", "run"] {
        let got = (
            sums[&(kind.to_string(), "imported")],
            sums[&(kind.to_string(), "updated")],
            sums[&(kind.to_string(), "skipped")],
            sums[&(kind.to_string(), "deleted")],
            sums[&(kind.to_string(), "errors")],
        );
        assert_eq!(
            got,
            (db_sums.1, db_sums.2, db_sums.3, db_sums.4, db_sums.5),
            "{kind} rows"
        );
    }

    // `tmdbsync status -o json` is the page's document; `--format html` the page as a file.
    let status = |format: &str| {
        output(tmdbsync(&[
            "status",
            "-o",
            format,
            "--database-url",
            &db.url,
            "--sync",
            "media/cinegraph",
        ]))
    };
    let json_out = status("json").await;
    assert_eq!(json_out.status.code(), Some(0), "{}", stderr(&json_out));
    let from_status: Value = serde_json::from_slice(&json_out.stdout).unwrap();
    assert_eq!(
        without_generated_at(from_status),
        without_generated_at(health)
    );
    let html = status("html").await;
    let html = String::from_utf8(html.stdout).unwrap();
    assert!(html.contains("<b id=\"percent\">40.0%</b>"), "{html}");
    assert!(!html.contains("<script"), "a saved page runs no script");
}

async fn sim_status_date(sim: &tmdbsync::sim::SimHandle) -> NaiveDate {
    let v = support::sim_get(sim, "/__sim/clock").await;
    v["date"].as_str().unwrap().parse().unwrap()
}
