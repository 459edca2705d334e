//! Load balancer pages: the list (search, batch delete, export, inline
//! edits), the create wizard and the details page with its VServer tab.

use std::collections::HashMap;

use askama::Template;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use weir_model::Resource;
use weir_model::alarm::AlarmTemplate;
use weir_model::lb::{LbStatus, LoadBalancerView, NetworkType};
use weir_model::network::{Eip, SecurityGroup, Subnet, Vpc};

use super::charts::{self, Charts, Window};
use super::listing::{Pager, listing};
use super::vservers::{self, VsRow};
use super::{Chrome, Ctx, Page, Section, all, named, pairs, param, render, when};
use crate::AppState;
use crate::routes;

const S: Section = Section::Lbs;

/// Id → "name (id)" for the resources an LB refers to.
#[derive(Default)]
struct Names(HashMap<String, String>);

impl Names {
    fn add<R: Resource>(&mut self, items: &[R], name: impl Fn(&R) -> String) {
        for i in items {
            self.0.insert(i.id().to_string(), named(&name(i), i.id()));
        }
    }

    fn of(&self, id: Option<&str>) -> String {
        match id {
            None => String::new(),
            Some(id) => self.0.get(id).cloned().unwrap_or_else(|| id.to_string()),
        }
    }
}

pub struct LbRow {
    pub id: String,
    pub name: String,
    pub comment: String,
    pub address: String,
    pub private_ip: String,
    pub eip: String,
    pub external: bool,
    pub network: &'static str,
    pub vpc: String,
    pub subnet: String,
    pub vservers: u64,
    pub created: String,
    pub expires: String,
    pub billing: &'static str,
    pub renew_hint: String,
    pub active: bool,
    pub sg: String,
    pub sg_name: String,
    pub alarm: String,
    pub alarm_name: String,
}

fn row(v: &LoadBalancerView, names: &Names) -> LbRow {
    let lb = &v.lb;
    let (unit, max) = match lb.billing_mode.max_periods() {
        24 => ("hours", 24),
        11 => ("months", 11),
        m => ("years", m),
    };
    LbRow {
        id: lb.id.clone(),
        name: lb.name.clone(),
        comment: lb.comment.clone(),
        address: lb.address.to_string(),
        private_ip: lb.private_ip.to_string(),
        eip: lb
            .eip
            .as_ref()
            .map(|e| format!("{} ({})", e.address, e.id))
            .unwrap_or_default(),
        external: lb.network_type == NetworkType::External,
        network: match lb.network_type {
            NetworkType::Internal => "Internal",
            NetworkType::External => "External",
        },
        vpc: names.of(Some(&lb.vpc_id)),
        subnet: names.of(Some(&lb.subnet_id)),
        vservers: v.vserver_count,
        created: when(lb.created_at),
        expires: when(lb.expires_at),
        billing: match lb.billing_mode.as_str() {
            "hourly" => "Hourly",
            "monthly" => "Monthly",
            _ => "Annual",
        },
        renew_hint: format!("1–{max} {unit}"),
        active: v.status == LbStatus::Active,
        sg: lb.security_group_id.clone().unwrap_or_default(),
        sg_name: names.of(lb.security_group_id.as_deref()),
        alarm: lb.alarm_template_id.clone().unwrap_or_default(),
        alarm_name: names.of(lb.alarm_template_id.as_deref()),
    }
}

/// What the LB pages show by name and offer in selects.
struct Refs {
    names: Names,
    vpcs: Vec<Vpc>,
    subnets: Vec<Subnet>,
    sgs: Vec<(String, String)>,
    templates: Vec<(String, String)>,
    eips: Vec<Eip>,
}

impl Refs {
    async fn load(st: &AppState, ctx: &Ctx) -> Result<Refs, crate::ApiError> {
        let vpcs: Vec<Vpc> = all(st, &ctx.actor).await?;
        let subnets: Vec<Subnet> = all(st, &ctx.actor).await?;
        let sgs: Vec<SecurityGroup> = all(st, &ctx.actor).await?;
        let templates: Vec<AlarmTemplate> = all(st, &ctx.actor).await?;
        let eips: Vec<Eip> = all(st, &ctx.actor).await?;
        let mut names = Names::default();
        names.add(&vpcs, |v| format!("{} {}", v.name, v.cidr));
        names.add(&subnets, |s| format!("{} {}", s.name, s.cidr));
        names.add(&sgs, |s| s.name.clone());
        names.add(&templates, |t| t.name.clone());
        Ok(Refs {
            names,
            sgs: sgs.iter().map(|s| (s.id.clone(), named(&s.name, &s.id))).collect(),
            templates: templates
                .iter()
                .map(|t| (t.id.clone(), named(&t.name, &t.id)))
                .collect(),
            vpcs,
            subnets,
            eips,
        })
    }
}

#[derive(Template)]
#[template(path = "lbs.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<LbRow>,
    search: String,
    search_error: String,
    pager: Pager,
    export: String,
    sgs: Vec<(String, String)>,
    templates: Vec<(String, String)>,
}

