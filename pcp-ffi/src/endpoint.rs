use std::ffi::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use pcp_core::client::{Endpoint, EventHandlers, HandlerSlot};
use pcp_core::engine::Engine;
use pcp_core::MappingId;

use crate::common::*;
use crate::config::*;
use crate::event::*;
use crate::request::*;

/// A socket as the platform names it: `int` on Unix, `SOCKET` on Windows.
/// pcp.h declares it itself (cbindgen.toml), from `_WIN32`.
#[cfg(unix)]
pub type pcp_socket = c_int;
#[cfg(windows)]
pub type pcp_socket = usize;

/// The most descriptors `pcp_endpoint_fds` reports (the request socket and
/// the ANNOUNCE listener).
pub const PCP_ENDPOINT_MAX_FDS: usize = 2;

/// A client without a background thread, for programs that run their own
/// event loop (opaque). Watch its descriptors (`pcp_endpoint_fds`) for
/// readability with poll/epoll/select, with the timeout
/// `pcp_endpoint_timeout_ms`; when one is readable or the timeout passes,
/// call `pcp_endpoint_process`. Requests (`pcp_endpoint_map`, ...) return at
/// once with an id; their outcome arrives as an event (GRANTED or FAILED,
/// DELETED, ANNOUNCED, EXTERNAL_ADDRESS), passed to the endpoint's callback
/// from inside `pcp_endpoint_process`, on the calling thread. Renewals
/// happen inside `pcp_endpoint_process` too. The handle is thread-safe, and
/// the callback may call the endpoint's functions, `pcp_endpoint_free`
/// included.
pub struct pcp_endpoint {
    endpoint: Mutex<Endpoint>,
    /// Called from `pcp_endpoint_process` (the core's registry: it waits
    /// for a running call when the callback is replaced).
    handlers: EventHandlers,
    callback: HandlerSlot,
    /// Set by `pcp_endpoint_free` called from the endpoint's own callback:
    /// the `pcp_endpoint_process` running that callback frees the endpoint
    /// once the callback returns.
    free_requested: AtomicBool,
}

