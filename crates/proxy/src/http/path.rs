//! Request-target normalization, so Weir's rule matching and the backend
//! never disagree about which resource was asked for: percent-encoded
//! unreserved characters decoded, other escapes upper-cased, repeated
//! slashes collapsed, `.` and `..` resolved (never above the root). The
//! query string is left as it came. An invalid escape or an encoded NUL is
//! refused.

use std::borrow::Cow;

/// A request target split for forwarding.
#[derive(Debug, PartialEq, Eq)]
pub struct Target<'a> {
    /// Authority of an absolute-form target (`http://host/…`), if any.
    pub authority: Option<&'a str>,
    /// The normalized path (always starts with `/`).
    pub path: Cow<'a, str>,
    /// `?…` including the `?`, or empty.
    pub query: &'a str,
}

/// Why a target was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadTarget(pub &'static str);

/// Splits and normalizes an origin-form (`/p?q`), absolute-form
/// (`http://h/p?q`) or asterisk-form (`*`) target.
pub fn normalize(target: &str) -> Result<Target<'_>, BadTarget> {
    if target == "*" {
        return Ok(Target {
            authority: None,
            path: Cow::Borrowed("*"),
            query: "",
        });
    }
    let (authority, rest) = if let Some(r) = strip_scheme(target) {
        let end = r.find(['/', '?']).unwrap_or(r.len());
        let (a, p) = r.split_at(end);
        if a.is_empty() {
            return Err(BadTarget("absolute target without a host"));
        }
        (Some(a), if p.is_empty() { "/" } else { p })
    } else {
        (None, target)
    };
    let (raw, query) = match rest.find('?') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    // A fragment never belongs in a request target.
    if !(raw.starts_with('/') || authority.is_some() && raw.is_empty()) || rest.contains('#') {
        return Err(BadTarget("request target must start with /"));
    }
    let raw = if raw.is_empty() { "/" } else { raw };
    Ok(Target {
        authority,
        path: normalize_path(raw)?,
        query,
    })
}

fn strip_scheme(t: &str) -> Option<&str> {
    // Origin form, nearly every request: no scheme to look for.
    if t.starts_with('/') {
        return None;
    }
    let (scheme, rest) = t.split_once("://")?;
    (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")).then_some(rest)
}

/// Whether `p` may change: an escape, or a `/` followed by `/` or `.`
/// (an empty, `.` or `..` segment, or a harmless `/.name` that the slow
/// path gives back unchanged). One pass over the bytes.
fn needs_work(p: &str) -> bool {
    let b = p.as_bytes();
    b.iter()
        .enumerate()
        .any(|(i, &c)| c == b'%' || (c == b'/' && matches!(b.get(i + 1), Some(b'/') | Some(b'.'))))
}

fn normalize_path(p: &str) -> Result<Cow<'_, str>, BadTarget> {
    if !needs_work(p) {
        return Ok(Cow::Borrowed(p));
    }
    rebuild(p).map(Cow::Owned)
}

/// Decodes and resolves every segment of `p` (the slow path).
fn rebuild(p: &str) -> Result<String, BadTarget> {
    let decoded = weir_model::rule::decode_unreserved(p).ok_or(BadTarget("invalid percent-encoding"))?;
    let mut segs: Vec<&str> = Vec::new();
    let mut trailing = false;
    for seg in decoded.split('/') {
        trailing = false;
        match seg {
            "" => trailing = true,
            "." => trailing = true,
            ".." => {
                segs.pop();
                trailing = true;
            }
            s => segs.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for s in &segs {
        out.push('/');
        out.push_str(s);
    }
    if trailing || out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// Whether `path` is under the rule prefix `prefix` (normalized, no
/// trailing slash): whole segments only, case-sensitive.
pub fn under(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(t: &str) -> String {
        let t = normalize(t).unwrap();
        format!("{}{}", t.path, t.query)
    }

    #[test]
    fn normalizes() {
        assert_eq!(n("/a/b?x=/../y"), "/a/b?x=/../y");
        assert_eq!(n("/v1/../admin"), "/admin");
        assert_eq!(n("/v1/%2e%2e/admin"), "/admin");
        assert_eq!(n("/v1/%2E%2E/admin"), "/admin");
        assert_eq!(n("//admin"), "/admin");
        assert_eq!(n("/%61pi/x"), "/api/x");
        assert_eq!(n("/a/./b/"), "/a/b/");
        assert_eq!(n("/a/.."), "/");
        assert_eq!(n("/../../x"), "/x");
        assert_eq!(n("/a%2fb"), "/a%2Fb");
        assert_eq!(n("/V1"), "/V1");
        assert_eq!(n("/"), "/");
        let t = normalize("http://Example.com:81/a//b?q").unwrap();
        assert_eq!(
            (t.authority, t.path.as_ref(), t.query),
            (Some("Example.com:81"), "/a/b", "?q")
        );
        assert_eq!(normalize("http://h").unwrap().path, "/");
    }

    #[test]
    fn refuses() {
        for t in ["/%zz", "/%00", "/%4", "a/b", "/a#b", "http:///x"] {
            assert!(normalize(t).is_err(), "accepted {t}");
        }
    }

    proptest::proptest! {
        /// The fast path (a path left as it came) is taken only where the
        /// full rebuild would give the same path back.
        #[test]
        fn the_fast_path_changes_nothing(p in "/[a./%2eE]{0,12}") {
            if let Ok(full) = rebuild(&p) {
                let fast = normalize_path(&p).unwrap();
                proptest::prop_assert_eq!(fast.as_ref(), full.as_str());
            }
        }
    }

    #[test]
    fn prefixes() {
        assert!(under("/api", "/api"));
        assert!(under("/api/x", "/api"));
        assert!(!under("/apix", "/api"));
        assert!(!under("/API", "/api"));
        assert!(under("/anything", "/"));
    }
}
