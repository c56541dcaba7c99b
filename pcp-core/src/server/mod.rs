//! A PCP server for tests, demos and users' own test suites (feature `server`).
//!
//! It answers ANNOUNCE, MAP and PEER by RFC 6887: assigns external ports,
//! honours suggested ones, clamps lifetimes, deletes, refuses a renewal or
//! delete whose nonce differs (as real servers do), checks the Client IP
//! field against the source address, and keeps an epoch. Faults can be
//! injected: drop requests, delay answers, answer a chosen result code,
//! reboot (epoch back to 0, state lost, unsolicited ANNOUNCE), change the
//! external address. It never forwards traffic: mappings are bookkeeping.
//!
//! ```
//! use pcp_core::server::{Server, ServerConfig};
//! use pcp_core::{Client, ClientConfig, Protocol};
//!
//! let server = Server::start(ServerConfig::default())?;       // 127.0.0.1, ephemeral port
//! let mut cc = ClientConfig::new(server.local_addr());
//! cc.listen_announce = false;
//! let client = Client::new(cc)?;
//! let m = client.map(Protocol::TCP, 8080)?;
//! assert_eq!(m.external_addr(), server.external_addr());
//! assert_eq!(server.mapping_count(), 1);
//! # Ok::<(), pcp_core::Error>(())
//! ```

mod hostile;
mod natpmp;
mod state;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub use hostile::Hostile;
pub use natpmp::ServerMode;
pub use state::{ServerMapping, ServerState};

use crate::wire::natpmp::NatPmpResult;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::wire::{ResultCode, HEADER_SIZE, MAX_MESSAGE_SIZE, VERSION};

/// Settings of a test [`Server`].
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen; the default is 127.0.0.1 on an ephemeral port.
    pub listen: SocketAddr,
    /// The IPv4 external address handed out (IPv6 requests get pinholes:
    /// external = internal address and port, as an IPv6 firewall does).
    pub external_addr: IpAddr,
    /// External ports are allocated from here.
    pub port_range: (u16, u16),
    /// Lifetimes asked for are raised to at least this...
    pub min_lifetime: u32,
    /// ...and cut to at most this, in seconds.
    pub max_lifetime: u32,
    /// Where to send unsolicited ANNOUNCE on reboot and address change.
    pub announce_to: Vec<SocketAddr>,
    /// Also unicast it to every client address seen.
    pub announce_to_known_clients: bool,
    /// Whether THIRD_PARTY requests are served (else UNSUPP_OPTION).
    pub allow_third_party: bool,
    /// The epoch at start: a gateway that has been up for a while. A reboot
    /// starts again from 0.
    pub initial_epoch: u32,
    /// PCP and NAT-PMP (the default), PCP only, or a NAT-PMP-only gateway.
    pub mode: ServerMode,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            external_addr: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
            port_range: (20000, 60000),
            min_lifetime: 1,
            max_lifetime: 86400,
            announce_to: Vec::new(),
            announce_to_known_clients: true,
            allow_third_party: true,
            initial_epoch: 0,
            mode: ServerMode::default(),
        }
    }
}

/// The error result code a shell's `force_result` names by its RFC name
/// (any case, e.g. "NO_RESOURCES"): SUCCESS is no error to force, and an
/// unknown name is INVALID_ARGUMENT with the one message every shell shows.
///
/// ```
/// use pcp_core::{server::error_code_by_name, ResultCode};
/// assert_eq!(error_code_by_name("no_resources").unwrap(), ResultCode::NoResources);
/// let e = error_code_by_name("SUCCESS").unwrap_err();
/// assert_eq!(e.to_string(), r#"invalid argument: code: "SUCCESS" is not the name of a PCP error result code"#);
/// ```
pub fn error_code_by_name(name: &str) -> crate::Result<ResultCode> {
    ResultCode::from_name(name.trim()).filter(|c| *c != ResultCode::Success).ok_or_else(|| {
        crate::Error::invalid(format!("code: {} is not the name of a PCP error result code", crate::quote_input(name)))
    })
}

/// [`error_code_by_name`] for a code given by its number (1..=13).
///
/// ```
/// use pcp_core::{server::error_code_by_number, ResultCode};
/// assert_eq!(error_code_by_number(2).unwrap(), ResultCode::NotAuthorized);
/// let e = error_code_by_number(14).unwrap_err();
/// assert_eq!(e.to_string(), "invalid argument: code: 14 is not a PCP error result code (1..13)");
/// ```
pub fn error_code_by_number(code: i64) -> crate::Result<ResultCode> {
    u8::try_from(code)
        .ok()
        .and_then(ResultCode::from_u8)
        .filter(|c| *c != ResultCode::Success)
        .ok_or_else(|| crate::Error::invalid(format!("code: {code} is not a PCP error result code (1..13)")))
}

