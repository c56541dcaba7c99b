//! `pcp_rs.testing.Server`: the core's test server.

use super::*;

/// The core's PCP test server (`pcp_rs.testing.Server`).
#[pyclass(module = "pcp_rs._pcp_rs", name = "Server", frozen)]
pub(crate) struct PyServer {
    pub(crate) server: Mutex<Option<CoreServer>>,
    pub(crate) addr: SocketAddr,
}

impl PyServer {
    pub(crate) fn with<T>(&self, f: impl FnOnce(&CoreServer) -> T) -> PyResult<T> {
        match &*lock(&self.server) {
            Some(s) => Ok(f(s)),
            // INVALID_ARGUMENT, as in Node.
            None => Err(invalid("the test server is stopped")),
        }
    }
}

/// An int taken as i64 (-1 is then the core's range error, INVALID_ARGUMENT
/// as in Node, not an OverflowError), 0 to `u32::MAX`.
fn whole_i64(py: Python<'_>, v: i64, what: &str) -> PyResult<u32> {
    pcp_core::config::whole_number(v as f64, what, u32::MAX).map_err(|e| to_pyerr(py, e))
}

/// An int, an RFC name, or an exception class / instance with `code`; the
/// core says which codes are errors a test server can be made to answer.
pub(crate) fn result_code_arg(obj: &Bound<'_, PyAny>) -> PyResult<ResultCode> {
    let obj =
        if obj.hasattr("code")? && !obj.is_instance_of::<PyString>() && !obj.is_instance_of::<pyo3::types::PyInt>() {
            obj.getattr("code")?
        } else {
            obj.clone()
        };
    let core = |e: CoreError| to_pyerr(obj.py(), e);
    if let Ok(s) = obj.cast::<PyString>() {
        return pcp_core::server::error_code_by_name(&s.to_cow()?).map_err(core);
    }
    if obj.is_none() {
        return Err(invalid("this class has no PCP result code"));
    }
    pcp_core::server::error_code_by_number(whole(&obj, "code", u32::MAX)?.into()).map_err(core)
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
        let core = |e: CoreError| to_pyerr(py, e);
        let mode = ServerMode::parse(mode).map_err(core)?;
        let ip = pcp_core::config::parse_ip(host, "host").map_err(core)?;
        let ext = pcp_core::config::parse_ip(external_ip, "external_ip").map_err(core)?;
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
        cfg.validate().map_err(core)?;
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
    fn drop_next(&self, py: Python<'_>, n: i64) -> PyResult<()> {
        let n = whole_i64(py, n, "n")?;
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
    fn force_result(&self, code: &Bound<'_, PyAny>, lifetime: i64) -> PyResult<()> {
        let lifetime = whole_i64(code.py(), lifetime, "lifetime")?;
        let forced = if code.is_none() { None } else { Some((result_code_arg(code)?, lifetime)) };
        self.with(|s| s.force_result(forced))
    }

    /// Answers MAP and PEER requests that create or renew a mapping with the
    /// crafted datagrams of the named hostile case (the names of
    /// tests/hostile/cases.json, e.g. "wrong_nonce"); None answers normally again.
    fn set_hostile(&self, py: Python<'_>, name: Option<&str>) -> PyResult<()> {
        let case = name.map(pcp_core::server::Hostile::parse).transpose().map_err(|e| to_pyerr(py, e))?;
        self.with(|s| s.set_hostile(case))
    }

    /// Loses this fraction (0.0 to 1.0) of the datagrams, each way.
    fn set_loss(&self, py: Python<'_>, fraction: f64) -> PyResult<()> {
        self.with(|s| s.set_loss(fraction))?.map_err(|e| to_pyerr(py, e))
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
                d.set_item("opcode", m.opcode.name())?;
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
