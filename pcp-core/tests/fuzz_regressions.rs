//! Engine defects found by the fuzz targets (fuzz/), each kept as a plain
//! test so that it stays fixed without nightly.

use std::time::Instant;

use pcp_core::engine::{Engine, EngineConfig};
use pcp_core::{MapSpec, Protocol};

/// fuzz/engine_datagrams: with the in-flight limit reached, forgetting the
/// mapping on the wire left the queued request without a slot and without a
/// timer, so it was never sent and its caller waited forever.
#[test]
fn forgetting_a_request_on_the_wire_lets_a_queued_one_go() {
    let mut config = EngineConfig::new("192.0.2.1:5351".parse().unwrap(), "192.0.2.100".parse().unwrap());
    config.max_in_flight = 1;
    config.rng_seed = Some([1; 32]);
    let mut e = Engine::new(config);
    let t = Instant::now();
    let on_the_wire = e.map(t, MapSpec::new(Protocol::TCP, 1000)).unwrap();
    e.map(t, MapSpec::new(Protocol::TCP, 1001)).unwrap();
    assert!(e.poll_transmit().is_some());
    assert!(e.poll_transmit().is_none(), "the second waits for a slot");
    assert!(e.forget(t, on_the_wire));
    assert!(e.poll_transmit().is_some(), "the queued request is sent once the slot is free");
    assert!(e.poll_timeout().is_some(), "and has its retransmission timer");
}
