-- pftrack schema, version 9: SASL authentication failures (issue 14).
--
-- One row per failure smtpd logged (`warning: host[addr]: SASL LOGIN authentication
-- failed: reason[, sasl_username=user]`, or `… authentication aborted`). Identical
-- failures in the same instant are numbered (`occurrence`, 1 for the first), and the
-- key holds the number, so the same line read again (a re-run, a resume, a second input
-- with the same lines) inserts nothing: rows are written with ON CONFLICT DO NOTHING.
-- Country and AS come from the GeoIP databases of the configuration *when the row was
-- first stored* and are never rewritten.
CREATE TABLE auth_failure (
    host            text        COLLATE "C" NOT NULL,
    logged_at       timestamptz NOT NULL,
    -- stable 64-bit hash of the logged fields (service .. aborted; not the GeoIP ones)
    fingerprint     bigint      NOT NULL,
    occurrence      integer     NOT NULL,
    -- syslog identifier of the smtpd: postfix/submission/smtpd
    service         text        NOT NULL,
    -- as logged: `unknown` when the address has no (matching) reverse DNS name
    client_name     text        NOT NULL,
    client_addr     text        COLLATE "C" NOT NULL,
    client_port     integer,
    reverse_dns     boolean     NOT NULL,
    sasl_method     text        NOT NULL,
    sasl_username   text,
    -- the SASL server's reason; '' when none was logged
    reason          text        NOT NULL,
    aborted         boolean     NOT NULL,
    -- ISO 3166-1 alpha-2, autonomous system number and organisation at load time
    country         text,
    asn             bigint,
    as_org          text,
    PRIMARY KEY (host, logged_at, fingerprint, occurrence)
);

CREATE INDEX auth_failure_logged_at ON auth_failure USING brin (logged_at);
CREATE INDEX auth_failure_client_addr ON auth_failure (client_addr, logged_at);
CREATE INDEX auth_failure_utc_day ON auth_failure (utc_day(logged_at));

-- Per UTC day, host, client address (with its country and AS as stored) and SASL
-- method: failures, distinct usernames tried, when first and last, the client name
-- and one username as examples. The web UI's and the report's source.
CREATE VIEW auth_failures_daily AS
SELECT
    utc_day(a.logged_at) AS day,
    a.host,
    a.client_addr,
    a.country,
    a.asn,
    a.as_org,
    a.sasl_method,
    count(*) AS failures,
    count(*) FILTER (WHERE a.aborted) AS aborted,
    count(DISTINCT a.sasl_username) AS usernames,
    min(a.logged_at) AS first_at,
    max(a.logged_at) AS last_at,
    bool_or(a.reverse_dns) AS reverse_dns,
    min(a.client_name) AS client_name,
    min(a.sasl_username) AS example_username
FROM auth_failure a
GROUP BY 1, 2, 3, 4, 5, 6, 7;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pftrack_reader') THEN
        GRANT SELECT ON auth_failure, auth_failures_daily TO pftrack_reader;
    END IF;
END
$$;
