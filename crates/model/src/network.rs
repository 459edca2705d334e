//! VPCs, subnets, elastic IPs, instances and security groups.

use std::net::Ipv4Addr;

use ipnet::{IpNet, Ipv4Net};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::{Error, Kind, Resource, Result, validate};

/// VPC prefixes: any IPv4 prefix from /8 to /28 (loopback included, so one
/// machine can host a whole lab).
pub const VPC_PREFIX: (u8, u8) = (8, 28);
/// Subnets: from the VPC's own length down to /30.
pub const SUBNET_MAX_PREFIX: u8 = 30;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Vpc {
    pub id: String,
    pub name: String,
    #[schema(value_type = String, example = "10.0.0.0/16")]
    pub cidr: Ipv4Net,
    pub owner_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Resource for Vpc {
    const KIND: Kind = Kind::Vpc;
    fn id(&self) -> &str {
        &self.id
    }
    fn owner(&self) -> &str {
        &self.owner_id
    }
    fn search_text(&self) -> String {
        format!("{} {} {}", self.name, self.id, self.cidr).to_lowercase()
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VpcCreate {
    pub name: String,
    #[schema(example = "10.0.0.0/16")]
    pub cidr: String,
}

impl VpcCreate {
    pub fn validate(&self) -> Result<(String, Ipv4Net)> {
        Ok((
            validate::name("name", &self.name)?,
            validate::cidr("cidr", &self.cidr, VPC_PREFIX.0, VPC_PREFIX.1)?,
        ))
    }
}

/// PATCH body for VPCs, subnets, EIPs and instances: only the name changes.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NamePatch {
    pub name: Option<String>,
}

impl NamePatch {
    pub fn validate(&self) -> Result<Option<String>> {
        self.name.as_deref().map(|n| validate::name("name", n)).transpose()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Subnet {
    pub id: String,
    pub vpc_id: String,
    pub name: String,
    #[schema(value_type = String, example = "10.0.1.0/24")]
    pub cidr: Ipv4Net,
    pub owner_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Resource for Subnet {
    const KIND: Kind = Kind::Subnet;
    fn id(&self) -> &str {
        &self.id
    }
    fn owner(&self) -> &str {
        &self.owner_id
    }
    fn parent(&self) -> Option<&str> {
        Some(&self.vpc_id)
    }
    fn search_text(&self) -> String {
        format!("{} {} {}", self.name, self.id, self.cidr).to_lowercase()
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubnetCreate {
    pub vpc_id: String,
    pub name: String,
    pub cidr: String,
}

impl SubnetCreate {
    /// Checks the subnet against its VPC and its siblings. An overlap with a
    /// sibling is a conflict with existing state (409).
    pub fn validate(&self, vpc: &Vpc, siblings: &[Subnet]) -> Result<(String, Ipv4Net)> {
        let name = validate::name("name", &self.name)?;
        let cidr = validate::cidr("cidr", &self.cidr, VPC_PREFIX.0, SUBNET_MAX_PREFIX)?;
        if !vpc.cidr.contains(&cidr) {
            return Err(Error::invalid(
                "cidr",
                format!("subnet {cidr} is not inside the VPC's {}", vpc.cidr),
            ));
        }
        if let Some(s) = siblings
            .iter()
            .find(|s| s.cidr.contains(&cidr) || cidr.contains(&s.cidr))
        {
            return Err(Error::conflict(
                "cidr_overlap",
                format!("subnet {cidr} overlaps subnet {} ({})", s.id, s.cidr),
            )
            .at("cidr"));
        }
        Ok((name, cidr))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Eip {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[schema(value_type = String, example = "127.0.20.1")]
    pub address: Ipv4Addr,
    /// The load balancer it is bound to, if any.
    pub lb_id: Option<String>,
    pub owner_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Resource for Eip {
    const KIND: Kind = Kind::Eip;
    fn id(&self) -> &str {
        &self.id
    }
    fn owner(&self) -> &str {
        &self.owner_id
    }
    fn search_text(&self) -> String {
        format!("{} {} {}", self.name, self.id, self.address).to_lowercase()
    }
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EipCreate {
    /// A specific address of the pool; allocated from the pool when absent.
    pub address: Option<String>,
    pub name: Option<String>,
}

impl EipCreate {
    pub fn validate(&self, pool: &[Ipv4Net]) -> Result<(String, Option<Ipv4Addr>)> {
        let name = match &self.name {
            Some(n) => validate::name("name", n)?,
            None => String::new(),
        };
        let address = match &self.address {
            None => None,
            Some(a) => {
                let ip = validate::ipv4("address", a)?;
                if !pool.iter().any(|p| validate::is_usable_host(*p, ip)) {
                    let pools: Vec<String> = pool.iter().map(|p| p.to_string()).collect();
                    return Err(Error::invalid(
                        "address",
                        format!("{ip} is not in the elastic IP pool ({})", pools.join(", ")),
                    ));
                }
                Some(ip)
            }
        };
        Ok((name, address))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Instance {
    pub id: String,
    pub name: String,
    pub subnet_id: String,
    pub vpc_id: String,
    #[schema(value_type = String, example = "10.0.1.10")]
    pub private_ip: Ipv4Addr,
    pub owner_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Resource for Instance {
    const KIND: Kind = Kind::Instance;
    fn id(&self) -> &str {
        &self.id
    }
    fn owner(&self) -> &str {
        &self.owner_id
    }
    fn parent(&self) -> Option<&str> {
        Some(&self.subnet_id)
    }
    fn search_text(&self) -> String {
        format!("{} {} {}", self.name, self.id, self.private_ip).to_lowercase()
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceCreate {
    pub name: String,
    pub subnet_id: String,
    pub private_ip: String,
}

impl InstanceCreate {
    pub fn validate(&self, subnet: &Subnet) -> Result<(String, Ipv4Addr)> {
        let name = validate::name("name", &self.name)?;
        let ip = validate::ipv4("private_ip", &self.private_ip)?;
        if !validate::is_usable_host(subnet.cidr, ip) {
            return Err(Error::invalid(
                "private_ip",
                format!(
                    "{ip} is not a usable host address of subnet {} ({})",
                    subnet.id, subnet.cidr
                ),
            ));
        }
        Ok((name, ip))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SgAction {
    Allow,
    Deny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SgProtocol {
    Tcp,
    Udp,
    Any,
}

/// One security-group rule as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SgRule {
    pub priority: u16,
    pub action: SgAction,
    pub protocol: SgProtocol,
    /// "80", "8000-8100" or "all".
    pub ports: String,
    /// Source CIDR (IPv4 or IPv6).
    #[schema(value_type = String, example = "10.0.0.0/8")]
    pub source: IpNet,
}

impl SgRule {
    /// The port range the rule covers.
    pub fn port_range(&self) -> (u16, u16) {
        parse_ports(&self.ports).unwrap_or((1, 65535))
    }
}

fn parse_ports(s: &str) -> Option<(u16, u16)> {
    if s == "all" {
        return Some((1, 65535));
    }
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a, b),
        None => (s, s),
    };
    let a: u16 = a.parse().ok()?;
    let b: u16 = b.parse().ok()?;
    (a >= 1 && a <= b).then_some((a, b))
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SgRuleInput {
    pub priority: i64,
    pub action: SgAction,
    pub protocol: SgProtocol,
    pub ports: String,
    pub source: String,
}

pub const SG_MAX_RULES: usize = 200;

/// Validates rules and returns them sorted by priority (lowest first).
pub fn validate_sg_rules(rules: &[SgRuleInput]) -> Result<Vec<SgRule>> {
    if rules.len() > SG_MAX_RULES {
        return Err(Error::invalid(
            "rules",
            format!("at most {SG_MAX_RULES} rules per security group"),
        ));
    }
    let mut out: Vec<SgRule> = Vec::with_capacity(rules.len());
    for (i, r) in rules.iter().enumerate() {
        let at = format!("rules[{i}]");
        let priority = validate::range("priority", r.priority, 1, 1000).map_err(|e| e.within(&at))? as u16;
        if out.iter().any(|o| o.priority == priority) {
            return Err(Error::invalid(
                format!("{at}.priority"),
                format!("priority {priority} is used by another rule; priorities must be unique"),
            ));
        }
        let ports = r.ports.trim().to_ascii_lowercase();
        if parse_ports(&ports).is_none() {
            return Err(Error::invalid(
                format!("{at}.ports"),
                format!(
                    "ports must be a port (80), a range (8000-8100) or \"all\", got {:?}",
                    r.ports
                ),
            ));
        }
        let source: IpNet = r.source.trim().parse().map_err(|_| {
            Error::invalid(
                format!("{at}.source"),
                format!("source must be a CIDR like 10.0.0.0/8, got {:?}", r.source),
            )
        })?;
        if source.trunc() != source {
            return Err(Error::invalid(
                format!("{at}.source"),
                format!("source {source} has host bits set; did you mean {}?", source.trunc()),
            ));
        }
        out.push(SgRule {
            priority,
            action: r.action,
            protocol: r.protocol,
            ports,
            source,
        });
    }
    out.sort_by_key(|r| r.priority);
    Ok(out)
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    /// Lowest priority first; no match → deny.
    pub rules: Vec<SgRule>,
    pub owner_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Resource for SecurityGroup {
    const KIND: Kind = Kind::SecurityGroup;
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
pub struct SecurityGroupCreate {
    pub name: String,
    #[serde(default)]
    pub rules: Vec<SgRuleInput>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroupPatch {
    pub name: Option<String>,
    pub rules: Option<Vec<SgRuleInput>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(p: i64, ports: &str, src: &str) -> SgRuleInput {
        SgRuleInput {
            priority: p,
            action: SgAction::Allow,
            protocol: SgProtocol::Tcp,
            ports: ports.into(),
            source: src.into(),
        }
    }

    #[test]
    fn sg_rules_sorted_and_checked() {
        let r = validate_sg_rules(&[rule(20, "80", "10.0.0.0/8"), rule(10, "8000-8100", "0.0.0.0/0")]).unwrap();
        assert_eq!(r[0].priority, 10);
        assert_eq!(r[0].port_range(), (8000, 8100));
        let e = validate_sg_rules(&[rule(10, "80", "10.0.0.0/8"), rule(10, "all", "::/0")]).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("rules[1].priority"));
        let e = validate_sg_rules(&[rule(0, "80", "10.0.0.0/8")]).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("rules[0].priority"));
        let e = validate_sg_rules(&[rule(1, "90-80", "10.0.0.0/8")]).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("rules[0].ports"));
        let e = validate_sg_rules(&[rule(1, "0", "10.0.0.0/8")]).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("rules[0].ports"));
        let e = validate_sg_rules(&[rule(1, "80", "10.0.0.1/8")]).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("rules[0].source"));
    }
}
