use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::wake::ThreadWake;
use crate::{Error, Result};

type Callback<T> = Box<dyn FnOnce(Result<T>) + Send>;

/// Lets a thread that blocks on a [`Pending`] run the client's engine
/// itself while it waits (it reads its own answer: no hop through the
/// driver thread), and tells the driver thread when nobody does.
pub(crate) trait Drive: Send + Sync {
    /// Runs the engine on this thread until `done()` holds or `until` passes;
    /// `wake` (this thread's alarm) rings when another thread completes the
    /// request.
    fn drive(&self, until: Option<Instant>, done: &dyn Fn() -> bool, wake: Option<&ThreadWake>);
    /// Makes sure the driver thread plans for everything submitted so far.
    fn kick(&self);
}

struct SlotState<T> {
    result: Option<Result<T>>,
    waker: Option<Waker>,
    callback: Option<Callback<T>>,
    done: bool,
    /// Threads asleep on the condvar (notifying nobody is a wasted syscall).
    sleepers: usize,
    /// The alarm of a thread driving the engine while it waits for this
    /// request: another thread that completes it must wake that one, which
    /// sleeps in its poller, not on the condvar (or, as the client's
    /// reader, in recv(2) for at most a slice; see `Wait` in the client).
    driver_wake: Option<ThreadWake>,
}

struct Slot<T> {
    state: Mutex<SlotState<T>>,
    cond: Condvar,
}

/// A request in progress: wait for it, poll it, hand it a callback, or
/// `.await` it (it is a plain [`Future`], tied to no runtime).
///
/// The request goes on whether or not anyone waits: dropping a `Pending`
/// does not cancel it; [`Pending::cancel`] does.
pub struct Pending<T> {
    slot: Arc<Slot<T>>,
    cancel: Option<Arc<dyn Fn() + Send + Sync>>,
    driver: Option<Arc<dyn Drive>>,
    kicked: AtomicBool,
}

/// The driver's end of a [`Pending`].
pub(crate) struct Completer<T> {
    slot: Arc<Slot<T>>,
}

pub(crate) fn pending<T>() -> (Pending<T>, Completer<T>) {
    let slot = Arc::new(Slot {
        state: Mutex::new(SlotState {
            result: None,
            waker: None,
            callback: None,
            done: false,
            sleepers: 0,
            driver_wake: None,
        }),
        cond: Condvar::new(),
    });
    (Pending { slot: slot.clone(), cancel: None, driver: None, kicked: AtomicBool::new(false) }, Completer { slot })
}

/// A completer dropped without a result (its waiter replaced, say, by a
/// second delete of the same mapping) fails its `Pending` with
/// `Cancelled` rather than leave a caller waiting forever.
impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        self.settle(Err(Error::Cancelled));
    }
}

impl<T> Completer<T> {
    pub(crate) fn complete(self, result: Result<T>) {
        self.settle(result);
    }

    fn settle(&self, result: Result<T>) {
        let mut st = self.slot.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.done {
            return;
        }
        st.done = true;
        if let Some(cb) = st.callback.take() {
            drop(st);
            cb(result);
            return;
        }
        st.result = Some(result);
        if let Some(wake) = st.driver_wake.take() {
            // The driving thread completing its own request needs no wake.
            if !wake.is_current() {
                wake.wake();
            }
        }
        let waker = st.waker.take();
        let sleepers = st.sleepers;
        drop(st);
        if sleepers > 0 {
            self.slot.cond.notify_all();
        }
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Pending<T> {
    /// An already finished request.
    pub fn ready(result: Result<T>) -> Self {
        let (p, c) = pending();
        c.complete(result);
        p
    }

    pub(crate) fn with_cancel(mut self, cancel: impl Fn() + Send + Sync + 'static) -> Self {
        self.cancel = Some(Arc::new(cancel));
        self
    }

    pub(crate) fn with_driver(mut self, driver: Arc<dyn Drive>) -> Self {
        self.driver = Some(driver);
        self
    }

    /// From now on the driver thread, not a waiting caller, runs the engine.
    fn hand_over(&self) {
        if let Some(d) = &self.driver {
            if !self.kicked.swap(true, Ordering::AcqRel) {
                d.kick();
            }
        }
    }

    fn drive(&self, until: Option<Instant>) {
        let Some(d) = &self.driver else { return };
        let wake = ThreadWake::current();
        {
            let mut st = self.slot.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.done {
                return;
            }
            st.driver_wake = wake.clone();
        }
        // Cleared however `drive` ends: a later completer must not wake this
        // thread out of some other sleep.
        struct Unregister<'a, T>(&'a Slot<T>);
        impl<T> Drop for Unregister<'_, T> {
            fn drop(&mut self) {
                self.0.state.lock().unwrap_or_else(|e| e.into_inner()).driver_wake = None;
            }
        }
        let _unregister = Unregister(&self.slot);
        d.drive(until, &|| self.is_done(), wake.as_ref());
    }

