//! PREFER_FAILURE (RFC 6887 section 13.2) answered with a mapping the
//! request asked not to get, on the simulated clock: the request ends at
//! once with BAD_RESPONSE naming both values, and the engine deletes the
//! unwanted mapping at the server by itself (same nonce, lifetime 0,
//! THIRD_PARTY kept). miniupnpd 2.3.1 answers so when the suggested port is
//! taken (tests/interop/README.md, quirks).

use std::net::IpAddr;
use std::time::Instant;

use pcp_core::engine::*;
use pcp_core::wire::*;
use pcp_core::Error;

mod sim;
use sim::*;

const EXTERNAL: &str = "203.0.113.7";

fn engine() -> Engine {
    seeded_engine(13, |_| {})
}

/// SUCCESS to `req` with this external port and address, the options
/// echoed, at epoch 100.
fn success(req: &Request, lifetime: u32, port: u16, addr: IpAddr) -> Vec<u8> {
    success_at(req, 100, lifetime, port, addr)
}

/// The same at `epoch` (which must move on with the clock, section 8.5).
fn success_at(req: &Request, epoch: u32, lifetime: u32, port: u16, addr: IpAddr) -> Vec<u8> {
    let mut r = Response::new(ResultCode::Success, lifetime, epoch, req.body.with_external(port, addr));
    r.options = req.options.clone();
    r.encode()
}

fn map_fields(req: &Request) -> MapPayload {
    match req.body {
        Body::Map(m) => m,
        ref other => panic!("not a MAP: {other:?}"),
    }
}

fn prefer_failure(port: u16) -> MapSpec {
    MapSpec::new(Protocol::TCP, 8099).external_port(port).lifetime(600).prefer_failure()
}

fn one_error(ev: &[Event]) -> (&'static str, MappingId, String) {
    match ev {
        [e @ (Event::Failed { id, error: Error::BadResponse(why) }
        | Event::Lost { id, error: Error::BadResponse(why) })] => (e.name(), *id, why.clone()),
        other => panic!("expected one BAD_RESPONSE failure or loss, got {other:?}"),
    }
}

/// The one request sent must be the delete of the mapping `create` asked
/// for, naming what the server assigned; answers it and checks that the
/// engine is done, having reported nothing more.
fn deleted_quietly(e: &mut Engine, t: Instant, epoch: u32, create: &Request, assigned_port: u16) -> Request {
    let reqs = sent(e);
    let [delete] = &reqs[..] else { panic!("expected one delete, got {reqs:?}") };
    assert_eq!(delete.lifetime, 0, "a delete");
    let (d, c) = (map_fields(delete), map_fields(create));
    assert_eq!((d.nonce, d.protocol, d.internal_port), (c.nonce, c.protocol, c.internal_port), "the same mapping");
    assert_eq!(d.external_port, assigned_port, "names what the server assigned");
    assert!(!delete.options.contains(&PcpOption::PreferFailure), "no PREFER_FAILURE on a delete: {:?}", delete.options);
    e.handle_datagram(t, server(), &Response::new(ResultCode::Success, 0, epoch, delete.body).encode());
    assert_eq!(events(e), vec![], "the delete of an unwanted grant reports nothing");
    assert!(e.is_idle(), "nothing left");
    delete.clone()
}

/// Section 13.2: SUCCESS with another external port than the suggested one
/// fails the MAP at once, and the server's mapping is deleted.
#[test]
fn another_port_despite_prefer_failure_fails_and_is_deleted() {
    let mut e = engine();
    let t = Instant::now();
    let id = e.map(t, prefer_failure(8098)).unwrap();
    let create = sent(&mut e).pop().unwrap();
    assert!(create.options.contains(&PcpOption::PreferFailure));
    e.handle_datagram(t, server(), &success(&create, 600, 8100, ip(EXTERNAL)));
    let (kind, got, why) = one_error(&events(&mut e));
    assert_eq!((kind, got), ("failed", id), "{why}");
    assert!(why.contains("8100") && why.contains("8098") && why.contains("PREFER_FAILURE"), "{why}");
    // Not the caller's mapping any more, even before the delete is answered.
    assert_eq!((e.mapping(id), e.mapping_count(), e.mapping_ids()), (None, 0, vec![]));
    assert!(e.find_map(Protocol::TCP, 8099).is_none());
    assert!(e.delete(t, id).is_err(), "nothing for the caller to delete");
    deleted_quietly(&mut e, t, 100, &create, 8100);
}

