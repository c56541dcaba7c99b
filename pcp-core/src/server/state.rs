use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::wire::canonical;
use crate::wire::{
    Body, MapPayload, Nonce, Opcode, PcpOption, PeerPayload, Protocol, Request, Response, ResultCode, WireError,
    HEADER_SIZE, VERSION,
};

use super::ServerConfig;
use crate::wire::natpmp::{NatPmpResult, NATPMP_VERSION};

/// A mapping as the test server holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerMapping {
    pub opcode: Opcode,
    pub internal_addr: IpAddr,
    pub protocol: Protocol,
    pub internal_port: u16,
    pub external_addr: IpAddr,
    pub external_port: u16,
    pub remote: Option<(IpAddr, u16)>,
    pub nonce: Nonce,
    pub expires_at: Instant,
    pub filters: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Key {
    pub(super) internal_addr: IpAddr,
    pub(super) protocol: Protocol,
    pub(super) internal_port: u16,
    pub(super) remote: Option<(IpAddr, u16)>,
}

/// The test server's protocol logic, without a socket: a datagram and the
/// time in, the answer out.
pub struct ServerState {
    pub(super) config: ServerConfig,
    external_addr: IpAddr,
    epoch_start: Instant,
    epoch_offset: u32,
    pub(super) mappings: HashMap<Key, ServerMapping>,
    pub(super) ports_in_use: HashSet<(Protocol, u16)>,
    next_port: u16,
    clients: HashSet<SocketAddr>,
    /// Where each PCP mapping's last request came from: where an
    /// unsolicited update for it goes (RFC 6887 section 14.2).
    sources: HashMap<Key, SocketAddr>,
    /// Clients that spoke NAT-PMP: they get NAT-PMP announcements.
    pub(super) natpmp_clients: HashSet<SocketAddr>,
    /// A result code forced on every NAT-PMP request.
    pub(super) natpmp_forced: Option<NatPmpResult>,
    requests: u64,
    /// When expired mappings were last swept (a sweep is O(mappings), so it
    /// runs at most once a second; a lookup checks its own entry).
    last_sweep: Instant,
}

impl ServerState {
    pub fn new(config: ServerConfig, now: Instant) -> Self {
        ServerState {
            external_addr: config.external_addr,
            next_port: config.port_range.0,
            epoch_offset: config.initial_epoch,
            config,
            epoch_start: now,
            mappings: HashMap::new(),
            ports_in_use: HashSet::new(),
            clients: HashSet::new(),
            sources: HashMap::new(),
            natpmp_clients: HashSet::new(),
            natpmp_forced: None,
            requests: 0,
            last_sweep: now,
        }
    }

    pub fn external_addr(&self) -> IpAddr {
        self.external_addr
    }

    pub fn set_external_addr(&mut self, addr: IpAddr) {
        self.external_addr = addr;
        for m in self.mappings.values_mut() {
            if m.external_addr.is_ipv4() == addr.is_ipv4() && m.internal_addr != m.external_addr {
                m.external_addr = addr;
            }
        }
    }

    /// Unsolicited MAP and PEER responses (RFC 6887 section 14.2) telling
    /// each PCP client the current state of its live mappings (after an
    /// external address change), with where to send each.
    pub fn mapping_updates(&mut self, now: Instant) -> Vec<(SocketAddr, Vec<u8>)> {
        self.expire(now);
        let epoch = self.epoch(now);
        let mut out = Vec::new();
        for (key, m) in &self.mappings {
            let Some(&to) = self.sources.get(key) else { continue };
            let lifetime = m.expires_at.saturating_duration_since(now).as_secs().max(1);
            let body = match m.remote {
                None => Body::Map(MapPayload {
                    nonce: m.nonce,
                    protocol: m.protocol,
                    internal_port: m.internal_port,
                    external_port: m.external_port,
                    external_addr: m.external_addr,
                }),
                Some((remote_addr, remote_port)) => Body::Peer(PeerPayload {
                    nonce: m.nonce,
                    protocol: m.protocol,
                    internal_port: m.internal_port,
                    external_port: m.external_port,
                    external_addr: m.external_addr,
                    remote_port,
                    remote_addr,
                }),
            };
            let lifetime = u32::try_from(lifetime).unwrap_or(u32::MAX);
            out.push((to, Response::new(ResultCode::Success, lifetime, epoch, body).encode()));
        }
        out
    }

    pub fn epoch(&self, now: Instant) -> u32 {
        let up = now.saturating_duration_since(self.epoch_start).as_secs().min(u64::from(u32::MAX)) as u32;
        self.epoch_offset.saturating_add(up)
    }

