//! A per-IP fixed-window counter, in memory (per instance): enough to stop
//! one address from filling the clients table. Bounded: when it tracks too
//! many addresses it forgets the windows that are over.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

const WINDOW_SECS: i64 = 60;
const MAX_TRACKED: usize = 100_000;

pub struct RateLimiter {
    per_window: u64,
    windows: Mutex<HashMap<IpAddr, (i64, u64)>>,
}

impl RateLimiter {
    /// `per_window` requests per minute per address; 0 = unlimited.
    pub fn per_minute(per_window: u64) -> RateLimiter {
        RateLimiter {
            per_window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request; `Err(seconds)` tells when the address may retry.
    pub fn check(&self, ip: IpAddr, now: i64) -> Result<(), i64> {
        if self.per_window == 0 {
            return Ok(());
        }
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= MAX_TRACKED {
            windows.retain(|_, (start, _)| now - *start < WINDOW_SECS);
        }
        let entry = windows.entry(ip).or_insert((now, 0));
        if now - entry.0 >= WINDOW_SECS {
            *entry = (now, 0);
        }
        if entry.1 >= self.per_window {
            return Err(entry.0 + WINDOW_SECS - now);
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_applies_per_address_and_resets_each_window() {
        let limiter = RateLimiter::per_minute(2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert!(limiter.check(a, 0).is_ok());
        assert!(limiter.check(a, 1).is_ok());
        assert_eq!(limiter.check(a, 2), Err(58));
        assert!(limiter.check(b, 2).is_ok());
        assert!(limiter.check(a, 60).is_ok());
    }

    #[test]
    fn zero_means_unlimited() {
        let limiter = RateLimiter::per_minute(0);
        for i in 0..1000 {
            assert!(limiter.check("10.0.0.1".parse().unwrap(), i).is_ok());
        }
    }
}
