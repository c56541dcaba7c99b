//! The engine under a fuzzer-chosen script, checked against a model of what
//! it must report.
//!
//! The script creates MAP and PEER mappings, answers what the engine sent
//! with responses built from its requests (so the nonce matches and every
//! phase is reached: requesting, granted, renewing, deleting) but with
//! fuzzer-chosen result codes, lifetimes, ports, addresses, epochs and a
//! corrupted byte now and then, feeds arbitrary datagrams from the server
//! and from elsewhere, deletes, forgets, cancels and moves the clock.
//!
//! Invariants, after every step:
//! - every datagram sent goes to the server and is a well-formed request;
//! - no grant or renewal with external port 0 or lifetime 0;
//! - every event names a mapping or request the script made, in an order
//!   that fits its life (granted before renewed or lost; one ending each);
//! - `mapping_count()` equals `mapping_ids().len()` and the model's count;
//! - an engine holding anything has a timer (nothing can hang).
//!
//! At the end everything is deleted and the clock run out: the engine must
//! become idle, with exactly one ending reported for every mapping.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use pcp_core::engine::{Engine, EngineConfig, Event, MappingId, RequestId, RetransmitPolicy};
use pcp_core::wire::natpmp::NatPmpRequest;
use pcp_core::wire::{Body, Filter, PcpOption, Protocol, Request, Response, ResultCode, MAX_MESSAGE_SIZE};
use pcp_core::{MapSpec, PeerSpec};

use crate::input::Input;

const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 5351);
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100));
/// Most steps a script may take, and timer runs at the end: bounded work per input.
const MAX_STEPS: usize = 400;
const MAX_DRAIN_STEPS: usize = 10_000;

/// Addresses a hostile or broken server might put in the external address field.
const ADDRESSES: [IpAddr; 10] = [
    IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
    IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9)),
    IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    IpAddr::V4(Ipv4Addr::BROADCAST),
    IpAddr::V4(Ipv4Addr::new(224, 0, 0, 1)),
    IpAddr::V4(Ipv4Addr::LOCALHOST),
    IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
    IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1)),
    IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
];

#[derive(Debug, Default)]
struct Life {
    granted: bool,
    /// The mapping still counts (not failed, lost, or being deleted).
    live: bool,
    /// A delete was asked for, so a Deleted event may come.
    deleting: bool,
    ended: bool,
}

struct Model {
    mappings: HashMap<MappingId, Life>,
    requests: HashSet<RequestId>,
    /// Requests the engine sent, newest last (what the script answers).
    sent: Vec<Request>,
}

impl Model {
    fn live_count(&self) -> usize {
        self.mappings.values().filter(|l| l.live).count()
    }

    fn ids(&self) -> Vec<MappingId> {
        let mut v: Vec<_> = self.mappings.keys().copied().collect();
        v.sort();
        v
    }
}

/// Runs one script; panics when an invariant breaks.
pub fn run_script(data: &[u8]) {
    let mut input = Input::new(data);
    let mut seed = [0u8; 32];
    seed[0] = input.u8();
    let mut config = EngineConfig::new(SERVER, CLIENT);
    config.rng_seed = Some(seed);
    config.max_in_flight = usize::from(input.u8() % 8) + 1;
    // Bounded schedules, so that the final drain terminates.
    config.retransmit = RetransmitPolicy::rfc().with_deadline(Duration::from_secs(30));
    config.probe_port = 40000;
    let mut engine = Engine::new(config);
    let start = Instant::now();
    let mut now = start;
    let mut epoch_base: u32 = input.u32() >> 8;
    let mut model = Model { mappings: HashMap::new(), requests: HashSet::new(), sent: Vec::new() };

    for _ in 0..MAX_STEPS {
        if input.is_empty() {
            break;
        }
        step(&mut engine, &mut input, &mut model, &mut now, start, &mut epoch_base);
        check(&mut engine, &mut model);
    }

    // Close (delete what is left), then let every timer run out with no
    // answers: once closing, a failed delete ends its mapping too.
    engine.close(now, true);
    for life in model.mappings.values_mut().filter(|l| l.live) {
        life.live = false;
        life.deleting = true;
    }
    check(&mut engine, &mut model);
    for _ in 0..MAX_DRAIN_STEPS {
        let Some(t) = engine.poll_timeout() else { break };
        now = now.max(t);
        engine.handle_timeout(now);
        check(&mut engine, &mut model);
    }
    assert!(engine.is_idle(), "engine not idle after deleting everything and running out every timer");
    assert_eq!(engine.mapping_count(), 0);
    for (id, life) in &model.mappings {
        assert!(life.ended, "{id} never got its ending event: {life:?}");
    }
    assert!(model.requests.is_empty(), "requests never completed: {:?}", model.requests);
}

