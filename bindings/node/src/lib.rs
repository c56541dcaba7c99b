//! The native half of the `pcp-rs` npm package.
//!
//! This crate only converts types and errors between `pcp-core` and
//! JavaScript; `index.js` builds the public API (Promises, EventEmitter,
//! AbortSignal, `Error` objects with a `code`) on top of it.
//!
//! How results reach JavaScript without blocking anything:
//! - every request is a `pcp_core::Pending`, polled once here with a
//!   `Waker` that is woken where the answer is processed;
//! - answers are read on the JavaScript thread: a libuv poll handle watches
//!   the client's socket and calls `Client::process_ready` (see `reader.rs`),
//!   so a result is handed to the JavaScript callback directly, with no
//!   thread hop (this is what makes sequential round trips fast);
//! - results completed on the core's driver thread (timeouts, and every
//!   answer if the poll handle could not be set up) and events (`renewed`,
//!   `lost`, ...) are queued, with the request number the JavaScript side
//!   chose, on the client's one threadsafe function. Events are produced
//!   after the answer that caused them is processed, so a result still
//!   reaches JavaScript before the events that follow it.
//!
//! No thread waits: neither the JavaScript thread nor libuv's pool. The
//! threadsafe function starts unreferenced; `index.js` references it while a
//! request is in flight or renewals run (unless the user called `unref()`).
//! The poll handle is always unreferenced, so only that decides.

#![deny(clippy::all)]

mod reader;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use napi::bindgen_prelude::{Function, JsValue, JsValuesTupleIntoVec, Status, ToNapiValue, Unknown};
use napi::sys;
use napi::Env;
type Result<T, E = PcpError> = std::result::Result<T, E>;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use pcp_core::client::{parse_server, wall_clock};
use pcp_core::discovery::DiscoveryConfig;
use pcp_core::engine::KeyMap;
use pcp_core::server::{Server, ServerConfig, ServerMode};
use pcp_core::{
    Client, ClientConfig, Error as PcpError, ErrorCode, Event, Filter, HandlerId, MapSpec, Mapping, MappingId,
    MappingInfo, Nonce, PeerSpec, Pending, Protocol, ProtocolChoice, ResultCode,
};

// ---------------------------------------------------------------- data types

/// A mapping as the client holds it (a snapshot). JavaScript receives it
/// as an array in field order (`MAPPING_FIELDS` in `index.js`): V8 builds
/// an array much faster than an object with named keys, and a round trip
/// makes one of these.
#[derive(Clone)]
pub struct MappingData {
    /// Identifies the mapping for the life of its client.
    pub id: f64,
    /// `"MAP"` or `"PEER"`.
    pub opcode: &'static str,
    /// IANA protocol number (6 TCP, 17 UDP, 0 all).
    pub protocol: u32,
    pub internal_address: String,
    pub internal_port: u32,
    pub external_address: String,
    pub external_port: u32,
    /// Granted lifetime in seconds.
    pub lifetime: u32,
    /// The server's epoch when it granted or last renewed the mapping.
    pub epoch: u32,
    /// The mapping nonce, 24 hex digits.
    pub nonce: String,
    /// The remote peer (PEER mappings).
    pub remote_address: Option<String>,
    pub remote_port: Option<u32>,
    /// When the server granted or last renewed it, and when it expires
    /// unless renewed: milliseconds since 1970 (the core's times).
    pub granted_at: f64,
    pub expires_at: f64,
    /// `"pcp"` or `"natpmp"`: what the gateway granted it with.
    pub protocol_version: &'static str,
}

/// What the native side tells the JavaScript side: the result of request
/// `req` (`kind` = `"done"`) or an event (`kind` = the event name).
/// The callback receives the fields as its arguments, a mapping's fields
/// spread at the end (see `onNative` in `index.js`): calling with arguments
/// builds nothing on the JavaScript heap, where filling an array or an
/// object from native code costs a generic property store per field.
pub struct NativeMessage {
    pub kind: &'static str,
    pub req: Option<u32>,
    /// Error code (`pcp_core::Error::code`) when the request failed or the
    /// event carries an error.
    pub code: Option<&'static str>,
    pub message: Option<String>,
    pub mapping: Option<MappingData>,
    /// A MAP result for the classic API, which shows only these fields.
    pub classic: Option<ClassicMapping>,
    pub id: Option<f64>,
    pub epoch: Option<u32>,
    pub address: Option<String>,
    pub old_address: Option<String>,
    pub server: Option<String>,
}

impl NativeMessage {
    fn new(kind: &'static str) -> Self {
        NativeMessage {
            kind,
            req: None,
            code: None,
            message: None,
            mapping: None,
            classic: None,
            id: None,
            epoch: None,
            address: None,
            old_address: None,
            server: None,
        }
    }

    fn error(mut self, e: &PcpError) -> Self {
        self.code = Some(e.code());
        self.message = Some(e.to_string());
        self
    }
}

/// A JavaScript array filled in place; `None` leaves a hole (undefined).
struct JsRow {
    env: sys::napi_env,
    array: sys::napi_value,
}

impl JsRow {
    unsafe fn new(env: sys::napi_env, len: usize) -> napi::Result<Self> {
        let mut array = std::ptr::null_mut();
        check(sys::napi_create_array_with_length(env, len, &mut array))?;
        Ok(JsRow { env, array })
    }

    unsafe fn set<T: ToNapiValue>(&mut self, index: u32, value: Option<T>) -> napi::Result<()> {
        if let Some(v) = value {
            let v = T::to_napi_value(self.env, v)?;
            check(sys::napi_set_element(self.env, self.array, index, v))?;
        }
        Ok(())
    }
}

fn check(status: sys::napi_status) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::new(Status::GenericFailure, format!("napi call failed ({status})")))
    }
}

