//! Eight threads on one client, a thousand requests each, mixing MAP,
//! delete and PEER on ports of their own and on one port they all share:
//! every call gets its own answer, nothing lost or crossed.

use std::net::{IpAddr, Ipv4Addr};
use std::thread;
use std::time::Duration;

use pcp_core::server::Server;
use pcp_core::{Client, ClientConfig, Error, MapSpec, PeerSpec, Protocol};

const THREADS: u16 = 8;
const REQUESTS: u32 = 1000;
const SHARED_PORT: u16 = 9999;

#[test]
fn eight_threads_a_thousand_requests_each_every_call_its_own_answer() {
    let server = Server::start_local().unwrap();
    let mut cc = ClientConfig::new(server.local_addr()).deadline(Duration::from_secs(20));
    cc.listen_announce = false;
    let client = Client::new(cc).unwrap();
    let external = server.external_addr();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let client = client.clone();
            thread::spawn(move || {
                let (mut calls, mut shared_granted) = (0u32, 0u32);
                let mut i = 0;
                while i < REQUESTS {
                    // Ports of this thread only: it can check the answer is for its request.
                    let port = 10_000 + t * 500 + (i % 400) as u16;
                    let protocol = if i % 2 == 0 { Protocol::TCP } else { Protocol::UDP };
                    match i % 3 {
                        0 => {
                            let m = client
                                .map_with(MapSpec::new(protocol, port).external_port(port))
                                .unwrap_or_else(|e| panic!("thread {t} map {port}: {e}"));
                            assert_eq!(
                                (m.protocol(), m.internal_port()),
                                (protocol, port),
                                "an answer for another request"
                            );
                            assert_eq!((m.external_addr(), m.external_port()), (external, port));
                            m.delete().unwrap_or_else(|e| panic!("thread {t} delete {port}: {e}"));
                            calls += 2;
                        }
                        1 => {
                            let peer = IpAddr::V4(Ipv4Addr::new(198, 51, 100, t as u8 + 1));
                            let m = client
                                .peer(PeerSpec::new(protocol, port, peer, 1000 + i as u16))
                                .unwrap_or_else(|e| panic!("thread {t} peer {port}: {e}"));
                            assert_eq!((m.protocol(), m.internal_port()), (protocol, port));
                            assert_eq!(m.remote(), Some((peer, 1000 + i as u16)), "an answer for another peer");
                            m.delete().unwrap_or_else(|e| panic!("thread {t} delete peer {port}: {e}"));
                            calls += 2;
                        }
                        _ => {
                            // The shared port, with the non-classic API: each call
                            // is its own mapping with its own nonce, so the server
                            // grants it to one holder at a time and refuses the
                            // others (NOT_AUTHORIZED, another nonce holds it).
                            match client.map_with(MapSpec::new(Protocol::TCP, SHARED_PORT)) {
                                Ok(m) => {
                                    assert_eq!(m.internal_port(), SHARED_PORT);
                                    shared_granted += 1;
                                    m.delete().unwrap_or_else(|e| panic!("thread {t} delete shared: {e}"));
                                    calls += 1;
                                }
                                Err(Error::NotAuthorized { .. }) => {}
                                Err(e) => panic!("thread {t} shared port: {e}"),
                            }
                            calls += 1;
                        }
                    }
                    i += 1;
                }
                (calls, shared_granted)
            })
        })
        .collect();
    let (mut calls, mut shared) = (0, 0);
    for w in workers {
        let (c, s) = w.join().expect("a worker panicked");
        calls += c;
        shared += s;
    }
    println!("{calls} calls answered; the shared port was granted {shared} times");
    assert!(shared > 0, "the shared port was never granted");
    assert_eq!(client.mapping_count(), 0, "the client holds nothing after every delete");
    assert_eq!(server.mapping_count(), 0, "the server holds nothing after every delete");
    client.close();
}
