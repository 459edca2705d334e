//! `weir alarm-template …`: alarm templates, with rules written
//! `<scope>:<metric><op><threshold>[:<for_s>]`; `weir alarm list`: the alarm events.

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use super::{IdArg, ListArgs, changes};
use crate::body::{Body, enum_name};
use crate::client::{ApiResponse, CliError, Client};
use crate::fields::FieldMap;
use crate::output::{Column, Output, Printer, col};

pub const TEMPLATE_FIELDS: FieldMap = &[("rules", "--rule"), ("webhook_url", "--webhook")];
pub const ALARM_FIELDS: FieldMap = &[("state", "--state")];

const TEMPLATE_COLUMNS: &[Column] = &[
    col("ID", "id"),
    col("NAME", "name"),
    col("RULES", "rules"),
    col("WEBHOOK", "webhook_url"),
];
const TEMPLATE_ORDER: &[&str] = &["id", "name", "rules", "webhook_url", "owner_id", "created_at"];
const TEMPLATES: &str = "alarm-templates";

const ALARM_COLUMNS: &[Column] = &[
    col("ID", "id"),
    col("TEMPLATE", "template"),
    col("RESOURCE", "resource_id"),
    col("RULE", "rule"),
    col("VALUE", "value"),
    col("STATE", "state"),
    col("STARTED", "started_at"),
    col("RESOLVED", "resolved_at"),
    col("NOTIFIED", "notified"),
];
const ALARMS: &str = "alarms";

#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum AlarmTemplateCmd {
    /// Create an alarm template
    Create(TemplateCreate),
    /// List alarm templates
    List(ListArgs),
    /// Show one alarm template
    Show(IdArg),
    /// Rename an alarm template, replace its rules or change its webhook
    Update(TemplateUpdate),
    /// Delete an alarm template (refused while bound to a load balancer or VServer)
    Delete(IdArg),
}

#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum AlarmCmd {
    /// List alarm events (firing and resolved)
    List(AlarmList),
}

/// One rule: `<scope>:<metric><op><threshold>[:<for_s>]`, e.g. `lb:new_connections_per_s>5:20`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmRule {
    pub scope: String,
    pub metric: String,
    pub op: String,
    pub threshold: f64,
    pub for_s: u32,
}

impl AlarmRule {
    pub fn to_json(&self) -> Value {
        json!({
            "scope": self.scope,
            "metric": self.metric,
            "op": self.op,
            "threshold": self.threshold,
            "for_s": self.for_s,
        })
    }
}

const RULE_SYNTAX: &str = "expected <scope>:<metric><op><threshold>[:<for_s>] with scope lb or vserver \
     and op >, >=, < or <=, e.g. lb:new_connections_per_s>5:20";

/// Parses `--rule`. Metric names and ranges are left to the API, which lists the valid ones.
pub fn parse_alarm_rule(text: &str) -> Result<AlarmRule, String> {
    let text = text.trim();
    let Some((scope, rest)) = text.split_once(':') else {
        return Err(format!("no scope; {RULE_SYNTAX}"));
    };
    let scope = scope.trim().to_ascii_lowercase();
    if !matches!(scope.as_str(), "lb" | "vserver") {
        return Err(format!("scope {scope:?} must be lb or vserver; {RULE_SYNTAX}"));
    }
    let Some(at) = rest.find(['<', '>']) else {
        return Err(format!("no comparison (>, >=, < or <=); {RULE_SYNTAX}"));
    };
    let metric = rest[..at].trim().to_ascii_lowercase();
    if metric.is_empty() || !metric.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!("metric {metric:?} is not a metric name; {RULE_SYNTAX}"));
    }
    let after = &rest[at..];
    let op_len = if after[1..].starts_with('=') { 2 } else { 1 };
    let op = after[..op_len].to_owned();
    let (threshold, for_s) = match after[op_len..].split_once(':') {
        Some((t, f)) => (t.trim(), Some(f.trim())),
        None => (after[op_len..].trim(), None),
    };
    let threshold = threshold
        .parse::<f64>()
        .ok()
        .filter(|t| t.is_finite())
        .ok_or_else(|| format!("threshold {threshold:?} is not a number; {RULE_SYNTAX}"))?;
    let for_s = match for_s {
        None => 0,
        Some(f) => f
            .parse::<u32>()
            .map_err(|_| format!("for_s {f:?} is not a whole number of seconds; {RULE_SYNTAX}"))?,
    };
    Ok(AlarmRule {
        scope,
        metric,
        op,
        threshold,
        for_s,
    })
}

