use std::net::IpAddr;

use crate::Error;

use super::{MappingId, MappingInfo, RequestId};

/// What the engine reports; read with [`Engine::poll_event`](super::Engine::poll_event).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The first request for a mapping succeeded.
    Granted(MappingInfo),
    /// A renewal succeeded (also after a server restart recreated it).
    Renewed(MappingInfo),
    /// The server changed a mapping on its own and said so with an
    /// unsolicited response (section 14.2): a new external address, port or
    /// lifetime. The mapping lives on with what this carries.
    Updated(MappingInfo),
    /// The first request for a mapping failed; the mapping is gone.
    Failed { id: MappingId, error: Error },
    /// An established mapping ended without being deleted: renewals failed
    /// until it expired.
    Lost { id: MappingId, error: Error },
    /// A delete finished; the mapping is gone either way.
    Deleted { id: MappingId, result: Result<(), Error> },
    /// The server's external address is not what it was (erlang-nat's
    /// `ip_changed`).
    ExternalAddressChanged { old: IpAddr, new: IpAddr },
    /// Our own address towards the server changed (DHCP renumbering, a new
    /// IPv6 address): every mapping of this host is being recreated from
    /// the new one (erlang-nat's `ip_changed` for the internal side).
    InternalAddressChanged { old: IpAddr, new: IpAddr },
    /// The server lost its state (epoch check, section 8.5); every mapping
    /// is being recreated.
    ServerRestarted { epoch: u32 },
    /// An ANNOUNCE request finished; success carries the server's epoch.
    Announced { id: RequestId, result: Result<u32, Error> },
    /// An external-address request finished.
    ExternalAddress { id: RequestId, result: Result<IpAddr, Error> },
}