struct Faults {
    drop_next: u32,
    delay: Duration,
    forced: Option<(ResultCode, u32)>,
    hostile: Option<Hostile>,
    /// How many answers the hostile case has crafted.
    hostile_count: u32,
    /// The fraction of datagrams lost, each way.
    loss: f64,
}

struct Shared {
    state: Mutex<ServerState>,
    faults: Mutex<Faults>,
    socket: UdpSocket,
    /// Another port on the same address, for [`Hostile::FromOtherPort`].
    other_socket: UdpSocket,
    stop: AtomicBool,
    config: ServerConfig,
}

/// A running test server. Dropping it stops it.
pub struct Server {
    shared: Arc<Shared>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds and starts serving on a background thread.
    pub fn start(config: ServerConfig) -> io::Result<Server> {
        config.validate().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let socket = UdpSocket::bind(config.listen)?;
        let addr = socket.local_addr()?;
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(4 << 20);
        let other_socket = UdpSocket::bind(SocketAddr::new(addr.ip(), 0))?;
        let shared = Arc::new(Shared {
            state: Mutex::new(ServerState::new(config.clone(), Instant::now())),
            faults: Mutex::new(Faults {
                drop_next: 0,
                delay: Duration::ZERO,
                forced: None,
                hostile: None,
                hostile_count: 0,
                loss: 0.0,
            }),
            socket,
            other_socket,
            stop: AtomicBool::new(false),
            config,
        });
        let s = shared.clone();
        let thread = thread::Builder::new().name("pcp-test-server".into()).spawn(move || serve(s))?;
        Ok(Server { shared, addr, thread: Some(thread) })
    }

    /// Starts on 127.0.0.1 with an ephemeral port.
    pub fn start_local() -> io::Result<Server> {
        Server::start(ServerConfig::default())
    }

    /// Where it listens: the address to give clients.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The external address it hands out now.
    pub fn external_addr(&self) -> IpAddr {
        self.state().external_addr()
    }

    fn state(&self) -> MutexGuard<'_, ServerState> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        self.shared.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Silently drops the next `n` requests.
    pub fn drop_next(&self, n: u32) {
        self.faults().drop_next = n;
    }

    /// Delays every answer by `d` (zero to stop).
    pub fn set_delay(&self, d: Duration) {
        self.faults().delay = d;
    }

    /// Answers every MAP and PEER request with `code` and the given error
    /// lifetime (`None` to answer normally again).
    pub fn force_result(&self, forced: Option<(ResultCode, u32)>) {
        self.faults().forced = forced;
    }

    /// Answers every PCP MAP and PEER request that creates or renews a
    /// mapping with the crafted datagrams of `case` instead of the right
    /// answer (`None` to answer normally again). Deletes and ANNOUNCE are
    /// answered normally. See [`Hostile`].
    pub fn set_hostile(&self, case: Option<Hostile>) {
        let mut f = self.faults();
        f.hostile = case;
        f.hostile_count = 0;
    }

    /// Loses this fraction (0.0 to 1.0) of the datagrams, independently
    /// each way: of the requests before they are handled, and of the answers.
    /// Any other value (NaN included) is INVALID_ARGUMENT, with the one
    /// message every shell shows, and changes nothing.
    ///
    /// ```
    /// # let server = pcp_core::server::Server::start_local()?;
    /// server.set_loss(0.25)?;
    /// let e = server.set_loss(1.5).unwrap_err();
    /// assert_eq!(e.to_string(), "invalid argument: loss: 1.5 is not a fraction from 0 to 1");
    /// # Ok::<(), pcp_core::Error>(())
    /// ```
    pub fn set_loss(&self, fraction: f64) -> crate::Result<()> {
        if !(0.0..=1.0).contains(&fraction) {
            return Err(crate::Error::invalid(format!("loss: {fraction} is not a fraction from 0 to 1")));
        }
        self.faults().loss = fraction;
        Ok(())
    }

    /// Answers every NAT-PMP request with the error `code` in full-length
    /// form (`None` to answer normally again). PCP requests are not affected.
    pub fn force_natpmp_result(&self, code: Option<NatPmpResult>) {
        self.state().force_natpmp_result(code);
    }

    /// Loses all state and restarts the epoch at 0, then announces it, as
    /// a rebooted gateway does.
    pub fn reboot(&self) {
        let targets = {
            let mut st = self.state();
            st.reboot(Instant::now());
            self.announce_targets(&st)
        };
        self.send_announce(&targets);
    }

    /// Changes the external address, tells each PCP client about its
    /// changed mappings with unsolicited responses (RFC 6887 section 14.2)
    /// and announces it.
    pub fn set_external_addr(&self, addr: IpAddr) {
        let (targets, updates) = {
            let mut st = self.state();
            st.set_external_addr(addr);
            (self.announce_targets(&st), st.mapping_updates(Instant::now()))
        };
        for (to, msg) in updates {
            let _ = self.shared.socket.send_to(&msg, to);
        }
        self.send_announce(&targets);
    }

