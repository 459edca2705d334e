//! HTTP and HTTPS VServers (layer 7): strict HTTP/1.1 and HTTP/2 (h2c, or h2
//! over TLS) from clients, pooled HTTP/1.1 to backends, forwarding rules, cookie persistence and
//! client-address headers. Behaviour: `shared/spec/behaviour.md` (HTTP/HTTPS).

pub(crate) mod buf;
pub mod chunked;
mod client;
mod h1;
mod h2;
pub mod head;
pub mod path;
pub mod pool;
mod respond;
pub mod route;
mod streams;
mod timer;
mod tls;
mod upstream;

pub(crate) use client::Lazy;
pub(crate) use h1::serve;
pub use route::HttpConfig;
pub(crate) use tls::serve_tls;
