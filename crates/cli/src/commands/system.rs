//! `weir status`: version and store/data-plane revisions.

use crate::client::{CliError, Client};
use crate::output::Printer;

const ORDER: &[&str] = &["version", "revision", "applied_revision", "uptime_s"];

pub async fn run(c: &Client, p: &Printer) -> Result<i32, CliError> {
    p.object(&c.get(&["system", "status"], &[]).await?, ORDER);
    Ok(0)
}
