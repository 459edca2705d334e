//! Security group and alarm pages: the security group list (search, create
//! with rule rows, delete) and details (modify name and every rule), the
//! alarm template list and details (the same, with webhook and threshold
//! rules), and the alarm events (state filter, search).
//!
//! What uses a group or template is read from the LBs' and VServers' own
//! `security_group_id` / `alarm_template_id`, as the API shows them.

use std::collections::HashMap;

use askama::Template;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use weir_model::alarm::{AlarmRule, AlarmTemplate, Metric, Op, Scope};
use weir_model::lb::LoadBalancer;
use weir_model::network::{SecurityGroup, SgAction, SgProtocol, SgRule};
use weir_model::vserver::VServer;

use super::listing::{Pager, listing};
use super::{Chrome, Ctx, Page, Section, all, encode, named, pairs, param, render, when};
use crate::routes::{self, List};
use crate::{ApiError, AppState};

/// A link to a page of another resource.
pub struct Link {
    pub href: String,
    pub label: String,
}

/// The LBs (and VServers) that refer to a group or template, by its id.
#[derive(Default)]
struct Users(HashMap<String, Vec<Link>>);

impl Users {
    fn add(&mut self, id: Option<&str>, link: Link) {
        if let Some(id) = id {
            self.0.entry(id.to_string()).or_default().push(link);
        }
    }

    fn of(&mut self, id: &str) -> Vec<Link> {
        self.0.remove(id).unwrap_or_default()
    }
}

fn lb_link(lb: &LoadBalancer) -> Link {
    Link {
        href: format!("/lbs/{}", lb.id),
        label: format!("LB {}", named(&lb.name, &lb.id)),
    }
}

fn vs_label(vs: &VServer) -> String {
    format!("{}:{}", vs.protocol.as_str().to_uppercase(), vs.port)
}

fn vs_link(vs: &VServer, lbs: &HashMap<&str, &LoadBalancer>) -> Link {
    let lb = lbs
        .get(vs.lb_id.as_str())
        .map_or(vs.lb_id.clone(), |l| named(&l.name, &l.id));
    Link {
        href: format!("/lbs/{}/vservers/{}", vs.lb_id, vs.id),
        label: format!("VServer {} ({}) of {lb}", vs_label(vs), vs.id),
    }
}

fn by_id(lbs: &[LoadBalancer]) -> HashMap<&str, &LoadBalancer> {
    lbs.iter().map(|l| (l.id.as_str(), l)).collect()
}

/// The security groups' users: the LBs that name them.
async fn sg_users(st: &AppState, ctx: &Ctx) -> Result<Users, ApiError> {
    let lbs: Vec<LoadBalancer> = all(st, &ctx.actor).await?;
    let mut u = Users::default();
    for lb in &lbs {
        u.add(lb.security_group_id.as_deref(), lb_link(lb));
    }
    Ok(u)
}

/// The alarm templates' users: the LBs and VServers that name them.
async fn template_users(st: &AppState, ctx: &Ctx) -> Result<Users, ApiError> {
    let lbs: Vec<LoadBalancer> = all(st, &ctx.actor).await?;
    let vss: Vec<VServer> = all(st, &ctx.actor).await?;
    let names = by_id(&lbs);
    let mut u = Users::default();
    for lb in &lbs {
        u.add(lb.alarm_template_id.as_deref(), lb_link(lb));
    }
    for vs in &vss {
        u.add(vs.alarm_template_id.as_deref(), vs_link(vs, &names));
    }
    Ok(u)
}

/// `5`, `0.5`, `1234.57`: a number as people read it.
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

// ---- security groups ---------------------------------------------------------

/// One rule, as shown and as a prefilled row of the modify form.
pub struct SgRuleRow {
    pub priority: String,
    pub action: &'static str,
    pub protocol: &'static str,
    pub ports: String,
    pub source: String,
}

impl SgRuleRow {
    fn of(r: &SgRule) -> SgRuleRow {
        SgRuleRow {
            priority: r.priority.to_string(),
            action: match r.action {
                SgAction::Allow => "allow",
                SgAction::Deny => "deny",
            },
            protocol: match r.protocol {
                SgProtocol::Tcp => "tcp",
                SgProtocol::Udp => "udp",
                SgProtocol::Any => "any",
            },
            ports: r.ports.clone(),
            source: r.source.to_string(),
        }
    }

    /// The empty row the "Add rule" button copies.
    fn blank() -> SgRuleRow {
        SgRuleRow {
            priority: String::new(),
            action: "allow",
            protocol: "tcp",
            ports: String::new(),
            source: String::new(),
        }
    }

