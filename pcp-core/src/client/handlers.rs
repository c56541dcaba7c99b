//! Event callbacks that can be removed safely while they may be running.
//!
//! A shell that hands a callback's state to foreign code (a C `userdata`
//! pointer, a Python or JavaScript function) may free that state once the
//! callback is removed. That is only safe if removal also waits for a call
//! that is running right now on another thread. [`EventHandlers`] does that,
//! and does not wait for a call running on the removing thread itself, so
//! that a callback may remove or replace itself without deadlocking.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, ThreadId};

use crate::engine::Event;

/// A registered event callback.
pub type Handler = Arc<dyn Fn(&Event) + Send + Sync>;

/// Identifies a callback registered with [`EventHandlers::add`] (or
/// [`Client::on_event`](crate::Client::on_event)). The number is unique per
/// registry and never reused; an id that was never handed out simply
/// names no handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HandlerId(pub u64);

/// A registered callback. `slot` names its place in the order: a
/// replacement takes over its predecessor's, so that a dispatch that has
/// not reached the place yet calls the replacement (each event reaches
/// exactly one of the two).
struct Entry {
    slot: u64,
    id: HandlerId,
    f: Handler,
}

#[derive(Default)]
struct Registry {
    /// In registration order, which is the order they are called in.
    handlers: Vec<Entry>,
    /// The next `Entry::slot`.
    next_slot: u64,
    /// Calls running now: the calling thread and the handler (a thread
    /// appears more than once when dispatching nests).
    running: Vec<(ThreadId, HandlerId)>,
    /// Removals waiting in `wait_idle` now (the tests watch it).
    waiting: usize,
}

impl Registry {
    fn new_slot(&mut self) -> u64 {
        self.next_slot += 1;
        self.next_slot
    }
}

/// Event callbacks, called in registration order by [`dispatch`].
///
/// The guarantee the shells build on: once [`remove`] (or [`replace`])
/// returns, the removed callback is not running on any other thread and is
/// never called again, so whatever it uses may be freed. Called from inside
/// that callback (on the thread running it), removal does not wait for
/// that call, which then finishes normally.
///
/// A [`Client`](crate::Client) has one (see [`Client::event_handlers`]),
/// called on its driver thread; a program driving an
/// [`Endpoint`](crate::client::Endpoint) itself may keep one and call
/// [`dispatch`] with what [`Endpoint::poll_event`] returns.
///
/// Do not remove a callback while holding a lock that callback takes: the
/// removal would wait for a call that waits for the lock.
///
/// ```
/// use pcp_core::client::EventHandlers;
/// use pcp_core::Event;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
///
/// let handlers = EventHandlers::default();
/// let seen = Arc::new(AtomicU32::new(0));
/// let s = seen.clone();
/// let id = handlers.add(move |_| {
///     s.fetch_add(1, Ordering::Relaxed);
/// });
/// handlers.dispatch(&Event::ServerRestarted { epoch: 7 });
/// assert!(handlers.remove(id));
/// handlers.dispatch(&Event::ServerRestarted { epoch: 8 });
/// assert_eq!(seen.load(Ordering::Relaxed), 1);
/// ```
///
/// [`dispatch`]: EventHandlers::dispatch
/// [`remove`]: EventHandlers::remove
/// [`replace`]: EventHandlers::replace
/// [`Client::event_handlers`]: crate::Client::event_handlers
/// [`Endpoint::poll_event`]: crate::client::Endpoint::poll_event
#[derive(Default)]
pub struct EventHandlers {
    registry: Mutex<Registry>,
    /// Signalled whenever a call ends.
    call_ended: Condvar,
    next_id: AtomicU64,
    /// Whether any callback is registered, readable without the lock (the
    /// client copies events for dispatch only then).
    any: AtomicBool,
}

impl std::fmt::Debug for EventHandlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHandlers").field("handlers", &self.lock().handlers.len()).finish()
    }
}

