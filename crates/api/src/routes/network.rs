//! VPCs, subnets, elastic IPs and instances.

use std::net::Ipv4Addr;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use time::OffsetDateTime;
use weir_model::error::ErrorBody;
use weir_model::ids::new_id;
use weir_model::network::{Eip, EipCreate, Instance, InstanceCreate, NamePatch, Subnet, SubnetCreate, Vpc, VpcCreate};
use weir_model::{Error, Kind, Resource, Result};
use weir_store::{Txn, TxnExt};

use super::{List, ListParams, created, deleted, fetch, fetch_list, updated};
use crate::AppState;
use crate::access::{self, keys};
use crate::auth::Actor;
use crate::error::{ApiResult, Body};

/// Resources whose PATCH changes only the name.
trait Renamable: Resource + serde::Serialize {
    fn set_name(&mut self, name: String);
}

macro_rules! renamable {
    ($($t:ty),*) => {$(
        impl Renamable for $t {
            fn set_name(&mut self, name: String) {
                self.name = name;
            }
        }
    )*};
}
renamable!(Vpc, Subnet, Eip, Instance);

async fn rename<R: Renamable>(st: AppState, actor: Actor, id: String, req: NamePatch) -> ApiResult<Response> {
    let name = req.validate()?;
    let (v, rev) = st
        .store
        .write(move |tx| {
            let mut v: R = access::visible(tx, &actor, &id)?;
            if let Some(n) = &name {
                v.set_name(n.clone());
                tx.put(&v)?;
            }
            Ok(v)
        })
        .await?;
    Ok(updated(rev, v))
}

// ---- VPCs -----------------------------------------------------------------

#[utoipa::path(get, path = "/v1/vpcs", tag = "network", params(ListParams), responses((status = 200, body = List<Vpc>)))]
pub async fn list_vpcs(State(st): State<AppState>, actor: Actor, RawQuery(q): RawQuery) -> ApiResult<Json<List<Vpc>>> {
    fetch_list(&st, actor, q).await.map(Json)
}

#[utoipa::path(post, path = "/v1/vpcs", tag = "network", request_body = VpcCreate,
    responses((status = 201, body = Vpc), (status = 400, body = ErrorBody)))]
pub async fn create_vpc(State(st): State<AppState>, actor: Actor, Body(req): Body<VpcCreate>) -> ApiResult<Response> {
    let (name, cidr) = req.validate()?;
    let (vpc, rev) = st
        .store
        .write(move |tx| {
            let vpc = Vpc {
                id: new_id("vpc"),
                name: name.clone(),
                cidr,
                owner_id: actor.id().to_string(),
                created_at: OffsetDateTime::now_utc(),
            };
            tx.put(&vpc)?;
            Ok(vpc)
        })
        .await?;
    Ok(created(rev, vpc))
}

#[utoipa::path(get, path = "/v1/vpcs/{id}", tag = "network", params(("id" = String, Path)),
    responses((status = 200, body = Vpc), (status = 404, body = ErrorBody)))]
pub async fn get_vpc(State(st): State<AppState>, actor: Actor, Path(id): Path<String>) -> ApiResult<Json<Vpc>> {
    fetch(&st, actor, id).await.map(Json)
}

#[utoipa::path(patch, path = "/v1/vpcs/{id}", tag = "network", params(("id" = String, Path)), request_body = NamePatch,
    responses((status = 200, body = Vpc), (status = 404, body = ErrorBody)))]
pub async fn patch_vpc(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Body(req): Body<NamePatch>,
) -> ApiResult<Response> {
    rename::<Vpc>(st, actor, id, req).await
}

#[utoipa::path(delete, path = "/v1/vpcs/{id}", tag = "network", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_vpc(State(st): State<AppState>, actor: Actor, Path(id): Path<String>) -> ApiResult<Response> {
    let ((), rev) = st
        .store
        .write(move |tx| {
            let v: Vpc = access::visible(tx, &actor, &id)?;
            let subnets = tx.count(Kind::Subnet, &v.id)?;
            if subnets > 0 {
                return Err(Error::conflict(
                    "in_use",
                    format!("VPC {} still has {subnets} subnet(s)", v.id),
                ));
            }
            let lbs = tx.count(Kind::LoadBalancer, &v.id)?;
            if lbs > 0 {
                return Err(Error::conflict(
                    "in_use",
                    format!("VPC {} still has {lbs} load balancer(s)", v.id),
                ));
            }
            tx.delete::<Vpc>(&v.id)?;
            Ok(())
        })
        .await?;
    Ok(deleted(rev))
}

// ---- Subnets --------------------------------------------------------------

