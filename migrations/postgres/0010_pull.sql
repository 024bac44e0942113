-- Pull connectors (docs/pull.md), postgres flavour. Keep in step with
-- migrations/sqlite/0010_pull.sql. Times are Unix milliseconds.

-- Where the next incremental run of a pull connector starts: Graph's deltaLink, a timestamp,
-- a cursor. Written only after a fully successful run (never by a dry run), so a failed run
-- starts again from the same place.
CREATE TABLE pull_checkpoints (
    connector     TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    checkpoint    TEXT NOT NULL,
    full_at       BIGINT,
    updated_at    BIGINT NOT NULL
);

-- One row per run (not for dry runs, which write nothing): what it read and changed.
CREATE TABLE pull_runs (
    id            TEXT PRIMARY KEY,
    connector     TEXT NOT NULL,
    kind          TEXT NOT NULL,
    mode          TEXT NOT NULL CHECK (mode IN ('full', 'incremental')),
    started_by    TEXT NOT NULL,
    forced        BIGINT NOT NULL DEFAULT 0,
    started_at    BIGINT NOT NULL,
    ended_at      BIGINT,
    status        TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'stopped')),
    read_users    BIGINT NOT NULL DEFAULT 0,
    created       BIGINT NOT NULL DEFAULT 0,
    updated       BIGINT NOT NULL DEFAULT 0,
    deleted       BIGINT NOT NULL DEFAULT 0,
    unchanged     BIGINT NOT NULL DEFAULT 0,
    error         TEXT
);
CREATE INDEX pull_runs_connector ON pull_runs (connector, started_at);

-- The users a run changed, by SCIM id (which for pulled users is the IdP's id).
CREATE TABLE pull_changes (
    run_id        TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    scim_id       TEXT NOT NULL,
    change        TEXT NOT NULL CHECK (change IN ('created', 'updated', 'deleted')),
    PRIMARY KEY (run_id, seq)
);
