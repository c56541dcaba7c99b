use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_int, CStr, CString};
use std::net::{IpAddr, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;
use std::time::Duration;

use pcp_core::discovery::DiscoveryConfig;
use pcp_core::{
    quote_input, ClientConfig, Error, Filter, MapSpec, PeerSpec, Protocol, ProtocolChoice, RetransmitPolicy,
};

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
}

impl Fail {
    pub fn new(status: pcp_status, message: impl Into<String>) -> Fail {
        Fail { status, message: message.into() }
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
        Fail { status: status_of(&e), message: e.to_string() }
    }
}

pub(crate) type FfiResult<T> = Result<T, Fail>;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

pub(crate) fn set_last_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    let _ = LAST_ERROR.try_with(|l| *l.borrow_mut() = c);
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("internal error (panic) in pcp_rs: {what}")
}

thread_local! {
    /// How many `guard`s the thread is inside: a panic there is caught and
    /// reported through `pcp_last_error`, so the panic hook stays quiet.
    static GUARDED: Cell<u32> = const { Cell::new(0) };
}

/// Runs `f` with panics caught and not printed: the C program learns of
/// them from the status and `pcp_last_error`, and its stderr is its own.
/// Panics outside a guard (on a library thread) still print as usual.
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

/// Runs `f` behind the boundary: panics become `PCP_PANIC`, failures set the
/// thread's last error.
pub(crate) fn guard(f: impl FnOnce() -> FfiResult<()>) -> pcp_status {
    match catch_quietly(f) {
        Ok(Ok(())) => PCP_OK,
        Ok(Err(fail)) => {
            set_last_error(&fail.message);
            fail.status
        }
        Err(payload) => {
            set_last_error(&panic_message(&*payload));
            PCP_PANIC
        }
    }
}

/// Like [`guard`] for functions that return a plain value: `default` on a
/// failure or a panic.
pub(crate) fn guard_value<T>(default: T, f: impl FnOnce() -> FfiResult<T>) -> T {
    match catch_quietly(f) {
        Ok(Ok(v)) => v,
        Ok(Err(fail)) => {
            set_last_error(&fail.message);
            default
        }
        Err(payload) => {
            set_last_error(&panic_message(&*payload));
            default
        }
    }
}

/// A reference behind a pointer, or `PCP_INVALID_ARGUMENT` for NULL.
pub(crate) unsafe fn deref<'a, T>(p: *const T, what: &str) -> FfiResult<&'a T> {
    // SAFETY: the caller passes a pointer this library handed out (or NULL).
    unsafe { p.as_ref() }.ok_or_else(|| Fail::null(what))
}

pub(crate) unsafe fn deref_mut<'a, T>(p: *mut T, what: &str) -> FfiResult<&'a mut T> {
    // SAFETY: as for `deref`; the caller does not share a mutable handle.
    unsafe { p.as_mut() }.ok_or_else(|| Fail::null(what))
}

/// Writes `value` to the out-parameter `out`.
pub(crate) unsafe fn put<T>(out: *mut T, value: T) {
    // SAFETY: checked non-NULL by the caller before any work.
    unsafe { out.write(value) }
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

/// An optional address argument: NULL means none.
pub(crate) unsafe fn opt_ip(p: *const c_char, what: &str) -> FfiResult<Option<IpAddr>> {
    if p.is_null() {
        return Ok(None);
    }
    let s = unsafe { text(p, what) }?;
    parse_ip(s, what).map(Some)
}

pub(crate) fn parse_ip(s: &str, what: &str) -> FfiResult<IpAddr> {
    s.trim()
        .parse::<IpAddr>()
        .map_err(|_| Fail::invalid(format!("{what}: {} is not an IPv4 or IPv6 address", quote_input(s))))
}

/// Copies `s` with a terminating NUL into the caller's buffer.
pub(crate) fn check_buf(buf: *mut c_char, len: usize, s: &str) -> FfiResult<()> {
    if buf.is_null() {
        return Err(Fail::null("the buffer"));
    }
    if len < s.len() + 1 {
        return Err(Fail::new(
            PCP_BUFFER_TOO_SMALL,
            format!("the buffer holds {len} bytes; {} needs {} (use PCP_ADDRSTRLEN)", quote_input(s), s.len() + 1),
        ));
    }
    Ok(())
}

pub(crate) unsafe fn write_text(buf: *mut c_char, s: &str) {
    // SAFETY: `check_buf` made sure the buffer is large enough.
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr().cast::<c_char>(), buf, s.len());
        buf.add(s.len()).write(0);
    }
}

