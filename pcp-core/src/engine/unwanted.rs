//! A grant the request asked not to get (RFC 6887 section 13.2).
//!
//! With PREFER_FAILURE a server that cannot map the suggested external port
//! and address must answer CANNOT_PROVIDE_EXTERNAL. miniupnpd 2.3.1 instead
//! answers SUCCESS with another port when the suggested one is taken
//! (tests/interop/README.md, quirks). Such an answer matches the request,
//! so it ends it at once with BAD_RESPONSE, like every matched answer that
//! cannot be honoured; and since the server now holds a mapping nobody
//! wants, the engine deletes it on its own, quietly.

use std::time::Instant;

use crate::wire::{MappingFields, PcpOption};
use crate::Error;

use super::entry::{Kind, Phase};
use super::{Engine, Event, MappingId};

impl Engine {
    /// Ends mapping `id` with `error` (Failed for a first request, Lost for a
    /// held mapping: its renewal or an unsolicited update moved it) and
    /// deletes what the server granted, described by `f`: the same nonce,
    /// lifetime 0, and THIRD_PARTY if the request had it (section 13.1: it
    /// names the mapping), not the options that only shape a new mapping.
    /// The delete reports nothing; the id is no longer a mapping of ours.
    pub(super) fn drop_unwanted_grant(&mut self, now: Instant, id: u64, f: &MappingFields, error: Error) {
        self.end_exchange(id, now);
        let Some(entry) = self.entries.get_mut(&id) else { return };
        let Kind::Mapping(template) = &entry.kind else { return };
        let mut template = template.clone();
        template.options.retain(|o| matches!(o, PcpOption::ThirdParty(_)));
        // Deletes suggest what was assigned, as renewals do (section 11.2.1).
        template.suggested_port = f.external_port;
        template.suggested_addr = f.external_addr;
        let first_request = entry.phase == Phase::Requesting;
        debug_assert!(entry.phase != Phase::Deleting, "a delete's answer is handled before this");
        entry.kind = Kind::Unwanted(template);
        entry.info = None;
        entry.phase = Phase::Deleting;
        entry.last_error = None;
        entry.renewal_base = None;
        // It counted as a live mapping until now (Mapping, not Deleting);
        // `remove` will not count an Unwanted entry down.
        self.live_mappings -= 1;
        let id_ = MappingId(id);
        self.events.push_back(if first_request {
            Event::Failed { id: id_, error }
        } else {
            Event::Lost { id: id_, error }
        });
        self.start_exchange(id, now);
    }
}
