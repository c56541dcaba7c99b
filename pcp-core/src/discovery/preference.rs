//! Which answer discovery takes: the RFC 7723 anycast addresses are the
//! last resort (RFC 7723 section 2, after RFC 6887 section 8.1's default
//! router).
//!
//! Discovery probes every candidate at once, so that a dead gateway costs
//! nothing. A default gateway's answer (or an injected or configured
//! candidate's) is taken as soon as it comes. An anycast address's answer
//! is held instead: while any other candidate is still being probed, it
//! waits for `grace` (the first retransmission timeout), so that a gateway
//! that answers a moment later wins; it is taken at once when no other
//! candidate is left. On the same LAN both answer within microseconds of
//! each other, and "first answer wins" picked the anycast address in 35 of
//! 200 runs in the interop namespaces.

use std::time::{Duration, Instant};

/// The answer discovery will give, held until it may be taken.
#[derive(Debug)]
pub(crate) struct Preference<T> {
    held: Option<(T, Instant)>,
    grace: Duration,
}

impl<T> Preference<T> {
    pub(crate) fn new(grace: Duration) -> Self {
        Preference { held: None, grace }
    }

    /// A candidate answered: `Some` to take this answer now, `None` when it
    /// is an anycast answer to hold (the first one held stays).
    pub(crate) fn answered(&mut self, answer: T, anycast: bool, now: Instant) -> Option<T> {
        if !anycast {
            return Some(answer);
        }
        if self.held.is_none() {
            self.held = Some((answer, now + self.grace));
        }
        None
    }

    /// After a pass over the probes: the held answer, once no other
    /// candidate is pending or its grace is over.
    pub(crate) fn settle(&mut self, others_pending: bool, now: Instant) -> Option<T> {
        match &self.held {
            Some((_, until)) if !others_pending || now >= *until => self.take(),
            _ => None,
        }
    }

    /// When the held answer is taken at the latest (a wake-up for the poll).
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.held.as_ref().map(|(_, until)| *until)
    }

    /// The held answer, if any (every probe is settled).
    pub(crate) fn take(&mut self) -> Option<T> {
        self.held.take().map(|(answer, _)| answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_millis(250);

    #[test]
    fn a_gateway_answer_is_taken_at_once() {
        let t = Instant::now();
        let mut p = Preference::new(GRACE);
        assert_eq!(p.answered("gateway", false, t), Some("gateway"));
    }

    /// Both answer, the anycast address first: the gateway still wins.
    #[test]
    fn a_gateway_answer_within_the_grace_beats_an_earlier_anycast_one() {
        let t = Instant::now();
        let mut p = Preference::new(GRACE);
        assert_eq!(p.answered("anycast", true, t), None);
        assert_eq!(p.settle(true, t + Duration::from_millis(1)), None);
        assert_eq!(p.answered("gateway", false, t + Duration::from_millis(2)), Some("gateway"));
    }

    /// The gateway stays silent: the anycast answer is taken when the
    /// grace is over, not at the end of the discovery deadline.
    #[test]
    fn the_anycast_answer_is_taken_when_the_grace_ends() {
        let t = Instant::now();
        let mut p = Preference::new(GRACE);
        assert_eq!(p.answered("anycast v4", true, t), None);
        assert_eq!(p.deadline(), Some(t + GRACE));
        assert_eq!(p.settle(true, t + GRACE - Duration::from_millis(1)), None);
        assert_eq!(p.settle(true, t + GRACE), Some("anycast v4"));
        assert_eq!(p.take(), None);
    }

    /// The gateway failed (ICMP unreachable, an error answer): no wait.
    #[test]
    fn the_anycast_answer_is_taken_at_once_when_no_gateway_is_pending() {
        let t = Instant::now();
        let mut p = Preference::new(GRACE);
        assert_eq!(p.answered("anycast v6", true, t), None);
        assert_eq!(p.settle(false, t), Some("anycast v6"));
    }

    /// Two anycast answers: the first is kept.
    #[test]
    fn the_first_anycast_answer_is_kept() {
        let t = Instant::now();
        let mut p = Preference::new(GRACE);
        assert_eq!(p.answered("first", true, t), None);
        assert_eq!(p.answered("second", true, t + Duration::from_millis(1)), None);
        assert_eq!(p.take(), Some("first"));
    }
}
