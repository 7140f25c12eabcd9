//! The work: catalog, bulk and delta stages, shared by `tmdbsync run` and the Job workers.

pub mod bulk;
pub mod catalog;
pub mod delta;
pub mod discover;
pub mod enrich;
pub mod fetch;
pub mod liveness;
pub mod progress;
pub mod writer;

use std::time::Duration;

use crate::plan::RunType;
use crate::store::runs::{self, RunCounters, RunId, RunStatus, RunTotals};
use crate::store::{Store, StoreError};
use crate::tmdb::{TmdbClient, TmdbError};

pub use liveness::RunControl;
pub use progress::Progress;

/// Why a stage stopped.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// TMDb refused the credentials: the run stops at once, nothing is retried.
    #[error("{0}")]
    Credentials(#[source] TmdbError),
    /// A TMDb call the stage cannot do without failed (listing changes, downloading the export).
    #[error("{0}")]
    Tmdb(#[source] TmdbError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// OMDb refused the credentials: the run stops at once.
    #[error("{0}")]
    OmdbCredentials(#[source] crate::omdb::OmdbError),
    /// The request makes no sense (bad range, missing catalog).
    #[error("{0}")]
    Config(String),
    /// Another live run holds this stage of the database (one writer per stage): nothing ran;
    /// worth retrying later.
    #[error("{0}")]
    Busy(String),
}

impl StageError {
    /// Sorts a TMDb error into fatal credentials, a wrong configuration or an ordinary failure.
    pub fn from_tmdb(e: TmdbError) -> Self {
        if e.is_fatal() {
            StageError::Credentials(e)
        } else if e.is_config() {
            StageError::Config(e.to_string())
        } else {
            StageError::Tmdb(e)
        }
    }
}

/// Everything a stage needs: the store, the TMDb client and the sync's settings.
#[derive(Clone)]
pub struct Engine {
    pub store: Store,
    pub tmdb: TmdbClient,
    /// Base URL of the daily exports, e.g. `https://files.tmdb.org/p/exports`.
    pub export_url: String,
    /// Import adult titles too.
    pub include_adult: bool,
    /// Detail requests in flight at once.
    pub concurrency: usize,
    /// Bulk runs plan and fetch this many pages at a time (`--bulk-chunk-pages`; at least 1): what
    /// a run holds in memory is bounded by it, whatever its pages per run or the catalog's size.
    pub bulk_chunk_pages: i32,
    /// Progress bars on a terminal, log lines otherwise.
    pub progress: Progress,
    /// How many of the client's responses are already attributed to a run (internal bookkeeping).
    pub marks: std::sync::Arc<RequestMarks>,
    /// Run leases: heartbeats of the runs this process has open, and how long to wait for a
    /// stage another run holds.
    pub runs: RunControl,
}

/// The shared client's response counts (per status class) already recorded for some run. A run
/// that closes records the responses since the previous one closed: its own, credentials check
/// included, never an earlier stage's.
#[derive(Debug, Default)]
pub struct RequestMarks(std::sync::Mutex<[u64; 6]>);

impl RequestMarks {
    /// The counts in `now` not attributed yet, per status class; they are attributed from now on.
    pub fn take_since_last(&self, now: [u64; 6]) -> [u64; 6] {
        let mut seen = self.0.lock().expect("request marks lock");
        let mut own = [0; 6];
        for (i, n) in now.iter().enumerate() {
            own[i] = n.saturating_sub(seen[i]);
            seen[i] = seen[i].max(*n);
        }
        own
    }
}

/// Names a run: standalone runs are anonymous; operator runs carry their SyncRun name. A named
/// run is shared by the Job's pods and finished by the controller from the Job's outcome, so a pod
/// never declares the whole run done.
#[derive(Debug, Clone, Default)]
pub struct RunLabel {
    pub name: Option<String>,
    pub trigger: Option<String>,
}

/// What a stage did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StageReport {
    pub run_type: String,
    pub run_id: RunId,
    pub counters: RunCounters,
    pub succeeded: bool,
    pub message: String,
}

/// The message a run closes with.
pub enum Closing {
    /// Fixed text.
    Text(String),
    /// Written from the whole run (every pod's counters, summed in Postgres) when a pod closes it,
    /// so the pod of a sharded or retried run that closes last leaves a message matching the
    /// counters, not a summary of its own share.
    FromRun(Box<Renderer>),
}

/// Renders a run's message from its totals (may run again when closing is retried).
type Renderer = dyn Fn(&RunTotals) -> String + Send + Sync;

impl Closing {
    /// A message rendered from the run's totals.
    pub fn from_run(render: impl Fn(&RunTotals) -> String + Send + Sync + 'static) -> Self {
        Closing::FromRun(Box::new(render))
    }

    fn renderer(self) -> Box<Renderer> {
        match self {
            Closing::Text(t) => Box::new(move |_: &RunTotals| t.clone()),
            Closing::FromRun(f) => f,
        }
    }
}

/// When a stage failed because the database stayed down for the whole outage tolerance, closing
/// its run tries only this long more: the cause is known, and it is what the run reports.
const CLOSE_AFTER_OUTAGE: Duration = Duration::from_secs(10);

impl From<String> for Closing {
    fn from(text: String) -> Self {
        Closing::Text(text)
    }
}

impl Engine {
    /// Asks TMDb whether the API key works, before a stage opens its run (a refused key is
    /// [`StageError::Credentials`], fatal; an outage is retryable).
    async fn check_credentials(&self) -> Result<(), StageError> {
        self.tmdb
            .check_credentials()
            .await
            .map_err(StageError::from_tmdb)
    }

    /// Opens a run row, one writer per stage: waits up to `runs.wait` while another live run
    /// holds the stage (recording runs whose processes stopped as failed), then fails with
    /// [`StageError::Busy`]. The open run is kept alive by a heartbeat until it is closed.
    async fn open_run(
        &self,
        run_type: RunType,
        label: &RunLabel,
        pages_total: i32,
    ) -> Result<RunId, StageError> {
        let owner = liveness::owner_tag();
        let request = runs::RunRequest {
            run_type,
            trigger: label.trigger.as_deref().unwrap_or("manual"),
            name: label.name.as_deref(),
            pages_total,
            owner: &owner,
            lease: self.runs.lease,
        };
        let started = tokio::time::Instant::now();
        let mut told = false;
        loop {
            let opening = self
                .store
                .retry("opening a run", || runs::open_run(&self.store, &request))
                .await?;
            let holder = match opening {
                runs::Opening::Opened(id) => {
                    self.runs.hold(&self.store, id, label.name.is_some());
                    return Ok(id);
                }
                runs::Opening::Busy(holder) => holder,
            };
            let waited = started.elapsed();
            if waited >= self.runs.wait {
                return Err(StageError::Busy(format!(
                    "another {run_type} run holds the {run_type} stage of this database: {}; \
                     this run did not start (waited {} s, --stage-wait-secs): retry when it has \
                     finished",
                    holder.describe(),
                    waited.as_secs()
                )));
            }
            if !told {
                tracing::warn!(run_type = %run_type, holder = %holder.describe(),
                    wait_secs = self.runs.wait.as_secs(),
                    "another run holds this stage; waiting for it to finish or stop");
                told = true;
            }
            tokio::time::sleep(self.runs.poll().min(self.runs.wait - waited)).await;
        }
    }

    /// Closes a run with the stage's outcome; errors are recorded before they are returned. The
    /// stage's own error is what the run reports: when recording the outcome fails too (the
    /// database is still down), that is logged and the stage's error returned, and the run shows
    /// failed once its lease runs out.
    async fn close_run(
        &self,
        run_type: RunType,
        run: RunId,
        label: &RunLabel,
        outcome: Result<(bool, impl Into<Closing>), StageError>,
    ) -> Result<StageReport, StageError> {
        let own = self.marks.take_since_last(self.tmdb.stats().by_class());
        let counts: Vec<(&str, i64)> = crate::tmdb::client::STATUS_CLASSES
            .iter()
            .zip(own)
            .map(|(class, n)| (*class, n as i64))
            .collect();
        let (status, closing, error) = match outcome {
            Ok((true, m)) => (RunStatus::Completed, m.into(), None),
            Ok((false, m)) => (RunStatus::Failed, m.into(), None),
            Err(e) => (RunStatus::Failed, Closing::Text(e.to_string()), Some(e)),
        };
        let auth = match &error {
            Some(StageError::Credentials(e)) => {
                Some((e.category(), e.http_status(), e.to_string()))
            }
            Some(StageError::OmdbCredentials(e)) => {
                Some((e.category(), e.http_status(), e.to_string()))
            }
            _ => None,
        }
        .map(|(category, http_status, message)| runs::ErrorRecord {
            category,
            movie_id: None,
            http_status,
            message,
            attempts: 1,
        });
        // A named run is finished by the controller from the Job's outcome, never by one pod.
        let closing_row = runs::RunClosing {
            token: fastrand::i64(..),
            requests: &counts,
            auth_error: auth.as_ref(),
            finish: label.name.is_none().then_some(status),
            tmdb_now: self
                .tmdb
                .clock()
                .has_server_time()
                .then(|| self.tmdb.clock().now()),
        };
        let store = match &error {
            Some(StageError::Store(e)) if e.is_transient() => self
                .store
                .clone()
                .with_outage_tolerance(self.store.outage_tolerance().min(CLOSE_AFTER_OUTAGE)),
            _ => self.store.clone(),
        };
        // The Sync Health counts are exact again once a run is seen closed (skipped when the
        // database is what failed: the counts wait for the next run).
        if !matches!(&error, Some(StageError::Store(_)))
            && let Err(e) = crate::store::health::refresh_counts(&store, None).await
        {
            tracing::warn!(run_id = run, error = %e, "could not recompute the health counts");
        }
        let render = closing.renderer();
        let closed = store
            .retry("closing a run", || {
                runs::close_run(&store, run, &closing_row, render.as_ref())
            })
            .await;
        let closed = match closed {
            Ok(message) => store
                .retry("reading a run", || runs::get_run(&store, run))
                .await
                .map(|row| (message, row)),
            Err(e) => Err(e),
        };
        // Stop the heartbeat only now: a run is never seen dead while it is being closed.
        self.runs.release(run);
        let (message, row) = match closed {
            Ok(done) => done,
            Err(close) => {
                tracing::error!(run_type = %run_type, run_id = run, error = %close,
                    "could not record the run's outcome; it reads as failed once its lease runs out");
                // The first real cause is what the run reports.
                return Err(error.unwrap_or(close.into()));
            }
        };
        tracing::info!(run_type = %run_type, run_id = run, status = %row.status,
            imported = row.movies_imported, updated = row.movies_updated,
            skipped = row.movies_skipped, deleted = row.movies_deleted,
            errors = row.errors_count, data_warnings = row.data_warnings, "{message}");
        if let Some(e) = error {
            return Err(e);
        }
        Ok(StageReport {
            run_type: run_type.as_str().to_string(),
            run_id: run,
            counters: RunCounters {
                pages_processed: row.pages_processed,
                movies_imported: row.movies_imported,
                movies_updated: row.movies_updated,
                movies_skipped: row.movies_skipped,
                movies_deleted: row.movies_deleted,
                errors: row.errors_count,
                data_warnings: row.data_warnings,
            },
            succeeded: status == RunStatus::Completed,
            message,
        })
    }

    /// Ends every run this process has open after a signal: an anonymous run is recorded as
    /// failed with `why`; a named run's heartbeat stops (other pods may still work for it, and
    /// the operator records its outcome).
    pub async fn interrupt(&self, why: &str) {
        for (run, named) in self.runs.release_all() {
            if named {
                continue;
            }
            let store = self
                .store
                .clone()
                .with_outage_tolerance(self.store.outage_tolerance().min(CLOSE_AFTER_OUTAGE));
            let done = store
                .retry("recording an interrupted run", || {
                    runs::finish_run(&store, run, RunStatus::Failed, Some(why))
                })
                .await;
            if let Err(e) = done {
                tracing::error!(run_id = run, error = %e,
                    "could not record the interrupted run; it reads as failed once its lease runs out");
            }
        }
    }
}
