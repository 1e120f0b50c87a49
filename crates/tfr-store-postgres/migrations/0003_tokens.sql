-- API tokens (design §10): the PostgreSQL twin of the SQLite store's 0003_tokens.sql. Only the
-- SHA-256 of a token is stored, never the token. Names are unique and never reused (a revoked
-- token keeps its row), so an event's `submitted_by` always names one token.
CREATE TABLE api_tokens (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         TEXT COLLATE "C" NOT NULL UNIQUE,
    hash         TEXT        NOT NULL UNIQUE,
    scope        TEXT        NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);

-- The audit log: who deleted which event, when and why, with the event's title and system so
-- the log still says what is gone. Entries are only ever added.
CREATE TABLE audit_log (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       TIMESTAMPTZ NOT NULL,
    actor    TEXT        NOT NULL,
    action   TEXT        NOT NULL,
    event_id UUID        NOT NULL,
    title    TEXT        NOT NULL,
    system   TEXT        NOT NULL,
    reason   TEXT
);
