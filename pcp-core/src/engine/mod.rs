//! The sans-IO PCP client engine.
//!
//! [`Engine`] holds every outstanding request and live mapping for one PCP
//! server. It owns no socket and reads no clock: the caller feeds it
//! datagrams ([`Engine::handle_datagram`]), timer expiries
//! ([`Engine::handle_timeout`]) and the current time, and drains what it
//! wants sent ([`Engine::poll_transmit`]), when it next wants to be woken
//! ([`Engine::poll_timeout`]) and what happened ([`Engine::poll_event`]).
//! That is what lets tests run hours of protocol time in microseconds, and a
//! C program drive PCP from its own event loop.
//!
//! ```
//! use std::time::Instant;
//! use pcp_core::engine::{Engine, EngineConfig, MapSpec};
//! use pcp_core::wire::Protocol;
//!
//! let now = Instant::now();
//! let mut engine = Engine::new(EngineConfig::new("192.168.1.1:5351".parse().unwrap(),
//!                                                "192.168.1.100".parse().unwrap()));
//! let id = engine.map(now, MapSpec::new(Protocol::TCP, 8080)).unwrap();
//! let tx = engine.poll_transmit().unwrap();          // the MAP request to send
//! assert_eq!(tx.payload.len(), 60);
//! assert!(engine.poll_timeout().unwrap() > now);      // its retransmission timer
//! # let _ = id;
//! ```

mod epoch;
mod event;
mod key_map;
mod mapping;
mod retransmit;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use epoch::{Epoch, EpochCheck};
pub use event::Event;
pub use key_map::{KeyHasher, KeyMap};
pub use mapping::{MapSpec, MappingId, MappingInfo, PeerSpec, RequestId};
pub use retransmit::{RetransmitPolicy, RetransmitSchedule, RetransmitStep};

use crate::wire::{
    self, unspecified_external, Body, MapPayload, Nonce, Opcode, PcpOption, PeerPayload, Protocol, Request, Response,
    ResultCode, WireError,
};
use crate::{Error, Result};

/// Settings of an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The PCP server (normally port 5351).
    pub server: SocketAddr,
    /// Our address towards the server: the Client IP field of every request.
    pub client_addr: IpAddr,
    /// Default retransmission policy of requests (see [`RetransmitPolicy::default`]).
    pub retransmit: RetransmitPolicy,
    /// At most this many requests on the wire at once; more wait their turn,
    /// so that a burst of thousands of mappings does not overflow the
    /// server's or our socket buffers.
    pub max_in_flight: usize,
    /// After an unsolicited ANNOUNCE, renew everything after a random delay
    /// up to this (section 14.1.3: 5 s), so that all clients of a rebooted
    /// server do not answer at once.
    pub announce_delay_max: Duration,
    /// Seed for the engine's CSPRNG (nonces, jitter); `None` seeds from the
    /// operating system. Tests set it for reproducible timings.
    pub rng_seed: Option<[u8; 32]>,
    /// The internal UDP port of the short-lived mapping that learns the
    /// external address. It should be a port this host owns, because
    /// gateways often refuse low ports (miniupnpd does, silently); the
    /// client uses its own socket's port. 0 picks one from the dynamic range.
    pub probe_port: u16,
}

impl EngineConfig {
    pub fn new(server: SocketAddr, client_addr: IpAddr) -> Self {
        EngineConfig {
            server,
            client_addr,
            retransmit: RetransmitPolicy::default(),
            max_in_flight: 64,
            announce_delay_max: Duration::from_secs(5),
            rng_seed: None,
            probe_port: 0,
        }
    }
}

/// A datagram the engine wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub destination: SocketAddr,
    pub payload: Vec<u8>,
}

/// Counters, for diagnostics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub sent: u64,
    pub retransmitted: u64,
    pub received: u64,
    /// Datagrams dropped as invalid or unmatched.
    pub dropped: u64,
}

/// Lifetime of the short-lived mapping used to learn the external address.
const PROBE_LIFETIME: u32 = 120;

/// What a request is for; everything needed to build its datagrams.
#[derive(Debug, Clone)]
struct Template {
    opcode: Opcode,
    nonce: Nonce,
    protocol: Protocol,
    internal_port: u16,
    internal_addr: IpAddr,
    remote: Option<(IpAddr, u16)>,
    suggested_port: u16,
    suggested_addr: IpAddr,
    lifetime: u32,
    options: Vec<PcpOption>,
    retransmit: RetransmitPolicy,
}

