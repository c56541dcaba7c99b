//! The rules for settings, once for every shell.
//!
//! A shell turns a language value into the Rust type (reporting a type
//! error if it cannot) and leaves ranges and cross-field rules to these
//! `validate` methods, so that C, Python, Node and the CLI accept the same
//! settings and say the same thing about a bad one. The client, discovery
//! and the test server call them before they start.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::discovery::DiscoveryConfig;
use crate::endpoint::ClientConfig;
use crate::engine::RetransmitPolicy;
use crate::{Error, Nonce, Protocol, ProtocolChoice, Result};

pub use crate::engine::DEFAULT_LIFETIME;

/// The longest deadline or delay a setting may have: a day. Longer ones are
/// almost surely a unit mistake (milliseconds given as seconds).
pub const MAX_SETTING: Duration = Duration::from_secs(86_400);

/// An IP address argument given as text, `what` naming it in the error:
/// IPv4 or IPv6, surrounding blanks and IPv6 brackets (`[::1]`) allowed.
/// Every shell parses address arguments with it, so that they accept the
/// same text and say the same about a bad one.
///
/// ```
/// use pcp_core::config::parse_ip;
/// assert_eq!(parse_ip(" [::1] ", "peer").unwrap().to_string(), "::1");
/// let e = parse_ip("10.0.0", "peer").unwrap_err();
/// assert_eq!(e.to_string(), r#"invalid argument: peer: "10.0.0" is not an IPv4 or IPv6 address"#);
/// ```
pub fn parse_ip(s: &str, what: &str) -> Result<IpAddr> {
    let t = s.trim();
    let bare = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(t);
    bare.parse()
        .map_err(|_| Error::invalid(format!("{what}: {} is not an IPv4 or IPv6 address", crate::quote_input(s))))
}

/// A whole number argument from 0 to `max` (a port, a lifetime, a protocol
/// number, a prefix length), `what` naming it in the error. It takes an
/// `f64` because that is what JavaScript has; Python passes its int (a
/// huge one as infinity). Every shell checks number ranges with it, so
/// that a bad one is INVALID_ARGUMENT with the same words everywhere.
///
/// ```
/// use pcp_core::config::whole_number;
/// assert_eq!(whole_number(8080.0, "internal_port", 65535).unwrap(), 8080);
/// let e = whole_number(70000.0, "internal_port", 65535).unwrap_err();
/// assert_eq!(e.to_string(), "invalid argument: internal_port: 70000 is not a whole number from 0 to 65535");
/// assert!(whole_number(80.5, "port", 65535).is_err() && whole_number(f64::NAN, "port", 65535).is_err());
/// ```
pub fn whole_number(v: f64, what: &str, max: u32) -> Result<u32> {
    if v.fract() == 0.0 && (0.0..=f64::from(max)).contains(&v) {
        Ok(v as u32)
    } else {
        Err(not_a_whole_number(&v.to_string(), what, max))
    }
}

/// The error of [`whole_number`] for a value given as `shown`: for a number
/// an `f64` cannot show exactly (Python's ints have no limit).
pub fn not_a_whole_number(shown: &str, what: &str, max: u32) -> Error {
    Error::invalid(format!("{what}: {shown} is not a whole number from 0 to {max}"))
}

/// A transport protocol argument given as text, `what` naming it in the
/// error: `tcp`, `udp`, `all` (any case, surrounding blanks allowed) or a
/// number 0-255. Every shell parses protocol names with it.
///
/// ```
/// use pcp_core::{config::parse_protocol, Protocol};
/// assert_eq!(parse_protocol(" UDP ", "protocol").unwrap(), Protocol::UDP);
/// let e = parse_protocol("icmpx", "protocol").unwrap_err();
/// assert_eq!(e.to_string(), r#"invalid argument: protocol: "icmpx" is not tcp, udp, all or a number 0-255"#);
/// ```
pub fn parse_protocol(s: &str, what: &str) -> Result<Protocol> {
    Protocol::parse(s.trim()).ok_or_else(|| {
        Error::invalid(format!("{what}: {} is not tcp, udp, all or a number 0-255", crate::quote_input(s)))
    })
}

