//! The engine's NAT-PMP side on the simulated clock: version negotiation
//! (RFC 6887 section 9) and mappings over NAT-PMP (RFC 6886): timings,
//! renewal, epoch, announcements and every result code.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use pcp_core::engine::*;
use pcp_core::wire::natpmp::*;
use pcp_core::wire::{self, Filter, Protocol};
use pcp_core::Error;

const EXT: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);

fn server() -> SocketAddr {
    "192.168.1.1:5351".parse().unwrap()
}

fn engine_with(choice: ProtocolChoice) -> Engine {
    let mut c = EngineConfig::new(server(), "192.168.1.100".parse().unwrap());
    c.rng_seed = Some([3; 32]);
    c.protocol = choice;
    Engine::new(c)
}

/// What the engine sent, as raw datagrams.
fn sent(e: &mut Engine) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| e.poll_transmit())
        .inspect(|t| assert_eq!(t.destination, server()))
        .map(|t| t.payload)
        .collect()
}

fn natpmp_sent(e: &mut Engine) -> Vec<NatPmpRequest> {
    sent(e).iter().map(|b| NatPmpRequest::decode(b).expect("a NAT-PMP request")).collect()
}

fn events(e: &mut Engine) -> Vec<Event> {
    std::iter::from_fn(|| e.poll_event()).collect()
}

fn addr_answer(epoch: u32) -> Vec<u8> {
    NatPmpResponse::ExternalAddress { result: NatPmpResult::Success, epoch, external_addr: EXT }.encode()
}

fn map_answer(p: NatPmpProtocol, internal: u16, external: u16, lifetime: u32, epoch: u32) -> Vec<u8> {
    NatPmpResponse::Map {
        protocol: p,
        result: NatPmpResult::Success,
        epoch,
        internal_port: internal,
        external_port: external,
        lifetime,
    }
    .encode()
}

/// A mapping granted over NAT-PMP from the start (NAT-PMP only).
fn granted(e: &mut Engine, t: Instant, port: u16, lifetime: u32) -> MappingId {
    let id = e.map(t, MapSpec::new(Protocol::TCP, port).lifetime(lifetime)).unwrap();
    let reqs = natpmp_sent(e);
    assert!(reqs.contains(&NatPmpRequest::Map {
        protocol: NatPmpProtocol::Tcp,
        internal_port: port,
        suggested_port: 0,
        lifetime
    }));
    e.handle_datagram(t, server(), &map_answer(NatPmpProtocol::Tcp, port, port + 10000, lifetime, 100));
    e.handle_datagram(t, server(), &addr_answer(100));
    id
}

#[test]
fn unsupported_version_switches_the_request_in_flight_to_natpmp() {
    let mut e = engine_with(ProtocolChoice::Auto);
    let t = Instant::now();
    let id = e.map(t, MapSpec::new(Protocol::UDP, 5000).external_port(5000).lifetime(7200)).unwrap();
    let first = sent(&mut e);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0][0], wire::VERSION, "PCP first");
    assert_eq!(e.protocol_version(), ProtocolVersion::Pcp);

    // The NAT-PMP gateway's 8-byte answer: the same request goes out in NAT-PMP at once.
    let t1 = t + Duration::from_millis(2);
    e.handle_datagram(t1, server(), &NatPmpResponse::unsupported_version(1, 50).encode());
    assert_eq!(e.protocol_version(), ProtocolVersion::NatPmp);
    assert!(events(&mut e).is_empty(), "the request does not fail");
    let reqs = natpmp_sent(&mut e);
    assert_eq!(
        reqs,
        vec![
            NatPmpRequest::Map {
                protocol: NatPmpProtocol::Udp,
                internal_port: 5000,
                suggested_port: 5000,
                lifetime: 7200
            },
            NatPmpRequest::ExternalAddress,
        ],
        "MAP and the address query leave together: one extra round trip in all"
    );
    e.handle_datagram(t1, server(), &map_answer(NatPmpProtocol::Udp, 5000, 5000, 7200, 50));
    assert!(events(&mut e).is_empty(), "the grant waits for the external address");
    e.handle_datagram(t1, server(), &addr_answer(50));
    let ev = events(&mut e);
    let Event::Granted(info) = &ev[0] else { panic!("{ev:?}") };
    assert_eq!(info.id, id);
    assert_eq!(info.version, ProtocolVersion::NatPmp);
    assert_eq!(info.protocol_version(), ProtocolVersion::NatPmp);
    assert_eq!((info.external_addr, info.external_port, info.lifetime), (EXT.into(), 5000, 7200));
    assert_eq!(e.external_addr(), Some(EXT.into()));
}

