//! `movie_pipeline` across stages: per-stage completion for the Sync Health report, and the
//! per-stage counters an Enrich run keeps in `sync_runs.metadata`.

use sqlx::Row;

use super::runs::{self, RunId};
use super::{Context, Result, Store};
use crate::plan::enrich::{EnrichStage, SideJobCounts, StageCounters};

/// Live movies each enrichment stage has done for their current version, and live movies
/// without an imdb id. One scan of `movie_pipeline`.
pub async fn side_job_counts(store: &Store) -> Result<(Vec<SideJobCounts>, i64)> {
    let r = sqlx::query(
        "SELECT count(*) AS total,
             count(*) FILTER (WHERE p.omdb_at >= p.details_at) AS omdb,
             count(*) FILTER (WHERE p.collaborations_at >= p.credits_changed_at) AS collaborations,
             count(*) FILTER (WHERE p.pqs_at >= GREATEST(p.details_at, p.omdb_at)) AS pqs,
             count(*) FILTER (WHERE m.imdb_id IS NULL OR m.imdb_id = '') AS missing_imdb_id
         FROM movie_pipeline p JOIN movies m ON m.id = p.movie_id
         WHERE m.deleted_at IS NULL",
    )
    .fetch_one(store.pool())
    .await
    .context("counting side-job completion")?;
    let total: i64 = r.get("total");
    let counts = EnrichStage::ALL
        .iter()
        .map(|s| SideJobCounts {
            stage: Some(*s),
            done: r.get(s.as_str()),
            total,
        })
        .collect();
    Ok((counts, r.get("missing_imdb_id")))
}

/// The per-stage counters of a run (`metadata.stages`), empty when it has none.
pub async fn stage_counters(store: &Store, run: RunId) -> Result<Vec<StageCounters>> {
    let v: Option<serde_json::Value> =
        sqlx::query_scalar("SELECT metadata -> 'stages' FROM sync_runs WHERE id = $1")
            .bind(run)
            .fetch_optional(store.pool())
            .await
            .context("reading stage counters")?
            .flatten();
    Ok(parse(v))
}

/// The per-stage counters of a run by its resource name.
pub async fn stage_counters_by_name(store: &Store, name: &str) -> Result<Vec<StageCounters>> {
    let v: Option<serde_json::Value> =
        sqlx::query_scalar("SELECT metadata -> 'stages' FROM sync_runs WHERE name = $1")
            .bind(name)
            .fetch_optional(store.pool())
            .await
            .context("reading stage counters by name")?
            .flatten();
    Ok(parse(v))
}

fn parse(v: Option<serde_json::Value>) -> Vec<StageCounters> {
    v.and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

/// Replaces a run's per-stage counters.
pub async fn save_stage_counters(
    store: &Store,
    run: RunId,
    counters: &[StageCounters],
) -> Result<()> {
    runs::merge_metadata(store, run, &serde_json::json!({ "stages": counters })).await
}
