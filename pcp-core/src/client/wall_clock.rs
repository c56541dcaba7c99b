//! Mapping times as wall-clock time, for the shells that show dates.
//!
//! The engine counts in `Instant`s (it has no clock of its own). A shell
//! that shows when a mapping was granted or expires converts them here,
//! against one anchor taken once per process, so that the same instant is
//! always the same date: reading a mapping twice gives the same times.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime};

/// The wall-clock time of `t`.
pub fn system_time(t: Instant) -> SystemTime {
    static ANCHOR: OnceLock<(Instant, SystemTime)> = OnceLock::new();
    let (at, wall) = *ANCHOR.get_or_init(|| (Instant::now(), SystemTime::now()));
    if t >= at {
        wall + (t - at)
    } else {
        wall - (at - t)
    }
}

/// Milliseconds since the Unix epoch of `t` (what JavaScript's `Date` takes).
pub fn unix_millis(t: Instant) -> f64 {
    unix_ms(t) as f64
}

/// Milliseconds since the Unix epoch of `t`, as an integer (C's
/// `pcp_mapping_granted_at_ms`); negative before 1970.
pub fn unix_ms(t: Instant) -> i64 {
    let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    match system_time(t).duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => ms(d),
        Err(e) => -ms(e.duration()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_same_instant_is_the_same_date() {
        let t = Instant::now();
        assert_eq!(unix_millis(t), unix_millis(t));
        assert_eq!(unix_ms(t + Duration::from_secs(3600)) - unix_ms(t), 3_600_000);
        assert_eq!(system_time(t + Duration::from_secs(60)), system_time(t) + Duration::from_secs(60));
    }
}
