//! The writer: a task that stores batches of fetched movies with their checkpoints and counters in
//! one transaction each, so a killed process leaves either all of a batch or none of it.
//!
//! One record never fails a batch: when the database refuses a batch for its data, the writer
//! stores its movies one by one and quarantines each one still refused (a `sync_errors` row of
//! category `data` with the database's reason). The rest of the batch is committed; a page that
//! held a quarantined movie stays open and the delta watermark stops before it, so the next run
//! retries the movie.
//!
//! A database outage (restart, fail-over, lost connection) never costs a batch: the whole
//! transaction is retried for up to the store's outage tolerance. Each batch carries a token
//! recorded in its transaction, so a commit whose answer was lost is not applied twice.

use chrono::NaiveDate;
use std::collections::{BTreeMap, HashSet};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::model::ErrorCategory;
use crate::model::movie::FetchedMovie;
use crate::store::pages::{self, PageOutcome};
use crate::store::runs::{self, ErrorRecord, RunCounters, RunId};
use crate::store::{Store, StoreError, health, movies};

/// Everything one transaction writes.
#[derive(Debug, Default)]
pub struct Batch {
    pub movies: Vec<FetchedMovie>,
    /// The bulk page of each movie (bulk only), so a quarantined movie keeps its page open.
    pub page_of: BTreeMap<i64, i32>,
    /// Ids TMDb answered 404 for.
    pub deleted: Vec<i64>,
    pub errors: Vec<ErrorRecord>,
    /// Skipped, page and error counts (imported/updated/deleted are counted from the writes).
    pub counters: RunCounters,
    pub pages: Vec<PageOutcome>,
    /// Delta days this batch completes, and how many ids their window listed.
    pub delta_days: Vec<NaiveDate>,
    pub delta_changed_ids: i32,
}

impl Batch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.movies.is_empty()
            && self.deleted.is_empty()
            && self.errors.is_empty()
            && self.pages.is_empty()
            && self.delta_days.is_empty()
            && self.counters == RunCounters::default()
    }
}

/// Handle to the writer task. Dropping it (the stage was cancelled) stops the task: batches not
/// committed yet are not written.
pub struct Writer {
    tx: Option<mpsc::Sender<Batch>>,
    handle: Option<JoinHandle<Result<RunCounters, StoreError>>>,
}

impl Writer {
    /// Starts the writer for `run`.
    pub fn spawn(store: Store, run: RunId) -> Self {
        let (tx, mut rx) = mpsc::channel::<Batch>(4);
        let handle = tokio::spawn(async move {
            let mut total = RunCounters::default();
            let mut quarantine = Quarantine::default();
            while let Some(batch) = rx.recv().await {
                total += write_with_retry(&store, run, &batch, &mut quarantine).await?;
            }
            Ok(total)
        });
        Writer {
            tx: Some(tx),
            handle: Some(handle),
        }
    }

    /// Queues a batch; fails when the writer has stopped (its error comes from `finish`).
    pub async fn send(&self, batch: Batch) -> Result<(), ()> {
        if batch.is_empty() {
            return Ok(());
        }
        let tx = self.tx.as_ref().ok_or(())?;
        tx.send(batch).await.map_err(|_| ())
    }

    /// Waits for every queued batch to be written; returns the counters written.
    pub async fn finish(mut self) -> Result<RunCounters, StoreError> {
        self.tx = None;
        let handle = self.handle.take().expect("the writer is finished once");
        handle.await.expect("writer task panicked")
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(handle) = &self.handle {
            handle.abort();
        }
    }
}

/// What the writer quarantined so far in this run: later checkpoints must not pass over it.
#[derive(Debug, Default)]
struct Quarantine {
    /// Pages that held a quarantined movie: recorded as not done, whatever the stage saw.
    pages: HashSet<i32>,
    /// A movie was quarantined: no delta day is recorded from here on.
    any: bool,
}

async fn write_with_retry(
    store: &Store,
    run: RunId,
    batch: &Batch,
    quarantine: &mut Quarantine,
) -> Result<RunCounters, StoreError> {
    let token = fastrand::i64(..);
    let mut outage = store.outage();
    let mut isolate = false;
    loop {
        let result = if isolate {
            write_isolating(store, run, token, batch, quarantine).await
        } else {
            write_batch(store, run, token, batch, quarantine).await
        };
        match result {
            Ok(c) => {
                outage.recovered("writing a batch");
                return Ok(c);
            }
            Err(e) if e.is_record_data_error() && !isolate && !batch.movies.is_empty() => {
                tracing::warn!(error = %e, movies = batch.movies.len(),
                    "the database refused a batch; storing its movies one by one");
                isolate = true;
            }
            Err(e) => {
                if !outage.wait("writing a batch", &e).await {
                    return Err(e);
                }
            }
        }
    }
}

