//! VServers: listeners on an LB's address.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use time::OffsetDateTime;
use weir_model::backend::{Backend, BackendStatus};
use weir_model::error::ErrorBody;
use weir_model::ids::new_id;
use weir_model::lb::LoadBalancer;
use weir_model::rule::Rule;
use weir_model::vserver::{
    VServer, VServerCreate, VServerHealth, VServerPatch, VServerSpec, VServerStatus, VServerView, merge_patch,
};
use weir_model::{Error, ErrorKind, Kind, Result};
use weir_store::{Txn, TxnExt};

use super::{List, ListParams, created, deleted, list_params, updated};
use crate::access::{self, keys};
use crate::auth::Actor;
use crate::error::{ApiResult, Body, PatchBody, parse_json};
use crate::{AppState, DataPlaneView, ListenerStatus};

pub fn view(tx: &mut dyn Txn, vs: VServer, dp: &dyn DataPlaneView) -> Result<VServerView> {
    let backends = tx.children::<Backend>(&vs.id)?;
    let enabled: Vec<&Backend> = backends.iter().filter(|b| b.enabled).collect();
    let valid = enabled
        .iter()
        .filter(|b| {
            dp.backend_health(&b.id)
                .is_some_and(|h| h.status == BackendStatus::Valid)
        })
        .count();
    let health = VServerHealth::from_counts(valid, enabled.len());
    let applied = dp.applied_revision();
    let (status, status_message) = if applied < vs.created_revision {
        (VServerStatus::Creating, None)
    } else if applied < vs.updated_revision {
        (VServerStatus::Updating, None)
    } else {
        match dp.listener(&vs.id) {
            Some(ListenerStatus::Bound) => (VServerStatus::Running, None),
            Some(ListenerStatus::Failed(msg)) => (VServerStatus::Error, Some(msg)),
            None => (VServerStatus::Creating, None),
        }
    };
    Ok(VServerView {
        vserver: vs,
        status,
        status_message,
        health,
        backend_count: backends.len() as u64,
    })
}

/// The VServer `vs_id` of the visible LB `lb_id` (404 for either).
pub fn lookup(tx: &mut dyn Txn, actor: &Actor, lb_id: &str, vs_id: &str) -> Result<(LoadBalancer, VServer)> {
    let lb: LoadBalancer = access::visible(tx, actor, lb_id)?;
    match tx.get::<VServer>(vs_id)? {
        Some(vs) if vs.lb_id == lb.id => Ok((lb, vs)),
        _ => Err(Error::not_found("VServer", vs_id)),
    }
}

/// Certificates and the alarm template named by the spec must exist and be
/// visible; they are bound to `vs_id`, replacing the bindings of `old`.
fn check_references(
    tx: &mut dyn Txn,
    actor: &Actor,
    vs_id: &str,
    old: Option<&VServer>,
    spec: &VServerSpec,
) -> Result<()> {
    super::certificates::bind(tx, actor, vs_id, old.and_then(|o| o.tls.as_ref()), spec.tls.as_ref())?;
    super::alarm_templates::rebind(
        tx,
        actor,
        "alarm_template_id",
        vs_id,
        old.and_then(|o| o.alarm_template_id.as_deref()),
        spec.alarm_template_id.as_deref(),
    )
}

fn build(spec: VServerSpec, id: String, lb: &LoadBalancer, created: (OffsetDateTime, u64), rev: u64) -> VServer {
    VServer {
        id,
        lb_id: lb.id.clone(),
        protocol: spec.protocol,
        port: spec.port,
        algorithm: spec.algorithm,
        persistence: spec.persistence,
        idle_timeout_s: spec.idle_timeout_s,
        health_check: spec.health_check,
        proxy_protocol: spec.proxy_protocol,
        forward_headers: spec.forward_headers,
        tls: spec.tls,
        alarm_template_id: spec.alarm_template_id,
        owner_id: lb.owner_id.clone(),
        created_at: created.0,
        created_revision: created.1,
        updated_revision: rev,
    }
}

/// Removes a VServer. Without `cascade` it must have no backends (409).
pub fn remove_vserver(tx: &mut dyn Txn, vs: &VServer, cascade: bool) -> Result<()> {
    let backends = tx.children::<Backend>(&vs.id)?;
    if !cascade && !backends.is_empty() {
        return Err(Error::conflict(
            "in_use",
            format!(
                "VServer {} still has {} backend(s); delete them first",
                vs.id,
                backends.len()
            ),
        ));
    }
    for r in tx.children::<Rule>(&vs.id)? {
        tx.release_all(&r.id)?;
        tx.delete::<Rule>(&r.id)?;
    }
    for b in backends {
        tx.release_all(&b.id)?;
        tx.delete::<Backend>(&b.id)?;
    }
    tx.release_all(&vs.id)?;
    tx.delete::<VServer>(&vs.id)?;
    Ok(())
}