    /// `allow tcp 80 from 0.0.0.0/0`.
    pub fn text(&self) -> String {
        let ports = if self.ports == "all" {
            "all ports".to_string()
        } else {
            format!("port {}", self.ports)
        };
        format!("{} {} {ports} from {}", self.action, self.protocol, self.source)
    }
}

pub struct SgRow {
    pub id: String,
    pub name: String,
    pub rules: Vec<SgRuleRow>,
    pub used_by: Vec<Link>,
    pub created: String,
}

impl SgRow {
    /// The first rules, for the list.
    pub fn summary(&self) -> &[SgRuleRow] {
        &self.rules[..self.rules.len().min(3)]
    }

    pub fn more(&self) -> usize {
        self.rules.len().saturating_sub(3)
    }
}

fn sg_row(sg: &SecurityGroup, users: &mut Users) -> SgRow {
    SgRow {
        id: sg.id.clone(),
        name: sg.name.clone(),
        rules: sg.rules.iter().map(SgRuleRow::of).collect(),
        used_by: users.of(&sg.id),
        created: when(sg.created_at),
    }
}

#[derive(Template)]
#[template(path = "security_groups.html")]
struct SgListPage {
    chrome: Chrome,
    rows: Vec<SgRow>,
    search: String,
    search_error: String,
    pager: Pager,
    /// The create form's first row and the row template.
    blank: Vec<SgRuleRow>,
}

pub async fn security_groups(State(st): State<AppState>, ctx: Ctx, RawQuery(q): RawQuery) -> Page {
    const S: Section = Section::SecurityGroups;
    let l = listing(&ctx, S, "/security-groups", "", q.as_deref(), |query| async {
        let Json(l) =
            routes::security_groups::list(State(st.clone()), ctx.actor.clone(), RawQuery(Some(query))).await?;
        Ok(l)
    })
    .await?;
    let mut users = ctx.ok(S, sg_users(&st, &ctx).await)?;
    let page = SgListPage {
        chrome: ctx.chrome(S),
        rows: l.items.iter().map(|sg| sg_row(sg, &mut users)).collect(),
        search: l.search,
        search_error: l.search_error,
        pager: l.pager,
        blank: vec![SgRuleRow::blank()],
    };
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "security_group.html")]
struct SgPage {
    chrome: Chrome,
    sg: SgRow,
    blank: Vec<SgRuleRow>,
}

pub async fn security_group(State(st): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Page {
    const S: Section = Section::SecurityGroups;
    let Json(sg) = ctx.ok(
        S,
        routes::security_groups::get(State(st.clone()), ctx.actor.clone(), Path(id)).await,
    )?;
    let mut users = ctx.ok(S, sg_users(&st, &ctx).await)?;
    let page = SgPage {
        chrome: ctx.chrome(S),
        sg: sg_row(&sg, &mut users),
        blank: vec![SgRuleRow::blank()],
    };
    Ok(render(&page))
}

// ---- alarm templates ---------------------------------------------------------

/// The metric select's options: API name and unit.
pub struct MetricChoice {
    pub name: &'static str,
    pub unit: &'static str,
}

fn metric_choices() -> Vec<MetricChoice> {
    Metric::ALL
        .iter()
        .map(|m| MetricChoice {
            name: m.name(),
            unit: m.unit(),
        })
        .collect()
}

fn scope_label(s: Scope) -> &'static str {
    match s {
        Scope::Lb => "LB",
        Scope::Vserver => "VServer",
    }
}

/// One rule, as shown and as a prefilled row of the modify form.
pub struct AlarmRuleRow {
    pub scope: &'static str,
    pub scope_label: &'static str,
    pub metric: &'static str,
    pub op: &'static str,
    pub threshold: String,
    pub for_s: String,
    /// `LB: new_connections_per_s > 5 for 20s`.
    pub text: String,
}

impl AlarmRuleRow {
    fn of(r: &AlarmRule) -> AlarmRuleRow {
        AlarmRuleRow {
            scope: r.scope.name(),
            scope_label: scope_label(r.scope),
            metric: r.metric.name(),
            op: r.op.symbol(),
            // Exactly as stored (shortest round-trip form), so saving the
            // prefilled form changes nothing.
            threshold: r.threshold.to_string(),
            for_s: r.for_s.to_string(),
            text: rule_text(r),
        }
    }

