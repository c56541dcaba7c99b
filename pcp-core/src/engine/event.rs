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
    /// The server lost its state (epoch check, section 8.5); every mapping
    /// is being recreated.
    ServerRestarted { epoch: u32 },
    /// An ANNOUNCE request finished; success carries the server's epoch.
    Announced { id: RequestId, result: Result<u32, Error> },
    /// An external-address request finished.
    ExternalAddress { id: RequestId, result: Result<IpAddr, Error> },
}
