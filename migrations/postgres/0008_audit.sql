-- The audit trail, postgres flavour. Keep in step with migrations/sqlite/0008_audit.sql.
-- What is recorded and why the rows are chained as they are: docs/audit.md.

-- One row per acknowledged write (a SCIM write, each operation of a Bulk, an admin action),
-- inserted in the transaction of the write itself. Rows form AUDIT_CHAINS hash chains: a
-- row belongs to chain `chain` at position `chain_seq`, and `hash` is the SHA-256 of its
-- fields and `prev_hash` (the hash of the row before it in its chain, or of the anchor).
-- `seq` is the global order for listing and paging; it is not part of the hash.
-- Times are Unix milliseconds. `changes` is JSON: [{"path", "old", "new"}], passwords redacted.
CREATE TABLE audit_log (
    seq            BIGSERIAL PRIMARY KEY,
    chain          BIGINT NOT NULL,
    chain_seq      BIGINT NOT NULL,
    at             BIGINT NOT NULL,
    connector      TEXT NOT NULL,
    actor_kind     TEXT NOT NULL CHECK (actor_kind IN ('scim', 'admin', 'system')),
    actor          TEXT NOT NULL,
    operation      TEXT NOT NULL,
    resource_kind  TEXT,
    resource_id    TEXT,
    outcome        TEXT NOT NULL,
    changes        TEXT NOT NULL,
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL
);
CREATE UNIQUE INDEX audit_log_chain ON audit_log (chain, chain_seq);
CREATE INDEX audit_log_resource ON audit_log (connector, resource_id);
CREATE INDEX audit_log_at ON audit_log (at);

-- The head of each chain: the position and hash of its last row. A write takes its chain's
-- head (a row lock on PostgreSQL), so rows of one chain are appended one after the other;
-- a deleted last row shows as a head pointing past the rows.
CREATE TABLE audit_chains (
    chain      BIGINT PRIMARY KEY,
    head_seq   BIGINT NOT NULL,
    head_hash  TEXT NOT NULL
);

-- Where each chain starts after retention pruned its oldest rows: the position and hash of
-- the last pruned row. Verification starts from here.
CREATE TABLE audit_anchors (
    chain        BIGINT PRIMARY KEY,
    anchor_seq   BIGINT NOT NULL,
    anchor_hash  TEXT NOT NULL,
    pruned_at    BIGINT NOT NULL
);

-- Sixteen chains (store/audit.rs AUDIT_CHAINS), each starting from the all-zero hash.
INSERT INTO audit_chains (chain, head_seq, head_hash)
SELECT c, 0, '0000000000000000000000000000000000000000000000000000000000000000'
FROM generate_series(0, 15) AS c;

-- Rows are never changed: an UPDATE is refused (retention deletes whole prefixes of chains,
-- recording an anchor). This guards against mistakes; against someone who can drop the
-- trigger, the hash chain and `usersync audit verify` are the guard.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit rows are append-only';
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
