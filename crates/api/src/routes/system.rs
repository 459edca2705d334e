//! System status, liveness, fallbacks and the OpenAPI base document.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use weir_model::{Error, ErrorKind};

use crate::auth::Actor;
use crate::{ApiError, AppState};

pub fn base_doc() -> utoipa::openapi::OpenApi {
    use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
    let mut doc = utoipa::openapi::OpenApiBuilder::new()
        .info(
            utoipa::openapi::InfoBuilder::new()
                .title("Weir load-balancing API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Tenants' load balancers, VServers, backends and forwarding rules.",
                ))
                .build(),
        )
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    doc.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
        "bearer",
        Vec::<String>::new(),
    )]);
    doc
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SystemStatus {
    pub version: String,
    /// The store's latest committed revision.
    pub revision: u64,
    /// The revision the data plane has applied.
    pub applied_revision: u64,
    pub uptime_s: u64,
    /// Data-plane counters since start: `tcp_accepted`, `acl_denied`,
    /// `no_backend`, `connect_failed`, `idle_closed`, `drained_closed`,
    /// `udp_table_full`, `udp_flows_expired`.
    pub dataplane: std::collections::BTreeMap<String, u64>,
}

#[utoipa::path(get, path = "/v1/system/status", tag = "system",
    responses((status = 200, body = SystemStatus), (status = 401, body = weir_model::error::ErrorBody)))]
pub async fn status(State(st): State<AppState>, _actor: Actor) -> Json<SystemStatus> {
    Json(SystemStatus {
        version: env!("CARGO_PKG_VERSION").to_string(),
        revision: st.store.revision(),
        applied_revision: st.applied_revision(),
        uptime_s: st.started.elapsed().as_secs(),
        dataplane: st
            .dataplane
            .counters()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    })
}

/// 200 when the API, the store and the data plane are up; 503 naming the
/// failing part otherwise.
#[utoipa::path(get, path = "/healthz", tag = "system", security(()),
    responses((status = 200, description = "all parts up"), (status = 503, description = "a part is down")))]
pub async fn healthz(State(st): State<AppState>) -> Response {
    let store_ok = st.store.read(|tx| Ok(tx.revision())).await.is_ok();
    let dataplane_ok = st.dataplane.alive();
    let body = json!({"api": "ok", "store": if store_ok {"ok"} else {"down"}, "dataplane": if dataplane_ok {"ok"} else {"down"}});
    let code = if store_ok && dataplane_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

pub async fn not_found() -> ApiError {
    ApiError(Error::new(ErrorKind::NotFound, "not_found", "no such route"))
}

pub async fn method_not_allowed() -> Response {
    let body = json!({"error": {"code": "method_not_allowed", "message": "method not allowed on this route"}});
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}

pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError(Error::internal("internal error")).into_response()
}