#[test]
fn pcp_unsupp_version_naming_version_0_also_switches() {
    let mut e = engine_with(ProtocolChoice::Auto);
    let t = Instant::now();
    e.map(t, MapSpec::new(Protocol::TCP, 80)).unwrap();
    sent(&mut e);
    // A PCP-layout header whose version field says 0.
    let mut header = vec![0, 0x81, 0, 1];
    header.extend_from_slice(&[0; 20]);
    e.handle_datagram(t, server(), &header);
    assert_eq!(e.protocol_version(), ProtocolVersion::NatPmp);
    assert_eq!(natpmp_sent(&mut e).len(), 2);
}

#[test]
fn later_requests_start_in_natpmp_and_pcp_is_retried_after_30_minutes() {
    let mut e = engine_with(ProtocolChoice::Auto);
    let t = Instant::now();
    e.map(t, MapSpec::new(Protocol::TCP, 80)).unwrap();
    sent(&mut e);
    e.handle_datagram(t, server(), &NatPmpResponse::unsupported_version(1, 50).encode());
    sent(&mut e);
    e.handle_datagram(t, server(), &map_answer(NatPmpProtocol::Tcp, 80, 20080, 3600, 50));
    e.handle_datagram(t, server(), &addr_answer(50));
    events(&mut e);

    // Ten minutes on: straight to NAT-PMP, no PCP attempt.
    let t10 = t + Duration::from_secs(600);
    e.map(t10, MapSpec::new(Protocol::TCP, 81)).unwrap();
    let reqs = natpmp_sent(&mut e);
    assert_eq!(reqs.len(), 1, "the external address is known: MAP alone");

    // After 30 minutes a new request tries PCP again ...
    let t31 = t + PCP_RETRY_INTERVAL + Duration::from_secs(1);
    let id = e.map(t31, MapSpec::new(Protocol::TCP, 82)).unwrap();
    let out = sent(&mut e);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0][0], wire::VERSION);
    assert_eq!(e.protocol_version(), ProtocolVersion::Pcp);
    // ... and a second refusal falls back once more, without failing.
    e.handle_datagram(t31, server(), &NatPmpResponse::unsupported_version(1, 1900).encode());
    assert_eq!(e.protocol_version(), ProtocolVersion::NatPmp);
    assert_eq!(natpmp_sent(&mut e).len(), 1);
    e.handle_datagram(t31, server(), &map_answer(NatPmpProtocol::Tcp, 82, 20082, 3600, 1900));
    assert!(matches!(&events(&mut e)[..], [Event::Granted(i)] if i.id == id));
}

#[test]
fn no_loop_between_versions() {
    // A broken gateway answering "unsupported version" to everything: the
    // engine falls back once, then its NAT-PMP requests fail; it never
    // goes back to PCP by itself.
    let mut e = engine_with(ProtocolChoice::Auto);
    let t = Instant::now();
    let id = e.map(t, MapSpec::new(Protocol::TCP, 80)).unwrap();
    sent(&mut e);
    let refusal = NatPmpResponse::unsupported_version(1, 5).encode();
    e.handle_datagram(t, server(), &refusal);
    assert_eq!(natpmp_sent(&mut e).len(), 2);
    for _ in 0..5 {
        e.handle_datagram(t, server(), &refusal);
    }
    assert!(sent(&mut e).is_empty(), "no datagram answers a refusal of NAT-PMP");
    assert_eq!(e.protocol_version(), ProtocolVersion::NatPmp);
    // The request then runs out its NAT-PMP schedule and fails.
    let mut now;
    for _ in 0..40 {
        match e.poll_timeout() {
            Some(at) => {
                now = at;
                e.handle_timeout(now);
            }
            None => break,
        }
    }
    assert!(events(&mut e).contains(&Event::Failed { id, error: Error::Timeout }));
    assert!(sent(&mut e).iter().all(|b| b[0] == NATPMP_VERSION), "never PCP again in the loop");
}

