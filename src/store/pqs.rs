//! `person_quality_scores` and its queue `pqs_pending_people`.
//!
//! A movie is PQS-pending when `pqs_at` is older than its version (`details_at`, `omdb_at`,
//! `deleted_at`, whichever is latest). Queueing moves the key people of pending movies (from the
//! collaborations snapshot) into `pqs_pending_people` and marks the movies done in one transaction;
//! scoring then takes the queue in person-id order, a batch per transaction. Collaborations queue
//! people who joined or left a movie, so a score always follows its inputs. The formula (README
//! "Person quality score") depends only on a person's movies, never on the date, so scoring the
//! queue equals recomputing everyone.

use super::{Context, Result, Store};

/// Serializes queueing and scoring of concurrent runs.
const LOCK_KEY: i64 = 0x746d_6462_7071_7321; // "tmdbpqs!"

/// Movies pending for PQS.
pub async fn pending_movies(store: &Store) -> Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM movie_pipeline p JOIN movies m ON m.id = p.movie_id
         WHERE p.pqs_at IS NULL OR p.pqs_at < GREATEST(p.details_at, p.omdb_at, m.deleted_at)",
    )
    .fetch_one(store.batch_pool())
    .await
    .context("counting PQS-pending movies")
}

/// Queues the key people of up to `limit` pending movies and marks those movies done; returns
/// how many movies.
pub async fn queue_pending_movies(store: &Store, limit: i64) -> Result<i64> {
    let mut tx = store.begin_locked(LOCK_KEY, "locking PQS").await?;
    let n: i64 = sqlx::query_scalar(
        "WITH batch AS (
             SELECT p.movie_id, GREATEST(p.details_at, p.omdb_at, m.deleted_at) AS version
             FROM movie_pipeline p JOIN movies m ON m.id = p.movie_id
             WHERE p.pqs_at IS NULL OR p.pqs_at < GREATEST(p.details_at, p.omdb_at, m.deleted_at)
             ORDER BY p.movie_id LIMIT $1),
         queued AS (
             INSERT INTO pqs_pending_people (person_id)
             SELECT DISTINCT cm.person_id FROM batch b
             JOIN collaboration_members cm ON cm.movie_id = b.movie_id
             ORDER BY cm.person_id
             ON CONFLICT DO NOTHING),
         marked AS (
             UPDATE movie_pipeline p SET pqs_at = b.version FROM batch b
             WHERE p.movie_id = b.movie_id RETURNING 1)
         SELECT count(*) FROM marked",
    )
    .bind(limit)
    .fetch_one(&mut *tx)
    .await
    .context("queueing people of PQS-pending movies")?;
    tx.commit().await.context("committing the PQS queue")?;
    Ok(n)
}

/// People waiting for a score.
pub async fn queued_people(store: &Store) -> Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM pqs_pending_people")
        .fetch_one(store.pool())
        .await
        .context("counting queued people")
}

/// Queues every person of the snapshot (a full recompute, e.g. after changing the formula).
pub async fn queue_everyone(store: &Store) -> Result<i64> {
    let done = sqlx::query(
        "INSERT INTO pqs_pending_people (person_id)
         SELECT person_id FROM collaboration_members
         UNION SELECT person_id FROM person_quality_scores
         ON CONFLICT DO NOTHING",
    )
    .execute(store.batch_pool())
    .await
    .context("queueing everyone for PQS")?;
    Ok(done.rows_affected() as i64)
}

