//! Device tests: the whole device over a scripted transport, checked on the MQTT bytes it sends.

use super::*;
use crate::codec::{decode, Packet};
use crate::switch::testing::Recorder;
use crate::transport::testing::Script;
use crate::transport::ConnectProgress;
use std::collections::VecDeque;
use std::string::{String, ToString};
use std::vec::Vec;

type TestDevice<'i> = Device<'i, Script, Recorder, 2, 1024, 1024, 2048, 8>;
type TestBuffers = DeviceBuffers<1024, 1024, 2048, 8>;

/// An owned summary of a packet the device sent.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sent {
    Connect {
        client_id: String,
        username: Option<String>,
        password: Option<String>,
        will: Option<(String, String, bool)>,
        keep_alive: u16,
    },
    Subscribe(Vec<(String, QoS)>),
    Publish {
        topic: String,
        payload: String,
        qos: QoS,
        retain: bool,
    },
    Other(u8),
}

fn sent(device: &mut TestDevice<'_>) -> Vec<Sent> {
    let bytes = core::mem::take(&mut device.driver.transport_mut().sent);
    let mut rest = &bytes[..];
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (packet, used) = decode(rest)
            .expect("device sent invalid MQTT")
            .expect("partial");
        rest = &rest[used..];
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        out.push(match packet {
            Packet::Connect(c) => Sent::Connect {
                client_id: c.client_id.to_string(),
                username: c.username.map(str::to_string),
                password: c.password.map(text),
                will: c
                    .will
                    .map(|w| (w.topic.to_string(), text(w.payload), w.retain)),
                keep_alive: c.keep_alive,
            },
            Packet::Subscribe(s) => {
                Sent::Subscribe(s.topics.iter().map(|(f, q)| (f.to_string(), q)).collect())
            }
            Packet::Publish(p) => Sent::Publish {
                topic: p.topic.to_string(),
                payload: text(p.payload),
                qos: p.qos,
                retain: p.retain,
            },
            Packet::PubAck(_) => Sent::Other(4),
            _ => Sent::Other(0),
        });
    }
    out
}

fn publish_packet(topic: &str, payload: &str) -> Vec<u8> {
    let mut buf = std::vec![0u8; 1024];
    let n = crate::codec::encode(
        &Packet::Publish(crate::codec::Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic,
            packet_id: None,
            payload: payload.as_bytes(),
        }),
        &mut buf,
    )
    .unwrap();
    buf.truncate(n);
    buf
}

fn events(device: &mut TestDevice<'_>, now: u64) -> Vec<DeviceEvent> {
    let mut out = Vec::new();
    while let Some(e) = device.poll(now, 7) {
        out.push(e);
        assert!(out.len() < 50);
    }
    out
}

#[cfg(feature = "selfhosted")]
fn self_hosted_config() -> DeviceConfig<'static> {
    DeviceConfig {
        profile: Some("self-hosted"),
        broker_host: Some("localhost"),
        device_id: Some("d1"),
        username: Some("dev"),
        password: Some("s3cret"),
        telemetry_period_s: 30,
        // The test device's whole table (the default limit is 4).
        inflight_max: 8,
        ..DeviceConfig::new()
    }
}

#[cfg(feature = "aliyun")]
fn aliyun_config() -> DeviceConfig<'static> {
    DeviceConfig {
        profile: Some("aliyun"),
        broker_host: Some("iot-x.mqtt.iothub.aliyuncs.com"),
        aliyun_product_key: Some("pk"),
        aliyun_device_name: Some("device"),
        aliyun_device_secret: Some("secret"),
        keepalive_s: 300,
        telemetry_period_s: 0,
        inflight_max: 8,
        ..DeviceConfig::new()
    }
}

fn device<'i>(identity: &'i Identity<'i>, config: &DeviceConfig<'_>) -> TestDevice<'i> {
    let script = Script {
        connect: VecDeque::from([Ok(ConnectProgress::Established)]),
        ..Script::default()
    };
    let switches = SwitchBank::new(["Relay1", "LED"]).unwrap();
    // Each test device gets buffers of its own for the rest of the test run.
    let buffers = std::boxed::Box::leak(std::boxed::Box::new(TestBuffers::new()));
    Device::new(
        buffers,
        identity,
        script,
        Recorder::default(),
        switches,
        DeviceSettings::from_config(config),
    )
}

