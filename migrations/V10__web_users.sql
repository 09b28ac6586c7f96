-- pftrack schema, version 10: the web UI and API (`pftrack serve`, issue 13).
--
-- * web_user:    people and scripts that may log in; argon2id PHC password hashes;
--                role admin (everything), domain (scope: lower-case domains), self
--                (scope: lower-case addresses).
-- * web_session: server-side sessions; the cookie holds a random token, the table only
--                its SHA-256, with the session's CSRF token and expiry.
-- * web_token:   bearer tokens for scripts (SHA-256 of the token only).
-- * web_audit:   every search, message view, export and login by user.
-- * pftrack_web_read: the NOLOGIN role `pftrack serve` works as (SET ROLE on every
--                connection): SELECT on what the pages show, writes only on the web's
--                own session and audit tables. See docs/web.md.

CREATE TABLE web_user (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                 text COLLATE "C" NOT NULL UNIQUE,
    role                 text NOT NULL CHECK (role IN ('admin', 'domain', 'self')),
    -- domain: the user's domains; self: the user's addresses; lower-case; empty for admin
    scope                text[] NOT NULL DEFAULT '{}',
    password_hash        text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    password_changed_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (role = 'admin' OR cardinality(scope) > 0)
);

CREATE TABLE web_session (
    token_hash   bytea PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES web_user (id) ON DELETE CASCADE,
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    client_addr  text
);
CREATE INDEX web_session_user ON web_session (user_id);
CREATE INDEX web_session_expires_at ON web_session (expires_at);

CREATE TABLE web_token (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES web_user (id) ON DELETE CASCADE,
    name          text NOT NULL,
    token_hash    bytea NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    last_used_at  timestamptz,
    UNIQUE (user_id, name)
);

CREATE TABLE web_audit (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    user_name    text NOT NULL,
    client_addr  text,
    -- search, export, message, overview, login, login_failed, logout
    action       text NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}',
    results      integer
);
CREATE INDEX web_audit_at ON web_audit USING brin (at);
CREATE INDEX web_audit_user ON web_audit (user_name, at);

-- The grants of pftrack_web_read, in one place: run by this migration when the role
-- exists (or could be created), and by hand after creating the role later
-- (`SELECT pftrack_web_grants();` as the owner of the tables; docs/web.md).
CREATE FUNCTION pftrack_web_grants() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    GRANT SELECT ON delivery_from, delivery_to, delivery_attempt, noqueue,
                    delivery_status, message_status, failure_reasons_daily,
                    unclassified_failures, auth_failure, auth_failures_daily
        TO pftrack_web_read;
    GRANT SELECT ON web_user TO pftrack_web_read;
    GRANT SELECT, UPDATE (last_used_at) ON web_token TO pftrack_web_read;
    GRANT SELECT, INSERT, DELETE ON web_session TO pftrack_web_read;
    GRANT INSERT ON web_audit TO pftrack_web_read;
END
$$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pftrack_web_read')
       AND (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user) THEN
        BEGIN
            CREATE ROLE pftrack_web_read NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- another database's migration created it at the same moment
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pftrack_web_read') THEN
        PERFORM pftrack_web_grants();
    END IF;
END
$$;
