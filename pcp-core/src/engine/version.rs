//! Datagrams from the server that are not PCP version 2 messages: a
//! version answer (section 9) or garbage.
//!
//! This is the seam for version negotiation: everything [`Response::decode`]
//! refuses comes here.
//!
//! [`Response::decode`]: crate::wire::Response::decode

use std::time::Instant;

use crate::wire::natpmp::NatPmpResponse;
use crate::wire::{self, ResultCode, WireError, HEADER_SIZE};
use crate::Error;

use super::Engine;

impl Engine {
    pub(super) fn handle_undecodable(&mut self, now: Instant, data: &[u8], err: WireError) {
        // NAT-PMP (version 0): an answer to a NAT-PMP request, an
        // announcement, or a NAT-PMP-only gateway's "unsupported version".
        if data.first() == Some(&0) {
            if let Ok(r) = NatPmpResponse::decode(data) {
                self.handle_natpmp_response(now, r);
                return;
            }
            if is_pcp_unsupp_version_naming_zero(data) {
                self.on_version_zero_answer(now);
                return;
            }
        }
        // A server speaking another version answers UNSUPP_VERSION in its own
        // version's header (section 9); a NAT-PMP gateway in NAT-PMP format.
        let server_version = match err {
            WireError::WrongVersion(v)
                if v != 0 && data.len() >= 4 && data[1] & 0x80 != 0 && data[3] == ResultCode::UnsuppVersion.to_u8() =>
            {
                Some(v)
            }
            _ => wire::natpmp::unsupported_version_epoch(data).map(|_| 0),
        };
        match server_version {
            Some(server_version) => self.fail_outstanding(now, None, Error::UnsuppVersion { server_version }, 0),
            None => self.stats.dropped += 1,
        }
    }
}

/// A PCP-format UNSUPP_VERSION response (the 24-byte header or more) whose
/// version field says 0: a server that speaks only NAT-PMP, answering in
/// PCP's layout (section 9).
fn is_pcp_unsupp_version_naming_zero(data: &[u8]) -> bool {
    data.len() >= HEADER_SIZE
        && data.len() % 4 == 0
        && data[0] == 0
        && data[1] & 0x80 != 0
        && data[2] == 0
        && data[3] == ResultCode::UnsuppVersion.to_u8()
}