#[test]
fn pcp_only_fails_with_unsupp_version_0() {
    let mut e = engine_with(ProtocolChoice::PcpOnly);
    let t = Instant::now();
    let id = e.map(t, MapSpec::new(Protocol::TCP, 80)).unwrap();
    sent(&mut e);
    e.handle_datagram(t, server(), &NatPmpResponse::unsupported_version(1, 9).encode());
    assert_eq!(events(&mut e), vec![Event::Failed { id, error: Error::UnsuppVersion { server_version: 0 } }]);
    assert!(sent(&mut e).is_empty());
}

#[test]
fn natpmp_only_never_sends_pcp() {
    let mut e = engine_with(ProtocolChoice::NatPmpOnly);
    let t = Instant::now();
    assert_eq!(e.protocol_version(), ProtocolVersion::NatPmp);
    granted(&mut e, t, 8080, 3600);
    let ev = events(&mut e);
    assert!(matches!(&ev[..], [Event::Granted(i)] if i.external_port == 18080 && i.version == ProtocolVersion::NatPmp));
    // Even long after the retry interval.
    let later = t + PCP_RETRY_INTERVAL * 2;
    e.request_external_addr(later, None).unwrap();
    assert_eq!(natpmp_sent(&mut e), vec![NatPmpRequest::ExternalAddress]);
}

#[test]
fn retransmission_is_250ms_doubling_9_sends_within_the_deadline() {
    let mut e = engine_with(ProtocolChoice::NatPmpOnly);
    let t = Instant::now();
    // A long deadline: the count (9 sends) ends it.
    let policy = RetransmitPolicy::rfc().with_deadline(Duration::from_secs(600));
    let id = e.map(t, MapSpec::new(Protocol::UDP, 9).retransmit(policy)).unwrap();
    let mut sends = vec![t];
    sent(&mut e);
    let mut now = t;
    while let Some(at) = e.poll_timeout() {
        now = at;
        e.handle_timeout(now);
        for b in sent(&mut e) {
            if NatPmpRequest::decode(&b).unwrap().opcode() == 1 {
                sends.push(now);
            }
        }
        if !e.has_events() {
            continue;
        }
        if events(&mut e).contains(&Event::Failed { id, error: Error::Timeout }) {
            break;
        }
    }
    assert_eq!(sends.len() as u32, NATPMP_MAX_SENDS);
    let gaps: Vec<u64> = sends.windows(2).map(|w| (w[1] - w[0]).as_millis() as u64).collect();
    assert_eq!(gaps, vec![250, 500, 1000, 2000, 4000, 8000, 16000, 32000]);
    // The ninth send waits 64 s before giving up.
    assert_eq!((now - sends[8]).as_millis(), 64000);

    // The client's deadline (10 s by default) cuts it shorter.
    let mut e = engine_with(ProtocolChoice::NatPmpOnly);
    let id = e.map(t, MapSpec::new(Protocol::UDP, 9)).unwrap();
    let mut now;
    loop {
        let at = e.poll_timeout().unwrap();
        now = at;
        e.handle_timeout(now);
        if events(&mut e).contains(&Event::Failed { id, error: Error::Timeout }) {
            break;
        }
    }
    assert_eq!(now - t, Duration::from_secs(10));
}

#[test]
fn renewal_at_half_lifetime_and_delete_with_lifetime_0() {
    let mut e = engine_with(ProtocolChoice::NatPmpOnly);
    let t = Instant::now();
    let id = granted(&mut e, t, 8080, 3600);
    events(&mut e);
    assert_eq!(e.poll_timeout(), Some(t + Duration::from_secs(1800)));
    let half = t + Duration::from_secs(1800);
    e.handle_timeout(half);
    assert_eq!(
        natpmp_sent(&mut e),
        vec![NatPmpRequest::Map {
            protocol: NatPmpProtocol::Tcp,
            internal_port: 8080,
            suggested_port: 18080,
            lifetime: 3600
        }],
        "a renewal suggests the granted port"
    );
    e.handle_datagram(half, server(), &map_answer(NatPmpProtocol::Tcp, 8080, 18080, 3600, 1900));
    assert!(matches!(&events(&mut e)[..], [Event::Renewed(i)] if i.id == id && i.granted_at == half));
    e.delete(half, id).unwrap();
    assert_eq!(
        natpmp_sent(&mut e),
        vec![NatPmpRequest::Map { protocol: NatPmpProtocol::Tcp, internal_port: 8080, suggested_port: 0, lifetime: 0 }]
    );
    // A late success answer to the renewal (lifetime > 0) is not the delete's answer.
    e.handle_datagram(half, server(), &map_answer(NatPmpProtocol::Tcp, 8080, 18080, 3600, 1900));
    assert!(events(&mut e).is_empty());
    e.handle_datagram(half, server(), &map_answer(NatPmpProtocol::Tcp, 8080, 0, 0, 1900));
    assert_eq!(events(&mut e), vec![Event::Deleted { id, result: Ok(()) }]);
    assert!(e.is_idle());
}

