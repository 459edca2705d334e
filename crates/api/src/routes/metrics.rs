//! Metrics: history per LB and VServer (JSON and SVG charts), alarm events,
//! and the Prometheus exposition.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use weir_metrics::Metric;
use weir_metrics::alarm::{AlarmEvent, StateFilter};
use weir_model::Error;
use weir_model::error::ErrorBody;
use weir_model::lb::LoadBalancer;

use super::vservers::lookup;
use crate::AppState;
use crate::access;
use crate::auth::Actor;
use crate::error::ApiResult;

/// Named ranges, in seconds.
const RANGES: &[(&str, i64)] = &[("1h", 3600), ("6h", 6 * 3600), ("12h", 12 * 3600), ("1d", 86_400)];

/// The window a query asks for: `range=` (default 1h) ending now, or
/// `from=`/`to=` (unix seconds or RFC 3339), within the kept history.
#[derive(Debug)]
struct Window {
    from: i64,
    to: i64,
    range: &'static str,
}

fn parse_time(field: &str, v: &str) -> Result<i64, Error> {
    if let Ok(n) = v.parse::<i64>() {
        return Ok(n);
    }
    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| {
            Error::invalid(
                field,
                format!("{field} must be unix seconds or an RFC 3339 time (2026-11-25T10:00:00Z), got {v:?}"),
            )
        })
}

/// The query's pairs, percent-decoded; a bad encoding is a 400 naming it.
fn query_pairs(q: Option<&str>) -> Result<Vec<(String, String)>, Error> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let v = super::percent_decode(v)
                .ok_or_else(|| Error::invalid(k, format!("{k} is not valid percent-encoded UTF-8")))?;
            Ok((k.to_string(), v))
        })
        .collect()
}

fn window(q: &[(String, String)], now: i64, keep_s: i64, allowed: &[&str]) -> Result<Window, Error> {
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    for (k, _) in q {
        if !allowed.contains(&k.as_str()) {
            return Err(Error::invalid(
                k.clone(),
                format!(
                    "unknown query parameter {k:?} (expected one of: {})",
                    allowed.join(", ")
                ),
            ));
        }
    }
    match (get("range"), get("from"), get("to")) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            Err(Error::invalid("range", "give either range or from and to, not both"))
        }
        (r, None, None) => {
            let r = r.unwrap_or("1h");
            let (name, secs) = RANGES.iter().find(|(n, _)| *n == r).copied().ok_or_else(|| {
                Error::invalid(
                    "range",
                    format!("range must be one of 1h, 6h, 12h, 1d (or give from and to), got {r:?}"),
                )
            })?;
            Ok(Window {
                from: now - secs,
                to: now,
                range: name,
            })
        }
        (None, Some(_), None) => Err(Error::missing("to")),
        (None, None, Some(_)) => Err(Error::missing("from")),
        (None, Some(f), Some(t)) => {
            let (from, to) = (parse_time("from", f)?, parse_time("to", t)?);
            if from > to {
                return Err(Error::invalid("from", format!("from ({f}) is after to ({t})")));
            }
            if to - from > keep_s {
                return Err(Error::invalid(
                    "from",
                    format!(
                        "the range spans {} days; history is kept {} days",
                        (to - from) / 86_400,
                        keep_s / 86_400
                    ),
                ));
            }
            if to > now + 86_400 {
                return Err(Error::invalid("to", "to is more than a day in the future"));
            }
            Ok(Window {
                from,
                to,
                range: "custom",
            })
        }
    }
}

/// A resource's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetricsView {
    /// Seconds each point averages.
    pub resolution_s: i64,
    pub from: i64,
    pub to: i64,
    /// `[unix_ts, value]` pairs per metric, oldest first.
    #[schema(value_type = Object)]
    pub series: BTreeMap<&'static str, Vec<(i64, f64)>>,
}

fn now_s() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn history(st: &AppState, resource: &str, q: Option<String>) -> ApiResult<Json<MetricsView>> {
    let keep = st.metrics.settings().retention.rollup_s;
    let w = window(&query_pairs(q.as_deref())?, now_s(), keep, &["range", "from", "to"])?;
    let s = st
        .metrics
        .series(resource, w.from, w.to)
        .await
        .map_err(|e| Error::internal(e.to_string()))?;
    let series = Metric::ALL
        .iter()
        .map(|m| (m.name(), s.points.iter().map(|(t, v)| (*t, v[m.index()])).collect()))
        .collect();
    Ok(Json(MetricsView {
        resolution_s: s.resolution_s,
        from: w.from,
        to: w.to,
        series,
    }))
}

