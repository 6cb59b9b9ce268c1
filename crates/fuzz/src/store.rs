//! `store`: the stored-option record decoder and loader on arbitrary bytes.
//!
//! Checks: no panic; every record decoded re-encodes to the very bytes it came from; the
//! reader always advances and ends; `load` yields a configuration that validates (the
//! defaults when the stored options are unusable).

use mqtts_core::config::DeviceConfig;
use mqtts_core::options::{Extra, Layered};
use mqtts_core::store::{self, Entry, MAX_RECORD_LEN};

/// Runs one input.
pub fn run(data: &[u8]) {
    if let Ok((record, len)) = store::decode(data) {
        let mut buf = [0u8; MAX_RECORD_LEN];
        let n = store::encode(&record, &mut buf).expect("a decoded record encodes");
        assert_eq!(&buf[..n], &data[..len]);
    }
    let mut last = None;
    let mut steps = 0usize;
    for entry in store::records(data) {
        let offset = match entry {
            Entry::Record { offset, .. } | Entry::Damaged { offset, .. } => offset,
        };
        assert!(last.is_none_or(|l| offset > l) && offset < data.len());
        last = Some(offset);
        steps += 1;
        assert!(steps <= data.len());
    }
    let defaults = Layered::new(
        DeviceConfig {
            profile: Some("self-hosted"),
            broker_host: Some("mqtt.local"),
            device_id: Some("fuzz"),
            ..DeviceConfig::new()
        },
        Extra::new(),
    );
    let loaded = store::load(defaults, data, |_| {});
    assert!(loaded.layered.effective().is_ok());
}
