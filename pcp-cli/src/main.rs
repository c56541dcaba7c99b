//! `pcp`: a command-line Port Control Protocol client, in the spirit of
//! `natpmpc` and `upnpc`.

mod demo;
mod output;
mod state_file;

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use pcp_core::client::parse_server;
use pcp_core::config::{parse_protocol, parse_protocol_choice};
use pcp_core::discovery::{discover, DiscoveryConfig};
use pcp_core::server::{Server, ServerConfig, ServerMode};
use pcp_core::{Client, ClientConfig, Error, Filter, MapSpec, Mapping, PeerSpec};

use output::Output;

#[derive(Parser)]
#[command(
    name = "pcp",
    version,
    about = "Port Control Protocol (RFC 6887) client: open and keep ports on your NAT gateway or firewall"
)]
struct Cli {
    /// The PCP server (default: discover it among the default gateways).
    #[arg(long, global = true, value_name = "ADDR[:PORT]")]
    gateway: Option<String>,
    /// Give up on a request (or discovery) after this many seconds.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 5.0)]
    timeout: f64,
    /// One JSON object per result or event.
    #[arg(long, global = true)]
    json: bool,
    /// auto: PCP, falling back to NAT-PMP on a NAT-PMP-only gateway; pcp or natpmp: only that.
    #[arg(
        long = "protocol",
        id = "protocol_choice",
        global = true,
        value_name = "auto|pcp|natpmp",
        default_value = "auto"
    )]
    protocol_choice: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Find the PCP server and print it.
    Discover,
    /// Print the gateway's external address.
    ExternalAddress,
    /// Send ANNOUNCE and print the server's epoch.
    Announce,
    /// Ask for an inbound mapping.
    Map {
        /// tcp, udp or all
        protocol: String,
        internal_port: u16,
        #[arg(long, default_value_t = 0)]
        external_port: u16,
        #[arg(long)]
        external_ip: Option<IpAddr>,
        #[arg(long, default_value_t = 3600)]
        lifetime: u32,
        /// Fail rather than accept another external port than suggested.
        #[arg(long)]
        prefer_failure: bool,
        /// Only let this remote reach the mapping: IP[/LEN]:PORT (repeatable).
        #[arg(long, value_name = "IP[/LEN]:PORT")]
        filter: Vec<String>,
        /// Ask on behalf of another host.
        #[arg(long, value_name = "IP")]
        third_party: Option<IpAddr>,
        /// Hold and renew the mapping, printing each event, until Ctrl-C; then delete it.
        #[arg(long)]
        keep: bool,
    },
    /// Ask for an outbound mapping to one peer.
    Peer {
        protocol: String,
        internal_port: u16,
        peer_ip: IpAddr,
        peer_port: u16,
        #[arg(long, default_value_t = 3600)]
        lifetime: u32,
        #[arg(long)]
        keep: bool,
    },
    /// Delete a mapping made earlier by `pcp map`.
    Delete {
        protocol: String,
        internal_port: u16,
        /// The mapping was made with --third-party for this host.
        #[arg(long, value_name = "IP")]
        third_party: Option<IpAddr>,
    },
    /// Run the PCP test server (for tests and demos; it forwards nothing).
    Serve {
        #[arg(long, default_value = "127.0.0.1:5351")]
        listen: SocketAddr,
        #[arg(long, default_value = "203.0.113.7")]
        external_ip: IpAddr,
        /// both (PCP and NAT-PMP), pcp, or natpmp (a NAT-PMP-only gateway).
        #[arg(long, value_name = "both|pcp|natpmp", default_value = "both")]
        mode: String,
    },
    /// Start the test server on loopback and walk through every operation.
    Demo,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version are not errors; an argument error with
        // --json is a JSON error object with status 1, as every other error.
        Err(e) if e.use_stderr() && std::env::args().any(|a| a == "--json") => {
            // clap's text up to its usage lines: the error and what it names
            // ("the following required arguments were not provided: <PORT>").
            let text = e.to_string();
            let detail: Vec<&str> = text.lines().take_while(|l| !l.starts_with("Usage:")).map(str::trim).collect();
            let message = detail.join(" ").trim().trim_start_matches("error: ").to_string();
            Output::new(true).error(&Error::InvalidArgument(message));
            return ExitCode::from(1);
        }
        // Without --json too: every error exits with status 1 (clap's is 2).
        Err(e) if e.use_stderr() => {
            let _ = e.print();
            return ExitCode::from(1);
        }
        Err(e) => e.exit(),
    };
    let out = Output::new(cli.json);
    match run(&cli, &out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            out.error(&e);
            ExitCode::from(1)
        }
    }
}

