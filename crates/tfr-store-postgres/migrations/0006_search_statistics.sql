-- Finer statistics of the full-text column, so the planner tells rare words from common ones.
-- With the default statistics target (100), ANALYZE keeps the ~1,000 most common lexemes and
-- takes every other word to be half as frequent as the least common of those: at 1,000,000
-- events a word in 200 events was estimated in 5,000, and newest-first pages of rare words
-- walked the time index filtering every event (1.4 s for `segfault`; a word in no event at
-- all read the whole table, over 30 s) instead of reading the matches from the GIN index and
-- sorting them (2-14 ms). With 1,000 the list holds ~10,000 lexemes and rare words are
-- estimated rare. (The SQLite store's migration 6 tunes its own full-text index.)
ALTER TABLE events ALTER COLUMN search SET STATISTICS 1000;
