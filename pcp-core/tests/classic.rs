//! The classic API (`Client::map_port`, `Client::delete_port`): the shared
//! case table of tests/classic/cases.txt, and concurrent callers.

use std::collections::HashMap;
use std::sync::{Arc, Barrier};

use pcp_core::server::Server;
use pcp_core::{Client, ClientConfig, Nonce, Protocol};

fn client(server: &Server) -> Client {
    let mut cc = ClientConfig::new(server.local_addr());
    cc.listen_announce = false;
    Client::new(cc).expect("client")
}

#[test]
fn the_shared_case_table() {
    let table = include_str!("../../tests/classic/cases.txt");
    let mut ran = 0;
    for line in table.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (name, steps) = line.split_once(':').expect("NAME: steps");
        let server = Server::start_local().expect("server");
        let c = client(&server);
        let mut nonces: HashMap<u16, Nonce> = HashMap::new();
        for step in steps.split(';').map(str::trim) {
            let w: Vec<&str> = step.split_whitespace().collect();
            let n = |i: usize| w[i].parse::<u32>().expect("a number");
            match w[0] {
                "map" => {
                    let (port, expect) = (n(1) as u16, w[4]);
                    match (c.map_port(Protocol::TCP, port, n(2) as u16, n(3)), expect) {
                        (Ok(m), "new" | "same") => {
                            let before = nonces.insert(port, m.nonce());
                            assert_eq!(before == Some(m.nonce()), expect == "same", "{name}: {step}");
                            // A suggested port is honoured when free; a refresh keeps the server's.
                            if n(2) != 0 && expect == "new" {
                                assert_eq!(u32::from(m.external_port()), n(2), "{name}: {step}");
                            }
                        }
                        (Err(e), code) => assert_eq!(e.code(), code, "{name}: {step}: {e}"),
                        (Ok(_), code) => panic!("{name}: {step}: succeeded, expected {code}"),
                    }
                }
                "delete" => match (c.delete_port(Protocol::TCP, n(1) as u16), w[2]) {
                    (Ok(()), "ok") => {}
                    (r, expect) => assert_eq!(r.err().map(|e| e.code()), Some(expect), "{name}: {step}"),
                },
                "server_mappings" => assert_eq!(server.mapping_count() as u32, n(1), "{name}: {step}"),
                "refuse" => server.force_result(match w[1] {
                    "none" => None,
                    code => Some((pcp_core::server::error_code_by_name(code).expect("an RFC name"), 0)),
                }),
                other => panic!("{name}: unknown step {other}"),
            }
        }
        c.close();
        ran += 1;
    }
    assert!(ran >= 10, "the table has its cases ({ran})");
}

#[test]
fn concurrent_callers_share_one_mapping() {
    let server = Server::start_local().expect("server");
    let c = client(&server);
    let start = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (c, start) = (c.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                c.map_port(Protocol::TCP, 8080, 0, 3600).expect("every caller gets the mapping")
            })
        })
        .collect();
    let got: Vec<_> = threads.into_iter().map(|t| t.join().expect("thread")).collect();
    assert!(got.iter().all(|m| m.nonce() == got[0].nonce() && m.external_port() == got[0].external_port()));
    assert_eq!(server.mapping_count(), 1);
    assert_eq!(c.mapping_count(), 1);
    c.close();
}

#[test]
fn deleting_after_close_says_closed() {
    let server = Server::start_local().expect("server");
    let c = client(&server);
    c.map_port(Protocol::TCP, 8080, 0, 3600).expect("map");
    c.close();
    assert_eq!(c.delete_port(Protocol::TCP, 8080).unwrap_err().code(), "CLOSED");
    assert_eq!(c.map_port(Protocol::TCP, 8080, 0, 3600).unwrap_err().code(), "CLOSED");
}

#[test]
fn two_deletes_of_one_mapping_both_return() {
    // Callers sharing a classic mapping may each delete it; neither waits forever.
    let server = Server::start_local().expect("server");
    let c = client(&server);
    let m = c.map_port(Protocol::TCP, 8080, 0, 3600).expect("map");
    let (first, second) = (m.delete_async(), m.delete_async());
    let timeout = std::time::Duration::from_secs(10);
    assert!(second.wait_timeout(timeout).expect("the second delete returns").is_ok());
    assert!(first.wait_timeout(timeout).is_some(), "the first delete returns too");
    assert_eq!(server.mapping_count(), 0);
    c.close();
}

/// The classic PEER asked again is the same mapping: returned as it is
/// (nothing sent), or renewed with its nonce for a new lifetime, where a
/// new nonce would be refused (NOT_AUTHORIZED).
#[test]
fn a_classic_peer_asked_again_is_the_same_mapping() {
    let server = Server::start_local().expect("server");
    let c = client(&server);
    let remote: std::net::IpAddr = "198.51.100.4".parse().unwrap();
    let first = c.peer_port(Protocol::TCP, 9000, remote, 443, 3600).expect("peer");
    let sent = server.requests_received();
    let again = c.peer_port(Protocol::TCP, 9000, remote, 443, 3600).expect("again");
    assert_eq!((again.id(), server.requests_received()), (first.id(), sent), "the held one, nothing sent");
    // Written IPv4-mapped, it is the same peer.
    let longer = c.peer_port(Protocol::TCP, 9000, "::ffff:198.51.100.4".parse().unwrap(), 443, 600).expect("renewed");
    assert_eq!((longer.nonce(), longer.lifetime()), (first.nonce(), 600));
    assert_eq!(server.mapping_count(), 1);
    let other = c.peer_port(Protocol::TCP, 9000, remote, 444, 3600).expect("another peer");
    assert_ne!(other.nonce(), first.nonce());
    assert_eq!(server.mapping_count(), 2);
    c.close();
}
