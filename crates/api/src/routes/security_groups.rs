//! Security groups: ordered allow/deny rules bound to external LBs.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use time::OffsetDateTime;
use weir_model::error::ErrorBody;
use weir_model::ids::new_id;
use weir_model::network::{SecurityGroup, SecurityGroupCreate, SecurityGroupPatch, validate_sg_rules};
use weir_model::validate;
use weir_store::TxnExt;

use super::{List, ListParams, created, deleted, fetch, fetch_list, updated};
use crate::AppState;
use crate::access::{self, keys};
use crate::auth::Actor;
use crate::error::{ApiResult, Body};

#[utoipa::path(get, path = "/v1/security-groups", tag = "security groups", params(ListParams),
    responses((status = 200, body = List<SecurityGroup>)))]
pub async fn list(
    State(st): State<AppState>,
    actor: Actor,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<List<SecurityGroup>>> {
    fetch_list(&st, actor, q).await.map(Json)
}

#[utoipa::path(post, path = "/v1/security-groups", tag = "security groups", request_body = SecurityGroupCreate,
    responses((status = 201, body = SecurityGroup), (status = 400, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    actor: Actor,
    Body(req): Body<SecurityGroupCreate>,
) -> ApiResult<Response> {
    let name = validate::name("name", &req.name)?;
    let rules = validate_sg_rules(&req.rules)?;
    let (sg, rev) = st
        .store
        .write(move |tx| {
            let sg = SecurityGroup {
                id: new_id("sg"),
                name: name.clone(),
                rules: rules.clone(),
                owner_id: actor.id().to_string(),
                created_at: OffsetDateTime::now_utc(),
            };
            tx.put(&sg)?;
            Ok(sg)
        })
        .await?;
    Ok(created(rev, sg))
}

#[utoipa::path(get, path = "/v1/security-groups/{id}", tag = "security groups", params(("id" = String, Path)),
    responses((status = 200, body = SecurityGroup), (status = 404, body = ErrorBody)))]
pub async fn get(State(st): State<AppState>, actor: Actor, Path(id): Path<String>) -> ApiResult<Json<SecurityGroup>> {
    fetch(&st, actor, id).await.map(Json)
}

/// Changing rules applies to new connections (and new UDP sources) at once.
#[utoipa::path(patch, path = "/v1/security-groups/{id}", tag = "security groups", params(("id" = String, Path)),
    request_body = SecurityGroupPatch,
    responses((status = 200, body = SecurityGroup), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn patch(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Body(req): Body<SecurityGroupPatch>,
) -> ApiResult<Response> {
    let name = req.name.as_deref().map(|n| validate::name("name", n)).transpose()?;
    let rules = req.rules.as_deref().map(validate_sg_rules).transpose()?;
    let (sg, rev) = st
        .store
        .write(move |tx| {
            let mut sg: SecurityGroup = access::visible(tx, &actor, &id)?;
            if let Some(n) = &name {
                sg.name = n.clone();
            }
            if let Some(r) = &rules {
                sg.rules = r.clone();
            }
            if name.is_some() || rules.is_some() {
                tx.put(&sg)?;
            }
            Ok(sg)
        })
        .await?;
    Ok(updated(rev, sg))
}

#[utoipa::path(delete, path = "/v1/security-groups/{id}", tag = "security groups", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(State(st): State<AppState>, actor: Actor, Path(id): Path<String>) -> ApiResult<Response> {
    let ((), rev) = st
        .store
        .write(move |tx| {
            let sg: SecurityGroup = access::visible(tx, &actor, &id)?;
            access::ensure_unused(
                tx,
                &keys::uses_prefix(&sg.id),
                &format!("security group {}", sg.id),
                "load balancer(s)",
            )?;
            tx.delete::<SecurityGroup>(&sg.id)?;
            Ok(())
        })
        .await?;
    Ok(deleted(rev))
}
