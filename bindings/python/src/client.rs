//! `pcp_rs.Client`: one core client, its event handlers and close hooks.

use super::*;

/// A client as the binding holds it: closed (with the GIL released) when the
/// last Python object that needs it goes.
pub(crate) struct Inner {
    pub(crate) core: CoreClient,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing joins the driver thread, which may be waiting for the GIL
        // to run a callback: release it while closing.
        let core = self.core.clone();
        if Python::try_attach(|py| py.detach(|| core.close())).is_none() {
            self.core.close();
        }
    }
}

/// Every client made, so that `_close_all` (registered with atexit) can close
/// them before the interpreter finalizes.
pub(crate) static LIVE: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());

/// Closes every client still open (pcp_rs registers this with atexit).
#[pyfunction]
pub(crate) fn _close_all(py: Python<'_>) {
    let live: Vec<Arc<Inner>> = lock(&LIVE).drain(..).filter_map(|w| w.upgrade()).collect();
    py.detach(|| {
        for c in &live {
            c.core.close();
        }
    });
    drop(live);
}

pub(crate) fn discovery_config(candidates: Option<Vec<SocketAddr>>, deadline: Option<Duration>) -> DiscoveryConfig {
    let mut dc = candidates.map_or_else(DiscoveryConfig::default, DiscoveryConfig::with_candidates);
    dc.deadline = deadline.unwrap_or(dc.deadline);
    dc
}

/// The MAP request of the arguments MAP and PEER share (a PEER is made
/// from it by the core's `MapSpec::into_peer`).
fn request_spec(
    protocol: &Bound<'_, PyAny>,
    internal_port: &Bound<'_, PyAny>,
    external_port: Option<&Bound<'_, PyAny>>,
    lifetime: Option<&Bound<'_, PyAny>>,
    external_ip: Option<&Bound<'_, PyAny>>,
    third_party: Option<&Bound<'_, PyAny>>,
    nonce: Option<&Bound<'_, PyAny>>,
) -> PyResult<MapSpec> {
    let mut spec = MapSpec::new(self::protocol(protocol)?, port(internal_port, "internal_port")?);
    if let Some(p) = external_port {
        spec = spec.external_port(port(p, "external_port")?);
    }
    if let Some(l) = lifetime {
        spec = spec.lifetime(self::lifetime(l)?);
    }
    let spec = spec.external_addr(opt_ip(external_ip, "external_ip")?);
    Ok(spec.third_party(opt_ip(third_party, "third_party")?).nonce(self::nonce(nonce)?))
}

