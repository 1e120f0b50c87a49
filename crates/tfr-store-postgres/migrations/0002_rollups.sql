-- Counts per quarter-hour, in total and per value of each field histograms group by: the
-- PostgreSQL twin of the SQLite store's 0002_rollups.sql. Kept by statement-level triggers in
-- the transaction that stores or deletes events (one upsert per statement, however many rows
-- it wrote). Unfiltered histograms read these instead of scanning every event. An empty
-- `value` means the event has none (empty strings are never stored as values); the totals use
-- dimension '' and value ''.
CREATE TABLE rollups (
    dimension TEXT COLLATE "C" NOT NULL,
    quarter   BIGINT NOT NULL,
    value     TEXT COLLATE "C" NOT NULL,
    count     BIGINT NOT NULL,
    PRIMARY KEY (dimension, quarter, value)
);

-- The quarter-hour an instant falls in: floor division, so instants before 1970 work too.
CREATE FUNCTION tfr_quarter(at TIMESTAMPTZ) RETURNS BIGINT
    LANGUAGE sql IMMUTABLE STRICT
    AS $$ SELECT floor(extract(epoch FROM at) * 1000000 / 900000000)::bigint $$;

CREATE FUNCTION tfr_rollups_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollups (dimension, quarter, value, count)
    SELECT d.dimension, tfr_quarter(n.occurred_at), d.value, count(*)
    FROM new_rows n
    CROSS JOIN LATERAL (VALUES
        ('', ''),
        ('kind', n.kind),
        ('system', n.system),
        ('author', n.author),
        ('team', COALESCE(n.team, '')),
        ('environment', COALESCE(n.environment, '')),
        ('source', COALESCE(n.source, ''))
    ) AS d (dimension, value)
    GROUP BY 1, 2, 3
    ON CONFLICT (dimension, quarter, value) DO UPDATE SET count = rollups.count + excluded.count;
    RETURN NULL;
END;
$$;

CREATE FUNCTION tfr_rollups_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE rollups r SET count = r.count - gone.count
    FROM (
        SELECT d.dimension, tfr_quarter(o.occurred_at) AS quarter, d.value, count(*) AS count
        FROM old_rows o
        CROSS JOIN LATERAL (VALUES
            ('', ''),
            ('kind', o.kind),
            ('system', o.system),
            ('author', o.author),
            ('team', COALESCE(o.team, '')),
            ('environment', COALESCE(o.environment, '')),
            ('source', COALESCE(o.source, ''))
        ) AS d (dimension, value)
        GROUP BY 1, 2, 3
    ) AS gone
    WHERE r.dimension = gone.dimension AND r.quarter = gone.quarter AND r.value = gone.value;
    RETURN NULL;
END;
$$;

-- Creating the triggers locks `events` against writes until this migration commits, so the
-- backfill below and the triggers together count every event exactly once.
CREATE TRIGGER rollups_insert AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tfr_rollups_insert();

CREATE TRIGGER rollups_delete AFTER DELETE ON events
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tfr_rollups_delete();

-- Events stored before this migration.
INSERT INTO rollups (dimension, quarter, value, count)
SELECT d.dimension, tfr_quarter(e.occurred_at), d.value, count(*)
FROM events e
CROSS JOIN LATERAL (VALUES
    ('', ''),
    ('kind', e.kind),
    ('system', e.system),
    ('author', e.author),
    ('team', COALESCE(e.team, '')),
    ('environment', COALESCE(e.environment, '')),
    ('source', COALESCE(e.source, ''))
) AS d (dimension, value)
GROUP BY 1, 2, 3;
