//! The engine with its sockets, beneath both the [`Client`](crate::Client)
//! (which adds a driver thread) and [`discovery`](crate::discovery) (which
//! probes several servers at once with one endpoint each): the UDP socket
//! towards the server, the ANNOUNCE listeners, and the settings that open
//! them ([`ClientConfig`]).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol as SockProtocol, Socket, Type};

use crate::engine::{Engine, EngineConfig, Event};
use crate::source_addr::{self, Reconnect, SourceResolver};
use crate::wire::MAX_MESSAGE_SIZE;
use crate::{Error, Result};

mod config;
pub(crate) mod socket;
#[cfg(test)]
mod tests;

pub use config::ClientConfig;
pub use socket::RawSocket;

/// The engine with its sockets, and no thread: for programs that run their
/// own event loop. Wait until one of [`Endpoint::fds`] is readable or
/// [`Endpoint::poll_timeout`] passes, then call [`Endpoint::process`] and
/// read [`Endpoint::poll_event`]. [`Client`](crate::Client) is this plus a
/// driver thread.
pub struct Endpoint {
    engine: Engine,
    /// Shared with the [`Client`](crate::Client)'s waiting callers, who
    /// read it without the endpoint.
    socket: Arc<UdpSocket>,
    announce: Option<UdpSocket>,
    /// NAT-PMP gateways from before RFC 6886 (the 2006 drafts) announce on
    /// port 5351 instead of 5350; opt-in (see `ClientConfig`).
    legacy_announce: Option<UdpSocket>,
    buf: Vec<u8>,
    /// How our source address is chosen, and so whether and how it is
    /// checked again (RFC 6887 section 11.5).
    source: Source,
    /// When the source address was last checked (see [`SOURCE_CHECK_INTERVAL`]).
    source_checked: Option<Instant>,
    /// Whether the main socket is connected to the server. It is not only
    /// after a move that could connect it neither from the new source nor
    /// back from the old one (no route at that moment); the next check
    /// (see [`Endpoint::handle_timeout`]) then connects it again, whatever
    /// the source (a pinned one too).
    connected: bool,
}

/// Where the client's source address (the Client IP field) comes from.
#[derive(Debug, Clone)]
enum Source {
    /// The configuration or the application named it: never checked.
    Pinned(IpAddr),
    /// The route to the server picks it: connect(2) without a bound address.
    Route,
    /// The server is link-local: a global (else ULA) address of its
    /// interface, chosen by [`source_addr::choose`] and bound explicitly.
    LinkLocal,
    /// A test's [`SourceResolver`] says it; bound explicitly.
    Resolver(SourceResolver),
}

/// The least time between two checks of our own address (before renewal
/// passes and after failed sends): each costs a few system calls, and a
/// network that is down must not make them a loop.
pub(crate) const SOURCE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

static ANNOUNCE_WARNED: AtomicBool = AtomicBool::new(false);

impl Endpoint {
    /// Opens a UDP socket towards the server (the kernel's route picks our
    /// source address, which becomes the Client IP field) and, if
    /// configured, the ANNOUNCE listener.
    pub fn new(config: &ClientConfig) -> Result<Endpoint> {
        config.validate()?;
        let server = config.server;
        let domain = Domain::for_address(server);
        let socket = Socket::new(domain, Type::DGRAM, Some(SockProtocol::UDP))?;
        let source = match (&config.local_addr, &config.source_resolver) {
            (Some(ip), _) => Source::Pinned(*ip),
            (None, Some(r)) => Source::Resolver(r.clone()),
            (None, None) if source_addr::is_link_local_server(server) => Source::LinkLocal,
            (None, None) => Source::Route,
        };
        let bind_ip = match wanted_source(&source, server) {
            Some(wanted) => wanted.map_err(source_error)?,
            None => match server {
                SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            },
        };
        socket.bind(&SocketAddr::new(bind_ip, 0).into())?;
        // Best effort: a larger buffer absorbs bursts of answers.
        let _ = socket.set_recv_buffer_size(1 << 20);
        socket.connect(&server.into())?;
        // Every read and send also says MSG_DONTWAIT where there is such a
        // flag; the socket's own mode is for those who watch the socket
        // (see `block_in_waits`).
        socket.set_nonblocking(true)?;
        let socket: UdpSocket = socket.into();
        let local = socket.local_addr()?;
        let client_addr = local.ip();

        let announce = if config.listen_announce {
            open_announce_listener(server, client_addr, config.announce_port)
        } else {
            None
        };
        // NAT-PMP is IPv4 only.
        let legacy_announce = match config.natpmp_legacy_announce_port {
            Some(port) if server.is_ipv4() => open_announce_listener(server, client_addr, port),
            _ => None,
        };

        let mut ec = EngineConfig::new(server, client_addr);
        ec.retransmit = config.retransmit;
        ec.max_in_flight = config.max_in_flight;
        ec.announce_delay_max = config.announce_delay_max;
        ec.renewal_retry_interval = config.renewal_retry_interval;
        ec.rng_seed = config.rng_seed;
        ec.probe_port = local.port();
        ec.protocol = config.protocol;
        Ok(Endpoint {
            engine: Engine::new(ec),
            socket: Arc::new(socket),
            announce,
            legacy_announce,
            buf: vec![0; MAX_MESSAGE_SIZE + 4],
            source,
            source_checked: None,
            connected: true,
        })
    }

