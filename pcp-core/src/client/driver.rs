//! The client's driver thread: sends, retransmits and renews for every
//! mapping, reads what nobody waiting reads, and runs the event callbacks.
//!
//! It sleeps in its poller (`polling`: epoll on Linux, kqueue on macOS and
//! the BSDs, IOCP on Windows) on the endpoint's sockets until the engine's
//! next deadline. Neither the poller nor std has a timer that another
//! thread can move, so a thread that moves the deadline earlier (a new
//! request's retransmission, a caller's leaving) notifies the poller, and
//! the driver wakes and sleeps again to the new deadline. Nothing polls on
//! a period: with nothing due it sleeps without a timeout.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use polling::{Event as PollEvent, Events, PollMode};

use super::shared::{fail_waiter, Shared, Waiter, MAIN_KEY};
use crate::endpoint::socket;
use crate::Error;

/// The driver poller's key of the ANNOUNCE listener.
const ANNOUNCE_KEY: usize = 1;

/// Whether `Client::new` waits until the driver thread's poller watches the
/// sockets: where callers sleep in a poller (Windows), so that a poll waits
/// on the socket when the first request goes out (see [`run`]). Not on Unix,
/// where it would be start-up time for nothing.
pub(super) const CLIENT_WAITS_FOR_DRIVER: bool = !socket::BLOCKING_READS;

/// Puts the endpoint's sockets into the driver's poller (at start-up).
pub(super) fn register(shared: &Shared) -> std::io::Result<()> {
    let st = shared.lock();
    for (i, s) in st.endpoint.sockets().enumerate() {
        let key = if i == 0 { MAIN_KEY } else { ANNOUNCE_KEY };
        // SAFETY: the sockets live in `Shared` as long as the poller, and
        // the poller is dropped first (field order).
        unsafe { shared.poller.add_with_mode(socket::raw(s), PollEvent::readable(key), PollMode::Level)? };
    }
    Ok(())
}

/// The driver thread's loop, until the client is closed. `started` hears
/// once the poller watches the sockets.
pub(super) fn run(shared: Arc<Shared>, started: std::sync::mpsc::SyncSender<()>) {
    let mut events = Events::new();
    if !socket::BLOCKING_READS {
        // The poll on Windows (IOCP: an AFD poll per socket) starts at the
        // poller's first wait, and the first request may go out before this
        // thread gets there: a wait that returns at once starts it, and
        // `Client::new` returns after it (see `CLIENT_WAITS_FOR_DRIVER`).
        // Under wine an ICMP unreachable reaches only a poll that is
        // waiting when it arrives (see `socket::poll_reports_error`).
        // Nothing can have come yet that this wait could lose.
        let _ = shared.poller.wait(&mut events, Some(std::time::Duration::ZERO));
        events.clear();
    }
    let _ = started.send(());
    // Nothing can be due before a first request, and every request or
    // caller that needs the driver wakes it: start asleep, so that a
    // caller's first request does not wait for our lock.
    let mut next: Option<Instant> = None;
    loop {
        events.clear();
        // Bounded wait: until the deadline set last pass, a notification
        // (see `Shared::plan`), or a datagram.
        let timeout = next.map(|t| t.saturating_duration_since(Instant::now()));
        let _ = shared.poller.wait(&mut events, timeout);
        let socket_error = events.iter().any(|e| e.key == MAIN_KEY && socket::poll_reports_error(&e));
        shared.driver_passes.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let (finished_waiters, finished) = {
            let mut st = shared.lock();
            if st.rearm_at.is_some_and(|t| t <= now) {
                // Due: take the socket back, unless callers drive again by
                // now. Then the last of them to leave sets a new time;
                // keeping this past one would make the driver wake at once,
                // over and over, while they drive.
                st.rearm_at = None;
            }
            // Once closing, the socket is ours whoever is counted in: callers
            // stop driving when they see the close, and one that closed the
            // client from a callback it runs reads nothing until we finish.
            if (st.co_drivers == 0 && st.rearm_at.is_none() || st.closing.is_some()) && !st.socket_armed {
                shared.arm_socket(&mut st, true);
            }
            if !st.socket_armed {
                // The main socket is theirs for now: reading it here could
                // take the answer a caller is waiting for from under it.
                st.endpoint.receive_announce(now);
                st.endpoint.handle_timeout(now);
                st.endpoint.flush(now);
            } else {
                if socket_error {
                    st.endpoint.socket_error_reported(now);
                }
                st.endpoint.process(now);
            }
            let done = shared.settle(&mut st);
            let finished = match st.closing {
                Some(deadline) => st.endpoint.engine().is_idle() || now >= deadline,
                None => false,
            };
            next = st.endpoint.poll_timeout();
            for t in [st.closing, st.rearm_at].into_iter().flatten() {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
            st.driver_deadline = next;
            (done, finished)
        };
        shared.complete_all(finished_waiters);
        shared.dispatch_deferred();
        if finished {
            let waiters: Vec<Waiter> = {
                let mut st = shared.lock();
                st.closed = true;
                st.endpoint.close_listeners(|s| {
                    let _ = shared.poller.delete(s);
                });
                st.waiters.drain().map(|(_, w)| w).collect()
            };
            for w in waiters {
                fail_waiter(w, Error::Closed);
            }
            shared.run_close_hooks();
            return;
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::client::shared::REARM_DELAY;
    use crate::server::Server;
    use crate::{Client, ClientConfig, MapSpec, Protocol};

    /// A caller that drives for a while after an earlier caller left must not
    /// make the driver spin on the re-arm time that passed meanwhile.
    #[test]
    fn the_driver_sleeps_while_a_caller_drives() {
        let server = Server::start_local().unwrap();
        let mut config = ClientConfig::new(server.local_addr());
        config.listen_announce = false;
        let client = Client::new(config).unwrap();
        // Leaving sets the re-arm time REARM_DELAY ahead.
        client.map_with(MapSpec::new(Protocol::TCP, 4000)).unwrap();
        // This caller drives past that time.
        server.set_delay(REARM_DELAY * 10);
        let shared = &client.shared();
        let before = shared.driver_passes.load(Ordering::Relaxed);
        client.map_with(MapSpec::new(Protocol::TCP, 4001)).unwrap();
        let passes = shared.driver_passes.load(Ordering::Relaxed) - before;
        // Sleeping, the driver wakes once for the re-arm time and maybe for
        // the caller's leaving; spinning, it would go round thousands of times.
        assert!(passes <= 5, "driver went round {passes} times while one caller drove");
    }
}
