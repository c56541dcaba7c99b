//! RFC 6887 rules of issue 10 (and defects 1 and 2 of issue 13), one test
//! each, on the simulated clock. The section is in each test's doc comment.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use pcp_core::engine::*;
use pcp_core::wire::*;
use pcp_core::Error;

mod sim;
use sim::*;

fn engine_with(f: impl FnOnce(&mut EngineConfig)) -> Engine {
    seeded_engine(9, f)
}

fn engine() -> Engine {
    engine_with(|_| {})
}

/// The answer to `req` with every field chosen.
fn answer_with(req: &Request, result: ResultCode, lifetime: u32, epoch: u32, port: u16, addr: IpAddr) -> Vec<u8> {
    let body = req.body.with_external(port, addr);
    Response::new(result, lifetime, epoch, body).encode()
}

fn grant(req: &Request, lifetime: u32, epoch: u32) -> Vec<u8> {
    answer_with(req, ResultCode::Success, lifetime, epoch, 40000, ip("203.0.113.7"))
}

fn nonce_of(req: &Request) -> Nonce {
    match req.body {
        Body::Map(m) => m.nonce,
        Body::Peer(p) => p.nonce,
        Body::Announce => panic!("no nonce"),
    }
}

fn granted(e: &mut Engine, t: Instant, port: u16, lifetime: u32) -> (MappingId, Request) {
    let id = e.map(t, MapSpec::new(Protocol::TCP, port).lifetime(lifetime)).unwrap();
    let req = sent(e).pop().unwrap();
    e.handle_datagram(t, server(), &grant(&req, lifetime, 100));
    assert!(matches!(&events(e)[..], [Event::Granted(i)] if i.id == id));
    (id, req)
}

/// Runs every timer until the engine has none, collecting the instants at
/// which it sent something (bounded).
fn run_to_end(e: &mut Engine) -> (Vec<Instant>, Instant) {
    let mut sends = Vec::new();
    let mut now = None;
    for _ in 0..10_000 {
        let Some(t) = e.poll_timeout() else { break };
        now = Some(t);
        e.handle_timeout(t);
        sends.extend(sent(e).iter().map(|_| t));
    }
    (sends, now.expect("had a timer"))
}

fn bad_response(ev: &[Event]) -> String {
    match ev {
        [Event::Failed { error: Error::BadResponse(why), .. }] => why.clone(),
        other => panic!("expected one BAD_RESPONSE failure, got {other:?}"),
    }
}

// ---- item 1: section 11.2.1 ----

/// Section 11.2.1: renewals at 1/2..5/8, then 3/4..3/4+1/16, then
/// 7/8..7/8+1/32 of the lifetime, one packet each, never under 4 s apart,
/// until the mapping expires.
#[test]
fn unanswered_renewals_follow_the_section_11_2_1_schedule() {
    let mut e = engine();
    let t0 = Instant::now();
    let (id, _) = granted(&mut e, t0, 80, 3600);
    let (sends, end) = run_to_end(&mut e);
    let frac: Vec<f64> = sends.iter().map(|s| (*s - t0).as_secs_f64() / 3600.0).collect();
    assert!((0.5..=0.625).contains(&frac[0]), "{frac:?}");
    assert!((0.75..=0.75 + 1.0 / 16.0).contains(&frac[1]), "second at {}", frac[1]);
    assert!((0.875..=0.875 + 1.0 / 32.0).contains(&frac[2]), "third at {}", frac[2]);
    assert!((0.9375..=0.9375 + 1.0 / 64.0).contains(&frac[3]), "fourth at {}", frac[3]);
    for w in sends.windows(2) {
        assert!(w[1] - w[0] >= secs(4.0), "renewals {:?} apart", w[1] - w[0]);
    }
    assert_eq!(end - t0, secs(3600.0), "lost at expiry");
    assert_eq!(events(&mut e), vec![Event::Lost { id, error: Error::Timeout }]);
}

/// Section 11.2.1 with a short lifetime: the 4-second floor wins over the
/// halving, and nothing is sent at or after expiry.
#[test]
fn short_lifetime_renewals_stay_four_seconds_apart() {
    let mut e = engine();
    let t0 = Instant::now();
    granted(&mut e, t0, 80, 20);
    let (sends, end) = run_to_end(&mut e);
    assert!(sends.len() >= 2, "{sends:?}");
    for w in sends.windows(2) {
        assert!(w[1] - w[0] >= secs(4.0), "{:?}", w[1] - w[0]);
    }
    assert!(sends.iter().all(|s| *s < t0 + secs(20.0)));
    assert_eq!(end - t0, secs(20.0));
}

