//! Forwarding rules of http/https VServers: domain and/or path prefix → a
//! subset of the VServer's backends.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::{Error, Kind, Resource, Result, validate};

pub const PATH_MAX: usize = 1024;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Rule {
    pub id: String,
    pub lb_id: String,
    pub vserver_id: String,
    /// `api.example.com` or `*.example.com`, lower-cased.
    pub domain: Option<String>,
    /// A normalized path prefix matched on whole segments.
    pub path: Option<String>,
    pub backend_ids: Vec<String>,
    pub owner_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Resource for Rule {
    const KIND: Kind = Kind::Rule;
    fn id(&self) -> &str {
        &self.id
    }
    fn owner(&self) -> &str {
        &self.owner_id
    }
    fn parent(&self) -> Option<&str> {
        Some(&self.vserver_id)
    }
    fn search_text(&self) -> String {
        format!(
            "{} {} {}",
            self.id,
            self.domain.as_deref().unwrap_or(""),
            self.path.as_deref().unwrap_or("")
        )
        .to_lowercase()
    }
}

impl Rule {
    /// Sort key: exact domain, then wildcard, then none; then the longest
    /// path; then age. The first matching rule in this order wins.
    pub fn precedence(&self) -> (u8, std::cmp::Reverse<usize>, OffsetDateTime) {
        let d = match &self.domain {
            Some(d) if d.starts_with("*.") => 1,
            Some(_) => 0,
            None => 2,
        };
        let p = self.path.as_ref().map_or(0, |p| if p == "/" { 0 } else { p.len() });
        (d, std::cmp::Reverse(p), self.created_at)
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleCreate {
    pub domain: Option<String>,
    pub path: Option<String>,
    pub backend_ids: Vec<String>,
}

/// PATCH body: `null` clears `domain` or `path` (one must remain).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulePatch {
    #[serde(default, deserialize_with = "crate::vserver::double_option")]
    #[schema(value_type = Option<String>)]
    pub domain: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::vserver::double_option")]
    #[schema(value_type = Option<String>)]
    pub path: Option<Option<String>>,
    pub backend_ids: Option<Vec<String>>,
}

/// Validated match part of a rule.
pub fn validate_match(domain: Option<&str>, path: Option<&str>) -> Result<(Option<String>, Option<String>)> {
    if domain.is_none() && path.is_none() {
        return Err(Error::missing("domain").tap_message("a rule needs a domain, a path, or both"));
    }
    let domain = domain.map(|d| validate::domain("domain", d, true)).transpose()?;
    let path = path.map(rule_path).transpose()?;
    Ok((domain, path))
}

/// Backend ids: at least one, no repeats (repeats are folded).
pub fn validate_backend_ids(ids: &[String]) -> Result<Vec<String>> {
    if ids.is_empty() {
        return Err(Error::invalid("backend_ids", "a rule needs at least one backend"));
    }
    let mut out: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(id) {
            out.push(id.clone());
        }
    }
    Ok(out)
}

/// A rule path: starts with `/`, printable ASCII without `?`, `#`, spaces or
/// `%`-escapes that decode to NUL; stored normalized (repeated slashes
/// collapsed, `.`/`..` resolved, no trailing slash) so it compares with the
/// normalized request path.
pub fn rule_path(p: &str) -> Result<String> {
    let bad = |why: &str| Error::invalid("path", format!("path {why}, got {p:?}"));
    if !p.starts_with('/') {
        return Err(bad("must start with /"));
    }
    if p.len() > PATH_MAX {
        return Err(bad("is too long"));
    }
    if !p.bytes().all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#') {
        return Err(bad("must be printable ASCII without spaces, ? or #"));
    }
    let decoded = decode_unreserved(p).ok_or_else(|| bad("has an invalid percent-encoding"))?;
    let mut segs: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
    }
    Ok(format!("/{}", segs.join("/")))
}

/// Decodes percent-escapes of unreserved characters, keeps others as they
/// are (upper-cased); `None` for a malformed escape or an encoded NUL.
pub fn decode_unreserved(p: &str) -> Option<String> {
    let b = p.as_bytes();
    let mut out = String::with_capacity(p.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = p.get(i + 1..i + 3)?;
            let v = u8::from_str_radix(hex, 16).ok()?;
            if v == 0 {
                return None;
            }
            if v.is_ascii_alphanumeric() || b"-._~".contains(&v) {
                out.push(v as char);
            } else {
                out.push('%');
                out.push_str(&hex.to_ascii_uppercase());
            }
            i += 3;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    Some(out)
}

trait TapMessage {
    fn tap_message(self, m: &str) -> Self;
}

impl TapMessage for Error {
    fn tap_message(mut self, m: &str) -> Self {
        self.message = m.to_string();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalized() {
        assert_eq!(rule_path("/api/").unwrap(), "/api");
        assert_eq!(rule_path("//api//v1").unwrap(), "/api/v1");
        assert_eq!(rule_path("/api/../admin").unwrap(), "/admin");
        assert_eq!(rule_path("/%61pi").unwrap(), "/api");
        assert_eq!(rule_path("/%2e%2e/x").unwrap(), "/x");
        assert_eq!(rule_path("/").unwrap(), "/");
        assert!(rule_path("api").is_err());
        assert!(rule_path("/a b").is_err());
        assert!(rule_path("/a?b").is_err());
        assert!(rule_path("/%zz").is_err());
        assert!(rule_path("/%00").is_err());
        assert!(rule_path("/%4").is_err());
    }

    #[test]
    fn match_needs_something() {
        let e = validate_match(None, None).unwrap_err();
        assert_eq!(e.code, "missing_field");
        assert!(validate_match(Some("*.Example.com"), None).is_ok());
        assert_eq!(
            validate_match(Some("bad domain"), None).unwrap_err().field.as_deref(),
            Some("domain")
        );
    }
}
