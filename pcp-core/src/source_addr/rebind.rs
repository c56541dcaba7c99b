//! Moving a connected UDP socket to another source address without
//! replacing it: the socket is shared (waiting callers sleep in its
//! recv(2), event loops watch its descriptor), so it must stay the same
//! descriptor.
//!
//! Dissolving the association (connect(2) to an `AF_UNSPEC` address)
//! forgets the source the kernel picked at connect time, and the port too
//! when it was the kernel's (Linux: `__udp_disconnect`); connecting again
//! then picks the source for the route of now. A socket given an explicit
//! address can be bound anew after that on Linux; elsewhere the bind may
//! be refused, and the socket keeps the source it gets at connect. The
//! caller reads the result with `local_addr`, so the Client IP field always
//! names the address the socket really sends from.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use socket2::SockRef;

/// Reconnects `socket` to `server`, from `bind` if given (else from the
/// route's choice). Returns the socket's new local address.
pub(crate) fn reconnect(socket: &UdpSocket, server: SocketAddr, bind: Option<IpAddr>) -> io::Result<SocketAddr> {
    // Best effort: BSD and macOS dissolve the association by themselves
    // when a connected datagram socket connects again, and may refuse the
    // AF_UNSPEC address after doing so.
    let _ = disconnect(socket);
    // Without an address to bind, bind the unspecified one: a socket once
    // bound to an address keeps it through a disconnect, and must let the
    // route choose again. Refused where a socket cannot be bound again
    // (see above).
    let ip = bind.unwrap_or(match server {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    });
    let _ = SockRef::from(socket).bind(&SocketAddr::new(ip, 0).into());
    socket.connect(server)?;
    socket.local_addr()
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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// Loopback has all of 127/8: a socket moves from 127.0.0.1 to
    /// 127.0.0.2 and back, staying one descriptor.
    #[test]
    fn a_connected_socket_moves_to_another_source() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.connect(server.local_addr().unwrap()).unwrap();
        let moved = reconnect(&s, server.local_addr().unwrap(), Some("127.0.0.2".parse().unwrap())).unwrap();
        assert_eq!(moved.ip().to_string(), "127.0.0.2");
        s.send(b"x").unwrap();
        let mut buf = [0; 4];
        let (_, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(from, moved);
        // From an explicit address back to the route's choice.
        let back = reconnect(&s, server.local_addr().unwrap(), None).unwrap();
        assert_eq!(back.ip().to_string(), "127.0.0.1");
        // Never bound: the route's choice.
        let s2 = UdpSocket::bind("0.0.0.0:0").unwrap();
        s2.connect(server.local_addr().unwrap()).unwrap();
        let back = reconnect(&s2, server.local_addr().unwrap(), None).unwrap();
        assert_eq!(back.ip().to_string(), "127.0.0.1");
    }
}
