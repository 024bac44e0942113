-- Reconcile (full sync against Confluence), SQLite flavour. Keep in step with
-- migrations/postgres/0006_reconcile.sql.

-- One row per run: `usersync reconcile`, the `[reconcile] every` schedule, later the admin
-- API. Kept for `reconcile.retention`. A dry run is recorded too: its own record is all a dry
-- run writes (docs/delivery.md, Reconcile). `mode` is 'dry_run' or 'real'; `forced` is 1 when
-- the safety guard was overridden. `summary` is JSON (accounts read, counts per class, the
-- guard's numbers); `error` says why a run failed or stopped.
CREATE TABLE reconcile_runs (
    id           TEXT PRIMARY KEY,
    connector    TEXT NOT NULL,
    started_at   INTEGER NOT NULL,
    ended_at     INTEGER,
    started_by   TEXT NOT NULL,
    mode         TEXT NOT NULL CHECK (mode IN ('dry_run', 'real')),
    forced       INTEGER NOT NULL,
    status       TEXT NOT NULL,
    summary      TEXT,
    error        TEXT
);
CREATE INDEX reconcile_runs_started ON reconcile_runs (connector, started_at);
CREATE INDEX reconcile_runs_age ON reconcile_runs (started_at);

-- Every difference a run found, with what it did about it. Usernames are personal data:
-- they are kept here (as in identity_links and the queue) and never logged.
CREATE TABLE reconcile_items (
    run_id     TEXT NOT NULL REFERENCES reconcile_runs (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    class      TEXT NOT NULL,
    username   TEXT NOT NULL,
    scim_id    TEXT,
    action     TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    detail     TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- One run at a time per connector, also across instances sharing a database: a run holds
-- its connector's row until it ends, renewing `expires_at` while it works; a holder that died
-- leaves the row to expire.
CREATE TABLE reconcile_leases (
    connector    TEXT PRIMARY KEY,
    holder       TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    expires_at   INTEGER NOT NULL
);