fn rules_json(rules: &[AlarmRule]) -> Value {
    Value::Array(rules.iter().map(AlarmRule::to_json).collect())
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct TemplateCreate {
    /// Name of the alarm template
    #[arg(long)]
    pub name: String,
    /// Rule <scope>:<metric><op><threshold>[:<for_s>] (repeatable, 1 to 20), e.g. lb:new_connections_per_s>5:20
    #[arg(long = "rule", value_name = "RULE", value_parser = parse_alarm_rule, required = true)]
    pub rules: Vec<AlarmRule>,
    /// Webhook (http:// or https:// URL) that receives a JSON POST when an alarm fires or resolves
    #[arg(long = "webhook", value_name = "URL")]
    pub webhook_url: String,
}

impl TemplateCreate {
    pub fn body(&self) -> Value {
        Body::new()
            .set("name", self.name.as_str())
            .set("rules", rules_json(&self.rules))
            .set("webhook_url", self.webhook_url.as_str())
            .build()
    }
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct TemplateUpdate {
    /// Alarm template ID
    pub id: String,
    /// New name
    #[arg(long)]
    pub name: Option<String>,
    /// Replace all rules with these (repeatable)
    #[arg(long = "rule", value_name = "RULE", value_parser = parse_alarm_rule)]
    pub rules: Vec<AlarmRule>,
    /// New webhook URL
    #[arg(long = "webhook", value_name = "URL")]
    pub webhook_url: Option<String>,
}

impl TemplateUpdate {
    pub fn body(&self) -> Result<Value, CliError> {
        let mut body = Body::new()
            .opt("name", self.name.as_deref())
            .opt("webhook_url", self.webhook_url.as_deref());
        if !self.rules.is_empty() {
            body = body.set("rules", rules_json(&self.rules));
        }
        changes(body, "--name, --rule, --webhook")
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
#[value(rename_all = "snake_case")]
pub enum AlarmState {
    Firing,
    Resolved,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct AlarmList {
    /// Only alarms in this state
    #[arg(long, value_enum)]
    pub state: Option<AlarmState>,
}

impl AlarmList {
    pub fn query(&self) -> Vec<(&'static str, String)> {
        self.state.map(|s| ("state", enum_name(&s))).into_iter().collect()
    }
}

/// A number as people write it: `5`, not `5.0`.
fn number(v: &Value) -> Option<String> {
    let n = v.as_f64()?;
    Some(format!("{n}"))
}

/// A measured value, rounded to at most three decimals.
fn measured(v: &Value) -> Option<String> {
    let n = v.as_f64()?;
    let text = format!("{n:.3}");
    Some(text.trim_end_matches('0').trim_end_matches('.').to_owned())
}

/// A stored rule in the `--rule` syntax: `lb:new_connections_per_s>5:20`.
pub fn rule_flag_text(rule: &Value) -> Option<String> {
    let scope = rule.get("scope")?.as_str()?;
    let metric = rule.get("metric")?.as_str()?;
    let op = rule.get("op")?.as_str()?;
    let threshold = number(rule.get("threshold")?)?;
    let for_s = rule.get("for_s").and_then(Value::as_u64).unwrap_or(0);
    Some(if for_s > 0 {
        format!("{scope}:{metric}{op}{threshold}:{for_s}")
    } else {
        format!("{scope}:{metric}{op}{threshold}")
    })
}

/// A rule as a sentence: `new_connections_per_s > 5 for 20s`.
pub fn rule_text(rule: &Value) -> Option<String> {
    let metric = rule.get("metric")?.as_str()?;
    let op = rule.get("op")?.as_str()?;
    let threshold = number(rule.get("threshold")?)?;
    let for_s = rule.get("for_s").and_then(Value::as_u64).unwrap_or(0);
    Some(if for_s > 0 {
        format!("{metric} {op} {threshold} for {for_s}s")
    } else {
        format!("{metric} {op} {threshold}")
    })
}

/// A template for a table: its rules as `--rule` text, one per line.
fn template_for_table(t: &mut Value) {
    let Some(rules) = t.get("rules").and_then(Value::as_array) else {
        return;
    };
    let lines: Option<Vec<String>> = rules.iter().map(rule_flag_text).collect();
    if let Some(lines) = lines {
        t["rules"] = Value::String(lines.join("\n"));
    }
}

/// An alarm for a table: the template by name, the rule as a sentence, the value rounded.
fn alarm_for_table(a: &mut Value) {
    let template = a
        .get("template_name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .or_else(|| a.get("template_id").and_then(Value::as_str))
        .map(str::to_owned);
    if let Some(t) = template {
        a["template"] = Value::String(t);
    }
    if let Some(text) = a.get("rule").and_then(rule_text) {
        let text = match a.get("rule").and_then(|r| r.get("scope")).and_then(Value::as_str) {
            Some(scope) => format!("{scope}: {text}"),
            None => text,
        };
        a["rule"] = Value::String(text);
    }
    if let Some(v) = a.get("value").and_then(measured) {
        a["value"] = Value::String(v);
    }
}

/// The answer with `f` applied to the resource (or to each list item) for table output;
/// JSON output stays exactly the API's.
fn for_table(p: &Printer, mut r: ApiResponse, f: fn(&mut Value)) -> ApiResponse {
    if p.output() == Output::Table {
        match r.json.get_mut("items").and_then(Value::as_array_mut) {
            Some(items) => items.iter_mut().for_each(f),
            None => f(&mut r.json),
        }
    }
    r
}

pub async fn run_template(c: &Client, p: &Printer, cmd: AlarmTemplateCmd) -> Result<i32, CliError> {
    let show = |r: ApiResponse| p.object(&for_table(p, r, template_for_table), TEMPLATE_ORDER);
    match cmd {
        AlarmTemplateCmd::Create(a) => show(c.post(&[TEMPLATES], &a.body()).await?),
        AlarmTemplateCmd::List(a) => p.list(
            &for_table(p, c.get(&[TEMPLATES], &a.query()).await?, template_for_table),
            TEMPLATE_COLUMNS,
        ),
        AlarmTemplateCmd::Show(a) => show(c.get(&[TEMPLATES, &a.id], &[]).await?),
        AlarmTemplateCmd::Update(a) => show(c.patch(&[TEMPLATES, &a.id], &a.body()?).await?),
        AlarmTemplateCmd::Delete(a) => {
            c.delete(&[TEMPLATES, &a.id]).await?;
            p.note(&format!("deleted {}", a.id));
        }
    }
    Ok(0)
}

pub async fn run_alarm(c: &Client, p: &Printer, cmd: AlarmCmd) -> Result<i32, CliError> {
    match cmd {
        AlarmCmd::List(a) => p.list(
            &for_table(p, c.get(&[ALARMS], &a.query()).await?, alarm_for_table),
            ALARM_COLUMNS,
        ),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Command;
    use crate::commands::test_support::{assert_flags_exist, parse, parse_err};
    use crate::output::render_list;

    fn rule(scope: &str, metric: &str, op: &str, threshold: f64, for_s: u32) -> AlarmRule {
        AlarmRule {
            scope: scope.into(),
            metric: metric.into(),
            op: op.into(),
            threshold,
            for_s,
        }
    }

    #[test]
    fn parses_rules() {
        assert_eq!(
            parse_alarm_rule("lb:new_connections_per_s>5:20"),
            Ok(rule("lb", "new_connections_per_s", ">", 5.0, 20))
        );
        assert_eq!(
            parse_alarm_rule("vserver:http_5xx_per_s>=0.5"),
            Ok(rule("vserver", "http_5xx_per_s", ">=", 0.5, 0))
        );
        assert_eq!(
            parse_alarm_rule(" VServer : active_connections <= 10 : 60 "),
            Ok(rule("vserver", "active_connections", "<=", 10.0, 60))
        );
        assert_eq!(
            parse_alarm_rule("lb:unhealthy_backends<1"),
            Ok(rule("lb", "unhealthy_backends", "<", 1.0, 0))
        );
    }

    #[test]
    fn rejects_bad_rules() {
        for bad in [
            "",
            "new_connections_per_s>5",
            "host:new_connections_per_s>5",
            "lb:new_connections_per_s",
            "lb:>5",
            "lb:new connections>5",
            "lb:new_connections_per_s=5",
            "lb:new_connections_per_s>>5",
            "lb:new_connections_per_s>=",
            "lb:new_connections_per_s>five",
            "lb:new_connections_per_s>inf",
            "lb:new_connections_per_s>5:",
            "lb:new_connections_per_s>5:-1",
            "lb:new_connections_per_s>5:1.5",
            "lb:new_connections_per_s>5:20:1",
        ] {
            let e = parse_alarm_rule(bad).expect_err(bad);
            assert!(e.contains("<scope>:<metric><op><threshold>[:<for_s>]"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn create_and_update_bodies() {
        let Command::AlarmTemplate(AlarmTemplateCmd::Create(a)) = parse(
            "alarm-template create --name ops --rule lb:new_connections_per_s>5:20 \
             --rule vserver:http_5xx_per_s>=1 --webhook https://h.example/x",
        ) else {
            panic!()
        };
        assert_eq!(
            a.body(),
            json!({"name": "ops", "webhook_url": "https://h.example/x", "rules": [
                {"scope": "lb", "metric": "new_connections_per_s", "op": ">", "threshold": 5.0, "for_s": 20},
                {"scope": "vserver", "metric": "http_5xx_per_s", "op": ">=", "threshold": 1.0, "for_s": 0}
            ]})
        );
        let Command::AlarmTemplate(AlarmTemplateCmd::Update(a)) =
            parse("alarm-template update alarm-1 --rule lb:active_connections<3")
        else {
            panic!()
        };
        assert_eq!(
            a.body(),
            Ok(
                json!({"rules": [{"scope": "lb", "metric": "active_connections", "op": "<", "threshold": 3.0, "for_s": 0}]})
            )
        );
        let Command::AlarmTemplate(AlarmTemplateCmd::Update(a)) =
            parse("alarm-template update alarm-1 --name x --webhook http://h")
        else {
            panic!()
        };
        assert_eq!(a.body(), Ok(json!({"name": "x", "webhook_url": "http://h"})));
        let Command::AlarmTemplate(AlarmTemplateCmd::Update(a)) = parse("alarm-template update alarm-1") else {
            panic!()
        };
        assert_eq!(a.body().map_err(|e| e.exit_code()), Err(2));
        parse_err("alarm-template create --name ops --webhook http://h");
        parse_err("alarm-template create --name ops --rule lb:x>1 --rule lb:x --webhook http://h");
    }

    #[test]
    fn alarm_list_query() {
        let Command::Alarm(AlarmCmd::List(a)) = parse("alarm list --state firing") else {
            panic!()
        };
        assert_eq!(a.query(), vec![("state", "firing".to_string())]);
        let Command::Alarm(AlarmCmd::List(a)) = parse("alarm list --state resolved") else {
            panic!()
        };
        assert_eq!(a.query(), vec![("state", "resolved".to_string())]);
        let Command::Alarm(AlarmCmd::List(a)) = parse("alarm list") else {
            panic!()
        };
        assert!(a.query().is_empty());
        parse_err("alarm list --state open");
    }

    #[test]
    fn tables_show_rules_as_text() {
        let mut t = json!({"id": "alarm-1", "rules": [
            {"scope": "lb", "metric": "new_connections_per_s", "op": ">", "threshold": 5.0, "for_s": 20},
            {"scope": "vserver", "metric": "http_5xx_per_s", "op": ">=", "threshold": 0.5, "for_s": 0}
        ]});
        template_for_table(&mut t);
        assert_eq!(t["rules"], "lb:new_connections_per_s>5:20\nvserver:http_5xx_per_s>=0.5");
        let mut a = json!({"id": "al-1", "template_id": "alarm-1", "template_name": "ops", "rule_index": 0,
            "rule": {"scope": "lb", "metric": "new_connections_per_s", "op": ">", "threshold": 5.0, "for_s": 20},
            "resource_id": "lb-1", "lb_id": "lb-1", "value": 7.25, "state": "firing",
            "started_at": "2025-01-01T00:00:00Z", "resolved_at": null, "notified": true});
        alarm_for_table(&mut a);
        assert_eq!(a["template"], "ops");
        assert_eq!(a["rule"], "lb: new_connections_per_s > 5 for 20s");
        assert_eq!(a["value"], "7.25");
        let text = render_list(&json!({"items": [a], "total": 1}), ALARM_COLUMNS);
        for needle in [
            "al-1",
            "ops",
            "lb-1",
            "new_connections_per_s > 5 for 20s",
            "7.25",
            "firing",
            "true",
        ] {
            assert!(text.contains(needle), "{needle} missing in\n{text}");
        }
        let mut b = json!({"template_id": "alarm-2", "template_name": "", "value": 3.0});
        alarm_for_table(&mut b);
        assert_eq!(
            (b["template"].clone(), b["value"].clone()),
            (json!("alarm-2"), json!("3"))
        );
    }

    #[test]
    fn field_flags_exist() {
        assert_flags_exist("alarm-template", TEMPLATE_FIELDS);
        assert_flags_exist("alarm", ALARM_FIELDS);
    }
}
