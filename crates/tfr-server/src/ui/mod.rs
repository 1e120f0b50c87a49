//! The web UI: server-rendered pages from the same binary, with a little plain JavaScript for
//! infinite scroll, local times and the live banner. Every asset is embedded; nothing is
//! loaded from elsewhere. Pages work without JavaScript (the first page of the feed and a
//! "More" link, event pages, stats, correlation).

pub mod diff;
pub mod markdown;
pub mod monitoring;
mod pages;
mod svg;
mod views;

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;
use crate::error::ApiError;

pub(crate) use views::FilterOptions;

/// The page routes, merged into the application's route table (they read events: the route
/// table guards them like the API's reads).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::feed))
        .route("/ui/cards", get(pages::cards))
        .route("/events/{id}", get(pages::event))
        .route("/stats", get(pages::stats))
        .route("/correlate", get(pages::correlate))
}

/// The static assets: no data, open to anyone (the refusal page uses the stylesheet).
pub fn assets() -> Router<AppState> {
    Router::new()
        .route("/static/app.css", get(stylesheet))
        .route("/static/app.js", get(script))
}

/// A refusal (no token, a token without the scope, too many requests) as a page: a person
/// opening the feed gets a sentence, not JSON. Status and `WWW-Authenticate`/`Retry-After` are
/// those of the API's answer.
pub(crate) fn refusal_page(error: ApiError) -> Response {
    let message = error.to_string();
    let answer = error.into_response();
    let status = answer.status();
    let heading = match status {
        StatusCode::UNAUTHORIZED => "A token is needed to read this server",
        StatusCode::FORBIDDEN => "This token may not read this",
        StatusCode::TOO_MANY_REQUESTS => "Too many requests",
        _ => "The server cannot answer now",
    };
    let mut page = pages::message(status, heading, message);
    for name in [WWW_AUTHENTICATE, RETRY_AFTER] {
        if let Some(value) = answer.headers().get(&name) {
            page.headers_mut().insert(name, value.clone());
        }
    }
    page
}

/// The Content-Security-Policy of every page: only this site's own scripts, styles and
/// connections; no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Security headers added to every response of the server (pages and API alike).
pub fn security_headers() -> [(HeaderName, HeaderValue); 4] {
    [
        (
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ),
        (
            HeaderName::from_static("x-frame-options"),
            HeaderValue::from_static("DENY"),
        ),
        (
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ]
}

const STYLESHEET: &str = include_str!("../../static/app.css");
const SCRIPT: &str = include_str!("../../static/app.js");

async fn stylesheet() -> Response {
    asset(STYLESHEET, "text/css; charset=utf-8")
}

async fn script() -> Response {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        body,
    )
        .into_response()
}
