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
mod background;
mod classic;
mod driver;
mod event_loop;
mod handlers;
mod mapping;
mod pending;
mod shared;
mod waiting;
mod wake;
pub mod wall_clock;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use polling::Poller;

pub use crate::endpoint::{ClientConfig, Endpoint, RawSocket};
pub use crate::source_addr::SourceResolver;
pub use address::parse_server;
pub use background::discover_async;
pub use handlers::{EventHandlers, Handler, HandlerId, HandlerSlot};
pub use mapping::Mapping;
pub use pending::{Canceller, Pending};

use pending::pending;
use shared::{Owner, Shared, State, Waiter};

use crate::engine::{Event, KeyMap, MapSpec, MappingId, PeerSpec, ProtocolVersion, RequestId};
use crate::wire::{Nonce, Protocol};
use crate::Result;

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

    /// A client as `config` says: opens its socket(s) and starts its
    /// driver thread; sends nothing yet.
    pub fn new(config: ClientConfig) -> Result<Client> {
        let endpoint = Endpoint::new(&config)?;
        endpoint.block_in_waits()?;
        let socket = endpoint.main_socket();
        let poller = Poller::new()?;
        let shared = Arc::new_cyclic(|this| Shared {
            poller,
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
            handlers: EventHandlers::default(),
            subscribers: Mutex::new(Vec::new()),
            subscribed: AtomicBool::new(false),
            driver_passes: AtomicU64::new(0),
            socket,
            this: this.clone(),
            config,
            driver: Mutex::new(None),
            classic: Default::default(),
            close_hooks: Mutex::new(Some(Vec::new())),
        });
        driver::register(&shared)?;
        let driver_shared = shared.clone();
        let (started_tx, started_rx) = std::sync::mpsc::sync_channel(1);
        let handle =
            thread::Builder::new().name("pcp-driver".into()).spawn(move || driver::run(driver_shared, started_tx))?;
        if driver::CLIENT_WAITS_FOR_DRIVER {
            let _ = started_rx.recv();
        }
        let tid = handle.thread().id();
        *shared.driver.lock().unwrap_or_else(|e| e.into_inner()) = Some((handle, tid));
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

    /// Checks our address towards the server now (the client also does
    /// before each renewal pass, and after a send fails): if the host's
    /// address changed (DHCP renumbering, an IPv6 address gone), the
    /// socket moves to the new one, every mapping is made again from it
    /// (RFC 6887 section 11.5) and [`Event::InternalAddressChanged`]
    /// reports it. For applications that hear of network changes from the
    /// system. Returns whether the address changed; sends nothing to learn it.
    pub fn refresh_internal_address(&self) -> Result<bool> {
        self.shared().submit(true, |st, now| Ok(st.endpoint.refresh_source(now)))
    }

    /// Sends from `addr` from now on (`None`: the route's choice again,
    /// checked before renewals), moving the socket at once; if the
    /// Client IP changes, the mappings are made again from the new
    /// address and [`Event::InternalAddressChanged`] reports it. Returns
    /// whether it changed. An address of the other family is
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument), one this
    /// host lacks [`Error::Io`](crate::Error::Io) (as from [`Client::new`]);
    /// where a bound socket cannot be bound again (Windows, macOS, the BSDs),
    /// another explicit address than the socket's is
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) too (the
    /// socket is not replaced: event loops watch it). Each changes nothing.
    pub fn set_local_address(&self, addr: Option<IpAddr>) -> Result<bool> {
        self.shared().submit(true, |st, now| st.endpoint.set_local_addr(now, addr))
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

    /// Whether the client listens for unsolicited ANNOUNCE (false once it is
    /// closed: the listener is closed with it).
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

    /// Starts a MAP request and returns at once: wait on the [`Pending`],
    /// `.await` it, or give it a completion callback. Dropping it does not
    /// cancel the request; [`Pending::cancel`] does.
    pub fn map_async(&self, spec: MapSpec) -> Pending<Mapping> {
        self.start_mapping(|engine, now| engine.map(now, spec))
    }

    /// Asks for a PEER mapping and waits.
    pub fn peer(&self, spec: PeerSpec) -> Result<Mapping> {
        self.blocking(|| self.peer_async(spec))
    }

    /// [`Client::peer`] without waiting (see [`Client::map_async`]).
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

    /// [`Client::delete`] without waiting (see [`Client::map_async`]).
    pub fn delete_async(&self, id: MappingId) -> Pending<()> {
        self.shared().delete_async(id)
    }

    /// Deletes a mapping this client did not make, known by its nonce (the
    /// CLI's `pcp delete` uses the nonce `pcp map` recorded).
    pub fn delete_by_nonce(&self, protocol: Protocol, internal_port: u16, nonce: Nonce) -> Result<()> {
        self.blocking(|| self.delete_by_nonce_async(protocol, internal_port, nonce))
    }

    /// [`Client::delete_by_nonce`] without waiting.
    pub fn delete_by_nonce_async(&self, protocol: Protocol, internal_port: u16, nonce: Nonce) -> Pending<()> {
        self.delete_with_async(MapSpec::new(protocol, internal_port).nonce(nonce))
    }

    /// Deletes a mapping this client did not make, named by `spec`: its
    /// protocol, internal port, nonce and, for a mapping made with
    /// THIRD_PARTY, the same third party (RFC 6887 section 13.1: the
    /// delete carries the option too, or the server looks for a mapping of
    /// this host's own address).
    pub fn delete_with(&self, spec: MapSpec) -> Result<()> {
        self.blocking(|| self.delete_with_async(spec))
    }

    /// [`Client::delete_with`] without waiting.
    pub fn delete_with_async(&self, spec: MapSpec) -> Pending<()> {
        let (p, c) = pending();
        match self.shared().submit(false, |st, now| {
            let id = st.endpoint.engine_mut().delete_by_nonce(now, spec)?;
            st.waiters.insert(id.0, Waiter::Delete(vec![c]));
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

    /// [`Client::announce`] without waiting.
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

    /// [`Client::external_address`] without waiting.
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

    /// The settings the client was made with.
    pub fn config(&self) -> &ClientConfig {
        &self.shared().config
    }

    /// Calls `f` for every event, always on the client's driver thread
    /// (never on a thread that called the client). It may run at the same
    /// time as calls on other threads, and may call the client itself
    /// (blocking requests included, and removing itself). See
    /// [`Client::event_handlers`] for replacing one callback by another.
    pub fn on_event(&self, f: impl Fn(&Event) + Send + Sync + 'static) -> HandlerId {
        self.shared().handlers.add(f)
    }

    /// Unregisters a callback. Once this returns the callback is not
    /// running on another thread and is never called again (this waits
    /// for a call running on the driver thread; called from inside the
    /// callback itself, it does not wait for that call). Returns whether
    /// it was registered. Do not call it holding a lock the callback takes.
    pub fn remove_event_handler(&self, id: HandlerId) -> bool {
        self.shared().handlers.remove(id)
    }

    /// The client's callbacks, called on its driver thread: what
    /// [`Client::on_event`] and [`Client::remove_event_handler`] use, with
    /// [`EventHandlers::replace`] for a shell that keeps one callback.
    pub fn event_handlers(&self) -> &EventHandlers {
        &self.shared().handlers
    }

    /// A channel that receives every event from now on.
    pub fn events(&self) -> mpsc::Receiver<Event> {
        let (tx, rx) = mpsc::channel();
        self.shared().subscribers.lock().unwrap_or_else(|e| e.into_inner()).push(tx);
        self.shared().subscribed.store(true, Ordering::Release);
        rx
    }

    /// Deletes the client's mappings (unless configured not to; waits at most
    /// [`ClientConfig::close_timeout`]) and stops the driver. Further calls
    /// fail with [`Error::Closed`](crate::Error::Closed). Idempotent.
    pub fn close(&self) {
        self.shared().close();
    }

    /// Stops without deleting: the mappings stay on the server until their
    /// lifetimes run out.
    pub fn close_keep(&self) {
        self.shared().close_with(false);
    }

    /// Whether [`Client::close`] (or [`Client::close_keep`], or dropping the
    /// last handle) has run: requests now fail with
    /// [`Error::Closed`](crate::Error::Closed).
    pub fn is_closed(&self) -> bool {
        self.shared().lock().closed
    }

    /// Calls `f` once the client has closed, by whatever path
    /// ([`Client::close`], [`Client::close_keep`], the last handle going):
    /// on the driver thread as it finishes, so before `close` returns (a
    /// close from an event callback returns first); at once, on this thread,
    /// if the client already has closed. A binding's "closed" notification.
    pub fn on_close(&self, f: impl FnOnce() + Send + 'static) {
        let mut hooks = self.shared().close_hooks.lock().unwrap_or_else(|e| e.into_inner());
        match hooks.as_mut() {
            Some(v) => v.push(Box::new(f)),
            None => {
                drop(hooks);
                f();
            }
        }
    }
}
