//! Alarm templates: threshold rules on LB and VServer metrics with a
//! webhook, bound to LBs and VServers through their `alarm_template_id`.
//!
//! A binding is a `uses/<alarm>/<lb-or-vs>` claim held by the LB or VServer
//! (taken and moved by their create and update, released with the rest of
//! their claims when they are deleted), so deleting a bound template is a
//! 409 naming its users.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use time::OffsetDateTime;
use weir_model::alarm::{AlarmTemplate, AlarmTemplateCreate, AlarmTemplatePatch};
use weir_model::error::ErrorBody;
use weir_model::ids::new_id;
use weir_model::{Kind, Result};
use weir_store::{Txn, TxnExt};

use super::{List, ListParams, created, deleted, fetch, fetch_list, updated};
use crate::AppState;
use crate::access::{self, keys};
use crate::auth::Actor;
use crate::error::{ApiResult, Body};

/// Points the binding of `user` (an LB or VServer id) from the template
/// `old` to `new`: checks `new` is visible (400 `invalid_reference` on
/// `field` otherwise) and moves the `uses/…` claim.
pub fn rebind(
    tx: &mut dyn Txn,
    actor: &Actor,
    field: &str,
    user: &str,
    old: Option<&str>,
    new: Option<&str>,
) -> Result<()> {
    if let Some(n) = new {
        access::reference_raw(tx, actor, Kind::AlarmTemplate, field, n)?;
    }
    if old == new {
        return Ok(());
    }
    if let Some(o) = old {
        tx.release(&keys::uses(o, user))?;
    }
    if let Some(n) = new {
        // The key names `user`, who alone holds it: this cannot clash.
        tx.claim(&keys::uses(n, user), user)?;
    }
    Ok(())
}

#[utoipa::path(get, path = "/v1/alarm-templates", tag = "alarm templates", params(ListParams),
    responses((status = 200, body = List<AlarmTemplate>)))]
pub async fn list(
    State(st): State<AppState>,
    actor: Actor,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<List<AlarmTemplate>>> {
    fetch_list(&st, actor, q).await.map(Json)
}

#[utoipa::path(post, path = "/v1/alarm-templates", tag = "alarm templates", request_body = AlarmTemplateCreate,
    responses((status = 201, body = AlarmTemplate), (status = 400, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    actor: Actor,
    Body(req): Body<AlarmTemplateCreate>,
) -> ApiResult<Response> {
    let spec = req.validate()?;
    let (t, rev) = st
        .store
        .write(move |tx| {
            let t = AlarmTemplate {
                id: new_id("alarm"),
                name: spec.name.clone(),
                rules: spec.rules.clone(),
                webhook_url: spec.webhook_url.clone(),
                owner_id: actor.id().to_string(),
                created_at: OffsetDateTime::now_utc(),
            };
            tx.put(&t)?;
            Ok(t)
        })
        .await?;
    Ok(created(rev, t))
}

#[utoipa::path(get, path = "/v1/alarm-templates/{id}", tag = "alarm templates", params(("id" = String, Path)),
    responses((status = 200, body = AlarmTemplate), (status = 404, body = ErrorBody)))]
pub async fn get(State(st): State<AppState>, actor: Actor, Path(id): Path<String>) -> ApiResult<Json<AlarmTemplate>> {
    fetch(&st, actor, id).await.map(Json)
}

/// `rules`, when given, replaces every rule.
#[utoipa::path(patch, path = "/v1/alarm-templates/{id}", tag = "alarm templates", params(("id" = String, Path)),
    request_body = AlarmTemplatePatch,
    responses((status = 200, body = AlarmTemplate), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn patch(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Body(req): Body<AlarmTemplatePatch>,
) -> ApiResult<Response> {
    let changes = req.validate()?;
    let (t, rev) = st
        .store
        .write(move |tx| {
            let mut t: AlarmTemplate = access::visible(tx, &actor, &id)?;
            if changes.apply(&mut t) {
                tx.put(&t)?;
            }
            Ok(t)
        })
        .await?;
    Ok(updated(rev, t))
}

#[utoipa::path(delete, path = "/v1/alarm-templates/{id}", tag = "alarm templates", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(State(st): State<AppState>, actor: Actor, Path(id): Path<String>) -> ApiResult<Response> {
    let ((), rev) = st
        .store
        .write(move |tx| {
            let t: AlarmTemplate = access::visible(tx, &actor, &id)?;
            access::ensure_unused(
                tx,
                &keys::uses_prefix(&t.id),
                &format!("alarm template {}", t.id),
                "load balancer(s)/VServer(s)",
            )?;
            tx.delete::<AlarmTemplate>(&t.id)?;
            Ok(())
        })
        .await?;
    Ok(deleted(rev))
}
