//! The load-balancer list as an Excel workbook, with the console's columns.

use rust_xlsxwriter::{Format, Workbook};
use weir_model::lb::{LbStatus, LoadBalancerView};
use weir_model::{Error, Result};

const HEADERS: [&str; 12] = [
    "Name",
    "ID",
    "Address",
    "Network type",
    "VPC",
    "Subnet",
    "VServers",
    "Created",
    "Expires",
    "Billing mode",
    "Status",
    "Comment",
];

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Rows are (LB, VPC name, subnet name).
pub fn workbook(rows: &[(LoadBalancerView, String, String)]) -> Result<Vec<u8>> {
    let err = |e: rust_xlsxwriter::XlsxError| Error::internal(format!("xlsx: {e}"));
    let mut wb = Workbook::new();
    let sheet = wb.add_worksheet();
    sheet.set_name("Load balancers").map_err(err)?;
    let bold = Format::new().set_bold();
    for (c, h) in HEADERS.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, *h, &bold).map_err(err)?;
    }
    for (i, (v, vpc, subnet)) in rows.iter().enumerate() {
        let r = (i + 1) as u32;
        let lb = &v.lb;
        let cells = [
            lb.name.clone(),
            lb.id.clone(),
            lb.address.to_string(),
            format!("{:?}", lb.network_type).to_lowercase(),
            format!("{vpc} ({})", lb.vpc_id),
            format!("{subnet} ({})", lb.subnet_id),
            String::new(),
            rfc3339(lb.created_at),
            rfc3339(lb.expires_at),
            lb.billing_mode.as_str().to_string(),
            match v.status {
                LbStatus::Active => "active".into(),
                LbStatus::Creating => "creating".into(),
            },
            lb.comment.clone(),
        ];
        for (c, text) in cells.iter().enumerate() {
            if c == 6 {
                sheet.write_number(r, c as u16, v.vserver_count as f64).map_err(err)?;
            } else {
                sheet.write_string(r, c as u16, text).map_err(err)?;
            }
        }
    }
    sheet.autofit();
    wb.save_to_buffer().map_err(err)
}
