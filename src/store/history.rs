//! A sync's history on TMDb's clock: runs and their totals per TMDb day, the pauses, and the
//! clock itself (`sync_runs.tmdb_clock_offset_secs`, `sync_pauses`; see
//! `migrations/0008_health_clock.sql`).

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row;

use super::{Context, Result, Store};
use crate::plan::health::{ClockSource, DayStats, Pause, RunSummary};

/// The clock of the latest run that saw TMDb: `offset` is added to the database's times.
const CLOCK: &str = "clock AS (
         SELECT COALESCE((SELECT tmdb_clock_offset_secs FROM sync_runs
                          WHERE tmdb_clock_offset_secs IS NOT NULL
                          ORDER BY started_at DESC, id DESC LIMIT 1), 0)::float8 AS offset,
                EXISTS (SELECT 1 FROM sync_runs WHERE tmdb_clock_offset_secs IS NOT NULL) AS known)";

/// A run's start on TMDb's clock (over `sync_runs r` and `clock c`).
const RUN_START: &str = "(r.started_at
         + make_interval(secs => COALESCE(r.tmdb_clock_offset_secs, c.offset)))";

/// "Now" on TMDb's clock as the runs last saw it, and whether it is TMDb's (else the database's).
pub async fn clock(store: &Store) -> Result<(DateTime<Utc>, ClockSource)> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH {CLOCK} SELECT now() + make_interval(secs => c.offset) AS now, c.known FROM clock c"
    )))
    .fetch_one(store.pool())
    .await
    .context("reading TMDb's clock")?;
    let source = if row.get::<bool, _>("known") {
        ClockSource::Tmdb
    } else {
        ClockSource::Database
    };
    Ok((row.get("now"), source))
}

/// Run totals per TMDb day for the days `from..=to`.
pub async fn day_stats(store: &Store, from: NaiveDate, to: NaiveDate) -> Result<Vec<DayStats>> {
    Ok(sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH {CLOCK}, days AS (
             SELECT ({RUN_START} AT TIME ZONE 'UTC')::date AS day, r.*
             FROM sync_runs r, clock c)
         SELECT day,
             COALESCE(sum(movies_imported), 0)::bigint AS imported,
             COALESCE(sum(movies_updated), 0)::bigint AS updated,
             COALESCE(sum(movies_skipped), 0)::bigint AS skipped,
             COALESCE(sum(movies_deleted), 0)::bigint AS deleted,
             COALESCE(sum(errors_count), 0)::bigint AS errors,
             count(*) AS runs,
             count(*) FILTER (WHERE status = 'failed'
                 OR run_is_dead(status, heartbeat_at, alive_until)) AS failed_runs,
             count(*) FILTER (WHERE status = 'running'
                 AND NOT run_is_dead(status, heartbeat_at, alive_until)) AS running_runs
         FROM days WHERE day BETWEEN $1 AND $2
         GROUP BY day ORDER BY day"
    )))
    .bind(from)
    .bind(to)
    .fetch_all(store.pool())
    .await
    .context("summing runs per day")?
    .into_iter()
    .map(|r| DayStats {
        day: r.get("day"),
        imported: r.get("imported"),
        updated: r.get("updated"),
        skipped: r.get("skipped"),
        deleted: r.get("deleted"),
        errors: r.get("errors"),
        runs: r.get("runs"),
        failed_runs: r.get("failed_runs"),
        running_runs: r.get("running_runs"),
    })
    .collect())
}

/// The pauses that reach into the days since `from` (TMDb's clock).
pub async fn pauses(store: &Store, from: NaiveDate) -> Result<Vec<Pause>> {
    Ok(sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH {CLOCK}
         SELECT p.paused_at + make_interval(secs => c.offset) AS paused_at,
                p.resumed_at + make_interval(secs => c.offset) AS resumed_at
         FROM sync_pauses p, clock c
         WHERE p.resumed_at IS NULL
            OR p.resumed_at + make_interval(secs => c.offset) >= $1::date
         ORDER BY p.paused_at"
    )))
    .bind(from)
    .fetch_all(store.pool())
    .await
    .context("reading pauses")?
    .into_iter()
    .map(|r| Pause {
        from: r.get("paused_at"),
        until: r.get("resumed_at"),
    })
    .collect())
}

/// Which runs [`runs`] lists.
#[derive(Debug, Clone, Copy)]
pub enum RunSelection {
    /// The newest `n`, newest first.
    Newest(i64),
    /// Those started on the TMDb days `from..=to`, oldest first.
    Days(NaiveDate, NaiveDate),
    /// The latest finished run of each type.
    LatestFinished,
}

