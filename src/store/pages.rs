//! Checkpoints: finished bulk pages (`bulk_pages`) and covered delta days (`delta_days`).

use std::collections::HashSet;

use chrono::NaiveDate;
use sqlx::PgConnection;

use super::runs::RunId;
use super::{Context, Result, Store};

/// The outcome of one bulk page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageOutcome {
    pub page: i32,
    /// Every movie on it is stored, marked deleted or skipped by rule.
    pub done: bool,
    pub imported: i32,
    pub skipped: i32,
    pub errors: i32,
}

/// Pages in `from..=to` that are done.
pub async fn done_pages(store: &Store, from: i32, to: i32) -> Result<HashSet<i32>> {
    let rows: Vec<i32> = sqlx::query_scalar(
        "SELECT page FROM bulk_pages WHERE status = 'done' AND page BETWEEN $1 AND $2",
    )
    .bind(from)
    .bind(to)
    .fetch_all(store.pool())
    .await
    .context("reading done pages")?;
    Ok(rows.into_iter().collect())
}

/// Records page outcomes (call inside the transaction that stored their movies).
pub async fn record_pages(
    conn: &mut PgConnection,
    run: RunId,
    pages: &[PageOutcome],
) -> Result<()> {
    if pages.is_empty() {
        return Ok(());
    }
    let page: Vec<i32> = pages.iter().map(|p| p.page).collect();
    let status: Vec<&str> = pages
        .iter()
        .map(|p| if p.done { "done" } else { "failed" })
        .collect();
    let imported: Vec<i32> = pages.iter().map(|p| p.imported).collect();
    let skipped: Vec<i32> = pages.iter().map(|p| p.skipped).collect();
    let errors: Vec<i32> = pages.iter().map(|p| p.errors).collect();
    sqlx::query(
        "INSERT INTO bulk_pages (page, status, run_id, movies_imported, movies_skipped, errors)
         SELECT t.page, t.status, $1, t.imported, t.skipped, t.errors
         FROM UNNEST($2::int[], $3::text[], $4::int[], $5::int[], $6::int[])
           AS t(page, status, imported, skipped, errors)
         ON CONFLICT (page) DO UPDATE SET status = EXCLUDED.status, run_id = EXCLUDED.run_id,
             movies_imported = bulk_pages.movies_imported + EXCLUDED.movies_imported,
             movies_skipped = EXCLUDED.movies_skipped, errors = EXCLUDED.errors,
             attempts = bulk_pages.attempts + 1, completed_at = now()",
    )
    .bind(run)
    .bind(&page)
    .bind(&status)
    .bind(&imported)
    .bind(&skipped)
    .bind(&errors)
    .execute(&mut *conn)
    .await
    .context("recording bulk pages")?;
    Ok(())
}

/// The first page in `1..=total` not done, if any.
pub async fn first_open_page(store: &Store, total: i32) -> Result<Option<i32>> {
    sqlx::query_scalar(
        "SELECT min(g)::int FROM generate_series(1, $1::int) AS g
         WHERE NOT EXISTS (SELECT 1 FROM bulk_pages b WHERE b.page = g AND b.status = 'done')",
    )
    .bind(total)
    .fetch_one(store.pool())
    .await
    .context("finding the first open page")
}

/// Number of pages done.
pub async fn count_done(store: &Store) -> Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM bulk_pages WHERE status = 'done'")
        .fetch_one(store.pool())
        .await
        .context("counting done pages")
}

/// The delta watermark: the last day whose changes are all stored.
pub async fn delta_watermark(store: &Store) -> Result<Option<NaiveDate>> {
    sqlx::query_scalar("SELECT max(day) FROM delta_days")
        .fetch_one(store.pool())
        .await
        .context("reading the delta watermark")
}

/// Records days as fully covered (call inside the transaction that stored their movies).
pub async fn record_delta_days(
    conn: &mut PgConnection,
    run: RunId,
    days: &[NaiveDate],
    changed_ids: i32,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO delta_days (day, run_id, changed_ids)
         SELECT d, $1, $3 FROM UNNEST($2::date[]) AS d
         ON CONFLICT (day) DO UPDATE SET run_id = EXCLUDED.run_id,
             changed_ids = EXCLUDED.changed_ids, completed_at = now()",
    )
    .bind(run)
    .bind(days)
    .bind(changed_ids)
    .execute(&mut *conn)
    .await
    .context("recording delta days")?;
    Ok(())
}

/// Clears every bulk page checkpoint (a requested bulk reset); stored movies stay. Returns the
/// pages cleared.
pub async fn clear_bulk_pages(store: &Store) -> Result<u64> {
    let cleared: i64 = sqlx::query_scalar(
        "WITH cleared AS (DELETE FROM bulk_pages RETURNING page),
         counted AS (UPDATE health_counts SET last_contiguous_page = 0)
         SELECT count(*) FROM cleared",
    )
    .fetch_one(store.pool())
    .await
    .context("clearing bulk page checkpoints")?;
    Ok(cleared as u64)
}

/// Forgets the delta days from `since` on (a requested delta reset): the next Delta run reads
/// the changes feed again from `since`. Returns the days forgotten.
pub async fn forget_delta_days(store: &Store, since: NaiveDate) -> Result<u64> {
    Ok(sqlx::query("DELETE FROM delta_days WHERE day >= $1")
        .bind(since)
        .execute(store.pool())
        .await
        .context("forgetting delta days")?
        .rows_affected())
}
