//! How callers that block on a request wait for it: they drive the
//! engine themselves (reading their own answer, with no hop through the
//! driver thread), one of them sleeping in recv(2) on the socket and the
//! others on their alarms; see [`Wait`].

use std::thread;
use std::time::{Duration, Instant};

use super::pending::Drive;
use super::shared::{Shared, State};
use super::wake::ThreadWake;
use crate::endpoint::{self, socket};

/// How a caller driving the engine waits for its answer.
///
/// One caller at a time, the reader, sleeps in recv(2) on the socket (for
/// at most `WAIT_SLICE`, to see its timers and a close): one system call
/// where a poll and then recv(2) would be two, and the kernel wakes it
/// straight into the read. The others (followers) sleep on their alarms
/// ([`ThreadWake`]): the reader completes their requests, which wakes
/// them, and when it leaves it wakes one of them to read in its place. A
/// follower that read the socket too could take the reader's answer while
/// the reader sleeps on. Where callers cannot sleep in recv(2) (Windows,
/// or the `portable-driver` feature; see [`socket`]), nobody reads: every
/// caller polls.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Wait {
    Read,
    Follow,
    /// Sleeps on its alarm and the socket: for waits shorter than three
    /// slices, while an event loop reads the socket too, without an alarm of
    /// its own, or where nobody may read.
    Poll,
}

impl Shared {
    /// How the caller with alarm `me` waits next, for `remaining` at most;
    /// takes or joins the roles of [`Wait`].
    pub(super) fn choose_wait(st: &mut State, me: Option<&ThreadWake>, remaining: Duration) -> Wait {
        let Some(me) = me else { return Wait::Poll };
        // Sleeping in recv(2) only when three slices remain: the receive
        // timeout counts in clock ticks and may run several milliseconds
        // over (10 ms gave 15-16 ms here); poll(2) keeps a deadline exact.
        let long = socket::BLOCKING_READS && remaining >= 3 * endpoint::WAIT_SLICE;
        match &st.reader {
            Some(r) if r == me => {
                if long && st.attached == 0 {
                    Wait::Read
                } else {
                    Wait::Poll
                }
            }
            Some(_) => {
                if !st.followers.contains(me) {
                    st.followers.push(me.clone());
                }
                Wait::Follow
            }
            None if st.attached == 0 && long => {
                st.reader = Some(me.clone());
                st.followers.retain(|f| f != me);
                Wait::Read
            }
            None => Wait::Poll,
        }
    }

    /// The caller with alarm `me` stops reading (it leaves, or is about
    /// to run callbacks that may block): if then nobody reads, a follower
    /// is woken to read in its place. Any caller leaving does this, not only
    /// the reader: a follower woken to take over may finish instead.
    pub(super) fn stop_reading(st: &mut State, me: Option<&ThreadWake>, leaving: bool) {
        if let Some(me) = me {
            if leaving {
                st.followers.retain(|f| f != me);
            }
            if st.reader.as_ref() == Some(me) {
                st.reader = None;
            }
        }
        if st.reader.is_none() {
            if let Some(next) = st.followers.pop() {
                next.wake();
            }
        }
    }
}

/// A caller driving the engine: undoes its part when it leaves, however it
/// leaves (a panicking callback included), so that the others do not wait
/// for a reader that is gone.
struct Driving<'a> {
    shared: &'a Shared,
    me: Option<&'a ThreadWake>,
    /// The alarm it sleeps on (its own, or one made for this call).
    alarm: Option<ThreadWake>,
    /// Whether `alarm` watches the socket.
    watching: bool,
}

impl Driving<'_> {
    /// Starts or stops watching the socket with the alarm.
    fn watch(&mut self, on: bool) {
        let Some(alarm) = &self.alarm else { return };
        if on != self.watching {
            if on {
                self.watching = alarm.watch(&self.shared.socket);
            } else {
                alarm.unwatch(&self.shared.socket);
                self.watching = false;
            }
        }
    }

    /// Sleeps on the alarm until `until` (and the socket, if watched);
    /// whether the poller reported an error on the socket.
    fn sleep(&mut self, until: Instant) -> bool {
        match &self.alarm {
            Some(alarm) => alarm.sleep(until) && self.watching,
            // No poller to be had: sleep a little and look again.
            None => {
                thread::sleep(until.saturating_duration_since(Instant::now()).min(Duration::from_millis(1)));
                false
            }
        }
    }
}

