//! The blocking, thread-safe client.
//!
//! A [`Client`] talks to one PCP server over one UDP socket. Any number of
//! threads may call it at once; their requests share the socket and are
//! matched by nonce and opcode. One driver thread per client sends,
//! retransmits and renews for every mapping: it sleeps until the engine's
//! next deadline, a datagram, or a new request.
//!
//! ```no_run
//! use pcp_core::{Client, MapSpec, Protocol};
//! let client = Client::connect("192.168.1.1")?;
//! client.on_event(|ev| println!("{ev:?}"));
//! let m = client.map_with(MapSpec::new(Protocol::UDP, 5000).external_port(5000).lifetime(600))?;
//! println!("{}:{} for {} s", m.external_addr(), m.external_port(), m.lifetime());
//! m.delete()?;
//! # Ok::<(), pcp_core::Error>(())
//! ```

mod address;
mod classic;
mod endpoint;
mod epoll;
mod pending;
pub mod wall_clock;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant};

pub use address::parse_server;
pub use endpoint::Endpoint;
pub use pending::Pending;

use pending::{pending, Completer, Drive};

use crate::engine::{
    Event, KeyMap, MapSpec, MappingId, MappingInfo, PeerSpec, ProtocolChoice, ProtocolVersion, RequestId,
    RetransmitPolicy,
};
use crate::wire::{Nonce, Opcode, Protocol, CLIENT_PORT};
use crate::{Error, Result};

/// Settings of a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub server: SocketAddr,
    /// Bind to this local address; by default the route to the server picks it.
    pub local_addr: Option<IpAddr>,
    /// Retransmission of requests: by default the RFC schedule with a 10 s deadline.
    pub retransmit: RetransmitPolicy,
    /// Requests on the wire at once (more wait their turn).
    pub max_in_flight: usize,
    /// Listen for unsolicited ANNOUNCE (UDP 5350, 224.0.0.1 / ff02::1).
    pub listen_announce: bool,
    pub announce_port: u16,
    pub announce_delay_max: Duration,
    /// Delete the client's mappings when it is closed (default true).
    pub delete_on_close: bool,
    /// How long closing may wait for the deletes to be answered.
    pub close_timeout: Duration,
    pub rng_seed: Option<[u8; 32]>,
    /// PCP with the NAT-PMP fallback (the default), PCP only or NAT-PMP only.
    pub protocol: ProtocolChoice,
    /// Also listen on this port (5351) for the announcements of NAT-PMP
    /// gateways from before RFC 6886, which multicast to 224.0.0.1:5351.
    /// Off by default: a port-5351 listener would stand in the way of a
    /// PCP or NAT-PMP server on this same host.
    pub natpmp_legacy_announce_port: Option<u16>,
}

impl ClientConfig {
    pub fn new(server: SocketAddr) -> Self {
        ClientConfig {
            server,
            local_addr: None,
            retransmit: RetransmitPolicy::default(),
            max_in_flight: 64,
            listen_announce: true,
            announce_port: CLIENT_PORT,
            announce_delay_max: Duration::from_secs(5),
            delete_on_close: true,
            close_timeout: Duration::from_secs(2),
            rng_seed: None,
            protocol: ProtocolChoice::Auto,
            natpmp_legacy_announce_port: None,
        }
    }

    /// Which protocols to speak (see [`ProtocolChoice`]).
    pub fn protocol(mut self, protocol: ProtocolChoice) -> Self {
        self.protocol = protocol;
        self
    }

    /// Gives up on a request after `deadline` (the RFC retransmission schedule inside it).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.retransmit.max_duration = Some(deadline);
        self
    }
}

type Handler = Arc<dyn Fn(&Event) + Send + Sync>;

/// Identifies a callback registered with [`Client::on_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HandlerId(u64);

enum Waiter {
    Map(Completer<Mapping>),
    Delete(Completer<()>),
    Announce(Completer<u32>),
    External(Completer<IpAddr>),
}

struct State {
    endpoint: Endpoint,
    waiters: KeyMap<u64, Waiter>,
    /// When the driver will wake by itself; `None` while it sleeps without a deadline.
    driver_deadline: Option<Instant>,
    closing: Option<Instant>,
    closed: bool,
    /// Events for the callbacks and channels, dispatched in order by the
    /// driver thread only (never on an application thread).
    deferred: Vec<Event>,
    /// Callers currently driving the engine themselves. While there are any,
    /// the main socket is disarmed in the driver's epoll set, so that an
    /// answer wakes only the caller waiting for it.
    co_drivers: usize,
    /// Whether the main socket is armed in the driver's epoll set.
    socket_armed: bool,
    /// When the driver re-arms the socket after the last caller left.
    /// Re-arming lazily spares a loop of blocking calls two epoll_ctl
    /// calls each; unsolicited datagrams wait at most `REARM_DELAY`.
    rearm_at: Option<Instant>,
    /// The waiting caller that reads the socket, sleeping in recv(2), known
    /// by its wake fd; see [`Wait`].
    reader: Option<RawFd>,
    /// The waiting callers that sleep on their wake fds while `reader`
    /// reads; it wakes one of them to take over when it leaves.
    followers: Vec<RawFd>,
    /// Event loops reading the socket themselves (`attach_reader`).
    attached: usize,
}

/// How a caller driving the engine waits for its answer.
///
/// One caller at a time, the reader, sleeps in recv(2) on the socket (for
/// at most `WAIT_SLICE`, to see its timers and a close): one system call
/// where poll(2) and then recv(2) would be two, and the kernel wakes it
/// straight into the read. The others (followers) sleep on their wake fds:
/// the reader completes their requests, which wakes them, and when it
/// leaves it wakes one of them to read in its place. A follower that read
/// the socket too could take the reader's answer while the reader sleeps on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Wait {
    Read,
    Follow,
    /// poll(2) on the socket and the wake fd: for waits shorter than three
    /// slices, while an event loop reads the socket too, or without a wake fd.
    Poll,
}

