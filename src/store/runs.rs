//! `sync_runs` and `sync_errors`: one row per run with its counters, one row per exhausted failure.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection};

use std::time::Duration;

use super::{Context, Result, Store, StoreError};
use crate::model::ErrorCategory;
use crate::plan::RunType;

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

/// How one process asks to open a run.
#[derive(Debug, Clone)]
pub struct RunRequest<'a> {
    pub run_type: RunType,
    pub trigger: &'a str,
    /// The SyncRun name of an operator run (shared by its pods); `None` for `tmdbsync run`.
    pub name: Option<&'a str>,
    pub pages_total: i32,
    /// Unique per opening (`host pid N #nonce`): makes a retried opening find its own row.
    pub owner: &'a str,
    /// How long the run stays alive without a heartbeat.
    pub lease: Duration,
}

/// The run that holds a stage when another cannot open.
#[derive(Debug, Clone, FromRow)]
pub struct StageHolder {
    pub id: i64,
    pub name: Option<String>,
    pub owner: Option<String>,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: Option<DateTime<Utc>>,
}

impl StageHolder {
    /// "run 7 (`tmdbsync run` on host h pid 12 #…, started …, last heartbeat …)".
    pub fn describe(&self) -> String {
        let who = match (&self.name, &self.owner) {
            (Some(name), _) => format!("SyncRun {name}"),
            (None, Some(owner)) => format!("`tmdbsync run` on {owner}"),
            (None, None) => "an older tmdbsync".into(),
        };
        let seen = self
            .heartbeat_at
            .map(|t| format!(", last heartbeat {}", t.format("%Y-%m-%d %H:%M:%S UTC")))
            .unwrap_or_default();
        format!(
            "run {} ({who}, started {}{seen})",
            self.id,
            self.started_at.format("%Y-%m-%d %H:%M:%S UTC")
        )
    }
}

/// What opening a run came to.
#[derive(Debug, Clone)]
pub enum Opening {
    /// The run is open (created, or joined by another pod of the same named run).
    Opened(RunId),
    /// Another live run of the same type holds the stage; nothing was opened.
    Busy(StageHolder),
}

/// Advisory lock space of the per-stage open lock ("tmdb" in ASCII).
const STAGE_LOCK_SPACE: i32 = 0x746d_6462;

fn stage_lock_key(run_type: RunType) -> i32 {
    match run_type {
        RunType::Catalog => 1,
        RunType::Bulk => 2,
        RunType::Delta => 3,
        RunType::Enrich => 4,
    }
}

