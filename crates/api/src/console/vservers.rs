//! VServer pages: the list on the LB page (green / yellow / red with its
//! explanation), the create and modify wizards (only the fields that apply
//! to the protocol), and the details page with monitoring, service nodes
//! and content-forwarding rules.

use std::collections::HashMap;

use askama::Template;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use weir_model::alarm::AlarmTemplate;
use weir_model::backend::{BackendStatus, BackendView};
use weir_model::certificate::{CertType, CertificateView};
use weir_model::network::Instance;
use weir_model::vserver::{
    Algorithm, HealthCheckType, PersistenceMode, Protocol, ProxyProtocol, TlsMode, VServer, VServerHealth,
    VServerStatus, VServerView,
};

use super::charts::{self, Charts, Window};
use super::{Chrome, Ctx, Page, Section, all, named, pairs, param, render, when};
use crate::routes;
use crate::{ApiError, AppState};

const S: Section = Section::Lbs;

/// The words for an enum value, from the wizard's option table.
fn label(table: &[(&'static str, &'static str, &'static str)], value: impl serde::Serialize) -> &'static str {
    let v = ser(value);
    table.iter().find(|(name, _, _)| *name == v).map_or("", |(_, l, _)| l)
}

pub fn algorithm_label(a: Algorithm) -> &'static str {
    label(ALGORITHMS, a)
}

fn persistence_label(m: PersistenceMode) -> &'static str {
    label(PERSISTENCE, m)
}

fn status_label(s: VServerStatus) -> &'static str {
    match s {
        VServerStatus::Creating => "Creating",
        VServerStatus::Running => "Running",
        VServerStatus::Updating => "Updating",
        VServerStatus::Error => "Error",
    }
}

/// Green / yellow / red, its words, and why.
fn health(h: VServerHealth, valid: usize, enabled: usize, total: u64) -> (&'static str, &'static str, String) {
    match h {
        VServerHealth::AllHealthy => (
            "green",
            "All healthy",
            format!("All {enabled} enabled service node(s) pass their health checks."),
        ),
        VServerHealth::PartiallyHealthy => (
            "yellow",
            "Partly healthy",
            format!(
                "{valid} of {enabled} enabled service nodes pass their health checks; the others get no new traffic until they pass again."
            ),
        ),
        VServerHealth::AllUnhealthy if total == 0 => (
            "red",
            "No service nodes",
            "This VServer has no service nodes yet: add some so it can carry traffic.".to_string(),
        ),
        VServerHealth::AllUnhealthy if enabled == 0 => (
            "red",
            "All disabled",
            "Every service node is disabled: enable one so new connections have somewhere to go.".to_string(),
        ),
        VServerHealth::AllUnhealthy => (
            "red",
            "All unhealthy",
            format!(
                "None of the {enabled} enabled service node(s) passes its health check: new connections are refused until one does."
            ),
        ),
    }
}

/// A VServer as the LB page lists it.
pub struct VsRow {
    pub id: String,
    pub lb_id: String,
    pub proto_port: String,
    pub algorithm: &'static str,
    pub persistence: &'static str,
    pub status: &'static str,
    pub status_message: String,
    pub color: &'static str,
    pub health: &'static str,
    pub explain: String,
    pub backends: u64,
}

fn proto_port(vs: &VServer) -> String {
    format!("{}:{}", vs.protocol.as_str().to_uppercase(), vs.port)
}

fn vs_row(v: &VServerView, nodes: &[BackendView]) -> VsRow {
    let enabled = nodes.iter().filter(|b| b.backend.enabled).count();
    let valid = nodes
        .iter()
        .filter(|b| b.backend.enabled && b.status == BackendStatus::Valid)
        .count();
    let (color, words, explain) = health(v.health, valid, enabled, v.backend_count);
    VsRow {
        id: v.vserver.id.clone(),
        lb_id: v.vserver.lb_id.clone(),
        proto_port: proto_port(&v.vserver),
        algorithm: algorithm_label(v.vserver.algorithm),
        persistence: persistence_label(v.vserver.persistence.mode),
        status: status_label(v.status),
        status_message: v.status_message.clone().unwrap_or_default(),
        color,
        health: words,
        explain,
        backends: v.backend_count,
    }
}

