//! `pcp_rs._pcp_rs`: the PyO3 extension module behind the `pcp_rs` Python
//! package.
//!
//! It only converts: Python arguments to `pcp-core` specs (with `ValueError`
//! / `TypeError` for bad ones), `pcp-core` results to Python objects, and
//! `pcp_core::Error` to the exception classes of `pcp_rs.errors` (chosen by
//! [`pcp_core::Error::code`]). The protocol is entirely the core's.
//!
//! Threading rules kept throughout:
//! - every wait on the network (and every DNS look-up) happens with the GIL
//!   released (`Python::detach`), in slices of [`SLICE`] with
//!   `check_signals` between them, so other Python threads run and Ctrl-C
//!   interrupts within a slice;
//! - Python code called from the core attaches with `Python::try_attach`
//!   (so it never blocks an exiting interpreter): event callbacks run on the
//!   client's driver thread; request completions run on whichever thread
//!   drives the engine, the driver thread or a caller blocked in a call of the
//!   same client (which holds the GIL released and no lock of the binding);
//! - no lock of the binding is held while Python code runs or while a thread
//!   waits, so a thread holding the GIL never waits for one that wants it;
//! - anything that joins the driver thread (closing a client) runs with the
//!   GIL released, since the driver may be waiting for the GIL to call back.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyModule, PyString};

use pcp_core::client::parse_server;
use pcp_core::discovery::{self, DiscoveryConfig};
use pcp_core::server::{Server as CoreServer, ServerConfig, ServerMode};
use pcp_core::wire::Opcode;
use pcp_core::HandlerId;
use pcp_core::{
    Client as CoreClient, ClientConfig, Error as CoreError, ErrorCode, Event as CoreEvent, Filter, MapSpec,
    Mapping as CoreMapping, MappingId, MappingInfo, Nonce, PeerSpec, Pending, Protocol, ProtocolChoice, ResultCode,
};

/// How long one GIL-free wait lasts before signals are checked.
const SLICE: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------- errors --

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn errors_module(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    ERRORS.get_or_try_init(py, || py.import("pcp_rs.errors").map(Bound::unbind)).map(|m| m.bind(py).clone())
}

/// The Python exception instance for a core error.
fn exception_value<'py>(py: Python<'py>, e: &CoreError) -> PyResult<Bound<'py, PyAny>> {
    let server_version = match e {
        CoreError::UnsuppVersion { server_version } => Some(*server_version),
        _ => None,
    };
    let errno = match e {
        CoreError::Io(io) => io.raw_os_error(),
        _ => None,
    };
    errors_module(py)?.getattr("_from_core")?.call1((e.code(), e.to_string(), server_version, errno))
}

fn to_pyerr(py: Python<'_>, e: CoreError) -> PyErr {
    match exception_value(py, &e) {
        Ok(v) => PyErr::from_value(v),
        Err(err) => err,
    }
}

fn value_error(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}

// ----------------------------------------------------------- conversions --

fn ip_str(ip: IpAddr) -> String {
    ip.to_canonical().to_string()
}

fn parse_ip(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<IpAddr> {
    // str, or an ipaddress.IPv4Address / IPv6Address.
    let text: String = if let Ok(s) = obj.cast::<PyString>() {
        s.to_cow()?.into_owned()
    } else {
        let module: String = obj.get_type().getattr("__module__")?.extract().unwrap_or_default();
        if module != "ipaddress" {
            return Err(PyTypeError::new_err(format!(
                "{what} must be an IP address as str or ipaddress object, not {}",
                obj.get_type().name()?
            )));
        }
        obj.str()?.to_cow()?.into_owned()
    };
    text.trim()
        .parse::<IpAddr>()
        .map_err(|_| value_error(format!("{what} is not a valid IPv4 or IPv6 address: {text:?}")))
}

fn opt_ip(obj: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<IpAddr>> {
    match obj {
        Some(o) if !o.is_none() => parse_ip(o, what).map(Some),
        _ => Ok(None),
    }
}

fn int_in(obj: &Bound<'_, PyAny>, what: &str, lo: i64, hi: i64) -> PyResult<i64> {
    if obj.is_instance_of::<pyo3::types::PyBool>() {
        return Err(PyTypeError::new_err(format!("{what} must be an int, not bool")));
    }
    if obj.is_instance_of::<pyo3::types::PyInt>() && obj.extract::<i64>().is_err() {
        let digits = obj.str().map(|s| s.to_string()).unwrap_or_default();
        return Err(value_error(format!(
            "{what} must be between {lo} and {hi}, got {}",
            pcp_core::quote_input(&digits)
        )));
    }
    let v: i64 = obj.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must be an int, not {}",
            obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
        ))
    })?;
    if v < lo || v > hi {
        return Err(value_error(format!("{what} must be between {lo} and {hi}, got {v}")));
    }
    Ok(v)
}

fn port(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<u16> {
    Ok(int_in(obj, what, 0, 65535)? as u16)
}

fn lifetime(obj: &Bound<'_, PyAny>) -> PyResult<u32> {
    Ok(int_in(obj, "lifetime", 0, u32::MAX as i64)? as u32)
}

fn protocol(obj: &Bound<'_, PyAny>) -> PyResult<Protocol> {
    if let Ok(s) = obj.cast::<PyString>() {
        let s = s.to_cow()?;
        return Protocol::parse(s.trim())
            .ok_or_else(|| value_error(format!("protocol must be 'tcp', 'udp', 'all' or a number 0-255, got {s:?}")));
    }
    Ok(Protocol(int_in(obj, "protocol", 0, 255)? as u8))
}

fn seconds(v: f64, what: &str) -> PyResult<Duration> {
    if !v.is_finite() || v < 0.0 {
        return Err(value_error(format!("{what} must be a non-negative number of seconds, got {v}")));
    }
    Duration::try_from_secs_f64(v).map_err(|_| value_error(format!("{what} is too large: {v}")))
}

fn nonce(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Nonce>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    if let Ok(b) = obj.cast::<PyBytes>() {
        let arr: [u8; 12] = b
            .as_bytes()
            .try_into()
            .map_err(|_| value_error(format!("nonce must be 12 bytes, got {}", b.as_bytes().len())))?;
        return Ok(Some(Nonce::from_bytes(arr)));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        let s = s.to_cow()?;
        return Nonce::from_hex(&s)
            .map(Some)
            .ok_or_else(|| value_error(format!("nonce must be 24 hex digits, got {s:?}")));
    }
    Err(PyTypeError::new_err("nonce must be bytes (12) or a hex str (24 digits)"))
}

/// FILTER options: an iterable of `(remote_ip, prefix_len, remote_port)`.
fn filters(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<Filter>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in obj.try_iter()? {
        let item = item?;
        let t: (Bound<'_, PyAny>, Bound<'_, PyAny>, Bound<'_, PyAny>) = item
            .extract()
            .map_err(|_| PyTypeError::new_err("each filter must be a tuple (remote_ip, prefix_len, remote_port)"))?;
        let remote_addr = parse_ip(&t.0, "filter remote_ip")?;
        let max = if remote_addr.is_ipv4() { 32 } else { 128 };
        let prefix_len = int_in(&t.1, "filter prefix_len", 0, max)? as u8;
        let remote_port = port(&t.2, "filter remote_port")?;
        out.push(Filter { remote_addr, prefix_len, remote_port });
    }
    Ok(out)
}

fn server_addr(obj: &Bound<'_, PyAny>) -> PyResult<SocketAddr> {
    if let Ok(s) = obj.cast::<PyString>() {
        // A host name is resolved here: never with the GIL held.
        let s = s.to_cow()?.into_owned();
        let py = obj.py();
        return py.detach(move || parse_server(&s)).map_err(|e| to_pyerr(py, e));
    }
    if let Ok((host, p)) = obj.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>() {
        let ip = parse_ip(&host, "server address")?;
        return Ok(SocketAddr::new(ip, port(&p, "server port")?));
    }
    let module: String = obj.get_type().getattr("__module__")?.extract().unwrap_or_default();
    if module == "ipaddress" {
        return Ok(SocketAddr::new(parse_ip(obj, "server address")?, pcp_core::wire::SERVER_PORT));
    }
    Err(PyTypeError::new_err(format!(
        "server must be a str like '192.168.1.1', '192.168.1.1:5351', '[::1]:5351' or a (host, port) tuple, not {}",
        obj.get_type().name()?
    )))
}

fn server_list(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<SocketAddr>>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    if obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err("candidates must be a list of server addresses, not a str"));
    }
    let mut out = Vec::new();
    for item in obj.try_iter()? {
        out.push(server_addr(&item?)?);
    }
    Ok(Some(out))
}

