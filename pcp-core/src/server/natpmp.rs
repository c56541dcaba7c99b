//! The test server's NAT-PMP (RFC 6886) side, and its NAT-PMP-only mode.
//!
//! NAT-PMP mappings live in the same table as PCP's (as in a gateway that
//! speaks both, RFC 6887 section 9), keyed by internal address, protocol
//! and internal port; NAT-PMP has no nonce, so its mappings carry the
//! all-zero one, and a PCP renewal of them (with a real nonce) is refused.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::wire::canonical;
use crate::wire::natpmp::{NatPmpRequest, NatPmpResponse, NatPmpResult, NATPMP_VERSION};
use crate::wire::{Nonce, Opcode, Protocol, WireError};

use super::state::{Key, ServerMapping, ServerState};

/// Which protocols the test server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServerMode {
    /// PCP and NAT-PMP, as miniupnpd with `enable_natpmp=yes`.
    #[default]
    PcpAndNatPmp,
    /// PCP only: a NAT-PMP request gets PCP's UNSUPP_VERSION.
    PcpOnly,
    /// A NAT-PMP-only gateway (an older AirPort, many ISP boxes): a PCP
    /// request gets NAT-PMP's 8-byte "unsupported version" answer.
    NatPmpOnly,
}

impl ServerMode {
    /// The names the shells and the CLI take: "both", "pcp" or "natpmp";
    /// any other is INVALID_ARGUMENT with the one message every shell shows.
    ///
    /// ```
    /// use pcp_core::server::ServerMode;
    /// assert_eq!(ServerMode::parse("pcp").unwrap(), ServerMode::PcpOnly);
    /// let e = ServerMode::parse("nope").unwrap_err();
    /// assert_eq!(e.to_string(), r#"invalid argument: mode: "nope" is not "both", "pcp" or "natpmp""#);
    /// ```
    pub fn parse(name: &str) -> crate::Result<ServerMode> {
        match name {
            "both" => Ok(ServerMode::PcpAndNatPmp),
            "pcp" => Ok(ServerMode::PcpOnly),
            "natpmp" => Ok(ServerMode::NatPmpOnly),
            _ => Err(crate::Error::invalid(format!(
                "mode: {} is not \"both\", \"pcp\" or \"natpmp\"",
                crate::quote_input(name)
            ))),
        }
    }

    /// Whether this mode answers NAT-PMP requests.
    pub fn speaks_natpmp(self) -> bool {
        self != ServerMode::PcpOnly
    }

    /// Whether this mode answers PCP requests.
    pub fn speaks_pcp(self) -> bool {
        self != ServerMode::NatPmpOnly
    }
}

impl ServerState {
    /// The answer of a NAT-PMP-only gateway to a request of another version.
    pub(super) fn natpmp_unsupported_version(&self, now: Instant, data: &[u8]) -> Vec<u8> {
        NatPmpResponse::unsupported_version(data.get(1).copied().unwrap_or(0), self.epoch(now)).encode()
    }

    /// The unsolicited NAT-PMP announcement (RFC 6886 section 3.2.1): the
    /// external address, with the epoch. `None` when the external address
    /// is not IPv4 (NAT-PMP cannot say it).
    pub fn natpmp_announcement(&self, now: Instant) -> Option<Vec<u8>> {
        match self.external_addr() {
            IpAddr::V4(a) => Some(NatPmpResponse::announcement(self.epoch(now), a).encode()),
            IpAddr::V6(_) => None,
        }
    }

    /// NAT-PMP clients seen, for unicast announcements.
    pub fn known_natpmp_clients(&self) -> Vec<SocketAddr> {
        let mut v: Vec<_> = self.natpmp_clients.iter().copied().collect();
        v.sort();
        v
    }

    /// Answers every NAT-PMP MAP and external-address request with `code`
    /// (`None` to answer normally again).
    pub fn force_natpmp_result(&mut self, code: Option<NatPmpResult>) {
        self.natpmp_forced = code;
    }

