//! `weir lb …`: load balancers.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;

use super::{IdArg, IdsArg, ListArgs, changes};
use crate::body::Body;
use crate::client::{CliError, Client};
use crate::fields::FieldMap;
use crate::output::{Column, Printer, col};

pub const FIELDS: FieldMap = &[
    ("network_type", "--network-type"),
    ("vpc_id", "--vpc"),
    ("subnet_id", "--subnet"),
    ("eip_id", "--eip"),
    ("eip", "--eip"),
    ("security_group_id", "--security-group"),
    ("billing_mode", "--billing-mode"),
    ("periods", "--periods"),
];

const COLUMNS: &[Column] = &[
    col("ID", "id"),
    col("NAME", "name"),
    col("TYPE", "network_type"),
    col("ADDRESS", "address"),
    col("VPC", "vpc_id"),
    col("STATUS", "status"),
    col("VSERVERS", "vserver_count"),
    col("BILLING", "billing_mode"),
    col("EXPIRES", "expires_at"),
];

const ORDER: &[&str] = &[
    "id",
    "name",
    "comment",
    "network_type",
    "status",
    "address",
    "private_ip",
    "eip",
    "vpc_id",
    "subnet_id",
    "security_group_id",
    "alarm_template_id",
    "vserver_count",
    "billing_mode",
    "created_at",
    "expires_at",
];

#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum LbCmd {
    /// Create a load balancer
    Create(LbCreate),
    /// List load balancers
    List(ListArgs),
    /// Show one load balancer
    Show(IdArg),
    /// Change name, comment, security group or alarm template
    Update(LbUpdate),
    /// Delete a load balancer with its VServers, backends and rules
    Delete(IdArg),
    /// Extend the expiry by a number of billing periods
    Renew(LbRenew),
    /// Delete several load balancers
    BatchDelete(IdsArg),
    /// Save the visible load balancers as an Excel workbook
    Export(LbExport),
    /// Traffic over a time window: last, average and peak of each metric
    Metrics(LbMetrics),
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    #[value(name = "1h")]
    H1,
    #[value(name = "6h")]
    H6,
    #[value(name = "12h")]
    H12,
    #[value(name = "1d")]
    D1,
}

impl Range {
    fn as_str(self) -> &'static str {
        match self {
            Range::H1 => "1h",
            Range::H6 => "6h",
            Range::H12 => "12h",
            Range::D1 => "1d",
        }
    }
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct LbMetrics {
    /// ID of the load balancer
    pub id: String,
    /// One of its VServers instead of the whole load balancer
    #[arg(long = "vserver", value_name = "VS_ID")]
    pub vserver: Option<String>,
    /// Window ending now (default 1h)
    #[arg(long, value_enum, conflicts_with_all = ["from", "to"])]
    pub range: Option<Range>,
    /// Window start: unix seconds or RFC 3339 (with --to)
    #[arg(long, requires = "to")]
    pub from: Option<String>,
    /// Window end: unix seconds or RFC 3339 (with --from)
    #[arg(long, requires = "from")]
    pub to: Option<String>,
}

impl LbMetrics {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(r) = self.range {
            q.push(("range", r.as_str().to_string()));
        }
        if let (Some(f), Some(t)) = (&self.from, &self.to) {
            q.push(("from", f.clone()));
            q.push(("to", t.clone()));
        }
        q
    }
}

/// `{series: {metric: [[ts, v], …]}}` → one row per metric: last, average, peak.
fn summarize(history: &Value) -> Value {
    let mut items = Vec::new();
    if let Some(series) = history.get("series").and_then(Value::as_object) {
        for (metric, points) in series {
            let vals: Vec<f64> = points
                .as_array()
                .map(|p| p.iter().filter_map(|x| x.get(1).and_then(Value::as_f64)).collect())
                .unwrap_or_default();
            let fmt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
            let avg = (!vals.is_empty()).then(|| vals.iter().sum::<f64>() / vals.len() as f64);
            items.push(serde_json::json!({
                "metric": metric,
                "last": fmt(vals.last().copied()),
                "avg": fmt(avg),
                "max": fmt(vals.iter().copied().reduce(f64::max)),
                "points": vals.len(),
            }));
        }
    }
    serde_json::json!({"total": items.len(), "items": items})
}

