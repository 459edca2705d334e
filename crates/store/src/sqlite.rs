//! The embedded engine: SQLite in WAL mode with `synchronous=FULL`, one
//! writer thread (writes are serialized, so uniqueness checks inside a write
//! closure are race-free) and a small pool of reader connections.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{oneshot, watch};
use weir_model::{Error, Kind, Result};

use crate::{BoxFuture, Change, Engine, ListQuery, Page, ReadFn, Txn, WriteFn};

/// Migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_search_index.sql"),
];

const READERS: usize = 4;

fn db_err(e: rusqlite::Error) -> Error {
    Error::internal(format!("store: {e}"))
}

type Job = (WriteFn, oneshot::Sender<Result<u64>>);

pub struct SqliteEngine {
    jobs: Mutex<mpsc::Sender<Job>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    path: PathBuf,
    revision: watch::Sender<u64>,
}

fn open_conn(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(db_err)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 10000;",
    )
    .map_err(db_err)?;
    Ok(conn)
}

/// The store holds tenants' private keys: the data dir is Weir's alone
/// (0700) and the database files are 0600, whatever the umask was. SQLite
/// creates its -wal and -shm files with the database file's mode.
fn private(dir: &Path, db: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let set = |p: &Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::internal(format!("cannot restrict permissions of {}: {e}", p.display())))
    };
    set(dir, 0o700)?;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let p = Path::new(&name);
        if p.exists() {
            set(p, 0o600)?;
        }
    }
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let done: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(db_err)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done.max(0) as usize) {
        let tx = conn.transaction().map_err(db_err)?;
        tx.execute_batch(sql).map_err(db_err)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
            .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        tracing::info!(migration = i + 1, "store migrated");
    }
    Ok(())
}

fn current_revision(conn: &Connection) -> Result<u64> {
    let v: i64 = conn
        .query_row("SELECT value FROM meta WHERE key = 'revision'", [], |r| r.get(0))
        .map_err(db_err)?;
    Ok(v as u64)
}

impl SqliteEngine {
    pub fn open(dir: &Path) -> Result<SqliteEngine> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::internal(format!("cannot create data dir {}: {e}", dir.display())))?;
        let path = dir.join("weir.db");
        let mut writer = open_conn(&path)?;
        private(dir, &path)?;
        migrate(&mut writer)?;
        let rev = current_revision(&writer)?;
        let (revision, _) = watch::channel(rev);
        let (tx, rx) = mpsc::channel::<Job>();
        let rev_tx = revision.clone();
        std::thread::Builder::new()
            .name("weir-store-writer".into())
            .spawn(move || writer_loop(writer, rx, rev_tx))
            .map_err(|e| Error::internal(format!("cannot start store writer: {e}")))?;
        Ok(SqliteEngine {
            jobs: Mutex::new(tx),
            readers: Arc::new(Mutex::new(Vec::new())),
            path,
            revision,
        })
    }

    fn take_reader(&self) -> Result<Connection> {
        let pooled = self
            .readers
            .lock()
            .map_err(|_| Error::internal("reader pool poisoned"))?
            .pop();
        match pooled {
            Some(c) => Ok(c),
            None => open_conn(&self.path),
        }
    }
}

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Job>, revision: watch::Sender<u64>) {
    while let Ok((f, reply)) = rx.recv() {
        let result = run_write(&mut conn, f);
        if let Ok(rev) = &result {
            revision.send_if_modified(|cur| {
                let changed = *cur != *rev;
                *cur = *rev;
                changed
            });
        }
        let _ = reply.send(result);
    }
}

fn run_write(conn: &mut Connection, mut f: WriteFn) -> Result<u64> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)?;
    let base = current_revision(&tx)?;
    let mut t = SqlTxn {
        conn: &tx,
        revision: base + 1,
        writable: true,
        changed: false,
    };
    f(&mut t)?;
    let changed = t.changed;
    if !changed {
        // Nothing written: dropping the transaction rolls it back.
        return Ok(base);
    }
    tx.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'revision'",
        params![(base + 1) as i64],
    )
    .map_err(db_err)?;
    tx.commit().map_err(db_err)?;
    Ok(base + 1)
}