/// How long after the last driving caller leaves the driver thread takes
/// the main socket back.
const REARM_DELAY: Duration = Duration::from_millis(20);

struct Shared {
    state: Mutex<State>,
    wake_tx: UnixStream,
    handlers: RwLock<Vec<(HandlerId, Handler)>>,
    next_handler: std::sync::atomic::AtomicU64,
    subscribers: Mutex<Vec<mpsc::Sender<Event>>>,
    /// Whether anyone listens for events (callbacks or channels).
    listened: AtomicBool,
    /// How many times the driver thread has gone round its loop; tests
    /// bound it to catch a driver that spins instead of sleeping.
    driver_passes: AtomicU64,
    /// The endpoint's sockets (fixed for its life).
    fds: Vec<RawFd>,
    /// Ourselves, for handing out `Arc`s from `&self`.
    this: std::sync::Weak<Shared>,
    /// The driver thread's epoll set: the wake pipe, its timer and the sockets.
    epoll: std::os::fd::OwnedFd,
    /// The driver's alarm clock, set to its next deadline. Any thread can
    /// move it earlier (a new request's retransmission) without waking the
    /// driver now: the kernel wakes it when the time comes.
    timer: std::os::fd::OwnedFd,

    config: ClientConfig,
    driver: Mutex<Option<(JoinHandle<()>, ThreadId)>>,
    /// The classic API's calls in flight (see `classic.rs`).
    classic: classic::ClassicCalls,
}

/// Closes the client when the last [`Client`] handle goes.
struct Owner(Arc<Shared>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// A PCP client for one server. Cheap to clone; all clones share the
/// socket, the mappings and the driver thread. Closing (explicitly or by
/// dropping the last clone) deletes the mappings it made unless
/// [`ClientConfig::delete_on_close`] is off.
#[derive(Clone)]
pub struct Client {
    owner: Arc<Owner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("server", &self.owner.0.config.server).finish()
    }
}

impl Client {
    /// A client for the server at `server` (`"host"`, `"host:port"`, IPv4 or IPv6).
    pub fn connect(server: &str) -> Result<Client> {
        Client::new(ClientConfig::new(parse_server(server)?))
    }

    /// Finds the PCP server (see [`crate::discovery`]) and connects to it.
    pub fn discover() -> Result<Client> {
        Client::discover_with(&crate::discovery::DiscoveryConfig::default(), ClientConfig::new)
    }

    /// Discovers the server as `discovery` says, then connects with the
    /// configuration `config` makes for the server found.
    ///
    /// ```no_run
    /// use pcp_core::{Client, ClientConfig};
    /// use pcp_core::discovery::DiscoveryConfig;
    /// let client = Client::discover_with(&DiscoveryConfig::default(), |server| {
    ///     let mut c = ClientConfig::new(server);
    ///     c.delete_on_close = false;
    ///     c
    /// })?;
    /// # Ok::<(), pcp_core::Error>(())
    /// ```
    pub fn discover_with(
        discovery: &crate::discovery::DiscoveryConfig,
        config: impl FnOnce(SocketAddr) -> ClientConfig,
    ) -> Result<Client> {
        let found = crate::discovery::discover(discovery)?;
        Client::new(config(found.server))
    }

    pub fn new(config: ClientConfig) -> Result<Client> {
        let endpoint = Endpoint::new(&config)?;
        endpoint.block_in_waits()?;
        let fds = endpoint.fds();
        let (wake_tx, wake_rx) = UnixStream::pair()?;
        wake_tx.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        let epoll = epoll::create()?;
        let timer = epoll::timer()?;
        epoll::watch(&epoll, wake_rx.as_raw_fd(), true)?;
        epoll::watch(&epoll, timer.as_raw_fd(), true)?;
        for &fd in &fds {
            epoll::watch(&epoll, fd, true)?;
        }
        let shared = Arc::new_cyclic(|this| Shared {
            state: Mutex::new(State {
                endpoint,
                waiters: KeyMap::default(),
                driver_deadline: None,
                closing: None,
                closed: false,
                deferred: Vec::new(),
                co_drivers: 0,
                socket_armed: true,
                rearm_at: None,
                reader: None,
                followers: Vec::new(),
                attached: 0,
            }),
            wake_tx,
            handlers: RwLock::new(Vec::new()),
            next_handler: std::sync::atomic::AtomicU64::new(1),
            subscribers: Mutex::new(Vec::new()),
            listened: AtomicBool::new(false),
            driver_passes: AtomicU64::new(0),
            fds,
            this: this.clone(),
            epoll,
            timer,
            config,
            driver: Mutex::new(None),
            classic: Default::default(),
        });
        let driver_shared = shared.clone();
        let handle = thread::Builder::new().name("pcp-driver".into()).spawn(move || drive(driver_shared, wake_rx))?;
        let tid = handle.thread().id();
        *shared.driver.lock().expect("fresh") = Some((handle, tid));
        Ok(Client { owner: Arc::new(Owner(shared)) })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.owner.0
    }

    /// Starts a request and waits for it on this thread, which drives the
    /// engine meanwhile. The driver thread is kept off the socket from
    /// before the request is sent, so that the answer wakes only us.
    fn blocking<T>(&self, start: impl FnOnce() -> Pending<T>) -> Result<T> {
        self.shared().blocking(start)
    }

    /// The PCP server (the gateway, erlang-nat's `get_device_address`).
    pub fn gateway_address(&self) -> SocketAddr {
        self.shared().config.server
    }

    /// Our address towards the server (`get_internal_address`); also the
    /// Client IP field of every request.
    pub fn internal_address(&self) -> IpAddr {
        self.shared().lock().endpoint.engine().client_addr()
    }

