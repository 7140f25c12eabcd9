//! `sync_runs` and `sync_errors`: one row per run with its counters, one row per exhausted failure.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection};

use super::{Context, Result, Store};
use crate::plan::RunType;
use crate::tmdb::ErrorCategory;

/// The id of a `sync_runs` row.
pub type RunId = i64;

/// Counter increments recorded with the writes they describe (same transaction).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RunCounters {
    pub pages_processed: i32,
    pub movies_imported: i32,
    pub movies_updated: i32,
    pub movies_skipped: i32,
    pub movies_deleted: i32,
    pub errors: i32,
    /// Stored records that carried an oddity (see `migrations/0004_data_warnings.sql`).
    pub data_warnings: i32,
}

impl std::ops::AddAssign for RunCounters {
    fn add_assign(&mut self, o: Self) {
        self.pages_processed += o.pages_processed;
        self.movies_imported += o.movies_imported;
        self.movies_updated += o.movies_updated;
        self.movies_skipped += o.movies_skipped;
        self.movies_deleted += o.movies_deleted;
        self.errors += o.errors;
        self.data_warnings += o.data_warnings;
    }
}

/// A failure to record in `sync_errors`.
#[derive(Debug, Clone)]
pub struct ErrorRecord {
    pub category: ErrorCategory,
    pub movie_id: Option<i64>,
    pub http_status: Option<u16>,
    pub message: String,
    pub attempts: u32,
}

/// A `sync_runs` row.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct RunRow {
    pub id: i64,
    pub name: Option<String>,
    pub run_type: String,
    pub trigger: String,
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub pages_total: i32,
    pub pages_processed: i32,
    pub movies_imported: i32,
    pub movies_updated: i32,
    pub movies_skipped: i32,
    pub movies_deleted: i32,
    pub errors_count: i32,
    pub data_warnings: i32,
    pub message: Option<String>,
}

/// Outcome of a finished run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Completed,
    Failed,
}

impl RunStatus {
    /// The `sync_runs.status` value.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
        }
    }
}

/// Starts a run. A named run (a SyncRun under the operator) is reused when it exists, so a retried
/// Job pod or several shard pods add to one row.
pub async fn start_run(
    store: &Store,
    run_type: RunType,
    trigger: &str,
    name: Option<&str>,
    pages_total: i32,
) -> Result<RunId> {
    sqlx::query_scalar(
        "INSERT INTO sync_runs (name, run_type, trigger, status, pages_total)
         VALUES ($1, $2, $3, 'running', $4)
         ON CONFLICT (name) DO UPDATE SET status = 'running', completed_at = NULL,
             pages_total = GREATEST(sync_runs.pages_total, EXCLUDED.pages_total)
         RETURNING id",
    )
    .bind(name)
    .bind(run_type.as_str())
    .bind(trigger)
    .bind(pages_total)
    .fetch_one(store.pool())
    .await
    .context("starting a sync run")
}

/// Marks unnamed runs of `run_type` still `running` as failed: their process died (`tmdbsync run`
/// was killed). Named runs belong to the operator, which decides their fate.
pub async fn fail_abandoned_runs(store: &Store, run_type: RunType) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE sync_runs SET status = 'failed', completed_at = now(),
             message = 'interrupted: the process running it stopped before it finished'
         WHERE run_type = $1 AND status = 'running' AND name IS NULL",
    )
    .bind(run_type.as_str())
    .execute(store.pool())
    .await
    .context("failing abandoned runs")?;
    Ok(done.rows_affected())
}

/// Adds counters to a run (call inside the transaction that did the work).
pub async fn add_counts(conn: &mut PgConnection, run: RunId, c: &RunCounters) -> Result<()> {
    sqlx::query(
        "UPDATE sync_runs SET pages_processed = pages_processed + $2,
             movies_imported = movies_imported + $3, movies_updated = movies_updated + $4,
             movies_skipped = movies_skipped + $5, movies_deleted = movies_deleted + $6,
             errors_count = errors_count + $7, data_warnings = data_warnings + $8
         WHERE id = $1",
    )
    .bind(run)
    .bind(c.pages_processed)
    .bind(c.movies_imported)
    .bind(c.movies_updated)
    .bind(c.movies_skipped)
    .bind(c.movies_deleted)
    .bind(c.errors)
    .bind(c.data_warnings)
    .execute(&mut *conn)
    .await
    .context("updating run counters")?;
    Ok(())
}