pub async fn list(State(st): State<AppState>, ctx: Ctx, RawQuery(q): RawQuery) -> Page {
    let l = listing(&ctx, S, "/lbs", "", q.as_deref(), |query| async {
        routes::lbs::list(State(st.clone()), ctx.actor.clone(), RawQuery(Some(query)))
            .await
            .map(|Json(l)| l)
    })
    .await?;
    let refs = ctx.ok(S, Refs::load(&st, &ctx).await)?;
    let out = ListPage {
        chrome: ctx.chrome(S),
        rows: l.items.iter().map(|v| row(v, &refs.names)).collect(),
        export: if l.search.is_empty() {
            "/v1/load-balancers/export.xlsx".to_string()
        } else {
            format!("/v1/load-balancers/export.xlsx?search={}", super::encode(&l.search))
        },
        search: l.search,
        search_error: l.search_error,
        pager: l.pager,
        sgs: refs.sgs,
        templates: refs.templates,
    };
    Ok(render(&out))
}

pub struct SubnetChoice {
    pub id: String,
    pub label: String,
    pub vpc_id: String,
}

#[derive(Template)]
#[template(path = "lb_new.html")]
struct NewPage {
    chrome: Chrome,
    vpcs: Vec<(String, String)>,
    subnets: Vec<SubnetChoice>,
    eips: Vec<(String, String)>,
    sgs: Vec<(String, String)>,
    templates: Vec<(String, String)>,
}

pub async fn new(State(st): State<AppState>, ctx: Ctx) -> Page {
    let refs = ctx.ok(S, Refs::load(&st, &ctx).await)?;
    let page = NewPage {
        chrome: ctx.chrome(S),
        vpcs: refs
            .vpcs
            .iter()
            .map(|v| (v.id.clone(), format!("{} ({}, {})", v.name, v.cidr, v.id)))
            .collect(),
        subnets: refs
            .subnets
            .iter()
            .map(|s| SubnetChoice {
                id: s.id.clone(),
                label: format!("{} ({}, {})", s.name, s.cidr, s.id),
                vpc_id: s.vpc_id.clone(),
            })
            .collect(),
        eips: refs
            .eips
            .iter()
            .filter(|e| e.lb_id.is_none())
            .map(|e| (e.id.clone(), format!("{} ({})", e.address, e.id)))
            .collect(),
        sgs: refs.sgs,
        templates: refs.templates,
    };
    Ok(render(&page))
}

/// The LB metrics the overview charts.
const LB_CHARTS: &[(&str, &str)] = &[
    ("new_connections_per_s", "New connections / s"),
    ("active_connections", "Active connections"),
    ("bytes_in_per_s", "Traffic in (bytes / s)"),
    ("bytes_out_per_s", "Traffic out (bytes / s)"),
    ("packets_in_per_s", "Packets in / s"),
    ("packets_out_per_s", "Packets out / s"),
];

#[derive(Template)]
#[template(path = "lb_detail.html")]
struct DetailPage {
    chrome: Chrome,
    lb: LbRow,
    status: &'static str,
    tab: &'static str,
    charts: Charts,
    vservers: Vec<VsRow>,
    sgs: Vec<(String, String)>,
    templates: Vec<(String, String)>,
}

pub async fn detail(State(st): State<AppState>, ctx: Ctx, Path(id): Path<String>, RawQuery(q): RawQuery) -> Page {
    let Json(v) = ctx.ok(
        S,
        routes::lbs::get(State(st.clone()), ctx.actor.clone(), Path(id.clone())).await,
    )?;
    let refs = ctx.ok(S, Refs::load(&st, &ctx).await)?;
    let p = pairs(q.as_deref());
    let tab = if param(&p, "tab") == "vservers" {
        "vservers"
    } else {
        "overview"
    };
    let page = format!("/lbs/{id}");
    let api = format!("/v1/load-balancers/{id}/metrics");
    let (charts, vservers) = if tab == "overview" {
        let w = Window::from_pairs(&p);
        let checked = routes::metrics::lb_metrics(
            State(st.clone()),
            ctx.actor.clone(),
            Path(id.clone()),
            RawQuery(Some(w.api_query())),
        )
        .await;
        (charts::build(&page, vec![], &api, &w, checked, LB_CHARTS), vec![])
    } else {
        let rows = ctx.ok(S, vservers::rows(&st, &ctx, &id).await)?;
        (
            charts::build(&page, vec![], &api, &Window::from_pairs(&[]), Ok(()), &[]),
            rows,
        )
    };
    let out = DetailPage {
        chrome: ctx.chrome(S),
        status: if v.status == LbStatus::Active {
            "Active"
        } else {
            "Creating"
        },
        lb: row(&v, &refs.names),
        tab,
        charts,
        vservers,
        sgs: refs.sgs,
        templates: refs.templates,
    };
    Ok(render(&out))
}