fn step(
    engine: &mut Engine,
    input: &mut Input,
    model: &mut Model,
    now: &mut Instant,
    start: Instant,
    epoch_base: &mut u32,
) {
    let op = input.u8() % 12;
    if std::env::var_os("PCP_FUZZ_TRACE").is_some() {
        eprintln!("step {op} at +{:?}", now.duration_since(start));
    }
    match op {
        0 => {
            let protocol = *input.pick(&[Protocol::TCP, Protocol::UDP]);
            let port = input.u16().max(1);
            let mut spec = MapSpec::new(protocol, port).lifetime(input.u32() % 100_000 + 1);
            if input.bool() {
                spec = spec.external_port(input.u16());
            }
            if input.bool() {
                spec = spec.prefer_failure();
            }
            if input.bool() {
                spec = spec.filter(Filter { remote_addr: *input.pick(&ADDRESSES), prefix_len: 0, remote_port: 0 });
            }
            if let Ok(id) = engine.map(*now, spec) {
                model.mappings.insert(id, Life { live: true, ..Life::default() });
            }
        }
        1 => {
            let spec = PeerSpec::new(Protocol::TCP, input.u16().max(1), *input.pick(&ADDRESSES), input.u16())
                .lifetime(input.u32() % 100_000 + 1);
            if let Ok(id) = engine.peer(*now, spec) {
                model.mappings.insert(id, Life { live: true, ..Life::default() });
            }
        }
        2 => {
            let ids = model.ids();
            if !ids.is_empty() {
                let id = *input.pick(&ids);
                let known = engine.delete(*now, id).is_ok();
                let life = model.mappings.get_mut(&id).expect("listed");
                assert_eq!(
                    known,
                    !life.ended || life.deleting,
                    "delete of {id}: engine knows it = {known}, model {life:?}"
                );
                if known {
                    life.live = false;
                    life.deleting = true;
                }
            }
        }
        3..=5 => answer(engine, input, model, *now, start, epoch_base),
        6 => {
            // Arbitrary bytes, from the server or from elsewhere.
            let len = usize::from(input.u16()) % (MAX_MESSAGE_SIZE + 100);
            let bytes = input.bytes(len).to_vec();
            let from = if input.u8() < 32 { SocketAddr::new(SERVER.ip(), 5350) } else { SERVER };
            engine.handle_datagram(*now, from, &bytes);
        }
        7 => {
            *now += Duration::from_millis(u64::from(input.u32() % 10_000_000));
            engine.handle_timeout(*now);
        }
        8 => {
            if let Some(t) = engine.poll_timeout() {
                *now = (*now).max(t);
                engine.handle_timeout(*now);
            }
        }
        9 => match input.u8() % 4 {
            0 => {
                model.requests.insert(engine.announce(*now, None));
            }
            1 => {
                if let Ok(id) = engine.request_external_addr(*now, None) {
                    model.requests.insert(id);
                }
            }
            2 => engine.renew_all(*now),
            _ => engine.handle_unreachable(*now),
        },
        10 => {
            let ids: Vec<RequestId> = model.requests.iter().copied().collect();
            if !ids.is_empty() {
                let id = *input.pick(&ids);
                engine.cancel(*now, id);
            }
        }
        _ => {
            let ids = model.ids();
            if !ids.is_empty() {
                let id = *input.pick(&ids);
                if engine.forget(*now, id) {
                    // Forgotten: no event will ever come for it.
                    let life = model.mappings.get_mut(&id).expect("listed");
                    life.live = false;
                    life.ended = true;
                    life.deleting = false;
                }
            }
        }
    }
}