// ---- item 4: section 14.2 ----

/// Section 14.2: an unsolicited MAP response for a live mapping (same
/// nonce, protocol, internal port, from the server) updates it; a repeat
/// of what we hold is a duplicate.
#[test]
fn unsolicited_mapping_update_is_taken_and_reported() {
    let mut e = engine();
    let t0 = Instant::now();
    let (id, req) = granted(&mut e, t0, 80, 3600);
    let t1 = t0 + secs(60.0);
    e.handle_datagram(t1, server(), &grant(&req, 3600, 160));
    assert!(events(&mut e).is_empty(), "a duplicate of the grant changes nothing");
    let update = answer_with(&req, ResultCode::Success, 1800, 160, 41000, ip("203.0.113.99"));
    e.handle_datagram(t1, "127.0.0.1:5350".parse().unwrap(), &update);
    assert!(events(&mut e).is_empty(), "not from the server's port");
    e.handle_datagram(t1, server(), &update);
    let ev = events(&mut e);
    assert!(ev.contains(&Event::ExternalAddressChanged { old: ip("203.0.113.7"), new: ip("203.0.113.99") }));
    let Some(Event::Updated(info)) = ev.iter().find(|e| matches!(e, Event::Updated(_))) else { panic!("{ev:?}") };
    assert_eq!((info.id, info.external_port, info.lifetime, info.granted_at), (id, 41000, 1800, t1));
    assert_eq!(e.mapping(id).unwrap().external_port, 41000);
    let frac = (e.poll_timeout().unwrap() - t1).as_secs_f64() / 1800.0;
    assert!((0.5..=0.625).contains(&frac), "renewal rescheduled from the update: {frac}");
}

// ---- item 5: sections 8.1, 11.1 ----

/// Sections 8.1/11.1: after our address changes, every mapping of this
/// host is recreated at once from the new address (same nonce), and the
/// change is reported; a third party's mapping keeps its address.
#[test]
fn client_address_change_recreates_mappings_from_the_new_address() {
    let mut e = engine();
    let t0 = Instant::now();
    let (id, req) = granted(&mut e, t0, 80, 3600);
    let t1 = t0 + secs(100.0);
    assert!(!e.set_client_addr(t1, ip("127.0.0.1")), "same address: nothing to do");
    assert!(e.set_client_addr(t1, ip("127.0.0.5")));
    assert_eq!(events(&mut e), vec![Event::InternalAddressChanged { old: ip("127.0.0.1"), new: ip("127.0.0.5") }]);
    let again = sent(&mut e);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].client_addr, ip("127.0.0.5"));
    assert_eq!(nonce_of(&again[0]), nonce_of(&req));
    e.handle_datagram(t1, server(), &grant(&again[0], 3600, 200));
    match &events(&mut e)[..] {
        [Event::Renewed(i)] => assert_eq!((i.id, i.internal_addr), (id, ip("127.0.0.5"))),
        other => panic!("{other:?}"),
    }
}

/// Section 11.5: the client checks its own address right before a
/// renewal goes, so `renewal_due` must say when one is due (and only then:
/// a first request's retransmission is no reason to look).
#[test]
fn renewal_due_says_when_a_renewal_would_go() {
    let mut e = engine();
    let t0 = Instant::now();
    e.map(t0, MapSpec::new(Protocol::TCP, 81)).unwrap();
    let _ = sent(&mut e);
    let retransmit_at = e.poll_timeout().unwrap();
    assert!(!e.renewal_due(retransmit_at), "a first request's retransmission is not a renewal");
    let mut e = engine();
    let (_, _) = granted(&mut e, t0, 80, 3600);
    let renew_at = e.poll_timeout().unwrap();
    assert!(!e.renewal_due(renew_at - secs(0.001)));
    assert!(e.renewal_due(renew_at));
    e.handle_timeout(renew_at);
    let _ = sent(&mut e);
    // The renewal is on the wire; its next attempt is a renewal again.
    let next = e.poll_timeout().unwrap();
    assert!(!e.renewal_due(next - secs(0.001)));
    assert!(e.renewal_due(next));
}

// ---- item 6: sections 8.3, 11.4 ----

