use std::ffi::{c_char, c_void};
use std::sync::{Mutex, MutexGuard};

use pcp_core::client::{wall_clock, HandlerSlot};
use pcp_core::{Client, Mapping, Protocol};

use crate::common::*;
use crate::config::*;
use crate::event::*;
use crate::request::*;

/// A PCP client for one server (opaque). Thread-safe: any number of threads
/// may call functions on the same client at once; their requests share one
/// socket. One background thread per client sends, retransmits and renews
/// every mapping, and runs the event callback.
pub struct pcp_client {
    client: Client,
    /// The C callback, among the client's core handlers (registered only
    /// while one is set: a client with no listener skips dispatching).
    callback: HandlerSlot,
}

/// A mapping held by a client (opaque, thread-safe). Its fields are a
/// snapshot taken when it was granted; `pcp_mapping_refresh` updates them
/// after renewals. Freeing it does not delete the mapping on the server
/// (`pcp_mapping_delete` does; freeing the client does too by default).
pub struct pcp_mapping {
    mapping: Mutex<Mapping>,
}

impl pcp_mapping {
    fn get(&self) -> MutexGuard<'_, Mapping> {
        self.mapping.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Freeing the handle closes the client.
impl Drop for pcp_client {
    fn drop(&mut self) {
        self.client.close();
    }
}

/// Makes a client for the server at `server`: "host", "host:port", an IPv4
/// or IPv6 address (`"192.168.1.1"`, `"[::1]:5351"`, `"fe80::1%eth0"`); the port
/// defaults to 5351. `config` may be NULL for the defaults. Free the client
/// with `pcp_client_free`.
#[no_mangle]
pub unsafe extern "C" fn pcp_client_new(
    server: *const c_char,
    config: *const pcp_config,
    out: *mut *mut pcp_client,
) -> pcp_status {
    guard_out(out, "out", || {
        let client = Client::new(unsafe { client_config_for(server, config) }?)?;
        Ok(pcp_client { client, callback: HandlerSlot::default() }.into_raw())
    })
}

/// Finds a PCP server and makes a client for it: sends ANNOUNCE to the
/// candidates added with `pcp_config_add_discovery_candidate` or, if none,
/// to the default gateways of the routing table, and takes the first that
/// answers (PCP_NO_GATEWAY if none does before the discovery deadline).
#[no_mangle]
pub unsafe extern "C" fn pcp_client_discover(config: *const pcp_config, out: *mut *mut pcp_client) -> pcp_status {
    guard_out(out, "out", || {
        let config = unsafe { pcp_config::or_default(config) };
        let client = Client::discover_with(&config.discovery, |server| config.client_config(server))?;
        Ok(pcp_client { client, callback: HandlerSlot::default() }.into_raw())
    })
}

/// Closes and frees a client; NULL is allowed. Unless the config said
/// otherwise, first deletes the client's mappings on the server (waiting at
/// most the close timeout, 2 s by default). When it returns, the callback
/// is no longer running and will not run again. Mapping handles stay valid
/// (their accessors work; deleting them gives PCP_CLOSED). Do not call it
/// from the event callback, nor while another thread may still make a call
/// with this client.
#[no_mangle]
pub unsafe extern "C" fn pcp_client_free(client: *mut pcp_client) {
    unsafe { free(client) }
}

/// Registers the event callback, replacing any previous one (NULL removes
/// it).
///
/// The callback runs on the client's background thread, one event at a
/// time, and may run at the same time as API calls on other threads. It may
/// call the client's functions, blocking requests included (but not
/// `pcp_client_free`), and may replace or remove itself. It should not
/// block for long: other events and renewals wait while it runs.
///
/// When this returns, the previous callback is not running and will never
/// be called again, so its `userdata` may be freed: if it is running on
/// another thread, this waits for it to return (do not call this while
/// holding a lock that the callback takes). Called from inside the
/// callback itself, it does not wait; the previous callback is then simply
/// not called again after it returns. The new `userdata` must stay valid
/// until it is replaced in the same way or `pcp_client_free` returns.
/// A C++ callback must not throw.
#[no_mangle]
pub unsafe extern "C" fn pcp_client_set_event_callback(
    client: *mut pcp_client,
    callback: pcp_event_callback,
    userdata: *mut c_void,
) -> pcp_status {
    act(client, |c| set_callback(&c.callback, c.client.event_handlers(), callback, userdata))
}

/// Runs a request that makes a mapping, handing the new handle out through `out`.
fn out_mapping(
    client: *mut pcp_client,
    out: *mut *mut pcp_mapping,
    f: impl FnOnce(&Client) -> FfiResult<Mapping>,
) -> pcp_status {
    guard_out(out, "out", || {
        let m = f(&unsafe { handle(client) }?.client)?;
        Ok(pcp_mapping { mapping: Mutex::new(m) }.into_raw())
    })
}

/// Maps `internal_port` for `protocol` (PCP_PROTO_TCP, PCP_PROTO_UDP...):
/// `suggested_external_port` (0 = any), `lifetime` seconds. Waits for the
/// answer; on success `*out` is a new mapping handle (free it with
/// `pcp_mapping_free`). The client renews the mapping until it is deleted.
/// The classic call, with the rules of every language: mapping a port
/// again refreshes its mapping (the same nonce), and threads mapping one
/// port at once share one mapping.
#[no_mangle]
pub unsafe extern "C" fn pcp_map(
    client: *mut pcp_client,
    protocol: u8,
    internal_port: u16,
    suggested_external_port: u16,
    lifetime: u32,
    out: *mut *mut pcp_mapping,
) -> pcp_status {
    out_mapping(client, out, |c| {
        Ok(c.map_port(Protocol(protocol), internal_port, suggested_external_port, lifetime)?)
    })
}

/// Maps as `request` says (suggested external address, PREFER_FAILURE,
/// FILTER, THIRD_PARTY...), and waits for the answer.
#[no_mangle]
pub unsafe extern "C" fn pcp_map_ex(
    client: *mut pcp_client,
    request: *const pcp_map_request,
    out: *mut *mut pcp_mapping,
) -> pcp_status {
    out_mapping(client, out, |c| Ok(c.map_with(unsafe { map_spec(request) }?)?))
}

/// Asks for a PEER mapping as `request` says, and waits for the answer.
#[no_mangle]
pub unsafe extern "C" fn pcp_peer(
    client: *mut pcp_client,
    request: *const pcp_peer_request,
    out: *mut *mut pcp_mapping,
) -> pcp_status {
    out_mapping(client, out, |c| Ok(c.peer(unsafe { peer_spec(request) }?)?))
}

/// Deletes the MAP mapping this client holds for `protocol` and
/// `internal_port`, and waits; PCP_OK at once if it holds none (the port is
/// unmapped either way).
#[no_mangle]
pub unsafe extern "C" fn pcp_delete(client: *mut pcp_client, protocol: u8, internal_port: u16) -> pcp_status {
    with(client, |c| Ok(c.client.delete_port(Protocol(protocol), internal_port)?))
}

/// Deletes the MAP mapping for `protocol` and `internal_port` that has the
/// 12-byte `nonce` (as `pcp_mapping_nonce` gave it), and waits: a mapping
/// this client did not make, such as one another process or an earlier run
/// made and recorded. `third_party` (NULL for none) is the THIRD_PARTY
/// address the mapping was made with: the delete carries it too (RFC 6887
/// section 13.1), or the server looks for a mapping of this host's own
/// address. A server refuses a wrong nonce (PCP_NOT_AUTHORIZED). Python's
/// `delete_by_nonce` and Node's `deleteByNonce` are the same call.
#[no_mangle]
pub unsafe extern "C" fn pcp_delete_by_nonce(
    client: *mut pcp_client,
    protocol: u8,
    internal_port: u16,
    nonce: *const u8,
    third_party: *const c_char,
) -> pcp_status {
    with(client, |c| Ok(c.client.delete_with(unsafe { nonce_spec(protocol, internal_port, nonce, third_party) }?)?))
}

/// Sends ANNOUNCE and waits; on success writes the server's epoch to
/// `*epoch` (which may be NULL).
#[no_mangle]
pub unsafe extern "C" fn pcp_announce(client: *mut pcp_client, epoch: *mut u32) -> pcp_status {
    with(client, |c| {
        let e = c.client.announce()?;
        unsafe { put_opt(epoch, e) };
        Ok(())
    })
}

/// Asks the server for its external address (a short-lived MAP, deleted at
/// once) and writes it as text into `buf` of `len` bytes
/// (PCP_BUFFER_TOO_SMALL if it does not fit; PCP_ADDRSTRLEN always does).
#[no_mangle]
pub unsafe extern "C" fn pcp_external_address(client: *mut pcp_client, buf: *mut c_char, len: usize) -> pcp_status {
    guard_text(buf, len, || Ok(unsafe { handle(client) }?.client.external_address()?.to_string()))
}

/// Like `pcp_external_address`, as 16 bytes into `out` (IPv4 as
/// IPv4-mapped IPv6).
#[no_mangle]
pub unsafe extern "C" fn pcp_external_address_bytes(client: *mut pcp_client, out: *mut u8) -> pcp_status {
    guard_out(bytes_out(out), "out", || Ok(addr_bytes(unsafe { handle(client) }?.client.external_address()?)))
}

/// The PCP server's address as text into `buf`, and its port into `*port`
/// (which may be NULL). No network traffic.
#[no_mangle]
pub unsafe extern "C" fn pcp_gateway_address(
    client: *const pcp_client,
    buf: *mut c_char,
    len: usize,
    port: *mut u16,
) -> pcp_status {
    with(client, |c| {
        let sa = c.client.gateway_address();
        unsafe { copy_text(buf, len, &sa.ip().to_string()) }?;
        unsafe { put_opt(port, sa.port()) };
        Ok(())
    })
}

/// Our address towards the server (the Client IP field of our requests)
/// as text into `buf`. No network traffic.
#[no_mangle]
pub unsafe extern "C" fn pcp_internal_address(client: *const pcp_client, buf: *mut c_char, len: usize) -> pcp_status {
    guard_text(buf, len, || Ok(unsafe { handle(client) }?.client.internal_address().to_string()))
}

/// Sends from the local address `addr` (text, e.g. "192.168.1.20") from
/// now on, or from the route's choice again if `addr` is NULL (then
/// checked before every renewal); moves the client's socket at once. If
/// the address the client names changes, every mapping is made again from
/// the new one and PCP_EVENT_INTERNAL_ADDRESS_CHANGED reports it (RFC 6887
/// section 11.5). For applications that learn of a new address (DHCP,
/// IPv6 renumbering) from the system. `*changed` (may be NULL) says
/// whether it changed. No request waits for an answer here.
#[no_mangle]
pub unsafe extern "C" fn pcp_client_set_local_address(
    client: *mut pcp_client,
    addr: *const c_char,
    changed: *mut bool,
) -> pcp_status {
    with(client, |c| {
        let moved = c.client.set_local_address(unsafe { opt_ip(addr, "addr") }?)?;
        unsafe { put_opt(changed, moved) };
        Ok(())
    })
}

// ---------------------------------------------------------------- mapping

/// Frees a mapping handle (the mapping stays on the server); NULL is allowed.
/// Not while another thread may still make a call with this handle.
#[no_mangle]
pub unsafe extern "C" fn pcp_mapping_free(mapping: *mut pcp_mapping) {
    unsafe { free(mapping) }
}

/// Deletes the mapping on the server (lifetime 0 with its nonce) and waits;
/// PCP_OK at once if it has ended already (deleted, lost). On a failure
/// the client holds it again, so the delete can be retried. The handle
/// must still be freed.
#[no_mangle]
pub unsafe extern "C" fn pcp_mapping_delete(mapping: *mut pcp_mapping) -> pcp_status {
    with(mapping, |m| {
        let m = m.get().clone();
        Ok(m.delete()?)
    })
}

/// Updates the handle's fields from the client (renewals may change the
/// external address, port, lifetime and epoch). Returns whether the client
/// still holds the mapping; false (fields unchanged) if it is gone or on NULL.
#[no_mangle]
pub unsafe extern "C" fn pcp_mapping_refresh(mapping: *mut pcp_mapping) -> bool {
    read(mapping, false, |m| m.get().refresh())
}

/// A value read from the mapping behind the handle (`default` for NULL).
fn field<T>(mapping: *const pcp_mapping, default: T, f: impl FnOnce(&Mapping) -> T) -> T {
    read(mapping, default, |m| f(&m.get()))
}

/// The mapping's id, as in events (0 for NULL).
#[no_mangle]
pub unsafe extern "C" fn pcp_mapping_id(mapping: *const pcp_mapping) -> u64 {
    field(mapping, 0, |m| m.id().0)
}

/// The protocol version the gateway granted it with: `PCP_VERSION_PCP` (2)
/// or `PCP_VERSION_NATPMP` (0); 255 for NULL.
#[no_mangle]
pub unsafe extern "C" fn pcp_mapping_protocol_version(mapping: *const pcp_mapping) -> u8 {
    field(mapping, 255, |m| m.protocol_version().number())
}

/// The protocol number (0 for NULL).
#[no_mangle]
pub unsafe extern "C" fn pcp_mapping_protocol(mapping: *const pcp_mapping) -> u8 {
    field(mapping, 0, |m| m.protocol().0)
}

/// The internal port (0 for NULL).
#[no_mangle]
pub unsafe extern "C" fn pcp_mapping_internal_port(mapping: *const pcp_mapping) -> u16 {
    field(mapping, 0, |m| m.internal_port())
}

/// The external port the server assigned (0 for NULL).
#[no_mangle]
pub unsafe extern "C" fn pcp_mapping_external_port(mapping: *const pcp_mapping) -> u16 {
    field(mapping, 0, |m| m.external_port())
}

/// The granted lifetime in seconds (0 for NULL).
#[no_mangle]
pub unsafe extern "C" fn pcp_mapping_lifetime(mapping: *const pcp_mapping) -> u32 {
    field(mapping, 0, |m| m.lifetime())
}

/// The server's epoch in the answer that granted or renewed it (0 for NULL).
#[no_mangle]
pub unsafe extern "C" fn pcp_mapping_epoch(mapping: *const pcp_mapping) -> u32 {
    field(mapping, 0, |m| m.epoch())
}

/// When the server granted or last renewed the mapping (as of the last
/// `pcp_mapping_refresh`), in milliseconds since the Unix epoch; 0 for NULL.
/// The same value every time it is read until a renewal is refreshed in.
#[no_mangle]
pub unsafe extern "C" fn pcp_mapping_granted_at_ms(mapping: *const pcp_mapping) -> i64 {
    field(mapping, 0, |m| wall_clock::unix_ms(m.granted_at()))
}

/// When the mapping's lifetime runs out unless it is renewed: the granted
/// time plus the lifetime, in milliseconds since the Unix epoch; 0 for NULL.
#[no_mangle]
pub unsafe extern "C" fn pcp_mapping_expires_at_ms(mapping: *const pcp_mapping) -> i64 {
    field(mapping, 0, |m| wall_clock::unix_ms(m.expires_at()))
}

/// The external address as text into `buf` of `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn pcp_mapping_external_address(
    mapping: *const pcp_mapping,
    buf: *mut c_char,
    len: usize,
) -> pcp_status {
    guard_text(buf, len, || Ok(unsafe { handle(mapping) }?.get().external_addr().to_string()))
}

/// The external address as 16 bytes into `out` (IPv4 as IPv4-mapped IPv6).
#[no_mangle]
pub unsafe extern "C" fn pcp_mapping_external_address_bytes(mapping: *const pcp_mapping, out: *mut u8) -> pcp_status {
    guard_out(bytes_out(out), "out", || Ok(addr_bytes(unsafe { handle(mapping) }?.get().external_addr())))
}

/// The internal address (ours, or the THIRD_PARTY one) as text into `buf`.
#[no_mangle]
pub unsafe extern "C" fn pcp_mapping_internal_address(
    mapping: *const pcp_mapping,
    buf: *mut c_char,
    len: usize,
) -> pcp_status {
    guard_text(buf, len, || Ok(unsafe { handle(mapping) }?.get().internal_addr().to_string()))
}

/// The mapping's 12-byte nonce into `out`.
#[no_mangle]
pub unsafe extern "C" fn pcp_mapping_nonce(mapping: *const pcp_mapping, out: *mut u8) -> pcp_status {
    guard_out(bytes_out(out), "out", || Ok(*unsafe { handle(mapping) }?.get().nonce().as_bytes()))
}