/// Scores up to `limit` queued people (lowest ids first) in one transaction and takes them off
/// the queue; people left without a live movie lose their score. Returns how many were taken.
pub async fn score_queued(store: &Store, limit: i64, reference_year: i32) -> Result<i64> {
    let mut tx = store.begin_locked(LOCK_KEY, "locking PQS").await?;
    let taken = sqlx::query(
        "CREATE TEMP TABLE pqs_batch ON COMMIT DROP AS
         SELECT person_id FROM pqs_pending_people ORDER BY person_id LIMIT $1",
    )
    .bind(limit)
    .execute(&mut *tx)
    .await
    .context("taking queued people")?
    .rows_affected() as i64;
    if taken == 0 {
        tx.commit().await.context("committing an empty PQS batch")?;
        return Ok(0);
    }
    // Per movie: q = mean of the available ratings (0-10): TMDb and IMDb each shrunk towards 6.0
    // (Bayesian average with 50 resp. 500 prior votes) and critics (Metascore, Tomatometer, /10);
    // weight w = 1 + ln(1 + votes). Per person: quality = Σwq/Σw/10, reach = log10(1 + Σvotes)/7,
    // volume = ln(1 + movies)/ln(51), recency = 0.5^((reference_year - last year)/10), each
    // capped to 0-1; score = 100 (0.45 quality + 0.20 reach + 0.20 volume + 0.15 recency).
    // Sums are numeric so their order (the plan) cannot change a score.
    sqlx::query(
        "CREATE TEMP TABLE pqs_scored ON COMMIT DROP AS
         WITH pm AS (
             SELECT x.person_id, x.year,
                 COALESCE(m.vote_count, 0)::float8 AS tv, COALESCE(m.vote_average, 0) AS tr,
                 COALESCE(o.imdb_votes, 0)::float8 AS iv, o.imdb_rating AS ir,
                 o.metascore / 10.0 AS ms, o.rotten_tomatoes / 10.0 AS rt
             FROM pqs_batch t
             JOIN collaboration_members x ON x.person_id = t.person_id
             JOIN movies m ON m.id = x.movie_id AND m.deleted_at IS NULL
             LEFT JOIN omdb_ratings o ON o.movie_id = m.id),
         mq AS (
             SELECT person_id, year, tv + iv AS votes, 1 + ln(1 + tv + iv) AS w,
                 ((tv * tr + 50 * 6.0) / (tv + 50)
                  + COALESCE((iv * ir + 500 * 6.0) / (iv + 500), 0)
                  + COALESCE((COALESCE(ms, rt) + COALESCE(rt, ms)) / 2, 0)::float8)
                 / (1 + (ir IS NOT NULL)::int + (ms IS NOT NULL OR rt IS NOT NULL)::int) AS q
             FROM pm),
         agg AS (
             SELECT person_id, count(*)::int AS n, sum((w * q)::numeric) AS wq,
                 sum(w::numeric) AS ws, sum(votes::numeric) AS votes, max(year) AS last_year
             FROM mq GROUP BY person_id),
         parts AS (
             SELECT person_id, n, votes::bigint AS votes, last_year,
                 LEAST(1, wq / ws / 10)::float8 AS quality,
                 LEAST(1, log(1 + votes) / 7)::float8 AS reach,
                 LEAST(1, ln(1 + n::numeric) / ln(51::numeric))::float8 AS volume,
                 COALESCE(LEAST(1, power(0.5::numeric, ($1 - last_year) / 10.0)), 0)::float8
                     AS recency
             FROM agg)
         SELECT person_id, n, votes, last_year, quality, reach, volume, recency,
             round((100 * (0.45 * quality::numeric + 0.20 * reach::numeric
                    + 0.20 * volume::numeric + 0.15 * recency::numeric)), 2) AS score
         FROM parts",
    )
    .bind(reference_year)
    .execute(&mut *tx)
    .await
    .context("computing person quality scores")?;
    let steps: [(&'static str, &'static str); 3] = [
        (
            "storing person quality scores",
            "INSERT INTO person_quality_scores AS s (person_id, score, quality, reach, volume,
                 recency, movie_count, votes, last_year, computed_at)
             SELECT person_id, score, quality, reach, volume, recency, n, votes, last_year, now()
             FROM pqs_scored ORDER BY person_id
             ON CONFLICT (person_id) DO UPDATE SET score = EXCLUDED.score,
                 quality = EXCLUDED.quality, reach = EXCLUDED.reach, volume = EXCLUDED.volume,
                 recency = EXCLUDED.recency, movie_count = EXCLUDED.movie_count,
                 votes = EXCLUDED.votes, last_year = EXCLUDED.last_year, computed_at = now()",
        ),
        (
            "dropping scores of people without movies",
            "DELETE FROM person_quality_scores s USING pqs_batch b
             WHERE s.person_id = b.person_id
               AND NOT EXISTS (SELECT 1 FROM pqs_scored x WHERE x.person_id = b.person_id)",
        ),
        (
            "taking scored people off the queue",
            "DELETE FROM pqs_pending_people q USING pqs_batch b WHERE q.person_id = b.person_id",
        ),
    ];
    for (context, sql) in steps {
        sqlx::query(sql).execute(&mut *tx).await.context(context)?;
    }
    tx.commit().await.context("committing a PQS batch")?;
    Ok(taken)
}
