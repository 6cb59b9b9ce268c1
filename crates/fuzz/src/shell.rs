//! `shell`: the `mqtts` command line grammar on arbitrary text.
//!
//! Checks: no panic; a parsed command's key and value are slices of the input; a `set` with a
//! value passed the key's value check (checked again here); the layered configuration's `set`
//! keeps it unchanged on refusal and, on success, the effective value is what was set.

use mqtts_core::config::DeviceConfig;
use mqtts_core::options::{Extra, Key, Layered};
use mqtts_core::shell::{parse_line, Command};

fn within(outer: &str, inner: &str) -> bool {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    inner.is_empty() || (i >= o && i + inner.len() <= o + outer.len())
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let line = String::from_utf8_lossy(data);
    let Ok(cmd) = parse_line(&line) else { return };
    let defaults = DeviceConfig {
        profile: Some("self-hosted"),
        broker_host: Some("mqtt.local"),
        device_id: Some("fuzz"),
        ..DeviceConfig::new()
    };
    let mut layered = Layered::new(defaults, Extra::new());
    match cmd {
        Command::Set { key, value } => {
            if let Some(v) = value {
                assert!(within(&line, v));
                assert_eq!(key.check_value(v), Ok(()));
                if let Key::Option(id) = key {
                    let before = layered;
                    match layered.set(id, v) {
                        Ok(e) => {
                            assert_eq!(e.config.validate(), Ok(()));
                            assert_eq!(layered.overrides.get(id), Some(v));
                        }
                        Err(_) => assert_eq!(layered, before),
                    }
                }
            } else {
                assert!(key.is_secret());
            }
        }
        Command::Unset { key } => {
            assert!(!matches!(key, Key::LastState(_)));
        }
        Command::Show | Command::Apply | Command::FactoryReset => {}
    }
}
