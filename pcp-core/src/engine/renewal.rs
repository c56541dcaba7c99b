//! Keeping granted mappings alive: when to renew and what a failed renewal
//! does (RFC 6887 section 11.2.1).
//!
//! The first renewal goes at a random point between 1/2 and 5/8 of the
//! granted lifetime. Without a SUCCESS, the next goes between 3/4 and
//! 3/4 + 1/16, then between 7/8 and 7/8 + 1/32, and so on: each attempt
//! halves the time left before expiry, with a random part of an eighth of
//! it, and renewal requests are never less than four seconds apart. A
//! renewal is a single packet per attempt, not the retransmission schedule
//! of section 8.1.1.

use std::time::{Duration, Instant};

use rand::Rng;

use crate::Error;

use super::entry::{Kind, Phase};
use super::{Engine, MappingInfo};

/// Section 11.2.1: "renewal requests MUST NOT be sent less than four seconds apart".
pub const MIN_RENEWAL_INTERVAL: Duration = Duration::from_secs(4);

impl Engine {
    /// Renews every granted mapping now (what an unsolicited ANNOUNCE or a
    /// detected server restart triggers).
    pub fn renew_all(&mut self, now: Instant) {
        self.renew_all_except(now, None);
    }

    /// Schedules the first renewal of a mapping granted (or renewed) at `now`
    /// for `lifetime` seconds: a random point between 1/2 and 5/8 of it.
    pub(super) fn schedule_first_renewal(&mut self, id: u64, now: Instant, lifetime: u32) {
        let lifetime = Duration::from_secs(u64::from(lifetime));
        let renew_in = lifetime.mul_f64(self.rng.random_range(0.5..=0.625));
        if let Some(e) = self.entries.get_mut(&id) {
            // The nominal point of the first attempt is 1/2: the next ones
            // count from it, whatever the random part was.
            e.renewal_base = Some(now + lifetime / 2);
        }
        self.set_timer(id, now + renew_in);
    }

    /// After a renewal was sent at `now`: when the next attempt goes (or the
    /// expiry, when no attempt fits before it).
    pub(super) fn next_renewal_send(&mut self, id: u64, now: Instant) -> Instant {
        let min_interval = self.config.min_renewal_interval;
        let retry_interval = self.config.renewal_retry_interval;
        let Some(entry) = self.entries.get_mut(&id) else { return now };
        let expiry = entry.info.as_ref().map_or(now, MappingInfo::expires_at);
        if let Some(every) = retry_interval {
            return (now + every).min(expiry); // test-only, see EngineConfig
        }
        // A pass started off the schedule (restart, ANNOUNCE, new address)
        // counts from its own send.
        let base = entry.renewal_base.filter(|b| *b <= now).unwrap_or(now);
        let left = expiry.saturating_duration_since(base);
        let nominal = base + left / 2;
        entry.renewal_base = Some(nominal);
        let jitter = (left / 8).mul_f64(self.rng.random_range(0.0..=1.0));
        (nominal + jitter).max(now + min_interval).min(expiry)
    }

    /// A renewal's timer: the next attempt, or the loss at expiry.
    pub(super) fn on_renewal_timer(&mut self, id: u64, now: Instant) {
        let Some(entry) = self.entries.get(&id) else { return };
        if entry.info.as_ref().is_none_or(|i| i.expires_at() <= now) {
            let error = entry.last_error.clone().unwrap_or(Error::Timeout);
            self.lose(id, error, now);
            return;
        }
        self.stats.retransmitted += 1;
        self.transmit(id);
        let next = self.next_renewal_send(id, now);
        self.set_timer(id, next);
    }

    /// An error answered a renewal: try again after the error's lifetime
    /// (section 8.3), never sooner than the renewal spacing, and not after
    /// the expiry.
    pub(super) fn renewal_error(&mut self, id: u64, error: Error, retry_after: u32, now: Instant) {
        self.end_exchange(id, now);
        let min_wait = self.config.min_renewal_interval;
        let Some(entry) = self.entries.get_mut(&id) else { return };
        let expiry = entry.info.as_ref().map_or(now, MappingInfo::expires_at);
        let retry_at = (now + Duration::from_secs(u64::from(retry_after)).max(min_wait)).min(expiry);
        entry.last_error = Some(error);
        entry.phase = Phase::RetryWait;
        entry.renewal_base = None;
        self.set_timer(id, retry_at);
    }

    pub(super) fn renew_all_except(&mut self, now: Instant, except: Option<u64>) {
        let mut ids: Vec<u64> = self
            .entries
            .iter()
            .filter(|(id, e)| {
                Some(**id) != except
                    && matches!(e.kind, Kind::Mapping(_))
                    && matches!(e.phase, Phase::Granted | Phase::RetryWait)
            })
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        for id in ids {
            let e = self.entries.get_mut(&id).expect("listed");
            e.phase = Phase::Renewing;
            e.timer = None;
            e.renewal_base = None;
            self.start_exchange(id, now);
        }
    }
}
