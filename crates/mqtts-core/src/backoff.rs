//! Reconnect backoff with jitter.
//!
//! Transient failures (DNS, TCP, timeouts, broker unavailable) use "full jitter": the delay is
//! uniform in `[0, ceiling]` with `ceiling = min(max_ms, min_ms * 2^attempt)`, which spreads a
//! fleet of devices that lost the broker at the same moment.
//!
//! Authentication failures (CONNACK "bad user name or password" / "not authorized", certificate
//! verification) will not fix themselves quickly and hammering the broker with bad credentials
//! can get a device throttled or banned, so they use their own, larger range
//! (`auth_min_ms`..`auth_max_ms`) and "equal jitter": the delay is uniform in
//! `[ceil(ceiling / 2), ceiling]`, which is never 0 because `ceiling >= auth_min_ms >= 1`.
//!
//! Both classes share one attempt counter: a device alternating between the two keeps backing
//! off. The caller supplies the randomness (a hardware RNG word on the device), so the module is
//! deterministic under test. No division is used (Cortex-M0 has no divide instruction); the
//! random scaling is one 32x32->64 multiply.

/// What kind of failure caused the reconnect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// Network, timeout or broker-side failure that may clear on its own.
    Transient,
    /// Credentials or certificate rejected: retrying soon will not help.
    Authentication,
}

/// Backoff ranges, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// Base delay for transient failures (the ceiling of the first attempt).
    pub min_ms: u32,
    /// Largest delay for transient failures.
    pub max_ms: u32,
    /// Base delay for authentication failures.
    pub auth_min_ms: u32,
    /// Largest delay for authentication failures.
    pub auth_max_ms: u32,
}

impl Default for BackoffConfig {
    /// 1 s .. 60 s for transient failures, 30 s .. 10 min for authentication failures.
    fn default() -> Self {
        Self {
            min_ms: 1_000,
            max_ms: 60_000,
            auth_min_ms: 30_000,
            auth_max_ms: 600_000,
        }
    }
}

/// Why a [`BackoffConfig`] is rejected; each variant names the offending field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackoffConfigError {
    /// `min_ms` is 0 (the delay would never grow).
    MinMsZero,
    /// `min_ms` is larger than `max_ms`.
    MinMsAboveMaxMs,
    /// `auth_min_ms` is 0 (the authentication delay could be 0).
    AuthMinMsZero,
    /// `auth_min_ms` is larger than `auth_max_ms`.
    AuthMinMsAboveAuthMaxMs,
    /// `auth_min_ms` is below `min_ms`: authentication failures must not back off less.
    AuthMinMsBelowMinMs,
    /// `auth_max_ms` is below `max_ms`: authentication failures must not back off less.
    AuthMaxMsBelowMaxMs,
}

impl BackoffConfig {
    /// Checks the documented invariants: `0 < min_ms <= max_ms`, `0 < auth_min_ms <= auth_max_ms`,
    /// and the authentication range at least as long as the transient one.
    pub fn validate(&self) -> Result<(), BackoffConfigError> {
        if self.min_ms == 0 {
            return Err(BackoffConfigError::MinMsZero);
        }
        if self.min_ms > self.max_ms {
            return Err(BackoffConfigError::MinMsAboveMaxMs);
        }
        if self.auth_min_ms == 0 {
            return Err(BackoffConfigError::AuthMinMsZero);
        }
        if self.auth_min_ms > self.auth_max_ms {
            return Err(BackoffConfigError::AuthMinMsAboveAuthMaxMs);
        }
        if self.auth_min_ms < self.min_ms {
            return Err(BackoffConfigError::AuthMinMsBelowMinMs);
        }
        if self.auth_max_ms < self.max_ms {
            return Err(BackoffConfigError::AuthMaxMsBelowMaxMs);
        }
        Ok(())
    }
}

/// Reconnect delay generator. Call [`next_delay_ms`](Self::next_delay_ms) after each failed
/// attempt and [`reset`](Self::reset) once a session is established.
#[derive(Debug, Clone)]
pub struct Backoff {
    cfg: BackoffConfig,
    attempts: u32,
}

