//! Strict HTTP/1.x message heads.
//!
//! `httparse` does the tokenising (it already refuses obs-fold, whitespace
//! before the colon, invalid bytes in names and values, and NUL/CR/LF in the
//! request target); this module adds what a proxy must refuse on top, because
//! a message two parsers could frame differently is how requests are
//! smuggled: bare LF line ends, Content-Length and Transfer-Encoding
//! together, more than one Content-Length (even equal), anything but a plain
//! `chunked` transfer coding, Transfer-Encoding on HTTP/1.0, a missing or
//! repeated Host on HTTP/1.1. Everything refused here becomes a 400 and the
//! connection is closed: nothing of it reaches a backend.
//!
//! Heads are parsed in place: the result holds byte ranges into the caller's
//! buffer, so parsing allocates only the header index.

use std::mem::MaybeUninit;
use std::ops::Range;

/// Largest request or response head (request line + headers).
pub const MAX_HEAD: usize = 64 * 1024;
/// Most header fields in one head.
pub const MAX_HEADERS: usize = 128;

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    Length(u64),
    Chunked,
    /// Until the sender closes (responses only).
    Close,
}

/// Why a head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// Malformed or ambiguous.
    Invalid(&'static str),
    /// Over [`MAX_HEAD`] or [`MAX_HEADERS`].
    TooLarge,
}

/// One header: ranges of its name and value in the buffer.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: Range<usize>,
    pub value: Range<usize>,
    /// Dropped when the head is forwarded (hop-by-hop, or replaced by Weir).
    pub hop: bool,
    /// Which of the names Weir acts on it is.
    pub kind: Name,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Trace,
    Connect,
    Other,
}

impl Method {
    fn parse(m: &str) -> Method {
        match m {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "TRACE" => Method::Trace,
            "CONNECT" => Method::Connect,
            _ => Method::Other,
        }
    }

    /// RFC 9110 idempotent methods: safe to send again.
    pub fn idempotent(self) -> bool {
        matches!(
            self,
            Method::Get | Method::Head | Method::Put | Method::Delete | Method::Options | Method::Trace
        )
    }
}

/// A parsed request head.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub method_range: Range<usize>,
    pub target: Range<usize>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    pub fields: Vec<Field>,
    /// Bytes of the head, including the blank line.
    pub len: usize,
    pub framing: Framing,
    pub host: Option<Range<usize>>,
    /// The client wants the connection kept open after the response.
    pub keep_alive: bool,
    /// `Upgrade` value when the request asks for one (never `h2c`).
    pub upgrade: Option<Range<usize>>,
    /// `Expect: 100-continue`: Weir answers the 100 itself.
    pub expect_continue: bool,
    /// Incoming `X-Forwarded-For`, which Weir appends to.
    pub forwarded_for: Option<Range<usize>>,
    /// The `Cookie` header fields.
    pub cookies: Vec<Range<usize>>,
}

thread_local! {
    /// Field indexes of heads already dropped, reused by the next parse:
    /// a keep-alive request parses two heads, and these would otherwise
    /// be two allocations and two frees per request.
    static SPARE_FIELDS: std::cell::RefCell<Vec<Vec<Field>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// An empty field index with room for `n` fields.
fn field_vec(n: usize) -> Vec<Field> {
    let mut v = SPARE_FIELDS.with(|s| s.borrow_mut().pop()).unwrap_or_default();
    v.reserve(n);
    v
}

/// Keeps a field index for reuse (a few per thread, none over 128 fields).
fn give_fields(mut v: Vec<Field>) {
    if v.capacity() == 0 || v.capacity() > MAX_HEADERS {
        return;
    }
    v.clear();
    SPARE_FIELDS.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < 16 {
            s.push(v);
        }
    });
}

impl Drop for Request {
    fn drop(&mut self) {
        give_fields(std::mem::take(&mut self.fields));
    }
}

impl Drop for Response {
    fn drop(&mut self) {
        give_fields(std::mem::take(&mut self.fields));
    }
}

/// A parsed response head.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub minor: u8,
    /// The reason phrase.
    pub reason: Range<usize>,
    pub fields: Vec<Field>,
    pub len: usize,
    pub framing: Framing,
    /// The backend allows another request on this connection.
    pub keep_alive: bool,
}

/// The header names Weir acts on; everything else is [`Name::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    ContentLength,
    TransferEncoding,
    Host,
    Connection,
    Upgrade,
    Expect,
    XForwardedFor,
    XForwardedProto,
    XRealIp,
    Cookie,
    /// Hop-by-hop (RFC 9110 7.6.1) with no other meaning to Weir:
    /// keep-alive, proxy-connection, te, trailer, http2-settings,
    /// proxy-authenticate.
    Hop,
    Other,
}

