//! When to ask SNTP for the time, and the wall clock derived from the answers.
//!
//! Boards without a battery-backed RTC boot in 1970; TLS checks certificate dates, so the
//! firmware must not start a handshake before the first answer ([`ClockSync::is_set`]). Failed
//! queries are retried with a doubling delay; after a success the clock is set again every
//! `resync_ms`. The query itself blocks (it runs on the worker thread); this type only decides
//! when, and turns `(uptime, Unix time)` pairs into the current Unix time.

/// Timing of the SNTP schedule, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockConfig {
    /// Delay after the first failed query.
    pub retry_min_ms: u32,
    /// Longest delay between failed queries.
    pub retry_max_ms: u32,
    /// Period between successful synchronisations.
    pub resync_ms: u32,
}

impl Default for ClockConfig {
    fn default() -> Self {
        ClockConfig {
            retry_min_ms: 2_000,
            retry_max_ms: 60_000,
            resync_ms: 6 * 3_600_000,
        }
    }
}

/// The result of a successful query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockEvent {
    /// The clock was set for the first time.
    Set {
        /// Unix time, ms.
        unix_ms: u64,
    },
    /// The clock was set again.
    Resynced {
        /// Unix time, ms.
        unix_ms: u64,
        /// New time minus the time the previous answer predicted (positive: the local clock
        /// was slow).
        step_ms: i64,
    },
}

/// The SNTP schedule and the last answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockSync {
    config: ClockConfig,
    /// `(uptime ms, Unix ms)` of the last answer.
    anchor: Option<(u64, u64)>,
    in_flight: bool,
    next_attempt_ms: u64,
    retry_ms: u32,
}

impl ClockSync {
    /// No answer yet; the first query is due as soon as the network is up.
    pub fn new(config: ClockConfig) -> ClockSync {
        ClockSync {
            config,
            anchor: None,
            in_flight: false,
            next_attempt_ms: 0,
            retry_ms: config.retry_min_ms,
        }
    }

    /// Whether the clock has been set at least once (TLS may start).
    pub fn is_set(&self) -> bool {
        self.anchor.is_some()
    }

    /// Whether a query is running.
    pub fn in_flight(&self) -> bool {
        self.in_flight
    }

    /// Whether a query should start now (the network is needed).
    pub fn due(&self, now_ms: u64, net_ready: bool) -> bool {
        net_ready && !self.in_flight && now_ms >= self.next_attempt_ms
    }

    /// A query was started.
    pub fn started(&mut self) {
        self.in_flight = true;
    }

    /// The query returned `unix_ms` at uptime `now_ms`.
    pub fn succeeded(&mut self, now_ms: u64, unix_ms: u64) -> ClockEvent {
        let predicted = self.unix_ms(now_ms);
        self.anchor = Some((now_ms, unix_ms));
        self.in_flight = false;
        self.retry_ms = self.config.retry_min_ms;
        self.next_attempt_ms = now_ms.saturating_add(u64::from(self.config.resync_ms));
        match predicted {
            None => ClockEvent::Set { unix_ms },
            Some(p) => ClockEvent::Resynced {
                unix_ms,
                step_ms: signed_diff(unix_ms, p),
            },
        }
    }

    /// The query failed (or could not start) at `now_ms`; returns the delay before the next.
    pub fn failed(&mut self, now_ms: u64) -> u32 {
        let delay = self.retry_ms;
        self.in_flight = false;
        self.next_attempt_ms = now_ms.saturating_add(u64::from(delay));
        self.retry_ms = self
            .retry_ms
            .saturating_mul(2)
            .min(self.config.retry_max_ms)
            .max(self.config.retry_min_ms);
        delay
    }

    /// When the next query is due (`None` while one runs).
    pub fn next_wakeup(&self) -> Option<u64> {
        (!self.in_flight).then_some(self.next_attempt_ms)
    }

