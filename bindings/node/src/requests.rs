//! Requests in flight: each a core `Pending`, woken where its answer is read.

use super::*;

/// Requests in flight by the number JavaScript gave them (a handful at a
/// time), each the core's `Pending` of its result message: one type for
/// every result type (`Pending::map`).
pub(crate) type Requests = std::collections::HashMap<u32, Arc<Mutex<Pending<NativeMessage>>>>;

pub(crate) struct Inner {
    pub(crate) tsfn: Tsfn,
    pub(crate) requests: Mutex<Requests>,
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
    pub(crate) fn requests(&self) -> std::sync::MutexGuard<'_, Requests> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called by a waker: on the JavaScript thread when `reader.rs` read the
    /// answer, else on the driver thread.
    pub(crate) fn finish(&self, req: u32) {
        let Some(pending) = self.requests().get(&req).cloned() else { return };
        // None: a spurious wake; keep waiting.
        let Some(result) = pending.lock().unwrap_or_else(|e| e.into_inner()).try_take() else { return };
        self.requests().remove(&req);
        if self.listening.load(Ordering::Acquire) {
            self.events_due.fetch_add(1, Ordering::AcqRel);
        }
        if let Some(msg) = reader::collect(self, result_message(req, result)) {
            self.tsfn.call(msg, ThreadsafeFunctionCallMode::NonBlocking);
        }
    }

    /// Registers the request and polls it once; a result that is already
    /// there (a refused argument, a closed client) is returned at once.
    /// `fill` puts a success's value into the result message.
    pub(crate) fn start<T: Send + 'static>(
        self: &Arc<Self>,
        req: u32,
        pending: Pending<T>,
        fill: impl FnOnce(T, &mut NativeMessage) + Send + 'static,
    ) -> Option<MessageRow> {
        let pending = Arc::new(Mutex::new(pending.map(move |v| {
            let mut msg = NativeMessage::done(req);
            fill(v, &mut msg);
            msg
        })));
        self.requests().insert(req, pending.clone());
        let waker = Waker::from(Arc::new(ReqWaker { req, inner: Arc::downgrade(self) }));
        let polled = std::pin::Pin::new(&mut *pending.lock().unwrap_or_else(|e| e.into_inner()))
            .poll(&mut Context::from_waker(&waker));
        let Poll::Ready(result) = polled else { return None };
        self.requests().remove(&req);
        Some(MessageRow(result_message(req, result)))
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

/// A request's result message, or the message of its error.
pub(crate) fn result_message(req: u32, r: Result<NativeMessage>) -> NativeMessage {
    r.unwrap_or_else(|e| NativeMessage::done(req).error(&e))
}

pub(crate) struct ReqWaker {
    pub(crate) req: u32,
    pub(crate) inner: Weak<Inner>,
}

impl Wake for ReqWaker {
    fn wake(self: Arc<Self>) {
        if let Some(inner) = self.inner.upgrade() {
            inner.finish(self.req);
        }
    }
}
