//! Which of our own addresses a request leaves from.
//!
//! RFC 6887 section 8: the Client IP field is the source address of the
//! request, and for a MAP it becomes the internal address of the mapping
//! (section 11.1). Normally the kernel's route to the server picks it. But
//! the IPv6 default router, and so the PCP server found by discovery, is
//! usually link-local (fe80::/10), and towards a link-local destination
//! the kernel picks a link-local source (RFC 6724 rule 2, matching scope):
//! a pinhole for a link-local address is one nobody beyond the link can
//! use. So when the server is link-local, the client sends from, and
//! names, a global address of the server's interface; a unique local
//! address (ULA, fc00::/7) only when the interface has no global one;
//! never a link-local one. Among several, a stable address beats a
//! temporary one (RFC 8981 privacy addresses come and go within a day, and
//! the mapping would go with them), and a preferred one beats a deprecated
//! one (RFC 4862 section 5.5.4: not for new communication).
//!
//! [`choose`] is the pure rule; [`interface_candidates`] lists an
//! interface's addresses with what the platform says about them.

#[cfg(target_os = "linux")]
mod linux;
mod rebind;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Arc;

#[cfg(test)]
pub(crate) use rebind::fail_next_connects;
pub(crate) use rebind::{reconnect, Reconnect};

/// Test hook (see `ClientConfig::source_resolver`): says which local
/// address a client sends from towards a server, instead of the route (or,
/// for a link-local server, `choose`). The client binds its socket to
/// what it returns, asks it again before each renewal pass, and moves when
/// the answer changes, as when the host's own address changes. Tests use it
/// to change the address on loopback (127.0.0.1 to 127.0.0.2) without root.
#[derive(Clone)]
pub struct SourceResolver(Arc<dyn Fn(SocketAddr) -> io::Result<IpAddr> + Send + Sync>);

impl SourceResolver {
    /// A resolver calling `f` with the server's address.
    pub fn new(f: impl Fn(SocketAddr) -> io::Result<IpAddr> + Send + Sync + 'static) -> Self {
        SourceResolver(Arc::new(f))
    }

    pub(crate) fn resolve(&self, server: SocketAddr) -> io::Result<IpAddr> {
        (self.0)(server)
    }
}

impl std::fmt::Debug for SourceResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SourceResolver(..)")
    }
}

/// One IPv6 address of an interface, with the flags that matter for choosing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) addr: Ipv6Addr,
    /// A temporary (privacy) address (Linux `IFA_F_TEMPORARY`).
    pub(crate) temporary: bool,
    /// Its preferred lifetime ran out (`IFA_F_DEPRECATED`).
    pub(crate) deprecated: bool,
    /// Not yet usable or never will be: duplicate address detection is
    /// running (`IFA_F_TENTATIVE`) or failed (`IFA_F_DADFAILED`).
    pub(crate) unusable: bool,
}

impl Candidate {
    /// An address the platform says nothing more about (no flags).
    #[cfg(any(test, not(target_os = "linux")))]
    pub(crate) fn stable(addr: Ipv6Addr) -> Candidate {
        Candidate { addr, temporary: false, deprecated: false, unusable: false }
    }
}

/// How far an address reaches, best first; `None` for addresses a mapping
/// must never be made for.
fn reach(addr: Ipv6Addr) -> Option<u8> {
    let first = addr.segments()[0];
    let never = addr.is_unspecified()
        || addr.is_loopback()
        || addr.is_multicast()
        || first & 0xffc0 == 0xfe80 // link-local
        || first & 0xffc0 == 0xfec0 // the deprecated site-local (RFC 3879)
        || addr.to_ipv4_mapped().is_some();
    if never {
        None
    } else if first & 0xfe00 == 0xfc00 {
        Some(1) // unique local (RFC 4193)
    } else {
        Some(0) // global (documentation prefixes included: test networks use them)
    }
}

/// The address to send from (and name as Client IP) towards a link-local
/// server, among the addresses of its interface: a global one, else a ULA;
/// among those a preferred one before a deprecated one, and a stable one
/// before a temporary one; ties go to the first listed. `None` if the
/// interface has neither a global address nor a ULA.
pub(crate) fn choose(candidates: &[Candidate]) -> Option<Ipv6Addr> {
    candidates
        .iter()
        .filter(|c| !c.unusable)
        .filter_map(|c| reach(c.addr).map(|r| ((r, c.deprecated, c.temporary), c.addr)))
        // min_by_key keeps the first of equal keys.
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, addr)| addr)
}

/// Whether `server` is an IPv6 link-local address (the case [`choose`] is for).
pub(crate) fn is_link_local_server(server: SocketAddr) -> bool {
    matches!(server, SocketAddr::V6(v6) if v6.ip().segments()[0] & 0xffc0 == 0xfe80)
}

/// The IPv6 addresses of the interface with index `ifindex`, with their
/// flags where the platform tells them (Linux); elsewhere every address
/// counts as stable.
pub(crate) fn interface_candidates(ifindex: u32) -> io::Result<Vec<Candidate>> {
    #[cfg(target_os = "linux")]
    {
        linux::interface_candidates(ifindex)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let iface = netdev::get_interfaces().into_iter().find(|i| i.index == ifindex);
        Ok(iface.map(|i| i.ipv6_addrs().into_iter().map(Candidate::stable).collect()).unwrap_or_default())
    }
}

