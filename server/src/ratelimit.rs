//! Keyed fixed-capacity rate limiting as a pure structure: time is passed in.
//!
//! A token bucket per key: `capacity` tokens, refilled continuously at `capacity` per
//! `window`. Written here rather than taken from `governor` so that the server's own
//! [`Clock`](crate::clock::Clock) drives it and tests can move time.

use std::collections::HashMap;
use std::sync::Mutex;

/// Keys kept before idle, full buckets are swept.
const SWEEP_AT_KEYS: usize = 10_000;

/// Many keys, one bucket each.
#[derive(Debug)]
pub struct RateLimiter {
    capacity: f64,
    window_ms: f64,
    buckets: HashMap<String, Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

impl RateLimiter {
    /// `capacity` events per `window_secs`, bursts up to `capacity`.
    pub fn new(capacity: u32, window_secs: u64) -> Self {
        Self {
            capacity: f64::from(capacity.max(1)),
            window_ms: (window_secs.max(1) * 1000) as f64,
            buckets: HashMap::new(),
        }
    }

    fn refilled(&self, key: &str, now_ms: i64) -> Bucket {
        match self.buckets.get(key) {
            Some(b) => {
                let elapsed = (now_ms - b.at_ms).max(0) as f64;
                let tokens =
                    (b.tokens + elapsed * self.capacity / self.window_ms).min(self.capacity);
                Bucket {
                    tokens,
                    at_ms: now_ms,
                }
            }
            None => Bucket {
                tokens: self.capacity,
                at_ms: now_ms,
            },
        }
    }

    fn wait_ms(&self, b: Bucket) -> u64 {
        ((1.0 - b.tokens) * self.window_ms / self.capacity)
            .ceil()
            .max(1.0) as u64
    }

    /// Takes one token for `key`, or says how many milliseconds until one is available.
    pub fn take(&mut self, key: &str, now_ms: i64) -> Result<(), u64> {
        let mut b = self.refilled(key, now_ms);
        if b.tokens < 1.0 {
            return Err(self.wait_ms(b));
        }
        b.tokens -= 1.0;
        // A known key is updated in place: no key copied or hashed twice for each message
        // a socket sends (the signaling benchmark's CPU per message, issue 18).
        if let Some(slot) = self.buckets.get_mut(key) {
            *slot = b;
            return Ok(());
        }
        self.sweep(now_ms);
        self.buckets.insert(key.to_string(), b);
        Ok(())
    }

    /// Checks without taking: `Err(wait)` when `key` is out of tokens.
    pub fn check(&self, key: &str, now_ms: i64) -> Result<(), u64> {
        let b = self.refilled(key, now_ms);
        if b.tokens < 1.0 {
            Err(self.wait_ms(b))
        } else {
            Ok(())
        }
    }

    /// Forgets `key` (e.g. failures after a success).
    pub fn reset(&mut self, key: &str) {
        self.buckets.remove(key);
    }

    /// Gives back one token taken for `key`: an attempt reserved before a slow check that
    /// turned out to be a success. Never above the capacity.
    pub fn refund(&mut self, key: &str, now_ms: i64) {
        if self.buckets.contains_key(key) {
            let mut b = self.refilled(key, now_ms);
            b.tokens = (b.tokens + 1.0).min(self.capacity);
            self.buckets.insert(key.to_string(), b);
        }
    }

    fn sweep(&mut self, now_ms: i64) {
        if self.buckets.len() < SWEEP_AT_KEYS {
            return;
        }
        let (cap, window) = (self.capacity, self.window_ms);
        self.buckets
            .retain(|_, b| b.tokens + (now_ms - b.at_ms).max(0) as f64 * cap / window < cap);
    }
}

/// A limiter shared by request handlers. The lock is never held across an `.await`.
#[derive(Debug)]
pub struct SharedLimiter(Mutex<RateLimiter>);

impl SharedLimiter {
    pub fn new(capacity: u32, window_secs: u64) -> Self {
        Self(Mutex::new(RateLimiter::new(capacity, window_secs)))
    }

    fn with<R>(&self, f: impl FnOnce(&mut RateLimiter) -> R) -> R {
        // A poisoned lock only means a panic elsewhere mid-update; the buckets stay usable.
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    pub fn take(&self, key: &str, now_ms: i64) -> Result<(), u64> {
        self.with(|l| l.take(key, now_ms))
    }

    pub fn check(&self, key: &str, now_ms: i64) -> Result<(), u64> {
        self.with(|l| l.check(key, now_ms))
    }

    pub fn reset(&self, key: &str) {
        self.with(|l| l.reset(key))
    }

    pub fn refund(&self, key: &str, now_ms: i64) {
        self.with(|l| l.refund(key, now_ms))
    }
}

/// Failures per key with growing delays, for checks an attacker repeats (passwords): the
/// first `free` failures pass at once, then each attempt must wait `base · 2^(n − free)`
/// after the last one (n failures so far), at most `max`. An attempt is charged as a failure
/// when it *begins* — before the slow check — and forgotten on success, so a burst of
/// parallel attempts gets no more checks than a patient attacker would.
#[derive(Debug)]
pub struct FailureGate {
    free: u32,
    base_ms: i64,
    max_ms: i64,
    keys: HashMap<String, Failures>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last_ms: i64,
}

impl FailureGate {
    pub fn new(free: u32, base_ms: u64, max_ms: u64) -> Self {
        Self {
            free,
            base_ms: i64::try_from(base_ms.max(1)).unwrap_or(i64::MAX / 4),
            max_ms: i64::try_from(max_ms.max(1)).unwrap_or(i64::MAX / 4),
            keys: HashMap::new(),
        }
    }

