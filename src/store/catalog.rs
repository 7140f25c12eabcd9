//! The catalog: TMDb's daily ID export loaded with COPY into a staging table and merged into
//! `catalog_ids`, giving each id a stable ordinal; bulk pages are slices of 20 ordinals.

use chrono::NaiveDate;
use futures::{Stream, StreamExt};
use sqlx::Row;

use super::{Context, Result, Store, StoreError};
use crate::model::catalog::ExportLine;

/// Movies per bulk page, as the plan defines it.
pub const PAGE_SIZE: i64 = crate::plan::pages::PAGE_SIZE;

/// What loading one export did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CatalogLoadSummary {
    pub export_date: Option<NaiveDate>,
    pub lines: u64,
    pub total_ids: i64,
    pub adult_ids: i64,
    pub new_ids: i64,
    pub malformed: u64,
    pub popularity_updates: u64,
}

/// Why loading failed: the database, or the source the lines came from.
#[derive(Debug, thiserror::Error)]
pub enum LoadError<E: std::error::Error + 'static> {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading the export: {0}")]
    Source(#[source] E),
}

/// Loads one export in a single transaction: all of it or nothing. `records` yields `Some(line)`
/// per valid line and `None` per malformed one (counted, skipped). `progress` sees the line count.
pub async fn load_export<S, E>(
    store: &Store,
    export_date: NaiveDate,
    include_adult: bool,
    records: S,
    mut progress: impl FnMut(u64),
) -> std::result::Result<CatalogLoadSummary, LoadError<E>>
where
    S: Stream<Item = std::result::Result<Option<ExportLine>, E>>,
    E: std::error::Error + 'static,
{
    let mut tx = store.begin().await?;
    sqlx::query(
        "CREATE TEMP TABLE export_stage (id bigint NOT NULL, adult boolean NOT NULL,
             original_title text, popularity double precision) ON COMMIT DROP",
    )
    .execute(&mut *tx)
    .await
    .context("creating the export staging table")?;

    let mut summary = CatalogLoadSummary {
        export_date: Some(export_date),
        ..Default::default()
    };
    {
        let mut copy = tx
            .copy_in_raw("COPY export_stage (id, adult, original_title, popularity) FROM STDIN")
            .await
            .context("starting COPY of the export")?;
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
        let mut records = std::pin::pin!(records);
        while let Some(record) = records.next().await {
            summary.lines += 1;
            match record.map_err(LoadError::Source)? {
                Some(line) => write_copy_row(&mut buf, &line),
                None => summary.malformed += 1,
            }
            if buf.len() >= 1 << 20 {
                copy.send(buf.as_slice())
                    .await
                    .context("sending COPY data")?;
                buf.clear();
                progress(summary.lines);
            }
        }
        if !buf.is_empty() {
            copy.send(buf.as_slice())
                .await
                .context("sending COPY data")?;
        }
        copy.finish().await.context("finishing COPY")?;
        progress(summary.lines);
    }

    let counts = sqlx::query(
        "SELECT count(DISTINCT id) AS total, count(DISTINCT id) FILTER (WHERE adult) AS adult,
             (SELECT COALESCE(max(ordinal), 0) FROM catalog_ids) AS max_ordinal
         FROM export_stage",
    )
    .fetch_one(&mut *tx)
    .await
    .context("counting the export")?;
    summary.total_ids = counts.get("total");
    summary.adult_ids = counts.get("adult");
    let old_max: i64 = counts.get("max_ordinal");

    sqlx::query(
        "UPDATE catalog_ids c SET adult = s.adult, original_title = s.original_title,
             popularity = s.popularity, last_seen = GREATEST(c.last_seen, $1)
         FROM export_stage s WHERE c.id = s.id",
    )
    .bind(export_date)
    .execute(&mut *tx)
    .await
    .context("refreshing known catalog ids")?;

    let inserted = sqlx::query(
        "INSERT INTO catalog_ids (id, ordinal, adult, original_title, popularity, first_seen,
             last_seen)
         SELECT id, $2 + row_number() OVER (ORDER BY popularity DESC NULLS LAST, id), adult,
             original_title, popularity, $1, $1
         FROM (SELECT DISTINCT ON (s.id) s.* FROM export_stage s
               WHERE NOT EXISTS (SELECT 1 FROM catalog_ids c WHERE c.id = s.id)
               ORDER BY s.id) AS fresh",
    )
    .bind(export_date)
    .bind(old_max)
    .execute(&mut *tx)
    .await
    .context("assigning ordinals to new catalog ids")?;
    summary.new_ids = inserted.rows_affected() as i64;

    // Popularity moves daily and the changes feed does not report it: refresh it for free.
    let popularity = sqlx::query(
        "UPDATE movies m SET popularity = s.popularity
         FROM export_stage s
         WHERE m.id = s.id AND m.popularity IS DISTINCT FROM s.popularity",
    )
    .execute(&mut *tx)
    .await
    .context("refreshing movie popularity from the export")?;
    summary.popularity_updates = popularity.rows_affected();

    if summary.new_ids > 0 {
        // The page that held the old last ordinal may have been partial and done: reopen it so
        // bulk visits the new ids it now holds (already imported ones are skipped without a call).
        sqlx::query("DELETE FROM bulk_pages WHERE page >= $1")
            .bind(old_max / PAGE_SIZE + 1)
            .execute(&mut *tx)
            .await
            .context("reopening bulk pages that gained new ids")?;
    }

    sqlx::query(
        "INSERT INTO catalog_exports (export_date, total_ids, adult_ids, new_ids, malformed,
             include_adult)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (export_date) DO UPDATE SET total_ids = EXCLUDED.total_ids,
             adult_ids = EXCLUDED.adult_ids, new_ids = catalog_exports.new_ids + EXCLUDED.new_ids,
             malformed = EXCLUDED.malformed, include_adult = EXCLUDED.include_adult,
             loaded_at = now()",
    )
    .bind(export_date)
    .bind(summary.total_ids)
    .bind(summary.adult_ids)
    .bind(summary.new_ids)
    .bind(summary.malformed as i64)
    .bind(include_adult)
    .execute(&mut *tx)
    .await
    .context("recording the export")?;
    tx.commit().await.context("committing the catalog load")?;
    Ok(summary)
}

