//! The real client stack (core `Driver` / `Device` over `TlsTransport`, real TLS on loopback)
//! against a scripted broker that misbehaves on purpose. Every test names the exact outcome:
//! the failure cause the device reports, that it reconnects with backoff (never sooner than
//! `MIN_RETRY_MS`, never in a tight loop), and that QoS 1 messages it had accepted are delivered
//! after the next good connection, resent with DUP and their original ids.

mod common;
#[path = "common/hostile.rs"]
mod hostile;

use std::collections::HashSet;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hostile::*;
use mqtts_core::codec::{DecodeError, QoS};
use mqtts_core::config::DeviceConfig;
use mqtts_core::device::{Device, DeviceBuffers, DeviceEvent, DeviceSettings, Identity};
use mqtts_core::driver::FailureCause;
use mqtts_core::session::ProtocolError;
use mqtts_core::switch::{CommandError, SwitchBank};
use mqtts_sim::scripted_broker::{
    ack, connack, publish, raw_publish, suback, ClientPacket, Conn, ConnectionRecord, ScriptError,
    ScriptOptions, ScriptedBroker,
};
use mqtts_sim::tls_transport::TlsTransport;

const MS: fn(u64) -> Duration = Duration::from_millis;
/// Limit for one scenario's client loop (each scenario needs a few seconds at most).
const SCENARIO_LIMIT: Duration = Duration::from_secs(15);
/// Topic of the client's own QoS 1 messages.
const OUT_TOPIC: &str = "hostile/out";
/// Payloads of the two QoS 1 messages published before the failure.
const PAYLOADS: [&[u8]; 2] = [b"m1", b"m2"];

/// When the client publishes its two QoS 1 messages.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum PublishAt {
    /// Before the first connection: stored, first sent after the first CONNACK.
    BeforeConnect,
    /// Right after the first CONNACK: sent on the connection that then fails.
    FirstOnline,
}

fn protocol(e: DecodeError) -> FailureCause {
    FailureCause::Protocol(ProtocolError::Decode(e))
}

/// Runs one scenario: the first `bad` connections get `hostile`, the next one is a
/// well-behaved broker. The client publishes two QoS 1 messages (`at`) and runs until it is
/// online on the good connection with both delivered. Then checks: one `Offline` with `expect`
/// per bad connection and nothing else; exactly `bad + 1` attempts, paced by the backoff; both
/// messages on the good connection with their original ids, DUP set if they had been sent
/// before; and the link stays up afterwards.
fn scenario<H>(
    bad: usize,
    at: PublishAt,
    subscriptions: &'static [(&'static str, QoS)],
    expect: FailureCause,
    mut hostile: H,
) -> (Client, Vec<ConnectionRecord>)
where
    H: FnMut(&mut Conn) -> Result<(), ScriptError> + Send + 'static,
{
    let (_dir, pki) = pki();
    let broker = ScriptedBroker::start(ScriptOptions::new(pki.server.clone()), move |conn| {
        if conn.index() < bad {
            hostile(conn)
        } else {
            conn.accept_session(false)?;
            conn.serve(None, SCENARIO_LIMIT)
        }
    })
    .unwrap();
    let mut client = Client::new(broker.port(), &pki.ca_file, fast_config(), subscriptions);

    let mut ids = Vec::new();
    if at == PublishAt::BeforeConnect {
        for p in PAYLOADS {
            ids.push(Client::publish_qos1(&mut client.driver, 0, OUT_TOPIC, p));
        }
    }
    let want_online = if at == PublishAt::BeforeConnect {
        1
    } else {
        bad + 1
    };
    let mut online = 0;
    let mut delivered = HashSet::new();
    client.run_until(SCENARIO_LIMIT, |driver, now, ev| {
        match ev {
            Ev::Online => {
                online += 1;
                if online == 1 && at == PublishAt::FirstOnline {
                    for p in PAYLOADS {
                        ids.push(Client::publish_qos1(driver, now, OUT_TOPIC, p));
                    }
                }
            }
            Ev::Published(id) => assert!(delivered.insert(*id), "id {id} delivered twice"),
            _ => {}
        }
        online == want_online && ids.len() == 2 && ids.iter().all(|id| delivered.contains(id))
    });
    // The good connection stays up.
    client.run_for(MS(150), |_, _, ev| {
        assert!(!matches!(ev, Ev::Offline { .. }), "{ev:?} after recovery")
    });
    let records = say_goodbye(&mut client, broker);

    assert_eq!(client.causes(), vec![expect; bad], "{:?}", client.events());
    assert_eq!(
        client.count(&Ev::Connecting),
        bad + 1,
        "{:?}",
        client.events()
    );
    assert_eq!(records.len(), bad + 1);
    assert_paced_reconnects(&client, &records);
    // Delivered after the next good connection, with the same ids.
    let good = &records[bad];
    let sent_before = at == PublishAt::FirstOnline;
    for (p, payload) in publishes_with_ids(good, &ids).iter().zip(PAYLOADS) {
        assert_eq!(p.payload, payload);
        assert_eq!(p.topic, OUT_TOPIC);
        assert_eq!(p.qos, QoS::AtLeastOnce);
        assert_eq!(p.dup, sent_before, "DUP on the good connection: {p:?}");
    }
    if sent_before {
        // Sent on every bad connection too: first without DUP, then as redeliveries.
        for r in &records[..bad] {
            for p in publishes_with_ids(r, &ids) {
                assert_eq!(p.dup, r.index > 0, "connection {}: {p:?}", r.index);
            }
        }
    }
    (client, records)
}

/// Shuts the client down (DISCONNECT, close) and returns the broker's records once the
/// script has seen the goodbye on the last connection.
fn say_goodbye(client: &mut Client, broker: ScriptedBroker) -> Vec<ConnectionRecord> {
    client.driver.shutdown();
    assert!(
        broker.wait_ended(Duration::from_secs(5)),
        "script still running"
    );
    let records = broker.stop();
    for r in &records {
        // Hostile scripts end when the client hangs up; none may find invalid MQTT from the
        // client or panic.
        assert!(
            matches!(r.outcome, Some(Ok(()) | Err(ScriptError::Closed))),
            "connection {}: {:?}",
            r.index,
            r.outcome
        );
    }
    let last = records.last().expect("a connection");
    assert_eq!(
        last.received.last().map(|(_, p)| p),
        Some(&ClientPacket::Disconnect),
        "clean goodbye on connection {}",
        last.index
    );
    records
}

