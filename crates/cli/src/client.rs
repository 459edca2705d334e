//! HTTP calls to the Weir API and the mapping of their failures to messages and exit codes.

use std::path::Path;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode, Url};
use serde::Deserialize;
use serde_json::Value;

use crate::fields::{self, FieldMap};

/// Why a command failed.
#[derive(Debug, Clone, PartialEq)]
pub enum CliError {
    /// Bad flags or an unusable `--api`/`--token` (exit 2).
    Usage(String),
    /// The API could not be reached (exit 2).
    Connect { api: String, detail: String },
    /// 401: no token, or one the API does not know (exit 1).
    Unauthorized { message: String, had_token: bool },
    /// Any other non-2xx answer (exit 1).
    Api {
        status: u16,
        code: Option<String>,
        message: String,
        field: Option<String>,
    },
    /// A local failure after talking to the API, e.g. writing a file (exit 1).
    Local(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) | CliError::Connect { .. } => 2,
            CliError::Unauthorized { .. } | CliError::Api { .. } | CliError::Local(_) => 1,
        }
    }

    /// The text printed on stderr; `fields` names the flag behind an API error's field.
    pub fn report(&self, fields: FieldMap) -> String {
        match self {
            CliError::Usage(m) | CliError::Local(m) => format!("error: {m}"),
            CliError::Connect { api, detail } => format!(
                "error: cannot reach the Weir API at {api}: {detail}\n  \
                 is `weir serve` running there? Set the API address with --api or WEIR_API."
            ),
            CliError::Unauthorized {
                message,
                had_token: true,
            } => format!(
                "error: the API rejected the token ({message}); \
                 pass a valid one with --token or WEIR_TOKEN"
            ),
            CliError::Unauthorized { had_token: false, .. } => format!(
                "error: no API token: pass --token or set WEIR_TOKEN \
                 (or run where ./{} exists)",
                crate::ADMIN_TOKEN_FILE
            ),
            CliError::Api { message, field, .. } => match field {
                Some(f) if !f.is_empty() => {
                    format!("error: {message}\n{}", fields::hint(f, fields))
                }
                _ => format!("error: {message}"),
            },
        }
    }
}

/// A successful answer: the body as sent (for `--output json`) and parsed (for tables).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub raw: String,
    pub json: Value,
}

impl ApiResponse {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CliError> {
        let raw = String::from_utf8(bytes.to_vec())
            .map_err(|_| CliError::Local("the API answered with a body that is not UTF-8".into()))?;
        if raw.trim().is_empty() {
            return Ok(Self { raw, json: Value::Null });
        }
        let json = serde_json::from_str(&raw)
            .map_err(|e| CliError::Local(format!("the API answered with invalid JSON: {e}")))?;
        Ok(Self { raw, json })
    }
}

/// `--token`/WEIR_TOKEN when given and not blank, else the trimmed contents of `file` when it exists.
pub fn resolve_token(explicit: Option<&str>, file: &Path) -> Option<String> {
    if let Some(t) = explicit.map(str::trim).filter(|t| !t.is_empty()) {
        return Some(t.to_owned());
    }
    std::fs::read_to_string(file)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: Option<String>,
    message: Option<String>,
    field: Option<String>,
}

/// Maps a non-2xx answer to an error, using the API's `{"error": {...}}` body when there is one.
pub fn api_error(status: StatusCode, body: &[u8], had_token: bool) -> CliError {
    let parsed = serde_json::from_slice::<ErrorBody>(body).ok().map(|b| b.error);
    let message = parsed
        .as_ref()
        .and_then(|e| e.message.clone())
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| fallback_message(status, body));
    if status == StatusCode::UNAUTHORIZED {
        return CliError::Unauthorized { message, had_token };
    }
    let (code, field) = match parsed {
        Some(e) => (e.code, e.field),
        None => (None, None),
    };
    CliError::Api {
        status: status.as_u16(),
        code,
        message,
        field,
    }
}

fn fallback_message(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let snippet: String = text.trim().chars().take(200).collect();
    if snippet.is_empty() {
        format!("the API answered {status}")
    } else {
        format!("the API answered {status}: {snippet}")
    }
}

/// The innermost cause of a transport error, e.g. "Connection refused (os error 111)".
fn root_cause(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    if e.is_timeout() {
        format!("timed out ({cause})")
    } else {
        cause.to_string()
    }
}

/// A client for one API base URL and token.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

