use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The 16-byte wire form of an address: IPv4 as IPv4-mapped IPv6
/// (`::ffff:a.b.c.d`), IPv6 as is.
///
/// ```
/// use pcp_core::wire::to_wire_address;
/// let b = to_wire_address("192.168.1.100".parse().unwrap());
/// assert_eq!(b, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 1, 100]);
/// ```
pub fn to_wire_address(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The inverse of [`to_wire_address`]: an IPv4-mapped address becomes IPv4.
pub fn from_wire_address(b: [u8; 16]) -> IpAddr {
    let v6 = Ipv6Addr::from(b);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

/// The "no preference" suggested external address of the family of `like`:
/// `::ffff:0.0.0.0` (decoded as `0.0.0.0`) asks for IPv4, `::` for IPv6.
pub fn unspecified_external(like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}