/// Fills a fixed text field of a struct (always large enough for addresses).
pub(crate) fn fill_text(field: &mut [c_char], s: &str) {
    let n = s.len().min(field.len().saturating_sub(1));
    for (d, b) in field.iter_mut().zip(s.as_bytes()[..n].iter()) {
        *d = *b as c_char;
    }
    if let Some(z) = field.get_mut(n) {
        *z = 0;
    }
}

/// The 16-byte form of an address: IPv4 as IPv4-mapped IPv6.
pub(crate) fn addr_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

pub(crate) unsafe fn write_bytes(out: *mut u8, bytes: &[u8]) {
    // SAFETY: the caller documented the size; checked non-NULL.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), out, bytes.len()) }
}

/// The detailed message of the last failure of a `pcp_` function on the
/// calling thread ("" if none). The string stays valid until the next
/// failing call on this thread; copy it to keep it.
#[no_mangle]
pub extern "C" fn pcp_last_error() -> *const c_char {
    catch_unwind(|| LAST_ERROR.try_with(|l| l.borrow().as_ptr()).unwrap_or(c"".as_ptr())).unwrap_or(c"".as_ptr())
}

/// The library's version, e.g. "0.1.0". Never NULL.
#[no_mangle]
pub extern "C" fn pcp_version() -> *const c_char {
    static V: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(c) => c,
        Err(_) => c"unknown",
    };
    catch_unwind(|| V.as_ptr()).unwrap_or(c"unknown".as_ptr())
}

/// Panics inside the library on purpose and returns what the boundary made
/// of it (`PCP_PANIC`): lets a test check that no panic crosses into C.
#[no_mangle]
pub extern "C" fn pcp_test_panic() -> pcp_status {
    guard(|| {
        let v: Vec<u8> = Vec::new();
        let i = v.len() + 3;
        // An index out of bounds the compiler cannot see through.
        let _ = std::hint::black_box(&v)[i];
        Ok(())
    })
}

// ---------------------------------------------------------------- config

/// Settings for a client or an endpoint (opaque). Not thread-safe: build it
/// on one thread, then pass it to `pcp_client_new`, `pcp_client_discover` or
/// `pcp_endpoint_new` (which copy it) from any thread.
pub struct pcp_config {
    pub(crate) local_addr: Option<IpAddr>,
    pub(crate) retransmit: RetransmitPolicy,
    pub(crate) listen_announce: bool,
    pub(crate) delete_on_close: bool,
    pub(crate) close_timeout: Option<Duration>,
    pub(crate) announce_delay_max: Option<Duration>,
    pub(crate) announce_port: Option<u16>,
    pub(crate) candidates: Vec<SocketAddr>,
    pub(crate) discovery_deadline: Option<Duration>,
    pub(crate) protocol: ProtocolChoice,
}

impl Default for pcp_config {
    fn default() -> Self {
        pcp_config {
            local_addr: None,
            retransmit: RetransmitPolicy::default(),
            listen_announce: true,
            protocol: ProtocolChoice::Auto,
            delete_on_close: true,
            close_timeout: None,
            announce_delay_max: None,
            announce_port: None,
            candidates: Vec::new(),
            discovery_deadline: None,
        }
    }
}

/// The client configuration for the C arguments `server` (a text address)
/// and `config` (NULL for the defaults), as `pcp_client_new` and
/// `pcp_endpoint_new` take them.
///
/// # Safety
/// `server` is NULL or a NUL-terminated string; `config` is NULL or valid.
pub(crate) unsafe fn client_config_for(server: *const c_char, config: *const pcp_config) -> FfiResult<ClientConfig> {
    let server = unsafe { text(server, "server") }?;
    let addr = pcp_core::client::parse_server(server)?;
    let default = pcp_config::default();
    Ok(unsafe { config.as_ref() }.unwrap_or(&default).client_config(addr))
}

impl pcp_config {
    pub(crate) fn client_config(&self, server: SocketAddr) -> ClientConfig {
        let mut cc = ClientConfig::new(server);
        cc.local_addr = self.local_addr;
        cc.retransmit = self.retransmit;
        cc.listen_announce = self.listen_announce;
        cc.protocol = self.protocol;
        cc.delete_on_close = self.delete_on_close;
        if let Some(t) = self.close_timeout {
            cc.close_timeout = t;
        }
        if let Some(d) = self.announce_delay_max {
            cc.announce_delay_max = d;
        }
        if let Some(p) = self.announce_port {
            cc.announce_port = p;
        }
        cc
    }

