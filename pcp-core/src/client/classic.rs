//! The semantics of the classic API (`create_mapping`, `delete_mapping`,
//! `createMapping`, `pcp_map`, ...), defined once for every language.
//!
//! - One mapping per protocol and internal port per client, whoever asks:
//!   a call for a port whose request is still in flight joins it and gets
//!   the same result (8 threads mapping one port make one mapping).
//! - Mapping a port the client holds again refreshes it. If the call asks
//!   for what the mapping already is (any external port or the one it has,
//!   the lifetime it was granted), the held mapping is
//!   returned: the client renews it by itself, so the habit of calling
//!   `create_mapping(port)` again every half hour keeps the port. Otherwise
//!   the new values are requested with the mapping's own nonce (RFC 6887
//!   section 11.3: the same nonce is the same mapping, so the server
//!   updates it instead of refusing a second one); if that request fails
//!   the port is left unmapped here.
//! - Deleting a port the client holds no mapping for succeeds and sends
//!   nothing: afterwards the port is unmapped either way, as a server
//!   answers a delete of a mapping it does not have.
//! - The classic PEER (`create_peer_mapping`) follows the same rules for
//!   one port towards one remote peer.
//! - A delete that fails (no answer, a refusal) leaves the mapping held, as
//!   the full API's delete does (see `Event::Deleted`): deleting the port
//!   again retries with its nonce, and mapping it again refreshes it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::pending::{pending, Completer};
use super::{Client, Mapping, Pending};

use crate::engine::{MapSpec, PeerSpec};
use crate::wire::{canonical, Opcode, Protocol};
use crate::Result;

/// The callers that joined a classic call in flight.
type Joined = Vec<Completer<Mapping>>;

/// What a classic call is for: a MAP of one port, or a PEER of one port
/// towards one remote peer (its address in IPv4 form where it has one).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum ClassicKey {
    Map(Protocol, u16),
    Peer(Protocol, u16, IpAddr, u16),
}

/// The classic calls of one client still waiting for their answer: the
/// callers that joined each, by what it is for.
#[derive(Default)]
pub(super) struct ClassicCalls {
    in_flight: Mutex<HashMap<ClassicKey, Joined>>,
}

impl Client {
    /// The classic MAP of `internal_port` (see the module docs): asks for
    /// `external_port` (0: any) and `lifetime` seconds, joins a call for the
    /// same port in flight, refreshes a mapping the client holds. Waits.
    pub fn map_port(
        &self,
        protocol: Protocol,
        internal_port: u16,
        external_port: u16,
        lifetime: u32,
    ) -> Result<Mapping> {
        self.blocking(|| self.map_port_async(protocol, internal_port, external_port, lifetime))
    }

    /// [`Client::map_port`] without waiting. The returned `Pending` cannot
    /// cancel the request: other callers may share it.
    pub fn map_port_async(
        &self,
        protocol: Protocol,
        internal_port: u16,
        external_port: u16,
        lifetime: u32,
    ) -> Pending<Mapping> {
        if internal_port == 0 {
            // The engine allows port 0 ("all ports", RFC 6887 section 11.1)
            // through MapSpec; the classic call maps one port.
            return Pending::ready(Err(crate::Error::InvalidArgument(
                "internal_port must be 1..65535 (all ports, port 0, is a MapSpec request)".into(),
            )));
        }
        self.classic_call(
            ClassicKey::Map(protocol, internal_port),
            || self.find_mapping(protocol, internal_port),
            |held| (external_port == 0 || external_port == held.external_port()) && lifetime == held.lifetime(),
            |held| {
                let mut spec = MapSpec::new(protocol, internal_port).external_port(external_port).lifetime(lifetime);
                if let Some(held) = held {
                    // The same mapping with new values: its nonce, and its
                    // external address and port unless another port is asked.
                    spec = spec.nonce(held.nonce()).external_addr(held.external_addr());
                    if external_port == 0 {
                        spec = spec.external_port(held.external_port());
                    }
                }
                self.map_async(spec)
            },
        )
    }

