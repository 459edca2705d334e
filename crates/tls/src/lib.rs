//! Certificates and TLS: PEM/X.509 parsing and validation of what tenants
//! upload, and the rustls server configurations https listeners run.
mod pem;
pub mod server;
pub mod validate;
