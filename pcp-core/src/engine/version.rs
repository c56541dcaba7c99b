//! Datagrams from the server that are not PCP version 2 messages: a
//! version answer (section 9) or garbage.
//!
//! This is the seam for version negotiation: everything [`Response::decode`]
//! refuses comes here.
//!
//! [`Response::decode`]: crate::wire::Response::decode

use std::time::Instant;

use crate::wire::{self, ResultCode, WireError};
use crate::Error;

use super::Engine;

impl Engine {
    pub(super) fn handle_undecodable(&mut self, now: Instant, data: &[u8], err: WireError) {
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