impl ToNapiValue for MappingData {
    unsafe fn to_napi_value(env: sys::napi_env, m: Self) -> napi::Result<sys::napi_value> {
        let mut row = JsRow::new(env, 15)?;
        row.set(0, Some(m.id))?;
        row.set(1, Some(m.opcode))?;
        row.set(2, Some(m.protocol))?;
        row.set(3, Some(m.internal_address))?;
        row.set(4, Some(m.internal_port))?;
        row.set(5, Some(m.external_address))?;
        row.set(6, Some(m.external_port))?;
        row.set(7, Some(m.lifetime))?;
        row.set(8, Some(m.epoch))?;
        row.set(9, Some(m.nonce))?;
        row.set(10, m.remote_address)?;
        row.set(11, m.remote_port)?;
        row.set(12, Some(m.granted_at))?;
        row.set(13, Some(m.expires_at))?;
        row.set(14, Some(m.protocol_version))?;
        Ok(row.array)
    }
}

/// What the classic API's createMapping resolves, and the id to hold.
pub struct ClassicMapping {
    id: f64,
    external_address: String,
    external_port: u32,
    lifetime: u32,
}

impl NativeMessage {
    /// The callback's arguments; `undefined` for what the message lacks.
    ///
    /// # Safety
    /// On the JavaScript thread of `env`, inside a handle scope.
    pub(crate) unsafe fn into_args(self, env: sys::napi_env) -> napi::Result<Vec<sys::napi_value>> {
        unsafe fn value<T: ToNapiValue>(env: sys::napi_env, v: Option<T>) -> napi::Result<Option<sys::napi_value>> {
            v.map(|v| T::to_napi_value(env, v)).transpose()
        }
        // Names, codes, addresses and hex digits: ASCII, which V8 takes as
        // Latin-1 without decoding UTF-8.
        unsafe fn ascii(env: sys::napi_env, v: Option<&str>) -> napi::Result<Option<sys::napi_value>> {
            v.map(|s| {
                debug_assert!(s.is_ascii());
                let mut out = std::ptr::null_mut();
                check(sys::napi_create_string_latin1(env, s.as_ptr().cast(), s.len() as isize, &mut out))?;
                Ok(out)
            })
            .transpose()
        }
        // In the order of `message` in index.js: what a classic MAP result
        // needs comes first, so that it is a short call (trailing
        // undefined arguments are left out).
        let (m, c) = (self.mapping.as_ref(), self.classic.as_ref());
        let slots = [
            ascii(env, Some(self.kind))?,
            value(env, self.req)?,
            ascii(env, self.code)?,
            value(env, self.message)?,
            value(env, m.map(|m| m.id).or(c.map(|c| c.id)))?,
            ascii(env, m.map(|m| &m.external_address).or(c.map(|c| &c.external_address)).map(String::as_str))?,
            value(env, m.map(|m| m.external_port).or(c.map(|c| c.external_port)))?,
            value(env, m.map(|m| m.lifetime).or(c.map(|c| c.lifetime)))?,
            ascii(env, m.map(|m| m.opcode))?,
            value(env, m.map(|m| m.protocol))?,
            ascii(env, m.map(|m| m.internal_address.as_str()))?,
            value(env, m.map(|m| m.internal_port))?,
            value(env, m.map(|m| m.epoch))?,
            ascii(env, m.map(|m| m.nonce.as_str()))?,
            ascii(env, m.and_then(|m| m.remote_address.as_deref()))?,
            value(env, m.and_then(|m| m.remote_port))?,
            value(env, m.map(|m| m.granted_at))?,
            value(env, m.map(|m| m.expires_at))?,
            value(env, self.id)?,
            value(env, self.epoch)?,
            ascii(env, self.address.as_deref())?,
            ascii(env, self.old_address.as_deref())?,
            ascii(env, self.server.as_deref())?,
            ascii(env, m.map(|m| m.protocol_version))?,
        ];
        let len = slots.iter().rposition(Option::is_some).map_or(0, |i| i + 1);
        let mut undefined = std::ptr::null_mut();
        check(sys::napi_get_undefined(env, &mut undefined))?;
        Ok(slots[..len].iter().map(|v| v.unwrap_or(undefined)).collect())
    }
}

impl JsValuesTupleIntoVec for NativeMessage {
    // napi-rs's trait fixes this signature; it only calls it on the JavaScript thread.
    #[allow(clippy::not_unsafe_ptr_arg_deref)]
    fn into_vec(self, env: sys::napi_env) -> napi::Result<Vec<sys::napi_value>> {
        // SAFETY: napi-rs calls this on the JavaScript thread, in the scope
        // of the call it makes with the values.
        unsafe { self.into_args(env) }
    }
}

/// A message returned instead of passed to the callback (a request that
/// finished at once): an array of the callback's arguments.
pub struct MessageRow(NativeMessage);

impl ToNapiValue for MessageRow {
    unsafe fn to_napi_value(env: sys::napi_env, m: Self) -> napi::Result<sys::napi_value> {
        let args = m.0.into_args(env)?;
        let row = JsRow::new(env, args.len())?;
        for (i, v) in args.into_iter().enumerate() {
            check(sys::napi_set_element(env, row.array, i as u32, v))?;
        }
        Ok(row.array)
    }
}

#[napi(object)]
pub struct ClientOptions {
    /// Listen for unsolicited ANNOUNCE on port 5350 (default true).
    pub listen_announce: Option<bool>,
    /// Give up on a request after this many milliseconds (default 10000).
    pub deadline_ms: Option<f64>,
    /// Delete the mappings when the client is closed (default true).
    pub delete_on_close: Option<bool>,
    /// How long closing may wait for the deletes to be answered (default 2000).
    pub close_timeout_ms: Option<f64>,
    /// Bind to this local address.
    pub local_address: Option<String>,
    /// Port to listen on for ANNOUNCE (default 5350).
    pub announce_port: Option<u32>,
    /// Upper bound of the random wait before renewing on an ANNOUNCE (default 5000).
    pub announce_delay_max_ms: Option<f64>,
    /// `"auto"` (default: PCP, falling back to NAT-PMP), `"pcp"` or `"natpmp"`.
    pub protocol: Option<String>,
}

#[napi(object)]
pub struct FilterData {
    pub remote_address: String,
    pub prefix_length: Option<u32>,
    pub remote_port: Option<u32>,
}

