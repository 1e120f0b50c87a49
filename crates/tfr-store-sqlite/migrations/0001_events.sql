-- Events: one row per fact. Times are microseconds since the Unix epoch, UTC.
CREATE TABLE events (
    -- AUTOINCREMENT: a row number is never reused, so stream positions only grow.
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    occurred_at     INTEGER NOT NULL,
    ended_at        INTEGER,
    recorded_at     INTEGER NOT NULL,
    title           TEXT    NOT NULL,
    system          TEXT    NOT NULL,
    author          TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    environment     TEXT,
    team            TEXT,
    source          TEXT,
    version         TEXT,
    description     TEXT,
    tags            TEXT    NOT NULL DEFAULT '[]', -- JSON array, in submitted order
    tags_text       TEXT    NOT NULL DEFAULT '',   -- the tags joined by newlines, for full text
    links           TEXT    NOT NULL DEFAULT '[]', -- JSON array of {url, title}
    has_diff        INTEGER NOT NULL DEFAULT 0,
    attributes      TEXT,                          -- JSON object
    idempotency_key TEXT,
    content_digest  TEXT    NOT NULL,
    submitted_by    TEXT    NOT NULL
);

-- Keyset pagination walks (occurred_at, id) in either direction.
CREATE INDEX events_by_time ON events (occurred_at, id);
CREATE INDEX events_by_system ON events (system, occurred_at, id);
CREATE INDEX events_by_author ON events (author, occurred_at, id);
CREATE INDEX events_by_kind ON events (kind, occurred_at, id);
CREATE UNIQUE INDEX events_by_idempotency_key ON events (idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- One row per (tag, event), so `tag:` terms use an index.
CREATE TABLE event_tags (
    tag TEXT    NOT NULL,
    seq INTEGER NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    PRIMARY KEY (tag, seq)
) WITHOUT ROWID;
CREATE INDEX event_tags_by_event ON event_tags (seq);

-- Diffs live apart: they are large, rarely read, and kept out of the full-text index.
CREATE TABLE event_diffs (
    seq  INTEGER PRIMARY KEY REFERENCES events (seq) ON DELETE CASCADE,
    diff TEXT    NOT NULL
);

-- Full text over the words people search for. External content: the text is stored once, in
-- `events`; triggers keep the index in the same transaction as the row.
CREATE VIRTUAL TABLE events_fts USING fts5 (
    title, description, system, author, tags_text, version,
    content = 'events', content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER events_fts_insert AFTER INSERT ON events BEGIN
    INSERT INTO events_fts (rowid, title, description, system, author, tags_text, version)
    VALUES (new.seq, new.title, new.description, new.system, new.author, new.tags_text, new.version);
END;

CREATE TRIGGER events_fts_delete AFTER DELETE ON events BEGIN
    INSERT INTO events_fts (events_fts, rowid, title, description, system, author, tags_text, version)
    VALUES ('delete', old.seq, old.title, old.description, old.system, old.author, old.tags_text, old.version);
END;

CREATE TRIGGER events_fts_update AFTER UPDATE OF title, description, system, author, tags_text, version ON events BEGIN
    INSERT INTO events_fts (events_fts, rowid, title, description, system, author, tags_text, version)
    VALUES ('delete', old.seq, old.title, old.description, old.system, old.author, old.tags_text, old.version);
    INSERT INTO events_fts (rowid, title, description, system, author, tags_text, version)
    VALUES (new.seq, new.title, new.description, new.system, new.author, new.tags_text, new.version);
END;

-- Counters kept in the insert transaction, so /metrics never counts ten million rows.
CREATE TABLE counters (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters (name, value) VALUES ('events', 0);