/// Polls the client until the broker's records satisfy `pred`.
fn pump_until(
    client: &mut Client,
    broker: &ScriptedBroker,
    limit: Duration,
    pred: impl Fn(&[ConnectionRecord]) -> bool,
) {
    let end = Instant::now() + limit;
    while !pred(&broker.records()) {
        assert!(
            Instant::now() < end,
            "broker never saw it; client events: {:?}",
            client.events()
        );
        client.run_for(MS(2), |_, _, ev| {
            assert!(!matches!(ev, Ev::Offline { .. }), "unexpected {ev:?}")
        });
    }
}

/// Hostile connection that goes online, takes the client's two publishes without acking them,
/// then sends `bytes` and waits for the client to hang up.
fn online_then_send(bytes: Vec<u8>) -> impl FnMut(&mut Conn) -> Result<(), ScriptError> {
    move |conn| {
        conn.accept_session(false)?;
        conn.read_publishes(2)?;
        conn.send(&bytes)?;
        conn.wait_closed()
    }
}

#[test]
fn remaining_length_with_a_fifth_byte_is_a_protocol_error() {
    // PUBLISH whose remaining length has four continuation bytes (§2.2.3 allows four at most).
    let bytes = vec![0x30, 0x80, 0x80, 0x80, 0x80, 0x01];
    scenario(
        2,
        PublishAt::FirstOnline,
        &[],
        protocol(DecodeError::MalformedRemainingLength),
        online_then_send(bytes),
    );
}

#[test]
fn qos3_publish_is_a_protocol_error() {
    let bytes = raw_publish(0x36, b"t/q", Some(7), b"x");
    scenario(
        2,
        PublishAt::FirstOnline,
        &[],
        protocol(DecodeError::InvalidQoS),
        online_then_send(bytes),
    );
}

#[test]
fn publish_with_packet_id_zero_is_a_protocol_error() {
    let bytes = raw_publish(0x32, b"t/z", Some(0), b"x");
    scenario(
        2,
        PublishAt::FirstOnline,
        &[],
        protocol(DecodeError::ZeroPacketId),
        online_then_send(bytes),
    );
}

#[test]
fn publish_topic_with_invalid_utf8_is_a_protocol_error() {
    // 0xC3 0x28: a two-byte sequence whose second byte is not a continuation byte.
    let bytes = raw_publish(0x30, &[b't', b'/', 0xC3, 0x28], None, b"x");
    scenario(
        2,
        PublishAt::FirstOnline,
        &[],
        protocol(DecodeError::InvalidUtf8),
        online_then_send(bytes),
    );
}

#[test]
fn publish_topic_with_a_wildcard_is_a_protocol_error() {
    // Connection 0 gets `+`, connection 1 gets `#`: both are filters, never topic names.
    let mut n = 0;
    let hostile = move |conn: &mut Conn| {
        let topic: &[u8] = if n == 0 { b"t/+/x" } else { b"t/#" };
        n += 1;
        online_then_send(raw_publish(0x32, topic, Some(3), b"x"))(conn)
    };
    scenario(
        2,
        PublishAt::FirstOnline,
        &[],
        protocol(DecodeError::InvalidTopicName),
        hostile,
    );
}

#[test]
fn second_connack_is_a_protocol_error() {
    scenario(
        2,
        PublishAt::FirstOnline,
        &[],
        FailureCause::Protocol(ProtocolError::UnexpectedPacket(2)),
        online_then_send(connack(false, 0)),
    );
}

#[test]
fn suback_with_the_wrong_count_is_a_protocol_error() {
    static SUBS: [(&str, QoS); 2] = [("cmd/a", QoS::AtLeastOnce), ("cmd/b", QoS::AtMostOnce)];
    let hostile = |conn: &mut Conn| {
        conn.accept_session(false)?;
        let mut sub_id = None;
        let mut publishes = 0;
        while sub_id.is_none() || publishes < 2 {
            match conn.read_packet()? {
                ClientPacket::Subscribe { packet_id, filters } => {
                    assert_eq!(filters.len(), 2);
                    sub_id = Some(packet_id);
                }
                ClientPacket::Publish(_) => publishes += 1,
                other => conn.answer(&other)?,
            }
        }
        // One return code for two filters.
        conn.send(&suback(sub_id.unwrap_or(1), &[1]))?;
        conn.wait_closed()
    };
    let (client, records) = scenario(
        2,
        PublishAt::FirstOnline,
        &SUBS,
        FailureCause::Protocol(ProtocolError::SubAckCountMismatch),
        hostile,
    );
    // The good connection subscribed again and got a full SUBACK.
    assert!(client.events().contains(&Ev::Subscribed(vec![1, 0])));
    assert!(records[2]
        .received
        .iter()
        .any(|(_, p)| matches!(p, ClientPacket::Subscribe { filters, .. } if filters.len() == 2)));
}

#[test]
fn connack_sent_before_connect_arrives_is_accepted() {
    // With TLS 1.3 half-RTT data the CONNACK leaves with the server's first flight: it reaches
    // the client before the client has finished the handshake, let alone sent CONNECT. The client
    // cannot tell (TLS is one ordered byte stream and it reads MQTT only after queueing CONNECT),
    // and nothing is lost by accepting: the broker did accept. So the outcome is a normal session.
    let (_dir, pki) = pki();
    let mut options = ScriptOptions::new(pki.server.clone());
    options.half_rtt = true;
    let broker = ScriptedBroker::start(options, |conn| {
        conn.queue_early(&connack(false, 0))?;
        conn.handshake()?;
        conn.expect_connect()?;
        conn.serve(None, SCENARIO_LIMIT)
    })
    .unwrap();
    let mut client = Client::new(broker.port(), &pki.ca_file, fast_config(), &[]);
    let id = Client::publish_qos1(&mut client.driver, 0, OUT_TOPIC, b"early");
    client.run_until(SCENARIO_LIMIT, |_, _, ev| *ev == Ev::Published(id));
    client.run_for(MS(100), |_, _, _| {});
    let records = say_goodbye(&mut client, broker);
    assert_eq!(
        client.events(),
        [Ev::Connecting, Ev::Online, Ev::Published(id)]
    );
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert!(matches!(r.received[0].1, ClientPacket::Connect { .. }));
    assert!(r.received[0].0 >= r.handshake_done_at.unwrap());
    assert_eq!(publishes_with_ids(r, &[id])[0].payload, b"early");
}

