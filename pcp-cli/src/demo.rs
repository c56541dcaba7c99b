//! `pcp demo`: the test server on loopback and every operation against it,
//! step by step. Nothing leaves the machine.

use std::time::{Duration, Instant};

use pcp_core::discovery::{discover, DiscoveryConfig};
use pcp_core::server::{Server, ServerConfig};
use pcp_core::{Client, ClientConfig, Error, Event, MapSpec, PeerSpec, Protocol};

use crate::output::Output;

pub fn run(out: &Output) -> Result<(), Error> {
    out.step("Starting a PCP test server on loopback (it has been 'up' for an hour)");
    let server = Server::start(ServerConfig { initial_epoch: 3600, ..Default::default() })?;
    out.serving(server.local_addr(), server.external_addr());

    out.step("discover: ANNOUNCE to the candidate gateways; the first answer wins");
    let found = discover(&DiscoveryConfig::with_candidates(vec![server.local_addr()]))?;
    out.discovered(&found);

    let mut cc = ClientConfig::new(found.server);
    cc.listen_announce = false; // the test server unicasts its ANNOUNCE to the clients it knows
    cc.announce_delay_max = Duration::from_millis(500);
    let client = Client::new(cc)?;
    let events = client.events();
    let gw = client.gateway_address();

    out.step("map tcp 8080 for 4 s: the client renews it at 1/2 to 5/8 of its lifetime");
    let m = client.map_with(MapSpec::new(Protocol::TCP, 8080).external_port(8080).lifetime(4))?;
    out.mapping("mapped", gw, &m);

    out.step("renew: waiting for the automatic renewal");
    wait(&events, gw, out, |e| matches!(e, Event::Renewed(_)))?;

    out.step("external address");
    out.external_address(gw, client.external_address()?, client.protocol_version());

    out.step("peer udp 5000 -> 198.51.100.20:3478");
    let p =
        client.peer(PeerSpec::new(Protocol::UDP, 5000, "198.51.100.20".parse().expect("valid"), 3478).lifetime(600))?;
    out.mapping("peer", gw, &p);

    out.step("the gateway reboots: it forgets everything; the client notices and recreates");
    server.reboot();
    wait(&events, gw, out, |e| matches!(e, Event::ServerRestarted { .. }))?;
    wait(&events, gw, out, |e| matches!(e, Event::Renewed(i) if i.id == p.id()))?;
    if !out.is_json() {
        println!("the server holds {} mappings again", server.mapping_count());
    }

    out.step("delete both mappings (lifetime 0, same nonce)");
    m.delete()?;
    out.deleted(gw, m.protocol(), m.internal_port(), m.nonce());
    p.delete()?;
    out.deleted(gw, p.protocol(), p.internal_port(), p.nonce());
    client.close();
    if !out.is_json() {
        println!("\ndone: the server holds {} mappings", server.mapping_count());
    }
    Ok(())
}

/// Prints events until one matches (at most 15 s).
fn wait(
    events: &std::sync::mpsc::Receiver<Event>,
    gw: std::net::SocketAddr,
    out: &Output,
    want: impl Fn(&Event) -> bool,
) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = events.recv_timeout(left).map_err(|_| Error::Timeout)?;
        out.event(gw, &ev);
        if want(&ev) {
            return Ok(());
        }
    }
}