    /// The classic PEER (`create_peer_mapping`): an outbound mapping of
    /// `internal_port` towards `remote_addr`:`remote_port` for `lifetime`
    /// seconds, with the rules of [`Client::map_port`]: asking again for a
    /// peer mapping the client holds returns it (same lifetime) or renews it
    /// with its nonce, where a new nonce would be refused. Waits.
    pub fn peer_port(
        &self,
        protocol: Protocol,
        internal_port: u16,
        remote_addr: IpAddr,
        remote_port: u16,
        lifetime: u32,
    ) -> Result<Mapping> {
        self.blocking(|| self.peer_port_async(protocol, internal_port, remote_addr, remote_port, lifetime))
    }

    /// [`Client::peer_port`] without waiting; cannot cancel, as
    /// [`Client::map_port_async`].
    pub fn peer_port_async(
        &self,
        protocol: Protocol,
        internal_port: u16,
        remote_addr: IpAddr,
        remote_port: u16,
        lifetime: u32,
    ) -> Pending<Mapping> {
        let remote_addr = canonical(remote_addr);
        self.classic_call(
            ClassicKey::Peer(protocol, internal_port, remote_addr, remote_port),
            || {
                let st = self.shared().lock();
                let engine = st.endpoint.engine();
                let info = engine
                    .mappings()
                    .filter(|i| i.opcode == Opcode::Peer && i.internal_addr == engine.client_addr())
                    .filter(|i| {
                        (i.protocol, i.internal_port, i.remote)
                            == (protocol, internal_port, Some((remote_addr, remote_port)))
                    })
                    .max_by_key(|i| i.id)?
                    .clone();
                Some(Mapping { shared: self.shared().clone(), info })
            },
            |held| lifetime == held.lifetime(),
            |held| {
                let mut spec = PeerSpec::new(protocol, internal_port, remote_addr, remote_port).lifetime(lifetime);
                if let Some(held) = held {
                    spec = spec
                        .nonce(held.nonce())
                        .external_addr(held.external_addr())
                        .external_port(held.external_port());
                }
                self.peer_async(spec)
            },
        )
    }

    /// A classic call for `key`: joins the one in flight; else takes the
    /// mapping `find` finds, returned as it is if `unchanged` says it is what
    /// is asked, or else let go of for `request`, which asks again with its
    /// nonce (`request(None)`: a new mapping). Every joined caller gets the
    /// result.
    fn classic_call(
        &self,
        key: ClassicKey,
        find: impl FnOnce() -> Option<Mapping>,
        unchanged: impl FnOnce(&Mapping) -> bool,
        request: impl FnOnce(Option<&Mapping>) -> Pending<Mapping>,
    ) -> Pending<Mapping> {
        let shared = self.shared().clone();
        let held = {
            let mut calls = shared.classic.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(joined) = calls.get_mut(&key) {
                let (p, c) = pending();
                joined.push(c);
                return p.with_driver(shared.clone());
            }
            let held = find();
            if let Some(held) = &held {
                if unchanged(held) {
                    return Pending::ready(Ok(held.clone()));
                }
                // Its nonce goes to the new request (the engine refuses a
                // nonce that another mapping of it holds).
                shared.lock().endpoint.engine_mut().forget(std::time::Instant::now(), held.id());
            }
            calls.insert(key, Vec::new());
            held
        };
        let (p, c) = pending();
        let weak = Arc::downgrade(&shared);
        request(held.as_ref()).forward(move |r| {
            let joined = weak
                .upgrade()
                .and_then(|s| s.classic.in_flight.lock().unwrap_or_else(|e| e.into_inner()).remove(&key))
                .unwrap_or_default();
            for j in joined {
                j.complete(r.clone());
            }
            c.complete(r);
        });
        p.with_driver(shared)
    }

    /// The classic delete of `internal_port`'s mapping (with its nonce);
    /// succeeds at once if the client holds none. Waits.
    pub fn delete_port(&self, protocol: Protocol, internal_port: u16) -> Result<()> {
        self.blocking(|| self.delete_port_async(protocol, internal_port))
    }

    /// [`Client::delete_port`] without waiting.
    pub fn delete_port_async(&self, protocol: Protocol, internal_port: u16) -> Pending<()> {
        if self.is_closed() {
            return Pending::ready(Err(crate::Error::Closed));
        }
        match self.find_mapping(protocol, internal_port) {
            Some(m) => m.delete_async(),
            None => Pending::ready(Ok(())),
        }
    }
}
