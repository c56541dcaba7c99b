use std::time::{Duration, Instant};

use rand::Rng;

/// How a request is retransmitted (RFC 6887 section 8.1.1).
///
/// The RFC's defaults are IRT = 3 s and MRT = 1024 s, with no limit on the
/// count (MRC) or duration (MRD). An application cannot wait forever, so the
/// client sets a deadline ([`RetransmitPolicy::max_duration`]); both limits
/// can be set per request.
///
/// ```
/// use std::time::Duration;
/// use pcp_core::engine::RetransmitPolicy;
/// let p = RetransmitPolicy::rfc().with_deadline(Duration::from_secs(10)).with_max_retransmissions(3);
/// assert_eq!(p.initial, Duration::from_secs(3));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetransmitPolicy {
    /// IRT: the first retransmission timeout, before jitter.
    pub initial: Duration,
    /// MRT: the ceiling of the doubling.
    pub max: Duration,
    /// MRC, counted as retransmissions after the first send; `None` = unlimited.
    pub max_retransmissions: Option<u32>,
    /// MRD: give up this long after the first send; `None` = unlimited.
    pub max_duration: Option<Duration>,
    /// Randomise each timeout by +-10 % (PCP, section 8.1.1); NAT-PMP's
    /// schedule (RFC 6886 section 3.1) is exact.
    pub jitter: bool,
}

impl RetransmitPolicy {
    /// IRT 3 s, MRT 1024 s, no count or duration limit: the RFC as written.
    pub const fn rfc() -> Self {
        RetransmitPolicy {
            initial: Duration::from_secs(3),
            max: Duration::from_secs(1024),
            max_retransmissions: None,
            max_duration: None,
            jitter: true,
        }
    }

    /// Gives up `d` after the first send.
    pub fn with_deadline(mut self, d: Duration) -> Self {
        self.max_duration = Some(d);
        self
    }

    /// Gives up after `n` retransmissions.
    pub fn with_max_retransmissions(mut self, n: u32) -> Self {
        self.max_retransmissions = Some(n);
        self
    }

    pub fn with_initial(mut self, irt: Duration) -> Self {
        self.initial = irt;
        self
    }
}

impl Default for RetransmitPolicy {
    /// The RFC schedule with a 10-second deadline: a missing or silent server
    /// is reported after 10 s (sends at about 0, 3 and 9 s).
    fn default() -> Self {
        RetransmitPolicy::rfc().with_deadline(Duration::from_secs(10))
    }
}

/// The state of one request's retransmissions: when to send next and when to
/// give up.
#[derive(Debug, Clone)]
pub struct RetransmitSchedule {
    policy: RetransmitPolicy,
    started: Instant,
    sends: u32,
    rt: Duration,
    next: Instant,
}

/// What to do when a schedule's timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetransmitStep {
    /// Send the request again; the next timer is at the given instant.
    Resend(Instant),
    /// Give up: the count or the deadline is reached.
    GiveUp,
}

impl RetransmitSchedule {
    /// Starts a schedule whose first send happens at `now`.
    pub fn start(policy: RetransmitPolicy, now: Instant, rng: &mut impl Rng) -> Self {
        let rt = if policy.jitter { jitter(policy.initial, rng) } else { policy.initial };
        let mut s = RetransmitSchedule { policy, started: now, sends: 1, rt, next: now };
        s.next = s.clamp(now + rt);
        s
    }

    /// The instant of the next timer (a retransmission or the deadline).
    pub fn next_timeout(&self) -> Instant {
        self.next
    }

    /// How many times the request has been sent.
    pub fn sends(&self) -> u32 {
        self.sends
    }

    /// The instant the schedule gives up, if it has a deadline.
    pub fn deadline(&self) -> Option<Instant> {
        self.policy.max_duration.map(|d| self.started + d)
    }

    /// Called when the timer fires at `now`.
    pub fn on_timeout(&mut self, now: Instant, rng: &mut impl Rng) -> RetransmitStep {
        let out_of_time = self.deadline().is_some_and(|d| now >= d);
        let out_of_count = self.policy.max_retransmissions.is_some_and(|n| self.sends > n);
        if out_of_time || out_of_count {
            return RetransmitStep::GiveUp;
        }
        self.sends += 1;
        let doubled = (self.rt * 2).min(self.policy.max);
        self.rt = if self.policy.jitter { jitter(doubled, rng) } else { doubled };
        self.next = self.clamp(now + self.rt);
        RetransmitStep::Resend(self.next)
    }

    fn clamp(&self, t: Instant) -> Instant {
        match self.deadline() {
            Some(d) => t.min(d),
            None => t,
        }
    }
}

/// RT = (1 + RAND) * base, RAND uniform in [-0.1, +0.1].
fn jitter(base: Duration, rng: &mut impl Rng) -> Duration {
    base.mul_f64(1.0 + rng.random_range(-0.1..=0.1))
}
