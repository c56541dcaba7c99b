use std::ffi::{c_char, c_int};

use pcp_core::server::{error_code_by_number, Hostile, Server, ServerConfig, ServerMode};

use crate::common::*;

/// A PCP server for tests and demos (opaque, thread-safe): answers
/// ANNOUNCE, MAP and PEER on a background thread, keeps mappings as
/// bookkeeping only (it forwards no traffic), and lets a test inject faults.
pub struct pcp_test_server {
    server: Server,
}

/// Starts a test server listening on `listen` (NULL: the default) with the
/// settings `configure` makes of the defaults, and hands it out through `out`.
unsafe fn launch(
    listen: *const c_char,
    out: *mut *mut pcp_test_server,
    configure: impl FnOnce(ServerConfig) -> FfiResult<ServerConfig>,
) -> pcp_status {
    guard_out(out, "out", || {
        let mut config = ServerConfig::default();
        if !listen.is_null() {
            config.listen = unsafe { socket_addr(listen, "listen") }?;
        }
        let server = Server::start(configure(config)?).map_err(pcp_core::Error::from)?;
        Ok(pcp_test_server { server }.into_raw())
    })
}

unsafe fn socket_addr(p: *const c_char, what: &str) -> FfiResult<std::net::SocketAddr> {
    Ok(pcp_core::config::parse_socket_addr(unsafe { text(p, what) }?, what)?)
}

/// Starts a test server listening on `listen` (`"127.0.0.1:0"`, `"[::1]:0"`;
/// NULL for 127.0.0.1 on an ephemeral port). It hands out the external
/// address 203.0.113.7 and announces reboots to every client it has seen.
#[no_mangle]
pub unsafe extern "C" fn pcp_test_server_start(listen: *const c_char, out: *mut *mut pcp_test_server) -> pcp_status {
    unsafe { launch(listen, out, Ok) }
}

/// Like `pcp_test_server_start`, but a NAT-PMP-only gateway: it answers PCP
/// with NAT-PMP's "unsupported version" and serves NAT-PMP (RFC 6886), so
/// clients fall back to NAT-PMP.
#[no_mangle]
pub unsafe extern "C" fn pcp_test_server_start_natpmp_only(
    listen: *const c_char,
    out: *mut *mut pcp_test_server,
) -> pcp_status {
    unsafe { launch(listen, out, |c| Ok(ServerConfig { mode: ServerMode::NatPmpOnly, ..c })) }
}

/// Like `pcp_test_server_start`, with the server's epoch starting at
/// `initial_epoch` seconds: a gateway that has been up for a while, so that
/// a reboot (epoch back to 0) is a clear jump back for the clients.
#[no_mangle]
pub unsafe extern "C" fn pcp_test_server_start_at_epoch(
    listen: *const c_char,
    initial_epoch: u32,
    out: *mut *mut pcp_test_server,
) -> pcp_status {
    unsafe { launch(listen, out, |c| Ok(ServerConfig { initial_epoch, ..c })) }
}

/// Like `pcp_test_server_start_at_epoch`, but it sends its unsolicited ANNOUNCE (on
/// a reboot or an address change) only to `announce_to` ("ip:port", e.g.
/// "127.0.0.1:5350"), not to the clients it has seen: what a client hears
/// then came through its ANNOUNCE listener.
#[no_mangle]
pub unsafe extern "C" fn pcp_test_server_start_announcing(
    listen: *const c_char,
    initial_epoch: u32,
    announce_to: *const c_char,
    out: *mut *mut pcp_test_server,
) -> pcp_status {
    unsafe {
        launch(listen, out, |c| {
            let to = socket_addr(announce_to, "announce_to")?;
            Ok(ServerConfig { announce_to: vec![to], announce_to_known_clients: false, initial_epoch, ..c })
        })
    }
}

/// Stops and frees the server (its port stops answering); NULL is allowed.
/// Not while another thread may still make a call with this server.
#[no_mangle]
pub unsafe extern "C" fn pcp_test_server_free(server: *mut pcp_test_server) {
    unsafe { free(server) }
}