#[test]
fn answers_that_match_nothing_are_dropped() {
    let mut e = engine_with(ProtocolChoice::NatPmpOnly);
    let t = Instant::now();
    e.map(t, MapSpec::new(Protocol::TCP, 80)).unwrap();
    sent(&mut e);
    let before = e.stats().dropped;
    // Another port, another protocol, a success with port 0, another sender.
    e.handle_datagram(t, server(), &map_answer(NatPmpProtocol::Tcp, 81, 1, 60, 1));
    e.handle_datagram(t, server(), &map_answer(NatPmpProtocol::Udp, 80, 1, 60, 1));
    e.handle_datagram(t, server(), &map_answer(NatPmpProtocol::Tcp, 80, 0, 60, 1));
    e.handle_datagram(t, "192.168.1.2:5351".parse().unwrap(), &map_answer(NatPmpProtocol::Tcp, 80, 1, 60, 1));
    assert_eq!(e.stats().dropped, before + 4);
    assert!(events(&mut e).is_empty());
}

#[test]
fn epoch_reboot_recreates_every_mapping() {
    let mut e = engine_with(ProtocolChoice::NatPmpOnly);
    let t = Instant::now();
    let a = granted(&mut e, t, 1000, 7200);
    let b = granted(&mut e, t, 2000, 7200);
    events(&mut e);
    // 100 s later the gateway says its epoch is 10: it rebooted (RFC 6886 3.6).
    let t2 = t + Duration::from_secs(100);
    e.request_external_addr(t2, None).unwrap();
    sent(&mut e);
    e.handle_datagram(t2, server(), &addr_answer(10));
    let ev = events(&mut e);
    assert!(ev.contains(&Event::ServerRestarted { epoch: 10 }), "{ev:?}");
    let reqs = natpmp_sent(&mut e);
    for port in [1000, 2000] {
        assert!(
            reqs.iter().any(
                |r| matches!(r, NatPmpRequest::Map { internal_port, lifetime: 7200, .. } if *internal_port == port)
            ),
            "{reqs:?}"
        );
    }
    e.handle_datagram(t2, server(), &map_answer(NatPmpProtocol::Tcp, 1000, 30000, 7200, 10));
    e.handle_datagram(t2, server(), &map_answer(NatPmpProtocol::Tcp, 2000, 30001, 7200, 10));
    let ev = events(&mut e);
    assert!(ev.iter().any(|x| matches!(x, Event::Renewed(i) if i.id == a && i.external_port == 30000)));
    assert!(ev.iter().any(|x| matches!(x, Event::Renewed(i) if i.id == b && i.external_port == 30001)));
}

#[test]
fn epoch_within_the_7_8_rule_is_no_reboot() {
    let mut e = engine_with(ProtocolChoice::NatPmpOnly);
    let t = Instant::now();
    granted(&mut e, t, 1000, 7200);
    events(&mut e);
    let t2 = t + Duration::from_secs(800);
    e.request_external_addr(t2, None).unwrap();
    sent(&mut e);
    // 800 s for us, 700 for the gateway: 7/8 of 800 = 700, within the rule.
    e.handle_datagram(t2, server(), &addr_answer(800));
    assert!(!events(&mut e).iter().any(|x| matches!(x, Event::ServerRestarted { .. })));
}

#[test]
fn unsolicited_announcement_renews_everything_after_a_random_delay() {
    let mut e = engine_with(ProtocolChoice::NatPmpOnly);
    let t = Instant::now();
    granted(&mut e, t, 1000, 7200);
    events(&mut e);
    let t2 = t + Duration::from_secs(60);
    // The gateway rebooted and changed address: it multicasts opcode 128.
    let ann = NatPmpResponse::announcement(0, Ipv4Addr::new(198, 51, 100, 1)).encode();
    e.handle_datagram(t2, server(), &ann);
    let ev = events(&mut e);
    assert!(ev.contains(&Event::ServerRestarted { epoch: 0 }));
    assert!(ev.contains(&Event::ExternalAddressChanged { old: EXT.into(), new: "198.51.100.1".parse().unwrap() }));
    assert!(sent(&mut e).is_empty(), "not at once");
    let at = e.poll_timeout().unwrap();
    assert!(at >= t2 && at <= t2 + Duration::from_secs(5));
    e.handle_timeout(at);
    assert_eq!(natpmp_sent(&mut e).len(), 1);
    // From another address it is ignored.
    let before = e.stats().dropped;
    e.handle_datagram(at, "10.9.9.9:5351".parse().unwrap(), &ann);
    assert_eq!(e.stats().dropped, before + 1);
}

