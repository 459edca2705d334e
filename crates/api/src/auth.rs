//! Bearer tokens and who may see what.
//!
//! Tokens are random 256-bit secrets; the store keeps their SHA-256 (a slow
//! hash adds nothing for secrets of that entropy) under a claim
//! `token/<sha256>` → account id.

use axum::extract::FromRequestParts;
use axum::http::Method;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use weir_model::account::Account;
use weir_model::{Error, Kind, Resource};
use weir_store::{ListQuery, TxnExt};

use crate::{ApiError, AppState};

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn token_claim(hash: &str) -> String {
    format!("token/{hash}")
}

/// The authenticated caller and the owners whose resources it may see.
#[derive(Debug, Clone)]
pub struct Actor {
    pub account: Account,
    /// `None` for the admin (everything).
    pub visible: Option<Vec<String>>,
}

impl Actor {
    pub fn id(&self) -> &str {
        &self.account.id
    }

    pub fn is_admin(&self) -> bool {
        self.account.is_admin
    }

    pub fn sees(&self, owner: &str) -> bool {
        self.visible.as_ref().is_none_or(|v| v.iter().any(|o| o == owner))
    }

    pub fn sees_resource<R: Resource>(&self, r: &R) -> bool {
        self.sees(r.owner())
    }

    /// A list query restricted to what this actor sees.
    pub fn query(&self, kind: Kind) -> ListQuery {
        let mut q = ListQuery::new(kind);
        q.owners = self.visible.clone();
        q
    }
}

impl FromRequestParts<AppState> for Actor {
    type Rejection = ApiError;

    /// A bearer token, or else a console session cookie. With the cookie,
    /// every method but GET/HEAD must carry the session's CSRF token in
    /// `X-CSRF-Token` (403 otherwise): a browser attaches cookies on its
    /// own, so the cookie alone proves nothing about who wrote the request.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) {
            let token = header
                .to_str()
                .ok()
                .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
                .map(str::trim)
                .filter(|t| !t.is_empty() && t.len() <= 256)
                .ok_or_else(Error::unauthorized)?;
            return resolve(state, token_hash(token))
                .await?
                .ok_or_else(|| ApiError(Error::unauthorized()));
        }
        let session = crate::console::session::cookie(&parts.headers, crate::console::session::COOKIE)
            .and_then(|id| state.sessions.lookup(id))
            .ok_or_else(Error::unauthorized)?;
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            let given = parts
                .headers
                .get(crate::console::session::CSRF_HEADER)
                .and_then(|v| v.to_str().ok());
            match given {
                None => return Err(ApiError(csrf_error("this request carries no CSRF token"))),
                Some(g) if !crate::console::session::same_secret(g, &session.csrf) => {
                    return Err(ApiError(csrf_error("this request's CSRF token is not this session's")));
                }
                Some(_) => {}
            }
        }
        resolve(state, session.token_hash)
            .await?
            .ok_or_else(|| ApiError(Error::unauthorized()))
    }
}

pub fn csrf_error(why: &str) -> Error {
    Error::new(
        weir_model::ErrorKind::Forbidden,
        "csrf_failed",
        format!("{why}; reload the page and try again"),
    )
}

/// The account whose token hashes to `hash`, with what it may see.
pub async fn resolve(state: &AppState, hash: String) -> Result<Option<Actor>, ApiError> {
    Ok(state
        .store
        .read(move |tx| {
            let Some(id) = tx.holder(&token_claim(&hash))? else {
                return Ok(None);
            };
            let Some(account) = tx.get::<Account>(&id)? else {
                return Ok(None);
            };
            let visible = if account.is_admin {
                None
            } else if account.parent_id.is_some() {
                Some(vec![account.id.clone()])
            } else {
                let mut v = vec![account.id.clone()];
                v.extend(tx.children::<Account>(&account.id)?.into_iter().map(|c| c.id));
                Some(v)
            };
            Ok(Some(Actor { account, visible }))
        })
        .await?)
}