fn feed(device: &mut TestDevice<'_>, bytes: Vec<u8>) {
    device.driver.transport_mut().incoming.push_back(bytes);
}

#[cfg(feature = "selfhosted")]
#[test]
fn self_hosted_connect_subscribe_status_and_state() {
    let config = self_hosted_config();
    let identity = Identity::from_config(&config, None).unwrap();
    let mut d = device(&identity, &config);
    // Outputs are driven to the initial (off) states before anything else.
    assert_eq!(d.outputs().calls, [(0, false), (1, false)]);
    assert_eq!(events(&mut d, 0), [DeviceEvent::Connecting]);
    feed(&mut d, std::vec![0x20, 2, 0, 0]);
    let evs = events(&mut d, 5);
    assert_eq!(
        evs,
        [
            DeviceEvent::Online {
                session_present: false
            },
            DeviceEvent::StateReported
        ]
    );
    let packets = sent(&mut d);
    assert_eq!(
        packets[0],
        Sent::Connect {
            client_id: "d1".into(),
            username: Some("dev".into()),
            password: Some("s3cret".into()),
            will: Some(("devices/d1/status".into(), "offline".into(), true)),
            keep_alive: 60,
        }
    );
    assert_eq!(
        packets[1..],
        [
            Sent::Subscribe(std::vec![("devices/d1/set".into(), QoS::AtLeastOnce)]),
            Sent::Publish {
                topic: "devices/d1/status".into(),
                payload: "online".into(),
                qos: QoS::AtLeastOnce,
                retain: true
            },
            Sent::Publish {
                topic: "devices/d1/state".into(),
                payload: r#"{"switches":{"Relay1":false,"LED":false},"uptime_s":0,"reconnects":0,"last_failure":null}"#.into(),
                qos: QoS::AtLeastOnce,
                retain: true
            },
        ]
    );
}

#[cfg(feature = "selfhosted")]
fn online_self_hosted<'i>(identity: &'i Identity<'i>) -> TestDevice<'i> {
    let mut d = device(identity, &self_hosted_config());
    events(&mut d, 0);
    feed(&mut d, std::vec![0x20, 2, 0, 0]);
    events(&mut d, 0);
    sent(&mut d);
    d.outputs.calls.clear();
    d
}

#[cfg(feature = "selfhosted")]
#[test]
fn self_hosted_command_switches_replies_and_reports() {
    let identity = Identity::from_config(&self_hosted_config(), None).unwrap();
    let mut d = online_self_hosted(&identity);
    feed(
        &mut d,
        publish_packet(
            "devices/d1/set",
            r#"{"id":"7","switch":"Relay1","on":true}"#,
        ),
    );
    let sends_before = d.driver.transport().sends.len();
    let evs = events(&mut d, 2_000);
    assert_eq!(
        evs,
        [
            DeviceEvent::Command {
                changed: true,
                error: None
            },
            DeviceEvent::StateReported
        ]
    );
    // The reply and the state report it causes leave in one send.
    assert_eq!(d.driver.transport().sends.len(), sends_before + 1);
    assert_eq!(d.outputs().calls, [(0, true)]);
    assert_eq!(d.switches().state_of("Relay1"), Some(true));
    let packets = sent(&mut d);
    assert_eq!(
        packets,
        [
            Sent::Publish {
                topic: "devices/d1/reply".into(),
                payload: r#"{"id":"7","ok":true}"#.into(),
                qos: QoS::AtLeastOnce,
                retain: false
            },
            Sent::Publish {
                topic: "devices/d1/state".into(),
                payload: r#"{"switches":{"Relay1":true,"LED":false},"uptime_s":2,"reconnects":0,"last_failure":null}"#.into(),
                qos: QoS::AtLeastOnce,
                retain: true
            },
        ]
    );
}

