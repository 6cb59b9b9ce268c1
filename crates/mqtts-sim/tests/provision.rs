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

/// Hex HMAC-SHA256 computed by OpenSSL (independent of the code under test), upper case.
fn openssl_hmac_sha256(key: &str, message: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", key])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl on PATH");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(message.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.rsplit(' ').next().unwrap().trim().to_ascii_uppercase()
}

/// Between `prefix` and `suffix` in `s`.
fn between<'a>(s: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    let rest = s.strip_prefix(prefix)?;
    Some(&rest[..rest.find(suffix)?])
}

const PK: &str = "a1B2c3D4e5F";
const DN: &str = "relay-1";
const PRODUCT_SECRET: &str = "Pr0duct-S3CR3T";
const DEVICE_SECRET: &str = "Dev1ce-S3CR3T-from-platform";

/// The scripted Alibaba broker: connection 0 must be a registration signed with
/// `PRODUCT_SECRET` (checked with OpenSSL); it is answered on `/ext/register`. Later
/// connections must be normal logins signed with the returned device secret.
fn alibaba_script(
    conn: &mut mqtts_sim::scripted_broker::Conn,
) -> Result<(), mqtts_sim::scripted_broker::ScriptError> {
    use mqtts_core::codec::QoS;
    use mqtts_sim::scripted_broker::{connack, publish, ClientPacket, ScriptError};
    conn.handshake()?;
    let ClientPacket::Connect {
        client_id,
        username,
        password,
        ..
    } = conn.expect_connect()?
    else {
        unreachable!()
    };
    let password = String::from_utf8(password.unwrap_or_default()).unwrap_or_default();
    let bad = |what: &str| ScriptError::Unexpected(format!("{what}: {client_id}"));
    if username.as_deref() != Some(&format!("{DN}&{PK}")) {
        return Err(bad("user name"));
    }
    if client_id.contains("authType=register") {
        let random = between(&client_id, &format!("{DN}.{PK}|random="), ",")
            .filter(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| bad("client id"))?;
        let expected_id = format!(
            "{DN}.{PK}|random={random},authType=register,securemode=2,signmethod=hmacsha256|"
        );
        if client_id != expected_id {
            return Err(bad("client id"));
        }
        let expected = openssl_hmac_sha256(
            PRODUCT_SECRET,
            &format!("deviceName{DN}productKey{PK}random{random}"),
        );
        if !password.eq_ignore_ascii_case(&expected) {
            conn.send(&connack(false, 4))?;
            return conn.wait_closed();
        }
        conn.send(&connack(false, 0))?;
        let reply = format!(
            r#"{{"productKey":"{PK}","deviceName":"{DN}","deviceSecret":"{DEVICE_SECRET}"}}"#
        );
        conn.send(&publish(
            "/ext/register",
            reply.as_bytes(),
            QoS::AtMostOnce,
            None,
        ))?;
        return conn.wait_closed();
    }
    // A normal login: `${id}|securemode=2,signmethod=hmacsha256[,timestamp=${ts}]|`.
    let id = client_id.split('|').next().unwrap_or_default();
    let params = between(&client_id, &format!("{id}|"), "|").ok_or_else(|| bad("login"))?;
    let ts = match params.strip_prefix("securemode=2,signmethod=hmacsha256") {
        Some("") => String::new(),
        Some(rest) => {
            let ts = rest
                .strip_prefix(",timestamp=")
                .ok_or_else(|| bad("login"))?;
            format!("timestamp{ts}")
        }
        None => return Err(bad("login client id")),
    };
    let expected = openssl_hmac_sha256(
        DEVICE_SECRET,
        &format!("clientId{id}deviceName{DN}productKey{PK}{ts}"),
    );
    if !password.eq_ignore_ascii_case(&expected) {
        conn.send(&connack(false, 4))?;
        return conn.wait_closed();
    }
    conn.send(&connack(false, 0))?;
    conn.serve(None, Duration::from_secs(30))
}

#[test]
fn dynamic_registration_against_a_scripted_tls_broker() {
    use mqtts_sim::scripted_broker::{ScriptOptions, ScriptedBroker};
    let (dir, pki) = pki();
    let broker =
        ScriptedBroker::start(ScriptOptions::new(pki.server.clone()), alibaba_script).unwrap();
    let ca = pki.ca_file.display().to_string();
    let toml = path(dir.path(), "aliyun.toml");
    std::fs::write(
        &toml,
        format!(
            "profile = \"aliyun\"\nbroker_host = \"localhost\"\nbroker_port = {}\n\
             aliyun_product_key = \"{PK}\"\naliyun_device_name = \"{DN}\"\n\
             ca_file = \"{ca}\"\nbackoff_min_ms = 200\nbackoff_max_ms = 1000\n",
            broker.port()
        ),
    )
    .unwrap();
    let secrets = |o: &Output| {
        for s in [PRODUCT_SECRET, DEVICE_SECRET] {
            assert!(!o.all().contains(s), "secret printed:\n{}", o.all());
        }
    };

    // A wrong ProductSecret: CONNACK refusal, one clear message, one connection only.
    let bad_store = path(dir.path(), "bad.store");
    let o = run(&[
        "provision",
        "--store",
        &bad_store,
        "--config",
        &toml,
        "set",
        "aliyun_auth",
        "register",
        "aliyun_product_secret",
        "wrong-S3CR3T",
    ]);
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert!(
        o.stdout.contains("aliyun_product_secret = <set> (stored)"),
        "{}",
        o.stdout
    );
    assert!(!o.all().contains("wrong-S3CR3T"));
    let o = run(&[
        "run",
        "--config",
        &toml,
        "--store",
        &bad_store,
        "--duration",
        "2",
    ]);
    secrets(&o);
    assert!(!o.all().contains("wrong-S3CR3T"));
    assert_eq!(o.code, Some(2), "{}", o.all());
    assert!(
        o.stderr
            .contains("registration refused by the platform (CONNACK BadUsernameOrPassword)"),
        "{}",
        o.all()
    );
    assert!(o.stderr.contains("not retrying"), "{}", o.all());
    assert!(broker.wait_ended(Duration::from_secs(10)));
    assert_eq!(broker.accepted(), 1, "no retry storm");

    // The right one: registration, the secret stored, then a normal login with it.
    let store = path(dir.path(), "good.store");
    let o = run(&[
        "provision",
        "--store",
        &store,
        "--config",
        &toml,
        "set",
        "aliyun_auth",
        "register",
        "aliyun_product_secret",
        PRODUCT_SECRET,
    ]);
    secrets(&o);
    assert_eq!(o.code, Some(0), "{}", o.all());
    let o = run(&[
        "run",
        "--config",
        &toml,
        "--store",
        &store,
        "--duration",
        "3",
    ]);
    secrets(&o);
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert!(
        o.stderr.contains("device secret received and stored"),
        "{}",
        o.all()
    );
    assert!(o.stdout.contains("device    online"), "{}", o.all());
    let o = run(&["provision", "--store", &store, "--config", &toml, "show"]);
    secrets(&o);
    assert!(
        o.stdout.contains("aliyun_device_secret   = <set> (stored)"),
        "{}",
        o.stdout
    );
    // A restart logs in directly: no new registration.
    let before = broker.accepted();
    let o = run(&[
        "run",
        "--config",
        &toml,
        "--store",
        &store,
        "--duration",
        "2",
    ]);
    secrets(&o);
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert!(!o.stderr.contains("registration"), "{}", o.all());
    assert!(o.stdout.contains("device    online"), "{}", o.all());
    let records = broker.stop();
    assert_eq!(records.len(), before + 1, "{records:?}");
}
