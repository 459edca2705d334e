//! Console sessions: a random id in an `HttpOnly`, `SameSite=Strict` cookie,
//! mapped in memory to the hash of the account token that signed in and to
//! the session's CSRF token.
//!
//! Kept in memory on purpose: a session is a convenience over a token the
//! user still holds, so a restart only asks for the token again, and nothing
//! of it goes through the store's revisions and change feed. Every request
//! re-resolves the account from the token hash, so a rotated token or a
//! deleted account ends its sessions at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use weir_model::ids::new_secret;

/// The session cookie's name.
pub const COOKIE: &str = "weir_session";
/// The header that carries the CSRF token on state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session unused for this long ends.
pub const IDLE: Duration = Duration::from_secs(8 * 3600);
/// No session lives longer than this (also the cookie's `Max-Age`).
pub const MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Sessions held at once; beyond it the least recently used one ends.
pub const MAX_SESSIONS: usize = 10_000;

/// What a session id resolves to.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub token_hash: String,
    pub csrf: String,
}

struct Entry {
    info: SessionInfo,
    created: Instant,
    seen: Instant,
}

/// The live sessions, by the SHA-256 of their id.
#[derive(Default)]
pub struct Sessions {
    inner: Mutex<HashMap<String, Entry>>,
}

fn key(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

impl Sessions {
    /// A new session for the account whose token hashes to `token_hash`;
    /// returns its id (for the cookie) and its CSRF token.
    pub fn create(&self, token_hash: String) -> (String, String) {
        self.create_at(token_hash, Instant::now())
    }

    pub fn create_at(&self, token_hash: String, now: Instant) -> (String, String) {
        let id = new_secret();
        let csrf = new_secret();
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, e| live(e, now));
        }
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, e)| e.seen).map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            key(&id),
            Entry {
                info: SessionInfo {
                    token_hash,
                    csrf: csrf.clone(),
                },
                created: now,
                seen: now,
            },
        );
        (id, csrf)
    }

    /// The live session with this id (and marks it used).
    pub fn lookup(&self, id: &str) -> Option<SessionInfo> {
        self.lookup_at(id, Instant::now())
    }

    pub fn lookup_at(&self, id: &str, now: Instant) -> Option<SessionInfo> {
        let k = key(id);
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(&k) {
            Some(e) if live(e, now) => {
                e.seen = now;
                Some(e.info.clone())
            }
            Some(_) => {
                map.remove(&k);
                None
            }
            None => None,
        }
    }

    /// Ends a session (sign-out).
    pub fn remove(&self, id: &str) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).remove(&key(id));
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn live(e: &Entry, now: Instant) -> bool {
    now.saturating_duration_since(e.seen) < IDLE && now.saturating_duration_since(e.created) < MAX_AGE
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// Equal strings, compared in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `Set-Cookie` for a new session.
pub fn set_cookie(id: &str) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        MAX_AGE.as_secs()
    )
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_lookup_remove() {
        let s = Sessions::default();
        let (id, csrf) = s.create("h".into());
        let info = s.lookup(&id).expect("live");
        assert_eq!(info.token_hash, "h");
        assert_eq!(info.csrf, csrf);
        assert!(s.lookup("nope").is_none());
        s.remove(&id);
        assert!(s.lookup(&id).is_none());
    }

    #[test]
    fn idle_and_absolute_expiry() {
        let s = Sessions::default();
        let t0 = Instant::now();
        let (id, _) = s.create_at("h".into(), t0);
        assert!(s.lookup_at(&id, t0 + IDLE - Duration::from_secs(1)).is_some());
        // Used just now, so the idle clock restarted; the absolute one did not.
        assert!(s.lookup_at(&id, t0 + MAX_AGE - Duration::from_secs(1)).is_none());
        let (id, _) = s.create_at("h".into(), t0);
        assert!(s.lookup_at(&id, t0 + IDLE).is_none());
        assert!(s.is_empty());
    }

    #[test]
    fn bounded() {
        let s = Sessions::default();
        let t0 = Instant::now();
        let (first, _) = s.create_at("h".into(), t0);
        for i in 1..=MAX_SESSIONS {
            s.create_at("h".into(), t0 + Duration::from_millis(i as u64));
        }
        assert_eq!(s.len(), MAX_SESSIONS);
        assert!(s.lookup_at(&first, t0 + Duration::from_secs(20)).is_none());
    }

    #[test]
    fn cookies_and_secrets() {
        let mut h = HeaderMap::new();
        h.append("cookie", "a=1; weir_session=abc ; b=2".parse().unwrap());
        assert_eq!(cookie(&h, COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(set_cookie("x").contains("HttpOnly; SameSite=Strict"));
    }
}
