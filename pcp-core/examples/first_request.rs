//! Times a fresh client's first MAP against the test server on loopback as
//! a PCP gateway and as a NAT-PMP-only one: the fallback of RFC 6887
//! section 9 should cost one extra round trip (the refused PCP request),
//! since NAT-PMP's MAP and its external-address request go out together.
//!
//! `cargo run --release -p pcp-core --example first_request [RUNS]`

use std::time::{Duration, Instant};

use pcp_core::server::{Server, ServerConfig, ServerMode};
use pcp_core::{Client, ClientConfig, Protocol, ProtocolChoice};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: u16 = std::env::args().nth(1).map_or(Ok(200), |s| s.parse())?;
    let cases = [
        ("PCP gateway", ServerMode::PcpAndNatPmp, ProtocolChoice::Auto),
        ("NAT-PMP-only gateway, auto", ServerMode::NatPmpOnly, ProtocolChoice::Auto),
        ("NAT-PMP-only gateway, --protocol natpmp", ServerMode::NatPmpOnly, ProtocolChoice::NatPmpOnly),
    ];
    for (name, mode, choice) in cases {
        let server = Server::start(ServerConfig { mode, ..Default::default() })?;
        let mut times: Vec<Duration> = Vec::with_capacity(usize::from(runs));
        for i in 0..runs {
            let mut cc = ClientConfig::new(server.local_addr()).protocol(choice);
            cc.listen_announce = false;
            let started = Instant::now();
            let client = Client::new(cc)?;
            client.map(Protocol::TCP, 1000 + i)?;
            times.push(started.elapsed());
            client.close_keep();
        }
        times.sort();
        let at = |q: usize| times[(times.len() * q / 100).min(times.len() - 1)];
        println!("{name:42} median {:>9.1?}  p90 {:>9.1?}  min {:>9.1?}", at(50), at(90), times[0]);
    }
    Ok(())
}
