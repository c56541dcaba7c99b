//! One request's exchange with the server: the entry table, the in-flight
//! limit, sending and retransmitting, and ending an exchange with an error
//! (section 8.1.1).

use std::cmp::Reverse;
use std::time::Instant;

use crate::wire::{Body, MapPayload, Opcode, PeerPayload, Request};
use crate::Error;

use super::entry::{Entry, Kind, Phase};
use super::natpmp::natpmp_policy;
use super::ProtocolVersion;
use super::{
    Engine, Event, MappingId, MappingInfo, RequestId, RetransmitPolicy, RetransmitSchedule, RetransmitStep, Transmit,
};

impl Engine {
    pub(super) fn insert(&mut self, now: Instant, kind: Kind, phase: Phase) -> u64 {
        let natpmp = self.version_for_new_request(now) == ProtocolVersion::NatPmp;
        let id = self.insert_as(now, kind, phase, natpmp);
        if natpmp && self.entries.get(&id).is_some_and(|e| matches!(e.kind, Kind::Mapping(_))) {
            self.ensure_natpmp_addr(now);
        }
        id
    }

    /// Inserts an entry whose exchanges are NAT-PMP (`natpmp`) or PCP.
    pub(super) fn insert_as(&mut self, now: Instant, kind: Kind, phase: Phase, natpmp: bool) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        if let Some(t) = match &kind {
            Kind::Mapping(t) | Kind::Probe(t) | Kind::Unwanted(t) => Some(t),
            Kind::Announce(_) | Kind::AddressQuery(_) => None,
        } {
            self.by_nonce.insert(t.nonce, id);
        }
        if let Kind::Mapping(t) = &kind {
            if t.opcode == Opcode::Map && t.internal_addr == self.config.client_addr && phase != Phase::Deleting {
                self.by_port.insert((t.protocol, t.internal_port), id);
            }
        }
        if matches!(kind, Kind::Mapping(_)) && phase != Phase::Deleting {
            self.live_mappings += 1;
        }
        self.entries.insert(
            id,
            Box::new(Entry {
                kind,
                phase,
                info: None,
                schedule: None,
                queued: false,
                timer: None,
                last_error: None,
                natpmp,
                natpmp_grant: None,
                deadline: None,
                unmatched_error: None,
                renewal_base: None,
                sent_create: false,
            }),
        );
        self.start_exchange(id, now);
        id
    }

    pub(super) fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.entries.remove(&id)?;
        if matches!(entry.kind, Kind::Mapping(_)) && entry.phase != Phase::Deleting {
            self.live_mappings -= 1;
        }
        if let Some(t) = entry.template() {
            self.by_nonce.remove(&t.nonce);
            let key = (t.protocol, t.internal_port);
            if self.by_port.get(&key) == Some(&id) {
                self.by_port.remove(&key);
            }
        }
        Some(*entry)
    }

    pub(super) fn set_timer(&mut self, id: u64, at: Instant) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.timer = Some(at);
            self.timers.push(Reverse((at, id)));
        }
    }

    /// Puts the entry's request on the wire, or in the queue when too many
    /// are in flight.
    pub(super) fn start_exchange(&mut self, id: u64, now: Instant) {
        if self.in_flight >= self.config.max_in_flight.max(1) {
            if let Some(e) = self.entries.get_mut(&id) {
                e.queued = true;
                e.timer = None;
                self.send_queue.push_back(id);
            }
            return;
        }
        let Some(entry) = self.entries.get(&id) else { return };
        let policy = match (&entry.kind, entry.phase) {
            (Kind::Announce(p) | Kind::AddressQuery(p), _) => *p,
            // A renewal keeps trying for as long as the mapping lasts.
            (_, Phase::Renewing) => {
                let expiry = entry.info.as_ref().map_or(now, MappingInfo::expires_at);
                RetransmitPolicy {
                    max_retransmissions: None,
                    max_duration: Some(expiry.saturating_duration_since(now)),
                    ..self.config.retransmit
                }
            }
            (Kind::Mapping(t) | Kind::Probe(t) | Kind::Unwanted(t), _) => t.retransmit,
        };
        let mut policy = if entry.natpmp { natpmp_policy(policy, entry.phase == Phase::Renewing) } else { policy };
        if let Some(at) = entry.deadline {
            let left = at.saturating_duration_since(now);
            policy.max_duration = Some(policy.max_duration.map_or(left, |d| d.min(left)));
        }
        let renewing = entry.phase == Phase::Renewing && !entry.natpmp;
        let schedule = RetransmitSchedule::start(policy, now, &mut self.rng);
        let entry = self.entries.get_mut(&id).expect("checked above");
        entry.queued = false;
        entry.deadline = None;
        entry.unmatched_error = None;
        let mut next = schedule.next_timeout();
        entry.schedule = Some(schedule);
        if renewing {
            // A renewal is one packet per point of the section 11.2.1
            // schedule, not the 8.1.1 retransmissions of a first request.
            next = self.next_renewal_send(id, now);
        }
        self.in_flight += 1;
        self.transmit(id);
        self.set_timer(id, next);
    }

    /// Takes the entry's request off the wire (or out of the queue) and lets
    /// a queued one go.
    pub(super) fn end_exchange(&mut self, id: u64, now: Instant) {
        if self.end_exchange_quiet(id) {
            self.pump(now);
        }
    }

    pub(super) fn end_exchange_quiet(&mut self, id: u64) -> bool {
        let Some(e) = self.entries.get_mut(&id) else { return false };
        e.queued = false; // its queue slot is skipped lazily
        e.timer = None;
        if e.schedule.take().is_some() {
            self.in_flight -= 1;
            true
        } else {
            false
        }
    }

    pub(super) fn pump(&mut self, now: Instant) {
        while self.in_flight < self.config.max_in_flight.max(1) {
            let Some(id) = self.send_queue.pop_front() else { break };
            if self.entries.get(&id).is_some_and(|e| e.queued) {
                self.start_exchange(id, now);
            }
        }
    }

    pub(super) fn transmit(&mut self, id: u64) {
        let Some(entry) = self.entries.get(&id) else { return };
        if entry.natpmp {
            self.transmit_natpmp(id);
            return;
        }
        let request = match &entry.kind {
            Kind::Announce(_) | Kind::AddressQuery(_) => Request::announce(self.config.client_addr),
            Kind::Mapping(t) | Kind::Probe(t) | Kind::Unwanted(t) => {
                let lifetime = if entry.phase == Phase::Deleting { 0 } else { t.lifetime };
                // Renewals and deletes suggest what was assigned (section 11.2.1).
                let (ext_port, ext_addr) = match &entry.info {
                    Some(i) => (i.external_port, i.external_addr),
                    None => (t.suggested_port, t.suggested_addr),
                };
                let body = match t.remote {
                    None => Body::Map(MapPayload {
                        nonce: t.nonce,
                        protocol: t.protocol,
                        internal_port: t.internal_port,
                        external_port: ext_port,
                        external_addr: ext_addr,
                    }),
                    Some((remote_addr, remote_port)) => Body::Peer(PeerPayload {
                        nonce: t.nonce,
                        protocol: t.protocol,
                        internal_port: t.internal_port,
                        external_port: ext_port,
                        external_addr: ext_addr,
                        remote_port,
                        remote_addr,
                    }),
                };
                Request { lifetime, client_addr: self.config.client_addr, body, options: t.options.clone() }
            }
        };
        if request.lifetime > 0 && request.body != Body::Announce {
            if let Some(e) = self.entries.get_mut(&id) {
                e.sent_create = true;
            }
        }
        self.stats.sent += 1;
        self.transmits.push_back(Transmit { destination: self.config.server, payload: request.encode() });
    }

    pub(super) fn on_timer(&mut self, id: u64, now: Instant) {
        let Some(entry) = self.entries.get_mut(&id) else { return };
        match entry.phase {
            Phase::Granted | Phase::RetryWait => {
                let expired = entry.info.as_ref().is_some_and(|i| i.expires_at() <= now);
                if expired {
                    let error = entry.last_error.clone().unwrap_or(Error::Timeout);
                    self.lose(id, error, now);
                } else {
                    entry.phase = Phase::Renewing;
                    self.start_exchange(id, now);
                }
            }
            _ if entry.schedule.is_none() => {}
            _ if entry.unmatched_error.is_some() => {
                // The grace of a header-only error ran out with no matched
                // answer: now it is this request's answer (issue 13).
                let (error, retry_after) = entry.unmatched_error.take().expect("checked");
                if entry.phase == Phase::Renewing {
                    self.renewal_error(id, error, retry_after, now);
                } else {
                    self.fail(id, error, now);
                }
            }
            Phase::Renewing if !entry.natpmp => self.on_renewal_timer(id, now),
            _ => {
                let Some(schedule) = entry.schedule.as_mut() else { return };
                match schedule.on_timeout(now, &mut self.rng) {
                    RetransmitStep::Resend(next) => {
                        self.stats.retransmitted += 1;
                        self.transmit(id);
                        self.set_timer(id, next);
                    }
                    RetransmitStep::GiveUp => {
                        let error = entry.last_error.clone().unwrap_or(Error::Timeout);
                        self.fail(id, error, now);
                    }
                }
            }
        }
    }

    /// Ends an entry's exchange with an error, reporting it as fits its phase.
    pub(super) fn fail(&mut self, id: u64, error: Error, now: Instant) {
        let Some(entry) = self.entries.get(&id) else { return };
        match (entry.phase, &entry.kind) {
            (Phase::Renewing, _) => self.lose(id, error, now),
            (Phase::Requesting, Kind::Mapping(_)) => {
                self.end_exchange(id, now);
                self.remove(id);
                self.events.push_back(Event::Failed { id: MappingId(id), error });
            }
            (Phase::Requesting, Kind::Probe(_)) => {
                self.end_exchange(id, now);
                self.remove(id);
                self.events.push_back(Event::ExternalAddress { id: RequestId(id), result: Err(error) });
            }
            (Phase::Deleting, _) => self.end_delete(id, Err(error), now),
            (_, Kind::AddressQuery(_)) => {
                self.end_exchange(id, now);
                self.remove(id);
                self.fail_stashed_grants(error, now);
            }
            (Phase::Announcing, _) => {
                self.end_exchange(id, now);
                self.remove(id);
                self.events.push_back(Event::Announced { id: RequestId(id), result: Err(error) });
            }
            // (An unwanted grant is only ever Deleting.)
            (Phase::Granted | Phase::RetryWait, _) | (Phase::Requesting, Kind::Announce(_) | Kind::Unwanted(_)) => {}
        }
    }

    pub(super) fn lose(&mut self, id: u64, error: Error, now: Instant) {
        self.end_exchange(id, now);
        if let Some(entry) = self.remove(id) {
            if matches!(entry.kind, Kind::Mapping(_)) {
                self.events.push_back(Event::Lost { id: MappingId(id), error });
            }
        }
    }

    /// Fails outstanding first requests, deletes and ANNOUNCEs (of `opcode`,
    /// or all); renewals wait `retry_after` seconds (at least the IRT).
    pub(super) fn fail_outstanding(&mut self, now: Instant, opcode: Option<Opcode>, error: Error, retry_after: u32) {
        let mut ids: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, e)| e.outstanding())
            .filter(|(_, e)| {
                let op = e.template().map_or(Opcode::Announce, |t| t.opcode);
                opcode.is_none_or(|o| o == op)
            })
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        for id in ids {
            if self.entries.get(&id).is_some_and(|e| e.phase == Phase::Renewing) {
                if error != Error::ServerUnreachable {
                    self.renewal_error(id, error.clone(), retry_after, now);
                }
            } else {
                self.fail(id, error.clone(), now);
            }
        }
    }
}
