//! Pure logic of the Zephyr firmware (`rustapp` at the repository root), kept here so it is
//! host-tested and the Zephyr layer stays a thin shell of FFI calls, threads and atomics.
//!
//! - [`shim`]: the C shim's stable result codes (`src/socket_shim.h`), mirrored and decoded.
//! - [`ca`]: which embedded root certificates to trust for a profile and port.
//! - [`slot`]: the one-job mailbox between the main loop and the connection worker thread.
//! - [`clock`]: the SNTP retry and re-sync schedule, and wall-clock time from it.
//! - [`indicator`]: the status LED pattern for each link state.
//! - [`identity`]: the MAC address and default `device_id` derived from the MCU's unique ID.
//! - [`verify`]: why a broker certificate was rejected (Mbed TLS verification flags).
//!
//! And small helpers the firmware needs around the [`Device`](crate::device::Device):
//! [`kconfig_text`], [`switch_names`], [`Decimal`] and [`wait_ms`].

pub mod ca;
pub mod clock;
pub mod identity;
pub mod indicator;
pub mod shim;
pub mod slot;
pub mod verify;

/// A Kconfig string as an optional configuration value: Kconfig has no "unset" for strings, so
/// an empty string means "not set" (see [`DeviceConfig`](crate::config::DeviceConfig)).
pub const fn kconfig_text(value: &str) -> Option<&str> {
    if value.is_empty() {
        None
    } else {
        Some(value)
    }
}

/// Not enough switch names for the outputs the board has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooFewNames {
    /// Names found in the list.
    pub found: usize,
    /// Outputs that need a name.
    pub needed: usize,
}

/// The first `N` names of a comma-separated list (`"Relay1, Relay2"`), spaces trimmed. Extra
/// names are ignored, so one list serves boards with fewer outputs. The names themselves are
/// checked by [`SwitchBank::new`](crate::switch::SwitchBank::new).
pub fn switch_names<const N: usize>(list: &str) -> Result<[&str; N], TooFewNames> {
    let mut names = [""; N];
    let mut parts = list.split(',').map(str::trim);
    if list.trim().is_empty() {
        // "".split(',') yields one empty name; an empty list has none.
        parts.next();
    }
    for (found, slot) in names.iter_mut().enumerate() {
        *slot = parts.next().ok_or(TooFewNames { found, needed: N })?;
    }
    Ok(names)
}

/// A `u64` in decimal without `core::fmt` (the Alibaba timestamp, ms since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    digits: [u8; 20],
    start: usize,
}

impl Decimal {
    /// `value` in decimal.
    pub fn new(mut value: u64) -> Decimal {
        let mut digits = [b'0'; 20];
        let mut start = digits.len();
        // u64::MAX has 20 digits, so `start` never underflows; checked anyway.
        while let Some(i) = start.checked_sub(1) {
            if let Some(d) = digits.get_mut(i) {
                *d = b'0' + (value % 10) as u8;
            }
            start = i;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        Decimal { digits, start }
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        let digits = self.digits.get(self.start..).unwrap_or(&[]);
        core::str::from_utf8(digits).unwrap_or("")
    }
}

/// How long the main loop may sleep at `now`: until the earliest deadline (a past deadline
/// gives 0), never longer than `cap_ms`. `None` deadlines are ignored.
pub fn wait_ms(now: u64, deadlines: &[Option<u64>], cap_ms: u32) -> u32 {
    deadlines
        .iter()
        .flatten()
        .map(|&at| u32::try_from(at.saturating_sub(now)).unwrap_or(u32::MAX))
        .fold(cap_ms, u32::min)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switch::{NameError, SwitchBank};

    #[test]
    fn empty_kconfig_strings_are_unset() {
        assert_eq!(kconfig_text(""), None);
        assert_eq!(kconfig_text("a1B2"), Some("a1B2"));
        // Whitespace is a value (validate() rejects it where it matters).
        assert_eq!(kconfig_text(" "), Some(" "));
        const HOST: Option<&str> = kconfig_text("broker.lan");
        assert_eq!(HOST, Some("broker.lan"));
    }

    #[test]
    fn switch_names_from_a_list() {
        assert_eq!(
            switch_names::<2>("Relay1, Relay2 ,Relay3"),
            Ok(["Relay1", "Relay2"])
        );
        assert_eq!(switch_names::<0>(""), Ok([]));
        assert_eq!(
            switch_names::<3>("Relay1,Relay2"),
            Err(TooFewNames {
                found: 2,
                needed: 3
            })
        );
        assert_eq!(
            switch_names::<1>("  "),
            Err(TooFewNames {
                found: 0,
                needed: 1
            })
        );
        // An empty entry is passed on; the bank refuses it with its position.
        let names = switch_names::<2>("Relay1,,Relay3").unwrap();
        assert_eq!(names, ["Relay1", ""]);
        assert_eq!(
            SwitchBank::new(names).unwrap_err(),
            NameError::Empty { index: 1 }
        );
    }

    #[test]
    fn decimal_digits() {
        assert_eq!(Decimal::new(0).as_str(), "0");
        assert_eq!(Decimal::new(7).as_str(), "7");
        assert_eq!(Decimal::new(1_704_067_200_123).as_str(), "1704067200123");
        assert_eq!(Decimal::new(u64::MAX).as_str(), "18446744073709551615");
        assert_eq!(Decimal::new(10).as_str(), "10");
    }

    #[test]
    fn wait_is_the_earliest_deadline_capped() {
        assert_eq!(wait_ms(1_000, &[], 100), 100);
        assert_eq!(wait_ms(1_000, &[None, Some(1_030)], 100), 30);
        assert_eq!(wait_ms(1_000, &[Some(5_000), Some(1_070), None], 100), 70);
        assert_eq!(wait_ms(1_000, &[Some(900)], 100), 0);
        assert_eq!(wait_ms(1_000, &[Some(1_000)], 100), 0);
        assert_eq!(wait_ms(0, &[Some(u64::MAX)], 100), 100);
    }
}