impl EventHandlers {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn new_id(&self) -> HandlerId {
        HandlerId(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn update_any(&self, reg: &Registry) {
        self.any.store(!reg.handlers.is_empty(), Ordering::Release);
    }

    /// Registers `f`, called for every event dispatched from now on.
    pub fn add(&self, f: impl Fn(&Event) + Send + Sync + 'static) -> HandlerId {
        let id = self.new_id();
        let mut reg = self.lock();
        let slot = reg.new_slot();
        reg.handlers.push(Entry { slot, id, f: Arc::new(f) });
        self.update_any(&reg);
        id
    }

    /// Unregisters a callback and waits until no call of it is running on
    /// another thread (see the type's documentation). Returns whether it
    /// was registered. The callback and its captures are dropped without
    /// the registry's lock (here, or after a running call ends), so a
    /// capture's drop may call into the registry.
    pub fn remove(&self, id: HandlerId) -> bool {
        let removed = {
            let mut reg = self.lock();
            // Ids are unique: at most one entry.
            let removed = reg.handlers.iter().position(|e| e.id == id).map(|i| reg.handlers.remove(i));
            self.update_any(&reg);
            removed
        };
        let found = removed.is_some();
        // Dropped without the lock (see `swap`).
        drop(removed);
        self.wait_idle(id);
        found
    }

    /// Puts `new` in the place of `old` in one step, so that every event is
    /// passed to exactly one of them (`None` for either: only adds, or only
    /// removes), then waits for running calls of `old` as [`remove`] does.
    /// Returns the new callback's id. A shell with one callback per handle
    /// keeps it in a [`HandlerSlot`].
    ///
    /// [`remove`]: EventHandlers::remove
    pub fn replace(&self, old: Option<HandlerId>, new: Option<Handler>) -> Option<HandlerId> {
        let id = self.swap(old, new);
        if let Some(old) = old {
            self.wait_idle(old);
        }
        id
    }

    /// [`replace`](EventHandlers::replace) without the waiting, for a
    /// caller that must record the new id under a lock of its own before
    /// it waits (the old callback may be taking that lock), as
    /// [`HandlerSlot`] does; it then calls
    /// [`wait_idle`](EventHandlers::wait_idle) with `old`.
    pub fn swap(&self, old: Option<HandlerId>, new: Option<Handler>) -> Option<HandlerId> {
        let new = new.map(|f| (self.new_id(), f));
        let id = new.as_ref().map(|(id, _)| *id);
        let mut reg = self.lock();
        let at = old.and_then(|old| reg.handlers.iter().position(|e| e.id == old));
        let removed = match (at, new) {
            (Some(i), Some((id, f))) => {
                let slot = reg.handlers[i].slot;
                Some(std::mem::replace(&mut reg.handlers[i], Entry { slot, id, f }))
            }
            (Some(i), None) => Some(reg.handlers.remove(i)),
            (None, Some((id, f))) => {
                let slot = reg.new_slot();
                reg.handlers.push(Entry { slot, id, f });
                None
            }
            (None, None) => None,
        };
        self.update_any(&reg);
        // The old callback (its captures, if this held the last reference)
        // is dropped only after the lock is let go: a capture whose drop
        // calls into this registry (a client handle whose drop removes
        // handlers, a foreign object) would otherwise wait for a lock its
        // own thread holds.
        drop(reg);
        drop(removed);
        id
    }

    /// Waits until no call of `id` is running on another thread (a removed
    /// callback then never runs again). Returns at once for a callback
    /// that is not running, or runs only on this thread.
    pub fn wait_idle(&self, id: HandlerId) {
        let me = thread::current().id();
        let mut reg = self.lock();
        // Bounded by the callback: every running call ends and signals.
        while reg.running.iter().any(|&(t, h)| h == id && t != me) {
            reg.waiting += 1;
            reg = self.call_ended.wait(reg).unwrap_or_else(|e| e.into_inner());
            reg.waiting -= 1;
        }
    }

    /// Whether any callback is registered.
    pub fn is_empty(&self) -> bool {
        !self.any.load(Ordering::Acquire)
    }

    /// Whether the calling thread is inside a call of one of these
    /// callbacks (a shell refusing, or deferring, what a callback must not
    /// do, such as freeing the handle that runs it).
    pub fn is_dispatching(&self) -> bool {
        let me = thread::current().id();
        self.lock().running.iter().any(|&(t, _)| t == me)
    }

    /// Calls every callback registered when it starts with `event`, in
    /// order, on this thread; a callback removed meanwhile (by another
    /// one, or another thread) is skipped. A panicking callback is caught
    /// (it must not take the caller down) and the others still run.
    pub fn dispatch(&self, event: &Event) {
        let slots: Vec<u64> = self.lock().handlers.iter().map(|e| e.slot).collect();
        let me = thread::current().id();
        for slot in slots {
            // Chosen and marked running under one lock, so that a removal
            // either sees this call and waits for it, or comes first and
            // the callback is skipped.
            let (id, handler) = {
                let mut reg = self.lock();
                let Some((id, f)) = reg.handlers.iter().find(|e| e.slot == slot).map(|e| (e.id, e.f.clone())) else {
                    continue;
                };
                reg.running.push((me, id));
                (id, f)
            };
            let _ = catch_unwind(AssertUnwindSafe(|| handler(event)));
            // Before the call counts as ended: once a removal returns, the
            // callback's captures may be gone, and this clone holds them.
            drop(handler);
            let mut reg = self.lock();
            if let Some(i) = reg.running.iter().rposition(|&(t, h)| t == me && h == id) {
                reg.running.swap_remove(i);
            }
            drop(reg);
            self.call_ended.notify_all();
        }
    }
}

/// The one callback of a handle that has a single replaceable callback
/// (C's `pcp_client_set_event_callback`), kept in an [`EventHandlers`]
/// registry.
#[derive(Debug, Default)]
pub struct HandlerSlot {
    current: Mutex<Option<HandlerId>>,
}

impl HandlerSlot {
    /// Puts `new` (`None`: no callback) in the place of the slot's callback
    /// in `handlers`, in one step (each event reaches exactly one of them),
    /// then waits until the replaced one is not running on another thread,
    /// as [`EventHandlers::remove`] does. From inside the replaced callback
    /// it does not wait for itself. Concurrent calls are serialised, so the
    /// slot never holds two callbacks.
    pub fn set(&self, handlers: &EventHandlers, new: Option<Handler>) {
        // Recorded under the slot's lock, waited for outside it: the
        // callback being replaced may itself be calling this.
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

#[cfg(test)]
impl EventHandlers {
    /// How many removals are waiting for a running call now.
    pub(crate) fn removals_waiting(&self) -> usize {
        self.lock().waiting
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc;
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    fn event(epoch: u32) -> Event {
        Event::ServerRestarted { epoch }
    }

    /// Waits (bounded) until `handlers` has a removal waiting, failing if
    /// `done` reports first: a removal that does not wait finishes at once.
    fn until_removal_waits(handlers: &EventHandlers, done: &mpsc::Receiver<bool>) {
        let give_up = Instant::now() + Duration::from_secs(20);
        while handlers.removals_waiting() == 0 {
            if let Ok(returned) = done.try_recv() {
                panic!("the removal returned without waiting (callback returned: {returned})");
            }
            assert!(Instant::now() < give_up, "the removal never started waiting");
            thread::yield_now();
        }
    }

    /// Removal from another thread returns only after the running call
    /// has returned: a shell may free the callback's state then.
    #[test]
    fn removal_waits_for_a_call_running_on_another_thread() {
        let handlers = Arc::new(EventHandlers::default());
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let returned = Arc::new(AtomicBool::new(false));
        let r = returned.clone();
        let id = handlers.add(move |_| {
            entered_tx.send(()).unwrap();
            release_rx.lock().unwrap().recv().unwrap();
            r.store(true, Ordering::SeqCst);
        });
        let h = handlers.clone();
        let dispatcher = thread::spawn(move || h.dispatch(&event(1)));
        entered.recv().unwrap();

        let (done_tx, done) = mpsc::channel();
        let (h, r) = (handlers.clone(), returned.clone());
        let remover = thread::spawn(move || {
            assert!(h.remove(id));
            done_tx.send(r.load(Ordering::SeqCst)).unwrap();
        });
        until_removal_waits(&handlers, &done);
        assert!(!returned.load(Ordering::SeqCst));
        release.send(()).unwrap();
        assert!(done.recv().unwrap(), "remove returned before the callback did");
        remover.join().unwrap();
        dispatcher.join().unwrap();
        assert!(handlers.is_empty());
    }

    /// A callback that removes itself does not wait for itself.
    #[test]
    fn a_callback_removes_itself_without_deadlock() {
        let handlers = Arc::new(EventHandlers::default());
        let own: Arc<OnceLock<HandlerId>> = Arc::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let (h, o, c) = (handlers.clone(), own.clone(), calls.clone());
        let id = handlers.add(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            assert!(h.is_dispatching());
            assert!(h.remove(*o.get().unwrap()));
        });
        own.set(id).unwrap();
        handlers.dispatch(&event(1));
        handlers.dispatch(&event(2));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(!handlers.is_dispatching());
        assert!(handlers.is_empty());
    }

    /// A callback removed by an earlier one is not called for the same event.
    #[test]
    fn a_callback_removed_by_another_is_skipped() {
        let handlers = Arc::new(EventHandlers::default());
        let victim: Arc<OnceLock<HandlerId>> = Arc::default();
        let (h, v) = (handlers.clone(), victim.clone());
        handlers.add(move |_| {
            h.remove(*v.get().unwrap());
        });
        let called = Arc::new(AtomicBool::new(false));
        let c = called.clone();
        victim.set(handlers.add(move |_| c.store(true, Ordering::SeqCst))).unwrap();
        handlers.dispatch(&event(1));
        assert!(!called.load(Ordering::SeqCst));
    }

    /// Replacing takes the old one's place: every event reaches exactly
    /// one of the two, whichever thread replaces while events flow.
    #[test]
    fn replace_passes_each_event_to_exactly_one_callback() {
        let handlers = Arc::new(EventHandlers::default());
        let (old_calls, new_calls) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let o = old_calls.clone();
        let old = handlers.add(move |_| {
            o.fetch_add(1, Ordering::SeqCst);
        });
        let (started_tx, started) = mpsc::channel();
        let h = handlers.clone();
        let dispatcher = thread::spawn(move || {
            for i in 0..2000 {
                if i == 10 {
                    started_tx.send(()).unwrap();
                }
                h.dispatch(&event(i));
            }
        });
        started.recv().unwrap();
        let n = new_calls.clone();
        let new = handlers.replace(
            Some(old),
            Some(Arc::new(move |_: &Event| {
                n.fetch_add(1, Ordering::SeqCst);
            })),
        );
        // The old one is done for good once replace returns.
        let old_after = old_calls.load(Ordering::SeqCst);
        dispatcher.join().unwrap();
        assert_eq!(old_calls.load(Ordering::SeqCst), old_after);
        assert_eq!(old_after + new_calls.load(Ordering::SeqCst), 2000);
        assert!(old_after >= 10);
        assert!(handlers.remove(new.unwrap()));
        assert!(!handlers.remove(old), "the old one is gone");
    }

    /// A callback replacing itself (C's set_event_callback from inside the
    /// callback) neither waits for itself nor is called again.
    #[test]
    fn a_callback_replaces_itself_without_deadlock() {
        let handlers = Arc::new(EventHandlers::default());
        let own: Arc<OnceLock<HandlerId>> = Arc::default();
        let (h, o) = (handlers.clone(), own.clone());
        let (tx, rx) = mpsc::channel();
        let tx2 = tx.clone();
        let id = handlers.add(move |_| {
            let tx = tx2.clone();
            h.replace(Some(*o.get().unwrap()), Some(Arc::new(move |_: &Event| tx.send("new").unwrap())));
            tx2.send("old").unwrap();
        });
        own.set(id).unwrap();
        handlers.dispatch(&event(1));
        handlers.dispatch(&event(2));
        drop(tx);
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), ["old", "new"]);
    }