#[test]
fn acks_for_ids_never_used_are_ignored() {
    let (_dir, pki) = pki();
    let broker = ScriptedBroker::start(ScriptOptions::new(pki.server.clone()), |conn| {
        conn.accept_session(false)?;
        let p = conn.read_publishes(2)?;
        let (a, b) = (p[0].packet_id.unwrap(), p[1].packet_id.unwrap());
        // Ids the client never used, a PUBREC for a QoS 1 message (only QoS 2 has PUBREC),
        // then the real PUBACKs, then one of them again.
        for bytes in [
            ack(0x40, 0x7777),
            ack(0x50, 0x7778),
            ack(0x70, 0x7779),
            ack(0x50, a),
            ack(0x40, a),
            ack(0x40, b),
            ack(0x40, a),
        ] {
            conn.send(&bytes)?;
        }
        conn.serve(None, SCENARIO_LIMIT)
    })
    .unwrap();
    let mut client = Client::new(broker.port(), &pki.ca_file, fast_config(), &[]);
    let mut ids = Vec::new();
    client.run_until(SCENARIO_LIMIT, |driver, now, ev| {
        if *ev == Ev::Online {
            for p in PAYLOADS {
                ids.push(Client::publish_qos1(driver, now, OUT_TOPIC, p));
            }
        }
        matches!(ev, Ev::Published(id) if ids.len() == 2 && *id == ids[1])
    });
    // The link stays up and keeps working: a third message goes through.
    client.run_for(MS(200), |_, _, _| {});
    let now = client.now();
    let third = Client::publish_qos1(&mut client.driver, now, OUT_TOPIC, b"m3");
    client.run_until(SCENARIO_LIMIT, |_, _, ev| *ev == Ev::Published(third));
    let records = say_goodbye(&mut client, broker);
    assert_eq!(
        client.events(),
        [
            Ev::Connecting,
            Ev::Online,
            Ev::Published(ids[0]),
            Ev::Published(ids[1]),
            Ev::Published(third)
        ]
    );
    assert_eq!(records.len(), 1);
    // No PUBREL answered the stray PUBREC.
    assert!(!records[0]
        .received
        .iter()
        .any(|(_, p)| matches!(p, ClientPacket::PubRel(_))));
}

#[test]
fn publish_larger_than_the_receive_buffer_is_skipped_and_acknowledged() {
    let big_qos1 = publish("big/1", &[b'x'; 3000], QoS::AtLeastOnce, Some(500));
    let big_qos0 = publish("big/0", &[b'y'; 2000], QoS::AtMostOnce, None);
    // A topic longer than the whole ring: the packet id lies beyond what the device can see.
    let long_topic = format!("t/{}", "a".repeat(RX + 100));
    let big_topic = publish(&long_topic, b"z", QoS::AtLeastOnce, Some(501));
    let normal = publish("small/1", b"hello", QoS::AtLeastOnce, Some(502));
    let lens = [big_qos1.len(), big_qos0.len(), big_topic.len()];
    let (_dir, pki) = pki();
    let broker = ScriptedBroker::start(ScriptOptions::new(pki.server.clone()), move |conn| {
        conn.accept_session(false)?;
        for p in [&big_qos1, &big_qos0, &big_topic, &normal] {
            conn.send(p)?;
        }
        conn.serve(None, SCENARIO_LIMIT)
    })
    .unwrap();
    let mut client = Client::new(broker.port(), &pki.ca_file, fast_config(), &[]);
    client.run_until(SCENARIO_LIMIT, |_, _, ev| matches!(ev, Ev::Message { .. }));
    pump_until(&mut client, &broker, SCENARIO_LIMIT, |r| {
        r[0].pubacks().contains(&502)
    });
    client.run_for(MS(100), |_, _, _| {});
    let records = say_goodbye(&mut client, broker);
    assert_eq!(
        client.events(),
        [
            Ev::Connecting,
            Ev::Online,
            Ev::Skipped {
                packet_type: 3,
                len: lens[0]
            },
            Ev::Skipped {
                packet_type: 3,
                len: lens[1]
            },
            Ev::Skipped {
                packet_type: 3,
                len: lens[2]
            },
            Ev::Message {
                topic: "small/1".into(),
                payload: b"hello".to_vec(),
                packet_id: Some(502)
            },
        ]
    );
    // The oversized QoS 1 message was acknowledged (the broker will not resend it); the one
    // whose id the device could not see was not (documented limit); the next one was.
    assert_eq!(records[0].pubacks(), [500, 502]);
}

#[test]
fn connack_dripped_slower_than_the_timeout_is_a_connack_timeout() {
    // 4 bytes, 400 ms apart: complete after >= 1.2 s, the limit is 600 ms.
    let (client, _) = scenario(
        2,
        PublishAt::BeforeConnect,
        &[],
        FailureCause::ConnAckTimeout,
        |conn| {
            conn.handshake()?;
            conn.expect_connect()?;
            conn.drip(&connack(false, 0), MS(400))?;
            conn.wait_closed()
        },
    );
    assert_failures_took_at_least(&client, MS(CONNECT_TIMEOUT_MS.into()));
}

#[test]
fn connack_dripped_within_the_timeout_goes_online() {
    // 4 bytes, 40 ms apart: complete after ~120 ms, well inside the 600 ms limit.
    let (_dir, pki) = pki();
    let broker = ScriptedBroker::start(ScriptOptions::new(pki.server.clone()), |conn| {
        conn.handshake()?;
        conn.expect_connect()?;
        conn.drip(&connack(false, 0), MS(40))?;
        conn.serve(None, SCENARIO_LIMIT)
    })
    .unwrap();
    let mut client = Client::new(broker.port(), &pki.ca_file, fast_config(), &[]);
    let id = Client::publish_qos1(&mut client.driver, 0, OUT_TOPIC, b"slow");
    client.run_until(SCENARIO_LIMIT, |_, _, ev| *ev == Ev::Published(id));
    let records = say_goodbye(&mut client, broker);
    assert_eq!(
        client.events(),
        [Ev::Connecting, Ev::Online, Ev::Published(id)]
    );
    // The drip really was slow: CONNECT to online took at least the three gaps.
    let connect_at = records[0].received[0].0;
    let online_at = client.log[1].0;
    assert!(online_at.duration_since(connect_at) >= MS(120));
}

