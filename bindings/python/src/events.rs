//! `pcp_rs.Event` and the blocking event iterator.

use super::*;

/// An event of a client. `kind` is one of "granted", "renewed", "updated",
/// "failed", "lost", "deleted", "ip_changed", "internal_ip_changed",
/// "server_restarted", "announced", "external_address"; the other
/// attributes are None where they do not apply.
#[pyclass(module = "pcp_rs._pcp_rs", name = "Event", frozen, get_all)]
pub(crate) struct PyEvent {
    pub(crate) kind: &'static str,
    pub(crate) mapping_id: Option<u64>,
    pub(crate) mapping: Option<Py<PyMapping>>,
    pub(crate) error: Option<Py<PyAny>>,
    pub(crate) old: Option<String>,
    pub(crate) new: Option<String>,
    pub(crate) epoch: Option<u32>,
}

impl PyEvent {
    /// The core's flat view of the event (`Event::name`, `mapping`, ...).
    pub(crate) fn convert(py: Python<'_>, inner: &Arc<Inner>, ev: &CoreEvent) -> PyResult<PyEvent> {
        Ok(PyEvent {
            kind: ev.name(),
            mapping_id: ev.mapping_id().map(|id| id.0),
            mapping: ev.mapping().map(|info| Py::new(py, PyMapping::new(inner, info.clone()))).transpose()?,
            error: ev.error().map(|e| exception_value(py, e).map(Bound::unbind)).transpose()?,
            old: ev.old_address().map(ip_str),
            new: ev.new_address().map(ip_str),
            epoch: ev.epoch(),
        })
    }
}

#[pymethods]
impl PyEvent {
    fn __repr__(&self, py: Python<'_>) -> String {
        let external = self.mapping.as_ref().map(|m| {
            let info = m.get().info();
            format!("{}:{}", ip_str(info.external_addr), info.external_port)
        });
        let error = self.error.as_ref().map(|e| e.bind(py).repr().map(|r| r.to_string()).unwrap_or_default());
        let fields = [
            ("mapping_id", self.mapping_id.map(|id| id.to_string())),
            ("external", external),
            ("old", self.old.clone()),
            ("new", self.new.clone()),
            ("epoch", self.epoch.map(|e| e.to_string())),
            ("error", error),
        ];
        let shown: String = fields.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!(" {k}={v}"))).collect();
        format!("<pcp_rs.Event {}{shown}>", self.kind)
    }
}

/// Blocking iterator over a client's events; ends when the client closes.
#[pyclass(module = "pcp_rs._pcp_rs", name = "EventIterator", frozen)]
pub(crate) struct PyEventIterator {
    pub(crate) inner: Arc<Inner>,
    pub(crate) rx: Mutex<mpsc::Receiver<CoreEvent>>,
}

impl PyEventIterator {
    /// The next event; `None` once the client has closed or `timeout` passed.
    pub(crate) fn next_event(&self, py: Python<'_>, timeout: Option<Duration>) -> PyResult<Option<PyEvent>> {
        let got = sliced_wait(py, timeout, |slice| match py.detach(|| lock(&self.rx).recv_timeout(slice)) {
            Ok(ev) => Some(Some(ev)),
            Err(mpsc::RecvTimeoutError::Disconnected) => Some(None),
            Err(mpsc::RecvTimeoutError::Timeout) => self.inner.core.is_closed().then_some(None),
        })?;
        got.flatten().map(|ev| PyEvent::convert(py, &self.inner, &ev)).transpose()
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
        let t = opt_seconds(timeout, "timeout")?;
        self.next_event(py, t)
    }
}
