-- The web console (docs/console.md), postgres flavour. Keep in step with
-- migrations/sqlite/0011_console.sql.

-- Mapping rules edited in the console or through the operations API, for connectors whose
-- rules are not written in usersync.toml. Every save is a new version; the newest is the
-- one in force, on every instance. `rules` is the TOML text of the mapping table, exactly as
-- saved (it is parsed and compiled like the configuration file's). Times are Unix
-- milliseconds.
CREATE TABLE connector_mappings (
    connector   TEXT NOT NULL,
    version     BIGINT NOT NULL,
    rules       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    PRIMARY KEY (connector, version)
);

-- Console sessions, shared by every instance: only the SHA-256 of the session cookie is kept.
-- The role is read from the admin token on every request (a revoked token ends its
-- sessions); `csrf` is the token every form of the session carries.
CREATE TABLE console_sessions (
    id_hash       TEXT PRIMARY KEY,
    token_name    TEXT NOT NULL,
    csrf          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL
);
CREATE INDEX console_sessions_last_seen ON console_sessions (last_seen_at);
