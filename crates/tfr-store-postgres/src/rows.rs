//! Mapping between `events` rows and [`Event`]s, and the exact microsecond codec for
//! `timestamptz`.

use jiff::Timestamp;
use sqlx_core::decode::Decode;
use sqlx_core::encode::{Encode, IsNull};
use sqlx_core::error::BoxDynError;
use sqlx_core::row::Row;
use sqlx_core::types::Type;
use sqlx_postgres::types::Oid;
use sqlx_postgres::{
    PgArgumentBuffer, PgHasArrayType, PgRow, PgTypeInfo, PgValueFormat, PgValueRef, Postgres,
};
use tfr_core::{Event, EventId, Link};
use uuid::Uuid;

/// The columns [`event_from_row`] reads, in order, over `events e` (and `event_diffs d` when
/// diffs are wanted). JSON columns are read as their text, exactly as written.
pub const COLUMNS: &str = "e.id, e.occurred_at, e.ended_at, e.recorded_at, e.title, e.system, \
    e.author, e.kind, e.environment, e.team, e.source, e.version, e.description, e.tags::text, \
    e.links::text, e.has_diff, e.attributes::text, e.idempotency_key, e.submitted_by";

/// How many columns [`COLUMNS`] lists: the index of the first column after them.
pub const COLUMN_COUNT: usize = 19;

/// The `FROM` clause, with or without the diff.
pub fn from_clause(include_diffs: bool) -> &'static str {
    if include_diffs {
        "FROM events e LEFT JOIN event_diffs d ON d.seq = e.seq"
    } else {
        "FROM events e"
    }
}

/// The select list, with or without the diff (always as the column after [`COLUMNS`]).
pub fn select_list(include_diffs: bool) -> String {
    if include_diffs {
        format!("{COLUMNS}, d.diff")
    } else {
        format!("{COLUMNS}, NULL::text")
    }
}

fn json<T: serde::de::DeserializeOwned>(row: &PgRow, index: usize) -> Result<T, sqlx_core::Error> {
    let text: String = row.try_get(index)?;
    serde_json::from_str(&text).map_err(|error| sqlx_core::Error::ColumnDecode {
        index: index.to_string(),
        source: error.into(),
    })
}

/// Reads an event from a row selected with [`select_list`].
pub fn event_from_row(row: &PgRow) -> Result<Event, sqlx_core::Error> {
    let id: Uuid = row.try_get(0)?;
    let attributes: Option<String> = row.try_get(16)?;
    let diff: Option<String> = row.try_get(COLUMN_COUNT)?;
    Ok(Event {
        id: EventId::from(id),
        occurred_at: row.try_get::<PgTime, _>(1)?.timestamp()?,
        ended_at: row
            .try_get::<Option<PgTime>, _>(2)?
            .map(PgTime::timestamp)
            .transpose()?,
        recorded_at: row.try_get::<PgTime, _>(3)?.timestamp()?,
        title: row.try_get(4)?,
        system: row.try_get(5)?,
        author: row.try_get(6)?,
        kind: row.try_get(7)?,
        environment: row.try_get(8)?,
        team: row.try_get(9)?,
        source: row.try_get(10)?,
        version: row.try_get(11)?,
        description: row.try_get(12)?,
        tags: json(row, 13)?,
        links: json::<Vec<Link>>(row, 14)?,
        has_diff: row.try_get(15)?,
        attributes: attributes
            .map(|text| {
                serde_json::from_str(&text).map_err(|error| sqlx_core::Error::ColumnDecode {
                    index: "16".into(),
                    source: error.into(),
                })
            })
            .transpose()?,
        idempotency_key: row.try_get(17)?,
        submitted_by: row.try_get(18)?,
        diff,
    })
}

/// JSON text of a value the store wrote itself (strings, lists, maps): serializing it cannot
/// fail.
pub fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01 UTC).
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// The earliest `timestamptz` PostgreSQL holds (4714-11-24 00:00 UTC BC), from its epoch.
const POSTGRES_MIN: i64 = -211_813_488_000_000_000;
/// Just past the latest `timestamptz` PostgreSQL holds (294277-01-01 UTC), from its epoch.
const POSTGRES_END: i64 = 9_223_371_331_200_000_000;

/// A `timestamptz` as microseconds since the Unix epoch, sent and read in PostgreSQL's binary
/// form (microseconds since 2000-01-01): exact, with no float or text conversion on the way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PgTime(i64);

impl PgTime {
    /// An instant the store writes. Values outside PostgreSQL's range are refused by the
    /// server; [`PgTime::bound`] is for comparisons.
    pub fn of(at: Timestamp) -> Self {
        Self(at.as_microsecond())
    }

    /// A bound to compare with, from microseconds since the Unix epoch: beyond PostgreSQL's
    /// range it becomes `-infinity`/`infinity`, which compare the same way.
    pub fn bound(micros: i64) -> Self {
        Self(micros)
    }

    /// Whether PostgreSQL can store this instant.
    pub fn storable(at: Timestamp) -> bool {
        let shifted = i128::from(at.as_microsecond()) - i128::from(POSTGRES_EPOCH_MICROS);
        (i128::from(POSTGRES_MIN)..i128::from(POSTGRES_END)).contains(&shifted)
    }

    pub fn timestamp(self) -> Result<Timestamp, sqlx_core::Error> {
        Timestamp::from_microsecond(self.0).map_err(|error| sqlx_core::Error::Decode(error.into()))
    }
}

impl Type<Postgres> for PgTime {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(1184))
    }
}

impl PgHasArrayType for PgTime {
    fn array_type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(1185))
    }
}

impl Encode<'_, Postgres> for PgTime {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        let shifted = self.0.saturating_sub(POSTGRES_EPOCH_MICROS);
        let wire = if shifted < POSTGRES_MIN {
            i64::MIN // -infinity
        } else if shifted >= POSTGRES_END {
            i64::MAX // infinity
        } else {
            shifted
        };
        <i64 as Encode<'_, Postgres>>::encode_by_ref(&wire, buf)
    }
}

impl Decode<'_, Postgres> for PgTime {
    fn decode(value: PgValueRef<'_>) -> Result<Self, BoxDynError> {
        if value.format() != PgValueFormat::Binary {
            return Err("timestamptz must be read in binary form".into());
        }
        let wire = <i64 as Decode<'_, Postgres>>::decode(value)?;
        wire.checked_add(POSTGRES_EPOCH_MICROS)
            .map(Self)
            .ok_or_else(|| "timestamptz out of range (infinity?)".into())
    }
}
