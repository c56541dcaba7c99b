//! The Rust reference loop for the binding benchmarks: sequential MAP round
//! trips through the blocking client to the test server on loopback.
//!
//! `cargo run --release -p pcp-core --example map_rate -- [COUNT] [SERVER]`
//! prints `map_rate <round trips per second>`. Without SERVER it starts its
//! own test server. Each round trip maps a distinct internal port
//! (10000 + i, TCP, 3600 s), the same loop the Python, Node and C
//! benchmarks run, so their ratios compare like with like.

use std::time::Instant;

use pcp_core::server::Server;
use pcp_core::{Client, ClientConfig, MapSpec, Protocol};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let count: u16 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2000);
    let (_server, addr) = match args.next() {
        Some(s) => (None, pcp_core::client::parse_server(&s)?),
        None => {
            let s = Server::start_local()?;
            let a = s.local_addr();
            (Some(s), a)
        }
    };
    let mut cc = ClientConfig::new(addr);
    cc.listen_announce = false;
    cc.delete_on_close = false;
    let client = Client::new(cc)?;
    // Warm up the path (thread wake-ups, caches) before timing.
    client.map_with(MapSpec::new(Protocol::UDP, 9999))?;
    let start = Instant::now();
    for i in 0..count {
        client.map_with(MapSpec::new(Protocol::TCP, 10000 + i))?;
    }
    let secs = start.elapsed().as_secs_f64();
    println!("map_rate {:.0}", f64::from(count) / secs);
    Ok(())
}
