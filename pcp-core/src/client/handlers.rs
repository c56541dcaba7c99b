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
mod tests;
