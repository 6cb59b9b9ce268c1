//! End-to-end: the simulated device (core `Device` over rustls) against a real Mosquitto over
//! TLS on loopback, with a CA and server certificate generated per test, and the platform side
//! as a second client. Tests 1–9 of the host-runner issue. They fail (not skip) under CI when
//! Mosquitto is missing, and every broker they start is killed on drop (plus a watchdog).

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::e2e::*;
use mqtts_core::codec::ConnectReturnCode;
use mqtts_core::device::DeviceEvent;
use mqtts_core::driver::FailureCause;
use mqtts_core::session::RequestError;
use mqtts_core::switch::CommandError;
use mqtts_sim::host_config::{CaFiles, HostConfig};
use mqtts_sim::mosquitto::{self, MosquittoConfig, TlsFiles};
use mqtts_sim::platform::{PlatformEvent, QoS};
use mqtts_sim::sim_device::SimDevice;
use serde_json::{json, Value};

/// First delay after an authentication/certificate failure: at least half of the default
/// `auth_min_ms` (30 s, equal jitter), far above every transient delay the tests configure.
const AUTH_BACKOFF_FLOOR_MS: u32 = 15_000;

fn tls_broker(pki: &mqtts_sim::pki::TestPki) -> mosquitto::Mosquitto {
    mosquitto(MosquittoConfig {
        tls: Some(tls_files(pki)),
        ..Default::default()
    })
}

/// 1. Connects over verified TLS, subscribes to its command topic, reports status and state.
#[test]
fn e2e_1_connects_verifies_subscribes_reports() {
    if !mosquitto::available_or_skip("e2e_1_connects_verifies_subscribes_reports") {
        return;
    }
    let (_dir, pki) = pki();
    let broker = tls_broker(&pki);
    let port = broker.tls_port();
    let watcher = platform(
        platform_options(port, &pki.ca_file, "e2e1-platform")
            .subscribe("devices/d1/state", QoS::AtLeastOnce)
            .subscribe("devices/d1/status", QoS::AtLeastOnce),
    );
    let device = SimDevice::start(device_config(port, &pki.ca_file, "d1"), false).unwrap();

    let first = wait_device(&device, STEP, "first event", |o| Some(o.event));
    assert_eq!(first, DeviceEvent::Connecting);
    let session_present = wait_device(&device, STEP, "online", |o| match o.event {
        DeviceEvent::Online { session_present } => Some(session_present),
        DeviceEvent::Offline { .. } => panic!("connection failed: {o:?}\n{}", broker.log()),
        _ => None,
    });
    assert!(!session_present);
    let status = wait_message(&watcher, STEP, "status", |m| {
        (m.topic == "devices/d1/status").then(|| m.clone())
    });
    assert_eq!(status.text(), "online");
    assert!(status.qos == QoS::AtLeastOnce);
    let state = wait_message(&watcher, STEP, "state", |m| {
        (m.topic == "devices/d1/state").then(|| m.json().unwrap())
    });
    assert_eq!(state["switches"], json!({"Relay1": false, "LED": false}));
    assert_eq!(state["reconnects"], 0);
    assert_eq!(state["last_failure"], Value::Null);

    // The broker saw our client, its subscription to the command topic, and no TLS errors.
    let log = broker.log();
    assert!(log.contains("New client connected from 127.0.0.1"), "{log}");
    assert!(log.contains("as d1 (p2, c1, k60)"), "{log}");
    assert!(log.contains("Received SUBSCRIBE from d1"), "{log}");
    assert!(log.contains("devices/d1/set (QoS 1)"), "{log}");
    // A retained state is kept for late subscribers.
    let late = platform(
        platform_options(port, &pki.ca_file, "e2e1-late")
            .subscribe("devices/d1/state", QoS::AtLeastOnce),
    );
    let retained = wait_message(&late, STEP, "retained state", |m| Some(m.clone()));
    assert!(retained.retain);
    assert_eq!(device.status().connections, 1);
}

fn assert_backs_off_after_certificate_failure(device: &SimDevice, detail_has: &str) {
    let (retry, detail) = wait_device(device, STEP, "offline", |o| match o.event {
        DeviceEvent::Offline { cause, retry_in_ms } => {
            assert_eq!(cause, FailureCause::TlsVerification, "{o:?}");
            Some((retry_in_ms, o.detail.clone().unwrap_or_default()))
        }
        DeviceEvent::Online { .. } => panic!("connected despite a bad certificate"),
        _ => None,
    });
    assert!(detail.contains(detail_has), "{detail}");
    assert!(retry >= AUTH_BACKOFF_FLOOR_MS, "retry in {retry} ms");
    // No tight loop: no further attempt within the next 3 s.
    let later = collect_device(device, Duration::from_secs(3));
    assert!(
        !later.iter().any(|o| o.event == DeviceEvent::Connecting),
        "retried too soon: {later:?}"
    );
}

