//! The web console: server-rendered pages at `/` of the API listener.
//!
//! Pages read through the API's own handlers (so a page shows exactly what
//! the API would answer, under the same tenancy), and change things by
//! sending JSON to `/v1` from a little JavaScript, with the session cookie
//! and its CSRF token (`auth.rs`). So every rule, every validation message
//! and every tenant boundary is the API's, written once.

mod assets;
mod certs;
mod charts;
mod lbs;
mod listing;
mod network;
mod policy;
pub mod session;
mod signin;
mod vservers;

use std::sync::LazyLock;

use askama::Template;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use time::OffsetDateTime;
use weir_model::ErrorKind;

use crate::auth::{Actor, resolve};
use crate::{ApiError, AppState};

/// The console's routes (merged into the API's router).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/lbs") }))
        .route("/sign-in", get(signin::page).post(signin::sign_in))
        .route("/sign-out", post(signin::sign_out))
        .route("/assets/{file}", get(assets::get))
        .route("/lbs", get(lbs::list))
        .route("/lbs/new", get(lbs::new))
        .route("/lbs/{lb}", get(lbs::detail))
        .route("/lbs/{lb}/vservers/new", get(vservers::new))
        .route("/lbs/{lb}/vservers/{vs}", get(vservers::detail))
        .route("/lbs/{lb}/vservers/{vs}/edit", get(vservers::edit))
        .route("/certificates", get(certs::list))
        .route("/certificates/new", get(certs::new))
        .route("/security-groups", get(policy::security_groups))
        .route("/security-groups/{id}", get(policy::security_group))
        .route("/alarm-templates", get(policy::alarm_templates))
        .route("/alarm-templates/{id}", get(policy::alarm_template))
        .route("/alarms", get(policy::alarms))
        .route("/vpcs", get(network::vpcs))
        .route("/subnets", get(network::subnets))
        .route("/instances", get(network::instances))
        .route("/eips", get(network::eips))
        .layer(axum::middleware::map_response(security_headers))
}

/// What every console response carries: no caching of tenant data, a
/// content security policy that allows only our own script and styles (no
/// inline script can run, whatever a page contains), no framing.
async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    resp
}

/// A signed-in console request: who it is and the session's CSRF token.
/// Without a live session, pages answer with a redirect to the sign-in page
/// that comes back here afterwards.
pub struct Ctx {
    pub actor: Actor,
    pub csrf: String,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let here = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let to_sign_in = || Redirect::to(&format!("/sign-in?next={}", encode(here))).into_response();
        let info = session::cookie(&parts.headers, session::COOKIE)
            .and_then(|id| st.sessions.lookup(id))
            .ok_or_else(to_sign_in)?;
        let actor = resolve(st, info.token_hash)
            .await
            .map_err(IntoResponse::into_response)?
            .ok_or_else(to_sign_in)?;
        Ok(Ctx { actor, csrf: info.csrf })
    }
}

/// Sections of the top navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Lbs,
    Certificates,
    SecurityGroups,
    AlarmTemplates,
    Alarms,
    Vpcs,
    Subnets,
    Instances,
    Eips,
}

const NAV: &[(Section, &str, &str)] = &[
    (Section::Lbs, "/lbs", "Load balancers"),
    (Section::Certificates, "/certificates", "SSL certificates"),
    (Section::SecurityGroups, "/security-groups", "Security groups"),
    (Section::AlarmTemplates, "/alarm-templates", "Alarm templates"),
    (Section::Alarms, "/alarms", "Alarms"),
    (Section::Vpcs, "/vpcs", "VPCs"),
    (Section::Subnets, "/subnets", "Subnets"),
    (Section::Instances, "/instances", "Instances"),
    (Section::Eips, "/eips", "Elastic IPs"),
];

pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub on: bool,
}

/// The page frame's data (`base.html`).
pub struct Chrome {
    pub csrf: String,
    pub account_name: String,
    pub account_id: String,
    pub is_admin: bool,
    pub nav: Vec<NavItem>,
    pub asset_version: &'static str,
}

