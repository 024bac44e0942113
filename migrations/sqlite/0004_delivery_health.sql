-- Target health and priority in the sync queue, SQLite flavour. Keep in step with
-- migrations/postgres/0004_delivery_health.sql.

-- Claim order: 0 = deprovisioning (a user made inactive, a user or group deleted), 1 = the
-- rest. Deactivations and deletions are claimed ahead of other work (docs/delivery.md,
-- Priority). A key keeps the most urgent priority it was marked with until it is delivered.
ALTER TABLE sync_queue ADD COLUMN priority INTEGER NOT NULL DEFAULT 1;
-- The target (`confluence`, `webhook/CONNECTOR`) a key is waiting for because it was paused
-- (rate limited, down, refusing credentials); NULL when the key waits for nothing. Such a key
-- has not spent a retry; it is claimed again when the target answers (docs/delivery.md,
-- Target health). A new mark clears it.
ALTER TABLE sync_queue ADD COLUMN waiting_on TEXT;

DROP INDEX sync_queue_due;
CREATE INDEX sync_queue_claim ON sync_queue (state, priority, next_attempt_at);
CREATE INDEX sync_queue_waiting ON sync_queue (waiting_on) WHERE waiting_on IS NOT NULL;