/// The MAP options beyond the four every call has (passed as numbers).
#[napi(object)]
pub struct MapOptions {
    pub external_address: Option<String>,
    pub prefer_failure: Option<bool>,
    pub third_party: Option<String>,
    pub filters: Option<Vec<FilterData>>,
    pub nonce: Option<String>,
    pub deadline_ms: Option<f64>,
}

#[napi(object)]
pub struct PeerOptions {
    pub protocol: u32,
    pub internal_port: u32,
    pub remote_address: String,
    pub remote_port: u32,
    pub external_port: Option<u32>,
    pub external_address: Option<String>,
    pub lifetime: Option<f64>,
    pub third_party: Option<String>,
    pub nonce: Option<String>,
    pub deadline_ms: Option<f64>,
}

#[napi(object)]
pub struct DiscoverOptions {
    /// Only these candidates ("host", "host:port"); the routing table is not consulted.
    pub candidates: Option<Vec<String>>,
    /// Servers tried after the default gateways.
    pub servers: Option<Vec<String>>,
    pub deadline_ms: Option<f64>,
    pub initial_timeout_ms: Option<f64>,
}

// ---------------------------------------------------------------- conversions

type Tsfn = ThreadsafeFunction<NativeMessage, Unknown<'static>, NativeMessage, Status, false, true>;

fn invalid(msg: impl Into<String>) -> PcpError {
    PcpError::InvalidArgument(msg.into())
}

fn napi_err(e: PcpError) -> napi::Error {
    napi::Error::new(Status::InvalidArg, format!("{}\u{0}{}", e.code(), e))
}

fn port(v: u32, what: &str) -> Result<u16, PcpError> {
    u16::try_from(v).map_err(|_| invalid(format!("{what} must be 0..65535, got {v}")))
}

fn protocol(v: u32) -> Result<Protocol, PcpError> {
    u8::try_from(v).map(Protocol).map_err(|_| invalid(format!("protocol must be 0..255, got {v}")))
}

fn ip(s: &str, what: &str) -> Result<IpAddr, PcpError> {
    IpAddr::from_str(s.trim_start_matches('[').trim_end_matches(']'))
        .map_err(|_| invalid(format!("{what} is not an IP address: {s:?}")))
}

fn lifetime(v: Option<f64>) -> Result<u32, PcpError> {
    match v {
        None => Ok(pcp_core::config::DEFAULT_LIFETIME),
        Some(l) if l.is_finite() && l >= 0.0 && l.fract() == 0.0 && l <= f64::from(u32::MAX) => Ok(l as u32),
        Some(l) => Err(invalid(format!("lifetime must be a whole number of seconds 0..4294967295, got {l}"))),
    }
}

/// A JavaScript number of milliseconds as a `Duration`; whether the value
/// makes sense for the setting is the core's `validate` to say.
fn millis(v: f64, what: &str) -> Result<Duration, PcpError> {
    if (0.0..=1e15).contains(&v) {
        Ok(Duration::from_secs_f64(v / 1000.0))
    } else {
        Err(invalid(format!("{what} must be a number of milliseconds, not {v}")))
    }
}

/// The client's retransmission policy with the deadline of one request.
fn request_deadline(client: &Client, ms: f64) -> Result<pcp_core::RetransmitPolicy, PcpError> {
    let policy = client.config().retransmit.with_deadline(millis(ms, "deadline")?);
    policy.validate()?;
    Ok(policy)
}

fn nonce(s: &str) -> Result<Nonce, PcpError> {
    Nonce::from_hex(s).ok_or_else(|| invalid(format!("nonce must be 24 hex digits, got {s:?}")))
}

fn mapping_data(info: &MappingInfo) -> MappingData {
    MappingData {
        id: info.id.0 as f64,
        opcode: info.opcode.name(),
        protocol: u32::from(info.protocol.0),
        internal_address: info.internal_addr.to_string(),
        internal_port: u32::from(info.internal_port),
        external_address: info.external_addr.to_string(),
        external_port: u32::from(info.external_port),
        lifetime: info.lifetime,
        epoch: info.epoch,
        nonce: info.nonce.to_hex(),
        remote_address: info.remote.map(|(a, _)| a.to_string()),
        remote_port: info.remote.map(|(_, p)| u32::from(p)),
        granted_at: wall_clock::unix_millis(info.granted_at),
        expires_at: wall_clock::unix_millis(info.expires_at()),
        protocol_version: info.version.name(),
    }
}

fn socket_addr(s: &str) -> Result<SocketAddr, PcpError> {
    parse_server(s)
}

fn map_spec(
    (proto, internal_port, external_port, life): (u32, u32, u32, f64),
    options: Option<&MapOptions>,
    client: &Client,
) -> Result<MapSpec, PcpError> {
    let mut spec = MapSpec::new(protocol(proto)?, port(internal_port, "internalPort")?)
        .external_port(port(external_port, "externalPort")?)
        .lifetime(lifetime(Some(life))?);
    let Some(o) = options else { return Ok(spec) };
    if let Some(a) = &o.external_address {
        spec = spec.external_addr(ip(a, "externalAddress")?);
    }
    if o.prefer_failure.unwrap_or(false) {
        spec = spec.prefer_failure();
    }
    if let Some(t) = &o.third_party {
        spec = spec.third_party(ip(t, "thirdParty")?);
    }
    for f in o.filters.iter().flatten() {
        let remote_addr = ip(&f.remote_address, "filter remoteAddress")?;
        let max = if remote_addr.is_ipv4() { 32 } else { 128 };
        let prefix_len = f.prefix_length.unwrap_or(max);
        if prefix_len > max {
            return Err(invalid(format!("filter prefixLength must be 0..{max}, got {prefix_len}")));
        }
        spec = spec.filter(Filter {
            remote_addr,
            prefix_len: prefix_len as u8,
            remote_port: port(f.remote_port.unwrap_or(0), "filter remotePort")?,
        });
    }
    if let Some(n) = &o.nonce {
        spec = spec.nonce(nonce(n)?);
    }
    if let Some(d) = o.deadline_ms {
        spec = spec.retransmit(request_deadline(client, d)?);
    }
    Ok(spec)
}