fn opcode_name(op: Opcode) -> &'static str {
    match op {
        Opcode::Announce => "ANNOUNCE",
        Opcode::Map => "MAP",
        Opcode::Peer => "PEER",
    }
}

// ------------------------------------------------------------- waiting --

/// Waits for a request with the GIL released, in slices; Ctrl-C (or any
/// exception from a signal handler) cancels the request and propagates.
fn wait<T: Send>(py: Python<'_>, p: Pending<T>) -> PyResult<T> {
    loop {
        if let Some(r) = py.detach(|| p.wait_timeout(SLICE)) {
            return r.map_err(|e| to_pyerr(py, e));
        }
        if let Err(e) = py.check_signals() {
            p.cancel();
            return Err(e);
        }
    }
}

/// Runs a bounded blocking job (discovery) on its own thread and waits for
/// it like [`wait`]. On Ctrl-C the caller gets KeyboardInterrupt at once and
/// the job is abandoned: it ends by itself at its own deadline (discovery's),
/// and whatever it made (a client) is dropped, which closes it.
fn run_blocking<T: Send + 'static>(py: Python<'_>, f: impl FnOnce() -> T + Send + 'static) -> PyResult<T> {
    let (tx, rx) = mpsc::channel();
    let rx = Mutex::new(rx);
    std::thread::Builder::new()
        .name("pcp-py-blocking".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| to_pyerr(py, e.into()))?;
    loop {
        match py.detach(|| lock(&rx).recv_timeout(SLICE)) {
            Ok(v) => return Ok(v),
            Err(mpsc::RecvTimeoutError::Timeout) => py.check_signals()?,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(PyRuntimeError::new_err("the blocking job ended without a result"))
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// -------------------------------------------------------------- client --

struct Inner {
    core: CoreClient,
    /// Python ids of the callbacks registered with `on_event` (the core's
    /// `HandlerId` is opaque).
    handlers: Mutex<HashMap<u64, HandlerId>>,
    next_handler: AtomicU64,
    /// `on_close` callbacks; `None` once the client has closed.
    close_hooks: Mutex<Option<Vec<Py<PyAny>>>>,
}

impl Inner {
    fn new(core: CoreClient) -> Self {
        Inner {
            core,
            handlers: Mutex::new(HashMap::new()),
            next_handler: AtomicU64::new(1),
            close_hooks: Mutex::new(Some(Vec::new())),
        }
    }

    /// Runs the `on_close` callbacks once, after the core has closed (every
    /// path that closes a client calls this). No lock is held while they run.
    fn closed(&self) {
        let Some(hooks) = lock(&self.close_hooks).take() else {
            return;
        };
        if hooks.is_empty() {
            return;
        }
        let _ = Python::try_attach(move |py| {
            for cb in hooks {
                if let Err(e) = cb.call0(py) {
                    e.write_unraisable(py, Some(cb.bind(py)));
                }
            }
        });
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing joins the driver thread, which may be waiting for the GIL
        // to run a callback: release it while closing.
        let core = self.core.clone();
        if Python::try_attach(|py| py.detach(|| core.close())).is_none() {
            self.core.close();
        }
        self.closed();
    }
}

/// Every client made, so that `_close_all` (registered with atexit) can close
/// them before the interpreter finalizes.
static LIVE: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());

/// Closes every client still open (pcp_rs registers this with atexit).
#[pyfunction]
fn _close_all(py: Python<'_>) {
    let live: Vec<Arc<Inner>> = lock(&LIVE).drain(..).filter_map(|w| w.upgrade()).collect();
    py.detach(|| {
        for c in &live {
            c.core.close();
        }
    });
    for c in &live {
        c.closed();
    }
    drop(live);
}

fn discovery_config(candidates: Option<Vec<SocketAddr>>, deadline: Option<Duration>) -> DiscoveryConfig {
    let mut dc = match candidates {
        Some(c) => DiscoveryConfig::with_candidates(c),
        None => DiscoveryConfig::default(),
    };
    if let Some(d) = deadline {
        dc.deadline = d;
    }
    dc
}

/// A PCP client for one server (see the `pcp_rs.Client` docs in the stub).
#[pyclass(module = "pcp_rs._pcp_rs", name = "Client", frozen, weakref)]
struct PyClient {
    inner: Arc<Inner>,
}

#[allow(clippy::too_many_arguments)]
#[pymethods]
impl PyClient {
    #[new]
    #[pyo3(signature = (server=None, *, candidates=None, deadline=None, listen_announce=None, local_ip=None,
        delete_on_close=true, close_timeout=None, discovery_deadline=None, max_retransmissions=None,
        announce_delay_max=None, protocol="auto"))]
    fn new(
        py: Python<'_>,
        server: Option<&Bound<'_, PyAny>>,
        candidates: Option<&Bound<'_, PyAny>>,
        deadline: Option<f64>,
        listen_announce: Option<bool>,
        local_ip: Option<&Bound<'_, PyAny>>,
        delete_on_close: bool,
        close_timeout: Option<f64>,
        discovery_deadline: Option<f64>,
        max_retransmissions: Option<u32>,
        announce_delay_max: Option<f64>,
        protocol: &str,
    ) -> PyResult<Self> {
        let protocol = ProtocolChoice::parse(protocol)
            .ok_or_else(|| value_error(format!("protocol must be 'auto', 'pcp' or 'natpmp', not {protocol:?}")))?;
        let candidates = server_list(candidates)?;
        let deadline = deadline.map(|d| seconds(d, "deadline")).transpose()?;
        let close_timeout = close_timeout.map(|d| seconds(d, "close_timeout")).transpose()?;
        let announce_delay_max = announce_delay_max.map(|d| seconds(d, "announce_delay_max")).transpose()?;
        let discovery_deadline = discovery_deadline.map(|d| seconds(d, "discovery_deadline")).transpose()?;
        let local = opt_ip(local_ip, "local_ip")?;
        // The core's defaults otherwise: notably listen_announce (UDP 5350
        // with address reuse; the core carries on if the port is busy).
        let config = move |addr: SocketAddr| {
            let mut cc = ClientConfig::new(addr).protocol(protocol);
            if let Some(l) = listen_announce {
                cc.listen_announce = l;
            }
            cc.local_addr = local;
            cc.delete_on_close = delete_on_close;
            if let Some(d) = deadline {
                cc = cc.deadline(d);
            }
            if let Some(t) = close_timeout {
                cc.close_timeout = t;
            }
            if let Some(d) = announce_delay_max {
                cc.announce_delay_max = d;
            }
            if let Some(n) = max_retransmissions {
                cc.retransmit.max_retransmissions = Some(n);
            }
            cc
        };
        let core = match server.filter(|s| !s.is_none()) {
            Some(s) => {
                if candidates.is_some() {
                    return Err(value_error("give either a server or candidates to discover among, not both"));
                }
                let cc = config(server_addr(s)?);
                py.detach(move || CoreClient::new(cc))
            }
            // Discovery (bounded by its deadline) on a helper thread, so that
            // Ctrl-C abandons it at once; see run_blocking.
            None => {
                let dc = discovery_config(candidates, discovery_deadline);
                run_blocking(py, move || CoreClient::discover_with(&dc, config))?
            }
        }
        .map_err(|e| to_pyerr(py, e))?;
        let inner = Arc::new(Inner::new(core));
        let mut live = lock(&LIVE);
        live.retain(|w| w.strong_count() > 0);
        live.push(Arc::downgrade(&inner));
        Ok(PyClient { inner })
    }

    /// (ip, port) of the PCP server.
    #[getter]
    fn gateway_address(&self) -> (String, u16) {
        let a = self.inner.core.gateway_address();
        (ip_str(a.ip()), a.port())
    }

    /// Our address towards the server.
    #[getter]
    fn internal_address(&self) -> String {
        ip_str(self.inner.core.internal_address())
    }

    #[getter]
    fn server_epoch(&self) -> Option<u32> {
        self.inner.core.server_epoch()
    }

    #[getter]
    fn listens_for_announce(&self) -> bool {
        self.inner.core.listens_for_announce()
    }

    #[getter]
    fn closed(&self) -> bool {
        self.inner.core.is_closed()
    }

    #[pyo3(signature = (protocol, internal_port, external_port=None, lifetime=None, *, external_ip=None,
        prefer_failure=false, filters=None, third_party=None, nonce=None))]
    fn map(
        &self,
        py: Python<'_>,
        protocol: &Bound<'_, PyAny>,
        internal_port: &Bound<'_, PyAny>,
        external_port: Option<&Bound<'_, PyAny>>,
        lifetime: Option<&Bound<'_, PyAny>>,
        external_ip: Option<&Bound<'_, PyAny>>,
        prefer_failure: bool,
        filters: Option<&Bound<'_, PyAny>>,
        third_party: Option<&Bound<'_, PyAny>>,
        nonce: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyMapping> {
        let spec = map_spec(
            protocol,
            internal_port,
            external_port,
            lifetime,
            external_ip,
            prefer_failure,
            filters,
            third_party,
            nonce,
        )?;
        let m = wait(py, self.inner.core.map_async(spec))?;
        Ok(PyMapping::new(&self.inner, m.info().clone()))
    }

    #[pyo3(signature = (protocol, internal_port, external_port=None, lifetime=None, *, external_ip=None,
        prefer_failure=false, filters=None, third_party=None, nonce=None))]
    fn start_map(
        &self,
        protocol: &Bound<'_, PyAny>,
        internal_port: &Bound<'_, PyAny>,
        external_port: Option<&Bound<'_, PyAny>>,
        lifetime: Option<&Bound<'_, PyAny>>,
        external_ip: Option<&Bound<'_, PyAny>>,
        prefer_failure: bool,
        filters: Option<&Bound<'_, PyAny>>,
        third_party: Option<&Bound<'_, PyAny>>,
        nonce: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyRequest> {
        let spec = map_spec(
            protocol,
            internal_port,
            external_port,
            lifetime,
            external_ip,
            prefer_failure,
            filters,
            third_party,
            nonce,
        )?;
        Ok(PyRequest::new(&self.inner, Kind::Map(self.inner.core.map_async(spec))))
    }

    #[pyo3(signature = (protocol, internal_port, peer_ip, peer_port, external_port=None, lifetime=None, *,
        external_ip=None, third_party=None, nonce=None))]
    fn peer(
        &self,
        py: Python<'_>,
        protocol: &Bound<'_, PyAny>,
        internal_port: &Bound<'_, PyAny>,
        peer_ip: &Bound<'_, PyAny>,
        peer_port: &Bound<'_, PyAny>,
        external_port: Option<&Bound<'_, PyAny>>,
        lifetime: Option<&Bound<'_, PyAny>>,
        external_ip: Option<&Bound<'_, PyAny>>,
        third_party: Option<&Bound<'_, PyAny>>,
        nonce: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyMapping> {
        let spec = peer_spec(
            protocol,
            internal_port,
            peer_ip,
            peer_port,
            external_port,
            lifetime,
            external_ip,
            third_party,
            nonce,
        )?;
        let m = wait(py, self.inner.core.peer_async(spec))?;
        Ok(PyMapping::new(&self.inner, m.info().clone()))
    }

    #[pyo3(signature = (protocol, internal_port, peer_ip, peer_port, external_port=None, lifetime=None, *,
        external_ip=None, third_party=None, nonce=None))]
    fn start_peer(
        &self,
        protocol: &Bound<'_, PyAny>,
        internal_port: &Bound<'_, PyAny>,
        peer_ip: &Bound<'_, PyAny>,
        peer_port: &Bound<'_, PyAny>,
        external_port: Option<&Bound<'_, PyAny>>,
        lifetime: Option<&Bound<'_, PyAny>>,
        external_ip: Option<&Bound<'_, PyAny>>,
        third_party: Option<&Bound<'_, PyAny>>,
        nonce: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyRequest> {
        let spec = peer_spec(
            protocol,
            internal_port,
            peer_ip,
            peer_port,
            external_port,
            lifetime,
            external_ip,
            third_party,
            nonce,
        )?;
        Ok(PyRequest::new(&self.inner, Kind::Map(self.inner.core.peer_async(spec))))
    }

    /// The classic MAP (`PCPClient.create_mapping`): joins a call for the
    /// same port in flight, refreshes a mapping held for it (the core's
    /// `Client::map_port`).
    #[pyo3(signature = (protocol, internal_port, external_port=None, lifetime=None))]
    fn map_port(
        &self,
        py: Python<'_>,
        protocol: &Bound<'_, PyAny>,
        internal_port: &Bound<'_, PyAny>,
        external_port: Option<&Bound<'_, PyAny>>,
        lifetime: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyMapping> {
        let m = wait(py, self.start_classic(protocol, internal_port, external_port, lifetime)?)?;
        Ok(PyMapping::new(&self.inner, m.info().clone()))
    }

    #[pyo3(signature = (protocol, internal_port, external_port=None, lifetime=None))]
    fn start_map_port(
        &self,
        protocol: &Bound<'_, PyAny>,
        internal_port: &Bound<'_, PyAny>,
        external_port: Option<&Bound<'_, PyAny>>,
        lifetime: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyRequest> {
        let p = self.start_classic(protocol, internal_port, external_port, lifetime)?;
        Ok(PyRequest::new(&self.inner, Kind::Map(p)))
    }

    /// The classic delete (`PCPClient.delete_mapping`): nothing to do if the
    /// client holds no mapping for the port.
    fn delete_port(
        &self,
        py: Python<'_>,
        protocol: &Bound<'_, PyAny>,
        internal_port: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let p = self.inner.core.delete_port_async(self::protocol(protocol)?, port(internal_port, "internal_port")?);
        wait(py, p)
    }

    fn start_delete_port(&self, protocol: &Bound<'_, PyAny>, internal_port: &Bound<'_, PyAny>) -> PyResult<PyRequest> {
        let p = self.inner.core.delete_port_async(self::protocol(protocol)?, port(internal_port, "internal_port")?);
        Ok(PyRequest::new(&self.inner, Kind::Unit(p)))
    }

    /// Deletes a mapping of this client (lifetime 0 with its nonce).
    fn delete(&self, py: Python<'_>, mapping: &Bound<'_, PyMapping>) -> PyResult<()> {
        let id = self.own_mapping(mapping)?;
        wait(py, self.inner.core.delete_async(id))
    }

    fn start_delete(&self, mapping: &Bound<'_, PyMapping>) -> PyResult<PyRequest> {
        let id = self.own_mapping(mapping)?;
        Ok(PyRequest::new(&self.inner, Kind::Unit(self.inner.core.delete_async(id))))
    }

    /// Deletes a mapping this client did not make, known by its nonce.
    fn delete_by_nonce(
        &self,
        py: Python<'_>,
        protocol: &Bound<'_, PyAny>,
        internal_port: &Bound<'_, PyAny>,
        nonce: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let proto = self::protocol(protocol)?;
        let p = port(internal_port, "internal_port")?;
        let n = self::nonce(Some(nonce))?.ok_or_else(|| PyTypeError::new_err("nonce must not be None"))?;
        wait(py, self.inner.core.delete_by_nonce_async(proto, p, n))
    }

    fn find_mapping(
        &self,
        protocol: &Bound<'_, PyAny>,
        internal_port: &Bound<'_, PyAny>,
    ) -> PyResult<Option<PyMapping>> {
        let proto = self::protocol(protocol)?;
        let p = port(internal_port, "internal_port")?;
        Ok(self.inner.core.find_mapping(proto, p).map(|m| PyMapping::new(&self.inner, m.info().clone())))
    }

    fn mappings(&self) -> Vec<PyMapping> {
        self.inner.core.mappings().into_iter().map(|m| PyMapping::new(&self.inner, m.info().clone())).collect()
    }

    /// Sends ANNOUNCE; returns the server's epoch.
    fn announce(&self, py: Python<'_>) -> PyResult<u32> {
        wait(py, self.inner.core.announce_async())
    }

    fn start_announce(&self) -> PyRequest {
        PyRequest::new(&self.inner, Kind::Epoch(self.inner.core.announce_async()))
    }

    /// The gateway's external IP address.
    fn external_address(&self, py: Python<'_>) -> PyResult<String> {
        wait(py, self.inner.core.external_address_async()).map(ip_str)
    }

    fn start_external_address(&self) -> PyRequest {
        PyRequest::new(&self.inner, Kind::Addr(self.inner.core.external_address_async()))
    }

    /// Calls `callback(event)` for every event, on the client's driver
    /// thread; returns an id for `remove_event_handler`.
    fn on_event(&self, callback: Py<PyAny>) -> PyResult<u64> {
        Python::attach(|py| {
            if !callback.bind(py).is_callable() {
                return Err(PyTypeError::new_err("callback must be callable"));
            }
            Ok(())
        })?;
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let handler = self.inner.core.on_event(move |ev| {
            let Some(inner) = weak.upgrade() else { return };
            let _ = Python::try_attach(|py| {
                let r = PyEvent::convert(py, &inner, ev)
                    .and_then(|e| Bound::new(py, e))
                    .and_then(|e| callback.call1(py, (e,)));
                if let Err(err) = r {
                    err.write_unraisable(py, Some(callback.bind(py)));
                }
            });
            // If this was the last reference, the client closes here, on the
            // driver thread, which the core allows.
            drop(inner);
        });
        let id = self.inner.next_handler.fetch_add(1, Ordering::Relaxed);
        lock(&self.inner.handlers).insert(id, handler);
        Ok(id)
    }

    /// Unregisters a callback of `on_event`; it is not called again once this
    /// returns (unless it is running right now). Returns whether it was
    /// registered.
    fn remove_event_handler(&self, handler_id: u64) -> bool {
        let Some(h) = lock(&self.inner.handlers).remove(&handler_id) else {
            return false;
        };
        self.inner.core.remove_event_handler(h)
    }

    /// Calls `callback()` once the client is closed, by whatever path
    /// (`close`, `close_keep`, the last reference going, exit): at once if it
    /// already is, else on the thread that closes it.
    fn on_close(&self, py: Python<'_>, callback: Py<PyAny>) -> PyResult<()> {
        if !callback.bind(py).is_callable() {
            return Err(PyTypeError::new_err("callback must be callable"));
        }
        let now = {
            let mut hooks = lock(&self.inner.close_hooks);
            match hooks.as_mut() {
                Some(v) if !self.inner.core.is_closed() => {
                    v.push(callback.clone_ref(py));
                    false
                }
                _ => true,
            }
        };
        if now {
            callback.call0(py)?;
        }
        Ok(())
    }

    /// An iterator over every event from now on.
    fn events(&self) -> PyEventIterator {
        PyEventIterator { inner: self.inner.clone(), rx: Mutex::new(self.inner.core.events()) }
    }

    /// Deletes the client's mappings (unless delete_on_close=False) and stops.
    fn close(&self, py: Python<'_>) {
        let core = self.inner.core.clone();
        py.detach(|| core.close());
        self.inner.closed();
    }

    /// Stops without deleting: the mappings stay until their lifetimes end.
    fn close_keep(&self, py: Python<'_>) {
        let core = self.inner.core.clone();
        py.detach(|| core.close_keep());
        self.inner.closed();
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Closes; never suppresses the exception.
    #[pyo3(signature = (_exc_type, _exc, _tb, /))]
    fn __exit__(&self, py: Python<'_>, _exc_type: &Bound<'_, PyAny>, _exc: &Bound<'_, PyAny>, _tb: &Bound<'_, PyAny>) {
        self.close(py);
    }

    fn __repr__(&self) -> String {
        let a = self.inner.core.gateway_address();
        format!("<pcp_rs.Client server={a}{}>", if self.inner.core.is_closed() { " closed" } else { "" })
    }
}

impl PyClient {
    fn start_classic(
        &self,
        protocol: &Bound<'_, PyAny>,
        internal_port: &Bound<'_, PyAny>,
        external_port: Option<&Bound<'_, PyAny>>,
        lifetime: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Pending<CoreMapping>> {
        let (proto, internal) = (self::protocol(protocol)?, port(internal_port, "internal_port")?);
        let external = external_port.filter(|o| !o.is_none()).map(|o| port(o, "external_port")).transpose()?;
        let life = lifetime.filter(|o| !o.is_none()).map(self::lifetime).transpose()?;
        let life = life.unwrap_or(pcp_core::config::DEFAULT_LIFETIME);
        Ok(self.inner.core.map_port_async(proto, internal, external.unwrap_or(0), life))
    }

    fn own_mapping(&self, mapping: &Bound<'_, PyMapping>) -> PyResult<MappingId> {
        let m = mapping.get();
        if !Arc::ptr_eq(&m.inner, &self.inner) {
            return Err(value_error("this mapping belongs to another client"));
        }
        Ok(lock(&m.info).id)
    }
}

#[allow(clippy::too_many_arguments)]
fn map_spec(
    protocol: &Bound<'_, PyAny>,
    internal_port: &Bound<'_, PyAny>,
    external_port: Option<&Bound<'_, PyAny>>,
    lifetime: Option<&Bound<'_, PyAny>>,
    external_ip: Option<&Bound<'_, PyAny>>,
    prefer_failure: bool,
    filters: Option<&Bound<'_, PyAny>>,
    third_party: Option<&Bound<'_, PyAny>>,
    nonce: Option<&Bound<'_, PyAny>>,
) -> PyResult<MapSpec> {
    let mut spec = MapSpec::new(self::protocol(protocol)?, port(internal_port, "internal_port")?);
    if let Some(p) = external_port.filter(|o| !o.is_none()) {
        spec = spec.external_port(port(p, "external_port")?);
    }
    if let Some(l) = lifetime.filter(|o| !o.is_none()) {
        spec = spec.lifetime(self::lifetime(l)?);
    }
    if let Some(ip) = opt_ip(external_ip, "external_ip")? {
        spec = spec.external_addr(ip);
    }
    if prefer_failure {
        spec = spec.prefer_failure();
    }
    for f in self::filters(filters)? {
        spec = spec.filter(f);
    }
    if let Some(ip) = opt_ip(third_party, "third_party")? {
        spec = spec.third_party(ip);
    }
    if let Some(n) = self::nonce(nonce)? {
        spec = spec.nonce(n);
    }
    Ok(spec)
}

#[allow(clippy::too_many_arguments)]
fn peer_spec(
    protocol: &Bound<'_, PyAny>,
    internal_port: &Bound<'_, PyAny>,
    peer_ip: &Bound<'_, PyAny>,
    peer_port: &Bound<'_, PyAny>,
    external_port: Option<&Bound<'_, PyAny>>,
    lifetime: Option<&Bound<'_, PyAny>>,
    external_ip: Option<&Bound<'_, PyAny>>,
    third_party: Option<&Bound<'_, PyAny>>,
    nonce: Option<&Bound<'_, PyAny>>,
) -> PyResult<PeerSpec> {
    let mut spec = PeerSpec::new(
        self::protocol(protocol)?,
        port(internal_port, "internal_port")?,
        parse_ip(peer_ip, "peer_ip")?,
        port(peer_port, "peer_port")?,
    );
    if let Some(p) = external_port.filter(|o| !o.is_none()) {
        spec = spec.external_port(port(p, "external_port")?);
    }
    if let Some(l) = lifetime.filter(|o| !o.is_none()) {
        spec = spec.lifetime(self::lifetime(l)?);
    }
    spec.suggested_external_addr = opt_ip(external_ip, "external_ip")?;
    if let Some(ip) = opt_ip(third_party, "third_party")? {
        spec = spec.third_party(ip);
    }
    if let Some(n) = self::nonce(nonce)? {
        spec = spec.nonce(n);
    }
    Ok(spec)
}

// ------------------------------------------------------------- mapping --

/// A mapping held by a client: a snapshot (see `refresh`) plus `delete()`.
#[pyclass(module = "pcp_rs._pcp_rs", name = "Mapping", frozen)]
struct PyMapping {
    inner: Arc<Inner>,
    info: Mutex<MappingInfo>,
}

impl PyMapping {
    fn new(inner: &Arc<Inner>, info: MappingInfo) -> Self {
        PyMapping { inner: inner.clone(), info: Mutex::new(info) }
    }

    fn info(&self) -> MappingInfo {
        lock(&self.info).clone()
    }
}

#[pymethods]
impl PyMapping {
    /// The client's id of this mapping (events carry it as `mapping_id`).
    #[getter]
    fn id(&self) -> u64 {
        lock(&self.info).id.0
    }
    /// "MAP" or "PEER".
    #[getter]
    fn opcode(&self) -> &'static str {
        opcode_name(lock(&self.info).opcode)
    }
    /// "pcp" or "natpmp": what the gateway granted this mapping with.
    #[getter]
    fn protocol_version(&self) -> &'static str {
        lock(&self.info).version.name()
    }
    #[getter]
    fn protocol(&self) -> u8 {
        lock(&self.info).protocol.0
    }
    #[getter]
    fn internal_ip(&self) -> String {
        ip_str(lock(&self.info).internal_addr)
    }
    #[getter]
    fn internal_port(&self) -> u16 {
        lock(&self.info).internal_port
    }
    #[getter]
    fn external_ip(&self) -> String {
        ip_str(lock(&self.info).external_addr)
    }
    #[getter]
    fn external_port(&self) -> u16 {
        lock(&self.info).external_port
    }
    /// Granted lifetime in seconds (from the last grant or renewal).
    #[getter]
    fn lifetime(&self) -> u32 {
        lock(&self.info).lifetime
    }
    /// Seconds until the mapping ends unless renewed.
    #[getter]
    fn expires_in(&self) -> f64 {
        lock(&self.info).expires_at().saturating_duration_since(Instant::now()).as_secs_f64()
    }
    #[getter]
    fn epoch(&self) -> u32 {
        lock(&self.info).epoch
    }
    /// The 12-byte mapping nonce.
    #[getter]
    fn nonce<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, lock(&self.info).nonce.as_bytes())
    }
    #[getter]
    fn nonce_hex(&self) -> String {
        lock(&self.info).nonce.to_hex()
    }
    #[getter]
    fn peer_ip(&self) -> Option<String> {
        lock(&self.info).remote.map(|(ip, _)| ip_str(ip))
    }
    #[getter]
    fn peer_port(&self) -> Option<u16> {
        lock(&self.info).remote.map(|(_, p)| p)
    }
    /// Whether the client still holds (and renews) the mapping.
    #[getter]
    fn active(&self) -> bool {
        let id = lock(&self.info).id;
        self.inner.core.mapping(id).is_some()
    }

    /// Reads the current state from the client; False if the mapping is gone.
    fn refresh(&self) -> bool {
        let id = lock(&self.info).id;
        match self.inner.core.mapping(id) {
            Some(m) => {
                *lock(&self.info) = m.info().clone();
                true
            }
            None => false,
        }
    }

    fn delete(&self, py: Python<'_>) -> PyResult<()> {
        let id = lock(&self.info).id;
        wait(py, self.inner.core.delete_async(id))
    }

    fn start_delete(&self) -> PyRequest {
        let id = lock(&self.info).id;
        PyRequest::new(&self.inner, Kind::Unit(self.inner.core.delete_async(id)))
    }

    fn __repr__(&self) -> String {
        let i = self.info();
        let peer = match i.remote {
            Some((ip, p)) => format!(" peer={}", SocketAddr::new(ip.to_canonical(), p)),
            None => String::new(),
        };
        format!(
            "<pcp_rs.Mapping #{} {} {} {}:{} -> {}{} lifetime={} epoch={}>",
            i.id.0,
            opcode_name(i.opcode),
            i.protocol,
            ip_str(i.internal_addr),
            i.internal_port,
            SocketAddr::new(i.external_addr.to_canonical(), i.external_port),
            peer,
            i.lifetime,
            i.epoch
        )
    }
}

