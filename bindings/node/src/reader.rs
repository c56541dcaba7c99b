//! Reading the client's answers on the JavaScript thread.
//!
//! By default the core's driver thread reads every answer, and the result
//! then has to cross to the JavaScript thread through a threadsafe function:
//! two thread wake-ups per round trip. Instead, the client's socket
//! (`Client::reader_fd`) is watched by a libuv poll handle on Node's own
//! event loop, and `Client::attach_reader` tells the core that this loop
//! reads it. When the socket is readable, libuv calls `on_readable` on the
//! JavaScript thread, which calls `Client::process_one_datagram`: the answers are
//! read and their requests completed right there, and their results are
//! handed to the JavaScript callback directly, with `napi_make_callback` so
//! that the promise reactions they trigger run before control returns to
//! libuv. The driver thread keeps the timers (retransmissions, renewals,
//! deadlines); results it produces (a `TIMEOUT`) and events still travel
//! through the threadsafe function.
//!
//! The poll handle is always unreferenced: whether the client keeps the
//! process alive stays the threadsafe function's business (see `setRef`).

use std::cell::{Cell, RefCell};
use std::os::raw::{c_int, c_void};
use std::ptr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use napi::sys;
use pcp_core::Client;

use crate::{Inner, NativeMessage};

// libuv, as exported by the node binary (the addon is loaded into it).
const UV_READABLE: c_int = 1;
const UV_POLL: c_int = 8; // uv_handle_type
type PollCb = unsafe extern "C" fn(handle: *mut c_void, status: c_int, events: c_int);
type CloseCb = unsafe extern "C" fn(handle: *mut c_void);
extern "C" {
    fn uv_handle_size(kind: c_int) -> usize;
    /// Watches a socket: on Windows a `SOCKET` (libuv's `uv_os_sock_t`),
    /// elsewhere a descriptor (where `uv_poll_init` would do the same).
    fn uv_poll_init_socket(lp: *mut sys::uv_loop_s, handle: *mut c_void, socket: pcp_core::client::RawSocket) -> c_int;
    fn uv_poll_start(handle: *mut c_void, events: c_int, cb: PollCb) -> c_int;
    fn uv_poll_stop(handle: *mut c_void) -> c_int;
    fn uv_close(handle: *mut c_void, cb: Option<CloseCb>);
    fn uv_unref(handle: *mut c_void);
    fn uv_handle_set_data(handle: *mut c_void, data: *mut c_void);
    fn uv_handle_get_data(handle: *const c_void) -> *mut c_void;
}

thread_local! {
    /// While `on_readable` runs `process_one_datagram`: the client it runs for and
    /// the results completed meanwhile (see `collect`).
    static COLLECTING: RefCell<Option<(*const Inner, Vec<NativeMessage>)>> = const { RefCell::new(None) };
}

/// Called with a finished request's result: keeps it for direct delivery if
/// `process_one_datagram` on this thread completed it, or hands it back.
pub(crate) fn collect(inner: &Inner, msg: NativeMessage) -> Option<NativeMessage> {
    COLLECTING.with(|c| match &mut *c.borrow_mut() {
        Some((who, queue)) if ptr::eq(*who, inner) => {
            queue.push(msg);
            None
        }
        _ => Some(msg),
    })
}

/// The libuv poll handle and what its callback needs. Owned by the handle
/// (its data pointer) from `start` until libuv's close callback frees it.
pub(crate) struct Reader {
    handle: *mut c_void,
    /// The handle's memory: `uv_handle_size(UV_POLL)` bytes, 8-aligned.
    _memory: Box<[u64]>,
    env: sys::napi_env,
    callback: sys::napi_ref,
    /// The async context answers are delivered in (its resource object is
    /// napi's own, made once, not per answer).
    async_context: sys::napi_async_context,
    /// None once stopped.
    client: RefCell<Option<Client>>,
    /// Results are being handed to JavaScript (which may call `stop`).
    delivering: Cell<bool>,
    /// `callback` and `async_context` were released.
    released: Cell<bool>,
    inner: Arc<Inner>,
}

/// A running reader; `stop` ends it (idempotent).
pub(crate) struct ReaderHandle(*mut Reader);

impl Reader {
    /// Watches `client`'s socket on the loop of `env` and attaches the
    /// client to it. None (and nothing changed) if libuv refuses.
    ///
    /// # Safety
    /// On the JavaScript thread of `env`; `callback` is a function value of
    /// the current scope.
    pub(crate) unsafe fn start(
        env: sys::napi_env,
        callback: sys::napi_value,
        client: &Client,
        inner: &Arc<Inner>,
    ) -> Option<ReaderHandle> {
        let mut lp = ptr::null_mut();
        if sys::napi_get_uv_event_loop(env, &mut lp) != sys::Status::napi_ok || lp.is_null() {
            return None;
        }
        let size = uv_handle_size(UV_POLL);
        if size == 0 {
            return None;
        }
        let mut memory = vec![0u64; size.div_ceil(8)].into_boxed_slice();
        let handle = memory.as_mut_ptr().cast::<c_void>();
        // uv_poll_init_socket, not uv_poll_init: on Windows the client's
        // socket is a SOCKET, which uv_poll_init (for CRT descriptors)
        // cannot watch; on Unix the two are the same call.
        if uv_poll_init_socket(lp, handle, client.reader_fd()) != 0 {
            // Not initialised: libuv holds nothing of it.
            return None;
        }
        let mut callback_ref = ptr::null_mut();
        let mut async_context = ptr::null_mut();
        let mut name = ptr::null_mut();
        let ok = sys::napi_create_reference(env, callback, 1, &mut callback_ref) == sys::Status::napi_ok
            && sys::napi_create_string_utf8(env, c"pcp-rs:answer".as_ptr(), -1, &mut name) == sys::Status::napi_ok
            && sys::napi_async_init(env, ptr::null_mut(), name, &mut async_context) == sys::Status::napi_ok;
        let reader = Box::into_raw(Box::new(Reader {
            handle,
            _memory: memory,
            env,
            callback: callback_ref,
            async_context,
            client: RefCell::new(Some(client.clone())),
            delivering: Cell::new(false),
            released: Cell::new(false),
            inner: inner.clone(),
        }));
        uv_handle_set_data(handle, reader.cast());
        uv_unref(handle);
        // Attached before the first readiness can be reported; `stop` detaches.
        client.attach_reader();
        if !ok || uv_poll_start(handle, UV_READABLE, on_readable) != 0 {
            ReaderHandle(reader).stop();
            return None;
        }
        Some(ReaderHandle(reader))
    }

