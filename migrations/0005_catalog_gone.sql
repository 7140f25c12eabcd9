-- Ids TMDb answers 404 for (deleted movies, ids the export lists but the API does not serve), keyed by
-- TMDb id whether or not a movies row exists. An id counts as gone while it has a row here and no
-- live movie; it is re-checked on a slow schedule (last_checked) so one that comes back is imported.
CREATE TABLE catalog_gone (
    id           bigint PRIMARY KEY,
    first_gone   timestamptz NOT NULL DEFAULT now(),
    last_checked timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX catalog_gone_last_checked_idx ON catalog_gone (last_checked);

-- Movies marked deleted before this table existed are gone since then.
INSERT INTO catalog_gone (id, first_gone, last_checked)
SELECT id, deleted_at, deleted_at FROM movies WHERE deleted_at IS NOT NULL
ON CONFLICT (id) DO NOTHING;