/// 2. A CA that did not issue the broker's certificate: verification fails, long backoff.
#[test]
fn e2e_2_wrong_ca_fails_verification_and_backs_off() {
    if !mosquitto::available_or_skip("e2e_2_wrong_ca_fails_verification_and_backs_off") {
        return;
    }
    let (_dir, pki) = pki();
    let broker = tls_broker(&pki);
    let wrong = pki.write_wrong_ca().unwrap();
    let device = SimDevice::start(device_config(broker.tls_port(), &wrong, "d2"), false).unwrap();
    assert_backs_off_after_certificate_failure(&device, "UnknownIssuer");
    assert!(!broker.log().contains("as d2"), "no MQTT session may start");
}

/// 3. The certificate names another host: fails with the verification cause (name mismatch).
#[test]
fn e2e_3_hostname_mismatch_fails_verification() {
    if !mosquitto::available_or_skip("e2e_3_hostname_mismatch_fails_verification") {
        return;
    }
    let (_dir, pki) = pki();
    let (_, other) = pki
        .write_server_for_other_host("broker.example.com", "other")
        .unwrap();
    let broker = mosquitto(MosquittoConfig {
        tls: Some(TlsFiles {
            ca_file: pki.ca_file.clone(),
            cert_file: other.cert_file,
            key_file: other.key_file,
        }),
        ..Default::default()
    });
    let device =
        SimDevice::start(device_config(broker.tls_port(), &pki.ca_file, "d3"), false).unwrap();
    assert_backs_off_after_certificate_failure(&device, "not valid for name");

    // The same broker verifies when the device asks for the name on the certificate (SNI).
    let mut config = device_config(broker.tls_port(), &pki.ca_file, "d3b");
    config.tls_server_name = Some("broker.example.com".into());
    let device = SimDevice::start(config, false).unwrap();
    wait_device(&device, STEP, "online", |o| {
        matches!(o.event, DeviceEvent::Online { .. }).then_some(())
    });
}