/// The message a dead run is shown and recorded with (over a `sync_runs r`).
const DEAD_MESSAGE: &str = "'interrupted: ' || CASE WHEN r.name IS NULL
             THEN 'the process running it stopped without recording an outcome'
             ELSE 'every worker of this run stopped before it finished' END
         || COALESCE(' (no heartbeat since '
             || to_char(r.heartbeat_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
             || ' UTC; its log has the cause)', '')";

/// Opens a run, one writer per stage: under a per-stage lock, records runs whose lease ran out
/// (of every type) as failed, then opens the run unless another live run of its type (one with
/// another name, or any other anonymous run) holds the stage. A named run (a SyncRun under the
/// operator) is reused when it exists, so a retried Job pod or several shard pods share one row.
/// Retrying after a lost connection is safe: an opening finds the row it created before.
pub async fn open_run(store: &Store, req: &RunRequest<'_>) -> Result<Opening> {
    let mut tx = store.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(STAGE_LOCK_SPACE)
        .bind(stage_lock_key(req.run_type))
        .execute(&mut *tx)
        .await
        .context("locking the stage to open a run")?;
    if req.name.is_none() {
        let mine: Option<i64> =
            sqlx::query_scalar("SELECT id FROM sync_runs WHERE owner = $1 AND status = 'running'")
                .bind(req.owner)
                .fetch_optional(&mut *tx)
                .await
                .context("looking for a run opened before a lost connection")?;
        if let Some(id) = mine {
            tx.commit().await.context("opening a sync run")?;
            return Ok(Opening::Opened(id));
        }
    }
    let failed: Vec<(i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH dead AS (
             SELECT id FROM sync_runs r
             WHERE r.status = 'running' AND (run_is_dead(r.status, r.heartbeat_at, r.alive_until)
                 OR (r.alive_until IS NULL AND r.name IS NULL AND r.run_type = $1))
             FOR UPDATE SKIP LOCKED)
         UPDATE sync_runs r SET status = 'failed',
             completed_at = COALESCE(r.heartbeat_at, now()), message = {DEAD_MESSAGE}
         FROM dead WHERE r.id = dead.id
         RETURNING r.id, r.run_type"
    )))
    .bind(req.run_type.as_str())
    .fetch_all(&mut *tx)
    .await
    .context("recording dead runs as failed")?;
    for (id, run_type) in &failed {
        tracing::warn!(run_id = id, run_type = %run_type,
            "recorded a run whose processes stopped as failed");
    }
    let holder: Option<StageHolder> = sqlx::query_as(
        "SELECT id, name, owner, started_at, heartbeat_at FROM sync_runs
         WHERE run_type = $1 AND status = 'running'
           AND ($2::text IS NULL OR name IS DISTINCT FROM $2)
           AND (alive_until IS NOT NULL OR name IS NULL)
         ORDER BY started_at LIMIT 1",
    )
    .bind(req.run_type.as_str())
    .bind(req.name)
    .fetch_optional(&mut *tx)
    .await
    .context("looking for a run holding the stage")?;
    if let Some(holder) = holder {
        tx.commit().await.context("recording dead runs as failed")?;
        return Ok(Opening::Busy(holder));
    }
    sqlx::query("DELETE FROM applied_writes WHERE applied_at < now() - interval '1 day'")
        .execute(&mut *tx)
        .await
        .context("forgetting old write tokens")?;
    let id: RunId = sqlx::query_scalar(
        "INSERT INTO sync_runs (name, run_type, trigger, status, pages_total, heartbeat_at,
             alive_until, owner)
         VALUES ($1, $2, $3, 'running', $4, now(), now() + make_interval(secs => $5), $6)
         ON CONFLICT (name) DO UPDATE SET status = 'running', completed_at = NULL,
             pages_total = GREATEST(sync_runs.pages_total, EXCLUDED.pages_total),
             heartbeat_at = now(),
             alive_until = GREATEST(CASE WHEN sync_runs.status = 'running'
                 THEN sync_runs.alive_until END, EXCLUDED.alive_until),
             owner = EXCLUDED.owner,
             message = CASE WHEN sync_runs.status = 'running' THEN sync_runs.message END
         RETURNING id",
    )
    .bind(req.name)
    .bind(req.run_type.as_str())
    .bind(req.trigger)
    .bind(req.pages_total)
    .bind(req.lease.as_secs_f64())
    .bind(req.owner)
    .fetch_one(&mut *tx)
    .await
    .context("starting a sync run")?;
    tx.commit().await.context("opening a sync run")?;
    Ok(Opening::Opened(id))
}

/// Keeps a run alive for another `lease`. Returns false when the run is no longer `running`:
/// it was declared dead (or finished by the operator), and this process must stop writing.
pub async fn heartbeat(store: &Store, run: RunId, lease: Duration) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE sync_runs SET heartbeat_at = now(),
             alive_until = GREATEST(alive_until, now() + make_interval(secs => $2))
         WHERE id = $1 AND status = 'running'",
    )
    .bind(run)
    .bind(lease.as_secs_f64())
    .execute(store.pool())
    .await
    .context("renewing a run's heartbeat")?;
    Ok(done.rows_affected() == 1)
}

/// Checks, inside a transaction that writes for `run`, that the run is still `running`, and holds
/// it so until the commit: a run declared dead meanwhile (a frozen process that woke up) gets
/// [`StoreError::RunTakenOver`] and its transaction is rolled back.
pub async fn fence(conn: &mut PgConnection, run: RunId) -> Result<()> {
    let running: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM sync_runs WHERE id = $1 AND status = 'running' FOR SHARE",
    )
    .bind(run)
    .fetch_optional(&mut *conn)
    .await
    .context("checking the run still holds its stage")?;
    match running {
        Some(_) => Ok(()),
        None => Err(StoreError::RunTakenOver { run }),
    }
}

