//! The few epoll(7) calls the driver thread needs. Unlike poll(2), an epoll
//! set can be changed while another thread waits on it, which is how a
//! caller that drives the engine itself keeps the driver thread from being
//! woken by the same datagram.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

pub fn create() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; a non-negative result is a new descriptor we own.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ctl(ep: &OwnedFd, op: libc::c_int, fd: RawFd, armed: bool) -> io::Result<()> {
    let mut ev = libc::epoll_event { events: if armed { libc::EPOLLIN as u32 } else { 0 }, u64: fd as u64 };
    // SAFETY: valid epoll and target descriptors, and a valid event struct.
    if unsafe { libc::epoll_ctl(ep.as_raw_fd(), op, fd, &mut ev) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Adds `fd` to the set (watching readability if `armed`).
pub fn watch(ep: &OwnedFd, fd: RawFd, armed: bool) -> io::Result<()> {
    ctl(ep, libc::EPOLL_CTL_ADD, fd, armed)
}

/// Arms or disarms a descriptor already in the set.
pub fn arm(ep: &OwnedFd, fd: RawFd, armed: bool) -> io::Result<()> {
    ctl(ep, libc::EPOLL_CTL_MOD, fd, armed)
}

/// Waits until a descriptor is ready or `until` passes (`None`: no limit);
/// returns the ready descriptors.
pub fn wait(ep: &OwnedFd, until: Option<Instant>, out: &mut Vec<RawFd>) {
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 8];
    let ms = until.map_or(-1, super::poll_ms);
    // SAFETY: `events` is a valid buffer of the given length.
    let n = unsafe { libc::epoll_wait(ep.as_raw_fd(), events.as_mut_ptr(), events.len() as libc::c_int, ms) };
    out.clear();
    for ev in events.iter().take(n.max(0) as usize) {
        out.push(ev.u64 as RawFd);
    }
}