    /// Runs the engine's due timers; first, if a renewal is due, checks
    /// that our address towards the server is still the one the engine
    /// names (RFC 6887 section 11.5: after renumbering the mappings are
    /// made again from the new address). At most once per
    /// `SOURCE_CHECK_INTERVAL`, and only when a renewal is due (a request
    /// that is not a renewal costs no extra system call) or the socket is
    /// not connected to the server after a failed move.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.source_check_allowed(now) && (!self.connected || self.engine.renewal_due(now)) {
            self.refresh_source(now);
        }
        self.engine.handle_timeout(now);
    }

    fn source_check_allowed(&self, now: Instant) -> bool {
        (!matches!(self.source, Source::Pinned(_)) || !self.connected)
            && self.source_checked.is_none_or(|t| now.saturating_duration_since(t) >= SOURCE_CHECK_INTERVAL)
    }

    /// Checks our address towards the server now: where the source would
    /// be chosen today (the route's pick, the link-local rule, a test's
    /// resolver), and if that is not the engine's Client IP, moves the
    /// socket there and tells the engine, which makes every mapping again
    /// from the new address and reports [`Event::InternalAddressChanged`].
    /// Returns whether the address changed. Nothing is sent to learn it;
    /// an address that cannot be resolved (no route now), or a move that
    /// cannot be made, changes nothing. A socket left unconnected by an
    /// earlier move is connected again here (to a pinned address too).
    pub fn refresh_source(&mut self, now: Instant) -> bool {
        self.source_checked = Some(now);
        let server = self.engine.server();
        let wanted = match &self.source {
            Source::Pinned(ip) if !self.connected => Ok(*ip),
            Source::Pinned(_) => return false,
            Source::Resolver(r) => r.resolve(server),
            Source::Route | Source::LinkLocal => source_addr::source_for(server),
        };
        let Ok(wanted) = wanted else { return false };
        if self.connected && same_addr(wanted, self.engine.client_addr()) {
            return false;
        }
        let bind = (!matches!(self.source, Source::Route)).then_some(wanted);
        let before = self.engine.client_addr();
        // A failed move has told the engine where the socket is, if anywhere.
        let _ = self.move_to(now, bind);
        !same_addr(before, self.engine.client_addr())
    }

    /// Sends from `addr` from now on (or from the route's choice again with
    /// `None`), whatever the route says: for an application that knows
    /// its address changed. Returns whether the Client IP changed. A move
    /// that cannot be made is an error and changes nothing (the client
    /// neither names nor is pinned to an address it does not send from):
    /// an address of the other family ([`Error::InvalidArgument`]), one
    /// this host lacks or that cannot reach the server now ([`Error::Io`],
    /// as from [`Endpoint::new`]), or, where a bound socket cannot be bound
    /// again (Windows, macOS, the BSDs; see `source_addr::reconnect`), any
    /// other explicit address than the socket's ([`Error::InvalidArgument`]).
    pub fn set_local_addr(&mut self, now: Instant, addr: Option<IpAddr>) -> Result<bool> {
        let server = self.engine.server();
        if let Some(ip) = addr {
            if ip.is_ipv4() != server.is_ipv4() {
                return Err(Error::invalid(format!("the local address {ip} is not of the server {server}'s family")));
            }
        }
        let source = match addr {
            Some(ip) => Source::Pinned(ip),
            None if source_addr::is_link_local_server(server) => Source::LinkLocal,
            None => Source::Route,
        };
        self.source_checked = Some(now);
        let bind = match (&source, addr) {
            (_, Some(ip)) => Some(ip),
            (Source::LinkLocal, None) => match source_addr::source_for(server) {
                Ok(ip) => Some(ip),
                // No address to move to now: the checks before renewals
                // look again.
                Err(_) => {
                    self.source = source;
                    return Ok(false);
                }
            },
            _ => None,
        };
        let changed = self.move_to(now, bind)?;
        self.source = source;
        Ok(changed)
    }

    /// Reconnects the main socket (from `bind`, or the route's choice) and
    /// hands its local address to the engine: the new one, or where a
    /// failed move left it (with the error).
    fn move_to(&mut self, now: Instant, bind: Option<IpAddr>) -> Result<bool> {
        let server = self.engine.server();
        let (local, error) = match source_addr::reconnect(&self.socket, server, bind) {
            Reconnect::Moved(local) => (local, None),
            Reconnect::Kept { local, why } => (local, Some(why)),
            Reconnect::Unconnected(why) => {
                self.connected = false;
                return Err(move_error(why));
            }
        };
        self.connected = true;
        let new = local.ip();
        // The disconnect may have given up the port (Linux does), also
        // when the socket went back to its old address.
        self.engine.set_probe_port(local.port());
        if let (Some(a), IpAddr::V4(l)) = (&self.announce, new) {
            if !l.is_loopback() {
                // Best effort, as at start: the group on the new address.
                let _ = a.join_multicast_v4(&Ipv4Addr::new(224, 0, 0, 1), &l);
            }
        }
        // The engine names the address the socket really sends from, even
        // after a failed move (usually the old one).
        let changed = self.engine.set_client_addr(now, new);
        match error {
            None => Ok(changed),
            Some(why) => Err(move_error(why)),
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Where waiting callers may sleep in recv(2) (see [`socket`]): makes
    /// the main socket blocking with a receive timeout of [`WAIT_SLICE`],
    /// for [`wait_for_datagram`]. A [`Client`](crate::Client) caller
    /// waiting for its answer then sleeps in recv(2) itself instead of a
    /// poll and then recv(2). Nothing else blocks on it, since every other
    /// read and send says MSG_DONTWAIT. Elsewhere the socket stays
    /// non-blocking.
    pub(crate) fn block_in_waits(&self) -> io::Result<()> {
        if socket::BLOCKING_READS {
            self.socket.set_read_timeout(Some(WAIT_SLICE))?;
        }
        socket::restore_blocking(&self.socket)
    }

    /// The main socket, for callers that wait on it without the endpoint.
    pub(crate) fn main_socket(&self) -> Arc<UdpSocket> {
        self.socket.clone()
    }

    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// The sockets to watch for readability (file descriptors on Unix,
    /// `SOCKET`s on Windows): the main one first, then the ANNOUNCE
    /// listeners if open.
    pub fn fds(&self) -> Vec<RawSocket> {
        let mut v = vec![socket::raw(&self.socket)];
        v.extend(self.announce.as_ref().map(socket::raw));
        v.extend(self.legacy_announce.as_ref().map(socket::raw));
        v
    }

    /// The sockets themselves, for registering with a poller.
    pub(crate) fn sockets(&self) -> impl Iterator<Item = &UdpSocket> {
        std::iter::once(&*self.socket).chain(self.announce.as_ref()).chain(self.legacy_announce.as_ref())
    }

    /// Closes the ANNOUNCE listeners, once the client is closed: it then
    /// keeps no well-known port bound (another client's socket on 5350
    /// could otherwise lose unicast announcements to it). `unregister` sees
    /// each first, to take it out of a poller.
    pub(crate) fn close_listeners(&mut self, mut unregister: impl FnMut(&UdpSocket)) {
        for listener in self.announce.take().into_iter().chain(self.legacy_announce.take()) {
            unregister(&listener);
        }
    }

    /// Whether the ANNOUNCE listener is open.
    pub fn listens_for_announce(&self) -> bool {
        self.announce.is_some()
    }

    /// Our address towards the server.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Reads what arrived, runs due timers and sends what the engine wants sent.
    pub fn process(&mut self, now: Instant) {
        self.receive(now);
        self.handle_timeout(now);
        self.flush(now);
    }

    /// Starts a request on the engine with `f` (`engine.map(now, spec)`,
    /// ...) and sends it at once, not at the next [`Endpoint::process`].
    pub fn submit<T>(&mut self, now: Instant, f: impl FnOnce(&mut Engine, Instant) -> T) -> T {
        let r = f(&mut self.engine, now);
        self.flush(now);
        r
    }

    /// [`Endpoint::process`], then every event it produced, in order: for
    /// a loop that hands them on after letting go of the endpoint (a
    /// callback may call it).
    pub fn process_events(&mut self, now: Instant) -> Vec<Event> {
        self.process(now);
        // Bounded: the engine's queue is finite and nothing adds to it meanwhile.
        std::iter::from_fn(|| self.engine.poll_event()).collect()
    }

    /// Sends every datagram the engine has queued.
    pub fn flush(&mut self, now: Instant) {
        // Bounded: each pass either sends or drops one queued datagram.
        while let Some(t) = self.engine.poll_transmit() {
            match socket::send_now(&self.socket, &t.payload) {
                Ok(_) => {}
                Err(e) if socket::is_unreachable(&e) => self.engine.handle_unreachable(now),
                // A full buffer: retransmission recovers.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // EADDRNOTAVAIL, ENETUNREACH, EINVAL...: perhaps our
                // address went away; check (rate-limited, so a network
                // that is down makes no loop). A change queues the
                // mappings again from the new address, sent by this loop.
                Err(_) => {
                    if self.source_check_allowed(now) {
                        self.refresh_source(now);
                    }
                }
            }
        }
    }

    /// Reads every datagram waiting on the sockets (non-blocking).
    pub fn receive(&mut self, now: Instant) {
        // Bounded: a socket buffer holds finitely many datagrams, and what
        // arrives after this many is read on the next readiness.
        self.receive_available(now, 1024);
        self.receive_announce(now);
    }

    /// Reads what waits on the main socket, up to `max` datagrams; returns
    /// how many came (an ICMP error counts).
    ///
    /// One recv per datagram, and one more that finds the socket empty.
    /// (recvmmsg(2) would read bursts in fewer calls on Linux, but the
    /// benchmarks showed no difference worth a second, Linux-only path:
    /// the work per answer is elsewhere.)
    pub fn receive_available(&mut self, now: Instant, max: usize) -> usize {
        let mut read = 0;
        while read < max {
            let received = socket::recv_now(&self.socket, &mut self.buf);
            let Self { engine, buf, .. } = self;
            if !handle_received(engine, now, received.map(|(n, from)| (&buf[..n], from))) {
                break;
            }
            read += 1;
        }
        read
    }

    /// A poller reported an error condition on the main socket (see
    /// [`socket::poll_reports_error`]): an ICMP error from the server. Reads
    /// first, as a read usually returns the error itself (or datagrams came
    /// too, and the server is there); if the read finds nothing, as under
    /// wine, the error counts as the server's port unreachable.
    pub(crate) fn socket_error_reported(&mut self, now: Instant) {
        if self.receive_available(now, 1024) == 0 {
            self.engine.handle_unreachable(now);
        }
    }

    /// Reads at most one datagram from the main socket; whether one came.
    /// (A caller waiting for its own answer stops as soon as it has it.)
    pub fn receive_one(&mut self, now: Instant) -> bool {
        let received = socket::recv_now(&self.socket, &mut self.buf);
        let Self { engine, buf, .. } = self;
        handle_received(engine, now, received.map(|(n, from)| (&buf[..n], from)))
    }

    /// What [`wait_for_datagram`] read, for the engine; whether it was a
    /// datagram or an error that counts (as for [`Endpoint::receive_one`]).
    pub(crate) fn take_datagram(&mut self, now: Instant, received: io::Result<(&[u8], SocketAddr)>) -> bool {
        handle_received(&mut self.engine, now, received)
    }

    /// When to call [`Endpoint::process`] next; now if events are waiting.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        if self.engine.has_events() {
            return Some(Instant::now());
        }
        self.engine.poll_timeout()
    }

    /// [`Endpoint::poll_timeout`] as poll(2) wants it: milliseconds from
    /// `now`, rounded up (so a loop never wakes a hair early and spins), 0
    /// if due, -1 for no deadline.
    pub fn timeout_ms(&mut self, now: Instant) -> i32 {
        if self.engine.has_events() {
            return 0;
        }
        self.engine.poll_timeout().map_or(-1, |t| ms_until(t, now))
    }

    /// Reads what arrived on the ANNOUNCE listener only.
    pub fn receive_announce(&mut self, now: Instant) {
        for a in self.announce.iter().chain(self.legacy_announce.iter()) {
            while let Ok((n, from)) = a.recv_from(&mut self.buf) {
                self.engine.handle_datagram(now, from, &self.buf[..n]);
            }
        }
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.engine.poll_event()
    }
}