#[utoipa::path(get, path = "/v1/load-balancers/{lb}/vservers", tag = "vservers", params(("lb" = String, Path), ListParams),
    responses((status = 200, body = List<VServerView>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    actor: Actor,
    Path(lb): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<List<VServerView>>> {
    let p = list_params(q.as_deref())?;
    let dp = st.dataplane.clone();
    let out = st
        .store
        .read(move |tx| {
            let lb: LoadBalancer = access::visible(tx, &actor, &lb)?;
            let page = tx.list::<VServer>(&p.query(Kind::VServer, &lb.id))?;
            let items = page
                .items
                .into_iter()
                .map(|vs| view(tx, vs, dp.as_ref()))
                .collect::<Result<Vec<_>>>()?;
            Ok(List {
                total: page.total,
                items,
            })
        })
        .await?;
    Ok(Json(out))
}

#[utoipa::path(post, path = "/v1/load-balancers/{lb}/vservers", tag = "vservers", params(("lb" = String, Path)),
    request_body = VServerCreate,
    responses((status = 201, body = VServerView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    actor: Actor,
    Path(lb): Path<String>,
    Body(req): Body<VServerCreate>,
) -> ApiResult<Response> {
    let reserved = st.config.reserved_ports.clone();
    let dp = st.dataplane.clone();
    let (v, rev) = st
        .store
        .write(move |tx| {
            let lb: LoadBalancer = access::visible(tx, &actor, &lb)?;
            let spec = req.validate(&reserved)?;
            let id = new_id("vs");
            check_references(tx, &actor, &id, None, &spec)?;
            let (transport, port) = (spec.protocol.transport(), spec.port);
            access::claim(tx, &keys::port(&lb.id, transport, port), &id, |other| {
                Error::conflict(
                    "port_in_use",
                    format!(
                        "{transport} port {port} of load balancer {} is used by VServer {other}",
                        lb.id
                    ),
                )
                .at("port")
            })?;
            let rev = tx.revision();
            let vs = build(spec, id, &lb, (OffsetDateTime::now_utc(), rev), rev);
            tx.put(&vs)?;
            view(tx, vs, dp.as_ref())
        })
        .await?;
    Ok(created(rev, v))
}

#[utoipa::path(get, path = "/v1/load-balancers/{lb}/vservers/{vs}", tag = "vservers",
    params(("lb" = String, Path), ("vs" = String, Path)),
    responses((status = 200, body = VServerView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(st): State<AppState>,
    actor: Actor,
    Path((lb, vs)): Path<(String, String)>,
) -> ApiResult<Json<VServerView>> {
    let dp = st.dataplane.clone();
    let v = st
        .store
        .read(move |tx| {
            let (_, vs) = lookup(tx, &actor, &lb, &vs)?;
            view(tx, vs, dp.as_ref())
        })
        .await?;
    Ok(Json(v))
}

/// A JSON merge patch over the VServer's spec; everything but `protocol`
/// and `port` may change. Changes apply to new connections only.
#[utoipa::path(patch, path = "/v1/load-balancers/{lb}/vservers/{vs}", tag = "vservers",
    params(("lb" = String, Path), ("vs" = String, Path)), request_body = VServerPatch,
    responses((status = 200, body = VServerView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn patch(
    State(st): State<AppState>,
    actor: Actor,
    Path((lb, vs)): Path<(String, String)>,
    PatchBody(shape, raw): PatchBody<VServerPatch>,
) -> ApiResult<Response> {
    let reserved = st.config.reserved_ports.clone();
    let dp = st.dataplane.clone();
    let (v, rev) = st
        .store
        .write(move |tx| {
            let (lb, vs) = lookup(tx, &actor, &lb, &vs)?;
            // Present with another value, or null (a merge patch's removal).
            if raw.get("protocol").is_some() && shape.protocol != Some(vs.protocol) {
                return Err(immutable("protocol"));
            }
            if raw.get("port").is_some() && shape.port != Some(i64::from(vs.port)) {
                return Err(immutable("port"));
            }
            let mut merged = vs.spec_json();
            merge_patch(&mut merged, &raw);
            let bytes = serde_json::to_vec(&merged).map_err(|e| Error::internal(e.to_string()))?;
            let req: VServerCreate = parse_json(&bytes)?;
            let spec = req.validate(&reserved)?;
            check_references(tx, &actor, &vs.id, Some(&vs), &spec)?;
            let next = build(
                spec,
                vs.id.clone(),
                &lb,
                (vs.created_at, vs.created_revision),
                tx.revision(),
            );
            let unchanged = next.spec_json() == vs.spec_json();
            let out = if unchanged { vs } else { next };
            if !unchanged {
                tx.put(&out)?;
            }
            view(tx, out, dp.as_ref())
        })
        .await?;
    Ok(updated(rev, v))
}

fn immutable(field: &str) -> Error {
    Error::new(
        ErrorKind::Invalid,
        "immutable_field",
        format!("{field} cannot be changed; create a new VServer instead"),
    )
    .at(field)
}

#[utoipa::path(delete, path = "/v1/load-balancers/{lb}/vservers/{vs}", tag = "vservers",
    params(("lb" = String, Path), ("vs" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(st): State<AppState>,
    actor: Actor,
    Path((lb, vs)): Path<(String, String)>,
) -> ApiResult<Response> {
    let ((), rev) = st
        .store
        .write(move |tx| {
            let (_, vs) = lookup(tx, &actor, &lb, &vs)?;
            remove_vserver(tx, &vs, false)
        })
        .await?;
    Ok(deleted(rev))
}