fn peer_spec(o: &PeerOptions, client: &Client) -> Result<PeerSpec, PcpError> {
    let mut spec = PeerSpec::new(
        protocol(o.protocol)?,
        port(o.internal_port, "internalPort")?,
        ip(&o.remote_address, "remoteAddress")?,
        port(o.remote_port, "remotePort")?,
    )
    .external_port(port(o.external_port.unwrap_or(0), "externalPort")?)
    .lifetime(lifetime(o.lifetime)?);
    if let Some(a) = &o.external_address {
        spec.suggested_external_addr = Some(ip(a, "externalAddress")?);
    }
    if let Some(t) = &o.third_party {
        spec = spec.third_party(ip(t, "thirdParty")?);
    }
    if let Some(n) = &o.nonce {
        spec = spec.nonce(nonce(n)?);
    }
    if let Some(d) = o.deadline_ms {
        spec = spec.retransmit(request_deadline(client, d)?);
    }
    Ok(spec)
}

fn event_message(ev: &Event) -> Option<NativeMessage> {
    Some(match ev {
        Event::Renewed(info) => {
            let mut m = NativeMessage::new("renewed");
            m.id = Some(info.id.0 as f64);
            m.mapping = Some(mapping_data(info));
            m
        }
        Event::Lost { id, error } => {
            let mut m = NativeMessage::new("lost").error(error);
            m.id = Some(id.0 as f64);
            m
        }
        Event::Failed { id, error } => {
            let mut m = NativeMessage::new("failed").error(error);
            m.id = Some(id.0 as f64);
            m
        }
        Event::Deleted { id, result } => {
            let mut m = NativeMessage::new("deleted");
            if let Err(e) = result {
                m = m.error(e);
            }
            m.id = Some(id.0 as f64);
            m
        }
        Event::ExternalAddressChanged { old, new } => {
            let mut m = NativeMessage::new("ipChanged");
            m.old_address = Some(old.to_string());
            m.address = Some(new.to_string());
            m
        }
        Event::ServerRestarted { epoch } => {
            let mut m = NativeMessage::new("serverRestarted");
            m.epoch = Some(*epoch);
            m
        }
        Event::Granted(_) | Event::Announced { .. } | Event::ExternalAddress { .. } => return None,
    })
}

// ---------------------------------------------------------------- requests

/// Requests in flight by the number JavaScript gave them (sequential, so
/// the core's cheap hash for keys it picks fits).
type Requests = KeyMap<u32, Arc<dyn Request>>;

/// A request in flight, whatever its result type.
trait Request: Send + Sync {
    fn cancel(&self);
    /// The result as a message, once it has arrived.
    fn take(&self) -> Option<NativeMessage>;
}

struct Typed<T> {
    req: u32,
    pending: Mutex<Pending<T>>,
    convert: fn(T, NativeMessage) -> NativeMessage,
}

impl<T: Send + 'static> Request for Typed<T> {
    fn cancel(&self) {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).cancel();
    }

    fn take(&self) -> Option<NativeMessage> {
        let r = self.pending.lock().unwrap_or_else(|e| e.into_inner()).try_take()?;
        Some(result_message(self.req, r, self.convert))
    }
}

fn result_message<T>(
    req: u32,
    r: Result<T, PcpError>,
    convert: fn(T, NativeMessage) -> NativeMessage,
) -> NativeMessage {
    let mut m = NativeMessage::new("done");
    m.req = Some(req);
    match r {
        Ok(v) => convert(v, m),
        Err(e) => m.error(&e),
    }
}

fn conv_mapping(m: Mapping, mut msg: NativeMessage) -> NativeMessage {
    msg.mapping = Some(mapping_data(m.info()));
    msg
}

fn conv_classic(m: Mapping, mut msg: NativeMessage) -> NativeMessage {
    let i = m.info();
    msg.classic = Some(ClassicMapping {
        id: i.id.0 as f64,
        external_address: i.external_addr.to_string(),
        external_port: u32::from(i.external_port),
        lifetime: i.lifetime,
    });
    msg
}

fn conv_unit(_: (), msg: NativeMessage) -> NativeMessage {
    msg
}

fn conv_epoch(e: u32, mut msg: NativeMessage) -> NativeMessage {
    msg.epoch = Some(e);
    msg
}

fn conv_addr(a: IpAddr, mut msg: NativeMessage) -> NativeMessage {
    msg.address = Some(a.to_string());
    msg
}

struct Inner {
    tsfn: Tsfn,
    requests: Mutex<Requests>,
    /// Someone listens for events (our event handler is registered).
    listening: AtomicBool,
    /// Results completed while listening whose event the driver thread has
    /// not dispatched yet. A result read on this thread reaches JavaScript
    /// before the driver thread dispatches its event (`failed`, `deleted`),
    /// so the threadsafe function must stay referenced until then, or the
    /// process could end between the two. Signed: the driver may dispatch
    /// the event a moment before `finish` counts the result.
    events_due: AtomicI64,
    /// `sync` messages queued but not yet seen by JavaScript.
    syncs_queued: AtomicI64,
}

impl Inner {
    fn requests(&self) -> std::sync::MutexGuard<'_, Requests> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called by a waker: on the JavaScript thread when `reader.rs` read the
    /// answer, else on the driver thread.
    fn finish(&self, req: u32) {
        let r = self.requests().remove(&req);
        if let Some(r) = r {
            match r.take() {
                Some(msg) => {
                    if self.listening.load(Ordering::Acquire) {
                        self.events_due.fetch_add(1, Ordering::AcqRel);
                    }
                    if let Some(msg) = reader::collect(self, msg) {
                        self.tsfn.call(msg, ThreadsafeFunctionCallMode::NonBlocking);
                    }
                }
                // Spurious wake: keep waiting.
                None => {
                    self.requests().insert(req, r);
                }
            }
        }
    }

