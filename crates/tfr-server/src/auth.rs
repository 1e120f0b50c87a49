//! Who is calling, and may they (design §10).
//!
//! A caller is a token (`Authorization: Bearer tfr_...`, or the tool's own credential on the
//! integrations) or anonymous. Each route group of the route table says what it needs
//! ([`require`]: reads need `read`, writes `write`, `DELETE` and the audit log `admin`); what an
//! anonymous caller may do is the server's configuration ([`crate::AnonymousWrites`],
//! `anonymous_read`). The caller is handed to handlers as a request extension, so every event
//! records who submitted it.
//!
//! Tokens are looked up by the SHA-256 of what was sent, and kept in memory for
//! [`TOKEN_CACHE_TTL`]: a revocation made with `tfr token revoke` (on the store, possibly from
//! another machine) takes effect on every node within that time. `last_used_at` is written at
//! most once per [`TOUCH_INTERVAL`] per token, off the request's path.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tfr_core::time::now;
use tfr_core::token::{Scope, hash_token};
use tfr_store::TokenInfo;

use crate::error::ApiError;
use crate::{AnonymousWrites, AppState, RateLimit};

/// How long a looked-up token is trusted before the store is asked again.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);
/// `last_used_at` is written at most this often per token.
pub const TOUCH_INTERVAL: Duration = Duration::from_secs(60);
/// How long "no token exists yet" is trusted (anonymous writes on loopback).
const TOKENS_EXIST_TTL: Duration = Duration::from_secs(1);
/// Entries kept by the token cache and the rate limiter before they are pruned.
const MAX_ENTRIES: usize = 10_000;

/// `submitted_by` of events sent without a token.
pub const ANONYMOUS: &str = "anonymous";

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    Token { name: String, scope: Scope },
}

impl Caller {
    /// What events record in `submitted_by`: the token's name, or `anonymous`.
    pub fn name(&self) -> &str {
        match self {
            Caller::Anonymous => ANONYMOUS,
            Caller::Token { name, .. } => name,
        }
    }
}

/// The server's memory of tokens, and the rate limiter.
#[derive(Default)]
pub struct Auth {
    /// hash → (when it was read, the token).
    tokens: Mutex<HashMap<String, (Instant, TokenInfo)>>,
    /// Once a token exists, it does forever (tokens are revoked, never deleted).
    tokens_exist: Mutex<Option<(Instant, bool)>>,
    /// token name → when `last_used_at` was last written.
    touched: Mutex<HashMap<String, Instant>>,
    /// caller key → bucket.
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// A token bucket: `capacity` requests at once, refilled at the configured rate.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    available: f64,
    updated: Instant,
}

impl Auth {
    fn cached(&self, hash: &str) -> Option<TokenInfo> {
        let tokens = self.tokens.lock().ok()?;
        let (read_at, token) = tokens.get(hash)?;
        (read_at.elapsed() < TOKEN_CACHE_TTL).then(|| token.clone())
    }

    fn remember(&self, hash: String, token: TokenInfo) {
        if let Ok(mut tokens) = self.tokens.lock() {
            if tokens.len() >= MAX_ENTRIES {
                tokens.retain(|_, (read_at, _)| read_at.elapsed() < TOKEN_CACHE_TTL);
            }
            if tokens.len() < MAX_ENTRIES {
                tokens.insert(hash, (Instant::now(), token));
            }
        }
    }

    /// Whether `last_used_at` is due for this token (and marks it done).
    fn touch_due(&self, name: &str) -> bool {
        let Ok(mut touched) = self.touched.lock() else {
            return false;
        };
        match touched.get(name) {
            Some(at) if at.elapsed() < TOUCH_INTERVAL => false,
            _ => {
                if touched.len() >= MAX_ENTRIES {
                    touched.clear();
                }
                touched.insert(name.to_owned(), Instant::now());
                true
            }
        }
    }

    /// Takes one request from `key`'s bucket; the seconds to wait when it is empty.
    fn take(&self, key: &str, limit: RateLimit) -> Result<(), u64> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let capacity = f64::from(limit.requests);
        let rate = capacity / limit.per.as_secs_f64();
        let now = Instant::now();
        if buckets.len() >= MAX_ENTRIES && !buckets.contains_key(key) {
            // Drop the buckets that have refilled: they hold nothing a new one would not.
            buckets.retain(|_, bucket| {
                bucket.available + now.duration_since(bucket.updated).as_secs_f64() * rate
                    < capacity
            });
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            available: capacity,
            updated: now,
        });
        let refilled = bucket.available + now.duration_since(bucket.updated).as_secs_f64() * rate;
        bucket.available = refilled.min(capacity);
        bucket.updated = now;
        if bucket.available >= 1.0 {
            bucket.available -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.available) / rate;
            // Whole seconds, at least one: what `Retry-After` can say.
            Err(wait.ceil().max(1.0) as u64)
        }
    }
}

