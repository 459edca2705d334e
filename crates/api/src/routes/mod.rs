//! Route table and the response helpers every handler shares.

pub mod accounts;
pub mod alarm_templates;
pub mod backends;
pub mod certificates;
pub mod lbs;
pub mod metrics;
pub mod network;
pub mod rules;
pub mod security_groups;
pub mod system;
pub mod vservers;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use weir_model::{Error, ErrorKind};

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(system::base_doc())
        .routes(routes!(system::status))
        .routes(routes!(system::healthz))
        .routes(routes!(accounts::me))
        .routes(routes!(accounts::list, accounts::create))
        .routes(routes!(accounts::create_sub))
        .routes(routes!(network::list_vpcs, network::create_vpc))
        .routes(routes!(network::get_vpc, network::patch_vpc, network::delete_vpc))
        .routes(routes!(network::list_subnets, network::create_subnet))
        .routes(routes!(
            network::get_subnet,
            network::patch_subnet,
            network::delete_subnet
        ))
        .routes(routes!(network::list_eips, network::create_eip))
        .routes(routes!(network::get_eip, network::patch_eip, network::delete_eip))
        .routes(routes!(network::list_instances, network::create_instance))
        .routes(routes!(
            network::get_instance,
            network::patch_instance,
            network::delete_instance
        ))
        .routes(routes!(security_groups::list, security_groups::create))
        .routes(routes!(
            security_groups::get,
            security_groups::patch,
            security_groups::delete
        ))
        .routes(routes!(lbs::list, lbs::create))
        .routes(routes!(lbs::export))
        .routes(routes!(lbs::batch_delete))
        .routes(routes!(lbs::get, lbs::patch, lbs::delete))
        .routes(routes!(lbs::renew))
        .routes(routes!(vservers::list, vservers::create))
        .routes(routes!(vservers::get, vservers::patch, vservers::delete))
        .routes(routes!(backends::list, backends::create))
        .routes(routes!(backends::batch))
        .routes(routes!(backends::get, backends::patch, backends::delete))
        .routes(routes!(rules::list, rules::create))
        .routes(routes!(rules::get, rules::patch, rules::delete))
        .routes(routes!(certificates::list, certificates::create))
        .routes(routes!(certificates::get, certificates::delete))
        .routes(routes!(alarm_templates::list, alarm_templates::create))
        .routes(routes!(
            alarm_templates::get,
            alarm_templates::patch,
            alarm_templates::delete
        ))
        .routes(routes!(metrics::lb_metrics))
        .routes(routes!(metrics::vs_metrics))
        .routes(routes!(metrics::lb_chart))
        .routes(routes!(metrics::vs_chart))
        .routes(routes!(metrics::alarms))
}

/// `{"items": [...], "total": N}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    pub items: Vec<T>,
    pub total: u64,
}

pub const DEFAULT_LIMIT: u64 = 100;
pub const MAX_LIMIT: u64 = 1000;

/// `search`, `limit` (default 100, at most 1000) and `offset`. Taken as
/// strings so a bad number gets our error shape naming the parameter.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Case-insensitive substring over name, id, address, comment.
    pub search: Option<String>,
    pub limit: Option<String>,
    pub offset: Option<String>,
}

pub struct Paging {
    pub search: Option<String>,
    pub limit: u64,
    pub offset: u64,
}

impl ListParams {
    pub fn paging(&self) -> Result<Paging, Error> {
        let num = |name: &str, v: &Option<String>, default: u64, max: u64| -> Result<u64, Error> {
            match v {
                None => Ok(default),
                Some(s) => match s.trim().parse::<u64>() {
                    Ok(n) if n <= max => Ok(n),
                    _ => Err(Error::new(
                        ErrorKind::Invalid,
                        "invalid_value",
                        format!("{name} must be a whole number from 0 to {max}, got {s:?}"),
                    )
                    .at(name)),
                },
            }
        };
        let search = self
            .search
            .as_ref()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        if search.as_ref().is_some_and(|s| s.len() > 256) {
            return Err(Error::invalid("search", "search must be at most 256 characters"));
        }
        Ok(Paging {
            search,
            limit: num("limit", &self.limit, DEFAULT_LIMIT, MAX_LIMIT)?,
            offset: num("offset", &self.offset, 0, i64::MAX as u64)?,
        })
    }
}

impl Paging {
    /// A query for the children of `parent`, with this search and page.
    pub fn query(&self, kind: weir_model::Kind, parent: &str) -> weir_store::ListQuery {
        let mut q = weir_store::ListQuery::new(kind).parent(parent);
        q.search = self.search.clone();
        q.limit = Some(self.limit);
        q.offset = self.offset;
        q
    }

    /// Applies search, offset and limit to an in-memory list.
    pub fn slice<T>(&self, items: Vec<T>, text: impl Fn(&T) -> String) -> List<T> {
        let needle = self.search.as_ref().map(|s| s.to_lowercase());
        let matching: Vec<T> = items
            .into_iter()
            .filter(|i| needle.as_ref().is_none_or(|n| text(i).contains(n.as_str())))
            .collect();
        let total = matching.len() as u64;
        let items = matching
            .into_iter()
            .skip(self.offset.min(usize::MAX as u64) as usize)
            .take(self.limit as usize)
            .collect();
        List { items, total }
    }
}

/// Parses the query string with our error shape.
pub fn list_params(q: Option<&str>) -> Result<Paging, Error> {
    let p: ListParams = serde_urlencoded_lite(q.unwrap_or(""))?;
    p.paging()
}

fn serde_urlencoded_lite(q: &str) -> Result<ListParams, Error> {
    let mut p = ListParams::default();
    for pair in q.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v =
            percent_decode(v).ok_or_else(|| Error::invalid(k, format!("{k} is not valid percent-encoded UTF-8")))?;
        match k {
            "search" => p.search = Some(v),
            "limit" => p.limit = Some(v),
            "offset" => p.offset = Some(v),
            _ => {}
        }
    }
    Ok(p)
}

pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let h = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn revision_header(rev: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&rev.to_string()) {
        h.insert("x-weir-revision", v);
    }
    h
}

/// 201 with the resource and the committed revision.
pub fn created<T: Serialize>(rev: u64, body: T) -> Response {
    (StatusCode::CREATED, revision_header(rev), Json(body)).into_response()
}

/// 200 after a write, with the committed revision.
pub fn updated<T: Serialize>(rev: u64, body: T) -> Response {
    (StatusCode::OK, revision_header(rev), Json(body)).into_response()
}

/// 204 after a delete.
pub fn deleted(rev: u64) -> Response {
    (StatusCode::NO_CONTENT, revision_header(rev)).into_response()
}

/// GET one visible resource by id (404 otherwise).
pub async fn fetch<R: weir_model::Resource>(
    st: &AppState,
    actor: crate::auth::Actor,
    id: String,
) -> crate::ApiResult<R> {
    Ok(st
        .store
        .read(move |tx| crate::access::visible::<R>(tx, &actor, &id))
        .await?)
}

/// GET a visible, searched, paged list, optionally under a parent.
pub async fn fetch_list<R: weir_model::Resource>(
    st: &AppState,
    actor: crate::auth::Actor,
    query: Option<String>,
) -> crate::ApiResult<List<R>> {
    use weir_store::TxnExt;
    let p = list_params(query.as_deref())?;
    let page = st
        .store
        .read(move |tx| {
            let mut q = actor.query(R::KIND);
            q.search = p.search;
            q.limit = Some(p.limit);
            q.offset = p.offset;
            tx.list::<R>(&q)
        })
        .await?;
    Ok(List {
        items: page.items,
        total: page.total,
    })
}
