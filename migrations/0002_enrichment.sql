-- Enrichment (the seed's side jobs): OMDb ratings, collaborations and person quality scores.
--
-- movie_pipeline (0001) tracks each stage per movie. A stage's done-at records the version of the
-- movie it processed: omdb_at is when OMDb answered for the details it saw; collaborations_at and
-- pqs_at are the details/credits/OMDb version they were computed from. A stage is pending for a
-- movie when its done-at is null or older than that version (see src/store/pipeline.rs).

-- OMDb calls per UTC day, counted before each call (atomically), shared by every run and pod.
CREATE TABLE omdb_daily_calls (
    day   date PRIMARY KEY,
    calls integer NOT NULL
);

ALTER TABLE movie_pipeline ADD CONSTRAINT movie_pipeline_omdb_outcome_check
    CHECK (omdb_outcome IN ('found', 'not_found', 'incorrect_id', 'no_imdb_id'));
CREATE INDEX movie_pipeline_omdb_pending_idx ON movie_pipeline (movie_id)
    WHERE omdb_at IS NULL OR omdb_at < details_at;
CREATE INDEX movie_pipeline_collaborations_pending_idx ON movie_pipeline (movie_id)
    WHERE collaborations_at IS NULL OR collaborations_at < credits_changed_at;

-- OMDb's answer for a movie's imdb id: "N/A" is null, the rest parsed into typed columns.
CREATE TABLE omdb_ratings (
    movie_id          bigint PRIMARY KEY REFERENCES movies (id) ON DELETE CASCADE,
    imdb_id           text NOT NULL,
    imdb_rating       double precision,      -- 0-10
    imdb_votes        integer,
    metascore         smallint,              -- 0-100
    rotten_tomatoes   smallint,              -- Tomatometer percent
    box_office        bigint,                -- US dollars
    awards            text,                  -- the sentence as OMDb writes it
    oscar_wins        smallint,
    oscar_nominations smallint,
    award_wins        integer,               -- all wins, Oscars included
    award_nominations integer,               -- all nominations, Oscar nominations included
    raw               jsonb NOT NULL,        -- the whole body
    fetched_at        timestamptz NOT NULL DEFAULT now()
);

-- The key people (directors, writers, top-billed cast) of each movie as collaborations last counted
-- them, with the movie's release year: subtracting a movie's old pairs needs its old people.
CREATE TABLE collaboration_members (
    movie_id  bigint NOT NULL,
    person_id bigint NOT NULL,
    year      smallint,
    PRIMARY KEY (movie_id, person_id)
);
CREATE INDEX collaboration_members_person_idx ON collaboration_members (person_id, movie_id);

-- Pairs of key people who worked on the same movies (person_a < person_b).
CREATE TABLE collaborations (
    person_a      bigint NOT NULL,
    person_b      bigint NOT NULL,
    shared_movies integer NOT NULL CHECK (shared_movies > 0),
    first_year    smallint,
    last_year     smallint,
    PRIMARY KEY (person_a, person_b),
    CHECK (person_a < person_b)
);
CREATE INDEX collaborations_person_b_idx ON collaborations (person_b);

-- Person quality score (0-100) and its components (0-1); the formula is in README.md.
CREATE TABLE person_quality_scores (
    person_id   bigint PRIMARY KEY,
    score       numeric(5, 2) NOT NULL CHECK (score BETWEEN 0 AND 100),
    quality     double precision NOT NULL,
    reach       double precision NOT NULL,
    volume      double precision NOT NULL,
    recency     double precision NOT NULL,
    movie_count integer NOT NULL,
    votes       bigint NOT NULL,
    last_year   smallint,
    computed_at timestamptz NOT NULL DEFAULT now()
);

-- People whose score must be recomputed (their key movies or those movies' data changed).
CREATE TABLE pqs_pending_people (
    person_id bigint PRIMARY KEY
);
