use std::ffi::{c_char, c_void, CString};
use std::net::IpAddr;
use std::sync::Arc;

use pcp_core::client::{EventHandlers, Handler, HandlerSlot};
use pcp_core::Event;

use crate::common::*;

/// What happened; see `pcp_event` for the fields each kind fills.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum pcp_event_kind {
    /// A new mapping was granted (its first request succeeded).
    PCP_EVENT_GRANTED = 1,
    /// A mapping was renewed (also after a server restart recreated it; the
    /// external address or port may have changed).
    PCP_EVENT_RENEWED = 2,
    /// The first request for a mapping failed; the mapping is gone.
    PCP_EVENT_FAILED = 3,
    /// An established mapping ended without being deleted: its renewals
    /// failed until it expired.
    PCP_EVENT_LOST = 4,
    /// A delete finished (`status` says how). PCP_OK: the mapping is gone;
    /// a failure leaves it held (and renewed) again, for another delete,
    /// unless the client was closing.
    PCP_EVENT_DELETED = 5,
    /// The server's external address changed from `old_address` to `external_address`.
    PCP_EVENT_EXTERNAL_ADDRESS_CHANGED = 6,
    /// The server lost its state (it rebooted); every mapping is being
    /// recreated. `epoch` is the server's new epoch.
    PCP_EVENT_SERVER_RESTARTED = 7,
    /// An ANNOUNCE request finished; on success `epoch` is the server's epoch.
    PCP_EVENT_ANNOUNCED = 8,
    /// An external-address request finished; on success `external_address`.
    PCP_EVENT_EXTERNAL_ADDRESS = 9,
    /// The server changed a mapping on its own (an unsolicited answer, RFC
    /// 6887 section 14.2): the fields are as for RENEWED.
    PCP_EVENT_UPDATED = 10,
    /// Our own address towards the server changed from `old_address` to
    /// `internal_address`; every mapping of this host is being recreated.
    PCP_EVENT_INTERNAL_ADDRESS_CHANGED = 11,
}

/// An event, passed to the event callback. It and its `message` are valid
/// only during the call: copy what you need.
///
/// - GRANTED, RENEWED, UPDATED: `id` (the mapping's, as `pcp_mapping_id`), protocol,
///   ports, lifetime, epoch, nonce, external address.
/// - FAILED, LOST: `id`, `status` and `message` say why.
/// - DELETED: `id`, `status` (PCP_OK if the server confirmed).
/// - EXTERNAL_ADDRESS_CHANGED: `old_address` and `external_address`.
/// - INTERNAL_ADDRESS_CHANGED: `old_address` and `internal_address`.
/// - SERVER_RESTARTED: `epoch`.
/// - ANNOUNCED, EXTERNAL_ADDRESS: `id` (the request's), `status`, and `epoch`
///   or `external_address`.
///
/// Fields a kind does not fill are zero, except `protocol_version` (255).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pcp_event {
    pub kind: pcp_event_kind,
    /// The mapping or request the event is about (0 if none).
    pub id: u64,
    /// PCP_OK, or the failure of FAILED, LOST, DELETED, ANNOUNCED, EXTERNAL_ADDRESS.
    pub status: pcp_status,
    /// The detailed message of `status`; NULL when it is PCP_OK.
    pub message: *const c_char,
    pub protocol: u8,
    pub internal_port: u16,
    pub external_port: u16,
    pub lifetime: u32,
    pub epoch: u32,
    pub nonce: [u8; PCP_NONCE_BYTES],
    /// 16 bytes; IPv4 as IPv4-mapped IPv6.
    pub external_address: [u8; PCP_ADDR_BYTES],
    /// The same address as text, NUL-terminated ("" if none).
    pub external_address_text: [c_char; PCP_ADDRSTRLEN],
    pub old_address: [u8; PCP_ADDR_BYTES],
    pub old_address_text: [c_char; PCP_ADDRSTRLEN],
    /// GRANTED, RENEWED, UPDATED: what the gateway granted the mapping with,
    /// `PCP_VERSION_PCP` (2) or `PCP_VERSION_NATPMP` (0); 255 for the other
    /// kinds (0 would say NAT-PMP). Last, so that the fields above keep
    /// their offsets.
    pub protocol_version: u8,
    /// For FAILED, LOST, DELETED by a server's refusal: the error's lifetime
    /// in seconds (how long the server will keep refusing); 0 otherwise.
    pub retry_after: u32,
    /// INTERNAL_ADDRESS_CHANGED: our new address (16 bytes, IPv4-mapped).
    pub internal_address: [u8; PCP_ADDR_BYTES],
    pub internal_address_text: [c_char; PCP_ADDRSTRLEN],
}

