-- The operations API (docs/admin-api.md), sqlite flavour. Keep in step with
-- migrations/postgres/0009_admin.sql.

-- Credentials of the admin API: only the SHA-256 of a token is kept (tokens are 256-bit
-- random strings, so a fast hash suffices, as for connector tokens). A revoked token keeps
-- its row, so the audit trail's token names stay explainable. Times are Unix milliseconds.
CREATE TABLE admin_tokens (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    token_hash    TEXT NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);

-- Operator switches per connector that every instance must honour: delivery paused. A
-- connector without a row is not paused. Declared connectors have rows too (the name is not
-- a reference to the connectors table, which holds only stored connectors).
CREATE TABLE connector_controls (
    connector          TEXT PRIMARY KEY,
    delivery_paused    BIGINT NOT NULL DEFAULT 0,
    changed_at         BIGINT NOT NULL,
    changed_by         TEXT NOT NULL
);

-- The connector list shows each connector's last delivery and last failed call: both read
-- the newest attempts of one connector.
CREATE INDEX delivery_attempts_connector ON delivery_attempts (connector, started_at);

-- A resource's timeline lists the reconcile items about it.
CREATE INDEX reconcile_items_scim ON reconcile_items (scim_id);