    /// The server's last reported epoch.
    pub fn server_epoch(&self) -> Option<u32> {
        self.shared().lock().endpoint.engine().server_epoch()
    }

    /// The protocol new requests use now: PCP, or NAT-PMP after the
    /// gateway said it speaks only that (RFC 6887 section 9).
    pub fn protocol_version(&self) -> ProtocolVersion {
        self.shared().lock().endpoint.engine().protocol_version()
    }

    /// Whether the client listens for unsolicited ANNOUNCE.
    pub fn listens_for_announce(&self) -> bool {
        self.shared().lock().endpoint.listens_for_announce()
    }

    /// Maps `internal_port` for `protocol`: any external port, 3600 s.
    pub fn map(&self, protocol: Protocol, internal_port: u16) -> Result<Mapping> {
        self.map_with(MapSpec::new(protocol, internal_port))
    }

    /// Maps as the spec says, and waits for the answer.
    pub fn map_with(&self, spec: MapSpec) -> Result<Mapping> {
        self.blocking(|| self.map_async(spec))
    }

    /// Starts a MAP request and returns at once.
    pub fn map_async(&self, spec: MapSpec) -> Pending<Mapping> {
        self.start_mapping(|engine, now| engine.map(now, spec))
    }

    /// Asks for a PEER mapping and waits.
    pub fn peer(&self, spec: PeerSpec) -> Result<Mapping> {
        self.blocking(|| self.peer_async(spec))
    }

    pub fn peer_async(&self, spec: PeerSpec) -> Pending<Mapping> {
        self.start_mapping(|engine, now| engine.peer(now, spec))
    }

    fn start_mapping(
        &self,
        start: impl FnOnce(&mut crate::engine::Engine, Instant) -> Result<MappingId>,
    ) -> Pending<Mapping> {
        let shared = self.shared().clone();
        let (p, c) = pending();
        let id = shared.submit(false, |st, now| {
            let id = start(st.endpoint.engine_mut(), now)?;
            st.waiters.insert(id.0, Waiter::Map(c));
            Ok(id)
        });
        match id {
            Ok(id) => {
                let weak = Arc::downgrade(&shared);
                p.with_driver(shared.clone()).with_cancel(move || {
                    if let Some(s) = weak.upgrade() {
                        let _ = s.submit(true, |st, now| st.endpoint.engine_mut().delete(now, id));
                    }
                })
            }
            Err(e) => Pending::ready(Err(e)),
        }
    }

    /// Deletes a mapping (lifetime 0 with its nonce) and waits for the answer.
    pub fn delete(&self, id: MappingId) -> Result<()> {
        self.blocking(|| self.delete_async(id))
    }

    pub fn delete_async(&self, id: MappingId) -> Pending<()> {
        self.shared().delete_async(id)
    }

    /// Deletes a mapping this client did not make, known by its nonce (the
    /// CLI's `pcp delete` uses the nonce `pcp map` recorded).
    pub fn delete_by_nonce(&self, protocol: Protocol, internal_port: u16, nonce: Nonce) -> Result<()> {
        self.blocking(|| self.delete_by_nonce_async(protocol, internal_port, nonce))
    }

    pub fn delete_by_nonce_async(&self, protocol: Protocol, internal_port: u16, nonce: Nonce) -> Pending<()> {
        let (p, c) = pending();
        match self.shared().submit(false, |st, now| {
            let id =
                st.endpoint.engine_mut().delete_by_nonce(now, MapSpec::new(protocol, internal_port).nonce(nonce))?;
            st.waiters.insert(id.0, Waiter::Delete(c));
            Ok(())
        }) {
            Ok(()) => p.with_driver(self.shared().clone()),
            Err(e) => Pending::ready(Err(e)),
        }
    }

    /// Sends ANNOUNCE and returns the server's epoch.
    pub fn announce(&self) -> Result<u32> {
        self.blocking(|| self.announce_async())
    }

    pub fn announce_async(&self) -> Pending<u32> {
        let (p, c) = pending();
        match self.shared().submit(false, |st, now| {
            let id = st.endpoint.engine_mut().announce(now, None);
            st.waiters.insert(id.0, Waiter::Announce(c));
            Ok(id)
        }) {
            Ok(id) => p.with_driver(self.shared().clone()).with_cancel(self.request_canceller(id)),
            Err(e) => Pending::ready(Err(e)),
        }
    }

    /// The external address of the gateway (`get_external_address`).
    pub fn external_address(&self) -> Result<IpAddr> {
        self.blocking(|| self.external_address_async())
    }

    pub fn external_address_async(&self) -> Pending<IpAddr> {
        let (p, c) = pending();
        match self.shared().submit(false, |st, now| {
            let id = st.endpoint.engine_mut().request_external_addr(now, None)?;
            st.waiters.insert(id.0, Waiter::External(c));
            Ok(id)
        }) {
            Ok(id) => p.with_driver(self.shared().clone()).with_cancel(self.request_canceller(id)),
            Err(e) => Pending::ready(Err(e)),
        }
    }