    /// A slot holds one callback: setting it again replaces the old one,
    /// also from inside that callback (no deadlock), and `None` empties it.
    #[test]
    fn a_slot_holds_one_callback_replaced_in_place() {
        let handlers = Arc::new(EventHandlers::default());
        let slot = Arc::new(HandlerSlot::default());
        let (tx, rx) = mpsc::channel();
        let (h, s, t) = (handlers.clone(), slot.clone(), tx.clone());
        slot.set(
            &handlers,
            Some(Arc::new(move |_: &Event| {
                let t2 = t.clone();
                s.set(&h, Some(Arc::new(move |_: &Event| t2.send("second").unwrap())));
                t.send("first").unwrap();
            })),
        );
        handlers.dispatch(&event(1));
        handlers.dispatch(&event(2));
        slot.set(&handlers, None);
        handlers.dispatch(&event(3));
        drop(tx);
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), ["first", "second"]);
        assert!(handlers.is_empty());
    }

    /// Setting a slot from another thread waits for a running call of the
    /// callback it replaces, so that its state may be freed then.
    #[test]
    fn a_slot_set_waits_for_the_running_callback() {
        let handlers = Arc::new(EventHandlers::default());
        let slot = Arc::new(HandlerSlot::default());
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let returned = Arc::new(AtomicBool::new(false));
        let r = returned.clone();
        slot.set(
            &handlers,
            Some(Arc::new(move |_: &Event| {
                entered_tx.send(()).unwrap();
                release_rx.lock().unwrap().recv().unwrap();
                r.store(true, Ordering::SeqCst);
            })),
        );
        let h = handlers.clone();
        let dispatcher = thread::spawn(move || h.dispatch(&event(1)));
        entered.recv().unwrap();
        let (done_tx, done) = mpsc::channel();
        let (h, s, r) = (handlers.clone(), slot.clone(), returned.clone());
        let setter = thread::spawn(move || {
            s.set(&h, None);
            done_tx.send(r.load(Ordering::SeqCst)).unwrap();
        });
        until_removal_waits(&handlers, &done);
        release.send(()).unwrap();
        assert!(done.recv().unwrap(), "set returned before the replaced callback did");
        setter.join().unwrap();
        dispatcher.join().unwrap();
        assert!(handlers.is_empty());
    }

