//! Movies, people, credits and genres: batched upserts of fetched details, deletions, lookups.

use std::collections::{BTreeMap, HashSet};

use sqlx::{PgConnection, Row};

use super::{Context, Result};
use crate::model::movie::FetchedMovie;

/// How many rows a batch upsert inserted versus updated.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UpsertCounts {
    pub inserted: u32,
    pub updated: u32,
}

/// Stores fetched movies with their people, credits and genres, replacing earlier versions.
/// One statement per table for the whole batch, never one per row.
pub async fn upsert_movies(
    conn: &mut PgConnection,
    batch: &[FetchedMovie],
) -> Result<UpsertCounts> {
    if batch.is_empty() {
        return Ok(UpsertCounts::default());
    }
    // A batch may hold the same movie twice (a delta window listing it on two days): keep the last.
    let mut by_id: BTreeMap<i64, &FetchedMovie> = BTreeMap::new();
    for m in batch {
        by_id.insert(m.details.id, m);
    }
    let movies: Vec<&FetchedMovie> = by_id.into_values().collect();
    let counts = upsert_movie_rows(conn, &movies).await?;
    upsert_people(conn, &movies).await?;
    replace_credits(conn, &movies).await?;
    replace_genres(conn, &movies).await?;
    let ids: Vec<i64> = movies.iter().map(|m| m.details.id).collect();
    sqlx::query(
        "INSERT INTO movie_pipeline (movie_id, details_at, credits_changed_at)
         SELECT id, now(), now() FROM UNNEST($1::bigint[]) AS t(id)
         ON CONFLICT (movie_id) DO UPDATE SET details_at = now(), credits_changed_at = now()",
    )
    .bind(&ids)
    .execute(&mut *conn)
    .await
    .context("recording details in movie_pipeline")?;
    Ok(counts)
}

/// A movie the database refused even on its own, with the database's reason.
#[derive(Debug)]
pub struct RefusedMovie {
    pub id: i64,
    pub reason: String,
}