/// Answers one of the requests the engine sent, with fuzzer-chosen fields.
fn answer(
    engine: &mut Engine,
    input: &mut Input,
    model: &mut Model,
    now: Instant,
    start: Instant,
    epoch_base: &mut u32,
) {
    if model.sent.is_empty() {
        return;
    }
    let back = usize::from(input.u8() % 4).min(model.sent.len() - 1);
    let req = model.sent[model.sent.len() - 1 - back].clone();
    let result = match input.u8() {
        0..=179 => ResultCode::Success,
        b => ResultCode::from_u8(b % 14).unwrap_or(ResultCode::NoResources),
    };
    let lifetime = match input.u8() % 4 {
        0 => req.lifetime,
        1 => req.lifetime / 2,
        2 => 0,
        _ => input.u32() % 1000,
    };
    let elapsed = u32::try_from(now.duration_since(start).as_secs()).unwrap_or(u32::MAX);
    let epoch = match input.u8() % 8 {
        0 => {
            // The server restarted.
            *epoch_base = 0;
            0
        }
        1 => epoch_base.wrapping_add(elapsed).wrapping_sub(input.u32() % 100_000),
        _ => epoch_base.wrapping_add(elapsed),
    };
    let (port, addr) = (if input.u8() < 32 { input.u16() } else { 0 }, *input.pick(&ADDRESSES));
    let body = match req.body {
        Body::Map(mut m) => {
            m.external_port = if port != 0 { port } else { m.external_port.max(1) };
            m.external_addr = if input.bool() { addr } else { ADDRESSES[0] };
            Body::Map(m)
        }
        Body::Peer(mut p) => {
            p.external_port = if port != 0 { port } else { p.external_port.max(1) };
            p.external_addr = if input.bool() { addr } else { ADDRESSES[0] };
            Body::Peer(p)
        }
        Body::Announce => Body::Announce,
    };
    let mut resp = Response::new(result, lifetime, epoch, body);
    if input.u8() < 32 {
        resp.options = req.options.clone();
        if input.bool() {
            resp.options.push(PcpOption::Unknown { code: input.u8(), data: input.bytes(8).to_vec() });
        }
    }
    let mut bytes = resp.encode();
    if input.u8() < 24 {
        let at = usize::from(input.u16()) % bytes.len();
        bytes[at] ^= input.u8().max(1);
    }
    if std::env::var_os("PCP_FUZZ_TRACE").is_some() {
        eprintln!("  answer {resp:?}");
    }
    engine.handle_datagram(now, SERVER, &bytes);
}