impl Drop for Driving<'_> {
    fn drop(&mut self) {
        if let (Some(alarm), true) = (&self.alarm, self.watching) {
            alarm.unwatch(&self.shared.socket);
        }
        Shared::stop_reading(&mut self.shared.lock(), self.me, true);
        self.shared.co_driving(false);
        // Events for the callbacks, or timers the driver does not know of yet.
        self.shared.plan();
    }
}

impl Drive for Shared {
    fn drive(&self, until: Option<Instant>, done: &dyn Fn() -> bool, me: Option<&ThreadWake>) {
        let Some(this) = self.this.upgrade() else { return };
        self.co_driving(true);
        let alarm = me.cloned().or_else(ThreadWake::new_private);
        let mut driving = Driving { shared: self, me, alarm, watching: false };
        let socket = &*self.socket;
        let mut buf = [0u8; crate::wire::MAX_MESSAGE_SIZE + 4];
        // What the last recv(2) as reader got, for the next pass.
        let mut received: Option<(Instant, std::io::Result<(usize, std::net::SocketAddr)>)> = None;
        // The first pass does not read: the request was just sent, so its
        // answer is not there yet (the wait below sees it when it comes).
        let mut first = true;
        // Whether the last sleep's poller reported an error on the socket.
        let mut socket_error = false;
        // Bounded: each pass waits at most until the engine's next deadline,
        // `until`, or 100 ms (a slice as reader) to notice a close, and
        // stops once `done`.
        loop {
            let now = Instant::now();
            let (finished, next, got) = {
                let mut st = self.lock();
                // Before a close is seen: it may be the answer to a delete
                // that the close waits for.
                let taken =
                    received.take().map(|(at, r)| st.endpoint.take_datagram(at, r.map(|(n, from)| (&buf[..n], from))));
                if st.closed || st.closing.is_some() {
                    break;
                }
                let mut got = match taken {
                    Some(got) => got,
                    // Followers leave the socket to the reader.
                    None => !first && st.reader.as_ref().is_none_or(|r| Some(r) == me) && st.endpoint.receive_one(now),
                };
                if std::mem::take(&mut socket_error) && !got {
                    st.endpoint.socket_error_reported(now);
                    got = true;
                }
                st.endpoint.handle_timeout(now);
                st.endpoint.flush(now);
                let finished = self.settle(&mut st);
                if !finished.is_empty() {
                    // Completing runs other callers' callbacks and wakers here,
                    // which may block: nobody must wait for this thread to read.
                    Self::stop_reading(&mut st, me, false);
                }
                (finished, st.endpoint.poll_timeout(), got)
            };
            first = false;
            this.complete_all(finished);
            if done() || until.is_some_and(|u| now >= u) {
                break;
            }
            if got {
                continue; // more may be queued
            }
            let mut wait_until = now + Duration::from_millis(100);
            for t in [next, until].into_iter().flatten() {
                wait_until = wait_until.min(t);
            }
            let wait = Self::choose_wait(&mut self.lock(), me, wait_until.saturating_duration_since(now));
            match wait {
                Wait::Read => {
                    driving.watch(false);
                    let started = Instant::now();
                    let r = endpoint::wait_for_datagram(socket, &mut buf);
                    match &r {
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            // Back at once: someone made the socket non-blocking
                            // (an event loop's poll handle does). Make it block
                            // again rather than spin.
                            if started.elapsed() < endpoint::WAIT_SLICE / 2 {
                                let _ = socket::restore_blocking(socket);
                            }
                        }
                        _ => received = Some((Instant::now(), r)),
                    }
                }
                // A follower leaves the socket to the reader.
                Wait::Follow | Wait::Poll => {
                    driving.watch(wait == Wait::Poll);
                    socket_error = driving.sleep(wait_until);
                }
            }
        }
    }

    fn kick(&self) {
        self.plan();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Server;
    use crate::{Client, ClientConfig};

    /// A client to try the waiting roles on.
    fn role_client() -> (Server, Client) {
        let server = Server::start_local().unwrap();
        let client = Client::new(ClientConfig::new(server.local_addr())).unwrap();
        (server, client)
    }

    /// Three waiting callers' alarms.
    #[cfg(all(unix, not(feature = "portable-driver")))]
    fn three_callers() -> [Option<ThreadWake>; 3] {
        [0, 1, 2].map(|_| ThreadWake::new_private())
    }

    #[test]
    #[cfg(all(unix, not(feature = "portable-driver")))]
    fn one_waiting_caller_reads_and_hands_the_socket_on() {
        let (_server, client) = role_client();
        let mut st = client.shared().lock();
        let [a, b, c] = three_callers();
        let (a, b, c) = (a.as_ref(), b.as_ref(), c.as_ref());
        let long = Duration::from_secs(1);
        // Too short a wait to sleep three slices in recv(2), or no wake fd: poll(2).
        assert_eq!(Shared::choose_wait(&mut st, a, endpoint::WAIT_SLICE), Wait::Poll);
        assert_eq!(Shared::choose_wait(&mut st, None, long), Wait::Poll);
        assert_eq!(st.reader, None);
        // The first to wait long reads; the others follow.
        assert_eq!(Shared::choose_wait(&mut st, a, long), Wait::Read);
        assert_eq!(Shared::choose_wait(&mut st, b, long), Wait::Follow);
        assert_eq!(Shared::choose_wait(&mut st, c, long), Wait::Follow);
        assert_eq!(Shared::choose_wait(&mut st, b, long), Wait::Follow);
        assert_eq!(st.followers.len(), 2, "listed once each");
        // A follower that leaves is unlisted and wakes nobody.
        Shared::stop_reading(&mut st, b, true);
        assert_eq!(st.followers, vec![c.unwrap().clone()]);
        // The reader leaving wakes a follower, which reads next.
        Shared::stop_reading(&mut st, a, true);
        assert_eq!(st.reader, None);
        assert!(c.unwrap().take_wake());
        assert!(!b.unwrap().take_wake());
        assert_eq!(Shared::choose_wait(&mut st, c, long), Wait::Read);
        assert!(st.followers.is_empty());
        Shared::stop_reading(&mut st, c, true);
        // While an event loop reads the socket, nobody sleeps in recv(2),
        // not even the reader.
        st.attached = 1;
        assert_eq!(Shared::choose_wait(&mut st, a, long), Wait::Poll);
        st.attached = 0;
        assert_eq!(Shared::choose_wait(&mut st, a, long), Wait::Read);
        st.attached = 1;
        assert_eq!(Shared::choose_wait(&mut st, a, long), Wait::Poll);
        st.attached = 0;
        Shared::stop_reading(&mut st, a, true);
    }

    #[test]
    #[cfg(all(unix, not(feature = "portable-driver")))]
    fn a_woken_follower_that_finishes_wakes_the_next() {
        let (_server, client) = role_client();
        let mut st = client.shared().lock();
        let [a, b, c] = three_callers();
        let (a, b, c) = (a.as_ref(), b.as_ref(), c.as_ref());
        let long = Duration::from_secs(1);
        assert_eq!(Shared::choose_wait(&mut st, a, long), Wait::Read);
        assert_eq!(Shared::choose_wait(&mut st, b, long), Wait::Follow);
        assert_eq!(Shared::choose_wait(&mut st, c, long), Wait::Follow);
        Shared::stop_reading(&mut st, a, true);
        assert!(c.unwrap().take_wake());
        // c finds its own answer and leaves without reading: b must not be
        // left waiting for a reader that never comes.
        Shared::stop_reading(&mut st, c, true);
        assert!(b.unwrap().take_wake());
        assert!(st.followers.is_empty());
        // A reader about to run callbacks steps down the same way.
        assert_eq!(Shared::choose_wait(&mut st, a, long), Wait::Read);
        assert_eq!(Shared::choose_wait(&mut st, b, long), Wait::Follow);
        Shared::stop_reading(&mut st, a, false);
        assert_eq!(st.reader, None);
        assert!(b.unwrap().take_wake());
        Shared::stop_reading(&mut st, a, true);
    }

    /// Where callers cannot sleep in recv(2) (Windows, `portable-driver`),
    /// nobody takes the reader's role: every caller sleeps in its poller,
    /// watching the socket, and reads what comes.
    #[test]
    #[cfg(any(windows, feature = "portable-driver"))]
    fn without_blocking_reads_every_caller_polls() {
        let (_server, client) = role_client();
        let mut st = client.shared().lock();
        let [a, b] = [0, 1].map(|_| ThreadWake::new_private());
        let long = Duration::from_secs(1);
        assert_eq!(Shared::choose_wait(&mut st, a.as_ref(), long), Wait::Poll);
        assert_eq!(Shared::choose_wait(&mut st, b.as_ref(), long), Wait::Poll);
        assert_eq!(st.reader, None);
        assert!(st.followers.is_empty());
    }
}
