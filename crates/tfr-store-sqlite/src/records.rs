//! Reading the whole history back as it is stored, for moving it to another store
//! (`tfr migrate-store`).

use tfr_store::{InsertRecord, StoreResult, StreamPosition};

use crate::{SqliteStore, rows};

impl SqliteStore {
    /// Stored events after `after`, in stored order, at most `limit`, each with everything
    /// another store needs to hold it exactly: the event as it stands now (diff included) and
    /// the content digest of its original submission, so idempotency keeps recognising
    /// retries. `occurred_at_given` is `true`: the time is the stored one.
    pub async fn records_after(
        &self,
        after: StreamPosition,
        limit: usize,
    ) -> StoreResult<Vec<(StreamPosition, InsertRecord)>> {
        let after = i64::try_from(after.0).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let text = format!(
            "SELECT {}, e.seq, e.content_digest {} WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2",
            rows::select_list(true),
            rows::from_clause(true)
        );
        self.read(move |connection| {
            let mut statement = connection.prepare_cached(&text)?;
            statement
                .query_map([after, limit], |row| {
                    let seq: i64 = row.get(rows::COLUMN_COUNT + 1)?;
                    let record = InsertRecord {
                        event: rows::event_from_row(row, true)?,
                        content_digest: row.get(rows::COLUMN_COUNT + 2)?,
                        occurred_at_given: true,
                    };
                    Ok((StreamPosition(u64::try_from(seq).unwrap_or(0)), record))
                })?
                .collect()
        })
        .await
    }
}
