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
/// The builder methods taking an optional value accept the value or an
/// `Option` of it, so that a shell passes an optional argument straight on.
///
/// ```
/// use pcp_core::engine::MapSpec;
/// use pcp_core::wire::Protocol;
/// let spec = MapSpec::new(Protocol::TCP, 8080).external_port(8080).lifetime(7200).prefer_failure();
/// assert_eq!(spec.suggested_external_port, 8080);
///
/// let from_a_shell: Option<std::net::IpAddr> = None;
/// let spec = spec.third_party(from_a_shell).prefer_failure_if(false);
/// assert_eq!((spec.third_party, spec.prefer_failure), (None, false));
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

    /// Suggests this external port (0, the default, lets the server choose;
    /// the server may assign another unless [`MapSpec::prefer_failure`]).
    pub fn external_port(mut self, port: u16) -> Self {
        self.suggested_external_port = port;
        self
    }

    /// Suggests this external address (by default, or with `None`, one of
    /// the client's own family: `0.0.0.0` or `::` on the wire).
    pub fn external_addr(mut self, addr: impl Into<Option<IpAddr>>) -> Self {
        self.suggested_external_addr = addr.into();
        self
    }

    /// Asks for `secs` seconds (the server may grant less or more). A MAP
    /// is renewed before it runs out until it is deleted.
    pub fn lifetime(mut self, secs: u32) -> Self {
        self.lifetime = secs;
        self
    }

    /// Adds the PREFER_FAILURE option (RFC 6887 section 13.2): the server
    /// fails the request rather than assign another external port or
    /// address than the suggested ones.
    pub fn prefer_failure(self) -> Self {
        self.prefer_failure_if(true)
    }

    /// [`MapSpec::prefer_failure`] when `on` (for a setting given as a flag).
    pub fn prefer_failure_if(mut self, on: bool) -> Self {
        self.prefer_failure = on;
        self
    }

    /// Adds a FILTER option (section 13.3): only this remote peer (prefix
    /// and port) may use the mapping. May be called more than once.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filters.push(filter);
        self
    }

    /// Adds the THIRD_PARTY option (section 13.1): the mapping is for the
    /// host at `addr`, not for us (`None`: for us, the default).
    pub fn third_party(mut self, addr: impl Into<Option<IpAddr>>) -> Self {
        self.third_party = addr.into();
        self
    }

    /// Uses this nonce instead of a fresh random one (to renew or delete a
    /// mapping made earlier, by another process or client).
    pub fn nonce(mut self, nonce: impl Into<Option<Nonce>>) -> Self {
        self.nonce = nonce.into();
        self
    }

    /// Retransmits the initial request by this policy instead of the
    /// engine's (renewals keep the engine's).
    pub fn retransmit(mut self, policy: impl Into<Option<RetransmitPolicy>>) -> Self {
        self.retransmit = policy.into();
        self
    }

    /// The PEER request towards `remote_addr`:`remote_port` with this
    /// spec's protocol, ports, external address, lifetime, THIRD_PARTY,
    /// nonce and retransmission, so that a shell converts the options MAP
    /// and PEER share once. PREFER_FAILURE and FILTER are valid for MAP
    /// only (RFC 6887 sections 13.2, 13.3): a spec with either is
    /// `InvalidArgument`.
    ///
    /// ```
    /// use pcp_core::engine::MapSpec;
    /// use pcp_core::wire::Protocol;
    /// let remote = "198.51.100.20".parse().unwrap();
    /// let peer = MapSpec::new(Protocol::UDP, 5000).lifetime(600).into_peer(remote, 3478).unwrap();
    /// assert_eq!((peer.internal_port, peer.remote_port, peer.lifetime), (5000, 3478, 600));
    /// assert!(MapSpec::new(Protocol::UDP, 5000).prefer_failure().into_peer(remote, 3478).is_err());
    /// ```
    pub fn into_peer(self, remote_addr: IpAddr, remote_port: u16) -> crate::Result<PeerSpec> {
        if self.prefer_failure || !self.filters.is_empty() {
            return Err(crate::Error::invalid(
                "PREFER_FAILURE and FILTER are MAP options: a PEER request cannot carry them",
            ));
        }
        Ok(PeerSpec {
            protocol: self.protocol,
            internal_port: self.internal_port,
            remote_addr,
            remote_port,
            suggested_external_port: self.suggested_external_port,
            suggested_external_addr: self.suggested_external_addr,
            lifetime: self.lifetime,
            third_party: self.third_party,
            nonce: self.nonce,
            retransmit: self.retransmit,
        })
    }
}

/// What to ask for with PEER: an outbound mapping towards one remote peer
/// (section 12), for example to keep a connection's NAT binding alive or
/// learn its external address and port.
///
/// ```
/// use pcp_core::engine::PeerSpec;
/// use std::net::IpAddr;
/// use pcp_core::wire::Protocol;
/// let remote = "198.51.100.20".parse().unwrap();
/// let spec = PeerSpec::new(Protocol::UDP, 5000, remote, 3478)
///     .external_port(5000)
///     .external_addr("203.0.113.1".parse::<IpAddr>().unwrap())
///     .lifetime(600);
/// assert_eq!((spec.remote_port, spec.lifetime), (3478, 600));
/// assert_eq!(spec.suggested_external_addr, Some("203.0.113.1".parse().unwrap()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    pub protocol: Protocol,
    /// Our port of the connection.
    pub internal_port: u16,
    /// The remote peer's address and port.
    pub remote_addr: IpAddr,
    pub remote_port: u16,
    /// 0 lets the server choose.
    pub suggested_external_port: u16,
    /// `None` asks for an address of the client's own family.
    pub suggested_external_addr: Option<IpAddr>,
    /// Requested lifetime in seconds; the server may grant less or more.
    pub lifetime: u32,
    pub third_party: Option<IpAddr>,
    /// Reuse a known nonce (the mapping of an earlier PEER request).
    pub nonce: Option<Nonce>,
    /// Overrides the engine's retransmission policy for the initial request.
    pub retransmit: Option<RetransmitPolicy>,
}

impl PeerSpec {
    /// Towards `remote_addr`:`remote_port`: any external port and address,
    /// 3600 s, no options.
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

    /// Suggests this external port (0, the default, lets the server choose).
    pub fn external_port(mut self, port: u16) -> Self {
        self.suggested_external_port = port;
        self
    }

    /// Suggests this external address (by default, or with `None`, one of
    /// the client's own family).
    pub fn external_addr(mut self, addr: impl Into<Option<IpAddr>>) -> Self {
        self.suggested_external_addr = addr.into();
        self
    }

    /// Asks for `secs` seconds (the server may grant less or more); the
    /// client renews it until it is deleted.
    pub fn lifetime(mut self, secs: u32) -> Self {
        self.lifetime = secs;
        self
    }

    /// Adds the THIRD_PARTY option (section 13.1): the mapping is for the
    /// host at `addr`, not for us (`None`: for us, the default).
    pub fn third_party(mut self, addr: impl Into<Option<IpAddr>>) -> Self {
        self.third_party = addr.into();
        self
    }

    /// Uses this nonce instead of a fresh random one.
    pub fn nonce(mut self, nonce: impl Into<Option<Nonce>>) -> Self {
        self.nonce = nonce.into();
        self
    }

    /// Retransmits the initial request by this policy instead of the
    /// engine's.
    pub fn retransmit(mut self, policy: impl Into<Option<RetransmitPolicy>>) -> Self {
        self.retransmit = policy.into();
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