    fn request_canceller(&self, id: RequestId) -> impl Fn() + Send + Sync + 'static {
        let weak = Arc::downgrade(self.shared());
        move || {
            if let Some(s) = weak.upgrade() {
                let _ = s.submit(true, |st, now| {
                    st.endpoint.engine_mut().cancel(now, id);
                    Ok(())
                });
            }
        }
    }

    /// For event-loop integrations (libuv, asyncio): the socket whose
    /// readability means answers are waiting. After [`Client::attach_reader`],
    /// watch it in your loop and call [`Client::process_ready`] when it is
    /// readable: answers are then read and requests completed on your loop's
    /// thread, with no hop through the driver thread. Timers (retransmission,
    /// renewal) stay with the driver thread.
    pub fn reader_fd(&self) -> RawFd {
        self.shared().fds[0]
    }

    /// Takes the socket over from the driver thread until
    /// [`Client::detach_reader`]; calls nest. See [`Client::reader_fd`].
    pub fn attach_reader(&self) {
        let shared = self.shared();
        shared.lock().attached += 1;
        shared.co_driving(true);
    }

    /// Gives the socket back to the driver thread.
    pub fn detach_reader(&self) {
        let shared = self.shared();
        {
            let mut st = shared.lock();
            st.attached = st.attached.saturating_sub(1);
            if st.attached == 0 {
                // An event loop may have made it non-blocking (libuv's poll
                // handle does); a waiting caller's recv(2) needs it blocking.
                let _ = endpoint::set_blocking(shared.fds[0]);
            }
        }
        shared.co_driving(false);
    }

    /// Reads every answer waiting on the socket, runs due timers, and
    /// completes the requests they finish, on the calling thread (their
    /// callbacks and wakers run here). Never blocks. Returns how many
    /// datagrams it read.
    pub fn process_ready(&self) -> usize {
        let shared = self.shared();
        let now = Instant::now();
        let (done, read) = {
            let mut st = shared.lock();
            // Bounded: a socket buffer holds finitely many datagrams, and a
            // burst larger than this is finished by the next readiness.
            let read = st.endpoint.receive_available(now, 1024);
            st.endpoint.engine_mut().handle_timeout(now);
            st.endpoint.flush(now);
            (shared.settle(&mut st), read)
        };
        shared.complete_all(done);
        shared.plan();
        read
    }

    /// How many mappings this client holds (granted, or being requested or
    /// renewed); cheaper than `mappings().len()`.
    pub fn mapping_count(&self) -> usize {
        self.shared().lock().endpoint.engine().mapping_count()
    }

    /// The mappings this client holds.
    pub fn mappings(&self) -> Vec<Mapping> {
        let st = self.shared().lock();
        st.endpoint
            .engine()
            .mappings()
            .map(|info| Mapping { shared: self.shared().clone(), info: info.clone() })
            .collect()
    }

    /// A mapping by id, if the client still holds it.
    pub fn mapping(&self, id: MappingId) -> Option<Mapping> {
        let st = self.shared().lock();
        let info = st.endpoint.engine().mapping(id)?.clone();
        Some(Mapping { shared: self.shared().clone(), info })
    }

    /// The MAP mapping this client holds for `protocol` and `internal_port`
    /// (what the classic `delete_mapping(internal_port, protocol)` deletes).
    pub fn find_mapping(&self, protocol: Protocol, internal_port: u16) -> Option<Mapping> {
        let info = self.shared().lock().endpoint.engine().find_map(protocol, internal_port)?.clone();
        Some(Mapping { shared: self.shared().clone(), info })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.shared().config
    }

    /// Calls `f` for every event, always on the client's driver thread
    /// (never on a thread that called the client). It may run at the same
    /// time as calls on other threads, and may call the client itself.
    pub fn on_event(&self, f: impl Fn(&Event) + Send + Sync + 'static) -> HandlerId {
        let id = HandlerId(self.shared().next_handler.fetch_add(1, Ordering::Relaxed));
        self.shared().handlers.write().unwrap_or_else(|e| e.into_inner()).push((id, Arc::new(f)));
        self.shared().listened.store(true, Ordering::Release);
        id
    }

    /// Unregisters a callback; it is not called again once this returns
    /// (unless it is running right now on the driver thread). Returns
    /// whether it was registered.
    pub fn remove_event_handler(&self, id: HandlerId) -> bool {
        let mut handlers = self.shared().handlers.write().unwrap_or_else(|e| e.into_inner());
        let before = handlers.len();
        handlers.retain(|(h, _)| *h != id);
        before != handlers.len()
    }

    /// A channel that receives every event from now on.
    pub fn events(&self) -> mpsc::Receiver<Event> {
        let (tx, rx) = mpsc::channel();
        self.shared().subscribers.lock().unwrap_or_else(|e| e.into_inner()).push(tx);
        self.shared().listened.store(true, Ordering::Release);
        rx
    }

    /// Deletes the client's mappings (unless configured not to; waits at most
    /// [`ClientConfig::close_timeout`]) and stops the driver. Further calls
    /// fail with [`Error::Closed`]. Idempotent.
    pub fn close(&self) {
        self.shared().close();
    }

    /// Stops without deleting: the mappings stay on the server until their
    /// lifetimes run out.
    pub fn close_keep(&self) {
        self.shared().close_with(false);
    }

    pub fn is_closed(&self) -> bool {
        self.shared().lock().closed
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake(&self) {
        let _ = (&self.wake_tx).write(&[1]);
    }

    /// Runs `f` on the state and sends what it queued. The driver thread is
    /// not woken here: a caller that waits drives the engine itself, and a
    /// [`Pending`] hands over to the driver when nobody waits on it. Calls
    /// that return no `Pending` pass `kick`.
    fn submit<T>(&self, kick: bool, f: impl FnOnce(&mut State, Instant) -> Result<T>) -> Result<T> {
        let now = Instant::now();
        let mut st = self.lock();
        if st.closed || st.closing.is_some() {
            return Err(Error::Closed);
        }
        let out = f(&mut st, now)?;
        st.endpoint.flush(now);
        drop(st);
        if kick {
            self.plan();
        }
        Ok(out)
    }

    /// Moves the driver's alarm earlier if the engine's next deadline is
    /// before it (no wake-up needed), and wakes the driver if it has events
    /// or results to deliver.
    fn plan(&self) {
        let mut st = self.lock();
        let next = st.endpoint.poll_timeout();
        let late = match (next, st.driver_deadline) {
            (Some(n), Some(d)) => n < d,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if late {
            st.driver_deadline = next;
            epoll::set_timer(&self.timer, next);
        }
        let wake = !st.deferred.is_empty() || st.endpoint.engine().has_events();
        drop(st);
        if wake {
            self.wake();
        }
    }

    /// Moves the engine's events out: results for their waiters, and (when
    /// anyone listens) a copy for the callbacks, queued for the driver.
    fn settle(&self, st: &mut State) -> Vec<(Waiter, Event)> {
        let listened = self.listened.load(Ordering::Acquire);
        let mut done = Vec::new();
        while let Some(ev) = st.endpoint.poll_event() {
            // A delete completes a Delete waiter; a cancelled map's Failed
            // completes the Map waiter, and its later Deleted nothing.
            let waiter = waiter_key(&ev).and_then(|k| match (&ev, st.waiters.get(&k)) {
                (Event::Deleted { .. }, Some(Waiter::Delete(_)))
                | (Event::Failed { .. } | Event::Granted(_), Some(Waiter::Map(_)))
                | (Event::Announced { .. }, Some(Waiter::Announce(_)))
                | (Event::ExternalAddress { .. }, Some(Waiter::External(_))) => st.waiters.remove(&k),
                _ => None,
            });
            if listened {
                st.deferred.push(ev.clone());
            }
            if let Some(w) = waiter {
                done.push((w, ev));
            }
        }
        done
    }

    fn complete_all(self: &Arc<Self>, done: Vec<(Waiter, Event)>) {
        for (w, ev) in done {
            // A panicking on_complete callback or waker must not unwind
            // through whichever caller happened to read the answer.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| complete(self, w, &ev)));
        }
    }

    /// Delivers queued events to the callbacks and channels (driver thread only).
    fn dispatch_deferred(&self) {
        let events = std::mem::take(&mut self.lock().deferred);
        if events.is_empty() {
            return;
        }
        for event in events {
            // Read per event, so a handler removed by another one is not called again.
            let handlers: Vec<Handler> =
                self.handlers.read().unwrap_or_else(|e| e.into_inner()).iter().map(|(_, h)| h.clone()).collect();
            for h in &handlers {
                // A panicking user callback must not take the driver down.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h(&event)));
            }
            let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
            subs.retain(|tx| tx.send(event.clone()).is_ok());
        }
    }

    /// See [`Client::blocking`].
    fn blocking<T>(&self, start: impl FnOnce() -> Pending<T>) -> Result<T> {
        struct Counted<'a>(&'a Shared);
        impl Drop for Counted<'_> {
            fn drop(&mut self) {
                self.0.co_driving(false);
            }
        }
        self.co_driving(true);
        let _counted = Counted(self);
        start().wait()
    }

    /// Counts a caller in or out of driving the engine itself. The first in
    /// disarms the main socket in the driver's epoll set (it takes effect
    /// even while the driver waits); the last out asks the driver, through
    /// its timer, to take the socket back shortly.
    fn co_driving(&self, entering: bool) {
        let mut st = self.lock();
        if entering {
            st.co_drivers += 1;
            if st.socket_armed {
                let _ = epoll::arm(&self.epoll, self.fds[0], false);
                st.socket_armed = false;
            }
            return;
        }
        st.co_drivers = st.co_drivers.saturating_sub(1);
        if st.co_drivers == 0 && !st.socket_armed && st.rearm_at.is_none() {
            let at = Instant::now() + REARM_DELAY;
            st.rearm_at = Some(at);
            if st.driver_deadline.is_none_or(|d| at < d) {
                st.driver_deadline = Some(at);
                epoll::set_timer(&self.timer, Some(at));
            }
        }
    }

    fn delete_async(self: &Arc<Self>, id: MappingId) -> Pending<()> {
        let (p, c) = pending();
        match self.submit(false, |st, now| {
            st.endpoint.engine_mut().delete(now, id)?;
            st.waiters.insert(id.0, Waiter::Delete(c));
            Ok(())
        }) {
            Ok(()) => p.with_driver(self.clone()),
            Err(e) => Pending::ready(Err(e)),
        }
    }

    fn close(&self) {
        self.close_with(self.config.delete_on_close);
    }

    fn close_with(&self, delete: bool) {
        {
            let now = Instant::now();
            let mut st = self.lock();
            if st.closed || st.closing.is_some() {
                drop(st);
                self.join_driver();
                return;
            }
            for id in st.endpoint.engine().mapping_ids() {
                if delete {
                    let _ = st.endpoint.engine_mut().delete(now, id);
                } else {
                    st.endpoint.engine_mut().forget(now, id);
                }
            }
            st.endpoint.flush(now);
            st.closing = Some(now + self.config.close_timeout);
        }
        self.wake();
        self.join_driver();
    }

    fn join_driver(&self) {
        let taken = {
            let mut d = self.driver.lock().unwrap_or_else(|e| e.into_inner());
            match &*d {
                // Closing from a callback on the driver thread: it ends by itself.
                Some((_, tid)) if *tid == thread::current().id() => None,
                _ => d.take(),
            }
        };
        if let Some((h, _)) = taken {
            let _ = h.join();
        }
    }
}

