-- Planner statistics, PostgreSQL flavour: nothing to write. PostgreSQL gathers its own
-- statistics (autovacuum's ANALYZE; docs/ARCHITECTURE.md, "Query plans"). SQLite has none
-- unless given some, so migrations/sqlite/0005_planner_stats.sql writes them; this file
-- keeps the two trees numbered alike.
SELECT 1;
