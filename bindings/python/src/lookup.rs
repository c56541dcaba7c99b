//! Discovery, server parsing, and the registry of error codes.

use super::*;

/// A PCP server that answered discovery.
#[pyclass(module = "pcp_rs._pcp_rs", name = "Discovered", frozen, get_all)]
pub(crate) struct PyDiscovered {
    pub(crate) server_ip: String,
    pub(crate) server_port: u16,
    pub(crate) epoch: u32,
    pub(crate) internal_ip: String,
    /// "ip:port" (IPv6 in brackets): pass it to Client or PCPClient.
    pub(crate) address: String,
}

#[pymethods]
impl PyDiscovered {
    fn __repr__(&self) -> String {
        format!("<pcp_rs.Discovered server={} epoch={} internal_ip={}>", self.address, self.epoch, self.internal_ip)
    }
}

/// Finds the PCP server: ANNOUNCE to each candidate ("host[:port]" strings or
/// (host, port) tuples) or, without candidates, to the default gateways of
/// the routing table. Raises NoGateway if none answers within `deadline`.
#[pyfunction]
#[pyo3(signature = (candidates=None, *, deadline=None))]
pub(crate) fn discover(
    py: Python<'_>,
    candidates: Option<&Bound<'_, PyAny>>,
    deadline: Option<f64>,
) -> PyResult<PyDiscovered> {
    let c = server_list(candidates)?;
    let d = opt_seconds(deadline, "deadline")?;
    let dc = discovery_config(c, d);
    // Ctrl-C abandons it at once (the core's discovery ends by its deadline).
    let found = wait(py, pcp_core::client::discover_async(dc))?;
    Ok(PyDiscovered {
        server_ip: ip_str(found.server.ip()),
        server_port: found.server.port(),
        epoch: found.epoch,
        internal_ip: ip_str(found.internal_addr),
        address: SocketAddr::new(found.server.ip().to_canonical(), found.server.port()).to_string(),
    })
}

/// Parses "host", "host:port", "[v6]:port" as the clients do: (ip, port).
#[pyfunction(name = "parse_server")]
pub(crate) fn py_parse_server(server: &Bound<'_, PyAny>) -> PyResult<(String, u16)> {
    let a = server_addr(server)?;
    Ok((ip_str(a.ip()), a.port()))
}

/// The exception instance the binding makes for the core error named `name`
/// (a `pcp_core::Error::code()`): lets tests check the conversion of every
/// code, including those no server can provoke (BAD_RESPONSE, IO, ...).
#[pyfunction]
pub(crate) fn _core_error<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    let code =
        ErrorCode::by_name(name).ok_or_else(|| PyValueError::new_err(format!("no core error is named {name:?}")))?;
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
pub(crate) fn error_codes() -> Vec<(&'static str, Option<u8>, &'static str, bool)> {
    ErrorCode::ALL.iter().map(|c| (c.name, c.result_code, c.summary, c.short_term)).collect()
}
