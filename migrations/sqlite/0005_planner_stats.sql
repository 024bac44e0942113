-- Planner statistics, SQLite flavour. See migrations/postgres/0005_planner_stats.sql.
--
-- Without statistics SQLite assumes that an equality on an index's first column leaves
-- about ten rows. Here the first column is nearly always `connector`, which leaves all of
-- a connector's rows, so the planner preferred "every row of the connector" over a lookup:
-- a user's groups, a user's deletion and an e-mail filter each read every membership or
-- resource of the connector, and an `IN (…)` list of ids lost to a connector scan as soon
-- as it was longer than a few ids.
--
-- These rows describe a large directory instead (100,000 resources in one connector, five
-- groups per user, ids unique), in the format ANALYZE writes: the rows of the table, then
-- the average rows per distinct value of the first column, the first two columns, ...
-- The planner only weighs them against each other, so they need not match the data; they
-- make every lookup by a whole key cheaper than a scan of a connector, which it is at any
-- size. Rows that a real ANALYZE wrote are kept. `store/tests/plans.rs` checks the plans.
ANALYZE sqlite_schema;
INSERT INTO sqlite_stat1 (tbl, idx, stat)
SELECT v.column1, v.column2, v.column3 FROM (VALUES
    ('resources', 'resources_id', '100000 100000 50000 1'),
    ('resources', 'resources_name', '100000 100000 50000 1'),
    ('resources', 'resources_external_id', '100000 100000 50000 2'),
    ('resources', 'resources_active', '100000 100000 50000 25000'),
    ('resources', 'resources_employee_number', '100000 100000 50000 2'),
    ('resources', 'resources_manager_ref', '100000 100000 10'),
    ('resources', 'resources_updated', '100000 100000 50000 2'),
    ('resources', 'resources_scan', '100000 100000 50000 1'),
    ('resource_emails', 'sqlite_autoindex_resource_emails_1', '100000 100000 2 1'),
    ('resource_emails', 'resource_emails_value', '100000 100000 1'),
    ('group_members', 'sqlite_autoindex_group_members_1', '500000 500000 100 1'),
    ('group_members', 'group_members_member', '500000 500000 5'),
    ('identity_links', 'sqlite_autoindex_identity_links_1', '100000 100000 50000 1'),
    ('identity_links', 'identity_links_target', '100000 50000 1'),
    ('identity_links', 'identity_links_created', '100000 100000 2')
) AS v
WHERE NOT EXISTS (SELECT 1 FROM sqlite_stat1 s WHERE s.tbl = v.column1 AND s.idx = v.column2);
-- Loads the rows into this connection's planner; other connections read them when they
-- next load the schema.
ANALYZE sqlite_schema;