    fn blank() -> AlarmRuleRow {
        AlarmRuleRow {
            scope: Scope::Lb.name(),
            scope_label: scope_label(Scope::Lb),
            metric: Metric::NewConnectionsPerS.name(),
            op: Op::Gt.symbol(),
            threshold: String::new(),
            for_s: "0".into(),
            text: String::new(),
        }
    }

    pub fn is_scope(&self, s: &str) -> bool {
        self.scope == s
    }

    pub fn is_metric(&self, m: &str) -> bool {
        self.metric == m
    }

    pub fn is_op(&self, o: &str) -> bool {
        self.op == o
    }
}

fn rule_text(r: &AlarmRule) -> String {
    format!("{}: {}", scope_label(r.scope), r)
}

pub struct TemplateRow {
    pub id: String,
    pub name: String,
    pub webhook_url: String,
    pub rules: Vec<AlarmRuleRow>,
    pub used_by: Vec<Link>,
    pub created: String,
}

fn template_row(t: &AlarmTemplate, users: &mut Users) -> TemplateRow {
    TemplateRow {
        id: t.id.clone(),
        name: t.name.clone(),
        webhook_url: t.webhook_url.clone(),
        rules: t.rules.iter().map(AlarmRuleRow::of).collect(),
        used_by: users.of(&t.id),
        created: when(t.created_at),
    }
}

/// What the rule rows offer.
pub struct RuleChoices {
    pub scopes: Vec<(&'static str, &'static str)>,
    pub metrics: Vec<MetricChoice>,
    pub ops: Vec<&'static str>,
}

fn rule_choices() -> RuleChoices {
    RuleChoices {
        scopes: Scope::ALL.iter().map(|s| (s.name(), scope_label(*s))).collect(),
        metrics: metric_choices(),
        ops: Op::ALL.iter().map(|o| o.symbol()).collect(),
    }
}

#[derive(Template)]
#[template(path = "alarm_templates.html")]
struct TemplateListPage {
    chrome: Chrome,
    rows: Vec<TemplateRow>,
    search: String,
    search_error: String,
    pager: Pager,
    blank: Vec<AlarmRuleRow>,
    choices: RuleChoices,
}

pub async fn alarm_templates(State(st): State<AppState>, ctx: Ctx, RawQuery(q): RawQuery) -> Page {
    const S: Section = Section::AlarmTemplates;
    let l = listing(&ctx, S, "/alarm-templates", "", q.as_deref(), |query| async {
        let Json(l) =
            routes::alarm_templates::list(State(st.clone()), ctx.actor.clone(), RawQuery(Some(query))).await?;
        Ok(l)
    })
    .await?;
    let mut users = ctx.ok(S, template_users(&st, &ctx).await)?;
    let page = TemplateListPage {
        chrome: ctx.chrome(S),
        rows: l.items.iter().map(|t| template_row(t, &mut users)).collect(),
        search: l.search,
        search_error: l.search_error,
        pager: l.pager,
        blank: vec![AlarmRuleRow::blank()],
        choices: rule_choices(),
    };
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "alarm_template.html")]
struct TemplatePage {
    chrome: Chrome,
    t: TemplateRow,
    blank: Vec<AlarmRuleRow>,
    choices: RuleChoices,
    /// Its alarms now firing (unknown if the events cannot be read).
    firing: Option<usize>,
}

