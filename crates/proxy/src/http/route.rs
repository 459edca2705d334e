//! What an HTTP VServer needs per request, compiled once per snapshot:
//! forwarding rules in precedence order (each with its own scheduler over its
//! backends), the cookie table for persistence, and the header settings.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use weir_model::rule::Rule;
use weir_model::vserver::{Algorithm, ForwardHeaders, PersistenceMode, Protocol, VServer};

use crate::sched::{Maglev, Wrr};
use crate::snapshot::{BackendState, Scheduler, pick_from};

/// The cookie Weir sets for `insert_cookie` persistence.
pub const INSERT_COOKIE: &str = "WEIRSRV";

/// A set of backends with its own scheduler: a rule's, or the VServer's.
#[derive(Debug)]
pub struct Group {
    /// Indices into the listener's backends.
    pub members: Vec<usize>,
    weights: Vec<u32>,
    scheduler: Scheduler,
}

impl Group {
    fn new(members: Vec<usize>, all: &[Arc<BackendState>], weights_of: &[u32], algorithm: Algorithm) -> Group {
        let weights: Vec<u32> = members
            .iter()
            .map(|&i| weights_of.get(i).copied().unwrap_or(0))
            .collect();
        let scheduler = match algorithm {
            Algorithm::WeightedRoundRobin => Scheduler::Wrr(Wrr::new(&weights)),
            Algorithm::LeastConnections => Scheduler::LeastConnections(AtomicUsize::new(0)),
            Algorithm::SourceIp => {
                let keys: Vec<&str> = members
                    .iter()
                    .filter_map(|&i| all.get(i).map(|b| b.id.as_str()))
                    .collect();
                Scheduler::SourceIp(Maglev::new(&keys, &weights))
            }
        };
        Group {
            members,
            weights,
            scheduler,
        }
    }

    /// Picks a candidate (an index into `all`), skipping those `skip` rejects.
    pub fn pick(&self, all: &[Arc<BackendState>], client: IpAddr, skip: impl Fn(usize) -> bool) -> Option<usize> {
        let member = |p: usize| self.members.get(p).and_then(|&i| all.get(i).map(|b| (i, b)));
        pick_from(
            &self.scheduler,
            &self.weights,
            |p| member(p).map(|(_, b)| b.as_ref()),
            client,
            |p| member(p).is_some_and(|(i, _)| skip(i)),
        )
        .and_then(|p| self.members.get(p).copied())
    }

    pub fn contains(&self, i: usize) -> bool {
        self.members.contains(&i)
    }
}

#[derive(Debug)]
enum Domain {
    Exact(String),
    /// `*.example.com` stored as `.example.com`: matches any name below it.
    Wildcard(String),
}

#[derive(Debug)]
struct Route {
    domain: Option<Domain>,
    path: Option<String>,
    group: Group,
}

/// Cookie persistence: the cookie's name and one opaque value per backend,
/// a MAC over (VServer, backend) so a value can be neither forged nor
/// carried to another VServer.
#[derive(Debug)]
pub struct Cookies {
    pub name: String,
    /// The attributes after the value (`Secure` on https VServers).
    pub attributes: &'static str,
    /// Values by backend index.
    values: Vec<String>,
    by_value: HashMap<String, usize>,
}

impl Cookies {
    pub fn value(&self, i: usize) -> Option<&str> {
        self.values.get(i).map(String::as_str)
    }
    pub fn backend(&self, value: &str) -> Option<usize> {
        self.by_value.get(value).copied()
    }

    /// The backend a request's `Cookie` header values pin it to: a valid
    /// value under this name, naming a candidate of `group`.
    pub fn pinned<'a>(
        &self,
        headers: impl Iterator<Item = &'a [u8]>,
        group: &Group,
        all: &[Arc<BackendState>],
    ) -> Option<usize> {
        headers
            .flat_map(|h| h.split(|&x| x == b';'))
            .filter_map(|pair| {
                let (n, v) = std::str::from_utf8(pair).ok()?.trim().split_once('=')?;
                (n == self.name).then(|| self.backend(v)).flatten()
            })
            .find(|&i| group.contains(i) && all.get(i).is_some_and(|b| b.health.is_candidate()))
    }
}

/// An HTTP VServer's compiled routing.
#[derive(Debug)]
pub struct HttpConfig {
    routes: Vec<Route>,
    pub default: Group,
    pub cookies: Option<Cookies>,
    pub forward: ForwardHeaders,
    /// The `X-Forwarded-Proto` line for this VServer's protocol.
    pub proto_line: &'static [u8],
}

