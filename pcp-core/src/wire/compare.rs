//! Address comparisons shared by the engine and the test server: an IPv4
//! address and its IPv4-mapped IPv6 form are one address on the wire.

use std::net::{IpAddr, SocketAddr};

/// Compares socket addresses, treating IPv4 and IPv4-mapped IPv6 alike.
pub(crate) fn same_endpoint(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && canonical(a.ip()) == canonical(b.ip())
}

/// The IPv4 address behind an IPv4-mapped IPv6 one; other addresses as they are.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}