    pub(crate) fn discovery_config(&self) -> DiscoveryConfig {
        let mut dc = if self.candidates.is_empty() {
            DiscoveryConfig::default()
        } else {
            DiscoveryConfig::with_candidates(self.candidates.clone())
        };
        if let Some(d) = self.discovery_deadline {
            dc.deadline = d;
        }
        dc
    }
}

/// Makes a config with the defaults: the RFC retransmission schedule with a
/// 10 s deadline, listening for ANNOUNCE on port 5350, deleting the
/// mappings when the client is freed. Free it with `pcp_config_free`.
#[no_mangle]
pub unsafe extern "C" fn pcp_config_new(out: *mut *mut pcp_config) -> pcp_status {
    guard(|| {
        check_out(out, "out")?;
        unsafe { put(out, Box::into_raw(Box::default())) };
        Ok(())
    })
}

/// Frees a config; NULL is allowed.
#[no_mangle]
pub unsafe extern "C" fn pcp_config_free(config: *mut pcp_config) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if !config.is_null() {
            // SAFETY: made by pcp_config_new, freed once.
            drop(unsafe { Box::from_raw(config) });
        }
    }));
}

fn with_config(config: *mut pcp_config, f: impl FnOnce(&mut pcp_config) -> FfiResult<()>) -> pcp_status {
    guard(|| f(unsafe { deref_mut(config, "config") }?))
}

/// Gives up on a request `ms` milliseconds after its first send (the RFC
/// schedule runs inside it; default 10000). 0 is refused
/// (PCP_INVALID_ARGUMENT), as in every language of pcp-rs: to retry
/// without a deadline, call `pcp_config_clear_deadline`.
#[no_mangle]
pub unsafe extern "C" fn pcp_config_set_deadline_ms(config: *mut pcp_config, ms: u32) -> pcp_status {
    with_config(config, |c| {
        let policy = c.retransmit.with_deadline(Duration::from_millis(u64::from(ms)));
        policy.validate()?;
        c.retransmit = policy;
        Ok(())
    })
}

/// Removes the request deadline: requests are retransmitted by the RFC
/// schedule until answered, or up to the retry count if one is set.
#[no_mangle]
pub unsafe extern "C" fn pcp_config_clear_deadline(config: *mut pcp_config) -> pcp_status {
    with_config(config, |c| {
        c.retransmit.max_duration = None;
        Ok(())
    })
}

/// Gives up on a request after `retries` retransmissions; -1 for no limit
/// (the default: only the deadline applies).
#[no_mangle]
pub unsafe extern "C" fn pcp_config_set_retries(config: *mut pcp_config, retries: i32) -> pcp_status {
    with_config(config, |c| {
        c.retransmit.max_retransmissions = match retries {
            -1 => None,
            n if n >= 0 => Some(n as u32),
            n => return Err(Fail::invalid(format!("retries must be -1 or at least 0, not {n}"))),
        };
        Ok(())
    })
}

/// The first retransmission timeout (the RFC's IRT, 3000 ms by default).
#[no_mangle]
pub unsafe extern "C" fn pcp_config_set_initial_timeout_ms(config: *mut pcp_config, ms: u32) -> pcp_status {
    with_config(config, |c| {
        if ms == 0 {
            return Err(Fail::invalid("the initial timeout must be at least 1 ms"));
        }
        c.retransmit.initial = Duration::from_millis(u64::from(ms));
        Ok(())
    })
}

/// Which protocols a client speaks: `PCP_PROTOCOL_AUTO` (the default: PCP,
/// falling back to NAT-PMP when the gateway speaks only that),
/// `PCP_PROTOCOL_PCP` or `PCP_PROTOCOL_NATPMP`.
#[no_mangle]
pub unsafe extern "C" fn pcp_config_set_protocol(config: *mut pcp_config, protocol: c_int) -> pcp_status {
    with_config(config, |c| {
        c.protocol = match protocol {
            PCP_PROTOCOL_AUTO => ProtocolChoice::Auto,
            PCP_PROTOCOL_PCP => ProtocolChoice::PcpOnly,
            PCP_PROTOCOL_NATPMP => ProtocolChoice::NatPmpOnly,
            other => {
                return Err(Fail::invalid(format!("protocol choice {other} is not PCP_PROTOCOL_AUTO, _PCP or _NATPMP")))
            }
        };
        Ok(())
    })
}