/// A PCP client for one server (see the `pcp_rs.Client` docs in the stub).
#[pyclass(module = "pcp_rs._pcp_rs", name = "Client", frozen, weakref)]
pub(crate) struct PyClient {
    pub(crate) inner: Arc<Inner>,
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
        max_retransmissions: Option<i64>,
        announce_delay_max: Option<f64>,
        protocol: &str,
    ) -> PyResult<Self> {
        let protocol = pcp_core::config::parse_protocol_choice(protocol, "protocol").map_err(|e| to_pyerr(py, e))?;
        // An i64, so that -1 is the core's range error (INVALID_ARGUMENT), not an OverflowError.
        let max_retransmissions = max_retransmissions
            .map(|n| pcp_core::config::whole_number(n as f64, "max_retransmissions", u32::MAX))
            .transpose()
            .map_err(|e| to_pyerr(py, e))?;
        let candidates = server_list(candidates)?;
        let deadline = opt_seconds(deadline, "deadline")?;
        let close_timeout = opt_seconds(close_timeout, "close_timeout")?;
        let announce_delay_max = opt_seconds(announce_delay_max, "announce_delay_max")?;
        let discovery_deadline = opt_seconds(discovery_deadline, "discovery_deadline")?;
        let local = opt_ip(local_ip, "local_ip")?;
        // The core's defaults otherwise: notably listen_announce (UDP 5350
        // with address reuse; the core carries on if the port is busy).
        let config = move |addr: SocketAddr| {
            let mut cc = ClientConfig::new(addr).protocol(protocol);
            if let Some(d) = deadline {
                cc = cc.deadline(d);
            }
            cc.listen_announce = listen_announce.unwrap_or(cc.listen_announce);
            cc.local_addr = local;
            cc.delete_on_close = delete_on_close;
            cc.close_timeout = close_timeout.unwrap_or(cc.close_timeout);
            cc.announce_delay_max = announce_delay_max.unwrap_or(cc.announce_delay_max);
            cc.retransmit.max_retransmissions = max_retransmissions.or(cc.retransmit.max_retransmissions);
            cc
        };
        let core = match server {
            Some(s) => {
                if candidates.is_some() {
                    return Err(invalid("give either a server or candidates to discover among, not both"));
                }
                let cc = config(server_addr(s)?);
                py.detach(move || CoreClient::new(cc)).map_err(|e| to_pyerr(py, e))?
            }
            // Discovery on the core's helper thread: Ctrl-C abandons it at once.
            None => wait(py, CoreClient::discover_async(discovery_config(candidates, discovery_deadline), config))?,
        };
        let inner = Arc::new(Inner { core });
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

    /// Sends from `addr` from now on (None: the route's choice again),
    /// moving the socket at once; if our address changes, the mappings are
    /// made again from the new one and an "internal_ip_changed" event says
    /// so (RFC 6887 section 11.5). Returns whether it changed.
    #[pyo3(signature = (addr, /))]
    fn set_local_address(&self, py: Python<'_>, addr: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        let ip = opt_ip(addr, "addr")?;
        let core = &self.inner.core;
        py.detach(|| core.set_local_address(ip)).map_err(|e| to_pyerr(py, e))
    }

    /// Checks our address towards the server now (the client also does
    /// before each renewal): True if it changed (see `set_local_address`).
    fn refresh_internal_address(&self, py: Python<'_>) -> PyResult<bool> {
        let core = &self.inner.core;
        py.detach(|| core.refresh_internal_address()).map_err(|e| to_pyerr(py, e))
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

    /// MAP: a mapping for inbound traffic to `internal_port` (RFC 6887
    /// section 11); a Request for the Mapping (`map` waits for it).
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
        let spec = request_spec(protocol, internal_port, external_port, lifetime, external_ip, third_party, nonce)?;
        let spec = self::filters(filters)?.into_iter().fold(spec.prefer_failure_if(prefer_failure), MapSpec::filter);
        Ok(PyRequest::new(&self.inner, self.inner.core.map_async(spec), Value::Mapping))
    }

    /// PEER: a mapping for the traffic with one remote peer (RFC 6887
    /// section 12); a Request for the Mapping (`peer` waits for it).
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
        let spec = request_spec(protocol, internal_port, external_port, lifetime, external_ip, third_party, nonce)?;
        let peer = (parse_ip(peer_ip, "peer_ip")?, port(peer_port, "peer_port")?);
        let spec = spec.into_peer(peer.0, peer.1).map_err(|e| to_pyerr(peer_ip.py(), e))?;
        Ok(PyRequest::new(&self.inner, self.inner.core.peer_async(spec), Value::Mapping))
    }

    /// The classic MAP (`PCPClient.create_mapping`): joins a call for the
    /// same port in flight, refreshes a mapping held for it (the core's
    /// `Client::map_port`); a Request for the Mapping (`map_port` waits for it).
    #[pyo3(signature = (protocol, internal_port, external_port=None, lifetime=None))]
    fn start_map_port(
        &self,
        protocol: &Bound<'_, PyAny>,
        internal_port: &Bound<'_, PyAny>,
        external_port: Option<&Bound<'_, PyAny>>,
        lifetime: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyRequest> {
        let (proto, internal) = (self::protocol(protocol)?, port(internal_port, "internal_port")?);
        let external = external_port.map(|o| port(o, "external_port")).transpose()?.unwrap_or(0);
        let life = lifetime.map(self::lifetime).transpose()?.unwrap_or(pcp_core::config::DEFAULT_LIFETIME);
        Ok(PyRequest::new(&self.inner, self.inner.core.map_port_async(proto, internal, external, life), Value::Mapping))
    }

    /// The classic PEER (`PCPClient.create_peer_mapping`), with the rules of
    /// `start_map_port` for one port towards one peer (the core's
    /// `Client::peer_port`); a Request for the Mapping (`peer_port` waits for it).
    #[pyo3(signature = (protocol, internal_port, peer_ip, peer_port, lifetime=None))]
    fn start_peer_port(
        &self,
        protocol: &Bound<'_, PyAny>,
        internal_port: &Bound<'_, PyAny>,
        peer_ip: &Bound<'_, PyAny>,
        peer_port: &Bound<'_, PyAny>,
        lifetime: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyRequest> {
        let (proto, internal) = (self::protocol(protocol)?, port(internal_port, "internal_port")?);
        let (ip, remote) = (parse_ip(peer_ip, "peer_ip")?, port(peer_port, "peer_port")?);
        let life = lifetime.map(self::lifetime).transpose()?.unwrap_or(pcp_core::config::DEFAULT_LIFETIME);
        Ok(PyRequest::new(
            &self.inner,
            self.inner.core.peer_port_async(proto, internal, ip, remote, life),
            Value::Mapping,
        ))
    }

    /// The classic delete (`PCPClient.delete_mapping`): nothing to do if the
    /// client holds no mapping for the port; a Request (`delete_port` waits for it).
    fn start_delete_port(&self, protocol: &Bound<'_, PyAny>, internal_port: &Bound<'_, PyAny>) -> PyResult<PyRequest> {
        let p = self.inner.core.delete_port_async(self::protocol(protocol)?, port(internal_port, "internal_port")?);
        Ok(PyRequest::new(&self.inner, p, |()| Value::Done))
    }

    /// Deletes a mapping of this client (lifetime 0 with its nonce); a
    /// Request (`delete` waits for it).
    fn start_delete(&self, mapping: &Bound<'_, PyMapping>) -> PyResult<PyRequest> {
        let m = mapping.get();
        if !Arc::ptr_eq(&m.inner, &self.inner) {
            return Err(invalid("this mapping belongs to another client"));
        }
        Ok(PyRequest::new(&self.inner, self.inner.core.delete_async(lock(&m.info).id), |()| Value::Done))
    }

    /// Deletes a mapping this client did not make, known by its nonce (and
    /// its THIRD_PARTY address, for a mapping made for another host); a
    /// Request (`delete_by_nonce` waits for it).
    #[pyo3(signature = (protocol, internal_port, nonce, *, third_party=None))]
    fn start_delete_by_nonce(
        &self,
        protocol: &Bound<'_, PyAny>,
        internal_port: &Bound<'_, PyAny>,
        nonce: &Bound<'_, PyAny>,
        third_party: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyRequest> {
        let n = self::nonce(Some(nonce))?.ok_or_else(|| PyTypeError::new_err("nonce must not be None"))?;
        let spec = MapSpec::new(self::protocol(protocol)?, port(internal_port, "internal_port")?).nonce(n);
        let spec = spec.third_party(opt_ip(third_party, "third_party")?);
        Ok(PyRequest::new(&self.inner, self.inner.core.delete_with_async(spec), |()| Value::Done))
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

    /// Sends ANNOUNCE; a Request for the server's epoch (`announce` waits for it).
    fn start_announce(&self) -> PyRequest {
        PyRequest::new(&self.inner, self.inner.core.announce_async(), Value::Epoch)
    }

    /// Asks for the gateway's external IP address; a Request for it
    /// (`external_address` waits for it).
    fn start_external_address(&self) -> PyRequest {
        PyRequest::new(&self.inner, self.inner.core.external_address_async(), Value::Ip)
    }

    /// Calls `callback(event)` for every event, on the client's driver
    /// thread; returns an id for `remove_event_handler`.
    fn on_event(&self, callback: Py<PyAny>) -> PyResult<u64> {
        Python::attach(|py| check_callable(py, &callback))?;
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
        Ok(handler.0)
    }

    /// Unregisters a callback of `on_event`: once this returns it is not
    /// running on another thread and is never called again (the core waits
    /// for a call running on the driver thread, not for one this thread is
    /// in). Returns whether it was registered.
    fn remove_event_handler(&self, py: Python<'_>, handler_id: u64) -> bool {
        // The running call the core waits for may be waiting for the GIL.
        let core = &self.inner.core;
        py.detach(|| core.remove_event_handler(HandlerId(handler_id)))
    }

    /// Calls `callback()` once the client is closed, by whatever path
    /// (`close`, `close_keep`, the last reference going, exit): at once if it
    /// already is, else on the client's driver thread as it stops, before
    /// `close()` returns (unless `close()` is called from an event callback).
    fn on_close(&self, py: Python<'_>, callback: Py<PyAny>) -> PyResult<()> {
        check_callable(py, &callback)?;
        if self.inner.core.is_closed() {
            // At once, here: an exception goes to the caller.
            return callback.call0(py).map(drop);
        }
        self.inner.core.on_close(move || {
            let _ = Python::try_attach(|py| call_reporting(py, &callback));
        });
        Ok(())
    }

    /// An iterator over every event from now on.
    fn events(&self) -> PyEventIterator {
        PyEventIterator { inner: self.inner.clone(), rx: Mutex::new(self.inner.core.events()) }
    }

    /// Deletes the client's mappings (unless delete_on_close=False) and stops.
    fn close(&self, py: Python<'_>) {
        self.shut_down(py, false);
    }

    /// Stops without deleting: the mappings stay until their lifetimes end.
    fn close_keep(&self, py: Python<'_>) {
        self.shut_down(py, true);
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
    /// Closes, joining the driver thread (which runs the `on_close`
    /// callbacks and may want the GIL for them), so with the GIL released.
    fn shut_down(&self, py: Python<'_>, keep: bool) {
        let core = self.inner.core.clone();
        py.detach(|| if keep { core.close_keep() } else { core.close() });
    }
}
