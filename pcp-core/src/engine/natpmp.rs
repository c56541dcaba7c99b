//! Requests and answers over NAT-PMP (RFC 6886), for a server the engine
//! speaks NAT-PMP to (see [`negotiation`](super::negotiation)).
//!
//! NAT-PMP has no nonce: an answer matches the outstanding request of its
//! opcode (protocol) and internal port. Its MAP answer carries no external
//! address, so the engine asks for it (opcode 0) in parallel with the first
//! MAP and completes the grant when both are in: no extra round trip.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use rand::Rng;

use crate::wire::natpmp::{NatPmpProtocol, NatPmpRequest, NatPmpResponse, NatPmpResult};
use crate::wire::{Opcode, PcpOption, Protocol};
use crate::Error;

use super::entry::{Kind, NatPmpGrant, Phase, Template};
use super::{
    Engine, EpochCheck, Event, MappingId, MappingInfo, ProtocolVersion, RequestId, RetransmitPolicy, Transmit,
};

/// RFC 6886 section 3.1: the first retransmission after 250 ms, doubling.
pub const NATPMP_INITIAL_TIMEOUT: Duration = Duration::from_millis(250);
/// ... for at most 9 sends (the last waits 64 s).
pub const NATPMP_MAX_SENDS: u32 = 9;

/// The retransmission policy of a NAT-PMP request derived from the PCP
/// one: 250 ms doubling, no jitter, 9 sends, within the same deadline. A
/// renewal keeps its "until expiry" deadline and no count limit.
pub(super) fn natpmp_policy(pcp: RetransmitPolicy, renewal: bool) -> RetransmitPolicy {
    RetransmitPolicy {
        initial: NATPMP_INITIAL_TIMEOUT,
        max: NATPMP_INITIAL_TIMEOUT * 2u32.pow(NATPMP_MAX_SENDS - 1),
        max_retransmissions: if renewal {
            None
        } else {
            Some(pcp.max_retransmissions.map_or(NATPMP_MAX_SENDS - 1, |n| n.min(NATPMP_MAX_SENDS - 1)))
        },
        max_duration: pcp.max_duration,
        jitter: false,
    }
}

/// The error a NAT-PMP result code stands for; `None` for success.
pub fn natpmp_error(code: NatPmpResult) -> Option<Error> {
    Some(match code {
        NatPmpResult::Success => return None,
        NatPmpResult::UnsupportedVersion => Error::UnsuppVersion { server_version: 0 },
        NatPmpResult::NotAuthorized => Error::NotAuthorized { retry_after: 0 },
        NatPmpResult::NetworkFailure => Error::NetworkFailure { retry_after: 0 },
        NatPmpResult::OutOfResources => Error::NoResources { retry_after: 0 },
        NatPmpResult::UnsupportedOpcode => Error::UnsuppOpcode { retry_after: 0 },
    })
}

impl Engine {
    /// What in `t` NAT-PMP cannot do, as the error to report; `None` if it can.
    pub(super) fn natpmp_cannot(&self, t: &Template) -> Option<Error> {
        let no = |what: String| Some(Error::UnsupportedByNatPmp(what));
        if t.opcode == Opcode::Peer {
            return no("PEER mappings".into());
        }
        if let Some(o) = t.options.first() {
            let name = match o {
                PcpOption::ThirdParty(_) => "THIRD_PARTY".to_string(),
                PcpOption::PreferFailure => "PREFER_FAILURE".to_string(),
                PcpOption::Filter(_) => "FILTER".to_string(),
                PcpOption::Unknown { code, .. } => format!("PCP option {code}"),
            };
            return no(format!("the {name} option"));
        }
        if t.internal_addr != self.config.client_addr {
            return no("THIRD_PARTY mappings".into());
        }
        if NatPmpProtocol::from_protocol(t.protocol).is_none() {
            return no(format!("protocol {} (NAT-PMP maps only TCP and UDP)", t.protocol));
        }
        if !t.suggested_addr.is_unspecified() && !is_v4_unspecified(t.suggested_addr) {
            return no("a suggested external address".into());
        }
        if !self.config.server.ip().is_ipv4() && !is_v4_mapped(self.config.server.ip()) {
            return no("IPv6 (NAT-PMP is IPv4 only)".into());
        }
        None
    }

    /// Sends the entry's request in NAT-PMP.
    pub(super) fn transmit_natpmp(&mut self, id: u64) {
        let Some(entry) = self.entries.get(&id) else { return };
        let request = match &entry.kind {
            // An unwanted grant is only ever deleted.
            Kind::Mapping(t) | Kind::Unwanted(t) => {
                let Some(protocol) = NatPmpProtocol::from_protocol(t.protocol) else { return };
                let deleting = entry.phase == Phase::Deleting;
                // A delete suggests port 0 (section 3.4); a renewal what was granted.
                let suggested_port = match (&entry.info, deleting) {
                    (_, true) => 0,
                    (Some(i), false) => i.external_port,
                    (None, false) => t.suggested_port,
                };
                let lifetime = if deleting { 0 } else { t.lifetime };
                NatPmpRequest::Map { protocol, internal_port: t.internal_port, suggested_port, lifetime }
            }
            Kind::Probe(_) | Kind::Announce(_) | Kind::AddressQuery(_) => NatPmpRequest::ExternalAddress,
        };
        self.stats.sent += 1;
        self.transmits.push_back(Transmit { destination: self.config.server, payload: request.encode() });
    }