// -------------------------------------------------------------- events --

/// An event of a client. `kind` is one of "granted", "renewed", "failed",
/// "lost", "deleted", "ip_changed", "server_restarted", "announced",
/// "external_address"; the other attributes are None where they do not apply.
#[pyclass(module = "pcp_rs._pcp_rs", name = "Event", frozen, get_all)]
struct PyEvent {
    kind: &'static str,
    mapping_id: Option<u64>,
    mapping: Option<Py<PyMapping>>,
    error: Option<Py<PyAny>>,
    old: Option<String>,
    new: Option<String>,
    epoch: Option<u32>,
}

impl PyEvent {
    fn empty(kind: &'static str) -> Self {
        PyEvent { kind, mapping_id: None, mapping: None, error: None, old: None, new: None, epoch: None }
    }

    fn convert(py: Python<'_>, inner: &Arc<Inner>, ev: &CoreEvent) -> PyResult<PyEvent> {
        let with_mapping = |kind, info: &MappingInfo| -> PyResult<PyEvent> {
            let m = Py::new(py, PyMapping::new(inner, info.clone()))?;
            Ok(PyEvent {
                mapping_id: Some(info.id.0),
                mapping: Some(m),
                epoch: Some(info.epoch),
                ..PyEvent::empty(kind)
            })
        };
        let err = |e: &CoreError| -> PyResult<Option<Py<PyAny>>> { Ok(Some(exception_value(py, e)?.unbind())) };
        Ok(match ev {
            CoreEvent::Granted(info) => with_mapping("granted", info)?,
            CoreEvent::Renewed(info) => with_mapping("renewed", info)?,
            CoreEvent::Failed { id, error } => {
                PyEvent { mapping_id: Some(id.0), error: err(error)?, ..PyEvent::empty("failed") }
            }
            CoreEvent::Lost { id, error } => {
                PyEvent { mapping_id: Some(id.0), error: err(error)?, ..PyEvent::empty("lost") }
            }
            CoreEvent::Deleted { id, result } => PyEvent {
                mapping_id: Some(id.0),
                error: match result {
                    Ok(()) => None,
                    Err(e) => err(e)?,
                },
                ..PyEvent::empty("deleted")
            },
            CoreEvent::ExternalAddressChanged { old, new } => {
                PyEvent { old: Some(ip_str(*old)), new: Some(ip_str(*new)), ..PyEvent::empty("ip_changed") }
            }
            CoreEvent::ServerRestarted { epoch } => {
                PyEvent { epoch: Some(*epoch), ..PyEvent::empty("server_restarted") }
            }
            CoreEvent::Announced { result, .. } => match result {
                Ok(epoch) => PyEvent { epoch: Some(*epoch), ..PyEvent::empty("announced") },
                Err(e) => PyEvent { error: err(e)?, ..PyEvent::empty("announced") },
            },
            CoreEvent::ExternalAddress { result, .. } => match result {
                Ok(ip) => PyEvent { new: Some(ip_str(*ip)), ..PyEvent::empty("external_address") },
                Err(e) => PyEvent { error: err(e)?, ..PyEvent::empty("external_address") },
            },
        })
    }
}

