//! How a delete ends, and closing.
//!
//! A delete that succeeds ends its mapping. One that fails (no answer, the
//! server unreachable, a refusal) leaves the mapping as it was: the server
//! may well still hold it, and forgetting it would lose its nonce, so that
//! deleting the port again would send nothing and mapping it again would
//! carry a new nonce, which the server refuses (RFC 6887 section 11.3)
//! until the mapping's lifetime runs out. So the engine holds it again,
//! renews it, and a second delete goes out with its nonce. Not once the
//! engine is closing (see [`Engine::close`]), nor for a mapping that was
//! never granted or has expired: those go.

use std::time::Instant;

use crate::{Error, Result};

use super::entry::{Kind, Phase};
use super::{Engine, Event, MappingId};

impl Engine {
    /// Stops the engine's mappings for good: deletes each on the server
    /// (`delete`) or forgets it (left to expire there). A delete that fails
    /// from now on ends its mapping all the same. What a client does as it
    /// closes; the engine is idle once the deletes are answered or given up.
    pub fn close(&mut self, now: Instant, delete: bool) {
        self.closing = true;
        for id in self.mapping_ids() {
            if delete {
                let _ = self.delete(now, id);
            } else {
                self.forget(now, id);
            }
        }
    }

    /// Ends the delete of entry `id` with `result`, reporting it if the
    /// entry is a mapping (not a probe's clean-up or an unwanted grant's).
    pub(super) fn end_delete(&mut self, id: u64, result: Result<()>, now: Instant) {
        let Some(entry) = self.entries.get(&id) else { return };
        let report = matches!(entry.kind, Kind::Mapping(_));
        self.end_exchange(id, now);
        let held_again = match &result {
            Err(error) if report => self.hold_again(id, error, now),
            _ => false,
        };
        if !held_again {
            self.remove(id);
        }
        if report {
            self.events.push_back(Event::Deleted { id: MappingId(id), result });
        }
    }

    /// After a failed delete: holds the mapping again, as granted, if it can
    /// be (see the module docs). Returns whether it did.
    fn hold_again(&mut self, id: u64, error: &Error, now: Instant) -> bool {
        if self.closing {
            return false;
        }
        let own_map_key = |e: &super::entry::Entry| match &e.kind {
            Kind::Mapping(t) if t.opcode == crate::wire::Opcode::Map && t.internal_addr == self.config.client_addr => {
                Some((t.protocol, t.internal_port))
            }
            _ => None,
        };
        let Some(entry) = self.entries.get(&id) else { return false };
        let Some(expiry) = entry.info.as_ref().map(|i| i.expires_at()).filter(|e| *e > now) else { return false };
        let key = own_map_key(entry);
        if let Some(key) = key {
            // A new mapping of the port made meanwhile is the one held now.
            if self.by_port.get(&key).is_some_and(|other| *other != id) {
                return false;
            }
            self.by_port.insert(key, id);
        }
        let entry = self.entries.get_mut(&id).expect("present");
        entry.phase = Phase::Granted;
        entry.last_error = Some(error.clone());
        entry.renewal_base = None;
        self.live_mappings += 1;
        // Renewed soon: if the server did delete it (only its answer lost),
        // the renewal, with the same nonce, makes it again.
        let renew_at = (now + self.config.min_renewal_interval).min(expiry);
        self.set_timer(id, renew_at);
        true
    }
}
