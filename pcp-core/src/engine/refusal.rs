//! Error lifetimes (RFC 6887 section 8.3): an error answer says how long the
//! server will keep refusing, and the client does not ask again before.
//!
//! - For a refused first request, the same request (opcode, protocol,
//!   internal address and port, peer) is not sent again within the error's
//!   lifetime: a new request for it fails at once, locally, with the same
//!   error and the seconds left as its `retry_after`.
//! - After NO_RESOURCES to a create or renewal, no request for a new
//!   mapping goes to that server for the lifetime; renewals and deletes
//!   still go.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::wire::{Opcode, Protocol};
use crate::{Error, Result};

use super::entry::{Kind, Phase, Template};
use super::Engine;

/// What makes two requests "the same request" for section 8.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RequestKey {
    opcode: Opcode,
    protocol: Protocol,
    internal_addr: IpAddr,
    internal_port: u16,
    remote: Option<(IpAddr, u16)>,
}

impl RequestKey {
    pub(super) fn of(t: &Template) -> Self {
        RequestKey {
            opcode: t.opcode,
            protocol: t.protocol,
            internal_addr: t.internal_addr,
            internal_port: t.internal_port,
            remote: t.remote,
        }
    }
}

/// A refusal still in force.
#[derive(Debug, Clone)]
pub(super) struct Refusal {
    key: RequestKey,
    error: Error,
    until: Instant,
}

impl Engine {
    /// Remembers an error answer to the entry's request for its lifetime.
    pub(super) fn refused(&mut self, now: Instant, id: u64, error: &Error, lifetime: u32) {
        // UNSUPP_VERSION is version negotiation (section 9), not a refusal.
        if lifetime == 0 || matches!(error, Error::UnsuppVersion { .. }) {
            return;
        }
        let Some(entry) = self.entries.get(&id) else { return };
        let Some(template) = entry.template() else { return };
        let until = now + Duration::from_secs(u64::from(lifetime));
        let creates = matches!(entry.phase, Phase::Requesting | Phase::Renewing);
        if creates && matches!(error, Error::NoResources { .. }) {
            self.no_new_mappings_until = Some((until, error.clone()));
        }
        if entry.phase == Phase::Requesting && matches!(entry.kind, Kind::Mapping(_)) {
            let key = RequestKey::of(template);
            self.refusals.retain(|r| r.key != key && r.until > now);
            self.refusals.push(Refusal { key, error: error.clone(), until });
        }
    }

    /// Whether a new mapping request may go to the server now; the error
    /// (with the seconds left) if a refusal is still in force.
    pub(super) fn check_refusals(&mut self, now: Instant, key: Option<RequestKey>) -> Result<()> {
        if let Some((until, error)) = &self.no_new_mappings_until {
            if *until > now {
                return Err(error.clone().with_retry_after(secs_left(*until, now)));
            }
            self.no_new_mappings_until = None;
        }
        self.refusals.retain(|r| r.until > now);
        match key.and_then(|k| self.refusals.iter().find(|r| r.key == k)) {
            Some(r) => Err(r.error.clone().with_retry_after(secs_left(r.until, now))),
            None => Ok(()),
        }
    }
}

/// Whole seconds from `now` to `until`, rounded up.
fn secs_left(until: Instant, now: Instant) -> u32 {
    let left = until.saturating_duration_since(now);
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}
