//! Bearer tokens and who may see what.
//!
//! Tokens are random 256-bit secrets; the store keeps their SHA-256 (a slow
//! hash adds nothing for secrets of that entropy) under a claim
//! `token/<sha256>` → account id.

use axum::extract::FromRequestParts;
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

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(Error::unauthorized)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or_else(Error::unauthorized)?;
        let hash = token_hash(token);
        let actor = state
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
            .await?;
        actor.ok_or_else(|| ApiError(Error::unauthorized()))
    }
}
