use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_int, CStr, CString};
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;
use std::time::Duration;

use pcp_core::{quote_input, Error};

use crate::{pcp_client, pcp_config, pcp_endpoint, pcp_mapping, pcp_test_server};

pub use crate::status::pcp_status;
pub(crate) use crate::status::status_of;

/// Protocol number of TCP.
pub const PCP_PROTO_TCP: u8 = 6;
/// Protocol number of UDP.
pub const PCP_PROTO_UDP: u8 = 17;
/// Protocol number meaning "all protocols" (internal port 0 only).
pub const PCP_PROTO_ALL: u8 = 0;
/// A buffer of this many bytes holds any address this library writes as
/// text, with its terminating NUL (the same as INET6_ADDRSTRLEN).
pub const PCP_ADDRSTRLEN: usize = 46;
/// Size of an address in binary form: IPv6, with IPv4 as IPv4-mapped IPv6
/// (`::ffff:a.b.c.d`), as on the PCP wire.
pub const PCP_ADDR_BYTES: usize = 16;
/// Size of a mapping nonce in bytes.
pub const PCP_NONCE_BYTES: usize = 12;
/// `pcp_config_set_protocol`: PCP, falling back to NAT-PMP (the default).
pub const PCP_PROTOCOL_AUTO: c_int = 0;
/// `pcp_config_set_protocol`: PCP only.
pub const PCP_PROTOCOL_PCP: c_int = 1;
/// `pcp_config_set_protocol`: NAT-PMP (RFC 6886) only.
pub const PCP_PROTOCOL_NATPMP: c_int = 2;
/// `pcp_mapping_protocol_version`: the mapping was made with PCP (version 2).
pub const PCP_VERSION_PCP: u8 = 2;
/// `pcp_mapping_protocol_version`: the mapping was made with NAT-PMP (version 0).
pub const PCP_VERSION_NATPMP: u8 = 0;

use pcp_status::*;

/// A failure on its way to C: the status and the detailed message.
pub(crate) struct Fail {
    pub status: pcp_status,
    pub message: String,
    /// For a server's refusal: seconds before asking again makes sense.
    pub retry_after: u32,
}

impl Fail {
    pub fn new(status: pcp_status, message: impl Into<String>) -> Fail {
        Fail { status, message: message.into(), retry_after: 0 }
    }

    /// An argument error: the message starts "invalid argument: " like
    /// every other one (it is the core's `InvalidArgument` text).
    pub fn invalid(message: impl Into<String>) -> Fail {
        Fail::from(Error::InvalidArgument(message.into()))
    }

    pub fn null(what: &str) -> Fail {
        Fail::invalid(format!("{what} must not be NULL"))
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        Fail { status: status_of(&e), message: e.to_string(), retry_after: e.retry_after().unwrap_or(0) }
    }
}

pub(crate) type FfiResult<T> = Result<T, Fail>;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
    static LAST_RETRY_AFTER: Cell<u32> = const { Cell::new(0) };
    /// How many boundaries the thread is inside: a panic there is caught and
    /// reported through `pcp_last_error`, so the panic hook stays quiet.
    static GUARDED: Cell<u32> = const { Cell::new(0) };
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("internal error (panic) in pcp_rs: {what}")
}

/// Runs `f` with panics caught and not printed: the C program learns of
/// them from the status and `pcp_last_error`, and its stderr is its own.
/// Panics outside a boundary (on a library thread) still print as usual.
fn catch_quietly<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARDED.with(Cell::get) == 0 {
                default(info);
            }
        }));
    });
    GUARDED.with(|g| g.set(g.get() + 1));
    let r = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(g.get() - 1));
    r
}

