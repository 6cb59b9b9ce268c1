//! `mqtts-sim run` stopped by SIGINT or SIGTERM, against Mosquitto over TLS: the device
//! publishes `offline` (retained), sends DISCONNECT, and the process exits 0. The observer is
//! `mosquitto_sub` (independent of our code); the broker's log shows the clean disconnect, so the
//! will was not sent.

mod common;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::e2e::*;
use mqtts_sim::mosquitto::{self, MosquittoConfig};

const BIN: &str = env!("CARGO_BIN_EXE_mqtts-sim");

fn read_all(child: &mut Child) -> thread::JoinHandle<String> {
    let mut out = child.stdout.take().unwrap();
    thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    })
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

fn stops_cleanly_on(signal: &str, device_id: &str) {
    let (dir, pki) = pki();
    let broker = mosquitto(MosquittoConfig {
        tls: Some(tls_files(&pki)),
        users: vec![
            ("dev".into(), "dev-S3CR3T".into()),
            ("ops".into(), "ops-S3CR3T".into()),
        ],
        ..Default::default()
    });
    let port = broker.tls_port().to_string();
    let ca = pki.ca_file.display().to_string();
    let config = format!(
        "profile = \"self-hosted\"\nbroker_host = \"localhost\"\nbroker_port = {port}\n\
         device_id = \"{device_id}\"\nusername = \"dev\"\npassword = \"dev-S3CR3T\"\n\
         ca_file = \"{ca}\"\nswitches = [\"Relay1\"]\n"
    );
    let path = dir.path().join("device.toml");
    std::fs::write(&path, config).unwrap();

    let status_topic = format!("devices/{device_id}/status");
    let mut sub = Command::new("mosquitto_sub")
        .args(["-h", "localhost", "-p", &port, "--cafile", &ca, "-u", "ops"])
        .args(["-P", "ops-S3CR3T", "-q", "1", "-t", &status_topic, "-v"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let sub_out = read_all(&mut sub);

    let mut run = Command::new(BIN)
        .args(["run", "--config", path.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run_out = read_all(&mut run);
    let log = || broker.log();
    wait_for("the device online", Duration::from_secs(20), || {
        log().contains(&format!("Sending SUBACK to {device_id}"))
    });
    // Give the retained `online` and the state a moment to go out.
    thread::sleep(Duration::from_millis(500));

    let killed = Command::new("kill")
        .args([signal, &run.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = run.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = run.kill();
            panic!("mqtts-sim run did not exit after {signal}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = run_out.join().unwrap();
    assert_eq!(status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("signal received; disconnecting"),
        "{stdout}"
    );

    wait_for("offline at the observer", Duration::from_secs(10), || {
        log().contains(&format!("Received PUBLISH from {device_id}"))
            && log().contains(&format!("Client {device_id} disconnected."))
    });
    thread::sleep(Duration::from_millis(300));
    let _ = sub.kill();
    let _ = sub.wait();
    let seen = sub_out.join().unwrap();
    let lines: Vec<&str> = seen.lines().collect();
    assert_eq!(
        lines.last().copied(),
        Some(format!("{status_topic} offline").as_str()),
        "{seen}"
    );
    assert!(
        lines.contains(&format!("{status_topic} online").as_str()),
        "{seen}"
    );
    let log = log();
    // A clean DISCONNECT: Mosquitto logs "disconnected." (an unclean close is "closed its
    // connection" and sends the will).
    assert!(
        log.contains(&format!("Client {device_id} disconnected.")),
        "{log}"
    );
    assert!(
        !log.contains(&format!("Client {device_id} closed its connection")),
        "{log}"
    );
    // The will (also `offline`) was not sent: the observer got `offline` once, from the stop.
    let offline = format!("{status_topic} offline");
    assert_eq!(lines.iter().filter(|l| **l == offline).count(), 1, "{seen}");
}

#[test]
fn run_stops_cleanly_on_sigterm() {
    if !mosquitto::available_or_skip("run_stops_cleanly_on_sigterm") {
        return;
    }
    stops_cleanly_on("-TERM", "sig-term");
}

#[test]
fn run_stops_cleanly_on_sigint() {
    if !mosquitto::available_or_skip("run_stops_cleanly_on_sigint") {
        return;
    }
    stops_cleanly_on("-INT", "sig-int");
}
