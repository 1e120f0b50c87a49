-- The full-text index moves to a file of its own, `tfr-fts.db`, built by a thread of its own
-- behind the writer (`fts.rs`): FTS5 was the largest part of every group commit. The index is
-- rebuilt there from the events when the store opens.
DROP TRIGGER IF EXISTS events_fts_delete;
DROP TRIGGER IF EXISTS events_fts_update;
DROP TABLE IF EXISTS events_fts;

-- Events whose indexed text changed (tags patched) or that were deleted after the index took
-- them: until the indexer has re-indexed them (`fts_state.stale_through` in the index file
-- reaches their mark), searches check them one by one. A later change of the same event
-- replaces its entry with a higher mark. The writer removes entries the index caught up with.
CREATE TABLE fts_stale (
    mark INTEGER PRIMARY KEY AUTOINCREMENT,
    seq  INTEGER NOT NULL UNIQUE
);

CREATE TRIGGER fts_stale_delete AFTER DELETE ON events BEGIN
    INSERT OR REPLACE INTO fts_stale (seq) VALUES (old.seq);
END;

CREATE TRIGGER fts_stale_update
AFTER UPDATE OF title, description, system, author, tags_text, version ON events
WHEN old.title IS NOT new.title OR old.description IS NOT new.description
  OR old.system IS NOT new.system OR old.author IS NOT new.author
  OR old.tags_text IS NOT new.tags_text OR old.version IS NOT new.version
BEGIN
    INSERT OR REPLACE INTO fts_stale (seq) VALUES (new.seq);
END;

-- Which database an index file was built from: a `tfr-fts.db` beside another `tfr.db` is
-- rebuilt rather than trusted.
CREATE TABLE store_identity (id TEXT NOT NULL);
INSERT INTO store_identity (id) VALUES (lower(hex(randomblob(16))));
