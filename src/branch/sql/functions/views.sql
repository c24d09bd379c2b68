-- functions/views.sql: the views of schema epoch. CREATE OR REPLACE VIEW can only
-- append columns: a view whose columns change or go needs DROP VIEW in a schema
-- step first. Applied after the other files (alphabetical order): views
-- reference their functions.
--
-- Repeatable: the current definition of each function, exactly one each. The
-- migration DO block (src/branch/migrate.c) re-applies every file of
-- functions/ whole, after the numbered schema steps, whenever their hash differs
-- from the one stored in epoch.meta ('functions_hash'). Edit in place; a change of
-- signature or of a view's columns also needs a DROP in a new schema/NNN_*.sql.

CREATE OR REPLACE VIEW epoch.tables AS
SELECT t.schema_name, t.table_name, t.pk_columns AS primary_key,
       t.tracked_at, t.tracked_by, t.delta_table, t.history_table
  FROM epoch.tracked t;

CREATE OR REPLACE VIEW epoch.branches AS
SELECT b.name, b.base_seq::text AS base, (b.head_commit COLLATE "default")::text AS head, p.name AS parent,
       b.created_at, b.created_by, b.agent_id, b.description, b.expires_at,
       CASE WHEN b.id = 0 THEN 'main'
            WHEN b.expires_at IS NOT NULL AND b.expires_at <= now() THEN 'expired'
            WHEN b.protected THEN 'protected'
            ELSE 'active' END AS status,
       s.modified_tables, s.changed_rows, s.size_bytes
  FROM epoch.branch b
  LEFT JOIN epoch.branch p ON p.id = b.parent_id
  CROSS JOIN LATERAL epoch._branch_stats(b.id) s;


-- The log, newest first.
CREATE OR REPLACE VIEW epoch.commits AS
SELECT (c.id COLLATE "default")::text AS id, left(c.id, 12) COLLATE "default" AS short_id,
       c.parents, c.branch_name AS branch, c.author, c.message, c.created_at,
       coalesce(s.tables, 0) AS tables, coalesce(s.inserted, 0) AS inserted,
       coalesce(s.updated, 0) AS updated, coalesce(s.deleted, 0) AS deleted
  FROM epoch.commit c
  LEFT JOIN LATERAL (SELECT count(*) AS tables, sum(x.inserted)::bigint AS inserted,
                            sum(x.updated)::bigint AS updated, sum(x.deleted)::bigint AS deleted
                       FROM epoch.commit_table x
                      WHERE x.commit_id = c.id AND epoch._table_shown(x.table_id)) s ON true
 ORDER BY c.ord DESC;

CREATE OR REPLACE VIEW epoch.tags AS
SELECT g.name, (g.commit_id COLLATE "default")::text AS commit, left(g.commit_id, 12) COLLATE "default" AS short_id,
       c.branch_name AS branch, g.message, g.created_at, g.created_by
  FROM epoch.tag g JOIN epoch.commit c ON c.id = g.commit_id
 ORDER BY g.name;

-- The session's branch: rows changed since its last commit, per table.
CREATE OR REPLACE VIEW epoch.status AS
SELECT * FROM epoch._status();

-- Every role reads the views (functions/access.sql).
GRANT SELECT ON epoch.tables, epoch.branches, epoch.commits, epoch.tags, epoch.status TO PUBLIC;
