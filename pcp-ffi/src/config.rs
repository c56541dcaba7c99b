//! `pcp_config`: the settings of a client or endpoint, held as the core's
//! `ClientConfig` and `DiscoveryConfig` (their defaults are the core's).

use std::ffi::{c_char, c_int};
use std::net::SocketAddr;

use pcp_core::discovery::DiscoveryConfig;
use pcp_core::{ClientConfig, ProtocolChoice};

use crate::common::*;

/// Settings for a client or an endpoint (opaque). Not thread-safe: build it
/// on one thread, then pass it to `pcp_client_new`, `pcp_client_discover` or
/// `pcp_endpoint_new` (which copy it) from any thread.
#[derive(Clone)]
pub struct pcp_config {
    /// The client settings; `server` is filled in by the call that uses it.
    pub(crate) client: ClientConfig,
    /// Candidates added with `pcp_config_add_discovery_candidate`.
    pub(crate) discovery: DiscoveryConfig,
}

impl Default for pcp_config {
    fn default() -> Self {
        let placeholder = SocketAddr::from(([127, 0, 0, 1], pcp_core::wire::SERVER_PORT));
        pcp_config { client: ClientConfig::new(placeholder), discovery: Default::default() }
    }
}

/// The client configuration for the C arguments `server` (a text address)
/// and `config` (NULL for the defaults), as `pcp_client_new` and
/// `pcp_endpoint_new` take them.
///
/// # Safety
/// `server` is NULL or a NUL-terminated string; `config` is NULL or valid.
pub(crate) unsafe fn client_config_for(server: *const c_char, config: *const pcp_config) -> FfiResult<ClientConfig> {
    let server = pcp_core::client::parse_server(unsafe { text(server, "server") }?)?;
    Ok(unsafe { pcp_config::or_default(config) }.client_config(server))
}

impl pcp_config {
    /// The settings behind `config`, or the defaults for NULL.
    pub(crate) unsafe fn or_default(config: *const pcp_config) -> pcp_config {
        unsafe { config.as_ref() }.cloned().unwrap_or_default()
    }

    pub(crate) fn client_config(&self, server: SocketAddr) -> ClientConfig {
        ClientConfig { server, ..self.client.clone() }
    }
}

/// Makes a config with the defaults: the RFC retransmission schedule with a
/// 10 s deadline, listening for ANNOUNCE on port 5350, deleting the
/// mappings when the client is freed. Free it with `pcp_config_free`.
#[no_mangle]
pub unsafe extern "C" fn pcp_config_new(out: *mut *mut pcp_config) -> pcp_status {
    guard_out(out, "out", || Ok(pcp_config::default().into_raw()))
}

/// Frees a config; NULL is allowed.
#[no_mangle]
pub unsafe extern "C" fn pcp_config_free(config: *mut pcp_config) {
    unsafe { free(config) }
}

/// Changes the config behind the handle if the result passes the core's
/// checks (`ClientConfig::validate`, `DiscoveryConfig::validate`): a bad
/// value is refused by its setter, with the message every language gives.
fn try_set(config: *mut pcp_config, f: impl FnOnce(&mut pcp_config) -> FfiResult<()>) -> pcp_status {
    guard(|| {
        // SAFETY: made by pcp_config_new; not shared while it is built.
        let config = unsafe { config.as_mut() }.ok_or_else(|| Fail::null(pcp_config::NAME))?;
        let mut changed = config.clone();
        f(&mut changed)?;
        changed.client.validate()?;
        changed.discovery.validate()?;
        *config = changed;
        Ok(())
    })
}

/// [`try_set`] for a change that cannot fail by itself.
fn set(config: *mut pcp_config, f: impl FnOnce(&mut pcp_config)) -> pcp_status {
    try_set(config, |c| {
        f(c);
        Ok(())
    })
}

/// Gives up on a request `ms` milliseconds after its first send (the RFC
/// schedule runs inside it; default 10000). 0 is refused
/// (PCP_INVALID_ARGUMENT), as in every language of pcp-rs: to retry
/// without a deadline, call `pcp_config_clear_deadline`.
#[no_mangle]
pub unsafe extern "C" fn pcp_config_set_deadline_ms(config: *mut pcp_config, ms: u32) -> pcp_status {
    set(config, |c| c.client.retransmit = c.client.retransmit.with_deadline(millis(ms)))
}

