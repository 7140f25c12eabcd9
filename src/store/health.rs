//! The counts behind the Sync Health report, gathered in a few set-based queries.

use std::collections::BTreeMap;

use std::time::Duration;

use sqlx::{PgConnection, Row};

use super::history::{self, RunSelection};
use super::{Context, Result, Store};
use crate::plan::enrich::{EnrichStage, SideJobCounts};
use crate::plan::health::{HISTORY_DAYS, HealthInputs, ReportInputs};

/// Gathers everything `SyncHealth::build` needs, on TMDb's clock (`history::clock`), with the
/// `recent_runs` newest runs (none when 0).
pub async fn health_inputs(store: &Store, recent_runs: i64) -> Result<HealthInputs> {
    let pool = store.pool();
    // The heavy counts come from `health_counts` (see `refresh_counts`), the rest is cheap: an
    // index probe each, and `catalog_gone` is small.
    let catalog = sqlx::query(
        "WITH latest AS (SELECT export_date, include_adult FROM catalog_exports
                         ORDER BY export_date DESC LIMIT 1)
         SELECT (SELECT export_date FROM latest) AS export_date,
             h.total, h.imported, h.pipeline_total, h.omdb_done, h.collaborations_done,
             h.pqs_done, h.missing_imdb_id, h.last_contiguous_page,
             (SELECT count(*) FROM catalog_gone g JOIN catalog_ids c ON c.id = g.id, latest l
               WHERE c.last_seen >= l.export_date AND (l.include_adult OR NOT c.adult)
                 AND NOT EXISTS (SELECT 1 FROM movies m
                                 WHERE m.id = g.id AND m.deleted_at IS NULL)) AS not_served,
             (SELECT COALESCE(max(ordinal), 0) FROM catalog_ids) AS max_ordinal,
             (SELECT max(day) FROM delta_days) AS watermark
         FROM (SELECT * FROM health_counts
               UNION ALL SELECT true, now(), * FROM health_counts_now()
                   WHERE NOT EXISTS (SELECT 1 FROM health_counts)) AS h",
    )
    .fetch_one(pool)
    .await
    .context("counting catalog coverage")?;
    let pipeline_total: i64 = catalog.get("pipeline_total");
    let side_job_counts = EnrichStage::ALL
        .iter()
        .map(|s| SideJobCounts {
            stage: Some(*s),
            done: catalog.get(format!("{}_done", s.as_str()).as_str()),
            total: pipeline_total,
        })
        .collect();

    let (now, clock) = history::clock(store).await?;
    let today = now.date_naive();
    let from = today - chrono::Days::new(u64::from(HISTORY_DAYS) - 1);
    let days = history::day_stats(store, from, today).await?;
    let pauses = history::pauses(store, from).await?;
    let (first_run_at, last_success_at) = history::first_run_and_last_success(store).await?;

    let errors_24h: BTreeMap<String, i64> = sqlx::query(
        "SELECT category, count(*) AS n FROM sync_errors
         WHERE occurred_at > now() - interval '24 hours' GROUP BY category",
    )
    .fetch_all(pool)
    .await
    .context("counting recent errors")?
    .into_iter()
    .map(|r| (r.get("category"), r.get("n")))
    .collect();

    let recent = if recent_runs > 0 {
        history::runs(store, RunSelection::Newest(recent_runs)).await?
    } else {
        Vec::new()
    };
    let latest_finished = history::runs(store, RunSelection::LatestFinished).await?;

    Ok(HealthInputs {
        now,
        clock,
        pauses,
        first_run_at,
        last_success_at,
        latest_finished,
        tmdb_total: catalog.get("total"),
        imported: catalog.get("imported"),
        not_served: catalog.get("not_served"),
        total_pages: crate::plan::pages::total_pages(catalog.get("max_ordinal")),
        last_page_processed: catalog.get("last_contiguous_page"),
        export_date: catalog.get("export_date"),
        delta_watermark: catalog.get("watermark"),
        days,
        errors_24h,
        recent_runs: recent,
        side_job_counts,
        missing_imdb_id: catalog.get("missing_imdb_id"),
        discover: super::catalog::latest_discover_coverage(store).await?,
    })
}