impl pcp_endpoint {
    fn lock(&self) -> MutexGuard<'_, Endpoint> {
        self.endpoint.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Makes an endpoint for the server at `server` (as for `pcp_client_new`);
/// `config` may be NULL. Opens its socket(s) and sends nothing yet.
#[no_mangle]
pub unsafe extern "C" fn pcp_endpoint_new(
    server: *const c_char,
    config: *const pcp_config,
    out: *mut *mut pcp_endpoint,
) -> pcp_status {
    guard_out(out, "out", || {
        let endpoint = Endpoint::new(&unsafe { client_config_for(server, config) }?)?;
        let e = pcp_endpoint {
            endpoint: Mutex::new(endpoint),
            handlers: EventHandlers::default(),
            callback: HandlerSlot::default(),
            free_requested: AtomicBool::new(false),
        };
        Ok(e.into_raw())
    })
}

/// Frees an endpoint and closes its sockets, without deleting its mappings
/// (delete them first with `pcp_endpoint_delete` and process until their
/// DELETED events if you want them gone). NULL is allowed.
///
/// It may be called from the endpoint's own callback: the handle is then
/// invalid at once (make no further call with it), the events still
/// undelivered by that `pcp_endpoint_process` are dropped, and the memory is
/// released when the callback returns into `pcp_endpoint_process`. It must
/// not race any other call on the same endpoint from another thread.
#[no_mangle]
pub unsafe extern "C" fn pcp_endpoint_free(endpoint: *mut pcp_endpoint) {
    // SAFETY: made by pcp_endpoint_new and not freed yet (or NULL).
    let _ = catch_unwind(AssertUnwindSafe(|| match unsafe { endpoint.as_ref() } {
        // Inside its own callback: pcp_endpoint_process frees it after.
        Some(e) if e.handlers.is_dispatching() => e.free_requested.store(true, Ordering::Release),
        _ => unsafe { free(endpoint) },
    }));
}

/// Registers the callback that `pcp_endpoint_process` calls for each event
/// (NULL removes it). It runs on the thread that calls
/// `pcp_endpoint_process`. When this returns, the previous callback is not
/// running on another thread and will never be called again, so its
/// `userdata` may be freed (this waits for a call running on another
/// thread; called from the callback itself, it does not wait). The new
/// `userdata` must stay valid until it is replaced or the endpoint is freed.
#[no_mangle]
pub unsafe extern "C" fn pcp_endpoint_set_event_callback(
    endpoint: *mut pcp_endpoint,
    callback: pcp_event_callback,
    userdata: *mut c_void,
) -> pcp_status {
    act(endpoint, |e| set_callback(&e.callback, &e.handlers, callback, userdata))
}

/// Writes the sockets to watch for readability into `fds` (room for
/// `capacity`; PCP_ENDPOINT_MAX_FDS always suffices) and their number into
/// `*count`. They stay the same for the endpoint's life. A `pcp_socket` is
/// a file descriptor (`int`) on Unix, for poll/epoll/kqueue/select, and a
/// winsock `SOCKET` on Windows, for WSAPoll/select/WSAEventSelect.
#[no_mangle]
pub unsafe extern "C" fn pcp_endpoint_fds(
    endpoint: *const pcp_endpoint,
    fds: *mut pcp_socket,
    capacity: usize,
    count: *mut usize,
) -> pcp_status {
    guard_out(count, "count", || {
        check_out(fds, "fds")?;
        let list = unsafe { handle(endpoint) }?.lock().fds();
        if list.len() > capacity {
            return Err(Fail::new(
                pcp_status::PCP_BUFFER_TOO_SMALL,
                format!("{} descriptors do not fit in {capacity}", list.len()),
            ));
        }
        for (i, fd) in list.iter().enumerate() {
            // A SOCKET is pointer-sized (usize); Rust names it u64.
            #[cfg(windows)]
            let fd = &(*fd as pcp_socket);
            unsafe { fds.add(i).write(*fd) };
        }
        Ok(list.len())
    })
}

/// Milliseconds until `pcp_endpoint_process` must be called even if no
/// descriptor becomes readable: -1 if there is no deadline (wait for a
/// descriptor only), 0 if it is due now. Ready to pass to poll(). Read it
/// again after every call on the endpoint. On NULL it returns 0 (so that a
/// loop with a bad handle spins into the error of `pcp_endpoint_process`
/// rather than sleeping forever) and sets the last error.
#[no_mangle]
pub unsafe extern "C" fn pcp_endpoint_timeout_ms(endpoint: *mut pcp_endpoint) -> c_int {
    // 0 while events wait (the core's rule).
    read(endpoint, 0, |e| e.lock().timeout_ms(Instant::now()))
}

/// Reads what arrived, runs due timers (retransmissions, renewals), sends
/// what is due, then passes every pending event to the callback (on this
/// thread, with the endpoint unlocked). Cheap to call when nothing is due.
#[no_mangle]
pub unsafe extern "C" fn pcp_endpoint_process(endpoint: *mut pcp_endpoint) -> pcp_status {
    with(endpoint, |e| {
        // Taken out under the lock, dispatched without it: a callback may
        // call the endpoint.
        let events = e.lock().process_events(Instant::now());
        for ev in &events {
            e.handlers.dispatch(ev);
            if e.free_requested.load(Ordering::Acquire) {
                // The callback freed the endpoint. The outermost
                // pcp_endpoint_process on this thread releases it (a nested
                // one, called from a callback, only stops).
                if !e.handlers.is_dispatching() {
                    // SAFETY: pcp_endpoint_free left the release to us; the
                    // caller makes no further call with the handle.
                    drop(unsafe { Box::from_raw(endpoint) });
                }
                return Ok(());
            }
        }
        Ok(())
    })
}

/// Starts a request on the engine and sends it at once.
fn start<T>(endpoint: *mut pcp_endpoint, f: impl FnOnce(&mut Engine, Instant) -> FfiResult<T>) -> FfiResult<T> {
    unsafe { handle(endpoint) }?.lock().submit(Instant::now(), f)
}

/// Starts a MAP request and writes its mapping id to `*id`; the outcome is
/// a GRANTED or FAILED event with that id. Once granted, the endpoint
/// renews it (RENEWED events) as long as `pcp_endpoint_process` is called.
#[no_mangle]
pub unsafe extern "C" fn pcp_endpoint_map(
    endpoint: *mut pcp_endpoint,
    request: *const pcp_map_request,
    id: *mut u64,
) -> pcp_status {
    guard_out(id, "id", || start(endpoint, |e, now| Ok(e.map(now, unsafe { map_spec(request) }?)?.0)))
}

/// Starts a PEER request; like `pcp_endpoint_map`.
#[no_mangle]
pub unsafe extern "C" fn pcp_endpoint_peer(
    endpoint: *mut pcp_endpoint,
    request: *const pcp_peer_request,
    id: *mut u64,
) -> pcp_status {
    guard_out(id, "id", || start(endpoint, |e, now| Ok(e.peer(now, unsafe { peer_spec(request) }?)?.0)))
}

/// Starts deleting mapping `id`; the outcome is a DELETED event.
#[no_mangle]
pub unsafe extern "C" fn pcp_endpoint_delete(endpoint: *mut pcp_endpoint, id: u64) -> pcp_status {
    guard(|| start(endpoint, |e, now| Ok(e.delete(now, MappingId(id))?)))
}

/// Starts deleting the mapping named by its nonce, as `pcp_delete_by_nonce`
/// does, and writes the delete's id to `*id`; the outcome is a DELETED event
/// with that id.
#[no_mangle]
pub unsafe extern "C" fn pcp_endpoint_delete_by_nonce(
    endpoint: *mut pcp_endpoint,
    protocol: u8,
    internal_port: u16,
    nonce: *const u8,
    third_party: *const c_char,
    id: *mut u64,
) -> pcp_status {
    guard_out(id, "id", || {
        let spec = unsafe { nonce_spec(protocol, internal_port, nonce, third_party) }?;
        start(endpoint, |e, now| Ok(e.delete_by_nonce(now, spec)?.0))
    })
}

/// Starts an ANNOUNCE request and writes its id; the outcome is an
/// ANNOUNCED event.
#[no_mangle]
pub unsafe extern "C" fn pcp_endpoint_announce(endpoint: *mut pcp_endpoint, id: *mut u64) -> pcp_status {
    guard_out(id, "id", || start(endpoint, |e, now| Ok(e.announce(now, None).0)))
}

/// Starts an external-address request and writes its id; the outcome is an
/// EXTERNAL_ADDRESS event.
#[no_mangle]
pub unsafe extern "C" fn pcp_endpoint_external_address(endpoint: *mut pcp_endpoint, id: *mut u64) -> pcp_status {
    guard_out(id, "id", || start(endpoint, |e, now| Ok(e.request_external_addr(now, None)?.0)))
}

/// How many mappings the endpoint holds or is requesting (0 on NULL).
#[no_mangle]
pub unsafe extern "C" fn pcp_endpoint_mapping_count(endpoint: *const pcp_endpoint) -> usize {
    read(endpoint, 0, |e| e.lock().engine().mapping_ids().len())
}
