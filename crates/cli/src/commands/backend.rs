//! `weir backend …`: service nodes of a VServer.

use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;

use super::{IdsArg, ListArgs, changes};
use crate::body::{Body, tri};
use crate::client::{CliError, Client};
use crate::fields::FieldMap;
use crate::output::{Column, Printer, col};

pub const FIELDS: FieldMap = &[
    ("lb_id", "--lb"),
    ("vserver_id", "--vserver"),
    ("vs_id", "--vserver"),
    ("instance_id", "--instance"),
    ("address", "--address"),
    ("port", "--port"),
    ("weight", "--weight"),
    ("enabled", "--enabled/--disabled"),
    ("action", "--action"),
];

const COLUMNS: &[Column] = &[
    col("ID", "id"),
    col("INSTANCE", "instance_id"),
    col("ADDRESS", "address"),
    col("PORT", "port"),
    col("WEIGHT", "weight"),
    col("ENABLED", "enabled"),
    col("STATUS", "status"),
    col("LAST CHECK", "last_check.detail"),
];

const ORDER: &[&str] = &[
    "id",
    "instance_id",
    "address",
    "port",
    "weight",
    "enabled",
    "status",
    "last_check",
];

#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum BackendCmd {
    /// Add an instance (or an address in the LB's VPC) as a backend
    Add(BackendAdd),
    /// List the backends of a VServer
    List(BackendList),
    /// Show one backend
    Show(BackendId),
    /// Change port, weight or enabled
    Update(BackendUpdate),
    /// Remove a backend (also from rules)
    Delete(BackendId),
    /// Enable, disable or delete several backends
    Batch(BackendBatch),
}

/// `--lb` and `--vserver` of every backend command.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct VsRef {
    /// Load balancer ID
    #[arg(long = "lb", value_name = "LB_ID")]
    pub lb_id: String,
    /// VServer ID
    #[arg(long = "vserver", visible_alias = "vs", value_name = "VS_ID")]
    pub vs_id: String,
}