/// Stores `batch` one movie at a time, each under its own savepoint, after the batch as a whole
/// was refused for its data: the movies the database accepts are stored, each refused one is
/// rolled back alone and returned with the database's reason. An error that is not about one
/// record's data (a lost connection, a missing table) still fails the whole call.
pub async fn upsert_movies_isolated(
    conn: &mut PgConnection,
    batch: &[FetchedMovie],
) -> Result<(UpsertCounts, Vec<RefusedMovie>)> {
    let mut counts = UpsertCounts::default();
    let mut refused = Vec::new();
    for movie in batch {
        sqlx::query("SAVEPOINT one_movie")
            .execute(&mut *conn)
            .await
            .context("opening a savepoint for one movie")?;
        match upsert_movies(conn, std::slice::from_ref(movie)).await {
            Ok(c) => {
                counts.inserted += c.inserted;
                counts.updated += c.updated;
                sqlx::query("RELEASE SAVEPOINT one_movie")
                    .execute(&mut *conn)
                    .await
                    .context("releasing a savepoint for one movie")?;
            }
            Err(e) if e.is_record_data_error() => {
                sqlx::query("ROLLBACK TO SAVEPOINT one_movie")
                    .execute(&mut *conn)
                    .await
                    .context("rolling back one refused movie")?;
                refused.push(RefusedMovie {
                    id: movie.details.id,
                    reason: e.to_string(),
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok((counts, refused))
}

async fn upsert_movie_rows(
    conn: &mut PgConnection,
    movies: &[&FetchedMovie],
) -> Result<UpsertCounts> {
    let n = movies.len();
    let mut id = Vec::with_capacity(n);
    let mut imdb = Vec::with_capacity(n);
    let mut title = Vec::with_capacity(n);
    let mut original_title = Vec::with_capacity(n);
    let mut language = Vec::with_capacity(n);
    let mut overview = Vec::with_capacity(n);
    let mut release = Vec::with_capacity(n);
    let mut runtime = Vec::with_capacity(n);
    let mut status = Vec::with_capacity(n);
    let mut adult = Vec::with_capacity(n);
    let mut popularity = Vec::with_capacity(n);
    let mut vote_average = Vec::with_capacity(n);
    let mut vote_count = Vec::with_capacity(n);
    let mut budget = Vec::with_capacity(n);
    let mut revenue = Vec::with_capacity(n);
    let mut raw = Vec::with_capacity(n);
    for m in movies {
        let d = &m.details;
        id.push(d.id);
        imdb.push(d.imdb_id().map(str::to_string));
        title.push(d.title.clone().unwrap_or_default());
        original_title.push(d.original_title.clone());
        language.push(d.original_language.clone());
        overview.push(d.overview.clone());
        release.push(d.release_date);
        runtime.push(d.runtime);
        status.push(d.status.clone());
        adult.push(d.adult.unwrap_or(false));
        popularity.push(d.popularity);
        vote_average.push(d.vote_average);
        vote_count.push(d.vote_count);
        budget.push(d.budget);
        revenue.push(d.revenue);
        raw.push(m.raw.as_str());
    }
    let rows = sqlx::query(
        "INSERT INTO movies AS m (id, imdb_id, title, original_title, original_language, overview,
             release_date, runtime, status, adult, popularity, vote_average, vote_count, budget,
             revenue, raw, fetched_at, deleted_at)
         SELECT t.id, t.imdb_id, t.title, t.original_title, t.original_language, t.overview,
             t.release_date, t.runtime, t.status, t.adult, t.popularity, t.vote_average,
             t.vote_count, t.budget, t.revenue, t.raw::jsonb, now(), NULL
         FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
             $7::date[], $8::int[], $9::text[], $10::bool[], $11::float8[], $12::float8[],
             $13::int[], $14::bigint[], $15::bigint[], $16::text[])
           AS t(id, imdb_id, title, original_title, original_language, overview, release_date,
             runtime, status, adult, popularity, vote_average, vote_count, budget, revenue, raw)
         ON CONFLICT (id) DO UPDATE SET
             imdb_id = EXCLUDED.imdb_id, title = EXCLUDED.title,
             original_title = EXCLUDED.original_title,
             original_language = EXCLUDED.original_language, overview = EXCLUDED.overview,
             release_date = EXCLUDED.release_date, runtime = EXCLUDED.runtime,
             status = EXCLUDED.status, adult = EXCLUDED.adult, popularity = EXCLUDED.popularity,
             vote_average = EXCLUDED.vote_average, vote_count = EXCLUDED.vote_count,
             budget = EXCLUDED.budget, revenue = EXCLUDED.revenue, raw = EXCLUDED.raw,
             fetched_at = now(), deleted_at = NULL, updated_at = now()
         RETURNING (xmax = 0) AS inserted",
    )
    .bind(&id)
    .bind(&imdb)
    .bind(&title)
    .bind(&original_title)
    .bind(&language)
    .bind(&overview)
    .bind(&release)
    .bind(&runtime)
    .bind(&status)
    .bind(&adult)
    .bind(&popularity)
    .bind(&vote_average)
    .bind(&vote_count)
    .bind(&budget)
    .bind(&revenue)
    .bind(&raw)
    .fetch_all(&mut *conn)
    .await
    .context("upserting movies")?;
    let mut counts = UpsertCounts::default();
    for row in rows {
        if row.get::<bool, _>("inserted") {
            counts.inserted += 1;
        } else {
            counts.updated += 1;
        }
    }
    Ok(counts)
}

async fn upsert_people(conn: &mut PgConnection, movies: &[&FetchedMovie]) -> Result<()> {
    // Sorted by id so concurrent writers lock people rows in the same order (no deadlock cycles).
    let mut people = BTreeMap::new();
    for m in movies {
        if let Some(c) = &m.details.credits {
            for p in c
                .cast
                .iter()
                .map(|c| &c.person)
                .chain(c.crew.iter().map(|c| &c.person))
            {
                people.insert(p.id, p);
            }
        }
    }
    if people.is_empty() {
        return Ok(());
    }
    let mut id = Vec::new();
    let mut name = Vec::new();
    let mut original = Vec::new();
    let mut gender = Vec::new();
    let mut department = Vec::new();
    let mut popularity = Vec::new();
    let mut profile = Vec::new();
    for (pid, p) in people {
        id.push(pid);
        name.push(p.name.clone().unwrap_or_default());
        original.push(p.original_name.clone());
        gender.push(p.gender);
        department.push(p.known_for_department.clone());
        popularity.push(p.popularity);
        profile.push(p.profile_path.clone());
    }
    sqlx::query(
        "INSERT INTO people AS p (id, name, original_name, gender, known_for_department, popularity,
             profile_path)
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::smallint[], $5::text[],
             $6::float8[], $7::text[])
         ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, original_name = EXCLUDED.original_name,
             gender = EXCLUDED.gender, known_for_department = EXCLUDED.known_for_department,
             popularity = EXCLUDED.popularity, profile_path = EXCLUDED.profile_path,
             updated_at = now()
         WHERE (p.name, p.original_name, p.gender, p.known_for_department, p.popularity,
                p.profile_path)
           IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.original_name, EXCLUDED.gender,
                EXCLUDED.known_for_department, EXCLUDED.popularity, EXCLUDED.profile_path)",
    )
    .bind(&id)
    .bind(&name)
    .bind(&original)
    .bind(&gender)
    .bind(&department)
    .bind(&popularity)
    .bind(&profile)
    .execute(&mut *conn)
    .await
    .context("upserting people")?;
    Ok(())
}

