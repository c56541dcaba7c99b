use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6, ToSocketAddrs};

use crate::config::check_server;
use crate::wire::SERVER_PORT;
use crate::{quote_input, Error, Result};

/// Parses a PCP server given as `"host"`, `"host:port"`, an IPv4 or IPv6
/// address (`"::1"`, `"[::1]:5351"`, `"fe80::1%eth0"`); the port defaults
/// to 5351. Host names are resolved.
///
/// ```
/// use pcp_core::client::parse_server;
/// assert_eq!(parse_server("192.168.1.1").unwrap().to_string(), "192.168.1.1:5351");
/// assert_eq!(parse_server("[::1]:9999").unwrap().to_string(), "[::1]:9999");
/// assert_eq!(parse_server("::1").unwrap().port(), 5351);
/// assert_eq!(parse_server("[::1]").unwrap().to_string(), "[::1]:5351");
/// assert!(parse_server("").is_err());
/// // Refused without asking DNS: not a host name, or a colon too many.
/// assert!(parse_server("not a host name!").is_err());
/// assert!(parse_server("127.0.0.1:5351:1").is_err());
/// assert!(parse_server("1.2.3.4:99999").is_err());
/// ```
pub fn parse_server(s: &str) -> Result<SocketAddr> {
    let s = s.trim();
    if s.is_empty() {
        return Err(Error::invalid("the server address is empty"));
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return check_server(sa);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return check_server(SocketAddr::new(ip, SERVER_PORT));
    }
    // An IPv6 address with a zone: fe80::1%eth0 or [fe80::1%eth0]:5351.
    let (host, port) = match s.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((h, rest)) => {
            let port = match rest.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| Error::invalid(format!("bad port in {}", quote_input(s))))?,
                None if rest.is_empty() => SERVER_PORT,
                None => return Err(Error::invalid(format!("cannot parse server address {}", quote_input(s)))),
            };
            (h, port)
        }
        None => (s, SERVER_PORT),
    };
    // [2001:db8::1] without a port.
    if let Ok(ip) = host.parse::<Ipv6Addr>() {
        return check_server(SocketAddr::new(IpAddr::V6(ip), port));
    }
    if let Some((addr, zone)) = host.split_once('%') {
        let ip: Ipv6Addr =
            addr.parse().map_err(|_| Error::invalid(format!("bad IPv6 address in {}", quote_input(s))))?;
        let scope = zone.parse::<u32>().ok().or_else(|| interface_index(zone)).ok_or_else(|| {
            Error::invalid(format!("unknown network interface {} in {}", quote_input(zone), quote_input(s)))
        })?;
        return check_server(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope)));
    }
    // A host name, with or without a port. Brackets hold only IPv6
    // addresses, and a name has no colon: anything else is said so without
    // asking DNS.
    let unparsable = || Error::invalid(format!("cannot parse server address {}", quote_input(s)));
    let (name, port) = match host.split_once(':') {
        _ if s.starts_with('[') => return Err(unparsable()),
        Some((_, p)) if p.contains(':') => return Err(unparsable()),
        Some((name, p)) => (name, p.parse().map_err(|_| Error::invalid(format!("bad port in {}", quote_input(s))))?),
        None => (host, port),
    };
    if !is_host_name(name) {
        return Err(unparsable());
    }
    match (name, port).to_socket_addrs() {
        Ok(mut addrs) => match addrs.next() {
            Some(a) => check_server(a),
            None => Err(Error::invalid(format!("{} resolves to no address", quote_input(name)))),
        },
        Err(_) => Err(Error::invalid(format!("cannot parse or resolve server address {}", quote_input(s)))),
    }
}

/// A name DNS could know (RFC 1123 section 2.1: letters, digits and
/// hyphens in labels of 1 to 63, 253 at most in all, a trailing dot
/// allowed; and underscores, as in systemd-resolved's `_gateway`), so
/// that other text is refused without a lookup.
fn is_host_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The index of the network interface called `name` (its friendly name
/// too, on Windows), as netdev lists them on every platform.
fn interface_index(name: &str) -> Option<u32> {
    netdev::get_interfaces()
        .into_iter()
        .find(|i| i.name == name || i.friendly_name.as_deref() == Some(name))
        .map(|i| i.index)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every form the shells and the CLI take, and text that is refused
    /// before any DNS lookup (these need none: addresses, or refused).
    #[test]
    fn server_forms() {
        for (text, want) in [
            ("192.0.2.1", "192.0.2.1:5351"),
            ("192.0.2.1:9", "192.0.2.1:9"),
            ("::1", "[::1]:5351"),
            ("[::1]", "[::1]:5351"),
            ("[2001:db8::1]:9", "[2001:db8::1]:9"),
            ("  192.0.2.1  ", "192.0.2.1:5351"),
        ] {
            assert_eq!(parse_server(text).map(|a| a.to_string()).as_deref(), Ok(want), "{text}");
        }
        for bad in
            ["", "192.0.2.1:0", "0.0.0.0", "[::]", "1.2.3.4:99999", "127.0.0.1:5351:1", "not a host!", "[x]:1", "a..b"]
        {
            assert_eq!(parse_server(bad).unwrap_err().code(), "INVALID_ARGUMENT", "{bad}");
        }
        assert!(is_host_name("_gateway") && is_host_name("gw.example.") && !is_host_name("-x") && !is_host_name(""));
    }
}
