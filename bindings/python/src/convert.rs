//! Conversions: core errors to the exceptions of `pcp_rs.errors`, Python
//! values to core types (with `TypeError` / `ValueError`), and waiting with
//! the GIL released.

use super::*;

pub(crate) static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

pub(crate) fn errors_module(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    ERRORS.get_or_try_init(py, || py.import("pcp_rs.errors").map(Bound::unbind)).map(|m| m.bind(py).clone())
}

/// The Python exception instance for a core error.
pub(crate) fn exception_value<'py>(py: Python<'py>, e: &CoreError) -> PyResult<Bound<'py, PyAny>> {
    // The constructor arguments of the classes that have more than a message.
    let extra = PyDict::new(py);
    match e {
        CoreError::UnsuppVersion { server_version } => extra.set_item("server_version", server_version)?,
        CoreError::Io(io) => extra.set_item("errno", io.raw_os_error())?,
        _ => {}
    }
    errors_module(py)?.getattr("_from_core")?.call((e.code(), e.to_string(), e.retry_after()), Some(&extra))
}

pub(crate) fn to_pyerr(py: Python<'_>, e: CoreError) -> PyErr {
    match exception_value(py, &e) {
        Ok(v) => PyErr::from_value(v),
        Err(err) => err,
    }
}

/// A bad value this binding finds while converting: InvalidArgument (a
/// ValueError), as the core's own checks raise and as Node and C report.
pub(crate) fn invalid(msg: impl Into<String>) -> PyErr {
    Python::attach(|py| to_pyerr(py, CoreError::InvalidArgument(msg.into())))
}

// ----------------------------------------------------------- conversions --

pub(crate) fn ip_str(ip: IpAddr) -> String {
    ip.to_canonical().to_string()
}