impl Shared {
    /// How the caller with wake fd `me` waits next, for `remaining` at most;
    /// takes or joins the roles of [`Wait`].
    fn choose_wait(st: &mut State, me: Option<RawFd>, remaining: Duration) -> Wait {
        let Some(me) = me else { return Wait::Poll };
        // Sleeping in recv(2) only when three slices remain: the receive
        // timeout counts in clock ticks and may run several milliseconds
        // over (10 ms gave 15-16 ms here); poll(2) keeps a deadline exact.
        let long = remaining >= 3 * endpoint::WAIT_SLICE;
        match st.reader {
            Some(r) if r == me => {
                if long && st.attached == 0 {
                    Wait::Read
                } else {
                    Wait::Poll
                }
            }
            Some(_) => {
                if !st.followers.contains(&me) {
                    st.followers.push(me);
                }
                Wait::Follow
            }
            None if st.attached == 0 && long => {
                st.reader = Some(me);
                st.followers.retain(|&f| f != me);
                Wait::Read
            }
            None => Wait::Poll,
        }
    }

    /// The caller with wake fd `me` stops reading (it leaves, or is about
    /// to run callbacks that may block): if then nobody reads, a follower
    /// is woken to read in its place. Any caller leaving does this, not only
    /// the reader: a follower woken to take over may finish instead.
    fn stop_reading(st: &mut State, me: Option<RawFd>, leaving: bool) {
        if let Some(me) = me {
            if leaving {
                st.followers.retain(|&f| f != me);
            }
            if st.reader == Some(me) {
                st.reader = None;
            }
        }
        if st.reader.is_none() {
            if let Some(next) = st.followers.pop() {
                let one = 1u64;
                // SAFETY: writes 8 bytes to the follower's eventfd, open while
                // it is listed (it unlists itself, under this lock, before
                // its thread can end, even by a panic: see `Driving`).
                unsafe { libc::write(next, (&one as *const u64).cast(), 8) };
            }
        }
    }
}