const METRIC_COLUMNS: &[Column] = &[
    col("METRIC", "metric"),
    col("LAST", "last"),
    col("AVG", "avg"),
    col("MAX", "max"),
    col("POINTS", "points"),
];

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
#[value(rename_all = "snake_case")]
pub enum NetworkType {
    Internal,
    External,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
#[value(rename_all = "snake_case")]
pub enum BillingMode {
    Hourly,
    Monthly,
    Annual,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct LbCreate {
    /// Name of the load balancer
    #[arg(long)]
    pub name: String,
    /// Free-text comment
    #[arg(long)]
    pub comment: Option<String>,
    /// internal (private IP of the subnet) or external (elastic IP)
    #[arg(long, value_enum)]
    pub network_type: NetworkType,
    /// VPC the load balancer lives in
    #[arg(long = "vpc", value_name = "VPC_ID")]
    pub vpc_id: String,
    /// Subnet its private IP is taken from
    #[arg(long = "subnet", value_name = "SUBNET_ID")]
    pub subnet_id: String,
    /// Elastic IP to bind (external only; allocated from the pool when absent)
    #[arg(long = "eip", value_name = "EIP_ID")]
    pub eip_id: Option<String>,
    /// Security group (external only)
    #[arg(long = "security-group", visible_alias = "sg", value_name = "SG_ID")]
    pub security_group_id: Option<String>,
    /// Billing mode (server default: hourly)
    #[arg(long, value_enum)]
    pub billing_mode: Option<BillingMode>,
    /// Alarm template to bind
    #[arg(long = "alarm-template", value_name = "ALARM_ID")]
    pub alarm_template_id: Option<String>,
}

impl LbCreate {
    pub fn body(&self) -> Value {
        Body::new()
            .set("name", self.name.as_str())
            .opt("comment", self.comment.as_deref())
            .opt_enum("network_type", Some(self.network_type))
            .set("vpc_id", self.vpc_id.as_str())
            .set("subnet_id", self.subnet_id.as_str())
            .opt("eip_id", self.eip_id.as_deref())
            .opt("security_group_id", self.security_group_id.as_deref())
            .opt_enum("billing_mode", self.billing_mode)
            .opt("alarm_template_id", self.alarm_template_id.as_deref())
            .build()
    }
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct LbUpdate {
    /// ID of the load balancer
    pub id: String,
    /// New name
    #[arg(long)]
    pub name: Option<String>,
    /// New comment ("" clears it)
    #[arg(long)]
    pub comment: Option<String>,
    /// Security group (external only)
    #[arg(long = "security-group", visible_alias = "sg", value_name = "SG_ID")]
    pub security_group_id: Option<String>,
    /// Alarm template to bind
    #[arg(long = "alarm-template", value_name = "ALARM_ID")]
    pub alarm_template_id: Option<String>,
}

impl LbUpdate {
    pub fn body(&self) -> Result<Value, CliError> {
        let body = Body::new()
            .opt("name", self.name.as_deref())
            .opt("comment", self.comment.as_deref())
            .opt("security_group_id", self.security_group_id.as_deref())
            .opt("alarm_template_id", self.alarm_template_id.as_deref());
        changes(body, "--name, --comment, --security-group, --alarm-template")
    }
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct LbRenew {
    /// ID of the load balancer
    pub id: String,
    /// Billing periods to add: hours (1–24), months (1–11) or years (1–5) by billing mode
    #[arg(long)]
    pub periods: u32,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct LbExport {
    /// Where to write the .xlsx workbook
    #[arg(long)]
    pub file: PathBuf,
}

pub async fn run(c: &Client, p: &Printer, cmd: LbCmd) -> Result<i32, CliError> {
    const LBS: &str = "load-balancers";
    match cmd {
        LbCmd::Create(a) => p.object(&c.post(&[LBS], &a.body()).await?, ORDER),
        LbCmd::List(a) => p.list(&c.get(&[LBS], &a.query()).await?, COLUMNS),
        LbCmd::Show(a) => p.object(&c.get(&[LBS, &a.id], &[]).await?, ORDER),
        LbCmd::Update(a) => p.object(&c.patch(&[LBS, &a.id], &a.body()?).await?, ORDER),
        LbCmd::Delete(a) => {
            c.delete(&[LBS, &a.id]).await?;
            p.note(&format!("deleted {}", a.id));
        }
        LbCmd::Renew(a) => {
            let body = Body::new().set("periods", a.periods).build();
            p.object(&c.post(&[LBS, &a.id, "renew"], &body).await?, ORDER);
        }
        LbCmd::BatchDelete(a) => {
            let body = Body::new().list("ids", &a.ids).build();
            return Ok(p.batch(&c.post(&[LBS, "batch-delete"], &body).await?, "deleted"));
        }
        LbCmd::Metrics(a) => {
            let r = match &a.vserver {
                Some(vs) => c.get(&[LBS, &a.id, "vservers", vs, "metrics"], &a.query()).await?,
                None => c.get(&[LBS, &a.id, "metrics"], &a.query()).await?,
            };
            match p.output() {
                crate::output::Output::Json => p.object(&r, &[]),
                crate::output::Output::Table => {
                    let res = r.json.get("resolution_s").and_then(Value::as_i64).unwrap_or(0);
                    p.note(&format!("resolution {res} s"));
                    crate::output::emit(&crate::output::render_list(&summarize(&r.json), METRIC_COLUMNS));
                }
            }
        }
        LbCmd::Export(a) => {
            let bytes = c.get_bytes(&[LBS, "export.xlsx"]).await?;
            tokio::fs::write(&a.file, &bytes)
                .await
                .map_err(|e| CliError::Local(format!("cannot write {}: {e}", a.file.display())))?;
            p.note(&format!("wrote {} bytes to {}", bytes.len(), a.file.display()));
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Command;
    use crate::commands::test_support::{assert_flags_exist, parse, parse_err};
    use serde_json::json;

    fn lb(line: &str) -> LbCmd {
        match parse(line) {
            Command::Lb(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn create_sends_only_given_fields() {
        let LbCmd::Create(a) = lb("lb create --name web --network-type internal --vpc vpc-1 --subnet subnet-1") else {
            panic!()
        };
        assert_eq!(
            a.body(),
            json!({"name": "web", "network_type": "internal", "vpc_id": "vpc-1", "subnet_id": "subnet-1"})
        );
        let LbCmd::Create(a) = lb(
            "lb create --name e --network-type external --vpc v --subnet s --eip eip-1 --sg sg-1 --billing-mode monthly --comment hi --alarm-template alarm-1",
        ) else {
            panic!()
        };
        assert_eq!(
            a.body(),
            json!({"name": "e", "comment": "hi", "network_type": "external", "vpc_id": "v", "subnet_id": "s",
                   "eip_id": "eip-1", "security_group_id": "sg-1", "billing_mode": "monthly", "alarm_template_id": "alarm-1"})
        );
    }

    #[test]
    fn create_rejects_bad_enum() {
        parse_err("lb create --name web --network-type public --vpc v --subnet s");
    }

    #[test]
    fn update_is_partial() {
        let LbCmd::Update(a) = lb("lb update lb-1 --comment x") else {
            panic!()
        };
        assert_eq!(a.body(), Ok(json!({"comment": "x"})));
        let LbCmd::Update(a) = lb("lb update lb-1") else {
            panic!()
        };
        assert!(a.body().is_err());
    }

    #[test]
    fn other_subcommands_parse() {
        assert_eq!(
            lb("lb renew lb-1 --periods 3"),
            LbCmd::Renew(LbRenew {
                id: "lb-1".into(),
                periods: 3
            })
        );
        assert_eq!(
            lb("lb batch-delete --ids a,b --ids c"),
            LbCmd::BatchDelete(IdsArg {
                ids: vec!["a".into(), "b".into(), "c".into()]
            })
        );
        assert_eq!(
            lb("lb export --file x.xlsx"),
            LbCmd::Export(LbExport { file: "x.xlsx".into() })
        );
        assert_eq!(
            lb("lb list --search web --limit 10 --offset 20"),
            LbCmd::List(ListArgs {
                search: Some("web".into()),
                limit: Some(10),
                offset: Some(20)
            })
        );
        assert_eq!(lb("lb delete lb-9"), LbCmd::Delete(IdArg { id: "lb-9".into() }));
    }

    #[test]
    fn field_flags_exist() {
        assert_flags_exist("lb", FIELDS);
    }
}