impl Backoff {
    /// A fresh backoff with no failed attempts.
    ///
    /// The config should pass [`BackoffConfig::validate`]; an invalid one never causes a panic,
    /// but then delays may be 0 (transient) or 1 ms (authentication).
    pub const fn new(cfg: BackoffConfig) -> Self {
        Self { cfg, attempts: 0 }
    }

    /// The delay before the next connection attempt, given the class of the failure that just
    /// happened and a uniformly distributed random word. Counts one more attempt.
    pub fn next_delay_ms(&mut self, class: FailureClass, random: u32) -> u32 {
        let delay = match class {
            FailureClass::Transient => {
                let ceiling = ceiling(self.cfg.min_ms, self.cfg.max_ms, self.attempts);
                scale(random, ceiling)
            }
            FailureClass::Authentication => {
                let ceiling = ceiling(self.cfg.auth_min_ms, self.cfg.auth_max_ms, self.attempts);
                // Upper half of the range: floor = ceil(ceiling / 2), so ceiling >= 1 gives >= 1.
                let half = ceiling >> 1;
                let floor = ceiling - half;
                (floor + scale(random, half)).max(1)
            }
        };
        self.attempts = self.attempts.saturating_add(1);
        delay
    }

    /// Forgets all failed attempts (call after a successful CONNACK).
    pub fn reset(&mut self) {
        self.attempts = 0;
    }

    /// Number of delays handed out since the last reset.
    pub const fn attempts(&self) -> u32 {
        self.attempts
    }
}

/// `min(cap, base * 2^attempt)` without overflow.
fn ceiling(base: u32, cap: u32, attempt: u32) -> u32 {
    // base << attempt stays <= cap exactly when base <= cap >> attempt; shifts of 32 or more
    // would be undefined for u32, so those saturate to the cap.
    if attempt < 32 && base <= cap >> attempt {
        base << attempt
    } else {
        cap
    }
}