#[test]
fn tls_closed_in_the_middle_of_a_packet_is_peer_closed() {
    // Half of a PUBLISH, then connection 0 ends with close_notify, connection 1 with a bare TCP
    // close (truncation). Neither half packet may surface as a message.
    let half = publish("t/half", &[b'h'; 40], QoS::AtLeastOnce, Some(9));
    let half = half[..half.len() / 2].to_vec();
    let hostile = move |conn: &mut Conn| {
        conn.accept_session(false)?;
        conn.read_publishes(2)?;
        conn.send(&half)?;
        if conn.index() == 0 {
            conn.close();
        } else {
            conn.abort();
        }
        Ok(())
    };
    let (client, _) = scenario(
        2,
        PublishAt::FirstOnline,
        &[],
        FailureCause::PeerClosed,
        hostile,
    );
    assert!(!client
        .events()
        .iter()
        .any(|e| matches!(e, Ev::Message { .. })));
}

#[test]
fn broker_that_never_answers_the_tls_handshake_is_a_connect_timeout() {
    let (client, records) = scenario(
        2,
        PublishAt::BeforeConnect,
        &[],
        FailureCause::ConnectTimeout,
        |conn| conn.stay_silent(Duration::from_secs(10)),
    );
    assert_failures_took_at_least(&client, MS(CONNECT_TIMEOUT_MS.into()));
    assert!(records[..2].iter().all(|r| r.handshake_done_at.is_none()));
}

#[test]
fn broker_that_never_sends_connack_is_a_connack_timeout() {
    let (client, records) = scenario(
        2,
        PublishAt::BeforeConnect,
        &[],
        FailureCause::ConnAckTimeout,
        |conn| {
            conn.handshake()?;
            conn.expect_connect()?;
            conn.wait_closed()
        },
    );
    assert_failures_took_at_least(&client, MS(CONNECT_TIMEOUT_MS.into()));
    // Nothing but CONNECT was sent while CONNACK was outstanding.
    for r in &records[..2] {
        assert_eq!(r.received.len(), 1, "{:?}", r.received);
    }
}

/// Every `Offline` came at least `limit` after the `Connecting` before it (driver clock): the
/// timeouts are not cut short.
fn assert_failures_took_at_least(client: &Client, limit: Duration) {
    let mut started = None;
    for ((_, ev), now) in client.log.iter().zip(&client.clock) {
        match ev {
            Ev::Connecting => started = Some(*now),
            Ev::Offline { .. } => {
                let took = now - started.expect("attempt before failure");
                assert!(
                    u128::from(took) >= limit.as_millis(),
                    "failed after {took} ms"
                );
            }
            _ => {}
        }
    }
}

#[test]
fn broker_that_misbehaves_on_every_connection_gets_paced_attempts() {
    // A different failure on each connection, forever: the device must keep backing off
    // (never below MIN_RETRY_MS), report each cause by name and never spin.
    let (_dir, pki) = pki();
    let broker = ScriptedBroker::start(ScriptOptions::new(pki.server.clone()), |conn| {
        match conn.index() % 5 {
            // TCP accepted and closed at once.
            0 => {
                conn.abort();
                Ok(())
            }
            // Not TLS at all.
            1 => {
                conn.send_raw(b"HTTP/1.1 400 Bad Request\r\n\r\n")?;
                conn.stay_silent(Duration::from_secs(5))
            }
            // CONNACK "server unavailable".
            2 => {
                conn.handshake()?;
                conn.expect_connect()?;
                conn.send(&connack(false, 3))?;
                conn.wait_closed()
            }
            // CONNACK with a return code 3.1.1 does not define.
            3 => {
                conn.handshake()?;
                conn.expect_connect()?;
                conn.send(&connack(false, 6))?;
                conn.wait_closed()
            }
            _ => online_then_send(connack(false, 0))(conn),
        }
    })
    .unwrap();
    let mut client = Client::new(broker.port(), &pki.ca_file, fast_config(), &[]);
    let window = Duration::from_millis(2500);
    client.run_for(window, |driver, now, ev| {
        if *ev == Ev::Online && driver.session().in_flight() == 0 {
            Client::publish_qos1(driver, now, OUT_TOPIC, b"kept");
            Client::publish_qos1(driver, now, OUT_TOPIC, b"kept");
        }
    });
    client.driver.shutdown();
    let records = broker.stop();
    let causes = client.causes();
    assert!(causes.len() >= 5, "{causes:?}");
    for (i, cause) in causes.iter().enumerate() {
        let expected = match i % 5 {
            0 => FailureCause::PeerClosed,
            1 => FailureCause::TlsHandshake,
            2 => FailureCause::ConnAckRefused(
                mqtts_core::codec::ConnectReturnCode::ServerUnavailable,
            ),
            3 => protocol(DecodeError::InvalidConnectReturnCode),
            _ => FailureCause::Protocol(ProtocolError::UnexpectedPacket(2)),
        };
        assert_eq!(*cause, expected, "failure {i}: {causes:?}");
    }
    assert_paced_reconnects(&client, &records);
    // Backoff grows: with delays of 100..=400 ms, 2.5 s hold at most 25 attempts; a spinning
    // client would make hundreds.
    assert!(client.count(&Ev::Connecting) <= 25);
    // The QoS 1 messages were never lost: resent with DUP and the same ids on every later
    // connection that got as far as CONNACK, and still held for the next good one.
    let online: Vec<_> = records.iter().filter(|r| r.index % 5 == 4).collect();
    assert!(!online.is_empty());
    let ids: Vec<u16> = online[0]
        .publishes()
        .iter()
        .filter_map(|p| p.packet_id)
        .collect();
    assert_eq!(ids.len(), 2);
    for r in &online[1..] {
        for p in publishes_with_ids(r, &ids) {
            assert!(p.dup && p.payload == b"kept", "{p:?}");
        }
    }
    assert_eq!(client.driver.session().in_flight(), 2);
}

/// What the flooding broker saw.
#[derive(Debug, Default)]
struct FloodStats {
    /// Most messages written to the socket but not yet acknowledged, sampled per chunk.
    max_unacked: usize,
    /// Every PUBACK id in arrival order.
    acks: Vec<u16>,
    /// How often the broker's socket was full.
    blocked: usize,
}