    /// Handles one NAT-PMP datagram (version 0).
    pub(super) fn handle_natpmp(&mut self, now: Instant, from: SocketAddr, data: &[u8]) -> Option<Vec<u8>> {
        let epoch = self.epoch(now);
        let req = match NatPmpRequest::decode(data) {
            Ok(r) => r,
            Err(WireError::UnknownOpcode(_)) if data.len() >= 4 => {
                // Section 3.5: the whole request comes back, R bit set, result 5.
                let mut echo = data.to_vec();
                echo[1] |= 0x80;
                echo[2..4].copy_from_slice(&NatPmpResult::UnsupportedOpcode.to_u16().to_be_bytes());
                return Some(echo);
            }
            // A response (never answered: no loops) or a bad length.
            Err(_) => return None,
        };
        debug_assert_eq!(data[0], NATPMP_VERSION);
        self.natpmp_clients.insert(from);
        let internal = match canonical(from.ip()) {
            IpAddr::V4(a) => a,
            // NAT-PMP is IPv4 only.
            IpAddr::V6(_) => return Some(header(req, NatPmpResult::NotAuthorized, epoch)),
        };
        if let Some(code) = self.natpmp_forced {
            return Some(answer_with(req, code, epoch, self.external_addr()));
        }
        match req {
            NatPmpRequest::ExternalAddress => Some(
                match self.external_addr() {
                    IpAddr::V4(a) => {
                        NatPmpResponse::ExternalAddress { result: NatPmpResult::Success, epoch, external_addr: a }
                    }
                    // No IPv4 external address: section 3.2 says NETWORK_FAILURE.
                    IpAddr::V6(_) => NatPmpResponse::ExternalAddress {
                        result: NatPmpResult::NetworkFailure,
                        epoch,
                        external_addr: Ipv4Addr::UNSPECIFIED,
                    },
                }
                .encode(),
            ),
            NatPmpRequest::Map { protocol, internal_port, suggested_port, lifetime } => {
                let proto = protocol.protocol();
                let reply = |result, external_port, lifetime| {
                    Some(
                        NatPmpResponse::Map { protocol, result, epoch, internal_port, external_port, lifetime }
                            .encode(),
                    )
                };
                if lifetime == 0 {
                    self.natpmp_delete(now, internal, proto, internal_port);
                    return reply(NatPmpResult::Success, 0, 0);
                }
                if internal_port == 0 {
                    // Port 0 only means "all of them" in a delete (section 3.4).
                    return reply(NatPmpResult::NotAuthorized, 0, 0);
                }
                let key = Key { internal_addr: IpAddr::V4(internal), protocol: proto, internal_port, remote: None };
                let lifetime = lifetime.clamp(self.config.min_lifetime, self.config.max_lifetime);
                let expires_at = now + Duration::from_secs(u64::from(lifetime));
                if let Some(m) = self.mappings.get_mut(&key).filter(|m| m.expires_at > now) {
                    if m.nonce != Nonce::default() {
                        // A PCP client holds it.
                        return reply(NatPmpResult::NotAuthorized, 0, 0);
                    }
                    m.expires_at = expires_at;
                    let port = m.external_port;
                    return reply(NatPmpResult::Success, port, lifetime);
                }
                self.remove_mapping(&key);
                let IpAddr::V4(external_v4) = self.external_addr() else {
                    return reply(NatPmpResult::NetworkFailure, 0, 0);
                };
                let external_port = if suggested_port != 0 && !self.ports_in_use.contains(&(proto, suggested_port)) {
                    suggested_port
                } else {
                    match self.allocate(proto) {
                        Some(p) => p,
                        None => return reply(NatPmpResult::OutOfResources, 0, 0),
                    }
                };
                self.ports_in_use.insert((proto, external_port));
                self.mappings.insert(
                    key,
                    ServerMapping {
                        opcode: Opcode::Map,
                        internal_addr: IpAddr::V4(internal),
                        protocol: proto,
                        internal_port,
                        external_addr: IpAddr::V4(external_v4),
                        external_port,
                        remote: None,
                        nonce: Nonce::default(),
                        expires_at,
                        filters: 0,
                    },
                );
                reply(NatPmpResult::Success, external_port, lifetime)
            }
        }
    }

    /// Deletes one mapping, or with port 0 every mapping of `protocol` this
    /// client holds (section 3.4).
    fn natpmp_delete(&mut self, now: Instant, internal: Ipv4Addr, protocol: Protocol, internal_port: u16) {
        let keys: Vec<Key> = self
            .mappings
            .iter()
            .filter(|(k, m)| {
                k.internal_addr == IpAddr::V4(internal)
                    && k.protocol == protocol
                    && k.remote.is_none()
                    && (internal_port == 0 || k.internal_port == internal_port)
                    && (m.nonce == Nonce::default() || m.expires_at <= now)
            })
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.remove_mapping(&k);
        }
    }
}

fn header(req: NatPmpRequest, result: NatPmpResult, epoch: u32) -> Vec<u8> {
    NatPmpResponse::Header { request_opcode: req.opcode(), result, epoch }.encode()
}

/// The full-length answer to `req` with a forced result code.
fn answer_with(req: NatPmpRequest, result: NatPmpResult, epoch: u32, external: IpAddr) -> Vec<u8> {
    match req {
        NatPmpRequest::ExternalAddress => {
            let external_addr = match (result, external) {
                (NatPmpResult::Success, IpAddr::V4(a)) => a,
                _ => Ipv4Addr::UNSPECIFIED,
            };
            NatPmpResponse::ExternalAddress { result, epoch, external_addr }.encode()
        }
        NatPmpRequest::Map { protocol, internal_port, .. } => {
            NatPmpResponse::Map { protocol, result, epoch, internal_port, external_port: 0, lifetime: 0 }.encode()
        }
    }
}