#[derive(Debug)]
enum Kind {
    Mapping(Template),
    /// A MAP made only to learn the external address, deleted right after.
    Probe(Template),
    Announce(RetransmitPolicy),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The first request is outstanding.
    Requesting,
    /// Granted; the timer is the renewal time.
    Granted,
    /// A renewal (or recreation) is outstanding; gives up at expiry.
    Renewing,
    /// An error answered a renewal; the timer is when to try again.
    RetryWait,
    Deleting,
    Announcing,
}

#[derive(Debug)]
struct Entry {
    kind: Kind,
    phase: Phase,
    info: Option<MappingInfo>,
    /// `Some` while a request is on the wire.
    schedule: Option<RetransmitSchedule>,
    /// Waiting for an in-flight slot.
    queued: bool,
    timer: Option<Instant>,
    last_error: Option<Error>,
}

impl Entry {
    fn template(&self) -> Option<&Template> {
        match &self.kind {
            Kind::Mapping(t) | Kind::Probe(t) => Some(t),
            Kind::Announce(_) => None,
        }
    }

    fn outstanding(&self) -> bool {
        self.schedule.is_some() || self.queued
    }
}

/// The PCP client state machine for one server. See the [module docs](self).
pub struct Engine {
    config: EngineConfig,
    rng: StdRng,
    next_id: u64,
    entries: KeyMap<u64, Box<Entry>>,
    /// How many entries are mappings not being deleted (what
    /// `mapping_ids` lists), kept so that counting them is O(1).
    live_mappings: usize,
    by_nonce: KeyMap<Nonce, u64>,
    /// Our own (not third-party) MAP mappings by protocol and internal port.
    by_port: KeyMap<(Protocol, u16), u64>,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    send_queue: VecDeque<u64>,
    in_flight: usize,
    epoch: Epoch,
    external_addr: Option<IpAddr>,
    renew_all_at: Option<Instant>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: EngineStats,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Self {
        let rng = match config.rng_seed {
            Some(seed) => StdRng::from_seed(seed),
            None => StdRng::from_os_rng(),
        };
        Engine {
            config,
            rng,
            next_id: 1,
            entries: KeyMap::default(),
            live_mappings: 0,
            by_nonce: KeyMap::default(),
            by_port: KeyMap::default(),
            timers: BinaryHeap::new(),
            send_queue: VecDeque::new(),
            in_flight: 0,
            epoch: Epoch::default(),
            external_addr: None,
            renew_all_at: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: EngineStats::default(),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The server this engine talks to.
    pub fn server(&self) -> SocketAddr {
        self.config.server
    }

    /// Our address towards the server (the Client IP field).
    pub fn client_addr(&self) -> IpAddr {
        self.config.client_addr
    }

    /// The last epoch the server reported.
    pub fn server_epoch(&self) -> Option<u32> {
        self.epoch.server_epoch()
    }

    /// The last external address the server assigned.
    pub fn external_addr(&self) -> Option<IpAddr> {
        self.external_addr
    }

    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// A granted mapping.
    pub fn mapping(&self, id: MappingId) -> Option<&MappingInfo> {
        match self.entries.get(&id.0).map(|e| &**e) {
            Some(e @ Entry { kind: Kind::Mapping(_), .. }) => e.info.as_ref(),
            _ => None,
        }
    }

    /// The granted MAP mapping of this host (not a third party's) for
    /// `protocol` and `internal_port`; the newest if there are several.
    pub fn find_map(&self, protocol: Protocol, internal_port: u16) -> Option<&MappingInfo> {
        let entry = self.entries.get(self.by_port.get(&(protocol, internal_port))?)?;
        if entry.phase == Phase::Deleting {
            return None;
        }
        entry.info.as_ref()
    }

    /// Every granted mapping.
    pub fn mappings(&self) -> impl Iterator<Item = &MappingInfo> {
        self.entries
            .values()
            .filter(|e| matches!(e.kind, Kind::Mapping(_)) && e.phase != Phase::Deleting)
            .filter_map(|e| e.info.as_ref())
    }

    /// How many mappings the engine holds, granted or not yet (as many as
    /// [`Engine::mapping_ids`] lists), without listing them.
    pub fn mapping_count(&self) -> usize {
        self.live_mappings
    }

    /// The ids of all mappings the engine holds, granted or not yet.
    pub fn mapping_ids(&self) -> Vec<MappingId> {
        let mut ids: Vec<_> = self
            .entries
            .iter()
            .filter(|(_, e)| matches!(e.kind, Kind::Mapping(_)) && e.phase != Phase::Deleting)
            .map(|(id, _)| MappingId(*id))
            .collect();
        ids.sort();
        ids
    }

    /// Whether nothing is outstanding and nothing is held.
    pub fn is_idle(&self) -> bool {
        self.entries.is_empty()
    }

    /// Asks for an inbound mapping. Completes with [`Event::Granted`] or
    /// [`Event::Failed`]; once granted the engine renews it until
    /// [`Engine::delete`].
    pub fn map(&mut self, now: Instant, spec: MapSpec) -> Result<MappingId> {
        check_ports(spec.protocol, spec.internal_port)?;
        if spec.lifetime == 0 {
            return Err(Error::invalid("lifetime must be at least 1 second (0 deletes; use delete)"));
        }
        let mut options = Vec::new();
        if let Some(tp) = spec.third_party {
            options.push(PcpOption::ThirdParty(tp));
        }
        if spec.prefer_failure {
            if spec.suggested_external_port == 0 && spec.protocol.has_ports() {
                return Err(Error::invalid("PREFER_FAILURE needs a suggested external port"));
            }
            options.push(PcpOption::PreferFailure);
        }
        for f in &spec.filters {
            if f.prefix_len > f.max_prefix() {
                return Err(Error::invalid(format!(
                    "FILTER prefix /{} is too long for {}",
                    f.prefix_len, f.remote_addr
                )));
            }
            options.push(PcpOption::Filter(*f));
        }
        let template = self.template(
            Opcode::Map,
            spec.nonce,
            spec.protocol,
            spec.internal_port,
            None,
            spec.suggested_external_port,
            spec.suggested_external_addr,
            spec.lifetime,
            spec.third_party,
            options,
            spec.retransmit,
        )?;
        Ok(MappingId(self.insert(now, Kind::Mapping(template), Phase::Requesting)))
    }

    /// Asks for an outbound mapping to one remote peer. Completes like [`Engine::map`].
    pub fn peer(&mut self, now: Instant, spec: PeerSpec) -> Result<MappingId> {
        if !spec.protocol.has_ports() {
            return Err(Error::invalid(format!(
                "PEER needs a protocol with ports (TCP, UDP, ...), not {}",
                spec.protocol
            )));
        }
        check_ports(spec.protocol, spec.internal_port)?;
        if spec.remote_port == 0 {
            return Err(Error::invalid("the remote peer port must not be 0"));
        }
        if spec.remote_addr.is_unspecified() {
            return Err(Error::invalid("the remote peer address must be a real address"));
        }
        if spec.lifetime == 0 {
            return Err(Error::invalid("lifetime must be at least 1 second (0 deletes; use delete)"));
        }
        let options = spec.third_party.map(PcpOption::ThirdParty).into_iter().collect();
        let template = self.template(
            Opcode::Peer,
            spec.nonce,
            spec.protocol,
            spec.internal_port,
            Some((spec.remote_addr, spec.remote_port)),
            spec.suggested_external_port,
            spec.suggested_external_addr,
            spec.lifetime,
            spec.third_party,
            options,
            spec.retransmit,
        )?;
        Ok(MappingId(self.insert(now, Kind::Mapping(template), Phase::Requesting)))
    }

    /// Deletes a mapping: a request with lifetime 0 and the mapping's nonce.
    /// Completes with [`Event::Deleted`]. A mapping whose first request is
    /// still outstanding also gets [`Event::Failed`] with [`Error::Cancelled`].
    pub fn delete(&mut self, now: Instant, id: MappingId) -> Result<()> {
        let entry = match self.entries.get_mut(&id.0) {
            Some(e) if matches!(e.kind, Kind::Mapping(_)) => e,
            _ => return Err(Error::invalid(format!("no such mapping: {id}"))),
        };
        match entry.phase {
            Phase::Deleting => return Ok(()),
            Phase::Requesting => {
                self.events.push_back(Event::Failed { id, error: Error::Cancelled });
                if entry.queued {
                    // Never sent: nothing to delete on the server.
                    self.remove(id.0);
                    self.events.push_back(Event::Deleted { id, result: Ok(()) });
                    return Ok(());
                }
            }
            _ => {}
        }
        self.end_exchange(id.0, now);
        if let Some(e) = self.entries.get_mut(&id.0) {
            // Not Deleting already (returned above): it stops counting.
            e.phase = Phase::Deleting;
            self.live_mappings -= 1;
        }
        self.start_exchange(id.0, now);
        Ok(())
    }

    /// Deletes a mapping this engine did not make, known by its nonce (for
    /// example one recorded by another process). Completes with
    /// [`Event::Deleted`] for the returned id.
    pub fn delete_by_nonce(&mut self, now: Instant, spec: MapSpec) -> Result<MappingId> {
        check_ports(spec.protocol, spec.internal_port)?;
        let nonce = spec.nonce.ok_or_else(|| Error::invalid("delete_by_nonce needs the mapping's nonce"))?;
        let options = spec.third_party.map(PcpOption::ThirdParty).into_iter().collect();
        let template = self.template(
            Opcode::Map,
            Some(nonce),
            spec.protocol,
            spec.internal_port,
            None,
            spec.suggested_external_port,
            spec.suggested_external_addr,
            0,
            spec.third_party,
            options,
            spec.retransmit,
        )?;
        Ok(MappingId(self.insert(now, Kind::Mapping(template), Phase::Deleting)))
    }

    /// Drops a mapping locally without telling the server (it stays until
    /// its lifetime runs out). Returns whether it existed.
    pub fn forget(&mut self, id: MappingId) -> bool {
        match self.entries.get(&id.0) {
            Some(e) if matches!(e.kind, Kind::Mapping(_)) => {
                self.end_exchange_quiet(id.0);
                self.remove(id.0);
                true
            }
            _ => false,
        }
    }

    /// Sends an ANNOUNCE request: a cheap way to learn whether a PCP server
    /// is there, and its epoch. Completes with [`Event::Announced`].
    pub fn announce(&mut self, now: Instant, policy: Option<RetransmitPolicy>) -> RequestId {
        let policy = policy.unwrap_or(self.config.retransmit);
        RequestId(self.insert(now, Kind::Announce(policy), Phase::Announcing))
    }

    /// Learns the external address with a short-lived UDP MAP of the discard
    /// port, deleted as soon as it is granted (PCP has no opcode for just
    /// the address). Completes with [`Event::ExternalAddress`].
    pub fn request_external_addr(&mut self, now: Instant, policy: Option<RetransmitPolicy>) -> Result<RequestId> {
        let port = match self.config.probe_port {
            0 => self.rng.random_range(49152..=65535),
            p => p,
        };
        let template = self.template(
            Opcode::Map,
            None,
            Protocol::UDP,
            port,
            None,
            0,
            None,
            PROBE_LIFETIME,
            None,
            Vec::new(),
            policy,
        )?;
        Ok(RequestId(self.insert(now, Kind::Probe(template), Phase::Requesting)))
    }

    /// Abandons an ANNOUNCE or external-address request; it completes with
    /// [`Error::Cancelled`]. Returns whether it was still going.
    pub fn cancel(&mut self, now: Instant, id: RequestId) -> bool {
        let Some(entry) = self.entries.get(&id.0) else { return false };
        match (&entry.kind, entry.phase) {
            (Kind::Announce(_), _) => {
                self.end_exchange(id.0, now);
                self.remove(id.0);
                self.events.push_back(Event::Announced { id, result: Err(Error::Cancelled) });
                true
            }
            (Kind::Probe(_), Phase::Requesting) => {
                // The probe may have reached the server: delete it quietly.
                self.end_exchange(id.0, now);
                self.events.push_back(Event::ExternalAddress { id, result: Err(Error::Cancelled) });
                if let Some(e) = self.entries.get_mut(&id.0) {
                    e.phase = Phase::Deleting;
                }
                self.start_exchange(id.0, now);
                true
            }
            _ => false,
        }
    }

    /// Whether [`Engine::poll_event`] has something.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Renews every granted mapping now (what an unsolicited ANNOUNCE or a
    /// detected server restart triggers).
    pub fn renew_all(&mut self, now: Instant) {
        self.renew_all_except(now, None);
    }

    /// Feeds a datagram received from `from` at `now`. Anything that is not a
    /// valid response to an outstanding request, nor a valid unsolicited
    /// ANNOUNCE from the server, is dropped.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.stats.received += 1;
        if !same_endpoint(from, self.config.server) {
            self.stats.dropped += 1;
            return;
        }
        let response = match Response::decode(data) {
            Ok(r) => r,
            Err(err) => {
                self.handle_undecodable(now, data, err);
                return;
            }
        };
        match response.opcode {
            Opcode::Announce => self.handle_announce(now, &response),
            Opcode::Map | Opcode::Peer => match response.body {
                Some(body) => self.handle_mapping_response(now, &response, &body),
                // An error answered with the header alone: it cannot be
                // matched by nonce, so it concerns every request of its opcode.
                None => {
                    let err = Error::from_result_code(response.result).expect("decoder allows no body only on error");
                    self.fail_outstanding(now, Some(response.opcode), err, response.lifetime);
                }
            },
        }
    }

    /// The socket reported ICMP port unreachable: nothing listens at the
    /// server's address. Outstanding first requests, ANNOUNCEs and deletes
    /// fail at once; renewals keep trying until their mappings expire.
    pub fn handle_unreachable(&mut self, now: Instant) {
        self.fail_outstanding(now, None, Error::ServerUnreachable, 0);
    }

    /// Runs every timer due at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.renew_all_at.is_some_and(|t| t <= now) {
            self.renew_all_at = None;
            self.renew_all(now);
        }
        while let Some(Reverse((t, id))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            match self.entries.get_mut(&id) {
                Some(e) if e.timer == Some(t) => e.timer = None,
                _ => continue,
            }
            self.on_timer(id, now);
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// When [`Engine::handle_timeout`] should next be called.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some(Reverse((t, id))) = self.timers.peek().copied() {
            if self.entries.get(&id).is_some_and(|e| e.timer == Some(t)) {
                break;
            }
            self.timers.pop();
        }
        let entry_timer = self.timers.peek().map(|Reverse((t, _))| *t);
        match (entry_timer, self.renew_all_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ---- internals ----

    #[allow(clippy::too_many_arguments)]
    fn template(
        &mut self,
        opcode: Opcode,
        nonce: Option<Nonce>,
        protocol: Protocol,
        internal_port: u16,
        remote: Option<(IpAddr, u16)>,
        suggested_port: u16,
        suggested_addr: Option<IpAddr>,
        lifetime: u32,
        third_party: Option<IpAddr>,
        options: Vec<PcpOption>,
        retransmit: Option<RetransmitPolicy>,
    ) -> Result<Template> {
        let nonce = match nonce {
            Some(n) if self.by_nonce.contains_key(&n) => {
                return Err(Error::invalid("that nonce already belongs to a mapping of this client"))
            }
            Some(n) => n,
            None => loop {
                let n = Nonce::random(&mut self.rng);
                if !self.by_nonce.contains_key(&n) {
                    break n;
                }
            },
        };
        Ok(Template {
            opcode,
            nonce,
            protocol,
            internal_port,
            internal_addr: third_party.unwrap_or(self.config.client_addr),
            remote,
            suggested_port,
            suggested_addr: suggested_addr.unwrap_or_else(|| unspecified_external(self.config.client_addr)),
            lifetime,
            options,
            retransmit: retransmit.unwrap_or(self.config.retransmit),
        })
    }

    fn insert(&mut self, now: Instant, kind: Kind, phase: Phase) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        if let Some(t) = match &kind {
            Kind::Mapping(t) | Kind::Probe(t) => Some(t),
            Kind::Announce(_) => None,
        } {
            self.by_nonce.insert(t.nonce, id);
        }
        if let Kind::Mapping(t) = &kind {
            if t.opcode == Opcode::Map && t.internal_addr == self.config.client_addr && phase != Phase::Deleting {
                self.by_port.insert((t.protocol, t.internal_port), id);
            }
        }
        if matches!(kind, Kind::Mapping(_)) && phase != Phase::Deleting {
            self.live_mappings += 1;
        }
        self.entries.insert(
            id,
            Box::new(Entry { kind, phase, info: None, schedule: None, queued: false, timer: None, last_error: None }),
        );
        self.start_exchange(id, now);
        id
    }

    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.entries.remove(&id)?;
        if matches!(entry.kind, Kind::Mapping(_)) && entry.phase != Phase::Deleting {
            self.live_mappings -= 1;
        }
        if let Some(t) = entry.template() {
            self.by_nonce.remove(&t.nonce);
            let key = (t.protocol, t.internal_port);
            if self.by_port.get(&key) == Some(&id) {
                self.by_port.remove(&key);
            }
        }
        Some(*entry)
    }

    fn set_timer(&mut self, id: u64, at: Instant) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.timer = Some(at);
            self.timers.push(Reverse((at, id)));
        }
    }

    /// Puts the entry's request on the wire, or in the queue when too many
    /// are in flight.
    fn start_exchange(&mut self, id: u64, now: Instant) {
        if self.in_flight >= self.config.max_in_flight.max(1) {
            if let Some(e) = self.entries.get_mut(&id) {
                e.queued = true;
                e.timer = None;
                self.send_queue.push_back(id);
            }
            return;
        }
        let Some(entry) = self.entries.get(&id) else { return };
        let policy = match (&entry.kind, entry.phase) {
            (Kind::Announce(p), _) => *p,
            // A renewal keeps trying for as long as the mapping lasts.
            (_, Phase::Renewing) => {
                let expiry = entry.info.as_ref().map_or(now, MappingInfo::expires_at);
                RetransmitPolicy {
                    max_retransmissions: None,
                    max_duration: Some(expiry.saturating_duration_since(now)),
                    ..self.config.retransmit
                }
            }
            (Kind::Mapping(t) | Kind::Probe(t), _) => t.retransmit,
        };
        let schedule = RetransmitSchedule::start(policy, now, &mut self.rng);
        let next = schedule.next_timeout();
        let entry = self.entries.get_mut(&id).expect("checked above");
        entry.queued = false;
        entry.schedule = Some(schedule);
        self.in_flight += 1;
        self.transmit(id);
        self.set_timer(id, next);
    }

    /// Takes the entry's request off the wire (or out of the queue) and lets
    /// a queued one go.
    fn end_exchange(&mut self, id: u64, now: Instant) {
        if self.end_exchange_quiet(id) {
            self.pump(now);
        }
    }

    fn end_exchange_quiet(&mut self, id: u64) -> bool {
        let Some(e) = self.entries.get_mut(&id) else { return false };
        e.queued = false; // its queue slot is skipped lazily
        e.timer = None;
        if e.schedule.take().is_some() {
            self.in_flight -= 1;
            true
        } else {
            false
        }
    }

    fn pump(&mut self, now: Instant) {
        while self.in_flight < self.config.max_in_flight.max(1) {
            let Some(id) = self.send_queue.pop_front() else { break };
            if self.entries.get(&id).is_some_and(|e| e.queued) {
                self.start_exchange(id, now);
            }
        }
    }

    fn transmit(&mut self, id: u64) {
        let Some(entry) = self.entries.get(&id) else { return };
        let request = match &entry.kind {
            Kind::Announce(_) => Request::announce(self.config.client_addr),
            Kind::Mapping(t) | Kind::Probe(t) => {
                let lifetime = if entry.phase == Phase::Deleting { 0 } else { t.lifetime };
                // Renewals and deletes suggest what was assigned (section 11.2.1).
                let (ext_port, ext_addr) = match &entry.info {
                    Some(i) => (i.external_port, i.external_addr),
                    None => (t.suggested_port, t.suggested_addr),
                };
                let body = match t.remote {
                    None => Body::Map(MapPayload {
                        nonce: t.nonce,
                        protocol: t.protocol,
                        internal_port: t.internal_port,
                        external_port: ext_port,
                        external_addr: ext_addr,
                    }),
                    Some((remote_addr, remote_port)) => Body::Peer(PeerPayload {
                        nonce: t.nonce,
                        protocol: t.protocol,
                        internal_port: t.internal_port,
                        external_port: ext_port,
                        external_addr: ext_addr,
                        remote_port,
                        remote_addr,
                    }),
                };
                Request { lifetime, client_addr: self.config.client_addr, body, options: t.options.clone() }
            }
        };
        self.stats.sent += 1;
        self.transmits.push_back(Transmit { destination: self.config.server, payload: request.encode() });
    }

    fn on_timer(&mut self, id: u64, now: Instant) {
        let Some(entry) = self.entries.get_mut(&id) else { return };
        match entry.phase {
            Phase::Granted | Phase::RetryWait => {
                let expired = entry.info.as_ref().is_some_and(|i| i.expires_at() <= now);
                if expired {
                    let error = entry.last_error.clone().unwrap_or(Error::Timeout);
                    self.lose(id, error, now);
                } else {
                    entry.phase = Phase::Renewing;
                    self.start_exchange(id, now);
                }
            }
            _ => {
                let Some(schedule) = entry.schedule.as_mut() else { return };
                match schedule.on_timeout(now, &mut self.rng) {
                    RetransmitStep::Resend(next) => {
                        self.stats.retransmitted += 1;
                        self.transmit(id);
                        self.set_timer(id, next);
                    }
                    RetransmitStep::GiveUp => {
                        let error = entry.last_error.clone().unwrap_or(Error::Timeout);
                        self.fail(id, error, now);
                    }
                }
            }
        }
    }

    /// Ends an entry's exchange with an error, reporting it as fits its phase.
    fn fail(&mut self, id: u64, error: Error, now: Instant) {
        let Some(entry) = self.entries.get(&id) else { return };
        match (entry.phase, &entry.kind) {
            (Phase::Renewing, _) => self.lose(id, error, now),
            (Phase::Requesting, Kind::Mapping(_)) => {
                self.end_exchange(id, now);
                self.remove(id);
                self.events.push_back(Event::Failed { id: MappingId(id), error });
            }
            (Phase::Requesting, Kind::Probe(_)) => {
                self.end_exchange(id, now);
                self.remove(id);
                self.events.push_back(Event::ExternalAddress { id: RequestId(id), result: Err(error) });
            }
            (Phase::Deleting, kind) => {
                let report = matches!(kind, Kind::Mapping(_));
                self.end_exchange(id, now);
                self.remove(id);
                if report {
                    self.events.push_back(Event::Deleted { id: MappingId(id), result: Err(error) });
                }
            }
            (Phase::Announcing, _) => {
                self.end_exchange(id, now);
                self.remove(id);
                self.events.push_back(Event::Announced { id: RequestId(id), result: Err(error) });
            }
            (Phase::Granted | Phase::RetryWait, _) | (Phase::Requesting, Kind::Announce(_)) => {}
        }
    }

    fn lose(&mut self, id: u64, error: Error, now: Instant) {
        self.end_exchange(id, now);
        if let Some(entry) = self.remove(id) {
            if matches!(entry.kind, Kind::Mapping(_)) {
                self.events.push_back(Event::Lost { id: MappingId(id), error });
            }
        }
    }

    /// Fails outstanding first requests, deletes and ANNOUNCEs (of `opcode`,
    /// or all); renewals wait `retry_after` seconds (at least the IRT).
    fn fail_outstanding(&mut self, now: Instant, opcode: Option<Opcode>, error: Error, retry_after: u32) {
        let mut ids: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, e)| e.outstanding())
            .filter(|(_, e)| {
                let op = e.template().map_or(Opcode::Announce, |t| t.opcode);
                opcode.is_none_or(|o| o == op)
            })
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        for id in ids {
            if self.entries.get(&id).is_some_and(|e| e.phase == Phase::Renewing) {
                if error != Error::ServerUnreachable {
                    self.renewal_error(id, error.clone(), retry_after, now);
                }
            } else {
                self.fail(id, error.clone(), now);
            }
        }
    }

    fn renewal_error(&mut self, id: u64, error: Error, retry_after: u32, now: Instant) {
        self.end_exchange(id, now);
        let min_wait = self.config.retransmit.initial;
        let Some(entry) = self.entries.get_mut(&id) else { return };
        let expiry = entry.info.as_ref().map_or(now, MappingInfo::expires_at);
        let retry_at = (now + Duration::from_secs(u64::from(retry_after)).max(min_wait)).min(expiry);
        entry.last_error = Some(error);
        entry.phase = Phase::RetryWait;
        self.set_timer(id, retry_at);
    }

    fn handle_undecodable(&mut self, now: Instant, data: &[u8], err: WireError) {
        // A server speaking another version answers UNSUPP_VERSION in its own
        // version's header (section 9); a NAT-PMP gateway in NAT-PMP format.
        let server_version = match err {
            WireError::WrongVersion(v)
                if v != 0 && data.len() >= 4 && data[1] & 0x80 != 0 && data[3] == ResultCode::UnsuppVersion.to_u8() =>
            {
                Some(v)
            }
            _ => wire::decode_natpmp_unsupported(data).ok().map(|_| 0),
        };
        match server_version {
            Some(server_version) => self.fail_outstanding(now, None, Error::UnsuppVersion { server_version }, 0),
            None => self.stats.dropped += 1,
        }
    }

    fn observe_epoch(&mut self, epoch: u32, now: Instant) -> bool {
        if self.epoch.observe(epoch, now) == EpochCheck::Restarted {
            self.events.push_back(Event::ServerRestarted { epoch });
            true
        } else {
            false
        }
    }

    fn handle_announce(&mut self, now: Instant, response: &Response) {
        let mut waiting: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, e)| e.phase == Phase::Announcing && e.schedule.is_some())
            .map(|(id, _)| *id)
            .collect();
        waiting.sort_unstable();
        if let Some(error) = Error::from_result_code(response.result) {
            if waiting.is_empty() {
                self.stats.dropped += 1;
            }
            for id in waiting {
                self.fail(id, error.clone(), now);
            }
            return;
        }
        let restarted = self.observe_epoch(response.epoch, now);
        if waiting.is_empty() {
            // Unsolicited (section 14.1.3): renew everything after a random
            // delay, so a rebooted server's clients do not all answer at once.
            let max = self.config.announce_delay_max;
            let delay = if max.is_zero() { Duration::ZERO } else { max.mul_f64(self.rng.random_range(0.0..=1.0)) };
            let at = now + delay;
            self.renew_all_at = Some(self.renew_all_at.map_or(at, |t| t.min(at)));
            return;
        }
        for id in waiting {
            self.end_exchange(id, now);
            self.remove(id);
            self.events.push_back(Event::Announced { id: RequestId(id), result: Ok(response.epoch) });
        }
        if restarted {
            self.renew_all(now);
        }
    }

    fn handle_mapping_response(&mut self, now: Instant, response: &Response, body: &Body) {
        let Some(f) = body.mapping_fields() else { return };
        let (nonce, protocol, internal_port, ext_port, ext_addr, remote) =
            (f.nonce, f.protocol, f.internal_port, f.external_port, f.external_addr, f.remote);
        let Some(&id) = self.by_nonce.get(&nonce) else {
            self.stats.dropped += 1;
            return;
        };
        let entry = &self.entries[&id];
        let template = entry.template().expect("nonce index holds only mappings");
        let matches = entry.schedule.is_some()
            && template.opcode == response.opcode
            && template.protocol == protocol
            && template.internal_port == internal_port
            && template.remote == remote;
        if !matches {
            self.stats.dropped += 1;
            return;
        }
        let phase = entry.phase;
        let success = response.result == ResultCode::Success;
        // A success with a lifetime answers a create or renew; with 0, a delete.
        // A late answer to the other kind is not for the request on the wire.
        let is_delete_answer = response.lifetime == 0;
        if success && (phase == Phase::Deleting) != is_delete_answer {
            self.stats.dropped += 1;
            return;
        }
        if success && phase != Phase::Deleting && template.protocol.has_ports() && ext_port == 0 {
            self.stats.dropped += 1;
            return;
        }
        let restarted = self.observe_epoch(response.epoch, now);
        if restarted {
            self.renew_all_except(now, Some(id));
        }

        if phase == Phase::Deleting {
            let result = match Error::from_result_code(response.result) {
                None => Ok(()),
                Some(e) => Err(e),
            };
            let report = matches!(self.entries[&id].kind, Kind::Mapping(_));
            self.end_exchange(id, now);
            self.remove(id);
            if report {
                self.events.push_back(Event::Deleted { id: MappingId(id), result });
            }
            return;
        }

        if let Some(error) = Error::from_result_code(response.result) {
            match phase {
                Phase::Renewing => self.renewal_error(id, error, response.lifetime, now),
                _ => self.fail(id, error, now),
            }
            return;
        }

        self.end_exchange(id, now);
        if let Some(old) = self.external_addr.replace(ext_addr) {
            if old != ext_addr {
                self.events.push_back(Event::ExternalAddressChanged { old, new: ext_addr });
            }
        }
        let lifetime = response.lifetime;
        let renew_in = Duration::from_secs(u64::from(lifetime)).mul_f64(self.rng.random_range(0.5..=0.625));
        let entry = self.entries.get_mut(&id).expect("present");
        let template = entry.template().expect("mapping");
        let info = MappingInfo {
            id: MappingId(id),
            opcode: template.opcode,
            protocol: template.protocol,
            internal_addr: template.internal_addr,
            internal_port: template.internal_port,
            external_addr: ext_addr,
            external_port: ext_port,
            remote: template.remote,
            lifetime,
            epoch: response.epoch,
            nonce,
            granted_at: now,
        };
        entry.info = Some(info.clone());
        entry.last_error = None;
        match entry.kind {
            Kind::Probe(_) => {
                self.events.push_back(Event::ExternalAddress { id: RequestId(id), result: Ok(ext_addr) });
                entry.phase = Phase::Deleting;
                self.start_exchange(id, now);
            }
            _ => {
                entry.phase = Phase::Granted;
                self.set_timer(id, now + renew_in);
                self.events.push_back(if phase == Phase::Requesting {
                    Event::Granted(info)
                } else {
                    Event::Renewed(info)
                });
            }
        }
    }

    fn renew_all_except(&mut self, now: Instant, except: Option<u64>) {
        let mut ids: Vec<u64> = self
            .entries
            .iter()
            .filter(|(id, e)| {
                Some(**id) != except
                    && matches!(e.kind, Kind::Mapping(_))
                    && matches!(e.phase, Phase::Granted | Phase::RetryWait)
            })
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        for id in ids {
            let e = self.entries.get_mut(&id).expect("listed");
            e.phase = Phase::Renewing;
            e.timer = None;
            self.start_exchange(id, now);
        }
    }
}

fn check_ports(protocol: Protocol, internal_port: u16) -> Result<()> {
    if protocol == Protocol::ALL && internal_port != 0 {
        return Err(Error::invalid("protocol 0 (all) maps all ports: the internal port must be 0"));
    }
    if protocol != Protocol::ALL && internal_port == 0 {
        return Err(Error::invalid(format!("internal port 0 is only valid with protocol 0 (all), not {protocol}")));
    }
    Ok(())
}

/// Compares socket addresses, treating IPv4 and IPv4-mapped IPv6 alike.
pub(crate) fn same_endpoint(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && canonical(a.ip()) == canonical(b.ip())
}

pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}