/// Records exhausted failures (call inside the transaction that did the work).
pub async fn record_errors(
    conn: &mut PgConnection,
    run: RunId,
    errors: &[ErrorRecord],
) -> Result<()> {
    if errors.is_empty() {
        return Ok(());
    }
    let category: Vec<&str> = errors.iter().map(|e| e.category.as_str()).collect();
    let movie: Vec<Option<i64>> = errors.iter().map(|e| e.movie_id).collect();
    let status: Vec<Option<i32>> = errors
        .iter()
        .map(|e| e.http_status.map(i32::from))
        .collect();
    // The clients redact what they know; this catches any key-looking value that slipped through.
    let message: Vec<String> = errors
        .iter()
        .map(|e| crate::redact::redact_patterns(&e.message))
        .collect();
    let attempts: Vec<i32> = errors.iter().map(|e| e.attempts as i32).collect();
    sqlx::query(
        "INSERT INTO sync_errors (run_id, category, movie_id, http_status, message, attempts)
         SELECT $1, * FROM UNNEST($2::text[], $3::bigint[], $4::int[], $5::text[], $6::int[])",
    )
    .bind(run)
    .bind(&category)
    .bind(&movie)
    .bind(&status)
    .bind(&message)
    .bind(&attempts)
    .execute(&mut *conn)
    .await
    .context("recording sync errors")?;
    Ok(())
}

/// Finishes a run with its outcome. A run recorded as failed is never turned into a success.
pub async fn finish_run(
    store: &Store,
    run: RunId,
    status: RunStatus,
    message: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "UPDATE sync_runs SET status = $2, completed_at = now(), message = $3 WHERE id = $1",
    )
    .bind(run)
    .bind(status.as_str())
    .bind(message.map(crate::redact::redact_patterns))
    .execute(store.pool())
    .await
    .context("finishing a sync run")?;
    Ok(())
}

/// The columns of [`RunRow`].
const RUN_COLUMNS: &str =
    "id, name, run_type, trigger, status, started_at, completed_at, pages_total,
    pages_processed, movies_imported, movies_updated, movies_skipped, movies_deleted, errors_count,
    data_warnings, message";

/// One run by id.
pub async fn get_run(store: &Store, run: RunId) -> Result<RunRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM sync_runs WHERE id = $1"
    )))
    .bind(run)
    .fetch_one(store.pool())
    .await
    .context("reading a sync run")
}

/// One run by its resource name.
pub async fn get_run_by_name(store: &Store, name: &str) -> Result<Option<RunRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM sync_runs WHERE name = $1"
    )))
    .bind(name)
    .fetch_optional(store.pool())
    .await
    .context("reading a sync run by name")
}

/// The most recent runs, newest first.
pub async fn recent_runs(store: &Store, limit: i64) -> Result<Vec<RunRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM sync_runs ORDER BY started_at DESC, id DESC LIMIT $1"
    )))
    .bind(limit)
    .fetch_all(store.pool())
    .await
    .context("listing recent runs")
}

/// Merges `metadata` into a run's metadata (e.g. a catalog load summary).
pub async fn merge_metadata(store: &Store, run: RunId, metadata: &serde_json::Value) -> Result<()> {
    sqlx::query("UPDATE sync_runs SET metadata = metadata || $2::jsonb WHERE id = $1")
        .bind(run)
        .bind(metadata.to_string())
        .execute(store.pool())
        .await
        .context("recording run metadata")?;
    Ok(())
}

/// Records the outcome of an operator run (the controller decides it from the Job): creates the
/// row when no worker got far enough to write one.
pub async fn finalize_named(
    store: &Store,
    name: &str,
    run_type: RunType,
    status: RunStatus,
    message: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO sync_runs (name, run_type, trigger, status, completed_at, message)
         VALUES ($1, $2, 'scheduled', $3, now(), $4)
         ON CONFLICT (name) DO UPDATE SET status = EXCLUDED.status,
             completed_at = COALESCE(sync_runs.completed_at, now()), message = EXCLUDED.message",
    )
    .bind(name)
    .bind(run_type.as_str())
    .bind(status.as_str())
    .bind(message)
    .execute(store.pool())
    .await
    .context("finalizing a sync run")?;
    Ok(())
}

/// Sets a run's message without finishing it.
pub async fn set_message(store: &Store, run: RunId, message: &str) -> Result<()> {
    sqlx::query("UPDATE sync_runs SET message = $2 WHERE id = $1")
        .bind(run)
        .bind(crate::redact::redact_patterns(message))
        .execute(store.pool())
        .await
        .context("recording a run message")?;
    Ok(())
}

