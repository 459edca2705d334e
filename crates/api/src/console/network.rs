//! Network pages: VPCs, subnets, instances and elastic IPs. Each is a
//! searchable, paged table with an inline create form, inline rename and
//! delete (the API answers 409 while something still uses the resource).

use std::collections::HashMap;

use askama::Template;
use axum::Json;
use axum::extract::{RawQuery, State};
use weir_model::Resource;
use weir_model::lb::LoadBalancer;
use weir_model::network::{Instance, Subnet, Vpc};

use super::listing::{Pager, listing};
use super::{Chrome, Ctx, Page, Section, all, named, pairs, param, render, when};
use crate::AppState;
use crate::routes;

/// Id → label, for showing parents by name.
fn labels<R: Resource>(items: &[R], label: impl Fn(&R) -> String) -> HashMap<String, String> {
    items.iter().map(|i| (i.id().to_string(), label(i))).collect()
}

fn label_of(map: &HashMap<String, String>, id: &str) -> String {
    map.get(id).cloned().unwrap_or_else(|| id.to_string())
}

/// How many items each parent id has.
fn counts<'a>(parents: impl IntoIterator<Item = &'a str>) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for p in parents {
        *m.entry(p.to_string()).or_insert(0) += 1;
    }
    m
}

// ---- VPCs -------------------------------------------------------------------

pub struct VpcRow {
    pub id: String,
    pub name: String,
    pub cidr: String,
    pub subnets: usize,
    pub created: String,
}

#[derive(Template)]
#[template(path = "vpcs.html")]
struct VpcsPage {
    chrome: Chrome,
    rows: Vec<VpcRow>,
    search: String,
    search_error: String,
    pager: Pager,
}

pub async fn vpcs(State(st): State<AppState>, ctx: Ctx, RawQuery(q): RawQuery) -> Page {
    const S: Section = Section::Vpcs;
    let l = listing(&ctx, S, "/vpcs", "", q.as_deref(), |query| async {
        routes::network::list_vpcs(State(st.clone()), ctx.actor.clone(), RawQuery(Some(query)))
            .await
            .map(|Json(l)| l)
    })
    .await?;
    let subnets: Vec<Subnet> = ctx.ok(S, all(&st, &ctx.actor).await)?;
    let n = counts(subnets.iter().map(|s| s.vpc_id.as_str()));
    let page = VpcsPage {
        chrome: ctx.chrome(S),
        rows: l
            .items
            .iter()
            .map(|v| VpcRow {
                id: v.id.clone(),
                name: v.name.clone(),
                cidr: v.cidr.to_string(),
                subnets: n.get(&v.id).copied().unwrap_or(0),
                created: when(v.created_at),
            })
            .collect(),
        search: l.search,
        search_error: l.search_error,
        pager: l.pager,
    };
    Ok(render(&page))
}

// ---- Subnets ----------------------------------------------------------------

pub struct SubnetRow {
    pub id: String,
    pub name: String,
    pub cidr: String,
    pub vpc_id: String,
    pub vpc: String,
    pub instances: usize,
    pub created: String,
}

#[derive(Template)]
#[template(path = "subnets.html")]
struct SubnetsPage {
    chrome: Chrome,
    rows: Vec<SubnetRow>,
    search: String,
    search_error: String,
    pager: Pager,
    vpcs: Vec<super::Choice>,
}

pub async fn subnets(State(st): State<AppState>, ctx: Ctx, RawQuery(q): RawQuery) -> Page {
    const S: Section = Section::Subnets;
    let l = listing(&ctx, S, "/subnets", "", q.as_deref(), |query| async {
        routes::network::list_subnets(State(st.clone()), ctx.actor.clone(), RawQuery(Some(query)))
            .await
            .map(|Json(l)| l)
    })
    .await?;
    let vpcs: Vec<Vpc> = ctx.ok(S, all(&st, &ctx.actor).await)?;
    let instances: Vec<Instance> = ctx.ok(S, all(&st, &ctx.actor).await)?;
    let vpc_names = labels(&vpcs, |v| format!("{} {}", named(&v.name, &v.id), v.cidr));
    let n = counts(instances.iter().map(|i| i.subnet_id.as_str()));
    // `?vpc=` preselects the VPC of the create form (links from the VPC page).
    let wanted = param(&pairs(q.as_deref()), "vpc");
    let page = SubnetsPage {
        chrome: ctx.chrome(S),
        rows: l
            .items
            .iter()
            .map(|s| SubnetRow {
                id: s.id.clone(),
                name: s.name.clone(),
                cidr: s.cidr.to_string(),
                vpc_id: s.vpc_id.clone(),
                vpc: label_of(&vpc_names, &s.vpc_id),
                instances: n.get(&s.id).copied().unwrap_or(0),
                created: when(s.created_at),
            })
            .collect(),
        search: l.search,
        search_error: l.search_error,
        pager: l.pager,
        vpcs: vpcs
            .iter()
            .map(|v| super::Choice::new(&v.id, format!("{} ({}, {})", v.name, v.cidr, v.id), v.id == wanted))
            .collect(),
    };
    Ok(render(&page))
}

