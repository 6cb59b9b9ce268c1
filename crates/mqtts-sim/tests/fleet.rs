//! A small fleet through a broker restart: 50 core devices, each with its own identity and TLS
//! session, against a real Mosquitto over TLS; `mosquitto_sub` (not our core) observes. Every
//! device must come back and every QoS 1 message a device accepted must be acknowledged and
//! delivered. The big runs are benchmarks (docs/fleet.md), not tests.

use std::time::Duration;

use mqtts_sim::fleet::{self, FleetError, FleetOptions};
use mqtts_sim::host_config::HostConfig;
use mqtts_sim::mosquitto;

const DEVICES: usize = 50;

#[test]
fn fifty_devices_survive_a_broker_restart_without_losing_qos1_messages() {
    if !mosquitto::available_or_skip("fleet restart") {
        return;
    }
    let mut options = FleetOptions::new(DEVICES, Duration::from_secs(12));
    options.restart_broker_at = Some(Duration::from_secs(5));
    options.publish_period = Duration::from_secs(1);
    options.drain_timeout = Duration::from_secs(30);
    let report = fleet::run(&options, |_| {}).expect("fleet run");
    let summary = fleet::report::summary(&report);

    assert!(report.start_all_online_s.is_some(), "{summary}");
    let restart = report.restart.as_ref().expect("a restart was done");
    // The restart really cut the devices off, and all of them came back.
    assert!(restart.min_online < DEVICES as u64, "{summary}");
    assert!(restart.all_online_after_s.is_some(), "{summary}");
    assert!(restart.peak_connects_per_s > 0, "{summary}");
    let online_at_end = report.samples.last().map(|s| s.online);
    assert_eq!(online_at_end, Some(DEVICES as u64), "{summary}");

    // About one message per device per second for 12 s: at least half of that got through.
    assert!(report.published >= (DEVICES * 6) as u64, "{summary}");
    assert_eq!(report.acknowledged, report.published, "{summary}");
    assert_eq!(report.unacknowledged, 0, "{summary}");
    assert_eq!(report.observed, report.published, "{summary}");
    assert_eq!(report.lost, 0, "{summary}");
    assert!(report.passed, "{summary}");

    // The per-second counters add up to the totals.
    let sum = |f: fn(&fleet::Sample) -> u64| report.samples.iter().map(f).sum::<u64>();
    assert_eq!(sum(|s| s.published), report.published, "{summary}");
    assert!(
        sum(|s| s.connects_completed) >= 2 * DEVICES as u64,
        "{summary}"
    );
}

#[test]
fn restarting_an_external_broker_is_refused() {
    let mut options = FleetOptions::new(3, Duration::from_secs(1));
    options.config = Some(HostConfig::default());
    options.restart_broker_at = Some(Duration::from_secs(1));
    match fleet::run(&options, |_| {}) {
        Err(FleetError::Usage(m)) => assert!(m.contains("--restart-broker-at"), "{m}"),
        other => panic!("expected a usage error, got {other:?}"),
    }
}
