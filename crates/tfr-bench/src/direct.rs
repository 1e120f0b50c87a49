//! The direct side: the same workload on a store called in-process through the `Store` trait,
//! without HTTP, JSON or validation in the timed part (events are validated while preparing).

use std::sync::Arc;

use anyhow::{Context, bail};
use tfr_core::Limits;
use tfr_core::stats::{GroupField, Interval, bucket_starts};
use tfr_core::time::now;
use tfr_core::validate::validate_new_event;
use tfr_store::{BatchMode, EventFilter, InsertOutcome, InsertRecord, PageRequest, Store};

use crate::history::GeneratedEvent;
use crate::workload::{PAGE_SIZE, QueryKind, QueryPlan, Target};

/// Who the direct side's events are submitted by, as the server says for anonymous writes.
const SUBMITTED_BY: &str = "anonymous";

pub struct DirectTarget {
    store: Arc<dyn Store>,
}

impl DirectTarget {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// An event as the server would hand it to the store: validated, with its id and digest.
    fn record(event: &GeneratedEvent) -> anyhow::Result<InsertRecord> {
        let received = now();
        let valid = validate_new_event(&event.to_value(), &Limits::default(), received)
            .map_err(|error| anyhow::anyhow!("generated an invalid event: {error:?}"))?;
        Ok(InsertRecord::new(valid, received, SUBMITTED_BY))
    }

    fn filter(q: &str) -> anyhow::Result<EventFilter> {
        let query = tfr_core::query::parse(q).map_err(|e| anyhow::anyhow!("query '{q}': {e:?}"))?;
        Ok(EventFilter {
            query,
            from: None,
            to: None,
            now: now(),
        })
    }
}

fn created(outcomes: &[InsertOutcome]) -> u64 {
    outcomes
        .iter()
        .filter(|outcome| matches!(outcome, InsertOutcome::Created(_)))
        .count() as u64
}

impl Target for DirectTarget {
    type Bulk = Vec<InsertRecord>;
    type Post = InsertRecord;

    fn prepare_bulk(&self, events: &[GeneratedEvent]) -> anyhow::Result<Vec<InsertRecord>> {
        events.iter().map(Self::record).collect()
    }

    async fn send_bulk(&self, records: Vec<InsertRecord>) -> anyhow::Result<u64> {
        let sent = records.len() as u64;
        let outcomes = self
            .store
            .insert(records, BatchMode::Independent)
            .await
            .context("bulk insert")?;
        let created = created(&outcomes);
        if created != sent {
            bail!("a batch of {sent} created {created}");
        }
        Ok(created)
    }

    fn prepare_post(&self, event: &GeneratedEvent) -> anyhow::Result<InsertRecord> {
        Self::record(event)
    }

    async fn send_post(&self, record: &InsertRecord) -> anyhow::Result<()> {
        // As the single-event endpoint does: one record, all or nothing.
        let outcomes = self
            .store
            .insert(vec![record.clone()], BatchMode::AllOrNothing)
            .await
            .context("single insert")?;
        if created(&outcomes) != 1 {
            bail!("a single insert was not created: {outcomes:?}");
        }
        Ok(())
    }

    async fn index_lag(&self) -> anyhow::Result<Option<u64>> {
        Ok(self.store.full_text_lag())
    }

    async fn query(&self, plan: &QueryPlan) -> anyhow::Result<u64> {
        match &plan.kind {
            QueryKind::Page { q, cursor } => {
                let filter = Self::filter(q)?;
                let page = PageRequest {
                    limit: PAGE_SIZE,
                    cursor: *cursor,
                    ..PageRequest::default()
                };
                let page = self.store.list(&filter, page).await?;
                Ok(page.events.len() as u64)
            }
            QueryKind::Last { q } => {
                // As `/api/v1/events/last` does: what happened by now, newest first, one.
                let mut filter = Self::filter(q)?;
                filter.to = filter
                    .now
                    .checked_add(jiff::SignedDuration::from_micros(1))
                    .ok();
                let page = PageRequest {
                    limit: 1,
                    ..PageRequest::default()
                };
                Ok(self.store.list(&filter, page).await?.events.len() as u64)
            }
            QueryKind::Histogram { from, to } => {
                let mut filter = Self::filter("")?;
                filter.from = Some(*from);
                filter.to = Some(*to);
                // The daily UTC buckets the HTTP side's `interval=day` histogram asks for.
                let starts: Vec<jiff::Timestamp> =
                    bucket_starts(*from, *to, Interval::Day, &jiff::tz::TimeZone::UTC)
                        .map_err(|e| anyhow::anyhow!("histogram buckets: {e}"))?
                        .iter()
                        .map(|start| start.timestamp())
                        .collect();
                let counts = self
                    .store
                    .bucket_counts(&filter, Some(GroupField::Kind), &starts)
                    .await?;
                Ok(counts.iter().map(|count| count.count).sum())
            }
        }
    }
}