async fn chart(st: &AppState, resource: &str, title: &str, q: Option<String>) -> ApiResult<Response> {
    let pairs = query_pairs(q.as_deref())?;
    let keep = st.metrics.settings().retention.rollup_s;
    let w = window(&pairs, now_s(), keep, &["range", "from", "to", "metric"])?;
    let name = pairs
        .iter()
        .find(|(k, _)| k == "metric")
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| Error::missing("metric"))?;
    let metric = Metric::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        Error::invalid(
            "metric",
            format!("unknown metric {name:?} (expected one of: {})", names.join(", ")),
        )
    })?;
    let s = st
        .metrics
        .series(resource, w.from, w.to)
        .await
        .map_err(|e| Error::internal(e.to_string()))?;
    let points: Vec<(i64, f64)> = s.points.iter().map(|(t, v)| (*t, v[metric.index()])).collect();
    let title = format!("{title} — {} ({})", metric.name(), w.range);
    let svg = weir_metrics::svg::render(&weir_metrics::svg::Chart {
        title: &title,
        metric,
        from: w.from,
        to: w.to,
        resolution_s: s.resolution_s,
        points: &points,
    });
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
        ],
        svg,
    )
        .into_response())
}

async fn visible_lb(st: &AppState, actor: Actor, lb: String) -> ApiResult<LoadBalancer> {
    Ok(st
        .store
        .read(move |tx| access::visible::<LoadBalancer>(tx, &actor, &lb))
        .await?)
}

