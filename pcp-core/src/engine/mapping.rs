use std::fmt;
use std::net::IpAddr;
use std::time::Instant;

use crate::wire::{Filter, Nonce, Opcode, Protocol};

use super::{ProtocolVersion, RetransmitPolicy};

/// The lifetime a MAP or PEER asks for unless told otherwise, in seconds
/// (what the classic APIs of every language default to).
pub const DEFAULT_LIFETIME: u32 = 3600;

/// Identifies a mapping for the life of its engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MappingId(pub u64);

/// Identifies a one-shot request (ANNOUNCE, external address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

impl fmt::Display for MappingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mapping#{}", self.0)
    }
}

/// What to ask for with MAP: an inbound mapping (section 11).
///
/// ```
/// use pcp_core::engine::MapSpec;
/// use pcp_core::wire::Protocol;
/// let spec = MapSpec::new(Protocol::TCP, 8080).external_port(8080).lifetime(7200).prefer_failure();
/// assert_eq!(spec.suggested_external_port, 8080);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapSpec {
    pub protocol: Protocol,
    /// 0 with protocol 0 (all) only.
    pub internal_port: u16,
    /// 0 lets the server choose.
    pub suggested_external_port: u16,
    /// `None` asks for an address of the client's own family.
    pub suggested_external_addr: Option<IpAddr>,
    /// Requested lifetime in seconds; the server may grant less or more.
    pub lifetime: u32,
    pub prefer_failure: bool,
    pub filters: Vec<Filter>,
    pub third_party: Option<IpAddr>,
    /// Reuse a known nonce (e.g. to delete a mapping made by another process).
    pub nonce: Option<Nonce>,
    /// Overrides the engine's retransmission policy for the initial request.
    pub retransmit: Option<RetransmitPolicy>,
}

impl MapSpec {
    /// Any external port, 3600 s, no options.
    pub fn new(protocol: Protocol, internal_port: u16) -> Self {
        MapSpec {
            protocol,
            internal_port,
            suggested_external_port: 0,
            suggested_external_addr: None,
            lifetime: DEFAULT_LIFETIME,
            prefer_failure: false,
            filters: Vec::new(),
            third_party: None,
            nonce: None,
            retransmit: None,
        }
    }

    pub fn external_port(mut self, port: u16) -> Self {
        self.suggested_external_port = port;
        self
    }

    pub fn external_addr(mut self, addr: IpAddr) -> Self {
        self.suggested_external_addr = Some(addr);
        self
    }

    pub fn lifetime(mut self, secs: u32) -> Self {
        self.lifetime = secs;
        self
    }

    pub fn prefer_failure(mut self) -> Self {
        self.prefer_failure = true;
        self
    }

    pub fn filter(mut self, filter: Filter) -> Self {
        self.filters.push(filter);
        self
    }

    pub fn third_party(mut self, addr: IpAddr) -> Self {
        self.third_party = Some(addr);
        self
    }

    pub fn nonce(mut self, nonce: Nonce) -> Self {
        self.nonce = Some(nonce);
        self
    }

    pub fn retransmit(mut self, policy: RetransmitPolicy) -> Self {
        self.retransmit = Some(policy);
        self
    }
}

/// What to ask for with PEER: an outbound mapping towards one remote peer
/// (section 12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    pub protocol: Protocol,
    pub internal_port: u16,
    pub remote_addr: IpAddr,
    pub remote_port: u16,
    pub suggested_external_port: u16,
    pub suggested_external_addr: Option<IpAddr>,
    pub lifetime: u32,
    pub third_party: Option<IpAddr>,
    pub nonce: Option<Nonce>,
    pub retransmit: Option<RetransmitPolicy>,
}

impl PeerSpec {
    pub fn new(protocol: Protocol, internal_port: u16, remote_addr: IpAddr, remote_port: u16) -> Self {
        PeerSpec {
            protocol,
            internal_port,
            remote_addr,
            remote_port,
            suggested_external_port: 0,
            suggested_external_addr: None,
            lifetime: DEFAULT_LIFETIME,
            third_party: None,
            nonce: None,
            retransmit: None,
        }
    }

    pub fn external_port(mut self, port: u16) -> Self {
        self.suggested_external_port = port;
        self
    }

    pub fn lifetime(mut self, secs: u32) -> Self {
        self.lifetime = secs;
        self
    }

    pub fn third_party(mut self, addr: IpAddr) -> Self {
        self.third_party = Some(addr);
        self
    }

    pub fn nonce(mut self, nonce: Nonce) -> Self {
        self.nonce = Some(nonce);
        self
    }

    pub fn retransmit(mut self, policy: RetransmitPolicy) -> Self {
        self.retransmit = Some(policy);
        self
    }
}

/// A mapping as the server granted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingInfo {
    pub id: MappingId,
    /// MAP or PEER.
    pub opcode: Opcode,
    pub protocol: Protocol,
    /// The internal address: ours, or the third party's.
    pub internal_addr: IpAddr,
    pub internal_port: u16,
    pub external_addr: IpAddr,
    pub external_port: u16,
    /// The remote peer, for PEER mappings.
    pub remote: Option<(IpAddr, u16)>,
    /// Granted lifetime in seconds, counted from `granted_at`.
    pub lifetime: u32,
    /// The server's epoch in the response that granted or renewed it.
    pub epoch: u32,
    /// The nonce (over NAT-PMP, which has none, the engine's own key).
    pub nonce: Nonce,
    pub granted_at: Instant,
    /// PCP or NAT-PMP: what the server granted it with.
    pub version: ProtocolVersion,
}

impl MappingInfo {
    /// PCP or NAT-PMP.
    pub fn protocol_version(&self) -> ProtocolVersion {
        self.version
    }

    /// When the mapping ends unless renewed.
    pub fn expires_at(&self) -> Instant {
        self.granted_at + std::time::Duration::from_secs(u64::from(self.lifetime))
    }
}
