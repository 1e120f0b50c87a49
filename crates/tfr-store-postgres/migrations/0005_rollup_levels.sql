-- Counts per hour and per day beside the quarter-hours of migration 2 (the twin of the SQLite
-- store's 0005_rollup_levels.sql), so a histogram over years reads a row per day instead of
-- ninety-six: two years by day and kind is one range of `rollups_day`, a few thousand rows,
-- instead of ~325,000 quarter rows. Units are hours and days since the Unix epoch in UTC,
-- floored (instants before 1970 fall in negative units); dimensions and values are those of
-- `rollups`. The statement-level triggers of migration 2 now keep all three levels.

-- No event is stored or deleted by another node until the triggers below count it.
LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE rollups_hour (
    dimension TEXT COLLATE "C" NOT NULL,
    hour      BIGINT NOT NULL,
    value     TEXT COLLATE "C" NOT NULL,
    count     BIGINT NOT NULL,
    PRIMARY KEY (dimension, hour, value)
);

CREATE TABLE rollups_day (
    dimension TEXT COLLATE "C" NOT NULL,
    day       BIGINT NOT NULL,
    value     TEXT COLLATE "C" NOT NULL,
    count     BIGINT NOT NULL,
    PRIMARY KEY (dimension, day, value)
);

-- Microseconds since the epoch, exact (`extract` gives seconds as a numeric with six
-- decimals), computed once per event; the units then take integer floor divisions, cheaper
-- than the numeric division of `tfr_quarter` three times over.
CREATE FUNCTION tfr_micros(at TIMESTAMPTZ) RETURNS BIGINT
    LANGUAGE sql IMMUTABLE STRICT
    AS $$ SELECT (extract(epoch FROM at) * 1000000)::bigint $$;

-- Not STRICT: PostgreSQL inlines a SQL function into the query only if its body is as strict
-- as it is declared, and CASE is not (NULL in gives NULL out all the same).
CREATE FUNCTION tfr_floor_div(a BIGINT, b BIGINT) RETURNS BIGINT
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT CASE WHEN a >= 0 THEN a / b ELSE (a + 1) / b - 1 END $$;

-- What the quarter-hours already count: 4 quarters an hour, 96 a day.
INSERT INTO rollups_hour (dimension, hour, value, count)
    SELECT dimension, tfr_floor_div(quarter, 4), value, sum(count)
    FROM rollups GROUP BY 1, 2, 3 HAVING sum(count) > 0;
INSERT INTO rollups_day (dimension, day, value, count)
    SELECT dimension, tfr_floor_div(quarter, 96), value, sum(count)
    FROM rollups GROUP BY 1, 2, 3 HAVING sum(count) > 0;

CREATE OR REPLACE FUNCTION tfr_rollups_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH added AS (
        SELECT n.at, d.dimension, d.value
        FROM (SELECT tfr_micros(occurred_at) AS at, kind, system, author, team, environment,
                     source
              FROM new_rows) AS n
        CROSS JOIN LATERAL (VALUES
            ('', ''),
            ('kind', n.kind),
            ('system', n.system),
            ('author', n.author),
            ('team', COALESCE(n.team, '')),
            ('environment', COALESCE(n.environment, '')),
            ('source', COALESCE(n.source, ''))
        ) AS d (dimension, value)
    ), quarters AS (
        INSERT INTO rollups (dimension, quarter, value, count)
        SELECT dimension, tfr_floor_div(at, 900000000), value, count(*) FROM added
        GROUP BY 1, 2, 3
        ON CONFLICT (dimension, quarter, value) DO UPDATE SET count = rollups.count + excluded.count
    ), hours AS (
        INSERT INTO rollups_hour (dimension, hour, value, count)
        SELECT dimension, tfr_floor_div(at, 3600000000), value, count(*) FROM added
        GROUP BY 1, 2, 3
        ON CONFLICT (dimension, hour, value) DO UPDATE SET count = rollups_hour.count + excluded.count
    )
    INSERT INTO rollups_day (dimension, day, value, count)
    SELECT dimension, tfr_floor_div(at, 86400000000), value, count(*) FROM added
    GROUP BY 1, 2, 3
    ON CONFLICT (dimension, day, value) DO UPDATE SET count = rollups_day.count + excluded.count;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION tfr_rollups_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH gone AS (
        SELECT o.at, d.dimension, d.value
        FROM (SELECT tfr_micros(occurred_at) AS at, kind, system, author, team, environment,
                     source
              FROM old_rows) AS o
        CROSS JOIN LATERAL (VALUES
            ('', ''),
            ('kind', o.kind),
            ('system', o.system),
            ('author', o.author),
            ('team', COALESCE(o.team, '')),
            ('environment', COALESCE(o.environment, '')),
            ('source', COALESCE(o.source, ''))
        ) AS d (dimension, value)
    ), quarters AS (
        UPDATE rollups r SET count = r.count - g.count
        FROM (SELECT dimension, tfr_floor_div(at, 900000000) AS unit, value, count(*) AS count
              FROM gone GROUP BY 1, 2, 3) AS g
        WHERE r.dimension = g.dimension AND r.quarter = g.unit AND r.value = g.value
    ), hours AS (
        UPDATE rollups_hour r SET count = r.count - g.count
        FROM (SELECT dimension, tfr_floor_div(at, 3600000000) AS unit, value, count(*) AS count
              FROM gone GROUP BY 1, 2, 3) AS g
        WHERE r.dimension = g.dimension AND r.hour = g.unit AND r.value = g.value
    )
    UPDATE rollups_day r SET count = r.count - g.count
    FROM (SELECT dimension, tfr_floor_div(at, 86400000000) AS unit, value, count(*) AS count
          FROM gone GROUP BY 1, 2, 3) AS g
    WHERE r.dimension = g.dimension AND r.day = g.unit AND r.value = g.value;
    RETURN NULL;
END;
$$;
