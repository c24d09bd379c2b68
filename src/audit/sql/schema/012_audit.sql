-- Schema step 12: the audit trail (docs/audit.md): one row per operation on
-- branches, commits, merges, tags, tracking, gc and the HWM store, written
-- in the operation's transaction. Written to run again harmlessly (tests
-- re-run the last step).
CREATE TABLE IF NOT EXISTS epoch.audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    username    text NOT NULL,
    action      text NOT NULL,
    branch      text,              -- the branch acted on, else the session's
    client_addr text,              -- the client's address: as epoch-proxy reported it, else peer_addr
    peer_addr   text,              -- the address PostgreSQL saw the session come from
    details     jsonb
);
CREATE INDEX IF NOT EXISTS audit_log_at ON epoch.audit_log (at);
REVOKE ALL ON epoch.audit_log FROM PUBLIC;

-- epoch:after-functions
-- append-only (functions/audit.sql)
PERFORM epoch._audit_guard();
