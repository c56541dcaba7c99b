//! The Rust reference loop for the binding benchmarks: sequential MAP round
//! trips through the blocking client to the test server on loopback.
//!
//! `cargo run --release -p pcp-core --example map_rate -- [COUNT] [SERVER] [--warmup N] [--classic]`
//! prints `map_rate <round trips per second>`. Without SERVER it starts its
//! own test server. Each timed round trip maps a distinct internal port
//! (10000 + i, TCP, 3600 s), the same loop the Python, Node and C
//! benchmarks run, so their ratios compare like with like. The N warm-up
//! round trips before (UDP 10000 + i; default 1) are not timed: a binding
//! with a JIT (Node) needs a few thousand to reach its steady speed, and
//! its benchmark then gives both sides the same warm-up.

use std::time::Instant;

use pcp_core::server::Server;
use pcp_core::{Client, ClientConfig, MapSpec, Protocol};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut count: u16 = 2000;
    let mut warmup: u16 = 1;
    let mut server = None;
    let mut positional = 0;
    // --classic: the classic call (`Client::map_port`) that the C, Python
    // and Node benchmarks make, instead of `map_with`.
    let mut classic = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--classic" {
            classic = true;
        } else if a == "--warmup" {
            warmup = args.next().ok_or("--warmup needs a number")?.parse()?;
        } else if positional == 0 {
            count = a.parse()?;
            positional += 1;
        } else {
            server = Some(a);
        }
    }
    if u32::from(count).max(u32::from(warmup)) + 10000 > 65535 {
        return Err("COUNT and N must each be at most 55535 (ports 10000 + i)".into());
    }
    let (_server, addr) = match server {
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
    let map = |protocol, port| {
        if classic {
            client.map_port(protocol, port, 0, pcp_core::config::DEFAULT_LIFETIME)
        } else {
            client.map_with(MapSpec::new(protocol, port))
        }
    };
    for i in 0..warmup {
        map(Protocol::UDP, 10000 + i)?;
    }
    let start = Instant::now();
    for i in 0..count {
        map(Protocol::TCP, 10000 + i)?;
    }
    let secs = start.elapsed().as_secs_f64();
    println!("map_rate {:.0}", f64::from(count) / secs);
    Ok(())
}