/// Section 8.3: the same request is not sent again within the error's
/// lifetime; it fails at once with the seconds left as `retry_after`.
#[test]
fn error_lifetime_keeps_the_same_request_off_the_wire() {
    let mut e = engine();
    let t0 = Instant::now();
    let id = e.map(t0, MapSpec::new(Protocol::TCP, 80)).unwrap();
    let req = sent(&mut e).pop().unwrap();
    e.handle_datagram(t0, server(), &answer_with(&req, ResultCode::NotAuthorized, 30, 1, 0, ip("::")));
    let ev = events(&mut e);
    assert_eq!(ev, vec![Event::Failed { id, error: Error::NotAuthorized { retry_after: 30 } }]);
    let Event::Failed { error, .. } = &ev[0] else { unreachable!() };
    assert_eq!(error.retry_after(), Some(30));
    let again = e.map(t0 + secs(10.5), MapSpec::new(Protocol::TCP, 80)).unwrap_err();
    assert_eq!(again.retry_after(), Some(20), "{again}");
    assert_eq!(again.code(), "NOT_AUTHORIZED");
    assert!(sent(&mut e).is_empty(), "not sent to the server");
    e.map(t0 + secs(10.5), MapSpec::new(Protocol::TCP, 81)).expect("another request goes");
    e.map(t0 + secs(30.0), MapSpec::new(Protocol::TCP, 80)).expect("after the lifetime it goes");
    assert_eq!(sent(&mut e).len(), 2);
}

/// Section 8.3: after NO_RESOURCES no new mapping request goes to the
/// server for the error's lifetime; renewals and deletes still go.
#[test]
fn no_resources_stops_new_mappings_but_not_renewals_or_deletes() {
    let mut e = engine();
    let t0 = Instant::now();
    let (held, _) = granted(&mut e, t0, 1000, 3600);
    e.map(t0, MapSpec::new(Protocol::UDP, 53)).unwrap();
    let req = sent(&mut e).pop().unwrap();
    e.handle_datagram(t0, server(), &answer_with(&req, ResultCode::NoResources, 60, 100, 0, ip("::")));
    events(&mut e);
    let err = e.map(t0 + secs(1.0), MapSpec::new(Protocol::TCP, 2000)).unwrap_err();
    assert_eq!((err.code(), err.retry_after()), ("NO_RESOURCES", Some(59)));
    let peer = PeerSpec::new(Protocol::TCP, 2001, ip("198.51.100.1"), 443);
    assert_eq!(e.peer(t0 + secs(1.0), peer).unwrap_err().code(), "NO_RESOURCES");
    assert!(e.request_external_addr(t0 + secs(1.0), None).is_err());
    assert!(sent(&mut e).is_empty());
    e.renew_all(t0 + secs(2.0));
    assert_eq!(sent(&mut e).len(), 1, "the renewal goes");
    e.delete(t0 + secs(2.0), held).unwrap();
    assert_eq!(sent(&mut e).pop().unwrap().lifetime, 0, "the delete goes");
    e.map(t0 + secs(60.0), MapSpec::new(Protocol::TCP, 2000)).expect("after 60 s new mappings go again");
}

// ---- item 7: section 11.1 ----

/// Section 11.1: internal port 0 is "all ports": legal for MAP with a
/// protocol, and with lifetime 0 it deletes a set of mappings.
#[test]
fn internal_port_zero_maps_and_deletes_all_ports() {
    let mut e = engine();
    let t = Instant::now();
    let id = e.map(t, MapSpec::new(Protocol::TCP, 0)).unwrap();
    let req = sent(&mut e).pop().unwrap();
    let Body::Map(m) = req.body else { panic!() };
    assert_eq!((m.protocol, m.internal_port), (Protocol::TCP, 0));
    e.handle_datagram(t, server(), &answer_with(&req, ResultCode::Success, 600, 1, 0, ip("203.0.113.7")));
    assert!(matches!(&events(&mut e)[..], [Event::Granted(i)] if i.id == id && i.external_port == 0));
    let del = e.delete_by_nonce(t, MapSpec::new(Protocol::UDP, 0).nonce(Nonce::from_bytes([3; 12]))).unwrap();
    let req = sent(&mut e).pop().unwrap();
    let Body::Map(m) = req.body else { panic!() };
    assert_eq!((req.lifetime, m.protocol, m.internal_port), (0, Protocol::UDP, 0));
    e.handle_datagram(t, server(), &answer_with(&req, ResultCode::Success, 0, 1, 0, ip("::ffff:0.0.0.0")));
    assert_eq!(events(&mut e), vec![Event::Deleted { id: del, result: Ok(()) }]);
    assert!(matches!(e.map(t, MapSpec::new(Protocol::ALL, 5)), Err(Error::InvalidArgument(_))));
}

