-- TMDb responses per run by status class, added to by every pod of a run (for the request metrics).
CREATE TABLE run_requests (
    run_id       bigint NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    status_class text NOT NULL CHECK (status_class IN ('2xx', '404', '429', '4xx', '5xx', 'network')),
    requests     bigint NOT NULL,
    PRIMARY KEY (run_id, status_class)
);