/// How often a long run recomputes the stored health counts (from its heartbeat), so the side-job
/// figures, which batches do not adjust, move during a run too.
pub const COUNTS_REFRESH_EVERY: Duration = Duration::from_secs(300);

/// Recomputes the stored health counts exactly (`health_counts_now()`: a few seconds at a million
/// movies). `Some(age)`: only when they are older than `age` and no one else is recomputing them
/// (returns whether it did). Holding the row while counting keeps every write batch either in the
/// count or added after it, never lost between the two.
pub async fn refresh_counts(store: &Store, only_older_than: Option<Duration>) -> Result<bool> {
    let mut tx = store.begin().await?;
    let held: Option<bool> = match only_older_than {
        None => {
            sqlx::query_scalar("SELECT true FROM health_counts FOR UPDATE")
                .fetch_optional(&mut *tx)
                .await
        }
        Some(age) => {
            sqlx::query_scalar(
                "SELECT computed_at < now() - make_interval(secs => $1) FROM health_counts
                 FOR UPDATE SKIP LOCKED",
            )
            .bind(age.as_secs_f64())
            .fetch_optional(&mut *tx)
            .await
        }
    }
    .context("holding the health counts")?;
    if only_older_than.is_some() && held != Some(true) {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO health_counts AS h (id, computed_at, total, imported, pipeline_total,
             omdb_done, collaborations_done, pqs_done, missing_imdb_id, last_contiguous_page)
         SELECT true, clock_timestamp(), * FROM health_counts_now()
         ON CONFLICT (id) DO UPDATE SET computed_at = EXCLUDED.computed_at,
             total = EXCLUDED.total, imported = EXCLUDED.imported,
             pipeline_total = EXCLUDED.pipeline_total, omdb_done = EXCLUDED.omdb_done,
             collaborations_done = EXCLUDED.collaborations_done,
             pqs_done = EXCLUDED.pqs_done, missing_imdb_id = EXCLUDED.missing_imdb_id,
             last_contiguous_page = EXCLUDED.last_contiguous_page",
    )
    .execute(&mut *tx)
    .await
    .context("recomputing the health counts")?;
    tx.commit().await.context("recomputing the health counts")?;
    Ok(true)
}

/// Adds one write batch to the stored health counts: `stored` movies new to the database, `marked`
/// live movies marked deleted, and (`pages`: it recorded bulk pages) the contiguous done pages
/// moved on from where they were. Call it last in the batch's transaction (it holds the one row
/// until the commit). An estimate until the next recomputation: a movie stored outside the latest
/// export's listing counts as imported, a done page recorded failed again is still counted.
pub async fn count_writes(
    conn: &mut PgConnection,
    stored: u64,
    marked: u64,
    pages: bool,
) -> Result<()> {
    if stored == marked && !pages {
        return Ok(());
    }
    sqlx::query(
        "UPDATE health_counts SET imported = GREATEST(imported + $1, 0),
             pipeline_total = GREATEST(pipeline_total + $1, 0),
             last_contiguous_page = CASE WHEN $2 THEN health_pages_done_from(last_contiguous_page)
                                         ELSE last_contiguous_page END",
    )
    .bind(stored as i64 - marked as i64)
    .bind(pages)
    .execute(&mut *conn)
    .await
    .context("counting a batch in the health counts")?;
    Ok(())
}

/// Gathers a report over the `days` TMDb days ending today (`SyncReport::build`).
pub async fn report_inputs(store: &Store, days: u32) -> Result<ReportInputs> {
    let days = days.clamp(1, crate::plan::health::MAX_REPORT_DAYS);
    let (now, clock) = history::clock(store).await?;
    let to = now.date_naive();
    let from = to - chrono::Days::new(u64::from(days) - 1);
    Ok(ReportInputs {
        now,
        clock,
        days: history::day_stats(store, from, to).await?,
        pauses: history::pauses(store, from).await?,
        runs: history::runs(store, RunSelection::Days(from, to)).await?,
    })
}