/// How long [`wait_for_datagram`] blocks at most: the socket's receive
/// timeout, which the kernel rounds up to clock ticks (10 ms gave 15-16 ms).
pub(crate) const WAIT_SLICE: std::time::Duration = std::time::Duration::from_millis(10);

/// Blocks on the main socket (of an [`Endpoint`]) until a datagram or an
/// error arrives, for at most [`WAIT_SLICE`]; called without the endpoint
/// (and so without the client's lock): its length and where it came from.
/// A timeout or a signal gives `WouldBlock` (`TimedOut` on Windows) or
/// `Interrupted`. Only where [`socket::BLOCKING_READS`] holds.
pub(crate) fn wait_for_datagram(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    socket::recv_waiting(socket, buf)
}

/// Hands a read on the main socket to the engine: a datagram, or an ICMP
/// unreachable (see [`socket::is_unreachable`]). Whether anything came;
/// "nothing more" and other errors are not. The engine is told where the
/// datagram really came from, and drops it unless that is the server.
fn handle_received(engine: &mut Engine, now: Instant, received: io::Result<(&[u8], SocketAddr)>) -> bool {
    match received {
        Ok((data, from)) => {
            engine.handle_datagram(now, from, data);
            true
        }
        Err(e) if socket::is_unreachable(&e) => {
            engine.handle_unreachable(now);
            true
        }
        Err(_) => false,
    }
}

