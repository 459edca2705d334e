//! Strict PEM framing for uploaded certificates and keys.
//!
//! rustls-pki-types' own PEM reader is deliberately lenient (it skips any
//! text outside blocks and unknown labels), which is right for reading
//! files but wrong for an upload form: a tenant who pasted half a bundle,
//! or a key into the certificate box, should be told so, with a line
//! number. So framing is done here, line by line, and only the base64
//! decoding itself is delegated to rustls-pki-types (whose decoder is
//! constant-time for private keys).
//!
//! Framing rules, shared by every field:
//! - lines end with LF or CRLF; each line is trimmed of surrounding
//!   whitespace, so indentation, trailing blanks and a leading byte-order
//!   mark are tolerated;
//! - outside a block only blank lines are allowed;
//! - a block is `-----BEGIN L-----`, optional RFC 1421 headers
//!   (`Name: value`, possibly followed by one blank line), base64 lines,
//!   then `-----END L-----` with the same label;
//! - a blank line inside the base64 body is refused: it is almost always a
//!   paste accident (two half blocks glued together, or a cut block);
//! - a BEGIN line with more on it (the text lost its line breaks, or has
//!   them as literal `\n`) gets its own message, as that is a common
//!   copy-paste accident through JSON and web forms.

use rustls_pki_types::pem::{PemObject, SectionKind};

/// One framed (not yet decoded) PEM block.
pub(crate) struct Block<'a> {
    /// The label between `-----BEGIN ` and `-----`, e.g. `CERTIFICATE`.
    pub label: &'a str,
    /// 1-based line number of the BEGIN line.
    pub begin_line: usize,
    /// RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`), with their line numbers.
    pub headers: Vec<Header<'a>>,
    /// Base64 lines with their 1-based line numbers.
    body: Vec<(usize, &'a str)>,
}

/// An RFC 1421 header line inside a block.
pub(crate) struct Header<'a> {
    pub line: usize,
    pub name: &'a str,
    pub value: &'a str,
}

/// Splits `text` into PEM blocks. `expected` names the block a caller
/// wants (e.g. `CERTIFICATE`), for the "no block found" message; `quote`
/// allows quoting stray text in messages (never for private keys).
pub(crate) fn split<'a>(text: &'a str, expected: &str, quote: bool) -> Result<Vec<Block<'a>>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut blocks = Vec::new();
    let mut open: Option<Open<'a>> = None;

    for (index, raw) in text.split('\n').enumerate() {
        let n = index + 1;
        let line = raw.trim();
        let Some(block) = open.as_mut() else {
            if line.is_empty() {
                continue;
            }
            if line.starts_with("-----BEGIN") && (line.contains("\\n") || line.matches("-----").count() > 2) {
                return Err(format!(
                    "line {n}: more text follows -----BEGIN on the same line; the PEM text seems to have lost its \
                     line breaks (or has them written as \\n): each -----BEGIN …----- line, base64 line and \
                     -----END …----- line goes on a line of its own"
                ));
            }
            if let Some(label) = begin_label(line) {
                if label.is_empty() {
                    return Err(format!(
                        "line {n}: the BEGIN line has no label; expected -----BEGIN {expected}-----"
                    ));
                }
                open = Some(Open {
                    block: Block {
                        label,
                        begin_line: n,
                        headers: Vec::new(),
                        body: Vec::new(),
                    },
                    header_gap_used: false,
                    blank: None,
                });
                continue;
            }
            if line.starts_with("-----BEGIN") {
                return Err(format!(
                    "line {n}: malformed BEGIN line; expected -----BEGIN {expected}-----"
                ));
            }
            if line.starts_with("-----END") {
                return Err(format!(
                    "line {n}: {} without a matching -----BEGIN line before it",
                    shorten(line)
                ));
            }
            let found = if quote {
                format!(" ({:?})", shorten(line))
            } else {
                String::new()
            };
            return Err(format!(
                "line {n}: unexpected text outside a PEM block{found}; only -----BEGIN …----- … -----END …----- \
                 blocks and blank lines between them are allowed, remove everything else"
            ));
        };

        let label = block.block.label;
        let begin = block.block.begin_line;
        if line.starts_with("-----END") {
            if end_label(line) == Some(label) {
                if let Some(blank) = block.blank {
                    return Err(format!(
                        "line {blank}: blank line inside the -----BEGIN {label}----- block begun on line {begin}; \
                         remove it (blank lines are only allowed between blocks)"
                    ));
                }
                if block.block.body.is_empty() {
                    return Err(format!(
                        "line {n}: the -----BEGIN {label}----- block begun on line {begin} is empty"
                    ));
                }
                if let Some(done) = open.take() {
                    blocks.push(done.block);
                }
                continue;
            }
            return Err(format!(
                "line {n}: {} does not match -----BEGIN {label}----- on line {begin}; expected -----END {label}-----",
                shorten(line)
            ));
        }
        if line.starts_with("-----BEGIN") {
            return Err(format!(
                "line {n}: a new BEGIN line starts before the -----BEGIN {label}----- block begun on line {begin} \
                 is closed; its -----END {label}----- line is missing"
            ));
        }
        if line.is_empty() {
            // One blank line may separate RFC 1421 headers from the body.
            if !block.block.headers.is_empty() && block.block.body.is_empty() && !block.header_gap_used {
                block.header_gap_used = true;
            } else {
                // Refused once more of the block follows: at the end of the
                // text the missing END line is the better message.
                block.blank.get_or_insert(n);
            }
            continue;
        }
        if let Some(blank) = block.blank {
            return Err(format!(
                "line {blank}: blank line inside the -----BEGIN {label}----- block begun on line {begin}; \
                 remove it (blank lines are only allowed between blocks)"
            ));
        }
        if block.block.body.is_empty()
            && !block.header_gap_used
            && let Some((name, value)) = line.split_once(':')
        {
            block.block.headers.push(Header {
                line: n,
                name: name.trim(),
                value: value.trim(),
            });
            continue;
        }
        block.block.body.push((n, line));
    }

    if let Some(open) = open {
        let Block { label, begin_line, .. } = open.block;
        return Err(format!(
            "the -----BEGIN {label}----- block begun on line {begin_line} has no -----END {label}----- line \
             (the text looks cut off)"
        ));
    }
    if blocks.is_empty() {
        return Err(format!("no PEM block found; expected -----BEGIN {expected}-----"));
    }
    Ok(blocks)
}

