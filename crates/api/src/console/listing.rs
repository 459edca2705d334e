//! The lists' shared part: search, paging and the links around a page.

use std::future::Future;

use axum::response::Response;

use super::{Ctx, Section, encode, pairs, param};
use crate::ApiError;
use crate::routes::List;

/// Rows per page of every list.
const PAGE: u64 = 50;

/// "1–50 of 120 · Previous · Next" under a table.
pub struct Pager {
    pub total: u64,
    pub first: u64,
    pub last: u64,
    pub prev: String,
    pub next: String,
}

/// One page of a list as the API answered it.
pub struct Listing<T> {
    pub items: Vec<T>,
    pub search: String,
    /// The API's message when it refused the search (shown by the box).
    pub search_error: String,
    pub pager: Pager,
}

/// Reads `search` and `offset` from the page's query, asks the API (through
/// `fetch`, given the API's query: `extra` plus paging and search) for that
/// page, and links the pages around it (`path?extra&…`).
pub async fn listing<T, F, Fut>(
    ctx: &Ctx,
    section: Section,
    path: &str,
    extra: &str,
    q: Option<&str>,
    fetch: F,
) -> Result<Listing<T>, Response>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<List<T>, ApiError>>,
{
    let p = pairs(q);
    let search = param(&p, "search");
    let offset: u64 = param(&p, "offset").parse().unwrap_or(0);
    let mut keep = extra.to_string();
    if !search.is_empty() {
        if !keep.is_empty() {
            keep.push('&');
        }
        keep.push_str(&format!("search={}", encode(&search)));
    }
    let query = if keep.is_empty() {
        format!("limit={PAGE}&offset={offset}")
    } else {
        format!("{keep}&limit={PAGE}&offset={offset}")
    };
    let mut search_error = String::new();
    let page = match fetch(query).await {
        Ok(l) => l,
        Err(ApiError(e)) if e.field.as_deref() == Some("search") => {
            search_error = e.message;
            List {
                items: vec![],
                total: 0,
            }
        }
        Err(e) => return Err(ctx.fail(section, e)),
    };
    let link = |off: u64| {
        if keep.is_empty() {
            format!("{path}?offset={off}")
        } else {
            format!("{path}?{keep}&offset={off}")
        }
    };
    let shown = page.items.len() as u64;
    let pager = Pager {
        total: page.total,
        first: if shown == 0 { 0 } else { offset + 1 },
        last: offset + shown,
        prev: if offset > 0 {
            link(offset.saturating_sub(PAGE))
        } else {
            String::new()
        },
        next: if offset + shown < page.total {
            link(offset + PAGE)
        } else {
            String::new()
        },
    };
    Ok(Listing {
        items: page.items,
        search,
        search_error,
        pager,
    })
}
