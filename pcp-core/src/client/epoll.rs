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

/// Arms or disarms a descriptor of the set. Disarming takes it out of the
/// set: with no events asked for, epoll still reports errors (EPOLLERR),
/// and an ICMP error waiting on the socket would wake the driver over and
/// over while the callers who read the socket have not yet read it.
pub fn arm(ep: &OwnedFd, fd: RawFd, armed: bool) -> io::Result<()> {
    let r = if armed { ctl(ep, libc::EPOLL_CTL_ADD, fd, true) } else { ctl(ep, libc::EPOLL_CTL_DEL, fd, false) };
    match r {
        Err(e) if armed && e.raw_os_error() == Some(libc::EEXIST) => ctl(ep, libc::EPOLL_CTL_MOD, fd, true),
        Err(e) if !armed && e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        r => r,
    }
}

/// A monotonic timerfd: the driver thread's alarm clock, which another
/// thread can move earlier without waking the driver.
pub fn timer() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; a non-negative result is a new descriptor we own.
    let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sets the alarm to `at` (`None` disarms it); a time already past fires at once.
pub fn set_timer(timer: &OwnedFd, at: Option<Instant>) {
    let mut spec: libc::itimerspec = unsafe { std::mem::zeroed() };
    if let Some(at) = at {
        // A zero it_value would disarm: fire after at least 1 ns.
        let d = at.saturating_duration_since(Instant::now()).max(std::time::Duration::from_nanos(1));
        spec.it_value.tv_sec = d.as_secs() as libc::time_t;
        spec.it_value.tv_nsec = libc::c_long::from(d.subsec_nanos() as i32);
    }
    // SAFETY: a valid timerfd and itimerspec; the old value is not wanted.
    unsafe { libc::timerfd_settime(timer.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
}

/// Clears a fired timer (or drains an eventfd) so that it stops being readable.
pub fn clear(fd: RawFd) {
    let mut v = 0u64;
    // SAFETY: reads 8 bytes into a u64; the descriptor is non-blocking.
    unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) };
}

/// Waits until a descriptor (the timer among them) is ready; returns the
/// ready descriptors.
pub fn wait(ep: &OwnedFd, out: &mut Vec<RawFd>) {
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 8];
    // SAFETY: `events` is a valid buffer of the given length.
    let n = unsafe { libc::epoll_wait(ep.as_raw_fd(), events.as_mut_ptr(), events.len() as libc::c_int, -1) };
    out.clear();
    for ev in events.iter().take(n.max(0) as usize) {
        out.push(ev.u64 as RawFd);
    }
}
