//! Driving a [`Client`] from an application's own event loop (libuv,
//! asyncio): the loop watches the client's socket and reads the answers on
//! its own thread, while the driver thread keeps the timers.
//!
//! These "reader hooks" are public API for any event loop (the Node
//! binding's libuv poll handle is one user):
//!
//! ```no_run
//! # fn wait_until_readable(_: pcp_core::client::RawSocket) {}
//! use pcp_core::{Client, MapSpec, Protocol};
//! let client = Client::connect("192.168.1.1")?;
//! client.attach_reader(); // the socket is ours until detach_reader
//! let pending = client.map_async(MapSpec::new(Protocol::TCP, 8080));
//! while !pending.is_done() {
//!     wait_until_readable(client.reader_fd()); // poll/epoll/uv_poll/add_reader
//!     client.process_ready(); // reads the answer, completes the request here
//! }
//! client.detach_reader();
//! let mapping = pending.wait()?;
//! # Ok::<(), pcp_core::Error>(())
//! ```

use std::time::Instant;

use super::Client;
use crate::endpoint::socket::{self, RawSocket};

impl Client {
    /// For event-loop integrations (libuv, asyncio): the socket whose
    /// readability means answers are waiting. After [`Client::attach_reader`],
    /// watch it in your loop and call [`Client::process_ready`] when it is
    /// readable: answers are then read and requests completed on your loop's
    /// thread, with no hop through the driver thread. Timers (retransmission,
    /// renewal) stay with the driver thread.
    ///
    /// A file descriptor on Unix; a `SOCKET` on Windows (libuv wants
    /// `uv_poll_init_socket` for it there).
    pub fn reader_fd(&self) -> RawSocket {
        socket::raw(&self.shared().socket)
    }

    /// Takes the socket over from the driver thread until
    /// [`Client::detach_reader`]; calls nest. See [`Client::reader_fd`].
    pub fn attach_reader(&self) {
        let shared = self.shared();
        shared.lock().attached += 1;
        shared.co_driving(true);
    }

    /// Gives the socket back to the driver thread.
    pub fn detach_reader(&self) {
        let shared = self.shared();
        {
            let mut st = shared.lock();
            st.attached = st.attached.saturating_sub(1);
            if st.attached == 0 {
                // An event loop may have made it non-blocking (libuv's poll
                // handle does); a waiting caller's recv(2) needs it blocking.
                let _ = socket::restore_blocking(&shared.socket);
            }
        }
        shared.co_driving(false);
    }

    /// Reads every answer waiting on the socket, runs due timers, and
    /// completes the requests they finish, on the calling thread (their
    /// callbacks and wakers run here). Never blocks. Returns how many
    /// datagrams it read.
    pub fn process_ready(&self) -> usize {
        // Bounded: a socket buffer holds finitely many datagrams, and a
        // burst larger than this is finished by the next readiness.
        self.process_datagrams(1024)
    }

    /// [`Client::process_ready`] for a level-triggered loop (libuv's poll
    /// handle, asyncio's `add_reader`): reads at most one datagram. Such a
    /// loop reports the socket again while more wait, so this skips the
    /// extra recv that finds the socket empty, one system call in every
    /// sequential round trip (about a tenth of its time on loopback).
    pub fn process_one_datagram(&self) -> usize {
        self.process_datagrams(1)
    }

    fn process_datagrams(&self, max: usize) -> usize {
        let shared = self.shared();
        let now = Instant::now();
        let (done, read) = {
            let mut st = shared.lock();
            let read = st.endpoint.receive_available(now, max);
            st.endpoint.handle_timeout(now);
            st.endpoint.flush(now);
            (shared.settle(&mut st), read)
        };
        shared.complete_all(done);
        shared.plan();
        read
    }
}
