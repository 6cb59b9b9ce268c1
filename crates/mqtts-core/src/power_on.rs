//! The switch power-on rule (`power_on.<switch>`: `off`, `on` or `last`) and, for `last`, the
//! sans-IO rule that decides when a changed switch state is written to flash.
//!
//! A state is stored only after it has held for `hold_ms` (default [`DEFAULT_HOLD_MS`]) and
//! differs from the stored one, so one switch causes at most one write per `hold_ms` however
//! fast it is toggled; a toggle that returns to the stored state before `hold_ms` writes
//! nothing. The flash-wear numbers this gives are in docs/provisioning.md.

/// Default hold time before a `last` state is stored, ms.
pub const DEFAULT_HOLD_MS: u32 = 5_000;

/// What a switch does at power-on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PowerOn {
    /// Off (the default: nothing switches on by surprise after a power cut).
    #[default]
    Off,
    /// On.
    On,
    /// The last state that held for the hold time (off if none is stored).
    Last,
}

impl PowerOn {
    /// Allowed values.
    pub const ALLOWED: &'static str = "off, on, last";

    /// Parses `off`, `on` or `last`.
    pub fn parse(s: &str) -> Option<PowerOn> {
        match s {
            "off" => Some(PowerOn::Off),
            "on" => Some(PowerOn::On),
            "last" => Some(PowerOn::Last),
            _ => None,
        }
    }

    /// The option value.
    pub const fn as_str(self) -> &'static str {
        match self {
            PowerOn::Off => "off",
            PowerOn::On => "on",
            PowerOn::Last => "last",
        }
    }

    /// The state at power-on, given the remembered state (if any).
    pub const fn initial(self, remembered: Option<bool>) -> bool {
        match self {
            PowerOn::Off => false,
            PowerOn::On => true,
            PowerOn::Last => matches!(remembered, Some(true)),
        }
    }
}

/// Decides when a `last` switch's state is written. Feed every state change with
/// [`observe`](Self::observe); call [`poll`](Self::poll) at [`next_wakeup`](Self::next_wakeup)
/// (or any later time) and write what it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastKeeper {
    hold_ms: u32,
    stored: Option<bool>,
    pending: Option<(bool, u64)>,
}

impl LastKeeper {
    /// A keeper whose flash holds `stored` (`None`: nothing stored yet).
    pub const fn new(hold_ms: u32, stored: Option<bool>) -> Self {
        LastKeeper {
            hold_ms,
            stored,
            pending: None,
        }
    }

    /// The state at `now` (ms, monotonic) is `state`.
    pub fn observe(&mut self, now: u64, state: bool) {
        if self.stored == Some(state) {
            self.pending = None;
        } else if self.pending.map(|(s, _)| s) != Some(state) {
            self.pending = Some((state, now));
        }
    }

    /// The state to write now, if one has held for the hold time; it then counts as stored.
    pub fn poll(&mut self, now: u64) -> Option<bool> {
        let (state, since) = self.pending?;
        if now.saturating_sub(since) >= u64::from(self.hold_ms) {
            self.pending = None;
            self.stored = Some(state);
            Some(state)
        } else {
            None
        }
    }

    /// When [`poll`](Self::poll) will have something to write.
    pub fn next_wakeup(&self) -> Option<u64> {
        self.pending
            .map(|(_, since)| since.saturating_add(u64::from(self.hold_ms)))
    }

    /// The state the flash holds (as far as this keeper knows).
    pub fn stored(&self) -> Option<bool> {
        self.stored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        for p in [PowerOn::Off, PowerOn::On, PowerOn::Last] {
            assert_eq!(PowerOn::parse(p.as_str()), Some(p));
        }
        assert_eq!(PowerOn::parse("ON"), None);
        assert_eq!(PowerOn::default(), PowerOn::Off);
        assert!(!PowerOn::Off.initial(Some(true)));
        assert!(PowerOn::On.initial(Some(false)));
        assert!(PowerOn::Last.initial(Some(true)));
        assert!(!PowerOn::Last.initial(Some(false)));
        assert!(!PowerOn::Last.initial(None));
    }

    #[test]
    fn stores_only_after_the_hold_time() {
        let mut k = LastKeeper::new(5_000, Some(false));
        k.observe(1_000, true);
        assert_eq!(k.next_wakeup(), Some(6_000));
        assert_eq!(k.poll(5_999), None);
        assert_eq!(k.poll(6_000), Some(true));
        assert_eq!(k.stored(), Some(true));
        assert_eq!(k.poll(7_000), None);
        assert_eq!(k.next_wakeup(), None);
    }

    #[test]
    fn flapping_writes_at_most_once_per_hold_time() {
        let mut k = LastKeeper::new(5_000, Some(false));
        let mut writes = 0;
        let mut state = false;
        // Toggle every 100 ms for 60 s, polling every 10 ms.
        for t in (0..60_000u64).step_by(10) {
            if t % 100 == 0 {
                state = !state;
                k.observe(t, state);
            }
            if k.poll(t).is_some() {
                writes += 1;
            }
        }
        assert_eq!(writes, 0, "no state held for 5 s");
        // Then it settles on `on`: one write.
        k.observe(60_000, true);
        let mut t = 60_000;
        while t < 70_000 {
            if k.poll(t).is_some() {
                writes += 1;
            }
            t += 10;
        }
        assert_eq!(writes, 1);
        assert_eq!(k.stored(), Some(true));
    }

    #[test]
    fn a_toggle_back_to_the_stored_state_writes_nothing() {
        let mut k = LastKeeper::new(5_000, Some(true));
        k.observe(0, false);
        k.observe(4_000, true);
        assert_eq!(k.poll(10_000), None);
        assert_eq!(k.next_wakeup(), None);
        // Nothing stored yet: the first settled state is written.
        let mut k = LastKeeper::new(1_000, None);
        k.observe(0, false);
        assert_eq!(k.poll(1_000), Some(false));
        // The hold time restarts only on a new state, not on a repeated one.
        k.observe(2_000, true);
        k.observe(2_500, true);
        assert_eq!(k.poll(3_000), Some(true));
    }
}