/// The address a request to `server` should leave from: for a link-local
/// IPv6 server, [`choose`] among the addresses of its interface (the scope
/// id); otherwise the kernel's choice for the route to it, learnt from a
/// connected UDP socket (connect(2) on UDP sends nothing).
pub(crate) fn source_for(server: SocketAddr) -> io::Result<IpAddr> {
    if is_link_local_server(server) {
        let SocketAddr::V6(v6) = server else { unreachable!("checked") };
        if v6.scope_id() == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the link-local server {} needs its interface (as in fe80::1%eth0)", v6.ip()),
            ));
        }
        let candidates = interface_candidates(v6.scope_id())?;
        return choose(&candidates).map(IpAddr::V6).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!(
                    "the interface of the link-local PCP server {server} has no global or unique local IPv6 \
                     address: a mapping for a link-local address would be unreachable (RFC 6887 section 8)"
                ),
            )
        });
    }
    route_source(server)
}

/// The kernel's source address for the route to `server`.
fn route_source(server: SocketAddr) -> io::Result<IpAddr> {
    let any = match server {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let probe = UdpSocket::bind(SocketAddr::new(any, 0))?;
    probe.connect(server)?;
    Ok(probe.local_addr()?.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn temporary(s: &str) -> Candidate {
        Candidate { temporary: true, ..Candidate::stable(addr(s)) }
    }

    fn deprecated(s: &str) -> Candidate {
        Candidate { deprecated: true, ..Candidate::stable(addr(s)) }
    }

    #[test]
    fn a_global_address_wins_over_link_local_and_ula() {
        let c = [
            Candidate::stable(addr("fe80::2")),
            Candidate::stable(addr("fd00::2")),
            Candidate::stable(addr("2001:db8::2")),
        ];
        assert_eq!(choose(&c), Some(addr("2001:db8::2")));
    }

    #[test]
    fn a_ula_only_when_there_is_no_global_address() {
        let c = [Candidate::stable(addr("fe80::2")), Candidate::stable(addr("fd12:3456::2"))];
        assert_eq!(choose(&c), Some(addr("fd12:3456::2")));
        // Even a temporary global address beats a stable ULA: the ULA
        // reaches no further than the site.
        let c = [Candidate::stable(addr("fd00::2")), temporary("2001:db8::99")];
        assert_eq!(choose(&c), Some(addr("2001:db8::99")));
    }

    #[test]
    fn never_link_local_loopback_multicast_or_site_local() {
        let c = [
            Candidate::stable(addr("fe80::2")),
            Candidate::stable(addr("::1")),
            Candidate::stable(addr("ff02::1")),
            Candidate::stable(addr("fec0::2")),
            Candidate::stable(addr("::")),
            Candidate::stable(addr("::ffff:192.0.2.1")),
        ];
        assert_eq!(choose(&c), None);
        assert_eq!(choose(&[]), None);
    }

    #[test]
    fn a_stable_address_wins_over_a_temporary_one() {
        let c = [temporary("2001:db8::aaaa"), Candidate::stable(addr("2001:db8::2")), temporary("2001:db8::bbbb")];
        assert_eq!(choose(&c), Some(addr("2001:db8::2")));
    }

    #[test]
    fn a_preferred_address_wins_over_a_deprecated_one() {
        // A deprecated stable address is not for new communication; a
        // preferred temporary one is.
        let c = [deprecated("2001:db8::2"), temporary("2001:db8::aaaa")];
        assert_eq!(choose(&c), Some(addr("2001:db8::aaaa")));
        // With nothing better, a deprecated global address still beats a ULA.
        let c = [Candidate::stable(addr("fd00::2")), deprecated("2001:db8::2")];
        assert_eq!(choose(&c), Some(addr("2001:db8::2")));
    }

    #[test]
    fn tentative_or_failed_addresses_are_skipped() {
        let bad = Candidate { unusable: true, ..Candidate::stable(addr("2001:db8::2")) };
        assert_eq!(choose(&[bad]), None);
        assert_eq!(choose(&[bad, Candidate::stable(addr("fd00::2"))]), Some(addr("fd00::2")));
    }

    #[test]
    fn ties_go_to_the_first_listed() {
        let c = [Candidate::stable(addr("2001:db8::5")), Candidate::stable(addr("2001:db8::3"))];
        assert_eq!(choose(&c), Some(addr("2001:db8::5")));
    }

    #[test]
    fn link_local_servers_are_recognised() {
        assert!(is_link_local_server("[fe80::1%1]:5351".parse().unwrap()));
        assert!(!is_link_local_server("[2001:db8::1]:5351".parse().unwrap()));
        assert!(!is_link_local_server("192.168.1.1:5351".parse().unwrap()));
    }

    #[test]
    fn a_link_local_server_without_an_interface_is_refused() {
        let e = source_for("[fe80::1]:5351".parse().unwrap()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn the_route_source_towards_loopback_is_loopback() {
        assert_eq!(source_for("127.0.0.1:5351".parse().unwrap()).unwrap(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
}
