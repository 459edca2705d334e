//! The console's script and style sheet, embedded in the binary.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

const APP_JS: &str = include_str!("../../assets/app.js");
const APP_CSS: &str = include_str!("../../assets/app.css");

/// A digest of the assets, put in their URLs so a new build is never served
/// from a browser's cache of the old one.
pub fn version() -> &'static str {
    static V: LazyLock<String> = LazyLock::new(|| {
        let mut h = Sha256::new();
        h.update(APP_JS);
        h.update(APP_CSS);
        hex::encode(&h.finalize()[..6])
    });
    &V
}

pub async fn get(Path(file): Path<String>) -> Response {
    let (body, ctype) = match file.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    resp
}
