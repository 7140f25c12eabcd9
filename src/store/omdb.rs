//! `omdb_ratings`, `omdb_daily_calls` and the OMDb columns of `movie_pipeline`.
//!
//! A movie is OMDb-pending when `omdb_at IS NULL OR omdb_at < details_at`: never asked, or its
//! details changed since (a delta refetched it, maybe with a new imdb id). Every outcome, "not
//! found" included, sets `omdb_at`, so an unknown id is asked again only after the movie changes.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Row};

use super::{Context, Result, Store};
use crate::model::omdb::OmdbMovie;

/// A movie to ask OMDb about, with the details version it was read at.
#[derive(Debug, Clone)]
pub struct OmdbCandidate {
    pub movie_id: i64,
    pub imdb_id: String,
    pub details_at: DateTime<Utc>,
}

/// What became of one candidate.
#[derive(Debug, Clone)]
pub enum OmdbOutcome {
    Found(Box<OmdbMovie>),
    NotFound,
    IncorrectId,
}

impl OmdbOutcome {
    /// The `movie_pipeline.omdb_outcome` value.
    pub fn as_str(&self) -> &'static str {
        match self {
            OmdbOutcome::Found(_) => "found",
            OmdbOutcome::NotFound => "not_found",
            OmdbOutcome::IncorrectId => "incorrect_id",
        }
    }
}

/// Counts one OMDb call against today's (UTC) limit, before it is made. Returns false, counting
/// nothing, when `limit` calls were already made today by any run.
pub async fn reserve_call(store: &Store, limit: i32) -> Result<bool> {
    let row: Option<i32> = sqlx::query_scalar(
        "INSERT INTO omdb_daily_calls AS d (day, calls)
         SELECT (now() AT TIME ZONE 'UTC')::date, 1 WHERE $1 > 0
         ON CONFLICT (day) DO UPDATE SET calls = d.calls + 1 WHERE d.calls < $1
         RETURNING calls",
    )
    .bind(limit)
    .fetch_optional(store.pool())
    .await
    .context("counting an OMDb call")?;
    Ok(row.is_some())
}

/// Records that OMDb itself refused more calls today: no run asks again before tomorrow (UTC).
pub async fn exhaust_today(store: &Store, limit: i32) -> Result<()> {
    sqlx::query(
        "INSERT INTO omdb_daily_calls AS d (day, calls)
         VALUES ((now() AT TIME ZONE 'UTC')::date, $1)
         ON CONFLICT (day) DO UPDATE SET calls = GREATEST(d.calls, $1)",
    )
    .bind(limit)
    .execute(store.pool())
    .await
    .context("closing today's OMDb budget")?;
    Ok(())
}

/// OMDb calls counted today (UTC).
pub async fn calls_today(store: &Store) -> Result<i32> {
    let n: Option<i32> = sqlx::query_scalar(
        "SELECT calls FROM omdb_daily_calls WHERE day = (now() AT TIME ZONE 'UTC')::date",
    )
    .fetch_optional(store.pool())
    .await
    .context("reading today's OMDb calls")?;
    Ok(n.unwrap_or(0))
}

/// Records `no_imdb_id` for pending live movies without an imdb id (no call needed); returns how
/// many. Their old ratings, if any, go.
pub async fn record_no_imdb_id(store: &Store) -> Result<i64> {
    sqlx::query_scalar(
        "WITH marked AS (
             UPDATE movie_pipeline p SET omdb_at = now(), omdb_outcome = 'no_imdb_id'
             FROM movies m
             WHERE m.id = p.movie_id AND m.deleted_at IS NULL
               AND (m.imdb_id IS NULL OR m.imdb_id = '')
               AND (p.omdb_at IS NULL OR p.omdb_at < p.details_at)
             RETURNING p.movie_id),
         dropped AS (DELETE FROM omdb_ratings o USING marked WHERE o.movie_id = marked.movie_id)
         SELECT count(*) FROM marked",
    )
    .fetch_one(store.batch_pool())
    .await
    .context("recording movies without an imdb id")
}

/// Live OMDb-pending movies with an imdb id: never asked first (most popular first), then the
/// ones whose details changed. `skip` are ids that failed earlier in this run.
pub async fn pending(store: &Store, limit: i64, skip: &[i64]) -> Result<Vec<OmdbCandidate>> {
    let rows = sqlx::query(
        "SELECT p.movie_id, m.imdb_id, p.details_at
         FROM movie_pipeline p JOIN movies m ON m.id = p.movie_id
         WHERE (p.omdb_at IS NULL OR p.omdb_at < p.details_at)
           AND m.deleted_at IS NULL AND m.imdb_id IS NOT NULL AND m.imdb_id <> ''
           AND p.movie_id <> ALL($2)
         ORDER BY p.omdb_at IS NOT NULL, m.popularity DESC NULLS LAST, p.movie_id
         LIMIT $1",
    )
    .bind(limit)
    .bind(skip)
    .fetch_all(store.batch_pool())
    .await
    .context("listing OMDb-pending movies")?;
    Ok(rows
        .into_iter()
        .map(|r| OmdbCandidate {
            movie_id: r.get("movie_id"),
            imdb_id: r.get("imdb_id"),
            details_at: r.get("details_at"),
        })
        .collect())
}

