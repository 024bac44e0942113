-- Profiles and manager references, PostgreSQL flavour. Keep in step with
-- migrations/sqlite/0003_profiles.sql.

-- Indexed keys for manager resolution (DESIGN.md "The manager is a reference").
-- `employee_number` is the enterprise employeeNumber, trimmed, as sent: Okta and OneLogin name
-- managers by it. `manager_ref` is the user's own manager.value, trimmed and lower-cased: when
-- a user is written, the users whose manager_ref equals one of its keys (id, externalId,
-- employeeNumber, userName, lower-cased) are marked for delivery in the same transaction, so
-- a manager who arrives after their reports resolves without waiting for the IdP.
ALTER TABLE resources ADD COLUMN employee_number TEXT;
ALTER TABLE resources ADD COLUMN manager_ref TEXT;
UPDATE resources SET
    employee_number = NULLIF(TRIM(doc::jsonb
        -> 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User' ->> 'employeeNumber'), ''),
    manager_ref = NULLIF(LOWER(TRIM(doc::jsonb
        -> 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User' -> 'manager' ->> 'value')), '')
WHERE kind = 'User';
CREATE INDEX resources_employee_number ON resources (connector, kind, employee_number);
CREATE INDEX resources_manager_ref ON resources (connector, manager_ref);
-- The Linchpin feed's ETag reads MAX(updated_at) per connector on every poll.
CREATE INDEX resources_updated ON resources (connector, kind, updated_at);
-- The feed (and any chunked scan) pages a connector's users by `seq > cursor ORDER BY seq`:
-- without this index SQLite sorts all of the connector's users for every page.
CREATE INDEX resources_scan ON resources (connector, kind, seq);
-- Links count for the ETag by creation: delivery re-saves a link (and its updated_at) on
-- every convergence, but only a new link changes the username the feed prints.
CREATE INDEX identity_links_created ON identity_links (connector, created_at);

-- What each profile target last received for a user, as a digest of the payload: delivery
-- compares it with the digest of the current profile and sends nothing when they match
-- (state-based delivery: an unchanged profile makes no call). One row per user and target
-- (`webhook` today); removed when the target has been told the user is gone.
CREATE TABLE target_state (
    connector     TEXT NOT NULL,
    scim_id       TEXT NOT NULL,
    target        TEXT NOT NULL,
    digest        TEXT NOT NULL,
    delivered_at  BIGINT NOT NULL,
    PRIMARY KEY (connector, scim_id, target)
);