    /// Starts the engine's own external-address query unless one is on its
    /// way or the address is known.
    pub(super) fn ensure_natpmp_addr(&mut self, now: Instant) {
        let asking = self.entries.values().any(|e| matches!(e.kind, Kind::AddressQuery(_)));
        if self.natpmp_addr.is_none() && !asking {
            let policy = natpmp_policy(self.config.retransmit, false);
            self.insert_as(now, Kind::AddressQuery(policy), Phase::Requesting, true);
        }
    }

    /// A NAT-PMP datagram from the server.
    pub(super) fn handle_natpmp_response(&mut self, now: Instant, r: NatPmpResponse) {
        if r.result() == NatPmpResult::UnsupportedVersion {
            self.on_version_zero_answer(now);
            return;
        }
        match r {
            NatPmpResponse::ExternalAddress { result, epoch, external_addr } => {
                self.natpmp_address_answer(now, result, epoch, external_addr)
            }
            NatPmpResponse::Map { protocol, result, epoch, internal_port, external_port, lifetime } => {
                self.natpmp_map_answer(now, protocol.protocol(), result, epoch, internal_port, external_port, lifetime)
            }
            NatPmpResponse::Header { request_opcode, result, epoch } => {
                let protocol = match request_opcode {
                    1 => Some(Protocol::UDP),
                    2 => Some(Protocol::TCP),
                    _ => None,
                };
                let error = natpmp_error(result).unwrap_or(Error::BadResponse("NAT-PMP header-only success".into()));
                self.natpmp_observe_epoch(epoch, now);
                // A short error answer names no port: it concerns every
                // NAT-PMP request of its opcode.
                let mut ids: Vec<u64> = self
                    .entries
                    .iter()
                    .filter(|(_, e)| e.natpmp && e.schedule.is_some())
                    .filter(|(_, e)| match e.template() {
                        Some(t) if matches!(e.kind, Kind::Mapping(_)) => Some(t.protocol) == protocol,
                        _ => protocol.is_none(),
                    })
                    .map(|(id, _)| *id)
                    .collect();
                ids.sort_unstable();
                if ids.is_empty() {
                    self.stats.dropped += 1;
                }
                for id in ids {
                    self.natpmp_error_for(id, error.clone(), now);
                }
            }
        }
    }

    fn natpmp_error_for(&mut self, id: u64, error: Error, now: Instant) {
        match self.entries.get(&id).map(|e| e.phase) {
            Some(Phase::Renewing) => self.renewal_error(id, error, 0, now),
            Some(Phase::Deleting) => self.end_delete(id, Err(error), now),
            Some(_) => self.fail(id, error, now),
            None => {}
        }
    }

    /// RFC 6886 section 3.6; a restart recreates every other mapping.
    fn natpmp_observe_epoch(&mut self, epoch: u32, now: Instant) -> bool {
        if self.epoch.observe_natpmp(epoch, now) == EpochCheck::Restarted {
            self.events.push_back(Event::ServerRestarted { epoch });
            self.retry_pcp_after_restart();
            true
        } else {
            false
        }
    }

    fn set_external_addr(&mut self, addr: IpAddr) {
        if let Some(old) = self.external_addr.replace(addr) {
            if old != addr {
                self.events.push_back(Event::ExternalAddressChanged { old, new: addr });
            }
        }
    }

