//! Load balancers: create (address allocation), list/search, update, renew,
//! delete (cascading), batch delete and the Excel export.

use std::net::Ipv4Addr;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;
use weir_model::error::ErrorBody;
use weir_model::ids::new_id;
use weir_model::lb::{
    BatchDeleteResult, BatchFailure, BatchIds, EipRef, LbStatus, LoadBalancer, LoadBalancerCreate, LoadBalancerPatch,
    LoadBalancerView, NetworkType, Renew,
};
use weir_model::network::{Eip, EipCreate, SecurityGroup, Subnet, Vpc};
use weir_model::vserver::VServer;
use weir_model::{Error, Kind, Result, validate};
use weir_store::{Txn, TxnExt};

use super::network::{address_free, allocate_eip};
use super::{List, ListParams, created, deleted, list_params, updated};
use crate::access::{self, keys};
use crate::auth::Actor;
use crate::error::{ApiResult, Body, PatchBody};
use crate::{AppState, export};

pub fn view(tx: &mut dyn Txn, lb: LoadBalancer, applied: u64) -> Result<LoadBalancerView> {
    let vserver_count = tx.count(Kind::VServer, &lb.id)?;
    let status = if applied >= lb.created_revision {
        LbStatus::Active
    } else {
        LbStatus::Creating
    };
    Ok(LoadBalancerView {
        lb,
        status,
        vserver_count,
    })
}

/// The next address of the subnet that no instance, LB or EIP holds.
fn allocate_private_ip(tx: &mut dyn Txn, subnet: &Subnet, internal: bool) -> Result<Ipv4Addr> {
    let vpc = subnet.vpc_id.clone();
    let found = access::next_free_address(tx, subnet.cidr, &format!("alloc/{}", subnet.id), |tx, ip| {
        Ok(tx.holder(&keys::vpc_ip(&vpc, ip))?.is_none() && (!internal || address_free(tx, ip)?))
    })?;
    found.ok_or_else(|| {
        Error::conflict("subnet_exhausted", format!("subnet {} has no free address", subnet.id)).at("subnet_id")
    })
}

fn create_lb(
    tx: &mut dyn Txn,
    actor: &Actor,
    req: &LoadBalancerCreate,
    pool: &[ipnet::Ipv4Net],
) -> Result<LoadBalancer> {
    let basics = req.validate()?;
    let vpc: Vpc = access::reference(tx, actor, "vpc_id", &req.vpc_id)?;
    let subnet: Subnet = access::reference(tx, actor, "subnet_id", &req.subnet_id)?;
    if subnet.vpc_id != vpc.id {
        return Err(Error::invalid(
            "subnet_id",
            format!("subnet {} is not in VPC {}", subnet.id, vpc.id),
        ));
    }
    if let Some(a) = &req.alarm_template_id {
        access::reference_raw(tx, actor, Kind::AlarmTemplate, "alarm_template_id", a)?;
    }
    if let Some(sg) = &req.security_group_id {
        access::reference::<SecurityGroup>(tx, actor, "security_group_id", sg)?;
    }
    let id = new_id("lb");
    let internal = req.network_type == NetworkType::Internal;
    let private_ip = match basics.private_ip {
        Some(ip) => {
            if !validate::is_usable_host(subnet.cidr, ip) {
                return Err(Error::invalid(
                    "private_ip",
                    format!(
                        "{ip} is not a usable host address of subnet {} ({})",
                        subnet.id, subnet.cidr
                    ),
                ));
            }
            if tx.holder(&keys::vpc_ip(&vpc.id, ip))?.is_some() || !address_free(tx, ip)? {
                return Err(Error::conflict("address_in_use", format!("{ip} is already in use")).at("private_ip"));
            }
            ip
        }
        None => allocate_private_ip(tx, &subnet, internal)?,
    };
    let owner = vpc.owner_id.clone();
    let eip = if internal {
        None
    } else {
        let eip = match &req.eip_id {
            Some(eid) => {
                let mut e: Eip = access::reference(tx, actor, "eip_id", eid)?;
                if let Some(other) = &e.lb_id {
                    return Err(Error::conflict(
                        "eip_in_use",
                        format!("EIP {} is bound to load balancer {other}", e.id),
                    )
                    .at("eip_id"));
                }
                e.lb_id = Some(id.clone());
                tx.put(&e)?;
                e
            }
            None => allocate_eip(tx, pool, &EipCreate::default(), &owner, Some(&id))?,
        };
        Some(EipRef {
            id: eip.id,
            address: eip.address,
        })
    };
    let address = eip.as_ref().map_or(private_ip, |e| e.address);
    access::claim(tx, &keys::lb_address(address), &id, |other| {
        Error::conflict(
            "address_in_use",
            format!("{address} is the address of load balancer {other}"),
        )
    })?;
    tx.claim(&keys::vpc_ip(&vpc.id, private_ip), &id)?;
    tx.claim(&keys::uses(&subnet.id, &id), &id)?;
    if let Some(sg) = &req.security_group_id {
        tx.claim(&keys::uses(sg, &id), &id)?;
    }
    if let Some(a) = &req.alarm_template_id {
        tx.claim(&keys::uses(a, &id), &id)?;
    }
    let now = OffsetDateTime::now_utc();
    let lb = LoadBalancer {
        id,
        name: basics.name,
        comment: basics.comment,
        network_type: req.network_type,
        vpc_id: vpc.id,
        subnet_id: subnet.id,
        private_ip,
        eip,
        address,
        security_group_id: req.security_group_id.clone(),
        alarm_template_id: req.alarm_template_id.clone(),
        billing_mode: req.billing_mode,
        owner_id: owner,
        created_at: now,
        expires_at: req.billing_mode.add_periods(now, 1),
        created_revision: tx.revision(),
    };
    tx.put(&lb)?;
    Ok(lb)
}

