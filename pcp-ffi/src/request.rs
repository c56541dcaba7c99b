//! MAP and PEER requests as C structs, and their conversion to the core's
//! `MapSpec` and `PeerSpec`.

use std::ffi::c_char;

use pcp_core::{Filter, MapSpec, Nonce, PeerSpec, Protocol};

use crate::common::*;

/// A FILTER option: only traffic from `remote_address`/`prefix_length` and
/// `remote_port` (0 = any) may use the mapping.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pcp_filter {
    /// IPv4 or IPv6 address as text.
    pub remote_address: *const c_char,
    /// Bits of the address that must match, in its own family (0..32 or 0..128).
    pub prefix_length: u8,
    /// 0 for any port.
    pub remote_port: u16,
}

/// What to ask for with MAP (an inbound mapping). Fill it with
/// `pcp_map_request_init`, then change what you need.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pcp_map_request {
    /// PCP_PROTO_TCP, PCP_PROTO_UDP, another IANA number, or PCP_PROTO_ALL.
    pub protocol: u8,
    pub internal_port: u16,
    /// 0 lets the server choose.
    pub suggested_external_port: u16,
    /// Requested lifetime in seconds (at least 1); the server may grant another.
    pub lifetime: u32,
    /// Suggested external address as text; NULL for any.
    pub suggested_external_address: *const c_char,
    /// PREFER_FAILURE: fail rather than get another external port (needs a
    /// suggested external port).
    pub prefer_failure: bool,
    /// THIRD_PARTY: map for this internal address instead of ours; NULL for none.
    pub third_party: *const c_char,
    /// FILTER options: `filter_count` of them (NULL when 0).
    pub filters: *const pcp_filter,
    pub filter_count: usize,
}

/// What to ask for with PEER (an outbound mapping towards one peer). Fill
/// it with `pcp_peer_request_init`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pcp_peer_request {
    pub protocol: u8,
    pub internal_port: u16,
    /// The remote peer's address as text.
    pub remote_address: *const c_char,
    pub remote_port: u16,
    /// 0 lets the server choose.
    pub suggested_external_port: u16,
    /// Suggested external address as text; NULL for any.
    pub suggested_external_address: *const c_char,
    pub lifetime: u32,
    /// THIRD_PARTY internal address; NULL for none.
    pub third_party: *const c_char,
}

/// Fills `request` with: this protocol and internal port, any external
/// port and address, 3600 s, no options.
#[no_mangle]
pub unsafe extern "C" fn pcp_map_request_init(
    request: *mut pcp_map_request,
    protocol: u8,
    internal_port: u16,
) -> pcp_status {
    guard_out(request, "request", || {
        Ok(pcp_map_request {
            protocol,
            internal_port,
            suggested_external_port: 0,
            lifetime: pcp_core::config::DEFAULT_LIFETIME,
            suggested_external_address: std::ptr::null(),
            prefer_failure: false,
            third_party: std::ptr::null(),
            filters: std::ptr::null(),
            filter_count: 0,
        })
    })
}

/// Fills `request` for a PEER mapping towards `remote_address`:`remote_port`
/// (the string is referenced, not copied), any external port, 3600 s.
#[no_mangle]
pub unsafe extern "C" fn pcp_peer_request_init(
    request: *mut pcp_peer_request,
    protocol: u8,
    internal_port: u16,
    remote_address: *const c_char,
    remote_port: u16,
) -> pcp_status {
    guard_out(request, "request", || {
        Ok(pcp_peer_request {
            protocol,
            internal_port,
            remote_address,
            remote_port,
            suggested_external_port: 0,
            suggested_external_address: std::ptr::null(),
            lifetime: pcp_core::config::DEFAULT_LIFETIME,
            third_party: std::ptr::null(),
        })
    })
}

pub(crate) unsafe fn map_spec(r: *const pcp_map_request) -> FfiResult<MapSpec> {
    let r = unsafe { r.as_ref() }.ok_or_else(|| Fail::null("request"))?;
    let mut spec = MapSpec::new(Protocol(r.protocol), r.internal_port)
        .external_port(r.suggested_external_port)
        .external_addr(unsafe { opt_ip(r.suggested_external_address, "suggested_external_address") }?)
        .lifetime(r.lifetime)
        .prefer_failure_if(r.prefer_failure)
        .third_party(unsafe { opt_ip(r.third_party, "third_party") }?);
    if r.filter_count > 0 {
        if r.filters.is_null() {
            return Err(Fail::null("filters (with filter_count > 0)"));
        }
        // SAFETY: the caller's array of `filter_count` filters.
        let filters = unsafe { std::slice::from_raw_parts(r.filters, r.filter_count) };
        for f in filters {
            let remote_addr = unsafe { ip(f.remote_address, "filter remote_address") }?;
            spec = spec.filter(Filter { remote_addr, prefix_len: f.prefix_length, remote_port: f.remote_port });
        }
    }
    Ok(spec)
}

/// The delete of a mapping named by its 12-byte nonce and, for one made with
/// THIRD_PARTY, that address (NULL for none), as `pcp_delete_by_nonce` and
/// `pcp_endpoint_delete_by_nonce` take them.
pub(crate) unsafe fn nonce_spec(
    protocol: u8,
    internal_port: u16,
    nonce: *const u8,
    third_party: *const c_char,
) -> FfiResult<MapSpec> {
    // SAFETY: the caller's PCP_NONCE_BYTES bytes, or NULL.
    let nonce = unsafe { nonce.cast::<[u8; PCP_NONCE_BYTES]>().as_ref() }.ok_or_else(|| Fail::null("nonce"))?;
    let spec = MapSpec::new(Protocol(protocol), internal_port).nonce(Nonce::from_bytes(*nonce));
    Ok(spec.third_party(unsafe { opt_ip(third_party, "third_party") }?))
}

pub(crate) unsafe fn peer_spec(r: *const pcp_peer_request) -> FfiResult<PeerSpec> {
    let r = unsafe { r.as_ref() }.ok_or_else(|| Fail::null("request"))?;
    let remote = unsafe { ip(r.remote_address, "remote_address") }?;
    Ok(PeerSpec::new(Protocol(r.protocol), r.internal_port, remote, r.remote_port)
        .external_port(r.suggested_external_port)
        .external_addr(unsafe { opt_ip(r.suggested_external_address, "suggested_external_address") }?)
        .lifetime(r.lifetime)
        .third_party(unsafe { opt_ip(r.third_party, "third_party") }?))
}
