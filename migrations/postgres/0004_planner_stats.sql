-- Planner statistics, PostgreSQL flavour: nothing to write. PostgreSQL gathers its own
-- statistics (autovacuum's ANALYZE) and, for the statements whose text is built at run
-- time, plans each execution afresh (store.rs, `dynamic`). SQLite has no statistics unless
-- given some, so migrations/sqlite/0004_planner_stats.sql writes them; this file keeps the
-- two trees numbered alike.
SELECT 1;
