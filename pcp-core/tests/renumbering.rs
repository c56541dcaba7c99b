//! The client notices its own address change (RFC 6887 section 11.5) and
//! makes its mappings again from the new address, against the test server
//! on loopback. Loopback has all of 127/8, so a client moves from
//! 127.0.0.1 to 127.0.0.2 without root: by a test `SourceResolver` (what
//! the route would say after renumbering) or `Client::set_local_address`.
//!
//! Linux moves the socket to any of its addresses; Windows (run under
//! wine) cannot bind a bound socket again, so there only what does not
//! move it to another explicit address applies, and the refusal.
#![cfg(any(target_os = "linux", windows))]
// The helpers of the Linux-only tests.
#![cfg_attr(not(target_os = "linux"), allow(dead_code, unused_imports))]

use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pcp_core::client::{Endpoint, SourceResolver};
use pcp_core::server::{Server, ServerConfig};
use pcp_core::{Client, ClientConfig, Event, MapSpec, Protocol};

const WAIT: Duration = Duration::from_secs(10);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A resolver that says 127.0.0.1 until `moved` is set, then 127.0.0.2.
fn switchable() -> (SourceResolver, Arc<AtomicBool>) {
    let moved = Arc::new(AtomicBool::new(false));
    let m = moved.clone();
    let r = SourceResolver::new(move |_| -> io::Result<IpAddr> {
        Ok(if m.load(Ordering::SeqCst) { ip("127.0.0.2") } else { ip("127.0.0.1") })
    });
    (r, moved)
}

fn config(server: &Server, resolver: Option<SourceResolver>) -> ClientConfig {
    let mut c = ClientConfig::new(server.local_addr());
    c.listen_announce = false;
    c.source_resolver = resolver;
    c
}

/// Waits (bounded) for the first event `pick` accepts.
fn wait_for<T>(rx: &Receiver<Event>, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = rx.recv_timeout(left).expect("event did not arrive in time");
        if let Some(t) = pick(&ev) {
            return t;
        }
    }
}