/// Binds the unsolicited-ANNOUNCE port with address reuse, so that several
/// clients on one host can all listen, and joins the all-hosts group.
fn open_announce_listener(server: SocketAddr, local: IpAddr, port: u16) -> Option<UdpSocket> {
    let result = (|| -> io::Result<UdpSocket> {
        let domain = Domain::for_address(server);
        let s = Socket::new(domain, Type::DGRAM, Some(SockProtocol::UDP))?;
        // Sharing the port: on Windows SO_REUSEADDR is what lets several
        // sockets bind one UDP port and all receive its multicast (there is
        // no SO_REUSEPORT); on Linux, macOS and the BSDs SO_REUSEPORT does
        // that, and SO_REUSEADDR alone is not enough.
        s.set_reuse_address(true)?;
        #[cfg(unix)]
        s.set_reuse_port(true)?;
        match server {
            SocketAddr::V4(_) => {
                s.bind(&SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port).into())?;
                if let IpAddr::V4(l) = local {
                    if !l.is_loopback() {
                        // Best effort: the group may be unavailable on this interface.
                        let _ = s.join_multicast_v4(&Ipv4Addr::new(224, 0, 0, 1), &l);
                    }
                }
            }
            SocketAddr::V6(v6) => {
                s.set_only_v6(true)?;
                s.bind(&SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port).into())?;
                let _ = s.join_multicast_v6(&"ff02::1".parse().expect("valid"), v6.scope_id());
            }
        }
        s.set_nonblocking(true)?;
        Ok(s.into())
    })();
    match result {
        Ok(s) => Some(s),
        Err(e) => {
            if !ANNOUNCE_WARNED.swap(true, Ordering::Relaxed) {
                eprintln!("pcp-rs: cannot listen for PCP ANNOUNCE on UDP port {port} ({e}); gateway reboots will be noticed at the next renewal instead");
            }
            None
        }
    }
}

