//! Alarm templates: threshold rules on sampled metrics, bound to LBs and
//! VServers, notifying a webhook.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::{Error, ErrorKind, Kind, Resource, Result, validate};

/// A sampled series, as the API and alarm rules name it. Rates are per
/// second over the sampling interval; `active_connections` and
/// `unhealthy_backends` are gauges read at the sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    NewConnectionsPerS,
    ActiveConnections,
    BytesInPerS,
    BytesOutPerS,
    PacketsInPerS,
    PacketsOutPerS,
    DroppedPerS,
    RequestsPerS,
    #[serde(rename = "http_2xx_per_s")]
    Http2xxPerS,
    #[serde(rename = "http_3xx_per_s")]
    Http3xxPerS,
    #[serde(rename = "http_4xx_per_s")]
    Http4xxPerS,
    #[serde(rename = "http_5xx_per_s")]
    Http5xxPerS,
    UnhealthyBackends,
}

/// How many metrics a sample holds.
pub const METRICS: usize = 13;

impl Metric {
    /// In the order of a sample's values.
    pub const ALL: [Metric; METRICS] = [
        Metric::NewConnectionsPerS,
        Metric::ActiveConnections,
        Metric::BytesInPerS,
        Metric::BytesOutPerS,
        Metric::PacketsInPerS,
        Metric::PacketsOutPerS,
        Metric::DroppedPerS,
        Metric::RequestsPerS,
        Metric::Http2xxPerS,
        Metric::Http3xxPerS,
        Metric::Http4xxPerS,
        Metric::Http5xxPerS,
        Metric::UnhealthyBackends,
    ];

    /// The API name (`new_connections_per_s`, …).
    pub fn name(self) -> &'static str {
        match self {
            Metric::NewConnectionsPerS => "new_connections_per_s",
            Metric::ActiveConnections => "active_connections",
            Metric::BytesInPerS => "bytes_in_per_s",
            Metric::BytesOutPerS => "bytes_out_per_s",
            Metric::PacketsInPerS => "packets_in_per_s",
            Metric::PacketsOutPerS => "packets_out_per_s",
            Metric::DroppedPerS => "dropped_per_s",
            Metric::RequestsPerS => "requests_per_s",
            Metric::Http2xxPerS => "http_2xx_per_s",
            Metric::Http3xxPerS => "http_3xx_per_s",
            Metric::Http4xxPerS => "http_4xx_per_s",
            Metric::Http5xxPerS => "http_5xx_per_s",
            Metric::UnhealthyBackends => "unhealthy_backends",
        }
    }

    pub fn from_name(s: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == s)
    }

    /// Position in a sample's values.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The unit a chart labels its axis with.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::NewConnectionsPerS => "connections/s",
            Metric::ActiveConnections => "connections",
            Metric::BytesInPerS | Metric::BytesOutPerS => "bytes/s",
            Metric::PacketsInPerS | Metric::PacketsOutPerS => "packets/s",
            Metric::DroppedPerS => "connections/s",
            Metric::RequestsPerS
            | Metric::Http2xxPerS
            | Metric::Http3xxPerS
            | Metric::Http4xxPerS
            | Metric::Http5xxPerS => "requests/s",
            Metric::UnhealthyBackends => "backends",
        }
    }
}

/// What a rule watches: the LB's own series, or each bound VServer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Lb,
    Vserver,
}

impl Scope {
    pub const ALL: [Scope; 2] = [Scope::Lb, Scope::Vserver];

    /// The API name (`lb`, `vserver`).
    pub fn name(self) -> &'static str {
        match self {
            Scope::Lb => "lb",
            Scope::Vserver => "vserver",
        }
    }

    pub fn from_name(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// The comparison of a rule: `value <op> threshold` fires it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum Op {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
}

impl Op {
    pub const ALL: [Op; 4] = [Op::Gt, Op::Ge, Op::Lt, Op::Le];

    /// The API spelling (`>`, `>=`, `<`, `<=`).
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }

    pub fn from_symbol(s: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|o| o.symbol() == s)
    }

    /// Whether `value <op> threshold` holds. A NaN value never holds.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
        }
    }
}