/// The event callback: `userdata` is what was registered with it.
pub type pcp_event_callback = Option<unsafe extern "C" fn(userdata: *mut c_void, event: *const pcp_event)>;

/// An address as `pcp_event` holds it: 16 bytes and its text (which
/// always fits PCP_ADDRSTRLEN); zeros for none.
fn addr_fields(ip: Option<IpAddr>) -> ([u8; PCP_ADDR_BYTES], [c_char; PCP_ADDRSTRLEN]) {
    let mut text = [0; PCP_ADDRSTRLEN];
    if let Some(ip) = ip {
        let _ = unsafe { copy_text(text.as_mut_ptr(), text.len(), &ip.to_string()) };
    }
    (ip.map_or([0; PCP_ADDR_BYTES], addr_bytes), text)
}

fn kind_of(event: &Event) -> pcp_event_kind {
    use pcp_event_kind::*;
    match event {
        Event::Granted(_) => PCP_EVENT_GRANTED,
        Event::Renewed(_) => PCP_EVENT_RENEWED,
        Event::Updated(_) => PCP_EVENT_UPDATED,
        Event::Failed { .. } => PCP_EVENT_FAILED,
        Event::Lost { .. } => PCP_EVENT_LOST,
        Event::Deleted { .. } => PCP_EVENT_DELETED,
        Event::ExternalAddressChanged { .. } => PCP_EVENT_EXTERNAL_ADDRESS_CHANGED,
        Event::InternalAddressChanged { .. } => PCP_EVENT_INTERNAL_ADDRESS_CHANGED,
        Event::ServerRestarted { .. } => PCP_EVENT_SERVER_RESTARTED,
        Event::Announced { .. } => PCP_EVENT_ANNOUNCED,
        Event::ExternalAddress { .. } => PCP_EVENT_EXTERNAL_ADDRESS,
    }
}

/// Builds the C view of `event` from the core's flat view of it (which
/// kind carries what is defined there once) and hands it to `f`, with its
/// message alive.
fn with_c_event(event: &Event, f: impl FnOnce(&pcp_event)) {
    let info = event.mapping();
    let error = event.error();
    let message = error.map(|e| CString::new(e.to_string().replace('\0', " ")).unwrap_or_default());
    // The new address of INTERNAL_ADDRESS_CHANGED is ours; any other is external.
    let (internal, external) = match event {
        Event::InternalAddressChanged { new, .. } => (Some(*new), None),
        _ => (None, info.map(|i| i.external_addr).or(event.new_address())),
    };
    let (external_address, external_address_text) = addr_fields(external);
    let (old_address, old_address_text) = addr_fields(event.old_address());
    let (internal_address, internal_address_text) = addr_fields(internal);
    f(&pcp_event {
        kind: kind_of(event),
        id: event.mapping_id().map(|m| m.0).or(event.request_id().map(|r| r.0)).unwrap_or(0),
        status: error.map_or(pcp_status::PCP_OK, status_of),
        message: message.as_ref().map_or(std::ptr::null(), |m| m.as_ptr()),
        protocol: info.map_or(0, |i| i.protocol.0),
        internal_port: info.map_or(0, |i| i.internal_port),
        external_port: info.map_or(0, |i| i.external_port),
        lifetime: info.map_or(0, |i| i.lifetime),
        epoch: event.epoch().unwrap_or(0),
        nonce: info.map_or([0; PCP_NONCE_BYTES], |i| *i.nonce.as_bytes()),
        external_address,
        external_address_text,
        old_address,
        old_address_text,
        protocol_version: info.map_or(255, |i| i.version.number()),
        retry_after: error.and_then(|e| e.retry_after()).unwrap_or(0),
        internal_address,
        internal_address_text,
    });
}

/// A callback's userdata, handed back untouched.
#[derive(Clone, Copy)]
struct UserData(*mut c_void);

// SAFETY: the header documents that the callback runs on another thread and
// that userdata must be usable there; the library never dereferences it.
unsafe impl Send for UserData {}
unsafe impl Sync for UserData {}

impl UserData {
    /// A method, so that a closure captures the whole (Send) value.
    fn get(self) -> *mut c_void {
        self.0
    }
}

/// Sets a handle's one C callback (NULL: none) in its slot of a core
/// registry (the client's, or an endpoint's own), which returns once the
/// replaced callback is not running on another thread.
pub(crate) fn set_callback(slot: &HandlerSlot, handlers: &EventHandlers, f: pcp_event_callback, userdata: *mut c_void) {
    let userdata = UserData(userdata);
    // SAFETY: the caller's function with the caller's userdata, which the
    // caller keeps valid until this replaces it and returns.
    let new = f.map(|f| Arc::new(move |ev: &Event| with_c_event(ev, |ev| unsafe { f(userdata.get(), ev) })) as Handler);
    slot.set(handlers, new);
}
