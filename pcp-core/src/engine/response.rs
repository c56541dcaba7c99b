//! Responses to MAP and PEER: matching them to a request (section 8.3),
//! the epoch check (section 8.5), and what an answer does to its mapping.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::wire::{Body, Opcode, Response, ResultCode};
use crate::Error;

use super::addr::same_endpoint;
use super::entry::{Kind, Phase};
use super::{Engine, EpochCheck, Event, MappingId, MappingInfo, ProtocolVersion, RequestId};

impl Engine {
    /// Feeds a datagram received from `from` at `now`. Anything that is not a
    /// valid response to an outstanding request, nor a valid unsolicited
    /// ANNOUNCE from the server, is dropped.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.stats.received += 1;
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
                // An error answered with the header alone: it cannot be
                // matched by nonce, so it concerns every request of its opcode.
                None => {
                    let err = Error::from_result_code(response.result).expect("decoder allows no body only on error");
                    self.fail_outstanding(now, Some(response.opcode), err, response.lifetime);
                }
            },
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
        let (nonce, protocol, internal_port, ext_port, ext_addr, remote) =
            (f.nonce, f.protocol, f.internal_port, f.external_port, f.external_addr, f.remote);
        let Some(&id) = self.by_nonce.get(&nonce) else {
            self.stats.dropped += 1;
            return;
        };
        let entry = &self.entries[&id];
        let template = entry.template().expect("nonce index holds only mappings");
        let matches = entry.schedule.is_some()
            && template.opcode == response.opcode
            && template.protocol == protocol
            && template.internal_port == internal_port
            && template.remote == remote;
        if !matches {
            self.stats.dropped += 1;
            return;
        }
        let phase = entry.phase;
        let success = response.result == ResultCode::Success;
        // A success with a lifetime answers a create or renew; with 0, a delete.
        // A late answer to the other kind is not for the request on the wire.
        let is_delete_answer = response.lifetime == 0;
        if success && (phase == Phase::Deleting) != is_delete_answer {
            self.stats.dropped += 1;
            return;
        }
        if success && phase != Phase::Deleting && template.protocol.has_ports() && ext_port == 0 {
            self.stats.dropped += 1;
            return;
        }
        let restarted = self.observe_epoch(response.epoch, now);
        if restarted {
            self.renew_all_except(now, Some(id));
        }

        if phase == Phase::Deleting {
            let result = match Error::from_result_code(response.result) {
                None => Ok(()),
                Some(e) => Err(e),
            };
            let report = matches!(self.entries[&id].kind, Kind::Mapping(_));
            self.end_exchange(id, now);
            self.remove(id);
            if report {
                self.events.push_back(Event::Deleted { id: MappingId(id), result });
            }
            return;
        }

        if let Some(error) = Error::from_result_code(response.result) {
            match phase {
                Phase::Renewing => self.renewal_error(id, error, response.lifetime, now),
                _ => self.fail(id, error, now),
            }
            return;
        }

        self.end_exchange(id, now);
        if let Some(old) = self.external_addr.replace(ext_addr) {
            if old != ext_addr {
                self.events.push_back(Event::ExternalAddressChanged { old, new: ext_addr });
            }
        }
        let lifetime = response.lifetime;
        let renew_in = Duration::from_secs(u64::from(lifetime)).mul_f64(self.rng.random_range(0.5..=0.625));
        let entry = self.entries.get_mut(&id).expect("present");
        let template = entry.template().expect("mapping");
        let info = MappingInfo {
            id: MappingId(id),
            opcode: template.opcode,
            protocol: template.protocol,
            internal_addr: template.internal_addr,
            internal_port: template.internal_port,
            external_addr: ext_addr,
            external_port: ext_port,
            remote: template.remote,
            lifetime,
            epoch: response.epoch,
            nonce,
            granted_at: now,
            version: ProtocolVersion::Pcp,
        };
        entry.info = Some(info.clone());
        entry.last_error = None;
        match entry.kind {
            Kind::Probe(_) => {
                self.events.push_back(Event::ExternalAddress { id: RequestId(id), result: Ok(ext_addr) });
                entry.phase = Phase::Deleting;
                self.start_exchange(id, now);
            }
            _ => {
                entry.phase = Phase::Granted;
                self.set_timer(id, now + renew_in);
                self.events.push_back(if phase == Phase::Requesting {
                    Event::Granted(info)
                } else {
                    Event::Renewed(info)
                });
            }
        }
    }
}
