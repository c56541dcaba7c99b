//! The floor for a one-shot MAP: a minimal program that sends one PCP MAP
//! request (RFC 6887 sections 7.1 and 11.1, encoded by hand) on a plain UDP
//! socket and waits for the answer. `pcp map` as a whole process is
//! compared with it (README, "Start-up cost").
//!
//! `raw_map SERVER:PORT INTERNAL_PORT` (exit 0 on a SUCCESS answer)
//!
//! `cargo build --release -p pcp-core --example raw_map`

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let server: SocketAddr =
        args.next().and_then(|s| s.parse().ok()).expect("usage: raw_map SERVER:PORT INTERNAL_PORT");
    let port: u16 = args.next().and_then(|s| s.parse().ok()).expect("usage: raw_map SERVER:PORT INTERNAL_PORT");
    let bind: SocketAddr = if server.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().unwrap();
    let socket = UdpSocket::bind(bind).unwrap();
    socket.connect(server).unwrap();
    let client_ip = match socket.local_addr().unwrap().ip() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    let mut req = Vec::with_capacity(60);
    req.extend([2, 1, 0, 0]); // version 2, MAP request, reserved
    req.extend(3600u32.to_be_bytes()); // lifetime
    req.extend(client_ip.octets());
    // One nonce per port: running it again refreshes the same mapping
    // (RFC 6887 section 11.3) instead of being refused, so that a timing
    // loop can repeat it.
    let nonce: [u8; 12] = std::array::from_fn(|i| port.to_be_bytes()[i % 2] ^ i as u8);
    req.extend(nonce);
    req.extend([6, 0, 0, 0]); // TCP, reserved
    req.extend(port.to_be_bytes()); // internal port
    req.extend(0u16.to_be_bytes()); // any external port
    req.extend(std::net::Ipv4Addr::UNSPECIFIED.to_ipv6_mapped().octets()); // any IPv4 external address
    socket.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    socket.send(&req).unwrap();
    let mut buf = [0u8; 1100];
    loop {
        let n = socket.recv(&mut buf).expect("no answer");
        // A response to our MAP with our nonce; result code in byte 3.
        if n >= 60 && buf[1] == 0x81 && buf[24..36] == nonce {
            std::process::exit(if buf[3] == 0 { 0 } else { 1 });
        }
    }
}
