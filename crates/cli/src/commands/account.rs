//! `weir account …`: who am I, and creating tenants.

use clap::{Args, Subcommand};
use serde_json::Value;

use crate::body::Body;
use crate::client::{CliError, Client};
use crate::fields::FieldMap;
use crate::output::{Printer, emit_err};

pub const FIELDS: FieldMap = &[("parent_id", "--parent")];

const ORDER: &[&str] = &["id", "name", "parent_id", "is_admin", "token"];

#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum AccountCmd {
    /// Show the account the token belongs to
    Me,
    /// Create a top-level account (admin only); prints its token once
    Create(AccountCreate),
    /// Create a sub-account of yours (or of --parent); prints its token once
    SubAccount(SubAccountCreate),
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct AccountCreate {
    /// Name of the new account
    #[arg(long)]
    pub name: String,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct SubAccountCreate {
    /// Name of the new sub-account
    #[arg(long)]
    pub name: String,
    /// Parent account ID (default: the account of the token)
    #[arg(long, value_name = "ACCT_ID")]
    pub parent: Option<String>,
}

fn name_body(name: &str) -> Value {
    Body::new().set("name", name).build()
}

const TOKEN_NOTE: &str = "note: the token is shown only this once; store it now";

pub async fn run(c: &Client, p: &Printer, cmd: AccountCmd) -> Result<i32, CliError> {
    match cmd {
        AccountCmd::Me => p.object(&c.get(&["accounts", "me"], &[]).await?, ORDER),
        AccountCmd::Create(a) => {
            p.object(&c.post(&["accounts"], &name_body(&a.name)).await?, ORDER);
            emit_err(TOKEN_NOTE);
        }
        AccountCmd::SubAccount(a) => {
            let parent = match a.parent {
                Some(id) => id,
                None => own_id(c).await?,
            };
            let created = c
                .post(&["accounts", &parent, "sub-accounts"], &name_body(&a.name))
                .await?;
            p.object(&created, ORDER);
            emit_err(TOKEN_NOTE);
        }
    }
    Ok(0)
}

async fn own_id(c: &Client) -> Result<String, CliError> {
    let me = c.get(&["accounts", "me"], &[]).await?;
    me.json
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| CliError::Local("GET /v1/accounts/me answered without an id; pass --parent".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Command;
    use crate::commands::test_support::{assert_flags_exist, parse};
    use serde_json::json;

    #[test]
    fn parses_account_commands() {
        assert!(matches!(parse("account me"), Command::Account(AccountCmd::Me)));
        let Command::Account(AccountCmd::SubAccount(a)) = parse("account sub-account --name team") else {
            panic!()
        };
        assert_eq!(
            a,
            SubAccountCreate {
                name: "team".into(),
                parent: None
            }
        );
        let Command::Account(AccountCmd::Create(a)) = parse("account create --name acme") else {
            panic!()
        };
        assert_eq!(name_body(&a.name), json!({"name": "acme"}));
    }

    #[test]
    fn field_flags_exist() {
        assert_flags_exist("account", FIELDS);
    }
}