/// A caller driving the engine: undoes its part when it leaves, however it
/// leaves (a panicking callback included), so that the others do not wait
/// for a reader that is gone.
struct Driving<'a> {
    shared: &'a Shared,
    me: Option<RawFd>,
}

impl Drop for Driving<'_> {
    fn drop(&mut self) {
        Shared::stop_reading(&mut self.shared.lock(), self.me, true);
        self.shared.co_driving(false);
        // Events for the callbacks, or timers the driver does not know of yet.
        self.shared.plan();
    }
}

impl Drive for Shared {
    fn drive(&self, until: Option<Instant>, done: &dyn Fn() -> bool, wake_fd: Option<RawFd>) {
        let Some(this) = self.this.upgrade() else { return };
        self.co_driving(true);
        let _driving = Driving { shared: self, me: wake_fd };
        let socket = self.fds[0];
        let mut buf = [0u8; crate::wire::MAX_MESSAGE_SIZE + 4];
        // What the last recv(2) as reader got, for the next pass.
        let mut received: Option<(Instant, std::io::Result<usize>)> = None;
        // The first pass does not read: the request was just sent, so its
        // answer is not there yet (the wait below sees it when it comes).
        let mut first = true;
        // Bounded: each pass waits at most until the engine's next deadline,
        // `until`, or 100 ms (a slice as reader) to notice a close, and
        // stops once `done`.
        loop {
            let now = Instant::now();
            let (finished, next, got) = {
                let mut st = self.lock();
                // Before a close is seen: it may be the answer to a delete
                // that the close waits for.
                let taken = received.take().map(|(at, r)| st.endpoint.take_datagram(at, r.map(|n| &buf[..n])));
                if st.closed || st.closing.is_some() {
                    break;
                }
                let got = match taken {
                    Some(got) => got,
                    // Followers leave the socket to the reader.
                    None => !first && st.reader.is_none_or(|r| Some(r) == wake_fd) && st.endpoint.receive_one(now),
                };
                st.endpoint.engine_mut().handle_timeout(now);
                st.endpoint.flush(now);
                let finished = self.settle(&mut st);
                if !finished.is_empty() {
                    // Completing runs other callers' callbacks and wakers here,
                    // which may block: nobody must wait for this thread to read.
                    Self::stop_reading(&mut st, wake_fd, false);
                }
                (finished, st.endpoint.poll_timeout(), got)
            };
            first = false;
            this.complete_all(finished);
            if done() || until.is_some_and(|u| now >= u) {
                break;
            }
            if got {
                continue; // more may be queued
            }
            let mut wait_until = now + Duration::from_millis(100);
            for t in [next, until].into_iter().flatten() {
                wait_until = wait_until.min(t);
            }
            let wait = Self::choose_wait(&mut self.lock(), wake_fd, wait_until.saturating_duration_since(now));
            match wait {
                Wait::Read => {
                    let started = Instant::now();
                    let r = endpoint::wait_for_datagram(socket, &mut buf);
                    match &r {
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            // Back at once: someone made the socket non-blocking
                            // (an event loop's poll handle does). Make it block
                            // again rather than spin.
                            if started.elapsed() < endpoint::WAIT_SLICE / 2 {
                                let _ = endpoint::set_blocking(socket);
                            }
                        }
                        _ => received = Some((Instant::now(), r)),
                    }
                }
                Wait::Follow | Wait::Poll => {
                    // A follower leaves the socket out (-1: poll(2) skips it).
                    let socket = if wait == Wait::Poll { socket } else { -1 };
                    let mut fds =
                        [socket, wake_fd.unwrap_or(-1)].map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 });
                    // SAFETY: `fds` is a valid array of two pollfd.
                    unsafe { libc::poll(fds.as_mut_ptr(), 2, poll_ms(wait_until)) };
                    if fds[1].fd >= 0 && fds[1].revents != 0 {
                        epoll::clear(fds[1].fd);
                    }
                }
            }
        }
    }

    fn kick(&self) {
        self.plan();
    }
}

/// Milliseconds until `t` for poll(2), rounded up so we never wake a hair
/// early and spin.
fn poll_ms(t: Instant) -> libc::c_int {
    endpoint::ms_until(t, Instant::now())
}

