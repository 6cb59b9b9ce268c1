//! The `mqtts-sim` binary: the demo scenario, configuration errors (named option, allowed
//! values, no secrets, no connection attempt), `run` and `ctl` against Mosquitto.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::e2e::*;
use mqtts_sim::mosquitto::{self, MosquittoConfig};
use mqtts_sim::platform::QoS;
use mqtts_sim::sim_device::SimDevice;

const BIN: &str = env!("CARGO_BIN_EXE_mqtts-sim");

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the binary with a hard timeout; the child is killed if it overstays.
fn run(args: &[&str], env: &[(&str, &str)], timeout: Duration) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("MQTTS_PASSWORD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let (out, err) = (pipe(&mut child, true), pipe(&mut child, false));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let output = Output {
        code: status.and_then(|s| s.code()),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    assert!(
        status.is_some(),
        "mqtts-sim {args:?} did not finish in {timeout:?}\nstdout:\n{}\nstderr:\n{}",
        output.stdout,
        output.stderr
    );
    output
}

fn pipe(child: &mut Child, stdout: bool) -> thread::JoinHandle<String> {
    let mut r: Box<dyn Read + Send> = if stdout {
        Box::new(child.stdout.take().unwrap())
    } else {
        Box::new(child.stderr.take().unwrap())
    };
    thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

#[test]
fn demo_passes_and_shows_the_switches_toggling() {
    let out = run(&["demo"], &[], Duration::from_secs(60));
    assert_eq!(
        out.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    for needle in [
        "OK: Relay1 switched ON",
        "OK: Relay1 switched off",
        "OK: LED switched ON",
        "OK: LED switched off",
        "link=online  Relay1=ON LED=off",
        "link=online  Relay1=off LED=ON",
        "command refused: unknown_switch",
        "reconnects=1",
        "demo passed",
    ] {
        assert!(
            out.stdout.contains(needle),
            "missing {needle:?} in:\n{}",
            out.stdout
        );
    }
    // The log ends with the stop: no client sees the broker go away after the success line.
    assert_eq!(
        out.stderr.lines().last(),
        Some("INFO  device demo-device stopped"),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.stdout.lines().last().map(|l| l.contains("demo passed")),
        Some(true),
        "{}",
        out.stdout
    );
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Runs `run --config` on `text` and checks it fails with exit code 2 before connecting,
/// naming `field` and `allowed`, and never printing `secret`.
fn config_error(text: &str, field: &str, allowed: &str, secret: &str) {
    let dir = tempfile::tempdir().unwrap();
    // A listener at the configured address would see any connection attempt.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let text = text.replace("PORT", &port.to_string());
    let path = write(dir.path(), "device.toml", &text);
    let out = run(
        &["run", "--config", &path],
        &[("MQTTS_LOG", "debug")],
        Duration::from_secs(20),
    );
    assert_eq!(out.code, Some(2), "{}{}", out.stdout, out.stderr);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains(&format!("option `{field}`")), "{all}");
    assert!(all.contains(allowed), "{all}");
    assert!(!all.contains(secret), "secret printed:\n{all}");
    assert!(listener.accept().is_err(), "a connection was tried");
}

#[test]
fn invalid_configs_name_the_option_and_never_print_secrets() {
    let selfhosted = "profile = \"self-hosted\"\nbroker_host = \"127.0.0.1\"\nbroker_port = PORT\n\
                      device_id = \"d1\"\nusername = \"u\"\npassword = \"hunter2-S3CR3T\"\n\
                      tls_peer_verify = false\n";
    config_error(
        &format!("{selfhosted}keepalive_s = 99999\n"),
        "keepalive_s",
        "0..=65535",
        "hunter2-S3CR3T",
    );
    config_error(
        &selfhosted.replace("self-hosted", "mosquitto"),
        "profile",
        "aliyun, self-hosted",
        "hunter2-S3CR3T",
    );
    config_error(
        &format!("{selfhosted}switches = [\"Relay-1\"]\n"),
        "switches",
        "[A-Za-z0-9_]",
        "hunter2-S3CR3T",
    );
    config_error(
        &format!("{selfhosted}colour = \"blue\"\n"),
        "colour",
        "unknown field",
        "hunter2-S3CR3T",
    );
    // A secret of the wrong type: the parser's text would quote it.
    config_error(
        &selfhosted.replace("\"hunter2-S3CR3T\"", "8675309123"),
        "password",
        "string",
        "8675309123",
    );
    let aliyun = "profile = \"aliyun\"\nbroker_host = \"127.0.0.1\"\nbroker_port = PORT\n\
                  aliyun_product_key = \"pk\"\naliyun_device_name = \"dn\"\n\
                  aliyun_device_secret = \"ALIYUN-S3CR3T\"\n";
    config_error(
        &format!("{aliyun}username = \"x\"\n"),
        "username",
        "computed",
        "ALIYUN-S3CR3T",
    );
    config_error(aliyun, "ca_file", "tls_peer_verify", "ALIYUN-S3CR3T");
    config_error(
        &format!("{aliyun}ca_file = \"/nonexistent/ca.pem\"\n"),
        "ca_file",
        "/nonexistent/ca.pem",
        "ALIYUN-S3CR3T",
    );
}

#[test]
fn run_and_ctl_against_mosquitto() {
    if !mosquitto::available_or_skip("run_and_ctl_against_mosquitto") {
        return;
    }
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

    // `run`: the binary's device connects, reports, and leaves after --duration.
    let config = format!(
        "profile = \"self-hosted\"\nbroker_host = \"localhost\"\nbroker_port = {port}\n\
         device_id = \"cli-dev\"\nusername = \"dev\"\npassword = \"dev-S3CR3T\"\n\
         ca_file = \"{ca}\"\nswitches = [\"Relay1\", \"Relay2\", \"LED\"]\n"
    );
    let path = write(dir.path(), "device.toml", &config);
    let out = run(
        &["run", "--config", &path, "--duration", "2"],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("device    online"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("link=online  Relay1=off Relay2=off LED=off"),
        "{}",
        out.stdout
    );
    assert!(!format!("{}{}", out.stdout, out.stderr).contains("S3CR3T"));

    // `ctl set` against an in-process simulated device.
    let mut device_config = device_config(broker.tls_port(), &pki.ca_file, "cli-dev2");
    device_config.username = Some("dev".into());
    device_config.password = Some("dev-S3CR3T".into());
    let device = SimDevice::start(device_config, false).unwrap();
    wait_device_ready(&device);
    let ctl = |args: &[&str]| {
        let mut full = vec![
            "ctl",
            "--host",
            "localhost",
            "--port",
            &port,
            "--ca-file",
            &ca,
            "--username",
            "ops",
        ];
        full.extend_from_slice(args);
        run(
            &full,
            &[("MQTTS_PASSWORD", "ops-S3CR3T")],
            Duration::from_secs(30),
        )
    };
    let out = ctl(&["set", "cli-dev2", "LED", "on"]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("confirmed: LED is on"),
        "{}",
        out.stdout
    );
    assert_eq!(device.outputs().states, [false, true]);
    let out = ctl(&["set", "cli-dev2", "Pump", "on"]);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("unknown_switch"), "{}", out.stderr);
    // No device: times out with its own exit code.
    let out = ctl(&["--timeout", "2", "set", "nobody", "LED", "on"]);
    assert_eq!(out.code, Some(3), "{}{}", out.stdout, out.stderr);

    // `ctl watch` shows the retained status and state.
    let out = ctl(&["watch", "cli-dev2", "--duration", "2"]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("device is online"), "{}", out.stdout);
    assert!(
        out.stdout.contains("state: Relay1=off LED=ON"),
        "{}",
        out.stdout
    );
    // The watcher's view after the device leaves: its will/status says offline.
    device.stop();
    let p = platform(
        platform_options(broker.tls_port(), &pki.ca_file, "cli-check")
            .subscribe("devices/cli-dev2/status", QoS::AtLeastOnce)
            .with_credentials("ops", "ops-S3CR3T"),
    );
    let status = wait_message(&p, STEP, "status", |m| Some(m.text()));
    assert_eq!(status, "offline");
}
