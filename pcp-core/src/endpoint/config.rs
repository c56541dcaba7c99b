//! The settings of a client: where the server is, how to send and
//! retransmit, what to listen for. [`Endpoint::new`](super::Endpoint::new)
//! takes them, and so the [`Client`](crate::Client) and discovery's probes.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::engine::{ProtocolChoice, RetransmitPolicy};
use crate::source_addr::SourceResolver;
use crate::wire::CLIENT_PORT;

/// Settings of a [`Client`](crate::Client) and of its [`Endpoint`](super::Endpoint).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The PCP server (usually the gateway), port 5351.
    pub server: SocketAddr,
    /// Bind to this local address; by default the route to the server
    /// picks it, except towards a link-local IPv6 server: then a global
    /// (else unique local) address of its interface, never a link-local
    /// one (RFC 6887 section 8). A configured address is never checked
    /// again.
    pub local_addr: Option<IpAddr>,
    /// Test-only hook: decides our source address instead of the route
    /// (see [`SourceResolver`]); asked again before renewal passes, like
    /// the route. `None` (the default) in real use.
    pub source_resolver: Option<SourceResolver>,
    /// Retransmission of requests: by default the RFC schedule with a 10 s deadline.
    pub retransmit: RetransmitPolicy,
    /// Requests on the wire at once (more wait their turn).
    pub max_in_flight: usize,
    /// Listen for unsolicited ANNOUNCE (UDP 5350, 224.0.0.1 / ff02::1).
    pub listen_announce: bool,
    /// The port of that listener: 5350 (tests use others).
    pub announce_port: u16,
    /// After an ANNOUNCE, renew everything after a random delay up to this
    /// (RFC 6887 section 14.1.3: 5 s), so that a LAN's clients do not all
    /// answer a reboot at once.
    pub announce_delay_max: Duration,
    /// Delete the client's mappings when it is closed (default true).
    pub delete_on_close: bool,
    /// How long closing may wait for the deletes to be answered.
    pub close_timeout: Duration,
    /// Seeds the random numbers (nonces, jitter) for reproducible tests;
    /// `None` (the default) uses the operating system's CSPRNG.
    pub rng_seed: Option<[u8; 32]>,
    /// PCP with the NAT-PMP fallback (the default), PCP only or NAT-PMP only.
    pub protocol: ProtocolChoice,
    /// Also listen on this port (5351) for the announcements of NAT-PMP
    /// gateways from before RFC 6886, which multicast to 224.0.0.1:5351.
    /// Off by default: a port-5351 listener would stand in the way of a
    /// PCP or NAT-PMP server on this same host.
    pub natpmp_legacy_announce_port: Option<u16>,
    /// Test-only: see [`EngineConfig::renewal_retry_interval`]. `None` (the
    /// default) keeps RFC 6887's renewal schedule.
    ///
    /// [`EngineConfig::renewal_retry_interval`]: crate::engine::EngineConfig::renewal_retry_interval
    pub renewal_retry_interval: Option<Duration>,
}

impl ClientConfig {
    /// The defaults towards `server`: RFC retransmission with a 10 s
    /// deadline, the ANNOUNCE listener on, PCP with the NAT-PMP fallback,
    /// delete on close.
    pub fn new(server: SocketAddr) -> Self {
        ClientConfig {
            server,
            local_addr: None,
            source_resolver: None,
            retransmit: RetransmitPolicy::default(),
            max_in_flight: 64,
            listen_announce: true,
            announce_port: CLIENT_PORT,
            announce_delay_max: Duration::from_secs(5),
            delete_on_close: true,
            close_timeout: Duration::from_secs(2),
            rng_seed: None,
            protocol: ProtocolChoice::Auto,
            natpmp_legacy_announce_port: None,
            renewal_retry_interval: None,
        }
    }

    /// Which protocols to speak (see [`ProtocolChoice`]).
    pub fn protocol(mut self, protocol: ProtocolChoice) -> Self {
        self.protocol = protocol;
        self
    }

    /// Gives up on a request after `deadline` (the RFC retransmission schedule inside it).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.retransmit.max_duration = Some(deadline);
        self
    }
}