/// Who `credential` (a token as sent) is. No credential is the anonymous caller; anything
/// else must be a token that exists, is not revoked and has not expired.
pub async fn authenticate(state: &AppState, credential: Option<&str>) -> Result<Caller, ApiError> {
    let Some(credential) = credential else {
        return Ok(Caller::Anonymous);
    };
    let hash = hash_token(credential);
    let token = match state.auth.cached(&hash) {
        Some(token) => token,
        None => {
            let found = state.store.token_by_hash(&hash).await?;
            let Some(token) = found else {
                return Err(invalid("the token is not valid on this server"));
            };
            state.auth.remember(hash, token.clone());
            token
        }
    };
    let now = now();
    if token.revoked_at.is_some() {
        tracing::info!(token = %token.name, "refused a revoked token");
        return Err(invalid(&format!("the token '{}' was revoked", token.name)));
    }
    if let Some(expires_at) = token.expires_at
        && now >= expires_at
    {
        tracing::info!(token = %token.name, "refused an expired token");
        return Err(invalid(&format!(
            "the token '{}' expired at {expires_at}",
            token.name
        )));
    }
    if state.auth.touch_due(&token.name) {
        let store = std::sync::Arc::clone(&state.store);
        let name = token.name.clone();
        tokio::spawn(async move {
            if let Err(error) = store.touch_token(&name, now).await {
                tracing::debug!(%error, token = %name, "cannot record when the token was used");
            }
        });
    }
    Ok(Caller::Token {
        name: token.name,
        scope: token.scope,
    })
}

fn invalid(message: &str) -> ApiError {
    ApiError::Unauthorized {
        message: message.to_owned(),
        invalid_token: true,
    }
}

fn missing(needed: Scope) -> ApiError {
    ApiError::Unauthorized {
        message: format!(
            "this needs a token with the {needed} scope, sent as 'Authorization: Bearer <token>'"
        ),
        invalid_token: false,
    }
}

/// Whether `caller` may do what needs `needed`: a token by its scope, the anonymous caller
/// by the server's configuration.
pub async fn authorize(state: &AppState, caller: &Caller, needed: Scope) -> Result<(), ApiError> {
    match caller {
        Caller::Token { scope, .. } if scope.allows(needed) => Ok(()),
        Caller::Token { name, scope } => Err(ApiError::Forbidden {
            message: format!("the token '{name}' has the {scope} scope; this needs {needed}"),
            needed,
        }),
        Caller::Anonymous => match needed {
            Scope::Read if state.config.anonymous_read => Ok(()),
            Scope::Read | Scope::Admin => Err(missing(needed)),
            Scope::Write => match state.config.anonymous_writes {
                AnonymousWrites::Allowed => Ok(()),
                AnonymousWrites::Refused => Err(missing(needed)),
                AnonymousWrites::UntilFirstToken => {
                    if tokens_exist(state).await? {
                        Err(ApiError::Unauthorized {
                            message: "API tokens are defined on this server, so writes need a token with the write scope, sent as 'Authorization: Bearer <token>'".into(),
                            invalid_token: false,
                        })
                    } else {
                        Ok(())
                    }
                }
            },
        },
    }
}

/// Whether any token was ever created on the store (checked at most once a second until one
/// is found).
async fn tokens_exist(state: &AppState) -> Result<bool, ApiError> {
    if let Ok(known) = state.auth.tokens_exist.lock()
        && let Some((checked_at, exist)) = *known
        && (exist || checked_at.elapsed() < TOKENS_EXIST_TTL)
    {
        return Ok(exist);
    }
    let exist = !state.store.list_tokens().await?.is_empty();
    if let Ok(mut known) = state.auth.tokens_exist.lock() {
        if exist && !matches!(*known, Some((_, true))) {
            tracing::info!("API tokens are defined: anonymous writes are refused from now on");
        }
        *known = Some((Instant::now(), exist));
    }
    Ok(exist)
}

/// Applies the per-caller rate limit, if one is configured: a token by its name, an anonymous
/// caller by its address.
pub fn check_rate(
    state: &AppState,
    caller: &Caller,
    peer: Option<SocketAddr>,
) -> Result<(), ApiError> {
    let Some(limit) = state.config.rate_limit else {
        return Ok(());
    };
    let key = match (caller, peer) {
        (Caller::Token { name, .. }, _) => format!("token:{name}"),
        (Caller::Anonymous, Some(peer)) => format!("ip:{}", peer.ip()),
        (Caller::Anonymous, None) => ANONYMOUS.to_owned(),
    };
    state
        .auth
        .take(&key, limit)
        .map_err(|retry_after| ApiError::RateLimited { retry_after })
}

/// The token of an `Authorization` header: `None` without the header, an error when the
/// header is not `Bearer <token>`.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| invalid("the Authorization header is not text"))?
        .trim();
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(invalid("send the token as 'Authorization: Bearer <token>'")),
    }
}

/// What a request needs by its method: reads `read`, `DELETE` `admin`, other writes `write`.
pub fn scope_of(method: &Method) -> Scope {
    match *method {
        Method::GET | Method::HEAD | Method::OPTIONS => Scope::Read,
        Method::DELETE => Scope::Admin,
        _ => Scope::Write,
    }
}