impl Client {
    pub fn new(api: &str, token: Option<String>) -> Result<Self, CliError> {
        let base = Url::parse(api.trim()).map_err(|e| CliError::Usage(format!("invalid --api URL {api:?}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(CliError::Usage(format!(
                "invalid --api URL {api:?}: expected http://host:port or https://host:port"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("weir-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::Local(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Self { http, base, token })
    }

    /// `<base>/v1/<segments…>?<query>`, each segment percent-encoded.
    pub fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Url, CliError> {
        let mut url = self.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        url.path_segments_mut()
            .map_err(|()| CliError::Usage(format!("invalid --api URL {}", self.base)))?
            .pop_if_empty()
            .push("v1")
            .extend(segments);
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    pub async fn get(&self, segments: &[&str], query: &[(&str, String)]) -> Result<ApiResponse, CliError> {
        let url = self.url(segments, query)?;
        ApiResponse::from_bytes(&self.send(self.http.get(url)).await?)
    }

    pub async fn post(&self, segments: &[&str], body: &Value) -> Result<ApiResponse, CliError> {
        self.send_json(Method::POST, segments, body).await
    }

    pub async fn patch(&self, segments: &[&str], body: &Value) -> Result<ApiResponse, CliError> {
        self.send_json(Method::PATCH, segments, body).await
    }

    pub async fn delete(&self, segments: &[&str]) -> Result<ApiResponse, CliError> {
        let url = self.url(segments, &[])?;
        ApiResponse::from_bytes(&self.send(self.http.delete(url)).await?)
    }

    /// A binary download (e.g. the xlsx export).
    pub async fn get_bytes(&self, segments: &[&str]) -> Result<Vec<u8>, CliError> {
        let url = self.url(segments, &[])?;
        self.send(self.http.get(url)).await
    }

    async fn send_json(&self, method: Method, segments: &[&str], body: &Value) -> Result<ApiResponse, CliError> {
        let url = self.url(segments, &[])?;
        ApiResponse::from_bytes(&self.send(self.http.request(method, url).json(body)).await?)
    }

    async fn send(&self, req: RequestBuilder) -> Result<Vec<u8>, CliError> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req.send().await.map_err(|e| self.transport_error(&e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.transport_error(&e))?;
        if status.is_success() {
            Ok(bytes.to_vec())
        } else {
            Err(api_error(status, &bytes, self.token.is_some()))
        }
    }

    fn transport_error(&self, e: &reqwest::Error) -> CliError {
        if e.is_builder() {
            CliError::Usage(format!(
                "cannot build the request ({}); check --api and --token",
                root_cause(e)
            ))
        } else {
            CliError::Connect {
                api: self.base.to_string(),
                detail: root_cause(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: FieldMap = &[("health_check.interval_s", "--health-interval")];

    #[test]
    fn maps_api_error_body_with_field() {
        let body =
            br#"{"error":{"code":"invalid","message":"interval must be 1..300","field":"health_check.interval_s"}}"#;
        let e = api_error(StatusCode::BAD_REQUEST, body, true);
        assert_eq!(e.exit_code(), 1);
        assert_eq!(
            e.report(MAP),
            "error: interval must be 1..300\n  field: health_check.interval_s (set with --health-interval)"
        );
    }

    #[test]
    fn maps_error_without_json() {
        let e = api_error(StatusCode::BAD_GATEWAY, b"<html>bad</html>", true);
        assert_eq!(
            e.report(MAP),
            "error: the API answered 502 Bad Gateway: <html>bad</html>"
        );
        let e = api_error(StatusCode::NOT_FOUND, b"", true);
        assert_eq!(e.report(MAP), "error: the API answered 404 Not Found");
    }

    #[test]
    fn unauthorized_names_token_flags() {
        let body = br#"{"error":{"code":"unauthorized","message":"unknown token"}}"#;
        let with = api_error(StatusCode::UNAUTHORIZED, body, true);
        assert_eq!(with.exit_code(), 1);
        let text = with.report(MAP);
        assert!(text.contains("rejected the token") && text.contains("--token") && text.contains("WEIR_TOKEN"));
        let without = api_error(StatusCode::UNAUTHORIZED, body, false).report(MAP);
        assert!(without.contains("no API token") && without.contains("WEIR_TOKEN"));
    }

    #[test]
    fn connect_error_names_api_flag() {
        let e = CliError::Connect {
            api: "http://127.0.0.1:1/".into(),
            detail: "Connection refused".into(),
        };
        assert_eq!(e.exit_code(), 2);
        let text = e.report(MAP);
        assert!(text.contains("--api") && text.contains("WEIR_API") && text.contains("Connection refused"));
    }

    #[test]
    fn builds_encoded_urls() {
        let c = Client::new("http://127.0.0.1:9080/", None).expect("client");
        let u = c
            .url(&["load-balancers", "lb/../x"], &[("search", "a b".into())])
            .expect("url");
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:9080/v1/load-balancers/lb%2F..%2Fx?search=a+b"
        );
        let c = Client::new("https://example.com/weir", None).expect("client");
        let u = c.url(&["system", "status"], &[]).expect("url");
        assert_eq!(u.as_str(), "https://example.com/weir/v1/system/status");
    }

    #[test]
    fn rejects_bad_api_urls() {
        for bad in ["127.0.0.1:9080", "ftp://x", "not a url"] {
            let e = Client::new(bad, None).expect_err("must fail");
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(e.report(MAP).contains("--api"));
        }
    }

    #[test]
    fn parses_bodies() {
        let r = ApiResponse::from_bytes(b"").expect("empty");
        assert_eq!(r.json, Value::Null);
        let r = ApiResponse::from_bytes(br#"{"id":"lb-1"}"#).expect("json");
        assert_eq!(r.json["id"], "lb-1");
        assert_eq!(ApiResponse::from_bytes(b"{").map_err(|e| e.exit_code()), Err(1));
    }

    #[test]
    fn token_resolution() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("admin.token");
        assert_eq!(resolve_token(None, &file), None);
        std::fs::write(&file, "secret\n").expect("write");
        assert_eq!(resolve_token(None, &file).as_deref(), Some("secret"));
        assert_eq!(resolve_token(Some("given"), &file).as_deref(), Some("given"));
        assert_eq!(resolve_token(Some("  "), &file).as_deref(), Some("secret"));
    }
}
