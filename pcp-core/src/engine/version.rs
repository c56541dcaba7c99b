//! Datagrams from the server that are not PCP version 2 messages: a
//! version answer (section 9) or garbage.
//!
//! This is the seam for version negotiation: everything [`Response::decode`]
//! refuses comes here.
//!
//! [`Response::decode`]: crate::wire::Response::decode

use std::time::Instant;

use crate::wire::natpmp::NatPmpResponse;
use crate::wire::{self, ResultCode, WireError, HEADER_SIZE, MAX_MESSAGE_SIZE, VERSION};
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
        // Section 9 and issue 13: only a well-formed answer naming a lower
        // version counts; any other datagram of another version is dropped.
        match version_answer(data, &err) {
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

/// The version a well-formed UNSUPP_VERSION answer names, if `data` is one.
///
/// Section 9: a server that does not speak our version answers with
/// UNSUPP_VERSION in the header of a version it does speak, which must be
/// lower than ours; a NAT-PMP gateway (version 0) answers in NAT-PMP's
/// format (RFC 6886 section 3.5: 8 bytes here, opcode 128 + ours, result 1).
/// Anything else of another version is garbage (issue 13: a random datagram
/// must not be read as "the server speaks version 91").
pub(super) fn version_answer(data: &[u8], err: &WireError) -> Option<u8> {
    match *err {
        WireError::WrongVersion(v) if (1..VERSION).contains(&v) => {
            let well_formed = (HEADER_SIZE..=MAX_MESSAGE_SIZE).contains(&data.len())
                && data.len() % 4 == 0
                && data[1] & 0x80 != 0
                && data[3] == ResultCode::UnsuppVersion.to_u8();
            well_formed.then_some(v)
        }
        _ if data.first() == Some(&0) => {
            // Opcodes 0-2 are PCP's ANNOUNCE, MAP and PEER echoed back.
            let ours = data.len() % 4 == 0 && data.get(1).is_some_and(|op| op & 0x7f <= 2);
            (ours && wire::natpmp::unsupported_version_epoch(data).is_some()).then_some(0)
        }
        _ => None,
    }
}