/// Records a write's token inside its transaction; false when the token was recorded before,
/// i.e. a commit whose answer was lost applied this write already (the caller rolls back).
pub async fn claim_write(conn: &mut PgConnection, run: RunId, token: i64) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO applied_writes (run_id, token) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(run)
    .bind(token)
    .execute(&mut *conn)
    .await
    .context("recording a write token")?;
    Ok(done.rows_affected() == 1)
}

/// Adds counters to a run (call inside the transaction that did the work, last: it is also the
/// fence, failing with [`StoreError::RunTakenOver`] when the run is no longer `running`).
pub async fn add_counts(conn: &mut PgConnection, run: RunId, c: &RunCounters) -> Result<()> {
    let done = sqlx::query(
        "UPDATE sync_runs SET pages_processed = pages_processed + $2,
             movies_imported = movies_imported + $3, movies_updated = movies_updated + $4,
             movies_skipped = movies_skipped + $5, movies_deleted = movies_deleted + $6,
             errors_count = errors_count + $7, data_warnings = data_warnings + $8
         WHERE id = $1 AND status = 'running'",
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
    if done.rows_affected() == 0 {
        return Err(StoreError::RunTakenOver { run });
    }
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

/// Finishes a run with its outcome. Only a running run is finished: a finished one keeps its
/// outcome (a run recorded as failed is never turned into a success, nor the reverse).
pub async fn finish_run(
    store: &Store,
    run: RunId,
    status: RunStatus,
    message: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "UPDATE sync_runs SET status = $2, completed_at = now(), message = $3
         WHERE id = $1 AND status = 'running'",
    )
    .bind(run)
    .bind(status.as_str())
    .bind(message.map(crate::redact::redact_patterns))
    .execute(store.pool())
    .await
    .context("finishing a sync run")?;
    Ok(())
}

/// The columns of [`RunRow`] over `sync_runs r`. A run whose processes stopped (its lease ran
/// out) reads as failed, with the reason, before any writer records it: readers never write.
pub(crate) fn run_columns() -> String {
    format!(
        "r.id, r.name, r.run_type, r.trigger,
         CASE WHEN run_is_dead(r.status, r.heartbeat_at, r.alive_until) THEN 'failed'
             ELSE r.status END AS status,
         r.started_at,
         CASE WHEN run_is_dead(r.status, r.heartbeat_at, r.alive_until) THEN r.heartbeat_at
             ELSE r.completed_at END AS completed_at,
         r.pages_total, r.pages_processed, r.movies_imported, r.movies_updated, r.movies_skipped,
         r.movies_deleted, r.errors_count, r.data_warnings,
         CASE WHEN run_is_dead(r.status, r.heartbeat_at, r.alive_until) THEN {DEAD_MESSAGE}
             ELSE r.message END AS message"
    )
}

/// One run by id.
pub async fn get_run(store: &Store, run: RunId) -> Result<RunRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM sync_runs r WHERE r.id = $1",
        run_columns()
    )))
    .bind(run)
    .fetch_one(store.pool())
    .await
    .context("reading a sync run")
}

/// One run by its resource name.
pub async fn get_run_by_name(store: &Store, name: &str) -> Result<Option<RunRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM sync_runs r WHERE r.name = $1",
        run_columns()
    )))
    .bind(name)
    .fetch_optional(store.pool())
    .await
    .context("reading a sync run by name")
}

/// One failure of a run as its SyncRun status samples it (`status.errorSample`).
#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct ErrorSampleRow {
    pub category: String,
    pub movie_id: Option<i64>,
    pub http_status: Option<i32>,
    pub message: String,
}

/// The first `limit` failures recorded for the run named `name`, oldest first.
pub async fn error_sample_by_name(
    store: &Store,
    name: &str,
    limit: i64,
) -> Result<Vec<ErrorSampleRow>> {
    sqlx::query_as(
        "SELECT e.category, e.movie_id, e.http_status, e.message
         FROM sync_errors e JOIN sync_runs r ON r.id = e.run_id
         WHERE r.name = $1 ORDER BY e.id LIMIT $2",
    )
    .bind(name)
    .bind(limit)
    .fetch_all(store.pool())
    .await
    .context("sampling a run's errors")
}

/// The most recent runs, newest first.
pub async fn recent_runs(store: &Store, limit: i64) -> Result<Vec<RunRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM sync_runs r ORDER BY r.started_at DESC, r.id DESC LIMIT $1",
        run_columns()
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

