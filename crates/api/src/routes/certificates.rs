//! Certificates: upload (JSON or multipart), list, show, delete.
//!
//! Everything uploaded is validated by `weir_tls::validate` before anything
//! is stored; the private key is stored with the certificate (the store's
//! files are private to Weir's user) and leaves the server through no API.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use time::OffsetDateTime;
use weir_model::certificate::{CertMeta, CertType, Certificate, CertificateCreate, CertificateView};
use weir_model::error::ErrorBody;
use weir_model::ids::new_id;
use weir_model::{Error, ErrorKind, Resource, Result, validate};
use weir_store::{Txn, TxnExt};

use super::{List, ListParams, created, deleted, list_params};
use crate::AppState;
use crate::access::{self, keys};
use crate::auth::Actor;
use crate::error::{ApiResult, RawBody, parse_json};

/// Bound VServers are listed up to this many (a certificate is rarely
/// bound to more).
const MAX_BOUND_LISTED: usize = 1000;

fn bound(tx: &mut dyn Txn, id: &str) -> Result<Vec<String>> {
    Ok(tx
        .claims_with_prefix(&keys::uses_prefix(id), MAX_BOUND_LISTED)?
        .into_iter()
        .map(|(_, holder)| holder)
        .collect())
}

fn view(tx: &mut dyn Txn, c: Certificate) -> Result<CertificateView> {
    let b = bound(tx, &c.id)?;
    Ok(CertificateView::new(c, b))
}

#[utoipa::path(get, path = "/v1/certificates", tag = "certificates", params(ListParams),
    responses((status = 200, body = List<CertificateView>)))]
pub async fn list(
    State(st): State<AppState>,
    actor: Actor,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<List<CertificateView>>> {
    let p = list_params(q.as_deref())?;
    let out = st
        .store
        .read(move |tx| {
            let mut q = actor.query(Certificate::KIND);
            q.search = p.search;
            q.limit = Some(p.limit);
            q.offset = p.offset;
            let page = tx.list::<Certificate>(&q)?;
            let items = page
                .items
                .into_iter()
                .map(|c| view(tx, c))
                .collect::<Result<Vec<_>>>()?;
            Ok(List {
                items,
                total: page.total,
            })
        })
        .await?;
    Ok(Json(out))
}

#[utoipa::path(get, path = "/v1/certificates/{id}", tag = "certificates", params(("id" = String, Path)),
    responses((status = 200, body = CertificateView), (status = 404, body = ErrorBody)))]
pub async fn get(State(st): State<AppState>, actor: Actor, Path(id): Path<String>) -> ApiResult<Json<CertificateView>> {
    let v = st
        .store
        .read(move |tx| {
            let c: Certificate = access::visible(tx, &actor, &id)?;
            view(tx, c)
        })
        .await?;
    Ok(Json(v))
}

/// Uploads a certificate: `application/json` with the PEM text in
/// `certificate` / `private_key`, or `multipart/form-data` with parts of
/// the same names (files or text).
#[utoipa::path(post, path = "/v1/certificates", tag = "certificates", request_body = CertificateCreate,
    responses((status = 201, body = CertificateView), (status = 400, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    let ctype = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let req = if ctype
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        multipart(ctype, body).await?
    } else {
        parse_json::<CertificateCreate>(&body)?
    };
    let cert = build(req, actor.id(), OffsetDateTime::now_utc())?;
    let (v, rev) = st
        .store
        .write(move |tx| {
            tx.put(&cert)?;
            Ok(CertificateView::new(cert.clone(), Vec::new()))
        })
        .await?;
    Ok(created(rev, v))
}