/// The frame of every exported function: runs `f` with panics caught (they
/// become `PCP_PANIC`), and records a failure as the thread's last error
/// and retry-after before handing its status back.
fn boundary<T>(f: impl FnOnce() -> FfiResult<T>) -> Result<T, pcp_status> {
    let fail = match catch_quietly(f) {
        Ok(Ok(v)) => return Ok(v),
        Ok(Err(fail)) => fail,
        Err(payload) => Fail::new(PCP_PANIC, panic_message(&*payload)),
    };
    let message = CString::new(fail.message.replace('\0', " ")).unwrap_or_default();
    let _ = LAST_ERROR.try_with(|l| *l.borrow_mut() = message);
    let _ = LAST_RETRY_AFTER.try_with(|r| r.set(fail.retry_after));
    Err(fail.status)
}

/// [`boundary`] for a function that returns a status.
pub(crate) fn guard(f: impl FnOnce() -> FfiResult<()>) -> pcp_status {
    boundary(f).err().unwrap_or(PCP_OK)
}

/// [`guard`] for a function with an out-parameter: `out` (named `what` in
/// the message) is checked for NULL before `f` runs, and written only
/// with what `f` returns on success.
pub(crate) fn guard_out<T>(out: *mut T, what: &str, f: impl FnOnce() -> FfiResult<T>) -> pcp_status {
    guard(|| {
        check_out(out, what)?;
        let value = f()?;
        // SAFETY: checked non-NULL; the caller's out-parameter.
        unsafe { out.write(value) };
        Ok(())
    })
}

/// [`guard`] for a function that writes text into the caller's buffer
/// `buf` of `len` bytes: checked for NULL before `f` runs (which may ask
/// the network), then filled as [`copy_text`] does.
pub(crate) fn guard_text(buf: *mut c_char, len: usize, f: impl FnOnce() -> FfiResult<String>) -> pcp_status {
    guard(|| {
        check_out(buf, "the buffer")?;
        unsafe { copy_text(buf, len, &f()?) }
    })
}

/// An opaque handle: a Rust value C holds as a pointer, made with
/// [`Handle::into_raw`], used through [`handle`], released with [`free`].
pub(crate) trait Handle: Sized {
    /// The argument's name in the message about a NULL pointer.
    const NAME: &'static str;

    /// Hands the value to C; [`free`] releases it.
    fn into_raw(self) -> *mut Self {
        Box::into_raw(Box::new(self))
    }
}

/// The opaque handles and their argument names.
macro_rules! handles {
    ($($handle:ty => $name:literal),*) => {
        $(impl Handle for $handle {
            const NAME: &'static str = $name;
        })*
    };
}
handles!(
    pcp_client => "client",
    pcp_mapping => "mapping",
    pcp_config => "config",
    pcp_endpoint => "endpoint",
    pcp_test_server => "server"
);

/// The handle behind a pointer, or `PCP_INVALID_ARGUMENT` for NULL.
pub(crate) unsafe fn handle<'a, T: Handle>(p: *const T) -> FfiResult<&'a T> {
    // SAFETY: the caller passes a pointer this library handed out (or NULL).
    unsafe { p.as_ref() }.ok_or_else(|| Fail::null(T::NAME))
}

/// [`guard`] around `f` with the handle behind `p`.
pub(crate) fn with<T: Handle>(p: *const T, f: impl FnOnce(&T) -> FfiResult<()>) -> pcp_status {
    guard(|| f(unsafe { handle(p) }?))
}

/// [`with`] for a call that cannot fail.
pub(crate) fn act<T: Handle>(p: *const T, f: impl FnOnce(&T)) -> pcp_status {
    with(p, |h| {
        f(h);
        Ok(())
    })
}

/// [`boundary`] for a function that returns a value read from the handle
/// behind `p`: `default` for NULL or a panic.
pub(crate) fn read<T: Handle, R>(p: *const T, default: R, f: impl FnOnce(&T) -> R) -> R {
    boundary(|| Ok(f(unsafe { handle(p) }?))).unwrap_or(default)
}

/// Releases a handle made by [`Handle::into_raw`], once; NULL is allowed.
pub(crate) unsafe fn free<T: Handle>(p: *mut T) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if !p.is_null() {
            // SAFETY: made by `into_raw`; the caller frees it once.
            drop(unsafe { Box::from_raw(p) });
        }
    }));
}