/// Run outcomes of one run type, for the metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunTypeTotals {
    pub run_type: String,
    pub succeeded: i64,
    pub failed: i64,
    pub last_success: Option<chrono::DateTime<chrono::Utc>>,
    /// The latest finished run failed.
    pub last_failed: bool,
    /// Errors over everything the latest finished run attempted, in percent.
    pub last_error_rate_percent: f64,
}

/// Everything the metrics need from Postgres; totals, so they are right after a restart.
#[derive(Debug, Clone, Default)]
pub struct MetricTotals {
    pub by_type: Vec<RunTypeTotals>,
    /// imported, updated, skipped, deleted
    pub movies: [i64; 4],
    pub errors: Vec<(String, i64)>,
    pub requests: Vec<(String, i64)>,
    /// `(run id, run type, seconds)` of runs finished in the last 30 days.
    pub durations: Vec<(i64, String, f64)>,
}

/// Gathers the metric totals.
pub async fn metric_totals(store: &Store) -> Result<MetricTotals> {
    let pool = store.pool();
    let mut by_type: Vec<RunTypeTotals> = sqlx::query(
        "SELECT run_type, count(*) FILTER (WHERE status = 'completed') AS ok,
             count(*) FILTER (WHERE status = 'failed'
                 OR run_is_dead(status, heartbeat_at, alive_until)) AS failed,
             max(completed_at) FILTER (WHERE status = 'completed') AS last_success
         FROM sync_runs GROUP BY run_type ORDER BY run_type",
    )
    .fetch_all(pool)
    .await
    .context("counting runs by type")?
    .into_iter()
    .map(|r| RunTypeTotals {
        run_type: r.get("run_type"),
        succeeded: r.get("ok"),
        failed: r.get("failed"),
        last_success: r.get("last_success"),
        ..Default::default()
    })
    .collect();
    let latest = sqlx::query(
        "SELECT DISTINCT ON (run_type) run_type, status, movies_imported, movies_updated,
             errors_count
         FROM sync_runs WHERE status IN ('completed', 'failed')
         ORDER BY run_type, completed_at DESC NULLS LAST, id DESC",
    )
    .fetch_all(pool)
    .await
    .context("reading the latest runs")?;
    for r in latest {
        let t: String = r.get("run_type");
        if let Some(entry) = by_type.iter_mut().find(|e| e.run_type == t) {
            entry.last_failed = r.get::<String, _>("status") == "failed";
            entry.last_error_rate_percent = crate::plan::status::error_rate_percent(
                r.get::<i32, _>("movies_imported").into(),
                r.get::<i32, _>("movies_updated").into(),
                r.get::<i32, _>("errors_count").into(),
            );
        }
    }
    let m = sqlx::query(
        "SELECT COALESCE(sum(movies_imported), 0)::bigint AS i, COALESCE(sum(movies_updated), 0)::bigint AS u,
             COALESCE(sum(movies_skipped), 0)::bigint AS s, COALESCE(sum(movies_deleted), 0)::bigint AS d
         FROM sync_runs",
    )
    .fetch_one(pool)
    .await
    .context("summing movies")?;
    let pairs = |sql: &'static str, context: &'static str| async move {
        let rows = sqlx::query(sql).fetch_all(pool).await.context(context)?;
        Ok::<_, super::StoreError>(
            rows.into_iter()
                .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
                .collect::<Vec<_>>(),
        )
    };
    Ok(MetricTotals {
        by_type,
        movies: [m.get("i"), m.get("u"), m.get("s"), m.get("d")],
        errors: pairs(
            "SELECT category, count(*) FROM sync_errors GROUP BY category",
            "counting errors",
        )
        .await?,
        requests: pairs(
            "SELECT status_class, sum(requests)::bigint FROM run_requests GROUP BY status_class",
            "summing requests",
        )
        .await?,
        durations: sqlx::query(
            "SELECT id, run_type, extract(epoch FROM completed_at - started_at)::float8 AS secs
             FROM sync_runs WHERE completed_at > now() - interval '30 days'",
        )
        .fetch_all(pool)
        .await
        .context("reading run durations")?
        .into_iter()
        .map(|r| (r.get("id"), r.get("run_type"), r.get("secs")))
        .collect(),
    })
}
