//! Accounts and sub-accounts.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use time::OffsetDateTime;
use weir_model::account::{Account, AccountCreate, AccountCreated, AccountView};
use weir_model::error::ErrorBody;
use weir_model::ids::{new_id, new_secret};
use weir_model::{Error, Kind};
use weir_store::{Txn, TxnExt};

use super::{List, ListParams, created, list_params};
use crate::AppState;
use crate::auth::{Actor, token_claim, token_hash};
use crate::error::{ApiResult, Body};

#[utoipa::path(get, path = "/v1/accounts/me", tag = "accounts",
    responses((status = 200, body = AccountView), (status = 401, body = ErrorBody)))]
pub async fn me(actor: Actor) -> Json<AccountView> {
    Json(AccountView::from(&actor.account))
}

#[utoipa::path(get, path = "/v1/accounts", tag = "accounts", params(ListParams),
    responses((status = 200, body = List<AccountView>)))]
pub async fn list(
    State(st): State<AppState>,
    actor: Actor,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<List<AccountView>>> {
    let p = list_params(q.as_deref())?;
    let page = st
        .store
        .read(move |tx| {
            let mut q = actor.query(Kind::Account);
            q.search = p.search;
            q.limit = Some(p.limit);
            q.offset = p.offset;
            tx.list::<Account>(&q)
        })
        .await?;
    Ok(Json(List {
        items: page.items.iter().map(AccountView::from).collect(),
        total: page.total,
    }))
}

/// Creates an account with a fresh token; stores only the token's hash.
pub fn insert_account(
    tx: &mut dyn Txn,
    name: String,
    parent_id: Option<String>,
    is_admin: bool,
    token: &str,
) -> weir_model::Result<Account> {
    let account = Account {
        id: new_id("acct"),
        name,
        parent_id,
        is_admin,
        token_sha256: token_hash(token),
        created_at: OffsetDateTime::now_utc(),
    };
    if tx.claim(&token_claim(&account.token_sha256), &account.id)?.is_some() {
        return Err(Error::internal("token collision"));
    }
    tx.put(&account)?;
    Ok(account)
}

pub fn new_token() -> String {
    format!("weir_{}", new_secret())
}

#[utoipa::path(post, path = "/v1/accounts", tag = "accounts", request_body = AccountCreate,
    responses((status = 201, body = AccountCreated), (status = 403, body = ErrorBody)))]
pub async fn create(State(st): State<AppState>, actor: Actor, Body(req): Body<AccountCreate>) -> ApiResult<Response> {
    if !actor.is_admin() {
        return Err(Error::forbidden("only the admin can create accounts").into());
    }
    let name = req.validate()?;
    let token = new_token();
    let t = token.clone();
    let (a, rev) = st
        .store
        .write(move |tx| insert_account(tx, name.clone(), None, false, &t))
        .await?;
    Ok(created(
        rev,
        AccountCreated {
            id: a.id,
            name: a.name,
            parent_id: None,
            token,
        },
    ))
}

#[utoipa::path(post, path = "/v1/accounts/{id}/sub-accounts", tag = "accounts", request_body = AccountCreate,
    params(("id" = String, Path)),
    responses((status = 201, body = AccountCreated), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn create_sub(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Body(req): Body<AccountCreate>,
) -> ApiResult<Response> {
    let name = req.validate()?;
    let token = new_token();
    let t = token.clone();
    let (a, rev) = st
        .store
        .write(move |tx| {
            let parent = match tx.get::<Account>(&id)? {
                Some(a) if a.id == actor.id() || actor.sees_resource(&a) => a,
                _ => return Err(Error::not_found("account", &id)),
            };
            if !actor.is_admin() && actor.id() != parent.id {
                return Err(Error::forbidden(
                    "only the admin or the account itself can create its sub-accounts",
                ));
            }
            if parent.parent_id.is_some() {
                return Err(Error::forbidden("a sub-account cannot have sub-accounts"));
            }
            if parent.is_admin {
                return Err(Error::forbidden(
                    "the admin account has no sub-accounts; create an account instead",
                ));
            }
            insert_account(tx, name.clone(), Some(parent.id), false, &t)
        })
        .await?;
    Ok(created(
        rev,
        AccountCreated {
            id: a.id,
            name: a.name,
            parent_id: a.parent_id,
            token,
        },
    ))
}