/// Adds TMDb response counts (per status class) to a run; every pod of a run adds its own.
pub async fn add_requests(store: &Store, run: RunId, counts: &[(&str, i64)]) -> Result<()> {
    let (class, n): (Vec<&str>, Vec<i64>) = counts.iter().filter(|(_, n)| *n > 0).copied().unzip();
    if class.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO run_requests (run_id, status_class, requests)
         SELECT $1, * FROM UNNEST($2::text[], $3::bigint[])
         ON CONFLICT (run_id, status_class) DO UPDATE
             SET requests = run_requests.requests + EXCLUDED.requests",
    )
    .bind(run)
    .bind(&class)
    .bind(&n)
    .execute(store.pool())
    .await
    .context("recording request counts")?;
    Ok(())
}

/// A run as a whole (every pod's counters, summed in its row), to write its closing message from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunTotals {
    pub counters: RunCounters,
    /// Bulk pages this run left failed (movies kept for the next run).
    pub failed_pages: i64,
    /// The run's metadata (counts pods added with [`add_metadata_counts`], load summaries).
    pub metadata: serde_json::Value,
}

impl RunTotals {
    /// A count kept in the metadata (0 when absent).
    pub fn metadata_count(&self, key: &str) -> i64 {
        self.metadata.get(key).and_then(|v| v.as_i64()).unwrap_or(0)
    }
}

/// Writes a run's message from the whole run, and finishes it when `finish` is given. The row is
/// locked while the totals are read: a pod closes only after its own writes committed, so the pod
/// that closes last writes a message that covers every pod's work.
pub async fn settle_message(
    store: &Store,
    run: RunId,
    finish: Option<RunStatus>,
    render: impl FnOnce(&RunTotals) -> String,
) -> Result<String> {
    let mut tx = store.begin().await?;
    let row: (i32, i32, i32, i32, i32, i32, serde_json::Value, i32) = sqlx::query_as(
        "SELECT pages_processed, movies_imported, movies_updated, movies_skipped, movies_deleted,
             errors_count, metadata, data_warnings
         FROM sync_runs WHERE id = $1 FOR UPDATE",
    )
    .bind(run)
    .fetch_one(&mut *tx)
    .await
    .context("locking a run to write its message")?;
    let failed_pages: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM bulk_pages WHERE run_id = $1 AND status = 'failed'",
    )
    .bind(run)
    .fetch_one(&mut *tx)
    .await
    .context("counting a run's failed pages")?;
    let totals = RunTotals {
        counters: RunCounters {
            pages_processed: row.0,
            movies_imported: row.1,
            movies_updated: row.2,
            movies_skipped: row.3,
            movies_deleted: row.4,
            errors: row.5,
            data_warnings: row.7,
        },
        failed_pages,
        metadata: row.6,
    };
    let message = render(&totals);
    sqlx::query(
        "UPDATE sync_runs SET message = $2, status = COALESCE($3, status),
             completed_at = CASE WHEN $3 IS NULL THEN completed_at ELSE now() END
         WHERE id = $1",
    )
    .bind(run)
    .bind(&message)
    .bind(finish.map(RunStatus::as_str))
    .execute(&mut *tx)
    .await
    .context("recording a run message")?;
    tx.commit().await.context("committing a run message")?;
    Ok(message)
}

/// Adds counts to integer fields of a run's metadata (each pod of a run adds its own).
pub async fn add_metadata_counts(store: &Store, run: RunId, counts: &[(&str, i64)]) -> Result<()> {
    let (key, n): (Vec<&str>, Vec<i64>) = counts.iter().copied().unzip();
    if key.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE sync_runs r SET metadata = r.metadata || (
             SELECT jsonb_object_agg(t.key, COALESCE((r.metadata->>t.key)::bigint, 0) + t.n)
             FROM UNNEST($2::text[], $3::bigint[]) AS t(key, n))
         WHERE r.id = $1",
    )
    .bind(run)
    .bind(&key)
    .bind(&n)
    .execute(store.pool())
    .await
    .context("adding run metadata counts")?;
    Ok(())
}

/// The sum of a metadata count over the runs of `run_type` started in the last `hours` hours.
pub async fn metadata_count_since(
    store: &Store,
    run_type: RunType,
    key: &str,
    hours: i32,
) -> Result<i64> {
    sqlx::query_scalar(
        "SELECT COALESCE(sum((metadata->>$2)::bigint), 0)::bigint FROM sync_runs
         WHERE run_type = $1 AND started_at > now() - make_interval(hours => $3)",
    )
    .bind(run_type.as_str())
    .bind(key)
    .bind(hours)
    .fetch_one(store.pool())
    .await
    .context("summing a run metadata count")
}
