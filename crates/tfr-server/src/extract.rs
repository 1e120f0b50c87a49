//! Request extractors that answer malformed input with our JSON errors instead of axum's
//! plain-text rejections.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::AppState;
use crate::error::ApiError;

/// A JSON request body, parsed into a [`Value`] (validation names fields; serde would not).
///
/// Accepted content types: `application/json`, `*/*+json`, none, and
/// `application/x-www-form-urlencoded` — what `curl -d` sends by default — read as JSON, so the
/// one-line curl of the README works. Anything else is `415`.
pub struct JsonBody(pub Value);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        check_content_type(
            request.headers(),
            &["application/json", "application/x-www-form-urlencoded"],
            true,
        )?;
        let limit = state.config.body_limit;
        let bytes = read_limited(request.into_body(), limit, state.config.idle_timeout).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::InvalidBody(
                "the request body is empty; send a JSON object".into(),
            ));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::InvalidBody(format!("the body is not valid JSON: {e}")))
    }
}

/// Reads a whole body of at most `limit` bytes (`413` beyond). A body that stops arriving for
/// `idle` is `408`: a client trickling its body must not hold a connection forever.
pub async fn read_limited(body: Body, limit: usize, idle: Duration) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    let mut buffer: Vec<u8> = Vec::new();
    loop {
        let next = tokio::time::timeout(idle, stream.next())
            .await
            .map_err(|_| ApiError::BodyTimeout(idle.as_secs()))?;
        let Some(chunk) = next else {
            return Ok(Bytes::from(buffer));
        };
        let chunk = chunk.map_err(|error| {
            ApiError::InvalidBody(format!("cannot read the request body: {error}"))
        })?;
        if buffer.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        buffer.extend_from_slice(&chunk);
    }
}

/// Checks the media type (parameters such as `charset` ignored). `json_suffix` also admits
/// `application/<anything>+json`.
pub fn check_content_type(
    headers: &HeaderMap,
    accepted: &[&str],
    json_suffix: bool,
) -> Result<(), ApiError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Ok(());
    };
    let media_type = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if accepted.contains(&media_type.as_str())
        || (json_suffix && media_type.starts_with("application/") && media_type.ends_with("+json"))
    {
        return Ok(());
    }
    Err(ApiError::UnsupportedMediaType(format!(
        "content type '{media_type}' is not accepted here; send {}",
        accepted[0]
    )))
}

/// Query-string parameters, deserialized into `T`. Unknown parameters are refused when `T`
/// says `deny_unknown_fields`, so a misspelt `limt=10` is an error rather than ignored.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(Params)
            .map_err(|error| {
                let parameter = error.path().to_string();
                let message = error.into_inner().to_string();
                ApiError::InvalidParameter {
                    parameter: if parameter == "." {
                        String::new()
                    } else {
                        parameter
                    },
                    message,
                }
            })
    }
}

/// The client's address, when the server knows it (always under [`crate::serve`]; not when a
/// test drives the router directly).
pub struct Peer(pub Option<std::net::SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0),
        ))
    }
}
