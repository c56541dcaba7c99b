//! Error messages say what is wrong with what the user gave, briefly
//! (issue 13 defect 6): no echo of a huge input, no blame on the server for
//! the caller's mistake.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use pcp_core::engine::{Engine, EngineConfig};
use pcp_core::{Filter, MapSpec, Protocol};

#[test]
fn an_oversize_request_is_refused_before_it_is_sent() {
    let server = "192.0.2.1:5351".parse().unwrap();
    let mut engine = Engine::new(EngineConfig::new(server, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2))));
    let mut spec = MapSpec::new(Protocol::TCP, 8080);
    for i in 0..50u8 {
        let remote_addr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, i));
        spec = spec.filter(Filter { remote_addr, prefix_len: 32, remote_port: 0 });
    }
    let e = engine.map(Instant::now(), spec).unwrap_err();
    assert_eq!(e.code(), "INVALID_ARGUMENT");
    assert!(e.to_string().contains("over PCP's 1100-byte maximum"), "{e}");
    assert!(engine.poll_transmit().is_none(), "nothing was sent");
    // 43 filters fit (24 + 36 + 43 * 24 = 1092 bytes).
    let mut spec = MapSpec::new(Protocol::TCP, 8080);
    for i in 0..43u8 {
        let remote_addr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, i));
        spec = spec.filter(Filter { remote_addr, prefix_len: 32, remote_port: 0 });
    }
    assert!(engine.map(Instant::now(), spec).is_ok());
}

#[test]
fn a_huge_argument_is_not_echoed() {
    // A zone that names no interface: refused before any look-up (no DNS).
    let huge = format!("fe80::1%{}", "x".repeat(100_000));
    let e = pcp_core::client::parse_server(&huge).unwrap_err();
    assert!(e.to_string().len() < 300, "{} bytes", e.to_string().len());
    assert!(e.to_string().contains("(100008 bytes)"), "{e}");
    assert_eq!(pcp_core::quote_input("8080"), "\"8080\"");
}
