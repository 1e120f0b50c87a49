-- Index new events in bulk instead of row by row. The full-text index and the rollups were fed
-- by AFTER INSERT triggers; inside the writer's savepoints FTS5 flushed its pending terms to a
-- new segment on every statement, and the rollups took seven upserts per event. The writer now
-- indexes the events a group stored with one statement for each, in the group's transaction
-- (`rows::index_new_events`), before anything can patch or delete them and before the commit.
-- The update and delete triggers stay.
DROP TRIGGER IF EXISTS events_fts_insert;
DROP TRIGGER IF EXISTS rollups_insert;