impl Ctx {
    pub fn chrome(&self, on: Section) -> Chrome {
        Chrome {
            csrf: self.csrf.clone(),
            account_name: self.actor.account.name.clone(),
            account_id: self.actor.account.id.clone(),
            is_admin: self.actor.is_admin(),
            nav: NAV
                .iter()
                .map(|(s, href, label)| NavItem {
                    href,
                    label,
                    on: *s == on,
                })
                .collect(),
            asset_version: assets::version(),
        }
    }

    /// An API result, or the error page for its error.
    #[allow(
        clippy::result_large_err,
        reason = "the error is the response itself, built once per failed page"
    )]
    pub fn ok<T>(&self, section: Section, r: Result<T, ApiError>) -> Result<T, Response> {
        r.map_err(|e| self.fail(section, e))
    }

    /// The error page: 404 for what this tenant cannot see (as the API), the
    /// error's own status and message otherwise.
    pub fn fail(&self, section: Section, e: ApiError) -> Response {
        let e = e.0;
        if e.kind == ErrorKind::Internal {
            tracing::error!(error = %e.message, "console: internal error");
        }
        let (title, message) = match e.kind {
            ErrorKind::NotFound => ("Not found", e.message),
            ErrorKind::Forbidden => ("Not allowed", e.message),
            ErrorKind::Internal => (
                "Something went wrong",
                "an internal error occurred; it is logged".into(),
            ),
            _ => ("That did not work", e.message),
        };
        let page = ErrorPage {
            chrome: self.chrome(section),
            title,
            message,
        };
        (crate::error::status_of(e.kind), render(&page)).into_response()
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    title: &'static str,
    message: String,
}

/// A rendered page (500 if a template fails, which a test would catch).
pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console: template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

pub type Page = Result<Response, Response>;

/// `2026-12-04 18:52 UTC`.
pub fn when(t: OffsetDateTime) -> String {
    static FMT: LazyLock<Vec<time::format_description::BorrowedFormatItem<'static>>> = LazyLock::new(|| {
        time::format_description::parse_borrowed::<2>("[year]-[month]-[day] [hour]:[minute] UTC").unwrap_or_default()
    });
    t.to_offset(time::UtcOffset::UTC).format(&FMT).unwrap_or_default()
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An `<option>` of a select.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

impl Choice {
    pub fn new(value: impl Into<String>, label: impl Into<String>, selected: bool) -> Self {
        Choice {
            value: value.into(),
            label: label.into(),
            selected,
        }
    }

    /// Options from `(value, label)` pairs with `current` selected.
    pub fn list<'a>(items: impl IntoIterator<Item = (&'a str, &'a str)>, current: &str) -> Vec<Choice> {
        items
            .into_iter()
            .map(|(v, l)| Choice::new(v, l, v == current))
            .collect()
    }
}

/// "name (id)" for a resource shown by reference.
pub fn named(name: &str, id: &str) -> String {
    if name.is_empty() {
        id.to_string()
    } else {
        format!("{name} ({id})")
    }
}

/// The raw query with `key` dropped (to build links that change one key).
pub fn query_without(q: Option<&str>, key: &str) -> String {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some(key))
        .collect::<Vec<_>>()
        .join("&")
}

/// Every visible resource of a kind (up to the API's page maximum), for
/// selects and for showing names next to ids.
pub async fn all<R: weir_model::Resource>(st: &AppState, actor: &Actor) -> Result<Vec<R>, ApiError> {
    let q = format!("limit={}", crate::routes::MAX_LIMIT);
    Ok(crate::routes::fetch_list::<R>(st, actor.clone(), Some(q)).await?.items)
}

/// The query's pairs, percent-decoded (undecodable pairs dropped: pages
/// only read their own few keys from it).
pub fn pairs(q: Option<&str>) -> Vec<(String, String)> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((k.to_string(), crate::routes::percent_decode(v)?))
        })
        .collect()
}

/// One key of the query.
pub fn param(pairs: &[(String, String)], key: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(encode("/lbs?search=a b"), "/lbs%3Fsearch%3Da%20b");
        assert_eq!(
            when(time::macros::datetime!(2026-12-04 18:52:07 UTC)),
            "2026-12-04 18:52 UTC"
        );
        assert_eq!(query_without(Some("a=1&offset=5&b=2"), "offset"), "a=1&b=2");
        assert_eq!(named("", "lb-1"), "lb-1");
        assert_eq!(named("web", "lb-1"), "web (lb-1)");
    }
}
