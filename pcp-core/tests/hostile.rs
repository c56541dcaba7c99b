//! The hostile-answer table (tests/hostile/cases.json) against the Rust
//! client: the test server answers with each crafted case, and the request
//! must end as the table says. The same table runs in Python, Node and C.

use std::time::Duration;

use pcp_core::server::{Hostile, Server};
use pcp_core::{Client, ClientConfig, MapSpec, Protocol};
use serde_json::Value;

fn table() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/hostile/cases.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("the table is there")).expect("the table is JSON")
}

/// What happened to one request, in the table's words.
fn outcome(r: &pcp_core::Result<pcp_core::Mapping>, external_ip: &str) -> String {
    match r {
        Ok(m) if m.external_addr().to_string() == external_ip && m.external_port() != 0 => "taken".into(),
        Ok(m) => format!("taken with a wrong answer: {}:{}", m.external_addr(), m.external_port()),
        Err(e) if e.code() == "TIMEOUT" => "timeout".into(),
        Err(e) => format!("error {}", e.code()),
    }
}

#[test]
fn every_case_of_the_table_ends_as_it_says() {
    let t = table();
    let deadline = Duration::from_millis(t["deadline_ms"].as_u64().unwrap());
    let external_ip = t["external_ip"].as_str().unwrap();
    let mut failures = Vec::new();
    let (mut passed, mut pending) = (0, 0);
    for row in t["cases"].as_array().unwrap() {
        let name = row["case"].as_str().unwrap();
        let case = Hostile::from_name(name).unwrap_or_else(|| panic!("the table names an unknown case {name:?}"));
        let want = match row["expect"].as_str().unwrap() {
            "error" => format!("error {}", row["error"].as_str().unwrap()),
            other => other.to_string(),
        };
        if let Some(why) = row.get("pending") {
            println!("PENDING {name}: {want} ({})", why.as_str().unwrap_or(""));
            pending += 1;
            continue;
        }
        let server = Server::start_local().unwrap();
        server.set_hostile(Some(case));
        let mut cc = ClientConfig::new(server.local_addr()).deadline(deadline);
        cc.listen_announce = false;
        let client = Client::new(cc).unwrap();
        let requests = row.get("requests").and_then(Value::as_u64).unwrap_or(1) as u16;
        // "request": "prefer_failure": suggest the internal port as the
        // external one, with PREFER_FAILURE (RFC 6887 section 13.2).
        let prefer_failure = match row.get("request").and_then(Value::as_str) {
            None => false,
            Some("prefer_failure") => true,
            Some(other) => panic!("{name}: unknown request kind {other:?}"),
        };
        let mut got = Vec::new();
        for i in 0..requests {
            let mut spec = MapSpec::new(Protocol::TCP, 7000 + i);
            if prefer_failure {
                spec = spec.external_port(7000 + i).prefer_failure();
            }
            let r = client.map_with(spec);
            got.push(outcome(&r, external_ip));
        }
        server.set_hostile(None);
        client.close();
        // A grant the request refused must not stay on the server (the
        // client deletes it; close waits for that delete).
        if prefer_failure && server.mapping_count() != 0 {
            got.push(format!("{} mapping(s) left on the server", server.mapping_count()));
        }
        if got.iter().all(|g| *g == want) {
            println!("ok      {name}: {want}");
            passed += 1;
        } else {
            println!("FAILED  {name}: want {want}, got {got:?}");
            failures.push(format!("{name}: want {want}, got {got:?}"));
        }
    }
    println!("hostile table: {passed} passed, {} failed, {pending} pending", failures.len());
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The C runner (tests/c/test_hostile.c) scans the table line by line.
#[test]
fn the_table_keeps_one_case_a_line() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/hostile/cases.json");
    let text = std::fs::read_to_string(path).unwrap();
    let lines = text.lines().filter(|l| l.contains("\"case\":")).count();
    assert_eq!(lines, table()["cases"].as_array().unwrap().len(), "one case per line, each line one case");
    for l in text.lines().filter(|l| l.contains("\"case\":")) {
        let row: Value = serde_json::from_str(l.trim().trim_end_matches(',')).expect("a case line is one JSON object");
        assert!(row["case"].is_string() && row["expect"].is_string(), "{l}");
    }
}

#[test]
fn the_table_covers_every_case_the_server_knows() {
    let t = table();
    let named: Vec<&str> = t["cases"].as_array().unwrap().iter().map(|r| r["case"].as_str().unwrap()).collect();
    for case in Hostile::all() {
        assert!(named.contains(&case.name()), "{} is not in tests/hostile/cases.json", case.name());
    }
}
