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

/// A test server and a client of it (not listening for ANNOUNCE).
fn server_and_client() -> (Server, Client) {
    let server = Server::start_local().unwrap();
    let mut cc = ClientConfig::new(server.local_addr());
    cc.listen_announce = false;
    let client = Client::new(cc).unwrap();
    (server, client)
}

/// A callback that closes the client, run by a caller that drives the engine
/// while it waits (it read that request's answer): the close's deletes are
/// answered, not given up on when the close timeout passes, although that
/// caller, still counted as driving, reads nothing until the callback returns.
#[test]
fn a_close_from_a_callback_a_waiting_caller_runs_gets_its_deletes_answered() {
    let (server, client) = server_and_client();
    let held = client.map_with(MapSpec::new(Protocol::TCP, 7000)).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    client.on_event(move |ev| {
        if let pcp_core::Event::Deleted { id, result } = ev {
            let _ = tx.send((*id, result.is_ok()));
        }
    });
    // Delayed answers, so that the waiting caller below is the one reading
    // when the first comes (UDP on loopback keeps their order).
    server.set_delay(Duration::from_millis(100));
    let closer = client.clone();
    client.map_async(MapSpec::new(Protocol::TCP, 7001)).on_complete(move |_| closer.close());
    let waited = client.announce_async();
    assert!(matches!(waited.wait(), Err(Error::Closed) | Ok(_)));
    assert!(client.is_closed());
    let deleted: Vec<_> = rx.try_iter().collect();
    assert!(deleted.contains(&(held.id(), true)), "the held mapping's delete was answered: {deleted:?}");
}

/// Two deletes of one mapping at once (two threads calling `delete()`):
/// both get the delete's answer; the second does not cancel the first.
#[test]
fn two_deletes_of_one_mapping_both_get_its_answer() {
    let (server, client) = server_and_client();
    let m = client.map_with(MapSpec::new(Protocol::TCP, 7100)).unwrap();
    server.set_delay(Duration::from_millis(50)); // both in flight together
    let (first, second) = (m.delete_async(), m.delete_async());
    assert_eq!((first.wait(), second.wait()), (Ok(()), Ok(())));
    assert_eq!(server.mapping_count(), 0);
}
