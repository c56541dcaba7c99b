//! Finding the PCP server.
//!
//! The candidates are the default gateways of the routing table (IPv4 and
//! IPv6, via `netdev`) followed by any configured servers, or an explicit
//! list that replaces the routing table (tests inject one so that they never
//! probe the real gateway). Each candidate is sent an ANNOUNCE; the first
//! valid answer wins, except that an RFC 7723 anycast address's answer
//! waits up to the first retransmission timeout for a gateway still being
//! probed (`preference`).
//!
//! The default deadline is **2 seconds** ([`DEFAULT_DEADLINE`]): a network
//! without PCP must not stall an application. Within it the ANNOUNCE is
//! retransmitted at about 0.25, 0.75 and 1.75 s. A candidate that answers
//! with ICMP port unreachable is ruled out at once.
//!
//! ```no_run
//! use pcp_core::discovery::{discover, DiscoveryConfig};
//! let found = discover(&DiscoveryConfig::default())?;
//! println!("PCP server at {}, epoch {}", found.server, found.epoch);
//! # Ok::<(), pcp_core::Error>(())
//! ```

use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::time::{Duration, Instant};

use polling::{Event as PollEvent, Events, PollMode, Poller};

use crate::endpoint::{ClientConfig, Endpoint};
use crate::engine::{Event, RetransmitPolicy};
use crate::wire::SERVER_PORT;
use crate::{Error, Result};

mod preference;
use preference::Preference;

/// How long discovery waits for any answer by default.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(2);

/// Where and how long to look.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// Replaces the routing table's default gateways when set.
    pub gateways: Option<Vec<SocketAddr>>,
    /// Configured servers: when set, only these are tried (RFC 6887
    /// section 8.1, a configured server replaces discovery).
    pub servers: Vec<SocketAddr>,
    /// How long to wait for any answer ([`DEFAULT_DEADLINE`]).
    pub deadline: Duration,
    /// First retransmission timeout of the ANNOUNCE (doubling after).
    pub initial_timeout: Duration,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            gateways: None,
            servers: Vec::new(),
            deadline: DEFAULT_DEADLINE,
            initial_timeout: Duration::from_millis(250),
        }
    }
}

impl DiscoveryConfig {
    /// Only these candidates: the routing table is not consulted.
    pub fn with_candidates(candidates: Vec<SocketAddr>) -> Self {
        DiscoveryConfig { gateways: Some(candidates), ..Default::default() }
    }
}

/// A PCP server that answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// The server's address (the candidate that answered).
    pub server: SocketAddr,
    /// Its epoch in the ANNOUNCE answer.
    pub epoch: u32,
    /// Our address towards it.
    pub internal_addr: IpAddr,
}

/// The default gateways of the routing table, as PCP server addresses (an
/// IPv6 link-local gateway carries its interface as scope).
pub fn default_gateways() -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for iface in netdev::get_interfaces() {
        let Some(gw) = &iface.gateway else { continue };
        for v4 in &gw.ipv4 {
            if !v4.is_unspecified() {
                out.push(SocketAddr::new(IpAddr::V4(*v4), SERVER_PORT));
            }
        }
        for v6 in &gw.ipv6 {
            if v6.is_unspecified() {
                continue;
            }
            let link_local = v6.segments()[0] & 0xffc0 == 0xfe80;
            let scope = if link_local { iface.index } else { 0 };
            out.push(SocketAddr::V6(SocketAddrV6::new(*v6, SERVER_PORT, 0, scope)));
        }
    }
    out.dedup();
    out
}

/// RFC 7723's anycast PCP server addresses, tried last (after the default
/// gateways) when the routing table is consulted.
pub const ANYCAST_SERVERS: [SocketAddr; 2] = [
    SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 0, 9)), SERVER_PORT),
    SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 1, 0, 0, 0, 0, 0, 1)), SERVER_PORT),
];

/// The candidates `config` names, in order, without duplicates.
///
/// RFC 6887 section 8.1: a configured server replaces discovery, so when
/// `servers` is set only those are tried (a mapping must not land on
/// another NAT because it answered first). Otherwise the gateways: the
/// injected list as given, or the routing table's default gateways followed
/// by the RFC 7723 anycast addresses.
pub fn candidates(config: &DiscoveryConfig) -> Vec<SocketAddr> {
    let mut list = Vec::new();
    let mut push = |s: SocketAddr| {
        if !list.contains(&s) {
            list.push(s);
        }
    };
    if !config.servers.is_empty() {
        config.servers.iter().copied().for_each(&mut push);
    } else if let Some(gateways) = &config.gateways {
        gateways.iter().copied().for_each(&mut push);
    } else {
        default_gateways().into_iter().chain(ANYCAST_SERVERS).for_each(&mut push);
    }
    list
}