#[pymethods]
impl PyEvent {
    fn __repr__(&self, py: Python<'_>) -> String {
        let mut s = format!("<pcp_rs.Event {}", self.kind);
        if let Some(id) = self.mapping_id {
            s += &format!(" mapping_id={id}");
        }
        if let Some(m) = &self.mapping {
            s += &format!(" external={}:{}", m.get().external_ip(), m.get().external_port());
        }
        if let Some(o) = &self.old {
            s += &format!(" old={o}");
        }
        if let Some(n) = &self.new {
            s += &format!(" new={n}");
        }
        if let Some(e) = self.epoch {
            s += &format!(" epoch={e}");
        }
        if let Some(e) = &self.error {
            s += &format!(" error={}", e.bind(py).repr().map(|r| r.to_string()).unwrap_or_default());
        }
        s + ">"
    }
}

/// Blocking iterator over a client's events; ends when the client closes.
#[pyclass(module = "pcp_rs._pcp_rs", name = "EventIterator", frozen)]
struct PyEventIterator {
    inner: Arc<Inner>,
    rx: Mutex<mpsc::Receiver<CoreEvent>>,
}

impl PyEventIterator {
    fn next_event(&self, py: Python<'_>, timeout: Option<Duration>) -> PyResult<Option<PyEvent>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let slice = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
                None => SLICE,
            };
            let got = py.detach(|| lock(&self.rx).recv_timeout(slice));
            match got {
                Ok(ev) => return PyEvent::convert(py, &self.inner, &ev).map(Some),
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(None),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if self.inner.core.is_closed() {
                        return Ok(None);
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(None);
                    }
                    py.check_signals()?;
                }
            }
        }
    }
}