/// Whether to listen for unsolicited ANNOUNCE on UDP port 5350 (default
/// true). A rebooted server is noticed at the next renewal without it.
#[no_mangle]
pub unsafe extern "C" fn pcp_config_set_listen_announce(config: *mut pcp_config, listen: bool) -> pcp_status {
    with_config(config, |c| {
        c.listen_announce = listen;
        Ok(())
    })
}

/// Whether freeing the client deletes its mappings on the server (default true).
#[no_mangle]
pub unsafe extern "C" fn pcp_config_set_delete_on_close(config: *mut pcp_config, delete_on_close: bool) -> pcp_status {
    with_config(config, |c| {
        c.delete_on_close = delete_on_close;
        Ok(())
    })
}

/// How long freeing the client may wait for its deletes to be answered
/// (default 2000 ms).
#[no_mangle]
pub unsafe extern "C" fn pcp_config_set_close_timeout_ms(config: *mut pcp_config, ms: u32) -> pcp_status {
    with_config(config, |c| {
        c.close_timeout = Some(Duration::from_millis(u64::from(ms)));
        Ok(())
    })
}

/// The UDP port of the ANNOUNCE listener (default 5350, the port RFC 6887
/// servers announce to). 0 binds an ephemeral port: for tests, with a
/// server that announces to that port (an endpoint's second descriptor
/// from `pcp_endpoint_fds` tells which port it got, with getsockname).
#[no_mangle]
pub unsafe extern "C" fn pcp_config_set_announce_port(config: *mut pcp_config, port: u16) -> pcp_status {
    with_config(config, |c| {
        c.announce_port = Some(port);
        Ok(())
    })
}

/// After an unsolicited ANNOUNCE (a server reboot), the client renews its
/// mappings after a random delay of at most this (default 5000 ms, as RFC
/// 6887 section 14.1.3 says); 0 renews at once.
#[no_mangle]
pub unsafe extern "C" fn pcp_config_set_announce_delay_max_ms(config: *mut pcp_config, ms: u32) -> pcp_status {
    with_config(config, |c| {
        c.announce_delay_max = Some(Duration::from_millis(u64::from(ms)));
        Ok(())
    })
}

/// Binds the client's socket to this local address (NULL: the route to
/// the server chooses).
#[no_mangle]
pub unsafe extern "C" fn pcp_config_set_local_address(config: *mut pcp_config, address: *const c_char) -> pcp_status {
    with_config(config, |c| {
        c.local_addr = unsafe { opt_ip(address, "address") }?;
        Ok(())
    })
}

/// Adds a server for `pcp_client_discover` to try ("host", "host:port",
/// IPv4 or IPv6). Once any is added, discovery tries only these and does
/// not read the routing table's default gateways.
#[no_mangle]
pub unsafe extern "C" fn pcp_config_add_discovery_candidate(
    config: *mut pcp_config,
    server: *const c_char,
) -> pcp_status {
    with_config(config, |c| {
        let s = unsafe { text(server, "server") }?;
        c.candidates.push(pcp_core::client::parse_server(s)?);
        Ok(())
    })
}

/// How long discovery waits for any answer (default 2000 ms).
#[no_mangle]
pub unsafe extern "C" fn pcp_config_set_discovery_deadline_ms(config: *mut pcp_config, ms: u32) -> pcp_status {
    with_config(config, |c| {
        if ms == 0 {
            return Err(Fail::invalid("the discovery deadline must be at least 1 ms"));
        }
        c.discovery_deadline = Some(Duration::from_millis(u64::from(ms)));
        Ok(())
    })
}

// ---------------------------------------------------------------- requests

/// A FILTER option: only traffic from `remote_address`/`prefix_length` and
/// `remote_port` (0 = any) may use the mapping.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pcp_filter {
    /// IPv4 or IPv6 address as text.
    pub remote_address: *const c_char,
    /// Bits of the address that must match, in its own family (0..32 or 0..128).
    pub prefix_length: u8,
    /// 0 for any port.
    pub remote_port: u16,
}

/// What to ask for with MAP (an inbound mapping). Fill it with
/// `pcp_map_request_init`, then change what you need.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pcp_map_request {
    /// PCP_PROTO_TCP, PCP_PROTO_UDP, another IANA number, or PCP_PROTO_ALL.
    pub protocol: u8,
    pub internal_port: u16,
    /// 0 lets the server choose.
    pub suggested_external_port: u16,
    /// Requested lifetime in seconds (at least 1); the server may grant another.
    pub lifetime: u32,
    /// Suggested external address as text; NULL for any.
    pub suggested_external_address: *const c_char,
    /// PREFER_FAILURE: fail rather than get another external port (needs a
    /// suggested external port).
    pub prefer_failure: bool,
    /// THIRD_PARTY: map for this internal address instead of ours; NULL for none.
    pub third_party: *const c_char,
    /// FILTER options: `filter_count` of them (NULL when 0).
    pub filters: *const pcp_filter,
    pub filter_count: usize,
}

