-- API tokens (design §10). Only the SHA-256 of a token is stored, never the token. Names are
-- unique and never reused (a revoked token keeps its row), so an event's `submitted_by` always
-- names one token. Times are microseconds since the Unix epoch, UTC.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL UNIQUE,
    hash         TEXT    NOT NULL UNIQUE,
    scope        TEXT    NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

-- The audit log: who deleted which event, when and why, with the event's title and system so
-- the log still says what is gone. Entries are only ever added.
CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    actor    TEXT    NOT NULL,
    action   TEXT    NOT NULL,
    event_id TEXT    NOT NULL,
    title    TEXT    NOT NULL,
    system   TEXT    NOT NULL,
    reason   TEXT
);
