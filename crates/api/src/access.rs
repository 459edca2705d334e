//! Tenancy-aware lookups used inside store transactions.

use weir_model::{Error, Kind, Resource, Result};
use weir_store::{Txn, TxnExt};

use crate::auth::Actor;

/// The resource addressed by the URL: 404 when absent or not visible, so
/// another tenant's resource is indistinguishable from none.
pub fn visible<R: Resource>(tx: &mut dyn Txn, actor: &Actor, id: &str) -> Result<R> {
    match tx.get::<R>(id)? {
        Some(r) if actor.sees_resource(&r) => Ok(r),
        _ => Err(Error::not_found(R::KIND.human(), id)),
    }
}

/// A resource named by a body field: 400 `invalid_reference` naming it.
pub fn reference<R: Resource>(tx: &mut dyn Txn, actor: &Actor, field: &str, id: &str) -> Result<R> {
    match tx.get::<R>(id)? {
        Some(r) if actor.sees_resource(&r) => Ok(r),
        _ => Err(Error::reference(field, R::KIND.human(), id)),
    }
}

/// A reference to a kind whose model lives in a later crate (certificates,
/// alarm templates): checked by id and owner on the stored JSON.
pub fn reference_raw(tx: &mut dyn Txn, actor: &Actor, kind: Kind, field: &str, id: &str) -> Result<()> {
    let owner = tx
        .get_raw(kind, id)?
        .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("owner_id").and_then(|o| o.as_str()).map(str::to_string));
    match owner {
        Some(o) if actor.sees(&o) => Ok(()),
        _ => Err(Error::reference(field, kind.human(), id)),
    }
}

/// 409 `in_use` when any claim starts with `prefix`.
pub fn ensure_unused(tx: &mut dyn Txn, prefix: &str, what: &str, by: &str) -> Result<()> {
    let users = tx.claims_with_prefix(prefix, 5)?;
    if users.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = users.iter().map(|(_, h)| h.as_str()).collect();
    Err(Error::conflict(
        "in_use",
        format!("{what} is in use by {by} {}", ids.join(", ")),
    ))
}

/// Takes a uniqueness claim, or fails with `message(current holder)`.
pub fn claim(tx: &mut dyn Txn, key: &str, holder: &str, message: impl FnOnce(&str) -> Error) -> Result<()> {
    match tx.claim(key, holder)? {
        None => Ok(()),
        Some(other) => Err(message(&other)),
    }
}

/// The next usable host of `net` for which `free` holds, scanning from just
/// after the address last handed out (remembered in the claim `hint_key`),
/// so allocation stays O(1) as the prefix fills. `None` when none is free.
pub fn next_free_address(
    tx: &mut dyn Txn,
    net: ipnet::Ipv4Net,
    hint_key: &str,
    mut free: impl FnMut(&mut dyn Txn, std::net::Ipv4Addr) -> Result<bool>,
) -> Result<Option<std::net::Ipv4Addr>> {
    use std::net::Ipv4Addr;
    let first = u32::from(net.network());
    let size = 1u64 << (32 - net.prefix_len());
    let start = match tx.holder(hint_key)?.and_then(|h| h.parse::<Ipv4Addr>().ok()) {
        Some(last) if net.contains(&last) => u64::from(u32::from(last) - first) + 1,
        _ => 0,
    };
    for step in 0..size.min(1 << 20) {
        let ip = Ipv4Addr::from(first + ((start + step) % size) as u32);
        if weir_model::validate::is_usable_host(net, ip) && free(tx, ip)? {
            tx.release(hint_key)?;
            tx.claim(hint_key, &ip.to_string())?;
            return Ok(Some(ip));
        }
    }
    Ok(None)
}

/// Claim keys, in one place so every writer spells them the same.
pub mod keys {
    use std::net::Ipv4Addr;

    /// An LB ingress address, unique across the deployment.
    pub fn lb_address(ip: Ipv4Addr) -> String {
        format!("lbaddr/{ip}")
    }
    pub fn eip(ip: Ipv4Addr) -> String {
        format!("eip/{ip}")
    }
    /// A private IP inside a VPC (instances and LBs).
    pub fn vpc_ip(vpc: &str, ip: Ipv4Addr) -> String {
        format!("vpcip/{vpc}/{ip}")
    }
    pub fn port(lb: &str, transport: &str, port: u16) -> String {
        format!("port/{lb}/{transport}/{port}")
    }
    pub fn backend(vs: &str, ip: Ipv4Addr, port: u16) -> String {
        format!("backend/{vs}/{ip}/{port}")
    }
    pub fn rule(vs: &str, domain: Option<&str>, path: Option<&str>) -> String {
        format!("rule/{vs}/{}/{}", domain.unwrap_or("-"), path.unwrap_or("-"))
    }
    /// `uses/<used>/<user>`: `user` references `used` (409 on deleting `used`).
    pub fn uses(used: &str, user: &str) -> String {
        format!("uses/{used}/{user}")
    }
    pub fn uses_prefix(used: &str) -> String {
        format!("uses/{used}/")
    }
}
