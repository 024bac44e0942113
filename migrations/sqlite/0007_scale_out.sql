-- Several instances on one database, sqlite flavour. Keep in step with
-- migrations/postgres/0007_scale_out.sql.

-- The claim that holds a queue key now: a token fresh for every claim. Renewing the lease
-- (the holder's heartbeat) and finishing the key (complete, retry, defer, bury) match it, so
-- an instance that stalled past its lease, while another instance claimed the key, can
-- neither extend nor finish a claim that is no longer its own (docs/delivery.md, "Several
-- instances"). NULL when the key is not claimed.
ALTER TABLE sync_queue ADD COLUMN claim_token TEXT;

-- Named leases for work that must run on one instance at a time (scheduled jobs): the holder
-- renews its lease while it works; a crashed holder's lease lapses at expires_at (ms since
-- the epoch) and another instance takes it over.
CREATE TABLE leases (
    name         TEXT PRIMARY KEY,
    holder       TEXT NOT NULL,
    expires_at   INTEGER NOT NULL
);
