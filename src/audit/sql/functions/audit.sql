-- functions/audit.sql: the audit trail (docs/audit.md).
--
-- Repeatable, like every functions/ file. Table: schema step 012_audit.sql.
-- The operations call epoch._audit() in their own transaction, so an
-- operation rolled back leaves no row.

-- Record operation `action` by the calling role: branch (NULL: the
-- session's), details (jsonb, the operation's own keys).
CREATE OR REPLACE FUNCTION epoch._audit(action text, branch text, details jsonb) RETURNS void
LANGUAGE plpgsql AS $f$
DECLARE
    peer text := host(inet_client_addr());
    now_set text := current_setting('epoch.client_addr', true);
    reported text;
BEGIN
    -- the client's address: what epoch-proxy put in the startup packet, the
    -- value the session started with (docs/audit.md). A SET by the client
    -- changes the current value only: RESET reads the one it started with,
    -- and the client's own is put back.
    EXECUTE 'RESET epoch.client_addr';
    reported := nullif(current_setting('epoch.client_addr', true), '');
    IF coalesce(now_set, '') <> coalesce(reported, '') THEN
        PERFORM set_config('epoch.client_addr', now_set, false);
    END IF;
    INSERT INTO epoch.audit_log (username, action, branch, client_addr, peer_addr, details)
    VALUES (epoch._invoker(), action,
            coalesce(branch, nullif(current_setting('epoch.branch', true), ''), 'main'),
            coalesce(reported, peer), peer, details);
END
$f$;

-- The audit trail refuses UPDATE, DELETE and TRUNCATE from anyone.
CREATE OR REPLACE FUNCTION epoch._audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    RAISE EXCEPTION 'epoch.audit is append-only: % is refused', TG_OP USING ERRCODE = '42501',
        HINT = 'Audit rows are never changed or removed.';
END
$f$;

CREATE OR REPLACE FUNCTION epoch._audit_guard() RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
    DROP TRIGGER IF EXISTS epoch_append_only ON epoch.audit_log;
    CREATE TRIGGER epoch_append_only BEFORE UPDATE OR DELETE ON epoch.audit_log
        FOR EACH ROW EXECUTE FUNCTION epoch._audit_append_only();
    DROP TRIGGER IF EXISTS epoch_append_only_truncate ON epoch.audit_log;
    CREATE TRIGGER epoch_append_only_truncate BEFORE TRUNCATE ON epoch.audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION epoch._audit_append_only();
END
$f$;

-- Admins see every row; other roles their own.
CREATE OR REPLACE VIEW epoch.audit AS
SELECT a.id, a.at, a.username, a.action, a.branch, a.client_addr, a.peer_addr, a.details
  FROM epoch.audit_log a
 WHERE a.username = epoch._invoker() OR epoch._is_admin(epoch._invoker());

GRANT SELECT ON epoch.audit TO PUBLIC;
