//! Our own address changed (DHCP renumbering, an IPv6 address going away).
//!
//! The Client IP field must be the address the request really leaves from
//! (RFC 6887 section 8.1), and a MAP's internal address is that address
//! (section 11.1): after a change every renewal would carry a stale
//! address and be refused (ADDRESS_MISMATCH) or renew a mapping to an
//! address we no longer have. So the mappings of this host are recreated
//! from the new address at once, as after a server restart (section 8.5),
//! and [`Event::InternalAddressChanged`] reports it. Third-party mappings
//! keep their internal address.

use std::cmp::Reverse;
use std::net::IpAddr;
use std::time::Instant;

use super::entry::{Kind, Phase};
use super::{Engine, Event};
use crate::wire::canonical;

impl Engine {
    /// Tells the engine that our address towards the server is now `new`.
    /// Returns whether it changed; if so, every mapping of this host is
    /// recreated from `new` and [`Event::InternalAddressChanged`] is
    /// queued. The caller (the client driver) notices the change from the
    /// socket's source address or a send error.
    pub fn set_client_addr(&mut self, now: Instant, new: IpAddr) -> bool {
        let old = self.config.client_addr;
        if canonical(old) == canonical(new) {
            return false;
        }
        self.config.client_addr = new;
        let mut ids: Vec<u64> = Vec::new();
        for (id, entry) in self.entries.iter_mut() {
            let Kind::Mapping(t) = &mut entry.kind else { continue };
            if canonical(t.internal_addr) != canonical(old) {
                continue; // a third party's mapping: its address stands
            }
            t.internal_addr = new;
            if let Some(info) = entry.info.as_mut() {
                info.internal_addr = new;
            }
            if matches!(entry.phase, Phase::Granted | Phase::RetryWait | Phase::Renewing) {
                ids.push(*id);
            }
        }
        ids.sort_unstable();
        self.events.push_back(Event::InternalAddressChanged { old, new });
        for id in ids {
            // Whatever was on the wire named the old address: start again.
            self.end_exchange(id, now);
            if let Some(e) = self.entries.get_mut(&id) {
                e.phase = Phase::Renewing;
                e.renewal_base = None;
                e.last_error = None;
            }
            self.start_exchange(id, now);
        }
        true
    }

    /// The client's socket now has local port `port` (moving it to another
    /// address gave it a new one): the external-address probe maps it.
    pub(crate) fn set_probe_port(&mut self, port: u16) {
        self.config.probe_port = port;
    }

    /// Whether [`Engine::handle_timeout`] at `now` would renew a mapping
    /// (a renewal, a retry of one, or a renewal pass): the moment for the
    /// client to check that its own address is still the one it names
    /// (section 11.5), so that the renewal does not carry a stale one.
    /// Cheap unless a timer is due: then it looks at the due ones.
    pub fn renewal_due(&mut self, now: Instant) -> bool {
        if self.poll_timeout().is_none_or(|t| t > now) {
            return false;
        }
        if self.renew_all_at.is_some_and(|t| t <= now) {
            return true;
        }
        self.timers.iter().any(|Reverse((t, id))| {
            *t <= now
                && self.entries.get(id).is_some_and(|e| {
                    e.timer == Some(*t)
                        && matches!(e.kind, Kind::Mapping(_))
                        && matches!(e.phase, Phase::Granted | Phase::RetryWait | Phase::Renewing)
                })
        })
    }
}