/// The suggested port granted: an ordinary grant, and its renewals (which
/// keep the option) too.
#[test]
fn the_suggested_port_is_granted_and_renewed_as_usual() {
    let mut e = engine();
    let t = Instant::now();
    let id = e.map(t, prefer_failure(8098)).unwrap();
    let create = sent(&mut e).pop().unwrap();
    e.handle_datagram(t, server(), &success(&create, 600, 8098, ip(EXTERNAL)));
    assert!(matches!(&events(&mut e)[..], [Event::Granted(i)] if i.id == id && i.external_port == 8098));
    let at = e.poll_timeout().unwrap();
    e.handle_timeout(at);
    let renewal = sent(&mut e).pop().unwrap();
    assert!(renewal.options.contains(&PcpOption::PreferFailure), "renewals carry the option");
    let epoch = 100 + (at - t).as_secs() as u32;
    e.handle_datagram(at, server(), &success_at(&renewal, epoch, 600, 8098, ip(EXTERNAL)));
    assert!(matches!(&events(&mut e)[..], [Event::Renewed(i)] if i.id == id && i.external_port == 8098));
}

/// Without PREFER_FAILURE a renewal that comes back with another port is a
/// renewal of the same mapping, now at that port (the engine's convention);
/// with it, the mapping the caller held at its port is gone: Lost, with
/// BAD_RESPONSE, and the moved mapping is deleted.
#[test]
fn a_renewal_moved_to_another_port_is_lost_only_with_prefer_failure() {
    for with_option in [false, true] {
        let mut e = engine();
        let t = Instant::now();
        let spec =
            if with_option { prefer_failure(8098) } else { MapSpec::new(Protocol::TCP, 8099).external_port(8098) };
        let id = e.map(t, spec.lifetime(600)).unwrap();
        let create = sent(&mut e).pop().unwrap();
        e.handle_datagram(t, server(), &success(&create, 600, 8098, ip(EXTERNAL)));
        assert!(matches!(&events(&mut e)[..], [Event::Granted(_)]));
        let at = e.poll_timeout().unwrap();
        e.handle_timeout(at);
        let renewal = sent(&mut e).pop().unwrap();
        let epoch = 100 + (at - t).as_secs() as u32;
        e.handle_datagram(at, server(), &success_at(&renewal, epoch, 600, 8101, ip(EXTERNAL)));
        let ev = events(&mut e);
        if !with_option {
            assert!(matches!(&ev[..], [Event::Renewed(i)] if i.id == id && i.external_port == 8101), "{ev:?}");
            continue;
        }
        let (kind, got, why) = one_error(&ev);
        assert_eq!((kind, got), ("lost", id), "{why}");
        assert!(why.contains("8101") && why.contains("8098"), "{why}");
        assert_eq!(e.mapping_count(), 0);
        deleted_quietly(&mut e, at, epoch, &create, 8101);
    }
}

/// A suggested external address is part of what PREFER_FAILURE insists on;
/// the unspecified address ("any of this family") is not.
#[test]
fn another_address_counts_only_when_one_was_suggested() {
    let mut e = engine();
    let t = Instant::now();
    let id = e.map(t, prefer_failure(8098).external_addr(ip("198.51.100.9"))).unwrap();
    let create = sent(&mut e).pop().unwrap();
    e.handle_datagram(t, server(), &success(&create, 600, 8098, ip(EXTERNAL)));
    let (kind, got, why) = one_error(&events(&mut e));
    assert_eq!((kind, got), ("failed", id));
    assert!(why.contains(EXTERNAL) && why.contains("198.51.100.9"), "{why}");
    deleted_quietly(&mut e, t, 100, &create, 8098);

    let mut e = engine();
    let id = e.map(t, prefer_failure(8098).external_addr(ip("0.0.0.0"))).unwrap();
    let create = sent(&mut e).pop().unwrap();
    e.handle_datagram(t, server(), &success(&create, 600, 8098, ip(EXTERNAL)));
    assert!(matches!(&events(&mut e)[..], [Event::Granted(i)] if i.id == id));
}

/// Section 13.1: a third party's mapping is deleted with its THIRD_PARTY
/// option, or the server would look for a mapping of ours.
#[test]
fn the_delete_of_a_third_party_grant_keeps_third_party() {
    let mut e = engine();
    let t = Instant::now();
    let third = ip("192.0.2.44");
    e.map(t, prefer_failure(8098).third_party(third)).unwrap();
    let create = sent(&mut e).pop().unwrap();
    e.handle_datagram(t, server(), &success(&create, 600, 8100, ip(EXTERNAL)));
    assert_eq!(one_error(&events(&mut e)).0, "failed");
    let delete = deleted_quietly(&mut e, t, 100, &create, 8100);
    assert_eq!(delete.options, vec![PcpOption::ThirdParty(third)]);
}

