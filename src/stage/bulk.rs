//! The Bulk stage: walk catalog pages (20 ordinals each), fetch the movies not stored yet, store
//! them and checkpoint each page once all its movies are in.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use super::fetch::{FetchEvent, FetchOutcome, fetch_movies, still_failing_note};
use super::progress::ProgressTask;
use super::writer::{Batch, Writer};
use super::{Closing, Engine, RunLabel, StageError, StageReport};
use crate::plan::RunType;
use crate::plan::pages::{PageRange, next_bulk_range, total_pages};
use crate::store::pages::{self, PageOutcome};
use crate::store::runs::{self, ErrorRecord, RunId, RunTotals};
use crate::store::{catalog, gone};

/// Which pages a bulk run takes.
#[derive(Debug, Clone, Copy)]
pub struct BulkOptions {
    /// An explicit range (a manual SyncRun); otherwise the next `pages_per_run` open pages.
    pub pages: Option<PageRange>,
    pub pages_per_run: i32,
    /// `(index, count)` when the run is sharded over several pods.
    pub shard: Option<(u32, u32)>,
    /// Fetch every movie of the range again, even stored ones on done pages (a manual re-import).
    pub refetch: bool,
}

/// Movies per write transaction.
const BATCH_MOVIES: usize = 250;
/// Longest a fetched movie waits in memory before it is written.
const BATCH_AGE: Duration = Duration::from_secs(2);

/// Ids TMDb did not serve that bulk runs ask for again per day (all runs of the last 24 hours
/// together), so the recheck costs at most this many requests a day however large the backlog.
pub const GONE_RECHECKS_PER_DAY: i64 = 100;
/// An id TMDb did not serve is asked for again at most this often.
pub const GONE_RECHECK_AFTER_DAYS: i32 = 7;
/// Run metadata counts of the recheck (the message and the daily budget read them).
const RECHECKED: &str = "gone_rechecked";
const SERVED_AGAIN: &str = "gone_served_again";

/// Runs one bulk pass.
pub async fn run(
    engine: &Engine,
    options: BulkOptions,
    label: &RunLabel,
) -> Result<StageReport, StageError> {
    engine.check_credentials().await?;
    let store = &engine.store;
    let total = total_pages(
        store
            .retry("reading the catalog size", || catalog::max_ordinal(store))
            .await?,
    );
    if total == 0 {
        return Err(StageError::Config(
            "the catalog is empty: run the catalog stage first".into(),
        ));
    }
    let range = match options.pages {
        Some(r) => Some(r),
        None => {
            let first_open = store
                .retry("finding the first open page", || {
                    pages::first_open_page(store, total)
                })
                .await?;
            next_bulk_range(first_open, total, options.pages_per_run)
        }
    };
    let pages_total = range.map_or(0, |r| r.len());
    let run = engine.open_run(RunType::Bulk, label, pages_total).await?;
    let mut outcome = match range {
        None => Ok(()),
        Some(range) => import_range(engine, run, range, options.shard, options.refetch).await,
    };
    // One pod of a sharded run rechecks, after its pages.
    if outcome.is_ok() && options.shard.is_none_or(|(index, _)| index == 0) {
        outcome = recheck_gone(engine, run).await;
    }
    let outcome = outcome.map(|()| (true, closing(range, total)));
    engine.close_run(RunType::Bulk, run, label, outcome).await
}

/// The run's message, written from the whole run's counters when a pod closes it.
fn closing(range: Option<PageRange>, total: i32) -> Closing {
    Closing::from_run(move |t: &RunTotals| {
        let c = &t.counters;
        let counts = format!(
            "{} imported, {} updated, {} skipped, {} not served by TMDb (404), {} errors",
            c.movies_imported, c.movies_updated, c.movies_skipped, c.movies_deleted, c.errors
        );
        let rechecked = t.metadata_count(RECHECKED);
        let mut message = match range {
            Some(r) => format!("pages {}-{}: {counts}", r.from, r.to),
            None if rechecked == 0 => {
                format!("all {total} catalog pages are done; nothing to import")
            }
            None => format!("all {total} catalog pages are done: {counts}"),
        };
        message.push_str(&still_failing_note(c.errors));
        if t.failed_pages > 0 {
            message.push_str(&format!(
                "; {} pages keep failed movies for the next run",
                t.failed_pages
            ));
        }
        if rechecked > 0 {
            message.push_str(&format!(
                "; rechecked {rechecked} ids TMDb did not serve, {} served again",
                t.metadata_count(SERVED_AGAIN)
            ));
        }
        message
    })
}

#[derive(Default)]
struct PageState {
    pending: usize,
    imported: i32,
    skipped: i32,
    errors: i32,
}

