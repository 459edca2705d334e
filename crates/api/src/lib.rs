//! Weir's REST API: handlers, auth and tenancy, the OpenAPI document, and
//! the web console over them.
//!
//! Handlers parse and authorize; the rules of what is valid live in
//! `weir-model`; every change runs as one store transaction.

mod access;
mod auth;
pub mod bootstrap;
pub mod console;
mod error;
mod export;
mod routes;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use ipnet::Ipv4Net;
use tower_http::catch_panic::CatchPanicLayer;
use weir_store::Store;

pub use error::{ApiError, ApiResult};

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Deployment settings the API enforces (from the config file).
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Elastic IP pool.
    pub eip_pool: Vec<Ipv4Net>,
    /// Ports no VServer may use.
    pub reserved_ports: Vec<u16>,
    /// When set, `GET /metrics` requires it as a bearer token.
    pub metrics_token: Option<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            eip_pool: vec![Ipv4Net::new(Ipv4Addr::new(127, 0, 20, 0), 24).unwrap_or_default()],
            reserved_ports: weir_model::vserver::DEFAULT_RESERVED_PORTS.to_vec(),
            metrics_token: None,
        }
    }
}

/// What the API shows of the data plane (implemented by the binary's
/// wiring, so this crate does not depend on the proxy).
pub trait DataPlaneView: Send + Sync + 'static {
    /// The store revision the data plane has applied.
    fn applied_revision(&self) -> u64;
    /// Whether a VServer's listener is bound; `None` when the data plane
    /// has no listener for it.
    fn listener(&self, vserver_id: &str) -> Option<ListenerStatus>;
    /// False when the data plane has stopped.
    fn alive(&self) -> bool;
    /// Data-plane counters (connections accepted, denied by security
    /// groups, dropped for lack of a backend, …), by name.
    fn counters(&self) -> Vec<(&'static str, u64)>;
    /// A backend's health (`None` before the data plane knows it).
    fn backend_health(&self, backend_id: &str) -> Option<BackendHealth>;
}

/// What the health checker says of one backend.
#[derive(Debug, Clone)]
pub struct BackendHealth {
    pub status: weir_model::backend::BackendStatus,
    pub last_check: Option<weir_model::backend::LastCheck>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerStatus {
    Bound,
    /// The bind failed, with the OS error.
    Failed(String),
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<ApiConfig>,
    pub dataplane: Arc<dyn DataPlaneView>,
    pub metrics: Arc<weir_metrics::Metrics>,
    pub started: Instant,
    /// Console sign-ins (in memory; see `console::session`).
    pub sessions: Arc<console::session::Sessions>,
}

impl AppState {
    pub fn new(
        store: Store,
        config: ApiConfig,
        dataplane: Arc<dyn DataPlaneView>,
        metrics: Arc<weir_metrics::Metrics>,
    ) -> Self {
        AppState {
            store,
            config: Arc::new(config),
            dataplane,
            metrics,
            started: Instant::now(),
            sessions: Arc::default(),
        }
    }

    pub fn applied_revision(&self) -> u64 {
        self.dataplane.applied_revision()
    }
}

/// The whole HTTP application (kept apart from `serve` so tests can run it).
pub fn app(state: AppState) -> Router {
    let (router, openapi) = routes::router().split_for_parts();
    let openapi = Arc::new(openapi);
    router
        .route(
            "/v1/openapi.json",
            axum::routing::get(move |_: auth::Actor| {
                let doc = openapi.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .route("/metrics", axum::routing::get(routes::metrics::prometheus))
        .merge(console::router())
        .fallback(routes::system::not_found)
        .method_not_allowed_fallback(routes::system::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(CatchPanicLayer::custom(routes::system::panic_response))
        .with_state(state)
}
