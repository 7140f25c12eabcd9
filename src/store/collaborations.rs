//! `collaborations` and its per-movie snapshot `collaboration_members`, maintained incrementally
//! in set-based batches.
//!
//! A movie is collaborations-pending when `collaborations_at` is older than its credits version
//! (`credits_changed_at`, or `deleted_at` once deleted). For a batch of pending movies, the key
//! people (directors and writers by job, cast billed under `top_cast`) are read from `credits` and
//! compared with the snapshot; only movies whose people or year differ are touched: their old pairs
//! are subtracted, new ones added, the snapshot replaced, and first/last years recomputed for the
//! pairs that lost a movie. People who joined or left a movie are queued for their quality score.

use super::{Context, Result, Store};

/// Serializes batches of concurrent runs (two Enrich runs must not diff the same movie twice).
const LOCK_KEY: i64 = 0x746d_6462_636f_6c6c; // "tmdbcoll"

/// What one batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CollabBatch {
    /// Pending movies looked at (0 when nothing is pending).
    pub movies: i64,
    /// Movies whose key people or year differed from the snapshot.
    pub changed: i64,
    /// Pairs whose counts changed.
    pub pairs: i64,
}

/// Movies pending for collaborations (live or deleted with old contributions).
pub async fn pending_count(store: &Store) -> Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM movie_pipeline p JOIN movies m ON m.id = p.movie_id
         WHERE p.collaborations_at IS NULL
            OR p.collaborations_at < GREATEST(p.credits_changed_at, m.deleted_at)",
    )
    .fetch_one(store.batch_pool())
    .await
    .context("counting collaboration-pending movies")
}

