//! The status LED: one blink pattern per link state, repeating every second.

/// What the device is waiting for, from the most to the least serious.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indication {
    /// The configuration is invalid; the firmware stopped (10 Hz blink).
    Halted,
    /// No link or no IPv4 address (5 Hz blink).
    NoNetwork,
    /// Network up, waiting for the first SNTP answer (double blink).
    NoClock,
    /// Connecting or waiting to reconnect to the broker (1 Hz blink).
    Connecting,
    /// MQTT session up (steady on).
    Online,
}

/// Length of every pattern.
pub const PERIOD_MS: u64 = 1_000;

impl Indication {
    /// The indication for the device's state. `clock_needed` is false for builds without TLS.
    pub fn of(net_ready: bool, clock_needed: bool, clock_set: bool, online: bool) -> Indication {
        if !net_ready {
            Indication::NoNetwork
        } else if clock_needed && !clock_set {
            Indication::NoClock
        } else if online {
            Indication::Online
        } else {
            Indication::Connecting
        }
    }

    /// The lit intervals `[start, end)` within one period.
    fn lit(self) -> &'static [(u64, u64)] {
        match self {
            Indication::Halted => &[
                (0, 50),
                (100, 150),
                (200, 250),
                (300, 350),
                (400, 450),
                (500, 550),
                (600, 650),
                (700, 750),
                (800, 850),
                (900, 950),
            ],
            Indication::NoNetwork => &[(0, 100), (200, 300), (400, 500), (600, 700), (800, 900)],
            Indication::NoClock => &[(0, 100), (200, 300)],
            Indication::Connecting => &[(0, 500)],
            Indication::Online => &[(0, PERIOD_MS)],
        }
    }

    /// Whether the LED is on at uptime `now_ms`.
    pub fn is_lit(self, now_ms: u64) -> bool {
        let t = now_ms % PERIOD_MS;
        self.lit().iter().any(|&(a, b)| (a..b).contains(&t))
    }

    /// The next uptime after `now_ms` at which the LED changes (`None` for steady patterns).
    pub fn next_change(self, now_ms: u64) -> Option<u64> {
        let lit = self.lit();
        if lit == [(0, PERIOD_MS)] {
            return None;
        }
        let t = now_ms % PERIOD_MS;
        let base = now_ms - t;
        let edge = lit
            .iter()
            .flat_map(|&(a, b)| [a, b])
            .filter(|&e| e > t)
            .min()
            // The next period starts lit (every pattern's first interval starts at 0).
            .unwrap_or(PERIOD_MS);
        Some(base.saturating_add(edge))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_priority() {
        use Indication::*;
        assert_eq!(Indication::of(false, true, true, true), NoNetwork);
        assert_eq!(Indication::of(true, true, false, false), NoClock);
        assert_eq!(Indication::of(true, false, false, false), Connecting);
        assert_eq!(Indication::of(true, true, true, false), Connecting);
        assert_eq!(Indication::of(true, true, true, true), Online);
        assert_eq!(Indication::of(true, false, false, true), Online);
    }

    #[test]
    fn patterns() {
        use Indication::*;
        let on = |i: Indication| -> std::vec::Vec<u64> {
            (0..1000)
                .step_by(50)
                .filter(|&t| i.is_lit(10_000 + t))
                .collect()
        };
        assert_eq!(
            on(Connecting),
            (0..500).step_by(50).collect::<std::vec::Vec<_>>()
        );
        assert_eq!(on(NoClock), [0, 50, 200, 250]);
        assert_eq!(
            on(NoNetwork),
            [0, 50, 200, 250, 400, 450, 600, 650, 800, 850]
        );
        assert_eq!(
            on(Halted),
            (0..1000).step_by(100).collect::<std::vec::Vec<_>>()
        );
        assert_eq!(on(Online).len(), 20);
        assert!(!NoClock.is_lit(1_350) && NoClock.is_lit(1_250));
    }

    #[test]
    fn next_change_finds_the_edges() {
        use Indication::*;
        assert_eq!(Online.next_change(12_345), None);
        assert_eq!(Connecting.next_change(2_000), Some(2_500));
        assert_eq!(Connecting.next_change(2_499), Some(2_500));
        assert_eq!(Connecting.next_change(2_500), Some(3_000));
        assert_eq!(NoClock.next_change(5_150), Some(5_200));
        assert_eq!(NoClock.next_change(5_300), Some(6_000));
        assert_eq!(NoNetwork.next_change(999), Some(1_000));
        assert_eq!(Halted.next_change(40), Some(50));
        // Every edge really changes the LED, and nothing changes in between.
        for ind in [Halted, NoNetwork, NoClock, Connecting] {
            let mut t = 7_000;
            while t < 9_000 {
                let next = ind.next_change(t).unwrap();
                assert!(next > t);
                for u in t..next {
                    assert_eq!(ind.is_lit(u), ind.is_lit(t), "{ind:?} {t}..{next} at {u}");
                }
                assert_ne!(
                    ind.is_lit(next),
                    ind.is_lit(next - 1),
                    "{ind:?} edge {next}"
                );
                t = next;
            }
        }
        assert_eq!(NoNetwork.next_change(u64::MAX - 5), Some(u64::MAX));
    }
}