#[test]
fn every_result_code_fails_a_first_request_with_its_error() {
    let cases = [
        (NatPmpResult::NotAuthorized, Error::NotAuthorized { retry_after: 0 }),
        (NatPmpResult::NetworkFailure, Error::NetworkFailure { retry_after: 0 }),
        (NatPmpResult::OutOfResources, Error::NoResources { retry_after: 0 }),
        (NatPmpResult::UnsupportedOpcode, Error::UnsuppOpcode { retry_after: 0 }),
    ];
    for (code, error) in cases {
        for short in [false, true] {
            let mut e = engine_with(ProtocolChoice::NatPmpOnly);
            let t = Instant::now();
            let id = e.map(t, MapSpec::new(Protocol::UDP, 7)).unwrap();
            sent(&mut e);
            let answer = if short {
                NatPmpResponse::Header { request_opcode: 1, result: code, epoch: 1 }
            } else {
                NatPmpResponse::Map {
                    protocol: NatPmpProtocol::Udp,
                    result: code,
                    epoch: 1,
                    internal_port: 7,
                    external_port: 0,
                    lifetime: 0,
                }
            };
            e.handle_datagram(t, server(), &answer.encode());
            assert!(events(&mut e).contains(&Event::Failed { id, error: error.clone() }), "{code} short={short}");
        }
        assert_eq!(natpmp_error(code), Some(error));
    }
    assert_eq!(natpmp_error(NatPmpResult::Success), None);
    assert_eq!(natpmp_error(NatPmpResult::UnsupportedVersion), Some(Error::UnsuppVersion { server_version: 0 }));
}

#[test]
fn a_failed_renewal_retries_and_the_address_query_error_fails_the_grant() {
    let mut e = engine_with(ProtocolChoice::NatPmpOnly);
    let t = Instant::now();
    let id = granted(&mut e, t, 1000, 100);
    events(&mut e);
    let half = t + Duration::from_secs(50);
    e.handle_timeout(half);
    sent(&mut e);
    let refused = NatPmpResponse::Map {
        protocol: NatPmpProtocol::Tcp,
        result: NatPmpResult::OutOfResources,
        epoch: 150,
        internal_port: 1000,
        external_port: 0,
        lifetime: 0,
    };
    e.handle_datagram(half, server(), &refused.encode());
    assert!(events(&mut e).is_empty(), "a renewal error is not the end");
    assert!(e.poll_timeout().unwrap() > half);
    assert!(e.mapping(id).is_some());

    // The address query failing fails the grant that waited for it.
    let mut e = engine_with(ProtocolChoice::NatPmpOnly);
    let id = e.map(t, MapSpec::new(Protocol::TCP, 5)).unwrap();
    sent(&mut e);
    e.handle_datagram(t, server(), &map_answer(NatPmpProtocol::Tcp, 5, 5, 60, 1));
    let no_addr = NatPmpResponse::ExternalAddress {
        result: NatPmpResult::NetworkFailure,
        epoch: 1,
        external_addr: Ipv4Addr::UNSPECIFIED,
    };
    e.handle_datagram(t, server(), &no_addr.encode());
    assert!(events(&mut e).contains(&Event::Failed { id, error: Error::NetworkFailure { retry_after: 0 } }));
}

#[test]
fn announce_and_external_address_use_opcode_0() {
    let mut e = engine_with(ProtocolChoice::NatPmpOnly);
    let t = Instant::now();
    let ann = e.announce(t, None);
    let ext = e.request_external_addr(t, None).unwrap();
    assert_eq!(natpmp_sent(&mut e), vec![NatPmpRequest::ExternalAddress, NatPmpRequest::ExternalAddress]);
    e.handle_datagram(t, server(), &addr_answer(77));
    let ev = events(&mut e);
    assert!(ev.contains(&Event::Announced { id: ann, result: Ok(77) }));
    assert!(ev.contains(&Event::ExternalAddress { id: ext, result: Ok(EXT.into()) }));
    assert!(e.is_idle(), "nothing to delete: no probe mapping over NAT-PMP");
}

