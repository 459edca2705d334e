//! `weir sg …`: security groups, with rules written `priority:action:protocol:ports:source`.

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::{IdArg, ListArgs, changes};
use crate::body::Body;
use crate::client::{CliError, Client};
use crate::fields::FieldMap;
use crate::output::{Column, Printer, col};

pub const FIELDS: FieldMap = &[("rules", "--rule")];

const COLUMNS: &[Column] = &[col("ID", "id"), col("NAME", "name"), col("RULES", "rules")];
const ORDER: &[&str] = &["id", "name", "rules"];
const PATH: &str = "security-groups";

#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum SgCmd {
    /// Create a security group
    Create(SgCreate),
    /// List security groups
    List(ListArgs),
    /// Show one security group
    Show(IdArg),
    /// Rename a security group or replace its rules
    Update(SgUpdate),
    /// Delete a security group (refused while bound)
    Delete(IdArg),
}

/// One rule: `priority:action:protocol:ports:source`, e.g. `10:allow:tcp:80:0.0.0.0/0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SgRule {
    pub priority: u32,
    pub action: String,
    pub protocol: String,
    pub ports: String,
    pub source: String,
}

impl SgRule {
    pub fn to_json(&self) -> Value {
        json!({
            "priority": self.priority,
            "action": self.action,
            "protocol": self.protocol,
            "ports": self.ports,
            "source": self.source,
        })
    }
}

const RULE_SYNTAX: &str = "expected priority:action:protocol:ports:source, e.g. 10:allow:tcp:80:0.0.0.0/0";

/// Parses `--rule`; the source is the rest of the text, so IPv6 CIDRs work too.
/// Ranges (priority 1–1000, port numbers) are left to the API.
pub fn parse_sg_rule(text: &str) -> Result<SgRule, String> {
    let parts: Vec<&str> = text.trim().splitn(5, ':').map(str::trim).collect();
    let [priority, action, protocol, ports, source] = parts[..] else {
        return Err(RULE_SYNTAX.into());
    };
    let priority = priority
        .parse::<u32>()
        .map_err(|_| format!("priority {priority:?} is not a number; {RULE_SYNTAX}"))?;
    let action = action.to_ascii_lowercase();
    if !matches!(action.as_str(), "allow" | "deny") {
        return Err(format!("action {action:?} must be allow or deny"));
    }
    let protocol = protocol.to_ascii_lowercase();
    if !matches!(protocol.as_str(), "tcp" | "udp" | "any") {
        return Err(format!("protocol {protocol:?} must be tcp, udp or any"));
    }
    let ports = ports.to_ascii_lowercase();
    let is_num = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let ports_ok =
        ports == "all" || is_num(&ports) || ports.split_once('-').is_some_and(|(a, b)| is_num(a) && is_num(b));
    if !ports_ok {
        return Err(format!(
            "ports {ports:?} must be a port (80), a range (8000-8100) or all"
        ));
    }
    if source.is_empty() {
        return Err(format!("source is empty; {RULE_SYNTAX}"));
    }
    Ok(SgRule {
        priority,
        action,
        protocol,
        ports,
        source: source.to_owned(),
    })
}

