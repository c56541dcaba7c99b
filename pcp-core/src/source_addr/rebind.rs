//! Moving a connected UDP socket to another source address without
//! replacing it: the socket is shared (waiting callers sleep in its
//! recv(2), event loops watch its descriptor, and the C API promises that
//! descriptor for the endpoint's life), so it must stay the same socket.
//!
//! Dissolving the association (connect(2) to an `AF_UNSPEC` address)
//! forgets the source the kernel picked at connect time, and the port too
//! when it was the kernel's (Linux: `__udp_disconnect`); connecting again
//! then picks the source for the route of now. Linux also lets such a
//! socket be bound anew, to an explicit address. Windows (WSAEINVAL),
//! macOS and the BSDs (EINVAL) refuse to bind a socket that is bound, and
//! it always is: there the socket can follow the route (when it was bound
//! to the unspecified address), but not move to an explicit address, and
//! [`reconnect`] says so rather than pretending.
//!
//! Between the disconnect and the connect the socket is connected to
//! nobody, and takes datagrams from anyone. A connect that fails there
//! (the route went away) is followed by a connect back from the old
//! address; only if that fails too does the socket stay unconnected, and
//! the endpoint, which checks the source of every datagram it reads
//! (`endpoint::socket`), connects it again at its next check.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use socket2::SockRef;

/// Whether a bound UDP socket can be bound to another address after a
/// disconnect (see the module documentation).
pub(crate) const CAN_REBIND: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// What became of a move (see [`reconnect`]).
#[derive(Debug)]
pub(crate) enum Reconnect {
    /// Connected to the server from the wanted source: the socket's address now.
    Moved(SocketAddr),
    /// Not moved, for `why`: connected to the server from `local` (the old
    /// address, with perhaps a new port), as the socket was before, or
    /// again after a connect from the new source failed.
    Kept { local: SocketAddr, why: io::Error },
    /// Connected to nobody: neither the new source nor the old one could
    /// connect (no route now).
    Unconnected(io::Error),
}

/// Reconnects `socket` to `server`, from `bind` if given (else from the
/// route's choice); never leaves it unconnected while a connect from the
/// old address works.
pub(crate) fn reconnect(socket: &UdpSocket, server: SocketAddr, bind: Option<IpAddr>) -> Reconnect {
    let old = match socket.local_addr() {
        Ok(old) => old,
        Err(e) => return Reconnect::Unconnected(e),
    };
    // First on a throwaway socket: a source the host lacks (EADDRNOTAVAIL)
    // or one with no route to the server now leaves the real socket alone.
    let wanted = match probe(server, bind) {
        Ok(ip) => ip,
        Err(why) => return Reconnect::Kept { local: old, why },
    };
    // The address asked for, not the probe's answer: wine 8 connects a
    // socket bound to 127.0.0.2 from 127.0.0.1.
    if let Some(ip) = bind.filter(|ip| !CAN_REBIND && ip.to_canonical() != old.ip().to_canonical()) {
        let why = io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "cannot move the client's socket from {} to {}: this platform does not let a bound UDP \
                 socket be bound to another address, and the socket must stay the one event loops watch \
                 (make a new client with that local address instead)",
                old.ip(),
                ip
            ),
        );
        return Reconnect::Kept { local: old, why };
    }
    // Best effort: BSD and macOS dissolve the association by themselves
    // when a connected datagram socket connects again, and may refuse the
    // AF_UNSPEC address after doing so.
    let _ = disconnect(socket);
    // Without an address to bind, bind the unspecified one: a socket once
    // bound to an address keeps it through a disconnect, and must let the
    // route choose again. Refused where a bound socket cannot be bound
    // again: the local address read below tells what came of it.
    let _ = SockRef::from(socket).bind(&SocketAddr::new(bind.unwrap_or(unspecified(server)), 0).into());
    match connect(socket, server).and_then(|()| socket.local_addr()) {
        Ok(local) if local.ip().to_canonical() == wanted.to_canonical() => Reconnect::Moved(local),
        Ok(local) => Reconnect::Kept {
            local,
            why: io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "the client's socket could not move to {wanted} and sends from {} still: this platform \
                     does not let a bound UDP socket be bound again",
                    local.ip()
                ),
            ),
        },
        Err(why) => {
            // Back to the old address: connected to the server, the socket
            // takes datagrams from it only.
            let _ = disconnect(socket);
            let _ = SockRef::from(socket).bind(&SocketAddr::new(old.ip(), 0).into());
            match connect(socket, server).and_then(|()| socket.local_addr()) {
                Ok(local) => Reconnect::Kept { local, why },
                Err(_) => Reconnect::Unconnected(why),
            }
        }
    }
}

/// The source a socket bound to `bind` (else the unspecified address) gets
/// when it connects to `server`, learnt on a throwaway socket.
fn probe(server: SocketAddr, bind: Option<IpAddr>) -> io::Result<IpAddr> {
    let probe = UdpSocket::bind(SocketAddr::new(bind.unwrap_or(unspecified(server)), 0))?;
    probe.connect(server)?;
    Ok(probe.local_addr()?.ip())
}