struct Open<'a> {
    block: Block<'a>,
    header_gap_used: bool,
    /// First blank line seen inside the block, if any.
    blank: Option<usize>,
}

fn begin_label(line: &str) -> Option<&str> {
    line.strip_prefix("-----BEGIN ")?.strip_suffix("-----").map(str::trim)
}

fn end_label(line: &str) -> Option<&str> {
    line.strip_prefix("-----END ")?.strip_suffix("-----").map(str::trim)
}

/// Cuts a line to a length fit for an error message.
pub(crate) fn shorten(line: &str) -> String {
    const MAX: usize = 40;
    match line.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

impl Block<'_> {
    /// Decodes the base64 body. `secret` selects rustls-pki-types'
    /// constant-time decoder. Errors name the offending line.
    pub(crate) fn decode(&self, secret: bool) -> Result<Vec<u8>, String> {
        // Cheap structural checks first. They only look for bytes that
        // never occur in valid base64 of a key (whitespace) or at public
        // positions (padding), so they reveal nothing about a secret.
        let last = self.body.len().saturating_sub(1);
        let mut len = 0usize;
        for (i, (n, line)) in self.body.iter().enumerate() {
            if let Some(c) = line.chars().find(|c| !c.is_ascii()) {
                return Err(format!("line {n} is not valid base64 (unexpected character {c:?})"));
            }
            if line.bytes().any(|b| b.is_ascii_whitespace()) {
                return Err(format!("line {n} is not valid base64 (it contains a space or tab)"));
            }
            let data = line.trim_end_matches('=');
            if data.contains('=') || (i != last && data.len() != line.len()) {
                return Err(format!(
                    "line {n} is not valid base64 (padding '=' before the end of the block)"
                ));
            }
            if line.len() - data.len() > 2 {
                return Err(format!("line {n} is not valid base64 (too much '=' padding)"));
            }
            len += line.len();
        }
        let last_line = self.body.last().map_or(self.begin_line, |(n, _)| *n);
        if !len.is_multiple_of(4) {
            return Err(format!(
                "line {last_line} is not valid base64 (the block's base64 text is {len} characters, not a \
                 multiple of 4; is it cut off?)"
            ));
        }

        // Decoding proper, by rustls-pki-types, on a canonical reframing.
        let (label, kind) = match secret {
            true => ("PRIVATE KEY", SectionKind::PrivateKey),
            false => ("CERTIFICATE", SectionKind::Certificate),
        };
        let mut framed = String::with_capacity(len + self.body.len() + 64);
        framed.push_str("-----BEGIN ");
        framed.push_str(label);
        framed.push_str("-----\n");
        for (_, line) in &self.body {
            framed.push_str(line);
            framed.push('\n');
        }
        framed.push_str("-----END ");
        framed.push_str(label);
        framed.push_str("-----\n");
        match <(SectionKind, Vec<u8>)>::from_pem_slice(framed.as_bytes()) {
            Ok((got, der)) if got == kind && !der.is_empty() => Ok(der),
            _ => Err(self.locate_bad_base64()),
        }
    }

    /// Finds the first line that is not valid base64, for the message.
    /// Only runs once decoding has already failed.
    fn locate_bad_base64(&self) -> String {
        for (n, line) in &self.body {
            if let Some(c) = line
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '+' || *c == '/' || *c == '='))
            {
                return format!("line {n} is not valid base64 (unexpected character {c:?})");
            }
        }
        let last = self.body.last().map_or(self.begin_line, |(n, _)| *n);
        format!("line {last} is not valid base64 (bad padding at the end of the block)")
    }
}

