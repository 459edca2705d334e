//! `weir rule …`: forwarding rules of an http/https VServer.

use clap::{Args, Subcommand};
use serde_json::Value;

use super::ListArgs;
use super::backend::VsRef;
use super::changes;
use crate::body::Body;
use crate::client::{CliError, Client};
use crate::fields::FieldMap;
use crate::output::{Column, Printer, col};

pub const FIELDS: FieldMap = &[
    ("lb_id", "--lb"),
    ("vserver_id", "--vserver"),
    ("vs_id", "--vserver"),
    ("domain", "--domain"),
    ("path", "--path"),
    ("backend_ids", "--backend"),
];

const COLUMNS: &[Column] = &[
    col("ID", "id"),
    col("DOMAIN", "domain"),
    col("PATH", "path"),
    col("BACKENDS", "backend_ids"),
];

const ORDER: &[&str] = &["id", "domain", "path", "backend_ids"];

#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum RuleCmd {
    /// Route a domain and/or path prefix to some of the VServer's backends
    Create(RuleCreate),
    /// List rules in precedence order
    List(RuleList),
    /// Show one rule
    Show(RuleId),
    /// Change a rule's domain, path or backends
    Update(RuleUpdate),
    /// Delete a rule
    Delete(RuleId),
}

/// What a rule matches and where it sends traffic; only given flags are sent.
#[derive(Args, Debug, Clone, Default, PartialEq)]
pub struct RuleFields {
    /// Exact (api.example.com) or wildcard (*.example.com) domain
    #[arg(long)]
    pub domain: Option<String>,
    /// Path prefix, e.g. /api
    #[arg(long)]
    pub path: Option<String>,
    /// Backend ID; repeatable or comma-separated (replaces the list on update)
    #[arg(long = "backend", value_name = "RS_ID", value_delimiter = ',')]
    pub backend_ids: Vec<String>,
}

impl RuleFields {
    fn body(&self) -> Body {
        Body::new()
            .opt("domain", self.domain.as_deref())
            .opt("path", self.path.as_deref())
            .list("backend_ids", &self.backend_ids)
    }
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct RuleCreate {
    #[command(flatten)]
    pub vs: VsRef,
    #[command(flatten)]
    pub fields: RuleFields,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct RuleList {
    #[command(flatten)]
    pub vs: VsRef,
    #[command(flatten)]
    pub list: ListArgs,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct RuleId {
    #[command(flatten)]
    pub vs: VsRef,
    /// Rule ID
    pub id: String,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct RuleUpdate {
    #[command(flatten)]
    pub vs: VsRef,
    /// Rule ID
    pub id: String,
    #[command(flatten)]
    pub fields: RuleFields,
}

impl RuleCreate {
    pub fn body(&self) -> Value {
        self.fields.body().build()
    }
}

impl RuleUpdate {
    pub fn body(&self) -> Result<Value, CliError> {
        changes(self.fields.body(), "--domain, --path, --backend")
    }
}

fn path<'a>(vs: &'a VsRef, rest: &[&'a str]) -> Vec<&'a str> {
    let mut p = vec![
        "load-balancers",
        vs.lb_id.as_str(),
        "vservers",
        vs.vs_id.as_str(),
        "rules",
    ];
    p.extend_from_slice(rest);
    p
}

pub async fn run(c: &Client, p: &Printer, cmd: RuleCmd) -> Result<i32, CliError> {
    match cmd {
        RuleCmd::Create(a) => p.object(&c.post(&path(&a.vs, &[]), &a.body()).await?, ORDER),
        RuleCmd::List(a) => p.list(&c.get(&path(&a.vs, &[]), &a.list.query()).await?, COLUMNS),
        RuleCmd::Show(a) => p.object(&c.get(&path(&a.vs, &[&a.id]), &[]).await?, ORDER),
        RuleCmd::Update(a) => {
            let body = a.body()?;
            p.object(&c.patch(&path(&a.vs, &[&a.id]), &body).await?, ORDER);
        }
        RuleCmd::Delete(a) => {
            c.delete(&path(&a.vs, &[&a.id])).await?;
            p.note(&format!("deleted {}", a.id));
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Command;
    use crate::commands::test_support::{assert_flags_exist, parse};
    use serde_json::json;

    fn rule(line: &str) -> RuleCmd {
        match parse(line) {
            Command::Rule(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn create_collects_backends() {
        let RuleCmd::Create(a) =
            rule("rule create --lb l --vserver v --domain *.example.com --backend rs-1,rs-2 --backend rs-3")
        else {
            panic!()
        };
        assert_eq!(
            a.body(),
            json!({"domain": "*.example.com", "backend_ids": ["rs-1", "rs-2", "rs-3"]})
        );
        assert_eq!(path(&a.vs, &[]), vec!["load-balancers", "l", "vservers", "v", "rules"]);
    }

    #[test]
    fn update_is_partial() {
        let RuleCmd::Update(a) = rule("rule update --lb l --vserver v rule-1 --path /api") else {
            panic!()
        };
        assert_eq!(a.body(), Ok(json!({"path": "/api"})));
        let RuleCmd::Update(a) = rule("rule update --lb l --vserver v rule-1") else {
            panic!()
        };
        assert!(a.body().is_err());
    }

    #[test]
    fn field_flags_exist() {
        assert_flags_exist("rule", FIELDS);
    }
}
