//! The endpoint's main socket through a move that fails half-way (the
//! route goes away between the disconnect and the connect, made so by a
//! test hook): it must not stay open to anyone's datagrams.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::{ClientConfig, Endpoint};
use crate::source_addr::fail_next_connects;
use crate::wire::{Body, Response, ResultCode};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A stand-in server (a bare socket, so that the test sends as it) and an
/// endpoint towards it, from `local` if given.
fn endpoint(local: Option<IpAddr>) -> (UdpSocket, Endpoint) {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut config = ClientConfig::new(server.local_addr().unwrap());
    config.listen_announce = false;
    config.local_addr = local;
    (server, Endpoint::new(&config).unwrap())
}

/// Sends an unsolicited ANNOUNCE with `epoch` from `from` to the
/// endpoint's socket, and reads until the endpoint has read it (bounded).
fn announce(ep: &mut Endpoint, from: &UdpSocket, epoch: u32) {
    let to = SocketAddr::new(ip("127.0.0.1"), ep.local_addr().unwrap().port());
    let before = ep.engine().stats().received;
    from.send_to(&Response::new(ResultCode::Success, 0, epoch, Body::Announce).encode(), to).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while ep.engine().stats().received == before {
        assert!(Instant::now() < deadline, "the endpoint never read the datagram");
        ep.receive(Instant::now());
        std::thread::yield_now();
    }
}

/// The connect from the new source fails: the socket goes back to the
/// server from the old address, the call says why, and the engine names
/// the address the socket has.
#[test]
fn a_failed_move_leaves_the_socket_connected_to_the_server() {
    let (server, mut ep) = endpoint(None);
    let t0 = Instant::now();
    fail_next_connects(1);
    let e = ep.set_local_addr(t0, None).unwrap_err();
    assert_eq!(e.code(), "IO", "{e}");
    assert_eq!(ep.socket.peer_addr().unwrap(), server.local_addr().unwrap(), "connected to the server");
    assert!(ep.connected);
    assert_eq!(ep.engine().client_addr(), ip("127.0.0.1"));
    assert_eq!(ep.engine().client_addr(), ep.local_addr().unwrap().ip());
    // It reads what the server sends.
    announce(&mut ep, &server, 2222);
    assert_eq!(ep.engine().server_epoch(), Some(2222));
}

/// The connect back fails too (no route at all): the socket is connected to
/// nobody, so anyone's datagram arrives, and only the server's counts. An
/// unsolicited ANNOUNCE needs no nonce: taken from a stranger, it would
/// make the client renew everything and take the stranger's epoch. The
/// next check connects the socket again, a pinned one too.
#[test]
fn an_unconnected_socket_counts_datagrams_from_the_server_only() {
    for local in [None, Some(ip("127.0.0.1"))] {
        let (server, mut ep) = endpoint(local);
        let t0 = Instant::now();
        fail_next_connects(2);
        assert!(ep.set_local_addr(t0, local).is_err());
        fail_next_connects(0);
        assert!(ep.socket.peer_addr().is_err(), "{local:?}: connected to nobody");
        assert!(!ep.connected);

        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        let dropped = ep.engine().stats().dropped;
        announce(&mut ep, &stranger, 1111);
        assert_eq!(ep.engine().server_epoch(), None, "{local:?}: a stranger's ANNOUNCE was taken");
        assert_eq!(ep.engine().stats().dropped, dropped + 1);
        announce(&mut ep, &server, 2222);
        assert_eq!(ep.engine().server_epoch(), Some(2222));

        // The next check (at most one a second) connects it again.
        ep.handle_timeout(t0 + Duration::from_millis(1500));
        assert!(ep.connected, "{local:?}");
        assert_eq!(ep.socket.peer_addr().unwrap(), server.local_addr().unwrap());
        assert_eq!(ep.engine().client_addr(), ep.local_addr().unwrap().ip());
    }
}
