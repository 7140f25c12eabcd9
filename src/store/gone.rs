//! Ids TMDb does not serve (`catalog_gone`): recorded by `movies::mark_deleted` on every 404, counted
//! apart from "remaining", and re-checked on a slow schedule so an id that comes back is imported.

use super::{Context, Result, Store};

/// Claims up to `limit` gone ids for a recheck: ids listed in the latest export (adult ones only
/// when `include_adult`), without a live movie, last checked more than `after_days` days ago,
/// oldest check first. Claiming stamps them checked now, so a concurrent run does not take them too.
pub async fn claim_rechecks(
    store: &Store,
    after_days: i32,
    limit: i64,
    include_adult: bool,
) -> Result<Vec<i64>> {
    if limit <= 0 {
        return Ok(Vec::new());
    }
    sqlx::query_scalar(
        "WITH latest AS (SELECT max(export_date) AS export_date FROM catalog_exports),
         due AS (
             SELECT g.id FROM catalog_gone g
             JOIN catalog_ids c ON c.id = g.id
             CROSS JOIN latest l
             WHERE c.last_seen >= l.export_date AND ($3 OR NOT c.adult)
               AND g.last_checked < now() - make_interval(days => $1)
               AND NOT EXISTS (SELECT 1 FROM movies m WHERE m.id = g.id AND m.deleted_at IS NULL)
             ORDER BY g.last_checked, g.id
             LIMIT $2
             FOR UPDATE OF g SKIP LOCKED
         )
         UPDATE catalog_gone g SET last_checked = now() FROM due WHERE g.id = due.id
         RETURNING g.id",
    )
    .bind(after_days)
    .bind(limit)
    .bind(include_adult)
    .fetch_all(store.pool())
    .await
    .context("claiming gone ids for a recheck")
}

/// Forgets gone records of ids that are served again (stored live since): they count as imported.
pub async fn forget_served(store: &Store) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM catalog_gone g USING movies m WHERE m.id = g.id AND m.deleted_at IS NULL",
    )
    .execute(store.pool())
    .await
    .context("forgetting gone ids served again")?;
    Ok(done.rows_affected())
}