async fn replace_credits(conn: &mut PgConnection, movies: &[&FetchedMovie]) -> Result<()> {
    let ids: Vec<i64> = movies.iter().map(|m| m.details.id).collect();
    sqlx::query("DELETE FROM credits WHERE movie_id = ANY($1)")
        .bind(&ids)
        .execute(&mut *conn)
        .await
        .context("deleting old credits")?;
    let mut movie_id = Vec::new();
    let mut credit_id = Vec::new();
    let mut person_id = Vec::new();
    let mut kind = Vec::new();
    let mut character = Vec::new();
    let mut order = Vec::new();
    let mut department = Vec::new();
    let mut job = Vec::new();
    for m in movies {
        let Some(c) = &m.details.credits else {
            continue;
        };
        let mut seen = HashSet::new();
        let mid = m.details.id;
        for (i, cast) in c.cast.iter().enumerate() {
            let cid = cast
                .credit_id
                .clone()
                .unwrap_or_else(|| format!("cast-{}-{i}", cast.person.id));
            if !seen.insert(cid.clone()) {
                continue;
            }
            movie_id.push(mid);
            credit_id.push(cid);
            person_id.push(cast.person.id);
            kind.push("cast");
            character.push(cast.character.clone());
            order.push(cast.order);
            department.push(None::<String>);
            job.push(None::<String>);
        }
        for (i, crew) in c.crew.iter().enumerate() {
            let cid = crew
                .credit_id
                .clone()
                .unwrap_or_else(|| format!("crew-{}-{i}", crew.person.id));
            if !seen.insert(cid.clone()) {
                continue;
            }
            movie_id.push(mid);
            credit_id.push(cid);
            person_id.push(crew.person.id);
            kind.push("crew");
            character.push(None);
            order.push(None);
            department.push(crew.department.clone());
            job.push(crew.job.clone());
        }
    }
    if movie_id.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO credits (movie_id, credit_id, person_id, kind, character, cast_order,
             department, job)
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[],
             $6::int[], $7::text[], $8::text[])",
    )
    .bind(&movie_id)
    .bind(&credit_id)
    .bind(&person_id)
    .bind(&kind)
    .bind(&character)
    .bind(&order)
    .bind(&department)
    .bind(&job)
    .execute(&mut *conn)
    .await
    .context("inserting credits")?;
    Ok(())
}

