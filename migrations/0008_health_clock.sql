-- Sync Health on one clock, and the days a sync was paused (see docs/report.md).
--
-- TMDb's clock: the engine takes "today" from the Date header of TMDb's answers (the simulator's
-- day in tests and the demo, real time in production). Each run records how far that clock was
-- from the database's when the run closed, so the panel, the 7-day table and the 30-day history
-- put a run on TMDb's day, and "today" is the database's now() plus the latest offset seen.
-- NULL: no TMDb answer was seen (an OMDb-only run, or an older binary); the latest known offset
-- applies.
ALTER TABLE sync_runs ADD COLUMN tmdb_clock_offset_secs double precision;

-- When the operator saw the TmdbSync suspended (spec.suspend) and resumed: a day with a pause
-- shows as paused in the history. At most one pause is open.
CREATE TABLE sync_pauses (
    id         bigserial PRIMARY KEY,
    paused_at  timestamptz NOT NULL DEFAULT now(),
    resumed_at timestamptz,
    CHECK (resumed_at IS NULL OR resumed_at >= paused_at)
);
CREATE UNIQUE INDEX sync_pauses_open_idx ON sync_pauses ((resumed_at IS NULL)) WHERE resumed_at IS NULL;
