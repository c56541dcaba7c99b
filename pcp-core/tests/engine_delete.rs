//! How deletes end, on a simulated clock: a failed delete leaves its
//! mapping held (renewed, deleted again with its nonce), except once the
//! engine is closing.

use std::time::Instant;

use pcp_core::engine::*;
use pcp_core::wire::*;
use pcp_core::Error;

mod sim;
use sim::*;

/// Requests give up after 10 s without an answer.
fn engine() -> Engine {
    seeded_engine(9, |c| c.retransmit = RetransmitPolicy::rfc().with_deadline(secs(10.0)))
}

/// The server's answer, `secs` after the start (its epoch counts them).
fn answer(req: &Request, result: ResultCode, lifetime: u32, at_secs: u32) -> Vec<u8> {
    let body = if result == ResultCode::Success && lifetime > 0 {
        req.body.with_external(40080, "203.0.113.7".parse().unwrap())
    } else {
        req.body
    };
    Response::new(result, lifetime, 1 + at_secs, body).encode()
}

fn nonce_of(req: &Request) -> Nonce {
    match req.body {
        Body::Map(m) => m.nonce,
        Body::Peer(p) => p.nonce,
        Body::Announce => panic!("no nonce"),
    }
}

fn granted(e: &mut Engine, t: Instant, port: u16) -> (MappingId, Request) {
    let id = e.map(t, MapSpec::new(Protocol::TCP, port).lifetime(3600)).unwrap();
    let req = sent(e).pop().unwrap();
    e.handle_datagram(t, server(), &answer(&req, ResultCode::Success, 3600, 0));
    assert!(matches!(&events(e)[..], [Event::Granted(i)] if i.id == id));
    (id, req)
}

/// Runs the timers, answering nothing, until `until`; what was sent.
fn silence(e: &mut Engine, until: Instant) -> Vec<Request> {
    let mut out = Vec::new();
    while let Some(t) = e.poll_timeout().filter(|t| *t <= until) {
        e.handle_timeout(t);
        out.extend(sent(e));
    }
    out
}

#[test]
fn a_delete_that_times_out_leaves_the_mapping_held() {
    let mut e = engine();
    let t = Instant::now();
    let (id, req) = granted(&mut e, t, 80);
    e.delete(t, id).unwrap();
    assert!(e.mapping(id).is_none(), "not held while the delete is out");
    let deletes = silence(&mut e, t + secs(11.0));
    assert!(deletes.iter().all(|d| d.lifetime == 0));
    assert_eq!(events(&mut e), vec![Event::Deleted { id, result: Err(Error::Timeout) }]);
    // Held again, by every view: the server may still have it.
    assert_eq!(e.mapping(id).map(|i| i.nonce), Some(nonce_of(&req)));
    assert_eq!(e.find_map(Protocol::TCP, 80).map(|i| i.id), Some(id));
    assert_eq!(e.mapping_ids(), vec![id]);
    // Renewed soon, with its nonce (which remakes it if the server had deleted it).
    let renewal = silence(&mut e, t + secs(16.0));
    assert_eq!(renewal.len(), 1, "{renewal:?}");
    assert_eq!((renewal[0].lifetime, nonce_of(&renewal[0])), (3600, nonce_of(&req)));
    e.handle_datagram(t + secs(16.0), server(), &answer(&renewal[0], ResultCode::Success, 3600, 16));
    let ev = events(&mut e);
    assert!(matches!(&ev[..], [Event::Renewed(i)] if i.id == id), "{ev:?}");
    // Deleted again: the same nonce, and this time it ends.
    e.delete(t + secs(17.0), id).unwrap();
    let del = sent(&mut e).pop().unwrap();
    assert_eq!((del.lifetime, nonce_of(&del)), (0, nonce_of(&req)));
    e.handle_datagram(t + secs(17.0), server(), &answer(&del, ResultCode::Success, 0, 17));
    assert_eq!(events(&mut e), vec![Event::Deleted { id, result: Ok(()) }]);
    assert!(e.is_idle());
}

#[test]
fn a_refused_delete_leaves_the_mapping_held() {
    let mut e = engine();
    let t = Instant::now();
    let (id, _) = granted(&mut e, t, 80);
    e.delete(t, id).unwrap();
    let del = sent(&mut e).pop().unwrap();
    e.handle_datagram(t, server(), &answer(&del, ResultCode::NotAuthorized, 0, 0));
    assert_eq!(events(&mut e), vec![Event::Deleted { id, result: Err(Error::NotAuthorized { retry_after: 0 }) }]);
    assert!(e.mapping(id).is_some());
    assert_eq!(e.mapping_count(), 1);
}

#[test]
fn once_closing_a_failed_delete_ends_the_mapping() {
    let mut e = engine();
    let t = Instant::now();
    let (id, _) = granted(&mut e, t, 80);
    let (kept, _) = granted(&mut e, t, 81);
    e.close(t, true);
    assert!(e.mapping_ids().is_empty());
    let deletes = silence(&mut e, t + secs(11.0));
    assert!(deletes.len() >= 2 && deletes.iter().all(|d| d.lifetime == 0));
    let ev = events(&mut e);
    for m in [id, kept] {
        assert!(ev.contains(&Event::Deleted { id: m, result: Err(Error::Timeout) }), "{ev:?}");
    }
    assert!(e.is_idle(), "nothing held, nothing to renew");
    // Closing without deleting forgets at once.
    let mut e = engine();
    granted(&mut e, t, 80);
    e.close(t, false);
    assert!(sent(&mut e).is_empty() && e.is_idle());
}

#[test]
fn a_port_mapped_again_meanwhile_keeps_its_new_mapping() {
    let mut e = engine();
    let t = Instant::now();
    let (old, _) = granted(&mut e, t, 80);
    e.delete(t, old).unwrap();
    let (new, _) = granted(&mut e, t, 80);
    silence(&mut e, t + secs(11.0));
    assert_eq!(events(&mut e), vec![Event::Deleted { id: old, result: Err(Error::Timeout) }]);
    assert!(e.mapping(old).is_none(), "the newer mapping of the port is the one held");
    assert_eq!(e.find_map(Protocol::TCP, 80).map(|i| i.id), Some(new));
}

#[test]
fn a_never_granted_mapping_goes_when_its_delete_fails() {
    let mut e = engine();
    let t = Instant::now();
    let id = e.map(t, MapSpec::new(Protocol::TCP, 80)).unwrap();
    sent(&mut e);
    e.delete(t, id).unwrap();
    silence(&mut e, t + secs(11.0));
    let ev = events(&mut e);
    assert_eq!(ev[0], Event::Failed { id, error: Error::Cancelled });
    assert_eq!(ev[1], Event::Deleted { id, result: Err(Error::Timeout) });
    assert!(e.is_idle());
}