/// One rule as stored and shown: fires when `metric <op> threshold` has
/// held for `for_s` seconds (0: at the first sample that breaks it).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlarmRule {
    pub scope: Scope,
    /// By its API name (`http_2xx_per_s`).
    #[serde(serialize_with = "ser_metric", deserialize_with = "de_metric")]
    #[schema(schema_with = metric_schema)]
    pub metric: Metric,
    pub op: Op,
    pub threshold: f64,
    pub for_s: u32,
}

impl std::fmt::Display for AlarmRule {
    /// `new_connections_per_s > 5 for 20s` (the scope is left to the caller).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.metric.name(), self.op.symbol(), self.threshold)?;
        if self.for_s > 0 {
            write!(f, " for {}s", self.for_s)?;
        }
        Ok(())
    }
}

/// A rule as sent: `scope`, `metric` and `op` are checked while the body is
/// parsed (an unknown value is a 400 naming e.g. `rules[0].op` and listing
/// the valid values); numbers are taken wide so a bad one gets a range
/// message instead of a type error.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlarmRuleInput {
    #[serde(deserialize_with = "de_scope")]
    pub scope: Scope,
    #[serde(deserialize_with = "de_metric")]
    #[schema(schema_with = metric_schema)]
    pub metric: Metric,
    #[serde(deserialize_with = "de_op")]
    pub op: Op,
    pub threshold: f64,
    /// Seconds the condition must hold before the alarm fires (0–86400).
    #[serde(default)]
    pub for_s: i64,
}

/// One of `all` by its API name, read as a string: a value of another JSON
/// type is a type error and an unknown name lists the valid ones, both
/// blamed on the field (serde's own enum reading reports a non-string as
/// malformed JSON, with no field).
fn by_name<'de, D, T>(d: D, what: &str, all: &[T], name: fn(T) -> &'static str) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Copy,
{
    let s = String::deserialize(d)?;
    all.iter().copied().find(|v| name(*v) == s).ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|v| name(*v)).collect();
        serde::de::Error::custom(format!("unknown {what} {s:?}; expected one of {}", names.join(", ")))
    })
}

fn de_scope<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Scope, D::Error> {
    by_name(d, "scope", &Scope::ALL, Scope::name)
}

fn de_metric<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Metric, D::Error> {
    by_name(d, "metric", &Metric::ALL, Metric::name)
}

/// Metrics are written by [`Metric::name`] (`http_2xx_per_s`, as the spec
/// spells them), not by the enum's derived serde names.
fn ser_metric<S: serde::Serializer>(m: &Metric, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(m.name())
}

/// The OpenAPI schema of a metric field: a string, one of the API names.
fn metric_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(Metric::ALL.map(Metric::name)))
        .description(Some("A sampled metric"))
        .build()
}

fn de_op<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Op, D::Error> {
    by_name(d, "op", &Op::ALL, Op::symbol)
}

/// At most this many rules per template.
pub const ALARM_MAX_RULES: usize = 20;
/// The longest `for_s`: one day.
pub const ALARM_MAX_FOR_S: i64 = 86_400;
/// The longest webhook URL, in bytes.
pub const WEBHOOK_URL_MAX: usize = 2048;

