//! The transaction interface business code runs against, and its typed
//! helpers.

use weir_model::{Error, Kind, Resource, Result};

/// A listing request. `owners: None` means every owner (admin).
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub kind: Kind,
    pub owners: Option<Vec<String>>,
    pub parent: Option<String>,
    /// Case-insensitive substring of the search text.
    pub search: Option<String>,
    pub limit: Option<u64>,
    pub offset: u64,
}

impl ListQuery {
    pub fn new(kind: Kind) -> Self {
        ListQuery {
            kind,
            owners: None,
            parent: None,
            search: None,
            limit: None,
            offset: 0,
        }
    }

    pub fn parent(mut self, p: &str) -> Self {
        self.parent = Some(p.to_string());
        self
    }
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Matching items before `limit`/`offset`.
    pub total: u64,
}

/// Raw, object-safe operations. Bodies are JSON text.
pub trait Txn {
    /// For writes, the revision this transaction will commit as; for reads,
    /// the revision of the view.
    fn revision(&self) -> u64;
    fn get_raw(&mut self, kind: Kind, id: &str) -> Result<Option<String>>;
    fn list_raw(&mut self, q: &ListQuery) -> Result<Page<String>>;
    fn count(&mut self, kind: Kind, parent: &str) -> Result<u64>;
    fn put_raw(
        &mut self,
        kind: Kind,
        id: &str,
        owner: &str,
        parent: Option<&str>,
        search: &str,
        body: &str,
    ) -> Result<()>;
    fn delete_raw(&mut self, kind: Kind, id: &str) -> Result<bool>;
    /// Takes `key` for `holder`. Returns the current other holder when taken
    /// by someone else (nothing changes then), `None` on success.
    fn claim(&mut self, key: &str, holder: &str) -> Result<Option<String>>;
    fn release(&mut self, key: &str) -> Result<()>;
    /// Releases every claim held by `holder`.
    fn release_all(&mut self, holder: &str) -> Result<()>;
    fn holder(&mut self, key: &str) -> Result<Option<String>>;
    /// Claims whose key starts with `prefix` (reference tracking, e.g.
    /// `uses/sg-1/` → the LBs bound to a security group), at most `limit`.
    fn claims_with_prefix(&mut self, prefix: &str, limit: usize) -> Result<Vec<(String, String)>>;
}

fn decode<R: Resource>(body: &str) -> Result<R> {
    serde_json::from_str(body).map_err(|e| Error::internal(format!("stored {} is unreadable: {e}", R::KIND.as_str())))
}

/// Typed helpers over any [`Txn`].
pub trait TxnExt: Txn {
    fn get<R: Resource>(&mut self, id: &str) -> Result<Option<R>> {
        match self.get_raw(R::KIND, id)? {
            Some(b) => decode(&b).map(Some),
            None => Ok(None),
        }
    }

    fn put<R: Resource>(&mut self, r: &R) -> Result<()> {
        let body = serde_json::to_string(r).map_err(|e| Error::internal(e.to_string()))?;
        self.put_raw(R::KIND, r.id(), r.owner(), r.parent(), &r.search_text(), &body)
    }

    fn delete<R: Resource>(&mut self, id: &str) -> Result<bool> {
        self.delete_raw(R::KIND, id)
    }

    fn list<R: Resource>(&mut self, q: &ListQuery) -> Result<Page<R>> {
        let page = self.list_raw(q)?;
        let items = page.items.iter().map(|b| decode(b)).collect::<Result<Vec<R>>>()?;
        Ok(Page {
            items,
            total: page.total,
        })
    }

    /// Every resource of kind `R` under `parent`, in creation order.
    fn children<R: Resource>(&mut self, parent: &str) -> Result<Vec<R>> {
        Ok(self.list::<R>(&ListQuery::new(R::KIND).parent(parent))?.items)
    }
}

impl<T: Txn + ?Sized> TxnExt for T {}