    /// Delivers results to JavaScript, each followed by the microtasks and
    /// ticks it queued (napi_make_callback runs them, as a threadsafe
    /// function's call does).
    unsafe fn deliver(&self, msgs: Vec<NativeMessage>) {
        let env = self.env;
        let mut hs = ptr::null_mut();
        if sys::napi_open_handle_scope(env, &mut hs) != sys::Status::napi_ok {
            return;
        }
        self.delivering.set(true);
        let mut func = ptr::null_mut();
        let mut recv = ptr::null_mut();
        // The receiver must be an object for napi_make_callback.
        if sys::napi_get_reference_value(env, self.callback, &mut func) == sys::Status::napi_ok
            && !func.is_null()
            && sys::napi_get_global(env, &mut recv) == sys::Status::napi_ok
        {
            for msg in msgs {
                let Ok(args) = msg.into_args(env) else { continue };
                let mut result = ptr::null_mut();
                let status = sys::napi_make_callback(
                    env,
                    self.async_context,
                    recv,
                    func,
                    args.len(),
                    args.as_ptr(),
                    &mut result,
                );
                if status == sys::Status::napi_pending_exception {
                    // As a threadsafe function does: an exception thrown by
                    // the callback is an uncaught exception.
                    let mut exception = ptr::null_mut();
                    sys::napi_get_and_clear_last_exception(env, &mut exception);
                    sys::napi_fatal_exception(env, exception);
                }
            }
        }
        sys::napi_close_handle_scope(env, hs);
        self.delivering.set(false);
        // JavaScript closed the client meanwhile.
        if self.client.borrow().is_none() {
            self.release_napi();
        }
    }

    /// Releases the callback reference and the async context, once, on the
    /// JavaScript thread and never while `deliver` uses them.
    unsafe fn release_napi(&self) {
        if self.released.replace(true) {
            return;
        }
        if !self.callback.is_null() {
            sys::napi_delete_reference(self.env, self.callback);
        }
        if !self.async_context.is_null() {
            sys::napi_async_destroy(self.env, self.async_context);
        }
    }
}

unsafe extern "C" fn on_readable(handle: *mut c_void, status: c_int, _events: c_int) {
    let reader = uv_handle_get_data(handle).cast::<Reader>();
    if reader.is_null() {
        return;
    }
    // SAFETY: the Reader lives until the handle's close callback, which
    // libuv runs after this callback returns, never during it.
    let r = &*reader;
    if status < 0 {
        // The socket cannot be watched: give it back to the driver thread.
        ReaderHandle(reader).stop();
        return;
    }
    // Below zero only while a driver thread dispatch overtakes the count
    // within `process_one_datagram`, or after an event no request waited for: in
    // the latter case, start again from zero rather than undercount.
    let due = r.inner.events_due.load(Ordering::Acquire);
    if due < 0 {
        let _ = r.inner.events_due.compare_exchange(due, 0, Ordering::AcqRel, Ordering::Acquire);
    }
    let msgs = {
        let client = r.client.borrow();
        let Some(client) = client.as_ref() else { return };
        COLLECTING.with(|c| *c.borrow_mut() = Some((Arc::as_ptr(&r.inner), Vec::new())));
        client.process_one_datagram();
        COLLECTING.with(|c| c.borrow_mut().take().map(|(_, q)| q).unwrap_or_default())
    };
    if !msgs.is_empty() {
        r.deliver(msgs);
    }
}

unsafe extern "C" fn on_closed(handle: *mut c_void) {
    let reader = uv_handle_get_data(handle).cast::<Reader>();
    if !reader.is_null() {
        // Frees the handle's memory too; its client was dropped by `stop`.
        drop(Box::from_raw(reader));
    }
}

impl ReaderHandle {
    /// Stops watching, gives the socket back to the driver thread, and
    /// closes the handle (freed by libuv's close callback). On the
    /// JavaScript thread. Idempotent.
    pub(crate) fn stop(&self) {
        // SAFETY: the Reader is alive until on_closed, which needs the
        // uv_close below, which runs once (guarded by `client`).
        unsafe {
            let r = &*self.0;
            let Some(client) = r.client.borrow_mut().take() else { return };
            uv_poll_stop(r.handle);
            client.detach_reader();
            // Not the last clone: the NativeClient holds another one.
            drop(client);
            if !r.delivering.get() {
                r.release_napi();
            }
            uv_close(r.handle, Some(on_closed));
        }
    }
}
