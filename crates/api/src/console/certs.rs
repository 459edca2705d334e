//! SSL certificate pages: the list (subject, SANs, expiry with a warning
//! for those about to expire, bound VServers) and the upload form.

use askama::Template;
use axum::Json;
use axum::extract::{RawQuery, State};
use time::OffsetDateTime;
use weir_model::certificate::{CertType, CertificateView};
use weir_model::vserver::VServer;

use super::listing::{Pager, listing};
use super::{Chrome, Ctx, Page, Section, render, when};
use crate::AppState;
use crate::routes;

const S: Section = Section::Certificates;

/// Certificates expiring within this many days are highlighted.
const WARN_DAYS: i64 = 30;

/// A VServer a certificate is bound to; `href` empty when it cannot be
/// resolved (not visible to this account).
pub struct Bound {
    pub label: String,
    pub href: String,
}

pub struct CertRow {
    pub id: String,
    pub name: String,
    pub kind: &'static str,
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    pub not_before: String,
    pub not_after: String,
    /// "expires in N days" / "expired …" when highlighted, empty otherwise.
    pub expiry: String,
    pub warn: bool,
    pub fingerprint: String,
    pub fingerprint_short: String,
    pub bound: Vec<Bound>,
    pub comment: String,
    pub created: String,
}

/// The warning for a certificate valid until `not_after`, seen at `now`
/// (empty when more than [`WARN_DAYS`] remain).
fn expiry(not_after: OffsetDateTime, now: OffsetDateTime) -> String {
    let left = (not_after - now).whole_seconds();
    if left <= 0 {
        return match -left / 86_400 {
            0 => "expired today".into(),
            1 => "expired 1 day ago".into(),
            d => format!("expired {d} days ago"),
        };
    }
    // Whole days left, rounded up: valid for 10 more days minus a second is
    // "expires in 10 days".
    let days = (left + 86_399) / 86_400;
    match days {
        d if d > WARN_DAYS => String::new(),
        1 => "expires in 1 day".into(),
        d => format!("expires in {d} days"),
    }
}

/// `AB:CD:EF:01:…` → its first 8 bytes and an ellipsis.
fn short_fingerprint(f: &str) -> String {
    match f.char_indices().nth(23) {
        Some((i, _)) => format!("{}…", &f[..i]),
        None => f.to_string(),
    }
}

async fn bound(st: &AppState, ctx: &Ctx, ids: &[String]) -> Vec<Bound> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let b = match routes::fetch::<VServer>(st, ctx.actor.clone(), id.clone()).await {
            Ok(vs) => Bound {
                label: format!("{}:{} ({})", vs.protocol.as_str().to_uppercase(), vs.port, vs.id),
                href: format!("/lbs/{}/vservers/{}", vs.lb_id, vs.id),
            },
            Err(_) => Bound {
                label: id.clone(),
                href: String::new(),
            },
        };
        out.push(b);
    }
    out
}

async fn row(st: &AppState, ctx: &Ctx, c: &CertificateView, now: OffsetDateTime) -> CertRow {
    let expiry = expiry(c.meta.not_after, now);
    CertRow {
        id: c.id.clone(),
        name: c.name.clone(),
        kind: match c.cert_type {
            CertType::Server => "Server",
            CertType::Client => "Client CA",
        },
        subject: c.meta.subject.clone(),
        issuer: c.meta.issuer.clone(),
        sans: c.meta.sans.clone(),
        not_before: when(c.meta.not_before),
        not_after: when(c.meta.not_after),
        warn: !expiry.is_empty(),
        expiry,
        fingerprint: c.meta.fingerprint_sha256.clone(),
        fingerprint_short: short_fingerprint(&c.meta.fingerprint_sha256),
        bound: bound(st, ctx, &c.bound_vservers).await,
        comment: c.comment.clone(),
        created: when(c.created_at),
    }
}

#[derive(Template)]
#[template(path = "certs.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<CertRow>,
    search: String,
    search_error: String,
    pager: Pager,
    warn_days: i64,
}

pub async fn list(State(st): State<AppState>, ctx: Ctx, RawQuery(q): RawQuery) -> Page {
    let l = listing(&ctx, S, "/certificates", "", q.as_deref(), |query| async {
        routes::certificates::list(State(st.clone()), ctx.actor.clone(), RawQuery(Some(query)))
            .await
            .map(|Json(l)| l)
    })
    .await?;
    let now = OffsetDateTime::now_utc();
    let mut rows = Vec::with_capacity(l.items.len());
    for c in &l.items {
        rows.push(row(&st, &ctx, c, now).await);
    }
    let page = ListPage {
        chrome: ctx.chrome(S),
        rows,
        search: l.search,
        search_error: l.search_error,
        pager: l.pager,
        warn_days: WARN_DAYS,
    };
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "cert_new.html")]
struct NewPage {
    chrome: Chrome,
}

pub async fn new(ctx: Ctx) -> Page {
    Ok(render(&NewPage { chrome: ctx.chrome(S) }))
}

#[cfg(test)]
mod tests {
    use time::Duration;
    use time::macros::datetime;

    use super::*;

    #[test]
    fn expiry_words() {
        let now = datetime!(2026-01-01 12:00 UTC);
        assert_eq!(expiry(now + Duration::days(90), now), "");
        assert_eq!(expiry(now + Duration::days(31), now), "");
        assert_eq!(expiry(now + Duration::days(30), now), "expires in 30 days");
        assert_eq!(
            expiry(now + Duration::days(10) - Duration::seconds(5), now),
            "expires in 10 days"
        );
        assert_eq!(expiry(now + Duration::hours(3), now), "expires in 1 day");
        assert_eq!(expiry(now, now), "expired today");
        assert_eq!(expiry(now - Duration::days(1), now), "expired 1 day ago");
        assert_eq!(expiry(now - Duration::days(5), now), "expired 5 days ago");
    }

    #[test]
    fn short_fingerprints() {
        let f = "AB:CD:EF:01:23:45:67:89:AA:BB";
        assert_eq!(short_fingerprint(f), "AB:CD:EF:01:23:45:67:89…");
        assert_eq!(short_fingerprint("AB:CD"), "AB:CD");
    }
}
