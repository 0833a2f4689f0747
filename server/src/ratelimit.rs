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
    fn clock_going_backwards_does_not_mint_tokens() {
        let mut l = RateLimiter::new(1, 10);
        assert!(l.take("k", 50_000).is_ok());
        assert!(l.take("k", 0).is_err());
    }
}
