//! The work: catalog, bulk and delta stages, shared by `tmdbsync run` and the Job workers.

pub mod bulk;
pub mod catalog;
pub mod delta;
pub mod enrich;
pub mod fetch;
pub mod progress;
pub mod writer;

use crate::plan::RunType;
use crate::store::runs::{self, RunCounters, RunId, RunStatus, RunTotals};
use crate::store::{Store, StoreError};
use crate::tmdb::{TmdbClient, TmdbError};

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
    /// Progress bars on a terminal, log lines otherwise.
    pub progress: Progress,
    /// How many of the client's responses are already attributed to a run (internal bookkeeping).
    pub marks: std::sync::Arc<RequestMarks>,
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
    FromRun(Box<dyn FnOnce(&RunTotals) -> String + Send>),
}

impl Closing {
    /// A message rendered from the run's totals.
    pub fn from_run(render: impl FnOnce(&RunTotals) -> String + Send + 'static) -> Self {
        Closing::FromRun(Box::new(render))
    }

    fn render(self, totals: &RunTotals) -> String {
        match self {
            Closing::Text(t) => t,
            Closing::FromRun(f) => f(totals),
        }
    }
}

impl From<String> for Closing {
    fn from(text: String) -> Self {
        Closing::Text(text)
    }
}

impl Engine {
    /// Opens a run row (failing anonymous leftovers of killed processes first).
    async fn open_run(
        &self,
        run_type: RunType,
        label: &RunLabel,
        pages_total: i32,
    ) -> Result<RunId, StageError> {
        if label.name.is_none() {
            let n = runs::fail_abandoned_runs(&self.store, run_type).await?;
            if n > 0 {
                tracing::warn!(run_type = %run_type, count = n, "marked interrupted runs as failed");
            }
        }
        let trigger = label.trigger.as_deref().unwrap_or("manual");
        Ok(runs::start_run(
            &self.store,
            run_type,
            trigger,
            label.name.as_deref(),
            pages_total,
        )
        .await?)
    }

    /// Closes a run with the stage's outcome; errors are recorded before they are returned.
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
        runs::add_requests(&self.store, run, &counts).await?;
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
        };
        if let Some((category, http_status, message)) = auth {
            let mut tx = self.store.begin().await?;
            let record = crate::store::runs::ErrorRecord {
                category,
                movie_id: None,
                http_status,
                message,
                attempts: 1,
            };
            runs::record_errors(&mut tx, run, &[record]).await?;
            runs::add_counts(
                &mut tx,
                run,
                &RunCounters {
                    errors: 1,
                    ..Default::default()
                },
            )
            .await?;
            tx.commit().await.map_err(|source| StoreError::Query {
                context: "recording the auth failure",
                source,
            })?;
        }
        // A named run is finished by the controller from the Job's outcome, never by one pod.
        let finish = label.name.is_none().then_some(status);
        let message =
            runs::settle_message(&self.store, run, finish, |totals| closing.render(totals)).await?;
        let row = runs::get_run(&self.store, run).await?;
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
}