fn unspecified(server: SocketAddr) -> IpAddr {
    match server {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// connect(2) of the moved socket; tests can make it fail (see
/// [`fail_next_connects`]), as when the route goes away during a move.
fn connect(socket: &UdpSocket, server: SocketAddr) -> io::Result<()> {
    #[cfg(test)]
    if FAILING_CONNECTS.with(|n| n.replace(n.get().saturating_sub(1))) > 0 {
        return Err(io::Error::new(io::ErrorKind::NetworkUnreachable, "no route to the server (test hook)"));
    }
    socket.connect(server)
}

#[cfg(test)]
thread_local! {
    static FAILING_CONNECTS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Test hook: the next `n` connects of a moved socket on this thread fail
/// (the throwaway probe's do not: the route goes away after it).
#[cfg(test)]
pub(crate) fn fail_next_connects(n: u32) {
    FAILING_CONNECTS.with(|c| c.set(n));
}

#[cfg(unix)]
fn disconnect(socket: &UdpSocket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a zeroed sockaddr is a valid value; connect(2) reads
    // `size_of::<sockaddr>()` bytes of it.
    let mut sa: libc::sockaddr = unsafe { std::mem::zeroed() };
    sa.sa_family = libc::AF_UNSPEC as libc::sa_family_t;
    let len = std::mem::size_of::<libc::sockaddr>() as libc::socklen_t;
    // SAFETY: a valid descriptor and a valid address of `len` bytes.
    if unsafe { libc::connect(socket.as_raw_fd(), &sa, len) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Windows: connecting a datagram socket to the all-zero address of its
/// family dissolves the association (connect() documentation).
#[cfg(windows)]
fn disconnect(socket: &UdpSocket) -> io::Result<()> {
    let any = match socket.local_addr()? {
        SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    };
    SockRef::from(socket).connect(&any.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (UdpSocket, UdpSocket, SocketAddr) {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        let to = server.local_addr().unwrap();
        s.connect(to).unwrap();
        (server, s, to)
    }

    /// Loopback has all of 127/8: a socket moves from 127.0.0.1 to
    /// 127.0.0.2 and back, staying one descriptor.
    #[test]
    #[cfg(target_os = "linux")]
    fn a_connected_socket_moves_to_another_source() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.connect(server.local_addr().unwrap()).unwrap();
        let Reconnect::Moved(moved) = reconnect(&s, server.local_addr().unwrap(), Some("127.0.0.2".parse().unwrap()))
        else {
            panic!("not moved")
        };
        assert_eq!(moved.ip().to_string(), "127.0.0.2");
        s.send(b"x").unwrap();
        let mut buf = [0; 4];
        let (_, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(from, moved);
        // From an explicit address back to the route's choice.
        let Reconnect::Moved(back) = reconnect(&s, server.local_addr().unwrap(), None) else { panic!("not moved") };
        assert_eq!(back.ip().to_string(), "127.0.0.1");
        // Never bound: the route's choice.
        let (server, s2, to) = pair();
        let Reconnect::Moved(back) = reconnect(&s2, to, None) else { panic!("not moved") };
        assert_eq!(back.ip().to_string(), "127.0.0.1");
        drop(server);
    }

    /// Where a bound socket cannot be bound again, a move to another
    /// explicit address is refused before the socket is touched.
    #[test]
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn an_explicit_move_is_refused_where_the_socket_cannot_be_bound_again() {
        let (_server, s, to) = pair();
        let before = s.local_addr().unwrap();
        let Reconnect::Kept { local, why } = reconnect(&s, to, Some("127.0.0.2".parse().unwrap())) else {
            panic!("moved")
        };
        assert_eq!((local, why.kind()), (before, io::ErrorKind::Unsupported));
        assert_eq!(s.peer_addr().unwrap(), to);
        assert_eq!(s.local_addr().unwrap(), before);
    }

    /// Why [`CAN_REBIND`] is off on Windows: after the disconnect, a bind
    /// to another address is refused (WSAEINVAL: the socket is bound).
    #[test]
    #[cfg(windows)]
    fn a_disconnected_socket_cannot_be_bound_again_here() {
        let (_server, s, _) = pair();
        disconnect(&s).unwrap();
        let e = SockRef::from(&s).bind(&SocketAddr::from(([127, 0, 0, 2], 0)).into()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(10022), "{e}"); // WSAEINVAL
    }

    /// A connect that fails after the disconnect (the route went away) is
    /// followed by one from the old address: the socket is connected to
    /// the server again, and says why it did not move.
    #[test]
    fn a_failed_connect_goes_back_to_the_old_address() {
        let (_server, s, to) = pair();
        fail_next_connects(1);
        let Reconnect::Kept { local, why } = reconnect(&s, to, None) else { panic!("not kept") };
        assert_eq!(why.kind(), io::ErrorKind::NetworkUnreachable);
        assert_eq!(s.peer_addr().unwrap(), to, "connected to the server again");
        assert_eq!(local.ip().to_string(), "127.0.0.1");
        assert_eq!(s.local_addr().unwrap(), local);
    }

    /// Neither way connects: said so, for the endpoint to connect it later.
    #[test]
    fn a_socket_that_connects_neither_way_is_reported_unconnected() {
        let (_server, s, to) = pair();
        fail_next_connects(2);
        let Reconnect::Unconnected(why) = reconnect(&s, to, None) else { panic!("connected") };
        assert_eq!(why.kind(), io::ErrorKind::NetworkUnreachable);
        assert!(s.peer_addr().is_err(), "not connected");
        fail_next_connects(0);
        assert!(matches!(reconnect(&s, to, None), Reconnect::Moved(_)));
        assert_eq!(s.peer_addr().unwrap(), to);
    }
}
