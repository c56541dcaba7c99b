//! The engine's record of one request or mapping: what it asks for and
//! where it stands.

use std::net::IpAddr;
use std::time::Instant;

use crate::wire::{Nonce, Opcode, PcpOption, Protocol};
use crate::Error;

use super::{MappingInfo, RetransmitPolicy, RetransmitSchedule};

/// What a request is for; everything needed to build its datagrams.
#[derive(Debug, Clone)]
pub(super) struct Template {
    pub(super) opcode: Opcode,
    pub(super) nonce: Nonce,
    pub(super) protocol: Protocol,
    pub(super) internal_port: u16,
    pub(super) internal_addr: IpAddr,
    pub(super) remote: Option<(IpAddr, u16)>,
    pub(super) suggested_port: u16,
    pub(super) suggested_addr: IpAddr,
    pub(super) lifetime: u32,
    pub(super) options: Vec<PcpOption>,
    pub(super) retransmit: RetransmitPolicy,
}

#[derive(Debug)]
pub(super) enum Kind {
    Mapping(Template),
    /// A MAP made only to learn the external address, deleted right after.
    Probe(Template),
    /// A mapping the server granted against the request (another external
    /// port or address despite PREFER_FAILURE, RFC 6887 section 13.2),
    /// being deleted: the caller was already told it failed or was lost, so
    /// its delete reports nothing, and it is no longer the caller's mapping.
    Unwanted(Template),
    Announce(RetransmitPolicy),
    /// The engine's own NAT-PMP external-address query (opcode 0): NAT-PMP
    /// MAP answers carry no address.
    AddressQuery(RetransmitPolicy),
}

/// A NAT-PMP MAP success waiting for the external address.
#[derive(Debug, Clone, Copy)]
pub(super) struct NatPmpGrant {
    pub(super) external_port: u16,
    pub(super) lifetime: u32,
    pub(super) epoch: u32,
    pub(super) at: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// The first request is outstanding.
    Requesting,
    /// Granted; the timer is the renewal time.
    Granted,
    /// A renewal (or recreation) is outstanding; gives up at expiry.
    Renewing,
    /// An error answered a renewal; the timer is when to try again.
    RetryWait,
    Deleting,
    Announcing,
}

#[derive(Debug)]
pub(super) struct Entry {
    pub(super) kind: Kind,
    pub(super) phase: Phase,
    pub(super) info: Option<MappingInfo>,
    /// `Some` while a request is on the wire.
    pub(super) schedule: Option<RetransmitSchedule>,
    /// Waiting for an in-flight slot.
    pub(super) queued: bool,
    pub(super) timer: Option<Instant>,
    pub(super) last_error: Option<Error>,
    /// This entry's exchanges are NAT-PMP (RFC 6886), not PCP.
    pub(super) natpmp: bool,
    /// A NAT-PMP grant waiting for the external address.
    pub(super) natpmp_grant: Option<NatPmpGrant>,
    /// When its next exchange must give up at the latest (what was left of
    /// a deadline when it switched to NAT-PMP).
    pub(super) deadline: Option<Instant>,
    /// A header-only error that may concern this request (it carries no
    /// nonce): it ends the request only if no matched answer arrives before
    /// the next retransmission would go (issue 13: one spoofed datagram must
    /// not fail every request), with its lifetime.
    pub(super) unmatched_error: Option<(Error, u32)>,
    /// The nominal instant of the renewal attempt last sent, from which the
    /// next one is scheduled (section 11.2.1).
    pub(super) renewal_base: Option<Instant>,
    /// Whether a create or renewal (lifetime > 0) went out with this nonce,
    /// so that a SUCCESS with a lifetime answering our delete may be that
    /// request's late answer rather than a refusal to delete.
    pub(super) sent_create: bool,
}

impl Entry {
    pub(super) fn template(&self) -> Option<&Template> {
        match &self.kind {
            Kind::Mapping(t) | Kind::Probe(t) | Kind::Unwanted(t) => Some(t),
            Kind::Announce(_) | Kind::AddressQuery(_) => None,
        }
    }

    pub(super) fn outstanding(&self) -> bool {
        self.schedule.is_some() || self.queued
    }
}
