//! The floor of the layer-4 benchmark (`bench/l4.sh`): the least a user-space
//! TCP proxy can do per connection, to show how much of a proxy's CPU on the
//! new-connections test is the kernel's and so out of any proxy's reach.
//!
//! One thread, one epoll (mio, edge-triggered), no timers, no counters, no
//! configuration, no health: accept, connect to the one backend, relay both
//! ways with half-close, close. A read shorter than the buffer is taken as
//! "drained" (the next byte brings a new edge), so a 1-byte echo costs
//! accept4, socket, connect, 2 × epoll_ctl, the reads and writes, 2 ×
//! shutdown and 2 × close, and nothing else: no `epoll_ctl DEL` (close does
//! it), no `setsockopt`.
//!
//! `l4-floor --listen 127.76.0.1:9001 --to 127.71.0.10:7000`
//! Runs until killed (the script stops it by PID). Not a product: a broken
//! connection is dropped, a full table refuses new ones.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};

use anyhow::Context;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(usize::MAX);
const BUF: usize = 16 * 1024;

fn arg(name: &str) -> anyhow::Result<SocketAddr> {
    let args: Vec<String> = std::env::args().collect();
    let v = args
        .iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .with_context(|| format!("{name} ADDR:PORT is required"))?;
    v.parse().with_context(|| format!("{name}: bad address {v:?}"))
}

/// One direction: bytes read from one socket and not yet written to the other.
struct Dir {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    eof: bool,
    shut: bool,
}

impl Dir {
    fn new() -> Self {
        Dir {
            buf: vec![0; BUF].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            shut: false,
        }
    }

    /// Moves what it can from `src` to `dst`; `Ok(())` when it must wait
    /// for an edge. Stops after a short read (the socket is drained).
    fn pump(&mut self, src: &mut TcpStream, dst: &mut TcpStream) -> io::Result<()> {
        loop {
            while self.start < self.end {
                match dst.write(self.buf.get(self.start..self.end).unwrap_or_default()) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => self.start += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
            let short = self.end < self.buf.len();
            let drained = self.end > 0 && short;
            self.start = 0;
            self.end = 0;
            if self.eof {
                if !self.shut {
                    self.shut = true;
                    dst.shutdown(Shutdown::Write)?;
                }
                return Ok(());
            }
            if drained {
                return Ok(());
            }
            match src.read(&mut self.buf) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end = n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
}

struct Pair {
    client: TcpStream,
    backend: TcpStream,
    up: Dir,
    down: Dir,
}

impl Pair {
    /// Both directions; `Ok(true)` once both have ended.
    fn pump(&mut self) -> io::Result<bool> {
        self.up.pump(&mut self.client, &mut self.backend)?;
        self.down.pump(&mut self.backend, &mut self.client)?;
        Ok(self.up.shut && self.down.shut)
    }
}

fn main() -> anyhow::Result<()> {
    let listen = arg("--listen")?;
    let to = arg("--to")?;
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(listen).with_context(|| format!("bind {listen}"))?;
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut pairs: Vec<Option<Pair>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(1024);
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e.into());
        }
        for ev in events.iter() {
            if ev.token() == LISTENER {
                loop {
                    let client = match listener.accept() {
                        Ok((s, _)) => s,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            eprintln!("l4-floor: accept: {e}");
                            break;
                        }
                    };
                    let Ok(backend) = TcpStream::connect(to) else {
                        continue;
                    };
                    let slot = free.pop().unwrap_or_else(|| {
                        pairs.push(None);
                        pairs.len() - 1
                    });
                    let mut pair = Pair {
                        client,
                        backend,
                        up: Dir::new(),
                        down: Dir::new(),
                    };
                    let both = Interest::READABLE | Interest::WRITABLE;
                    let registry = poll.registry();
                    if registry
                        .register(&mut pair.client, Token(slot * 2), both)
                        .and_then(|()| registry.register(&mut pair.backend, Token(slot * 2 + 1), both))
                        .is_err()
                    {
                        free.push(slot);
                        continue;
                    }
                    if let Some(s) = pairs.get_mut(slot) {
                        *s = Some(pair);
                    }
                }
                continue;
            }
            let slot = ev.token().0 / 2;
            let Some(entry) = pairs.get_mut(slot) else {
                continue;
            };
            let done = match entry.as_mut() {
                Some(pair) => !matches!(pair.pump(), Ok(false)),
                None => false,
            };
            if done {
                // Dropping closes both sockets, which also takes them out of
                // the epoll set.
                *entry = None;
                free.push(slot);
            }
        }
    }
}