/// An address argument: a str (the core's rule: [::1] and blanks allowed)
/// or an ipaddress.IPv4Address / IPv6Address.
pub(crate) fn parse_ip(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<IpAddr> {
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
    pcp_core::config::parse_ip(&text, what).map_err(|e| to_pyerr(obj.py(), e))
}

pub(crate) fn opt_ip(obj: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<IpAddr>> {
    obj.map(|o| parse_ip(o, what)).transpose()
}

/// A Python int (or an object with `__index__`) as a whole number from 0 to
/// `max`: its type is this shell's to check (TypeError), its range the
/// core's (`config::whole_number`: InvalidArgument, the words of every
/// language).
pub(crate) fn whole(obj: &Bound<'_, PyAny>, what: &str, max: u32) -> PyResult<u32> {
    let type_error = || {
        let name = obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
        PyTypeError::new_err(format!("{what} must be an int, not {name}"))
    };
    if obj.is_instance_of::<pyo3::types::PyBool>() {
        return Err(type_error());
    }
    let core = |e| to_pyerr(obj.py(), e);
    let v = match obj.extract::<i64>() {
        Ok(v) => v as f64,
        // Too big for i64 (so out of range): its digits, cut, as the core shows input.
        Err(_) if obj.is_instance_of::<pyo3::types::PyInt>() => {
            // Python refuses str() of an int of over 4300 digits.
            let digits = obj.str().map_or("a huge int".into(), |s| pcp_core::quote_input(&s.to_string_lossy()));
            return Err(core(pcp_core::config::not_a_whole_number(&digits, what, max)));
        }
        Err(_) => return Err(type_error()),
    };
    pcp_core::config::whole_number(v, what, max).map_err(core)
}

pub(crate) fn port(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<u16> {
    Ok(whole(obj, what, 65535)? as u16)
}

pub(crate) fn lifetime(obj: &Bound<'_, PyAny>) -> PyResult<u32> {
    whole(obj, "lifetime", u32::MAX)
}

pub(crate) fn protocol(obj: &Bound<'_, PyAny>) -> PyResult<Protocol> {
    if let Ok(s) = obj.cast::<PyString>() {
        return pcp_core::config::parse_protocol(&s.to_cow()?, "protocol").map_err(|e| to_pyerr(obj.py(), e));
    }
    Ok(Protocol(whole(obj, "protocol", 255)? as u8))
}

pub(crate) fn seconds(v: f64, what: &str) -> PyResult<Duration> {
    if !v.is_finite() || v < 0.0 {
        return Err(invalid(format!("{what} must be a non-negative number of seconds, got {v}")));
    }
    Duration::try_from_secs_f64(v).map_err(|_| invalid(format!("{what} is too large: {v}")))
}

pub(crate) fn opt_seconds(v: Option<f64>, what: &str) -> PyResult<Option<Duration>> {
    v.map(|v| seconds(v, what)).transpose()
}

pub(crate) fn nonce(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Nonce>> {
    let Some(obj) = obj else { return Ok(None) };
    if let Ok(b) = obj.cast::<PyBytes>() {
        let arr: [u8; 12] = b
            .as_bytes()
            .try_into()
            .map_err(|_| invalid(format!("nonce must be 12 bytes, got {}", b.as_bytes().len())))?;
        return Ok(Some(Nonce::from_bytes(arr)));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        let s = s.to_cow()?;
        return pcp_core::config::parse_nonce(&s, "nonce").map(Some).map_err(|e| to_pyerr(obj.py(), e));
    }
    Err(PyTypeError::new_err("nonce must be bytes (12) or a hex str (24 digits)"))
}

/// FILTER options: an iterable of `(remote_ip, prefix_len, remote_port)`.
pub(crate) fn filters(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<Filter>> {
    let Some(obj) = obj else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for item in obj.try_iter()? {
        let item = item?;
        let t: (Bound<'_, PyAny>, Bound<'_, PyAny>, Bound<'_, PyAny>) = item
            .extract()
            .map_err(|_| PyTypeError::new_err("each filter must be a tuple (remote_ip, prefix_len, remote_port)"))?;
        let remote_addr = parse_ip(&t.0, "filter remote_ip")?;
        // Too long for the address family: the core's check.
        let prefix_len = whole(&t.1, "filter prefix_len", 255)? as u8;
        let remote_port = port(&t.2, "filter remote_port")?;
        out.push(Filter { remote_addr, prefix_len, remote_port });
    }
    Ok(out)
}

pub(crate) fn server_addr(obj: &Bound<'_, PyAny>) -> PyResult<SocketAddr> {
    if let Ok(s) = obj.cast::<PyString>() {
        // A host name is resolved here: never with the GIL held.
        let s = s.to_cow()?.into_owned();
        let py = obj.py();
        return py.detach(move || parse_server(&s)).map_err(|e| to_pyerr(py, e));
    }
    // The other forms get the checks parse_server applies to text.
    let checked = |sa| pcp_core::config::check_server(sa).map_err(|e| to_pyerr(obj.py(), e));
    if let Ok((host, p)) = obj.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>() {
        let ip = parse_ip(&host, "server address")?;
        return checked(SocketAddr::new(ip, port(&p, "server port")?));
    }
    let module: String = obj.get_type().getattr("__module__")?.extract().unwrap_or_default();
    if module == "ipaddress" {
        return checked(SocketAddr::new(parse_ip(obj, "server address")?, pcp_core::wire::SERVER_PORT));
    }
    Err(PyTypeError::new_err(format!(
        "server must be a str like '192.168.1.1', '192.168.1.1:5351', '[::1]:5351' or a (host, port) tuple, not {}",
        obj.get_type().name()?
    )))
}

pub(crate) fn server_list(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<SocketAddr>>> {
    let Some(obj) = obj else { return Ok(None) };
    if obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err("candidates must be a list of server addresses, not a str"));
    }
    let mut out = Vec::new();
    for item in obj.try_iter()? {
        out.push(server_addr(&item?)?);
    }
    Ok(Some(out))
}

// ------------------------------------------------------------- waiting --

/// The one way the binding waits (for a request, an event): `step(slice)`
/// waits at most `slice` with the GIL released and gives `Some` once there is
/// something; between steps signal handlers run, so Ctrl-C (any exception
/// from a handler) ends the wait within a [`SLICE`]. `Ok(None)` once
/// `timeout` has passed.
pub(crate) fn sliced_wait<R>(
    py: Python<'_>,
    timeout: Option<Duration>,
    mut step: impl FnMut(Duration) -> Option<R>,
) -> PyResult<Option<R>> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let slice = deadline.map_or(SLICE, |d| d.saturating_duration_since(Instant::now()).min(SLICE));
        if let Some(r) = step(slice) {
            return Ok(Some(r));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
        py.check_signals()?;
    }
}

/// Waits for a core request (discovery, connecting); Ctrl-C cancels it.
pub(crate) fn wait<T: Send>(py: Python<'_>, p: Pending<T>) -> PyResult<T> {
    match sliced_wait(py, None, |slice| py.detach(|| p.wait_timeout(slice))) {
        Ok(r) => r.expect("no timeout").map_err(|e| to_pyerr(py, e)),
        Err(e) => {
            p.cancel();
            Err(e)
        }
    }
}

pub(crate) fn check_callable(py: Python<'_>, callback: &Py<PyAny>) -> PyResult<()> {
    if !callback.bind(py).is_callable() {
        return Err(PyTypeError::new_err("callback must be callable"));
    }
    Ok(())
}

/// Calls a callback of the user from the core's side: its exception goes to
/// `sys.unraisablehook`, as nobody is there to catch it.
pub(crate) fn call_reporting(py: Python<'_>, cb: &Py<PyAny>) {
    if let Err(e) = cb.call0(py) {
        e.write_unraisable(py, Some(cb.bind(py)));
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