    fn delay_ms(&self, failures: u32) -> i64 {
        if failures < self.free {
            return 0;
        }
        let doublings = (failures - self.free).min(40);
        self.base_ms
            .saturating_mul(1i64 << doublings)
            .min(self.max_ms)
    }

    /// Reserves an attempt for `key`, or says how many milliseconds to wait.
    pub fn begin(&mut self, key: &str, now_ms: i64) -> Result<(), u64> {
        let f = self.keys.get(key).copied().unwrap_or(Failures {
            count: 0,
            last_ms: now_ms,
        });
        let ready_at = f.last_ms.saturating_add(self.delay_ms(f.count));
        if now_ms < ready_at {
            return Err(u64::try_from(ready_at - now_ms).unwrap_or(1).max(1));
        }
        self.sweep(now_ms);
        self.keys.insert(
            key.to_string(),
            Failures {
                count: f.count.saturating_add(1),
                last_ms: now_ms,
            },
        );
        Ok(())
    }

    /// The check succeeded: the key starts afresh.
    pub fn succeed(&mut self, key: &str) {
        self.keys.remove(key);
    }

    /// Drops keys whose last failure is older than the longest delay (they would pass
    /// anyway, and their count is forgiven).
    fn sweep(&mut self, now_ms: i64) {
        if self.keys.len() < SWEEP_AT_KEYS {
            return;
        }
        let forget = self.max_ms.saturating_mul(4);
        self.keys.retain(|_, f| now_ms - f.last_ms < forget);
    }
}

/// A [`FailureGate`] shared by request handlers. The lock is never held across an `.await`.
#[derive(Debug)]
pub struct SharedGate(Mutex<FailureGate>);

impl SharedGate {
    pub fn new(free: u32, base_ms: u64, max_ms: u64) -> Self {
        Self(Mutex::new(FailureGate::new(free, base_ms, max_ms)))
    }

    fn with<R>(&self, f: impl FnOnce(&mut FailureGate) -> R) -> R {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    pub fn begin(&self, key: &str, now_ms: i64) -> Result<(), u64> {
        self.with(|g| g.begin(key, now_ms))
    }

    pub fn succeed(&self, key: &str) {
        self.with(|g| g.succeed(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_capacity_then_refuses_with_wait() {
        let mut l = RateLimiter::new(3, 60);
        for _ in 0..3 {
            assert!(l.take("a", 0).is_ok());
        }
        let wait = l.take("a", 0).unwrap_err();
        assert_eq!(wait, 20_000, "one token refills every 20 s");
        assert!(l.take("b", 0).is_ok(), "keys are independent");
        assert!(l.take("a", 19_999).is_err());
        assert!(l.take("a", 20_000).is_ok());
    }

    #[test]
    fn check_does_not_consume_and_reset_forgets() {
        let mut l = RateLimiter::new(1, 10);
        assert!(l.check("k", 0).is_ok());
        assert!(l.take("k", 0).is_ok());
        assert_eq!(l.check("k", 0), Err(10_000));
        l.reset("k");
        assert!(l.take("k", 0).is_ok());
    }

    #[test]
    fn a_refund_gives_back_one_token_never_more_than_capacity() {
        let mut l = RateLimiter::new(2, 60);
        assert!(l.take("k", 0).is_ok());
        assert!(l.take("k", 0).is_ok());
        assert!(l.take("k", 0).is_err());
        l.refund("k", 0);
        assert!(l.take("k", 0).is_ok());
        l.refund("k", 0);
        l.refund("k", 0);
        l.refund("k", 0);
        assert!(l.take("k", 0).is_ok());
        assert!(l.take("k", 0).is_ok());
        assert!(l.take("k", 0).is_err(), "refunds stop at the capacity");
    }

    #[test]
    fn a_gate_lets_free_failures_through_then_doubles_the_wait() {
        let mut g = FailureGate::new(3, 1_000, 8_000);
        // A burst at one instant: only the free attempts begin.
        for _ in 0..3 {
            assert!(g.begin("k", 0).is_ok());
        }
        assert_eq!(g.begin("k", 0), Err(1_000));
        assert_eq!(g.begin("k", 999), Err(1));
        assert!(g.begin("k", 1_000).is_ok(), "4th failure after 1 s");
        assert_eq!(g.begin("k", 1_000), Err(2_000));
        assert!(g.begin("k", 3_000).is_ok());
        assert_eq!(g.begin("k", 3_000), Err(4_000));
        assert!(g.begin("k", 7_000).is_ok());
        assert_eq!(g.begin("k", 7_000), Err(8_000), "capped");
        assert!(g.begin("k", 15_000).is_ok());
        assert_eq!(g.begin("k", 15_000), Err(8_000));
        assert!(g.begin("other", 15_000).is_ok(), "keys are independent");
        g.succeed("k");
        assert!(g.begin("k", 15_000).is_ok(), "a success forgives");
    }

    #[test]
    fn clock_going_backwards_does_not_mint_tokens() {
        let mut l = RateLimiter::new(1, 10);
        assert!(l.take("k", 50_000).is_ok());
        assert!(l.take("k", 0).is_err());
    }
}
