//! Switches (relays, LEDs): names, recorded states and the outputs that drive them, plus the
//! device telemetry reported next to them.
//!
//! The output is changed first and the recorded state only if that worked, so the state the
//! device reports is always the state of the hardware.

/// An output could not be driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputError {
    /// The output device is not ready (e.g. GPIO controller not initialised).
    NotReady,
    /// Driving the output failed.
    Io,
}

/// The hardware (or simulation) behind the switches: GPIO on the device, simulated on the host.
pub trait SwitchOutputs {
    /// Drives output `index` (the position of the switch in its [`SwitchBank`]) on or off.
    fn set(&mut self, index: usize, on: bool) -> Result<(), OutputError>;
}

/// Why a set of switch names is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// The name at this index is empty.
    Empty {
        /// Position of the name.
        index: usize,
    },
    /// The name at this index is longer than [`MAX_NAME_LEN`].
    TooLong {
        /// Position of the name.
        index: usize,
    },
    /// The name at this index has a character outside `[A-Za-z0-9_]`.
    InvalidChar {
        /// Position of the name.
        index: usize,
    },
    /// The name at `index` repeats the name at `first`.
    Duplicate {
        /// Position of the first occurrence.
        first: usize,
        /// Position of the repetition.
        index: usize,
    },
}

/// Longest switch name (Alink identifiers are at most 50 characters).
pub const MAX_NAME_LEN: usize = 50;

/// Whether `name` is a valid switch / property identifier: 1..=[`MAX_NAME_LEN`] chars of
/// `[A-Za-z0-9_]` (safe in JSON keys and topic names without escaping).
pub fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Why a command was refused or failed. Refused commands change nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandError {
    /// The payload is not JSON of the expected shape (syntax, nesting, size).
    MalformedJson,
    /// A required field (`params`, `switch`, `on`, …) is absent or empty.
    MissingField,
    /// No switch has this name.
    UnknownSwitch,
    /// A value has the wrong type or is out of range (switch values must be 0, 1, true or false).
    WrongType,
    /// The same switch is named twice in one command.
    DuplicateSwitch,
    /// The command mixes forms that exclude each other.
    Conflict,
    /// The command or service is not known.
    UnknownCommand,
    /// The command was valid but an output failed.
    Output(OutputError),
}

/// N named switches and their recorded states (all off at start).
#[derive(Debug, Clone)]
pub struct SwitchBank<'a, const N: usize> {
    names: [&'a str; N],
    states: [bool; N],
}

impl<'a, const N: usize> SwitchBank<'a, N> {
    /// A bank with these names, all recorded off. Names must be valid identifiers
    /// ([`is_identifier`]) and unique.
    pub fn new(names: [&'a str; N]) -> Result<Self, NameError> {
        for (index, name) in names.iter().enumerate() {
            if name.is_empty() {
                return Err(NameError::Empty { index });
            }
            if name.len() > MAX_NAME_LEN {
                return Err(NameError::TooLong { index });
            }
            if !is_identifier(name) {
                return Err(NameError::InvalidChar { index });
            }
            if let Some(first) = names.iter().take(index).position(|n| n == name) {
                return Err(NameError::Duplicate { first, index });
            }
        }
        Ok(SwitchBank {
            names,
            states: [false; N],
        })
    }

    /// The switch names, in output order.
    pub fn names(&self) -> &[&'a str; N] {
        &self.names
    }

    /// The recorded states, in output order.
    pub fn states(&self) -> &[bool; N] {
        &self.states
    }

    /// Index of the switch called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| *n == name)
    }

    /// Recorded state of switch `name`.
    pub fn state_of(&self, name: &str) -> Option<bool> {
        self.index_of(name)
            .and_then(|i| self.states.get(i).copied())
    }