fn complete(shared: &Arc<Shared>, waiter: Waiter, event: &Event) {
    match (waiter, event) {
        (Waiter::Map(c), Event::Granted(info)) => {
            c.complete(Ok(Mapping { shared: shared.clone(), info: info.clone() }))
        }
        (Waiter::Map(c), Event::Failed { error, .. }) => c.complete(Err(error.clone())),
        (Waiter::Delete(c), Event::Deleted { result, .. }) => c.complete(result.clone()),
        (Waiter::Announce(c), Event::Announced { result, .. }) => c.complete(result.clone()),
        (Waiter::External(c), Event::ExternalAddress { result, .. }) => c.complete(result.clone()),
        (w, _) => fail_waiter(w, Error::BadResponse("unexpected completion".into())),
    }
}

fn fail_waiter(w: Waiter, e: Error) {
    match w {
        Waiter::Map(c) => c.complete(Err(e)),
        Waiter::Delete(c) => c.complete(Err(e)),
        Waiter::Announce(c) => c.complete(Err(e)),
        Waiter::External(c) => c.complete(Err(e)),
    }
}

/// Which waiter an event completes.
fn waiter_key(event: &Event) -> Option<u64> {
    match event {
        Event::Granted(info) => Some(info.id.0),
        Event::Failed { id, .. } => Some(id.0),
        Event::Deleted { id, .. } => Some(id.0),
        Event::Announced { id, .. } | Event::ExternalAddress { id, .. } => Some(id.0),
        _ => None,
    }
}

fn drive(shared: Arc<Shared>, mut wake_rx: UnixStream) {
    let mut ready = Vec::new();
    loop {
        shared.driver_passes.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let (finished_waiters, finished) = {
            let mut st = shared.lock();
            if st.rearm_at.is_some_and(|t| t <= now) {
                // Due: take the socket back, unless callers drive again by
                // now. Then the last of them to leave sets a new time;
                // keeping this past one would make the timer fire at once,
                // over and over, while they drive.
                st.rearm_at = None;
            }
            if st.co_drivers == 0 && !st.socket_armed && st.rearm_at.is_none() {
                let _ = epoll::arm(&shared.epoll, shared.fds[0], true);
                st.socket_armed = true;
            }
            if !st.socket_armed {
                // The main socket is theirs for now: reading it here could
                // take the answer a caller is waiting for from under it.
                st.endpoint.receive_announce(now);
                st.endpoint.engine_mut().handle_timeout(now);
                st.endpoint.flush(now);
            } else {
                st.endpoint.process(now);
            }
            let done = shared.settle(&mut st);
            let next = st.endpoint.poll_timeout();
            let finished = match st.closing {
                Some(deadline) => st.endpoint.engine().is_idle() || now >= deadline,
                None => false,
            };
            let mut next = next;
            for t in [st.closing, st.rearm_at].into_iter().flatten() {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
            st.driver_deadline = next;
            epoll::set_timer(&shared.timer, next);
            (done, finished)
        };
        shared.complete_all(finished_waiters);
        shared.dispatch_deferred();
        if finished {
            let waiters: Vec<Waiter> = {
                let mut st = shared.lock();
                st.closed = true;
                st.waiters.drain().map(|(_, w)| w).collect()
            };
            for w in waiters {
                fail_waiter(w, Error::Closed);
            }
            return;
        }
        // No timeout: the timer fires at the deadline (or earlier if another
        // thread moved it).
        epoll::wait(&shared.epoll, &mut ready);
        if ready.contains(&wake_rx.as_raw_fd()) {
            let mut buf = [0u8; 256];
            while matches!(wake_rx.read(&mut buf), Ok(n) if n > 0) {}
        }
        if ready.contains(&shared.timer.as_raw_fd()) {
            epoll::clear(shared.timer.as_raw_fd());
        }
    }
}

/// A mapping held by a [`Client`]. Cloning gives another handle to the same
/// mapping. The snapshot fields are as of when the handle was made;
/// [`Mapping::refresh`] reads the current state (renewals may change the
/// external port, for example after a gateway reboot).
#[derive(Clone)]
pub struct Mapping {
    shared: Arc<Shared>,
    info: MappingInfo,
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.info.fmt(f)
    }
}

impl Mapping {
    pub fn id(&self) -> MappingId {
        self.info.id
    }

    /// PCP or NAT-PMP: what the gateway granted this mapping with.
    pub fn protocol_version(&self) -> ProtocolVersion {
        self.info().version
    }

    pub fn info(&self) -> &MappingInfo {
        &self.info
    }

    pub fn opcode(&self) -> Opcode {
        self.info.opcode
    }

    pub fn protocol(&self) -> Protocol {
        self.info.protocol
    }

    pub fn internal_port(&self) -> u16 {
        self.info.internal_port
    }

    pub fn internal_addr(&self) -> IpAddr {
        self.info.internal_addr
    }

    pub fn external_addr(&self) -> IpAddr {
        self.info.external_addr
    }

    pub fn external_port(&self) -> u16 {
        self.info.external_port
    }

    pub fn lifetime(&self) -> u32 {
        self.info.lifetime
    }

    pub fn epoch(&self) -> u32 {
        self.info.epoch
    }

    pub fn nonce(&self) -> Nonce {
        self.info.nonce
    }

    pub fn remote(&self) -> Option<(IpAddr, u16)> {
        self.info.remote
    }

    /// Updates the snapshot from the client; false if the mapping is gone.
    pub fn refresh(&mut self) -> bool {
        match self.shared.lock().endpoint.engine().mapping(self.info.id) {
            Some(i) => {
                self.info = i.clone();
                true
            }
            None => false,
        }
    }

    /// Whether the client still holds the mapping.
    pub fn is_active(&self) -> bool {
        self.shared.lock().endpoint.engine().mapping(self.info.id).is_some()
    }

    /// Deletes the mapping on the server and waits for the answer.
    pub fn delete(&self) -> Result<()> {
        self.shared.blocking(|| self.delete_async())
    }

