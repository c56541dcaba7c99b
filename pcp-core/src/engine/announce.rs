//! ANNOUNCE answers: solicited ones end an ANNOUNCE request, unsolicited
//! ones (a rebooted server, section 14.1.3) renew everything after a random
//! delay.

use std::time::{Duration, Instant};

use rand::Rng;

use crate::wire::Response;
use crate::Error;

use super::entry::Phase;
use super::{Engine, Event, RequestId};

/// At most one unsolicited ANNOUNCE is acted on in this long (issue 10
/// item 11): enough to cover a rebooting server's repeats and a spoofer's
/// flood, short next to any mapping lifetime.
pub const ANNOUNCE_HOLDOFF: Duration = Duration::from_secs(10);

impl Engine {
    pub(super) fn handle_announce(&mut self, now: Instant, response: &Response) {
        let mut waiting: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, e)| e.phase == Phase::Announcing && e.schedule.is_some())
            .map(|(id, _)| *id)
            .collect();
        waiting.sort_unstable();
        if let Some(error) = Error::from_result_code(response.result) {
            if waiting.is_empty() {
                self.stats.dropped += 1;
            }
            for id in waiting {
                self.fail(id, error.clone(), now);
            }
            return;
        }
        if waiting.is_empty() {
            // Unsolicited (section 14.1.3). It came from the server's address
            // and port (checked for every datagram), but anyone on the path
            // can send one, and a rebooting server repeats it: take at most
            // one per ANNOUNCE_HOLDOFF, so repeats cost one renewal pass.
            if self.last_announce.is_some_and(|t| now < t + ANNOUNCE_HOLDOFF) {
                self.stats.dropped += 1;
                return;
            }
            self.last_announce = Some(now);
            self.observe_epoch(response.epoch, now);
            // Renew everything after a random delay (0-5 s), so that a
            // rebooted server's clients do not all answer at once.
            let max = self.config.announce_delay_max;
            let delay = if max.is_zero() { Duration::ZERO } else { max.mul_f64(self.rng.random_range(0.0..=1.0)) };
            let at = now + delay;
            self.renew_all_at = Some(self.renew_all_at.map_or(at, |t| t.min(at)));
            return;
        }
        let restarted = self.observe_epoch(response.epoch, now);
        for id in waiting {
            self.end_exchange(id, now);
            self.remove(id);
            self.events.push_back(Event::Announced { id: RequestId(id), result: Ok(response.epoch) });
        }
        if restarted {
            self.renew_all(now);
        }
    }
}
