-- The range of `occurred_at` in each block of 4,096 row numbers (`seq >> 12`). Row numbers
-- follow the order of storage, which is nearly the order of time: events are mostly posted as
-- they happen, and imports replay histories oldest first. A newest-first page filtered by
-- words walks the matches from the highest row number down and stops as soon as no block
-- below can hold an event newer than the page's last one (`text_walk` in the store), so it
-- reads about a page of matches however common the words are. Kept by
-- `rows::index_new_events` in the transaction that stores the events. Deletions leave the
-- ranges as they are: a range that is too wide is still a true bound.
CREATE TABLE seq_blocks (
    block           INTEGER PRIMARY KEY,
    min_occurred_at INTEGER NOT NULL,
    max_occurred_at INTEGER NOT NULL
);

INSERT INTO seq_blocks (block, min_occurred_at, max_occurred_at)
    SELECT seq >> 12, min(occurred_at), max(occurred_at) FROM events GROUP BY seq >> 12;
