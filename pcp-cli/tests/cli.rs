//! The `pcp` binary against the test server on loopback.

use std::net::UdpSocket;
use std::process::{Command, Output};

// For the tests that interrupt `pcp map --keep` with SIGINT (Unix only).
#[cfg(unix)]
use std::io::{BufRead, BufReader};
#[cfg(unix)]
use std::process::Stdio;
#[cfg(unix)]
use std::time::{Duration, Instant};

use pcp_core::server::Server;
use serde_json::Value;

fn pcp(state: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pcp")).args(args).env("XDG_STATE_HOME", state).output().expect("pcp runs")
}

fn json_lines(o: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn state_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("pcp-cli-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn map_then_delete_with_the_recorded_nonce() {
    let server = Server::start_local().unwrap();
    let gw = server.local_addr().to_string();
    let st = state_dir("map");
    let o =
        pcp(&st, &["--gateway", &gw, "--json", "map", "tcp", "8080", "--external-port", "8080", "--lifetime", "600"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = &json_lines(&o)[0];
    for key in ["gateway", "protocol", "internal_port", "external_ip", "external_port", "lifetime", "epoch", "nonce"] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["gateway"], gw.as_str());
    assert_eq!(v["protocol"], "tcp");
    assert_eq!(v["external_port"], 8080);
    assert_eq!(v["external_ip"], "203.0.113.7");
    let sm = server.mappings();
    assert_eq!(sm.len(), 1, "the mapping outlives the command");
    assert_eq!(v["nonce"], sm[0].nonce.to_hex());

    // Mapping the port again refreshes the same mapping (its recorded
    // nonce), with the new lifetime; another nonce would be refused.
    for lifetime in ["600", "900"] {
        let o = pcp(&st, &["--gateway", &gw, "--json", "map", "tcp", "8080", "--lifetime", lifetime]);
        assert!(o.status.success(), "map again: {}", String::from_utf8_lossy(&o.stderr));
        let again = &json_lines(&o)[0];
        assert_eq!((&again["nonce"], &again["external_port"]), (&v["nonce"], &v["external_port"]));
        assert_eq!(again["lifetime"].to_string(), lifetime);
    }
    assert_eq!(server.mapping_count(), 1);

    let o = pcp(&st, &["--gateway", &gw, "delete", "tcp", "8080"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(server.mapping_count(), 0, "deleted with the recorded nonce");
    // Nothing recorded any more: nothing to delete, and no error (as the
    // classic delete of every language); nothing is sent.
    let received = server.requests_received();
    let o = pcp(&st, &["--gateway", &gw, "--json", "delete", "tcp", "8080"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(json_lines(&o)[0]["event"], "not_mapped");
    assert_eq!(server.requests_received(), received);
}

/// An argument error exits with status 1 as every other error, with or
/// without --json (clap's own status would be 2).
#[test]
fn argument_errors_exit_1() {
    let st = state_dir("args");
    for json in [false, true] {
        let mut args = vec!["--gateway", "127.0.0.1:1", "map", "tcp", "65536"];
        if json {
            args.insert(0, "--json");
        }
        let o = pcp(&st, &args);
        assert_eq!(o.status.code(), Some(1), "json {json}: {}", String::from_utf8_lossy(&o.stderr));
    }
}

#[test]
fn map_options_and_peer() {
    let server = Server::start_local().unwrap();
    let gw = server.local_addr().to_string();
    let st = state_dir("opts");
    let o = pcp(
        &st,
        &[
            "--gateway",
            &gw,
            "--json",
            "map",
            "udp",
            "5000",
            "--external-port",
            "5000",
            "--prefer-failure",
            "--filter",
            "198.51.100.0/24:0",
            "--filter",
            "198.51.100.9:53",
            "--third-party",
            "127.0.0.5",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(json_lines(&o)[0]["internal_ip"], "127.0.0.5");
    assert_eq!(server.mappings()[0].filters, 2);
    let o = pcp(&st, &["--gateway", &gw, "--json", "peer", "tcp", "6000", "198.51.100.7", "443"]);
    assert!(o.status.success());
    let v = &json_lines(&o)[0];
    assert_eq!((v["peer_ip"].as_str(), v["peer_port"].as_u64()), (Some("198.51.100.7"), Some(443)));
    // A PEER is not recorded: `pcp delete` (a MAP delete) could not end it,
    // and printed "deleted" while it lived on.
    let o = pcp(&st, &["--gateway", &gw, "--json", "delete", "tcp", "6000"]);
    assert_eq!(json_lines(&o)[0]["event"], "not_mapped");
    assert!(server.mappings().iter().any(|m| m.opcode.name() == "PEER" && m.internal_port == 6000));
}

#[test]
fn discover_announce_and_external_address() {
    let server = Server::start_local().unwrap();
    let gw = server.local_addr().to_string();
    let st = state_dir("info");
    let o = pcp(&st, &["--gateway", &gw, "--json", "discover"]);
    assert!(o.status.success());
    assert_eq!(json_lines(&o)[0]["gateway"], gw.as_str());
    let o = pcp(&st, &["--gateway", &gw, "--json", "announce"]);
    assert!(o.status.success());
    assert!(json_lines(&o)[0]["epoch"].is_u64());
    let o = pcp(&st, &["--gateway", &gw, "external-address"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("203.0.113.7"));
}

#[test]
fn errors_go_to_stderr_with_a_nonzero_exit() {
    let dead = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let st = state_dir("err");
    let o = pcp(&st, &["--gateway", &dead, "map", "tcp", "80"]);
    assert!(!o.status.success());
    assert!(o.stdout.is_empty());
    assert!(String::from_utf8_lossy(&o.stderr).contains("unreachable"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = pcp(&st, &["--gateway", &dead, "--json", "announce"]);
    let err: Value = serde_json::from_slice(o.stderr.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(err["error"], "SERVER_UNREACHABLE");
    let o = pcp(&st, &["--gateway", &dead, "map", "icmp", "80"]);
    // The core's rule for protocol text (config::parse_protocol), in its words.
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains(r#"protocol: "icmp" is not tcp, udp, all or a number 0-255"#), "{stderr}");
    let o = pcp(&st, &["--gateway", &dead, "--protocol", "upnp", "announce"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains(r#"--protocol: "upnp" is not "auto", "pcp" or "natpmp""#), "{stderr}");
    // The core's rule for a deadline, in its words.
    let o = pcp(&st, &["--gateway", &dead, "--timeout", "0", "announce"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("--timeout: the request deadline must be more than 0"), "{stderr}");
    // An argument error with --json: a JSON object on stderr and status 1, as the README says.
    let o = pcp(&st, &["--json", "map", "tcp", "notaport"]);
    assert_eq!(o.status.code(), Some(1));
    let err: Value = serde_json::from_slice(o.stderr.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(err["error"], "INVALID_ARGUMENT");
    assert!(err["message"].as_str().unwrap().contains("notaport"), "{err}");
    // A missing argument is named, not only "the following required arguments were not provided:".
    let o = pcp(&st, &["--json", "map", "tcp"]);
    let err: Value = serde_json::from_slice(o.stderr.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert!(err["message"].as_str().unwrap().contains("INTERNAL_PORT"), "{err}");
    let server = Server::start_local().unwrap();
    server.force_result(Some((pcp_core::ResultCode::NotAuthorized, 30)));
    let o = pcp(&st, &["--gateway", &server.local_addr().to_string(), "map", "tcp", "80"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("NOT_AUTHORIZED"));
    // The JSON error says whether the refusal is short-term (RFC 6887 section 7.4).
    for (code, short) in [(pcp_core::ResultCode::NotAuthorized, false), (pcp_core::ResultCode::NoResources, true)] {
        server.force_result(Some((code, 0)));
        let o = pcp(&st, &["--gateway", &server.local_addr().to_string(), "--json", "map", "tcp", "81"]);
        let err: Value = serde_json::from_slice(o.stderr.split(|b| *b == b'\n').next().unwrap()).unwrap();
        assert_eq!((&err["error"], &err["short_term"]), (&Value::from(code.name()), &Value::from(short)), "{err}");
    }
}

/// Interrupts with SIGINT, which only Unix has (Windows' Ctrl-C event
/// cannot be sent to one child alone).
#[test]
#[cfg(unix)]
fn keep_renews_until_interrupted_then_deletes() {
    let server = Server::start_local().unwrap();
    let gw = server.local_addr().to_string();
    let st = state_dir("keep");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pcp"))
        .args(["--gateway", &gw, "--json", "map", "tcp", "7000", "--lifetime", "2", "--keep"])
        .env("XDG_STATE_HOME", &st)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut renewed = false;
    while !renewed {
        assert!(Instant::now() < deadline);
        let l = lines.next().unwrap().unwrap();
        renewed = serde_json::from_str::<Value>(&l).unwrap()["event"] == "renewed";
    }
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert!(status.success());
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(rest.iter().any(|l| l.contains("\"deleted\"")), "{rest:?}");
    assert_eq!(server.mapping_count(), 0);
}

#[test]
#[cfg(unix)] // SIGINT, as above
fn keep_reports_a_failed_delete_as_an_error_not_as_deleted() {
    let server = Server::start_local().unwrap();
    let gw = server.local_addr().to_string();
    let st = state_dir("keep-fail");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pcp"))
        .args(["--gateway", &gw, "--json", "--timeout", "1", "map", "tcp", "7001", "--lifetime", "600", "--keep"])
        .env("XDG_STATE_HOME", &st)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["event"], "mapped");
    // The gateway now ignores everything: the delete on Ctrl-C times out.
    server.drop_next(u32::MAX);
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "a failed delete is a failure");
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(!rest.iter().any(|l| l.contains("\"deleted\"")), "printed deleted though the delete failed: {rest:?}");
    let err: Value = serde_json::from_slice(out.stderr.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(err["error"], "TIMEOUT", "{err}");
    assert_eq!(server.mapping_count(), 1, "the mapping is still on the gateway");
}

#[test]
fn demo_walks_through_every_step() {
    let st = state_dir("demo");
    let o = pcp(&st, &["demo"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    for step in [
        "discover",
        "mapped:",
        "renewed:",
        "external address",
        "peer:",
        "restarted",
        "deleted tcp port 8080",
        "holds 0 mappings",
    ] {
        assert!(text.contains(step), "demo output lacks {step:?}:\n{text}");
    }
}

fn natpmp_server() -> Server {
    use pcp_core::server::{ServerConfig, ServerMode};
    Server::start(ServerConfig { mode: ServerMode::NatPmpOnly, ..Default::default() }).unwrap()
}

#[test]
fn protocol_auto_falls_back_to_natpmp_and_says_so() {
    let server = natpmp_server();
    let gw = server.local_addr().to_string();
    let st = state_dir("natpmp");
    let o = pcp(&st, &["--gateway", &gw, "--json", "map", "udp", "9000", "--external-port", "9000"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = &json_lines(&o)[0];
    assert_eq!(v["protocol_version"], "natpmp");
    assert_eq!((v["external_ip"].as_str(), v["external_port"].as_u64()), (Some("203.0.113.7"), Some(9000)));
    assert_eq!(server.mapping_count(), 1);
    // The human form says it too.
    let o = pcp(&st, &["--gateway", &gw, "external-address"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && text.contains("203.0.113.7") && text.contains("NAT-PMP"), "{text}");
    // `pcp delete` of a NAT-PMP mapping (a new process: PCP first, then NAT-PMP).
    let o = pcp(&st, &["--gateway", &gw, "delete", "udp", "9000"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(server.mapping_count(), 0);
}

#[test]
fn protocol_option_forces_one() {
    let server = natpmp_server();
    let gw = server.local_addr().to_string();
    let st = state_dir("natpmp-forced");
    let o = pcp(&st, &["--gateway", &gw, "--protocol", "pcp", "--json", "map", "tcp", "80"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("UNSUPP_VERSION"));
    let o = pcp(&st, &["--gateway", &gw, "--protocol", "natpmp", "--json", "map", "tcp", "80"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(json_lines(&o)[0]["protocol_version"], "natpmp");
    let o = pcp(&st, &["--gateway", &gw, "--protocol", "natpmp", "peer", "tcp", "81", "198.51.100.1", "443"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("UNSUPPORTED_BY_NATPMP"));
    let o = pcp(&st, &["--gateway", &gw, "--protocol", "upnp", "map", "tcp", "80"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--protocol"));
    // Against a PCP gateway the JSON says pcp.
    let both = Server::start_local().unwrap();
    let o = pcp(&st, &["--gateway", &both.local_addr().to_string(), "--json", "map", "tcp", "82"]);
    assert_eq!(json_lines(&o)[0]["protocol_version"], "pcp");
}
