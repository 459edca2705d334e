//! A strict chunked-body tracker (RFC 9112 7.1).
//!
//! Weir relays chunked bodies byte for byte; this state machine runs over
//! the bytes as they pass to know where the body ends (so the next message
//! on the connection is framed right) and to refuse anything a backend could
//! read differently: non-hex or oversized sizes, whitespace, chunk extensions
//! with anything but token characters, a missing CRLF after the data, bare LF.
//! It can also hand out the data ranges, for HTTP/2 clients that need the
//! body decoded.

use std::ops::Range;

/// Largest trailer section accepted.
const MAX_TRAILERS: usize = 16 * 1024;
/// Largest chunk-extension accepted per chunk.
const MAX_EXT: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the hex size.
    Size,
    /// In a chunk extension.
    Ext,
    /// Expecting the LF after the size line's CR.
    SizeLf,
    /// Inside chunk data.
    Data,
    /// Expecting CR after chunk data.
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final CRLF).
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    TrailerLf,
    /// Expecting the LF of the final CRLF.
    EndLf,
    Done,
}

/// Why a chunked body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkError(pub &'static str);

#[derive(Debug, Clone)]
pub struct Chunked {
    state: State,
    size: u64,
    digits: u8,
    ext: usize,
    trailers: usize,
    /// Size lines read so far.
    chunks: u64,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked {
            state: State::Size,
            size: 0,
            digits: 0,
            ext: 0,
            trailers: 0,
            chunks: 0,
        }
    }
}

fn tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl Chunked {
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// Whether the first size line has been read (and found valid).
    pub fn started(&self) -> bool {
        self.chunks > 0
    }

    /// Consumes `input`. Returns how many bytes belong to the body (all of
    /// `input` unless the body ends inside it). `on_data` gets the ranges of
    /// chunk data within `input`.
    pub fn feed(&mut self, input: &[u8], mut on_data: impl FnMut(Range<usize>)) -> Result<usize, ChunkError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Done => return Ok(i),
                State::Data => {
                    let take = (input.len() - i).min(usize::try_from(self.size).unwrap_or(usize::MAX));
                    on_data(i..i + take);
                    self.size -= take as u64;
                    i += take;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                    continue;
                }
                State::Size => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        // 15 hex digits: sizes up to 2^60, far beyond any body.
                        if self.digits == 15 {
                            return Err(ChunkError("chunk size too large"));
                        }
                        let d = (b as char).to_digit(16).unwrap_or(0);
                        self.size = self.size << 4 | u64::from(d);
                        self.digits += 1;
                    }
                    b';' if self.digits > 0 => {
                        self.state = State::Ext;
                        self.ext = 0;
                    }
                    b'\r' if self.digits > 0 => self.state = State::SizeLf,
                    _ => return Err(ChunkError("invalid chunk size")),
                },
                State::Ext => match b {
                    b'\r' => self.state = State::SizeLf,
                    b'=' | b';' => {}
                    b if tchar(b) => {
                        self.ext += 1;
                        if self.ext > MAX_EXT {
                            return Err(ChunkError("chunk extension too long"));
                        }
                    }
                    _ => return Err(ChunkError("invalid chunk extension")),
                },
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(ChunkError("chunk size line without CRLF"));
                    }
                    self.digits = 0;
                    self.chunks += 1;
                    self.state = if self.size == 0 {
                        State::TrailerStart
                    } else {
                        State::Data
                    };
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(ChunkError("chunk data longer than its size"));
                    }
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(ChunkError("chunk data without CRLF"));
                    }
                    self.state = State::Size;
                }
                State::TrailerStart => {
                    if b == b'\r' {
                        self.state = State::EndLf;
                    } else if tchar(b) {
                        self.state = State::Trailer;
                        self.trailers += 1;
                    } else {
                        return Err(ChunkError("invalid trailer"));
                    }
                }
                State::Trailer => {
                    self.trailers += 1;
                    if self.trailers > MAX_TRAILERS {
                        return Err(ChunkError("trailers too large"));
                    }
                    match b {
                        b'\r' => self.state = State::TrailerLf,
                        b'\n' | 0 => return Err(ChunkError("invalid trailer")),
                        _ => {}
                    }
                }
                State::TrailerLf => {
                    if b != b'\n' {
                        return Err(ChunkError("trailer without CRLF"));
                    }
                    self.state = State::TrailerStart;
                }
                State::EndLf => {
                    if b != b'\n' {
                        return Err(ChunkError("chunked body without final CRLF"));
                    }
                    self.state = State::Done;
                    return Ok(i + 1);
                }
            }
            i += 1;
        }
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(body: &[u8], step: usize) -> Result<(usize, Vec<u8>), ChunkError> {
        let mut c = Chunked::default();
        let mut data = Vec::new();
        let mut used = 0;
        for part in body.chunks(step) {
            let n = c.feed(part, |r| data.extend_from_slice(&part[r]))?;
            used += n;
            if c.done() {
                break;
            }
        }
        Ok((used, data))
    }

    #[test]
    fn decodes_in_any_split() {
        let body = b"5\r\nhello\r\n7;ext=1;x\r\n, world\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for step in 1..body.len() {
            let (used, data) = run(body, step).unwrap();
            assert_eq!(used, body.len() - 4, "step {step}");
            assert_eq!(data, b"hello, world");
        }
    }

    #[test]
    fn refuses() {
        let bad: [&[u8]; 11] = [
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"5 \r\nhello\r\n0\r\n\r\n",
            b"-1\r\n",
            b"1111111111111111111\r\n",
            b"5;a\"b\r\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloX\r\n0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"\r\n",
            b"0\r\nX: a\nb\r\n\r\n",
        ];
        for b in bad {
            assert!(run(b, 64).is_err(), "accepted {:?}", String::from_utf8_lossy(b));
        }
    }
}
