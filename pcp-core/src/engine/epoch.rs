use std::time::Instant;

/// Tracks a server's epoch against our own clock (RFC 6887 section 8.5) to
/// notice when the server lost its state (a reboot, a failover).
///
/// ```
/// use std::time::{Duration, Instant};
/// use pcp_core::engine::{Epoch, EpochCheck};
/// let t0 = Instant::now();
/// let mut e = Epoch::default();
/// assert_eq!(e.observe(1000, t0), EpochCheck::Valid);
/// assert_eq!(e.observe(1060, t0 + Duration::from_secs(60)), EpochCheck::Valid);
/// // The server's clock went backwards: it restarted.
/// assert_eq!(e.observe(5, t0 + Duration::from_secs(70)), EpochCheck::Restarted);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Epoch {
    previous: Option<(u32, Instant)>,
}

/// The verdict on one observed epoch value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochCheck {
    Valid,
    /// The server lost its state: every mapping must be recreated.
    Restarted,
}

impl Epoch {
    /// The last epoch value the server sent.
    pub fn server_epoch(&self) -> Option<u32> {
        self.previous.map(|(e, _)| e)
    }

    /// The NAT-PMP check (RFC 6886 section 3.6), then remembers the value:
    /// the gateway lost its state if its epoch is below the previous one
    /// plus 7/8 of the time that passed on our clock, minus 2 seconds.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use pcp_core::engine::{Epoch, EpochCheck};
    /// let t0 = Instant::now();
    /// let mut e = Epoch::default();
    /// assert_eq!(e.observe_natpmp(1000, t0), EpochCheck::Valid);
    /// // 100 s passed for us, only 80 for the gateway: under 7/8 - 2 s.
    /// assert_eq!(e.observe_natpmp(1080, t0 + Duration::from_secs(100)), EpochCheck::Restarted);
    /// ```
    pub fn observe_natpmp(&mut self, server_time: u32, now: Instant) -> EpochCheck {
        let check = match self.previous {
            Some((prev_server, prev_client)) => {
                let client_delta = now.saturating_duration_since(prev_client).as_secs();
                let expected = u64::from(prev_server) + client_delta * 7 / 8;
                if u64::from(server_time) + 2 < expected {
                    EpochCheck::Restarted
                } else {
                    EpochCheck::Valid
                }
            }
            None => EpochCheck::Valid,
        };
        self.previous = Some((server_time, now));
        check
    }

    /// Checks a response's epoch received at `now`, then remembers it.
    pub fn observe(&mut self, server_time: u32, now: Instant) -> EpochCheck {
        let check = match self.previous {
            None => EpochCheck::Valid,
            Some((prev_server, prev_client)) => {
                // Section 8.5: a server epoch less than the previous one by
                // more than one second is invalid: the server lost state.
                if u64::from(server_time) + 1 < u64::from(prev_server) {
                    EpochCheck::Restarted
                } else {
                    // Section 8.5's test, in whole seconds on both sides: the
                    // slack of 2 s plus 1/16 absorbs rounding and clock drift.
                    let client_delta = now.saturating_duration_since(prev_client).as_secs();
                    let server_delta = u64::from(server_time.saturating_sub(prev_server));
                    if client_delta + 2 < server_delta - server_delta / 16
                        || server_delta + 2 < client_delta - client_delta / 16
                    {
                        EpochCheck::Restarted
                    } else {
                        EpochCheck::Valid
                    }
                }
            }
        };
        self.previous = Some((server_time, now));
        check
    }
}
