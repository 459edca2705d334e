//! The one error type of the control plane. It carries the HTTP class, a
//! stable snake_case code, a human sentence and the field to blame; the API
//! turns it into the spec's JSON shape in exactly one place.

use std::borrow::Cow;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The class of an error; the API maps each to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400: malformed or invalid input.
    Invalid,
    /// 401: missing or unknown token.
    Unauthorized,
    /// 403: authenticated but not allowed.
    Forbidden,
    /// 404: no such resource visible to the caller.
    NotFound,
    /// 409: conflicts with existing state.
    Conflict,
    /// 413: request body too large.
    TooLarge,
    /// 500: a fault of ours (store I/O); never caused by input.
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub code: Cow<'static, str>,
    pub message: String,
    pub field: Option<String>,
}

impl Error {
    pub fn new(kind: ErrorKind, code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Error {
            kind,
            code: code.into(),
            message: message.into(),
            field: None,
        }
    }

    /// Names the field to blame.
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Prefixes the blamed field with a parent path (`port` → `rules[2].port`).
    pub fn within(mut self, parent: &str) -> Self {
        self.field = Some(match self.field.take() {
            Some(f) => format!("{parent}.{f}"),
            None => parent.to_string(),
        });
        self
    }

    /// 400 `invalid_value` on `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Invalid, "invalid_value", message).at(field)
    }

    /// 400 `out_of_range` on `field`.
    pub fn range(field: &str, lo: i64, hi: i64, got: i64) -> Self {
        Error::new(
            ErrorKind::Invalid,
            "out_of_range",
            format!("{field} must be between {lo} and {hi}, got {got}"),
        )
        .at(field)
    }

    /// 400 `missing_field` on `field`.
    pub fn missing(field: &str) -> Self {
        Error::new(ErrorKind::Invalid, "missing_field", format!("{field} is required")).at(field)
    }

    /// 400 `not_allowed`: a field that does not apply in this context.
    pub fn not_allowed(field: &str, why: impl Into<String>) -> Self {
        Error::new(ErrorKind::Invalid, "not_allowed", why).at(field)
    }

    /// 400 `invalid_reference`: a field names a resource that does not exist
    /// (or that the caller cannot see).
    pub fn reference(field: &str, what: &str, id: &str) -> Self {
        Error::new(
            ErrorKind::Invalid,
            "invalid_reference",
            format!("{what} {id} not found"),
        )
        .at(field)
    }

    /// 404 for the resource addressed by the URL.
    pub fn not_found(what: &str, id: &str) -> Self {
        Error::new(ErrorKind::NotFound, "not_found", format!("{what} {id} not found"))
    }

    /// 409 with a specific code.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Conflict, code, message)
    }

    pub fn unauthorized() -> Self {
        Error::new(
            ErrorKind::Unauthorized,
            "unauthorized",
            "a valid bearer token is required",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Forbidden, "forbidden", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, "internal", message)
    }
}

/// The JSON shape of an error: `{"code", "message", "field"}` (inside
/// `{"error": …}` at the top level of a response).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl From<&Error> for ErrorBody {
    fn from(e: &Error) -> Self {
        ErrorBody {
            code: e.code.to_string(),
            message: e.message.clone(),
            field: e.field.clone(),
        }
    }
}
