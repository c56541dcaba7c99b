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
    pub(crate) fn empty(kind: &'static str) -> Self {
        PyEvent { kind, mapping_id: None, mapping: None, error: None, old: None, new: None, epoch: None }
    }

    pub(crate) fn convert(py: Python<'_>, inner: &Arc<Inner>, ev: &CoreEvent) -> PyResult<PyEvent> {
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
            CoreEvent::Updated(info) => with_mapping("updated", info)?,
            CoreEvent::InternalAddressChanged { old, new } => {
                PyEvent { old: Some(ip_str(*old)), new: Some(ip_str(*new)), ..PyEvent::empty("internal_ip_changed") }
            }
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
            let info = m.get().info();
            s += &format!(" external={}:{}", ip_str(info.external_addr), info.external_port);
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