async fn nodes(st: &AppState, ctx: &Ctx, lb: &str, vs: &str) -> Result<Vec<BackendView>, ApiError> {
    let Json(l) = routes::backends::list(
        State(st.clone()),
        ctx.actor.clone(),
        Path((lb.to_string(), vs.to_string())),
        RawQuery(Some(format!("limit={}", routes::MAX_LIMIT))),
    )
    .await?;
    Ok(l.items)
}

/// The LB page's VServer tab.
pub async fn rows(st: &AppState, ctx: &Ctx, lb: &str) -> Result<Vec<VsRow>, ApiError> {
    let Json(list) = routes::vservers::list(
        State(st.clone()),
        ctx.actor.clone(),
        Path(lb.to_string()),
        RawQuery(Some(format!("limit={}", routes::MAX_LIMIT))),
    )
    .await?;
    let mut out = Vec::with_capacity(list.items.len());
    for v in &list.items {
        let n = nodes(st, ctx, lb, &v.vserver.id).await?;
        out.push(vs_row(v, &n));
    }
    out.sort_by_key(|r| r.proto_port.clone());
    Ok(out)
}

/// An `<option>`, shown only while `show` holds (`protocol:http,https`).
pub struct Opt {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
    pub show: &'static str,
}

fn opts(items: &[(&'static str, &'static str, &'static str)], current: &str, protocol: Option<Protocol>) -> Vec<Opt> {
    items
        .iter()
        // With the protocol known (modify), options that cannot apply are left out.
        .filter(|(_, _, show)| {
            protocol.is_none_or(|p| {
                show.is_empty()
                    || show
                        .split(':')
                        .nth(1)
                        .is_some_and(|l| l.split(',').any(|x| x == p.as_str()))
            })
        })
        .map(|(value, label, show)| Opt {
            value,
            label,
            selected: *value == current,
            show: if protocol.is_some() { "" } else { show },
        })
        .collect()
}

fn ser<T: serde::Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The wizard: create (every field, shown per chosen protocol) or modify
/// (the VServer's protocol fixed, only what applies to it rendered).
#[derive(Template)]
#[template(path = "vs_form.html")]
struct FormPage {
    chrome: Chrome,
    lb_id: String,
    lb_name: String,
    /// `None` when creating.
    vs_id: Option<String>,
    title: String,
    /// What the modify form is for; every section when creating.
    tcp: bool,
    http: bool,
    https: bool,
    protocol: String,
    protocols: Vec<Opt>,
    port: String,
    algorithms: Vec<Opt>,
    persistence: Vec<Opt>,
    key: String,
    idle: String,
    hc_types: Vec<Opt>,
    hc_path: String,
    hc_domain: String,
    hc_interval: String,
    hc_timeout: String,
    hc_healthy: String,
    hc_unhealthy: String,
    proxy: Vec<Opt>,
    xff: bool,
    xri: bool,
    xfp: bool,
    host: String,
    tls_modes: Vec<Opt>,
    server_certs: Vec<super::Choice>,
    client_certs: Vec<super::Choice>,
    extra_certs: Vec<super::Choice>,
    templates: Vec<super::Choice>,
}

const PROTOCOLS: &[(&str, &str, &str)] = &[
    ("tcp", "TCP", ""),
    ("udp", "UDP", ""),
    ("http", "HTTP", ""),
    ("https", "HTTPS", ""),
];
const ALGORITHMS: &[(&str, &str, &str)] = &[
    ("weighted_round_robin", "Weighted round robin", ""),
    ("least_connections", "Least connections", "protocol:tcp,http,https"),
    ("source_ip", "Source IP hash", ""),
];
const PERSISTENCE: &[(&str, &str, &str)] = &[
    ("off", "Off", ""),
    ("source_ip", "Source IP", "protocol:udp"),
    ("insert_cookie", "Insert cookie (generated key)", "protocol:http,https"),
    ("custom_cookie", "Custom cookie", "protocol:http,https"),
];
const HC_TYPES: &[(&str, &str, &str)] = &[
    ("port", "Port (connect)", ""),
    ("http", "HTTP (GET path)", "protocol:http,https"),
];
const PROXY: &[(&str, &str, &str)] = &[("off", "Off", ""), ("v1", "v1 (text)", ""), ("v2", "v2 (binary)", "")];
const TLS_MODES: &[(&str, &str, &str)] = &[
    ("one_way", "One-way: the server certificate only", ""),
    ("two_way", "Two-way: clients must present a certificate", ""),
];

async fn form_page(st: &AppState, ctx: &Ctx, lb_id: &str, vs: Option<VServer>) -> Page {
    let Json(lb) = ctx.ok(
        S,
        routes::lbs::get(State(st.clone()), ctx.actor.clone(), Path(lb_id.to_string())).await,
    )?;
    let Json(certs) = ctx.ok(
        S,
        routes::certificates::list(
            State(st.clone()),
            ctx.actor.clone(),
            RawQuery(Some(format!("limit={}", routes::MAX_LIMIT))),
        )
        .await,
    )?;
    let templates: Vec<AlarmTemplate> = ctx.ok(S, all(st, &ctx.actor).await)?;
    let p = vs.as_ref().map(|v| v.protocol);
    let is = |x: Protocol| p.is_none_or(|p| p == x);
    let hc = vs.as_ref().map(|v| v.health_check.clone());
    let tls = vs.as_ref().and_then(|v| v.tls.clone());
    let fh = vs.as_ref().and_then(|v| v.forward_headers.clone());
    let cert_choices = |t: CertType, current: &[&str]| -> Vec<super::Choice> {
        certs
            .items
            .iter()
            .filter(|c: &&CertificateView| c.cert_type == t)
            .map(|c| super::Choice::new(&c.id, named(&c.name, &c.id), current.contains(&c.id.as_str())))
            .collect()
    };
    let server = tls
        .as_ref()
        .and_then(|t| t.server_certificate_id.clone())
        .unwrap_or_default();
    let client = tls
        .as_ref()
        .and_then(|t| t.client_certificate_id.clone())
        .unwrap_or_default();
    let extras: Vec<&str> = tls
        .as_ref()
        .map(|t| t.extra_certificate_ids.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let alarm = vs
        .as_ref()
        .and_then(|v| v.alarm_template_id.clone())
        .unwrap_or_default();
    let page = FormPage {
        chrome: ctx.chrome(S),
        lb_id: lb.lb.id.clone(),
        lb_name: lb.lb.name.clone(),
        vs_id: vs.as_ref().map(|v| v.id.clone()),
        title: match &vs {
            Some(v) => format!("Modify VServer {}", proto_port(v)),
            None => "Add VServer".to_string(),
        },
        tcp: is(Protocol::Tcp),
        http: is(Protocol::Http) || is(Protocol::Https),
        https: is(Protocol::Https),
        protocol: p.map(|p| p.as_str().to_string()).unwrap_or_else(|| "tcp".into()),
        protocols: opts(PROTOCOLS, p.map_or("tcp", Protocol::as_str), None),
        port: vs.as_ref().map(|v| v.port.to_string()).unwrap_or_default(),
        algorithms: opts(
            ALGORITHMS,
            &vs.as_ref().map(|v| ser(v.algorithm)).unwrap_or_default(),
            p,
        ),
        persistence: opts(
            PERSISTENCE,
            &vs.as_ref().map(|v| ser(v.persistence.mode)).unwrap_or_default(),
            p,
        ),
        key: vs.as_ref().and_then(|v| v.persistence.key.clone()).unwrap_or_default(),
        idle: vs.as_ref().map_or("60".into(), |v| v.idle_timeout_s.to_string()),
        hc_types: opts(HC_TYPES, &hc.as_ref().map(|h| ser(h.check_type)).unwrap_or_default(), p),
        hc_path: hc.as_ref().map_or("/".into(), |h| h.path.clone()),
        hc_domain: hc.as_ref().and_then(|h| h.domain.clone()).unwrap_or_default(),
        hc_interval: hc.as_ref().map_or("5".into(), |h| h.interval_s.to_string()),
        hc_timeout: hc.as_ref().map_or("2".into(), |h| h.timeout_s.to_string()),
        hc_healthy: hc.as_ref().map_or("2".into(), |h| h.healthy_threshold.to_string()),
        hc_unhealthy: hc.as_ref().map_or("3".into(), |h| h.unhealthy_threshold.to_string()),
        proxy: opts(
            PROXY,
            &vs.as_ref().map(|v| ser(v.proxy_protocol)).unwrap_or_default(),
            p,
        ),
        xff: fh.as_ref().is_none_or(|f| f.x_forwarded_for),
        xri: fh.as_ref().is_none_or(|f| f.x_real_ip),
        xfp: fh.as_ref().is_none_or(|f| f.x_forwarded_proto),
        host: fh.as_ref().and_then(|f| f.host.clone()).unwrap_or_default(),
        tls_modes: opts(TLS_MODES, &tls.as_ref().map(|t| ser(t.mode)).unwrap_or_default(), p),
        server_certs: cert_choices(CertType::Server, &[server.as_str()]),
        client_certs: cert_choices(CertType::Client, &[client.as_str()]),
        extra_certs: cert_choices(CertType::Server, &extras),
        templates: templates
            .iter()
            .map(|t| super::Choice::new(&t.id, named(&t.name, &t.id), t.id == alarm))
            .collect(),
    };
    Ok(render(&page))
}

pub async fn new(State(st): State<AppState>, ctx: Ctx, Path(lb): Path<String>) -> Page {
    form_page(&st, &ctx, &lb, None).await
}

pub async fn edit(State(st): State<AppState>, ctx: Ctx, Path((lb, vs)): Path<(String, String)>) -> Page {
    let Json(v) = ctx.ok(
        S,
        routes::vservers::get(State(st.clone()), ctx.actor.clone(), Path((lb.clone(), vs))).await,
    )?;
    form_page(&st, &ctx, &lb, Some(v.vserver)).await
}

/// A service node as the nodes tab lists it.
pub struct NodeRow {
    pub id: String,
    pub resource: String,
    pub address: String,
    pub port: u16,
    pub weight: u8,
    pub enabled: bool,
    pub status: &'static str,
    pub status_class: &'static str,
    pub detail: String,
}

pub struct RuleRow {
    pub id: String,
    pub domain: String,
    pub path: String,
    pub backends: Vec<String>,
    pub choices: Vec<super::Choice>,
}

/// `key: value` lines of the basic-information card.
pub struct Fact {
    pub label: &'static str,
    pub value: String,
}

const VS_CHARTS: &[(&str, &str)] = &[
    ("new_connections_per_s", "New connections / s"),
    ("active_connections", "Active connections"),
    ("http_2xx_per_s", "HTTP 2xx / s"),
    ("http_3xx_per_s", "HTTP 3xx / s"),
    ("http_4xx_per_s", "HTTP 4xx / s"),
    ("http_5xx_per_s", "HTTP 5xx / s"),
];

#[derive(Template)]
#[template(path = "vs_detail.html")]
struct DetailPage {
    chrome: Chrome,
    lb_id: String,
    lb_name: String,
    vs: VsRow,
    http: bool,
    tab: &'static str,
    facts: Vec<Fact>,
    templates: Vec<super::Choice>,
    charts: Charts,
    nodes: Vec<NodeRow>,
    instances: Vec<super::Choice>,
    rules: Vec<RuleRow>,
    backend_choices: Vec<super::Choice>,
}

fn facts(vs: &VServer, cert_names: &HashMap<String, String>, templates: &HashMap<String, String>) -> Vec<Fact> {
    let mut f = vec![
        Fact {
            label: "ID",
            value: vs.id.clone(),
        },
        Fact {
            label: "Protocol and port",
            value: proto_port(vs),
        },
        Fact {
            label: "Algorithm",
            value: algorithm_label(vs.algorithm).into(),
        },
        Fact {
            label: "Session persistence",
            value: persistence_label(vs.persistence.mode).into(),
        },
    ];
    if let Some(k) = &vs.persistence.key {
        f.push(Fact {
            label: "Persistence key",
            value: k.clone(),
        });
    }
    f.push(Fact {
        label: "Idle timeout",
        value: format!("{} s", vs.idle_timeout_s),
    });
    let hc = &vs.health_check;
    f.push(Fact {
        label: "Health check",
        value: match hc.check_type {
            HealthCheckType::Port => format!(
                "port, every {} s, timeout {} s, healthy after {}, unhealthy after {}",
                hc.interval_s, hc.timeout_s, hc.healthy_threshold, hc.unhealthy_threshold
            ),
            HealthCheckType::Http => format!(
                "HTTP GET {} (Host: {}), every {} s, timeout {} s, healthy after {}, unhealthy after {}",
                hc.path,
                hc.domain.as_deref().unwrap_or("the node's address"),
                hc.interval_s,
                hc.timeout_s,
                hc.healthy_threshold,
                hc.unhealthy_threshold
            ),
        },
    });
    if vs.protocol == Protocol::Tcp {
        f.push(Fact {
            label: "PROXY protocol",
            value: match vs.proxy_protocol {
                ProxyProtocol::Off => "off",
                ProxyProtocol::V1 => "v1",
                ProxyProtocol::V2 => "v2",
            }
            .into(),
        });
    }
    if let Some(h) = &vs.forward_headers {
        let on: Vec<&str> = [
            (h.x_forwarded_for, "X-Forwarded-For"),
            (h.x_real_ip, "X-Real-IP"),
            (h.x_forwarded_proto, "X-Forwarded-Proto"),
        ]
        .iter()
        .filter(|(b, _)| *b)
        .map(|(_, n)| *n)
        .collect();
        f.push(Fact {
            label: "Headers to backends",
            value: if on.is_empty() { "none".into() } else { on.join(", ") },
        });
        if let Some(host) = &h.host {
            f.push(Fact {
                label: "Host toward backends",
                value: host.clone(),
            });
        }
    }
    if let Some(t) = &vs.tls {
        let name = |id: &Option<String>| {
            id.as_ref()
                .map(|i| cert_names.get(i).cloned().unwrap_or_else(|| i.clone()))
                .unwrap_or_else(|| "none".into())
        };
        f.push(Fact {
            label: "SSL mode",
            value: match t.mode {
                TlsMode::OneWay => "one-way",
                TlsMode::TwoWay => "two-way (client certificates required)",
            }
            .into(),
        });
        f.push(Fact {
            label: "Server certificate",
            value: name(&t.server_certificate_id),
        });
        if t.mode == TlsMode::TwoWay {
            f.push(Fact {
                label: "Client CA certificate",
                value: name(&t.client_certificate_id),
            });
        }
        if !t.extra_certificate_ids.is_empty() {
            f.push(Fact {
                label: "Extra certificates (SNI)",
                value: t
                    .extra_certificate_ids
                    .iter()
                    .map(|i| cert_names.get(i).cloned().unwrap_or_else(|| i.clone()))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    f.push(Fact {
        label: "Alarm template",
        value: vs
            .alarm_template_id
            .as_ref()
            .map(|i| templates.get(i).cloned().unwrap_or_else(|| i.clone()))
            .unwrap_or_else(|| "None".into()),
    });
    f.push(Fact {
        label: "Created",
        value: when(vs.created_at),
    });
    f
}

fn node_row(b: &BackendView, instances: &HashMap<String, String>) -> NodeRow {
    let (status, status_class) = match (b.backend.enabled, b.status) {
        (false, _) => ("Disabled", "grey"),
        (true, BackendStatus::Valid) => ("Valid", "green"),
        (true, BackendStatus::Invalid) => ("Invalid", "red"),
        (true, BackendStatus::Checking) => ("Checking", "grey"),
    };
    NodeRow {
        id: b.backend.id.clone(),
        resource: match &b.backend.instance_id {
            Some(i) => instances.get(i).cloned().unwrap_or_else(|| i.clone()),
            None => "by address".into(),
        },
        address: b.backend.address.to_string(),
        port: b.backend.port,
        weight: b.backend.weight,
        enabled: b.backend.enabled,
        status,
        status_class,
        detail: b
            .last_check
            .as_ref()
            .map(|c| format!("{} ({})", c.detail, when(c.at)))
            .unwrap_or_default(),
    }
}

pub async fn detail(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((lb_id, vs_id)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Page {
    let Json(lb) = ctx.ok(
        S,
        routes::lbs::get(State(st.clone()), ctx.actor.clone(), Path(lb_id.clone())).await,
    )?;
    let Json(v) = ctx.ok(
        S,
        routes::vservers::get(
            State(st.clone()),
            ctx.actor.clone(),
            Path((lb_id.clone(), vs_id.clone())),
        )
        .await,
    )?;
    let backends = ctx.ok(S, nodes(&st, &ctx, &lb_id, &vs_id).await)?;
    let p = pairs(q.as_deref());
    let http = v.vserver.protocol.is_http();
    let tab = match param(&p, "tab").as_str() {
        "nodes" => "nodes",
        "rules" if http => "rules",
        _ => "overview",
    };
    let Json(certs) = ctx.ok(
        S,
        routes::certificates::list(
            State(st.clone()),
            ctx.actor.clone(),
            RawQuery(Some(format!("limit={}", routes::MAX_LIMIT))),
        )
        .await,
    )?;
    let cert_names: HashMap<String, String> = certs
        .items
        .iter()
        .map(|c| (c.id.clone(), named(&c.name, &c.id)))
        .collect();
    let templates: Vec<AlarmTemplate> = ctx.ok(S, all(&st, &ctx.actor).await)?;
    let template_names: HashMap<String, String> = templates
        .iter()
        .map(|t| (t.id.clone(), named(&t.name, &t.id)))
        .collect();
    let instances: Vec<Instance> = ctx.ok(S, all(&st, &ctx.actor).await)?;
    let instance_names: HashMap<String, String> = instances
        .iter()
        .map(|i| (i.id.clone(), format!("{} ({})", i.name, i.id)))
        .collect();
    let page_path = format!("/lbs/{lb_id}/vservers/{vs_id}");
    let api = format!("/v1/load-balancers/{lb_id}/vservers/{vs_id}/metrics");
    let w = Window::from_pairs(&p);
    let charts = if tab == "overview" {
        let checked = routes::metrics::vs_metrics(
            State(st.clone()),
            ctx.actor.clone(),
            Path((lb_id.clone(), vs_id.clone())),
            RawQuery(Some(w.api_query())),
        )
        .await;
        let metrics = if http { VS_CHARTS } else { &VS_CHARTS[..2] };
        charts::build(&page_path, vec![], &api, &w, checked, metrics)
    } else {
        charts::build(&page_path, vec![], &api, &w, Ok(()), &[])
    };
    let rules = if tab == "rules" {
        let Json(r) = ctx.ok(
            S,
            routes::rules::list(
                State(st.clone()),
                ctx.actor.clone(),
                Path((lb_id.clone(), vs_id.clone())),
                RawQuery(Some(format!("limit={}", routes::MAX_LIMIT))),
            )
            .await,
        )?;
        let addr: HashMap<&str, String> = backends
            .iter()
            .map(|b| {
                (
                    b.backend.id.as_str(),
                    format!("{}:{}", b.backend.address, b.backend.port),
                )
            })
            .collect();
        r.items
            .iter()
            .map(|r| RuleRow {
                id: r.id.clone(),
                domain: r.domain.clone().unwrap_or_default(),
                path: r.path.clone().unwrap_or_default(),
                backends: r
                    .backend_ids
                    .iter()
                    .map(|b| addr.get(b.as_str()).map_or_else(|| b.clone(), |a| format!("{a} ({b})")))
                    .collect(),
                choices: backends
                    .iter()
                    .map(|b| {
                        super::Choice::new(
                            &b.backend.id,
                            format!("{}:{} ({})", b.backend.address, b.backend.port, b.backend.id),
                            r.backend_ids.contains(&b.backend.id),
                        )
                    })
                    .collect(),
            })
            .collect()
    } else {
        vec![]
    };
    let alarm = v.vserver.alarm_template_id.clone().unwrap_or_default();
    let page = DetailPage {
        chrome: ctx.chrome(S),
        lb_id: lb.lb.id.clone(),
        lb_name: lb.lb.name.clone(),
        vs: vs_row(&v, &backends),
        http,
        tab,
        facts: facts(&v.vserver, &cert_names, &template_names),
        templates: templates
            .iter()
            .map(|t| super::Choice::new(&t.id, named(&t.name, &t.id), t.id == alarm))
            .collect(),
        charts,
        nodes: backends.iter().map(|b| node_row(b, &instance_names)).collect(),
        instances: instances
            .iter()
            .filter(|i| i.vpc_id == lb.lb.vpc_id)
            .map(|i| super::Choice::new(&i.id, format!("{} — {} ({})", i.name, i.private_ip, i.id), false))
            .collect(),
        backend_choices: backends
            .iter()
            .map(|b| {
                super::Choice::new(
                    &b.backend.id,
                    format!("{}:{} ({})", b.backend.address, b.backend.port, b.backend.id),
                    false,
                )
            })
            .collect(),
        rules,
    };
    Ok(render(&page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_has_its_words() {
        for a in [
            Algorithm::WeightedRoundRobin,
            Algorithm::LeastConnections,
            Algorithm::SourceIp,
        ] {
            assert!(!algorithm_label(a).is_empty(), "{a:?}");
        }
        for m in [
            PersistenceMode::Off,
            PersistenceMode::SourceIp,
            PersistenceMode::InsertCookie,
            PersistenceMode::CustomCookie,
        ] {
            assert!(!persistence_label(m).is_empty(), "{m:?}");
        }
        assert_eq!(algorithm_label(Algorithm::SourceIp), "Source IP hash");
    }

    #[test]
    fn options_for_a_known_protocol_leave_out_what_cannot_apply() {
        let udp: Vec<&str> = opts(ALGORITHMS, "", Some(Protocol::Udp))
            .iter()
            .map(|o| o.value)
            .collect();
        assert_eq!(udp, ["weighted_round_robin", "source_ip"]);
        let tcp: Vec<&str> = opts(PERSISTENCE, "off", Some(Protocol::Tcp))
            .iter()
            .map(|o| o.value)
            .collect();
        assert_eq!(tcp, ["off"]);
        // Creating: every option, each with the condition that shows it.
        let all = opts(PERSISTENCE, "", None);
        assert_eq!(all.len(), 4);
        assert_eq!(all[1].show, "protocol:udp");
        assert!(opts(HC_TYPES, "http", Some(Protocol::Https))[1].selected);
    }
}