impl Engine for SqliteEngine {
    fn write(&self, f: WriteFn) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            let (reply, rx) = oneshot::channel();
            self.jobs
                .lock()
                .map_err(|_| Error::internal("store writer poisoned"))?
                .send((f, reply))
                .map_err(|_| Error::internal("store writer stopped"))?;
            rx.await.map_err(|_| Error::internal("store writer stopped"))?
        })
    }

    fn read(&self, f: ReadFn) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let mut conn = self.take_reader()?;
            let readers = self.readers.clone();
            tokio::task::spawn_blocking(move || {
                let result = (|| {
                    let tx = conn.transaction().map_err(db_err)?;
                    let rev = current_revision(&tx)?;
                    let mut t = SqlTxn {
                        conn: &tx,
                        revision: rev,
                        writable: false,
                        changed: false,
                    };
                    f(&mut t)
                })();
                if let Ok(mut pool) = readers.lock()
                    && pool.len() < READERS
                {
                    pool.push(conn);
                }
                result
            })
            .await
            .map_err(|e| Error::internal(format!("store read task failed: {e}")))?
        })
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    fn changes_since(&self, after: u64, limit: usize) -> BoxFuture<'_, Result<Vec<Change>>> {
        Box::pin(async move {
            let conn = self.take_reader()?;
            let readers = self.readers.clone();
            tokio::task::spawn_blocking(move || {
                let result = (|| {
                    let mut st = conn
                        .prepare_cached(
                            "SELECT rev, kind, id, op FROM changes WHERE rev > ?1 ORDER BY rev, rowid LIMIT ?2",
                        )
                        .map_err(db_err)?;
                    let rows = st
                        .query_map(params![after as i64, limit as i64], |r| {
                            Ok(Change {
                                revision: r.get::<_, i64>(0)? as u64,
                                kind: r.get(1)?,
                                id: r.get(2)?,
                                op: r.get(3)?,
                            })
                        })
                        .map_err(db_err)?;
                    rows.collect::<std::result::Result<Vec<_>, _>>().map_err(db_err)
                })();
                if let Ok(mut pool) = readers.lock()
                    && pool.len() < READERS
                {
                    pool.push(conn);
                }
                result
            })
            .await
            .map_err(|e| Error::internal(format!("store read task failed: {e}")))?
        })
    }
}

struct SqlTxn<'a> {
    conn: &'a rusqlite::Transaction<'a>,
    revision: u64,
    writable: bool,
    changed: bool,
}

