//! `weir vpc|subnet|eip|instance …`: the tenant network the load balancers live in.

use clap::{Args, Subcommand};
use serde_json::Value;

use super::{IdArg, ListArgs, changes};
use crate::body::Body;
use crate::client::{CliError, Client};
use crate::fields::FieldMap;
use crate::output::{Column, Printer, col};

pub const FIELDS: FieldMap = &[
    ("cidr", "--cidr"),
    ("vpc_id", "--vpc"),
    ("subnet_id", "--subnet"),
    ("private_ip", "--private-ip"),
    ("address", "--address"),
];

/// The create/list/show/update/delete shape every network resource shares.
#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum Crud<C: Args, U: Args> {
    Create(C),
    /// List (filter with --search, page with --limit/--offset)
    List(ListArgs),
    /// Show one by ID
    Show(IdArg),
    Update(U),
    /// Delete one by ID (refused while in use)
    Delete(IdArg),
}

pub type VpcCmd = Crud<VpcCreate, NameUpdate>;
pub type SubnetCmd = Crud<SubnetCreate, NameUpdate>;
pub type EipCmd = Crud<EipCreate, NameUpdate>;
pub type InstanceCmd = Crud<InstanceCreate, NameUpdate>;

/// How one resource is reached and shown.
struct Kind {
    path: &'static str,
    columns: &'static [Column],
    order: &'static [&'static str],
}

const VPC: Kind = Kind {
    path: "vpcs",
    columns: &[col("ID", "id"), col("NAME", "name"), col("CIDR", "cidr")],
    order: &["id", "name", "cidr"],
};

const SUBNET: Kind = Kind {
    path: "subnets",
    columns: &[
        col("ID", "id"),
        col("NAME", "name"),
        col("VPC", "vpc_id"),
        col("CIDR", "cidr"),
    ],
    order: &["id", "name", "vpc_id", "cidr"],
};

const EIP: Kind = Kind {
    path: "eips",
    columns: &[
        col("ID", "id"),
        col("NAME", "name"),
        col("ADDRESS", "address"),
        col("LB", "lb_id"),
    ],
    order: &["id", "name", "address"],
};

const INSTANCE: Kind = Kind {
    path: "instances",
    columns: &[
        col("ID", "id"),
        col("NAME", "name"),
        col("SUBNET", "subnet_id"),
        col("VPC", "vpc_id"),
        col("PRIVATE IP", "private_ip"),
    ],
    order: &["id", "name", "subnet_id", "vpc_id", "private_ip"],
};

/// Create a VPC
#[derive(Args, Debug, Clone, PartialEq)]
pub struct VpcCreate {
    /// Name of the VPC
    #[arg(long)]
    pub name: String,
    /// IPv4 prefix, /8 to /28 (e.g. 10.0.0.0/16)
    #[arg(long)]
    pub cidr: String,
}

/// Create a subnet
#[derive(Args, Debug, Clone, PartialEq)]
pub struct SubnetCreate {
    /// VPC the subnet belongs to
    #[arg(long = "vpc", value_name = "VPC_ID")]
    pub vpc_id: String,
    /// Name of the subnet
    #[arg(long)]
    pub name: String,
    /// IPv4 prefix inside the VPC's CIDR
    #[arg(long)]
    pub cidr: String,
}

/// Allocate an elastic IP from the pool
#[derive(Args, Debug, Clone, PartialEq)]
pub struct EipCreate {
    /// A free address of the pool (allocated from the pool when absent)
    #[arg(long, value_name = "IP")]
    pub address: Option<String>,
}

/// Register an instance
#[derive(Args, Debug, Clone, PartialEq)]
pub struct InstanceCreate {
    /// Name of the instance
    #[arg(long)]
    pub name: String,
    /// Subnet the instance is in
    #[arg(long = "subnet", value_name = "SUBNET_ID")]
    pub subnet_id: String,
    /// Its IP inside the subnet
    #[arg(long, value_name = "IP")]
    pub private_ip: String,
}

/// Rename one
#[derive(Args, Debug, Clone, PartialEq)]
pub struct NameUpdate {
    /// ID of the resource
    pub id: String,
    /// New name
    #[arg(long)]
    pub name: Option<String>,
}

impl NameUpdate {
    pub fn body(&self) -> Result<Value, CliError> {
        changes(Body::new().opt("name", self.name.as_deref()), "--name")
    }
}

/// Request bodies of the create commands.
pub trait CreateBody {
    fn body(&self) -> Value;
}

impl CreateBody for VpcCreate {
    fn body(&self) -> Value {
        Body::new()
            .set("name", self.name.as_str())
            .set("cidr", self.cidr.as_str())
            .build()
    }
}

impl CreateBody for SubnetCreate {
    fn body(&self) -> Value {
        Body::new()
            .set("vpc_id", self.vpc_id.as_str())
            .set("name", self.name.as_str())
            .set("cidr", self.cidr.as_str())
            .build()
    }
}

