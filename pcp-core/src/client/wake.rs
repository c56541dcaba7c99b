//! A thread's alarm clock while it drives a client's engine: it sleeps in
//! its own poller (epoll, kqueue or IOCP, through `polling`) until its
//! deadline, until another thread wakes it (the one that completed its
//! request, or a reader handing the socket on), or, if it asked, until the
//! client's socket is readable.

use std::cell::OnceCell;
use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Instant;

use polling::{Event, Events, PollMode, Poller};

use crate::endpoint::socket;

/// The poller key of the watched socket.
const SOCKET_KEY: usize = 1;

/// A handle on a thread's alarm; clones name the same thread, and compare
/// equal.
#[derive(Clone)]
pub(crate) struct ThreadWake(Arc<Alarm>);

struct Alarm {
    poller: Poller,
    /// Set by every wake; only tests read it.
    #[cfg(test)]
    woken: std::sync::atomic::AtomicBool,
}

impl Alarm {
    fn new() -> std::io::Result<Alarm> {
        Ok(Alarm {
            poller: Poller::new()?,
            #[cfg(test)]
            woken: std::sync::atomic::AtomicBool::new(false),
        })
    }
}

impl PartialEq for ThreadWake {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ThreadWake {}

impl std::fmt::Debug for ThreadWake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ThreadWake({:p})", Arc::as_ptr(&self.0))
    }
}

thread_local! {
    static WAKE: OnceCell<Option<ThreadWake>> = const { OnceCell::new() };
}

impl ThreadWake {
    /// This thread's alarm (made on first use, gone with the thread);
    /// `None` if the system refuses a poller or the thread is ending.
    pub(crate) fn current() -> Option<ThreadWake> {
        // `try_with`: none while the thread's locals are being torn down.
        WAKE.try_with(|c| c.get_or_init(|| Alarm::new().ok().map(|a| ThreadWake(Arc::new(a)))).clone()).ok().flatten()
    }

    /// An alarm of its own, not the thread's: nobody else can wake it, but
    /// it can watch a socket.
    pub(crate) fn new_private() -> Option<ThreadWake> {
        Alarm::new().ok().map(|a| ThreadWake(Arc::new(a)))
    }

    /// Whether this is the calling thread's own alarm.
    pub(crate) fn is_current(&self) -> bool {
        WAKE.try_with(|c| c.get().and_then(|w| w.as_ref()) == Some(self)).unwrap_or(false)
    }

    /// Wakes the thread (or makes its next sleep return at once).
    pub(crate) fn wake(&self) {
        #[cfg(test)]
        self.0.woken.store(true, std::sync::atomic::Ordering::Release);
        let _ = self.0.poller.notify();
    }

    /// Sleeps until `until`, a wake, or (while watched) the socket being
    /// readable. A wake that came before the sleep ends it at once. Returns
    /// whether the poller reported an error condition on the watched socket
    /// (see [`socket::poll_reports_error`]).
    pub(crate) fn sleep(&self, until: Instant) -> bool {
        // Room for the one socket: a notification needs none.
        let mut events = Events::with_capacity(std::num::NonZeroUsize::MIN);
        // An error (EINTR) is a spurious wake: the caller looks again.
        let _ = self.0.poller.wait_deadline(&mut events, until);
        let error = events.iter().any(|e| e.key == SOCKET_KEY && socket::poll_reports_error(&e));
        error
    }

    /// Starts watching `socket` for readability (level-triggered: a
    /// datagram someone else has not read yet keeps waking the sleeper).
    pub(crate) fn watch(&self, socket: &UdpSocket) -> bool {
        // SAFETY: `unwatch` removes the socket before the caller lets it
        // go; the client's socket outlives every caller driving it.
        unsafe { self.0.poller.add_with_mode(socket::raw(socket), Event::readable(SOCKET_KEY), PollMode::Level) }
            .is_ok()
    }

    /// Stops watching `socket`.
    pub(crate) fn unwatch(&self, socket: &UdpSocket) {
        let _ = self.0.poller.delete(socket);
    }

    /// Whether the thread was woken since the last look (tests of the roles).
    #[cfg(test)]
    #[cfg_attr(any(windows, feature = "portable-driver"), allow(dead_code))]
    pub(crate) fn take_wake(&self) -> bool {
        self.0.woken.swap(false, std::sync::atomic::Ordering::AcqRel)
    }
}
