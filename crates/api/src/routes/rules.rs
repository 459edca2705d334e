//! Forwarding rules of http/https VServers.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use time::OffsetDateTime;
use weir_model::backend::Backend;
use weir_model::error::ErrorBody;
use weir_model::ids::new_id;
use weir_model::rule::{Rule, RuleCreate, RulePatch, validate_backend_ids, validate_match};
use weir_model::vserver::VServer;
use weir_model::{Error, Result};
use weir_store::{Txn, TxnExt};

use super::vservers::lookup;
use super::{List, ListParams, created, deleted, list_params, updated};
use crate::AppState;
use crate::access::{self, keys};
use crate::auth::Actor;
use crate::error::{ApiResult, Body, PatchBody};

fn http_only(vs: &VServer) -> Result<()> {
    if vs.protocol.is_http() {
        Ok(())
    } else {
        Err(Error::new(
            weir_model::ErrorKind::Invalid,
            "not_allowed",
            format!(
                "forwarding rules apply to http and https VServers; {} is {}",
                vs.id,
                vs.protocol.as_str()
            ),
        ))
    }
}

fn check_backends(tx: &mut dyn Txn, vs: &VServer, ids: &[String]) -> Result<Vec<String>> {
    let ids = validate_backend_ids(ids)?;
    for (i, id) in ids.iter().enumerate() {
        match tx.get::<Backend>(id)? {
            Some(b) if b.vserver_id == vs.id => {}
            _ => {
                return Err(Error::reference(
                    &format!("backend_ids[{i}]"),
                    "backend of this VServer",
                    id,
                ));
            }
        }
    }
    Ok(ids)
}

fn rule_claim(tx: &mut dyn Txn, r: &Rule) -> Result<()> {
    access::claim(
        tx,
        &keys::rule(&r.vserver_id, r.domain.as_deref(), r.path.as_deref()),
        &r.id,
        |other| {
            Error::conflict(
                "duplicate_rule",
                format!("rule {other} already matches this domain and path"),
            )
        },
    )
}

fn lookup_rule(tx: &mut dyn Txn, actor: &Actor, lb: &str, vs: &str, id: &str) -> Result<(VServer, Rule)> {
    let (_, vs) = lookup(tx, actor, lb, vs)?;
    match tx.get::<Rule>(id)? {
        Some(r) if r.vserver_id == vs.id => Ok((vs, r)),
        _ => Err(Error::not_found("forwarding rule", id)),
    }
}

/// In precedence order: the first rule that matches a request wins.
#[utoipa::path(get, path = "/v1/load-balancers/{lb}/vservers/{vs}/rules", tag = "rules",
    params(("lb" = String, Path), ("vs" = String, Path), ListParams),
    responses((status = 200, body = List<Rule>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    actor: Actor,
    Path((lb, vs)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<List<Rule>>> {
    let p = list_params(q.as_deref())?;
    let out = st
        .store
        .read(move |tx| {
            let (_, vs) = lookup(tx, &actor, &lb, &vs)?;
            let mut items = tx.children::<Rule>(&vs.id)?;
            items.sort_by_key(|r| r.precedence());
            Ok(p.slice(items, weir_model::Resource::search_text))
        })
        .await?;
    Ok(Json(out))
}

#[utoipa::path(post, path = "/v1/load-balancers/{lb}/vservers/{vs}/rules", tag = "rules",
    params(("lb" = String, Path), ("vs" = String, Path)), request_body = RuleCreate,
    responses((status = 201, body = Rule), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    actor: Actor,
    Path((lb, vs)): Path<(String, String)>,
    Body(req): Body<RuleCreate>,
) -> ApiResult<Response> {
    let (r, rev) = st
        .store
        .write(move |tx| {
            let (lb, vs) = lookup(tx, &actor, &lb, &vs)?;
            http_only(&vs)?;
            let (domain, path) = validate_match(req.domain.as_deref(), req.path.as_deref())?;
            let backend_ids = check_backends(tx, &vs, &req.backend_ids)?;
            let r = Rule {
                id: new_id("rule"),
                lb_id: lb.id.clone(),
                vserver_id: vs.id.clone(),
                domain,
                path,
                backend_ids,
                owner_id: lb.owner_id.clone(),
                created_at: OffsetDateTime::now_utc(),
            };
            rule_claim(tx, &r)?;
            tx.put(&r)?;
            Ok(r)
        })
        .await?;
    Ok(created(rev, r))
}

#[utoipa::path(get, path = "/v1/load-balancers/{lb}/vservers/{vs}/rules/{id}", tag = "rules",
    params(("lb" = String, Path), ("vs" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Rule), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(st): State<AppState>,
    actor: Actor,
    Path((lb, vs, id)): Path<(String, String, String)>,
) -> ApiResult<Json<Rule>> {
    let (_, r) = st.store.read(move |tx| lookup_rule(tx, &actor, &lb, &vs, &id)).await?;
    Ok(Json(r))
}

#[utoipa::path(patch, path = "/v1/load-balancers/{lb}/vservers/{vs}/rules/{id}", tag = "rules",
    params(("lb" = String, Path), ("vs" = String, Path), ("id" = String, Path)), request_body = RulePatch,
    responses((status = 200, body = Rule), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn patch(
    State(st): State<AppState>,
    actor: Actor,
    Path((lb, vs, id)): Path<(String, String, String)>,
    PatchBody(req, _): PatchBody<RulePatch>,
) -> ApiResult<Response> {
    let (r, rev) = st
        .store
        .write(move |tx| {
            let (vs, mut r) = lookup_rule(tx, &actor, &lb, &vs, &id)?;
            let domain = req.domain.clone().unwrap_or_else(|| r.domain.clone());
            let path = req.path.clone().unwrap_or_else(|| r.path.clone());
            let (domain, path) = validate_match(domain.as_deref(), path.as_deref())?;
            let backend_ids = match &req.backend_ids {
                Some(ids) => check_backends(tx, &vs, ids)?,
                None => r.backend_ids.clone(),
            };
            if (&domain, &path, &backend_ids) == (&r.domain, &r.path, &r.backend_ids) {
                return Ok(r);
            }
            if (&domain, &path) != (&r.domain, &r.path) {
                tx.release(&keys::rule(&vs.id, r.domain.as_deref(), r.path.as_deref()))?;
                r.domain = domain;
                r.path = path;
                rule_claim(tx, &r)?;
            }
            r.backend_ids = backend_ids;
            tx.put(&r)?;
            Ok(r)
        })
        .await?;
    Ok(updated(rev, r))
}

#[utoipa::path(delete, path = "/v1/load-balancers/{lb}/vservers/{vs}/rules/{id}", tag = "rules",
    params(("lb" = String, Path), ("vs" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(st): State<AppState>,
    actor: Actor,
    Path((lb, vs, id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let ((), rev) = st
        .store
        .write(move |tx| {
            let (_, r) = lookup_rule(tx, &actor, &lb, &vs, &id)?;
            tx.release_all(&r.id)?;
            tx.delete::<Rule>(&r.id)?;
            Ok(())
        })
        .await?;
    Ok(deleted(rev))
}
