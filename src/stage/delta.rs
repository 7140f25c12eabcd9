//! The Delta stage: read `/movie/changes` for every day since the watermark (windows of at most 14
//! days), refetch what we store and what is new to us, mark 404s deleted, and move the watermark
//! past a window only when every id in it is stored.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::NaiveDate;

use super::fetch::{FetchEvent, FetchOutcome, fetch_movies, still_failing_note};
use super::writer::{Batch, Writer};
use super::{Closing, Engine, RunLabel, StageError, StageReport};
use crate::plan::RunType;
use crate::plan::windows::{DeltaWindow, MAX_WINDOW_DAYS, delta_start, delta_windows};
use crate::store::runs::{self, ErrorRecord, RunCounters, RunId, RunTotals};
use crate::store::{catalog, movies, pages};
use crate::tmdb::TmdbError;

/// What a delta run covers.
#[derive(Debug, Clone, Copy)]
pub struct DeltaOptions {
    /// Days to look back when there is neither a watermark nor a catalog.
    pub lookback_days: u32,
    /// An explicit window (a manual SyncRun): read it, and leave the watermark alone.
    pub window: Option<DeltaWindow>,
    /// Refetch up to this many of the movies fetched longest ago per day (all delta runs of the
    /// last 24 hours together; 0 turns it off): the changes feed misses vote and popularity moves.
    pub refresh_stale: i64,
}

impl Default for DeltaOptions {
    fn default() -> Self {
        DeltaOptions {
            lookback_days: 1,
            window: None,
            refresh_stale: 0,
        }
    }
}

const BATCH_MOVIES: usize = 100;
const BATCH_AGE: Duration = Duration::from_secs(2);
/// Run metadata count of stale movies refetched (the daily budget and the message read it).
const STALE_REFRESHED: &str = "stale_refreshed";

/// Runs one delta pass.
pub async fn run(
    engine: &Engine,
    options: DeltaOptions,
    label: &RunLabel,
) -> Result<StageReport, StageError> {
    engine.check_credentials().await?;
    let today = engine.tmdb.clock().today();
    let windows = match options.window {
        Some(w) => vec![w],
        None => {
            let store = &engine.store;
            let watermark = store
                .retry("reading the delta watermark", || {
                    pages::delta_watermark(store)
                })
                .await?;
            let first_export = store
                .retry("reading the first export date", || {
                    catalog::first_export_date(store)
                })
                .await?;
            let start = delta_start(watermark, first_export, today, options.lookback_days);
            delta_windows(start, today, MAX_WINDOW_DAYS)
        }
    };
    let run = engine.open_run(RunType::Delta, label, 0).await?;
    let outcome = apply_windows(engine, run, &windows, today, options).await;
    engine.close_run(RunType::Delta, run, label, outcome).await
}