/// Encodes `der` as a canonical PEM block: LF line endings, 64-character
/// lines. The encoder is branch-free on the data, as it also encodes keys.
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let mut b64 = Vec::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let sextets = [
            b[0] >> 2,
            ((b[0] & 0x03) << 4) | (b[1] >> 4),
            ((b[1] & 0x0f) << 2) | (b[2] >> 6),
            b[2] & 0x3f,
        ];
        let keep = chunk.len() + 1;
        for (i, s) in sextets.iter().enumerate() {
            b64.push(if i < keep { base64_char(*s) } else { b'=' });
        }
    }
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in b64.chunks(64) {
        // The alphabet is ASCII, so each byte is one char.
        out.extend(line.iter().map(|b| char::from(*b)));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Maps a 6-bit value to its base64 character without branching or
/// table lookups on the value (the same technique as rustls-pki-types).
fn base64_char(v: u8) -> u8 {
    let v = i16::from(v & 0x3f);
    // Each `(limit - v) >> 8` is all ones when v > limit, else zero.
    let mut c = v + i16::from(b'A');
    c += ((25 - v) >> 8) & 6; // 26..=51 → 'a'..='z'
    c -= ((51 - v) >> 8) & 75; // 52..=61 → '0'..='9'
    c -= ((61 - v) >> 8) & 15; // 62 → '+'
    c += ((62 - v) >> 8) & 3; // 63 → '/'
    c.to_le_bytes()[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    fn one(text: &str) -> Block<'_> {
        let mut blocks = split(text, "CERTIFICATE", true).expect("framing");
        assert_eq!(blocks.len(), 1);
        blocks.remove(0)
    }

    #[test]
    fn base64_alphabet_is_exact() {
        for v in 0..64u8 {
            assert_eq!(base64_char(v), ALPHABET[usize::from(v)], "value {v}");
        }
    }

    #[test]
    fn encode_round_trips_through_pki_types() {
        for len in 0..200usize {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
            let pem = encode("CERTIFICATE", &data);
            assert!(pem.lines().all(|l| l.len() <= 64), "{pem}");
            assert!(!pem.contains('\r'));
            if len == 0 {
                continue;
            }
            let der = rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).expect("decode");
            assert_eq!(der.as_ref(), &data[..]);
            // And through our own strict reader.
            assert_eq!(one(&pem).decode(false).expect("strict decode"), data);
            assert_eq!(one(&pem).decode(true).expect("strict decode"), data);
        }
    }

    #[test]
    fn encode_wraps_at_64() {
        let pem = encode("PRIVATE KEY", &[0u8; 100]);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN PRIVATE KEY-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines[2].len(), 64);
        assert_eq!(lines[3].len(), 136 - 128);
        assert_eq!(lines[4], "-----END PRIVATE KEY-----");
        assert!(pem.ends_with("-----END PRIVATE KEY-----\n"));
    }

    #[test]
    fn single_line_base64_is_accepted() {
        let b = one("-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----");
        assert_eq!(b.decode(false).expect("decode"), vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn crlf_indentation_and_bom_are_tolerated() {
        let b = one("\u{feff}  \r\n  -----BEGIN CERTIFICATE-----  \r\n\tAAEC\r\n-----END CERTIFICATE-----\r\n\r\n");
        assert_eq!(b.begin_line, 2);
        assert_eq!(b.decode(false).expect("decode"), vec![0, 1, 2]);
    }

    #[test]
    fn headers_and_their_blank_line() {
        let b =
            one("-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: X\n\nAAEC\n-----END CERTIFICATE-----");
        assert_eq!(b.headers.len(), 2);
        assert_eq!(b.headers[0].name, "Proc-Type");
        assert_eq!(b.headers[0].value, "4,ENCRYPTED");
        assert_eq!(b.headers[1].line, 3);
    }

    #[test]
    fn framing_errors_name_the_line() {
        let cases: &[(&str, &str)] = &[
            ("", "no PEM block found; expected -----BEGIN CERTIFICATE-----"),
            ("  \n\n", "no PEM block found"),
            (
                "hello\n-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----",
                "line 1: unexpected text outside",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\nx",
                "line 4: unexpected text",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAEC\n",
                "has no -----END CERTIFICATE----- line",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAEC\n-----END PRIVATE KEY-----",
                "line 3: -----END PRIVATE KEY----- does not match",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAEC\n\nAAEC\n-----END CERTIFICATE-----",
                "line 3: blank line inside",
            ),
            (
                "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----",
                "line 2: the -----BEGIN CERTIFICATE----- block begun on line 1 is empty",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAEC\n-----BEGIN CERTIFICATE-----",
                "line 3: a new BEGIN line",
            ),
            (
                "-----END CERTIFICATE-----",
                "line 1: -----END CERTIFICATE----- without a matching",
            ),
            ("-----BEGIN CERTIFICATE\nAAEC", "line 1: malformed BEGIN line"),
            ("----------\n", "line 1: unexpected text"),
            (
                "-----BEGIN CERTIFICATE-----\nAAEC\n\n-----END CERTIFICATE-----",
                "line 3: blank line inside",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAEC\n\n\n",
                "has no -----END CERTIFICATE----- line",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAEC\n\n-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----",
                "line 4: a new BEGIN line starts before",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nX-Note: 1\n\n\nAAEC\n-----END CERTIFICATE-----",
                "line 4: blank line inside",
            ),
            (
                "-----BEGIN -----\nAAEC\n-----END -----",
                "line 1: the BEGIN line has no label",
            ),
            (
                "-----BEGIN CERTIFICATE----- AAEC -----END CERTIFICATE-----",
                "line 1: more text follows -----BEGIN on the same line",
            ),
            (
                "-----BEGIN CERTIFICATE-----\\nAAEC\\n-----END CERTIFICATE-----",
                "written as \\n",
            ),
        ];
        for (text, want) in cases {
            let err = split(text, "CERTIFICATE", true)
                .err()
                .unwrap_or_else(|| panic!("accepted {text:?}"));
            assert!(err.contains(want), "{text:?}: got {err:?}, want {want:?}");
        }
    }

    #[test]
    fn stray_text_is_quoted_only_when_allowed() {
        let text = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n";
        let quoted = split(text, "CERTIFICATE", true).err().expect("refused");
        assert!(quoted.contains("MIIEvQ"), "{quoted}");
        let hidden = split(text, "PRIVATE KEY", false).err().expect("refused");
        assert!(!hidden.contains("MIIEvQ"), "{hidden}");
    }

    #[test]
    fn base64_errors_name_the_line() {
        let cases: &[(&str, &str)] = &[
            ("AAEC\nAA!C\n", "line 3 is not valid base64 (unexpected character '!')"),
            ("AA EC\n", "line 2 is not valid base64 (it contains a space or tab)"),
            ("AA==\nAAEC\n", "line 2 is not valid base64 (padding"),
            ("AA=C\n", "line 2 is not valid base64 (padding"),
            (
                "AAECA\n",
                "line 2 is not valid base64 (the block's base64 text is 5 characters",
            ),
            ("A===\n", "line 2 is not valid base64 (too much"),
            (
                "AAEC\nA\u{e9}CD\n",
                "line 3 is not valid base64 (unexpected character 'é')",
            ),
        ];
        for (body, want) in cases {
            let text = format!("-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n");
            for secret in [false, true] {
                let err = one(&text)
                    .decode(secret)
                    .err()
                    .unwrap_or_else(|| panic!("accepted {body:?}"));
                assert!(err.contains(want), "{body:?}: got {err:?}, want {want:?}");
            }
        }
    }
}