/// Writes `value` to an optional out-parameter (NULL: not wanted).
pub(crate) unsafe fn put_opt<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: the caller's out-parameter, non-NULL.
        unsafe { out.write(value) }
    }
}

pub(crate) fn check_out<T>(out: *mut T, what: &str) -> FfiResult<()> {
    if out.is_null() {
        Err(Fail::null(what))
    } else {
        Ok(())
    }
}

/// A UTF-8 string argument.
pub(crate) unsafe fn text<'a>(p: *const c_char, what: &str) -> FfiResult<&'a str> {
    if p.is_null() {
        return Err(Fail::null(what));
    }
    // SAFETY: a NUL-terminated string from the caller.
    unsafe { CStr::from_ptr(p) }.to_str().map_err(|_| Fail::invalid(format!("{what} is not valid UTF-8")))
}

/// An address argument (the core's rule for address text).
pub(crate) unsafe fn ip(p: *const c_char, what: &str) -> FfiResult<IpAddr> {
    Ok(pcp_core::config::parse_ip(unsafe { text(p, what) }?, what)?)
}

/// An optional address argument: NULL means none.
pub(crate) unsafe fn opt_ip(p: *const c_char, what: &str) -> FfiResult<Option<IpAddr>> {
    (!p.is_null()).then(|| unsafe { ip(p, what) }).transpose()
}

/// A duration argument in milliseconds.
pub(crate) fn millis(ms: u32) -> Duration {
    Duration::from_millis(u64::from(ms))
}

/// Copies `s` with a terminating NUL into the caller's buffer of `len`
/// bytes, or fails (NULL, or too small: the buffer is then untouched).
pub(crate) unsafe fn copy_text(buf: *mut c_char, len: usize, s: &str) -> FfiResult<()> {
    check_out(buf, "the buffer")?;
    if len < s.len() + 1 {
        return Err(Fail::new(
            PCP_BUFFER_TOO_SMALL,
            format!("the buffer holds {len} bytes; {} needs {} (use PCP_ADDRSTRLEN)", quote_input(s), s.len() + 1),
        ));
    }
    // SAFETY: the caller's buffer of `len` bytes, large enough (checked).
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr().cast::<c_char>(), buf, s.len());
        buf.add(s.len()).write(0);
    }
    Ok(())
}

/// The 16-byte form of an address: IPv4 as IPv4-mapped IPv6, as on the wire.
pub(crate) use pcp_core::wire::to_wire_address as addr_bytes;

/// A caller's buffer of a documented size `N` (an address, a nonce), as an
/// out-parameter for [`guard_out`].
pub(crate) fn bytes_out<const N: usize>(p: *mut u8) -> *mut [u8; N] {
    p.cast()
}

/// The detailed message of the last failure of a `pcp_` function on the
/// calling thread ("" if none). The string stays valid until the next
/// failing call on this thread; copy it to keep it.
#[no_mangle]
pub extern "C" fn pcp_last_error() -> *const c_char {
    catch_unwind(|| LAST_ERROR.try_with(|l| l.borrow().as_ptr()).unwrap_or(c"".as_ptr())).unwrap_or(c"".as_ptr())
}

/// For the last failure of a `pcp_` function on the calling thread that
/// was a server's refusal: the error's lifetime, i.e. how many seconds the
/// server said it will keep refusing (RFC 6887 section 8.3; a repeat of the
/// same request within it fails at once without reaching the server). 0
/// for other failures.
#[no_mangle]
pub extern "C" fn pcp_last_retry_after() -> u32 {
    catch_unwind(|| LAST_RETRY_AFTER.try_with(|r| r.get()).unwrap_or(0)).unwrap_or(0)
}

/// The library's version, e.g. "0.1.0". Never NULL.
#[no_mangle]
pub extern "C" fn pcp_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Panics inside the library on purpose and returns what the boundary made
/// of it (`PCP_PANIC`): lets a test check that no panic crosses into C.
#[no_mangle]
pub extern "C" fn pcp_test_panic() -> pcp_status {
    guard(|| panic!("pcp_test_panic was called"))
}