impl Name {
    /// One length match and at most two comparisons per field, instead of
    /// a comparison with every name Weir knows.
    pub fn of(n: &str) -> Name {
        let is = |k: &str| n.eq_ignore_ascii_case(k);
        match n.len() {
            2 if is("te") => Name::Hop,
            4 if is("host") => Name::Host,
            6 if is("cookie") => Name::Cookie,
            6 if is("expect") => Name::Expect,
            7 if is("upgrade") => Name::Upgrade,
            7 if is("trailer") => Name::Hop,
            9 if is("x-real-ip") => Name::XRealIp,
            10 if is("connection") => Name::Connection,
            10 if is("keep-alive") => Name::Hop,
            14 if is("content-length") => Name::ContentLength,
            14 if is("http2-settings") => Name::Hop,
            15 if is("x-forwarded-for") => Name::XForwardedFor,
            16 if is("proxy-connection") => Name::Hop,
            17 if is("transfer-encoding") => Name::TransferEncoding,
            17 if is("x-forwarded-proto") => Name::XForwardedProto,
            18 if is("proxy-authenticate") => Name::Hop,
            _ => Name::Other,
        }
    }

    /// Hop-by-hop (RFC 9110 7.6.1): never forwarded as received.
    fn hop(self) -> bool {
        matches!(self, Name::Hop | Name::Connection | Name::Upgrade)
    }
}

/// Where `part` (a slice httparse returned) lies in `buf`; empty slices,
/// which need not point into `buf`, become `0..0`.
fn offset(buf: &[u8], part: &[u8]) -> Range<usize> {
    match (part.as_ptr() as usize).checked_sub(buf.as_ptr() as usize) {
        Some(start) if !part.is_empty() && start + part.len() <= buf.len() => start..start + part.len(),
        _ => 0..0,
    }
}

/// A head must end every line with CRLF: a bare LF is framed differently
/// by lenient parsers, so it is refused.
fn bare_lf(head: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', head).any(|i| i == 0 || head[i - 1] != b'\r')
}

/// Reads a `Connection` field's tokens: `close` sets `close`,
/// `keep-alive` clears it on HTTP/1.0 (1.1 keeps alive anyway), `upgrade`
/// sets `upgrade`, and any other token names fields to drop.
fn connection_tokens(v: &[u8], minor: u8, close: &mut bool, upgrade: &mut bool, names_fields: &mut bool) {
    for t in tokens(v) {
        if t.eq_ignore_ascii_case(b"close") {
            *close = true;
        } else if t.eq_ignore_ascii_case(b"keep-alive") {
            if minor == 0 {
                *close = false;
            }
        } else if t.eq_ignore_ascii_case(b"upgrade") {
            *upgrade = true;
        } else {
            *names_fields = true;
        }
    }
}

/// Comma-separated tokens of a header value, trimmed.
fn tokens(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',')
        .map(|t| t.trim_ascii())
        .filter(|t| !t.is_empty())
}

/// Digits only, at most 18 (no sign, no space, no overflow).
fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 18 {
        return None;
    }
    v.iter()
        .try_fold(0u64, |n, &b| b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0')))
}

/// Marks the fields named in `Connection` as hop-by-hop (called only when
/// a token other than close/keep-alive/upgrade is there: those name no
/// field that is not hop-by-hop already).
fn mark_connection_named(buf: &[u8], fields: &mut [Field]) {
    let conn: Vec<Range<usize>> = fields
        .iter()
        .filter(|f| f.kind == Name::Connection)
        .map(|f| f.value.clone())
        .collect();
    for f in fields.iter_mut() {
        let name = &buf[f.name.clone()];
        if conn
            .iter()
            .any(|c| tokens(&buf[c.clone()]).any(|t| t.eq_ignore_ascii_case(name)))
        {
            f.hop = true;
        }
    }
}