    /// Registers the request and polls it once; a result that is already
    /// there (a refused argument, a closed client) is returned at once.
    fn start<T: Send + 'static>(
        self: &Arc<Self>,
        req: u32,
        pending: Pending<T>,
        convert: fn(T, NativeMessage) -> NativeMessage,
    ) -> Option<NativeMessage> {
        let typed = Arc::new(Typed { req, pending: Mutex::new(pending), convert });
        self.requests().insert(req, typed.clone());
        let waker = Waker::from(Arc::new(ReqWaker { req, inner: Arc::downgrade(self) }));
        let mut cx = Context::from_waker(&waker);
        let ready = {
            let mut p = typed.pending.lock().unwrap_or_else(|e| e.into_inner());
            match std::pin::Pin::new(&mut *p).poll(&mut cx) {
                Poll::Ready(r) => Some(r),
                Poll::Pending => None,
            }
        };
        match ready {
            Some(r) => {
                self.requests().remove(&req);
                Some(result_message(req, r, convert))
            }
            None => None,
        }
    }
}

struct ReqWaker {
    req: u32,
    inner: Weak<Inner>,
}

impl Wake for ReqWaker {
    fn wake(self: Arc<Self>) {
        if let Some(inner) = self.inner.upgrade() {
            inner.finish(self.req);
        }
    }
}

// ---------------------------------------------------------------- client

/// The native client: one `pcp_core::Client`. Use `Client` or `PCPClient`
/// from `index.js` instead.
#[napi]
pub struct NativeClient {
    client: Option<Client>,
    inner: Arc<Inner>,
    referenced: bool,
    /// The event handler forwarding to JavaScript, while someone listens.
    handler: Option<HandlerId>,
    /// Reads answers on the JavaScript thread; None if libuv refused (the
    /// driver thread then reads them) or once closed.
    reader: Option<reader::ReaderHandle>,
    /// `close` was called: nothing keeps the process alive any more.
    closing: bool,
}

impl NativeClient {
    fn stop_reader(&mut self) {
        if let Some(r) = self.reader.take() {
            r.stop();
        }
    }
}

impl Drop for NativeClient {
    fn drop(&mut self) {
        // A GC finalizer runs on the JavaScript thread, where the poll handle lives.
        self.stop_reader();
        // Dropping the last handle closes the client, which may wait for
        // deletes: never on the JavaScript thread (this runs in a GC finalizer).
        if let Some(c) = self.client.take() {
            drop(c.close_async(false));
        }
    }
}

#[napi]
impl NativeClient {
    /// Connects to `server` ("host", "host:port", IPv6 with or without
    /// brackets). `callback` receives every result and event.
    #[napi(constructor)]
    pub fn new(
        env: Env,
        server: String,
        options: Option<ClientOptions>,
        callback: Function<NativeMessage, Unknown<'static>>,
    ) -> napi::Result<Self> {
        let addr = socket_addr(&server).map_err(napi_err)?;
        let mut cc = ClientConfig::new(addr);
        if let Some(o) = &options {
            if let Some(v) = o.listen_announce {
                cc.listen_announce = v;
            }
            if let Some(d) = o.deadline_ms {
                cc = cc.deadline(millis(d, "deadline").map_err(napi_err)?);
            }
            if let Some(v) = o.delete_on_close {
                cc.delete_on_close = v;
            }
            if let Some(d) = o.close_timeout_ms {
                cc.close_timeout = millis(d, "closeTimeout").map_err(napi_err)?;
            }
            if let Some(a) = &o.local_address {
                cc.local_addr = Some(ip(a, "localAddress").map_err(napi_err)?);
            }
            if let Some(p) = o.announce_port {
                cc.announce_port = port(p, "announcePort").map_err(napi_err)?;
            }
            if let Some(d) = o.announce_delay_max_ms {
                cc.announce_delay_max = millis(d, "announceDelayMax").map_err(napi_err)?;
            }
            if let Some(p) = &o.protocol {
                cc.protocol = ProtocolChoice::parse(p).ok_or_else(|| {
                    napi_err(invalid(format!("protocol must be 'auto', 'pcp' or 'natpmp', got {p:?}")))
                })?;
            }
        }
        let callback_value = callback.raw();
        let tsfn: Tsfn = callback.build_threadsafe_function::<NativeMessage>().weak::<true>().build()?;
        let client = Client::new(cc).map_err(napi_err)?;
        let inner = Arc::new(Inner {
            tsfn,
            requests: Mutex::new(Requests::default()),
            listening: AtomicBool::new(false),
            events_due: AtomicI64::new(0),
            syncs_queued: AtomicI64::new(0),
        });
        // SAFETY: the constructor runs on the JavaScript thread, and
        // `callback_value` belongs to its scope.
        let reader = unsafe { reader::Reader::start(env.raw(), callback_value, &client, &inner) };
        Ok(NativeClient { client: Some(client), inner, referenced: false, handler: None, reader, closing: false })
    }

    /// Starts forwarding events (renewed, lost, ...) to the callback. Done
    /// only while someone listens: a client with an event handler costs the
    /// core a copy of every event and a driver wake-up per request.
    #[napi]
    pub fn listen(&mut self) -> napi::Result<()> {
        if self.handler.is_some() {
            return Ok(());
        }
        let weak = Arc::downgrade(&self.inner);
        let id = self.client()?.on_event(move |ev| {
            let Some(inner) = weak.upgrade() else { return };
            if let Some(msg) = event_message(ev) {
                inner.tsfn.call(msg, ThreadsafeFunctionCallMode::NonBlocking);
            }
            // The event of a request's result: once the last one due is
            // queued, tell JavaScript it may let the process end.
            let completes_request = matches!(
                ev,
                Event::Granted(_)
                    | Event::Failed { .. }
                    | Event::Deleted { .. }
                    | Event::Announced { .. }
                    | Event::ExternalAddress { .. }
            );
            if completes_request && inner.events_due.fetch_sub(1, Ordering::AcqRel) <= 1 {
                inner.syncs_queued.fetch_add(1, Ordering::AcqRel);
                inner.tsfn.call(NativeMessage::new("sync"), ThreadsafeFunctionCallMode::NonBlocking);
            }
        });
        self.inner.listening.store(true, Ordering::Release);
        self.handler = Some(id);
        Ok(())
    }

