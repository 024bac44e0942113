-- usersync schema, PostgreSQL flavour. Keep in step with migrations/sqlite/0001_init.sql:
-- same tables, same columns, same numbering. Never edit an applied migration.
-- Times are Unix milliseconds (INTEGER) so both backends compare them the same way.

-- An IdP connection created with `usersync connector create`. Connectors declared in the
-- configuration file are not stored here; their tokens live only in memory, hashed.
CREATE TABLE connectors (
    name        TEXT PRIMARY KEY,
    created_at  BIGINT NOT NULL
);

-- Bearer tokens of stored connectors. Only the SHA-256 of a token is kept (tokens are 256-bit
-- random strings, so a fast hash suffices). `expires_at` is set on the old token when a
-- token is rotated, to give the IdP a grace period; NULL means it never expires.
CREATE TABLE connector_tokens (
    id          BIGSERIAL PRIMARY KEY,
    connector   TEXT NOT NULL REFERENCES connectors (name) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT
);

-- SCIM resources (Users and Groups) of every connector: the accepted document plus the
-- columns that filters and uniqueness need. `seq` gives lists a stable order.
-- `name` is userName (Users) or displayName (Groups) as sent; `name_lower` is the same value
-- lower-cased by usersync with Unicode rules, and its unique index makes the
-- case-insensitive uniqueness of RFC 7643 §4.1 race-free (30 concurrent identical POSTs
-- yield exactly one row).
CREATE TABLE resources (
    seq          BIGSERIAL PRIMARY KEY,
    connector    TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('User', 'Group')),
    id           TEXT NOT NULL,
    name         TEXT NOT NULL,
    name_lower   TEXT NOT NULL,
    external_id  TEXT,
    active       BOOLEAN,
    doc          TEXT NOT NULL,
    version      BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE UNIQUE INDEX resources_id ON resources (connector, kind, id);
CREATE UNIQUE INDEX resources_name ON resources (connector, kind, name_lower);
CREATE INDEX resources_external_id ON resources (connector, kind, external_id);
CREATE INDEX resources_active ON resources (connector, kind, active);

-- emails.value of Users, lower-cased, for `emails eq` / `emails[value eq …]` filters.
CREATE TABLE resource_emails (
    connector    TEXT NOT NULL,
    resource_id  TEXT NOT NULL,
    value_lower  TEXT NOT NULL,
    PRIMARY KEY (connector, resource_id, value_lower)
);
CREATE INDEX resource_emails_value ON resource_emails (connector, value_lower);

-- Group membership as rows, not a JSON array: a group with 100k members is patched without
-- rewriting a blob. `display` is what the IdP sent, echoed back verbatim.
CREATE TABLE group_members (
    connector    TEXT NOT NULL,
    group_id     TEXT NOT NULL,
    member_id    TEXT NOT NULL,
    member_kind  TEXT NOT NULL CHECK (member_kind IN ('User', 'Group')),
    display      TEXT,
    PRIMARY KEY (connector, group_id, member_id)
);
CREATE INDEX group_members_member ON group_members (connector, member_id);

-- The sync queue: keys of resources whose current state has not yet reached the targets.
-- It holds keys, not payloads (state-based delivery, DESIGN.md). Every write marks its key
-- in the same transaction. `generation` is bumped on each mark, so a worker that converged
-- generation N does not clear a mark N+1 that arrived meanwhile. A row whose retries are
-- exhausted becomes 'dead': kept, visible, retryable, never deleted automatically.
CREATE TABLE sync_queue (
    connector        TEXT NOT NULL,
    kind             TEXT NOT NULL,
    resource_id      TEXT NOT NULL,
    generation       BIGINT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'dead')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    lease_until      BIGINT,
    last_error       TEXT,
    enqueued_at      BIGINT NOT NULL,
    PRIMARY KEY (connector, kind, resource_id)
);
CREATE INDEX sync_queue_due ON sync_queue (state, next_attempt_at);
