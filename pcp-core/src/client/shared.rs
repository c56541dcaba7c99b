//! The state a client's handles, driver thread and waiting callers share,
//! and what any of them does with it: submitting requests, waking the
//! driver, settling the engine's events, closing.

use std::net::{IpAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use polling::{PollMode, Poller};

use super::handlers::EventHandlers;
use super::pending::{pending, Completer, Pending};
use super::wake::ThreadWake;
use super::Mapping;
use crate::endpoint::{socket, ClientConfig, Endpoint};
use crate::engine::{Event, KeyMap, MappingId};
use crate::{Error, Result};

/// The driver poller's key of the main socket (the ANNOUNCE listener is 1).
pub(super) const MAIN_KEY: usize = 0;

/// Who waits for a request's outcome.
pub(super) enum Waiter {
    Map(Completer<Mapping>),
    /// Every caller of a delete of one mapping (a second delete of a mapping
    /// being deleted waits for the same answer).
    Delete(Vec<Completer<()>>),
    Announce(Completer<u32>),
    External(Completer<IpAddr>),
}

pub(super) struct State {
    pub(super) endpoint: Endpoint,
    pub(super) waiters: KeyMap<u64, Waiter>,
    /// When the driver will wake by itself; `None` while it sleeps without a deadline.
    pub(super) driver_deadline: Option<Instant>,
    pub(super) closing: Option<Instant>,
    pub(super) closed: bool,
    /// Events for the callbacks and channels, dispatched in order by the
    /// driver thread only (never on an application thread).
    pub(super) deferred: Vec<Event>,
    /// Callers currently driving the engine themselves. While there are any,
    /// the main socket is out of the driver's poller, so that an answer
    /// wakes only the caller waiting for it.
    pub(super) co_drivers: usize,
    /// Whether the main socket is in the driver's poller.
    pub(super) socket_armed: bool,
    /// When the driver re-arms the socket after the last caller left.
    /// Re-arming lazily spares a loop of blocking calls two poller changes
    /// each; unsolicited datagrams wait at most `REARM_DELAY`.
    pub(super) rearm_at: Option<Instant>,
    /// The waiting caller that reads the socket, sleeping in recv(2), known
    /// by its alarm; see [`Wait`](super::waiting::Wait).
    pub(super) reader: Option<ThreadWake>,
    /// The waiting callers that sleep on their alarms while `reader`
    /// reads; it wakes one of them to take over when it leaves.
    pub(super) followers: Vec<ThreadWake>,
    /// Event loops reading the socket themselves (`attach_reader`).
    pub(super) attached: usize,
}

/// How long after the last driving caller leaves the driver thread takes
/// the main socket back.
pub(super) const REARM_DELAY: Duration = Duration::from_millis(20);

/// What the [`Client`] handles, the driver thread and the waiting callers share.
pub(super) struct Shared {
    /// The driver thread's poller: the endpoint's sockets. It sleeps in it
    /// until its deadline (`State::driver_deadline`); a thread that moves
    /// that deadline earlier notifies it, which wakes it at once. First, so
    /// that it goes before the sockets it watches.
    pub(super) poller: Poller,
    pub(super) state: Mutex<State>,
    pub(super) handlers: EventHandlers,
    pub(super) subscribers: Mutex<Vec<mpsc::Sender<Event>>>,
    /// Whether a channel of `Client::events` was ever handed out.
    pub(super) subscribed: AtomicBool,
    /// How many times the driver thread has gone round its loop; tests
    /// bound it to catch a driver that spins instead of sleeping.
    pub(super) driver_passes: AtomicU64,
    /// The endpoint's main socket (fixed for its life), which waiting
    /// callers read without the lock.
    pub(super) socket: Arc<UdpSocket>,
    /// Ourselves, for handing out `Arc`s from `&self`.
    pub(super) this: std::sync::Weak<Shared>,

    pub(super) config: ClientConfig,
    pub(super) driver: Mutex<Option<(JoinHandle<()>, ThreadId)>>,
    /// The classic API's calls in flight (see `classic.rs`).
    pub(super) classic: super::classic::ClassicCalls,
    /// [`Client::on_close`](super::Client::on_close) callbacks; `None` once
    /// they have run.
    pub(super) close_hooks: Mutex<Option<Vec<CloseHook>>>,
}

pub(super) type CloseHook = Box<dyn FnOnce() + Send>;

/// Closes the client when the last [`Client`] handle goes.
pub(super) struct Owner(pub(super) Arc<Shared>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the driver thread (or makes its next sleep return at once).
    pub(super) fn wake(&self) {
        let _ = self.poller.notify();
    }

    /// Puts the main socket into the driver's poller, or takes it out.
    /// Taking it out rather than asking for no events: epoll still reports
    /// errors then, and an ICMP error waiting on the socket would wake the
    /// driver over and over while the callers who read it have not yet.
    pub(super) fn arm_socket(&self, st: &mut State, armed: bool) {
        if st.socket_armed == armed {
            return;
        }
        st.socket_armed = armed;
        if armed {
            // SAFETY: the socket outlives its registration: both live in
            // `Shared`, and the poller is dropped first.
            let _ = unsafe {
                self.poller.add_with_mode(
                    socket::raw(&self.socket),
                    polling::Event::readable(MAIN_KEY),
                    PollMode::Level,
                )
            };
        } else {
            let _ = self.poller.delete(&*self.socket);
        }
    }

    /// Runs `f` on the state and sends what it queued. The driver thread is
    /// not woken here: a caller that waits drives the engine itself, and a
    /// [`Pending`] hands over to the driver when nobody waits on it. Calls
    /// that return no `Pending` pass `kick`.
    pub(super) fn submit<T>(&self, kick: bool, f: impl FnOnce(&mut State, Instant) -> Result<T>) -> Result<T> {
        let now = Instant::now();
        let mut st = self.lock();
        if st.closed || st.closing.is_some() {
            return Err(Error::Closed);
        }
        let out = f(&mut st, now)?;
        st.endpoint.flush(now);
        drop(st);
        if kick {
            self.plan();
        }
        Ok(out)
    }

    /// Wakes the driver if the engine's next deadline is before the one it
    /// sleeps to, or if it has events or results to deliver.
    pub(super) fn plan(&self) {
        let mut st = self.lock();
        let next = st.endpoint.poll_timeout();
        let late = match (next, st.driver_deadline) {
            (Some(n), Some(d)) => n < d,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if late {
            // Not waiting for the driver to see it: a second plan() before
            // it wakes must not wake it again.
            st.driver_deadline = next;
        }
        let wake = late || !st.deferred.is_empty() || st.endpoint.engine().has_events();
        drop(st);
        if wake {
            self.wake();
        }
    }

    /// Moves the engine's events out: results for their waiters, and (when
    /// anyone listens) a copy for the callbacks, queued for the driver.
    pub(super) fn settle(&self, st: &mut State) -> Vec<(Waiter, Event)> {
        // Copies of the events only when someone listens.
        let listened = !self.handlers.is_empty() || self.subscribed.load(Ordering::Acquire);
        let mut done = Vec::new();
        while let Some(mut ev) = st.endpoint.poll_event() {
            if let (Event::Failed { error, .. }, Some(_)) = (&mut ev, st.closing) {
                // What close() cancels failed because the client closed: the
                // same CLOSED as a request whose answer close gives up on.
                if *error == Error::Cancelled {
                    *error = Error::Closed;
                }
            }
            // A delete completes a Delete waiter; a cancelled map's Failed
            // completes the Map waiter, and its later Deleted nothing.
            let waiter = waiter_key(&ev).and_then(|k| match (&ev, st.waiters.get(&k)) {
                (Event::Deleted { .. }, Some(Waiter::Delete(_)))
                | (Event::Failed { .. } | Event::Granted(_), Some(Waiter::Map(_)))
                | (Event::Announced { .. }, Some(Waiter::Announce(_)))
                | (Event::ExternalAddress { .. }, Some(Waiter::External(_))) => st.waiters.remove(&k),
                _ => None,
            });
            if listened {
                st.deferred.push(ev.clone());
            }
            if let Some(w) = waiter {
                done.push((w, ev));
            }
        }
        done
    }

    pub(super) fn complete_all(self: &Arc<Self>, done: Vec<(Waiter, Event)>) {
        for (w, ev) in done {
            // A panicking on_complete callback or waker must not unwind
            // through whichever caller happened to read the answer.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| complete(self, w, &ev)));
        }
    }

    /// Delivers queued events to the callbacks and channels (driver thread only).
    pub(super) fn dispatch_deferred(&self) {
        let events = std::mem::take(&mut self.lock().deferred);
        if events.is_empty() {
            return;
        }
        for event in events {
            // Catches a panicking callback: it must not take the driver down.
            self.handlers.dispatch(&event);
            let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
            subs.retain(|tx| tx.send(event.clone()).is_ok());
        }
    }

    /// See [`Client::blocking`].
    pub(super) fn blocking<T>(&self, start: impl FnOnce() -> Pending<T>) -> Result<T> {
        struct Counted<'a>(&'a Shared);
        impl Drop for Counted<'_> {
            fn drop(&mut self) {
                self.0.co_driving(false);
            }
        }
        self.co_driving(true);
        let _counted = Counted(self);
        start().wait()
    }

    /// Counts a caller in or out of driving the engine itself. The first in
    /// takes the main socket out of the driver's poller (it takes effect
    /// even while the driver waits); the last out asks the driver to take
    /// the socket back shortly, waking it if it sleeps longer.
    pub(super) fn co_driving(&self, entering: bool) {
        let mut st = self.lock();
        if entering {
            st.co_drivers += 1;
            // A caller coming once closing does not drive (see the driver).
            if st.closing.is_none() {
                self.arm_socket(&mut st, false);
            }
            return;
        }
        st.co_drivers = st.co_drivers.saturating_sub(1);
        if st.co_drivers == 0 && !st.socket_armed && st.rearm_at.is_none() {
            let at = Instant::now() + REARM_DELAY;
            st.rearm_at = Some(at);
            if st.driver_deadline.is_none_or(|d| at < d) {
                st.driver_deadline = Some(at);
                drop(st);
                self.wake();
            }
        }
    }

    /// Deletes mapping `id`; one that has ended already (deleted, lost) is
    /// gone: success at once, nothing sent, as the classic delete of a port
    /// the client does not hold.
    pub(super) fn delete_async(self: &Arc<Self>, id: MappingId) -> Pending<()> {
        let (p, c) = pending();
        match self.submit(false, |st, now| {
            if st.endpoint.engine().has_ended(id) {
                // No callback can be attached yet: completing under the lock runs nothing.
                c.complete(Ok(()));
                return Ok(());
            }
            st.endpoint.engine_mut().delete(now, id)?;
            match st.waiters.get_mut(&id.0) {
                Some(Waiter::Delete(callers)) => callers.push(c),
                // A map still in flight is cancelled by the delete (its waiter goes).
                _ => drop(st.waiters.insert(id.0, Waiter::Delete(vec![c]))),
            }
            Ok(())
        }) {
            Ok(()) => p.with_driver(self.clone()),
            Err(e) => Pending::ready(Err(e)),
        }
    }

    pub(super) fn close(&self) {
        self.close_with(self.config.delete_on_close);
    }

    /// Runs the close hooks once, on the driver thread as it finishes
    /// (before `close` returns, since closing joins it); no lock is held.
    pub(super) fn run_close_hooks(&self) {
        let hooks = self.close_hooks.lock().unwrap_or_else(|e| e.into_inner()).take();
        for hook in hooks.into_iter().flatten() {
            // A panicking hook must not keep the others from running.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(hook));
        }
    }

    pub(super) fn close_with(&self, delete: bool) {
        {
            let now = Instant::now();
            let mut st = self.lock();
            if st.closed || st.closing.is_some() {
                drop(st);
                self.join_driver();
                return;
            }
            st.endpoint.engine_mut().close(now, delete);
            st.endpoint.flush(now);
            st.closing = Some(now + self.config.close_timeout);
        }
        self.wake();
        self.join_driver();
    }

    pub(super) fn join_driver(&self) {
        let taken = {
            let mut d = self.driver.lock().unwrap_or_else(|e| e.into_inner());
            match &*d {
                // Closing from a callback on the driver thread: it ends by itself.
                Some((_, tid)) if *tid == thread::current().id() => None,
                _ => d.take(),
            }
        };
        if let Some((h, _)) = taken {
            let _ = h.join();
        }
    }
}
fn complete(shared: &Arc<Shared>, waiter: Waiter, event: &Event) {
    match (waiter, event) {
        (Waiter::Map(c), Event::Granted(info)) => {
            c.complete(Ok(Mapping { shared: shared.clone(), info: info.clone() }))
        }
        (Waiter::Map(c), Event::Failed { error, .. }) => c.complete(Err(error.clone())),
        (Waiter::Delete(callers), Event::Deleted { result, .. }) => {
            callers.into_iter().for_each(|c| c.complete(result.clone()))
        }
        (Waiter::Announce(c), Event::Announced { result, .. }) => c.complete(result.clone()),
        (Waiter::External(c), Event::ExternalAddress { result, .. }) => c.complete(result.clone()),
        (w, _) => fail_waiter(w, Error::BadResponse("unexpected completion".into())),
    }
}

pub(super) fn fail_waiter(w: Waiter, e: Error) {
    match w {
        Waiter::Map(c) => c.complete(Err(e)),
        Waiter::Delete(callers) => callers.into_iter().for_each(|c| c.complete(Err(e.clone()))),
        Waiter::Announce(c) => c.complete(Err(e)),
        Waiter::External(c) => c.complete(Err(e)),
    }
}

/// Which waiter an event completes.
pub(super) fn waiter_key(event: &Event) -> Option<u64> {
    match event {
        Event::Granted(info) => Some(info.id.0),
        Event::Failed { id, .. } => Some(id.0),
        Event::Deleted { id, .. } => Some(id.0),
        Event::Announced { id, .. } | Event::ExternalAddress { id, .. } => Some(id.0),
        _ => None,
    }
}