    /// Blocks until the request finishes.
    pub fn wait(self) -> Result<T> {
        self.drive(None);
        if !self.is_done() {
            self.hand_over();
        }
        let mut st = self.slot.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(r) = st.result.take() {
                return r;
            }
            if st.done {
                return Err(Error::Cancelled);
            }
            st.sleepers += 1;
            st = self.slot.cond.wait(st).unwrap_or_else(|e| e.into_inner());
            st.sleepers -= 1;
        }
    }

    /// Blocks for at most `timeout`; `None` if the request is still going
    /// (call again to keep waiting: this is how bindings stay responsive to
    /// Ctrl-C).
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<T>> {
        let deadline = Instant::now() + timeout;
        self.drive(Some(deadline));
        if !self.is_done() {
            self.hand_over();
        }
        let mut st = self.slot.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(r) = st.result.take() {
                return Some(r);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            st.sleepers += 1;
            st = self.slot.cond.wait_timeout(st, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
            st.sleepers -= 1;
        }
    }

    /// The result if the request has finished.
    pub fn try_take(&self) -> Option<Result<T>> {
        self.slot.state.lock().unwrap_or_else(|e| e.into_inner()).result.take()
    }

    /// Whether the request has finished.
    pub fn is_done(&self) -> bool {
        self.slot.state.lock().unwrap_or_else(|e| e.into_inner()).done
    }

    /// Runs `f` with the result when the request finishes: on the thread
    /// that reads the answer (the client's driver thread, a thread waiting
    /// in a blocking call on the same client, or an event loop calling
    /// `process_ready`), or right here if it already has. `f` should not
    /// block for long.
    pub fn on_complete(self, f: impl FnOnce(Result<T>) + Send + 'static) {
        self.hand_over();
        self.forward(f);
    }

    /// Like [`Pending::on_complete`] but without handing the reading over
    /// to the driver thread: for a `Pending` whose result `f` passes on to
    /// another `Pending` that carries the driver (and hands over or drives
    /// itself as its holder waits), so that no thread wakes needlessly.
    pub(crate) fn forward(self, f: impl FnOnce(Result<T>) + Send + 'static) {
        // Dropping `self` below must not hand over either.
        self.kicked.store(true, Ordering::Release);
        let mut st = self.slot.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = st.result.take() {
            drop(st);
            f(r);
        } else if st.done {
            drop(st);
            f(Err(Error::Cancelled));
        } else {
            st.callback = Some(Box::new(f));
        }
    }

    /// The same request with its result converted by `f` (on the thread
    /// that completes it): a way to hold requests of different result types
    /// as one type, e.g. a binding's own result enum. Waiting, polling and
    /// cancelling work as on the original.
    pub fn map<U: Send + 'static>(mut self, f: impl FnOnce(T) -> U + Send + 'static) -> Pending<U>
    where
        T: Send + 'static,
    {
        let (mut p, c) = pending();
        p.cancel = self.cancel.take();
        p.driver = self.driver.clone();
        self.forward(move |r| c.complete(r.map(f)));
        p
    }

    /// Abandons the request. A mapping that was being made is deleted on the
    /// server if the request may have reached it; the result becomes
    /// [`Error::Cancelled`] unless it had already arrived.
    pub fn cancel(&self) {
        self.canceller().cancel();
    }

    /// A handle that cancels the request as [`Pending::cancel`] does, and
    /// still can once the `Pending` itself is handed to
    /// [`Pending::on_complete`]: for a binding that keeps its requests'
    /// results flowing to callbacks and its users' abort signals apart.
    pub fn canceller(&self) -> Canceller {
        Canceller(self.cancel.clone())
    }
}

/// Cancels one request (see [`Pending::canceller`]); a no-op once it has
/// finished or if it cannot be cancelled.
#[derive(Clone)]
pub struct Canceller(Option<Arc<dyn Fn() + Send + Sync>>);

impl Canceller {
    /// Abandons the request, as [`Pending::cancel`].
    pub fn cancel(&self) {
        if let Some(c) = &self.0 {
            c();
        }
    }
}

impl std::fmt::Debug for Canceller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Canceller").finish_non_exhaustive()
    }
}

impl<T> Future for Pending<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.hand_over();
        let mut st = self.slot.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = st.result.take() {
            return Poll::Ready(r);
        }
        if st.done {
            return Poll::Ready(Err(Error::Cancelled));
        }
        st.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl<T> Drop for Pending<T> {
    fn drop(&mut self) {
        // Nobody will wait: the driver thread must finish the request.
        if !self.is_done() {
            self.hand_over();
        }
    }
}

impl<T> std::fmt::Debug for Pending<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("done", &self.is_done()).finish()
    }
}