impl VsRef {
    fn path<'a>(&'a self, rest: &[&'a str]) -> Vec<&'a str> {
        let mut p = vec![
            "load-balancers",
            self.lb_id.as_str(),
            "vservers",
            self.vs_id.as_str(),
            "backends",
        ];
        p.extend_from_slice(rest);
        p
    }
}

/// `--enabled` / `--disabled`, neither meaning "leave as is" (or the server default).
#[derive(Args, Debug, Clone, Default, PartialEq)]
pub struct EnabledFlags {
    /// Send traffic to this backend
    #[arg(long)]
    pub enabled: bool,
    /// Keep the backend but send it no traffic
    #[arg(long, conflicts_with = "enabled")]
    pub disabled: bool,
}

#[derive(Args, Debug, Clone, PartialEq)]
#[group(id = "target", required = true, multiple = false)]
pub struct Target {
    /// Instance ID (its private IP is used)
    #[arg(long = "instance", value_name = "VM_ID")]
    pub instance_id: Option<String>,
    /// Bare IP address inside the LB's VPC
    #[arg(long, value_name = "IP")]
    pub address: Option<String>,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct BackendAdd {
    #[command(flatten)]
    pub vs: VsRef,
    #[command(flatten)]
    pub target: Target,
    /// Backend port (1–65535)
    #[arg(long)]
    pub port: u16,
    /// Weight 1–100 (server default 1)
    #[arg(long)]
    pub weight: Option<u32>,
    #[command(flatten)]
    pub enabled: EnabledFlags,
}

impl BackendAdd {
    pub fn body(&self) -> Value {
        Body::new()
            .opt("instance_id", self.target.instance_id.as_deref())
            .opt("address", self.target.address.as_deref())
            .set("port", self.port)
            .opt("weight", self.weight)
            .opt("enabled", tri(self.enabled.enabled, self.enabled.disabled))
            .build()
    }
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct BackendList {
    #[command(flatten)]
    pub vs: VsRef,
    #[command(flatten)]
    pub list: ListArgs,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct BackendId {
    #[command(flatten)]
    pub vs: VsRef,
    /// Backend ID
    pub id: String,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct BackendUpdate {
    #[command(flatten)]
    pub vs: VsRef,
    /// Backend ID
    pub id: String,
    /// New port
    #[arg(long)]
    pub port: Option<u16>,
    /// New weight (1–100)
    #[arg(long)]
    pub weight: Option<u32>,
    #[command(flatten)]
    pub enabled: EnabledFlags,
}

impl BackendUpdate {
    pub fn body(&self) -> Result<Value, CliError> {
        let body = Body::new()
            .opt("port", self.port)
            .opt("weight", self.weight)
            .opt("enabled", tri(self.enabled.enabled, self.enabled.disabled));
        changes(body, "--port, --weight, --enabled, --disabled")
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
#[value(rename_all = "snake_case")]
pub enum BatchAction {
    Enable,
    Disable,
    Delete,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct BackendBatch {
    #[command(flatten)]
    pub vs: VsRef,
    /// What to do with every listed backend
    #[arg(long, value_enum)]
    pub action: BatchAction,
    #[command(flatten)]
    pub ids: IdsArg,
}

impl BackendBatch {
    pub fn body(&self) -> Value {
        Body::new()
            .opt_enum("action", Some(self.action))
            .set("ids", self.ids.ids.clone())
            .build()
    }
}

pub async fn run(c: &Client, p: &Printer, cmd: BackendCmd) -> Result<i32, CliError> {
    match cmd {
        BackendCmd::Add(a) => p.object(&c.post(&a.vs.path(&[]), &a.body()).await?, ORDER),
        BackendCmd::List(a) => p.list(&c.get(&a.vs.path(&[]), &a.list.query()).await?, COLUMNS),
        BackendCmd::Show(a) => p.object(&c.get(&a.vs.path(&[&a.id]), &[]).await?, ORDER),
        BackendCmd::Update(a) => {
            let body = a.body()?;
            p.object(&c.patch(&a.vs.path(&[&a.id]), &body).await?, ORDER);
        }
        BackendCmd::Delete(a) => {
            c.delete(&a.vs.path(&[&a.id])).await?;
            p.note(&format!("deleted {}", a.id));
        }
        BackendCmd::Batch(a) => return Ok(p.batch(&c.post(&a.vs.path(&["batch"]), &a.body()).await?, "done")),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Command;
    use crate::commands::test_support::{assert_flags_exist, parse, parse_err};
    use serde_json::json;

    fn be(line: &str) -> BackendCmd {
        match parse(line) {
            Command::Backend(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn add_with_instance_or_address() {
        let BackendCmd::Add(a) = be("backend add --lb lb-1 --vserver vs-1 --instance vm-1 --port 8080") else {
            panic!()
        };
        assert_eq!(a.body(), json!({"instance_id": "vm-1", "port": 8080}));
        assert_eq!(
            a.vs.path(&[]),
            vec!["load-balancers", "lb-1", "vservers", "vs-1", "backends"]
        );
        let BackendCmd::Add(a) = be("backend add --lb l --vs v --address 10.0.0.5 --port 80 --weight 50 --disabled")
        else {
            panic!()
        };
        assert_eq!(
            a.body(),
            json!({"address": "10.0.0.5", "port": 80, "weight": 50, "enabled": false})
        );
    }

    #[test]
    fn add_needs_exactly_one_target() {
        parse_err("backend add --lb l --vserver v --port 80");
        parse_err("backend add --lb l --vserver v --instance vm-1 --address 10.0.0.1 --port 80");
        parse_err("backend add --lb l --vserver v --instance vm-1 --port 80 --enabled --disabled");
    }

    #[test]
    fn update_and_batch() {
        let BackendCmd::Update(a) = be("backend update --lb l --vserver v rs-1 --enabled") else {
            panic!()
        };
        assert_eq!(a.body(), Ok(json!({"enabled": true})));
        assert_eq!(a.vs.path(&[&a.id]).last(), Some(&"rs-1"));
        let BackendCmd::Batch(a) = be("backend batch --lb l --vserver v --action disable --ids rs-1,rs-2") else {
            panic!()
        };
        assert_eq!(a.body(), json!({"action": "disable", "ids": ["rs-1", "rs-2"]}));
        parse_err("backend batch --lb l --vserver v --action drain --ids rs-1");
        parse_err("backend batch --lb l --vserver v --action delete");
    }

    #[test]
    fn field_flags_exist() {
        assert_flags_exist("backend", FIELDS);
    }
}