/// `--timeout` as a request deadline; the range is the core's rule (the
/// same message as every other language gives).
fn deadline(cli: &Cli) -> Result<Duration, Error> {
    let d = Duration::try_from_secs_f64(cli.timeout)
        .map_err(|_| Error::InvalidArgument(format!("--timeout must be a number of seconds, not {}", cli.timeout)))?;
    pcp_core::RetransmitPolicy::rfc().with_deadline(d).validate().map_err(|e| match e {
        Error::InvalidArgument(m) => Error::InvalidArgument(format!("--timeout: {m}")),
        other => other,
    })?;
    Ok(d)
}

/// The server from --gateway, or the first that answers discovery.
fn server_addr(cli: &Cli) -> Result<SocketAddr, Error> {
    match &cli.gateway {
        Some(g) => parse_server(g),
        None => {
            let config = DiscoveryConfig { deadline: deadline(cli)?, ..Default::default() };
            Ok(discover(&config)?.server)
        }
    }
}

fn connect(cli: &Cli, listen_announce: bool) -> Result<Client, Error> {
    connect_to(cli, server_addr(cli)?, listen_announce)
}

/// A client for `server` (found once: discovering it again could find
/// another server than the one a recorded mapping belongs to).
fn connect_to(cli: &Cli, server: SocketAddr, listen_announce: bool) -> Result<Client, Error> {
    let mut cc = ClientConfig::new(server)
        .deadline(deadline(cli)?)
        .protocol(parse_protocol_choice(&cli.protocol_choice, "--protocol")?);
    cc.listen_announce = listen_announce;
    Client::new(cc)
}

fn run(cli: &Cli, out: &Output) -> Result<(), Error> {
    match &cli.command {
        Command::Discover => {
            let config = match &cli.gateway {
                Some(g) => DiscoveryConfig {
                    deadline: deadline(cli)?,
                    ..DiscoveryConfig::with_candidates(vec![parse_server(g)?])
                },
                None => DiscoveryConfig { deadline: deadline(cli)?, ..Default::default() },
            };
            out.discovered(&discover(&config)?);
        }
        Command::ExternalAddress => {
            let c = connect(cli, false)?;
            let ip = c.external_address()?;
            out.external_address(c.gateway_address(), ip, c.protocol_version());
        }
        Command::Announce => {
            let c = connect(cli, false)?;
            let epoch = c.announce()?;
            out.announce(c.gateway_address(), epoch, c.protocol_version());
        }
        Command::Map {
            protocol: p,
            internal_port,
            external_port,
            external_ip,
            lifetime,
            prefer_failure,
            filter,
            third_party,
            keep,
        } => {
            let mut spec = MapSpec::new(parse_protocol(p, "protocol")?, *internal_port)
                .external_port(*external_port)
                .external_addr(*external_ip)
                .lifetime(*lifetime)
                .prefer_failure_if(*prefer_failure)
                .third_party(*third_party);
            for f in filter {
                spec = spec.filter(parse_filter(f)?);
            }
            let stop = interrupt_if(*keep)?;
            let c = connect(cli, *keep)?;
            // Mapping a recorded port again refreshes that mapping: the
            // same nonce (RFC 6887 section 11.3), as the classic call of
            // every language does; another nonce would be refused.
            if let Some(record) = state_file::find(c.gateway_address(), spec.protocol, *internal_port, *third_party)? {
                spec = spec.nonce(record.nonce);
            }
            let m = c.map_with(spec)?;
            out.mapping("mapped", c.gateway_address(), &m);
            hold_or_record(&c, m, *third_party, stop, out)?;
        }
        Command::Peer { protocol: p, internal_port, peer_ip, peer_port, lifetime, keep } => {
            let spec =
                PeerSpec::new(parse_protocol(p, "protocol")?, *internal_port, *peer_ip, *peer_port).lifetime(*lifetime);
            let stop = interrupt_if(*keep)?;
            let c = connect(cli, *keep)?;
            let m = c.peer(spec)?;
            out.mapping("peer", c.gateway_address(), &m);
            hold_or_record(&c, m, None, stop, out)?;
        }
        Command::Delete { protocol: p, internal_port, third_party } => {
            let proto = parse_protocol(p, "protocol")?;
            let server = server_addr(cli)?;
            // Nothing recorded: nothing to delete, and no error, as the
            // classic delete of a port the client does not hold in every
            // language.
            let Some(record) = state_file::find(server, proto, *internal_port, *third_party)? else {
                out.not_mapped(server, proto, *internal_port, *third_party);
                return Ok(());
            };
            let c = connect_to(cli, server, false)?;
            // RFC 6887 section 13.1: a third party's mapping is deleted with
            // the same THIRD_PARTY option.
            let spec = MapSpec::new(proto, *internal_port).nonce(record.nonce).third_party(*third_party);
            let result = c.delete_with(spec);
            c.close_keep();
            result?;
            state_file::remove(server, proto, *internal_port, *third_party)?;
            out.deleted(server, proto, *internal_port, record.nonce);
        }
        Command::Serve { listen, external_ip, mode } => serve(*listen, *external_ip, mode, out)?,
        Command::Demo => demo::run(out)?,
    }
    Ok(())
}