/// Pages a bulk run plans and fetches at a time, by default (10,000 movies): what a run holds in
/// memory (the chunk's catalog entries, stored-id lookup, page states and ids to fetch) is bounded
/// by this, whatever its pages per run or the catalog's size ([`Engine::bulk_chunk_pages`]).
pub const DEFAULT_CHUNK_PAGES: i32 = 500;

/// Why a chunk stopped the run early.
enum Stop {
    /// TMDb refused the credentials.
    Fatal(crate::tmdb::TmdbError),
    /// The writer stopped (its error comes from `finish`).
    Writer,
    /// Reading the chunk's plan failed.
    Store(StageError),
}

impl From<crate::store::StoreError> for Stop {
    fn from(e: crate::store::StoreError) -> Self {
        Stop::Store(e.into())
    }
}

/// The open pass over a range: one chunk of pages at a time, through one writer.
struct Pass<'a> {
    engine: &'a Engine,
    range: PageRange,
    shard: (u32, u32),
    refetch: bool,
    writer: Writer,
    batch: Batch,
    batch_started: Instant,
    bar: ProgressTask,
}

async fn import_range(
    engine: &Engine,
    run: RunId,
    range: PageRange,
    shard: Option<(u32, u32)>,
    refetch: bool,
) -> Result<(), StageError> {
    let (index, count) = shard.unwrap_or((0, 1));
    let mine = range.shard(index, count).count();
    let chunk_pages = engine.bulk_chunk_pages.max(1);
    tracing::info!(
        from = range.from,
        to = range.to,
        pages = mine,
        chunk_pages,
        "bulk: importing pages"
    );
    let mut pass = Pass {
        engine,
        range,
        shard: (index, count),
        refetch,
        writer: Writer::spawn(engine.store.clone(), run),
        batch: Batch::default(),
        batch_started: Instant::now(),
        bar: engine.progress.task("bulk", mine as u64, "pages"),
    };
    let mut stop = None;
    for chunk in range.chunks(chunk_pages) {
        if let Err(s) = pass.chunk(chunk).await {
            stop = Some(s);
            break;
        }
    }
    let Pass {
        writer, batch, bar, ..
    } = pass;
    let _ = writer.send(batch).await;
    writer.finish().await?;
    bar.finish();
    match stop {
        Some(Stop::Fatal(e)) => Err(StageError::Credentials(e)),
        Some(Stop::Store(e)) => Err(e),
        Some(Stop::Writer) | None => Ok(()),
    }
}

impl Pass<'_> {
    /// Plans, fetches and queues the shard's open pages of `chunk`; every page of it is complete
    /// (queued for the writer) when this returns `Ok`.
    async fn chunk(&mut self, chunk: PageRange) -> Result<(), Stop> {
        let engine = self.engine;
        let store = &engine.store;
        let (index, count) = self.shard;
        let done = if self.refetch {
            Default::default()
        } else {
            store
                .retry("reading done pages", || {
                    pages::done_pages(store, chunk.from, chunk.to)
                })
                .await?
        };
        let mine = (chunk.from..=chunk.to).filter(|p| self.range.in_shard(*p, index, count));
        let mut state: BTreeMap<i32, PageState> = BTreeMap::new();
        for p in mine {
            if done.contains(&p) {
                self.bar.inc(1);
            } else {
                state.insert(p, PageState::default());
            }
        }
        if state.is_empty() {
            return Ok(());
        }
        let entries = store
            .retry("reading catalog pages", || {
                catalog::page_entries(store, chunk.from, chunk.to)
            })
            .await?;
        let entries: Vec<_> = entries
            .into_iter()
            .filter(|e| state.contains_key(&e.page))
            .collect();
        let stored = if self.refetch {
            HashSet::new()
        } else {
            let candidates: Vec<i64> = entries.iter().map(|e| e.id).collect();
            store
                .retry("reading stored ids", || {
                    crate::store::movies::stored_ids(store, &candidates)
                })
                .await?
        };
        let mut items = Vec::new();
        for e in &entries {
            let page = state.get_mut(&e.page).expect("todo page");
            if !e.listed
                || (e.adult && !engine.include_adult)
                || (!self.refetch && stored.contains(&e.id))
            {
                page.skipped += 1;
            } else {
                page.pending += 1;
                items.push((e.page, e.id));
            }
        }
        drop((entries, stored));
        tracing::debug!(
            from = chunk.from,
            to = chunk.to,
            pages = state.len(),
            fetch = items.len(),
            "bulk: chunk"
        );
        // Pages with nothing to fetch are complete already.
        let empty: Vec<i32> = state
            .iter()
            .filter(|(_, s)| s.pending == 0)
            .map(|(p, _)| *p)
            .collect();
        for p in empty {
            let page = state.remove(&p).expect("page");
            self.complete_page(p, &page);
        }
        let mut rx = fetch_movies(engine.tmdb.clone(), items, engine.concurrency);
        while let Some(event) = rx.recv().await {
            let fetched = match event {
                FetchEvent::Done(f) => f,
                FetchEvent::Fatal(e) => return Err(Stop::Fatal(e)),
            };
            let page = state.get_mut(&fetched.tag).expect("fetched page");
            page.pending -= 1;
            match fetched.outcome {
                FetchOutcome::Fetched(movie) => {
                    if movie.details.adult == Some(true) && !engine.include_adult {
                        page.skipped += 1;
                    } else {
                        page.imported += 1;
                        self.batch.page_of.insert(fetched.id, fetched.tag);
                        self.batch.movies.push(*movie);
                    }
                }
                // Recorded as not served (`catalog_gone`): no longer remaining, rechecked weekly.
                FetchOutcome::NotFound => self.batch.deleted.push(fetched.id),
                FetchOutcome::Failed { error, attempts } => {
                    page.errors += 1;
                    self.batch.counters.errors += 1;
                    self.batch.errors.push(ErrorRecord {
                        category: error.category(),
                        movie_id: Some(fetched.id),
                        http_status: error.http_status(),
                        message: error.to_string(),
                        attempts,
                    });
                }
            }
            if page.pending == 0 {
                let page = state.remove(&fetched.tag).expect("page");
                self.complete_page(fetched.tag, &page);
            }
            if self.batch.movies.len() >= BATCH_MOVIES || self.batch_started.elapsed() >= BATCH_AGE
            {
                if self
                    .writer
                    .send(std::mem::take(&mut self.batch))
                    .await
                    .is_err()
                {
                    return Err(Stop::Writer);
                }
                self.batch_started = Instant::now();
            }
        }
        Ok(())
    }

    fn complete_page(&mut self, page: i32, s: &PageState) {
        self.bar.inc(1);
        complete_page(&mut self.batch, page, s);
    }
}

