//! Every response Weir produces itself, decided in one place: what went
//! wrong (and on which side) → status, body, and whether the client
//! connection can go on.

/// Why a request did not get a backend's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fail {
    /// Malformed or ambiguous request: 400, then close.
    BadRequest(&'static str),
    /// The body turned out malformed after part of it was forwarded: 400,
    /// close (the backend connection is dropped, never reused).
    BadRequestMidBody(&'static str),
    /// No candidate backend: 503. `true` when a request body is unread
    /// (the connection must close).
    NoBackend(bool),
    /// The backend failed before a complete response head: 502, close.
    BadGateway(&'static str),
    /// No response head within the timeout: 504, close.
    GatewayTimeout,
    /// The client went away: nothing to send.
    ClientGone,
    /// The client was too slow (headers or body): closed without a response.
    ClientTimeout,
}

const R400: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nConnection: close\r\n\r\nbad request\n";
const R502: &[u8] = b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nConnection: close\r\n\r\nbad gateway\n";
const R503: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 21\r\n\r\nno backend available\n";
const R503_CLOSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 21\r\nConnection: close\r\n\r\nno backend available\n";
const R504: &[u8] = b"HTTP/1.1 504 Gateway Timeout\r\nContent-Type: text/plain\r\nContent-Length: 16\r\nConnection: close\r\n\r\ngateway timeout\n";

/// `(status, bytes, keep the connection)`, or `None` when nothing is sent.
pub fn respond(f: &Fail) -> Option<(u16, &'static [u8], bool)> {
    if let Fail::BadRequest(why) | Fail::BadRequestMidBody(why) | Fail::BadGateway(why) = f {
        tracing::debug!(reason = why, kind = ?f, "request failed");
    }
    match f {
        Fail::BadRequest(_) | Fail::BadRequestMidBody(_) => Some((400, R400, false)),
        Fail::NoBackend(false) => Some((503, R503, true)),
        Fail::NoBackend(true) => Some((503, R503_CLOSE, false)),
        Fail::BadGateway(_) => Some((502, R502, false)),
        Fail::GatewayTimeout => Some((504, R504, false)),
        Fail::ClientGone | Fail::ClientTimeout => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_match_bodies() {
        for r in [R400, R502, R503, R503_CLOSE, R504] {
            let s = std::str::from_utf8(r).unwrap();
            let (head, body) = s.split_once("\r\n\r\n").unwrap();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(len, body.len(), "{head}");
        }
    }
}