/// One row of COPY text format: tab-separated, `\N` for null, backslash escapes.
fn write_copy_row(buf: &mut Vec<u8>, line: &ExportLine) {
    use std::io::Write;
    let _ = write!(buf, "{}\t{}\t", line.id, line.adult.unwrap_or(false));
    match &line.original_title {
        Some(t) => {
            for b in t.bytes() {
                match b {
                    b'\\' => buf.extend_from_slice(b"\\\\"),
                    b'\t' => buf.extend_from_slice(b"\\t"),
                    b'\n' => buf.extend_from_slice(b"\\n"),
                    b'\r' => buf.extend_from_slice(b"\\r"),
                    // Postgres text cannot hold U+0000; the reader removes it, this is a backstop.
                    0 => {}
                    _ => buf.push(b),
                }
            }
        }
        None => buf.extend_from_slice(b"\\N"),
    }
    match line.popularity {
        Some(p) if p.is_finite() => {
            let _ = writeln!(buf, "\t{p}");
        }
        _ => buf.extend_from_slice(b"\t\\N\n"),
    }
}

/// The highest ordinal assigned (0 for an empty catalog); pages = ceil(this / 20).
pub async fn max_ordinal(store: &Store) -> Result<i64> {
    sqlx::query_scalar("SELECT COALESCE(max(ordinal), 0) FROM catalog_ids")
        .fetch_one(store.pool())
        .await
        .context("reading the catalog size")
}

/// The latest export loaded, if any.
pub async fn latest_export(store: &Store) -> Result<Option<CatalogLoadSummary>> {
    let row = sqlx::query(
        "SELECT export_date, total_ids, adult_ids, new_ids, malformed
         FROM catalog_exports ORDER BY export_date DESC LIMIT 1",
    )
    .fetch_optional(store.pool())
    .await
    .context("reading the latest export")?;
    Ok(row.map(|r| CatalogLoadSummary {
        export_date: Some(r.get("export_date")),
        total_ids: r.get("total_ids"),
        adult_ids: r.get("adult_ids"),
        new_ids: r.get("new_ids"),
        malformed: r.get::<i64, _>("malformed") as u64,
        ..Default::default()
    }))
}

/// The first export date ever loaded: movies imported since then need changes from that day on.
pub async fn first_export_date(store: &Store) -> Result<Option<NaiveDate>> {
    sqlx::query_scalar("SELECT min(export_date) FROM catalog_exports")
        .fetch_one(store.pool())
        .await
        .context("reading the first export date")
}

/// A catalog entry on a bulk page.
#[derive(Debug, Clone, PartialEq)]
pub struct PageEntry {
    pub page: i32,
    pub id: i64,
    pub adult: bool,
    /// False when the id has dropped out of the latest export (deleted on TMDb).
    pub listed: bool,
}

/// The catalog entries of pages `from..=to`, in ordinal order.
pub async fn page_entries(store: &Store, from: i32, to: i32) -> Result<Vec<PageEntry>> {
    let rows = sqlx::query(
        "SELECT ((c.ordinal - 1) / $3 + 1)::int AS page, c.id, c.adult,
             c.last_seen >= COALESCE((SELECT max(export_date) FROM catalog_exports), c.last_seen)
               AS listed
         FROM catalog_ids c
         WHERE c.ordinal > ($1::bigint - 1) * $3 AND c.ordinal <= $2::bigint * $3
         ORDER BY c.ordinal",
    )
    .bind(from)
    .bind(to)
    .bind(PAGE_SIZE)
    .fetch_all(store.pool())
    .await
    .context("reading catalog pages")?;
    Ok(rows
        .into_iter()
        .map(|r| PageEntry {
            page: r.get("page"),
            id: r.get("id"),
            adult: r.get("adult"),
            listed: r.get("listed"),
        })
        .collect())
}

/// Whether `id` is in the catalog at all.
pub async fn known_ids(store: &Store, ids: &[i64]) -> Result<std::collections::HashSet<i64>> {
    let rows: Vec<i64> = sqlx::query_scalar("SELECT id FROM catalog_ids WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(store.pool())
        .await
        .context("looking up catalog ids")?;
    Ok(rows.into_iter().collect())
}

/// The coverage the latest completed Catalog run recorded, when that run walked `/discover/movie`
/// (`None` when the latest loaded the export, or there is none).
pub async fn latest_discover_coverage(
    store: &Store,
) -> Result<Option<crate::plan::discover::DiscoverCoverage>> {
    let value: Option<Option<serde_json::Value>> = sqlx::query_scalar(
        "SELECT metadata->'discover' FROM sync_runs
         WHERE run_type = 'catalog' AND status = 'completed'
         ORDER BY completed_at DESC NULLS LAST, id DESC LIMIT 1",
    )
    .fetch_optional(store.pool())
    .await
    .context("reading the latest discover coverage")?;
    // A row written by another version that does not parse is shown as no coverage, not an error.
    Ok(value.flatten().and_then(|v| serde_json::from_value(v).ok()))
}