/// The address clients should use, as "ip:port" text (`"[::1]:port"` for
/// IPv6), into `buf` of `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn pcp_test_server_address(
    server: *const pcp_test_server,
    buf: *mut c_char,
    len: usize,
) -> pcp_status {
    guard_text(buf, len, || Ok(unsafe { handle(server) }?.server.local_addr().to_string()))
}

/// The UDP port the server listens on (0 on NULL).
#[no_mangle]
pub unsafe extern "C" fn pcp_test_server_port(server: *const pcp_test_server) -> u16 {
    read(server, 0, |s| s.server.local_addr().port())
}

/// Reboots: loses every mapping, restarts its epoch at 0, and sends an
/// unsolicited ANNOUNCE to the clients it has seen.
#[no_mangle]
pub unsafe extern "C" fn pcp_test_server_reboot(server: *mut pcp_test_server) -> pcp_status {
    act(server, |s| s.server.reboot())
}

/// Answers every MAP and PEER request with result code `code` (1..13,
/// the numbers of pcp_status) and error lifetime `lifetime`; 0 answers
/// normally again.
#[no_mangle]
pub unsafe extern "C" fn pcp_test_server_force_result(
    server: *mut pcp_test_server,
    code: c_int,
    lifetime: u32,
) -> pcp_status {
    with(server, |s| {
        let forced = match code {
            0 => None,
            code => Some((error_code_by_number(i64::from(code))?, lifetime)),
        };
        s.server.force_result(forced);
        Ok(())
    })
}

/// Silently drops the next `count` requests.
#[no_mangle]
pub unsafe extern "C" fn pcp_test_server_drop_next(server: *mut pcp_test_server, count: u32) -> pcp_status {
    act(server, |s| s.server.drop_next(count))
}

/// Delays every answer by `ms` milliseconds (0 to stop).
#[no_mangle]
pub unsafe extern "C" fn pcp_test_server_set_delay_ms(server: *mut pcp_test_server, ms: u32) -> pcp_status {
    act(server, |s| s.server.set_delay(millis(ms)))
}

/// Answers every MAP and PEER request that creates or renews a mapping with
/// the crafted datagrams of the hostile case named `name` ("wrong_nonce",
/// "every_truncation", ...: the names of tests/hostile/cases.json) instead
/// of the right answer; NULL answers normally again. Deletes and ANNOUNCE
/// are answered normally. PCP_INVALID_ARGUMENT for an unknown name.
#[no_mangle]
pub unsafe extern "C" fn pcp_test_server_set_hostile(server: *mut pcp_test_server, name: *const c_char) -> pcp_status {
    with(server, |s| {
        let case = if name.is_null() { None } else { Some(Hostile::parse(unsafe { text(name, "name") }?)?) };
        s.server.set_hostile(case);
        Ok(())
    })
}

/// Loses `percent` percent (0..100) of the datagrams, independently each
/// way: requests before they are handled, and answers.
#[no_mangle]
pub unsafe extern "C" fn pcp_test_server_set_loss_percent(server: *mut pcp_test_server, percent: u32) -> pcp_status {
    with(server, |s| Ok(s.server.set_loss(f64::from(percent) / 100.0)?))
}

/// Changes the external address it hands out and announces it, so that
/// clients renew (and report EXTERNAL_ADDRESS_CHANGED).
#[no_mangle]
pub unsafe extern "C" fn pcp_test_server_set_external_address(
    server: *mut pcp_test_server,
    address: *const c_char,
) -> pcp_status {
    with(server, |s| {
        s.server.set_external_addr(unsafe { ip(address, "address") }?);
        Ok(())
    })
}

/// Live mappings on the server (MAP and PEER; 0 on NULL).
#[no_mangle]
pub unsafe extern "C" fn pcp_test_server_mapping_count(server: *const pcp_test_server) -> usize {
    read(server, 0, |s| s.server.mapping_count())
}

/// Requests received so far, dropped ones included (0 on NULL).
#[no_mangle]
pub unsafe extern "C" fn pcp_test_server_requests_received(server: *const pcp_test_server) -> u64 {
    read(server, 0, |s| s.server.requests_received())
}

/// The server's current epoch in seconds (0 on NULL).
#[no_mangle]
pub unsafe extern "C" fn pcp_test_server_epoch(server: *const pcp_test_server) -> u32 {
    read(server, 0, |s| s.server.epoch())
}
