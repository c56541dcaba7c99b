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
    /// A delete finished. `Ok`: the mapping is gone. An error: the delete
    /// had no effect that we know of, so the mapping is held (and renewed)
    /// again, for another delete with its nonce; it is gone only if the
    /// client was closing, or it had not been granted or has expired.
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

/// The flat view every shell gives of an event (C's `pcp_event`, Python's
/// `Event`, Node's event objects, the CLI's JSON lines): one definition of
/// which event carries what, so that they cannot drift.
impl Event {
    /// The kind's stable snake_case name: "granted", "renewed", "updated",
    /// "failed", "lost", "deleted", "ip_changed", "internal_ip_changed",
    /// "server_restarted", "announced" or "external_address".
    pub fn name(&self) -> &'static str {
        match self {
            Event::Granted(_) => "granted",
            Event::Renewed(_) => "renewed",
            Event::Updated(_) => "updated",
            Event::Failed { .. } => "failed",
            Event::Lost { .. } => "lost",
            Event::Deleted { .. } => "deleted",
            Event::ExternalAddressChanged { .. } => "ip_changed",
            Event::InternalAddressChanged { .. } => "internal_ip_changed",
            Event::ServerRestarted { .. } => "server_restarted",
            Event::Announced { .. } => "announced",
            Event::ExternalAddress { .. } => "external_address",
        }
    }

    /// The mapping as granted, renewed or updated.
    pub fn mapping(&self) -> Option<&MappingInfo> {
        match self {
            Event::Granted(info) | Event::Renewed(info) | Event::Updated(info) => Some(info),
            _ => None,
        }
    }

    /// The mapping the event is about.
    pub fn mapping_id(&self) -> Option<MappingId> {
        match self {
            Event::Failed { id, .. } | Event::Lost { id, .. } | Event::Deleted { id, .. } => Some(*id),
            _ => self.mapping().map(|info| info.id),
        }
    }

    /// The one-shot request an ANNOUNCE or external-address answer is for.
    pub fn request_id(&self) -> Option<RequestId> {
        match self {
            Event::Announced { id, .. } | Event::ExternalAddress { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// Why a mapping failed or was lost, a delete failed, or an ANNOUNCE or
    /// external-address request failed.
    pub fn error(&self) -> Option<&Error> {
        match self {
            Event::Failed { error, .. } | Event::Lost { error, .. } => Some(error),
            Event::Deleted { result: Err(error), .. }
            | Event::Announced { result: Err(error), .. }
            | Event::ExternalAddress { result: Err(error), .. } => Some(error),
            _ => None,
        }
    }

    /// The address before an external or internal address change.
    pub fn old_address(&self) -> Option<IpAddr> {
        match self {
            Event::ExternalAddressChanged { old, .. } | Event::InternalAddressChanged { old, .. } => Some(*old),
            _ => None,
        }
    }

    /// The address after an external or internal address change, or the
    /// answer of an external-address request.
    pub fn new_address(&self) -> Option<IpAddr> {
        match self {
            Event::ExternalAddressChanged { new, .. } | Event::InternalAddressChanged { new, .. } => Some(*new),
            Event::ExternalAddress { result: Ok(ip), .. } => Some(*ip),
            _ => None,
        }
    }

    /// The server's epoch: of the mapping's last answer, after a restart, or
    /// the answer of an ANNOUNCE.
    pub fn epoch(&self) -> Option<u32> {
        match self {
            Event::ServerRestarted { epoch } | Event::Announced { result: Ok(epoch), .. } => Some(*epoch),
            _ => self.mapping().map(|info| info.epoch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flat_view_carries_what_each_kind_has() {
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let lost = Event::Lost { id: MappingId(3), error: Error::Timeout };
        assert_eq!((lost.name(), lost.mapping_id(), lost.error()), ("lost", Some(MappingId(3)), Some(&Error::Timeout)));
        assert_eq!((lost.epoch(), lost.old_address(), lost.new_address()), (None, None, None));
        let announced = Event::Announced { id: RequestId(9), result: Ok(5) };
        assert_eq!(
            (announced.request_id(), announced.mapping_id(), announced.epoch()),
            (Some(RequestId(9)), None, Some(5))
        );
        assert_eq!(lost.request_id(), None);
        let deleted = Event::Deleted { id: MappingId(4), result: Ok(()) };
        assert_eq!((deleted.mapping_id(), deleted.error()), (Some(MappingId(4)), None));
        let moved = Event::InternalAddressChanged { old: a, new: b };
        assert_eq!((moved.name(), moved.old_address(), moved.new_address()), ("internal_ip_changed", Some(a), Some(b)));
        let answer = Event::ExternalAddress { id: RequestId(1), result: Ok(b) };
        assert_eq!((answer.mapping_id(), answer.old_address(), answer.new_address()), (None, None, Some(b)));
        let announced = Event::Announced { id: RequestId(2), result: Err(Error::Cancelled) };
        assert_eq!((announced.epoch(), announced.error()), (None, Some(&Error::Cancelled)));
        assert_eq!(Event::Announced { id: RequestId(2), result: Ok(7) }.epoch(), Some(7));
        assert_eq!(Event::ServerRestarted { epoch: 9 }.epoch(), Some(9));
        assert_eq!(Event::ExternalAddressChanged { old: a, new: b }.name(), "ip_changed");
    }
}