/// Which protocol a client speaks, given as text, `what` naming it in the
/// error: `auto`, `pcp` or `natpmp` ([`ProtocolChoice::parse`]). Every shell
/// parses the setting with it.
///
/// ```
/// use pcp_core::{config::parse_protocol_choice, ProtocolChoice};
/// assert_eq!(parse_protocol_choice("natpmp", "protocol").unwrap(), ProtocolChoice::NatPmpOnly);
/// let e = parse_protocol_choice("upnp", "protocol").unwrap_err();
/// assert_eq!(e.to_string(), r#"invalid argument: protocol: "upnp" is not "auto", "pcp" or "natpmp""#);
/// ```
pub fn parse_protocol_choice(s: &str, what: &str) -> Result<ProtocolChoice> {
    ProtocolChoice::parse(s).ok_or_else(|| {
        Error::invalid(format!("{what}: {} is not \"auto\", \"pcp\" or \"natpmp\"", crate::quote_input(s)))
    })
}

/// An "address:port" argument given as text (`127.0.0.1:0`, `[::1]:5350`),
/// `what` naming it in the error: where a test server listens or announces.
/// Surrounding blanks are allowed. Every shell parses these with it.
///
/// ```
/// use pcp_core::config::parse_socket_addr;
/// assert_eq!(parse_socket_addr(" [::1]:0 ", "listen").unwrap().to_string(), "[::1]:0");
/// let e = parse_socket_addr("127.0.0.1", "listen").unwrap_err();
/// assert_eq!(e.to_string(), r#"invalid argument: listen: "127.0.0.1" is not an address:port"#);
/// ```
pub fn parse_socket_addr(s: &str, what: &str) -> Result<SocketAddr> {
    s.trim().parse().map_err(|_| Error::invalid(format!("{what}: {} is not an address:port", crate::quote_input(s))))
}

/// A nonce argument given as text: the 24 hex digits of [`Nonce::to_hex`]
/// (`what` naming it in the error).
///
/// ```
/// use pcp_core::config::parse_nonce;
/// assert!(parse_nonce("000102030405060708090a0b", "nonce").is_ok());
/// let e = parse_nonce("abc", "nonce").unwrap_err();
/// assert_eq!(e.to_string(), r#"invalid argument: nonce: "abc" is not 24 hex digits"#);
/// ```
pub fn parse_nonce(s: &str, what: &str) -> Result<Nonce> {
    Nonce::from_hex(s).ok_or_else(|| Error::invalid(format!("{what}: {} is not 24 hex digits", crate::quote_input(s))))
}

fn positive(what: &str, d: Duration) -> Result<()> {
    if d.is_zero() {
        return Err(Error::invalid(format!("{what} must be more than 0")));
    }
    at_most_a_day(what, d)
}

fn at_most_a_day(what: &str, d: Duration) -> Result<()> {
    if d > MAX_SETTING {
        return Err(Error::invalid(format!("{what} must be at most 86400 seconds, not {} s", d.as_secs_f64())));
    }
    Ok(())
}

impl RetransmitPolicy {
    /// A deadline (`max_duration`) must be more than 0: a request with no
    /// time at all would fail before it is sent. `None` means no deadline.
    pub fn validate(&self) -> Result<()> {
        if let Some(d) = self.max_duration {
            positive("the request deadline", d)?;
        }
        positive("the initial retransmission timeout", self.initial)?;
        if self.max < self.initial {
            return Err(Error::invalid("the maximum retransmission timeout must not be below the initial one"));
        }
        Ok(())
    }
}

impl ClientConfig {
    /// Checks every setting of a client; [`Client::new`](crate::Client::new)
    /// and [`Endpoint::new`](crate::endpoint::Endpoint::new) refuse a config
    /// that fails.
    pub fn validate(&self) -> Result<()> {
        check_server(self.server)?;
        self.retransmit.validate()?;
        if self.max_in_flight == 0 {
            return Err(Error::invalid("max_in_flight must be at least 1"));
        }
        at_most_a_day("the announce delay", self.announce_delay_max)?;
        at_most_a_day("the close timeout", self.close_timeout)?;
        Ok(())
    }
}

impl DiscoveryConfig {
    /// Discovery needs some time to wait for an answer.
    pub fn validate(&self) -> Result<()> {
        positive("the discovery deadline", self.deadline)?;
        positive("the discovery initial timeout", self.initial_timeout)?;
        self.gateways.iter().flatten().chain(&self.servers).try_for_each(|s| check_server(*s).map(drop))
    }
}

/// A server to send to, however it was given (text, a tuple, an address
/// object): a port, and an address that is one. [`parse_server`] and
/// [`ClientConfig::validate`] apply it; a shell that takes other forms
/// applies it to them.
///
/// [`parse_server`]: crate::client::parse_server
pub fn check_server(sa: SocketAddr) -> Result<SocketAddr> {
    if sa.port() == 0 {
        Err(Error::invalid("the server port must not be 0"))
    } else if sa.ip().is_unspecified() {
        Err(Error::invalid("the server address must not be unspecified (0.0.0.0 or ::)"))
    } else {
        Ok(sa)
    }
}