/// With --keep, the Ctrl-C handler is installed before the request is sent,
/// so that an interrupt at any moment after "mapped" is printed still deletes.
fn interrupt_if(keep: bool) -> Result<Option<mpsc::Receiver<()>>, Error> {
    if keep {
        ctrl_c().map(Some)
    } else {
        Ok(None)
    }
}

/// Without --keep (`stop` is None) the mapping stays on the gateway for its
/// lifetime and, for a MAP, its nonce is recorded for `pcp delete` (a PEER
/// is not: the delete, a MAP with lifetime 0, cannot end it, and its
/// record would make `pcp delete` of that port report a delete that did
/// nothing); with it, we renew until Ctrl-C.
fn hold_or_record(
    c: &Client,
    m: Mapping,
    third_party: Option<IpAddr>,
    stop: Option<mpsc::Receiver<()>>,
    out: &Output,
) -> Result<(), Error> {
    let Some(stop) = stop else {
        if m.opcode() == pcp_core::wire::Opcode::Map {
            state_file::record(c.gateway_address(), &m, third_party)?;
        }
        c.close_keep();
        return Ok(());
    };
    let events = c.events();
    loop {
        if stop.try_recv().is_ok() {
            break;
        }
        if let Ok(ev) = events.recv_timeout(Duration::from_millis(200)) {
            out.event(c.gateway_address(), &ev);
            if !m.is_active() {
                break;
            }
        }
    }
    // Report "deleted" only once the gateway confirmed it: a failed delete
    // (timeout, refusal) leaves the mapping on the gateway until it expires.
    let result = m.delete();
    if result.is_ok() {
        out.deleted(c.gateway_address(), m.protocol(), m.internal_port(), m.nonce());
    }
    c.close();
    result
}

fn ctrl_c() -> Result<mpsc::Receiver<()>, Error> {
    let (tx, rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .map_err(|e| Error::Io(std::sync::Arc::new(std::io::Error::other(e.to_string()))))?;
    Ok(rx)
}

fn serve(listen: SocketAddr, external_ip: IpAddr, mode: &str, out: &Output) -> Result<(), Error> {
    let mode = ServerMode::parse(mode)?;
    let server = Server::start(ServerConfig { listen, external_addr: external_ip, mode, ..Default::default() })?;
    out.serving(server.local_addr(), external_ip);
    let stop = ctrl_c()?;
    let _ = stop.recv();
    Ok(())
}

/// `IP[/LEN]:PORT`, IPv6 in brackets: `198.51.100.0/24:0`, `[2001:db8::]/32:443`.
fn parse_filter(s: &str) -> Result<Filter, Error> {
    let bad = || Error::InvalidArgument(format!("bad --filter {s:?}: use IP[/LEN]:PORT, e.g. 198.51.100.0/24:443"));
    let (addr_part, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let remote_port: u16 = port.parse().map_err(|_| bad())?;
    let (ip, len) = match addr_part.split_once('/') {
        Some((ip, len)) => (ip, Some(len.parse::<u8>().map_err(|_| bad())?)),
        None => (addr_part, None),
    };
    let ip: IpAddr = ip.trim_start_matches('[').trim_end_matches(']').parse().map_err(|_| bad())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix_len = len.unwrap_or(max);
    if prefix_len > max {
        return Err(bad());
    }
    Ok(Filter { remote_addr: ip, prefix_len, remote_port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse() {
        let f = parse_filter("198.51.100.0/24:443").unwrap();
        assert_eq!((f.prefix_len, f.remote_port), (24, 443));
        assert_eq!(parse_filter("[2001:db8::]/32:0").unwrap().prefix_len, 32);
        assert_eq!(parse_filter("198.51.100.1:80").unwrap().prefix_len, 32);
        for bad in ["198.51.100.1", "198.51.100.1/33:80", "x:1", "1.2.3.4:99999"] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
    }
}