/// Runs as the panel and the report show them, their times on TMDb's clock.
pub async fn runs(store: &Store, which: RunSelection) -> Result<Vec<RunSummary>> {
    let (filter, outer) = match which {
        RunSelection::Newest(_) => (
            "true",
            "SELECT * FROM listed ORDER BY started_at DESC, id DESC LIMIT $1",
        ),
        RunSelection::Days(..) => (
            "true",
            "SELECT * FROM listed WHERE day BETWEEN $1 AND $2 ORDER BY started_at, id",
        ),
        RunSelection::LatestFinished => (
            "true",
            "SELECT DISTINCT ON (run_type) * FROM listed WHERE status <> 'running'
             ORDER BY run_type, completed_at DESC NULLS LAST, id DESC",
        ),
    };
    let sql = format!(
        "WITH {CLOCK}, listed AS (
             SELECT {columns}, ({RUN_START} AT TIME ZONE 'UTC')::date AS day,
                 {RUN_START} AS tmdb_started_at,
                 CASE WHEN run_is_dead(r.status, r.heartbeat_at, r.alive_until)
                     THEN r.heartbeat_at ELSE r.completed_at END
                     + make_interval(secs => COALESCE(r.tmdb_clock_offset_secs, c.offset))
                     AS tmdb_completed_at,
                 extract(epoch FROM COALESCE(r.completed_at, now()) - r.started_at)::float8
                     AS duration_seconds
             FROM sync_runs r, clock c WHERE {filter})
         {outer}",
        columns = super::runs::run_columns(),
    );
    let query = sqlx::query(sqlx::AssertSqlSafe(sql));
    let query = match which {
        RunSelection::Newest(n) => query.bind(n),
        RunSelection::Days(from, to) => query.bind(from).bind(to),
        RunSelection::LatestFinished => query,
    };
    Ok(query
        .fetch_all(store.pool())
        .await
        .context("listing runs")?
        .into_iter()
        .map(|r| RunSummary {
            id: r.get("id"),
            name: r.get("name"),
            run_type: r.get("run_type"),
            trigger: r.get("trigger"),
            status: r.get("status"),
            day: r.get("day"),
            started_at: r.get("tmdb_started_at"),
            completed_at: r.get("tmdb_completed_at"),
            duration_seconds: r.get::<f64, _>("duration_seconds").max(0.0),
            pages_processed: r.get("pages_processed"),
            movies_imported: r.get("movies_imported"),
            movies_updated: r.get("movies_updated"),
            movies_skipped: r.get("movies_skipped"),
            movies_deleted: r.get("movies_deleted"),
            errors: r.get("errors_count"),
            data_warnings: r.get("data_warnings"),
            message: r.get("message"),
        })
        .collect())
}

/// When the first run started and the latest successful bulk or delta run finished, on TMDb's
/// clock.
pub async fn first_run_and_last_success(
    store: &Store,
) -> Result<(Option<DateTime<Utc>>, Option<DateTime<Utc>>)> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH {CLOCK}
         SELECT min({RUN_START}) AS first_run,
             max(r.completed_at + make_interval(secs => COALESCE(r.tmdb_clock_offset_secs, c.offset)))
                 FILTER (WHERE r.status = 'completed' AND r.run_type IN ('bulk', 'delta'))
                 AS last_success
         FROM sync_runs r, clock c GROUP BY c.offset"
    )))
    .fetch_optional(store.pool())
    .await
    .context("reading the first run and the last success")?;
    Ok(row.map_or((None, None), |r| {
        (r.get("first_run"), r.get("last_success"))
    }))
}

/// Records what the operator sees of `spec.suspend`: opens a pause when the sync is suspended
/// and none is open, closes the open one when it is not. Idempotent; returns whether it changed
/// anything.
pub async fn record_suspension(store: &Store, suspended: bool) -> Result<bool> {
    let sql = if suspended {
        "INSERT INTO sync_pauses (paused_at) SELECT now()
         WHERE NOT EXISTS (SELECT 1 FROM sync_pauses WHERE resumed_at IS NULL)
         ON CONFLICT DO NOTHING"
    } else {
        "UPDATE sync_pauses SET resumed_at = now() WHERE resumed_at IS NULL"
    };
    let done = sqlx::query(sql)
        .execute(store.pool())
        .await
        .context("recording a pause")?;
    Ok(done.rows_affected() > 0)
}
