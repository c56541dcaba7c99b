//! The blocking client against the test server on loopback.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use pcp_core::discovery::{discover, DiscoveryConfig};
use pcp_core::server::{Server, ServerConfig};
use pcp_core::{Client, ClientConfig, Error, Event, MapSpec, PeerSpec, Protocol, ResultCode};

const WAIT: Duration = Duration::from_secs(10);

fn config(server: &Server) -> ClientConfig {
    let mut c = ClientConfig::new(server.local_addr());
    c.listen_announce = false;
    c.announce_delay_max = Duration::from_millis(50);
    c
}

fn client(server: &Server) -> Client {
    Client::new(config(server)).unwrap()
}

/// Waits (bounded) for the first event that `pick` accepts.
fn wait_for<T>(rx: &Receiver<Event>, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let ev = rx.recv_timeout(left).expect("event did not arrive in time");
        if let Some(t) = pick(&ev) {
            return t;
        }
    }
}

/// Waits (bounded) until `cond` holds.
fn eventually(mut cond: impl FnMut() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A loopback port with nothing listening: the kernel answers ICMP unreachable.
fn dead_port() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap()
}

#[test]
fn map_peer_delete_announce_and_addresses() {
    let server = Server::start_local().unwrap();
    let c = client(&server);
    assert_eq!(c.gateway_address(), server.local_addr());
    assert_eq!(c.internal_address(), "127.0.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(c.external_address().unwrap(), server.external_addr());
    eventually(|| server.mapping_count() == 0, "the address probe cleans up after itself");
    let epoch = c.announce().unwrap();
    assert!(epoch <= server.epoch());

    let m = c.map_with(MapSpec::new(Protocol::TCP, 8080).external_port(8080).lifetime(600)).unwrap();
    assert_eq!((m.protocol(), m.internal_port(), m.external_port(), m.lifetime()), (Protocol::TCP, 8080, 8080, 600));
    assert_eq!(m.external_addr(), server.external_addr());
    let sm = server.mappings();
    assert_eq!(sm.len(), 1);
    assert_eq!(sm[0].nonce, m.nonce(), "the server holds the mapping under our nonce");

    let dynamic = c.map(Protocol::UDP, 5353).unwrap();
    assert_ne!(dynamic.external_port(), 0);
    let all = c.map_with(MapSpec::new(Protocol::ALL, 0)).unwrap();
    assert_eq!(all.external_port(), 0);

    let p = c.peer(PeerSpec::new(Protocol::TCP, 9000, "198.51.100.10".parse().unwrap(), 443)).unwrap();
    assert_eq!(p.remote(), Some(("198.51.100.10".parse().unwrap(), 443)));
    assert_eq!(server.mapping_count(), 4);
    assert_eq!(c.mappings().len(), 4);

    m.delete().unwrap();
    assert!(!m.is_active());
    assert_eq!(server.mapping_count(), 3);
    assert_eq!(c.find_mapping(Protocol::UDP, 5353).unwrap().id(), dynamic.id());
    assert!(c.find_mapping(Protocol::TCP, 8080).is_none());
}

/// An IPv4 peer written IPv4-mapped (`::ffff:a.b.c.d`) is the same address
/// on the wire: its answer, decoded as IPv4, must complete the request.
#[test]
fn a_peer_given_ipv4_mapped_is_granted() {
    let server = Server::start_local().unwrap();
    let c = client(&server);
    let p = c.peer(PeerSpec::new(Protocol::TCP, 9100, "::ffff:198.51.100.4".parse().unwrap(), 443)).unwrap();
    assert_eq!(p.remote(), Some(("198.51.100.4".parse().unwrap(), 443)));
    assert_eq!(server.mapping_count(), 1);
}

/// A request still waiting for its answer when the client is closed fails
/// with CLOSED, whether close deletes the mappings or keeps them (it was
/// CANCELLED when deleting, which a caller cannot tell from its own cancel).
#[test]
fn a_request_in_flight_at_close_fails_closed() {
    for keep in [false, true] {
        let server = Server::start_local().unwrap();
        let c = client(&server);
        server.set_delay(Duration::from_millis(300));
        let pending = c.map_async(MapSpec::new(Protocol::TCP, 9300));
        if keep {
            c.close_keep();
        } else {
            c.close();
        }
        assert_eq!(pending.wait().unwrap_err(), Error::Closed, "keep {keep}");
    }
}

/// A mapping that has ended (here deleted) is gone: deleting it again
/// succeeds at once and sends nothing, as the classic delete does; an id
/// the client never gave out is still a bad argument.
#[test]
fn deleting_an_ended_mapping_succeeds_and_sends_nothing() {
    let server = Server::start_local().unwrap();
    let c = client(&server);
    let m = c.map(Protocol::TCP, 8080).unwrap();
    m.delete().unwrap();
    let received = server.requests_received();
    m.delete().unwrap();
    assert_eq!(server.requests_received(), received);
    assert_eq!(c.delete(pcp_core::MappingId(999_999)).unwrap_err().code(), "INVALID_ARGUMENT");
}

#[test]
fn map_options_reach_the_server() {
    let server = Server::start_local().unwrap();
    let c = client(&server);
    let f = pcp_core::Filter { remote_addr: "198.51.100.0".parse().unwrap(), prefix_len: 24, remote_port: 0 };
    let m =
        c.map_with(MapSpec::new(Protocol::TCP, 22).external_port(2222).prefer_failure().filter(f).filter(f)).unwrap();
    assert_eq!(m.external_port(), 2222);
    assert_eq!(server.mappings()[0].filters, 2);
    // The port is taken now: with PREFER_FAILURE the server must refuse.
    let err = c.map_with(MapSpec::new(Protocol::TCP, 23).external_port(2222).prefer_failure()).unwrap_err();
    assert_eq!(err, Error::CannotProvideExternal { retry_after: 0 });
    // Without it, another port is assigned.
    let other = c.map_with(MapSpec::new(Protocol::TCP, 24).external_port(2222)).unwrap();
    assert_ne!(other.external_port(), 2222);
    // THIRD_PARTY: the mapping is for another host.
    let tp = c
        .map_with(MapSpec::new(Protocol::UDP, 7000).third_party("127.0.0.77".parse::<std::net::IpAddr>().unwrap()))
        .unwrap();
    assert_eq!(tp.internal_addr(), "127.0.0.77".parse::<IpAddr>().unwrap());
    assert!(server.mappings().iter().any(|m| m.internal_addr == "127.0.0.77".parse::<IpAddr>().unwrap()));
}

#[test]
fn many_threads_share_one_client() {
    let server = Server::start_local().unwrap();
    let c = client(&server);
    let handles: Vec<_> = (0..8u16)
        .map(|t| {
            let c = c.clone();
            std::thread::spawn(move || {
                (0..50u16)
                    .map(|i| c.map(Protocol::UDP, 1000 + t * 100 + i).unwrap().external_port())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let ports: Vec<u16> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    assert_eq!(ports.len(), 400);
    assert_eq!(ports.iter().collect::<HashSet<_>>().len(), 400, "distinct external ports");
    assert_eq!(server.mapping_count(), 400);
}

#[test]
fn every_result_code_becomes_its_error() {
    let server = Server::start_local().unwrap();
    let c = client(&server);
    for code in ResultCode::ALL.iter().skip(1) {
        // Lifetime 0: a non-zero error lifetime would (rightly, section 8.3)
        // stop the client from sending the same request again; that rule
        // has its own tests.
        server.force_result(Some((*code, 0)));
        let err = c.map(Protocol::TCP, 80).unwrap_err();
        assert_eq!(err.result_code(), Some(*code), "{err}");
        assert_eq!(err.code(), code.name());
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn unreachable_server_fails_at_once() {
    let mut cc = ClientConfig::new(dead_port());
    cc.listen_announce = false;
    let c = Client::new(cc).unwrap();
    assert_eq!(c.map(Protocol::TCP, 80).unwrap_err(), Error::ServerUnreachable);
    assert_eq!(c.announce().unwrap_err(), Error::ServerUnreachable);
}

/// The ICMP port unreachable that answers the first send is what fails a
/// request that the driver thread carries: no retransmission follows that
/// could carry the error instead. Under wine 8 this is the poll path of
/// `socket::poll_reports_error`, as the error reaches only the driver's
/// waiting poll. (A caller waiting on its own poller, or an event loop,
/// takes the socket out of the driver's poller, and its own poll starts
/// after the send: under wine they see the error at a retransmission.)
#[test]
fn unreachable_server_fails_on_the_first_send_alone() {
    let mut cc = ClientConfig::new(dead_port());
    cc.listen_announce = false;
    cc.retransmit = cc.retransmit.with_max_retransmissions(0);
    let c = Client::new(cc).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    c.map_async(MapSpec::new(Protocol::TCP, 81)).on_complete(move |r| tx.send(r.map(|_| ())).unwrap());
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), Err(Error::ServerUnreachable));
}

#[test]
fn silent_server_times_out_at_the_deadline() {
    let server = Server::start_local().unwrap();
    server.drop_next(u32::MAX);
    let c = Client::new(config(&server).deadline(Duration::from_millis(300))).unwrap();
    assert_eq!(c.map(Protocol::TCP, 80).unwrap_err(), Error::Timeout);
    assert!(server.requests_received() >= 1);
}

#[test]
fn lost_first_request_is_retransmitted() {
    let server = Server::start_local().unwrap();
    server.drop_next(1);
    let mut cc = config(&server);
    cc.retransmit = cc.retransmit.with_initial(Duration::from_millis(50));
    let c = Client::new(cc).unwrap();
    c.map(Protocol::TCP, 80).unwrap();
    assert_eq!(server.requests_received(), 2);
}

#[test]
fn renewals_are_reported() {
    let server = Server::start_local().unwrap();
    let c = client(&server);
    let rx = c.events();
    let m = c.map_with(MapSpec::new(Protocol::TCP, 80).lifetime(2)).unwrap();
    let renewed = wait_for(&rx, |e| match e {
        Event::Renewed(i) => Some(i.clone()),
        _ => None,
    });
    assert_eq!((renewed.id, renewed.nonce), (m.id(), m.nonce()));
}

#[test]
fn a_rebooted_server_gets_the_mappings_back() {
    // Up for an hour: the reboot's epoch 0 is unmistakably a restart.
    let server = Server::start(ServerConfig { initial_epoch: 3600, ..Default::default() }).unwrap();
    let c = client(&server);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    c.on_event(move |e| s2.lock().unwrap().push(e.clone()));
    let rx = c.events();
    let a = c.map(Protocol::TCP, 80).unwrap();
    c.map(Protocol::UDP, 53).unwrap();
    server.reboot();
    assert_eq!(server.mapping_count(), 0);
    let epoch = wait_for(&rx, |e| match e {
        Event::ServerRestarted { epoch } => Some(*epoch),
        _ => None,
    });
    assert!(epoch <= 1, "{epoch}");
    let mut renewed = HashSet::new();
    while renewed.len() < 2 {
        renewed.insert(wait_for(&rx, |e| match e {
            Event::Renewed(i) => Some(i.id),
            _ => None,
        }));
    }
    assert!(renewed.contains(&a.id()));
    assert_eq!(server.mapping_count(), 2, "both recreated on the server");
    assert!(seen.lock().unwrap().iter().any(|e| matches!(e, Event::ServerRestarted { .. })), "callbacks see it too");
}

#[test]
fn external_address_change_is_reported() {
    let server = Server::start_local().unwrap();
    let c = client(&server);
    let rx = c.events();
    c.map(Protocol::TCP, 80).unwrap();
    let new: IpAddr = "198.51.100.99".parse().unwrap();
    server.set_external_addr(new);
    let (old, got) = wait_for(&rx, |e| match e {
        Event::ExternalAddressChanged { old, new } => Some((*old, *new)),
        _ => None,
    });
    assert_eq!((old, got), (server_default_external(), new));
}

fn server_default_external() -> IpAddr {
    ServerConfig::default().external_addr
}

#[test]
fn close_deletes_the_mappings_unless_told_to_keep_them() {
    let server = Server::start_local().unwrap();
    let c = client(&server);
    let m = c.map(Protocol::TCP, 80).unwrap();
    c.map(Protocol::TCP, 81).unwrap();
    c.close();
    assert_eq!(server.mapping_count(), 0);
    assert!(c.is_closed());
    assert_eq!(c.map(Protocol::TCP, 82).unwrap_err(), Error::Closed);
    assert_eq!(m.delete().unwrap_err(), Error::Closed);
    c.close(); // idempotent

    let k = client(&server);
    k.map(Protocol::TCP, 80).unwrap();
    k.close_keep();
    assert_eq!(server.mapping_count(), 1);
}

#[test]
fn dropping_the_last_handle_closes() {
    let server = Server::start_local().unwrap();
    {
        let c = client(&server);
        c.map(Protocol::TCP, 80).unwrap();
    }
    assert_eq!(server.mapping_count(), 0);
}

#[test]
fn pending_requests_wait_poll_and_cancel() {
    let server = Server::start_local().unwrap();
    let c = client(&server);
    server.set_delay(Duration::from_millis(300));
    let p = c.map_async(MapSpec::new(Protocol::TCP, 80));
    assert!(p.wait_timeout(Duration::from_millis(1)).is_none(), "not answered yet");
    let m = loop {
        if let Some(r) = p.wait_timeout(Duration::from_millis(50)) {
            break r.unwrap();
        }
    };
    assert_eq!(m.internal_port(), 80);

    let p = c.map_async(MapSpec::new(Protocol::TCP, 81));
    p.cancel();
    assert_eq!(p.wait().unwrap_err(), Error::Cancelled);
    server.set_delay(Duration::ZERO);
    eventually(
        || !server.mappings().iter().any(|m| m.internal_port == 81),
        "the cancel deletes the mapping the server may already have made",
    );

    let (tx, rx) = std::sync::mpsc::channel();
    c.announce_async().on_complete(move |r| tx.send(r).unwrap());
    assert!(rx.recv_timeout(WAIT).unwrap().is_ok());
}

#[test]
fn a_canceller_cancels_a_request_handed_to_a_callback() {
    let server = Server::start_local().unwrap();
    let c = client(&server);
    server.set_delay(Duration::from_millis(300));
    let p = c.map_async(MapSpec::new(Protocol::TCP, 82));
    let canceller = p.canceller();
    let (tx, rx) = std::sync::mpsc::channel();
    p.on_complete(move |r| tx.send(r.map(|m| m.internal_port())).unwrap());
    canceller.cancel();
    assert_eq!(rx.recv_timeout(WAIT).unwrap().unwrap_err(), Error::Cancelled);
    server.set_delay(Duration::ZERO);
    eventually(
        || !server.mappings().iter().any(|m| m.internal_port == 82),
        "the cancel deletes the mapping the server may already have made",
    );
    // Once finished, cancelling changes nothing; a finished request's canceller is a no-op too.
    canceller.cancel();
    let done = c.announce_async();
    assert!(done.wait_timeout(WAIT).unwrap().is_ok());
    done.canceller().cancel();
}

#[test]
fn ipv6_maps_open_pinholes() {
    let Ok(server) = Server::start(ServerConfig { listen: "[::1]:0".parse().unwrap(), ..Default::default() }) else {
        eprintln!("SKIPPED ipv6_maps_open_pinholes: no IPv6 loopback on this machine");
        return;
    };
    let c = client(&server);
    assert_eq!(c.internal_address(), "::1".parse::<IpAddr>().unwrap());
    let m = c.map(Protocol::TCP, 8080).unwrap();
    assert_eq!(m.external_addr(), "::1".parse::<IpAddr>().unwrap());
    assert_eq!(m.external_port(), 8080);
}

#[test]
fn delete_by_nonce_removes_another_process_mapping() {
    let server = Server::start_local().unwrap();
    let a = client(&server);
    let m = a.map(Protocol::UDP, 4000).unwrap();
    let nonce = m.nonce();
    a.close_keep();
    let b = client(&server);
    assert_eq!(
        b.delete_by_nonce(Protocol::UDP, 4000, pcp_core::Nonce::from_bytes([1; 12])).unwrap_err(),
        Error::NotAuthorized { retry_after: 0 },
        "another nonce is refused"
    );
    b.delete_by_nonce(Protocol::UDP, 4000, nonce).unwrap();
    assert_eq!(server.mapping_count(), 0);
}

/// RFC 6887 section 13.1: a THIRD_PARTY mapping is deleted by a delete
/// that names the same third party; without it the server looks for a
/// mapping of this host's own address (and finds none).
#[test]
fn delete_with_names_the_third_party_of_another_process_mapping() {
    let server = Server::start_local().unwrap();
    let third: IpAddr = "127.0.0.5".parse().unwrap();
    let a = client(&server);
    let m = a.map_with(MapSpec::new(Protocol::TCP, 4100).third_party(third)).unwrap();
    assert_eq!(m.internal_addr(), third);
    let nonce = m.nonce();
    a.close_keep();
    let b = client(&server);
    b.delete_by_nonce(Protocol::TCP, 4100, nonce).unwrap();
    assert_eq!(server.mapping_count(), 1, "a delete without THIRD_PARTY is for our own address");
    b.delete_with(MapSpec::new(Protocol::TCP, 4100).nonce(nonce).third_party(third)).unwrap();
    assert_eq!(server.mapping_count(), 0);
}

#[test]
fn announce_port_is_shared_and_a_busy_port_is_not_fatal() {
    let server = Server::start_local().unwrap();
    let port = UdpSocket::bind("0.0.0.0:0").unwrap().local_addr().unwrap().port();
    let mk = || {
        let mut cc = config(&server);
        cc.listen_announce = true;
        cc.announce_port = port;
        Client::new(cc).unwrap()
    };
    let (a, b) = (mk(), mk());
    assert!(a.listens_for_announce() && b.listens_for_announce(), "address reuse lets both listen");
    // A socket without reuse holds another port: the client carries on without it.
    let hog = UdpSocket::bind("0.0.0.0:0").unwrap();
    let mut cc = config(&server);
    cc.listen_announce = true;
    cc.announce_port = hog.local_addr().unwrap().port();
    let c = Client::new(cc).unwrap();
    assert!(!c.listens_for_announce());
    c.map(Protocol::TCP, 80).unwrap();
    // Closed clients, even still held, let the port go.
    a.close();
    b.close();
    assert!(!a.listens_for_announce() && !b.listens_for_announce());
    UdpSocket::bind(("0.0.0.0", port)).expect("nobody holds the ANNOUNCE port");
}

#[test]
fn discovery_uses_the_injected_candidates() {
    let server = Server::start_local().unwrap();
    let found = discover(&DiscoveryConfig::with_candidates(vec![dead_port(), server.local_addr()])).unwrap();
    assert_eq!(found.server, server.local_addr());
    assert_eq!(found.internal_addr, "127.0.0.1".parse::<IpAddr>().unwrap());
    let none = discover(&DiscoveryConfig::with_candidates(vec![dead_port()])).unwrap_err();
    assert!(matches!(none, Error::NoGateway(_)), "{none}");
    let empty = discover(&DiscoveryConfig::with_candidates(vec![])).unwrap_err();
    assert!(matches!(empty, Error::NoGateway(_)));
}

#[test]
fn server_address_forms() {
    use pcp_core::client::parse_server;
    assert_eq!(parse_server("10.0.0.1").unwrap().to_string(), "10.0.0.1:5351");
    assert_eq!(parse_server("10.0.0.1:99").unwrap().port(), 99);
    assert_eq!(parse_server("[fe80::1%1]:5351").unwrap().to_string(), "[fe80::1%1]:5351");
    assert_eq!(parse_server("localhost:7").unwrap().port(), 7);
    for bad in ["", "10.0.0.1:0", "0.0.0.0", "10.0.0.1:99999", "[::1", "fe80::1%nosuchif0"] {
        assert!(matches!(parse_server(bad), Err(Error::InvalidArgument(_))), "{bad}");
    }
}

#[test]
fn an_announce_recreates_mappings_even_when_the_epoch_cannot_tell() {
    // Rebooted within the RFC's 2 s slack of our first contact: the epoch
    // check is inconclusive, but the unsolicited ANNOUNCE still triggers a
    // renewal of everything, which recreates the state.
    let server = Server::start_local().unwrap();
    let c = client(&server);
    let rx = c.events();
    let m = c.map(Protocol::TCP, 80).unwrap();
    server.reboot();
    let renewed = wait_for(&rx, |e| match e {
        Event::Renewed(i) => Some(i.id),
        _ => None,
    });
    assert_eq!(renewed, m.id());
    assert_eq!(server.mapping_count(), 1);
}

#[test]
fn event_handlers_can_be_removed() {
    let server = Server::start_local().unwrap();
    let c = client(&server);
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c2 = count.clone();
    let id = c.on_event(move |_| {
        c2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    let rx = c.events();
    c.map(Protocol::TCP, 80).unwrap();
    wait_for(&rx, |e| matches!(e, Event::Granted(_)).then_some(()));
    assert!(count.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    assert!(c.remove_event_handler(id));
    assert!(!c.remove_event_handler(id));
    let before = count.load(std::sync::atomic::Ordering::SeqCst);
    c.map(Protocol::TCP, 81).unwrap();
    wait_for(&rx, |e| matches!(e, Event::Granted(i) if i.internal_port == 81).then_some(()));
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), before, "a removed handler is not called");
}

/// One turn of a minimal event loop on `c`'s socket: wait (at most 100 ms)
/// for it to be readable, then process; how many datagrams came.
fn event_loop_turn(c: &Client) -> usize {
    let poller = polling::Poller::new().unwrap();
    // SAFETY: the socket outlives the poller, which is dropped at the end.
    unsafe { poller.add(c.reader_fd(), polling::Event::readable(0)) }.unwrap();
    let mut events = polling::Events::new();
    poller.wait(&mut events, Some(Duration::from_millis(100))).unwrap();
    poller.delete(unsafe { borrow(c.reader_fd()) }).unwrap();
    c.process_ready()
}

/// The client's socket, borrowed for the poller.
///
/// # Safety
/// The socket must stay open while the borrow is used.
#[cfg(unix)]
unsafe fn borrow<'a>(s: pcp_core::client::RawSocket) -> std::os::fd::BorrowedFd<'a> {
    unsafe { std::os::fd::BorrowedFd::borrow_raw(s) }
}

/// The client's socket, borrowed for the poller.
///
/// # Safety
/// The socket must stay open while the borrow is used.
#[cfg(windows)]
unsafe fn borrow<'a>(s: pcp_core::client::RawSocket) -> std::os::windows::io::BorrowedSocket<'a> {
    unsafe { std::os::windows::io::BorrowedSocket::borrow_raw(s) }
}

#[test]
fn an_event_loop_can_read_answers_itself() {
    let server = Server::start_local().unwrap();
    let c = client(&server);
    c.attach_reader();
    let p = c.map_async(MapSpec::new(Protocol::TCP, 80));
    let (tx, rx) = std::sync::mpsc::channel();
    let caller = std::thread::current().id();
    p.on_complete(move |r| tx.send((r.map(|m| m.internal_port()), std::thread::current().id())).unwrap());
    // A minimal "event loop": wait for readability, then process.
    let deadline = std::time::Instant::now() + WAIT;
    let (result, thread) = loop {
        assert!(std::time::Instant::now() < deadline, "no answer");
        event_loop_turn(&c);
        if let Ok(r) = rx.try_recv() {
            break r;
        }
    };
    assert_eq!(result.unwrap(), 80);
    assert_eq!(thread, caller, "completed on the loop's thread, not the driver's");
    c.detach_reader();
    // Back with the driver thread: blocking calls and renewals work as before.
    c.map(Protocol::TCP, 81).unwrap();
}

#[test]
fn an_event_loop_reads_bursts_of_answers_in_batches() {
    let server = Server::start_local().unwrap();
    let c = client(&server);
    c.attach_reader();
    // Many answers arriving together, all read in one readiness or a few.
    let pending: Vec<_> = (0..50u16).map(|i| c.map_async(MapSpec::new(Protocol::UDP, 3000 + i))).collect();
    let mut read = 0;
    let deadline = std::time::Instant::now() + WAIT;
    while !pending.iter().all(|p| p.is_done()) {
        assert!(std::time::Instant::now() < deadline, "answers missing");
        read += event_loop_turn(&c);
    }
    assert_eq!(read, 50, "every answer read once, none lost");
    let ports: HashSet<u16> = pending.into_iter().map(|p| p.wait().unwrap().external_port()).collect();
    assert_eq!(ports.len(), 50);
    c.detach_reader();
}

/// A level-triggered loop (libuv's poll handle, as the Node binding has)
/// reads one datagram per readiness: it is told again while more wait.
#[test]
fn a_level_triggered_loop_reads_one_datagram_per_readiness() {
    let server = Server::start_local().unwrap();
    let c = client(&server);
    c.attach_reader();
    let pending: Vec<_> = (0..20u16).map(|i| c.map_async(MapSpec::new(Protocol::UDP, 3000 + i))).collect();
    let poller = polling::Poller::new().unwrap();
    // SAFETY: the socket outlives the poller, which is dropped at the end.
    unsafe { poller.add_with_mode(c.reader_fd(), polling::Event::readable(0), polling::PollMode::Level) }.unwrap();
    let mut events = polling::Events::new();
    let (mut read, mut turns) = (0, 0);
    let deadline = std::time::Instant::now() + WAIT;
    while !pending.iter().all(|p| p.is_done()) {
        assert!(std::time::Instant::now() < deadline, "answers missing");
        events.clear();
        poller.wait(&mut events, Some(Duration::from_millis(100))).unwrap();
        if !events.is_empty() {
            let n = c.process_one_datagram();
            assert!(n <= 1, "at most one datagram per call, got {n}");
            read += n;
            turns += 1;
        }
    }
    assert_eq!(read, 20, "every answer read once, none lost");
    assert!(turns >= 20);
    poller.delete(unsafe { borrow(c.reader_fd()) }).unwrap();
    c.detach_reader();
}

#[test]
fn a_panicking_callback_stops_nobody() {
    let server = Server::start_local().unwrap();
    let c = client(&server);
    server.set_delay(Duration::from_millis(50));
    // Its answer is read by whichever caller reads the socket then.
    c.announce_async().on_complete(|_| panic!("a callback that panics (expected in this test)"));
    assert!(c.map(Protocol::TCP, 80).is_ok(), "the caller that ran the callback is unharmed");
    let c2 = c.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(c2.map(Protocol::TCP, 81).is_ok()).unwrap());
    assert_eq!(rx.recv_timeout(WAIT), Ok(true), "another caller still gets its answer");
}

/// Where waiting callers sleep in recv(2) on the socket (Unix, unless the
/// `portable-driver` feature is on).
#[test]
#[cfg(all(unix, not(feature = "portable-driver")))]
fn a_waiting_caller_makes_a_non_blocking_socket_block_again() {
    let server = Server::start_local().unwrap();
    let c = client(&server);
    let fd = c.reader_fd();
    let nonblocking = || {
        // SAFETY: fcntl on an open descriptor.
        (unsafe { libc::fcntl(fd, libc::F_GETFL) } & libc::O_NONBLOCK) != 0
    };
    assert!(!nonblocking(), "a client's socket blocks (with a receive timeout)");
    // As an event loop's poll handle (libuv's) leaves it.
    // SAFETY: as above.
    unsafe { libc::fcntl(fd, libc::F_SETFL, libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK) };
    server.set_delay(Duration::from_millis(100));
    c.map(Protocol::TCP, 80).unwrap();
    assert!(!nonblocking(), "the waiting caller must not spin on a non-blocking socket");
    // Attaching and detaching an event loop leaves it blocking too.
    c.attach_reader();
    // SAFETY: as above.
    unsafe { libc::fcntl(fd, libc::F_SETFL, libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK) };
    c.detach_reader();
    assert!(!nonblocking());
}

#[test]
fn an_event_loop_sees_an_unreachable_server() {
    let c = Client::new(ClientConfig::new(dead_port())).unwrap();
    c.attach_reader();
    let p = c.map_async(MapSpec::new(Protocol::TCP, 80));
    let deadline = std::time::Instant::now() + WAIT;
    while !p.is_done() {
        assert!(std::time::Instant::now() < deadline, "no error");
        event_loop_turn(&c);
    }
    assert_eq!(p.wait().unwrap_err(), Error::ServerUnreachable);
    c.detach_reader();
}

#[test]
fn closing_releases_every_waiting_caller() {
    let server = Server::start_local().unwrap();
    let mut cc = config(&server);
    cc.delete_on_close = false;
    let c = Client::new(cc).unwrap();
    server.drop_next(u32::MAX); // a reader and three followers wait on
    let (tx, rx) = std::sync::mpsc::channel();
    for port in 80..84u16 {
        let (c, tx) = (c.clone(), tx.clone());
        std::thread::spawn(move || tx.send(c.map(Protocol::TCP, port)).unwrap());
    }
    std::thread::sleep(Duration::from_millis(50)); // let them start waiting
    c.close();
    for _ in 0..4 {
        assert_eq!(rx.recv_timeout(WAIT).map(|r| r.unwrap_err()), Ok(Error::Closed));
    }
}

/// An endpoint driven by its own loop: `submit` sends the request at once
/// (the server has it before any `process`), and `process_events` hands
/// back the grant.
#[test]
fn an_endpoint_sends_on_submit_and_returns_events_from_process() {
    let server = Server::start_local().unwrap();
    let mut ep = pcp_core::client::Endpoint::new(&config(&server)).unwrap();
    let id = ep.submit(std::time::Instant::now(), |e, now| e.map(now, MapSpec::new(Protocol::TCP, 7100))).unwrap();
    // Bounded: the server answers a loopback request within WAIT.
    eventually(|| server.mapping_count() == 1, "the server received the MAP without a process call");
    let mut events = Vec::new();
    eventually(
        || {
            events.extend(ep.process_events(std::time::Instant::now()));
            events.iter().any(|e| matches!(e, Event::Granted(i) if i.id == id))
        },
        "the grant came back from process_events",
    );
}

#[test]
fn close_hooks_run_once_before_close_returns_and_at_once_when_late() {
    let server = Server::start_local().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let c = client(&server);
    let (a, b) = (log.clone(), log.clone());
    c.on_close(move || a.lock().unwrap().push("first"));
    c.on_close(move || b.lock().unwrap().push("second"));
    c.close_keep();
    assert_eq!(*log.lock().unwrap(), ["first", "second"]);
    c.close();
    assert_eq!(log.lock().unwrap().len(), 2, "hooks run once");
    let late = log.clone();
    c.on_close(move || late.lock().unwrap().push("late"));
    assert_eq!(*log.lock().unwrap(), ["first", "second", "late"]);

    // The last handle going closes the client, and runs its hooks.
    let dropped = client(&server);
    let (tx, rx) = std::sync::mpsc::channel();
    dropped.on_close(move || tx.send(()).unwrap());
    drop(dropped);
    assert!(rx.try_recv().is_ok());
}