#[pymethods]
impl PyEventIterator {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<PyEvent>> {
        self.next_event(py, None)
    }

    /// The next event, waiting at most `timeout` seconds (None: until the
    /// client closes); None if there was none.
    #[pyo3(signature = (timeout=None))]
    fn get(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<PyEvent>> {
        let t = timeout.map(|t| seconds(t, "timeout")).transpose()?;
        self.next_event(py, t)
    }
}

// ------------------------------------------------------------ requests --

enum Kind {
    Map(Pending<CoreMapping>),
    Unit(Pending<()>),
    Epoch(Pending<u32>),
    Addr(Pending<IpAddr>),
}

#[derive(Clone)]
enum Out {
    Map(CoreMapping),
    Unit,
    Epoch(u32),
    Addr(IpAddr),
}

impl Kind {
    fn try_take(&self) -> Option<Result<Out, CoreError>> {
        match self {
            Kind::Map(p) => p.try_take().map(|r| r.map(Out::Map)),
            Kind::Unit(p) => p.try_take().map(|r| r.map(|()| Out::Unit)),
            Kind::Epoch(p) => p.try_take().map(|r| r.map(Out::Epoch)),
            Kind::Addr(p) => p.try_take().map(|r| r.map(Out::Addr)),
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<Out, CoreError>> {
        match self {
            Kind::Map(p) => Pin::new(p).poll(cx).map(|r| r.map(Out::Map)),
            Kind::Unit(p) => Pin::new(p).poll(cx).map(|r| r.map(|()| Out::Unit)),
            Kind::Epoch(p) => Pin::new(p).poll(cx).map(|r| r.map(Out::Epoch)),
            Kind::Addr(p) => Pin::new(p).poll(cx).map(|r| r.map(Out::Addr)),
        }
    }

    fn cancel(&self) {
        match self {
            Kind::Map(p) => p.cancel(),
            Kind::Unit(p) => p.cancel(),
            Kind::Epoch(p) => p.cancel(),
            Kind::Addr(p) => p.cancel(),
        }
    }
}

/// The waker a request registers with the core when it is made. The core
/// wakes it on whichever thread completes the request: the driver thread,
/// or a caller of the same client that drives the engine while it blocks.
/// It only flips `done` and notifies under its own short lock, then runs the
/// Python done-callbacks after releasing it, attaching to the interpreter
/// properly; no lock of the binding is held while Python code runs, and a
/// thread waiting in `Request.wait` holds none (the condvar releases it).
struct Completion {
    st: Mutex<CompletionState>,
    cond: Condvar,
}

struct CompletionState {
    done: bool,
    callbacks: Vec<Py<PyAny>>,
}

impl Completion {
    fn new(done: bool) -> Arc<Self> {
        Arc::new(Completion { st: Mutex::new(CompletionState { done, callbacks: Vec::new() }), cond: Condvar::new() })
    }

    /// Sleeps until done or `d` passes (GIL released by the caller).
    fn wait_done(&self, d: Duration) {
        let st = lock(&self.st);
        if !st.done {
            let _ = self.cond.wait_timeout(st, d);
        }
    }
}

impl Wake for Completion {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let callbacks = {
            let mut st = lock(&self.st);
            st.done = true;
            std::mem::take(&mut st.callbacks)
        };
        self.cond.notify_all();
        if callbacks.is_empty() {
            return;
        }
        let _ = Python::try_attach(move |py| {
            for cb in callbacks {
                if let Err(e) = cb.call0(py) {
                    e.write_unraisable(py, Some(cb.bind(py)));
                }
            }
        });
    }
}

/// A request in progress (what the `start_*` methods return; `pcp_rs.aio`
/// awaits these). The request goes on whether or not anyone waits;
/// `cancel()` abandons it.
///
/// Locks: `result` is held only to move the outcome out of the core's
/// `Pending` (never while waiting or running Python code); `kind` is not
/// behind a lock at all (`try_take` and `cancel` take `&self`), so `cancel()`
/// from one thread never waits for another thread's `wait()`.
#[pyclass(module = "pcp_rs._pcp_rs", name = "Request", frozen)]
struct PyRequest {
    inner: Arc<Inner>,
    kind: Kind,
    result: Mutex<Option<Result<Out, CoreError>>>,
    completion: Arc<Completion>,
}

impl PyRequest {
    fn new(inner: &Arc<Inner>, mut kind: Kind) -> Self {
        // Register our waker now, while we own the Pending: completion then
        // needs no lock of ours to be reached.
        let completion = Completion::new(false);
        let waker = Waker::from(completion.clone());
        let mut cx = Context::from_waker(&waker);
        let result = match kind.poll(&mut cx) {
            Poll::Ready(r) => {
                lock(&completion.st).done = true;
                Some(r)
            }
            Poll::Pending => None,
        };
        PyRequest { inner: inner.clone(), kind, result: Mutex::new(result), completion }
    }