/// Asks TMDb again for ids it did not serve, within the daily budget and at most weekly per id;
/// one served again is imported (and so no longer counted gone).
async fn recheck_gone(engine: &Engine, run: RunId) -> Result<(), StageError> {
    let store = &engine.store;
    store
        .retry("forgetting ids served again", || gone::forget_served(store))
        .await?;
    let used = store
        .retry("reading today's rechecks", || {
            runs::metadata_count_since(store, RunType::Bulk, RECHECKED, 24)
        })
        .await?;
    let ids = store
        .retry("claiming ids to recheck", || {
            gone::claim_rechecks(
                store,
                GONE_RECHECK_AFTER_DAYS,
                GONE_RECHECKS_PER_DAY - used,
                engine.include_adult,
            )
        })
        .await?;
    if ids.is_empty() {
        return Ok(());
    }
    tracing::info!(ids = ids.len(), "bulk: rechecking ids TMDb did not serve");
    let writer = Writer::spawn(store.clone(), run);
    let mut batch = Batch::default();
    let mut served_again = 0i64;
    let mut rx = fetch_movies(
        engine.tmdb.clone(),
        ids.iter().map(|id| ((), *id)).collect(),
        engine.concurrency,
    );
    let mut fatal = None;
    while let Some(event) = rx.recv().await {
        let fetched = match event {
            FetchEvent::Done(f) => f,
            FetchEvent::Fatal(e) => {
                fatal = Some(e);
                break;
            }
        };
        match fetched.outcome {
            FetchOutcome::Fetched(movie) => {
                if movie.details.adult == Some(true) && !engine.include_adult {
                    batch.counters.movies_skipped += 1;
                } else {
                    served_again += 1;
                    batch.movies.push(*movie);
                }
            }
            FetchOutcome::NotFound => batch.deleted.push(fetched.id),
            FetchOutcome::Failed { error, attempts } => {
                batch.counters.errors += 1;
                batch.errors.push(ErrorRecord {
                    category: error.category(),
                    movie_id: Some(fetched.id),
                    http_status: error.http_status(),
                    message: error.to_string(),
                    attempts,
                });
            }
        }
    }
    drop(rx);
    let _ = writer.send(batch).await;
    writer.finish().await?;
    let counts = [(RECHECKED, ids.len() as i64), (SERVED_AGAIN, served_again)];
    store
        .retry("counting rechecks", || {
            runs::add_metadata_counts(store, run, &counts)
        })
        .await?;
    store
        .retry("forgetting ids served again", || gone::forget_served(store))
        .await?;
    if let Some(e) = fatal {
        return Err(StageError::Credentials(e));
    }
    Ok(())
}

fn complete_page(batch: &mut Batch, page: i32, s: &PageState) {
    let done = s.errors == 0;
    batch.counters.pages_processed += 1;
    batch.counters.movies_skipped += s.skipped;
    batch.pages.push(PageOutcome {
        page,
        done,
        imported: s.imported,
        skipped: s.skipped,
        errors: s.errors,
    });
}
