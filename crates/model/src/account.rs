//! Accounts (tenants) and sub-accounts.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::{Kind, Resource, Result, validate};

/// A stored account. `token_sha256` is the hex SHA-256 of its bearer token;
/// the token itself is shown once at creation and never stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub is_admin: bool,
    pub token_sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Resource for Account {
    const KIND: Kind = Kind::Account;
    fn id(&self) -> &str {
        &self.id
    }
    fn owner(&self) -> &str {
        // An account is visible to itself and to its parent.
        self.parent_id.as_deref().unwrap_or(&self.id)
    }
    fn parent(&self) -> Option<&str> {
        self.parent_id.as_deref()
    }
    fn search_text(&self) -> String {
        format!("{} {}", self.name, self.id).to_lowercase()
    }
}

/// An account as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AccountView {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub is_admin: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        AccountView {
            id: a.id.clone(),
            name: a.name.clone(),
            parent_id: a.parent_id.clone(),
            is_admin: a.is_admin,
            created_at: a.created_at,
        }
    }
}

/// A newly created account with its token, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AccountCreated {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub token: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountCreate {
    pub name: String,
}

impl AccountCreate {
    pub fn validate(&self) -> Result<String> {
        validate::name("name", &self.name)
    }
}