    /// JavaScript received a `sync` message.
    #[napi]
    pub fn synced(&self) {
        self.inner.syncs_queued.fetch_sub(1, Ordering::AcqRel);
    }

    /// Stops forwarding events (the last listener is gone). Events already
    /// queued are still delivered.
    #[napi]
    pub fn unlisten(&mut self) {
        if let (Some(id), Some(client)) = (self.handler.take(), self.client.as_ref()) {
            client.remove_event_handler(id);
        }
        // Nobody waits for the events still due.
        self.inner.listening.store(false, Ordering::Release);
        self.inner.events_due.store(0, Ordering::Release);
    }

    /// Whether answers are read on the JavaScript thread (false: the core's
    /// driver thread reads them, as before; also after `close`).
    #[napi]
    pub fn reads_on_main_thread(&self) -> bool {
        self.reader.is_some()
    }

    fn client(&self) -> napi::Result<&Client> {
        self.client.as_ref().ok_or_else(|| napi_err(PcpError::Closed))
    }

    /// Whether the client keeps the Node.js event loop alive.
    #[napi]
    pub fn set_ref(&mut self, env: Env, referenced: bool) -> napi::Result<()> {
        // Events due or queued keep the process alive until JavaScript has
        // them (see `Inner::events_due`), except once closing.
        let referenced = referenced
            || (!self.closing
                && (self.inner.events_due.load(Ordering::Acquire) > 0
                    || self.inner.syncs_queued.load(Ordering::Acquire) > 0));
        if referenced == self.referenced {
            return Ok(());
        }
        let raw = self.inner.tsfn.raw();
        // SAFETY: called on the JavaScript thread with a live threadsafe function.
        let status = unsafe {
            if referenced {
                napi::sys::napi_ref_threadsafe_function(env.raw(), raw)
            } else {
                napi::sys::napi_unref_threadsafe_function(env.raw(), raw)
            }
        };
        if status == napi::sys::Status::napi_ok {
            self.referenced = referenced;
        }
        Ok(())
    }

    /// MAP `internal_port`; the common fields are plain numbers, the rest
    /// (rarely given) in `options`. `classic`: the result carries only what
    /// the classic API shows (id, external address and port, lifetime).
    // Positional numbers are measurably cheaper across napi than an object.
    #[allow(clippy::too_many_arguments)]
    #[napi]
    pub fn map(
        &self,
        req: u32,
        protocol: u32,
        internal_port: u32,
        external_port: u32,
        lifetime: f64,
        options: Option<MapOptions>,
        classic: Option<bool>,
    ) -> napi::Result<Option<MessageRow>> {
        let client = self.client()?;
        if classic == Some(true) {
            // The core's classic semantics: join a call in flight, refresh a held mapping.
            let start = || -> Result<Pending<Mapping>> {
                let (p, i) = (self::protocol(protocol)?, port(internal_port, "internalPort")?);
                Ok(client.map_port_async(p, i, port(external_port, "externalPort")?, self::lifetime(Some(lifetime))?))
            };
            let pending = start().unwrap_or_else(|e| Pending::ready(Err(e)));
            return Ok(self.inner.start(req, pending, conv_classic).map(MessageRow));
        }
        Ok(match map_spec((protocol, internal_port, external_port, lifetime), options.as_ref(), client) {
            Ok(spec) => self.inner.start(req, client.map_async(spec), conv_mapping),
            Err(e) => Some(result_message::<()>(req, Err(e), conv_unit)),
        }
        .map(MessageRow))
    }

    #[napi]
    pub fn peer(&self, req: u32, options: PeerOptions) -> napi::Result<Option<MessageRow>> {
        let client = self.client()?;
        Ok(match peer_spec(&options, client) {
            Ok(spec) => self.inner.start(req, client.peer_async(spec), conv_mapping),
            Err(e) => Some(result_message::<()>(req, Err(e), conv_unit)),
        }
        .map(MessageRow))
    }

    /// Deletes the mapping with this id.
    #[napi]
    pub fn delete(&self, req: u32, id: f64) -> napi::Result<Option<MessageRow>> {
        let client = self.client()?;
        Ok(self.inner.start(req, client.delete_async(MappingId(id as u64)), conv_unit).map(MessageRow))
    }

    /// The classic delete of a port's mapping (nothing to do if none is held).
    #[napi]
    pub fn delete_port(&self, req: u32, protocol_number: u32, internal_port: u32) -> napi::Result<Option<MessageRow>> {
        let client = self.client()?;
        let pending = match (protocol(protocol_number), port(internal_port, "internalPort")) {
            (Ok(p), Ok(i)) => client.delete_port_async(p, i),
            (Err(e), _) | (_, Err(e)) => Pending::ready(Err(e)),
        };
        Ok(self.inner.start(req, pending, conv_unit).map(MessageRow))
    }

    #[napi]
    pub fn announce(&self, req: u32) -> napi::Result<Option<MessageRow>> {
        let client = self.client()?;
        Ok(self.inner.start(req, client.announce_async(), conv_epoch).map(MessageRow))
    }

    #[napi]
    pub fn external_address(&self, req: u32) -> napi::Result<Option<MessageRow>> {
        let client = self.client()?;
        Ok(self.inner.start(req, client.external_address_async(), conv_addr).map(MessageRow))
    }

    /// Abandons request `req` (its result becomes CANCELLED unless it had arrived).
    #[napi]
    pub fn cancel(&self, req: u32) {
        let r = self.inner.requests().get(&req).cloned();
        if let Some(r) = r {
            r.cancel();
        }
    }

    /// The MAP mapping this client holds for `protocol` and `internalPort`.
    #[napi]
    pub fn find_mapping(&self, protocol_number: u32, internal_port: u32) -> napi::Result<Option<MappingData>> {
        let client = self.client()?;
        let p = protocol(protocol_number).map_err(napi_err)?;
        let port = port(internal_port, "internalPort").map_err(napi_err)?;
        Ok(client.find_mapping(p, port).map(|m| mapping_data(m.info())))
    }