    /// A panicking callback is caught; the next one still runs, and the
    /// panicking one is not counted as running any more.
    #[test]
    fn a_panicking_callback_does_not_stop_the_others() {
        let handlers = EventHandlers::default();
        let bad = handlers.add(|_| panic!("callback panics (expected in this test)"));
        let called = Arc::new(AtomicBool::new(false));
        let c = called.clone();
        handlers.add(move |_| c.store(true, Ordering::SeqCst));
        handlers.dispatch(&event(1));
        assert!(called.load(Ordering::SeqCst));
        assert!(!handlers.is_dispatching());
        assert!(handlers.remove(bad));
    }

    /// A capture whose drop calls into the registry (as a client handle
    /// does whose drop removes its handlers, or a foreign object) is
    /// dropped after the registry's lock is let go, by `remove`, `replace`
    /// and `swap`: under the lock its drop would wait for that lock on the
    /// same thread. Each removal runs on a thread of its own with a bound.
    #[test]
    fn a_capture_whose_drop_calls_the_registry_is_dropped_without_the_lock() {
        /// Removes `other` from `handlers` when dropped.
        struct RemovesOnDrop(Arc<EventHandlers>, Arc<OnceLock<HandlerId>>);
        impl Drop for RemovesOnDrop {
            fn drop(&mut self) {
                if let Some(other) = self.1.get() {
                    self.0.remove(*other);
                }
            }
        }
        fn calls_in(handlers: &Arc<EventHandlers>) -> (Handler, HandlerId) {
            let other = handlers.add(|_| {});
            let capture = RemovesOnDrop(handlers.clone(), Arc::new(OnceLock::from(other)));
            (
                Arc::new(move |_: &Event| {
                    let _ = &capture;
                }),
                other,
            )
        }
        /// Runs `f` on another thread; fails if it does not end within 10 s.
        fn bounded(what: &str, f: impl FnOnce() + Send + 'static) {
            let (tx, rx) = mpsc::channel();
            thread::spawn(move || {
                f();
                let _ = tx.send(());
            });
            rx.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| panic!("{what} deadlocked (or panicked)"));
        }
        let handlers = Arc::new(EventHandlers::default());