    /// Moves the outcome out of the core if it has arrived.
    fn settle(&self) -> bool {
        let mut r = lock(&self.result);
        if r.is_none() {
            *r = self.kind.try_take();
        }
        r.is_some()
    }

    fn convert(&self, py: Python<'_>, r: Result<Out, CoreError>) -> PyResult<Py<PyAny>> {
        match r {
            Ok(Out::Map(m)) => Ok(Py::new(py, PyMapping::new(&self.inner, m.info().clone()))?.into_any()),
            Ok(Out::Unit) => Ok(py.None()),
            Ok(Out::Epoch(e)) => Ok(e.into_pyobject(py)?.into_any().unbind()),
            Ok(Out::Addr(ip)) => Ok(ip_str(ip).into_pyobject(py)?.into_any().unbind()),
            Err(e) => Err(to_pyerr(py, e)),
        }
    }
}

#[pymethods]
impl PyRequest {
    fn done(&self) -> bool {
        self.settle()
    }

    /// The result (a Mapping, None, an epoch or an address); raises the
    /// request's error, or RuntimeError if it has not finished.
    fn result(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if !self.settle() {
            return Err(PyRuntimeError::new_err("the request has not finished"));
        }
        let r = lock(&self.result).clone().expect("settled");
        self.convert(py, r)
    }