    #[napi]
    pub fn mapping(&self, id: f64) -> napi::Result<Option<MappingData>> {
        Ok(self.client()?.mapping(MappingId(id as u64)).map(|m| mapping_data(m.info())))
    }

    #[napi]
    pub fn mappings(&self) -> napi::Result<Vec<MappingData>> {
        Ok(self.client()?.mappings().iter().map(|m| mapping_data(m.info())).collect())
    }

    /// How many mappings the client holds.
    #[napi]
    pub fn mapping_count(&self) -> napi::Result<u32> {
        Ok(self.client()?.mapping_count() as u32)
    }

    #[napi]
    pub fn gateway_address(&self) -> napi::Result<String> {
        Ok(self.client()?.gateway_address().to_string())
    }

    #[napi]
    pub fn internal_address(&self) -> napi::Result<String> {
        Ok(self.client()?.internal_address().to_string())
    }

    #[napi]
    pub fn server_epoch(&self) -> napi::Result<Option<u32>> {
        Ok(self.client()?.server_epoch())
    }

    #[napi]
    pub fn listens_for_announce(&self) -> napi::Result<bool> {
        Ok(self.client()?.listens_for_announce())
    }

    #[napi]
    pub fn is_closed(&self) -> napi::Result<bool> {
        Ok(self.client()?.is_closed())
    }

    /// Closes off this thread (the core's `close_async`: closing waits for
    /// the deletes) and calls `callback` when done. `keep` leaves the mappings on the server.
    #[napi]
    pub fn close(&mut self, keep: bool, callback: Function<NativeMessage, Unknown<'static>>) -> napi::Result<()> {
        let client = self.client()?.clone();
        // The driver thread reads the answers to the deletes: closing does
        // not depend on this thread's event loop.
        self.stop_reader();
        self.closing = true;
        let done: ThreadsafeFunction<NativeMessage, Unknown<'static>, NativeMessage, Status, false> =
            callback.build_threadsafe_function::<NativeMessage>().build()?;
        client.close_async(keep).on_complete(move |_| {
            done.call(NativeMessage::new("closed"), ThreadsafeFunctionCallMode::NonBlocking);
        });
        Ok(())
    }
}

/// Finds the PCP server (the core's `discover_async`, off this thread); `callback` gets a message
/// with `server`, `epoch` and `address` (our address towards it), or an error.
#[napi]
pub fn discover(
    options: Option<DiscoverOptions>,
    callback: Function<NativeMessage, Unknown<'static>>,
) -> napi::Result<()> {
    let mut config = DiscoveryConfig::default();
    let parse = |list: &Vec<String>| -> napi::Result<Vec<SocketAddr>> {
        list.iter().map(|s| socket_addr(s).map_err(napi_err)).collect()
    };
    if let Some(o) = &options {
        if let Some(c) = &o.candidates {
            config.gateways = Some(parse(c)?);
        }
        if let Some(s) = &o.servers {
            config.servers = parse(s)?;
        }
        if let Some(d) = o.deadline_ms {
            config.deadline = millis(d, "deadline").map_err(napi_err)?;
        }
        if let Some(d) = o.initial_timeout_ms {
            config.initial_timeout = millis(d, "initialTimeout").map_err(napi_err)?;
        }
    }
    let done: ThreadsafeFunction<NativeMessage, Unknown<'static>, NativeMessage, Status, false> =
        callback.build_threadsafe_function::<NativeMessage>().build()?;
    pcp_core::client::discover_async(config).on_complete(move |r| {
        let msg = match r {
            Ok(found) => {
                let mut m = NativeMessage::new("done");
                m.server = Some(found.server.to_string());
                m.epoch = Some(found.epoch);
                m.address = Some(found.internal_addr.to_string());
                m
            }
            Err(e) => NativeMessage::new("done").error(&e),
        };
        done.call(msg, ThreadsafeFunctionCallMode::NonBlocking);
    });
    Ok(())
}

/// Every stable error code, in the order of the core's registry.
#[napi]
pub fn error_codes() -> Vec<&'static str> {
    ErrorCode::ALL.iter().map(|c| c.name).collect()
}

// ---------------------------------------------------------------- test server

#[napi(object)]
pub struct ServerOptions {
    /// Where to listen (default "127.0.0.1:0": an ephemeral loopback port).
    pub listen: Option<String>,
    /// The external IPv4 address handed out (default 203.0.113.7).
    pub external_address: Option<String>,
    pub min_lifetime: Option<u32>,
    pub max_lifetime: Option<u32>,
    pub port_range_start: Option<u32>,
    pub port_range_end: Option<u32>,
    pub allow_third_party: Option<bool>,
    /// The epoch at start, as for a gateway that has been up a while (a
    /// reboot starts again from 0, so a client can tell it restarted).
    pub initial_epoch: Option<u32>,
    /// `"both"` (default), `"pcp"` or `"natpmp"` (a NAT-PMP-only gateway).
    pub mode: Option<String>,
}

/// A mapping as the test server holds it.
#[napi(object)]
pub struct ServerMappingData {
    pub opcode: String,
    pub protocol: u32,
    pub internal_address: String,
    pub internal_port: u32,
    pub external_address: String,
    pub external_port: u32,
    pub remote_address: Option<String>,
    pub remote_port: Option<u32>,
    pub nonce: String,
    /// Seconds until it expires.
    pub expires_in: f64,
    pub filters: u32,
}

/// The core's PCP test server, on loopback.
#[napi]
pub struct NativeServer {
    server: Option<Server>,
}

impl NativeServer {
    fn server(&self) -> napi::Result<&Server> {
        self.server.as_ref().ok_or_else(|| napi_err(invalid("the test server is stopped")))
    }
}

fn result_code(name: &str) -> Option<ResultCode> {
    ResultCode::ALL.iter().copied().find(|c| c.name().eq_ignore_ascii_case(name))
}

