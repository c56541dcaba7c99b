use std::ffi::{c_char, c_void, CString};
use std::sync::{Arc, Mutex};

use pcp_core::client::{EventHandlers, Handler};
use pcp_core::{Event, HandlerId, MappingInfo};

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

fn fill_info(ev: &mut pcp_event, info: &MappingInfo) {
    ev.id = info.id.0;
    ev.protocol = info.protocol.0;
    ev.internal_port = info.internal_port;
    ev.external_port = info.external_port;
    ev.lifetime = info.lifetime;
    ev.epoch = info.epoch;
    ev.protocol_version = info.version.number();
    ev.nonce = *info.nonce.as_bytes();
    ev.external_address = addr_bytes(info.external_addr);
    fill_text(&mut ev.external_address_text, &info.external_addr.to_string());
}

/// Builds the C view of `event` and hands it to `f` (with its message alive).
pub(crate) fn with_c_event(event: &Event, f: impl FnOnce(&pcp_event)) {
    use pcp_event_kind::*;
    let mut message: Option<CString> = None;
    let mut fail = |ev: &mut pcp_event, e: &pcp_core::Error| {
        ev.status = status_of(e);
        ev.retry_after = e.retry_after().unwrap_or(0);
        message = Some(CString::new(e.to_string().replace('\0', " ")).unwrap_or_default());
    };
    let mut ev;
    match event {
        Event::Granted(info) => {
            ev = blank(PCP_EVENT_GRANTED);
            fill_info(&mut ev, info);
        }
        Event::Renewed(info) => {
            ev = blank(PCP_EVENT_RENEWED);
            fill_info(&mut ev, info);
        }
        Event::Updated(info) => {
            ev = blank(PCP_EVENT_UPDATED);
            fill_info(&mut ev, info);
        }
        Event::InternalAddressChanged { old, new } => {
            ev = blank(PCP_EVENT_INTERNAL_ADDRESS_CHANGED);
            ev.internal_address = addr_bytes(*new);
            fill_text(&mut ev.internal_address_text, &new.to_string());
            ev.old_address = addr_bytes(*old);
            fill_text(&mut ev.old_address_text, &old.to_string());
        }
        Event::Failed { id, error } => {
            ev = blank(PCP_EVENT_FAILED);
            ev.id = id.0;
            fail(&mut ev, error);
        }
        Event::Lost { id, error } => {
            ev = blank(PCP_EVENT_LOST);
            ev.id = id.0;
            fail(&mut ev, error);
        }
        Event::Deleted { id, result } => {
            ev = blank(PCP_EVENT_DELETED);
            ev.id = id.0;
            if let Err(e) = result {
                fail(&mut ev, e);
            }
        }
        Event::ExternalAddressChanged { old, new } => {
            ev = blank(PCP_EVENT_EXTERNAL_ADDRESS_CHANGED);
            ev.external_address = addr_bytes(*new);
            fill_text(&mut ev.external_address_text, &new.to_string());
            ev.old_address = addr_bytes(*old);
            fill_text(&mut ev.old_address_text, &old.to_string());
        }
        Event::ServerRestarted { epoch } => {
            ev = blank(PCP_EVENT_SERVER_RESTARTED);
            ev.epoch = *epoch;
        }
        Event::Announced { id, result } => {
            ev = blank(PCP_EVENT_ANNOUNCED);
            ev.id = id.0;
            match result {
                Ok(epoch) => ev.epoch = *epoch,
                Err(e) => fail(&mut ev, e),
            }
        }
        Event::ExternalAddress { id, result } => {
            ev = blank(PCP_EVENT_EXTERNAL_ADDRESS);
            ev.id = id.0;
            match result {
                Ok(ip) => {
                    ev.external_address = addr_bytes(*ip);
                    fill_text(&mut ev.external_address_text, &ip.to_string());
                }
                Err(e) => fail(&mut ev, e),
            }
        }
    }
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
