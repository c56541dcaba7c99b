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

    /// Checks a response's epoch received at `now`, then remembers it.
    pub fn observe(&mut self, server_time: u32, now: Instant) -> EpochCheck {
        let check = match self.previous {
            None => EpochCheck::Valid,
            Some((prev_server, prev_client)) => {
                if u64::from(server_time) + 2 < u64::from(prev_server) {
                    EpochCheck::Restarted
                } else {
                    // Whole seconds on both sides; the slack of 2 s plus 1/16
                    // absorbs rounding and clock drift, as the RFC intends.
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
