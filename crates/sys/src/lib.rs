//! System calls Weir needs that no maintained safe wrapper offers (rustix,
//! socket2 and nix have no `TCP_INFO`). Each is a few lines, takes a
//! borrowed descriptor so it cannot outlive its socket, and is the only
//! `unsafe` in the workspace.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Segments a TCP socket has received and sent, from the kernel's
/// `TCP_INFO` (`tcpi_segs_in`, `tcpi_segs_out`: Linux 4.2+). They count
/// every segment, pure ACKs included, as the kernel does, and wrap at 2^32.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Segments {
    pub r#in: u32,
    pub out: u32,
}

/// `getsockopt(fd, SOL_TCP, TCP_INFO)`, the segment counters of it.
#[allow(unsafe_code)]
pub fn tcp_segments(fd: BorrowedFd<'_>) -> io::Result<Segments> {
    let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `fd` is a live descriptor for the duration of the borrow;
    // `info` points to `len` writable bytes, and the kernel writes at most
    // `len` bytes (fewer on older kernels, which leaves the rest zeroed).
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: zero-initialised above and partly overwritten by the kernel:
    // every bit pattern is a valid `tcp_info` (plain integers).
    let info = unsafe { info.assume_init() };
    Ok(Segments {
        r#in: info.tcpi_segs_in,
        out: info.tcpi_segs_out,
    })
}

/// `setsockopt(fd, SOL_TCP, TCP_DEFER_ACCEPT, secs)` on a listening socket:
/// the kernel hands over a new connection only once its first data has
/// arrived (or after about `secs`), so a client-first protocol's accept and
/// first read need one wake-up instead of two. `0` turns it off.
#[allow(unsafe_code)]
pub fn set_tcp_defer_accept(fd: BorrowedFd<'_>, secs: u32) -> io::Result<()> {
    let v = libc::c_int::try_from(secs).unwrap_or(libc::c_int::MAX);
    // SAFETY: `fd` is a live descriptor for the duration of the borrow; the
    // option value points to one readable `c_int` and its length says so.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&raw const v).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The `TCP_DEFER_ACCEPT` a listening socket has (the kernel rounds `secs`
/// to its SYN-ACK retransmission schedule; 0 when off).
#[allow(unsafe_code)]
pub fn tcp_defer_accept(fd: BorrowedFd<'_>) -> io::Result<u32> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` is live for the borrow; `v` is `len` writable bytes.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&raw mut v).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u32::try_from(v).unwrap_or(0))
}

/// Milliseconds on `CLOCK_MONOTONIC_COARSE`: the value the timer tick
/// updates (a few ms of resolution), read by glibc from the vDSO without
/// reading the TSC. For ages and periods of seconds on per-request paths.
/// (Not rustix's: its own vDSO parser crashes under valgrind, which the
/// instruction-count benchmarks run Weir under.)
#[allow(unsafe_code)]
pub fn coarse_monotonic_ms() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable `timespec` for the call; the clock
    // id is a constant the kernel knows (Linux 2.6.32+). On failure (which
    // it cannot for this clock) `ts` stays zero.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    (ts.tv_sec as u64).saturating_mul(1000) + ts.tv_nsec as u64 / 1_000_000
}

#[cfg(test)]
mod tests {

    #![allow(clippy::unwrap_used)]
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn segments_grow_with_traffic() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        let before = tcp_segments(s.as_fd()).unwrap();
        for _ in 0..10 {
            c.write_all(&[7u8; 100]).unwrap();
            let mut b = [0u8; 100];
            s.read_exact(&mut b).unwrap();
            s.write_all(&b).unwrap();
            c.read_exact(&mut b).unwrap();
        }
        let after = tcp_segments(s.as_fd()).unwrap();
        assert!(after.r#in >= before.r#in + 10, "{before:?} -> {after:?}");
        assert!(after.out >= before.out + 10, "{before:?} -> {after:?}");
        // A UDP socket has no TCP_INFO: an error, not garbage.
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(tcp_segments(u.as_fd()).is_err());
    }

    #[test]
    fn defer_accept_on_and_off() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert_eq!(tcp_defer_accept(l.as_fd()).unwrap(), 0);
        set_tcp_defer_accept(l.as_fd(), 1).unwrap();
        assert!(tcp_defer_accept(l.as_fd()).unwrap() >= 1);
        set_tcp_defer_accept(l.as_fd(), 0).unwrap();
        assert_eq!(tcp_defer_accept(l.as_fd()).unwrap(), 0);
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(set_tcp_defer_accept(u.as_fd(), 1).is_err());
    }

    /// Advances with the monotonic clock, to within its coarseness.
    #[test]
    fn coarse_ms_follows_the_monotonic_clock() {
        let a = super::coarse_monotonic_ms();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let b = super::coarse_monotonic_ms();
        assert!((40..10_000).contains(&(b - a)), "{a} -> {b}");
    }
}
