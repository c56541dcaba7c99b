//! Requests in flight: each a core `Pending`, woken where its answer is read.

use super::*;

/// Requests in flight by the number JavaScript gave them (a handful at a
/// time; the engine's own key map stays internal to the core).
pub(crate) type Requests = std::collections::HashMap<u32, Arc<dyn Request>>;

/// A request in flight, whatever its result type.
pub(crate) trait Request: Send + Sync {
    fn cancel(&self);
    /// The result as a message, once it has arrived.
    fn take(&self) -> Option<NativeMessage>;
}

pub(crate) struct Typed<T> {
    pub(crate) req: u32,
    pub(crate) pending: Mutex<Pending<T>>,
    pub(crate) convert: fn(T, NativeMessage) -> NativeMessage,
}

impl<T: Send + 'static> Request for Typed<T> {
    fn cancel(&self) {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).cancel();
    }

    fn take(&self) -> Option<NativeMessage> {
        let r = self.pending.lock().unwrap_or_else(|e| e.into_inner()).try_take()?;
        Some(result_message(self.req, r, self.convert))
    }
}

pub(crate) fn result_message<T>(
    req: u32,
    r: Result<T, PcpError>,
    convert: fn(T, NativeMessage) -> NativeMessage,
) -> NativeMessage {
    let mut m = NativeMessage::new("done");
    m.req = Some(req);
    match r {
        Ok(v) => convert(v, m),
        Err(e) => m.error(&e),
    }
}

pub(crate) fn conv_mapping(m: Mapping, mut msg: NativeMessage) -> NativeMessage {
    msg.mapping = Some(mapping_data(m.info()));
    msg
}

pub(crate) fn conv_classic(m: Mapping, mut msg: NativeMessage) -> NativeMessage {
    let i = m.info();
    msg.classic = Some(ClassicMapping {
        id: i.id.0 as f64,
        external_address: i.external_addr.to_string(),
        external_port: u32::from(i.external_port),
        lifetime: i.lifetime,
    });
    msg
}

pub(crate) fn conv_unit(_: (), msg: NativeMessage) -> NativeMessage {
    msg
}

pub(crate) fn conv_epoch(e: u32, mut msg: NativeMessage) -> NativeMessage {
    msg.epoch = Some(e);
    msg
}

pub(crate) fn conv_addr(a: IpAddr, mut msg: NativeMessage) -> NativeMessage {
    msg.address = Some(a.to_string());
    msg
}

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
        let r = self.requests().remove(&req);
        if let Some(r) = r {
            match r.take() {
                Some(msg) => {
                    if self.listening.load(Ordering::Acquire) {
                        self.events_due.fetch_add(1, Ordering::AcqRel);
                    }
                    if let Some(msg) = reader::collect(self, msg) {
                        self.tsfn.call(msg, ThreadsafeFunctionCallMode::NonBlocking);
                    }
                }
                // Spurious wake: keep waiting.
                None => {
                    self.requests().insert(req, r);
                }
            }
        }
    }

    /// Registers the request and polls it once; a result that is already
    /// there (a refused argument, a closed client) is returned at once.
    pub(crate) fn start<T: Send + 'static>(
        self: &Arc<Self>,
        req: u32,
        pending: Pending<T>,
        convert: fn(T, NativeMessage) -> NativeMessage,
    ) -> Option<NativeMessage> {
        let typed = Arc::new(Typed { req, pending: Mutex::new(pending), convert });
        self.requests().insert(req, typed.clone());
        let waker = Waker::from(Arc::new(ReqWaker { req, inner: Arc::downgrade(self) }));
        let mut cx = Context::from_waker(&waker);
        let ready = {
            let mut p = typed.pending.lock().unwrap_or_else(|e| e.into_inner());
            match std::pin::Pin::new(&mut *p).poll(&mut cx) {
                Poll::Ready(r) => Some(r),
                Poll::Pending => None,
            }
        };
        match ready {
            Some(r) => {
                self.requests().remove(&req);
                Some(result_message(req, r, convert))
            }
            None => None,
        }
    }
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
