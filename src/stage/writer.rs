//! The writer: a task that stores batches of fetched movies with their checkpoints and counters in
//! one transaction each, so a killed process leaves either all of a batch or none of it.

use std::time::Duration;

use chrono::NaiveDate;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::store::pages::{self, PageOutcome};
use crate::store::runs::{self, ErrorRecord, RunCounters, RunId};
use crate::store::{Store, StoreError, movies};
use crate::tmdb::client::FetchedMovie;

/// Everything one transaction writes.
#[derive(Debug, Default)]
pub struct Batch {
    pub movies: Vec<FetchedMovie>,
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

/// Handle to the writer task.
pub struct Writer {
    tx: mpsc::Sender<Batch>,
    handle: JoinHandle<Result<RunCounters, StoreError>>,
}

/// Tries per batch when the database reports a transient failure (deadlock, restart).
const WRITE_ATTEMPTS: u32 = 8;

impl Writer {
    /// Starts the writer for `run`.
    pub fn spawn(store: Store, run: RunId) -> Self {
        let (tx, mut rx) = mpsc::channel::<Batch>(4);
        let handle = tokio::spawn(async move {
            let mut total = RunCounters::default();
            while let Some(batch) = rx.recv().await {
                total += write_with_retry(&store, run, &batch).await?;
            }
            Ok(total)
        });
        Writer { tx, handle }
    }

    /// Queues a batch; fails when the writer has stopped (its error comes from `finish`).
    pub async fn send(&self, batch: Batch) -> Result<(), ()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.tx.send(batch).await.map_err(|_| ())
    }

    /// Waits for every queued batch to be written; returns the counters written.
    pub async fn finish(self) -> Result<RunCounters, StoreError> {
        drop(self.tx);
        self.handle.await.expect("writer task panicked")
    }
}

async fn write_with_retry(
    store: &Store,
    run: RunId,
    batch: &Batch,
) -> Result<RunCounters, StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match write_batch(store, run, batch).await {
            Ok(c) => return Ok(c),
            Err(e) if e.is_transient() && attempt < WRITE_ATTEMPTS => {
                let wait = Duration::from_millis(200 << attempt.min(6));
                tracing::warn!(error = %e, attempt, "database write failed, retrying");
                tokio::time::sleep(wait).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn write_batch(store: &Store, run: RunId, batch: &Batch) -> Result<RunCounters, StoreError> {
    let mut tx = store.begin().await?;
    let upserted = movies::upsert_movies(&mut tx, &batch.movies).await?;
    let deleted = movies::mark_deleted(&mut tx, &batch.deleted).await?;
    runs::record_errors(&mut tx, run, &batch.errors).await?;
    pages::record_pages(&mut tx, run, &batch.pages).await?;
    if !batch.delta_days.is_empty() {
        pages::record_delta_days(&mut tx, run, &batch.delta_days, batch.delta_changed_ids).await?;
    }
    let counters = RunCounters {
        movies_imported: upserted.inserted as i32,
        movies_updated: upserted.updated as i32,
        movies_deleted: deleted as i32,
        ..batch.counters
    };
    runs::add_counts(&mut tx, run, &counters).await?;
    tx.commit().await.map_err(|source| StoreError::Query {
        context: "committing a batch",
        source,
    })?;
    Ok(counters)
}
