//! The counts behind the Sync Health report, gathered in a few set-based queries.

use std::collections::BTreeMap;

use sqlx::Row;

use super::history::{self, RunSelection};
use super::{Context, Result, Store, pages};
use crate::plan::health::{HISTORY_DAYS, HealthInputs, ReportInputs};

/// Gathers everything `SyncHealth::build` needs, on TMDb's clock (`history::clock`), with the
/// `recent_runs` newest runs (none when 0).
pub async fn health_inputs(store: &Store, recent_runs: i64) -> Result<HealthInputs> {
    let pool = store.pool();
    let catalog = sqlx::query(
        "WITH latest AS (SELECT export_date, include_adult FROM catalog_exports
                         ORDER BY export_date DESC LIMIT 1)
         SELECT (SELECT export_date FROM latest) AS export_date,
             (SELECT count(*) FROM catalog_ids c, latest l
               WHERE c.last_seen >= l.export_date AND (l.include_adult OR NOT c.adult)) AS total,
             (SELECT count(*) FROM catalog_ids c JOIN movies m ON m.id = c.id, latest l
               WHERE c.last_seen >= l.export_date AND (l.include_adult OR NOT c.adult)
                 AND m.deleted_at IS NULL) AS imported,
             (SELECT count(*) FROM catalog_gone g JOIN catalog_ids c ON c.id = g.id, latest l
               WHERE c.last_seen >= l.export_date AND (l.include_adult OR NOT c.adult)
                 AND NOT EXISTS (SELECT 1 FROM movies m
                                 WHERE m.id = g.id AND m.deleted_at IS NULL)) AS not_served,
             (SELECT COALESCE(max(ordinal), 0) FROM catalog_ids) AS max_ordinal,
             (SELECT max(day) FROM delta_days) AS watermark",
    )
    .fetch_one(pool)
    .await
    .context("counting catalog coverage")?;

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

    let (side_job_counts, missing_imdb_id) = super::pipeline::side_job_counts(store).await?;

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
        last_page_processed: pages::last_contiguous_page(store).await?,
        export_date: catalog.get("export_date"),
        delta_watermark: catalog.get("watermark"),
        days,
        errors_24h,
        recent_runs: recent,
        side_job_counts,
        missing_imdb_id,
        discover: super::catalog::latest_discover_coverage(store).await?,
    })
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