/// The opaque cookie value naming `backend_id` on `vserver_id`.
fn cookie_value(key: &[u8], vserver_id: &str, backend_id: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(vserver_id.as_bytes());
    mac.update(&[0]);
    mac.update(backend_id.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

impl HttpConfig {
    /// Compiles `vs`'s rules over its enabled backends `all` (weights alike).
    pub fn compile(
        vs: &VServer,
        rules: &[&Rule],
        all: &[Arc<BackendState>],
        weights: &[u32],
        key: &[u8],
    ) -> HttpConfig {
        let index: HashMap<&str, usize> = all.iter().enumerate().map(|(i, b)| (b.id.as_str(), i)).collect();
        let mut rules = rules.to_vec();
        rules.sort_by_key(|r| r.precedence());
        let routes = rules
            .iter()
            .map(|r| {
                let members = r
                    .backend_ids
                    .iter()
                    .filter_map(|id| index.get(id.as_str()).copied())
                    .collect();
                Route {
                    domain: r.domain.as_ref().map(|d| match d.strip_prefix('*') {
                        Some(suffix) => Domain::Wildcard(suffix.to_ascii_lowercase()),
                        None => Domain::Exact(d.to_ascii_lowercase()),
                    }),
                    path: r.path.clone(),
                    group: Group::new(members, all, weights, vs.algorithm),
                }
            })
            .collect();
        let cookies = match vs.persistence.mode {
            PersistenceMode::InsertCookie | PersistenceMode::CustomCookie => {
                let name = match vs.persistence.mode {
                    PersistenceMode::CustomCookie => vs.persistence.key.clone().unwrap_or_else(|| INSERT_COOKIE.into()),
                    _ => INSERT_COOKIE.to_string(),
                };
                let values: Vec<String> = all.iter().map(|b| cookie_value(key, &vs.id, &b.id)).collect();
                let by_value = values.iter().enumerate().map(|(i, v)| (v.clone(), i)).collect();
                let attributes = if vs.protocol == Protocol::Https {
                    "; Path=/; HttpOnly; Secure"
                } else {
                    "; Path=/; HttpOnly"
                };
                Some(Cookies {
                    name,
                    attributes,
                    values,
                    by_value,
                })
            }
            _ => None,
        };
        HttpConfig {
            routes,
            default: Group::new((0..all.len()).collect(), all, weights, vs.algorithm),
            cookies,
            forward: vs.forward_headers.clone().unwrap_or(ForwardHeaders {
                x_forwarded_for: true,
                x_real_ip: true,
                x_forwarded_proto: true,
                host: None,
            }),
            proto_line: if vs.protocol == Protocol::Https {
                b"X-Forwarded-Proto: https\r\n"
            } else {
                b"X-Forwarded-Proto: http\r\n"
            },
        }
    }

    /// The group for `host` (lower-case, port stripped) and normalized
    /// `path`: the first matching rule in precedence order, else all backends.
    pub fn route(&self, host: &str, path: &str) -> &Group {
        self.routes
            .iter()
            .find(|r| {
                let domain_ok = match &r.domain {
                    None => true,
                    Some(Domain::Exact(d)) => d == host,
                    Some(Domain::Wildcard(s)) => host.len() > s.len() && host.ends_with(s.as_str()),
                };
                domain_ok && r.path.as_deref().is_none_or(|p| super::path::under(path, p))
            })
            .map_or(&self.default, |r| &r.group)
    }
}

/// `Host` as rules see it: lower-case, without the port.
pub fn host_key(host: &str) -> std::borrow::Cow<'_, str> {
    let h = if host.starts_with('[') {
        host.find(']').map_or(host, |i| &host[..=i])
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    if h.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(h.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(host_key("API.Example.com:8080"), "api.example.com");
        assert_eq!(host_key("a.b"), "a.b");
        assert_eq!(host_key("[::1]:80"), "[::1]");
    }

    #[test]
    fn cookie_values_are_per_vserver_and_backend() {
        let k = [7u8; 32];
        let a = cookie_value(&k, "vs-1", "rs-1");
        assert_eq!(a.len(), 32);
        assert_eq!(a, cookie_value(&k, "vs-1", "rs-1"));
        assert_ne!(a, cookie_value(&k, "vs-2", "rs-1"));
        assert_ne!(a, cookie_value(&k, "vs-1", "rs-2"));
        assert_ne!(a, cookie_value(&[8u8; 32], "vs-1", "rs-1"));
    }
}