/// 4. Platform commands: output, reply and state change; an invalid command changes nothing.
#[test]
fn e2e_4_platform_sets_switch_and_invalid_command_is_refused() {
    if !mosquitto::available_or_skip("e2e_4_platform_sets_switch_and_invalid_command_is_refused") {
        return;
    }
    let (_dir, pki) = pki();
    let broker = tls_broker(&pki);
    let port = broker.tls_port();
    let p = platform(
        platform_options(port, &pki.ca_file, "e2e4-platform")
            .subscribe("devices/d4/reply", QoS::AtLeastOnce)
            .subscribe("devices/d4/state", QoS::AtLeastOnce),
    );
    let device = SimDevice::start(device_config(port, &pki.ca_file, "d4"), false).unwrap();
    wait_device_ready(&device);
    wait_message(&p, STEP, "initial state", |m| {
        (m.topic == "devices/d4/state").then_some(())
    });

    let set = |payload: &str| {
        p.publish(
            "devices/d4/set",
            payload.as_bytes(),
            QoS::AtLeastOnce,
            false,
        )
        .unwrap();
    };
    set(r#"{"id":"c1","switch":"LED","on":true}"#);
    let reply = wait_message(&p, STEP, "reply c1", |m| {
        (m.topic == "devices/d4/reply").then(|| m.text())
    });
    assert_eq!(reply, r#"{"id":"c1","ok":true}"#);
    let state = wait_message(&p, STEP, "state after c1", |m| {
        (m.topic == "devices/d4/state").then(|| m.json().unwrap())
    });
    assert_eq!(state["switches"], json!({"Relay1": false, "LED": true}));
    let out = device.outputs();
    assert_eq!(out.states, [false, true]);
    assert_eq!(out.changes, [(1, true)]);
    let command = wait_device(&device, STEP, "command event", |o| match o.event {
        DeviceEvent::Command { changed, error } => Some((changed, error)),
        _ => None,
    });
    assert_eq!(command, (true, None));

    // Unknown switch, bad value, malformed JSON: error replies, nothing changes.
    set(r#"{"id":"c2","switch":"Pump","on":true}"#);
    set(r#"{"id":"c3","switches":{"Relay1":true,"LED":"maybe"}}"#);
    set("{not json");
    let mut replies = Vec::new();
    while replies.len() < 3 {
        replies.push(wait_message(&p, STEP, "error reply", |m| {
            (m.topic == "devices/d4/reply").then(|| m.text())
        }));
    }
    assert_eq!(
        replies,
        [
            r#"{"id":"c2","ok":false,"error":"unknown_switch"}"#,
            r#"{"id":"c3","ok":false,"error":"bad_value"}"#,
            r#"{"id":null,"ok":false,"error":"malformed_json"}"#,
        ]
    );
    let errors: Vec<_> = collect_device(&device, Duration::from_millis(500))
        .into_iter()
        .filter_map(|o| match o.event {
            DeviceEvent::Command { changed, error } => Some((changed, error)),
            _ => None,
        })
        .collect();
    assert_eq!(
        errors,
        [
            (false, Some(CommandError::UnknownSwitch)),
            (false, Some(CommandError::WrongType)),
            (false, Some(CommandError::MalformedJson)),
        ]
    );
    assert_eq!(device.outputs(), out, "a refused command changed an output");
    // No state report follows a refused command.
    assert!(p.next_event(Duration::from_millis(300)).is_none());
}

/// Payload of burst/persistence message `n` of run `tag`.
fn numbered(tag: &str, n: usize) -> String {
    format!(r#"{{"run":"{tag}","n":{n}}}"#)
}

/// Collects messages on `topic` until all `expected` payloads arrived; returns (received,
/// unique). Fails on an unexpected payload.
fn collect_all(
    sub: &mqtts_sim::platform::PlatformClient,
    topic: &str,
    expected: &[String],
    timeout: Duration,
    session_present_after_restart: &mut Option<bool>,
) -> (usize, usize) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut received = 0;
    let deadline = Instant::now() + timeout;
    while seen.len() < expected.len() {
        let left = deadline
            .checked_duration_since(Instant::now())
            .unwrap_or_else(|| {
                let missing: Vec<_> = expected
                    .iter()
                    .filter(|e| !seen.contains_key(e.as_str()))
                    .take(10)
                    .collect();
                panic!(
                    "only {} of {} messages arrived in {timeout:?}; missing e.g. {missing:?}",
                    seen.len(),
                    expected.len()
                )
            });
        match sub.next_event(left.min(Duration::from_millis(200))) {
            Some(PlatformEvent::Message(m)) if m.topic == topic => {
                let text = m.text();
                let key = expected
                    .iter()
                    .find(|e| **e == text)
                    .unwrap_or_else(|| panic!("unexpected payload {text:?}"));
                assert_eq!(m.qos, QoS::AtLeastOnce);
                received += 1;
                *seen.entry(key.as_str()).or_default() += 1;
            }
            Some(PlatformEvent::Online { session_present }) => {
                *session_present_after_restart = Some(session_present);
            }
            _ => {}
        }
    }
    (received, seen.len())
}

/// 5. QoS 1 messages published while the broker is down (SIGKILL, then restarted on the same
///    persistence data) all reach a persistent subscriber after it returns.
#[test]
fn e2e_5_qos1_published_while_broker_down_are_delivered() {
    if !mosquitto::available_or_skip("e2e_5_qos1_published_while_broker_down_are_delivered") {
        return;
    }
    let (_dir, pki) = pki();
    let mut broker = mosquitto(MosquittoConfig {
        tls: Some(tls_files(&pki)),
        persistence: true,
        extra: vec!["max_queued_messages 5000".into()],
        ..Default::default()
    });
    let port = broker.tls_port();
    let sub = persistent_subscriber(port, &pki.ca_file, "e2e5-sub", "devices/d5/data");
    // Ten messages are stored while the broker is down: more than the default `inflight_max`.
    let config = HostConfig {
        inflight_max: Some(16),
        ..device_config(port, &pki.ca_file, "d5")
    };
    let device = SimDevice::start(config, false).unwrap();
    wait_device_ready(&device);

    // Make Mosquitto write its persistence file now (SIGUSR1), so the subscriber's session
    // survives the SIGKILL below; wait until the file is there.
    let db = broker.dir().join("data/mosquitto.db");
    signal(broker.pid().unwrap(), "-USR1");
    let deadline = Instant::now() + STEP;
    while !db.exists() {
        assert!(Instant::now() < deadline, "mosquitto did not save {db:?}");
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(200));

    broker.kill();
    wait_device(&device, STEP, "offline", |o| {
        matches!(o.event, DeviceEvent::Offline { .. }).then_some(())
    });
    let tag = format!("{:x}", std::process::id());
    let expected: Vec<String> = (0..10).map(|n| numbered(&tag, n)).collect();
    for payload in &expected {
        let id = device
            .publish(
                "devices/d5/data",
                payload.as_bytes(),
                mqtts_core::codec::QoS::AtLeastOnce,
            )
            .expect("stored while offline");
        assert!(id.is_some());
    }
    // Still down: nothing can have been delivered yet.
    thread::sleep(Duration::from_millis(500));
    broker.restart().unwrap();

    let mut session_present = None;
    let (received, unique) = collect_all(
        &sub,
        "devices/d5/data",
        &expected,
        Duration::from_secs(30),
        &mut session_present,
    );
    assert_eq!(unique, 10);
    assert!(received >= 10);
    assert_eq!(
        session_present,
        Some(true),
        "the subscriber's session must come back from persistence"
    );
    assert!(device.status().connections >= 2);
}

/// 6. The broker freezes (SIGSTOP): the device declares the link dead within keepalive + ping
///    timeout and reconnects after SIGCONT.
#[test]
fn e2e_6_keepalive_detects_frozen_broker_and_reconnects() {
    if !mosquitto::available_or_skip("e2e_6_keepalive_detects_frozen_broker_and_reconnects") {
        return;
    }
    let (_dir, pki) = pki();
    let mut broker = tls_broker(&pki);
    let mut config = device_config(broker.tls_port(), &pki.ca_file, "d6");
    config.keepalive_s = Some(2);
    config.ping_timeout_ms = Some(1_000);
    config.connect_timeout_ms = Some(1_500);
    let device = SimDevice::start(config, false).unwrap();
    wait_device_ready(&device);
    // Let the report traffic settle so the link is idle.
    collect_device(&device, Duration::from_millis(200));

    broker.pause().unwrap();
    let frozen = Instant::now();
    let (cause, elapsed) = wait_device(&device, Duration::from_secs(10), "offline", |o| {
        match o.event {
            DeviceEvent::Offline { cause, .. } => Some((cause, frozen.elapsed())),
            _ => None,
        }
    });
    assert_eq!(cause, FailureCause::KeepaliveTimeout);
    // Keepalive 2 s + ping timeout 1 s, plus margin for poll granularity.
    assert!(elapsed <= Duration::from_millis(4_500), "{elapsed:?}");
    assert!(
        elapsed >= Duration::from_millis(1_000),
        "declared dead too early: {elapsed:?}"
    );

    // While frozen, attempts time out (TCP completes, TLS never does) without a tight loop.
    let attempts = collect_device(&device, Duration::from_secs(3));
    let connects = attempts
        .iter()
        .filter(|o| o.event == DeviceEvent::Connecting)
        .count();
    assert!(connects <= 3, "{attempts:?}");
    assert!(attempts
        .iter()
        .all(|o| !matches!(o.event, DeviceEvent::Online { .. })));

    broker.resume().unwrap();
    wait_device(&device, STEP, "reconnect after SIGCONT", |o| {
        matches!(o.event, DeviceEvent::Online { .. }).then_some(())
    });
    assert!(device.status().connections >= 2);
    assert!(device.status().last_failure.is_some());
}

/// 7. Wrong password: the CONNACK refusal is reported by its code, with the long backoff.
#[test]
fn e2e_7_wrong_password_is_refused_by_code_with_long_backoff() {
    if !mosquitto::available_or_skip("e2e_7_wrong_password_is_refused_by_code_with_long_backoff") {
        return;
    }
    let (_dir, pki) = pki();
    let broker = mosquitto(MosquittoConfig {
        tls: Some(tls_files(&pki)),
        users: vec![("dev7".into(), "right-password".into())],
        ..Default::default()
    });
    let mut config = device_config(broker.tls_port(), &pki.ca_file, "d7");
    config.username = Some("dev7".into());
    config.password = Some("wrong-password".into());
    let device = SimDevice::start(config, false).unwrap();
    let (cause, retry) = wait_device(&device, STEP, "offline", |o| match o.event {
        DeviceEvent::Offline { cause, retry_in_ms } => Some((cause, retry_in_ms)),
        DeviceEvent::Online { .. } => panic!("accepted a wrong password"),
        _ => None,
    });
    // Mosquitto 2.0 answers a 3.1.1 client's bad password with return code 5.
    assert_eq!(
        cause,
        FailureCause::ConnAckRefused(ConnectReturnCode::NotAuthorized)
    );
    assert_eq!(cause.as_str(), "connack_not_authorized");
    // Transient failures of this config back off at most backoff_max_ms = 1 s.
    assert!(retry >= AUTH_BACKOFF_FLOOR_MS, "retry in {retry} ms");
    let later = collect_device(&device, Duration::from_secs(2));
    assert!(
        !later.iter().any(|o| o.event == DeviceEvent::Connecting),
        "{later:?}"
    );

    // The right password connects (same broker, same code path).
    let mut config = device_config(broker.tls_port(), &pki.ca_file, "d7b");
    config.username = Some("dev7".into());
    config.password = Some("right-password".into());
    let device = SimDevice::start(config, false).unwrap();
    wait_device(&device, STEP, "online", |o| {
        matches!(o.event, DeviceEvent::Online { .. }).then_some(())
    });
}

/// HMAC-SHA256 of `content` with `key`, upper-case hex, by the openssl binary.
fn openssl_hmac_sha256(key: &str, content: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", key])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl is needed for the Alibaba test");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(content.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    // "HMAC-SHA2-256(stdin)= 5d…" (the prefix differs between versions).
    let hex = text.split_whitespace().last().unwrap().to_string();
    assert_eq!(hex.len(), 64, "{text}");
    // Alibaba compares case-insensitively; the Link SDK (and this firmware) send upper case.
    hex.to_ascii_uppercase()
}

/// 8. Alibaba profile against Mosquitto: the password file holds the HMAC computed by openssl;
///    the device logs in with securemode=2 and the Alink property set/reply/post flow works.
#[test]
fn e2e_8_aliyun_profile_logs_in_and_alink_topics_work() {
    if !mosquitto::available_or_skip("e2e_8_aliyun_profile_logs_in_and_alink_topics_work") {
        return;
    }
    let (_dir, pki) = pki();
    // Signed content: clientId + deviceName + productKey (sorted), no timestamp.
    let password = openssl_hmac_sha256("secret", "clientIdpk.devicedeviceNamedeviceproductKeypk");
    let broker = mosquitto(MosquittoConfig {
        tls: Some(tls_files(&pki)),
        users: vec![
            ("device&pk".into(), password),
            ("platform".into(), "platform-pass".into()),
        ],
        ..Default::default()
    });
    let port = broker.tls_port();
    let mut options = platform_options(port, &pki.ca_file, "e2e8-platform")
        .subscribe("/sys/pk/device/thing/#", QoS::AtLeastOnce);
    options.username = Some("platform".into());
    options.password = Some("platform-pass".into());
    let p = platform(options);

    let config = mqtts_sim::host_config::HostConfig {
        profile: Some("aliyun".into()),
        broker_host: Some("localhost".into()),
        broker_port: Some(port.into()),
        aliyun_product_key: Some("pk".into()),
        aliyun_device_name: Some("device".into()),
        aliyun_device_secret: Some("secret".into()),
        ca_file: Some(CaFiles::One(pki.ca_file.display().to_string())),
        backoff_min_ms: Some(200),
        backoff_max_ms: Some(1_000),
        telemetry_period_s: Some(0),
        ..Default::default()
    };
    let device = SimDevice::start(config, false).unwrap();
    wait_device(&device, STEP, "online", |o| match o.event {
        DeviceEvent::Online { .. } => Some(()),
        DeviceEvent::Offline { .. } => panic!("login failed: {o:?}\n{}", broker.log()),
        _ => None,
    });
    let log = broker.log();
    assert!(
        log.contains(
            "as pk.device|securemode=2,signmethod=hmacsha256| (p2, c1, k60, u'device&pk')"
        ),
        "{log}"
    );
    for filter in [
        "/sys/pk/device/thing/service/property/set (QoS 1)",
        "/sys/pk/device/thing/event/property/post_reply (QoS 0)",
        "/sys/pk/device/thing/service/+ (QoS 1)",
    ] {
        let deadline = Instant::now() + STEP;
        while !broker.log().contains(filter) {
            assert!(
                Instant::now() < deadline,
                "no subscription {filter}\n{}",
                broker.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
    let post = wait_message(&p, STEP, "first property post", |m| {
        (m.topic == "/sys/pk/device/thing/event/property/post").then(|| m.json().unwrap())
    });
    assert_eq!(post["method"], "thing.event.property.post");
    assert_eq!(post["params"]["Relay1"], 0);
    assert_eq!(post["params"]["LED"], 0);

    let set = r#"{"method":"thing.service.property.set","id":"123","params":{"Relay1":1},"version":"1.0.0"}"#;
    p.publish(
        "/sys/pk/device/thing/service/property/set",
        set.as_bytes(),
        QoS::AtLeastOnce,
        false,
    )
    .unwrap();
    let reply = wait_message(&p, STEP, "property set reply", |m| {
        (m.topic == "/sys/pk/device/thing/service/property/set_reply").then(|| m.json().unwrap())
    });
    assert_eq!(reply["id"], "123");
    assert_eq!(reply["code"], 200);
    let post = wait_message(&p, STEP, "property post with the new value", |m| {
        (m.topic == "/sys/pk/device/thing/event/property/post").then(|| m.json().unwrap())
    });
    assert_eq!(post["params"]["Relay1"], 1);
    assert_eq!(post["params"]["LED"], 0);
    assert_eq!(device.outputs().states, [true, false]);

    // The platform answers the post; the device matches the reply to its id.
    let answer = json!({"code":200,"data":{},"id":post["id"],"message":"success",
                        "method":"thing.event.property.post","version":"1.0"});
    p.publish(
        "/sys/pk/device/thing/event/property/post_reply",
        answer.to_string().as_bytes(),
        QoS::AtMostOnce,
        false,
    )
    .unwrap();
    let code = wait_device(&device, STEP, "report answered", |o| match o.event {
        DeviceEvent::ReportAnswered { code } => Some(code),
        _ => None,
    });
    assert_eq!(code, 200);
}

/// 9. A graceful broker restart in the middle of a burst of 1,000 QoS 1 publishes: every
///    message reaches the persistent subscriber.
#[test]
fn e2e_9_broker_restart_during_burst_loses_nothing() {
    if !mosquitto::available_or_skip("e2e_9_broker_restart_during_burst_loses_nothing") {
        return;
    }
    const COUNT: usize = 1_000;
    let (_dir, pki) = pki();
    let mut broker = mosquitto(MosquittoConfig {
        tls: Some(tls_files(&pki)),
        persistence: true,
        extra: vec!["max_queued_messages 5000".into()],
        ..Default::default()
    });
    let port = broker.tls_port();
    let sub = persistent_subscriber(port, &pki.ca_file, "e2e9-sub", "devices/d9/burst");
    let device = SimDevice::start(device_config(port, &pki.ca_file, "d9"), false).unwrap();
    wait_device_ready(&device);

    let tag = format!("{:x}", std::process::id());
    let expected: Vec<String> = (0..COUNT).map(|n| numbered(&tag, n)).collect();
    let handed = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    thread::scope(|s| {
        let restarter = s.spawn(|| {
            while handed.load(std::sync::atomic::Ordering::SeqCst) < COUNT / 3 {
                thread::sleep(Duration::from_millis(1));
            }
            broker.restart().unwrap();
        });
        for (n, payload) in expected.iter().enumerate() {
            loop {
                match device.publish(
                    "devices/d9/burst",
                    payload.as_bytes(),
                    mqtts_core::codec::QoS::AtLeastOnce,
                ) {
                    Ok(_) => break,
                    // The in-flight table is full (or the broker is away): wait for acks.
                    Err(RequestError::Busy) => thread::sleep(Duration::from_millis(1)),
                    Err(e) => panic!("publish {n}: {e:?}"),
                }
                assert!(
                    started.elapsed() < Duration::from_secs(40),
                    "burst stalled at {n}"
                );
            }
            handed.store(n + 1, std::sync::atomic::Ordering::SeqCst);
        }
        restarter.join().unwrap();
    });

    let mut session_present = None;
    let (received, unique) = collect_all(
        &sub,
        "devices/d9/burst",
        &expected,
        Duration::from_secs(40),
        &mut session_present,
    );
    assert_eq!(unique, COUNT);
    assert!(received >= COUNT);
    assert_eq!(
        session_present,
        Some(true),
        "the subscriber's session survived the restart"
    );
    let status = device.status();
    assert!(
        status.connections >= 2,
        "the device reconnected: {status:?}"
    );
}
