//! The blocking client against the test server in NAT-PMP-only mode on
//! loopback: the same calls work, by the fallback of RFC 6887 section 9.

use std::net::IpAddr;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use pcp_core::server::{Server, ServerConfig, ServerMode};
use pcp_core::{Client, ClientConfig, Error, Event, MapSpec, PeerSpec, Protocol, ProtocolChoice, ProtocolVersion};

const WAIT: Duration = Duration::from_secs(10);

fn natpmp_server() -> Server {
    Server::start(ServerConfig { mode: ServerMode::NatPmpOnly, initial_epoch: 1000, ..Default::default() }).unwrap()
}

fn client(server: &Server, protocol: ProtocolChoice) -> Client {
    let mut c = ClientConfig::new(server.local_addr()).protocol(protocol);
    c.listen_announce = false;
    c.announce_delay_max = Duration::from_millis(50);
    Client::new(c).unwrap()
}

fn wait_for<T>(rx: &Receiver<Event>, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        let ev = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("event in time");
        if let Some(t) = pick(&ev) {
            return t;
        }
    }
}

#[test]
fn auto_falls_back_and_maps_tcp_and_udp_deletes_and_learns_the_address() {
    let server = natpmp_server();
    let c = client(&server, ProtocolChoice::Auto);
    let tcp = c.map_with(MapSpec::new(Protocol::TCP, 8080).external_port(8080)).unwrap();
    assert_eq!(tcp.protocol_version(), ProtocolVersion::NatPmp);
    assert_eq!((tcp.external_addr(), tcp.external_port()), (server.external_addr(), 8080));
    let udp = c.map(Protocol::UDP, 9000).unwrap();
    assert_eq!(udp.protocol_version(), ProtocolVersion::NatPmp);
    assert_eq!(server.mapping_count(), 2);
    assert_eq!(c.external_address().unwrap(), server.external_addr());
    assert!(c.announce().is_ok(), "ANNOUNCE becomes the NAT-PMP address request");
    tcp.delete().unwrap();
    assert_eq!(server.mapping_count(), 1);
    let m = &server.mappings()[0];
    assert_eq!((m.protocol, m.internal_port), (Protocol::UDP, 9000));
    c.close();
    assert_eq!(server.mapping_count(), 0, "close deletes over NAT-PMP too");
}

#[test]
fn pcp_only_reports_unsupported_version_0() {
    let server = natpmp_server();
    let c = client(&server, ProtocolChoice::PcpOnly);
    let err = c.map(Protocol::TCP, 80).unwrap_err();
    assert_eq!(err, Error::UnsuppVersion { server_version: 0 });
}

#[test]
fn natpmp_only_against_a_dual_server_sends_no_pcp() {
    let server = Server::start_local().unwrap();
    let c = client(&server, ProtocolChoice::NatPmpOnly);
    let m = c.map(Protocol::TCP, 4000).unwrap();
    assert_eq!(m.protocol_version(), ProtocolVersion::NatPmp);
    assert_eq!(server.mappings()[0].nonce, pcp_core::Nonce::default(), "made over NAT-PMP (no nonce)");
}

#[test]
fn what_natpmp_cannot_do_fails_by_name() {
    let server = natpmp_server();
    let c = client(&server, ProtocolChoice::Auto);
    // A PEER first: PCP is refused, and PEER cannot be done over NAT-PMP.
    let err = c.peer(PeerSpec::new(Protocol::TCP, 80, "198.51.100.1".parse().unwrap(), 443)).unwrap_err();
    assert_eq!(err.code(), "UNSUPPORTED_BY_NATPMP");
    // Once the engine speaks NAT-PMP, it fails at once without sending.
    c.map(Protocol::TCP, 81).unwrap();
    let before = server.requests_received();
    let err = c.map_with(MapSpec::new(Protocol::ALL, 0)).unwrap_err();
    assert_eq!(err.code(), "UNSUPPORTED_BY_NATPMP");
    assert_eq!(server.requests_received(), before);
}

#[test]
fn renewal_and_reboot_over_natpmp() {
    let server = Server::start(ServerConfig {
        mode: ServerMode::NatPmpOnly,
        initial_epoch: 1000,
        max_lifetime: 2,
        ..Default::default()
    })
    .unwrap();
    let c = client(&server, ProtocolChoice::Auto);
    let rx = c.events();
    let m = c.map(Protocol::UDP, 7000).unwrap();
    assert_eq!(m.lifetime(), 2);
    // Renewed at half the lifetime (1 s).
    let renewed = wait_for(&rx, |e| match e {
        Event::Renewed(i) if i.id == m.id() => Some(i.clone()),
        _ => None,
    });
    assert_eq!(renewed.version, ProtocolVersion::NatPmp);
    server.reboot();
    assert_eq!(server.mapping_count(), 0);
    // The next answer's epoch says the gateway rebooted: the mapping is recreated.
    wait_for(&rx, |e| matches!(e, Event::ServerRestarted { .. }).then_some(()));
    let deadline = Instant::now() + WAIT;
    while server.mapping_count() == 0 {
        assert!(Instant::now() < deadline, "mapping not recreated");
        std::thread::sleep(Duration::from_millis(5));
    }
    let ip: IpAddr = "198.51.100.77".parse().unwrap();
    server.set_external_addr(ip);
    c.external_address().unwrap();
    wait_for(&rx, |e| matches!(e, Event::ExternalAddressChanged { new, .. } if *new == ip).then_some(()));
}

/// A free UDP port on loopback (bound, then released).
fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn announcements_on_the_5350_and_the_legacy_port_renew_the_mappings() {
    // The RFC 6886 port (5350 in real life) and the 2006 drafts' (5351),
    // both made free loopback ports here; the server sends only to them.
    for legacy in [false, true] {
        let port = free_port();
        let to: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let server = Server::start(ServerConfig {
            mode: ServerMode::NatPmpOnly,
            initial_epoch: 1000,
            announce_to: vec![to],
            announce_to_known_clients: false,
            ..Default::default()
        })
        .unwrap();
        let mut cc = ClientConfig::new(server.local_addr());
        cc.announce_delay_max = Duration::from_millis(50);
        if legacy {
            cc.listen_announce = false;
            cc.natpmp_legacy_announce_port = Some(port);
        } else {
            cc.announce_port = port;
        }
        let c = Client::new(cc).unwrap();
        let rx = c.events();
        c.map(Protocol::TCP, 6000).unwrap();
        server.reboot();
        wait_for(&rx, |e| matches!(e, Event::ServerRestarted { epoch } if *epoch < 5).then_some(()));
        let renewed = wait_for(&rx, |e| match e {
            Event::Renewed(i) => Some(i.clone()),
            _ => None,
        });
        assert_eq!(renewed.version, ProtocolVersion::NatPmp, "legacy={legacy}");
        assert_eq!(server.mapping_count(), 1, "recreated after the announcement (legacy={legacy})");
    }
}
