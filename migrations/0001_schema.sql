-- tmdbsync schema: the mirrored catalog, sync bookkeeping and the enrichment pipeline.

CREATE TABLE movies (
    id                bigint PRIMARY KEY,              -- TMDb movie id
    imdb_id           text,
    title             text NOT NULL DEFAULT '',
    original_title    text,
    original_language text,
    overview          text,
    release_date      date,
    runtime           integer,
    status            text,
    adult             boolean NOT NULL DEFAULT false,
    popularity        double precision,
    vote_average      double precision,
    vote_count        integer,
    budget            bigint,
    revenue           bigint,
    raw               jsonb NOT NULL,                  -- the whole TMDb payload, fields we do not model included
    deleted_at        timestamptz,                     -- set only on a 404 from TMDb, never on a transient error
    fetched_at        timestamptz NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX movies_imdb_id_idx ON movies (imdb_id) WHERE imdb_id IS NOT NULL;
CREATE INDEX movies_release_date_idx ON movies (release_date);
CREATE INDEX movies_fetched_at_idx ON movies (fetched_at) WHERE deleted_at IS NULL;
CREATE INDEX movies_created_at_idx ON movies (created_at);

CREATE TABLE people (
    id                   bigint PRIMARY KEY,           -- TMDb person id
    name                 text NOT NULL,
    original_name        text,
    gender               smallint,
    known_for_department text,
    popularity           double precision,
    profile_path         text,
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX people_name_idx ON people (lower(name));

CREATE TABLE credits (
    movie_id    bigint NOT NULL REFERENCES movies (id) ON DELETE CASCADE,
    credit_id   text NOT NULL,
    person_id   bigint NOT NULL REFERENCES people (id),
    kind        text NOT NULL CHECK (kind IN ('cast', 'crew')),
    character   text,
    cast_order  integer,
    department  text,
    job         text,
    PRIMARY KEY (movie_id, credit_id)
);
CREATE INDEX credits_person_idx ON credits (person_id, movie_id);

CREATE TABLE genres (
    id   integer PRIMARY KEY,
    name text NOT NULL
);

CREATE TABLE movie_genres (
    movie_id bigint NOT NULL REFERENCES movies (id) ON DELETE CASCADE,
    genre_id integer NOT NULL REFERENCES genres (id),
    PRIMARY KEY (movie_id, genre_id)
);
CREATE INDEX movie_genres_genre_idx ON movie_genres (genre_id, movie_id);

-- The catalog: every id TMDb's daily export has listed, with a stable ordinal (popularity order at
-- first sight; ids first seen later get the next ordinals). A bulk page is 20 consecutive ordinals.
CREATE TABLE catalog_ids (
    id             bigint PRIMARY KEY,
    ordinal        bigint NOT NULL UNIQUE,
    adult          boolean NOT NULL,
    original_title text,
    popularity     double precision,
    first_seen     date NOT NULL,
    last_seen      date NOT NULL
);
CREATE INDEX catalog_ids_last_seen_idx ON catalog_ids (last_seen);

CREATE TABLE catalog_exports (
    export_date   date PRIMARY KEY,
    total_ids     bigint NOT NULL,
    adult_ids     bigint NOT NULL,
    new_ids       bigint NOT NULL,
    malformed     bigint NOT NULL,
    include_adult boolean NOT NULL,
    loaded_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sync_runs (
    id              bigserial PRIMARY KEY,
    name            text UNIQUE,                       -- the SyncRun resource name under the operator
    run_type        text NOT NULL CHECK (run_type IN ('catalog', 'bulk', 'delta', 'enrich')),
    trigger         text NOT NULL DEFAULT 'manual',
    status          text NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    started_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    pages_total     integer NOT NULL DEFAULT 0,
    pages_processed integer NOT NULL DEFAULT 0,
    movies_imported integer NOT NULL DEFAULT 0,
    movies_updated  integer NOT NULL DEFAULT 0,
    movies_skipped  integer NOT NULL DEFAULT 0,
    movies_deleted  integer NOT NULL DEFAULT 0,
    errors_count    integer NOT NULL DEFAULT 0,
    message         text,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX sync_runs_type_started_idx ON sync_runs (run_type, started_at DESC);

CREATE TABLE bulk_pages (
    page            integer PRIMARY KEY,
    status          text NOT NULL CHECK (status IN ('done', 'failed')),
    run_id          bigint REFERENCES sync_runs (id) ON DELETE SET NULL,
    movies_imported integer NOT NULL DEFAULT 0,
    movies_skipped  integer NOT NULL DEFAULT 0,
    errors          integer NOT NULL DEFAULT 0,
    attempts        integer NOT NULL DEFAULT 1,
    completed_at    timestamptz NOT NULL DEFAULT now()
);

-- Delta watermark: a day is recorded only when every id the changes feed listed for it was stored,
-- marked deleted, or skipped by rule; a window with a failed id leaves it unrecorded for the next run.
CREATE TABLE delta_days (
    day          date PRIMARY KEY,
    run_id       bigint REFERENCES sync_runs (id) ON DELETE SET NULL,
    changed_ids  integer NOT NULL,
    completed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sync_errors (
    id          bigserial PRIMARY KEY,
    run_id      bigint REFERENCES sync_runs (id) ON DELETE CASCADE,
    category    text NOT NULL CHECK (category IN ('rate_limit', 'api', 'data', 'network', 'auth')),
    movie_id    bigint,
    http_status integer,
    message     text NOT NULL,
    attempts    integer NOT NULL DEFAULT 1,
    occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sync_errors_occurred_idx ON sync_errors (occurred_at);
CREATE INDEX sync_errors_run_idx ON sync_errors (run_id);

-- Per movie: when each stage was last done. A stage is pending when its done-at is null or older
-- than details_at (the movie changed since).
CREATE TABLE movie_pipeline (
    movie_id          bigint PRIMARY KEY REFERENCES movies (id) ON DELETE CASCADE,
    details_at        timestamptz NOT NULL,
    credits_changed_at timestamptz,
    omdb_at           timestamptz,
    omdb_outcome      text,
    collaborations_at timestamptz,
    pqs_at            timestamptz
);