/// Drains transmits and events and checks them, and the counts, against the model.
fn check(engine: &mut Engine, model: &mut Model) {
    while let Some(tx) = engine.poll_transmit() {
        assert_eq!(tx.destination, SERVER, "sent somewhere else than the server");
        // After a fuzzed NAT-PMP "unsupported version" answer the engine
        // falls back to NAT-PMP (RFC 6887 section 9): those requests must be
        // well-formed NAT-PMP; the model follows the PCP ones.
        let req = match Request::decode(&tx.payload) {
            Ok(req) => req,
            Err(_) => {
                NatPmpRequest::decode(&tx.payload).expect("the engine sends only well-formed PCP or NAT-PMP requests");
                continue;
            }
        };
        model.sent.push(req);
    }
    if model.sent.len() > 64 {
        model.sent.drain(..model.sent.len() - 16);
    }
    while let Some(ev) = engine.poll_event() {
        match &ev {
            Event::Granted(info) | Event::Renewed(info) => {
                assert!(info.external_port != 0, "a grant with external port 0: {ev:?}");
                assert!(info.lifetime != 0, "a grant with lifetime 0: {ev:?}");
                let life =
                    model.mappings.get_mut(&info.id).unwrap_or_else(|| panic!("event for an unknown mapping: {ev:?}"));
                assert!(
                    !life.ended && life.live,
                    "grant or renewal of a mapping that ended or is being deleted: {ev:?} {life:?}"
                );
                assert_eq!(
                    life.granted,
                    matches!(ev, Event::Renewed(_)),
                    "granted twice or renewed before granted: {ev:?}"
                );
                life.granted = true;
            }
            Event::Failed { id, .. } => {
                let life = model.mappings.get_mut(id).unwrap_or_else(|| panic!("event for an unknown mapping: {ev:?}"));
                assert!(!life.granted && !life.ended, "failed after a grant, or twice: {ev:?} {life:?}");
                life.live = false;
                if !life.deleting {
                    life.ended = true;
                }
            }
            Event::Lost { id, .. } => {
                let life = model.mappings.get_mut(id).unwrap_or_else(|| panic!("event for an unknown mapping: {ev:?}"));
                assert!(life.granted && life.live && !life.ended, "lost a mapping that was not held: {ev:?} {life:?}");
                life.live = false;
                life.ended = true;
            }
            Event::Deleted { id, result } => {
                let held_again = engine.mapping_ids().contains(id);
                let life = model.mappings.get_mut(id).unwrap_or_else(|| panic!("event for an unknown mapping: {ev:?}"));
                assert!(life.deleting && !life.ended, "deleted without a delete, or twice: {ev:?} {life:?}");
                life.deleting = false;
                // A failed delete of a granted mapping leaves it held again
                // (unless closing); a successful one never does.
                assert!(!held_again || (result.is_err() && life.granted), "held after {ev:?} {life:?}");
                if held_again {
                    life.live = true;
                } else {
                    life.ended = true;
                }
            }
            Event::Announced { id, .. } | Event::ExternalAddress { id, .. } => {
                assert!(model.requests.remove(id), "completion of an unknown or finished request: {ev:?}");
            }
            Event::Updated(info) => {
                // Section 14.2: only a held (granted, not ending) mapping takes an update.
                assert!(info.external_port != 0, "an update with external port 0: {ev:?}");
                assert!(info.lifetime != 0, "an update with lifetime 0: {ev:?}");
                let life =
                    model.mappings.get(&info.id).unwrap_or_else(|| panic!("event for an unknown mapping: {ev:?}"));
                assert!(
                    life.granted && life.live && !life.ended,
                    "update of a mapping that is not held: {ev:?} {life:?}"
                );
            }
            Event::ExternalAddressChanged { .. }
            | Event::InternalAddressChanged { .. }
            | Event::ServerRestarted { .. } => {}
        }
    }
    let ids = engine.mapping_ids();
    assert_eq!(engine.mapping_count(), ids.len(), "mapping_count() disagrees with mapping_ids()");
    assert_eq!(ids.len(), model.live_count(), "engine holds {ids:?}, model {:?}", model.mappings);
    for id in &ids {
        assert!(model.mappings.get(id).is_some_and(|l| l.live), "engine holds {id}, which the model says ended");
    }
    for info in engine.mappings() {
        assert!(model.mappings.get(&info.id).is_some_and(|l| l.live && l.granted), "mappings() lists {info:?}");
    }
    if !engine.is_idle() {
        assert!(engine.poll_timeout().is_some(), "the engine holds something but has no timer: it would hang");
    }
}
