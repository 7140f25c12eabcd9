-- Run liveness and one writer per stage (see docs/faults.md).
--
-- A running run is kept alive by the processes working for it: each one pushes `alive_until` a
-- lease ahead every quarter lease (`heartbeat_at` is the last push). A run whose lease ran out is
-- dead: every reader shows it failed, and the next run that opens records it failed. After the
-- server (re)starts, a run gets one more lease to reconnect and prove it is alive, so a
-- fail-over longer than a lease does not kill a live run.
ALTER TABLE sync_runs
    ADD COLUMN heartbeat_at timestamptz,
    ADD COLUMN alive_until  timestamptz,
    -- Who opened it last: `host pid N #nonce` (shown when another run waits for it).
    ADD COLUMN owner        text;

CREATE INDEX sync_runs_running_idx ON sync_runs (run_type) WHERE status = 'running';

-- Whether a row still marked `running` belongs to no live process. Rows of older binaries (no
-- heartbeat) are never declared dead here.
CREATE FUNCTION run_is_dead(status text, heartbeat_at timestamptz, alive_until timestamptz)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT status = 'running' AND alive_until IS NOT NULL AND alive_until < now()
       AND pg_postmaster_start_time() + (alive_until - heartbeat_at) < now()
$$;

-- Writes applied exactly once: a transaction that records its token here and commits is not
-- applied again when a lost connection hid its commit and the writer retries it.
CREATE TABLE applied_writes (
    run_id     bigint NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    token      bigint NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, token)
);
CREATE INDEX applied_writes_applied_idx ON applied_writes (applied_at);
