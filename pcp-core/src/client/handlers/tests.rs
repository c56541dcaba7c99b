//! Tests of the handler registry and the slot, synchronised with channels
//! (no sleeps): each waits on what the other thread reports.

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

/// A callback that, once called, stays inside its call until released.
struct Held {
    release: mpsc::Sender<()>,
    /// Set when the call returns.
    returned: Arc<AtomicBool>,
    entered: mpsc::Receiver<()>,
}

fn held_callback() -> (Handler, Held) {
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let returned = Arc::new(AtomicBool::new(false));
    let r = returned.clone();
    let f: Handler = Arc::new(move |_: &Event| {
        entered_tx.send(()).unwrap();
        release_rx.lock().unwrap().recv().unwrap();
        r.store(true, Ordering::SeqCst);
    });
    (f, Held { release, returned, entered })
}

/// Dispatches an event on a thread of its own while `remove` (a
/// removal of the held callback) runs on another, and checks that the
/// removal returns only after the held call has.
fn removal_waits_for(handlers: &Arc<EventHandlers>, held: Held, remove: impl FnOnce() + Send + 'static) {
    let h = handlers.clone();
    let dispatcher = thread::spawn(move || h.dispatch(&event(1)));
    held.entered.recv().unwrap();
    let (done_tx, done) = mpsc::channel();
    let r = held.returned.clone();
    let remover = thread::spawn(move || {
        remove();
        done_tx.send(r.load(Ordering::SeqCst)).unwrap();
    });
    until_removal_waits(handlers, &done);
    assert!(!held.returned.load(Ordering::SeqCst));
    held.release.send(()).unwrap();
    assert!(done.recv().unwrap(), "the removal returned before the callback did");
    remover.join().unwrap();
    dispatcher.join().unwrap();
    assert!(handlers.is_empty());
}

/// Removal from another thread returns only after the running call
/// has returned: a shell may free the callback's state then.
#[test]
fn removal_waits_for_a_call_running_on_another_thread() {
    let handlers = Arc::new(EventHandlers::default());
    let (f, held) = held_callback();
    let id = handlers.add(move |e| f(e));
    let h = handlers.clone();
    removal_waits_for(&handlers, held, move || assert!(h.remove(id)));
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
    let (f, held) = held_callback();
    slot.set(&handlers, Some(f));
    let h = handlers.clone();
    removal_waits_for(&handlers, held, move || slot.set(&h, None));
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
