//! Version negotiation (RFC 6887 section 9): PCP first; a NAT-PMP-only
//! gateway's "unsupported version" answer switches that server to NAT-PMP
//! at once, the request in flight included; PCP is tried again 30 minutes
//! later and after the server restarts, never in a loop.

use std::fmt;
use std::time::{Duration, Instant};

use crate::Error;

use super::entry::Kind;
use super::Engine;

/// How long after falling back to NAT-PMP the engine tries PCP again
/// (section 9 suggests every 30 minutes).
pub const PCP_RETRY_INTERVAL: Duration = Duration::from_secs(30 * 60);

/// Which protocols a client may speak (the client option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ProtocolChoice {
    /// PCP first, NAT-PMP when the gateway answers that it speaks only that.
    #[default]
    Auto,
    /// PCP only: a NAT-PMP-only gateway fails requests with
    /// [`Error::UnsuppVersion`] (version 0).
    PcpOnly,
    /// NAT-PMP only, from the first request.
    NatPmpOnly,
}

impl ProtocolChoice {
    /// Parses `auto`, `pcp` or `natpmp` (also `nat-pmp`).
    pub fn parse(s: &str) -> Option<ProtocolChoice> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Some(ProtocolChoice::Auto),
            "pcp" => Some(ProtocolChoice::PcpOnly),
            "natpmp" | "nat-pmp" => Some(ProtocolChoice::NatPmpOnly),
            _ => None,
        }
    }

    /// `auto`, `pcp` or `natpmp`.
    pub fn name(self) -> &'static str {
        match self {
            ProtocolChoice::Auto => "auto",
            ProtocolChoice::PcpOnly => "pcp",
            ProtocolChoice::NatPmpOnly => "natpmp",
        }
    }
}

/// The protocol a request or mapping uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ProtocolVersion {
    /// PCP (RFC 6887), version 2.
    #[default]
    Pcp,
    /// NAT-PMP (RFC 6886), version 0.
    NatPmp,
}

impl ProtocolVersion {
    /// `pcp` or `natpmp`.
    pub fn name(self) -> &'static str {
        match self {
            ProtocolVersion::Pcp => "pcp",
            ProtocolVersion::NatPmp => "natpmp",
        }
    }

    /// The version number on the wire: 2 or 0.
    pub fn number(self) -> u8 {
        match self {
            ProtocolVersion::Pcp => 2,
            ProtocolVersion::NatPmp => 0,
        }
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Engine {
    /// The protocol new requests to this server use now.
    pub fn protocol_version(&self) -> ProtocolVersion {
        self.speaking
    }

    /// The protocol a new request starts with at `now`: after the retry
    /// interval, PCP again (automatic mode only).
    pub(super) fn version_for_new_request(&mut self, now: Instant) -> ProtocolVersion {
        if self.speaking == ProtocolVersion::NatPmp
            && self.config.protocol == ProtocolChoice::Auto
            && self.pcp_retry_at.is_some_and(|t| t <= now)
        {
            self.speaking = ProtocolVersion::Pcp;
            self.pcp_retry_at = None;
        }
        self.speaking
    }

    /// The server restarted (seen over NAT-PMP): its firmware may speak PCP
    /// now, so new requests try PCP first again.
    pub(super) fn retry_pcp_after_restart(&mut self) {
        if self.config.protocol == ProtocolChoice::Auto {
            self.speaking = ProtocolVersion::Pcp;
            self.pcp_retry_at = None;
        }
    }

    /// The server answered a PCP request with version 0 ("unsupported
    /// version" in NAT-PMP format, or PCP's UNSUPP_VERSION naming version 0).
    pub(super) fn on_version_zero_answer(&mut self, now: Instant) {
        let mut pcp_outstanding: Vec<u64> =
            self.entries.iter().filter(|(_, e)| e.outstanding() && !e.natpmp).map(|(id, _)| *id).collect();
        if pcp_outstanding.is_empty() {
            // Nothing of ours asked in PCP: a stray or late answer.
            self.stats.dropped += 1;
            return;
        }
        pcp_outstanding.sort_unstable();
        if self.config.protocol != ProtocolChoice::Auto {
            for id in pcp_outstanding {
                self.fail_pcp_entry(id, now);
            }
            return;
        }
        self.speaking = ProtocolVersion::NatPmp;
        self.pcp_retry_at = Some(now + PCP_RETRY_INTERVAL);
        for id in pcp_outstanding {
            let reason = self.entries.get(&id).and_then(|e| e.template()).and_then(|t| self.natpmp_cannot(t));
            match reason {
                Some(error) => self.fail_pcp_entry_with(id, error, now),
                None => self.restart_in_natpmp(id, now),
            }
        }
    }

    fn fail_pcp_entry(&mut self, id: u64, now: Instant) {
        self.fail_pcp_entry_with(id, Error::UnsuppVersion { server_version: 0 }, now);
    }

    fn fail_pcp_entry_with(&mut self, id: u64, error: Error, now: Instant) {
        let renewing = self.entries.get(&id).is_some_and(|e| e.phase == super::entry::Phase::Renewing);
        if renewing {
            self.renewal_error(id, error, 0, now);
        } else {
            self.fail(id, error, now);
        }
    }

    /// Sends the entry's request again, now in NAT-PMP, within what is left
    /// of its deadline.
    fn restart_in_natpmp(&mut self, id: u64, now: Instant) {
        let left = self.entries.get(&id).and_then(|e| e.schedule.as_ref()).and_then(|s| s.deadline());
        self.end_exchange_quiet(id);
        let Some(e) = self.entries.get_mut(&id) else { return };
        e.natpmp = true;
        e.deadline = left;
        let needs_addr = matches!(e.kind, Kind::Mapping(_));
        self.start_exchange(id, now);
        if needs_addr {
            self.ensure_natpmp_addr(now);
        }
    }
}
