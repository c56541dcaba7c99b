//! MAP and PEER arguments as the core's `MapSpec` and `PeerSpec` (with its
//! builders; the defaults, such as the lifetime, are the core's).

use super::*;

#[allow(clippy::too_many_arguments)]
pub(crate) fn map_spec(
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
    if let Some(p) = external_port {
        spec = spec.external_port(port(p, "external_port")?);
    }
    if let Some(l) = lifetime {
        spec = spec.lifetime(self::lifetime(l)?);
    }
    let spec = spec.external_addr(opt_ip(external_ip, "external_ip")?).prefer_failure_if(prefer_failure);
    let spec = self::filters(filters)?.into_iter().fold(spec, MapSpec::filter);
    Ok(spec.third_party(opt_ip(third_party, "third_party")?).nonce(self::nonce(nonce)?))
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn peer_spec(
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
    if let Some(p) = external_port {
        spec = spec.external_port(port(p, "external_port")?);
    }
    if let Some(l) = lifetime {
        spec = spec.lifetime(self::lifetime(l)?);
    }
    let spec = spec.external_addr(opt_ip(external_ip, "external_ip")?);
    Ok(spec.third_party(opt_ip(third_party, "third_party")?).nonce(self::nonce(nonce)?))
}

/// What names a mapping to delete by nonce: protocol, internal port, nonce
/// and, for a mapping made for another host, its THIRD_PARTY address.
pub(crate) fn delete_spec(
    protocol: &Bound<'_, PyAny>,
    internal_port: &Bound<'_, PyAny>,
    nonce: &Bound<'_, PyAny>,
    third_party: Option<&Bound<'_, PyAny>>,
) -> PyResult<MapSpec> {
    let n = self::nonce(Some(nonce))?.ok_or_else(|| PyTypeError::new_err("nonce must not be None"))?;
    let spec = MapSpec::new(self::protocol(protocol)?, port(internal_port, "internal_port")?).nonce(n);
    Ok(spec.third_party(opt_ip(third_party, "third_party")?))
}