    fn natpmp_address_answer(&mut self, now: Instant, result: NatPmpResult, epoch: u32, addr: Ipv4Addr) {
        let mut waiting: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, e)| e.natpmp && e.schedule.is_some())
            .filter(|(_, e)| matches!(e.kind, Kind::Probe(_) | Kind::Announce(_) | Kind::AddressQuery(_)))
            .map(|(id, _)| *id)
            .collect();
        waiting.sort_unstable();
        if let Some(error) = natpmp_error(result) {
            if waiting.is_empty() {
                self.stats.dropped += 1;
            }
            for id in waiting {
                self.fail(id, error.clone(), now);
            }
            return;
        }
        let restarted = self.natpmp_observe_epoch(epoch, now);
        self.natpmp_addr = Some(addr);
        self.set_external_addr(IpAddr::V4(addr));
        if waiting.is_empty() {
            // The unsolicited announcement (section 3.2.1), handled like
            // PCP's ANNOUNCE: renew everything after a random delay.
            let max = self.config.announce_delay_max;
            let delay = if max.is_zero() { Duration::ZERO } else { max.mul_f64(self.rng.random_range(0.0..=1.0)) };
            let at = now + delay;
            self.renew_all_at = Some(self.renew_all_at.map_or(at, |t| t.min(at)));
            return;
        }
        for id in waiting {
            self.end_exchange(id, now);
            let Some(entry) = self.remove(id) else { continue };
            match (entry.kind, entry.phase) {
                (Kind::Probe(_), Phase::Requesting) => {
                    self.events.push_back(Event::ExternalAddress { id: RequestId(id), result: Ok(IpAddr::V4(addr)) })
                }
                (Kind::Announce(_), _) => {
                    self.events.push_back(Event::Announced { id: RequestId(id), result: Ok(epoch) })
                }
                _ => {}
            }
        }
        self.complete_stashed_grants(now, addr);
        if restarted {
            self.renew_all(now);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn natpmp_map_answer(
        &mut self,
        now: Instant,
        protocol: Protocol,
        result: NatPmpResult,
        epoch: u32,
        internal_port: u16,
        external_port: u16,
        lifetime: u32,
    ) {
        let matches = |e: &super::entry::Entry| {
            e.natpmp
                && e.schedule.is_some()
                && matches!(&e.kind, Kind::Mapping(t) if t.opcode == Opcode::Map && t.protocol == protocol && t.internal_port == internal_port)
        };
        let id = match self.by_port.get(&(protocol, internal_port)) {
            Some(&id) if self.entries.get(&id).is_some_and(|e| matches(e)) => Some(id),
            // A delete of a mapping made elsewhere is not in the port index.
            _ => self.entries.iter().find(|(_, e)| matches(e)).map(|(id, _)| *id),
        };
        let Some(id) = id else {
            self.stats.dropped += 1;
            return;
        };
        let phase = self.entries[&id].phase;
        let success = result == NatPmpResult::Success;
        // A create or renew is answered with a port and a lifetime, a delete with neither.
        if success && (phase == Phase::Deleting) != (lifetime == 0) {
            self.stats.dropped += 1;
            return;
        }
        if success && phase != Phase::Deleting && external_port == 0 {
            self.stats.dropped += 1;
            return;
        }
        if self.natpmp_observe_epoch(epoch, now) {
            self.renew_all_except(now, Some(id));
        }
        if phase == Phase::Deleting {
            self.end_delete(id, natpmp_error(result).map_or(Ok(()), Err), now);
            return;
        }
        if let Some(error) = natpmp_error(result) {
            self.natpmp_error_for(id, error, now);
            return;
        }
        self.end_exchange(id, now);
        let grant = NatPmpGrant { external_port, lifetime, epoch, at: now };
        match self.natpmp_addr {
            Some(addr) => self.complete_grant(id, addr, grant),
            None => {
                if let Some(e) = self.entries.get_mut(&id) {
                    e.natpmp_grant = Some(grant);
                }
                self.ensure_natpmp_addr(now);
            }
        }
    }

    fn complete_stashed_grants(&mut self, _now: Instant, addr: Ipv4Addr) {
        let mut ids: Vec<u64> =
            self.entries.iter().filter(|(_, e)| e.natpmp_grant.is_some()).map(|(id, _)| *id).collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(grant) = self.entries.get_mut(&id).and_then(|e| e.natpmp_grant.take()) {
                self.complete_grant(id, addr, grant);
            }
        }
    }

    /// The engine's address query failed: grants waiting for it fail too.
    pub(super) fn fail_stashed_grants(&mut self, error: Error, now: Instant) {
        let mut ids: Vec<u64> =
            self.entries.iter().filter(|(_, e)| e.natpmp_grant.is_some()).map(|(id, _)| *id).collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(e) = self.entries.get_mut(&id) {
                e.natpmp_grant = None;
            }
            self.fail(id, error.clone(), now);
        }
    }

    fn complete_grant(&mut self, id: u64, addr: Ipv4Addr, grant: NatPmpGrant) {
        let ext = IpAddr::V4(addr);
        self.set_external_addr(ext);
        let Some(entry) = self.entries.get_mut(&id) else { return };
        let Kind::Mapping(t) = &entry.kind else { return };
        let info = MappingInfo {
            id: MappingId(id),
            opcode: Opcode::Map,
            protocol: t.protocol,
            internal_addr: t.internal_addr,
            internal_port: t.internal_port,
            external_addr: ext,
            external_port: grant.external_port,
            remote: None,
            lifetime: grant.lifetime,
            epoch: grant.epoch,
            nonce: t.nonce,
            granted_at: grant.at,
            version: ProtocolVersion::NatPmp,
        };
        let first = entry.phase == Phase::Requesting;
        entry.info = Some(info.clone());
        entry.last_error = None;
        entry.phase = Phase::Granted;
        // Section 3.3: renew halfway to expiry.
        let renew_at = grant.at + Duration::from_secs(u64::from(grant.lifetime)) / 2;
        self.set_timer(id, renew_at);
        self.events.push_back(if first { Event::Granted(info) } else { Event::Renewed(info) });
    }
}

fn is_v4_mapped(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some())
}

fn is_v4_unspecified(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_unspecified(),
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some_and(|a| a.is_unspecified()),
    }
}