/// Copies of the unwanted answer arriving during the delete (a
/// retransmitted create answered twice) change nothing; an unanswered
/// delete retransmits for a bounded time and ends with no event.
#[test]
fn late_copies_are_dropped_and_an_unanswered_delete_ends_quietly() {
    let mut e = engine();
    let t = Instant::now();
    e.map(
        t,
        prefer_failure(8098).retransmit(
            RetransmitPolicy::default().with_max_retransmissions(3).with_deadline(std::time::Duration::from_secs(30)),
        ),
    )
    .unwrap();
    let create = sent(&mut e).pop().unwrap();
    let answer = success(&create, 600, 8100, ip(EXTERNAL));
    e.handle_datagram(t, server(), &answer);
    assert_eq!(one_error(&events(&mut e)).0, "failed");
    assert_eq!(sent(&mut e).len(), 1, "the delete");
    e.handle_datagram(t, server(), &answer);
    assert_eq!((events(&mut e), sent(&mut e).len()), (vec![], 0), "a late copy is dropped");
    let mut sends = 0;
    for _ in 0..100 {
        let Some(at) = e.poll_timeout() else { break };
        e.handle_timeout(at);
        sends += sent(&mut e).len();
    }
    assert!(e.is_idle(), "the delete gave up");
    assert!((1..=4).contains(&sends), "bounded retransmissions of the delete: {sends}");
    assert_eq!(events(&mut e), vec![]);
}

/// Section 14.2: an unsolicited update that moves a PREFER_FAILURE mapping
/// to another port ends it the same way (Lost, and deleted).
#[test]
fn an_update_moving_a_prefer_failure_mapping_loses_it() {
    let mut e = engine();
    let t = Instant::now();
    let id = e.map(t, prefer_failure(8098)).unwrap();
    let create = sent(&mut e).pop().unwrap();
    e.handle_datagram(t, server(), &success(&create, 600, 8098, ip(EXTERNAL)));
    assert!(matches!(&events(&mut e)[..], [Event::Granted(_)]));
    e.handle_datagram(t, server(), &success(&create, 600, 8102, ip(EXTERNAL)));
    let (kind, got, why) = one_error(&events(&mut e));
    assert_eq!((kind, got), ("lost", id), "{why}");
    deleted_quietly(&mut e, t, 100, &create, 8102);
}

/// Section 8.5: every response is checked for a server restart, this one
/// too. A renewal answered by a restarted server (its epoch starts again)
/// that moved the PREFER_FAILURE mapping loses it, and the other mappings
/// are renewed at once, as after any answer showing the restart.
#[test]
fn an_unwanted_grant_from_a_restarted_server_renews_the_others() {
    let mut e = engine();
    let t = Instant::now();
    let other = e.map(t, MapSpec::new(Protocol::UDP, 9000).lifetime(3600)).unwrap();
    let other_create = sent(&mut e).pop().unwrap();
    e.handle_datagram(t, server(), &success(&other_create, 3600, 9000, ip(EXTERNAL)));
    let id = e.map(t, prefer_failure(8098)).unwrap();
    let create = sent(&mut e).pop().unwrap();
    e.handle_datagram(t, server(), &success(&create, 600, 8098, ip(EXTERNAL)));
    assert_eq!(events(&mut e).len(), 2, "both granted");
    let at = e.poll_timeout().unwrap();
    e.handle_timeout(at);
    let renewal = sent(&mut e).pop().unwrap();
    assert_eq!(map_fields(&renewal).internal_port, 8099, "the PREFER_FAILURE mapping renews first");
    // Epoch 2 where about 100 + 300 was due: the server restarted.
    e.handle_datagram(at, server(), &success_at(&renewal, 2, 600, 8101, ip(EXTERNAL)));
    let ev = events(&mut e);
    assert!(ev.iter().any(|e| matches!(e, Event::ServerRestarted { epoch: 2 })), "{ev:?}");
    assert!(ev.iter().any(|e| matches!(e, Event::Lost { id: i, .. } if *i == id)), "{ev:?}");
    let reqs = sent(&mut e);
    let ports: Vec<(u16, u32)> = reqs.iter().map(|r| (map_fields(r).internal_port, r.lifetime)).collect();
    assert!(ports.contains(&(8099, 0)), "the unwanted grant is deleted: {ports:?}");
    assert!(ports.contains(&(9000, 3600)), "mapping {other} is renewed at once: {ports:?}");
}