/// Live OMDb-pending movies with an imdb id.
pub async fn pending_count(store: &Store) -> Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM movie_pipeline p JOIN movies m ON m.id = p.movie_id
         WHERE (p.omdb_at IS NULL OR p.omdb_at < p.details_at)
           AND m.deleted_at IS NULL AND m.imdb_id IS NOT NULL AND m.imdb_id <> ''",
    )
    .fetch_one(store.batch_pool())
    .await
    .context("counting OMDb-pending movies")
}

/// Stores outcomes: ratings for found movies, none for the others, and the pipeline columns.
/// A movie whose details changed since it was read stays pending (its `omdb_at` is the version
/// read, older than the new `details_at`).
pub async fn record_outcomes(
    conn: &mut PgConnection,
    results: &[(OmdbCandidate, OmdbOutcome)],
) -> Result<()> {
    if results.is_empty() {
        return Ok(());
    }
    let mut id = Vec::new();
    let mut imdb = Vec::new();
    let mut rating = Vec::new();
    let mut votes = Vec::new();
    let mut meta = Vec::new();
    let mut rt = Vec::new();
    let mut box_office = Vec::new();
    let mut awards = Vec::new();
    let mut oscar_wins = Vec::new();
    let mut oscar_noms = Vec::new();
    let mut wins = Vec::new();
    let mut noms = Vec::new();
    let mut raw = Vec::new();
    for (c, o) in results {
        if let OmdbOutcome::Found(m) = o {
            id.push(c.movie_id);
            imdb.push(m.imdb_id.as_str());
            rating.push(m.imdb_rating);
            votes.push(m.imdb_votes);
            meta.push(m.metascore);
            rt.push(m.rotten_tomatoes);
            box_office.push(m.box_office);
            awards.push(m.awards.as_ref().map(|a| a.text.as_str()));
            oscar_wins.push(m.awards.as_ref().map(|a| a.oscar_wins));
            oscar_noms.push(m.awards.as_ref().map(|a| a.oscar_nominations));
            wins.push(m.awards.as_ref().map(|a| a.wins));
            noms.push(m.awards.as_ref().map(|a| a.nominations));
            raw.push(m.raw.as_str());
        }
    }
    if !id.is_empty() {
        sqlx::query(
            "INSERT INTO omdb_ratings (movie_id, imdb_id, imdb_rating, imdb_votes, metascore,
                 rotten_tomatoes, box_office, awards, oscar_wins, oscar_nominations, award_wins,
                 award_nominations, raw, fetched_at)
             SELECT t.*, now() FROM UNNEST($1::bigint[], $2::text[], $3::float8[], $4::int[],
                 $5::smallint[], $6::smallint[], $7::bigint[], $8::text[], $9::smallint[],
                 $10::smallint[], $11::int[], $12::int[], $13::text[]::jsonb[]) AS t
             ON CONFLICT (movie_id) DO UPDATE SET imdb_id = EXCLUDED.imdb_id,
                 imdb_rating = EXCLUDED.imdb_rating, imdb_votes = EXCLUDED.imdb_votes,
                 metascore = EXCLUDED.metascore, rotten_tomatoes = EXCLUDED.rotten_tomatoes,
                 box_office = EXCLUDED.box_office, awards = EXCLUDED.awards,
                 oscar_wins = EXCLUDED.oscar_wins, oscar_nominations = EXCLUDED.oscar_nominations,
                 award_wins = EXCLUDED.award_wins, award_nominations = EXCLUDED.award_nominations,
                 raw = EXCLUDED.raw, fetched_at = now()",
        )
        .bind(&id)
        .bind(&imdb)
        .bind(&rating)
        .bind(&votes)
        .bind(&meta)
        .bind(&rt)
        .bind(&box_office)
        .bind(&awards)
        .bind(&oscar_wins)
        .bind(&oscar_noms)
        .bind(&wins)
        .bind(&noms)
        .bind(&raw)
        .execute(&mut *conn)
        .await
        .context("storing OMDb ratings")?;
    }
    let gone: Vec<i64> = results
        .iter()
        .filter(|(_, o)| !matches!(o, OmdbOutcome::Found(_)))
        .map(|(c, _)| c.movie_id)
        .collect();
    sqlx::query("DELETE FROM omdb_ratings WHERE movie_id = ANY($1)")
        .bind(&gone)
        .execute(&mut *conn)
        .await
        .context("dropping OMDb ratings of unknown ids")?;
    let all: Vec<i64> = results.iter().map(|(c, _)| c.movie_id).collect();
    let outcome: Vec<&str> = results.iter().map(|(_, o)| o.as_str()).collect();
    let seen: Vec<DateTime<Utc>> = results.iter().map(|(c, _)| c.details_at).collect();
    sqlx::query(
        "UPDATE movie_pipeline p SET omdb_outcome = t.outcome,
             omdb_at = CASE WHEN p.details_at = t.seen THEN now() ELSE t.seen END
         FROM UNNEST($1::bigint[], $2::text[], $3::timestamptz[]) AS t(id, outcome, seen)
         WHERE p.movie_id = t.id",
    )
    .bind(&all)
    .bind(&outcome)
    .bind(&seen)
    .execute(&mut *conn)
    .await
    .context("recording OMDb outcomes")?;
    Ok(())
}