/// Starts a batch's transaction and records its token; `None` when the token was recorded
/// before (an earlier try committed, its answer was lost): nothing is to be written again.
async fn begin_once(
    store: &Store,
    run: RunId,
    token: i64,
) -> Result<Option<sqlx::Transaction<'static, sqlx::Postgres>>, StoreError> {
    let mut tx = store.begin().await?;
    if runs::claim_write(&mut tx, run, token).await? {
        Ok(Some(tx))
    } else {
        tracing::info!(
            run_id = run,
            "a batch committed before the connection was lost; not written again"
        );
        Ok(None)
    }
}

/// Movies the database refused on their own, with the reason.
#[derive(Debug, Default)]
struct Refused {
    movies: Vec<movies::RefusedMovie>,
}

async fn write_isolating(
    store: &Store,
    run: RunId,
    token: i64,
    batch: &Batch,
    quarantine: &mut Quarantine,
) -> Result<RunCounters, StoreError> {
    let Some(mut tx) = begin_once(store, run, token).await? else {
        return Ok(RunCounters::default());
    };
    let (upserted, refused) = movies::upsert_movies_isolated(&mut tx, &batch.movies).await?;
    let refused = Refused { movies: refused };
    let mut next = Quarantine {
        pages: quarantine.pages.clone(),
        any: quarantine.any || !refused.movies.is_empty(),
    };
    for m in &refused.movies {
        tracing::warn!(movie_id = m.id, reason = %m.reason, "movie quarantined: the database refused it");
        if let Some(page) = batch.page_of.get(&m.id) {
            next.pages.insert(*page);
        }
    }
    let counters = finish_batch(&mut tx, run, batch, upserted, &refused, &next).await?;
    tx.commit().await.map_err(|source| StoreError::Query {
        context: "committing a batch",
        source,
    })?;
    *quarantine = next;
    Ok(counters)
}

async fn write_batch(
    store: &Store,
    run: RunId,
    token: i64,
    batch: &Batch,
    quarantine: &Quarantine,
) -> Result<RunCounters, StoreError> {
    let Some(mut tx) = begin_once(store, run, token).await? else {
        return Ok(RunCounters::default());
    };
    let upserted = movies::upsert_movies(&mut tx, &batch.movies).await?;
    let refused = Refused::default();
    let counters = finish_batch(&mut tx, run, batch, upserted, &refused, quarantine).await?;
    tx.commit().await.map_err(|source| StoreError::Query {
        context: "committing a batch",
        source,
    })?;
    Ok(counters)
}

/// Everything of a batch after its movies: deletions, errors (quarantined movies among them),
/// page checkpoints and delta days as the quarantine allows, and the run's counters.
async fn finish_batch(
    tx: &mut sqlx::PgConnection,
    run: RunId,
    batch: &Batch,
    upserted: movies::UpsertCounts,
    refused: &Refused,
    quarantine: &Quarantine,
) -> Result<RunCounters, StoreError> {
    let (deleted, marked) = movies::mark_deleted(tx, &batch.deleted).await?;
    let refused_ids: HashSet<i64> = refused.movies.iter().map(|m| m.id).collect();
    let mut errors = batch.errors.clone();
    errors.extend(refused.movies.iter().map(|m| ErrorRecord {
        category: ErrorCategory::Data,
        movie_id: Some(m.id),
        http_status: None,
        message: format!(
            "quarantined: the database refused this movie on its own: {}",
            m.reason
        ),
        attempts: 2,
    }));
    runs::record_errors(tx, run, &errors).await?;
    let pages: Vec<PageOutcome> = batch
        .pages
        .iter()
        .map(|p| {
            let held = batch
                .page_of
                .iter()
                .filter(|(id, page)| **page == p.page && refused_ids.contains(id))
                .count() as i32;
            if quarantine.pages.contains(&p.page) {
                PageOutcome {
                    done: false,
                    imported: p.imported - held,
                    errors: p.errors + held.max(1),
                    ..*p
                }
            } else {
                *p
            }
        })
        .collect();
    pages::record_pages(tx, run, &pages).await?;
    if !batch.delta_days.is_empty() && !quarantine.any {
        pages::record_delta_days(tx, run, &batch.delta_days, batch.delta_changed_ids).await?;
    }
    let warnings: u32 = batch
        .movies
        .iter()
        .filter(|m| !refused_ids.contains(&m.details.id))
        .map(|m| m.warnings.min(1))
        .sum();
    let counters = RunCounters {
        movies_imported: upserted.inserted as i32,
        movies_updated: upserted.updated as i32,
        movies_deleted: deleted as i32,
        errors: batch.counters.errors + refused.movies.len() as i32,
        data_warnings: batch.counters.data_warnings + warnings as i32,
        ..batch.counters
    };
    runs::add_counts(tx, run, &counters).await?;
    health::count_writes(tx, upserted.inserted.into(), marked, !pages.is_empty()).await?;
    Ok(counters)
}