    /// Forget everything; the epoch starts again from 0.
    pub fn reboot(&mut self, now: Instant) {
        self.epoch_start = now;
        self.epoch_offset = 0;
        self.mappings.clear();
        self.sources.clear();
        self.ports_in_use.clear();
        self.next_port = self.config.port_range.0;
    }

    pub fn known_clients(&self) -> Vec<SocketAddr> {
        let mut v: Vec<_> = self.clients.iter().copied().collect();
        v.sort();
        v
    }

    pub fn count_request(&mut self) {
        self.requests += 1;
    }

    pub fn requests_received(&self) -> u64 {
        self.requests
    }

    pub fn mappings(&mut self, now: Instant) -> Vec<ServerMapping> {
        self.expire(now);
        self.mappings.values().cloned().collect()
    }

    /// An unsolicited ANNOUNCE response (section 14.1.3).
    pub fn unsolicited_announce(&self, now: Instant) -> Vec<u8> {
        Response::new(ResultCode::Success, 0, self.epoch(now), Body::Announce).encode()
    }

    fn expire(&mut self, now: Instant) {
        self.last_sweep = now;
        let ports = &mut self.ports_in_use;
        self.mappings.retain(|_, m| {
            let keep = m.expires_at > now;
            if !keep {
                ports.remove(&(m.protocol, m.external_port));
            }
            keep
        });
    }

    fn error_header(&self, now: Instant, opcode_byte: u8, code: ResultCode) -> Vec<u8> {
        let mut v = Vec::with_capacity(HEADER_SIZE);
        v.push(VERSION);
        v.push(0x80 | (opcode_byte & 0x7f));
        v.push(0);
        v.push(code.to_u8());
        v.extend_from_slice(&30u32.to_be_bytes());
        v.extend_from_slice(&self.epoch(now).to_be_bytes());
        v.extend_from_slice(&[0; 12]);
        v
    }

