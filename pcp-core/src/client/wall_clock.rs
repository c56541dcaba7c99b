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
    match system_time(t).duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as f64,
        Err(e) => -(e.duration().as_millis() as f64),
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
        assert_eq!(system_time(t + Duration::from_secs(60)), system_time(t) + Duration::from_secs(60));
    }
}