#[napi]
impl NativeServer {
    #[napi(constructor)]
    pub fn new(options: Option<ServerOptions>) -> napi::Result<Self> {
        let mut cfg = ServerConfig::default();
        if let Some(o) = &options {
            if let Some(l) = &o.listen {
                cfg.listen = SocketAddr::from_str(l)
                    .map_err(|_| napi_err(invalid(format!("listen must be \"ip:port\", got {l:?}"))))?;
            }
            if let Some(a) = &o.external_address {
                cfg.external_addr = ip(a, "externalAddress").map_err(napi_err)?;
            }
            if let Some(v) = o.min_lifetime {
                cfg.min_lifetime = v;
            }
            if let Some(v) = o.max_lifetime {
                cfg.max_lifetime = v;
            }
            if let Some(v) = o.port_range_start {
                cfg.port_range.0 = port(v, "portRangeStart").map_err(napi_err)?;
            }
            if let Some(v) = o.port_range_end {
                cfg.port_range.1 = port(v, "portRangeEnd").map_err(napi_err)?;
            }
            if let Some(v) = o.allow_third_party {
                cfg.allow_third_party = v;
            }
            if let Some(v) = o.initial_epoch {
                cfg.initial_epoch = v;
            }
            if let Some(m) = &o.mode {
                cfg.mode = match m.as_str() {
                    "both" => ServerMode::PcpAndNatPmp,
                    "pcp" => ServerMode::PcpOnly,
                    "natpmp" => ServerMode::NatPmpOnly,
                    _ => return Err(napi_err(invalid(format!("mode must be 'both', 'pcp' or 'natpmp', got {m:?}")))),
                };
            }
        }
        let server = Server::start(cfg).map_err(|e| napi_err(e.into()))?;
        Ok(NativeServer { server: Some(server) })
    }

    /// "ip:port" to give a client.
    #[napi]
    pub fn address(&self) -> napi::Result<String> {
        Ok(self.server()?.local_addr().to_string())
    }

    #[napi]
    pub fn port(&self) -> napi::Result<u32> {
        Ok(u32::from(self.server()?.local_addr().port()))
    }

    #[napi]
    pub fn host(&self) -> napi::Result<String> {
        Ok(self.server()?.local_addr().ip().to_string())
    }

    #[napi]
    pub fn external_address(&self) -> napi::Result<String> {
        Ok(self.server()?.external_addr().to_string())
    }

    #[napi]
    pub fn drop_next(&self, n: u32) -> napi::Result<()> {
        self.server()?.drop_next(n);
        Ok(())
    }

    #[napi]
    pub fn set_delay(&self, ms: f64) -> napi::Result<()> {
        if !(ms.is_finite() && ms >= 0.0) {
            return Err(napi_err(invalid(format!("delay must be >= 0 ms, got {ms}"))));
        }
        self.server()?.set_delay(Duration::from_secs_f64(ms / 1000.0));
        Ok(())
    }

    /// Answers every MAP and PEER with the named result code (null: normally again).
    #[napi]
    pub fn force_result(&self, code: Option<String>, lifetime: Option<u32>) -> napi::Result<()> {
        let forced = match code {
            None => None,
            Some(name) => {
                let rc = result_code(&name)
                    .filter(|c| *c != ResultCode::Success)
                    .ok_or_else(|| napi_err(invalid(format!("unknown PCP result code {name:?}"))))?;
                Some((rc, lifetime.unwrap_or(30)))
            }
        };
        self.server()?.force_result(forced);
        Ok(())
    }

    /// Answers MAP and PEER requests that create or renew with the named
    /// hostile case (tests/hostile/cases.json; null: normally again).
    #[napi]
    pub fn set_hostile(&self, name: Option<String>) -> napi::Result<()> {
        let case = match name {
            None => None,
            Some(n) => Some(
                pcp_core::server::Hostile::from_name(&n)
                    .ok_or_else(|| napi_err(invalid("name: no hostile case of that name")))?,
            ),
        };
        self.server()?.set_hostile(case);
        Ok(())
    }

    /// Loses this fraction (0..1) of the datagrams each way.
    #[napi]
    pub fn set_loss(&self, fraction: f64) -> napi::Result<()> {
        if !(0.0..=1.0).contains(&fraction) {
            return Err(napi_err(invalid("fraction must be between 0 and 1")));
        }
        self.server()?.set_loss(fraction);
        Ok(())
    }

    #[napi]
    pub fn reboot(&self) -> napi::Result<()> {
        self.server()?.reboot();
        Ok(())
    }

    #[napi]
    pub fn set_external_address(&self, address: String) -> napi::Result<()> {
        let a = ip(&address, "address").map_err(napi_err)?;
        self.server()?.set_external_addr(a);
        Ok(())
    }

    #[napi]
    pub fn epoch(&self) -> napi::Result<u32> {
        Ok(self.server()?.epoch())
    }

    #[napi]
    pub fn mappings(&self) -> napi::Result<Vec<ServerMappingData>> {
        let now = std::time::Instant::now();
        Ok(self
            .server()?
            .mappings()
            .into_iter()
            .map(|m| ServerMappingData {
                opcode: m.opcode.to_string(),
                protocol: u32::from(m.protocol.0),
                internal_address: m.internal_addr.to_string(),
                internal_port: u32::from(m.internal_port),
                external_address: m.external_addr.to_string(),
                external_port: u32::from(m.external_port),
                remote_address: m.remote.map(|(a, _)| a.to_string()),
                remote_port: m.remote.map(|(_, p)| u32::from(p)),
                nonce: m.nonce.to_hex(),
                expires_in: m.expires_at.saturating_duration_since(now).as_secs_f64(),
                filters: m.filters as u32,
            })
            .collect())
    }

    #[napi]
    pub fn mapping_count(&self) -> napi::Result<u32> {
        Ok(self.server()?.mapping_count() as u32)
    }

    #[napi]
    pub fn requests_received(&self) -> napi::Result<f64> {
        Ok(self.server()?.requests_received() as f64)
    }

    /// Stops the server; its port stops answering. Idempotent.
    #[napi]
    pub fn stop(&mut self) {
        if let Some(mut s) = self.server.take() {
            s.stop();
        }
    }
}