/// Sends ANNOUNCE to every candidate and returns the first that answers.
pub fn discover(config: &DiscoveryConfig) -> Result<Discovered> {
    config.validate()?;
    let list = candidates(config);
    if list.is_empty() {
        let why = if config.gateways.is_some() {
            "the list of candidates to discover among is empty"
        } else {
            "no default gateway in the routing table and no server configured"
        };
        return Err(Error::NoGateway(why.into()));
    }
    let policy = RetransmitPolicy::rfc().with_initial(config.initial_timeout).with_deadline(config.deadline);
    let start = Instant::now();
    let mut probes: Vec<(Endpoint, Option<Error>)> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    for server in &list {
        let mut cc = ClientConfig::new(*server);
        cc.listen_announce = false;
        match Endpoint::new(&cc) {
            Ok(mut ep) => {
                ep.engine_mut().announce(start, Some(policy));
                ep.flush(start);
                probes.push((ep, None));
            }
            Err(e) => failures.push(format!("{server}: {e}")),
        }
    }
    // One poller for every probe's socket (epoll, kqueue or IOCP), each
    // removed when its probe is settled.
    let poller = Poller::new()?;
    for (i, (ep, _)) in probes.iter().enumerate() {
        let s = ep.fds()[0];
        // SAFETY: each socket is deleted from the poller before its probe
        // is dropped, and the poller goes first (declared after `probes`).
        unsafe { poller.add_with_mode(s, PollEvent::readable(i), PollMode::Level)? };
    }
    let mut events = Events::new();
    let mut watched = vec![true; probes.len()];
    // RFC 7723: an anycast answer is held while a gateway may still answer.
    let mut preference = Preference::new(config.initial_timeout);
    let is_anycast = |ep: &Endpoint| ANYCAST_SERVERS.contains(&ep.engine().server());
    // Bounded: every pass waits for the earliest deadline of a live probe,
    // and each probe's schedule ends at `config.deadline`.
    loop {
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        for (i, (ep, done)) in probes.iter_mut().enumerate() {
            if done.is_some() {
                if std::mem::take(&mut watched[i]) {
                    if let Some(s) = ep.sockets().next() {
                        let _ = poller.delete(s);
                    }
                }
                continue;
            }
            ep.process(now);
            while let Some(ev) = ep.poll_event() {
                if let Event::Announced { result, .. } = ev {
                    match result {
                        Ok(epoch) => {
                            let found = Discovered {
                                server: ep.engine().server(),
                                epoch,
                                internal_addr: ep.engine().client_addr(),
                            };
                            if let Some(found) = preference.answered(found, is_anycast(ep), now) {
                                return Ok(found);
                            }
                            // Held by `preference`: this probe is settled.
                            *done = Some(Error::Timeout);
                        }
                        Err(e) => *done = Some(e),
                    }
                }
            }
            if done.is_none() {
                if let Some(t) = ep.poll_timeout() {
                    next = Some(next.map_or(t, |n: Instant| n.min(t)));
                }
            }
        }
        let others_pending = probes.iter().any(|(ep, done)| done.is_none() && !is_anycast(ep));
        if let Some(found) = preference.settle(others_pending, now) {
            return Ok(found);
        }
        if let Some(t) = preference.deadline() {
            next = Some(next.map_or(t, |n: Instant| n.min(t)));
        }
        if !watched.contains(&true) {
            break;
        }
        events.clear();
        // Every live probe has a retransmission deadline.
        let _ = poller.wait_deadline(&mut events, next.unwrap_or(now));
    }
    if let Some(found) = preference.take() {
        return Ok(found);
    }
    for (ep, done) in &probes {
        let why = match done {
            Some(Error::Timeout) | None => "no answer".to_string(),
            Some(e) => e.to_string(),
        };
        failures.push(format!("{}: {why}", ep.engine().server()));
    }
    Err(Error::NoGateway(format!("no PCP server answered within {:?} ({})", config.deadline, failures.join("; "))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// RFC 6887 section 8.1: configured servers replace the gateways.
    #[test]
    fn a_configured_server_replaces_discovery() {
        let config = DiscoveryConfig {
            gateways: Some(vec![addr("127.0.0.1:5351")]),
            servers: vec![addr("127.0.0.2:5351"), addr("127.0.0.2:5351")],
            ..Default::default()
        };
        assert_eq!(candidates(&config), vec![addr("127.0.0.2:5351")]);
    }

    /// Injected gateways are used as given: no anycast (tests send only
    /// where they point).
    #[test]
    fn injected_gateways_are_used_as_given() {
        let config = DiscoveryConfig::with_candidates(vec![addr("127.0.0.1:5351")]);
        assert_eq!(candidates(&config), vec![addr("127.0.0.1:5351")]);
    }

    /// RFC 7723: the anycast addresses are the last candidates.
    #[test]
    fn anycast_addresses_are_rfc_7723s() {
        assert_eq!(ANYCAST_SERVERS, [addr("192.0.0.9:5351"), addr("[2001:1::1]:5351")]);
    }
}