#[cfg(feature = "server")]
impl crate::server::ServerConfig {
    /// The test server's settings: lifetimes and the port range in order.
    pub fn validate(&self) -> Result<()> {
        if self.min_lifetime > self.max_lifetime {
            return Err(Error::invalid(format!(
                "min_lifetime ({}) must not exceed max_lifetime ({})",
                self.min_lifetime, self.max_lifetime
            )));
        }
        let (low, high) = self.port_range;
        if low == 0 || low > high {
            return Err(Error::invalid(format!(
                "the port range must be low..high with 0 < low <= high, not {low}..{high}"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// However a server is given (text, a tuple, an address object), the
    /// same check: a port, and an address that is one.
    #[test]
    fn a_server_needs_a_port_and_an_address() {
        for bad in ["127.0.0.1:0", "0.0.0.0:5351", "[::]:5351"] {
            let sa: SocketAddr = bad.parse().unwrap();
            assert_eq!(ClientConfig::new(sa).validate().unwrap_err().code(), "INVALID_ARGUMENT", "{bad}");
            let dc = DiscoveryConfig::with_candidates(vec![sa]);
            assert_eq!(dc.validate().unwrap_err().code(), "INVALID_ARGUMENT", "{bad}");
        }
        assert!(ClientConfig::new("127.0.0.1:5351".parse().unwrap()).validate().is_ok());
        let empty = crate::discovery::discover(&DiscoveryConfig::with_candidates(Vec::new())).unwrap_err();
        assert!(empty.to_string().contains("list of candidates") && empty.code() == "NO_GATEWAY", "{empty}");
    }

    #[test]
    fn a_limit_of_a_day_says_the_value_given() {
        let e = ClientConfig::new("127.0.0.1:5351".parse().unwrap())
            .deadline(Duration::from_millis(86_400_001))
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("not 86400.001 s"), "{e}");
    }

    #[test]
    fn protocol_text_is_refused_with_the_input_quoted_and_cut() {
        assert_eq!(parse_protocol("17", "p").unwrap(), Protocol::UDP);
        assert_eq!(parse_protocol("All", "p").unwrap(), Protocol::ALL);
        assert!(parse_protocol("256", "p").is_err());
        let long = "x".repeat(100);
        for e in [parse_protocol(&long, "p").unwrap_err(), parse_protocol_choice(&long, "p").unwrap_err()] {
            assert_eq!(e.code(), "INVALID_ARGUMENT");
            assert!(e.to_string().len() < 120, "{e}");
        }
        assert_eq!(parse_protocol_choice("PCP", "p").unwrap(), ProtocolChoice::PcpOnly);
    }

    #[test]
    fn a_zero_deadline_is_refused_in_one_place() {
        let server = "127.0.0.1:5351".parse().unwrap();
        let e = ClientConfig::new(server).deadline(Duration::ZERO).validate().unwrap_err();
        assert_eq!(e, Error::invalid("the request deadline must be more than 0"));
        assert!(ClientConfig::new(server).deadline(Duration::from_millis(1)).validate().is_ok());
        let mut none = ClientConfig::new(server);
        none.retransmit.max_duration = None;
        assert!(none.validate().is_ok(), "no deadline at all stays allowed");
        let long = ClientConfig::new(server).deadline(Duration::from_secs(86_401)).validate().unwrap_err();
        assert!(long.to_string().contains("at most 86400 seconds"), "{long}");
    }

    #[test]
    fn discovery_needs_time() {
        let dc = DiscoveryConfig { deadline: Duration::ZERO, ..Default::default() };
        assert_eq!(dc.validate().unwrap_err(), Error::invalid("the discovery deadline must be more than 0"));
        assert!(DiscoveryConfig::default().validate().is_ok());
    }

    #[cfg(feature = "server")]
    #[test]
    fn server_ranges_are_ordered() {
        use crate::server::ServerConfig;
        assert!(ServerConfig::default().validate().is_ok());
        assert!(ServerConfig { min_lifetime: 10, max_lifetime: 5, ..Default::default() }.validate().is_err());
        assert!(ServerConfig { port_range: (0, 10), ..Default::default() }.validate().is_err());
        assert!(ServerConfig { port_range: (20, 10), ..Default::default() }.validate().is_err());
    }
}