    /// Blocks (GIL released; Ctrl-C cancels the request) until the request
    /// finishes or `timeout` seconds pass; returns the result or raises its
    /// error. Nothing is locked while it sleeps: other threads may call `done()`,
    /// `result()` or `cancel()` on the same request meanwhile.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let deadline = timeout.map(|t| seconds(t, "timeout")).transpose()?.map(|t| Instant::now() + t);
        loop {
            if self.settle() {
                return self.result(py);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(pyo3::exceptions::PyTimeoutError::new_err("the request is still in progress"));
            }
            let slice = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
                None => SLICE,
            };
            let completion = self.completion.clone();
            py.detach(move || completion.wait_done(slice));
            if let Err(e) = py.check_signals() {
                // As the blocking calls do: Ctrl-C abandons the request.
                self.kind.cancel();
                return Err(e);
            }
        }
    }

    /// Abandons the request (a mapping being made is deleted on the server if
    /// the request may have reached it).
    fn cancel(&self) {
        self.kind.cancel();
    }

    /// Calls `callback()` (no arguments) once the request finishes: at once
    /// (on this thread) if it has, else on whichever thread completes it (the
    /// client's driver thread, or a thread blocked in a call of the same
    /// client). The callback holds the GIL; keep it short. For asyncio pass
    /// e.g. `functools.partial(loop.call_soon_threadsafe, on_done)`.
    fn add_done_callback(&self, py: Python<'_>, callback: Py<PyAny>) -> PyResult<()> {
        if !callback.bind(py).is_callable() {
            return Err(PyTypeError::new_err("callback must be callable"));
        }
        let now = {
            let mut st = lock(&self.completion.st);
            if st.done {
                true
            } else {
                st.callbacks.push(callback.clone_ref(py));
                false
            }
        };
        if now {
            callback.call0(py)?;
        }
        Ok(())
    }

    /// `Request[Mapping]` and the like, for annotations.
    #[classmethod]
    fn __class_getitem__(cls: &Bound<'_, pyo3::types::PyType>, item: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let py = cls.py();
        Ok(py.import("types")?.getattr("GenericAlias")?.call1((cls, item))?.unbind())
    }
}

// ----------------------------------------------------------- discovery --

/// A PCP server that answered discovery.
#[pyclass(module = "pcp_rs._pcp_rs", name = "Discovered", frozen, get_all)]
struct PyDiscovered {
    server_ip: String,
    server_port: u16,
    epoch: u32,
    internal_ip: String,
}

#[pymethods]
impl PyDiscovered {
    /// "ip:port" (IPv6 in brackets): pass it to Client or PCPClient.
    #[getter]
    fn address(&self) -> String {
        match self.server_ip.parse::<IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, self.server_port).to_string(),
            Err(_) => format!("{}:{}", self.server_ip, self.server_port),
        }
    }

    fn __repr__(&self) -> String {
        format!("<pcp_rs.Discovered server={} epoch={} internal_ip={}>", self.address(), self.epoch, self.internal_ip)
    }
}

/// Finds the PCP server: ANNOUNCE to each candidate ("host[:port]" strings or
/// (host, port) tuples) or, without candidates, to the default gateways of
/// the routing table. Raises NoGateway if none answers within `deadline`.
#[pyfunction]
#[pyo3(signature = (candidates=None, *, deadline=None))]
fn discover(py: Python<'_>, candidates: Option<&Bound<'_, PyAny>>, deadline: Option<f64>) -> PyResult<PyDiscovered> {
    let c = server_list(candidates)?;
    let d = deadline.map(|d| seconds(d, "deadline")).transpose()?;
    let dc = discovery_config(c, d);
    let found = run_blocking(py, move || discovery::discover(&dc))?.map_err(|e| to_pyerr(py, e))?;
    Ok(PyDiscovered {
        server_ip: ip_str(found.server.ip()),
        server_port: found.server.port(),
        epoch: found.epoch,
        internal_ip: ip_str(found.internal_addr),
    })
}

/// Parses "host", "host:port", "[v6]:port" as the clients do: (ip, port).
#[pyfunction(name = "parse_server")]
fn py_parse_server(server: &Bound<'_, PyAny>) -> PyResult<(String, u16)> {
    let a = server_addr(server)?;
    Ok((ip_str(a.ip()), a.port()))
}

/// The exception instance the binding makes for the core error named `name`
/// (a `pcp_core::Error::code()`): lets tests check the conversion of every
/// code, including those no server can provoke (BAD_RESPONSE, IO, ...).
#[pyfunction]
fn _core_error<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    let code = ErrorCode::by_name(name).ok_or_else(|| value_error(format!("no core error is named {name:?}")))?;
    let e = match name {
        "IO" => CoreError::from(std::io::Error::from_raw_os_error(13)),
        "UNSUPP_VERSION" => CoreError::UnsuppVersion { server_version: 0 },
        _ => CoreError::example(code, "made up for a test"),
    };
    exception_value(py, &e)
}

/// The core's registry of error codes, in its order: (name, PCP result
/// code or None, summary, short-term). `pcp_rs.errors` builds its table from it.
#[pyfunction]
fn error_codes() -> Vec<(&'static str, Option<u8>, &'static str, bool)> {
    ErrorCode::ALL.iter().map(|c| (c.name, c.result_code, c.summary, c.short_term)).collect()
}

// -------------------------------------------------------------- server --

/// The core's PCP test server (`pcp_rs.testing.Server`).
#[pyclass(module = "pcp_rs._pcp_rs", name = "Server", frozen)]
struct PyServer {
    server: Mutex<Option<CoreServer>>,
    addr: SocketAddr,
}

impl PyServer {
    fn with<T>(&self, f: impl FnOnce(&CoreServer) -> T) -> PyResult<T> {
        match &*lock(&self.server) {
            Some(s) => Ok(f(s)),
            None => Err(PyRuntimeError::new_err("the test server is stopped")),
        }
    }
}

fn result_code_arg(obj: &Bound<'_, PyAny>) -> PyResult<ResultCode> {
    // An int, an RFC name, or an exception class / instance with `code`.
    let obj =
        if obj.hasattr("code")? && !obj.is_instance_of::<PyString>() && !obj.is_instance_of::<pyo3::types::PyInt>() {
            obj.getattr("code")?
        } else {
            obj.clone()
        };
    if let Ok(s) = obj.cast::<PyString>() {
        let s = s.to_cow()?;
        let up = s.trim().to_ascii_uppercase();
        return ResultCode::ALL
            .iter()
            .copied()
            .find(|c| c.name() == up)
            .ok_or_else(|| value_error(format!("unknown PCP result code name {s:?}")));
    }
    if obj.is_none() {
        return Err(value_error("this class has no PCP result code"));
    }
    let v = int_in(&obj, "result code", 0, 13)?;
    Ok(ResultCode::from_u8(v as u8).expect("in range"))
}