    /// Unix time in ms at uptime `now_ms`, once the clock is set.
    pub fn unix_ms(&self, now_ms: u64) -> Option<u64> {
        let (at, unix) = self.anchor?;
        // Uptime is monotonic; an earlier `now_ms` (caller mistake) reads as the anchor.
        Some(unix.saturating_add(now_ms.saturating_sub(at)))
    }
}

fn signed_diff(a: u64, b: u64) -> i64 {
    if a >= b {
        i64::try_from(a - b).unwrap_or(i64::MAX)
    } else {
        i64::try_from(b - a).map(|d| -d).unwrap_or(i64::MIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: ClockConfig = ClockConfig {
        retry_min_ms: 2_000,
        retry_max_ms: 10_000,
        resync_ms: 3_600_000,
    };

    #[test]
    fn first_query_waits_for_the_network() {
        let c = ClockSync::new(CFG);
        assert!(!c.is_set());
        assert!(!c.due(0, false));
        assert!(c.due(0, true));
        assert_eq!(c.next_wakeup(), Some(0));
        assert_eq!(c.unix_ms(5), None);
    }

    #[test]
    fn failures_back_off_doubling_to_the_cap() {
        let mut c = ClockSync::new(CFG);
        let mut now = 1_000;
        let mut delays = std::vec::Vec::new();
        for _ in 0..5 {
            assert!(c.due(now, true));
            c.started();
            assert!(c.in_flight() && !c.due(now, true));
            assert_eq!(c.next_wakeup(), None);
            let d = c.failed(now);
            delays.push(d);
            assert!(!c.due(now + u64::from(d) - 1, true));
            now += u64::from(d);
        }
        assert_eq!(delays, [2_000, 4_000, 8_000, 10_000, 10_000]);
        assert!(!c.is_set());
    }

    #[test]
    fn success_sets_the_clock_and_schedules_a_resync() {
        let mut c = ClockSync::new(CFG);
        c.started();
        c.failed(0);
        c.started();
        // 2024-01-01T00:00:00Z at uptime 5 s.
        assert_eq!(
            c.succeeded(5_000, 1_704_067_200_000),
            ClockEvent::Set {
                unix_ms: 1_704_067_200_000
            }
        );
        assert!(c.is_set());
        assert_eq!(c.unix_ms(5_000), Some(1_704_067_200_000));
        assert_eq!(c.unix_ms(6_234), Some(1_704_067_201_234));
        assert_eq!(c.unix_ms(4_000), Some(1_704_067_200_000));
        assert_eq!(c.next_wakeup(), Some(3_605_000));
        assert!(!c.due(3_604_999, true));
        assert!(c.due(3_605_000, true));
        // The retry delay starts over after a success.
        c.started();
        assert_eq!(c.failed(3_605_000), 2_000);
        assert!(c.is_set(), "a failed resync keeps the clock");
        c.started();
        // The local clock ran 250 ms slow over the hour.
        assert_eq!(
            c.succeeded(3_607_000, 1_704_070_802_250),
            ClockEvent::Resynced {
                unix_ms: 1_704_070_802_250,
                step_ms: 250
            }
        );
        c.started();
        assert_eq!(
            c.succeeded(3_608_000, 1_704_070_803_000),
            ClockEvent::Resynced {
                unix_ms: 1_704_070_803_000,
                step_ms: -250
            }
        );
    }

    #[test]
    fn extreme_values_saturate() {
        let mut c = ClockSync::new(ClockConfig {
            retry_min_ms: u32::MAX,
            retry_max_ms: u32::MAX,
            resync_ms: u32::MAX,
        });
        assert_eq!(c.failed(u64::MAX), u32::MAX);
        assert_eq!(c.next_wakeup(), Some(u64::MAX));
        c.succeeded(0, u64::MAX);
        assert_eq!(c.unix_ms(10), Some(u64::MAX));
        assert_eq!(signed_diff(u64::MAX, 0), i64::MAX);
        assert_eq!(signed_diff(0, u64::MAX), i64::MIN);
    }
}