async fn apply_windows(
    engine: &Engine,
    run: RunId,
    windows: &[DeltaWindow],
    today: NaiveDate,
    options: DeltaOptions,
) -> Result<(bool, Closing), StageError> {
    let writer = Writer::spawn(engine.store.clone(), run);
    let mut recording = options.window.is_none();
    let mut held_at: Option<NaiveDate> = None;
    let mut listed = 0usize;
    // Ids the windows listed: the stale refresh leaves them alone (their writes may still be
    // queued, so they can look stale for a moment).
    let mut seen = std::collections::HashSet::new();
    let mut result = Ok(());
    for window in windows {
        match apply_window(engine, &writer, window, today, recording).await {
            Ok(WindowOutcome { ids, failed }) => {
                listed += ids.len();
                seen.extend(ids);
                if failed > 0 && recording {
                    recording = false;
                    held_at = Some(window.start);
                    tracing::warn!(start = %window.start, end = %window.end, failed,
                        "delta window kept ids that failed; the watermark stays before it");
                }
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if result.is_ok() && options.refresh_stale > 0 {
        result = refresh_stale(engine, &writer, run, options.refresh_stale, &seen).await;
    }
    writer.finish().await?;
    result?;
    let per_day = options.refresh_stale;
    let span = match (windows.first(), windows.last()) {
        (Some(f), Some(l)) => format!("{} to {}", f.start, l.end),
        _ => "no days".into(),
    };
    Ok((
        true,
        Closing::from_run(move |t: &RunTotals| {
            let c = &t.counters;
            let mut message = format!(
                "changes {span}: {listed} ids listed, {} imported, {} updated, {} deleted, {} skipped, {} errors",
                c.movies_imported, c.movies_updated, c.movies_deleted, c.movies_skipped, c.errors
            );
            message.push_str(&still_failing_note(c.errors));
            let refreshed = t.metadata_count(STALE_REFRESHED);
            if refreshed > 0 {
                message.push_str(&format!(
                    "; refetched {refreshed} movies fetched longest ago (at most {per_day} a day)"
                ));
            }
            if let Some(day) = held_at {
                message.push_str(&format!(
                    "; watermark held before {day} for the next run to retry"
                ));
            }
            message
        }),
    ))
}

struct WindowOutcome {
    /// Every id the window listed.
    ids: Vec<i64>,
    failed: usize,
}

async fn apply_window(
    engine: &Engine,
    writer: &Writer,
    window: &DeltaWindow,
    today: NaiveDate,
    recording: bool,
) -> Result<WindowOutcome, StageError> {
    let changed = list_changes(engine, window).await?;
    let ids: Vec<i64> = changed.keys().copied().collect();
    let store = &engine.store;
    let stored = store
        .retry("reading stored ids", || movies::stored_ids(store, &ids))
        .await?;
    let known = store
        .retry("reading catalog ids", || catalog::known_ids(store, &ids))
        .await?;
    let mut skipped = 0;
    let mut items = Vec::new();
    for (id, adult) in &changed {
        let adult_excluded = *adult == Some(true) && !engine.include_adult;
        // Stored movies are refreshed; ids the catalog has never seen are new and imported now;
        // catalog ids not imported yet are left to bulk, which imports them fresh anyway.
        let wanted = stored.contains(id) || !known.contains(id);
        if adult_excluded || !wanted {
            skipped += 1;
        } else {
            items.push(((), *id));
        }
    }
    tracing::info!(start = %window.start, end = %window.end, listed = ids.len(), fetch = items.len(),
        "delta: applying window");
    let mut bar = engine.progress.task("delta", items.len() as u64, "movies");
    let mut batch = Batch {
        counters: RunCounters {
            movies_skipped: skipped,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut started = Instant::now();
    let mut failed = 0;
    let mut rx = fetch_movies(engine.tmdb.clone(), items, engine.concurrency);
    while let Some(event) = rx.recv().await {
        let fetched = match event {
            FetchEvent::Done(f) => f,
            FetchEvent::Fatal(e) => {
                let _ = writer.send(batch).await;
                return Err(StageError::Credentials(e));
            }
        };
        bar.inc(1);
        match fetched.outcome {
            FetchOutcome::Fetched(movie) => {
                if movie.details.adult == Some(true) && !engine.include_adult {
                    batch.counters.movies_skipped += 1;
                } else {
                    batch.movies.push(*movie);
                }
            }
            FetchOutcome::NotFound => batch.deleted.push(fetched.id),
            FetchOutcome::Failed { error, attempts } => {
                failed += 1;
                batch.counters.errors += 1;
                batch
                    .errors
                    .push(error_record(Some(fetched.id), &error, attempts));
            }
        }
        if batch.movies.len() >= BATCH_MOVIES || started.elapsed() >= BATCH_AGE {
            if writer.send(std::mem::take(&mut batch)).await.is_err() {
                break;
            }
            started = Instant::now();
        }
    }
    bar.finish();
    if failed == 0 && recording {
        batch.delta_days = window.finished_days(today);
        batch.delta_changed_ids = ids.len() as i32;
    }
    let _ = writer.send(batch).await;
    Ok(WindowOutcome { ids, failed })
}

/// Every id the changes feed lists for the window, with its adult flag (true, false or null).
async fn list_changes(
    engine: &Engine,
    window: &DeltaWindow,
) -> Result<BTreeMap<i64, Option<bool>>, StageError> {
    let mut ids = BTreeMap::new();
    let mut page = 1;
    loop {
        let body = engine
            .tmdb
            .changes(window.start, window.end, page)
            .await
            .map_err(StageError::from_tmdb)?;
        for c in body.results {
            let entry = ids.entry(c.id).or_insert(c.adult);
            if c.adult == Some(true) {
                *entry = Some(true);
            }
        }
        let total = body.total_pages.unwrap_or(1);
        if page >= total {
            break;
        }
        page += 1;
    }
    Ok(ids)
}

/// Refetches the movies fetched longest ago, within what is left of the day's budget `per_day`
/// (the delta runs of the last 24 hours share it).
async fn refresh_stale(
    engine: &Engine,
    writer: &Writer,
    run: RunId,
    per_day: i64,
    seen: &std::collections::HashSet<i64>,
) -> Result<(), StageError> {
    let store = &engine.store;
    let used = store
        .retry("reading today's stale refetches", || {
            runs::metadata_count_since(store, RunType::Delta, STALE_REFRESHED, 24)
        })
        .await?;
    let limit = per_day - used;
    if limit <= 0 {
        tracing::info!(
            per_day,
            used,
            "delta: the stale-refetch budget of the day is spent"
        );
        return Ok(());
    }
    let ids = store
        .retry("listing the stalest movies", || {
            movies::stalest_ids(store, limit + seen.len() as i64)
        })
        .await?;
    let ids: Vec<i64> = ids
        .into_iter()
        .filter(|id| !seen.contains(id))
        .take(limit as usize)
        .collect();
    tracing::info!(
        ids = ids.len(),
        per_day,
        used,
        "delta: refetching the stalest movies"
    );
    let counted = [(STALE_REFRESHED, ids.len() as i64)];
    let mut rx = fetch_movies(
        engine.tmdb.clone(),
        ids.into_iter().map(|id| ((), id)).collect(),
        engine.concurrency,
    );
    let mut batch = Batch::default();
    while let Some(event) = rx.recv().await {
        match event {
            FetchEvent::Done(f) => match f.outcome {
                FetchOutcome::Fetched(m) => batch.movies.push(*m),
                FetchOutcome::NotFound => batch.deleted.push(f.id),
                FetchOutcome::Failed { error, attempts } => {
                    batch.counters.errors += 1;
                    batch
                        .errors
                        .push(error_record(Some(f.id), &error, attempts));
                }
            },
            FetchEvent::Fatal(e) => {
                let _ = writer.send(batch).await;
                return Err(StageError::Credentials(e));
            }
        }
        if batch.movies.len() >= BATCH_MOVIES {
            let _ = writer.send(std::mem::take(&mut batch)).await;
        }
    }
    let _ = writer.send(batch).await;
    store
        .retry("counting stale refetches", || {
            runs::add_metadata_counts(store, run, &counted)
        })
        .await?;
    Ok(())
}

fn error_record(movie_id: Option<i64>, error: &TmdbError, attempts: u32) -> ErrorRecord {
    ErrorRecord {
        category: error.category(),
        movie_id,
        http_status: error.http_status(),
        message: error.to_string(),
        attempts,
    }
}