    /// `(name, state)` pairs in output order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, bool)> + '_ {
        self.names.iter().copied().zip(self.states.iter().copied())
    }

    /// Sets switch `name`: drives the output, then records the state if that worked.
    pub fn apply<O: SwitchOutputs + ?Sized>(
        &mut self,
        name: &str,
        on: bool,
        outputs: &mut O,
    ) -> Result<(), CommandError> {
        let index = self.index_of(name).ok_or(CommandError::UnknownSwitch)?;
        self.apply_index(index, on, outputs)
    }

    /// Sets switch `index`: drives the output, then records the state if that worked.
    pub fn apply_index<O: SwitchOutputs + ?Sized>(
        &mut self,
        index: usize,
        on: bool,
        outputs: &mut O,
    ) -> Result<(), CommandError> {
        let slot = self
            .states
            .get_mut(index)
            .ok_or(CommandError::UnknownSwitch)?;
        outputs.set(index, on).map_err(CommandError::Output)?;
        *slot = on;
        Ok(())
    }

    /// Applies validated changes `(index, on)` in order. Stops at the first output failure and
    /// returns it with the number of changes applied before it (those stay applied and recorded;
    /// the device reports its real state afterwards).
    pub fn apply_all<O: SwitchOutputs + ?Sized>(
        &mut self,
        changes: &[(usize, bool)],
        outputs: &mut O,
    ) -> Result<(), (usize, CommandError)> {
        for (done, &(index, on)) in changes.iter().enumerate() {
            self.apply_index(index, on, outputs)
                .map_err(|e| (done, e))?;
        }
        Ok(())
    }

    /// Drives every output to its recorded state (at boot, or after an output was re-initialised).
    pub fn sync_outputs<O: SwitchOutputs + ?Sized>(
        &self,
        outputs: &mut O,
    ) -> Result<(), OutputError> {
        for (index, &on) in self.states.iter().enumerate() {
            outputs.set(index, on)?;
        }
        Ok(())
    }
}

/// Device health reported with the switch states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Telemetry {
    /// Seconds since boot.
    pub uptime_s: u32,
    /// Successful reconnections since boot (the first connection does not count).
    pub reconnects: u32,
    /// Short cause of the last connection failure (e.g. `"tls_handshake"`), if any. Must be plain
    /// text; it is escaped when written to JSON.
    pub last_failure: Option<&'static str>,
}

#[cfg(any(feature = "aliyun", feature = "selfhosted"))]
/// Converts a JSON member value to a switch state: 0, 1, false or true.
pub(crate) fn switch_value(v: crate::json::Scalar<'_>) -> Result<bool, CommandError> {
    use crate::json::Scalar;
    match v {
        Scalar::Bool(b) => Ok(b),
        Scalar::UInt(0) => Ok(false),
        Scalar::UInt(1) => Ok(true),
        _ => Err(CommandError::WrongType),
    }
}

#[cfg(any(feature = "aliyun", feature = "selfhosted"))]
/// Validated switch changes: (index, new state), at most one per switch.
pub(crate) type Changes<const N: usize> = heapless::Vec<(usize, bool), N>;

#[cfg(any(feature = "aliyun", feature = "selfhosted"))]
/// Drives the outputs for a validated command. Returns whether the state must be reported (an
/// output changed, also when a later one then failed) and the command's outcome.
pub(crate) fn apply_validated<const N: usize, O: SwitchOutputs + ?Sized>(
    bank: &mut SwitchBank<'_, N>,
    validated: Result<Changes<N>, CommandError>,
    outputs: &mut O,
) -> (bool, Result<(), CommandError>) {
    match validated.map(|changes| bank.apply_all(&changes, outputs)) {
        Err(e) => (false, Err(e)),
        Ok(Ok(())) => (true, Ok(())),
        Ok(Err((applied, e))) => (applied > 0, Err(e)),
    }
}