// ---- Instances --------------------------------------------------------------

pub struct InstanceRow {
    pub id: String,
    pub name: String,
    pub private_ip: String,
    pub subnet_id: String,
    pub subnet: String,
    pub vpc_id: String,
    pub vpc: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "instances.html")]
struct InstancesPage {
    chrome: Chrome,
    rows: Vec<InstanceRow>,
    search: String,
    search_error: String,
    pager: Pager,
    subnets: Vec<super::Choice>,
    no_vpcs: bool,
}

pub async fn instances(State(st): State<AppState>, ctx: Ctx, RawQuery(q): RawQuery) -> Page {
    const S: Section = Section::Instances;
    let l = listing(&ctx, S, "/instances", "", q.as_deref(), |query| async {
        routes::network::list_instances(State(st.clone()), ctx.actor.clone(), RawQuery(Some(query)))
            .await
            .map(|Json(l)| l)
    })
    .await?;
    let vpcs: Vec<Vpc> = ctx.ok(S, all(&st, &ctx.actor).await)?;
    let subnets: Vec<Subnet> = ctx.ok(S, all(&st, &ctx.actor).await)?;
    let vpc_names = labels(&vpcs, |v| format!("{} {}", named(&v.name, &v.id), v.cidr));
    let subnet_names = labels(&subnets, |s| format!("{} {}", named(&s.name, &s.id), s.cidr));
    let wanted = param(&pairs(q.as_deref()), "subnet");
    let page = InstancesPage {
        chrome: ctx.chrome(S),
        rows: l
            .items
            .iter()
            .map(|i| InstanceRow {
                id: i.id.clone(),
                name: i.name.clone(),
                private_ip: i.private_ip.to_string(),
                subnet_id: i.subnet_id.clone(),
                subnet: label_of(&subnet_names, &i.subnet_id),
                vpc_id: i.vpc_id.clone(),
                vpc: label_of(&vpc_names, &i.vpc_id),
                created: when(i.created_at),
            })
            .collect(),
        search: l.search,
        search_error: l.search_error,
        pager: l.pager,
        subnets: subnets
            .iter()
            .map(|s| {
                let vpc = vpcs
                    .iter()
                    .find(|v| v.id == s.vpc_id)
                    .map_or(s.vpc_id.as_str(), |v| v.name.as_str());
                super::Choice::new(
                    &s.id,
                    format!("{} ({}, {}) in VPC {}", s.name, s.cidr, s.id, vpc),
                    s.id == wanted,
                )
            })
            .collect(),
        no_vpcs: vpcs.is_empty(),
    };
    Ok(render(&page))
}

// ---- Elastic IPs ------------------------------------------------------------

pub struct EipRow {
    pub id: String,
    pub name: String,
    pub address: String,
    pub lb_id: String,
    pub lb: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "eips.html")]
struct EipsPage {
    chrome: Chrome,
    rows: Vec<EipRow>,
    search: String,
    search_error: String,
    pager: Pager,
}

pub async fn eips(State(st): State<AppState>, ctx: Ctx, RawQuery(q): RawQuery) -> Page {
    const S: Section = Section::Eips;
    let l = listing(&ctx, S, "/eips", "", q.as_deref(), |query| async {
        routes::network::list_eips(State(st.clone()), ctx.actor.clone(), RawQuery(Some(query)))
            .await
            .map(|Json(l)| l)
    })
    .await?;
    // LB names only when some EIP on this page is bound.
    let lbs: Vec<LoadBalancer> = if l.items.iter().any(|e| e.lb_id.is_some()) {
        ctx.ok(S, all(&st, &ctx.actor).await)?
    } else {
        vec![]
    };
    let lb_names = labels(&lbs, |lb| named(&lb.name, &lb.id));
    let page = EipsPage {
        chrome: ctx.chrome(S),
        rows: l
            .items
            .iter()
            .map(|e| EipRow {
                id: e.id.clone(),
                name: e.name.clone(),
                address: e.address.to_string(),
                lb_id: e.lb_id.clone().unwrap_or_default(),
                lb: e.lb_id.as_deref().map(|id| label_of(&lb_names, id)).unwrap_or_default(),
                created: when(e.created_at),
            })
            .collect(),
        search: l.search,
        search_error: l.search_error,
        pager: l.pager,
    };
    Ok(render(&page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_labels() {
        let c = counts(["a", "b", "a"]);
        assert_eq!(c.get("a"), Some(&2));
        assert_eq!(c.get("b"), Some(&1));
        let m: HashMap<String, String> = [("x".to_string(), "X".to_string())].into();
        assert_eq!(label_of(&m, "x"), "X");
        assert_eq!(label_of(&m, "y"), "y");
    }
}
