//! Weir's persistence: every resource addressed by kind and id, one global
//! revision bumped by each committed change, uniqueness claims, and a change
//! feed that replays what changed since revision N.
//!
//! [`Engine`] is the one trait a store implements (embedded SQLite now, etcd
//! for a cluster). Business code runs inside [`Store::write`] as a closure
//! over a [`Txn`]; the engine guarantees the closure sees a consistent state
//! and that its writes commit atomically with one new revision, or not at all.
//! The closure is `FnMut` so an optimistic engine (etcd) can re-run it when a
//! compare fails.

mod sqlite;
mod txn;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use weir_model::{Error, Result};

pub use sqlite::SqliteEngine;
pub use txn::{ListQuery, Page, Txn, TxnExt};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
pub type WriteFn = Box<dyn FnMut(&mut dyn Txn) -> Result<()> + Send>;
pub type ReadFn = Box<dyn FnOnce(&mut dyn Txn) -> Result<()> + Send>;

/// One change of the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub revision: u64,
    pub kind: String,
    pub id: String,
    /// "put" or "delete".
    pub op: String,
}

/// A persistence engine.
pub trait Engine: Send + Sync + 'static {
    /// Runs `f` in a serializable read-write transaction; returns the revision
    /// it committed (the current one when `f` changed nothing).
    fn write(&self, f: WriteFn) -> BoxFuture<'_, Result<u64>>;
    /// Runs `f` on a consistent read-only view.
    fn read(&self, f: ReadFn) -> BoxFuture<'_, Result<()>>;
    /// The latest committed revision, updated on every commit.
    fn subscribe(&self) -> watch::Receiver<u64>;
    /// Changes with revision > `after`, oldest first, at most `limit`.
    fn changes_since(&self, after: u64, limit: usize) -> BoxFuture<'_, Result<Vec<Change>>>;
}

/// The handle the rest of Weir uses: typed, async, cheap to clone.
#[derive(Clone)]
pub struct Store {
    engine: Arc<dyn Engine>,
}

impl Store {
    /// Opens (creating if needed) the embedded store in `dir`.
    pub fn open(dir: &Path) -> Result<Store> {
        Ok(Store {
            engine: Arc::new(SqliteEngine::open(dir)?),
        })
    }

    pub fn from_engine(engine: Arc<dyn Engine>) -> Store {
        Store { engine }
    }

    /// Runs `f` in a write transaction; returns its value and the revision.
    pub async fn write<T, F>(&self, mut f: F) -> Result<(T, u64)>
    where
        T: Send + 'static,
        F: FnMut(&mut dyn Txn) -> Result<T> + Send + 'static,
    {
        let slot = Arc::new(Mutex::new(None));
        let out = slot.clone();
        let rev = self
            .engine
            .write(Box::new(move |tx| {
                let v = f(tx)?;
                *out.lock().map_err(|_| Error::internal("poisoned result slot"))? = Some(v);
                Ok(())
            }))
            .await?;
        let v = slot
            .lock()
            .map_err(|_| Error::internal("poisoned result slot"))?
            .take()
            .ok_or_else(|| Error::internal("write produced no result"))?;
        Ok((v, rev))
    }

    /// Runs `f` on a consistent read-only view.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Txn) -> Result<T> + Send + 'static,
    {
        let slot = Arc::new(Mutex::new(None));
        let out = slot.clone();
        self.engine
            .read(Box::new(move |tx| {
                let v = f(tx)?;
                *out.lock().map_err(|_| Error::internal("poisoned result slot"))? = Some(v);
                Ok(())
            }))
            .await?;
        let v = slot
            .lock()
            .map_err(|_| Error::internal("poisoned result slot"))?
            .take()
            .ok_or_else(|| Error::internal("read produced no result"))?;
        Ok(v)
    }

    pub fn revision(&self) -> u64 {
        *self.engine.subscribe().borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.engine.subscribe()
    }

    pub async fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<Change>> {
        self.engine.changes_since(after, limit).await
    }
}