#[cfg(any(feature = "aliyun", feature = "selfhosted"))]
/// Validates `name: value` members against the bank into `(index, on)` changes. Nothing is
/// applied; an empty member list is [`CommandError::MissingField`].
pub(crate) fn validate_changes<const N: usize>(
    bank: &SwitchBank<'_, N>,
    members: &[(&str, crate::json::Scalar<'_>)],
) -> Result<Changes<N>, CommandError> {
    if members.is_empty() {
        return Err(CommandError::MissingField);
    }
    let mut changes: heapless::Vec<(usize, bool), N> = heapless::Vec::new();
    for &(name, value) in members {
        let index = bank.index_of(name).ok_or(CommandError::UnknownSwitch)?;
        let on = switch_value(value)?;
        if changes.iter().any(|&(i, _)| i == index) {
            return Err(CommandError::DuplicateSwitch);
        }
        // Cannot overflow: indices are distinct and below N.
        changes
            .push((index, on))
            .map_err(|_| CommandError::DuplicateSwitch)?;
    }
    Ok(changes)
}

/// Test doubles shared by the profile tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use std::vec::Vec;

    /// Records every `set` call; fails on `fail_index` if set.
    #[derive(Debug, Default)]
    pub struct Recorder {
        pub calls: Vec<(usize, bool)>,
        pub fail_index: Option<usize>,
    }

    impl SwitchOutputs for Recorder {
        fn set(&mut self, index: usize, on: bool) -> Result<(), OutputError> {
            if self.fail_index == Some(index) {
                return Err(OutputError::Io);
            }
            self.calls.push((index, on));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::Recorder;
    use super::*;

    #[test]
    fn name_validation() {
        assert_eq!(
            SwitchBank::new(["Relay1", ""]).err(),
            Some(NameError::Empty { index: 1 })
        );
        assert_eq!(
            SwitchBank::new(["Relay 1"]).err(),
            Some(NameError::InvalidChar { index: 0 })
        );
        assert_eq!(
            SwitchBank::new(["a\"b"]).err(),
            Some(NameError::InvalidChar { index: 0 })
        );
        assert_eq!(
            SwitchBank::new(["LED", "Relay1", "LED"]).err(),
            Some(NameError::Duplicate { first: 0, index: 2 })
        );
        let long = "x".repeat(51);
        assert_eq!(
            SwitchBank::new([long.as_str()]).err(),
            Some(NameError::TooLong { index: 0 })
        );
        assert!(SwitchBank::new(["Relay_1", "LED2"]).is_ok());
    }

    #[test]
    fn apply_changes_output_then_state() {
        let mut bank = SwitchBank::new(["Relay1", "LED"]).unwrap();
        let mut out = Recorder::default();
        bank.apply("LED", true, &mut out).unwrap();
        assert_eq!(out.calls, [(1, true)]);
        assert_eq!(bank.states(), &[false, true]);
        assert_eq!(
            bank.apply("Nope", true, &mut out),
            Err(CommandError::UnknownSwitch)
        );
        assert_eq!(out.calls.len(), 1);
    }

    #[test]
    fn failed_output_keeps_state() {
        let mut bank = SwitchBank::new(["Relay1", "LED"]).unwrap();
        let mut out = Recorder {
            fail_index: Some(0),
            ..Recorder::default()
        };
        assert_eq!(
            bank.apply("Relay1", true, &mut out),
            Err(CommandError::Output(OutputError::Io))
        );
        assert_eq!(bank.state_of("Relay1"), Some(false));
        assert_eq!(
            bank.apply_all(&[(1, true), (0, true)], &mut out),
            Err((1, CommandError::Output(OutputError::Io)))
        );
        assert_eq!(bank.states(), &[false, true]);
    }

    #[test]
    fn sync_drives_all() {
        let bank = SwitchBank::new(["A", "B"]).unwrap();
        let mut out = Recorder::default();
        bank.sync_outputs(&mut out).unwrap();
        assert_eq!(out.calls, [(0, false), (1, false)]);
    }
}
