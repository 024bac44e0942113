-- Delivery state, SQLite flavour. Keep in step with migrations/postgres/0002_delivery.sql.

-- Identity links: which Confluence account (or group) a SCIM resource is. The Confluence
-- username is derived once by the connector's rule and then persisted here, never
-- recomputed silently (DESIGN.md "Identity links are explicit"). `applied` is the last state
-- usersync applied to Confluence (JSON), which delivery compares with the desired state to
-- make only the calls needed. status: 'active' (linked), 'conflict' (the name belongs to an
-- account usersync refused to adopt), 'removed' (deleted in Confluence).
CREATE TABLE identity_links (
    connector    TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('User', 'Group')),
    scim_id      TEXT NOT NULL,
    target_name  TEXT NOT NULL,
    target_key   TEXT,
    status       TEXT NOT NULL CHECK (status IN ('active', 'conflict', 'removed')),
    applied      TEXT,
    note         TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (connector, kind, scim_id)
);
-- One live link per Confluence name, across connectors: two IdP connections can never both
-- drive the same Confluence account.
CREATE UNIQUE INDEX identity_links_target ON identity_links (kind, target_name) WHERE status = 'active';

-- Every call delivery made, kept for the admin view and incident debugging and expired by
-- age (delivery.attempt_retention). Never holds request bodies or credentials; `response` is
-- the first 2 KiB of the answer.
CREATE TABLE delivery_attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    connector    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    resource_id  TEXT NOT NULL,
    generation   INTEGER NOT NULL,
    target       TEXT NOT NULL,
    started_at   INTEGER NOT NULL,
    duration_ms  INTEGER NOT NULL,
    call         TEXT NOT NULL,
    status       INTEGER,
    error_class  TEXT,
    response     TEXT
);
CREATE INDEX delivery_attempts_key ON delivery_attempts (connector, kind, resource_id, id);
CREATE INDEX delivery_attempts_started ON delivery_attempts (started_at);