#[test]
fn flood_of_qos1_messages_is_absorbed_by_back_pressure() {
    const N: u16 = 5000;
    const CHUNK: usize = 50;
    // A 5-digit sequence number padded to 400 bytes: 2 MB in all, more than the socket buffers
    // between the two ends hold.
    let message = |i: u16| {
        let payload = format!("{i:05}{}", " ".repeat(395));
        publish("flood/t", payload.as_bytes(), QoS::AtLeastOnce, Some(i))
    };
    let message_len = message(1).len();
    let stats = Arc::new(Mutex::new(FloodStats::default()));
    let (_dir, pki) = pki();
    let script_stats = stats.clone();
    let mut options = ScriptOptions::new(pki.server.clone());
    options.send_buffer = Some(16 * 1024);
    let broker = ScriptedBroker::start(options, move |conn| {
        conn.accept_session(false)?;
        let mut acks = Vec::new();
        let mut max_unacked = 0;
        let ids: Vec<u16> = (1..=N).collect();
        // As fast as the socket takes them; PUBACKs are read meanwhile (as any broker does).
        for chunk in ids.chunks(CHUNK) {
            let bytes: Vec<u8> = chunk.iter().flat_map(|&i| message(i)).collect();
            conn.send(&bytes)?;
            while let Some(p) = conn.try_read_packet()? {
                if let ClientPacket::PubAck(id) = p {
                    acks.push(id);
                }
            }
            max_unacked = max_unacked.max(usize::from(chunk[chunk.len() - 1]) - acks.len());
        }
        let end = Instant::now() + SCENARIO_LIMIT;
        while acks.len() < usize::from(N) {
            if let ClientPacket::PubAck(id) = conn.read_packet_until(end)? {
                acks.push(id);
            }
        }
        *script_stats.lock().unwrap() = FloodStats {
            max_unacked,
            acks,
            blocked: conn.times_blocked(),
        };
        conn.serve(None, SCENARIO_LIMIT)
    })
    .unwrap();
    let mut client = Client::new(broker.port(), &pki.ca_file, fast_config(), &[]);
    let mut seen: Vec<u16> = Vec::new();
    client.run_until(SCENARIO_LIMIT, |_, _, ev| {
        if let Ev::Message {
            payload, packet_id, ..
        } = ev
        {
            let i: u16 = std::str::from_utf8(&payload[..5]).unwrap().parse().unwrap();
            assert_eq!(Some(i), *packet_id);
            seen.push(i);
            // The handler is slower than the broker.
            std::thread::sleep(Duration::from_micros(100));
        }
        seen.len() == usize::from(N)
    });
    pump_until(&mut client, &broker, SCENARIO_LIMIT, |r| {
        r[0].pubacks().len() == usize::from(N)
    });
    client.run_for(MS(50), |_, _, _| {});
    let records = say_goodbye(&mut client, broker);
    let stats = stats.lock().unwrap();

    // Every message handled once, in order; nothing else happened.
    assert_eq!(seen, (1..=N).collect::<Vec<_>>());
    assert_eq!(client.causes(), []);
    assert_eq!(client.count(&Ev::Connecting), 1);
    // Every delivery acknowledged exactly once, in order.
    assert_eq!(stats.acks, (1..=N).collect::<Vec<_>>());
    assert_eq!(records[0].pubacks(), stats.acks);
    // The broker really was ahead of the device: at some point more than four receive rings of
    // messages were unacknowledged. The device kept up only because it stops reading while it
    // cannot take more (ring full, or no room to queue the PUBACK) and TCP pushes back.
    assert!(
        stats.max_unacked * message_len > 4 * RX,
        "broker was never ahead: {} unacked",
        stats.max_unacked
    );
    assert!(stats.blocked > 0, "the broker's socket never filled");
    // What was outstanding stayed bounded by the buffers on the way, not by the flood size.
    assert!(
        stats.max_unacked < usize::from(N) / 2,
        "{}",
        stats.max_unacked
    );
    // Memory is fixed at build time: the driver holds its buffers inline, whatever the traffic.
    assert!(std::mem::size_of::<TestDriver>() < RX + TX + STORE + 1024);
}

// ---------------------------------------------------------------------------------------------
// Malformed commands over a real connection: the `Device` (profile, switches, replies) behind
// the same TLS client, the scripted broker injecting the commands.

type TestDevice<'i> = Device<'i, TlsTransport, SimOutputs, 2, RX, TX, STORE, INFLIGHT>;

const SWITCHES: [&str; 2] = ["Relay1", "LED"];

/// A device under test, the broker feeding it, and the channel that injects broker packets.
struct DeviceRig<'i> {
    device: TestDevice<'i>,
    broker: ScriptedBroker,
    inject: mpsc::Sender<Vec<u8>>,
    t0: Instant,
    log: Vec<DeviceEvent>,
}