/// Parses a request head at the start of `buf`. `Ok(None)`: incomplete.
pub fn request(buf: &[u8]) -> Result<Option<Request>, HeadError> {
    // Left uninitialised: httparse writes only the entries it returns
    // (initialising all 128 cost more than parsing a small head).
    let mut raw = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, &mut raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > MAX_HEAD {
                return Err(HeadError::TooLarge);
            }
            // Refuse a bare LF as early as possible.
            return if bare_lf(buf) {
                Err(HeadError::Invalid("bare LF"))
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Invalid("malformed head")),
    };
    if len > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    if bare_lf(&buf[..len]) {
        return Err(HeadError::Invalid("bare LF"));
    }
    let (Some(m), Some(path), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Invalid("malformed request line"));
    };
    let method = Method::parse(m);
    let method_range = offset(buf, m.as_bytes());
    let target = offset(buf, path.as_bytes());
    if !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(HeadError::Invalid("invalid byte in the request target"));
    }
    let mut fields = field_vec(req.headers.len());
    let mut length = None;
    let mut lengths = 0;
    let mut te = 0;
    let mut chunked = false;
    let mut host = None;
    let mut hosts = 0;
    let mut close = minor == 0;
    let mut conn_upgrade = false;
    // A `Connection` token other than close/keep-alive/upgrade (which
    // name no field that is not hop-by-hop already).
    let mut conn_names_fields = false;
    let mut upgrade = None;
    let mut expect_continue = false;
    let mut forwarded_for = None;
    let mut cookies = Vec::new();
    for h in req.headers.iter() {
        let name = offset(buf, h.name.as_bytes());
        let value = offset(buf, h.value);
        let v = h.value;
        let kind = Name::of(h.name);
        let mut hop = kind.hop();
        match kind {
            Name::ContentLength => {
                lengths += 1;
                length = Some(parse_length(v).ok_or(HeadError::Invalid("invalid Content-Length"))?);
            }
            Name::TransferEncoding => {
                te += 1;
                chunked = v.trim_ascii().eq_ignore_ascii_case(b"chunked");
            }
            Name::Host => {
                hosts += 1;
                host = Some(value.clone());
            }
            Name::Connection => connection_tokens(v, minor, &mut close, &mut conn_upgrade, &mut conn_names_fields),
            Name::Upgrade => upgrade = Some(value.clone()),
            Name::Expect if v.trim_ascii().eq_ignore_ascii_case(b"100-continue") => {
                expect_continue = true;
                hop = true;
            }
            // Several fields are one comma-separated list; keep the last.
            Name::XForwardedFor => forwarded_for = Some(value.clone()),
            Name::Cookie => cookies.push(value.clone()),
            _ => {}
        }
        fields.push(Field { name, value, hop, kind });
    }
    if te > 0 && lengths > 0 {
        return Err(HeadError::Invalid("both Content-Length and Transfer-Encoding"));
    }
    if lengths > 1 {
        return Err(HeadError::Invalid("more than one Content-Length"));
    }
    if te > 1 || (te == 1 && !chunked) {
        return Err(HeadError::Invalid("unsupported Transfer-Encoding"));
    }
    if te > 0 && minor == 0 {
        return Err(HeadError::Invalid("Transfer-Encoding in HTTP/1.0"));
    }
    if hosts > 1 || (hosts == 0 && minor == 1) {
        return Err(HeadError::Invalid("HTTP/1.1 needs exactly one Host"));
    }
    if let Some(h) = &host
        && !valid_host(&buf[h.clone()])
    {
        return Err(HeadError::Invalid("invalid Host"));
    }
    if conn_names_fields {
        mark_connection_named(buf, &mut fields);
    }
    // An h2c upgrade is never tunnelled: the request goes on as HTTP/1.1.
    let upgrade = match upgrade {
        Some(u) if conn_upgrade && !tokens(&buf[u.clone()]).any(|t| t.eq_ignore_ascii_case(b"h2c")) => Some(u),
        _ => None,
    };
    let framing = if chunked {
        Framing::Chunked
    } else {
        match length {
            Some(0) | None => Framing::None,
            Some(n) => Framing::Length(n),
        }
    };
    Ok(Some(Request {
        method,
        method_range,
        target,
        minor,
        fields,
        len,
        framing,
        host,
        keep_alive: !close,
        upgrade,
        expect_continue,
        forwarded_for,
        cookies,
    }))
}

/// Copies the fields `keep` accepts as the raw lines they came in: the
/// lines of a head's fields are contiguous, so each run of kept fields is
/// one copy. `end` is where the last field's line ends (the head's length
/// less its closing blank line).
pub fn copy_fields(out: &mut Vec<u8>, b: &[u8], fields: &[Field], end: usize, keep: impl Fn(&Field) -> bool) {
    let mut run: Option<usize> = None;
    for f in fields {
        if keep(f) {
            run.get_or_insert(f.name.start);
        } else if let Some(start) = run.take() {
            out.extend_from_slice(b.get(start..f.name.start).unwrap_or_default());
        }
    }
    if let Some(start) = run {
        out.extend_from_slice(b.get(start..end).unwrap_or_default());
    }
}

