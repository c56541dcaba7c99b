//! Unsolicited MAP and PEER responses: the server telling us a mapping
//! changed, for example its external address (RFC 6887 section 14.2).

use std::time::Instant;

use crate::wire::{MappingFields, Response, ResultCode};

use super::entry::{Kind, Phase};
use super::validate::{unusable_grant, unwanted_grant};
use super::{Engine, Event};
use crate::Error;

impl Engine {
    /// A MAP or PEER response that matches a live mapping by nonce, opcode,
    /// protocol, internal port (and peer), from the server, while no request
    /// for it is on the wire. Section 14.2: the server sends one when a
    /// mapping changes; take the new external address, port and lifetime
    /// and report [`Event::Updated`]. A repeat of what we hold is a
    /// duplicate and is dropped, as is anything unusable.
    pub(super) fn handle_mapping_update(&mut self, now: Instant, id: u64, response: &Response, f: &MappingFields) {
        let entry = &self.entries[&id];
        let live = matches!(entry.kind, Kind::Mapping(_)) && matches!(entry.phase, Phase::Granted | Phase::RetryWait);
        let template = entry.template().expect("nonce index holds only mappings");
        let usable = response.result == ResultCode::Success && unusable_grant(template, response.lifetime, f).is_none();
        let changed = entry
            .info
            .as_ref()
            .is_some_and(|i| (i.external_addr, i.external_port) != (f.external_addr, f.external_port));
        if !(live && usable && changed) {
            self.stats.dropped += 1;
            return;
        }
        // Section 13.2: the server moved a PREFER_FAILURE mapping off the
        // port (or address) it insisted on: that mapping is gone.
        if let Some(reason) = unwanted_grant(template, f) {
            // A valid answer all the same: it may show a restart (section 8.5).
            if self.observe_epoch(response.epoch, now) {
                self.renew_all_except(now, Some(id));
            }
            self.drop_unwanted_grant(now, id, f, Error::BadResponse(reason));
            return;
        }
        if self.observe_epoch(response.epoch, now) {
            self.renew_all_except(now, Some(id));
        }
        let info = self.record_grant(now, id, response, f);
        let entry = self.entries.get_mut(&id).expect("present");
        entry.phase = Phase::Granted;
        entry.timer = None;
        self.schedule_first_renewal(id, now, info.lifetime);
        self.events.push_back(Event::Updated(info));
    }
}