/// Waits (bounded) until the server holds the mapping of `port` for `addr` only.
fn server_maps_from(server: &Server, port: u16, addr: IpAddr) {
    let deadline = Instant::now() + WAIT;
    loop {
        let m: Vec<IpAddr> =
            server.mappings().iter().filter(|m| m.internal_port == port).map(|m| m.internal_addr).collect();
        if m.contains(&addr) {
            return;
        }
        assert!(Instant::now() < deadline, "server never saw the mapping from {addr}: {m:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn changed(ev: &Event) -> Option<(IpAddr, IpAddr)> {
    match ev {
        Event::InternalAddressChanged { old, new } => Some((*old, *new)),
        _ => None,
    }
}

/// An explicit check after the host's address changed: the socket moves,
/// the event says old and new, and the server gets the mapping from the
/// new address (same nonce, so it is the same mapping to the client).
#[test]
#[cfg(target_os = "linux")]
fn a_changed_address_is_found_by_a_check_and_the_mappings_made_again() {
    let server = Server::start_local().unwrap();
    let (resolver, moved) = switchable();
    let client = Client::new(config(&server, Some(resolver))).unwrap();
    let rx = client.events();
    let m = client.map_with(MapSpec::new(Protocol::TCP, 7001).lifetime(600)).unwrap();
    assert_eq!(m.internal_addr(), ip("127.0.0.1"));
    assert!(!client.refresh_internal_address().unwrap(), "nothing changed yet");
    moved.store(true, Ordering::SeqCst);
    assert!(client.refresh_internal_address().unwrap());
    assert_eq!(wait_for(&rx, changed), (ip("127.0.0.1"), ip("127.0.0.2")));
    assert_eq!(client.internal_address(), ip("127.0.0.2"));
    let renewed = wait_for(&rx, |ev| match ev {
        Event::Renewed(i) if i.internal_port == 7001 => Some(i.clone()),
        _ => None,
    });
    assert_eq!((renewed.id, renewed.internal_addr, renewed.nonce), (m.id(), ip("127.0.0.2"), m.info().nonce));
    server_maps_from(&server, 7001, ip("127.0.0.2"));
    assert!(!client.refresh_internal_address().unwrap(), "settled");
}

/// Nobody asks: the check before the renewal pass finds the change.
/// (The server grants 2 s, so the renewal is due after 1-1.25 s.)
#[test]
#[cfg(target_os = "linux")]
fn the_renewal_pass_finds_a_changed_address_by_itself() {
    let server = Server::start(ServerConfig { max_lifetime: 2, ..Default::default() }).unwrap();
    let (resolver, moved) = switchable();
    let client = Client::new(config(&server, Some(resolver))).unwrap();
    let rx = client.events();
    client.map_with(MapSpec::new(Protocol::UDP, 7002).lifetime(2)).unwrap();
    moved.store(true, Ordering::SeqCst);
    assert_eq!(wait_for(&rx, changed), (ip("127.0.0.1"), ip("127.0.0.2")));
    server_maps_from(&server, 7002, ip("127.0.0.2"));
    // And it keeps renewing from there.
    wait_for(&rx, |ev| match ev {
        Event::Renewed(i) if i.internal_addr == ip("127.0.0.2") => Some(()),
        _ => None,
    });
}

/// An application that knows its new address says so; `None` goes back
/// to the route's choice.
#[test]
#[cfg(target_os = "linux")]
fn set_local_address_moves_the_client_and_its_mappings() {
    let server = Server::start_local().unwrap();
    let client = Client::new(config(&server, None)).unwrap();
    let rx = client.events();
    client.map_with(MapSpec::new(Protocol::TCP, 7003).lifetime(600)).unwrap();
    assert!(!client.set_local_address(Some(ip("127.0.0.1"))).unwrap(), "same address");
    assert!(client.set_local_address(Some(ip("127.0.0.2"))).unwrap());
    assert_eq!(wait_for(&rx, changed), (ip("127.0.0.1"), ip("127.0.0.2")));
    server_maps_from(&server, 7003, ip("127.0.0.2"));
    // Pinned now: the route's 127.0.0.1 is not taken back by a check.
    assert!(!client.refresh_internal_address().unwrap());
    assert!(client.set_local_address(None).unwrap());
    assert_eq!(wait_for(&rx, changed), (ip("127.0.0.2"), ip("127.0.0.1")));
    server_maps_from(&server, 7003, ip("127.0.0.1"));
}

/// An address the host does not have (or of the other family) is refused,
/// as `Client::new` refuses it, and changes nothing: the client neither
/// claims to send from it nor stops following the route.
#[test]
#[cfg(target_os = "linux")]
fn set_local_address_refuses_an_address_the_host_lacks() {
    let server = Server::start_local().unwrap();
    let (resolver, moved) = switchable();
    let client = Client::new(config(&server, Some(resolver))).unwrap();
    client.map_with(MapSpec::new(Protocol::TCP, 7006).lifetime(600)).unwrap();
    // 192.0.2.1 (TEST-NET-1) is on no interface of a test host.
    let e = client.set_local_address(Some(ip("192.0.2.1"))).unwrap_err();
    assert_eq!(e.code(), "IO", "{e}");
    let e = client.set_local_address(Some(ip("::1"))).unwrap_err();
    assert_eq!(e.code(), "INVALID_ARGUMENT", "{e}");
    assert_eq!(client.internal_address(), ip("127.0.0.1"));
    // Not pinned by the refused call: a check still follows the resolver.
    moved.store(true, Ordering::SeqCst);
    assert!(client.refresh_internal_address().unwrap());
    assert_eq!(client.internal_address(), ip("127.0.0.2"));
}

/// Where a bound socket cannot be bound to another address (Windows, and
/// macOS and the BSDs), a move to another explicit address is refused with
/// a message saying so: the client neither claims the address nor is
/// pinned to it, and keeps working from the one it has.
#[test]
#[cfg(not(target_os = "linux"))]
fn set_local_address_says_when_the_platform_cannot_move_the_socket() {
    let server = Server::start_local().unwrap();
    let client = Client::new(config(&server, None)).unwrap();
    let rx = client.events();
    client.map_with(MapSpec::new(Protocol::TCP, 7007).lifetime(600)).unwrap();
    let e = client.set_local_address(Some(ip("127.0.0.2"))).unwrap_err();
    assert_eq!(e.code(), "INVALID_ARGUMENT", "{e}");
    assert!(e.to_string().contains("cannot move the client's socket"), "{e}");
    assert_eq!(client.internal_address(), ip("127.0.0.1"));
    // The address it has, then the route's choice again: no change either way.
    assert!(!client.set_local_address(Some(ip("127.0.0.1"))).unwrap());
    assert!(!client.set_local_address(None).unwrap());
    client.map_with(MapSpec::new(Protocol::TCP, 7008).lifetime(600)).unwrap();
    server_maps_from(&server, 7008, ip("127.0.0.1"));
    assert!(rx.try_iter().all(|ev| changed(&ev).is_none()), "an address change was reported");
}

/// A resolver that counts its calls, failing (no route now) while `failing` is set.
fn counting() -> (SourceResolver, Arc<AtomicUsize>, Arc<AtomicBool>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let failing = Arc::new(AtomicBool::new(false));
    let (c, f) = (calls.clone(), failing.clone());
    let resolver = SourceResolver::new(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        if f.load(Ordering::SeqCst) {
            Err(io::Error::from(io::ErrorKind::NetworkUnreachable))
        } else {
            Ok(ip("127.0.0.1"))
        }
    });
    (resolver, calls, failing)
}

/// A resolver that fails (no route right now) changes nothing.
#[test]
fn an_unresolvable_address_changes_nothing() {
    let server = Server::start_local().unwrap();
    let (resolver, _, failing) = counting();
    let client = Client::new(config(&server, Some(resolver))).unwrap();
    client.map_with(MapSpec::new(Protocol::TCP, 7004).lifetime(600)).unwrap();
    failing.store(true, Ordering::SeqCst);
    assert!(!client.refresh_internal_address().unwrap());
    assert_eq!(client.internal_address(), ip("127.0.0.1"));
    assert_eq!(client.mapping_count(), 1);
}

/// The check runs only when a renewal is due, at most once a second: a
/// first request and its retransmissions cost no extra system call, and a
/// network that is down makes no loop of checks. On the endpoint, with
/// times in the future standing for the clock.
#[test]
fn the_address_is_checked_only_before_renewals_and_rate_limited() {
    let server = Server::start_local().unwrap();
    let (resolver, calls, failing) = counting();
    let mut ep = Endpoint::new(&config(&server, Some(resolver))).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1, "once, to bind");
    let t0 = Instant::now();
    ep.engine_mut().map(t0, MapSpec::new(Protocol::TCP, 7005).lifetime(600)).unwrap();
    ep.flush(t0);
    // A retransmission is due (nothing read yet): not a renewal.
    ep.handle_timeout(t0 + Duration::from_secs(4));
    ep.flush(t0 + Duration::from_secs(4));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Read the grant (bounded).
    let deadline = Instant::now() + WAIT;
    let granted_at = loop {
        let now = Instant::now();
        ep.receive(now);
        if let Some(Event::Granted(i)) = std::iter::from_fn(|| ep.poll_event()).find(|e| matches!(e, Event::Granted(_)))
        {
            break i.granted_at;
        }
        assert!(now < deadline, "no grant");
        std::thread::sleep(Duration::from_millis(2));
    };
    ep.handle_timeout(granted_at + Duration::from_secs(100));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "no renewal due before half the lifetime");
    // The renewal is due by 5/8 of 600 s: one check, though it fails.
    failing.store(true, Ordering::SeqCst);
    let renew = granted_at + Duration::from_secs(400);
    ep.handle_timeout(renew);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // The renewal went; nothing is due until its next attempt (>= 4 s).
    ep.handle_timeout(renew + Duration::from_millis(500));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    ep.refresh_source(renew + Duration::from_millis(600)); // explicit: always asks
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(ep.engine().client_addr(), ip("127.0.0.1"));
}

/// Moving the socket gives it a new port on Linux (the disconnect lets the
/// kernel's port go): the external-address probe, a short MAP of "our own
/// port", must name the port the socket has now, not one it gave up.
#[test]
#[cfg(target_os = "linux")]
fn the_address_probe_names_the_port_the_moved_socket_has() {
    let server = Server::start_local().unwrap();
    let (resolver, moved) = switchable();
    let mut ep = Endpoint::new(&config(&server, Some(resolver))).unwrap();
    let t0 = Instant::now();
    moved.store(true, Ordering::SeqCst);
    assert!(ep.refresh_source(t0));
    let port = ep.local_addr().unwrap().port();
    ep.engine_mut().request_external_addr(t0, None).unwrap();
    let t = ep.engine_mut().poll_transmit().expect("the probe");
    let req = pcp_core::wire::Request::decode(&t.payload).unwrap();
    let pcp_core::wire::Body::Map(m) = req.body else { panic!("a MAP: {req:?}") };
    assert_eq!(m.internal_port, port, "the socket's port now");
}