#[pymethods]
impl PyServer {
    #[new]
    #[pyo3(signature = (host="127.0.0.1", port=0, *, external_ip="203.0.113.7", min_lifetime=1, max_lifetime=86400,
        port_range=(20000, 60000), allow_third_party=true, announce_to_known_clients=true, initial_epoch=0,
        mode="both"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        host: &str,
        port: u16,
        external_ip: &str,
        min_lifetime: u32,
        max_lifetime: u32,
        port_range: (u16, u16),
        allow_third_party: bool,
        announce_to_known_clients: bool,
        initial_epoch: u32,
        mode: &str,
    ) -> PyResult<Self> {
        let mode = match mode {
            "both" => ServerMode::PcpAndNatPmp,
            "pcp" => ServerMode::PcpOnly,
            "natpmp" => ServerMode::NatPmpOnly,
            other => return Err(value_error(format!("mode must be 'both', 'pcp' or 'natpmp', not {other:?}"))),
        };
        let ip: IpAddr = host
            .trim_matches(|c| c == '[' || c == ']')
            .parse()
            .map_err(|_| value_error(format!("host must be an IP address, got {host:?}")))?;
        let ext: IpAddr = external_ip
            .parse()
            .map_err(|_| value_error(format!("external_ip is not an IP address: {external_ip:?}")))?;
        if min_lifetime > max_lifetime {
            return Err(value_error("min_lifetime must not exceed max_lifetime"));
        }
        if port_range.0 == 0 || port_range.0 > port_range.1 {
            return Err(value_error("port_range must be (low, high) with 0 < low <= high"));
        }
        // `..default()` keeps this building when the core adds a setting.
        #[allow(clippy::needless_update)]
        let cfg = ServerConfig {
            listen: SocketAddr::new(ip, port),
            external_addr: ext,
            port_range,
            min_lifetime,
            max_lifetime,
            announce_to: Vec::new(),
            announce_to_known_clients,
            allow_third_party,
            initial_epoch,
            mode,
            ..ServerConfig::default()
        };
        let server = CoreServer::start(cfg).map_err(|e| to_pyerr(py, e.into()))?;
        let addr = server.local_addr();
        Ok(PyServer { server: Mutex::new(Some(server)), addr })
    }

    /// "ip:port" to give to a client.
    #[getter]
    fn address(&self) -> String {
        self.addr.to_string()
    }
    #[getter]
    fn host(&self) -> String {
        ip_str(self.addr.ip())
    }
    #[getter]
    fn port(&self) -> u16 {
        self.addr.port()
    }
    #[getter]
    fn external_ip(&self) -> PyResult<String> {
        self.with(|s| ip_str(s.external_addr()))
    }
    #[getter]
    fn epoch(&self) -> PyResult<u32> {
        self.with(|s| s.epoch())
    }
    #[getter]
    fn running(&self) -> bool {
        lock(&self.server).is_some()
    }

    /// Silently drops the next `n` requests.
    fn drop_next(&self, n: u32) -> PyResult<()> {
        self.with(|s| s.drop_next(n))
    }

    /// Delays every answer by `seconds` (0 to stop).
    fn set_delay(&self, seconds: f64) -> PyResult<()> {
        let d = self::seconds(seconds, "seconds")?;
        self.with(|s| s.set_delay(d))
    }

    /// Answers every MAP and PEER with `code` (an int, an RFC name such as
    /// "NO_RESOURCES", or an exception class like pcp_rs.NoResources) and
    /// the error `lifetime`; None answers normally again.
    #[pyo3(signature = (code, lifetime=30))]
    fn force_result(&self, code: &Bound<'_, PyAny>, lifetime: u32) -> PyResult<()> {
        let forced = if code.is_none() { None } else { Some((result_code_arg(code)?, lifetime)) };
        self.with(|s| s.force_result(forced))
    }

    /// Answers MAP and PEER requests that create or renew a mapping with the
    /// crafted datagrams of the named hostile case (the names of
    /// tests/hostile/cases.json, e.g. "wrong_nonce"); None answers normally again.
    fn set_hostile(&self, name: Option<&str>) -> PyResult<()> {
        let case = match name {
            None => None,
            Some(n) => Some(
                pcp_core::server::Hostile::from_name(n)
                    .ok_or_else(|| value_error("name: no hostile case of that name".to_string()))?,
            ),
        };
        self.with(|s| s.set_hostile(case))
    }

    /// Loses this fraction (0.0 to 1.0) of the datagrams, each way.
    fn set_loss(&self, fraction: f64) -> PyResult<()> {
        if !(0.0..=1.0).contains(&fraction) {
            return Err(value_error(format!("fraction must be between 0 and 1, got {fraction}")));
        }
        self.with(|s| s.set_loss(fraction))
    }

    /// Loses all state, restarts the epoch at 0 and announces it, as a
    /// rebooted gateway does.
    fn reboot(&self) -> PyResult<()> {
        self.with(|s| s.reboot())
    }

    /// Changes the external address and announces it.
    fn set_external_ip(&self, ip: &Bound<'_, PyAny>) -> PyResult<()> {
        let ip = parse_ip(ip, "ip")?;
        self.with(|s| s.set_external_addr(ip))
    }

    /// Live mappings, as dicts.
    fn mappings<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let ms = self.with(|s| s.mappings())?;
        let now = Instant::now();
        ms.into_iter()
            .map(|m| {
                let d = PyDict::new(py);
                d.set_item("opcode", opcode_name(m.opcode))?;
                d.set_item("protocol", m.protocol.0)?;
                d.set_item("internal_ip", ip_str(m.internal_addr))?;
                d.set_item("internal_port", m.internal_port)?;
                d.set_item("external_ip", ip_str(m.external_addr))?;
                d.set_item("external_port", m.external_port)?;
                d.set_item("peer_ip", m.remote.map(|(ip, _)| ip_str(ip)))?;
                d.set_item("peer_port", m.remote.map(|(_, p)| p))?;
                d.set_item("nonce", PyBytes::new(py, m.nonce.as_bytes()))?;
                d.set_item("expires_in", m.expires_at.saturating_duration_since(now).as_secs_f64())?;
                d.set_item("filters", m.filters)?;
                Ok(d)
            })
            .collect()
    }

    fn mapping_count(&self) -> PyResult<usize> {
        self.with(|s| s.mapping_count())
    }

    /// Requests received so far (including dropped ones).
    fn requests_received(&self) -> PyResult<u64> {
        self.with(|s| s.requests_received())
    }

    /// Stops the server (idempotent); its port stops answering.
    fn stop(&self, py: Python<'_>) {
        let taken = lock(&self.server).take();
        if let Some(mut s) = taken {
            py.detach(move || s.stop());
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Stops; never suppresses the exception.
    #[pyo3(signature = (_exc_type, _exc, _tb, /))]
    fn __exit__(&self, py: Python<'_>, _exc_type: &Bound<'_, PyAny>, _exc: &Bound<'_, PyAny>, _tb: &Bound<'_, PyAny>) {
        self.stop(py);
    }

    fn __repr__(&self) -> String {
        format!("<pcp_rs.testing.Server {}{}>", self.addr, if self.running() { "" } else { " stopped" })
    }
}

// -------------------------------------------------------------- module --

#[pymodule]
fn _pcp_rs(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyClient>()?;
    m.add_class::<PyMapping>()?;
    m.add_class::<PyEvent>()?;
    m.add_class::<PyEventIterator>()?;
    m.add_class::<PyRequest>()?;
    m.add_class::<PyDiscovered>()?;
    m.add_class::<PyServer>()?;
    m.add_function(wrap_pyfunction!(discover, m)?)?;
    m.add_function(wrap_pyfunction!(py_parse_server, m)?)?;
    m.add_function(wrap_pyfunction!(error_codes, m)?)?;
    // Private: set as attributes, so they stay out of the module's __all__.
    m.setattr("_close_all", wrap_pyfunction!(_close_all, m)?)?;
    m.setattr("_core_error", wrap_pyfunction!(_core_error, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
