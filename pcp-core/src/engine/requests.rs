//! What the user asks for: MAP, PEER, deletes, ANNOUNCE and the external
//! address, checked and turned into entries.

use std::net::IpAddr;
use std::time::Instant;

use rand::Rng;

use crate::wire::{self, unspecified_external, Nonce, Opcode, PcpOption, Protocol};
use crate::{Error, Result};

use super::entry::{Kind, Phase, Template};
use super::refusal::RequestKey;
use super::{Engine, Event, MapSpec, MappingId, PeerSpec, ProtocolVersion, RequestId, RetransmitPolicy};
use crate::wire::canonical;

/// Lifetime of the short-lived mapping used to learn the external address.
const PROBE_LIFETIME: u32 = 120;

impl Engine {
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
        check_request_size(wire::MAP_PAYLOAD_SIZE, &options)?;
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
        self.check_refusals(now, Some(RequestKey::of(&template)))?;
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
        if spec.internal_port == 0 {
            // Section 12: a PEER mapping is one flow, from one internal port.
            return Err(Error::invalid("PEER needs an internal port (0 means all ports, which only MAP can ask for)"));
        }
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
        self.check_refusals(now, Some(RequestKey::of(&template)))?;
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
    /// [`Event::Deleted`] for the returned id. With internal port 0 it asks
    /// the server to delete every mapping of that protocol made with that
    /// nonce (section 11.1: lifetime 0 and port 0 name a set of mappings).
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
    pub fn forget(&mut self, now: Instant, id: MappingId) -> bool {
        match self.entries.get(&id.0) {
            Some(e) if matches!(e.kind, Kind::Mapping(_)) => {
                // end_exchange, not the quiet form: if its request was on the
                // wire, the slot it frees must go to a queued request, which
                // otherwise has no timer and would wait forever.
                self.end_exchange(id.0, now);
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
        self.check_refusals(now, None)?;
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

    #[allow(clippy::too_many_arguments)]
    pub(super) fn template(
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
        if let Some(tp) = third_party {
            // Section 13.1: THIRD_PARTY names another host; naming our own
            // address makes the server refuse or, worse, treat us as a proxy.
            if canonical(tp) == canonical(self.config.client_addr) {
                return Err(Error::invalid(format!(
                    "THIRD_PARTY {tp} is this host's own address: leave the option out to map for this host"
                )));
            }
        }
        let template = Template {
            opcode,
            nonce,
            protocol,
            internal_port,
            // Addresses in their IPv4 form where they have one: the wire
            // carries both forms alike, and answers decode to IPv4, so an
            // IPv4-mapped remote peer would otherwise never match its answer.
            internal_addr: third_party.map_or(self.config.client_addr, canonical),
            remote: remote.map(|(addr, port)| (canonical(addr), port)),
            suggested_port,
            suggested_addr: suggested_addr.map_or_else(|| unspecified_external(self.config.client_addr), canonical),
            lifetime,
            options,
            retransmit: retransmit.unwrap_or(self.config.retransmit),
        };
        // Over NAT-PMP, what it cannot do fails at once, by name.
        if self.speaking == ProtocolVersion::NatPmp {
            if let Some(e) = self.natpmp_cannot(&template) {
                return Err(e);
            }
        }
        Ok(template)
    }
}

/// Section 11.1: internal port 0 means "all ports" and is legal for a
/// delete, for protocols without ports, and to ask for all ports of a
/// protocol; with protocol 0 (all protocols) it MUST be 0.
fn check_ports(protocol: Protocol, internal_port: u16) -> Result<()> {
    if protocol == Protocol::ALL && internal_port != 0 {
        return Err(Error::invalid("protocol 0 (all) maps all ports: the internal port must be 0"));
    }
    Ok(())
}

/// A request must fit in a PCP message (RFC 6887 section 7): say so before
/// sending rather than let the server answer MALFORMED_REQUEST.
fn check_request_size(payload: usize, options: &[PcpOption]) -> Result<()> {
    let size = wire::HEADER_SIZE + payload + options.iter().map(PcpOption::encoded_len).sum::<usize>();
    if size > wire::MAX_MESSAGE_SIZE {
        return Err(Error::invalid(format!(
            "the request would be {size} bytes, over PCP's {}-byte maximum: give fewer FILTER options",
            wire::MAX_MESSAGE_SIZE
        )));
    }
    Ok(())
}
