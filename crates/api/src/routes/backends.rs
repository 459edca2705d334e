//! Backends (service nodes) of a VServer, with batch enable/disable/delete.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use time::OffsetDateTime;
use weir_model::backend::{
    Backend, BackendBatch, BackendBatchResult, BackendCreate, BackendPatch, BackendStatus, BackendView, BatchAction,
    weight,
};
use weir_model::error::ErrorBody;
use weir_model::ids::new_id;
use weir_model::lb::{BatchFailure, LoadBalancer};
use weir_model::network::{Instance, Vpc};
use weir_model::rule::Rule;
use weir_model::vserver::VServer;
use weir_model::{Error, ErrorKind, Kind, Result, validate};
use weir_store::{Txn, TxnExt};

use super::vservers::lookup;
use super::{List, ListParams, created, deleted, list_params, updated};
use crate::access::{self, keys};
use crate::auth::Actor;
use crate::error::{ApiResult, Body};
use crate::{AppState, DataPlaneView};

/// A backend with what the health checker says of it (`checking` until the
/// data plane knows it).
pub fn view(b: Backend, dp: &dyn DataPlaneView) -> BackendView {
    let (status, last_check) = match dp.backend_health(&b.id) {
        Some(h) => (h.status, h.last_check),
        None => (BackendStatus::Checking, None),
    };
    BackendView {
        backend: b,
        status,
        last_check,
    }
}

fn lookup_backend(
    tx: &mut dyn Txn,
    actor: &Actor,
    lb: &str,
    vs: &str,
    rs: &str,
) -> Result<(LoadBalancer, VServer, Backend)> {
    let (lb, vs) = lookup(tx, actor, lb, vs)?;
    match tx.get::<Backend>(rs)? {
        Some(b) if b.vserver_id == vs.id => Ok((lb, vs, b)),
        _ => Err(Error::not_found("backend", rs)),
    }
}

fn backend_claim(tx: &mut dyn Txn, b: &Backend) -> Result<()> {
    access::claim(tx, &keys::backend(&b.vserver_id, b.address, b.port), &b.id, |other| {
        Error::conflict(
            "duplicate_backend",
            format!(
                "{}:{} is already a backend of this VServer ({other})",
                b.address, b.port
            ),
        )
        .at("port")
    })
}

/// Deletes a backend and drops it from the VServer's rules.
pub fn remove_backend(tx: &mut dyn Txn, b: &Backend) -> Result<()> {
    for mut r in tx.children::<Rule>(&b.vserver_id)? {
        if r.backend_ids.iter().any(|id| id == &b.id) {
            r.backend_ids.retain(|id| id != &b.id);
            tx.put(&r)?;
        }
    }
    tx.release_all(&b.id)?;
    tx.delete::<Backend>(&b.id)?;
    Ok(())
}

