-- Counts per hour and per day beside the quarter-hours of migration 2, so a histogram over
-- years reads a row per day instead of ninety-six (two years by day: ~1 query on
-- `rollups_day` instead of ~325,000 quarter rows). Units are hours and days since the Unix
-- epoch in UTC, floored (instants before 1970 fall in negative units); dimensions and values
-- are those of `rollups`. All three levels are fed by `rows::index_new_events` in the
-- transaction that stores the events, and decremented by `rollups_delete`.
CREATE TABLE rollups_hour (
    dimension TEXT    NOT NULL,
    hour      INTEGER NOT NULL,
    value     TEXT    NOT NULL,
    count     INTEGER NOT NULL,
    PRIMARY KEY (dimension, hour, value)
) WITHOUT ROWID;

CREATE TABLE rollups_day (
    dimension TEXT    NOT NULL,
    day       INTEGER NOT NULL,
    value     TEXT    NOT NULL,
    count     INTEGER NOT NULL,
    PRIMARY KEY (dimension, day, value)
) WITHOUT ROWID;

-- What the quarter-hours already count: 4 quarters an hour, 96 a day (floored).
INSERT INTO rollups_hour (dimension, hour, value, count)
    SELECT dimension, CASE WHEN quarter >= 0 THEN quarter / 4 ELSE (quarter + 1) / 4 - 1 END,
           value, sum(count)
    FROM rollups GROUP BY 1, 2, 3 HAVING sum(count) > 0;
INSERT INTO rollups_day (dimension, day, value, count)
    SELECT dimension, CASE WHEN quarter >= 0 THEN quarter / 96 ELSE (quarter + 1) / 96 - 1 END,
           value, sum(count)
    FROM rollups GROUP BY 1, 2, 3 HAVING sum(count) > 0;

-- A deletion takes the event out of all three levels.
DROP TRIGGER rollups_delete;
CREATE TRIGGER rollups_delete AFTER DELETE ON events BEGIN
    UPDATE rollups SET count = count - 1
    WHERE quarter = CASE WHEN old.occurred_at >= 0 THEN old.occurred_at / 900000000
                         ELSE (old.occurred_at + 1) / 900000000 - 1 END
      AND ((dimension = '' AND value = '')
        OR (dimension = 'kind' AND value = old.kind)
        OR (dimension = 'system' AND value = old.system)
        OR (dimension = 'author' AND value = old.author)
        OR (dimension = 'team' AND value = COALESCE(old.team, ''))
        OR (dimension = 'environment' AND value = COALESCE(old.environment, ''))
        OR (dimension = 'source' AND value = COALESCE(old.source, '')));
    UPDATE rollups_hour SET count = count - 1
    WHERE hour = CASE WHEN old.occurred_at >= 0 THEN old.occurred_at / 3600000000
                      ELSE (old.occurred_at + 1) / 3600000000 - 1 END
      AND ((dimension = '' AND value = '')
        OR (dimension = 'kind' AND value = old.kind)
        OR (dimension = 'system' AND value = old.system)
        OR (dimension = 'author' AND value = old.author)
        OR (dimension = 'team' AND value = COALESCE(old.team, ''))
        OR (dimension = 'environment' AND value = COALESCE(old.environment, ''))
        OR (dimension = 'source' AND value = COALESCE(old.source, '')));
    UPDATE rollups_day SET count = count - 1
    WHERE day = CASE WHEN old.occurred_at >= 0 THEN old.occurred_at / 86400000000
                     ELSE (old.occurred_at + 1) / 86400000000 - 1 END
      AND ((dimension = '' AND value = '')
        OR (dimension = 'kind' AND value = old.kind)
        OR (dimension = 'system' AND value = old.system)
        OR (dimension = 'author' AND value = old.author)
        OR (dimension = 'team' AND value = COALESCE(old.team, ''))
        OR (dimension = 'environment' AND value = COALESCE(old.environment, ''))
        OR (dimension = 'source' AND value = COALESCE(old.source, '')));
END;
