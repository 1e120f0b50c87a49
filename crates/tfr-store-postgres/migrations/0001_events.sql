-- Events: one row per fact. The PostgreSQL twin of the SQLite store's 0001_events.sql: same
-- tables, same meaning, in PostgreSQL's own types. Text columns compared or sorted by the
-- store use the "C" collation: byte order, like SQLite's, so prefixes and ties sort the same
-- on both stores whatever the database's locale.
CREATE TABLE events (
    -- The stream position: allocated under the write lock, so it grows in commit order.
    seq             BIGINT      PRIMARY KEY,
    id              UUID        NOT NULL UNIQUE,
    occurred_at     TIMESTAMPTZ NOT NULL,
    ended_at        TIMESTAMPTZ,
    recorded_at     TIMESTAMPTZ NOT NULL,
    title           TEXT COLLATE "C" NOT NULL,
    system          TEXT COLLATE "C" NOT NULL,
    author          TEXT COLLATE "C" NOT NULL,
    kind            TEXT COLLATE "C" NOT NULL,
    environment     TEXT COLLATE "C",
    team            TEXT COLLATE "C",
    source          TEXT COLLATE "C",
    version         TEXT COLLATE "C",
    description     TEXT,
    tags            JSON        NOT NULL DEFAULT '[]', -- in submitted order
    links           JSON        NOT NULL DEFAULT '[]', -- [{url, title}]
    has_diff        BOOLEAN     NOT NULL DEFAULT FALSE,
    attributes      JSON,                              -- kept as submitted (json, not jsonb)
    idempotency_key TEXT COLLATE "C",
    content_digest  TEXT        NOT NULL,
    submitted_by    TEXT        NOT NULL,
    -- Full text over title, system, author, tags, version and description, built by tfr from
    -- the same tokens as the SQLite store's FTS5 index (see src/fts.rs).
    search          TSVECTOR    NOT NULL
);

-- Keyset pagination walks (occurred_at, id) in either direction.
CREATE INDEX events_by_time ON events (occurred_at, id);
CREATE INDEX events_by_system ON events (system, occurred_at, id);
CREATE INDEX events_by_author ON events (author, occurred_at, id);
CREATE INDEX events_by_kind ON events (kind, occurred_at, id);
-- Idempotency: two nodes receiving the same retried event store it once.
CREATE UNIQUE INDEX events_by_idempotency_key ON events (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_search ON events USING GIN (search);

-- One row per (tag, event), so `tag:` terms use an index.
CREATE TABLE event_tags (
    tag TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    PRIMARY KEY (tag, seq)
);
CREATE INDEX event_tags_by_event ON event_tags (seq);

-- Diffs live apart: they are large, rarely read, and kept out of the full-text index.
CREATE TABLE event_diffs (
    seq  BIGINT PRIMARY KEY REFERENCES events (seq) ON DELETE CASCADE,
    diff TEXT   NOT NULL
);

-- Counters kept in the write transaction, so /metrics never counts ten million rows:
-- `events` is how many are stored, `stream_head` the last stream position handed out.
CREATE TABLE counters (
    name  TEXT   PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('events', 0), ('stream_head', 0);