        let (f, other) = calls_in(&handlers);
        let id = handlers.add(move |e| f(e));
        let h = handlers.clone();
        bounded("remove", move || assert!(h.remove(id)));
        assert!(!handlers.remove(other), "the drop removed the other handler");

        let (f, other) = calls_in(&handlers);
        let id = handlers.add(move |e| f(e));
        let h = handlers.clone();
        bounded("replace", move || {
            h.replace(Some(id), Some(Arc::new(|_: &Event| {})));
        });
        assert!(!handlers.remove(other), "the drop removed the other handler");

        let (f, other) = calls_in(&handlers);
        let id = handlers.swap(None, Some(f)).unwrap();
        let h = handlers.clone();
        bounded("swap", move || {
            h.swap(Some(id), None);
        });
        assert!(!handlers.remove(other), "the drop removed the other handler");
    }

    /// The same on a real client: its driver thread runs the callback,
    /// `Client::remove_event_handler` on another thread waits for it, and
    /// a callback removing itself on the driver thread does not deadlock.
    #[test]
    fn a_client_removal_waits_for_the_driver_thread() {
        use crate::server::Server;
        use crate::{Client, ClientConfig, Protocol};
        let server = Server::start_local().expect("server");
        let mut cc = ClientConfig::new(server.local_addr());
        cc.listen_announce = false;
        let client = Client::new(cc).expect("client");

        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let returned = Arc::new(AtomicBool::new(false));
        let r = returned.clone();
        let blocking = client.on_event(move |ev| {
            if matches!(ev, Event::Granted(_)) {
                entered_tx.send(()).unwrap();
                release_rx.lock().unwrap().recv().unwrap();
                r.store(true, Ordering::SeqCst);
            }
        });
        client.map(Protocol::TCP, 8080).expect("map");
        entered.recv().unwrap();
        let (done_tx, done) = mpsc::channel();
        let (c, r) = (client.clone(), returned.clone());
        let remover = thread::spawn(move || {
            assert!(c.remove_event_handler(blocking));
            done_tx.send(r.load(Ordering::SeqCst)).unwrap();
        });
        until_removal_waits(client.event_handlers(), &done);
        release.send(()).unwrap();
        assert!(done.recv().unwrap(), "remove_event_handler returned before the callback did");
        remover.join().unwrap();

        let own: Arc<OnceLock<HandlerId>> = Arc::default();
        let (c, o) = (client.clone(), own.clone());
        let (calls_tx, calls) = mpsc::channel();
        let id = client.on_event(move |ev| {
            if let Event::Granted(info) = ev {
                calls_tx.send(info.internal_port).unwrap();
                assert!(c.remove_event_handler(*o.get().unwrap()));
            }
        });
        own.set(id).unwrap();
        client.map(Protocol::TCP, 8081).expect("map");
        assert_eq!(calls.recv().unwrap(), 8081);
        client.map(Protocol::TCP, 8082).expect("map");
        client.close();
        // Closing joined the driver: a second call would have been sent by now.
        assert_eq!(calls.try_iter().count(), 0, "a handler that removed itself ran again");
        assert!(client.event_handlers().is_empty());
    }
}
