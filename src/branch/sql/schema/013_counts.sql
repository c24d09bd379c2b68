-- Schema step 13: the per-table counts of commits (epoch.commit_table) are
-- read through epoch.commits and epoch.show(), which leave out the tables
-- the role may not read (functions/access.sql, _table_shown); no direct
-- SELECT on it any more. Written to run again harmlessly.
REVOKE SELECT ON epoch.commit_table FROM PUBLIC;