fn device_config(profile: &'static str, port: u16) -> DeviceConfig<'static> {
    let base = DeviceConfig {
        profile: Some(profile),
        broker_host: Some("localhost"),
        broker_port: port,
        telemetry_period_s: 0,
        ..DeviceConfig::new()
    };
    match profile {
        "aliyun" => DeviceConfig {
            aliyun_product_key: Some("pk1"),
            aliyun_device_name: Some("dev1"),
            aliyun_device_secret: Some("secret"),
            ..base
        },
        _ => DeviceConfig {
            device_id: Some("d1"),
            ..base
        },
    }
}

/// A well-behaved broker that also sends whatever arrives on the returned channel.
fn command_broker(pki: &mqtts_sim::pki::TestPki) -> (ScriptedBroker, mpsc::Sender<Vec<u8>>) {
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let broker = ScriptedBroker::start(ScriptOptions::new(pki.server.clone()), move |conn| {
        conn.accept_session(false)?;
        conn.serve(Some(&rx), Duration::from_secs(60))
    })
    .unwrap();
    (broker, tx)
}

impl<'i> DeviceRig<'i> {
    fn poll(&mut self) -> bool {
        let now = self.t0.elapsed().as_millis() as u64;
        match self.device.poll(now, 0x5eed) {
            Some(ev) => {
                assert!(
                    !matches!(
                        ev,
                        DeviceEvent::Offline { .. } | DeviceEvent::PublishFailed(_)
                    ),
                    "{ev:?}; events: {:?}",
                    self.log
                );
                self.log.push(ev);
                true
            }
            None => false,
        }
    }

    /// Polls until the broker's record of the (single) connection satisfies `pred`.
    fn until_broker(&mut self, what: &str, pred: impl Fn(&ConnectionRecord) -> bool) {
        let end = Instant::now() + SCENARIO_LIMIT;
        loop {
            if let Some(r) = self.broker.records().first() {
                if pred(r) {
                    return;
                }
            }
            assert!(Instant::now() < end, "{what}; events: {:?}", self.log);
            if !self.poll() {
                std::thread::sleep(MS(1));
            }
        }
    }

    /// Polls until the device reports an event matching `pred`; returns it.
    fn until_event(&mut self, pred: impl Fn(&DeviceEvent) -> bool) -> DeviceEvent {
        let end = Instant::now() + SCENARIO_LIMIT;
        let from = self.log.len();
        loop {
            if let Some(ev) = self.log[from..].iter().find(|e| pred(e)) {
                return *ev;
            }
            assert!(Instant::now() < end, "no such event: {:?}", self.log);
            if !self.poll() {
                std::thread::sleep(MS(1));
            }
        }
    }

    /// Publishes on `topic` with QoS 1 id `id` as the broker.
    fn command(&mut self, topic: &str, payload: &[u8], id: u16) {
        self.inject
            .send(publish(topic, payload, QoS::AtLeastOnce, Some(id)))
            .unwrap();
    }

    /// Payloads the device published on `topic`, in order.
    fn published(&self, topic: &str) -> Vec<String> {
        self.broker.records()[0]
            .publishes()
            .into_iter()
            .filter(|p| p.topic == topic)
            .map(|p| String::from_utf8(p.payload).unwrap())
            .collect()
    }
}

/// One malformed command and what must come of it.
struct BadCommand {
    /// Where the broker publishes it.
    topic: String,
    /// The command.
    payload: Vec<u8>,
    /// The error the device reports (`None`: the topic is not handled at all).
    error: Option<CommandError>,
    /// The exact reply (`None`: no reply).
    reply: Option<String>,
    /// Where the reply goes.
    reply_topic: String,
}

/// Sends each command and checks: the device reports the command
/// refused with exactly that error and nothing changed; the broker gets exactly `reply` on
/// `reply_topic(topic)` and a PUBACK for the command; no output is driven and no state is
/// reported.
fn refuse_all(rig: &mut DeviceRig<'_>, state_topic: &str, table: &[BadCommand]) {
    let outputs_before = rig.device.outputs().calls.len();
    let states_before = rig.published(state_topic).len();
    for (n, bad) in table.iter().enumerate() {
        let BadCommand {
            topic,
            payload,
            error,
            reply,
            reply_topic,
        } = bad;
        let id = 1000 + n as u16;
        let replies_before = rig.published(reply_topic).len();
        rig.command(topic, payload, id);
        let label = String::from_utf8_lossy(payload).into_owned();
        match error {
            Some(e) => {
                let ev = rig.until_event(|e| matches!(e, DeviceEvent::Command { .. }));
                assert_eq!(
                    ev,
                    DeviceEvent::Command {
                        changed: false,
                        error: Some(*e)
                    },
                    "{label}"
                );
            }
            None => {
                rig.until_event(|e| *e == DeviceEvent::UnhandledMessage);
            }
        }
        rig.until_broker(&label, |r| r.pubacks().contains(&id));
        if let Some(reply) = reply {
            rig.until_broker(&label, |r| {
                r.publishes()
                    .iter()
                    .filter(|p| p.topic == *reply_topic)
                    .count()
                    > replies_before
            });
            assert_eq!(rig.published(reply_topic).last(), Some(reply), "{label}");
        }
        assert_eq!(rig.device.switches().states(), &[false, false], "{label}");
        assert_eq!(rig.device.outputs().calls.len(), outputs_before, "{label}");
    }
    // A short settle: nothing more is published for the refused commands.
    let end = Instant::now() + MS(100);
    while Instant::now() < end {
        if !rig.poll() {
            std::thread::sleep(MS(1));
        }
    }
    assert_eq!(
        rig.published(state_topic).len(),
        states_before,
        "no state report"
    );
    for BadCommand {
        reply, reply_topic, ..
    } in table
    {
        if reply.is_none() {
            assert!(
                rig.published(reply_topic).is_empty(),
                "reply to an unhandled topic"
            );
        }
    }
}

/// A self-hosted command on `devices/d1/set`, refused with `error` and `reply`.
fn sh(payload: &[u8], error: CommandError, reply: &str) -> BadCommand {
    BadCommand {
        topic: "devices/d1/set".into(),
        payload: payload.to_vec(),
        error: Some(error),
        reply: Some(reply.into()),
        reply_topic: "devices/d1/reply".into(),
    }
}

#[test]
fn every_malformed_self_hosted_command_is_refused_and_changes_nothing() {
    use CommandError::*;
    let (_dir, pki) = pki();
    let (broker, inject) = command_broker(&pki);
    let config = device_config("self-hosted", broker.port());
    let identity = Identity::from_config(&config, None).unwrap();
    let settings = DeviceSettings {
        driver: fast_config(),
        telemetry_period_ms: 0,
        inflight_max: 4,
    };
    let mut buffers = Box::new(DeviceBuffers::new());
    let device = Device::new(
        &mut buffers,
        &identity,
        transport(broker.port(), &pki.ca_file),
        SimOutputs::default(),
        SwitchBank::new(SWITCHES).unwrap(),
        settings,
    );
    let mut rig = DeviceRig {
        device,
        broker,
        inject,
        t0: Instant::now(),
        log: Vec::new(),
    };
    rig.until_broker("subscribed, state reported", |r| {
        r.received
            .iter()
            .any(|(_, p)| matches!(p, ClientPacket::Subscribe { filters, .. } if filters[0].0 == "devices/d1/set"))
            && r.publishes().iter().any(|p| p.topic == "devices/d1/state")
    });
    let off = r#"{"switches":{"Relay1":false,"LED":false},"uptime_s":0,"reconnects":0,"last_failure":null}"#;
    assert_eq!(rig.published("devices/d1/state"), [off]);

    let no_id = |e: &str| format!(r#"{{"id":null,"ok":false,"error":"{e}"}}"#);
    let with_id = |id: &str, e: &str| format!(r#"{{"id":"{id}","ok":false,"error":"{e}"}}"#);
    let seventeen = format!(
        "{{{}}}",
        (0..17)
            .map(|i| format!(r#""k{i}":1"#))
            .collect::<Vec<_>>()
            .join(",")
    );
    let table = vec![
        sh(b"", MalformedJson, &no_id("malformed_json")),
        sh(b"on", MalformedJson, &no_id("malformed_json")),
        sh(
            &[0xff, 0xfe, b'{', b'}'],
            MalformedJson,
            &no_id("malformed_json"),
        ),
        sh(b"[1,2]", MalformedJson, &no_id("malformed_json")),
        sh(br#""Relay1""#, MalformedJson, &no_id("malformed_json")),
        sh(
            br#"{"id":"t1","switch":"Relay1","on":true"#,
            MalformedJson,
            &no_id("malformed_json"),
        ),
        sh(
            br#"{"id":"t2","switch":"Relay1","on":true}}"#,
            MalformedJson,
            &no_id("malformed_json"),
        ),
        sh(
            br#"{"id":"t3","switches":{"Relay1":{"a":{"b":{"c":1}}}}}"#,
            MalformedJson,
            &no_id("malformed_json"),
        ),
        sh(
            seventeen.as_bytes(),
            MalformedJson,
            &no_id("malformed_json"),
        ),
        sh(br#"{}"#, MissingField, &no_id("missing_field")),
        sh(
            br#"{"id":"t4"}"#,
            MissingField,
            &with_id("t4", "missing_field"),
        ),
        sh(
            br#"{"id":"t5","on":true}"#,
            MissingField,
            &with_id("t5", "missing_field"),
        ),
        sh(
            br#"{"id":"t6","switch":"Relay1"}"#,
            MissingField,
            &with_id("t6", "missing_field"),
        ),
        sh(
            br#"{"id":"t7","switches":{}}"#,
            MissingField,
            &with_id("t7", "missing_field"),
        ),
        sh(
            br#"{"id":"t8","switch":"Pump","on":true}"#,
            UnknownSwitch,
            &with_id("t8", "unknown_switch"),
        ),
        sh(
            br#"{"id":"t9","switch":"relay1","on":true}"#,
            UnknownSwitch,
            &with_id("t9", "unknown_switch"),
        ),
        sh(
            br#"{"id":"t10","switches":{"Relay1":true,"Pump":false}}"#,
            UnknownSwitch,
            &with_id("t10", "unknown_switch"),
        ),
        sh(
            br#"{"id":"t11","switch":"Relay1","on":2}"#,
            WrongType,
            &with_id("t11", "bad_value"),
        ),
        sh(
            br#"{"id":"t12","switch":"Relay1","on":"true"}"#,
            WrongType,
            &with_id("t12", "bad_value"),
        ),
        sh(
            br#"{"id":"t13","switch":"Relay1","on":null}"#,
            WrongType,
            &with_id("t13", "bad_value"),
        ),
        sh(
            br#"{"id":"t14","switch":"Relay1","on":-1}"#,
            WrongType,
            &with_id("t14", "bad_value"),
        ),
        sh(
            br#"{"id":"t15","switch":"Relay1","on":1.0}"#,
            WrongType,
            &with_id("t15", "bad_value"),
        ),
        sh(
            br#"{"id":"t16","switch":7,"on":true}"#,
            WrongType,
            &with_id("t16", "bad_value"),
        ),
        sh(
            br#"{"id":"t17","switches":["Relay1"]}"#,
            WrongType,
            &with_id("t17", "bad_value"),
        ),
        sh(
            br#"{"id":"t18","switches":{"Relay1":"on"}}"#,
            WrongType,
            &with_id("t18", "bad_value"),
        ),
        sh(
            br#"{"id":"t19","switches":{"LED":true,"LED":false}}"#,
            DuplicateSwitch,
            &with_id("t19", "duplicate_switch"),
        ),
        sh(
            br#"{"id":"t20","switch":"LED","on":true,"switches":{"LED":true}}"#,
            Conflict,
            &with_id("t20", "conflicting_fields"),
        ),
        // An unusable id is not echoed (it could break the reply's JSON); the command is still
        // judged on its own.
        sh(
            br#"{"id":"a\"b","switch":"Pump","on":true}"#,
            UnknownSwitch,
            &no_id("unknown_switch"),
        ),
        sh(
            br#"{"id":{"x":1},"switch":"Pump","on":true}"#,
            UnknownSwitch,
            &no_id("unknown_switch"),
        ),
    ];
    refuse_all(&mut rig, "devices/d1/state", &table);

    // Asked for, the state report still shows everything off.
    rig.device.request_report();
    rig.until_broker("state re-reported", |r| {
        r.publishes()
            .iter()
            .filter(|p| p.topic == "devices/d1/state")
            .count()
            == 2
    });
    assert_eq!(rig.published("devices/d1/state")[1], off);
    // The command channel works: a valid command changes the switch and is reported.
    rig.command("devices/d1/set", br#"{"id":"ok","switch":"LED","on":1}"#, 7);
    let ev = rig.until_event(|e| matches!(e, DeviceEvent::Command { .. }));
    assert_eq!(
        ev,
        DeviceEvent::Command {
            changed: true,
            error: None
        }
    );
    rig.until_broker("reply to the valid command", |r| {
        r.publishes()
            .iter()
            .any(|p| p.payload == br#"{"id":"ok","ok":true}"#)
    });
    assert_eq!(rig.device.switches().states(), &[false, true]);
    shutdown_device(rig);
}

fn shutdown_device(mut rig: DeviceRig<'_>) {
    rig.device.shutdown();
    assert!(rig.broker.wait_ended(Duration::from_secs(5)));
    let records = rig.broker.stop();
    assert_eq!(records.len(), 1, "one connection throughout");
}

/// An Alink message on `/sys/pk1/dev1/thing/service/{leaf}`.
fn ali(leaf: &str, payload: &[u8], error: Option<CommandError>, reply: Option<&str>) -> BadCommand {
    BadCommand {
        topic: format!("/sys/pk1/dev1/thing/service/{leaf}"),
        payload: payload.to_vec(),
        error,
        reply: reply.map(Into::into),
        reply_topic: format!("/sys/pk1/dev1/thing/service/{leaf}_reply"),
    }
}

#[test]
fn every_malformed_aliyun_command_is_refused_and_changes_nothing() {
    use CommandError::*;
    let (_dir, pki) = pki();
    let (broker, inject) = command_broker(&pki);
    let config = device_config("aliyun", broker.port());
    let identity = Identity::from_config(&config, None).unwrap();
    let settings = DeviceSettings {
        driver: fast_config(),
        telemetry_period_ms: 0,
        inflight_max: 4,
    };
    let mut buffers = Box::new(DeviceBuffers::new());
    let device = Device::new(
        &mut buffers,
        &identity,
        transport(broker.port(), &pki.ca_file),
        SimOutputs::default(),
        SwitchBank::new(SWITCHES).unwrap(),
        settings,
    );
    let mut rig = DeviceRig {
        device,
        broker,
        inject,
        t0: Instant::now(),
        log: Vec::new(),
    };
    let post = "/sys/pk1/dev1/thing/event/property/post";
    rig.until_broker("subscribed, properties posted", |r| {
        r.received.iter().any(
            |(_, p)| matches!(p, ClientPacket::Subscribe { filters, .. } if filters.len() == 4),
        ) && r.publishes().iter().any(|p| p.topic == post)
    });
    let off = |id: u32| {
        format!(
            r#"{{"id":"{id}","version":"1.0","params":{{"Relay1":0,"LED":0,"Uptime":0,"ReconnectCount":0}},"method":"thing.event.property.post"}}"#
        )
    };
    assert_eq!(rig.published(post), [off(1)]);

    let e460 = |id: &str| format!(r#"{{"id":"{id}","code":460,"data":{{}}}}"#);
    let set = |payload: &[u8], error, id: &str| {
        ali("property/set", payload, Some(error), Some(&e460(id)))
    };
    let toggle =
        |payload: &[u8], error, id: &str| ali("Toggle", payload, Some(error), Some(&e460(id)));
    let table = vec![
        set(b"", MalformedJson, "0"),
        set(b"Relay1=1", MalformedJson, "0"),
        set(&[0xc3, 0x28], MalformedJson, "0"),
        set(br#"{"id":"a1","params":{"Relay1":1}"#, MalformedJson, "0"),
        set(
            br#"{"id":"a2","params":{"Relay1":{"x":{"y":{"z":1}}}}}"#,
            MalformedJson,
            "0",
        ),
        set(br#"{"params":{"Relay1":1}}"#, MissingField, "0"),
        set(br#"{"id":true,"params":{"Relay1":1}}"#, MissingField, "0"),
        set(
            br#"{"id":"123456789012345678901","params":{"Relay1":1}}"#,
            MissingField,
            "0",
        ),
        set(br#"{"id":"a3"}"#, MissingField, "a3"),
        set(br#"{"id":"a4","params":{}}"#, MissingField, "a4"),
        set(br#"{"id":"a5","params":1}"#, WrongType, "a5"),
        set(br#"{"id":"a6","params":{"Pump":1}}"#, UnknownSwitch, "a6"),
        set(
            br#"{"id":"a7","params":{"Relay1":1,"Pump":1}}"#,
            UnknownSwitch,
            "a7",
        ),
        set(br#"{"id":"a8","params":{"Relay1":2}}"#, WrongType, "a8"),
        set(br#"{"id":"a9","params":{"Relay1":"1"}}"#, WrongType, "a9"),
        set(
            br#"{"id":"a10","params":{"LED":1,"LED":0}}"#,
            DuplicateSwitch,
            "a10",
        ),
        toggle(b"{", MalformedJson, "0"),
        toggle(br#"{"params":{"name":"LED"}}"#, MissingField, "0"),
        toggle(br#"{"id":"s1"}"#, MissingField, "s1"),
        toggle(br#"{"id":"s2","params":{}}"#, MissingField, "s2"),
        toggle(
            br#"{"id":"s3","params":{"name":"Pump"}}"#,
            UnknownSwitch,
            "s3",
        ),
        toggle(br#"{"id":"s4","params":{"name":1}}"#, WrongType, "s4"),
        // A service the device does not implement: 404, nothing changes.
        ali(
            "Reboot",
            br#"{"id":"s5","params":{}}"#,
            Some(UnknownCommand),
            Some(r#"{"id":"s5","code":404,"data":{}}"#),
        ),
        // Not a service identifier at all: not handled, no reply (there is no valid reply topic).
        ali("bad-id", br#"{"id":"s6","params":{}}"#, None, None),
    ];
    refuse_all(&mut rig, post, &table);

    rig.device.request_report();
    rig.until_broker("properties re-posted", |r| {
        r.publishes().iter().filter(|p| p.topic == post).count() == 2
    });
    assert_eq!(rig.published(post)[1], off(2));
    rig.command(
        "/sys/pk1/dev1/thing/service/property/set",
        br#"{"id":"ok","params":{"Relay1":1}}"#,
        7,
    );
    let ev = rig.until_event(|e| matches!(e, DeviceEvent::Command { .. }));
    assert_eq!(
        ev,
        DeviceEvent::Command {
            changed: true,
            error: None
        }
    );
    rig.until_broker("reply to the valid command", |r| {
        r.publishes()
            .iter()
            .any(|p| p.payload == br#"{"id":"ok","code":200,"data":{}}"#)
    });
    assert_eq!(rig.device.switches().states(), &[true, false]);
    shutdown_device(rig);
}

#[test]
fn connack_claiming_a_session_for_a_clean_session_still_subscribes() {
    // MQTT 3.1.1 [MQTT-3.2.2-1]: a clean session must be answered with session present 0. A
    // broker that says 1 anyway kept nothing the device asked it to keep; trusting it would
    // skip the subscriptions and leave the device deaf to commands.
    static SUBS: [(&str, QoS); 1] = [("cmd/a", QoS::AtLeastOnce)];
    let (_dir, pki) = pki();
    let broker = ScriptedBroker::start(ScriptOptions::new(pki.server.clone()), |conn| {
        conn.handshake()?;
        conn.expect_connect()?;
        conn.send(&connack(true, 0))?;
        conn.serve(None, SCENARIO_LIMIT)
    })
    .unwrap();
    let mut client = Client::new(broker.port(), &pki.ca_file, fast_config(), &SUBS);
    client.run_until(SCENARIO_LIMIT, |_, _, ev| matches!(ev, Ev::Subscribed(_)));
    let records = say_goodbye(&mut client, broker);
    assert_eq!(
        client.events(),
        [Ev::Connecting, Ev::Online, Ev::Subscribed(vec![1])]
    );
    assert!(matches!(
        &records[0].received[1].1,
        ClientPacket::Subscribe { filters, .. } if filters == &[("cmd/a".to_string(), QoS::AtLeastOnce)]
    ));
}
