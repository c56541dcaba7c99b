//! What the engine test files share to drive the sans-IO engine on a
//! simulated clock: the server and client addresses, a seeded engine, and
//! the drains of its transmit and event queues.

// Each test binary includes this module and uses only part of it.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use pcp_core::engine::*;
use pcp_core::wire::*;

pub const SERVER: &str = "127.0.0.1:5351";
pub const CLIENT: &str = "127.0.0.1";

pub fn server() -> SocketAddr {
    SERVER.parse().unwrap()
}

/// An engine for `server()` and `CLIENT` with a fixed random seed, so that
/// nonces and jitter repeat from run to run; `f` adjusts the config.
pub fn seeded_engine(seed: u8, f: impl FnOnce(&mut EngineConfig)) -> Engine {
    let mut c = EngineConfig::new(server(), CLIENT.parse().unwrap());
    c.rng_seed = Some([seed; 32]);
    f(&mut c);
    Engine::new(c)
}

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Every request the engine queued, decoded; each must go to the server.
pub fn sent(e: &mut Engine) -> Vec<Request> {
    let mut v = Vec::new();
    while let Some(t) = e.poll_transmit() {
        assert_eq!(t.destination, server());
        v.push(Request::decode(&t.payload).expect("the engine sends valid requests"));
    }
    v
}

/// Every event the engine queued; also checks the kept-mapping count.
pub fn events(e: &mut Engine) -> Vec<Event> {
    assert_eq!(e.mapping_count(), e.mapping_ids().len(), "mapping_count drifted from mapping_ids");
    std::iter::from_fn(|| e.poll_event()).collect()
}
