-- Data warnings: per run, how many stored records carried an oddity (a value of the wrong type or
-- out of its column's range, stored as null; a body repaired for Postgres: U+0000 removed, a lone
-- surrogate replaced). The raw payload keeps what TMDb sent; the warning only says it was odd.
ALTER TABLE sync_runs ADD COLUMN data_warnings integer NOT NULL DEFAULT 0;