/// Processes up to `limit` pending movies in one transaction.
pub async fn apply_batch(
    store: &Store,
    limit: i64,
    top_cast: i32,
    crew_jobs: &[&str],
) -> Result<CollabBatch> {
    let mut tx = store
        .begin_locked(LOCK_KEY, "locking collaborations")
        .await?;
    sqlx::query(
        "CREATE TEMP TABLE collab_batch ON COMMIT DROP AS
         SELECT p.movie_id, GREATEST(p.credits_changed_at, m.deleted_at) AS version,
             m.deleted_at IS NULL AS live, extract(year FROM m.release_date)::smallint AS year
         FROM movie_pipeline p JOIN movies m ON m.id = p.movie_id
         WHERE p.collaborations_at IS NULL
            OR p.collaborations_at < GREATEST(p.credits_changed_at, m.deleted_at)
         ORDER BY p.movie_id LIMIT $1",
    )
    .bind(limit)
    .execute(&mut *tx)
    .await
    .context("choosing a collaborations batch")?;
    sqlx::query(
        "CREATE TEMP TABLE collab_new ON COMMIT DROP AS
         SELECT DISTINCT c.movie_id, c.person_id, b.year
         FROM collab_batch b JOIN credits c ON c.movie_id = b.movie_id
         WHERE b.live AND ((c.kind = 'cast' AND c.cast_order < $1)
                        OR (c.kind = 'crew' AND c.job = ANY($2)))",
    )
    .bind(top_cast)
    .bind(crew_jobs)
    .execute(&mut *tx)
    .await
    .context("reading key people")?;
    let steps: [(&'static str, &'static str); 6] = [
        (
            "comparing key people with the snapshot",
            "CREATE TEMP TABLE collab_diff ON COMMIT DROP AS
             (SELECT movie_id, person_id, year, 1 AS sign FROM collab_new
              EXCEPT SELECT cm.movie_id, cm.person_id, cm.year, 1 FROM collaboration_members cm
                     JOIN collab_batch USING (movie_id))
             UNION ALL
             (SELECT cm.movie_id, cm.person_id, cm.year, -1 FROM collaboration_members cm
                     JOIN collab_batch USING (movie_id)
              EXCEPT SELECT movie_id, person_id, year, -1 FROM collab_new)",
        ),
        (
            "pairing changed movies",
            "CREATE TEMP TABLE collab_delta ON COMMIT DROP AS
             WITH changed AS (SELECT DISTINCT movie_id FROM collab_diff),
             old AS (SELECT cm.movie_id, cm.person_id, cm.year FROM collaboration_members cm
                     JOIN changed USING (movie_id)),
             new AS (SELECT n.movie_id, n.person_id, n.year FROM collab_new n
                     JOIN changed USING (movie_id)),
             old_pairs AS (SELECT a.movie_id, a.person_id AS pa, b.person_id AS pb, a.year
                           FROM old a JOIN old b ON a.movie_id = b.movie_id
                            AND a.person_id < b.person_id),
             new_pairs AS (SELECT a.movie_id, a.person_id AS pa, b.person_id AS pb, a.year
                           FROM new a JOIN new b ON a.movie_id = b.movie_id
                            AND a.person_id < b.person_id),
             moves AS ((SELECT *, 1 AS sign FROM new_pairs EXCEPT SELECT *, 1 FROM old_pairs)
                       UNION ALL
                       (SELECT *, -1 FROM old_pairs EXCEPT SELECT *, -1 FROM new_pairs))
             SELECT pa, pb, sum(sign)::int AS delta,
                 min(year) FILTER (WHERE sign > 0) AS first_added,
                 max(year) FILTER (WHERE sign > 0) AS last_added,
                 bool_or(sign < 0) AS lost_one
             FROM moves GROUP BY pa, pb",
        ),
        // Pairs that only gained movies: add counts, widen years. Pairs that lost one are
        // recounted from the snapshot below.
        (
            "adding pair counts",
            "INSERT INTO collaborations AS c (person_a, person_b, shared_movies, first_year, last_year)
             SELECT pa, pb, delta, first_added, last_added FROM collab_delta
             WHERE NOT lost_one ORDER BY pa, pb
             ON CONFLICT (person_a, person_b) DO UPDATE
             SET shared_movies = c.shared_movies + EXCLUDED.shared_movies,
                 first_year = LEAST(c.first_year, EXCLUDED.first_year),
                 last_year = GREATEST(c.last_year, EXCLUDED.last_year)",
        ),
        (
            "clearing the member snapshot of changed movies",
            "DELETE FROM collaboration_members cm
             WHERE cm.movie_id IN (SELECT movie_id FROM collab_diff)",
        ),
        (
            "storing the member snapshot of changed movies",
            "INSERT INTO collaboration_members (movie_id, person_id, year)
             SELECT n.movie_id, n.person_id, n.year FROM collab_new n
             WHERE n.movie_id IN (SELECT movie_id FROM collab_diff)",
        ),
        (
            "queueing people whose movies changed for PQS",
            "INSERT INTO pqs_pending_people (person_id)
             SELECT DISTINCT person_id FROM collab_diff ORDER BY person_id
             ON CONFLICT DO NOTHING",
        ),
    ];
    for (context, sql) in steps {
        sqlx::query(sql).execute(&mut *tx).await.context(context)?;
    }
    sqlx::query(
        "WITH lost AS (SELECT pa, pb FROM collab_delta WHERE lost_one),
         recount AS (
             SELECT l.pa, l.pb, count(*)::int AS n, min(x.year) AS f, max(x.year) AS l
             FROM lost l JOIN collaboration_members x ON x.person_id = l.pa
             JOIN collaboration_members y ON y.person_id = l.pb AND y.movie_id = x.movie_id
             GROUP BY l.pa, l.pb)
         UPDATE collaborations c SET shared_movies = r.n, first_year = r.f, last_year = r.l
         FROM recount r WHERE c.person_a = r.pa AND c.person_b = r.pb",
    )
    .execute(&mut *tx)
    .await
    .context("recounting pairs that lost a movie")?;
    sqlx::query(
        "DELETE FROM collaborations c USING collab_delta d
         WHERE d.lost_one AND c.person_a = d.pa AND c.person_b = d.pb
           AND NOT EXISTS (SELECT 1 FROM collaboration_members x
                           JOIN collaboration_members y ON y.movie_id = x.movie_id
                           WHERE x.person_id = d.pa AND y.person_id = d.pb)",
    )
    .execute(&mut *tx)
    .await
    .context("dropping pairs without a shared movie")?;
    let counts: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM collab_batch),
             (SELECT count(DISTINCT movie_id) FROM collab_diff),
             (SELECT count(*) FROM collab_delta WHERE delta <> 0 OR lost_one)",
    )
    .fetch_one(&mut *tx)
    .await
    .context("counting a collaborations batch")?;
    sqlx::query(
        "UPDATE movie_pipeline p SET collaborations_at = b.version
         FROM collab_batch b WHERE p.movie_id = b.movie_id",
    )
    .execute(&mut *tx)
    .await
    .context("marking collaborations done")?;
    tx.commit()
        .await
        .context("committing a collaborations batch")?;
    Ok(CollabBatch {
        movies: counts.0,
        changed: counts.1,
        pairs: counts.2,
    })
}