/// Milliseconds from `now` until `t`, rounded up, for poll(2) and epoll(7).
pub(crate) fn ms_until(t: Instant, now: Instant) -> i32 {
    let d = t.saturating_duration_since(now);
    d.as_millis().saturating_add(u128::from(d.subsec_nanos() % 1_000_000 != 0)).min(i32::MAX as u128) as i32
}

/// Where the source should be now: `None` for the route's choice (nothing
/// to bind), else the address, or why there is none.
fn wanted_source(source: &Source, server: SocketAddr) -> Option<io::Result<IpAddr>> {
    match source {
        Source::Pinned(ip) => Some(Ok(*ip)),
        Source::Resolver(r) => Some(r.resolve(server)),
        Source::LinkLocal => Some(source_addr::source_for(server)),
        Source::Route => None,
    }
}

/// A move of the socket that could not be made, as the client's error:
/// what this platform cannot do is the caller's to change.
fn move_error(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::Unsupported => Error::invalid(e.to_string()),
        _ => Error::from(e),
    }
}

/// A source address that cannot be had, as the client's error.
fn source_error(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::InvalidInput | io::ErrorKind::AddrNotAvailable => Error::invalid(e.to_string()),
        _ => Error::from(e),
    }
}

/// Whether two addresses are one (an IPv4 address and its IPv4-mapped form are).
fn same_addr(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}