#[test]
fn what_natpmp_cannot_do_fails_with_one_error() {
    let mut e = engine_with(ProtocolChoice::NatPmpOnly);
    let t = Instant::now();
    let peer = PeerSpec::new(Protocol::TCP, 80, "198.51.100.1".parse().unwrap(), 443);
    let filter = Filter { remote_addr: "198.51.100.0".parse().unwrap(), prefix_len: 24, remote_port: 0 };
    let cases: Vec<(Result<MappingId, Error>, &str)> = vec![
        (e.peer(t, peer), "PEER"),
        (
            e.map(t, MapSpec::new(Protocol::TCP, 80).third_party("192.168.1.50".parse::<std::net::IpAddr>().unwrap())),
            "THIRD_PARTY",
        ),
        (e.map(t, MapSpec::new(Protocol::TCP, 80).filter(filter)), "FILTER"),
        (e.map(t, MapSpec::new(Protocol::TCP, 80).external_port(80).prefer_failure()), "PREFER_FAILURE"),
        (
            e.map(t, MapSpec::new(Protocol::TCP, 80).external_addr("203.0.113.9".parse::<std::net::IpAddr>().unwrap())),
            "suggested external address",
        ),
        (e.map(t, MapSpec::new(Protocol::ALL, 0)), "protocol all"),
        (e.map(t, MapSpec::new(Protocol(132), 80)), "protocol 132"),
    ];
    for (result, what) in cases {
        match result {
            Err(err @ Error::UnsupportedByNatPmp(_)) => {
                assert_eq!(err.code(), "UNSUPPORTED_BY_NATPMP");
                assert!(err.to_string().contains(what), "{err} should name {what}");
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    assert!(sent(&mut e).is_empty());

    // IPv6.
    let mut c = EngineConfig::new("[2001:db8::1]:5351".parse().unwrap(), "2001:db8::2".parse().unwrap());
    c.protocol = ProtocolChoice::NatPmpOnly;
    let mut e6 = Engine::new(c);
    assert!(
        matches!(e6.map(t, MapSpec::new(Protocol::TCP, 80)), Err(Error::UnsupportedByNatPmp(m)) if m.contains("IPv6"))
    );
}

#[test]
fn a_peer_in_flight_at_the_switch_fails_by_name_and_the_map_goes_on() {
    let mut e = engine_with(ProtocolChoice::Auto);
    let t = Instant::now();
    let peer = e.peer(t, PeerSpec::new(Protocol::TCP, 80, "198.51.100.1".parse().unwrap(), 443)).unwrap();
    let map = e.map(t, MapSpec::new(Protocol::TCP, 81)).unwrap();
    sent(&mut e);
    e.handle_datagram(t, server(), &NatPmpResponse::unsupported_version(2, 5).encode());
    let ev = events(&mut e);
    assert!(
        matches!(&ev[..], [Event::Failed { id, error: Error::UnsupportedByNatPmp(m) }] if *id == peer && m.contains("PEER"))
    );
    let reqs = natpmp_sent(&mut e);
    assert!(reqs.contains(&NatPmpRequest::Map {
        protocol: NatPmpProtocol::Tcp,
        internal_port: 81,
        suggested_port: 0,
        lifetime: 3600
    }));
    assert!(e.mapping_ids().contains(&map));
}

#[test]
fn switching_keeps_what_is_left_of_the_deadline() {
    let mut e = engine_with(ProtocolChoice::Auto);
    let t = Instant::now();
    let id = e.map(t, MapSpec::new(Protocol::TCP, 80)).unwrap();
    sent(&mut e);
    // The refusal comes after 4 s (a retransmission later); 6 s are left.
    let t4 = t + Duration::from_secs(4);
    e.handle_timeout(t4);
    sent(&mut e);
    e.handle_datagram(t4, server(), &NatPmpResponse::unsupported_version(1, 5).encode());
    let mut now = t4;
    while !events(&mut e).contains(&Event::Failed { id, error: Error::Timeout }) {
        now = e.poll_timeout().unwrap();
        e.handle_timeout(now);
        sent(&mut e);
    }
    assert_eq!(now - t, Duration::from_secs(10), "the client's 10 s deadline holds across the switch");
}