#[cfg(feature = "selfhosted")]
#[test]
fn self_hosted_bad_command_gets_error_reply_and_changes_nothing() {
    let identity = Identity::from_config(&self_hosted_config(), None).unwrap();
    let mut d = online_self_hosted(&identity);
    for (payload, error) in [
        (r#"{"id":"8","switch":"Pump","on":true}"#, "unknown_switch"),
        (r#"{"id":"9","switch":"LED","on":"yes"}"#, "bad_value"),
        (r#"{"id":"10","switch":"LED","on":tr"#, "malformed_json"),
    ] {
        feed(&mut d, publish_packet("devices/d1/set", payload));
        let evs = events(&mut d, 1);
        assert!(
            matches!(
                evs[..],
                [DeviceEvent::Command {
                    changed: false,
                    error: Some(_)
                }]
            ),
            "{evs:?}"
        );
        let packets = sent(&mut d);
        let [Sent::Publish { topic, payload, .. }] = &packets[..] else {
            panic!("{packets:?}")
        };
        assert_eq!(topic, "devices/d1/reply");
        assert!(
            payload.contains(&std::format!(r#""error":"{error}""#)),
            "{payload}"
        );
    }
    assert!(d.outputs().calls.is_empty());
    assert_eq!(d.switches().states(), &[false, false]);
}

#[cfg(feature = "selfhosted")]
#[test]
fn periodic_report_and_reconnect_telemetry() {
    let config = DeviceConfig {
        clean_session: false,
        ..self_hosted_config()
    };
    let identity = Identity::from_config(&config, None).unwrap();
    let mut d = online_self_hosted(&identity);
    assert_eq!(d.next_wakeup(), Some(30_000));
    assert!(events(&mut d, 29_999).is_empty());
    assert_eq!(events(&mut d, 30_000), [DeviceEvent::StateReported]);
    assert!(
        matches!(&sent(&mut d)[..], [Sent::Publish { topic, .. }] if topic == "devices/d1/state")
    );
    // A dropped connection is counted and named in the next report.
    d.driver.transport_mut().closed_by_peer = true;
    let evs = events(&mut d, 31_000);
    assert!(matches!(
        evs[0],
        DeviceEvent::Offline {
            cause: FailureCause::PeerClosed,
            ..
        }
    ));
    d.driver.transport_mut().closed_by_peer = false;
    feed(&mut d, std::vec![0x20, 2, 1, 0]);
    let evs = events(&mut d, 200_000);
    assert!(evs.contains(&DeviceEvent::Online {
        session_present: true
    }));
    // Unacknowledged earlier reports are resent first (the test broker never sent PUBACK);
    // the newest report comes last.
    let state = sent(&mut d)
        .into_iter()
        .rev()
        .find_map(|p| match p {
            Sent::Publish { topic, payload, .. } if topic == "devices/d1/state" => Some(payload),
            _ => None,
        })
        .unwrap();
    assert!(
        state.contains(r#""reconnects":1,"last_failure":"peer_closed""#),
        "{state}"
    );
}

#[cfg(feature = "aliyun")]
#[test]
fn aliyun_connect_uses_signed_credentials_and_alink_topics() {
    let config = aliyun_config();
    // Research vector V5: LinkSDK-style id `pk.device`, fixed timestamp, hmacsha256.
    let identity = Identity::from_config(&config, Some("2524608000000")).unwrap();
    assert!(!std::format!("{identity:?}").contains("2EAB47"));
    let mut d = device(&identity, &config);
    events(&mut d, 0);
    feed(&mut d, std::vec![0x20, 2, 0, 0]);
    assert_eq!(
        events(&mut d, 1),
        [
            DeviceEvent::Online {
                session_present: false
            },
            DeviceEvent::StateReported
        ]
    );
    let packets = sent(&mut d);
    let Sent::Connect {
        client_id,
        username,
        password,
        will,
        keep_alive,
    } = &packets[0]
    else {
        panic!("{packets:?}")
    };
    assert_eq!(
        client_id,
        "pk.device|securemode=2,signmethod=hmacsha256,timestamp=2524608000000|"
    );
    assert_eq!(username.as_deref(), Some("device&pk"));
    assert_eq!(
        password.as_deref().map(str::to_ascii_uppercase).as_deref(),
        Some("2EAB47D05EC94FAB1A34E7E9F54AEBD34A1E15770F932E05300193007E0091E9")
    );
    assert_eq!(*will, None);
    assert_eq!(*keep_alive, 300);
    assert_eq!(
        packets[1],
        Sent::Subscribe(std::vec![
            (
                "/sys/pk/device/thing/service/property/set".into(),
                QoS::AtLeastOnce
            ),
            ("/sys/pk/device/thing/service/+".into(), QoS::AtLeastOnce),
            (
                "/sys/pk/device/thing/event/property/post_reply".into(),
                QoS::AtMostOnce
            ),
            ("/ext/ntp/pk/device/response".into(), QoS::AtMostOnce),
        ])
    );
    assert_eq!(
        packets[2],
        Sent::Publish {
            topic: "/ext/ntp/pk/device/request".into(),
            payload: r#"{"deviceSendTime":"1"}"#.into(),
            qos: QoS::AtMostOnce,
            retain: false
        }
    );
    assert_eq!(
        packets[3],
        Sent::Publish {
            topic: "/sys/pk/device/thing/event/property/post".into(),
            payload: r#"{"id":"1","version":"1.0","params":{"Relay1":0,"LED":0,"Uptime":0,"ReconnectCount":0},"method":"thing.event.property.post"}"#.into(),
            qos: QoS::AtLeastOnce,
            retain: false
        }
    );
}

#[cfg(feature = "aliyun")]
#[test]
fn aliyun_property_set_reply_post_and_ntp() {
    let config = aliyun_config();
    let identity = Identity::from_config(&config, None).unwrap();
    let mut d = device(&identity, &config);
    events(&mut d, 0);
    feed(&mut d, std::vec![0x20, 2, 0, 0]);
    events(&mut d, 1);
    sent(&mut d);
    // The post with id 1 is answered.
    feed(
        &mut d,
        publish_packet(
            "/sys/pk/device/thing/event/property/post_reply",
            r#"{"code":200,"data":{},"id":"1","message":"success","method":"thing.event.property.post","version":"1.0"}"#,
        ),
    );
    assert_eq!(
        events(&mut d, 2),
        [DeviceEvent::ReportAnswered { code: 200 }]
    );
    feed(
        &mut d,
        publish_packet(
            "/sys/pk/device/thing/service/property/set",
            r#"{"method":"thing.service.property.set","id":"123","params":{"LED":1},"version":"1.0.0"}"#,
        ),
    );
    assert_eq!(
        events(&mut d, 3),
        [
            DeviceEvent::Command {
                changed: true,
                error: None
            },
            DeviceEvent::StateReported
        ]
    );
    assert_eq!(d.outputs().calls.last(), Some(&(1, true)));
    let packets = sent(&mut d);
    assert_eq!(
        packets[0],
        Sent::Publish {
            topic: "/sys/pk/device/thing/service/property/set_reply".into(),
            payload: r#"{"id":"123","code":200,"data":{}}"#.into(),
            qos: QoS::AtLeastOnce,
            retain: false
        }
    );
    assert!(matches!(&packets[1], Sent::Publish { topic, payload, .. }
        if topic.ends_with("/property/post") && payload.contains(r#""LED":1"#)));
    // NTP: sent at device time 1 ms; server stamps; answer read at device time 21 ms.
    feed(
        &mut d,
        publish_packet(
            "/ext/ntp/pk/device/response",
            r#"{"deviceSendTime":"1","serverRecvTime":"1700000000010","serverSendTime":"1700000000012"}"#,
        ),
    );
    assert_eq!(
        events(&mut d, 21),
        [DeviceEvent::TimeSynced {
            utc_ms: (1_700_000_000_010 + 1_700_000_000_012 + 21 - 1) / 2
        }]
    );
}

#[cfg(feature = "aliyun")]
#[test]
fn aliyun_refuses_qos2_and_retain() {
    let config = aliyun_config();
    let identity = Identity::from_config(&config, None).unwrap();
    let mut d = device(&identity, &config);
    assert!(d.publish(0, "/x", b"", QoS::ExactlyOnce, false).is_err());
    assert!(d.publish(0, "/x", b"", QoS::AtLeastOnce, true).is_err());
    assert_eq!(
        d.publish(0, "/x", b"", QoS::AtLeastOnce, false),
        Ok(Some(1))
    );
}

#[cfg(all(feature = "aliyun", feature = "selfhosted"))]
#[test]
fn invalid_configuration_names_the_field() {
    let config = DeviceConfig {
        keepalive_s: 20,
        ..aliyun_config()
    };
    match Identity::from_config(&config, None) {
        Err(IdentityError::Config(e)) => assert_eq!(e.field, "keepalive_s"),
        other => panic!("{other:?}"),
    }
    let config = DeviceConfig {
        device_id: None,
        ..self_hosted_config()
    };
    match Identity::from_config(&config, None) {
        Err(IdentityError::Config(e)) => assert_eq!(e.field, "device_id"),
        other => panic!("{other:?}"),
    }
}

#[cfg(feature = "selfhosted")]
#[test]
fn identity_debug_redacts_the_password() {
    let identity = Identity::from_config(&self_hosted_config(), None).unwrap();
    let text = std::format!("{identity:?}");
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.contains("<redacted>"));
}

/// Regression: a clean shutdown sends DISCONNECT, so the broker drops the will; the device
/// must overwrite its retained `online` status with `offline` itself, before the DISCONNECT.
#[cfg(feature = "selfhosted")]
#[test]
fn self_hosted_shutdown_publishes_offline_status_before_disconnect() {
    let identity = Identity::from_config(&self_hosted_config(), None).unwrap();
    let mut d = online_self_hosted(&identity);
    let _ = sent(&mut d);
    d.shutdown();
    let bytes = d.driver.transport_mut().sent.clone();
    assert_eq!(bytes.last(), Some(&0x00), "ends with DISCONNECT");
    assert_eq!(&bytes[bytes.len() - 2..], [0xE0, 0x00]);
    assert_eq!(
        sent(&mut d)[0],
        Sent::Publish {
            topic: "devices/d1/status".into(),
            payload: "offline".into(),
            qos: QoS::AtLeastOnce,
            retain: true,
        }
    );
    assert_eq!(d.poll(1_000, 7), None, "stopped");
}

/// A profile the build left out is refused naming `profile` and the missing feature; a built one
/// gets past the profile check (it then fails on its own missing credentials).
#[test]
fn profile_left_out_of_the_build_names_its_feature() {
    for profile in [Profile::Aliyun, Profile::SelfHosted] {
        let config = DeviceConfig {
            profile: Some(profile.as_str()),
            broker_host: Some("broker.example"),
            ..DeviceConfig::new()
        };
        match Identity::from_config(&config, None) {
            Err(IdentityError::Config(e)) if !profile.is_built() => {
                assert_eq!(e.field, "profile");
                assert_eq!(
                    e.problem,
                    crate::config::ConfigProblem::NotBuilt {
                        feature: profile.feature()
                    }
                );
            }
            Err(IdentityError::Config(e)) => {
                assert_ne!(e.field, "profile", "{profile:?}");
                assert_eq!(e.summary(), "missing");
            }
            other => panic!("{profile:?}: {other:?}"),
        }
    }
}

#[cfg(feature = "selfhosted")]
#[test]
fn inflight_max_from_the_config_limits_unacknowledged_messages() {
    let config = DeviceConfig {
        inflight_max: 2,
        ..self_hosted_config()
    };
    let identity = Identity::from_config(&config, None).unwrap();
    let mut d = device(&identity, &config);
    // Offline: QoS 1 publishes are stored, up to the configured 2 (the table has 8 slots).
    assert!(d.publish(0, "a", b"1", QoS::AtLeastOnce, false).is_ok());
    assert!(d.publish(0, "a", b"2", QoS::AtLeastOnce, false).is_ok());
    assert_eq!(
        d.publish(0, "a", b"3", QoS::AtLeastOnce, false),
        Err(RequestError::Busy)
    );
}

#[cfg(feature = "aliyun")]
#[test]
fn aliyun_refuses_qos2_and_retain_as_unsupported() {
    let config = aliyun_config();
    let identity = Identity::from_config(&config, None).unwrap();
    let mut d = device(&identity, &config);
    assert_eq!(
        d.publish(0, "/a", b"x", QoS::ExactlyOnce, false),
        Err(RequestError::Unsupported)
    );
    assert_eq!(
        d.publish(0, "/a", b"x", QoS::AtLeastOnce, true),
        Err(RequestError::Unsupported)
    );
    assert!(d.publish(0, "/a", b"x", QoS::AtLeastOnce, false).is_ok());
}