#[utoipa::path(get, path = "/v1/load-balancers/{lb}/metrics", tag = "metrics",
    params(("lb" = String, Path), ("range" = Option<String>, Query, description = "1h | 6h | 12h | 1d"),
        ("from" = Option<String>, Query), ("to" = Option<String>, Query)),
    responses((status = 200, body = MetricsView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn lb_metrics(
    State(st): State<AppState>,
    actor: Actor,
    Path(lb): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<MetricsView>> {
    let lb = visible_lb(&st, actor, lb).await?;
    history(&st, &lb.id, q).await
}

#[utoipa::path(get, path = "/v1/load-balancers/{lb}/vservers/{vs}/metrics", tag = "metrics",
    params(("lb" = String, Path), ("vs" = String, Path), ("range" = Option<String>, Query),
        ("from" = Option<String>, Query), ("to" = Option<String>, Query)),
    responses((status = 200, body = MetricsView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn vs_metrics(
    State(st): State<AppState>,
    actor: Actor,
    Path((lb, vs)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<MetricsView>> {
    let (_, vs) = st.store.read(move |tx| lookup(tx, &actor, &lb, &vs)).await?;
    history(&st, &vs.id, q).await
}

#[utoipa::path(get, path = "/v1/load-balancers/{lb}/metrics.svg", tag = "metrics",
    params(("lb" = String, Path), ("metric" = String, Query), ("range" = Option<String>, Query),
        ("from" = Option<String>, Query), ("to" = Option<String>, Query)),
    responses((status = 200, content_type = "image/svg+xml", body = String), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn lb_chart(
    State(st): State<AppState>,
    actor: Actor,
    Path(lb): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let lb = visible_lb(&st, actor, lb).await?;
    chart(&st, &lb.id, &lb.name, q).await
}

#[utoipa::path(get, path = "/v1/load-balancers/{lb}/vservers/{vs}/metrics.svg", tag = "metrics",
    params(("lb" = String, Path), ("vs" = String, Path), ("metric" = String, Query),
        ("range" = Option<String>, Query), ("from" = Option<String>, Query), ("to" = Option<String>, Query)),
    responses((status = 200, content_type = "image/svg+xml", body = String), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn vs_chart(
    State(st): State<AppState>,
    actor: Actor,
    Path((lb, vs)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let (lb, vs) = st.store.read(move |tx| lookup(tx, &actor, &lb, &vs)).await?;
    let title = format!("{} {}:{}", lb.name, vs.protocol.as_str(), vs.port);
    chart(&st, &vs.id, &title, q).await
}

/// Alarm events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlarmList {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<AlarmEvent>,
    pub total: usize,
}

#[utoipa::path(get, path = "/v1/alarms", tag = "alarms",
    params(("state" = Option<String>, Query, description = "firing | resolved"), super::ListParams),
    responses((status = 200, body = AlarmList), (status = 400, body = ErrorBody)))]
pub async fn alarms(State(st): State<AppState>, actor: Actor, RawQuery(q): RawQuery) -> ApiResult<Json<AlarmList>> {
    let mut state = StateFilter::Any;
    for (k, v) in query_pairs(q.as_deref())? {
        match (k.as_str(), v.as_str()) {
            ("state", "firing") => state = StateFilter::Firing,
            ("state", "resolved") => state = StateFilter::Resolved,
            ("state", other) => {
                return Err(Error::invalid("state", format!("state must be firing or resolved, got {other:?}")).into());
            }
            ("search" | "limit" | "offset", _) => {}
            (other, _) => {
                return Err(Error::invalid(
                    other,
                    format!("unknown query parameter {other:?} (expected state, search, limit, offset)"),
                )
                .into());
            }
        }
    }
    let paging = super::list_params(q.as_deref())?;
    let owner = (!actor.is_admin()).then(|| actor.id().to_string());
    let mut items = st
        .metrics
        .events(owner, state)
        .await
        .map_err(|e| Error::internal(e.to_string()))?;
    // Sub-accounts see their parent's events like their resources.
    items.retain(|e| actor.sees(&e.owner_id));
    let page = paging.slice(items, |e| {
        format!(
            "{} {} {} {} {}",
            e.id, e.template_id, e.template_name, e.resource_id, e.lb_id
        )
        .to_lowercase()
    });
    Ok(Json(AlarmList {
        total: page.total as usize,
        items: page.items,
    }))
}

/// Prometheus text exposition of every counter and gauge. Open by default
/// (like most exporters); `metrics_token` in the config file makes it
/// require `Authorization: Bearer <metrics_token>`.
pub async fn prometheus(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &st.config.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let ok = given.is_some_and(|g| {
            use sha2::Digest;
            // Compare digests: constant time in the token's content.
            sha2::Sha256::digest(g.as_bytes()) == sha2::Sha256::digest(token.as_bytes())
        });
        if !ok {
            return crate::ApiError(Error::unauthorized()).into_response();
        }
    }
    (
        [(header::CONTENT_TYPE, weir_metrics::prom::CONTENT_TYPE)],
        st.metrics.prometheus(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn q(s: &str) -> Vec<(String, String)> {
        query_pairs(Some(s)).unwrap()
    }
    const ALL: &[&str] = &["range", "from", "to"];

    #[test]
    fn windows() {
        let w = window(&q(""), 10_000, 86_400 * 30, ALL).unwrap();
        assert_eq!((w.from, w.to), (10_000 - 3600, 10_000));
        let w = window(&q("range=1d"), 100_000, 86_400 * 30, ALL).unwrap();
        assert_eq!(w.from, 100_000 - 86_400);
        let w = window(&q("from=1000&to=2000"), 10_000, 86_400 * 30, ALL).unwrap();
        assert_eq!((w.from, w.to), (1000, 2000));
        let w = window(
            &q("from=2026-11-25T10%3A00%3A00Z&to=2026-11-25T11:00:00Z"),
            1_800_000_000,
            86_400 * 30,
            ALL,
        )
        .unwrap();
        assert_eq!(w.to - w.from, 3600);
        let e = window(&q("from=2000&to=1000"), 10_000, 86_400 * 30, ALL).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("from"));
        assert_eq!(
            window(&q("range=2h"), 0, 1, ALL).unwrap_err().field.as_deref(),
            Some("range")
        );
        assert_eq!(
            window(&q("from=1"), 0, 1, ALL).unwrap_err().field.as_deref(),
            Some("to")
        );
        assert_eq!(
            window(&q("from=x&to=1"), 0, 1, ALL).unwrap_err().field.as_deref(),
            Some("from")
        );
        assert_eq!(
            window(&q("range=1h&from=1"), 0, 1, ALL).unwrap_err().field.as_deref(),
            Some("range")
        );
        assert_eq!(
            window(&q("rnage=1h"), 0, 1, ALL).unwrap_err().field.as_deref(),
            Some("rnage")
        );
        assert_eq!(
            window(&q("from=0&to=9999999"), 9_999_999, 86_400, ALL)
                .unwrap_err()
                .field
                .as_deref(),
            Some("from")
        );
    }
}
