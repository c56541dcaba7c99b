//! `pcp_rs.Mapping`: a snapshot of a mapping the client holds.

use super::*;

/// A mapping held by a client: a snapshot (see `refresh`) plus `delete()`.
#[pyclass(module = "pcp_rs._pcp_rs", name = "Mapping", frozen)]
pub(crate) struct PyMapping {
    pub(crate) inner: Arc<Inner>,
    pub(crate) info: Mutex<MappingInfo>,
}

impl PyMapping {
    pub(crate) fn new(inner: &Arc<Inner>, info: MappingInfo) -> Self {
        PyMapping { inner: inner.clone(), info: Mutex::new(info) }
    }

    pub(crate) fn info(&self) -> MappingInfo {
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
        lock(&self.info).opcode.name()
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

    /// Deletes the mapping; a Request (`delete` waits for it).
    fn start_delete(&self) -> PyRequest {
        let id = lock(&self.info).id;
        PyRequest::new(&self.inner, self.inner.core.delete_async(id), |()| Value::Done)
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
            i.opcode.name(),
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
