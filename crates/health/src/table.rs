//! The registry of health cells by backend id. Control path only (the proxy
//! keeps the `Arc<Cell>`s it needs in its compiled snapshot), so a mutex is fine.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::cell::Cell;

#[derive(Default)]
pub struct Table {
    cells: Mutex<HashMap<String, Arc<Cell>>>,
    /// Status changes of every cell this table made.
    flips: Arc<AtomicU64>,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("cells", &self.len())
            .field("flips", &self.flips())
            .finish()
    }
}

impl Table {
    pub fn new() -> Table {
        Table::default()
    }

    /// The backend's cell, created (`Checking`) if it has none yet.
    pub fn cell(&self, backend_id: &str) -> Arc<Cell> {
        let mut cells = self.lock();
        if let Some(c) = cells.get(backend_id) {
            return c.clone();
        }
        let c = Arc::new(Cell::with_counter(backend_id, self.flips.clone()));
        cells.insert(backend_id.to_string(), c.clone());
        c
    }

    pub fn get(&self, backend_id: &str) -> Option<Arc<Cell>> {
        self.lock().get(backend_id).cloned()
    }

    /// Drops the cells of backends no longer configured. Pass every configured
    /// backend, disabled ones included, so a re-enabled backend keeps its history.
    pub fn retain(&self, keep: &HashSet<String>) {
        self.lock().retain(|id, _| keep.contains(id));
    }

    /// Status changes since start, over all cells (removed ones included).
    pub fn flips(&self) -> u64 {
        self.flips.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Cell>>> {
        self.cells.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Status;
    use time::OffsetDateTime;

    #[test]
    fn cell_is_get_or_create_and_shared() {
        let t = Table::new();
        assert!(t.get("b-1").is_none());
        let a = t.cell("b-1");
        let b = t.cell("b-1");
        assert!(Arc::ptr_eq(&a, &b));
        assert!(Arc::ptr_eq(&a, &t.get("b-1").unwrap()));
        assert_eq!(a.status(), Status::Checking);
        assert_eq!(a.backend_id(), "b-1");
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn retain_drops_unconfigured_cells() {
        let t = Table::new();
        t.cell("b-1");
        t.cell("b-2");
        t.retain(&HashSet::from(["b-2".to_string()]));
        assert!(t.get("b-1").is_none());
        assert!(t.get("b-2").is_some());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn flips_count_over_all_cells() {
        let t = Table::new();
        let now = OffsetDateTime::UNIX_EPOCH;
        t.cell("b-1").record(true, "ok".into(), now);
        t.cell("b-2").record(false, "connect refused".into(), now);
        t.cell("b-2").record(false, "connect refused".into(), now);
        assert_eq!(t.flips(), 2);
        t.retain(&HashSet::new());
        assert_eq!(t.flips(), 2, "the counter outlives removed cells");
    }
}