    /// Handles one datagram from `from`; returns the answer, if any.
    /// `forced` answers MAP and PEER with that result code and lifetime.
    pub fn handle(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
        forced: Option<(ResultCode, u32)>,
    ) -> Option<Vec<u8>> {
        // Responses and runts are not requests: never answer them (no loops).
        // (A NAT-PMP external-address request is 2 bytes.)
        if data.len() < 2 || data[1] & 0x80 != 0 {
            return None;
        }
        if now.saturating_duration_since(self.last_sweep) >= Duration::from_secs(1) {
            self.expire(now);
        }
        let mode = self.config.mode;
        if data[0] == NATPMP_VERSION && mode.speaks_natpmp() {
            return self.handle_natpmp(now, from, data);
        }
        if !mode.speaks_pcp() {
            return Some(self.natpmp_unsupported_version(now, data));
        }
        if data.len() < 4 {
            return None;
        }
        if data[0] != VERSION {
            // Section 9: another version, whatever its length, gets UNSUPP_VERSION.
            return Some(self.error_header(now, data[1], ResultCode::UnsuppVersion));
        }
        let req = match Request::decode(data) {
            Ok(r) => r,
            Err(WireError::WrongVersion(_)) => return Some(self.error_header(now, data[1], ResultCode::UnsuppVersion)),
            Err(WireError::UnknownOpcode(_)) if data.len() >= HEADER_SIZE => {
                return Some(self.error_header(now, data[1], ResultCode::UnsuppOpcode))
            }
            Err(
                WireError::OptionOverrun { .. }
                | WireError::OptionLength { .. }
                | WireError::OptionNotAllowed { .. }
                | WireError::OptionRepeated(_)
                | WireError::FilterPrefix(_),
            ) => return Some(self.error_header(now, data[1], ResultCode::MalformedOption)),
            Err(_) => return Some(self.error_header(now, data[1], ResultCode::MalformedRequest)),
        };
        self.clients.insert(from);
        let epoch = self.epoch(now);
        let answer = |result: ResultCode, lifetime: u32, body: Body, options: Vec<PcpOption>| {
            let mut r = Response::new(result, lifetime, epoch, body);
            r.options = options;
            Some(r.encode())
        };
        if canonical(req.client_addr) != canonical(from.ip()) {
            return answer(ResultCode::AddressMismatch, 30, req.body, Vec::new());
        }
        if req.options.iter().any(|o| matches!(o, PcpOption::Unknown { .. }) && o.is_mandatory()) {
            return answer(ResultCode::UnsuppOption, 30, req.body, Vec::new());
        }
        // Known options are echoed back; unknown optional ones are not (section 7.3).
        let echoed: Vec<PcpOption> =
            req.options.iter().filter(|o| !matches!(o, PcpOption::Unknown { .. })).cloned().collect();
        if req.body.opcode() == Opcode::Announce {
            return answer(ResultCode::Success, 0, req.body, Vec::new());
        }
        if let Some((code, lifetime)) = forced {
            return answer(code, lifetime, req.body, echoed);
        }
        let third_party = req.options.iter().find_map(|o| match o {
            PcpOption::ThirdParty(a) => Some(*a),
            _ => None,
        });
        if third_party.is_some() && !self.config.allow_third_party {
            return answer(ResultCode::UnsuppOption, 30, req.body, Vec::new());
        }
        let prefer_failure = req.options.contains(&PcpOption::PreferFailure);
        let filters = req.options.iter().filter(|o| matches!(o, PcpOption::Filter(_))).count();
        let internal_addr = canonical(third_party.unwrap_or(from.ip()));

        let f = req.body.mapping_fields()?;
        let (nonce, protocol, internal_port, sugg_port, sugg_addr) =
            (f.nonce, f.protocol, f.internal_port, f.external_port, f.external_addr);
        let remote = f.remote.map(|(addr, port)| (canonical(addr), port));
        // RFC 6887 section 11.1: port 0 is "all ports" (legal with any
        // protocol); with protocol 0 (all protocols) the port MUST be 0.
        if protocol == Protocol::ALL && internal_port != 0 {
            return answer(ResultCode::MalformedRequest, 30, req.body, Vec::new());
        }
        let key = Key { internal_addr, protocol, internal_port, remote };
        if self.mappings.get(&key).is_some_and(|m| m.expires_at <= now) {
            if let Some(m) = self.mappings.remove(&key) {
                self.ports_in_use.remove(&(m.protocol, m.external_port));
            }
        }
        let existing = self.mappings.get(&key).cloned();
        if let Some(m) = &existing {
            if m.nonce != nonce {
                return answer(ResultCode::NotAuthorized, 30, req.body, echoed);
            }
        }
        let with_assigned = |port: u16, addr: IpAddr| req.body.with_external(port, addr);

        if req.lifetime == 0 {
            if let Some(m) = existing {
                self.mappings.remove(&key);
                self.ports_in_use.remove(&(m.protocol, m.external_port));
                return answer(ResultCode::Success, 0, with_assigned(m.external_port, m.external_addr), echoed);
            }
            return answer(ResultCode::Success, 0, req.body, echoed);
        }

        let lifetime = req.lifetime.clamp(self.config.min_lifetime, self.config.max_lifetime);
        let expires_at = now + Duration::from_secs(u64::from(lifetime));
        self.sources.insert(key, from);
        if let Some(mut m) = existing {
            m.expires_at = expires_at;
            let body = with_assigned(m.external_port, m.external_addr);
            self.mappings.insert(key, m);
            return answer(ResultCode::Success, lifetime, body, echoed);
        }

        // IPv6: a firewall pinhole, external = internal.
        let pinhole = internal_addr.is_ipv6() && sugg_addr.is_ipv6();
        let external_addr = if pinhole { internal_addr } else { self.external_addr };
        if !sugg_addr.is_unspecified() && canonical(sugg_addr) != external_addr && prefer_failure {
            return answer(ResultCode::CannotProvideExternal, 30, req.body, echoed);
        }
        let external_port = if protocol == Protocol::ALL || internal_port == 0 {
            0
        } else if pinhole {
            internal_port
        } else if sugg_port != 0 && !self.ports_in_use.contains(&(protocol, sugg_port)) {
            sugg_port
        } else if prefer_failure {
            return answer(ResultCode::CannotProvideExternal, 30, req.body, echoed);
        } else {
            match self.allocate(protocol) {
                Some(p) => p,
                None => return answer(ResultCode::NoResources, 30, req.body, echoed),
            }
        };
        self.ports_in_use.insert((protocol, external_port));
        self.mappings.insert(
            key,
            ServerMapping {
                opcode: req.body.opcode(),
                internal_addr,
                protocol,
                internal_port,
                external_addr,
                external_port,
                remote,
                nonce,
                expires_at,
                filters,
            },
        );
        answer(ResultCode::Success, lifetime, with_assigned(external_port, external_addr), echoed)
    }

    /// Removes a mapping and frees its external port.
    pub(super) fn remove_mapping(&mut self, key: &Key) {
        if let Some(m) = self.mappings.remove(key) {
            self.ports_in_use.remove(&(m.protocol, m.external_port));
        }
    }

    pub(super) fn allocate(&mut self, protocol: Protocol) -> Option<u16> {
        let (lo, hi) = self.config.port_range;
        let span = u32::from(hi - lo) + 1;
        for _ in 0..span {
            let p = self.next_port;
            self.next_port = if p >= hi { lo } else { p + 1 };
            if !self.ports_in_use.contains(&(protocol, p)) {
                return Some(p);
            }
        }
        None
    }
}
