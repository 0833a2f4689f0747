//! The one retry policy of the engine: waits that double from a first delay up to a cap.
//! The signaling session reconnects with it, the call rebuilds failed media links with it.

use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The wait before the first retry.
    pub first: Duration,
    /// No wait is longer.
    pub max: Duration,
}

impl Backoff {
    pub const fn new(first: Duration, max: Duration) -> Self {
        Self { first, max }
    }

    /// The wait before retry number `attempt` (1 is the first retry; 0 waits nothing).
    pub fn delay(&self, attempt: u32) -> Duration {
        if attempt == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(attempt - 1).unwrap_or(u32::MAX);
        self.first.saturating_mul(factor).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_never_overflows() {
        let b = Backoff::new(Duration::from_millis(500), Duration::from_secs(4));
        let waits: Vec<u64> = (0..8).map(|a| b.delay(a).as_millis() as u64).collect();
        assert_eq!(waits, [0, 500, 1000, 2000, 4000, 4000, 4000, 4000]);
        assert_eq!(b.delay(31), Duration::from_secs(4));
        assert_eq!(b.delay(32), Duration::from_secs(4));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(4));
    }
}