fn rules_json(rules: &[SgRule]) -> Value {
    Value::Array(rules.iter().map(SgRule::to_json).collect())
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct SgCreate {
    /// Name of the security group
    #[arg(long)]
    pub name: String,
    /// Rule priority:action:protocol:ports:source (repeatable), e.g. 10:allow:tcp:80:0.0.0.0/0
    #[arg(long = "rule", value_name = "RULE", value_parser = parse_sg_rule)]
    pub rules: Vec<SgRule>,
}

impl SgCreate {
    pub fn body(&self) -> Value {
        let body = Body::new().set("name", self.name.as_str());
        if self.rules.is_empty() {
            body.build()
        } else {
            body.set("rules", rules_json(&self.rules)).build()
        }
    }
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct SgUpdate {
    /// Security group ID
    pub id: String,
    /// New name
    #[arg(long)]
    pub name: Option<String>,
    /// Replace all rules with these (repeatable)
    #[arg(long = "rule", value_name = "RULE", value_parser = parse_sg_rule)]
    pub rules: Vec<SgRule>,
    /// Remove every rule (everything is then denied)
    #[arg(long, conflicts_with = "rules")]
    pub clear_rules: bool,
}

impl SgUpdate {
    pub fn body(&self) -> Result<Value, CliError> {
        let mut body = Body::new().opt("name", self.name.as_deref());
        if !self.rules.is_empty() || self.clear_rules {
            body = body.set("rules", rules_json(&self.rules));
        }
        changes(body, "--name, --rule, --clear-rules")
    }
}

pub async fn run(c: &Client, p: &Printer, cmd: SgCmd) -> Result<i32, CliError> {
    match cmd {
        SgCmd::Create(a) => p.object(&c.post(&[PATH], &a.body()).await?, ORDER),
        SgCmd::List(a) => p.list(&c.get(&[PATH], &a.query()).await?, COLUMNS),
        SgCmd::Show(a) => p.object(&c.get(&[PATH, &a.id], &[]).await?, ORDER),
        SgCmd::Update(a) => p.object(&c.patch(&[PATH, &a.id], &a.body()?).await?, ORDER),
        SgCmd::Delete(a) => {
            c.delete(&[PATH, &a.id]).await?;
            p.note(&format!("deleted {}", a.id));
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Command;
    use crate::commands::test_support::{assert_flags_exist, parse, parse_err};

    #[test]
    fn parses_rules() {
        assert_eq!(
            parse_sg_rule("10:allow:tcp:80:0.0.0.0/0"),
            Ok(SgRule {
                priority: 10,
                action: "allow".into(),
                protocol: "tcp".into(),
                ports: "80".into(),
                source: "0.0.0.0/0".into()
            })
        );
        let r = parse_sg_rule("1000:DENY:any:all:10.0.0.0/8").expect("valid");
        assert_eq!(
            (r.action.as_str(), r.protocol.as_str(), r.ports.as_str()),
            ("deny", "any", "all")
        );
        let r = parse_sg_rule("5:allow:udp:8000-8100:2001:db8::/32").expect("ipv6 source");
        assert_eq!(r.source, "2001:db8::/32");
        assert_eq!(r.ports, "8000-8100");
    }

    #[test]
    fn rejects_bad_rules() {
        for bad in [
            "",
            "10:allow:tcp:80",
            "x:allow:tcp:80:0.0.0.0/0",
            "10:permit:tcp:80:0.0.0.0/0",
            "10:allow:icmp:80:0.0.0.0/0",
            "10:allow:tcp:80-:0.0.0.0/0",
            "10:allow:tcp:http:0.0.0.0/0",
            "10:allow:tcp:80:",
        ] {
            assert!(parse_sg_rule(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn create_and_update_bodies() {
        let Command::Sg(SgCmd::Create(a)) =
            parse("sg create --name web --rule 10:allow:tcp:80:0.0.0.0/0 --rule 20:deny:any:all:10.0.0.0/8")
        else {
            panic!()
        };
        assert_eq!(
            a.body(),
            json!({"name": "web", "rules": [
                {"priority": 10, "action": "allow", "protocol": "tcp", "ports": "80", "source": "0.0.0.0/0"},
                {"priority": 20, "action": "deny", "protocol": "any", "ports": "all", "source": "10.0.0.0/8"}
            ]})
        );
        let Command::Sg(SgCmd::Create(a)) = parse("sg create --name empty") else {
            panic!()
        };
        assert_eq!(a.body(), json!({"name": "empty"}));
        let Command::Sg(SgCmd::Update(a)) = parse("sg update sg-1 --clear-rules") else {
            panic!()
        };
        assert_eq!(a.body(), Ok(json!({"rules": []})));
        let Command::Sg(SgCmd::Update(a)) = parse("sg update sg-1 --name x") else {
            panic!()
        };
        assert_eq!(a.body(), Ok(json!({"name": "x"})));
        parse_err("sg create --name web --rule 10:allow:tcp");
        parse_err("sg update sg-1 --clear-rules --rule 1:allow:tcp:80:0.0.0.0/0");
    }

    #[test]
    fn field_flags_exist() {
        assert_flags_exist("sg", FIELDS);
    }
}