/// Removes the request deadline: requests are retransmitted by the RFC
/// schedule until answered, or up to the retry count if one is set.
#[no_mangle]
pub unsafe extern "C" fn pcp_config_clear_deadline(config: *mut pcp_config) -> pcp_status {
    set(config, |c| c.client.retransmit.max_duration = None)
}

/// Gives up on a request after `retries` retransmissions; -1 for no limit
/// (the default: only the deadline applies).
#[no_mangle]
pub unsafe extern "C" fn pcp_config_set_retries(config: *mut pcp_config, retries: i32) -> pcp_status {
    try_set(config, |c| {
        c.client.retransmit.max_retransmissions = match retries {
            -1 => None,
            n if n >= 0 => Some(n as u32),
            n => return Err(Fail::invalid(format!("retries must be -1 or at least 0, not {n}"))),
        };
        Ok(())
    })
}

/// The first retransmission timeout (the RFC's IRT, 3000 ms by default);
/// more than 0 and at most the maximum timeout (1024 s).
#[no_mangle]
pub unsafe extern "C" fn pcp_config_set_initial_timeout_ms(config: *mut pcp_config, ms: u32) -> pcp_status {
    set(config, |c| c.client.retransmit = c.client.retransmit.with_initial(millis(ms)))
}

/// Which protocols a client speaks: `PCP_PROTOCOL_AUTO` (the default: PCP,
/// falling back to NAT-PMP when the gateway speaks only that),
/// `PCP_PROTOCOL_PCP` or `PCP_PROTOCOL_NATPMP`.
#[no_mangle]
pub unsafe extern "C" fn pcp_config_set_protocol(config: *mut pcp_config, protocol: c_int) -> pcp_status {
    try_set(config, |c| {
        c.client.protocol = match protocol {
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
    set(config, |c| c.client.listen_announce = listen)
}

/// Whether freeing the client deletes its mappings on the server (default true).
#[no_mangle]
pub unsafe extern "C" fn pcp_config_set_delete_on_close(config: *mut pcp_config, delete_on_close: bool) -> pcp_status {
    set(config, |c| c.client.delete_on_close = delete_on_close)
}

/// How long freeing the client may wait for its deletes to be answered
/// (default 2000 ms).
#[no_mangle]
pub unsafe extern "C" fn pcp_config_set_close_timeout_ms(config: *mut pcp_config, ms: u32) -> pcp_status {
    set(config, |c| c.client.close_timeout = millis(ms))
}

/// The UDP port of the ANNOUNCE listener (default 5350, the port RFC 6887
/// servers announce to). 0 binds an ephemeral port: for tests, with a
/// server that announces to that port (an endpoint's second descriptor
/// from `pcp_endpoint_fds` tells which port it got, with getsockname).
#[no_mangle]
pub unsafe extern "C" fn pcp_config_set_announce_port(config: *mut pcp_config, port: u16) -> pcp_status {
    set(config, |c| c.client.announce_port = port)
}

/// After an unsolicited ANNOUNCE (a server reboot), the client renews its
/// mappings after a random delay of at most this (default 5000 ms, as RFC
/// 6887 section 14.1.3 says); 0 renews at once.
#[no_mangle]
pub unsafe extern "C" fn pcp_config_set_announce_delay_max_ms(config: *mut pcp_config, ms: u32) -> pcp_status {
    set(config, |c| c.client.announce_delay_max = millis(ms))
}

/// Binds the client's socket to this local address (NULL: the route to
/// the server chooses).
#[no_mangle]
pub unsafe extern "C" fn pcp_config_set_local_address(config: *mut pcp_config, address: *const c_char) -> pcp_status {
    try_set(config, |c| {
        c.client.local_addr = unsafe { opt_ip(address, "address") }?;
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
    try_set(config, |c| {
        let server = pcp_core::client::parse_server(unsafe { text(server, "server") }?)?;
        c.discovery.gateways.get_or_insert_with(Vec::new).push(server);
        Ok(())
    })
}

/// How long discovery waits for any answer (default 2000 ms; more than 0,
/// at most a day).
#[no_mangle]
pub unsafe extern "C" fn pcp_config_set_discovery_deadline_ms(config: *mut pcp_config, ms: u32) -> pcp_status {
    set(config, |c| c.discovery.deadline = millis(ms))
}
