//! First start: the admin account and its token.

use std::io::Write;
use std::path::Path;

use weir_model::account::Account;
use weir_model::{Error, Result};
use weir_store::{Store, TxnExt};

use crate::auth::{token_claim, token_hash};
use crate::routes::accounts::{insert_account, new_token};

const ADMIN_CLAIM: &str = "admin";

/// Where the admin token came from.
#[derive(Debug, PartialEq, Eq)]
pub enum AdminToken {
    /// `WEIR_ADMIN_TOKEN` (set or rotated to it).
    FromEnv,
    /// Generated now and written to this file (mode 0600).
    Generated(std::path::PathBuf),
    /// The admin existed already; its token is unchanged.
    Existing,
}

/// Ensures the admin account exists. With `env_token`, the admin's token is
/// set to it (rotating a previous one); otherwise a first start generates a
/// token and writes it to `<data_dir>/admin.token` with mode 0600.
pub async fn ensure_admin(store: &Store, data_dir: &Path, env_token: Option<String>) -> Result<AdminToken> {
    let generated = if env_token.is_none() { Some(new_token()) } else { None };
    let token = env_token.clone().or_else(|| generated.clone()).unwrap_or_default();
    let (outcome, _) = store
        .write(move |tx| {
            if let Some(id) = tx.holder(ADMIN_CLAIM)? {
                let mut admin: Account = tx
                    .get(&id)?
                    .ok_or_else(|| Error::internal("admin claim points at no account"))?;
                if env_token.is_some() && admin.token_sha256 != token_hash(&token) {
                    tx.release(&token_claim(&admin.token_sha256))?;
                    admin.token_sha256 = token_hash(&token);
                    tx.claim(&token_claim(&admin.token_sha256), &admin.id)?;
                    tx.put(&admin)?;
                    return Ok(Some(true));
                }
                return Ok(None);
            }
            let admin = insert_account(tx, "admin".into(), None, true, &token)?;
            tx.claim(ADMIN_CLAIM, &admin.id)?;
            Ok(Some(env_token.is_some()))
        })
        .await?;
    match (outcome, generated) {
        (Some(false), Some(tok)) => {
            let path = data_dir.join("admin.token");
            write_secret(&path, &tok)?;
            Ok(AdminToken::Generated(path))
        }
        (Some(_), _) => Ok(AdminToken::FromEnv),
        (None, _) => Ok(AdminToken::Existing),
    }
}

fn write_secret(path: &Path, secret: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::internal(format!("cannot write {}: {e}", path.display())))?;
    f.write_all(format!("{secret}\n").as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::internal(format!("cannot write {}: {e}", path.display())))
}
