//! Load balancers: one ingress address holding VServers.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use utoipa::ToSchema;

use crate::{Error, Kind, Resource, Result, validate};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NetworkType {
    Internal,
    External,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BillingMode {
    #[default]
    Hourly,
    Monthly,
    Annual,
}

impl BillingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BillingMode::Hourly => "hourly",
            BillingMode::Monthly => "monthly",
            BillingMode::Annual => "annual",
        }
    }

    /// The renew range for this mode: hourly 1–24, monthly 1–11, annual 1–5.
    pub fn max_periods(self) -> i64 {
        match self {
            BillingMode::Hourly => 24,
            BillingMode::Monthly => 11,
            BillingMode::Annual => 5,
        }
    }

    /// `t` plus `n` periods of this mode (months clamp to the month's end).
    pub fn add_periods(self, t: OffsetDateTime, n: u32) -> OffsetDateTime {
        match self {
            BillingMode::Hourly => t + Duration::hours(i64::from(n)),
            BillingMode::Monthly => add_months(t, n),
            BillingMode::Annual => add_months(t, n * 12),
        }
    }
}

fn add_months(t: OffsetDateTime, n: u32) -> OffsetDateTime {
    let total = t.month() as u32 - 1 + n;
    let year = t.year() + (total / 12) as i32;
    let month = time::Month::try_from((total % 12 + 1) as u8).unwrap_or(time::Month::January);
    let last = time::util::days_in_month(month, year);
    let day = t.day().min(last);
    let date = time::Date::from_calendar_date(year, month, day).unwrap_or(t.date());
    t.replace_date(date)
}

/// A stored load balancer. Status and VServer count are derived when read.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LoadBalancer {
    pub id: String,
    pub name: String,
    pub comment: String,
    pub network_type: NetworkType,
    pub vpc_id: String,
    pub subnet_id: String,
    #[schema(value_type = String, example = "10.0.1.5")]
    pub private_ip: Ipv4Addr,
    pub eip: Option<EipRef>,
    /// The ingress: the EIP for external, the private IP for internal.
    #[schema(value_type = String, example = "127.0.20.1")]
    pub address: Ipv4Addr,
    pub security_group_id: Option<String>,
    pub alarm_template_id: Option<String>,
    pub billing_mode: BillingMode,
    pub owner_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The store revision that created it; it is `active` once the data plane
    /// has applied that revision.
    pub created_revision: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EipRef {
    pub id: String,
    #[schema(value_type = String)]
    pub address: Ipv4Addr,
}

impl Resource for LoadBalancer {
    const KIND: Kind = Kind::LoadBalancer;
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
        let eip = self.eip.as_ref().map(|e| e.address.to_string()).unwrap_or_default();
        format!(
            "{} {} {} {} {} {}",
            self.name, self.id, self.address, self.private_ip, eip, self.comment
        )
        .to_lowercase()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LbStatus {
    Creating,
    Active,
}

/// A load balancer as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LoadBalancerView {
    #[serde(flatten)]
    pub lb: LoadBalancer,
    pub status: LbStatus,
    pub vserver_count: u64,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancerCreate {
    pub name: String,
    #[serde(default)]
    pub comment: String,
    pub network_type: NetworkType,
    pub vpc_id: String,
    pub subnet_id: String,
    /// Internal only: a specific address of the subnet (allocated when absent).
    pub private_ip: Option<String>,
    /// External only; an EIP is allocated from the pool when absent.
    pub eip_id: Option<String>,
    /// External only.
    pub security_group_id: Option<String>,
    #[serde(default)]
    pub billing_mode: BillingMode,
    pub alarm_template_id: Option<String>,
}

/// The field-level checks of a create, before references are resolved.
pub struct LbBasics {
    pub name: String,
    pub comment: String,
    pub private_ip: Option<Ipv4Addr>,
}

impl LoadBalancerCreate {
    pub fn validate(&self) -> Result<LbBasics> {
        let name = validate::name("name", &self.name)?;
        let comment = validate::comment("comment", &self.comment)?;
        if self.network_type == NetworkType::Internal {
            if self.eip_id.is_some() {
                return Err(Error::not_allowed(
                    "eip_id",
                    "eip_id applies to external load balancers only",
                ));
            }
            if self.security_group_id.is_some() {
                return Err(Error::not_allowed(
                    "security_group_id",
                    "security_group_id applies to external load balancers only",
                ));
            }
        }
        if self.network_type == NetworkType::External && self.private_ip.is_some() {
            return Err(Error::not_allowed(
                "private_ip",
                "private_ip can be chosen for internal load balancers only; external ones get it allocated",
            ));
        }
        let private_ip = self
            .private_ip
            .as_deref()
            .map(|ip| validate::ipv4("private_ip", ip))
            .transpose()?;
        Ok(LbBasics {
            name,
            comment,
            private_ip,
        })
    }
}

/// PATCH body: `null` clears `security_group_id` / `alarm_template_id`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancerPatch {
    pub name: Option<String>,
    pub comment: Option<String>,
    #[serde(default, deserialize_with = "crate::vserver::double_option")]
    #[schema(value_type = Option<String>)]
    pub security_group_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::vserver::double_option")]
    #[schema(value_type = Option<String>)]
    pub alarm_template_id: Option<Option<String>>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Renew {
    pub periods: i64,
}

impl Renew {
    pub fn validate(&self, mode: BillingMode) -> Result<u32> {
        let max = mode.max_periods();
        validate::range("periods", self.periods, 1, max)
            .map(|n| n as u32)
            .map_err(|_| {
                Error::new(
                    crate::ErrorKind::Invalid,
                    "out_of_range",
                    format!(
                        "periods for {} billing must be between 1 and {max}, got {}",
                        mode.as_str(),
                        self.periods
                    ),
                )
                .at("periods")
            })
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchIds {
    pub ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchFailure {
    pub id: String,
    pub error: crate::error::ErrorBody,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct BatchDeleteResult {
    pub deleted: Vec<String>,
    pub failed: Vec<BatchFailure>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn periods() {
        let t = datetime!(2026-01-31 10:00 UTC);
        assert_eq!(BillingMode::Monthly.add_periods(t, 1), datetime!(2026-02-28 10:00 UTC));
        assert_eq!(BillingMode::Monthly.add_periods(t, 11), datetime!(2026-12-31 10:00 UTC));
        assert_eq!(BillingMode::Annual.add_periods(t, 5), datetime!(2031-01-31 10:00 UTC));
        assert_eq!(BillingMode::Hourly.add_periods(t, 24), datetime!(2026-02-01 10:00 UTC));
        let e = Renew { periods: 25 }.validate(BillingMode::Hourly).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("periods"));
        assert!(Renew { periods: 11 }.validate(BillingMode::Monthly).is_ok());
        assert!(Renew { periods: 12 }.validate(BillingMode::Monthly).is_err());
        assert!(Renew { periods: 0 }.validate(BillingMode::Annual).is_err());
    }
}
