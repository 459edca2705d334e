//! The one place errors become HTTP: status from the error's kind, body in
//! the spec's shape `{"error": {"code", "message", "field"}}`. Also the JSON
//! body extractor whose every rejection (bad JSON, unknown field, wrong
//! type, too large, not UTF-8) speaks that shape and names the field.

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::json;
use weir_model::{Error, ErrorKind};

/// An API error: a model error on its way to becoming a response.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        if e.kind == ErrorKind::Internal {
            tracing::error!(error = %e.message, "internal error");
        }
        let mut body = json!({"code": e.code, "message": e.message});
        if let Some(f) = &e.field {
            body["field"] = json!(f);
        }
        let mut resp = (status_of(e.kind), axum::Json(json!({ "error": body }))).into_response();
        if e.kind == ErrorKind::TooLarge {
            // The unread rest of the body makes the connection unusable: say so.
            resp.headers_mut()
                .insert("connection", axum::http::HeaderValue::from_static("close"));
        }
        if e.kind == ErrorKind::Unauthorized {
            resp.headers_mut()
                .insert("www-authenticate", axum::http::HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// Maps a deserialization failure to a 400 naming the field.
pub fn json_error(err: serde_path_to_error::Error<serde_json::Error>) -> Error {
    let path = err.path().to_string();
    let inner = err.into_inner();
    let msg = inner.to_string();
    let path = if path == "." { String::new() } else { path };
    let join = |name: &str| {
        if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        }
    };
    match inner.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof | serde_json::error::Category::Io => {
            Error::new(
                ErrorKind::Invalid,
                "invalid_json",
                format!("request body is not valid JSON: {msg}"),
            )
        }
        serde_json::error::Category::Data => {
            if let Some(name) = backticked(&msg, "unknown field `") {
                // The path already ends at the unknown key.
                let field = if path.ends_with(&name) {
                    path.clone()
                } else {
                    join(&name)
                };
                Error::new(ErrorKind::Invalid, "unknown_field", format!("unknown field {field}")).at(field)
            } else if let Some(name) = backticked(&msg, "missing field `") {
                let field = join(&name);
                Error::new(ErrorKind::Invalid, "missing_field", format!("{field} is required")).at(field)
            } else if path.is_empty() {
                Error::new(ErrorKind::Invalid, "invalid_body", format!("request body: {msg}"))
            } else {
                Error::new(ErrorKind::Invalid, "invalid_value", format!("{path}: {msg}")).at(path)
            }
        }
    }
}

fn backticked(msg: &str, prefix: &str) -> Option<String> {
    let rest = &msg[msg.find(prefix)? + prefix.len()..];
    Some(rest[..rest.find('`')?].to_string())
}

/// Parses JSON text into `T` with our error mapping.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Error::new(
            ErrorKind::Invalid,
            "invalid_encoding",
            format!("request body is not UTF-8: {e}"),
        )
    })?;
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(Error::new(
            ErrorKind::Invalid,
            "invalid_json",
            "request body is empty; a JSON object is expected",
        ));
    }
    // serde would also read a struct from an array of its fields in order;
    // the API takes objects only.
    if !trimmed.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            Error::new(
                ErrorKind::Invalid,
                "invalid_json",
                format!("request body is not valid JSON: {e}"),
            )
        })?;
        let what = match v {
            serde_json::Value::Array(_) => "an array",
            serde_json::Value::String(_) => "a string",
            serde_json::Value::Number(_) => "a number",
            serde_json::Value::Bool(_) => "a boolean",
            _ => "null",
        };
        return Err(Error::new(
            ErrorKind::Invalid,
            "invalid_body",
            format!("request body must be a JSON object, got {what}"),
        ));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let v = serde_path_to_error::deserialize(&mut de).map_err(json_error)?;
    de.end().map_err(|e| {
        Error::new(
            ErrorKind::Invalid,
            "invalid_json",
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    Ok(v)
}

/// The raw body bytes, with the size limit answered as 413 in our shape.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(RawBody(b)),
            Err(rej) if rej.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError(Error::new(
                ErrorKind::TooLarge,
                "payload_too_large",
                format!("request body is larger than {} bytes", crate::BODY_LIMIT),
            ))),
            Err(rej) => Err(ApiError(Error::new(
                ErrorKind::Invalid,
                "invalid_body",
                rej.body_text(),
            ))),
        }
    }
}

/// A JSON body parsed into `T`.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        Ok(Body(parse_json(&bytes)?))
    }
}

/// A JSON body kept both as `T` (shape checked) and as raw JSON (for merge
/// patches, where `null` and absence differ).
pub struct PatchBody<T>(pub T, pub serde_json::Value);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for PatchBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        let raw: serde_json::Value = parse_json(&bytes)?;
        if !raw.is_object() {
            return Err(ApiError(Error::new(
                ErrorKind::Invalid,
                "invalid_body",
                "request body must be a JSON object",
            )));
        }
        let typed = parse_json(&bytes)?;
        Ok(PatchBody(typed, raw))
    }
}