    fn announce_targets(&self, st: &ServerState) -> Vec<SocketAddr> {
        let mut t = self.shared.config.announce_to.clone();
        if self.shared.config.announce_to_known_clients {
            t.extend(st.known_clients());
        }
        t
    }

    /// Sends the unsolicited announcements: PCP's ANNOUNCE to `targets`
    /// when the server speaks PCP, and NAT-PMP's external-address
    /// announcement (RFC 6886 section 3.2.1) to the configured targets and
    /// the NAT-PMP clients seen when it speaks NAT-PMP. Sent once each:
    /// loopback does not lose them (a real gateway repeats them 10 times).
    fn send_announce(&self, targets: &[SocketAddr]) {
        let mode = self.shared.config.mode;
        let (pcp, natpmp, natpmp_clients) = {
            let st = self.state();
            let now = Instant::now();
            (st.unsolicited_announce(now), st.natpmp_announcement(now), st.known_natpmp_clients())
        };
        if mode.speaks_pcp() {
            for t in targets {
                let _ = self.shared.socket.send_to(&pcp, t);
            }
        }
        if let (true, Some(msg)) = (mode.speaks_natpmp(), natpmp) {
            let mut to = self.shared.config.announce_to.clone();
            if self.shared.config.announce_to_known_clients {
                to.extend(natpmp_clients);
            }
            for t in to {
                let _ = self.shared.socket.send_to(&msg, t);
            }
        }
    }

    /// The server's current epoch in seconds.
    pub fn epoch(&self) -> u32 {
        self.state().epoch(Instant::now())
    }

    /// Live mappings (MAP and PEER).
    pub fn mappings(&self) -> Vec<ServerMapping> {
        self.state().mappings(Instant::now())
    }

    /// How many mappings it holds now.
    pub fn mapping_count(&self) -> usize {
        self.mappings().len()
    }

    /// Requests received so far (including dropped ones).
    pub fn requests_received(&self) -> u64 {
        self.state().requests_received()
    }

    /// Stops the server; its port stops answering.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking receive.
        let wake = match self.addr {
            SocketAddr::V4(_) => UdpSocket::bind("127.0.0.1:0"),
            SocketAddr::V6(_) => UdpSocket::bind("[::1]:0"),
        };
        if let Ok(w) = wake {
            let mut to = self.addr;
            if to.ip().is_unspecified() {
                to.set_ip(if to.is_ipv4() { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { "::1".parse().expect("valid") });
            }
            let _ = w.send_to(&[0], to);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A PCP MAP or PEER request with a lifetime: what a hostile case answers.
fn creates_or_renews(data: &[u8]) -> bool {
    data.len() >= HEADER_SIZE && data[0] == VERSION && matches!(data[1], 1 | 2) && data[4..8] != [0, 0, 0, 0]
}

fn serve(shared: Arc<Shared>) {
    let mut rng = StdRng::from_os_rng();
    let mut buf = vec![0u8; MAX_MESSAGE_SIZE + 4];
    let mut delayed: Vec<(Instant, SocketAddr, Vec<u8>)> = Vec::new();
    let mut read_timeout: Option<Duration> = None;
    while !shared.stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        delayed.retain(|(at, to, msg)| {
            if *at <= now {
                let _ = shared.socket.send_to(msg, to);
                false
            } else {
                true
            }
        });
        let timeout =
            delayed.iter().map(|(at, _, _)| at.saturating_duration_since(now).max(Duration::from_millis(1))).min();
        if timeout != read_timeout {
            let _ = shared.socket.set_read_timeout(timeout);
            read_timeout = timeout;
        }
        let (n, from) = match shared.socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(_) => continue,
        };
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let now = Instant::now();
        let (drop_it, delay, forced, hostile, lose_answer) = {
            let mut f = shared.faults.lock().unwrap_or_else(|e| e.into_inner());
            let mut d = f.drop_next > 0;
            if d {
                f.drop_next -= 1;
            }
            let loss = f.loss;
            d |= loss > 0.0 && rng.random_bool(loss);
            let hostile = match f.hostile {
                Some(case) if creates_or_renews(&buf[..n]) => {
                    f.hostile_count += 1;
                    Some((case, f.hostile_count - 1))
                }
                _ => None,
            };
            (d, f.delay, f.forced, hostile, loss > 0.0 && rng.random_bool(loss))
        };
        let answer = {
            let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            st.count_request();
            if drop_it {
                continue;
            }
            st.handle(now, from, &buf[..n], forced)
        };
        if lose_answer {
            continue;
        }
        if let (Some(msg), Some((case, count))) = (&answer, hostile) {
            for c in hostile::craft(case, msg, count) {
                let socket = if c.from_other_port { &shared.other_socket } else { &shared.socket };
                let _ = socket.send_to(&c.bytes, from);
            }
            continue;
        }
        if let Some(msg) = answer {
            if delay.is_zero() {
                let _ = shared.socket.send_to(&msg, from);
            } else {
                delayed.push((now + delay, from, msg));
            }
        }
    }
}