pub async fn alarm_template(State(st): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Page {
    const S: Section = Section::AlarmTemplates;
    let Json(t) = ctx.ok(
        S,
        routes::alarm_templates::get(State(st.clone()), ctx.actor.clone(), Path(id)).await,
    )?;
    let mut users = ctx.ok(S, template_users(&st, &ctx).await)?;
    let q = format!("state=firing&limit={}&search={}", routes::MAX_LIMIT, encode(&t.id));
    let firing = routes::metrics::alarms(State(st.clone()), ctx.actor.clone(), RawQuery(Some(q)))
        .await
        .ok()
        .map(|Json(l)| l.items.iter().filter(|e| e.template_id == t.id).count());
    let page = TemplatePage {
        chrome: ctx.chrome(S),
        firing,
        t: template_row(&t, &mut users),
        blank: vec![AlarmRuleRow::blank()],
        choices: rule_choices(),
    };
    Ok(render(&page))
}

// ---- alarm events -------------------------------------------------------------

pub struct EventRow {
    pub id: String,
    pub firing: bool,
    pub template_id: String,
    pub template_name: String,
    /// Whether the template is still there to link to.
    pub template_link: bool,
    pub rule: String,
    /// Empty when the resource is gone (or not visible).
    pub resource_href: String,
    pub resource: String,
    pub value: String,
    pub started: String,
    pub resolved: String,
    pub notified: bool,
}

/// A state filter link.
pub struct Filter {
    pub href: String,
    pub label: &'static str,
    pub on: bool,
}

#[derive(Template)]
#[template(path = "alarms.html")]
struct AlarmsPage {
    chrome: Chrome,
    rows: Vec<EventRow>,
    state: &'static str,
    filters: Vec<Filter>,
    search: String,
    search_error: String,
    pager: Pager,
}

pub async fn alarms(State(st): State<AppState>, ctx: Ctx, RawQuery(q): RawQuery) -> Page {
    const S: Section = Section::Alarms;
    let p = pairs(q.as_deref());
    let state = match param(&p, "state").as_str() {
        "firing" => "firing",
        "resolved" => "resolved",
        _ => "",
    };
    let extra = if state.is_empty() {
        String::new()
    } else {
        format!("state={state}")
    };
    let l = listing(&ctx, S, "/alarms", &extra, q.as_deref(), |query| async {
        let Json(l) = routes::metrics::alarms(State(st.clone()), ctx.actor.clone(), RawQuery(Some(query))).await?;
        Ok(List {
            items: l.items,
            total: l.total as u64,
        })
    })
    .await?;
    let lbs: Vec<LoadBalancer> = ctx.ok(S, all(&st, &ctx.actor).await)?;
    let vss: Vec<VServer> = ctx.ok(S, all(&st, &ctx.actor).await)?;
    let templates: Vec<AlarmTemplate> = ctx.ok(S, all(&st, &ctx.actor).await)?;
    let lb_of = by_id(&lbs);
    let vs_of: HashMap<&str, &VServer> = vss.iter().map(|v| (v.id.as_str(), v)).collect();
    let rows = l
        .items
        .iter()
        .map(|e| {
            let (resource_href, resource) = if let Some(lb) = lb_of.get(e.resource_id.as_str()) {
                let Link { href, label } = lb_link(lb);
                (href, label)
            } else if let Some(vs) = vs_of.get(e.resource_id.as_str()) {
                let Link { href, label } = vs_link(vs, &lb_of);
                (href, label)
            } else {
                (String::new(), format!("{} (deleted)", e.resource_id))
            };
            EventRow {
                id: e.id.clone(),
                firing: e.resolved_at.is_none(),
                template_id: e.template_id.clone(),
                template_name: e.template_name.clone(),
                template_link: templates.iter().any(|t| t.id == e.template_id),
                rule: rule_text(&e.rule),
                resource_href,
                resource,
                value: num(e.value),
                started: when(e.started_at),
                resolved: e.resolved_at.map(when).unwrap_or_default(),
                notified: e.notified,
            }
        })
        .collect();
    let search_q = if l.search.is_empty() {
        String::new()
    } else {
        format!("search={}", encode(&l.search))
    };
    let filters = [("", "All"), ("firing", "Firing"), ("resolved", "Resolved")]
        .iter()
        .map(|(v, label)| {
            let mut query: Vec<String> = vec![];
            if !v.is_empty() {
                query.push(format!("state={v}"));
            }
            if !search_q.is_empty() {
                query.push(search_q.clone());
            }
            Filter {
                href: if query.is_empty() {
                    "/alarms".into()
                } else {
                    format!("/alarms?{}", query.join("&"))
                },
                label,
                on: *v == state,
            }
        })
        .collect();
    let page = AlarmsPage {
        chrome: ctx.chrome(S),
        rows,
        state,
        filters,
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
    fn numbers_read_well() {
        assert_eq!(num(5.0), "5");
        assert_eq!(num(0.5), "0.5");
        assert_eq!(num(1234.5678), "1234.57");
        assert_eq!(num(0.0), "0");
        assert_eq!(num(2.10), "2.1");
    }

    #[test]
    fn rules_read_as_text() {
        let r = AlarmRule {
            scope: Scope::Vserver,
            metric: Metric::Http5xxPerS,
            op: Op::Ge,
            threshold: 0.5,
            for_s: 20,
        };
        assert_eq!(rule_text(&r), "VServer: http_5xx_per_s >= 0.5 for 20s");
        let row = SgRuleRow {
            priority: "10".into(),
            action: "deny",
            protocol: "any",
            ports: "all".into(),
            source: "10.0.0.0/8".into(),
        };
        assert_eq!(row.text(), "deny any all ports from 10.0.0.0/8");
    }
}