    pub fn delete_async(&self) -> Pending<()> {
        self.shared.delete_async(self.info.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Server;

    fn eventfd() -> std::os::fd::OwnedFd {
        use std::os::fd::FromRawFd;
        // SAFETY: plain syscall; checked below, then owned by the OwnedFd.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: fresh descriptor.
        unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
    }

    fn woken(fd: RawFd) -> bool {
        let mut n = 0u64;
        // SAFETY: reads 8 bytes from a nonblocking eventfd into `n`.
        unsafe { libc::read(fd, (&mut n as *mut u64).cast(), 8) == 8 }
    }

    /// A client to try the waiting roles on.
    fn role_client() -> (Server, Client) {
        let server = Server::start_local().unwrap();
        let client = Client::new(ClientConfig::new(server.local_addr())).unwrap();
        (server, client)
    }

    /// Three waiting callers' wake fds (open while the first part lives).
    fn three_callers() -> ([std::os::fd::OwnedFd; 3], [Option<RawFd>; 3]) {
        let fds = [eventfd(), eventfd(), eventfd()];
        let raw = [0, 1, 2].map(|i| Some(fds[i].as_raw_fd()));
        (fds, raw)
    }

    #[test]
    fn one_waiting_caller_reads_and_hands_the_socket_on() {
        let (_server, client) = role_client();
        let mut st = client.owner.0.lock();
        let (_fds, [a, b, c]) = three_callers();
        let long = Duration::from_secs(1);
        // Too short a wait to sleep three slices in recv(2), or no wake fd: poll(2).
        assert_eq!(Shared::choose_wait(&mut st, a, endpoint::WAIT_SLICE), Wait::Poll);
        assert_eq!(Shared::choose_wait(&mut st, None, long), Wait::Poll);
        assert_eq!(st.reader, None);
        // The first to wait long reads; the others follow.
        assert_eq!(Shared::choose_wait(&mut st, a, long), Wait::Read);
        assert_eq!(Shared::choose_wait(&mut st, b, long), Wait::Follow);
        assert_eq!(Shared::choose_wait(&mut st, c, long), Wait::Follow);
        assert_eq!(Shared::choose_wait(&mut st, b, long), Wait::Follow);
        assert_eq!(st.followers.len(), 2, "listed once each");
        // A follower that leaves is unlisted and wakes nobody.
        Shared::stop_reading(&mut st, b, true);
        assert_eq!(st.followers, vec![c.unwrap()]);
        // The reader leaving wakes a follower, which reads next.
        Shared::stop_reading(&mut st, a, true);
        assert_eq!(st.reader, None);
        assert!(woken(c.unwrap()));
        assert!(!woken(b.unwrap()));
        assert_eq!(Shared::choose_wait(&mut st, c, long), Wait::Read);
        assert!(st.followers.is_empty());
        Shared::stop_reading(&mut st, c, true);
        // While an event loop reads the socket, nobody sleeps in recv(2),
        // not even the reader.
        st.attached = 1;
        assert_eq!(Shared::choose_wait(&mut st, a, long), Wait::Poll);
        st.attached = 0;
        assert_eq!(Shared::choose_wait(&mut st, a, long), Wait::Read);
        st.attached = 1;
        assert_eq!(Shared::choose_wait(&mut st, a, long), Wait::Poll);
        st.attached = 0;
        Shared::stop_reading(&mut st, a, true);
    }

    #[test]
    fn a_woken_follower_that_finishes_wakes_the_next() {
        let (_server, client) = role_client();
        let mut st = client.owner.0.lock();
        let (_fds, [a, b, c]) = three_callers();
        let long = Duration::from_secs(1);
        assert_eq!(Shared::choose_wait(&mut st, a, long), Wait::Read);
        assert_eq!(Shared::choose_wait(&mut st, b, long), Wait::Follow);
        assert_eq!(Shared::choose_wait(&mut st, c, long), Wait::Follow);
        Shared::stop_reading(&mut st, a, true);
        assert!(woken(c.unwrap()));
        // c finds its own answer and leaves without reading: b must not be
        // left waiting for a reader that never comes.
        Shared::stop_reading(&mut st, c, true);
        assert!(woken(b.unwrap()));
        assert!(st.followers.is_empty());
        // A reader about to run callbacks steps down the same way.
        assert_eq!(Shared::choose_wait(&mut st, a, long), Wait::Read);
        assert_eq!(Shared::choose_wait(&mut st, b, long), Wait::Follow);
        Shared::stop_reading(&mut st, a, false);
        assert_eq!(st.reader, None);
        assert!(woken(b.unwrap()));
        Shared::stop_reading(&mut st, a, true);
    }

    /// A caller that drives for a while after an earlier caller left must not
    /// make the driver spin on the re-arm time that passed meanwhile.
    #[test]
    fn the_driver_sleeps_while_a_caller_drives() {
        let server = Server::start_local().unwrap();
        let mut config = ClientConfig::new(server.local_addr());
        config.listen_announce = false;
        let client = Client::new(config).unwrap();
        // Leaving sets the re-arm time REARM_DELAY ahead.
        client.map_with(MapSpec::new(Protocol::TCP, 4000)).unwrap();
        // This caller drives past that time.
        server.set_delay(REARM_DELAY * 10);
        let shared = &client.owner.0;
        let before = shared.driver_passes.load(Ordering::Relaxed);
        client.map_with(MapSpec::new(Protocol::TCP, 4001)).unwrap();
        let passes = shared.driver_passes.load(Ordering::Relaxed) - before;
        // Sleeping, the driver wakes once for the re-arm time and maybe for
        // the caller's leaving; spinning, it would go round thousands of times.
        assert!(passes <= 5, "driver went round {passes} times while one caller drove");
    }
}