#[utoipa::path(get, path = "/v1/subnets", tag = "network", params(ListParams), responses((status = 200, body = List<Subnet>)))]
pub async fn list_subnets(
    State(st): State<AppState>,
    actor: Actor,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<List<Subnet>>> {
    fetch_list(&st, actor, q).await.map(Json)
}

#[utoipa::path(post, path = "/v1/subnets", tag = "network", request_body = SubnetCreate,
    responses((status = 201, body = Subnet), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_subnet(
    State(st): State<AppState>,
    actor: Actor,
    Body(req): Body<SubnetCreate>,
) -> ApiResult<Response> {
    let (s, rev) = st
        .store
        .write(move |tx| {
            let vpc: Vpc = access::reference(tx, &actor, "vpc_id", &req.vpc_id)?;
            let siblings = tx.children::<Subnet>(&vpc.id)?;
            let (name, cidr) = req.validate(&vpc, &siblings)?;
            let s = Subnet {
                id: new_id("subnet"),
                vpc_id: vpc.id.clone(),
                name,
                cidr,
                owner_id: vpc.owner_id.clone(),
                created_at: OffsetDateTime::now_utc(),
            };
            tx.put(&s)?;
            Ok(s)
        })
        .await?;
    Ok(created(rev, s))
}

#[utoipa::path(get, path = "/v1/subnets/{id}", tag = "network", params(("id" = String, Path)),
    responses((status = 200, body = Subnet), (status = 404, body = ErrorBody)))]
pub async fn get_subnet(State(st): State<AppState>, actor: Actor, Path(id): Path<String>) -> ApiResult<Json<Subnet>> {
    fetch(&st, actor, id).await.map(Json)
}

#[utoipa::path(patch, path = "/v1/subnets/{id}", tag = "network", params(("id" = String, Path)), request_body = NamePatch,
    responses((status = 200, body = Subnet), (status = 404, body = ErrorBody)))]
pub async fn patch_subnet(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Body(req): Body<NamePatch>,
) -> ApiResult<Response> {
    rename::<Subnet>(st, actor, id, req).await
}

#[utoipa::path(delete, path = "/v1/subnets/{id}", tag = "network", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_subnet(State(st): State<AppState>, actor: Actor, Path(id): Path<String>) -> ApiResult<Response> {
    let ((), rev) = st
        .store
        .write(move |tx| {
            let s: Subnet = access::visible(tx, &actor, &id)?;
            let instances = tx.count(Kind::Instance, &s.id)?;
            if instances > 0 {
                return Err(Error::conflict(
                    "in_use",
                    format!("subnet {} still has {instances} instance(s)", s.id),
                ));
            }
            access::ensure_unused(
                tx,
                &keys::uses_prefix(&s.id),
                &format!("subnet {}", s.id),
                "load balancer(s)",
            )?;
            tx.release(&format!("alloc/{}", s.id))?;
            tx.delete::<Subnet>(&s.id)?;
            Ok(())
        })
        .await?;
    Ok(deleted(rev))
}

// ---- Elastic IPs ----------------------------------------------------------

/// Is `ip` free for a new EIP or LB ingress? (No EIP holds it, no LB uses it.)
pub fn address_free(tx: &mut dyn Txn, ip: Ipv4Addr) -> Result<bool> {
    Ok(tx.holder(&keys::eip(ip))?.is_none() && tx.holder(&keys::lb_address(ip))?.is_none())
}

/// Allocates an EIP (a given address, or the first free one of the pool)
/// owned by `owner`, bound to `lb_id` when given.
pub fn allocate_eip(
    tx: &mut dyn Txn,
    pool: &[ipnet::Ipv4Net],
    req: &EipCreate,
    owner: &str,
    lb_id: Option<&str>,
) -> Result<Eip> {
    let (name, wanted) = req.validate(pool)?;
    let address = match wanted {
        Some(ip) => {
            if !address_free(tx, ip)? {
                return Err(Error::conflict("address_in_use", format!("{ip} is already allocated")).at("address"));
            }
            ip
        }
        None => {
            let mut found = None;
            for net in pool {
                found = access::next_free_address(tx, *net, &format!("alloc/pool/{net}"), address_free)?;
                if found.is_some() {
                    break;
                }
            }
            found.ok_or_else(|| Error::conflict("pool_exhausted", "the elastic IP pool has no free address"))?
        }
    };
    let eip = Eip {
        id: new_id("eip"),
        name,
        address,
        lb_id: lb_id.map(str::to_string),
        owner_id: owner.to_string(),
        created_at: OffsetDateTime::now_utc(),
    };
    tx.claim(&keys::eip(address), &eip.id)?;
    tx.put(&eip)?;
    Ok(eip)
}

#[utoipa::path(get, path = "/v1/eips", tag = "network", params(ListParams), responses((status = 200, body = List<Eip>)))]
pub async fn list_eips(State(st): State<AppState>, actor: Actor, RawQuery(q): RawQuery) -> ApiResult<Json<List<Eip>>> {
    fetch_list(&st, actor, q).await.map(Json)
}