/// Deletes an LB with its VServers, backends and rules, frees its addresses
/// and unbinds its EIP (the EIP stays allocated to the tenant).
pub fn delete_lb(tx: &mut dyn Txn, lb: &LoadBalancer) -> Result<()> {
    for vs in tx.children::<VServer>(&lb.id)? {
        super::vservers::remove_vserver(tx, &vs, true)?;
    }
    if let Some(e) = &lb.eip
        && let Some(mut eip) = tx.get::<Eip>(&e.id)?
    {
        eip.lb_id = None;
        tx.put(&eip)?;
    }
    // Address, VPC IP and `uses/…/<lb>` claims are all held by the LB's id.
    tx.release_all(&lb.id)?;
    tx.delete::<LoadBalancer>(&lb.id)?;
    Ok(())
}

#[utoipa::path(get, path = "/v1/load-balancers", tag = "load balancers", params(ListParams),
    responses((status = 200, body = List<LoadBalancerView>)))]
pub async fn list(
    State(st): State<AppState>,
    actor: Actor,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<List<LoadBalancerView>>> {
    let p = list_params(q.as_deref())?;
    let applied = st.applied_revision();
    let out = st
        .store
        .read(move |tx| {
            let mut q = actor.query(Kind::LoadBalancer);
            q.search = p.search;
            q.limit = Some(p.limit);
            q.offset = p.offset;
            let page = tx.list::<LoadBalancer>(&q)?;
            let items = page
                .items
                .into_iter()
                .map(|lb| view(tx, lb, applied))
                .collect::<Result<Vec<_>>>()?;
            Ok(List {
                items,
                total: page.total,
            })
        })
        .await?;
    Ok(Json(out))
}

#[utoipa::path(post, path = "/v1/load-balancers", tag = "load balancers", request_body = LoadBalancerCreate,
    responses((status = 201, body = LoadBalancerView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    actor: Actor,
    Body(req): Body<LoadBalancerCreate>,
) -> ApiResult<Response> {
    let pool = st.config.eip_pool.clone();
    let dp = st.dataplane.clone();
    let (v, rev) = st
        .store
        .write(move |tx| {
            let lb = create_lb(tx, &actor, &req, &pool)?;
            let applied = dp.applied_revision();
            view(tx, lb, applied)
        })
        .await?;
    Ok(created(rev, v))
}

#[utoipa::path(get, path = "/v1/load-balancers/{id}", tag = "load balancers", params(("id" = String, Path)),
    responses((status = 200, body = LoadBalancerView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<LoadBalancerView>> {
    let applied = st.applied_revision();
    let v = st
        .store
        .read(move |tx| {
            let lb = access::visible::<LoadBalancer>(tx, &actor, &id)?;
            view(tx, lb, applied)
        })
        .await?;
    Ok(Json(v))
}

#[utoipa::path(patch, path = "/v1/load-balancers/{id}", tag = "load balancers", params(("id" = String, Path)),
    request_body = LoadBalancerPatch,
    responses((status = 200, body = LoadBalancerView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn patch(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    PatchBody(req, _): PatchBody<LoadBalancerPatch>,
) -> ApiResult<Response> {
    let name = req.name.as_deref().map(|n| validate::name("name", n)).transpose()?;
    let comment = req
        .comment
        .as_deref()
        .map(|c| validate::comment("comment", c))
        .transpose()?;
    let dp = st.dataplane.clone();
    let (v, rev) = st
        .store
        .write(move |tx| {
            let mut lb: LoadBalancer = access::visible(tx, &actor, &id)?;
            let before = serde_json::to_value(&lb).map_err(|e| Error::internal(e.to_string()))?;
            if let Some(n) = &name {
                lb.name = n.clone();
            }
            if let Some(c) = &comment {
                lb.comment = c.clone();
            }
            if let Some(sg) = &req.security_group_id {
                if sg.is_some() && lb.network_type == NetworkType::Internal {
                    return Err(Error::not_allowed(
                        "security_group_id",
                        "security groups apply to external load balancers only",
                    ));
                }
                if let Some(new) = sg {
                    access::reference::<SecurityGroup>(tx, &actor, "security_group_id", new)?;
                }
                if let Some(old) = &lb.security_group_id {
                    tx.release(&keys::uses(old, &lb.id))?;
                }
                if let Some(new) = sg {
                    tx.claim(&keys::uses(new, &lb.id), &lb.id)?;
                }
                lb.security_group_id = sg.clone();
            }
            if let Some(a) = &req.alarm_template_id {
                super::alarm_templates::rebind(
                    tx,
                    &actor,
                    "alarm_template_id",
                    &lb.id,
                    lb.alarm_template_id.as_deref(),
                    a.as_deref(),
                )?;
                lb.alarm_template_id = a.clone();
            }
            let after = serde_json::to_value(&lb).map_err(|e| Error::internal(e.to_string()))?;
            if before != after {
                tx.put(&lb)?;
            }
            let applied = dp.applied_revision();
            view(tx, lb, applied)
        })
        .await?;
    Ok(updated(rev, v))
}

#[utoipa::path(delete, path = "/v1/load-balancers/{id}", tag = "load balancers", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(State(st): State<AppState>, actor: Actor, Path(id): Path<String>) -> ApiResult<Response> {
    let ((), rev) = st
        .store
        .write(move |tx| {
            let lb: LoadBalancer = access::visible(tx, &actor, &id)?;
            delete_lb(tx, &lb)
        })
        .await?;
    Ok(deleted(rev))
}

pub const BATCH_MAX: usize = 1000;

#[utoipa::path(post, path = "/v1/load-balancers/batch-delete", tag = "load balancers", request_body = BatchIds,
    responses((status = 200, body = BatchDeleteResult), (status = 400, body = ErrorBody)))]
pub async fn batch_delete(State(st): State<AppState>, actor: Actor, Body(req): Body<BatchIds>) -> ApiResult<Response> {
    if req.ids.len() > BATCH_MAX {
        return Err(Error::invalid("ids", format!("at most {BATCH_MAX} ids per batch")).into());
    }
    let (out, rev) = st
        .store
        .write(move |tx| {
            let mut out = BatchDeleteResult::default();
            for id in &req.ids {
                if out.deleted.contains(id) {
                    continue;
                }
                let r = access::visible::<LoadBalancer>(tx, &actor, id).and_then(|lb| delete_lb(tx, &lb));
                match r {
                    Ok(()) => out.deleted.push(id.clone()),
                    Err(e) if e.kind == weir_model::ErrorKind::Internal => return Err(e),
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

#[utoipa::path(post, path = "/v1/load-balancers/{id}/renew", tag = "load balancers", params(("id" = String, Path)),
    request_body = Renew,
    responses((status = 200, body = LoadBalancerView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn renew(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Body(req): Body<Renew>,
) -> ApiResult<Response> {
    let dp = st.dataplane.clone();
    let (v, rev) = st
        .store
        .write(move |tx| {
            let mut lb: LoadBalancer = access::visible(tx, &actor, &id)?;
            let n = req.validate(lb.billing_mode)?;
            // An expired LB is renewed from now, a running one from its expiry.
            let from = lb.expires_at.max(OffsetDateTime::now_utc());
            lb.expires_at = lb.billing_mode.add_periods(from, n);
            tx.put(&lb)?;
            let applied = dp.applied_revision();
            view(tx, lb, applied)
        })
        .await?;
    Ok(updated(rev, v))
}

/// The visible (and searched) load balancers as an Excel workbook.
#[utoipa::path(get, path = "/v1/load-balancers/export.xlsx", tag = "load balancers", params(ListParams),
    responses((status = 200, content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        description = "one row per visible load balancer")))]
pub async fn export(State(st): State<AppState>, actor: Actor, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = list_params(q.as_deref())?;
    let applied = st.applied_revision();
    let rows = st
        .store
        .read(move |tx| {
            let mut q = actor.query(Kind::LoadBalancer);
            q.search = p.search;
            let page = tx.list::<LoadBalancer>(&q)?;
            let mut rows = Vec::with_capacity(page.items.len());
            for lb in page.items {
                let vpc = tx.get::<Vpc>(&lb.vpc_id)?.map(|v| v.name).unwrap_or_default();
                let subnet = tx.get::<Subnet>(&lb.subnet_id)?.map(|s| s.name).unwrap_or_default();
                rows.push((view(tx, lb, applied)?, vpc, subnet));
            }
            Ok(rows)
        })
        .await?;
    let bytes = export::workbook(&rows)?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"load-balancers.xlsx\"",
            ),
        ],
        bytes,
    )
        .into_response())
}
