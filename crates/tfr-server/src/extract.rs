//! Request extractors that answer malformed input with our JSON errors instead of axum's
//! plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
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
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge { limit }
                } else {
                    ApiError::InvalidBody(format!("cannot read the request body: {rejection}"))
                }
            })?;
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
