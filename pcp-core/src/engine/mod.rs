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

mod announce;
mod deletion;
mod entry;
mod epoch;
mod event;
mod exchange;
mod key_map;
mod mapping;
mod natpmp;
mod negotiation;
mod refusal;
mod renewal;
mod renumber;
mod requests;
mod response;
mod retransmit;
mod unwanted;
mod update;
mod validate;
mod version;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;

pub use announce::ANNOUNCE_HOLDOFF;
pub use epoch::{Epoch, EpochCheck};
pub use event::Event;
pub(crate) use key_map::KeyMap;
pub use mapping::{MapSpec, MappingId, MappingInfo, PeerSpec, RequestId, DEFAULT_LIFETIME};
pub use natpmp::{natpmp_error, NATPMP_INITIAL_TIMEOUT, NATPMP_MAX_SENDS};
pub use negotiation::{ProtocolChoice, ProtocolVersion, PCP_RETRY_INTERVAL};
pub use renewal::MIN_RENEWAL_INTERVAL;
pub use retransmit::{RetransmitPolicy, RetransmitSchedule, RetransmitStep};

use crate::wire::{Nonce, Protocol};
use crate::Error;

use entry::{Entry, Kind, Phase};

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
    /// PCP only, NAT-PMP only, or PCP with the NAT-PMP fallback of RFC 6887
    /// section 9 (the default).
    pub protocol: ProtocolChoice,
    /// The least time between two renewal requests of a mapping. Section
    /// 11.2.1 says they MUST NOT be less than four seconds apart
    /// ([`MIN_RENEWAL_INTERVAL`], the default); only tests with lifetimes
    /// no real server grants should set less.
    pub min_renewal_interval: Duration,
    /// Test-only: resend an unanswered renewal this often instead of at the
    /// points of section 11.2.1 (which halve the time left and so give a
    /// handful of attempts per lifetime). Below four seconds this breaks
    /// the RFC's MUST; it exists for loss tests with lifetimes of seconds.
    /// `None`, the default, follows the RFC.
    pub renewal_retry_interval: Option<Duration>,
}

impl EngineConfig {
    /// The defaults for talking to `server` from `client_addr` (the Client IP
    /// field of every request).
    pub fn new(server: SocketAddr, client_addr: IpAddr) -> Self {
        EngineConfig {
            server,
            client_addr,
            retransmit: RetransmitPolicy::default(),
            max_in_flight: 64,
            announce_delay_max: Duration::from_secs(5),
            rng_seed: None,
            probe_port: 0,
            protocol: ProtocolChoice::Auto,
            min_renewal_interval: MIN_RENEWAL_INTERVAL,
            renewal_retry_interval: None,
        }
    }
}

/// A datagram the engine wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it (the server).
    pub destination: SocketAddr,
    /// The encoded message.
    pub payload: Vec<u8>,
}

/// Counters, for diagnostics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Requests sent, retransmissions included.
    pub sent: u64,
    /// Of those, retransmissions.
    pub retransmitted: u64,
    /// Datagrams handed to the engine.
    pub received: u64,
    /// Datagrams dropped as invalid or unmatched.
    pub dropped: u64,
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
    /// When the last unsolicited ANNOUNCE was taken (section 14.1.3, rate-limited).
    last_announce: Option<Instant>,
    /// Refusals of first requests still in force (section 8.3).
    refusals: Vec<refusal::Refusal>,
    /// After NO_RESOURCES: no new mapping requests until then (section 8.3).
    no_new_mappings_until: Option<(Instant, Error)>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: EngineStats,
    /// What new requests speak (section 9 negotiation).
    speaking: ProtocolVersion,
    /// When to try PCP again after falling back to NAT-PMP.
    pcp_retry_at: Option<Instant>,
    /// The external address learnt over NAT-PMP (opcode 0).
    natpmp_addr: Option<std::net::Ipv4Addr>,
    /// Set by [`Engine::close`]: a failed delete no longer holds its
    /// mapping again.
    closing: bool,
}

impl Engine {
    /// An engine with no mappings; it sends nothing until asked.
    pub fn new(config: EngineConfig) -> Self {
        let rng = match config.rng_seed {
            Some(seed) => StdRng::from_seed(seed),
            None => StdRng::from_os_rng(),
        };
        let speaking = match config.protocol {
            ProtocolChoice::NatPmpOnly => ProtocolVersion::NatPmp,
            ProtocolChoice::Auto | ProtocolChoice::PcpOnly => ProtocolVersion::Pcp,
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
            last_announce: None,
            refusals: Vec::new(),
            no_new_mappings_until: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: EngineStats::default(),
            speaking,
            pcp_retry_at: None,
            natpmp_addr: None,
            closing: false,
        }
    }

    /// The settings it was made with.
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

    /// Its counters so far.
    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// A granted mapping, unless it is being deleted (as [`Engine::mappings`]
    /// lists them: a delete that is never answered must not leave it held).
    pub fn mapping(&self, id: MappingId) -> Option<&MappingInfo> {
        match self.entries.get(&id.0).map(|e| &**e) {
            Some(e @ Entry { kind: Kind::Mapping(_), .. }) if e.phase != Phase::Deleting => e.info.as_ref(),
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

    /// Whether `id` is a mapping id this engine gave out that has ended
    /// (deleted, lost, failed or forgotten): deleting it has nothing to do.
    pub fn has_ended(&self, id: MappingId) -> bool {
        (1..self.next_id).contains(&id.0) && !self.entries.contains_key(&id.0)
    }

    /// Whether nothing is outstanding and nothing is held.
    pub fn is_idle(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether [`Engine::poll_event`] has something.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
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
}
