//! `GET /api/v1/audit`: the audit log — every deletion, who made it, when and why. Admin only
//! (the route table guards it).

use axum::Json;
use axum::extract::State;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tfr_core::EventId;
use tfr_store::AuditEntry;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::api::params;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Params;

/// Parameters of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Page size, 1..=500 (default 50).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One entry of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditRecord {
    /// Grows with each entry.
    pub id: u64,
    /// When it was done.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// The token that did it.
    pub actor: String,
    /// What was done: `event.delete`.
    pub action: String,
    /// The event it was done to.
    #[schema(value_type = String)]
    pub event_id: EventId,
    /// The event's title and system at the time, so the log says what is gone.
    pub title: String,
    pub system: String,
    /// Why, as the admin said (`reason` of the deletion).
    pub reason: Option<String>,
}

impl From<AuditEntry> for AuditRecord {
    fn from(entry: AuditEntry) -> Self {
        Self {
            id: entry.id,
            at: entry.at,
            actor: entry.actor,
            action: entry.action.as_str().to_owned(),
            event_id: entry.event_id,
            title: entry.title,
            system: entry.system,
            reason: entry.reason,
        }
    }
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub entries: Vec<AuditRecord>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The audit log, newest first: who deleted which event, when and why. Needs the `admin`
/// scope.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "events",
    params(AuditParams),
    responses(
        (status = 200, description = "A page of the audit log", body = AuditPage),
        (status = 400, description = "Invalid parameter", body = ErrorBody),
        (status = 401, description = "No token, or a token that is unknown, revoked or expired", body = ErrorBody),
        (status = 403, description = "The token's scope is not admin", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Params(params): Params<AuditParams>,
) -> ApiResult<Json<AuditPage>> {
    let limit = params::page_limit(params.limit, 50)?;
    let before = params
        .cursor
        .as_deref()
        .filter(|cursor| !cursor.is_empty())
        .map(|cursor| {
            cursor.parse::<u64>().map_err(|_| {
                ApiError::parameter("cursor", "is not a cursor returned by this server")
            })
        })
        .transpose()?;
    // One more than asked tells whether there is a next page.
    let mut entries = state.store.audit_log(before, limit + 1).await?;
    let next_cursor = if entries.len() > limit {
        entries.truncate(limit);
        entries.last().map(|entry| entry.id.to_string())
    } else {
        None
    };
    Ok(Json(AuditPage {
        entries: entries.into_iter().map(AuditRecord::from).collect(),
        next_cursor,
    }))
}