impl SqlTxn<'_> {
    fn writable(&mut self) -> Result<()> {
        if !self.writable {
            return Err(Error::internal("write attempted in a read-only transaction"));
        }
        self.changed = true;
        Ok(())
    }

    fn record(&self, kind: &str, id: &str, op: &str) -> Result<()> {
        self.conn
            .prepare_cached("INSERT INTO changes (rev, kind, id, op) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut st| st.execute(params![self.revision as i64, kind, id, op]))
            .map_err(db_err)?;
        Ok(())
    }
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
fn like_pattern(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for c in s.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl Txn for SqlTxn<'_> {
    fn revision(&self) -> u64 {
        self.revision
    }

    fn get_raw(&mut self, kind: Kind, id: &str) -> Result<Option<String>> {
        self.conn
            .prepare_cached("SELECT body FROM objects WHERE id = ?1 AND kind = ?2")
            .and_then(|mut st| st.query_row(params![id, kind.as_str()], |r| r.get(0)).optional())
            .map_err(db_err)
    }

    fn list_raw(&mut self, q: &ListQuery) -> Result<Page<String>> {
        let mut filter = String::from("kind = ?");
        let mut args: Vec<rusqlite::types::Value> = vec![q.kind.as_str().to_string().into()];
        if let Some(owners) = &q.owners {
            if owners.is_empty() {
                return Ok(Page {
                    items: Vec::new(),
                    total: 0,
                });
            }
            filter.push_str(&format!(" AND owner IN ({})", vec!["?"; owners.len()].join(",")));
            args.extend(owners.iter().map(|o| o.clone().into()));
        }
        if let Some(p) = &q.parent {
            filter.push_str(" AND parent = ?");
            args.push(p.clone().into());
        }
        if let Some(s) = q.search.as_deref().filter(|s| !s.is_empty()) {
            filter.push_str(" AND search LIKE ? ESCAPE '\\'");
            args.push(like_pattern(s).into());
        }
        let total: i64 = self
            .conn
            .prepare_cached(&format!("SELECT COUNT(*) FROM objects WHERE {filter}"))
            .and_then(|mut st| st.query_row(rusqlite::params_from_iter(args.iter()), |r| r.get(0)))
            .map_err(db_err)?;
        let limit = q.limit.map_or(-1, |l| l.min(i64::MAX as u64) as i64);
        args.push(limit.into());
        args.push((q.offset.min(i64::MAX as u64) as i64).into());
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT body FROM objects WHERE {filter} ORDER BY rowid LIMIT ? OFFSET ?"
            ))
            .map_err(db_err)?;
        let items = st
            .query_map(rusqlite::params_from_iter(args.iter()), |r| r.get::<_, String>(0))
            .map_err(db_err)?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(db_err)?;
        Ok(Page {
            items,
            total: total as u64,
        })
    }

    fn count(&mut self, kind: Kind, parent: &str) -> Result<u64> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM objects WHERE parent = ?1 AND kind = ?2")
            .and_then(|mut st| st.query_row(params![parent, kind.as_str()], |r| r.get(0)))
            .map_err(db_err)?;
        Ok(n as u64)
    }

    fn put_raw(
        &mut self,
        kind: Kind,
        id: &str,
        owner: &str,
        parent: Option<&str>,
        search: &str,
        body: &str,
    ) -> Result<()> {
        self.writable()?;
        let rev = self.revision as i64;
        self.conn
            .prepare_cached(
                "INSERT INTO objects (id, kind, owner, parent, search, body, create_rev, mod_rev)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
                 ON CONFLICT (id) DO UPDATE SET owner = ?3, parent = ?4, search = ?5, body = ?6, mod_rev = ?7",
            )
            .and_then(|mut st| st.execute(params![id, kind.as_str(), owner, parent, search, body, rev]))
            .map_err(db_err)?;
        self.record(kind.as_str(), id, "put")
    }

    fn delete_raw(&mut self, kind: Kind, id: &str) -> Result<bool> {
        self.writable()?;
        let n = self
            .conn
            .prepare_cached("DELETE FROM objects WHERE id = ?1 AND kind = ?2")
            .and_then(|mut st| st.execute(params![id, kind.as_str()]))
            .map_err(db_err)?;
        if n > 0 {
            self.record(kind.as_str(), id, "delete")?;
        }
        Ok(n > 0)
    }

    fn claim(&mut self, key: &str, holder: &str) -> Result<Option<String>> {
        if let Some(h) = self.holder(key)? {
            return Ok(if h == holder { None } else { Some(h) });
        }
        self.writable()?;
        self.conn
            .prepare_cached("INSERT INTO claims (key, holder) VALUES (?1, ?2)")
            .and_then(|mut st| st.execute(params![key, holder]))
            .map_err(db_err)?;
        Ok(None)
    }

    fn release(&mut self, key: &str) -> Result<()> {
        self.writable()?;
        self.conn
            .prepare_cached("DELETE FROM claims WHERE key = ?1")
            .and_then(|mut st| st.execute(params![key]))
            .map_err(db_err)?;
        Ok(())
    }

    fn release_all(&mut self, holder: &str) -> Result<()> {
        self.writable()?;
        self.conn
            .prepare_cached("DELETE FROM claims WHERE holder = ?1")
            .and_then(|mut st| st.execute(params![holder]))
            .map_err(db_err)?;
        Ok(())
    }

    fn holder(&mut self, key: &str) -> Result<Option<String>> {
        self.conn
            .prepare_cached("SELECT holder FROM claims WHERE key = ?1")
            .and_then(|mut st| st.query_row(params![key], |r| r.get(0)).optional())
            .map_err(db_err)
    }

    fn claims_with_prefix(&mut self, prefix: &str, limit: usize) -> Result<Vec<(String, String)>> {
        let upper = format!("{prefix}{}", char::MAX);
        let mut st = self
            .conn
            .prepare_cached("SELECT key, holder FROM claims WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3")
            .map_err(db_err)?;
        let rows = st
            .query_map(params![prefix, upper, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db_err)?;
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(db_err)
    }
}
