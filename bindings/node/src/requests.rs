//! Requests in flight: each a core `Pending` whose result is handed on
//! where its answer is read.

use super::*;

pub(crate) struct Inner {
    pub(crate) tsfn: Tsfn,
    /// How to cancel each request in flight, by the number JavaScript gave
    /// it (a handful at a time).
    pub(crate) requests: Mutex<HashMap<u32, Canceller>>,
    /// Someone listens for events (our event handler is registered).
    pub(crate) listening: AtomicBool,
    /// Results completed while listening whose event the driver thread has
    /// not dispatched yet. A result read on this thread reaches JavaScript
    /// before the driver thread dispatches its event (`failed`, `deleted`),
    /// so the threadsafe function must stay referenced until then, or the
    /// process could end between the two. Signed: the driver may dispatch
    /// the event a moment before `finish` counts the result.
    pub(crate) events_due: AtomicI64,
    /// `sync` messages queued but not yet seen by JavaScript.
    pub(crate) syncs_queued: AtomicI64,
}

impl Inner {
    pub(crate) fn requests(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Canceller>> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request's result: on the JavaScript thread when `reader.rs` read
    /// the answer, else on the driver thread.
    fn finish(&self, msg: NativeMessage) {
        if let Some(req) = msg.req {
            self.requests().remove(&req);
        }
        if self.listening.load(Ordering::Acquire) {
            self.events_due.fetch_add(1, Ordering::AcqRel);
        }
        if let Some(msg) = reader::collect(self, msg) {
            self.tsfn.call(msg, ThreadsafeFunctionCallMode::NonBlocking);
        }
    }

    /// Starts request `req`; a result that is already there (a refused
    /// argument, a closed client) is returned at once, any other goes to
    /// the callback. `fill` puts a success's value into the result message.
    pub(crate) fn start<T: Send + 'static>(
        self: &Arc<Self>,
        req: u32,
        pending: Pending<T>,
        fill: impl FnOnce(T, &mut NativeMessage) + Send + 'static,
    ) -> Option<MessageRow> {
        let message = move |result: Result<T>| match result {
            Ok(v) => {
                let mut msg = NativeMessage::done(req);
                fill(v, &mut msg);
                msg
            }
            Err(e) => NativeMessage::done(req).error(&e),
        };
        if let Some(result) = pending.try_take() {
            return Some(MessageRow(message(result)));
        }
        self.requests().insert(req, pending.canceller());
        let inner = Arc::downgrade(self);
        pending.on_complete(move |result| {
            if let Some(inner) = inner.upgrade() {
                inner.finish(message(result));
            }
        });
        None
    }
}

/// The request `start` makes with the converted arguments, or their error as its result.
pub(crate) fn or_refused<A, T>(args: Result<A>, start: impl FnOnce(A) -> Pending<T>) -> Pending<T> {
    args.map_or_else(|e| Pending::ready(Err(e)), start)
}

/// A MAP or PEER result: the mapping as the core holds it.
pub(crate) fn fill_mapping(m: Mapping, msg: &mut NativeMessage) {
    msg.id = Some(m.id().0 as f64);
    msg.mapping = Some(m.info().into());
}

/// A classic MAP result: only what `createMapping` shows.
pub(crate) fn fill_classic(m: Mapping, msg: &mut NativeMessage) {
    let info = m.info();
    msg.id = Some(info.id.0 as f64);
    msg.address = Some(info.external_addr.to_string());
    msg.port = Some(u32::from(info.external_port));
    msg.lifetime = Some(info.lifetime);
}
