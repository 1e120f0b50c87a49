-- Counts per quarter-hour, in total and per value of each field histograms group by, kept by
-- triggers in the transaction that stores or deletes the event. Unfiltered histograms read
-- these instead of scanning every event. An empty `value` means the event has none (empty
-- strings are never stored as values); the totals use dimension '' and value ''.
CREATE TABLE rollups (
    dimension TEXT    NOT NULL,
    quarter   INTEGER NOT NULL,
    value     TEXT    NOT NULL,
    count     INTEGER NOT NULL,
    PRIMARY KEY (dimension, quarter, value)
) WITHOUT ROWID;

CREATE TRIGGER rollups_insert AFTER INSERT ON events BEGIN
    INSERT INTO rollups (dimension, quarter, value, count)
    SELECT d.dimension, q.quarter, d.value, 1
    FROM (SELECT CASE WHEN new.occurred_at >= 0 THEN new.occurred_at / 900000000
                      ELSE (new.occurred_at + 1) / 900000000 - 1 END AS quarter) AS q,
         (SELECT '' AS dimension, '' AS value
          UNION ALL SELECT 'kind', new.kind
          UNION ALL SELECT 'system', new.system
          UNION ALL SELECT 'author', new.author
          UNION ALL SELECT 'team', COALESCE(new.team, '')
          UNION ALL SELECT 'environment', COALESCE(new.environment, '')
          UNION ALL SELECT 'source', COALESCE(new.source, '')) AS d
    WHERE true
    ON CONFLICT (dimension, quarter, value) DO UPDATE SET count = count + 1;
END;

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
END;

-- Events stored before this migration.
INSERT INTO rollups (dimension, quarter, value, count)
    SELECT '', quarter, '', count(*) FROM (SELECT CASE WHEN occurred_at >= 0 THEN occurred_at / 900000000 ELSE (occurred_at + 1) / 900000000 - 1 END AS quarter FROM events) GROUP BY quarter;
INSERT INTO rollups (dimension, quarter, value, count)
    SELECT 'kind', quarter, value, count(*)
    FROM (SELECT CASE WHEN occurred_at >= 0 THEN occurred_at / 900000000 ELSE (occurred_at + 1) / 900000000 - 1 END AS quarter, kind AS value FROM events) GROUP BY quarter, value;
INSERT INTO rollups (dimension, quarter, value, count)
    SELECT 'system', quarter, value, count(*)
    FROM (SELECT CASE WHEN occurred_at >= 0 THEN occurred_at / 900000000 ELSE (occurred_at + 1) / 900000000 - 1 END AS quarter, system AS value FROM events) GROUP BY quarter, value;
INSERT INTO rollups (dimension, quarter, value, count)
    SELECT 'author', quarter, value, count(*)
    FROM (SELECT CASE WHEN occurred_at >= 0 THEN occurred_at / 900000000 ELSE (occurred_at + 1) / 900000000 - 1 END AS quarter, author AS value FROM events) GROUP BY quarter, value;
INSERT INTO rollups (dimension, quarter, value, count)
    SELECT 'team', quarter, value, count(*)
    FROM (SELECT CASE WHEN occurred_at >= 0 THEN occurred_at / 900000000 ELSE (occurred_at + 1) / 900000000 - 1 END AS quarter, COALESCE(team, '') AS value FROM events) GROUP BY quarter, value;
INSERT INTO rollups (dimension, quarter, value, count)
    SELECT 'environment', quarter, value, count(*)
    FROM (SELECT CASE WHEN occurred_at >= 0 THEN occurred_at / 900000000 ELSE (occurred_at + 1) / 900000000 - 1 END AS quarter, COALESCE(environment, '') AS value FROM events) GROUP BY quarter, value;
INSERT INTO rollups (dimension, quarter, value, count)
    SELECT 'source', quarter, value, count(*)
    FROM (SELECT CASE WHEN occurred_at >= 0 THEN occurred_at / 900000000 ELSE (occurred_at + 1) / 900000000 - 1 END AS quarter, COALESCE(source, '') AS value FROM events) GROUP BY quarter, value;