/// Validates an upload into the certificate to store.
fn build(req: CertificateCreate, owner: &str, now: OffsetDateTime) -> Result<Certificate> {
    let name = validate::name("name", &req.name)?;
    let comment = req
        .comment
        .as_deref()
        .map(|c| validate::comment("comment", c))
        .transpose()?
        .unwrap_or_default();
    let refused = |e: weir_tls::validate::Invalid| Error::new(ErrorKind::Invalid, e.code, e.message).at(e.field);
    let (meta, certificate_pem, private_key_pem) = match req.cert_type {
        CertType::Server => {
            let Some(key) = req.private_key.as_deref() else {
                return Err(Error::missing("private_key"));
            };
            let s = weir_tls::validate::server(&req.certificate, key, now).map_err(refused)?;
            (
                s.meta.clone(),
                s.certificate_pem.clone(),
                Some(s.private_key_pem.clone()),
            )
        }
        CertType::Client => {
            if req.private_key.as_deref().is_some_and(|k| !k.trim().is_empty()) {
                return Err(Error::not_allowed(
                    "private_key",
                    "a client certificate holds CA certificates only; do not upload a private key",
                ));
            }
            let c = weir_tls::validate::client_ca(&req.certificate, now).map_err(refused)?;
            (c.meta, c.certificate_pem, None)
        }
    };
    let m = meta;
    Ok(Certificate {
        id: new_id("cert"),
        name,
        cert_type: req.cert_type,
        comment,
        meta: CertMeta {
            subject: m.subject,
            issuer: m.issuer,
            sans: m.sans,
            not_before: m.not_before,
            not_after: m.not_after,
            fingerprint_sha256: m.fingerprint_sha256,
            serial: m.serial,
        },
        certificate_pem,
        private_key_pem,
        owner_id: owner.to_string(),
        created_at: now,
    })
}

/// Reads a `multipart/form-data` upload: text fields `type`, `name`,
/// `comment`; `certificate` and `private_key` as files or text.
async fn multipart(ctype: &str, body: bytes::Bytes) -> Result<CertificateCreate> {
    let bad = |m: String| Error::new(ErrorKind::Invalid, "invalid_multipart", m);
    let boundary = multer::parse_boundary(ctype).map_err(|e| bad(format!("multipart content type: {e}")))?;
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut mp = multer::Multipart::new(stream, boundary);
    let mut fields = serde_json::Map::new();
    while let Some(field) = mp
        .next_field()
        .await
        .map_err(|e| bad(format!("malformed multipart body: {e}")))?
    {
        let Some(name) = field.name().map(str::to_string) else {
            continue;
        };
        if !matches!(
            name.as_str(),
            "type" | "name" | "comment" | "certificate" | "private_key"
        ) {
            return Err(Error::invalid(&name, format!("unknown form field {name:?}")));
        }
        let bytes = field
            .bytes()
            .await
            .map_err(|e| bad(format!("form field {name}: {e}")))?;
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| Error::invalid(&name, format!("{name} must be UTF-8 text (PEM)")))?;
        if fields.insert(name.clone(), text.into()).is_some() {
            return Err(Error::invalid(&name, format!("form field {name} given twice")));
        }
    }
    let json = serde_json::to_vec(&fields).map_err(|e| Error::internal(e.to_string()))?;
    parse_json(&json)
}

#[utoipa::path(delete, path = "/v1/certificates/{id}", tag = "certificates", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(State(st): State<AppState>, actor: Actor, Path(id): Path<String>) -> ApiResult<Response> {
    let ((), rev) = st
        .store
        .write(move |tx| {
            let c: Certificate = access::visible(tx, &actor, &id)?;
            access::ensure_unused(
                tx,
                &keys::uses_prefix(&c.id),
                &format!("certificate {}", c.id),
                "VServer(s)",
            )?;
            tx.delete::<Certificate>(&c.id)?;
            Ok(())
        })
        .await?;
    Ok(deleted(rev))
}

/// The certificates a VServer's `tls` names, checked (visible, right type)
/// and bound to it: `uses/<cert>/<vs>` claims make deleting a bound
/// certificate a 409 and list the VServer in `bound_vservers`. `old` is
/// the VServer's previous `tls` (its bindings are released first).
pub fn bind(
    tx: &mut dyn Txn,
    actor: &Actor,
    vs_id: &str,
    old: Option<&weir_model::vserver::Tls>,
    new: Option<&weir_model::vserver::Tls>,
) -> Result<()> {
    if let Some(old) = old {
        for (_, id) in old.certificate_refs() {
            tx.release(&keys::uses(id, vs_id))?;
        }
    }
    let Some(new) = new else { return Ok(()) };
    for (field, id) in new.certificate_refs() {
        let c: Certificate = access::reference(tx, actor, &field, id)?;
        let want = if field == "tls.client_certificate_id" {
            CertType::Client
        } else {
            CertType::Server
        };
        if c.cert_type != want {
            return Err(Error::new(
                ErrorKind::Invalid,
                "invalid_reference",
                format!(
                    "{field} must name a {} certificate; {id} is a {} certificate",
                    want.as_str(),
                    c.cert_type.as_str()
                ),
            )
            .at(field));
        }
        // Held by `vs_id` alone (the key names it), so this cannot clash.
        tx.claim(&keys::uses(id, vs_id), vs_id)?;
    }
    Ok(())
}
