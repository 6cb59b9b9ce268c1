//! Helpers for the end-to-end tests: a per-test PKI and Mosquitto, device configurations, and
//! bounded waits that print what was seen when they time out.

use std::path::Path;
use std::time::{Duration, Instant};

use mqtts_core::device::DeviceEvent;
use mqtts_sim::host_config::{CaFiles, HostConfig};
use mqtts_sim::mosquitto::{Mosquitto, MosquittoConfig, TlsFiles};
use mqtts_sim::pki::TestPki;
use mqtts_sim::platform::{Message, PlatformClient, PlatformEvent, PlatformOptions, QoS};
use mqtts_sim::sim_device::{Observed, SimDevice};
use mqtts_sim::tls_transport::TransportOptions;
use tempfile::TempDir;

/// Generous bound for one step (connect, reply, delivery).
pub const STEP: Duration = Duration::from_secs(15);

/// A fresh CA and `localhost` server certificate in a temp dir.
pub fn pki() -> (TempDir, TestPki) {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(dir.path(), &[]).unwrap();
    (dir, pki)
}

/// The TLS listener files of `pki`.
pub fn tls_files(pki: &TestPki) -> TlsFiles {
    TlsFiles {
        ca_file: pki.ca_file.clone(),
        cert_file: pki.server_files.cert_file.clone(),
        key_file: pki.server_files.key_file.clone(),
    }
}

/// Starts Mosquitto or panics with its log.
pub fn mosquitto(config: MosquittoConfig) -> Mosquitto {
    Mosquitto::start(&config).unwrap_or_else(|e| panic!("{e}"))
}

/// A self-hosted device `id` on `localhost:port`, trusting `ca`, with quick reconnects and no
/// periodic telemetry (reports on connect and on change only).
pub fn device_config(port: u16, ca: &Path, id: &str) -> HostConfig {
    HostConfig {
        profile: Some("self-hosted".into()),
        broker_host: Some("localhost".into()),
        broker_port: Some(port.into()),
        device_id: Some(id.into()),
        ca_file: Some(CaFiles::One(ca.display().to_string())),
        backoff_min_ms: Some(200),
        backoff_max_ms: Some(1_000),
        connect_timeout_ms: Some(3_000),
        telemetry_period_s: Some(0),
        ..HostConfig::default()
    }
}

/// Platform client options for `localhost:port` trusting `ca`.
pub fn platform_options(port: u16, ca: &Path, client_id: &str) -> PlatformOptions {
    PlatformOptions::new(TransportOptions::tls("localhost", port, &[ca]), client_id)
}

/// Starts a platform client and waits until it is connected and subscribed.
pub fn platform(options: PlatformOptions) -> PlatformClient {
    let subscribes = !options.subscriptions.is_empty();
    let client = PlatformClient::start(options).unwrap();
    assert!(
        client.wait_ready(STEP, subscribes),
        "platform client did not connect"
    );
    client
}

/// Waits for a device event `pick` accepts; panics with the events seen otherwise.
pub fn wait_device<T>(
    device: &SimDevice,
    timeout: Duration,
    what: &str,
    pick: impl FnMut(&Observed) -> Option<T>,
) -> T {
    let mut seen = Vec::new();
    device
        .wait_for(timeout, |o| seen.push(o.clone()), pick)
        .unwrap_or_else(|| panic!("no {what} within {timeout:?}; device events: {seen:#?}"))
}

/// Waits for a platform message `pick` accepts; panics with the events seen otherwise.
pub fn wait_message<T>(
    client: &PlatformClient,
    timeout: Duration,
    what: &str,
    mut pick: impl FnMut(&Message) -> Option<T>,
) -> T {
    let mut seen = Vec::new();
    client
        .wait_for(
            timeout,
            |e| seen.push(e.clone()),
            |e| match e {
                PlatformEvent::Message(m) => pick(m),
                _ => None,
            },
        )
        .unwrap_or_else(|| panic!("no {what} within {timeout:?}; platform events: {seen:#?}"))
}

/// Waits until the device is online and its first QoS 1 message was acknowledged (so its
/// SUBSCRIBE, sent before, was processed by the broker).
pub fn wait_device_ready(device: &SimDevice) {
    let mut online = false;
    wait_device(device, STEP, "online + first acknowledgement", |o| {
        match o.event {
            DeviceEvent::Online { .. } => online = true,
            DeviceEvent::Delivered { .. } if online => return Some(()),
            _ => {}
        }
        None
    });
}

/// Collects device events for `d`.
pub fn collect_device(device: &SimDevice, d: Duration) -> Vec<Observed> {
    let deadline = Instant::now() + d;
    let mut out = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if let Ok(o) = device.events().recv_timeout(left) {
            out.push(o);
        }
    }
    out
}

/// A persistent (clean_session = false) QoS 1 subscriber to `filter`.
pub fn persistent_subscriber(
    port: u16,
    ca: &Path,
    client_id: &str,
    filter: &str,
) -> PlatformClient {
    let mut options = platform_options(port, ca, client_id).subscribe(filter, QoS::AtLeastOnce);
    options.clean_session = false;
    platform(options)
}

/// Sends a signal with the `kill` command.
pub fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}
