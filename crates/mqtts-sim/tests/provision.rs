//! Provisioning end to end against Mosquitto over TLS: `mqtts-sim provision` stores options,
//! `mqtts-sim run --store` uses them over the TOML file; a new port and password take effect
//! after a restart; a switch with `power_on = last` keeps its state across a restart (the
//! command comes from `mosquitto_pub`, an independent client); a damaged store is reported and
//! the device comes up on the file's defaults. Secrets never appear in any output.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::e2e::*;
use mqtts_sim::mosquitto::{self, MosquittoConfig};

const BIN: &str = env!("CARGO_BIN_EXE_mqtts-sim");

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Output {
    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

fn spawn(args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("MQTTS_PASSWORD")
        .spawn()
        .unwrap()
}

fn finish(mut child: Child, timeout: Duration) -> Output {
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let e = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
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
        stdout: o.join().unwrap(),
        stderr: e.join().unwrap(),
    };
    assert!(status.is_some(), "did not finish:\n{}", output.all());
    output
}

fn run(args: &[&str]) -> Output {
    finish(spawn(args), Duration::from_secs(60))
}

const SECRETS: [&str; 3] = ["passA-S3CR3T", "passB-S3CR3T", "ops-S3CR3T"];

fn no_secrets(o: &Output) {
    for s in SECRETS {
        assert!(!o.all().contains(s), "secret {s} printed:\n{}", o.all());
    }
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

#[test]
fn provision_run_change_restart_and_damage() {
    if !mosquitto::available_or_skip("provision_run_change_restart_and_damage") {
        return;
    }
    let (dir, pki) = pki();
    let broker_a = mosquitto(MosquittoConfig {
        tls: Some(tls_files(&pki)),
        users: vec![("dev".into(), "passA-S3CR3T".into())],
        ..Default::default()
    });
    let broker_b = mosquitto(MosquittoConfig {
        tls: Some(tls_files(&pki)),
        users: vec![
            ("dev".into(), "passB-S3CR3T".into()),
            ("ops".into(), "ops-S3CR3T".into()),
        ],
        ..Default::default()
    });
    let (port_a, port_b) = (broker_a.tls_port(), broker_b.tls_port());
    let ca = pki.ca_file.display().to_string();
    // The TOML file = the build-time defaults: broker A.
    let toml = path(dir.path(), "device.toml");
    std::fs::write(
        &toml,
        format!(
            "profile = \"self-hosted\"\nbroker_host = \"localhost\"\nbroker_port = {port_a}\n\
             device_id = \"prov-dev\"\nusername = \"dev\"\npassword = \"passA-S3CR3T\"\n\
             ca_file = \"{ca}\"\nswitches = [\"Relay1\", \"LED\"]\n"
        ),
    )
    .unwrap();
    let store = path(dir.path(), "store.bin");
    let provision = |extra: &[&str]| {
        let mut args = vec!["provision", "--store", &store, "--config", &toml];
        args.extend_from_slice(extra);
        let o = run(&args);
        no_secrets(&o);
        o
    };

    // Provision broker B's port and password, and `last` for Relay1.
    let pb = port_b.to_string();
    let o = provision(&[
        "set",
        "broker_port",
        &pb,
        "password",
        "passB-S3CR3T",
        "power_on.Relay1",
        "last",
    ]);
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert!(
        o.stdout.contains("password = <set> (stored)"),
        "{}",
        o.stdout
    );

    // A bad value is refused naming the option and the allowed values; nothing is stored.
    let before = std::fs::read(&store).unwrap();
    let o = provision(&["set", "keepalive_s", "70000"]);
    assert_eq!(o.code, Some(2), "{}", o.all());
    assert!(o.stderr.contains("`keepalive_s`"), "{}", o.stderr);
    assert!(o.stderr.contains("0..=65535"), "{}", o.stderr);
    let o = provision(&["set", "backoff_max_ms", "100"]);
    assert_eq!(o.code, Some(2), "{}", o.all());
    assert!(o.stderr.contains("`backoff_max_ms`"), "{}", o.stderr);
    let o = provision(&["set", "brokr_port", "1"]);
    assert_eq!(o.code, Some(2), "{}", o.all());
    assert!(
        o.stderr.contains("unknown option `brokr_port`"),
        "{}",
        o.stderr
    );
    assert_eq!(std::fs::read(&store).unwrap(), before, "nothing stored");

    // `show`: effective values and their source; the secret only as <set>.
    let o = provision(&["show"]);
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert!(
        o.stdout
            .contains(&format!("broker_port            = {port_b} (stored)")),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("password               = <set> (stored)"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("device_id              = prov-dev (default)"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("power_on.Relay1        = last (stored)"),
        "{}",
        o.stdout
    );

    // Run on the stored values (broker B accepts only passB). While it runs, an independent
    // client (mosquitto_pub) switches Relay1 on; with a 300 ms hold the state is stored.
    let child = spawn(&[
        "run",
        "--config",
        &toml,
        "--store",
        &store,
        "--hold-ms",
        "300",
        "--duration",
        "6",
    ]);
    thread::sleep(Duration::from_millis(2500));
    let status = Command::new("mosquitto_pub")
        .args([
            "-h",
            "localhost",
            "-p",
            &pb,
            "--cafile",
            &ca,
            "-u",
            "ops",
            "-P",
            "ops-S3CR3T",
            "-q",
            "1",
            "-t",
            "devices/prov-dev/set",
            "-m",
            r#"{"id":"p1","switch":"Relay1","on":true}"#,
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let o = finish(child, Duration::from_secs(60));
    no_secrets(&o);
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert!(o.stdout.contains("device    online"), "{}", o.all());
    assert!(o.stdout.contains("Relay1=ON"), "{}", o.all());
    assert!(
        o.stdout.contains("stored last.Relay1 = true"),
        "{}",
        o.all()
    );

    // Restart: Relay1 comes up on (power_on.Relay1 = last), LED off (default rule).
    let o = run(&[
        "run",
        "--config",
        &toml,
        "--store",
        &store,
        "--duration",
        "2",
    ]);
    no_secrets(&o);
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert!(o.stdout.contains("device    online"), "{}", o.all());
    assert!(
        o.stdout.contains("link=online  Relay1=ON LED=off"),
        "{}",
        o.all()
    );
    assert!(!o.stdout.contains("Relay1=off"), "{}", o.all());

    // Change port and password back to broker A's values through the store... by unsetting
    // them: the TOML defaults apply again.
    let o = provision(&["unset", "broker_port", "password"]);
    assert_eq!(o.code, Some(0), "{}", o.all());
    let o = run(&[
        "run",
        "--config",
        &toml,
        "--store",
        &store,
        "--duration",
        "2",
    ]);
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert!(o.stdout.contains("device    online"), "{}", o.all());
    assert!(broker_a.log().contains("prov-dev"), "{}", broker_a.log());

    // Damaged store: every record broken. Reported, and the device runs on the defaults
    // (broker A, all switches off).
    let o = provision(&["set", "broker_port", &pb, "password", "passB-S3CR3T"]);
    assert_eq!(o.code, Some(0), "{}", o.all());
    let mut bytes = std::fs::read(&store).unwrap();
    for b in bytes.iter_mut().skip(9).step_by(6) {
        *b ^= 0x5A;
    }
    std::fs::write(&store, &bytes).unwrap();
    let o = run(&[
        "run",
        "--config",
        &toml,
        "--store",
        &store,
        "--duration",
        "2",
    ]);
    no_secrets(&o);
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert!(o.stderr.contains("store: damaged record"), "{}", o.all());
    assert!(o.stdout.contains("device    online"), "{}", o.all());
    assert!(
        o.stdout.contains("link=online  Relay1=off LED=off"),
        "{}",
        o.all()
    );
}