/// Who is calling and may they: the caller, or the error.
async fn admit(
    state: &AppState,
    credential: Option<&str>,
    peer: Option<SocketAddr>,
    needed: Scope,
) -> Result<Caller, ApiError> {
    let caller = authenticate(state, credential).await?;
    authorize(state, &caller, needed).await?;
    check_rate(state, &caller, peer)?;
    Ok(caller)
}

/// Runs the request if the caller may do what `needed` says (`None`: the handler checks), with
/// the caller as a request extension; refuses it otherwise, as JSON or as a page.
async fn guard(
    state: AppState,
    mut request: Request,
    next: Next,
    needed: Option<Scope>,
    as_page: bool,
) -> Response {
    let Some(needed) = needed else {
        return next.run(request).await;
    };
    let admitted = match bearer_token(request.headers()) {
        Ok(credential) => {
            let credential = credential.map(str::to_owned);
            let peer = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0);
            admit(&state, credential.as_deref(), peer, needed).await
        }
        Err(error) => Err(error),
    };
    match admitted {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(error) if as_page => crate::ui::refusal_page(error),
        Err(error) => error.into_response(),
    }
}

/// The API (and `/metrics`): the scope the method needs ([`scope_of`]).
pub async fn require(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let needed = scope_of(request.method());
    guard(state, request, next, Some(needed), false).await
}

/// The admin endpoints (the audit log): `admin`, whatever the method.
pub async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    guard(state, request, next, Some(Scope::Admin), false).await
}

/// Endpoints that read whatever the method (Grafana's SimpleJSON queries are POSTs): `read`;
/// CORS preflights (`OPTIONS`) carry no credentials and are answered to anyone.
pub async fn require_read(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let needed = (request.method() != Method::OPTIONS).then_some(Scope::Read);
    guard(state, request, next, needed, false).await
}

/// The integrations: their reads (`GET`) need `read`; their writes check the tool's credential
/// in the handler ([`integration_writer`]), and preflights are open.
pub async fn require_integration_reads(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let needed = matches!(*request.method(), Method::GET | Method::HEAD).then_some(Scope::Read);
    guard(state, request, next, needed, false).await
}

/// The web UI's pages: `read`, with refusals as pages rather than JSON.
pub async fn require_page(State(state): State<AppState>, request: Request, next: Next) -> Response {
    guard(state, request, next, Some(Scope::Read), true).await
}

/// The caller of an integration's write, from the tool's own credential (a PagerDuty
/// routing key, a Datadog API key, a Honeycomb key, a Grafana or CloudEvents bearer token) or
/// an `Authorization: Bearer` header. A value without the `tfr_` prefix is the tool's own key,
/// which tfr does not know: it counts as no credential (an anonymous write), so a tool keeps
/// working unchanged where anonymous writes are allowed. A value with the prefix must be a
/// valid token.
pub async fn integration_writer(
    state: &AppState,
    headers: &HeaderMap,
    tool_credential: Option<&str>,
    peer: Option<SocketAddr>,
) -> Result<Caller, ApiError> {
    let bearer = bearer_token(headers).ok().flatten();
    let credential = [tool_credential, bearer]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|credential| tfr_core::token::looks_like_token(credential));
    admit(state, credential, peer, Scope::Write).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_need_their_scope() {
        assert_eq!(scope_of(&Method::GET), Scope::Read);
        assert_eq!(scope_of(&Method::POST), Scope::Write);
        assert_eq!(scope_of(&Method::PATCH), Scope::Write);
        assert_eq!(scope_of(&Method::DELETE), Scope::Admin);
    }

    #[test]
    fn bearer_tokens_are_read_strictly() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers).ok(), Some(None));
        headers.insert("authorization", "Bearer tfr_abc".parse().unwrap());
        assert_eq!(bearer_token(&headers).ok(), Some(Some("tfr_abc")));
        headers.insert("authorization", "bearer  tfr_abc ".parse().unwrap());
        assert_eq!(bearer_token(&headers).ok(), Some(Some("tfr_abc")));
        for bad in ["Basic dXNlcjpwdw==", "Bearer", "Bearer ", "tfr_abc"] {
            headers.insert("authorization", bad.parse().unwrap());
            assert!(bearer_token(&headers).is_err(), "{bad}");
        }
    }

    #[test]
    fn buckets_refill_at_the_rate() {
        let auth = Auth::default();
        let limit = RateLimit {
            requests: 2,
            per: Duration::from_secs(1),
        };
        assert_eq!(auth.take("a", limit), Ok(()));
        assert_eq!(auth.take("a", limit), Ok(()));
        assert_eq!(auth.take("a", limit), Err(1));
        assert_eq!(
            auth.take("b", limit),
            Ok(()),
            "each caller has its own bucket"
        );
        let slow = RateLimit {
            requests: 1,
            per: Duration::from_secs(60),
        };
        assert_eq!(auth.take("c", slow), Ok(()));
        assert_eq!(auth.take("c", slow), Err(60));
    }
}
