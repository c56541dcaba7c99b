//! The handle on one mapping a [`Client`](super::Client) holds.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use super::shared::Shared;
use super::Pending;
use crate::engine::{MappingId, MappingInfo, ProtocolVersion};
use crate::wire::{Nonce, Opcode, Protocol};
use crate::Result;

/// A mapping held by a [`Client`](super::Client). Cloning gives another handle to the same
/// mapping. The snapshot fields are as of when the handle was made;
/// [`Mapping::refresh`] reads the current state (renewals may change the
/// external port, for example after a gateway reboot).
#[derive(Clone)]
pub struct Mapping {
    pub(super) shared: Arc<Shared>,
    pub(super) info: MappingInfo,
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.info.fmt(f)
    }
}

impl Mapping {
    /// Identifies the mapping in events and in [`Client::mapping`](super::Client::mapping).
    pub fn id(&self) -> MappingId {
        self.info.id
    }

    /// PCP or NAT-PMP: what the gateway granted this mapping with.
    pub fn protocol_version(&self) -> ProtocolVersion {
        self.info().version
    }

    /// The whole snapshot, as the engine reports it.
    pub fn info(&self) -> &MappingInfo {
        &self.info
    }

    /// MAP (inbound) or PEER (outbound, towards one remote peer).
    pub fn opcode(&self) -> Opcode {
        self.info.opcode
    }

    /// The transport protocol (TCP, UDP, ...; 0 for all).
    pub fn protocol(&self) -> Protocol {
        self.info.protocol
    }

    /// Our port (the THIRD_PARTY host's, for such a mapping).
    pub fn internal_port(&self) -> u16 {
        self.info.internal_port
    }

    /// Our address, or the THIRD_PARTY host's.
    pub fn internal_addr(&self) -> IpAddr {
        self.info.internal_addr
    }

    /// The external address the server assigned.
    pub fn external_addr(&self) -> IpAddr {
        self.info.external_addr
    }

    /// The external port the server assigned.
    pub fn external_port(&self) -> u16 {
        self.info.external_port
    }

    /// The lifetime the server granted, in seconds, from [`Mapping::granted_at`].
    pub fn lifetime(&self) -> u32 {
        self.info.lifetime
    }

    /// The server's epoch in the answer that granted or renewed it.
    pub fn epoch(&self) -> u32 {
        self.info.epoch
    }

    /// The mapping's nonce: the same for its renewals and its delete.
    pub fn nonce(&self) -> Nonce {
        self.info.nonce
    }

    /// The remote peer of a PEER mapping; `None` for MAP.
    pub fn remote(&self) -> Option<(IpAddr, u16)> {
        self.info.remote
    }

    /// When the server granted or last renewed it (the snapshot's).
    pub fn granted_at(&self) -> Instant {
        self.info.granted_at
    }

    /// When its lifetime runs out unless renewed: `granted_at` plus `lifetime`.
    pub fn expires_at(&self) -> Instant {
        self.info.expires_at()
    }

    /// Updates the snapshot from the client; false if the mapping is gone.
    pub fn refresh(&mut self) -> bool {
        match self.shared.lock().endpoint.engine().mapping(self.info.id) {
            Some(i) => {
                self.info = i.clone();
                true
            }
            None => false,
        }
    }

    /// Whether the client still holds the mapping.
    pub fn is_active(&self) -> bool {
        self.shared.lock().endpoint.engine().mapping(self.info.id).is_some()
    }

    /// Deletes the mapping on the server and waits for the answer. On an
    /// error the client holds the mapping again (see
    /// [`Event::Deleted`](crate::Event::Deleted)), so the delete can be
    /// retried. A mapping that has ended already (deleted, lost) succeeds
    /// at once, sending nothing.
    pub fn delete(&self) -> Result<()> {
        self.shared.blocking(|| self.delete_async())
    }

    /// [`Mapping::delete`] without waiting.
    pub fn delete_async(&self) -> Pending<()> {
        self.shared.delete_async(self.info.id)
    }
}
