//! The counts behind the Sync Health report, gathered in a few set-based queries.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{Context, Result, Store, pages};
use crate::plan::health::{DayStats, HealthInputs, RunSummary};

/// Gathers everything `SyncHealth::compute` needs.
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
             (SELECT COALESCE(max(ordinal), 0) FROM catalog_ids) AS max_ordinal,
             (SELECT max(day) FROM delta_days) AS watermark",
    )
    .fetch_one(pool)
    .await
    .context("counting catalog coverage")?;

    let days = sqlx::query(
        "SELECT (started_at AT TIME ZONE 'UTC')::date AS day,
             COALESCE(sum(movies_imported), 0)::bigint AS imported,
             COALESCE(sum(movies_updated), 0)::bigint AS updated,
             COALESCE(sum(movies_skipped), 0)::bigint AS skipped,
             COALESCE(sum(errors_count), 0)::bigint AS errors,
             count(*) AS runs,
             count(*) FILTER (WHERE status = 'failed') AS failed_runs,
             count(*) FILTER (WHERE status = 'running') AS running_runs
         FROM sync_runs WHERE started_at > now() - interval '31 days'
         GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .context("summing runs per day")?
    .into_iter()
    .map(|r| DayStats {
        day: r.get("day"),
        imported: r.get("imported"),
        updated: r.get("updated"),
        skipped: r.get("skipped"),
        errors: r.get("errors"),
        runs: r.get("runs"),
        failed_runs: r.get("failed_runs"),
        running_runs: r.get("running_runs"),
    })
    .collect();

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

    let recent = super::runs::recent_runs(store, recent_runs)
        .await?
        .into_iter()
        .map(|r| RunSummary {
            id: r.id,
            name: r.name,
            run_type: r.run_type,
            status: r.status,
            started_at: r.started_at,
            completed_at: r.completed_at,
            pages_processed: r.pages_processed,
            movies_imported: r.movies_imported,
            movies_updated: r.movies_updated,
            movies_skipped: r.movies_skipped,
            movies_deleted: r.movies_deleted,
            errors: r.errors_count,
            message: r.message,
        })
        .collect();

    let (side_job_counts, missing_imdb_id) = super::pipeline::side_job_counts(store).await?;

    Ok(HealthInputs {
        tmdb_total: catalog.get("total"),
        imported: catalog.get("imported"),
        total_pages: crate::plan::pages::total_pages(catalog.get("max_ordinal")),
        last_page_processed: pages::last_contiguous_page(store).await?,
        export_date: catalog.get("export_date"),
        delta_watermark: catalog.get("watermark"),
        days,
        errors_24h,
        recent_runs: recent,
        side_job_counts,
        missing_imdb_id,
    })
}