/// `host[:port]` with reg-name or IP-literal characters only.
fn valid_host(h: &[u8]) -> bool {
    /// The bytes a Host may hold, one table lookup per byte.
    const HOST_BYTE: [bool; 256] = {
        let mut t = [false; 256];
        let mut b = 0;
        while b < 256 {
            let c = b as u8;
            t[b] = c.is_ascii_alphanumeric();
            b += 1;
        }
        let extra = b"-._~:[]!$&'()*+,;=%";
        let mut i = 0;
        while i < extra.len() {
            t[extra[i] as usize] = true;
            i += 1;
        }
        t
    };
    !h.is_empty() && h.len() <= 255 && h.iter().all(|&b| HOST_BYTE[b as usize])
}

/// Parses a backend's response head. `is_head`: the request was HEAD, so
/// the response has no body whatever its headers say.
pub fn response(buf: &[u8], is_head: bool) -> Result<Option<Response>, HeadError> {
    let mut raw = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut res, buf, &mut raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Invalid("malformed response head")),
    };
    if len > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let (Some(status), Some(minor)) = (res.code, res.version) else {
        return Err(HeadError::Invalid("malformed status line"));
    };
    let reason = offset(buf, res.reason.unwrap_or("").as_bytes());
    let mut fields = field_vec(res.headers.len());
    let mut length = None;
    let mut lengths = 0;
    let mut te = 0;
    let mut chunked = false;
    let mut close = minor == 0;
    let mut conn_names_fields = false;
    for h in res.headers.iter() {
        let v = h.value;
        let value = offset(buf, v);
        let kind = Name::of(h.name);
        match kind {
            Name::ContentLength => {
                // Equal repeated values are tolerated from backends (RFC 9112 6.3).
                let l = tokens(v).try_fold(None, |acc: Option<u64>, t| match (acc, parse_length(t)) {
                    (_, None) => Err(()),
                    (Some(a), Some(b)) if a != b => Err(()),
                    (_, Some(b)) => Ok(Some(b)),
                });
                match (l, length) {
                    (Ok(Some(l)), None) => length = Some(l),
                    (Ok(Some(l)), Some(prev)) if l == prev => {}
                    _ => return Err(HeadError::Invalid("invalid Content-Length")),
                }
                lengths += 1;
            }
            Name::TransferEncoding => {
                te += 1;
                chunked = tokens(v).last().is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"));
            }
            Name::Connection => {
                let mut upgrade = false;
                connection_tokens(v, minor, &mut close, &mut upgrade, &mut conn_names_fields);
            }
            _ => {}
        }
        fields.push(Field {
            name: offset(buf, h.name.as_bytes()),
            value,
            hop: kind.hop(),
            kind,
        });
    }
    if conn_names_fields {
        mark_connection_named(buf, &mut fields);
    }
    let framing = if is_head || (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::None
    } else if te > 0 {
        // Transfer-Encoding overrides Content-Length; such a backend
        // connection is not reused.
        if lengths > 0 {
            close = true;
        }
        if chunked { Framing::Chunked } else { Framing::Close }
    } else {
        match length {
            Some(0) => Framing::None,
            Some(n) => Framing::Length(n),
            None => Framing::Close,
        }
    };
    if framing == Framing::Close {
        close = true;
    }
    Ok(Some(Response {
        status,
        minor,
        reason,
        fields,
        len,
        framing,
        keep_alive: !close,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(s: &str) -> Result<Option<Request>, HeadError> {
        request(s.as_bytes())
    }

    /// Kept fields come out as the lines they came in, whatever is dropped
    /// around them (first, middle, last, several in a row).
    #[test]
    fn copied_fields_are_the_kept_lines() {
        let head = "HTTP/1.1 200 OK\r\nConnection: keep-alive, x-drop\r\nA: 1\r\nB:  two  \r\n\
                    X-Drop: y\r\nKeep-Alive: t=5\r\nC:\r\nTrailer: x\r\n\r\nbody";
        let r = response(head.as_bytes(), false).unwrap().unwrap();
        let mut out = Vec::new();
        copy_fields(&mut out, head.as_bytes(), &r.fields, r.len - 2, |f| !f.hop);
        assert_eq!(String::from_utf8(out).unwrap(), "A: 1\r\nB:  two  \r\nC:\r\n");
        let mut all = Vec::new();
        copy_fields(&mut all, head.as_bytes(), &r.fields, r.len - 2, |_| true);
        let start = head.find("Connection").unwrap();
        assert_eq!(String::from_utf8(all).unwrap(), head[start..r.len - 2]);
        let mut none = Vec::new();
        copy_fields(&mut none, head.as_bytes(), &r.fields, r.len - 2, |_| false);
        assert!(none.is_empty());
    }

    #[test]
    fn parse_length_is_digits_only() {
        assert_eq!(parse_length(b"0"), Some(0));
        assert_eq!(parse_length(b"123456789012345678"), Some(123_456_789_012_345_678));
        for bad in [
            &b""[..],
            b"1234567890123456789",
            b"+1",
            b"-1",
            b" 1",
            b"1 ",
            b"0x10",
            b"1_0",
        ] {
            assert_eq!(parse_length(bad), None, "{:?}", std::str::from_utf8(bad));
        }
    }

    #[test]
    fn simple_get() {
        let s = "GET /a?b HTTP/1.1\r\nHost: x.example\r\nX-Forwarded-For: 1.2.3.4\r\n\r\nrest";
        let r = req(s).unwrap().unwrap();
        assert_eq!(r.method, Method::Get);
        assert_eq!(&s[r.target.clone()], "/a?b");
        assert_eq!(&s[r.host.clone().unwrap()], "x.example");
        assert_eq!(r.len, s.len() - 4);
        assert_eq!(r.framing, Framing::None);
        assert!(r.keep_alive);
        assert_eq!(&s[r.forwarded_for.clone().unwrap()], "1.2.3.4");
    }

    #[test]
    fn partial_then_complete() {
        assert!(req("GET / HTTP/1.1\r\nHost: a\r\n").unwrap().is_none());
    }

    #[test]
    fn refused() {
        let bad = [
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
            "GET / HTTP/1.1\nHost: a\n\n",
            "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Name: a\r\nHost: a\r\n\r\n",
        ];
        for b in bad {
            assert!(req(b).is_err(), "accepted {b:?}");
        }
        let huge = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(req(&huge).unwrap_err(), HeadError::TooLarge);
        let many: String = (0..200).map(|i| format!("X-{i}: v\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n");
        assert_eq!(req(&many).unwrap_err(), HeadError::TooLarge);
    }

    #[test]
    fn connection_tokens() {
        let s =
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Foo\r\nX-Foo: 1\r\nX-Bar: 2\r\nKeep-Alive: 5\r\n\r\n";
        let r = req(s).unwrap().unwrap();
        assert!(!r.keep_alive);
        let hop: Vec<&str> = r.fields.iter().filter(|f| f.hop).map(|f| &s[f.name.clone()]).collect();
        assert_eq!(hop, ["Connection", "X-Foo", "Keep-Alive"]);
        let s = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
        assert!(req(s).unwrap().unwrap().keep_alive);
        assert!(!req("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap().keep_alive);
    }

    #[test]
    fn upgrades() {
        let s = "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
        assert!(req(s).unwrap().unwrap().upgrade.is_some());
        let s = "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAA\r\n\r\n";
        let r = req(s).unwrap().unwrap();
        assert!(r.upgrade.is_none());
        assert!(r.fields.iter().filter(|f| f.hop).count() == 3);
        let s = "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n";
        assert!(req(s).unwrap().unwrap().upgrade.is_none());
    }

    #[test]
    fn bodies() {
        let r = req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.framing, Framing::Length(5));
        let r = req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.framing, Framing::Chunked);
        let r = req("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(r.expect_continue);
    }

    #[test]
    fn responses() {
        let r = response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false)
            .unwrap()
            .unwrap();
        assert_eq!((r.status, r.framing, r.keep_alive), (200, Framing::Length(2), true));
        let r = response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!(r.framing, Framing::None);
        let r = response(b"HTTP/1.1 200 OK\r\n\r\n", false).unwrap().unwrap();
        assert_eq!((r.framing, r.keep_alive), (Framing::Close, false));
        let r = response(b"HTTP/1.1 204 No Content\r\n\r\n", false).unwrap().unwrap();
        assert_eq!((r.framing, r.keep_alive), (Framing::None, true));
        let r = response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert_eq!(r.framing, Framing::Chunked);
        let r = response(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert!(!r.keep_alive);
        assert!(
            response(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                false
            )
            .is_err()
        );
        assert!(response(b"HTTP/1.1 200 OK\r\n", false).unwrap().is_none());
    }
}
