//! The few socket calls the client makes that std does not offer, the same
//! on every platform: reads and sends that never block, the OS handle of a
//! socket for event loops, and which errors mean "the server is not there".
//!
//! Two ways of waiting exist (see `Wait` in the client's `waiting` module):
//! on Unix a waiting caller may sleep in recv(2) itself, on a socket that
//! blocks with a receive timeout, while every other read says
//! `MSG_DONTWAIT`. Windows has no per-call "don't wait" flag, so there the
//! socket stays non-blocking and callers sleep in the poller instead. The
//! `portable-driver` feature forces the second way on Unix too, so that
//! Linux builds and tests the path Windows takes.

use std::io;
use std::mem::MaybeUninit;
use std::net::{SocketAddr, UdpSocket};

use socket2::SockRef;

/// A socket as the operating system names it: a file descriptor (`int`)
/// on Unix, a `SOCKET` on Windows. What event loops (poll, epoll, kqueue,
/// select, libuv, IOCP) watch.
#[cfg(unix)]
pub type RawSocket = std::os::fd::RawFd;
/// A socket as the operating system names it: a file descriptor (`int`)
/// on Unix, a `SOCKET` on Windows. What event loops (poll, epoll, kqueue,
/// select, libuv, IOCP) watch.
#[cfg(windows)]
pub type RawSocket = std::os::windows::io::RawSocket;

/// The OS handle of `socket`.
pub(crate) fn raw(socket: &UdpSocket) -> RawSocket {
    #[cfg(unix)]
    {
        std::os::fd::AsRawFd::as_raw_fd(socket)
    }
    #[cfg(windows)]
    {
        std::os::windows::io::AsRawSocket::as_raw_socket(socket)
    }
}

/// Whether a waiting caller may sleep in recv(2) on the client's socket
/// (see the module documentation).
pub(crate) const BLOCKING_READS: bool = cfg!(all(unix, not(feature = "portable-driver")));

/// The flag that makes one read or send return at once.
#[cfg(unix)]
const DONT_WAIT: libc::c_int = libc::MSG_DONTWAIT;
/// Windows: the socket itself is non-blocking (`BLOCKING_READS` is off).
#[cfg(windows)]
const DONT_WAIT: std::ffi::c_int = 0;

/// Reads one datagram without waiting: its length and where it came from.
pub(crate) fn recv_now(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    recv_with(socket, buf, DONT_WAIT)
}

/// Reads one datagram, waiting as the socket is set up to (for at most its
/// receive timeout when it blocks): its length and where it came from.
pub(crate) fn recv_waiting(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    recv_with(socket, buf, 0)
}

/// Every read says where the datagram came from, for the engine to check
/// (RFC 6887 section 8.3). A connected socket gets datagrams only from the
/// server anyway, but the socket is not connected while a move to another
/// source address could not connect it again (see `source_addr::reconnect`):
/// then anyone's datagrams arrive, and only this check keeps them out.
fn recv_with(socket: &UdpSocket, buf: &mut [u8], flags: i32) -> io::Result<(usize, SocketAddr)> {
    // SAFETY: an initialised byte buffer is a valid buffer of possibly
    // uninitialised bytes; recv only writes into it.
    let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
    loop {
        match SockRef::from(socket).recv_from_with_flags(uninit, flags as _) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // Not an IP address (cannot happen on a UDP socket): an address
            // that is nobody's server, so the datagram is dropped.
            r => return r.map(|(n, from)| (n, from.as_socket().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))))),
        }
    }
}

/// Sends one datagram on the connected socket without waiting.
pub(crate) fn send_now(socket: &UdpSocket, data: &[u8]) -> io::Result<usize> {
    SockRef::from(socket).send_with_flags(data, DONT_WAIT as _)
}

/// Whether a read or send error says the server's port is closed: ICMP
/// port unreachable arrives as ECONNREFUSED on a connected Unix socket, as
/// WSAECONNRESET on Windows (WSAECONNREFUSED under wine, which passes the
/// host's error through, and mostly to the poller: see
/// [`poll_reports_error`]).
pub(crate) fn is_unreachable(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset)
}

/// Whether a poller's event on the client's socket reports an error
/// condition (EPOLLERR; on Windows AFD's CONNECT_FAIL). A connected UDP
/// socket has one kind: an ICMP error from the server's address. A read
/// normally returns it as well (see [`is_unreachable`]), but wine 8 hands
/// an ICMP port unreachable only to the poll that is waiting when it
/// arrives (CONNECT_FAIL, with STATUS_CONNECTION_REFUSED) and keeps it from
/// later reads, which find the socket empty; its SO_ERROR then says
/// WSAECONNREFUSED for good, even after datagrams arrive again, so it
/// cannot be asked instead. Whoever sleeps in a poller passes this on
/// (`Endpoint::socket_error_reported`).
pub(crate) fn poll_reports_error(event: &polling::Event) -> bool {
    event.is_err() == Some(true)
}

/// Makes the socket block in reads (with the receive timeout it has) again,
/// where waiting callers sleep in recv(2); elsewhere it stays non-blocking.
pub(crate) fn restore_blocking(socket: &UdpSocket) -> io::Result<()> {
    if BLOCKING_READS {
        socket.set_nonblocking(false)
    } else {
        Ok(())
    }
}