async fn replace_genres(conn: &mut PgConnection, movies: &[&FetchedMovie]) -> Result<()> {
    let mut genres = BTreeMap::new();
    let mut movie_id = Vec::new();
    let mut genre_id = Vec::new();
    for m in movies {
        let mut seen = HashSet::new();
        for g in &m.details.genres {
            genres.insert(g.id, g.name.clone().unwrap_or_default());
            if seen.insert(g.id) {
                movie_id.push(m.details.id);
                genre_id.push(g.id);
            }
        }
    }
    if !genres.is_empty() {
        let (gid, gname): (Vec<i32>, Vec<String>) = genres.into_iter().unzip();
        sqlx::query(
            "INSERT INTO genres AS g (id, name) SELECT * FROM UNNEST($1::int[], $2::text[])
             ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name WHERE g.name <> EXCLUDED.name",
        )
        .bind(&gid)
        .bind(&gname)
        .execute(&mut *conn)
        .await
        .context("upserting genres")?;
    }
    let ids: Vec<i64> = movies.iter().map(|m| m.details.id).collect();
    sqlx::query("DELETE FROM movie_genres WHERE movie_id = ANY($1)")
        .bind(&ids)
        .execute(&mut *conn)
        .await
        .context("deleting old movie genres")?;
    if !movie_id.is_empty() {
        sqlx::query(
            "INSERT INTO movie_genres (movie_id, genre_id)
             SELECT * FROM UNNEST($1::bigint[], $2::int[])",
        )
        .bind(&movie_id)
        .bind(&genre_id)
        .execute(&mut *conn)
        .await
        .context("inserting movie genres")?;
    }
    Ok(())
}

/// Records ids TMDb answered 404 for: a stored movie is marked deleted, and every id is recorded
/// as gone (`catalog_gone`, stamped checked now), so a catalog id never imported leaves "remaining"
/// too. Returns how many ids are newly not served (a live movie newly deleted, or an id newly gone)
/// and how many of them were live movies.
pub async fn mark_deleted(conn: &mut PgConnection, ids: &[i64]) -> Result<(u64, u64)> {
    if ids.is_empty() {
        return Ok((0, 0));
    }
    // Both statements read the snapshot from before either writes: `first_gone` restarts for an
    // id whose movie was live until now (it had come back since it was last gone).
    let (newly, marked): (i64, i64) = sqlx::query_as(
        "WITH gone AS (
             INSERT INTO catalog_gone AS g (id)
             SELECT DISTINCT t.id FROM UNNEST($1::bigint[]) AS t(id) ORDER BY t.id
             ON CONFLICT (id) DO UPDATE SET last_checked = now(),
                 first_gone = CASE WHEN EXISTS (SELECT 1 FROM movies m
                                                WHERE m.id = g.id AND m.deleted_at IS NULL)
                              THEN now() ELSE g.first_gone END
             RETURNING g.id, (g.xmax = 0) AS fresh
         ), marked AS (
             UPDATE movies SET deleted_at = now(), updated_at = now()
             WHERE id = ANY($1) AND deleted_at IS NULL
             RETURNING id
         )
         SELECT (SELECT count(*) FROM (SELECT id FROM gone WHERE fresh
                                       UNION SELECT id FROM marked) AS n),
             (SELECT count(*) FROM marked)",
    )
    .bind(ids)
    .fetch_one(&mut *conn)
    .await
    .context("marking movies deleted")?;
    Ok((newly as u64, marked as u64))
}

/// Which of `ids` are already stored (imported at least once, deleted or not).
pub async fn stored_ids(store: &super::Store, ids: &[i64]) -> Result<HashSet<i64>> {
    let rows: Vec<i64> = sqlx::query_scalar("SELECT id FROM movies WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(store.pool())
        .await
        .context("looking up stored movies")?;
    Ok(rows.into_iter().collect())
}

/// The `limit` live movies fetched longest ago (for the stale-refresh budget).
pub async fn stalest_ids(store: &super::Store, limit: i64) -> Result<Vec<i64>> {
    sqlx::query_scalar(
        "SELECT id FROM movies WHERE deleted_at IS NULL ORDER BY fetched_at, id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(store.pool())
    .await
    .context("finding the stalest movies")
}
