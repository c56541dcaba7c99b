use std::ffi::{c_char, c_void, CString};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use pcp_core::client::{EventHandlers, Handler};
use pcp_core::{Event, HandlerId};

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
    /// A delete finished (`status` says how); the mapping is gone either way.
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

fn blank(kind: pcp_event_kind) -> pcp_event {
    pcp_event {
        kind,
        id: 0,
        status: pcp_status::PCP_OK,
        message: std::ptr::null(),
        protocol: 0,
        internal_port: 0,
        external_port: 0,
        lifetime: 0,
        epoch: 0,
        nonce: [0; PCP_NONCE_BYTES],
        external_address: [0; PCP_ADDR_BYTES],
        external_address_text: [0; PCP_ADDRSTRLEN],
        old_address: [0; PCP_ADDR_BYTES],
        old_address_text: [0; PCP_ADDRSTRLEN],
        protocol_version: 255,
        retry_after: 0,
        internal_address: [0; PCP_ADDR_BYTES],
        internal_address_text: [0; PCP_ADDRSTRLEN],
    }
}

/// Writes an address into a pair of fields: 16 bytes and its text.
fn fill_addr(bytes: &mut [u8; PCP_ADDR_BYTES], text: &mut [c_char; PCP_ADDRSTRLEN], ip: IpAddr) {
    *bytes = addr_bytes(ip);
    fill_text(text, &ip.to_string());
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
pub(crate) fn with_c_event(event: &Event, f: impl FnOnce(&pcp_event)) {
    let mut ev = blank(kind_of(event));
    ev.id = event.mapping_id().map(|m| m.0).or(event.request_id().map(|r| r.0)).unwrap_or(0);
    ev.epoch = event.epoch().unwrap_or(0);
    if let Some(info) = event.mapping() {
        ev.protocol = info.protocol.0;
        ev.internal_port = info.internal_port;
        ev.external_port = info.external_port;
        ev.lifetime = info.lifetime;
        ev.protocol_version = info.version.number();
        ev.nonce = *info.nonce.as_bytes();
        fill_addr(&mut ev.external_address, &mut ev.external_address_text, info.external_addr);
    }
    if let Some(old) = event.old_address() {
        fill_addr(&mut ev.old_address, &mut ev.old_address_text, old);
    }
    if let Some(new) = event.new_address() {
        match event {
            Event::InternalAddressChanged { .. } => {
                fill_addr(&mut ev.internal_address, &mut ev.internal_address_text, new)
            }
            _ => fill_addr(&mut ev.external_address, &mut ev.external_address_text, new),
        }
    }
    let message = event.error().map(|e| {
        ev.status = status_of(e);
        ev.retry_after = e.retry_after().unwrap_or(0);
        CString::new(e.to_string().replace('\0', " ")).unwrap_or_default()
    });
    if let Some(m) = &message {
        ev.message = m.as_ptr();
    }
    f(&ev);
}

/// A registered callback and its userdata.
#[derive(Clone, Copy)]
struct Callback {
    f: unsafe extern "C" fn(*mut c_void, *const pcp_event),
    userdata: *mut c_void,
}

// SAFETY: the header documents that the callback runs on another thread and
// that userdata must be usable there; the library never dereferences it.
unsafe impl Send for Callback {}
unsafe impl Sync for Callback {}

impl Callback {
    fn call(&self, event: &Event) {
        with_c_event(event, |ev| {
            // SAFETY: the caller's function with the caller's userdata, which
            // the caller keeps valid until `set` replaces it and returns.
            unsafe { (self.f)(self.userdata, ev) }
        });
    }
}

/// A handle's one C callback, kept in a core handler registry (the
/// client's, or an endpoint's own). `set` replaces it in one step and
/// returns once the replaced callback is not running on another thread;
/// the core's `EventHandlers` does the waiting, and lets a callback
/// replace itself.
#[derive(Default)]
pub(crate) struct CallbackSlot {
    current: Mutex<Option<HandlerId>>,
}

impl CallbackSlot {
    pub fn set(&self, handlers: &EventHandlers, f: pcp_event_callback, userdata: *mut c_void) {
        let new = f.map(|f| {
            let cb = Callback { f, userdata };
            Arc::new(move |ev: &Event| cb.call(ev)) as Handler
        });
        // Recorded under the lock, waited for outside it: the callback being
        // replaced may itself be calling this function.
        let old = {
            let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
            let old = *current;
            *current = handlers.swap(old, new);
            old
        };
        if let Some(old) = old {
            handlers.wait_idle(old);
        }
    }
}
