//! The metrics database: one SQLite file in the data dir (`metrics.db`),
//! apart from the configuration store because it is per node, written every
//! sample, and must never bump the configuration revision.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

/// A failed database operation.
#[derive(Debug, Clone)]
pub struct DbError(pub String);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "metrics database: {}", self.0)
    }
}

impl std::error::Error for DbError {}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, DbError>;

/// Schemas of the modules that keep tables here; each statement is
/// idempotent (`IF NOT EXISTS`).
fn schemas() -> [String; 2] {
    [crate::history::schema(), crate::alarm::SCHEMA.to_string()]
}

/// One connection behind a mutex: the sampler writes once per interval and
/// the API reads charts, so there is nothing to gain from a pool. Callers on
/// the async runtime go through `spawn_blocking`.
#[derive(Debug)]
pub struct Db {
    conn: Mutex<Connection>,
}

impl Db {
    /// Opens (creating) `path`, mode 0600, and applies the schemas.
    pub fn open(path: &Path) -> Result<Arc<Db>> {
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = 10000;",
        )?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| DbError(format!("cannot restrict permissions of {}: {e}", path.display())))?;
        }
        for s in schemas() {
            conn.execute_batch(&s)?;
        }
        Ok(Arc::new(Db { conn: Mutex::new(conn) }))
    }

    /// Runs `f` with the connection (blocking: call from a blocking thread).
    pub fn with<R>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<R>) -> Result<R> {
        let mut c = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut c).map_err(DbError::from)
    }
}