/// Checks 1–20 rules, naming `rules[i].<field>` on a bad one.
pub fn validate_alarm_rules(rules: &[AlarmRuleInput]) -> Result<Vec<AlarmRule>> {
    if rules.is_empty() {
        return Err(Error::invalid("rules", "rules must hold at least one rule"));
    }
    if rules.len() > ALARM_MAX_RULES {
        return Err(Error::invalid(
            "rules",
            format!(
                "at most {ALARM_MAX_RULES} rules per alarm template, got {}",
                rules.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(rules.len());
    for (i, r) in rules.iter().enumerate() {
        let at = format!("rules[{i}]");
        if !r.threshold.is_finite() {
            return Err(Error::invalid(
                format!("{at}.threshold"),
                format!("{at}.threshold must be a finite number"),
            ));
        }
        if r.threshold < 0.0 {
            return Err(Error::new(
                ErrorKind::Invalid,
                "out_of_range",
                format!("{at}.threshold must be at least 0, got {}", r.threshold),
            )
            .at(format!("{at}.threshold")));
        }
        let for_s = validate::range("for_s", r.for_s, 0, ALARM_MAX_FOR_S).map_err(|e| e.within(&at))? as u32;
        out.push(AlarmRule {
            scope: r.scope,
            metric: r.metric,
            op: r.op,
            threshold: r.threshold,
            for_s,
        });
    }
    Ok(out)
}

/// A webhook URL: absolute `http://` or `https://` with a host, at most
/// 2048 bytes, no white space or control characters. Returned as given.
pub fn validate_webhook_url(field: &str, v: &str) -> Result<String> {
    let bad = |why: &str| {
        Error::invalid(
            field,
            format!("{field} must be an absolute http:// or https:// URL like https://hooks.example.com/weir; {why}"),
        )
    };
    if v.is_empty() {
        return Err(bad("it is empty"));
    }
    if v.len() > WEBHOOK_URL_MAX {
        return Err(Error::invalid(
            field,
            format!("{field} must be at most {WEBHOOK_URL_MAX} bytes, got {}", v.len()),
        ));
    }
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it contains white space or control characters"));
    }
    let lower = v.to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &v["https://".len()..]
    } else if lower.starts_with("http://") {
        &v["http://".len()..]
    } else {
        return Err(bad("the scheme must be http or https"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // Credentials (`user:pass@`) may precede the host.
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = if let Some(after) = host_port.strip_prefix('[') {
        // An IPv6 literal: `[::1]` or `[::1]:8080`.
        let Some((inside, tail)) = after.split_once(']') else {
            return Err(bad("the IPv6 host is missing its closing ]"));
        };
        if inside.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("the host is not a valid IPv6 address"));
        }
        let port = match tail {
            "" => None,
            t => match t.strip_prefix(':') {
                Some(p) => Some(p),
                None => return Err(bad("unexpected text after the host")),
            },
        };
        (inside, port)
    } else {
        match host_port.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err(bad("it has no host"));
    }
    if !host_port.starts_with('[') {
        let ok = host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'%' | b'~'));
        if !ok {
            return Err(bad(&format!("the host {host:?} is not a valid host name")));
        }
    }
    if let Some(p) = port
        && !p.is_empty()
        && !matches!(p.parse::<u16>(), Ok(n) if n > 0)
    {
        return Err(bad(&format!("the port {p:?} is not a port from 1 to 65535")));
    }
    Ok(v.to_string())
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AlarmTemplate {
    pub id: String,
    pub name: String,
    /// Checked independently; each breach is its own alarm.
    pub rules: Vec<AlarmRule>,
    /// Receives a JSON POST when an alarm fires and when it resolves.
    pub webhook_url: String,
    pub owner_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Resource for AlarmTemplate {
    const KIND: Kind = Kind::AlarmTemplate;
    fn id(&self) -> &str {
        &self.id
    }
    fn owner(&self) -> &str {
        &self.owner_id
    }
    fn search_text(&self) -> String {
        format!("{} {}", self.name, self.id).to_lowercase()
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlarmTemplateCreate {
    pub name: String,
    /// 1–20 rules.
    pub rules: Vec<AlarmRuleInput>,
    #[schema(example = "https://hooks.example.com/weir")]
    pub webhook_url: String,
}

/// A checked create: what the template will hold.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmTemplateSpec {
    pub name: String,
    pub rules: Vec<AlarmRule>,
    pub webhook_url: String,
}

impl AlarmTemplateCreate {
    pub fn validate(&self) -> Result<AlarmTemplateSpec> {
        Ok(AlarmTemplateSpec {
            name: validate::name("name", &self.name)?,
            rules: validate_alarm_rules(&self.rules)?,
            webhook_url: validate_webhook_url("webhook_url", &self.webhook_url)?,
        })
    }
}

/// PATCH body: each field optional; `rules` replaces all rules.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlarmTemplatePatch {
    pub name: Option<String>,
    pub rules: Option<Vec<AlarmRuleInput>>,
    pub webhook_url: Option<String>,
}

/// A checked patch: the fields to change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlarmTemplateChanges {
    pub name: Option<String>,
    pub rules: Option<Vec<AlarmRule>>,
    pub webhook_url: Option<String>,
}

impl AlarmTemplatePatch {
    pub fn validate(&self) -> Result<AlarmTemplateChanges> {
        Ok(AlarmTemplateChanges {
            name: self.name.as_deref().map(|n| validate::name("name", n)).transpose()?,
            rules: self.rules.as_deref().map(validate_alarm_rules).transpose()?,
            webhook_url: self
                .webhook_url
                .as_deref()
                .map(|u| validate_webhook_url("webhook_url", u))
                .transpose()?,
        })
    }
}

impl AlarmTemplateChanges {
    /// Applies the changes; true when anything differs.
    pub fn apply(&self, t: &mut AlarmTemplate) -> bool {
        let mut changed = false;
        if let Some(n) = &self.name
            && *n != t.name
        {
            t.name = n.clone();
            changed = true;
        }
        if let Some(r) = &self.rules
            && *r != t.rules
        {
            t.rules = r.clone();
            changed = true;
        }
        if let Some(u) = &self.webhook_url
            && *u != t.webhook_url
        {
            t.webhook_url = u.clone();
            changed = true;
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_json_names_are_the_api_names() {
        for m in Metric::ALL {
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.name()));
            assert_eq!(serde_json::from_str::<Metric>(&json).unwrap(), m);
        }
    }

    fn rule(threshold: f64, for_s: i64) -> AlarmRuleInput {
        AlarmRuleInput {
            scope: Scope::Lb,
            metric: Metric::NewConnectionsPerS,
            op: Op::Gt,
            threshold,
            for_s,
        }
    }

    fn field(e: Error) -> String {
        e.field.unwrap_or_default()
    }

    #[test]
    fn ops_compare() {
        assert!(Op::Gt.holds(6.0, 5.0) && !Op::Gt.holds(5.0, 5.0));
        assert!(Op::Ge.holds(5.0, 5.0) && !Op::Ge.holds(4.9, 5.0));
        assert!(Op::Lt.holds(4.0, 5.0) && !Op::Lt.holds(5.0, 5.0));
        assert!(Op::Le.holds(5.0, 5.0) && !Op::Le.holds(5.1, 5.0));
        assert!(Op::ALL.iter().all(|o| !o.holds(f64::NAN, 1.0)));
        for o in Op::ALL {
            assert_eq!(Op::from_symbol(o.symbol()), Some(o));
            let json = serde_json::to_string(&o).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", o.symbol()));
        }
        for s in Scope::ALL {
            assert_eq!(Scope::from_name(s.name()), Some(s));
        }
    }

    #[test]
    fn rules_checked() {
        let r = validate_alarm_rules(&[rule(5.0, 20), rule(0.0, 0), rule(1.5, 86_400)]).unwrap_or_default();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].to_string(), "new_connections_per_s > 5 for 20s");
        assert_eq!(r[1].to_string(), "new_connections_per_s > 0");
        assert_eq!(field(validate_alarm_rules(&[]).unwrap_err()), "rules");
        let many: Vec<_> = (0..21).map(|_| rule(1.0, 0)).collect();
        assert_eq!(field(validate_alarm_rules(&many).unwrap_err()), "rules");
        assert!(validate_alarm_rules(&many[..20]).is_ok());
        let e = validate_alarm_rules(&[rule(1.0, 0), rule(-1.0, 0)]).unwrap_err();
        assert_eq!(
            (field(e.clone()), e.code.as_ref()),
            ("rules[1].threshold".into(), "out_of_range")
        );
        for t in [f64::NAN, f64::INFINITY] {
            assert_eq!(
                field(validate_alarm_rules(&[rule(t, 0)]).unwrap_err()),
                "rules[0].threshold"
            );
        }
        for f in [-1, 86_401] {
            let e = validate_alarm_rules(&[rule(1.0, f)]).unwrap_err();
            assert_eq!(
                (field(e.clone()), e.code.as_ref()),
                ("rules[0].for_s".into(), "out_of_range")
            );
        }
    }

    #[test]
    fn rule_input_parse_errors_name_the_value() {
        let bad: std::result::Result<AlarmRuleInput, _> =
            serde_json::from_str(r#"{"scope":"lb","metric":"cpu","op":">","threshold":1}"#);
        let msg = bad.map(|_| ()).unwrap_err().to_string();
        for (json, want) in [
            (
                r#"{"scope":"lb","metric":3,"op":">","threshold":1}"#,
                "expected a string",
            ),
            (
                r#"{"scope":null,"metric":"active_connections","op":">","threshold":1}"#,
                "expected a string",
            ),
            (
                r#"{"scope":"lb","metric":"active_connections","op":"==","threshold":1}"#,
                ">, >=, <, <=",
            ),
            (
                r#"{"scope":"vs","metric":"active_connections","op":">","threshold":1}"#,
                "lb, vserver",
            ),
        ] {
            let r: std::result::Result<AlarmRuleInput, _> = serde_json::from_str(json);
            let e = r.map(|_| ()).unwrap_err();
            assert_eq!(e.classify(), serde_json::error::Category::Data, "{json}");
            assert!(e.to_string().contains(want), "{json}: {e}");
        }
        assert!(
            msg.contains("new_connections_per_s") && msg.contains("unhealthy_backends"),
            "{msg}"
        );
        let ok: AlarmRuleInput =
            serde_json::from_str(r#"{"scope":"vserver","metric":"dropped_per_s","op":"<=","threshold":2}"#)
                .unwrap_or_else(|_| rule(0.0, 0));
        assert_eq!((ok.scope, ok.op, ok.for_s), (Scope::Vserver, Op::Le, 0));
    }

    #[test]
    fn stored_rules_use_api_metric_names() {
        for m in Metric::ALL {
            let r = AlarmRule {
                scope: Scope::Vserver,
                metric: m,
                op: Op::Ge,
                threshold: 1.5,
                for_s: 3,
            };
            let v = serde_json::to_value(r).unwrap_or_default();
            assert_eq!(v["metric"], m.name());
            assert_eq!((v["scope"].as_str(), v["op"].as_str()), (Some("vserver"), Some(">=")));
            let back: Option<AlarmRule> = serde_json::from_value(v).ok();
            assert_eq!(back, Some(r));
        }
    }

    #[test]
    fn webhook_urls() {
        for good in [
            "http://hooks.example.com",
            "https://hooks.example.com/weir?x=1#f",
            "HTTPS://Example.com:8443/a",
            "http://127.0.0.1:9/hook",
            "http://[::1]:8080/hook",
            "https://user:pw@example.com/x",
            "http://localhost",
        ] {
            assert_eq!(
                validate_webhook_url("webhook_url", good).ok().as_deref(),
                Some(good),
                "{good}"
            );
        }
        let long = format!("https://example.com/{}", "a".repeat(2048));
        for bad in [
            "",
            "example.com/hook",
            "ftp://example.com/x",
            "http://",
            "http:///path",
            "https://:80/x",
            "http://exa mple.com",
            "http://example.com/a b",
            " http://example.com",
            "http://example.com\n",
            "http://example.com:0/",
            "http://example.com:99999/",
            "http://example.com:x/",
            "http://[::1/x",
            "http://[nope]/x",
            "http://ex<ample.com/",
            "mailto:a@b.c",
            long.as_str(),
        ] {
            let e = validate_webhook_url("webhook_url", bad).unwrap_err();
            assert_eq!(field(e), "webhook_url", "{bad:?}");
        }
    }

    #[test]
    fn create_and_patch() {
        let c = AlarmTemplateCreate {
            name: " ops ".into(),
            rules: vec![rule(5.0, 20)],
            webhook_url: "https://h.example/x".into(),
        };
        let spec = c.validate().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spec.name, "ops");
        let mut bad = c.clone();
        bad.webhook_url = "nope".into();
        assert_eq!(field(bad.validate().unwrap_err()), "webhook_url");
        let mut t = AlarmTemplate {
            id: crate::ids::new_id("alarm"),
            name: spec.name,
            rules: spec.rules,
            webhook_url: spec.webhook_url,
            owner_id: "acct-1".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
        };
        assert!(t.id.starts_with("alarm-"));
        let p = AlarmTemplatePatch {
            name: Some("ops".into()),
            ..Default::default()
        };
        assert!(!p.validate().unwrap_or_default().apply(&mut t));
        let p = AlarmTemplatePatch {
            rules: Some(vec![rule(1.0, 0), rule(2.0, 0)]),
            ..Default::default()
        };
        assert!(p.validate().unwrap_or_default().apply(&mut t));
        assert_eq!(t.rules.len(), 2);
        let p = AlarmTemplatePatch {
            rules: Some(vec![]),
            ..Default::default()
        };
        assert_eq!(field(p.validate().unwrap_err()), "rules");
    }
}