/// Maps `random` uniformly onto `0..=max` (multiply-high, no division).
fn scale(random: u32, max: u32) -> u32 {
    // random * (max + 1) < 2^32 * (max + 1), so the high word is at most max.
    ((u64::from(random) * (u64::from(max) + 1)) >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BackoffConfig {
        BackoffConfig {
            min_ms: 1_000,
            max_ms: 60_000,
            auth_min_ms: 30_000,
            auth_max_ms: 600_000,
        }
    }

    #[test]
    fn default_is_valid_and_as_documented() {
        let d = BackoffConfig::default();
        assert_eq!(d, cfg());
        assert_eq!(d.validate(), Ok(()));
    }

    #[test]
    fn validate_names_the_field() {
        let bad = |f: fn(&mut BackoffConfig)| {
            let mut c = cfg();
            f(&mut c);
            c.validate()
        };
        assert_eq!(bad(|c| c.min_ms = 0), Err(BackoffConfigError::MinMsZero));
        assert_eq!(
            bad(|c| c.min_ms = 60_001),
            Err(BackoffConfigError::MinMsAboveMaxMs)
        );
        assert_eq!(
            bad(|c| c.auth_min_ms = 0),
            Err(BackoffConfigError::AuthMinMsZero)
        );
        assert_eq!(
            bad(|c| c.auth_min_ms = 600_001),
            Err(BackoffConfigError::AuthMinMsAboveAuthMaxMs)
        );
        assert_eq!(
            bad(|c| c.auth_min_ms = 999),
            Err(BackoffConfigError::AuthMinMsBelowMinMs)
        );
        assert_eq!(
            bad(|c| c.auth_max_ms = 59_999),
            Err(BackoffConfigError::AuthMaxMsBelowMaxMs)
        );
        assert_eq!(bad(|c| c.max_ms = c.min_ms), Ok(()));
    }

    #[test]
    fn transient_ceiling_doubles_then_caps() {
        let mut b = Backoff::new(cfg());
        // With the largest random word the delay equals the ceiling.
        let got: std::vec::Vec<u32> = (0..9)
            .map(|_| b.next_delay_ms(FailureClass::Transient, u32::MAX))
            .collect();
        assert_eq!(
            got,
            [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]
        );
        assert_eq!(b.attempts(), 9);
    }

    #[test]
    fn full_jitter_bounds() {
        let mut b = Backoff::new(cfg());
        assert_eq!(b.next_delay_ms(FailureClass::Transient, 0), 0);
        assert_eq!(b.next_delay_ms(FailureClass::Transient, u32::MAX), 2_000);
        // Half of the random range gives half of the ceiling (4000 at attempt 2).
        assert_eq!(b.next_delay_ms(FailureClass::Transient, 1 << 31), 4_000 / 2);
    }

    #[test]
    fn reset_restarts_growth() {
        let mut b = Backoff::new(cfg());
        for _ in 0..5 {
            b.next_delay_ms(FailureClass::Transient, u32::MAX);
        }
        b.reset();
        assert_eq!(b.attempts(), 0);
        assert_eq!(b.next_delay_ms(FailureClass::Transient, u32::MAX), 1_000);
    }

    #[test]
    fn authentication_is_never_zero_and_longer() {
        let mut b = Backoff::new(cfg());
        assert_eq!(b.next_delay_ms(FailureClass::Authentication, 0), 15_000);
        assert_eq!(
            b.next_delay_ms(FailureClass::Authentication, u32::MAX),
            60_000
        );
        for _ in 0..40 {
            b.next_delay_ms(FailureClass::Authentication, 0);
        }
        assert_eq!(b.next_delay_ms(FailureClass::Authentication, 0), 300_000);
        assert_eq!(
            b.next_delay_ms(FailureClass::Authentication, u32::MAX),
            600_000
        );

        // At every attempt the shortest authentication delay is at least the longest transient one
        // with the default config.
        for attempt in 0..40 {
            let mut t = Backoff::new(cfg());
            let mut a = Backoff::new(cfg());
            for _ in 0..attempt {
                t.next_delay_ms(FailureClass::Transient, 0);
                a.next_delay_ms(FailureClass::Transient, 0);
            }
            let t_max = t.next_delay_ms(FailureClass::Transient, u32::MAX);
            let a_min = a.next_delay_ms(FailureClass::Authentication, 0);
            assert!(a_min >= t_max, "attempt {attempt}: {a_min} vs {t_max}");
        }
    }

    #[test]
    fn authentication_floor_with_tiny_and_invalid_configs() {
        let tiny = BackoffConfig {
            min_ms: 1,
            max_ms: 1,
            auth_min_ms: 1,
            auth_max_ms: 1,
        };
        assert_eq!(tiny.validate(), Ok(()));
        let mut b = Backoff::new(tiny);
        assert_eq!(b.next_delay_ms(FailureClass::Authentication, 0), 1);
        assert_eq!(b.next_delay_ms(FailureClass::Transient, u32::MAX), 1);

        let zero = BackoffConfig {
            min_ms: 0,
            max_ms: 0,
            auth_min_ms: 0,
            auth_max_ms: 0,
        };
        let mut b = Backoff::new(zero);
        assert_eq!(b.next_delay_ms(FailureClass::Authentication, u32::MAX), 1);
        assert_eq!(b.next_delay_ms(FailureClass::Transient, u32::MAX), 0);
    }

    #[test]
    fn huge_values_do_not_overflow() {
        let c = BackoffConfig {
            min_ms: u32::MAX / 2 + 1,
            max_ms: u32::MAX,
            auth_min_ms: u32::MAX,
            auth_max_ms: u32::MAX,
        };
        assert_eq!(c.validate(), Ok(()));
        let mut b = Backoff::new(c);
        assert_eq!(
            b.next_delay_ms(FailureClass::Transient, u32::MAX),
            u32::MAX / 2 + 1
        );
        assert_eq!(b.next_delay_ms(FailureClass::Transient, u32::MAX), u32::MAX);
        assert_eq!(
            b.next_delay_ms(FailureClass::Authentication, u32::MAX),
            u32::MAX
        );
        assert_eq!(
            b.next_delay_ms(FailureClass::Authentication, 0),
            u32::MAX / 2 + 1
        );
        // The counter saturates instead of wrapping, and shifts >= 32 are avoided.
        let mut b = Backoff::new(cfg());
        b.attempts = u32::MAX - 1;
        assert_eq!(b.next_delay_ms(FailureClass::Transient, u32::MAX), 60_000);
        assert_eq!(b.next_delay_ms(FailureClass::Transient, u32::MAX), 60_000);
        assert_eq!(b.attempts(), u32::MAX);
    }
}