impl CreateBody for EipCreate {
    fn body(&self) -> Value {
        Body::new().opt("address", self.address.as_deref()).build()
    }
}

impl CreateBody for InstanceCreate {
    fn body(&self) -> Value {
        Body::new()
            .set("name", self.name.as_str())
            .set("subnet_id", self.subnet_id.as_str())
            .set("private_ip", self.private_ip.as_str())
            .build()
    }
}

async fn run_crud<C: Args + CreateBody>(
    c: &Client,
    p: &Printer,
    kind: &Kind,
    cmd: Crud<C, NameUpdate>,
) -> Result<i32, CliError> {
    match cmd {
        Crud::Create(a) => p.object(&c.post(&[kind.path], &a.body()).await?, kind.order),
        Crud::List(a) => p.list(&c.get(&[kind.path], &a.query()).await?, kind.columns),
        Crud::Show(a) => p.object(&c.get(&[kind.path, &a.id], &[]).await?, kind.order),
        Crud::Update(a) => p.object(&c.patch(&[kind.path, &a.id], &a.body()?).await?, kind.order),
        Crud::Delete(a) => {
            c.delete(&[kind.path, &a.id]).await?;
            p.note(&format!("deleted {}", a.id));
        }
    }
    Ok(0)
}

pub async fn run_vpc(c: &Client, p: &Printer, cmd: VpcCmd) -> Result<i32, CliError> {
    run_crud(c, p, &VPC, cmd).await
}

pub async fn run_subnet(c: &Client, p: &Printer, cmd: SubnetCmd) -> Result<i32, CliError> {
    run_crud(c, p, &SUBNET, cmd).await
}

pub async fn run_eip(c: &Client, p: &Printer, cmd: EipCmd) -> Result<i32, CliError> {
    run_crud(c, p, &EIP, cmd).await
}

pub async fn run_instance(c: &Client, p: &Printer, cmd: InstanceCmd) -> Result<i32, CliError> {
    run_crud(c, p, &INSTANCE, cmd).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Command;
    use crate::commands::test_support::{assert_flags_exist, parse, parse_err};
    use serde_json::json;

    #[test]
    fn create_bodies() {
        let Command::Vpc(Crud::Create(a)) = parse("vpc create --name lab --cidr 10.0.0.0/16") else {
            panic!()
        };
        assert_eq!(a.body(), json!({"name": "lab", "cidr": "10.0.0.0/16"}));
        let Command::Subnet(Crud::Create(a)) = parse("subnet create --vpc vpc-1 --name a --cidr 10.0.1.0/24") else {
            panic!()
        };
        assert_eq!(a.body(), json!({"vpc_id": "vpc-1", "name": "a", "cidr": "10.0.1.0/24"}));
        let Command::Eip(Crud::Create(a)) = parse("eip create") else {
            panic!()
        };
        assert_eq!(a.body(), json!({}));
        let Command::Eip(Crud::Create(a)) = parse("eip create --address 127.0.20.9") else {
            panic!()
        };
        assert_eq!(a.body(), json!({"address": "127.0.20.9"}));
        let Command::Instance(Crud::Create(a)) =
            parse("instance create --name vm --subnet subnet-1 --private-ip 10.0.1.5")
        else {
            panic!()
        };
        assert_eq!(
            a.body(),
            json!({"name": "vm", "subnet_id": "subnet-1", "private_ip": "10.0.1.5"})
        );
    }

    #[test]
    fn list_show_update_delete_parse() {
        let Command::Subnet(Crud::List(a)) = parse("subnet list --search a") else {
            panic!()
        };
        assert_eq!(
            a,
            ListArgs {
                search: Some("a".into()),
                limit: None,
                offset: None
            }
        );
        let Command::Vpc(Crud::Show(a)) = parse("vpc show vpc-1") else {
            panic!()
        };
        assert_eq!(a.id, "vpc-1");
        let Command::Eip(Crud::Delete(a)) = parse("eip delete eip-1") else {
            panic!()
        };
        assert_eq!(a.id, "eip-1");
        let Command::Instance(Crud::Update(a)) = parse("instance update vm-1 --name new") else {
            panic!()
        };
        assert_eq!(a.body(), Ok(json!({"name": "new"})));
        parse_err("vpc create --name x");
    }

    #[test]
    fn field_flags_exist() {
        for group in ["vpc", "subnet", "eip", "instance"] {
            let relevant: Vec<(&str, &str)> = FIELDS
                .iter()
                .copied()
                .filter(|(f, _)| match group {
                    "vpc" => *f == "cidr",
                    "subnet" => matches!(*f, "cidr" | "vpc_id"),
                    "eip" => *f == "address",
                    _ => matches!(*f, "subnet_id" | "private_ip"),
                })
                .collect();
            assert_flags_exist(group, relevant.leak());
        }
    }
}