#[utoipa::path(get, path = "/v1/load-balancers/{lb}/vservers/{vs}/backends", tag = "backends",
    params(("lb" = String, Path), ("vs" = String, Path), ListParams),
    responses((status = 200, body = List<BackendView>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    actor: Actor,
    Path((lb, vs)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<List<BackendView>>> {
    let dp = st.dataplane.clone();
    let p = list_params(q.as_deref())?;
    let out = st
        .store
        .read(move |tx| {
            let (_, vs) = lookup(tx, &actor, &lb, &vs)?;
            let page = tx.list::<Backend>(&p.query(Kind::Backend, &vs.id))?;
            Ok(List {
                total: page.total,
                items: page.items.into_iter().map(|b| view(b, dp.as_ref())).collect(),
            })
        })
        .await?;
    Ok(Json(out))
}

#[utoipa::path(post, path = "/v1/load-balancers/{lb}/vservers/{vs}/backends", tag = "backends",
    params(("lb" = String, Path), ("vs" = String, Path)), request_body = BackendCreate,
    responses((status = 201, body = BackendView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    actor: Actor,
    Path((lb, vs)): Path<(String, String)>,
    Body(req): Body<BackendCreate>,
) -> ApiResult<Response> {
    let dp = st.dataplane.clone();
    let (b, rev) = st
        .store
        .write(move |tx| {
            let (lb, vs) = lookup(tx, &actor, &lb, &vs)?;
            let basics = req.validate()?;
            let vpc: Vpc = tx
                .get(&lb.vpc_id)?
                .ok_or_else(|| Error::internal(format!("VPC {} of {} is missing", lb.vpc_id, lb.id)))?;
            let instance = match &req.instance_id {
                Some(id) => Some(access::reference::<Instance>(tx, &actor, "instance_id", id)?),
                None => None,
            };
            let address = req.resolve_address(&vpc, instance.as_ref())?;
            let b = Backend {
                id: new_id("rs"),
                lb_id: lb.id.clone(),
                vserver_id: vs.id.clone(),
                instance_id: instance.as_ref().map(|i| i.id.clone()),
                address,
                port: basics.port,
                weight: basics.weight,
                enabled: basics.enabled,
                owner_id: lb.owner_id.clone(),
                created_at: OffsetDateTime::now_utc(),
            };
            backend_claim(tx, &b)?;
            if let Some(i) = &instance {
                tx.claim(&keys::uses(&i.id, &b.id), &b.id)?;
            }
            tx.put(&b)?;
            Ok(view(b, dp.as_ref()))
        })
        .await?;
    Ok(created(rev, b))
}

#[utoipa::path(get, path = "/v1/load-balancers/{lb}/vservers/{vs}/backends/{rs}", tag = "backends",
    params(("lb" = String, Path), ("vs" = String, Path), ("rs" = String, Path)),
    responses((status = 200, body = BackendView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(st): State<AppState>,
    actor: Actor,
    Path((lb, vs, rs)): Path<(String, String, String)>,
) -> ApiResult<Json<BackendView>> {
    let b = st
        .store
        .read(move |tx| lookup_backend(tx, &actor, &lb, &vs, &rs))
        .await?;
    Ok(Json(view(b.2, st.dataplane.as_ref())))
}

fn apply_patch(tx: &mut dyn Txn, mut b: Backend, req: &BackendPatch) -> Result<Backend> {
    let before = (b.port, b.weight, b.enabled);
    if let Some(p) = req.port {
        let port = validate::port("port", p)?;
        if port != b.port {
            tx.release(&keys::backend(&b.vserver_id, b.address, b.port))?;
            b.port = port;
            backend_claim(tx, &b)?;
        }
    }
    if let Some(w) = req.weight {
        b.weight = weight(w)?;
    }
    if let Some(e) = req.enabled {
        b.enabled = e;
    }
    if before != (b.port, b.weight, b.enabled) {
        tx.put(&b)?;
    }
    Ok(b)
}

/// Weight and enabled changes apply to new connections; a disabled backend
/// drains (its connections run on).
#[utoipa::path(patch, path = "/v1/load-balancers/{lb}/vservers/{vs}/backends/{rs}", tag = "backends",
    params(("lb" = String, Path), ("vs" = String, Path), ("rs" = String, Path)), request_body = BackendPatch,
    responses((status = 200, body = BackendView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn patch(
    State(st): State<AppState>,
    actor: Actor,
    Path((lb, vs, rs)): Path<(String, String, String)>,
    Body(req): Body<BackendPatch>,
) -> ApiResult<Response> {
    let dp = st.dataplane.clone();
    let (b, rev) = st
        .store
        .write(move |tx| {
            let (_, _, b) = lookup_backend(tx, &actor, &lb, &vs, &rs)?;
            apply_patch(tx, b, &req).map(|b| view(b, dp.as_ref()))
        })
        .await?;
    Ok(updated(rev, b))
}

#[utoipa::path(delete, path = "/v1/load-balancers/{lb}/vservers/{vs}/backends/{rs}", tag = "backends",
    params(("lb" = String, Path), ("vs" = String, Path), ("rs" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(st): State<AppState>,
    actor: Actor,
    Path((lb, vs, rs)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let ((), rev) = st
        .store
        .write(move |tx| {
            let (_, _, b) = lookup_backend(tx, &actor, &lb, &vs, &rs)?;
            remove_backend(tx, &b)
        })
        .await?;
    Ok(deleted(rev))
}

#[utoipa::path(post, path = "/v1/load-balancers/{lb}/vservers/{vs}/backends/batch", tag = "backends",
    params(("lb" = String, Path), ("vs" = String, Path)), request_body = BackendBatch,
    responses((status = 200, body = BackendBatchResult), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn batch(
    State(st): State<AppState>,
    actor: Actor,
    Path((lb, vs)): Path<(String, String)>,
    Body(req): Body<BackendBatch>,
) -> ApiResult<Response> {
    if req.ids.len() > super::lbs::BATCH_MAX {
        return Err(Error::invalid("ids", format!("at most {} ids per batch", super::lbs::BATCH_MAX)).into());
    }
    let (out, rev) = st
        .store
        .write(move |tx| {
            let (_, vs) = lookup(tx, &actor, &lb, &vs)?;
            let mut out = BackendBatchResult::default();
            for id in &req.ids {
                if out.done.contains(id) {
                    continue;
                }
                let r = match tx.get::<Backend>(id)? {
                    Some(b) if b.vserver_id == vs.id => match req.action {
                        BatchAction::Delete => remove_backend(tx, &b),
                        BatchAction::Enable | BatchAction::Disable => {
                            let p = BackendPatch {
                                enabled: Some(req.action == BatchAction::Enable),
                                ..Default::default()
                            };
                            apply_patch(tx, b, &p).map(|_| ())
                        }
                    },
                    _ => Err(Error::not_found("backend", id)),
                };
                match r {
                    Ok(()) => out.done.push(id.clone()),
                    Err(e) if e.kind == ErrorKind::Internal => return Err(e),
                    Err(e) => out.failed.push(BatchFailure {
                        id: id.clone(),
                        error: (&e).into(),
                    }),
                }
            }
            Ok(out)
        })
        .await?;
    Ok(updated(rev, out))
}
