-- The heavy counts of the Sync Health report, kept in one row so that `tmdbsync status` and the
-- controller's health read cost milliseconds whatever the catalog's size (counting them live is a
-- join of two million-row tables: 1.7 s at 1.1 M movies on two cores). See docs/scale.md.
--
-- health_counts_now() counts them exactly. The row is recomputed with it when a run closes and,
-- during a long run, every few minutes by the run's heartbeat; between two recomputations each
-- write batch adds the movies it stored and subtracts those it marked deleted, and moves the
-- contiguous done pages on from where they were, in its own transaction. A recomputation holds the row (FOR UPDATE) while it counts, so no batch commits
-- between the count and the new row.
-- The highest page p such that pages 1..p are all done, knowing that 1..after are: one ordered
-- walk over the done pages above `after`, stopping at the first gap.
CREATE FUNCTION health_pages_done_from(after integer) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(
        (SELECT expected - 1 FROM (
             SELECT page, after + row_number() OVER (ORDER BY page) AS expected
             FROM bulk_pages WHERE status = 'done' AND page > after) t
         WHERE page <> expected LIMIT 1),
        after + (SELECT count(*) FROM bulk_pages WHERE status = 'done' AND page > after))::integer
$$;

CREATE FUNCTION health_counts_now(
    OUT total bigint, OUT imported bigint, OUT pipeline_total bigint, OUT omdb_done bigint,
    OUT collaborations_done bigint, OUT pqs_done bigint, OUT missing_imdb_id bigint,
    OUT last_contiguous_page integer)
LANGUAGE sql STABLE AS $$
    WITH latest AS (SELECT export_date, include_adult FROM catalog_exports
                    ORDER BY export_date DESC LIMIT 1),
    pipeline AS (
        SELECT count(*) AS total,
            count(*) FILTER (WHERE p.omdb_at >= p.details_at) AS omdb,
            count(*) FILTER (WHERE p.collaborations_at >= p.credits_changed_at) AS collaborations,
            count(*) FILTER (WHERE p.pqs_at >= GREATEST(p.details_at, p.omdb_at)) AS pqs,
            count(*) FILTER (WHERE m.imdb_id IS NULL OR m.imdb_id = '') AS missing_imdb_id
        FROM movie_pipeline p JOIN movies m ON m.id = p.movie_id
        WHERE m.deleted_at IS NULL)
    SELECT
        (SELECT count(*) FROM catalog_ids c, latest l
          WHERE c.last_seen >= l.export_date AND (l.include_adult OR NOT c.adult)),
        (SELECT count(*) FROM catalog_ids c JOIN movies m ON m.id = c.id, latest l
          WHERE c.last_seen >= l.export_date AND (l.include_adult OR NOT c.adult)
            AND m.deleted_at IS NULL),
        p.total, p.omdb, p.collaborations, p.pqs, p.missing_imdb_id,
        health_pages_done_from(0)
    FROM pipeline p
$$;

CREATE TABLE health_counts (
    id                  boolean PRIMARY KEY DEFAULT true CHECK (id),   -- one row
    computed_at         timestamptz NOT NULL,   -- when health_counts_now() last recomputed it
    total               bigint NOT NULL,        -- catalog ids listed by the latest export (adult ones only if included)
    imported            bigint NOT NULL,        -- of those, ids with a live movie
    pipeline_total      bigint NOT NULL,        -- live movies with a movie_pipeline row
    omdb_done           bigint NOT NULL,        -- of those, OMDb done for their current details
    collaborations_done bigint NOT NULL,        -- collaborations done for their current credits
    pqs_done            bigint NOT NULL,        -- person quality scores done for their current data
    missing_imdb_id     bigint NOT NULL,        -- live movies without an imdb id
    last_contiguous_page integer NOT NULL       -- pages 1..this are all done (bulk_pages)
);

INSERT INTO health_counts (id, computed_at, total, imported, pipeline_total, omdb_done,
    collaborations_done, pqs_done, missing_imdb_id, last_contiguous_page)
SELECT true, now(), * FROM health_counts_now();
