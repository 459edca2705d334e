//! Getting a backend connection for a request, shared by HTTP/1 and HTTP/2
//! clients: the cookie's backend first, then the group's picks; a pooled
//! connection when there is one, else a new one; a refused or timed-out
//! connect moves on to another candidate (at most 3 backends tried).

use std::net::IpAddr;

use tokio::net::TcpStream;

use super::buf::Buf;
use super::head;
use super::route::Group;
use crate::counters::Counters;
use crate::dataplane::DataPlane;
use crate::snapshot::ListenerConfig;

/// Backends whose connect failed, per request.
const MAX_BACKENDS: usize = 3;

/// What the search found.
pub(crate) enum Found {
    /// A connection to backend `i` (an index into the listener's backends);
    /// `reused` when it came from the pool.
    Conn { i: usize, up: TcpStream, reused: bool },
    /// No backend is a candidate at all (503).
    NoCandidate,
    /// Candidates were tried and none could be reached (502).
    Exhausted,
}

/// One request's search for a backend connection.
pub(crate) struct Attempts {
    /// Tried next, before any pick (the cookie's backend, or a backend whose
    /// pooled connection turned out dead).
    next: Option<usize>,
    /// Backends that refused or timed out.
    tried: Vec<usize>,
}

impl Attempts {
    pub fn new(pinned: Option<usize>) -> Attempts {
        Attempts {
            next: pinned,
            tried: Vec::new(),
        }
    }

    pub async fn connect(&mut self, dp: &DataPlane, cfg: &ListenerConfig, group: &Group, client: IpAddr) -> Found {
        loop {
            let i = match self.next.take() {
                Some(i) => i,
                None => match group.pick(&cfg.backends, client, |i| self.tried.contains(&i)) {
                    Some(i) => i,
                    None if self.tried.is_empty() => {
                        Counters::inc(&dp.counters.no_backend);
                        return Found::NoCandidate;
                    }
                    None => return Found::Exhausted,
                },
            };
            let Some(backend) = cfg.backends.get(i) else {
                return Found::Exhausted;
            };
            if let Some(up) = backend.pool.take(dp.config.upstream_keepalive) {
                return Found::Conn { i, up, reused: true };
            }
            // Boxed: a new connection (a timer, a readiness wait) is the rare
            // case next to a pooled one, and inline its state would be
            // copied with every request's future.
            match Box::pin(crate::tcp::connect(dp, backend)).await {
                Some(up) => return Found::Conn { i, up, reused: false },
                None => {
                    self.tried.push(i);
                    if self.tried.len() >= MAX_BACKENDS {
                        return Found::Exhausted;
                    }
                }
            }
        }
    }

    /// The request could not be written to backend `i`: nothing was taken,
    /// so try again — the same backend on another connection when this one
    /// came from the pool (it was closed under us), else another backend.
    pub fn write_failed(&mut self, i: usize, reused: bool) {
        if reused {
            self.next = Some(i);
        } else {
            self.tried.push(i);
        }
    }

    /// A pooled connection to `i` closed before any response byte: try `i`
    /// again on another connection.
    pub fn retry_same(&mut self, i: usize) {
        self.next = Some(i);
    }
}

/// A final response head the backend has already sent, read without
/// waiting, for a backend that stopped taking the request body: it may
/// have answered early (413, 401…) before closing or while no longer
/// reading, and that answer is the one the client should get. Interim
/// responses before it are dropped; the head stays in `buf`.
pub(crate) fn early_response(up: &TcpStream, buf: &mut Buf, is_head: bool) -> Option<head::Response> {
    loop {
        match head::response(buf.bytes(), is_head) {
            Ok(Some(r)) if (100..200).contains(&r.status) && r.status != 101 => buf.consume(r.len),
            Ok(Some(r)) if r.status >= 200 => return Some(r),
            Ok(None) => match buf.recv_now(up) {
                Ok(1..) => {}
                _ => return None,
            },
            _ => return None,
        }
    }
}
