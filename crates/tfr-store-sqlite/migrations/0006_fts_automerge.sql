-- Merge full-text segments 8 at a time instead of FTS5's default 4. Every commit writes a new
-- segment; with 4, the incremental merges they set off rewrote each document at twice as many
-- levels and held single commits up to ~10 ms every few groups. Measured with tfr-bench at
-- 200,000 events (docs/benchmarks.md): bulk ingest +11%, 64-client single posts p99 25 -> 22 ms,
-- searches unchanged. `crisismerge` stays at its default (16), twice this, so a level is
-- always merged incrementally before it would have to be merged all at once.
INSERT INTO events_fts (events_fts, rank) VALUES ('automerge', 8);
