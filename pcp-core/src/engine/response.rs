//! Responses to MAP and PEER: matching them to a request (section 8.3),
//! the epoch check (section 8.5), and what an answer does to its mapping.

use std::net::SocketAddr;
use std::time::Instant;

use crate::wire::{Body, MappingFields, Opcode, Response, ResultCode};
use crate::Error;

use super::entry::{Kind, Phase};
use super::validate::{unusable_grant, unwanted_grant};
use super::{Engine, EpochCheck, Event, MappingId, MappingInfo, ProtocolVersion, RequestId};
use crate::wire::same_endpoint;

impl Engine {
    /// Feeds a datagram received from `from` at `now`. Anything that is not a
    /// valid response to an outstanding request, nor a valid unsolicited
    /// ANNOUNCE or mapping update from the server, is dropped.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.stats.received += 1;
        // Section 8.3: a response is valid only from the server's address and
        // port; this also covers unsolicited ANNOUNCEs (14.1.3) and mapping
        // updates (14.2).
        if !same_endpoint(from, self.config.server) {
            self.stats.dropped += 1;
            return;
        }
        let response = match Response::decode(data) {
            Ok(r) => r,
            Err(err) => {
                self.handle_undecodable(now, data, err);
                return;
            }
        };
        match response.opcode {
            Opcode::Announce => self.handle_announce(now, &response),
            Opcode::Map | Opcode::Peer => match response.body {
                Some(body) => self.handle_mapping_response(now, &response, &body),
                None => {
                    let err = Error::from_result(response.result, response.lifetime)
                        .expect("decoder allows no body only on error");
                    self.note_unmatched_error(Some(response.opcode), err, response.lifetime);
                }
            },
        }
    }

    /// An error answered with the header alone carries no nonce: it may
    /// concern any request of its opcode on the wire, or be spoofed by
    /// anyone who can use the server's source address. It ends such a
    /// request only when no matched answer arrives before the request's
    /// next retransmission (issue 13: one datagram must not fail every
    /// request, and never overrides a valid answer).
    pub(super) fn note_unmatched_error(&mut self, opcode: Option<Opcode>, error: Error, retry_after: u32) {
        let mut noted = false;
        for entry in self.entries.values_mut() {
            let op = entry.template().map_or(Opcode::Announce, |t| t.opcode);
            if entry.schedule.is_some() && opcode.is_none_or(|o| o == op) && entry.unmatched_error.is_none() {
                entry.unmatched_error = Some((error.clone(), retry_after));
                noted = true;
            }
        }
        if !noted {
            self.stats.dropped += 1;
        }
    }

    pub(super) fn observe_epoch(&mut self, epoch: u32, now: Instant) -> bool {
        if self.epoch.observe(epoch, now) == EpochCheck::Restarted {
            self.events.push_back(Event::ServerRestarted { epoch });
            true
        } else {
            false
        }
    }

    pub(super) fn handle_mapping_response(&mut self, now: Instant, response: &Response, body: &Body) {
        let Some(f) = body.mapping_fields() else { return };
        let Some(&id) = self.by_nonce.get(&f.nonce) else {
            self.stats.dropped += 1;
            return;
        };
        let entry = &self.entries[&id];
        let template = entry.template().expect("nonce index holds only mappings");
        // Section 8.3 (and 11.4, 12.3): opcode, nonce, protocol, internal
        // port and, for PEER, the remote peer must all match.
        let same_mapping = template.opcode == response.opcode
            && template.protocol == f.protocol
            && template.internal_port == f.internal_port
            && template.remote == f.remote;
        if !same_mapping {
            self.stats.dropped += 1;
            return;
        }
        if entry.schedule.is_none() {
            // No request on the wire: a mapping update, or a duplicate.
            self.handle_mapping_update(now, id, response, &f);
            return;
        }
        let phase = entry.phase;
        let success = response.result == ResultCode::Success;

        if phase == Phase::Deleting {
            if success && response.lifetime != 0 {
                if entry.sent_create {
                    // Most likely the late answer to the create or renewal
                    // sent with this nonce before the delete: keep waiting.
                    self.stats.dropped += 1;
                } else {
                    // Issue 10 item 9: the server says the mapping lives on.
                    let error = Error::BadResponse(format!(
                        "the server answered a delete with SUCCESS and a lifetime of {} s: the mapping was not deleted",
                        response.lifetime
                    ));
                    self.end_delete(id, Err(error), now);
                }
                return;
            }
            if self.observe_epoch(response.epoch, now) {
                self.renew_all_except(now, Some(id));
            }
            let result = match Error::from_result(response.result, response.lifetime) {
                None => Ok(()),
                Some(e) => Err(e),
            };
            self.end_delete(id, result, now);
            return;
        }

        if let Some(error) = Error::from_result(response.result, response.lifetime) {
            if self.observe_epoch(response.epoch, now) {
                self.renew_all_except(now, Some(id));
            }
            self.refused(now, id, &error, response.lifetime);
            match phase {
                Phase::Renewing => self.renewal_error(id, error, response.lifetime, now),
                _ => self.fail(id, error, now),
            }
            return;
        }

        // A SUCCESS that matches but cannot be used ends the request at once
        // (issue 10 item 9, issue 13 defect 1) instead of a timeout later.
        if let Some(reason) = unusable_grant(template, response.lifetime, &f) {
            let error = Error::BadResponse(reason);
            match phase {
                Phase::Renewing => self.renewal_error(id, error, 0, now),
                _ => self.fail(id, error, now),
            }
            return;
        }
        // Section 13.2: another port or address despite PREFER_FAILURE.
        if let Some(reason) = unwanted_grant(template, &f) {
            // A valid answer all the same: it may show a restart (section 8.5).
            if self.observe_epoch(response.epoch, now) {
                self.renew_all_except(now, Some(id));
            }
            self.drop_unwanted_grant(now, id, &f, Error::BadResponse(reason));
            return;
        }
        if self.observe_epoch(response.epoch, now) {
            self.renew_all_except(now, Some(id));
        }
        self.end_exchange(id, now);
        let info = self.record_grant(now, id, response, &f);
        let entry = self.entries.get_mut(&id).expect("present");
        match entry.kind {
            Kind::Probe(_) => {
                self.events.push_back(Event::ExternalAddress { id: RequestId(id), result: Ok(info.external_addr) });
                entry.phase = Phase::Deleting;
                self.start_exchange(id, now);
            }
            _ => {
                entry.phase = Phase::Granted;
                self.schedule_first_renewal(id, now, info.lifetime);
                self.events.push_back(if phase == Phase::Requesting {
                    Event::Granted(info)
                } else {
                    Event::Renewed(info)
                });
            }
        }
    }

    /// Stores what a SUCCESS granted as the entry's mapping, reporting a
    /// change of the server's external address.
    pub(super) fn record_grant(
        &mut self,
        now: Instant,
        id: u64,
        response: &Response,
        f: &MappingFields,
    ) -> MappingInfo {
        if let Some(old) = self.external_addr.replace(f.external_addr) {
            if old != f.external_addr {
                self.events.push_back(Event::ExternalAddressChanged { old, new: f.external_addr });
            }
        }
        let entry = self.entries.get_mut(&id).expect("present");
        let template = entry.template().expect("mapping");
        let info = MappingInfo {
            id: MappingId(id),
            opcode: template.opcode,
            protocol: template.protocol,
            internal_addr: template.internal_addr,
            internal_port: template.internal_port,
            external_addr: f.external_addr,
            external_port: f.external_port,
            remote: template.remote,
            lifetime: response.lifetime,
            epoch: response.epoch,
            nonce: f.nonce,
            granted_at: now,
            version: ProtocolVersion::Pcp,
        };
        entry.info = Some(info.clone());
        entry.last_error = None;
        info
    }
}