// ---- item 8: section 7 ----

/// Section 7: a request over 1100 bytes is refused before sending.
#[test]
fn a_request_over_1100_bytes_is_refused_before_sending() {
    let mut e = engine();
    let t = Instant::now();
    let filter = |i: u8| Filter { remote_addr: IpAddr::from([198, 51, 100, i]), prefix_len: 32, remote_port: 0 };
    // 24 + 36 + 43 * 24 = 1092 bytes: fits.
    let fits = (0..43).fold(MapSpec::new(Protocol::TCP, 80), |s, i| s.filter(filter(i)));
    e.map(t, fits).unwrap();
    assert_eq!(std::iter::from_fn(|| e.poll_transmit()).next().unwrap().payload.len(), 1092);
    let over = (0..44).fold(MapSpec::new(Protocol::TCP, 81), |s, i| s.filter(filter(i)));
    match e.map(t, over) {
        Err(Error::InvalidArgument(why)) => assert!(why.contains("1100"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(e.poll_transmit().is_none());
}

// ---- item 9 and issue 13 defect 1 ----

/// A SUCCESS that matches but cannot be used ends the request at once with
/// BAD_RESPONSE naming what is wrong: the wrong address family, a lifetime
/// of 0, an address nobody can reach.
#[test]
fn unusable_matched_answers_fail_at_once_with_bad_response() {
    let cases: &[(&str, u32, &str)] = &[
        ("2001:db8::1", 600, "IPv6"),
        ("203.0.113.7", 0, "lifetime of 0"),
        ("::", 600, "::"),
        ("::ffff:0.0.0.0", 600, "0.0.0.0"),
        ("224.0.0.1", 600, "224.0.0.1"),
        ("ff02::1", 600, "multicast"),
        ("255.255.255.255", 600, "255.255.255.255"),
    ];
    for (addr, lifetime, named) in cases {
        let mut e = engine();
        let t = Instant::now();
        e.map(t, MapSpec::new(Protocol::TCP, 80)).unwrap();
        let req = sent(&mut e).pop().unwrap();
        e.handle_datagram(t, server(), &answer_with(&req, ResultCode::Success, *lifetime, 1, 40000, ip(addr)));
        let why = bad_response(&events(&mut e));
        assert!(why.contains(named), "{addr}: {why}");
        assert!(e.is_idle(), "{addr}: the request ended");
    }
}

/// A delete answered SUCCESS with a lifetime did not delete: BAD_RESPONSE
/// (when no create went out with that nonce, so it cannot be a late answer).
#[test]
fn a_delete_answered_with_a_lifetime_fails() {
    let mut e = engine();
    let t = Instant::now();
    let id = e.delete_by_nonce(t, MapSpec::new(Protocol::TCP, 80).nonce(Nonce::from_bytes([5; 12]))).unwrap();
    let req = sent(&mut e).pop().unwrap();
    e.handle_datagram(t, server(), &grant(&req, 600, 1));
    match &events(&mut e)[..] {
        [Event::Deleted { id: got, result: Err(Error::BadResponse(why)) }] if *got == id => {
            assert!(why.contains("not deleted"), "{why}")
        }
        other => panic!("{other:?}"),
    }
}

// ---- issue 13 defect 2: section 9 ----

/// Garbage of another version is no version answer, and does not stop the
/// valid answer right behind it.
#[test]
fn garbage_of_another_version_is_dropped_and_the_valid_answer_wins() {
    let mut e = engine();
    let t = Instant::now();
    let id = e.map(t, MapSpec::new(Protocol::TCP, 80)).unwrap();
    let req = sent(&mut e).pop().unwrap();
    let mut junk = vec![0x5a; 1028];
    junk[0] = 91;
    junk[1] = 0x81;
    junk[3] = ResultCode::UnsuppVersion.to_u8();
    e.handle_datagram(t, server(), &junk);
    // Higher than ours: no server answers in a version above the one asked.
    let mut higher = vec![0; 24];
    (higher[0], higher[1], higher[3]) = (3, 0x81, 1);
    e.handle_datagram(t, server(), &higher);
    // NAT-PMP-looking but not a multiple of 4, or of an opcode we never sent.
    e.handle_datagram(t, server(), &[0, 129, 0, 1, 0, 0, 0, 9, 0, 0]);
    e.handle_datagram(t, server(), &[0, 200, 0, 1, 0, 0, 0, 9]);
    assert!(events(&mut e).is_empty());
    assert_eq!(e.stats().dropped, 4);
    e.handle_datagram(t, server(), &grant(&req, 600, 1));
    assert!(matches!(&events(&mut e)[..], [Event::Granted(i)] if i.id == id));
    // A well-formed lower-version answer is still a version answer.
    e.map(t, MapSpec::new(Protocol::TCP, 81)).unwrap();
    let mut v1 = vec![0; 24];
    (v1[0], v1[1], v1[3]) = (1, 0x81, 1);
    e.handle_datagram(t, server(), &v1);
    assert!(matches!(&events(&mut e)[..], [Event::Failed { error: Error::UnsuppVersion { server_version: 1 }, .. }]));
}

/// A header-only error does not override a valid answer that arrives
/// within its grace (until the next retransmission).
#[test]
fn header_only_error_loses_to_a_valid_answer_in_its_grace() {
    let mut e = engine();
    let t = Instant::now();
    let id = e.map(t, MapSpec::new(Protocol::TCP, 80)).unwrap();
    let req = sent(&mut e).pop().unwrap();
    let mut hdr = vec![2, 0x81, 0, ResultCode::NotAuthorized.to_u8()];
    hdr.extend_from_slice(&[0; 20]);
    e.handle_datagram(t, server(), &hdr);
    e.handle_datagram(t + secs(1.0), server(), &grant(&req, 600, 1));
    assert!(matches!(&events(&mut e)[..], [Event::Granted(i)] if i.id == id));
    e.handle_timeout(t + secs(10.0));
    assert!(events(&mut e).is_empty());
}

// ---- item 10: section 8.5 ----

/// Section 8.5: an epoch more than one second below the previous one is a
/// server restart (the code allowed two).
#[test]
fn epoch_two_seconds_back_is_a_restart() {
    let mut e = engine();
    let t0 = Instant::now();
    granted(&mut e, t0, 1000, 3600); // epoch 100
    e.map(t0, MapSpec::new(Protocol::TCP, 2000)).unwrap();
    let req = sent(&mut e).pop().unwrap();
    e.handle_datagram(t0, server(), &grant(&req, 3600, 98));
    assert_eq!(events(&mut e)[0], Event::ServerRestarted { epoch: 98 });
}

// ---- item 11: section 14.1.3 ----

/// Section 14.1.3: repeated (or spoofed) unsolicited ANNOUNCEs cost one
/// renewal pass per holdoff, not one each.
#[test]
fn announce_flood_triggers_one_renewal_pass() {
    let mut e = engine_with(|c| c.announce_delay_max = Duration::ZERO);
    let t0 = Instant::now();
    granted(&mut e, t0, 1000, 3600);
    let announce = Response::new(ResultCode::Success, 0, 0, Body::Announce).encode();
    let mut renewals = 0;
    for i in 0..20 {
        let t = t0 + secs(100.0 + f64::from(i) * 0.4);
        e.handle_datagram(t, server(), &announce);
        e.handle_timeout(t);
        for r in sent(&mut e) {
            renewals += 1;
            e.handle_datagram(t, server(), &grant(&r, 3600, 200));
        }
    }
    assert_eq!(renewals, 1, "one pass for 20 ANNOUNCEs within 8 s");
    let later = t0 + secs(100.0) + ANNOUNCE_HOLDOFF;
    e.handle_datagram(later, server(), &announce);
    e.handle_timeout(later);
    assert_eq!(sent(&mut e).len(), 1, "after the holdoff, the next ANNOUNCE counts");
}

// ---- item 12: section 13.1 ----

/// Section 13.1: THIRD_PARTY names another host, never our own address.
#[test]
fn third_party_naming_our_own_address_is_refused() {
    let mut e = engine();
    let t = Instant::now();
    for own in ["127.0.0.1", "::ffff:127.0.0.1"] {
        match e.map(t, MapSpec::new(Protocol::TCP, 80).third_party(ip(own))) {
            Err(Error::InvalidArgument(why)) => assert!(why.contains("own address"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
    let peer = PeerSpec::new(Protocol::TCP, 80, ip("198.51.100.1"), 443).third_party(ip("127.0.0.1"));
    assert!(matches!(e.peer(t, peer), Err(Error::InvalidArgument(_))));
    assert!(e.poll_transmit().is_none());
    e.map(t, MapSpec::new(Protocol::TCP, 80).third_party(ip("127.0.0.9"))).expect("another host is fine");
}