#[utoipa::path(post, path = "/v1/eips", tag = "network", request_body = EipCreate,
    responses((status = 201, body = Eip), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_eip(State(st): State<AppState>, actor: Actor, Body(req): Body<EipCreate>) -> ApiResult<Response> {
    let pool = st.config.eip_pool.clone();
    let (e, rev) = st
        .store
        .write(move |tx| allocate_eip(tx, &pool, &req, actor.id(), None))
        .await?;
    Ok(created(rev, e))
}

#[utoipa::path(get, path = "/v1/eips/{id}", tag = "network", params(("id" = String, Path)),
    responses((status = 200, body = Eip), (status = 404, body = ErrorBody)))]
pub async fn get_eip(State(st): State<AppState>, actor: Actor, Path(id): Path<String>) -> ApiResult<Json<Eip>> {
    fetch(&st, actor, id).await.map(Json)
}

#[utoipa::path(patch, path = "/v1/eips/{id}", tag = "network", params(("id" = String, Path)), request_body = NamePatch,
    responses((status = 200, body = Eip), (status = 404, body = ErrorBody)))]
pub async fn patch_eip(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Body(req): Body<NamePatch>,
) -> ApiResult<Response> {
    rename::<Eip>(st, actor, id, req).await
}

#[utoipa::path(delete, path = "/v1/eips/{id}", tag = "network", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_eip(State(st): State<AppState>, actor: Actor, Path(id): Path<String>) -> ApiResult<Response> {
    let ((), rev) = st
        .store
        .write(move |tx| {
            let e: Eip = access::visible(tx, &actor, &id)?;
            if let Some(lb) = &e.lb_id {
                return Err(Error::conflict(
                    "in_use",
                    format!("EIP {} is bound to load balancer {lb}", e.id),
                ));
            }
            tx.release(&keys::eip(e.address))?;
            tx.delete::<Eip>(&e.id)?;
            Ok(())
        })
        .await?;
    Ok(deleted(rev))
}

// ---- Instances ------------------------------------------------------------

#[utoipa::path(get, path = "/v1/instances", tag = "network", params(ListParams), responses((status = 200, body = List<Instance>)))]
pub async fn list_instances(
    State(st): State<AppState>,
    actor: Actor,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<List<Instance>>> {
    fetch_list(&st, actor, q).await.map(Json)
}

#[utoipa::path(post, path = "/v1/instances", tag = "network", request_body = InstanceCreate,
    responses((status = 201, body = Instance), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_instance(
    State(st): State<AppState>,
    actor: Actor,
    Body(req): Body<InstanceCreate>,
) -> ApiResult<Response> {
    let (i, rev) = st
        .store
        .write(move |tx| {
            let subnet: Subnet = access::reference(tx, &actor, "subnet_id", &req.subnet_id)?;
            let (name, ip) = req.validate(&subnet)?;
            let inst = Instance {
                id: new_id("vm"),
                name,
                subnet_id: subnet.id.clone(),
                vpc_id: subnet.vpc_id.clone(),
                private_ip: ip,
                owner_id: subnet.owner_id.clone(),
                created_at: OffsetDateTime::now_utc(),
            };
            access::claim(tx, &keys::vpc_ip(&subnet.vpc_id, ip), &inst.id, |other| {
                Error::conflict("address_in_use", format!("{ip} is already used in this VPC by {other}"))
                    .at("private_ip")
            })?;
            tx.put(&inst)?;
            Ok(inst)
        })
        .await?;
    Ok(created(rev, i))
}

#[utoipa::path(get, path = "/v1/instances/{id}", tag = "network", params(("id" = String, Path)),
    responses((status = 200, body = Instance), (status = 404, body = ErrorBody)))]
pub async fn get_instance(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Instance>> {
    fetch(&st, actor, id).await.map(Json)
}

#[utoipa::path(patch, path = "/v1/instances/{id}", tag = "network", params(("id" = String, Path)), request_body = NamePatch,
    responses((status = 200, body = Instance), (status = 404, body = ErrorBody)))]
pub async fn patch_instance(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Body(req): Body<NamePatch>,
) -> ApiResult<Response> {
    rename::<Instance>(st, actor, id, req).await
}

#[utoipa::path(delete, path = "/v1/instances/{id}", tag = "network", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_instance(State(st): State<AppState>, actor: Actor, Path(id): Path<String>) -> ApiResult<Response> {
    let ((), rev) = st
        .store
        .write(move |tx| {
            let i: Instance = access::visible(tx, &actor, &id)?;
            access::ensure_unused(
                tx,
                &keys::uses_prefix(&i.id),
                &format!("instance {}", i.id),
                "backend(s)",
            )?;
            tx.release(&keys::vpc_ip(&i.vpc_id, i.private_ip))?;
            tx.delete::<Instance>(&i.id)?;
            Ok(())
        })
        .await?;
    Ok(deleted(rev))
}
