//! Sign-in with an account token, and sign-out.
//!
//! The sign-in form is protected against login CSRF by a double-submit
//! token: a random value in a `SameSite=Strict` cookie scoped to `/sign-in`
//! and the same value in the form.

use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use weir_model::ids::new_secret;

use super::session::{self, cookie, same_secret};
use super::{assets, render};
use crate::AppState;
use crate::auth::{resolve, token_hash};

const PRE_COOKIE: &str = "weir_signin";

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage {
    csrf: String,
    next: String,
    error: String,
    asset_version: &'static str,
}

/// Only a path of this site: never `//host` or `https://…` (no open redirect).
fn safe_next(next: &str) -> String {
    let ok = next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') && !next.starts_with("/sign-");
    if ok { next.to_string() } else { "/lbs".to_string() }
}

fn form_page(status: StatusCode, next: &str, error: &str) -> Response {
    let pre = new_secret();
    let page = SignInPage {
        csrf: pre.clone(),
        next: safe_next(next),
        error: error.to_string(),
        asset_version: assets::version(),
    };
    let mut resp = (status, render(&page)).into_response();
    if let Ok(v) = format!("{PRE_COOKIE}={pre}; Path=/sign-in; HttpOnly; SameSite=Strict; Max-Age=3600").parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

pub async fn page(RawQuery(q): RawQuery) -> Response {
    form_page(StatusCode::OK, &super::param(&super::pairs(q.as_deref()), "next"), "")
}

#[derive(Debug, Deserialize)]
pub struct SignIn {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

pub async fn sign_in(
    State(st): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<SignIn>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return form_page(
            StatusCode::BAD_REQUEST,
            "",
            "The sign-in form was not readable; try again.",
        );
    };
    let pre_ok = cookie(&headers, PRE_COOKIE).is_some_and(|c| same_secret(c, &f.csrf));
    if !pre_ok {
        return form_page(
            StatusCode::FORBIDDEN,
            &f.next,
            "This sign-in form expired or did not come from this site; try again.",
        );
    }
    let token = f.token.trim();
    if token.is_empty() || token.len() > 256 {
        return form_page(StatusCode::UNAUTHORIZED, &f.next, "Enter your account token.");
    }
    let hash = token_hash(token);
    match resolve(&st, hash.clone()).await {
        Ok(Some(actor)) => {
            let (id, _) = st.sessions.create(hash);
            tracing::info!(account = %actor.account.id, "console sign-in");
            let mut resp = Redirect::to(&safe_next(&f.next)).into_response();
            let h = resp.headers_mut();
            if let Ok(v) = session::set_cookie(&id).parse() {
                h.append(header::SET_COOKIE, v);
            }
            if let Ok(v) = format!("{PRE_COOKIE}=; Path=/sign-in; HttpOnly; SameSite=Strict; Max-Age=0").parse() {
                h.append(header::SET_COOKIE, v);
            }
            resp
        }
        Ok(None) => form_page(
            StatusCode::UNAUTHORIZED,
            &f.next,
            "That token does not belong to any account.",
        ),
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub struct SignOut {
    #[serde(default)]
    csrf: String,
}

/// Ends the session; the form must carry the session's CSRF token.
pub async fn sign_out(
    State(st): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<SignOut>, FormRejection>,
) -> Response {
    let csrf = form.map(|Form(f)| f.csrf).unwrap_or_default();
    if let Some(id) = cookie(&headers, session::COOKIE) {
        match st.sessions.lookup(id) {
            Some(info) if !same_secret(&csrf, &info.csrf) => {
                return (
                    StatusCode::FORBIDDEN,
                    "sign-out needs the page's CSRF token; reload and try again",
                )
                    .into_response();
            }
            Some(_) => st.sessions.remove(id),
            None => {}
        }
    }
    let mut resp = Redirect::to("/sign-in").into_response();
    if let Ok(v) = session::clear_cookie().parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}
