//! Keeping granted mappings alive: when to renew and what a failed renewal
//! does (section 11.2.1).

use std::time::{Duration, Instant};

use crate::Error;

use super::entry::{Kind, Phase};
use super::{Engine, MappingInfo};

impl Engine {
    /// Renews every granted mapping now (what an unsolicited ANNOUNCE or a
    /// detected server restart triggers).
    pub fn renew_all(&mut self, now: Instant) {
        self.renew_all_except(now, None);
    }

    pub(super) fn renewal_error(&mut self, id: u64, error: Error, retry_after: u32, now: Instant) {
        self.end_exchange(id, now);
        let min_wait = self.config.retransmit.initial;
        let Some(entry) = self.entries.get_mut(&id) else { return };
        let expiry = entry.info.as_ref().map_or(now, MappingInfo::expires_at);
        let retry_at = (now + Duration::from_secs(u64::from(retry_after)).max(min_wait)).min(expiry);
        entry.last_error = Some(error);
        entry.phase = Phase::RetryWait;
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
            self.start_exchange(id, now);
        }
    }
}