/// Adds TMDb response counts (per status class) to a run; every pod of a run adds its own (call
/// inside the transaction that closes the pod's share).
pub async fn add_requests(
    conn: &mut PgConnection,
    run: RunId,
    counts: &[(&str, i64)],
) -> Result<()> {
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
    .execute(&mut *conn)
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

/// What a process records when it closes its share of a run.
#[derive(Debug, Clone)]
pub struct RunClosing<'a> {
    /// Unique per closing: a retry after a lost commit does not count twice.
    pub token: i64,
    /// This process's TMDb responses per status class.
    pub requests: &'a [(&'a str, i64)],
    /// A refused credential to record as the run's error.
    pub auth_error: Option<&'a ErrorRecord>,
    /// The outcome, for an anonymous run (a named run is finished by the operator).
    pub finish: Option<RunStatus>,
    /// TMDb's time now (from its `Date` header), when an answer carried one: the run is put on
    /// TMDb's day in the Sync Health (`tmdb_clock_offset_secs`).
    pub tmdb_now: Option<DateTime<Utc>>,
}

/// Closes a process's share of a run in one transaction: its request counts, a credentials error,
/// and the run's message written from the whole run (every pod's counters, summed in its row),
/// finishing it when `closing.finish` is given. The row is locked while the totals are read: a
/// pod closes only after its own writes committed, so the pod that closes last writes a message
/// covering every pod's work. A run that is no longer `running` (declared dead, or finished by
/// the operator) is left as it is: [`StoreError::RunTakenOver`].
pub async fn close_run(
    store: &Store,
    run: RunId,
    closing: &RunClosing<'_>,
    render: &(dyn Fn(&RunTotals) -> String + Send + Sync),
) -> Result<String> {
    let mut tx = store.begin().await?;
    let row: (
        String,
        i32,
        i32,
        i32,
        i32,
        i32,
        i32,
        serde_json::Value,
        i32,
        Option<String>,
    ) = sqlx::query_as(
        "SELECT status, pages_processed, movies_imported, movies_updated, movies_skipped,
                 movies_deleted, errors_count, metadata, data_warnings, message
             FROM sync_runs WHERE id = $1 FOR UPDATE",
    )
    .bind(run)
    .fetch_one(&mut *tx)
    .await
    .context("locking a run to close it")?;
    if !claim_write(&mut tx, run, closing.token).await? {
        // A lost answer hid the commit of this very closing: it is recorded.
        tx.rollback().await.context("closing a sync run")?;
        return Ok(row.9.unwrap_or_default());
    }
    if row.0 != "running" {
        return Err(StoreError::RunTakenOver { run });
    }
    add_requests(&mut tx, run, closing.requests).await?;
    let mut errors = row.6;
    if let Some(auth) = closing.auth_error {
        record_errors(&mut tx, run, std::slice::from_ref(auth)).await?;
        add_counts(
            &mut tx,
            run,
            &RunCounters {
                errors: 1,
                ..Default::default()
            },
        )
        .await?;
        errors += 1;
    }
    let failed_pages: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM bulk_pages WHERE run_id = $1 AND status = 'failed'",
    )
    .bind(run)
    .fetch_one(&mut *tx)
    .await
    .context("counting a run's failed pages")?;
    let totals = RunTotals {
        counters: RunCounters {
            pages_processed: row.1,
            movies_imported: row.2,
            movies_updated: row.3,
            movies_skipped: row.4,
            movies_deleted: row.5,
            errors,
            data_warnings: row.8,
        },
        failed_pages,
        metadata: row.7,
    };
    let message = render(&totals);
    sqlx::query(
        "UPDATE sync_runs SET message = $2, status = COALESCE($3, status),
             completed_at = CASE WHEN $3 IS NULL THEN completed_at ELSE now() END,
             tmdb_clock_offset_secs = COALESCE(extract(epoch FROM $4::timestamptz - now())::float8,
                 tmdb_clock_offset_secs)
         WHERE id = $1",
    )
    .bind(run)
    .bind(crate::redact::redact_patterns(&message))
    .bind(closing.finish.map(RunStatus::as_str))
    .bind(closing.tmdb_now)
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