/// What to ask for with PEER (an outbound mapping towards one peer). Fill
/// it with `pcp_peer_request_init`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pcp_peer_request {
    pub protocol: u8,
    pub internal_port: u16,
    /// The remote peer's address as text.
    pub remote_address: *const c_char,
    pub remote_port: u16,
    /// 0 lets the server choose.
    pub suggested_external_port: u16,
    /// Suggested external address as text; NULL for any.
    pub suggested_external_address: *const c_char,
    pub lifetime: u32,
    /// THIRD_PARTY internal address; NULL for none.
    pub third_party: *const c_char,
}

/// Fills `request` with: this protocol and internal port, any external
/// port and address, 3600 s, no options.
#[no_mangle]
pub unsafe extern "C" fn pcp_map_request_init(
    request: *mut pcp_map_request,
    protocol: u8,
    internal_port: u16,
) -> pcp_status {
    guard(|| {
        check_out(request, "request")?;
        let r = pcp_map_request {
            protocol,
            internal_port,
            suggested_external_port: 0,
            lifetime: pcp_core::config::DEFAULT_LIFETIME,
            suggested_external_address: std::ptr::null(),
            prefer_failure: false,
            third_party: std::ptr::null(),
            filters: std::ptr::null(),
            filter_count: 0,
        };
        unsafe { put(request, r) };
        Ok(())
    })
}

/// Fills `request` for a PEER mapping towards `remote_address`:`remote_port`
/// (the string is referenced, not copied), any external port, 3600 s.
#[no_mangle]
pub unsafe extern "C" fn pcp_peer_request_init(
    request: *mut pcp_peer_request,
    protocol: u8,
    internal_port: u16,
    remote_address: *const c_char,
    remote_port: u16,
) -> pcp_status {
    guard(|| {
        check_out(request, "request")?;
        let r = pcp_peer_request {
            protocol,
            internal_port,
            remote_address,
            remote_port,
            suggested_external_port: 0,
            suggested_external_address: std::ptr::null(),
            lifetime: pcp_core::config::DEFAULT_LIFETIME,
            third_party: std::ptr::null(),
        };
        unsafe { put(request, r) };
        Ok(())
    })
}

pub(crate) unsafe fn map_spec(r: *const pcp_map_request) -> FfiResult<MapSpec> {
    let r = unsafe { deref(r, "request") }?;
    let mut spec = MapSpec::new(Protocol(r.protocol), r.internal_port)
        .external_port(r.suggested_external_port)
        .lifetime(r.lifetime);
    if let Some(a) = unsafe { opt_ip(r.suggested_external_address, "suggested_external_address") }? {
        spec = spec.external_addr(a);
    }
    if r.prefer_failure {
        spec = spec.prefer_failure();
    }
    if let Some(tp) = unsafe { opt_ip(r.third_party, "third_party") }? {
        spec = spec.third_party(tp);
    }
    if r.filter_count > 0 {
        if r.filters.is_null() {
            return Err(Fail::null("filters (with filter_count > 0)"));
        }
        // SAFETY: the caller's array of `filter_count` filters.
        let filters = unsafe { std::slice::from_raw_parts(r.filters, r.filter_count) };
        for f in filters {
            let addr = parse_ip(unsafe { text(f.remote_address, "filter remote_address") }?, "filter remote_address")?;
            spec = spec.filter(Filter { remote_addr: addr, prefix_len: f.prefix_length, remote_port: f.remote_port });
        }
    }
    Ok(spec)
}

pub(crate) unsafe fn peer_spec(r: *const pcp_peer_request) -> FfiResult<PeerSpec> {
    let r = unsafe { deref(r, "request") }?;
    let remote = parse_ip(unsafe { text(r.remote_address, "remote_address") }?, "remote_address")?;
    let mut spec = PeerSpec::new(Protocol(r.protocol), r.internal_port, remote, r.remote_port)
        .external_port(r.suggested_external_port)
        .lifetime(r.lifetime);
    spec.suggested_external_addr = unsafe { opt_ip(r.suggested_external_address, "suggested_external_address") }?;
    if let Some(tp) = unsafe { opt_ip(r.third_party, "third_party") }? {
        spec = spec.third_party(tp);
    }
    Ok(spec)
}
