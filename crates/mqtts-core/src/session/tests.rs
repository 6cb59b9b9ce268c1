//! Session tests: real MQTT bytes in, real MQTT bytes out.

use super::*;
use std::vec::Vec;

type TestSession = Session<256, 512, 4, 4>;

const CONNACK_OK: [u8; 4] = [0x20, 0x02, 0x00, 0x00];
const CONNACK_PRESENT: [u8; 4] = [0x20, 0x02, 0x01, 0x00];

fn connect_packet() -> Connect<'static> {
    Connect {
        client_id: "dev",
        keep_alive: 10,
        clean_session: false,
        username: None,
        password: None,
        will: None,
    }
}

fn config() -> SessionConfig {
    SessionConfig {
        connack_timeout_ms: 5_000,
        ping_timeout_ms: 3_000,
        qos1_retry_ms: 0,
    }
}

/// Takes everything the session wants to send.
fn drain(s: &mut TestSession) -> Vec<u8> {
    let out = s.transmit().to_vec();
    s.transmitted(out.len());
    out
}

fn feed<const N: usize>(rx: &mut RingBuffer<N>, bytes: &[u8]) {
    assert_eq!(rx.push(bytes), bytes.len(), "ring full");
}

/// Collects owned copies of events until the session wants more bytes.
#[derive(Debug, PartialEq, Eq)]
enum Ev {
    Connected(bool),
    Message {
        topic: std::string::String,
        payload: Vec<u8>,
        qos: QoS,
        dup: bool,
    },
    Published(u16),
    Subscribed(u16, Vec<u8>),
    Unsubscribed(u16),
    Skipped(u8, usize),
}

fn events<const N: usize>(
    s: &mut TestSession,
    now: u64,
    rx: &mut RingBuffer<N>,
) -> Result<Vec<Ev>, SessionError> {
    let mut out = Vec::new();
    while let Some(e) = s.poll_event(now, rx)? {
        out.push(match e {
            Event::Connected { session_present } => Ev::Connected(session_present),
            Event::Message(p) => Ev::Message {
                topic: p.topic.into(),
                payload: p.payload.to_vec(),
                qos: p.qos,
                dup: p.dup,
            },
            Event::Published { packet_id } => Ev::Published(packet_id),
            Event::Subscribed(ack) => Ev::Subscribed(ack.packet_id, ack.return_codes.to_vec()),
            Event::Unsubscribed { packet_id } => Ev::Unsubscribed(packet_id),
            Event::Skipped { packet_type, len } => Ev::Skipped(packet_type, len),
        });
    }
    Ok(out)
}

fn online() -> (TestSession, RingBuffer<256>) {
    let mut s = TestSession::new(config());
    let mut rx = RingBuffer::new();
    s.connect(0, &connect_packet()).unwrap();
    drain(&mut s);
    feed(&mut rx, &CONNACK_OK);
    assert_eq!(events(&mut s, 0, &mut rx).unwrap(), [Ev::Connected(false)]);
    (s, rx)
}

#[test]
fn connect_writes_connect_packet() {
    let mut s = TestSession::new(config());
    s.connect(0, &connect_packet()).unwrap();
    assert_eq!(s.state(), State::AwaitConnAck);
    assert_eq!(
        drain(&mut s),
        [0x10, 15, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x00, 0, 10, 0, 3, b'd', b'e', b'v']
    );
}

#[test]
fn connack_refusal_codes_are_distinct_errors() {
    let expected = [
        ConnectReturnCode::UnacceptableProtocolVersion,
        ConnectReturnCode::IdentifierRejected,
        ConnectReturnCode::ServerUnavailable,
        ConnectReturnCode::BadUsernameOrPassword,
        ConnectReturnCode::NotAuthorized,
    ];
    for (code, want) in (1u8..=5).zip(expected) {
        let mut s = TestSession::new(config());
        let mut rx: RingBuffer<64> = RingBuffer::new();
        s.connect(0, &connect_packet()).unwrap();
        feed(&mut rx, &[0x20, 0x02, 0x00, code]);
        assert_eq!(s.poll_event(1, &mut rx), Err(SessionError::Refused(want)));
        assert_eq!(s.state(), State::Disconnected);
    }
}

#[test]
fn packet_before_connack_is_a_protocol_error() {
    let mut s = TestSession::new(config());
    let mut rx: RingBuffer<64> = RingBuffer::new();
    s.connect(0, &connect_packet()).unwrap();
    feed(&mut rx, &[0xd0, 0x00]);
    assert_eq!(
        s.poll_event(1, &mut rx),
        Err(SessionError::Protocol(ProtocolError::UnexpectedPacket(13)))
    );
}

#[test]
fn second_connack_and_server_only_packets_are_protocol_errors() {
    let (mut s, mut rx) = online();
    feed(&mut rx, &CONNACK_OK);
    assert_eq!(
        s.poll_event(1, &mut rx),
        Err(SessionError::Protocol(ProtocolError::UnexpectedPacket(2)))
    );
    let (mut s, mut rx) = online();
    feed(&mut rx, &[0xc0, 0x00]); // PINGREQ from the broker
    assert_eq!(
        s.poll_event(1, &mut rx),
        Err(SessionError::Protocol(ProtocolError::UnexpectedPacket(12)))
    );
}

#[test]
fn connack_timeout() {
    let mut s = TestSession::new(config());
    s.connect(100, &connect_packet()).unwrap();
    assert_eq!(s.next_timeout(), Some(5_100));
    assert_eq!(s.handle_timeout(5_099), Ok(()));
    assert_eq!(s.handle_timeout(5_100), Err(SessionError::ConnAckTimeout));
}

/// The all-zero session the driver buffers start with (so that they sit in `.bss`) behaves as
/// `Session::new(SessionConfig::DEFAULT)`: default timing from its first connect, the in-flight
/// limit at `INFLIGHT` until one is set, and a given config replaces the default.
#[test]
fn unconfigured_session_behaves_as_the_default_config() {
    let mut s = TestSession::new_default();
    s.connect(100, &connect_packet()).unwrap();
    assert_eq!(s.next_timeout(), Some(10_100));
    assert_eq!(s.handle_timeout(10_099), Ok(()));
    assert_eq!(s.handle_timeout(10_100), Err(SessionError::ConnAckTimeout));

    let mut s = TestSession::new_default();
    s.set_config(config());
    s.connect(100, &connect_packet()).unwrap();
    assert_eq!(
        s.next_timeout(),
        Some(5_100),
        "a set config is not overwritten by connect"
    );

    let mut s = TestSession::new_default();
    let mut rx = RingBuffer::<256>::new();
    s.connect(0, &connect_packet()).unwrap();
    drain(&mut s);
    feed(&mut rx, &CONNACK_OK);
    events(&mut s, 1, &mut rx).unwrap();
    for i in 1..=4 {
        assert!(!s.is_full(), "limit is INFLIGHT (4) before any is set");
        assert_eq!(
            s.publish(1, "t", b"x", QoS::AtLeastOnce, false),
            Ok(Some(i))
        );
    }
    assert!(s.is_full());
    assert_eq!(
        s.publish(1, "t", b"x", QoS::AtLeastOnce, false),
        Err(RequestError::Busy)
    );
}

#[test]
fn subscribe_and_suback_with_a_refused_filter() {
    let (mut s, mut rx) = online();
    let id = s
        .subscribe(1, &[("a/+", QoS::AtLeastOnce), ("b/#", QoS::AtMostOnce)])
        .unwrap();
    assert_eq!(id, 1);
    assert_eq!(
        drain(&mut s),
        [0x82, 14, 0, 1, 0, 3, b'a', b'/', b'+', 1, 0, 3, b'b', b'/', b'#', 0]
    );
    feed(&mut rx, &[0x90, 0x04, 0x00, 0x01, 0x01, 0x80]);
    assert_eq!(
        events(&mut s, 2, &mut rx).unwrap(),
        [Ev::Subscribed(1, std::vec![0x01, 0x80])]
    );
}

#[test]
fn suback_with_wrong_count_is_a_protocol_error() {
    let (mut s, mut rx) = online();
    s.subscribe(1, &[("a", QoS::AtLeastOnce), ("b", QoS::AtLeastOnce)])
        .unwrap();
    drain(&mut s);
    feed(&mut rx, &[0x90, 0x03, 0x00, 0x01, 0x01]);
    assert_eq!(
        s.poll_event(2, &mut rx),
        Err(SessionError::Protocol(ProtocolError::SubAckCountMismatch))
    );
}

#[test]
fn unsubscribe_and_unsuback() {
    let (mut s, mut rx) = online();
    let id = s.unsubscribe(1, &["a/b"]).unwrap();
    assert_eq!(drain(&mut s), [0xa2, 7, 0, 1, 0, 3, b'a', b'/', b'b']);
    feed(&mut rx, &[0xb0, 0x02, 0x00, 0x01]);
    assert_eq!(events(&mut s, 2, &mut rx).unwrap(), [Ev::Unsubscribed(id)]);
}

#[test]
fn subscribe_needs_a_connection() {
    let mut s = TestSession::new(config());
    assert_eq!(
        s.subscribe(0, &[("a", QoS::AtMostOnce)]),
        Err(RequestError::NotConnected)
    );
}

#[test]
fn qos1_publish_and_puback() {
    let (mut s, mut rx) = online();
    assert_eq!(
        s.publish(1, "t", b"hi", QoS::AtLeastOnce, false),
        Ok(Some(1))
    );
    assert_eq!(drain(&mut s), [0x32, 7, 0, 1, b't', 0, 1, b'h', b'i']);
    assert_eq!(s.in_flight(), 1);
    feed(&mut rx, &[0x40, 0x02, 0x00, 0x01]);
    assert_eq!(events(&mut s, 2, &mut rx).unwrap(), [Ev::Published(1)]);
    assert_eq!(s.in_flight(), 0);
}

#[test]
fn qos0_publish_bytes_and_offline_refusal() {
    let mut s = TestSession::new(config());
    assert_eq!(
        s.publish(0, "t", b"x", QoS::AtMostOnce, false),
        Err(RequestError::NotConnected)
    );
    let (mut s, _rx) = online();
    assert_eq!(s.publish(1, "t", b"x", QoS::AtMostOnce, true), Ok(None));
    assert_eq!(drain(&mut s), [0x31, 4, 0, 1, b't', b'x']);
}

#[test]
fn invalid_publish_topic_is_rejected_and_nothing_is_stored() {
    let (mut s, _rx) = online();
    assert!(matches!(
        s.publish(1, "a/+", b"x", QoS::AtLeastOnce, false),
        Err(RequestError::Invalid(_))
    ));
    assert_eq!(s.in_flight(), 0);
    assert!(s.transmit().is_empty());
}

#[test]
fn qos2_outgoing_flow() {
    let (mut s, mut rx) = online();
    assert_eq!(
        s.publish(1, "t", b"v", QoS::ExactlyOnce, false),
        Ok(Some(1))
    );
    assert_eq!(drain(&mut s), [0x34, 6, 0, 1, b't', 0, 1, b'v']);
    feed(&mut rx, &[0x50, 0x02, 0x00, 0x01]); // PUBREC
    assert_eq!(events(&mut s, 2, &mut rx).unwrap(), []);
    assert_eq!(drain(&mut s), [0x62, 0x02, 0x00, 0x01]); // PUBREL
    feed(&mut rx, &[0x70, 0x02, 0x00, 0x01]); // PUBCOMP
    assert_eq!(events(&mut s, 3, &mut rx).unwrap(), [Ev::Published(1)]);
    assert_eq!(s.in_flight(), 0);
}

#[test]
fn inflight_table_full_is_busy_not_a_panic() {
    let (mut s, _rx) = online();
    for i in 1..=4 {
        assert_eq!(
            s.publish(1, "t", b"x", QoS::AtLeastOnce, false),
            Ok(Some(i))
        );
    }
    assert!(s.is_full());
    assert_eq!(
        s.publish(1, "t", b"x", QoS::AtLeastOnce, false),
        Err(RequestError::Busy)
    );
}

#[test]
fn store_full_is_busy() {
    let (mut s, _rx) = online();
    // 208-byte packets: two fit the 512-byte store, a third does not.
    let big = [7u8; 200];
    for id in 1..=2 {
        assert_eq!(
            s.publish(1, "t", &big, QoS::AtLeastOnce, false),
            Ok(Some(id))
        );
    }
    assert_eq!(
        s.publish(1, "t", &big, QoS::AtLeastOnce, false),
        Err(RequestError::Busy)
    );
    assert_eq!(s.in_flight(), 2);
}

/// Found by the `session` fuzz target: a QoS 1 PUBLISH that fits the store but not the send
/// buffer was accepted, never sent, and held back every later message.
#[test]
fn qos1_publish_larger_than_send_buffer_is_refused() {
    let mut s = TestSession::new(config());
    let mut rx: RingBuffer<64> = RingBuffer::new();
    // 1 + 2 + (2 + 1) + 2 + 300 = 308 bytes: fits the 512-byte store, not the 256-byte send buffer.
    let big = [0x5a; 300];
    assert_eq!(
        s.publish(0, "a", &big, QoS::AtLeastOnce, true),
        Err(RequestError::Invalid(EncodeError::BufferTooSmall))
    );
    assert_eq!(s.in_flight(), 0);
    let id = s
        .publish(0, "a", b"ok", QoS::AtLeastOnce, false)
        .unwrap()
        .unwrap();
    s.connect(0, &connect_packet()).unwrap();
    drain(&mut s);
    feed(&mut rx, &CONNACK_OK);
    assert_eq!(events(&mut s, 1, &mut rx).unwrap(), [Ev::Connected(false)]);
    let [hi, lo] = id.to_be_bytes();
    assert_eq!(drain(&mut s), [0x32, 7, 0, 1, b'a', hi, lo, b'o', b'k']);
}

#[test]
fn resend_with_dup_after_reconnect_with_session_present() {
    let (mut s, mut rx) = online();
    s.publish(1, "a", b"1", QoS::AtLeastOnce, false).unwrap();
    s.publish(1, "b", b"2", QoS::ExactlyOnce, false).unwrap();
    drain(&mut s);
    feed(&mut rx, &[0x50, 0x02, 0x00, 0x02]); // PUBREC for the QoS 2 message
    events(&mut s, 2, &mut rx).unwrap();
    drain(&mut s); // PUBREL 2 went out, PUBCOMP never comes

    s.connection_lost();
    rx.clear();
    s.connect(10, &connect_packet()).unwrap();
    drain(&mut s);
    feed(&mut rx, &CONNACK_PRESENT);
    assert_eq!(events(&mut s, 11, &mut rx).unwrap(), [Ev::Connected(true)]);
    // Same packet ids; the PUBLISH has DUP set, the QoS 2 flow resumes at PUBREL.
    assert_eq!(
        drain(&mut s),
        [0x3a, 6, 0, 1, b'a', 0, 1, b'1', 0x62, 0x02, 0x00, 0x02]
    );
}

#[test]
fn session_present_on_a_clean_session_is_not_believed() {
    // Regression (hostile-broker test): a broker answering a clean-session CONNECT with
    // session present 1 made the driver skip its subscriptions.
    let mut s = TestSession::new(config());
    let mut rx: RingBuffer<256> = RingBuffer::new();
    let clean = Connect {
        clean_session: true,
        ..connect_packet()
    };
    s.connect(0, &clean).unwrap();
    drain(&mut s);
    feed(&mut rx, &CONNACK_PRESENT);
    assert_eq!(events(&mut s, 1, &mut rx).unwrap(), [Ev::Connected(false)]);
    // Without clean session the flag is believed.
    s.connection_lost();
    rx.clear();
    s.connect(2, &connect_packet()).unwrap();
    drain(&mut s);
    feed(&mut rx, &CONNACK_PRESENT);
    assert_eq!(events(&mut s, 3, &mut rx).unwrap(), [Ev::Connected(true)]);
}

#[test]
fn qos2_restarts_from_publish_when_session_was_lost() {
    let (mut s, mut rx) = online();
    s.publish(1, "b", b"2", QoS::ExactlyOnce, false).unwrap();
    drain(&mut s);
    feed(&mut rx, &[0x50, 0x02, 0x00, 0x01]);
    events(&mut s, 2, &mut rx).unwrap();
    drain(&mut s);
    s.connection_lost();
    rx.clear();
    s.connect(10, &connect_packet()).unwrap();
    drain(&mut s);
    feed(&mut rx, &CONNACK_OK);
    events(&mut s, 11, &mut rx).unwrap();
    assert_eq!(drain(&mut s), [0x3c, 6, 0, 1, b'b', 0, 1, b'2']);
}

#[test]
fn publishes_made_offline_go_out_after_connack_in_order() {
    let mut s = TestSession::new(config());
    let mut rx: RingBuffer<256> = RingBuffer::new();
    assert_eq!(
        s.publish(0, "a", b"1", QoS::AtLeastOnce, false),
        Ok(Some(1))
    );
    assert_eq!(
        s.publish(0, "a", b"2", QoS::AtLeastOnce, false),
        Ok(Some(2))
    );
    assert!(s.transmit().is_empty());
    s.connect(1, &connect_packet()).unwrap();
    drain(&mut s);
    feed(&mut rx, &CONNACK_OK);
    events(&mut s, 2, &mut rx).unwrap();
    assert_eq!(
        drain(&mut s),
        [0x32, 6, 0, 1, b'a', 0, 1, b'1', 0x32, 6, 0, 1, b'a', 0, 2, b'2']
    );
}

#[test]
fn qos1_retry_timeout_resends_with_dup() {
    let mut s = TestSession::new(SessionConfig {
        qos1_retry_ms: 1_000,
        ..config()
    });
    let mut rx: RingBuffer<64> = RingBuffer::new();
    s.connect(0, &connect_packet()).unwrap();
    drain(&mut s);
    feed(&mut rx, &CONNACK_OK);
    s.poll_event(0, &mut rx).unwrap();
    s.publish(100, "t", b"x", QoS::AtLeastOnce, false).unwrap();
    drain(&mut s);
    assert_eq!(s.next_timeout(), Some(1_100));
    s.handle_timeout(1_099).unwrap();
    assert!(s.transmit().is_empty());
    s.handle_timeout(1_100).unwrap();
    assert_eq!(drain(&mut s), [0x3a, 6, 0, 1, b't', 0, 1, b'x']);
}

/// The session keeps 32-bit times (`Millis`): timers must work across the wrap of the low
/// 32 bits of `now`, and `next_timeout` must still answer in the caller's 64-bit time.
#[test]
fn timers_work_across_the_32_bit_wrap() {
    const WRAP: u64 = 1 << 32;
    let mut s = TestSession::new(SessionConfig {
        qos1_retry_ms: 1_000,
        ..config()
    });
    let mut rx: RingBuffer<64> = RingBuffer::new();
    // Connected 2 s before the low 32 bits wrap, in the 5th wrap period.
    let t0 = 5 * WRAP - 2_000;
    s.connect(t0, &connect_packet()).unwrap();
    assert_eq!(s.next_timeout(), Some(t0 + 5_000));
    drain(&mut s);
    feed(&mut rx, &CONNACK_OK);
    s.poll_event(t0, &mut rx).unwrap();
    s.publish(t0 + 500, "t", b"x", QoS::AtLeastOnce, false)
        .unwrap();
    drain(&mut s);
    // QoS 1 retry at t0 + 1_500 (before the wrap), keepalive at t0 + 10_000 (after it).
    assert_eq!(s.next_timeout(), Some(t0 + 1_500));
    s.handle_timeout(t0 + 1_499).unwrap();
    assert!(s.transmit().is_empty());
    s.handle_timeout(t0 + 1_500).unwrap();
    assert_eq!(drain(&mut s), [0x3a, 6, 0, 1, b't', 0, 1, b'x']);
    feed(&mut rx, &[0x40, 0x02, 0x00, 0x01]);
    assert_eq!(
        events(&mut s, t0 + 1_600, &mut rx).unwrap(),
        [Ev::Published(1)]
    );
    // Last receive t0 + 1_600, last send t0 + 1_500: keepalive due 10 s after the older.
    assert_eq!(s.next_timeout(), Some(t0 + 11_500));
    s.handle_timeout(t0 + 11_499).unwrap();
    assert!(s.transmit().is_empty());
    s.handle_timeout(t0 + 11_500).unwrap();
    assert_eq!(drain(&mut s), [0xc0, 0x00]);
    // No PINGRESP: the link is declared dead 3 s later, on the other side of the wrap.
    assert_eq!(s.next_timeout(), Some(t0 + 14_500));
    assert_eq!(s.handle_timeout(t0 + 14_499), Ok(()));
    assert_eq!(
        s.handle_timeout(t0 + 14_500),
        Err(SessionError::KeepaliveTimeout)
    );
}

#[test]
fn packet_ids_skip_ids_in_use() {
    let (mut s, mut rx) = online();
    s.next_id = 65_534;
    assert_eq!(
        s.publish(1, "t", b"", QoS::AtLeastOnce, false),
        Ok(Some(65_535))
    );
    assert_eq!(s.publish(1, "t", b"", QoS::AtLeastOnce, false), Ok(Some(1)));
    drain(&mut s);
    feed(&mut rx, &[0x40, 0x02, 0xff, 0xff]);
    events(&mut s, 2, &mut rx).unwrap();
    // 1 is still in flight, so after wrapping the allocator must skip it.
    s.next_id = 0;
    assert_eq!(s.publish(1, "t", b"", QoS::AtLeastOnce, false), Ok(Some(2)));
}

#[test]
fn unknown_puback_is_ignored() {
    let (mut s, mut rx) = online();
    feed(&mut rx, &[0x40, 0x02, 0x00, 0x09]);
    assert_eq!(events(&mut s, 1, &mut rx).unwrap(), []);
    assert_eq!(s.state(), State::Connected);
}

#[test]
fn incoming_qos1_is_acked_and_delivered() {
    let (mut s, mut rx) = online();
    feed(
        &mut rx,
        &[0x32, 8, 0, 2, b'a', b'b', 0x12, 0x34, b'o', b'k'],
    );
    assert_eq!(
        events(&mut s, 1, &mut rx).unwrap(),
        [Ev::Message {
            topic: "ab".into(),
            payload: b"ok".to_vec(),
            qos: QoS::AtLeastOnce,
            dup: false
        }]
    );
    assert_eq!(drain(&mut s), [0x40, 0x02, 0x12, 0x34]);
}

#[test]
fn incoming_qos2_is_delivered_exactly_once() {
    let (mut s, mut rx) = online();
    let publish = [0x34, 6, 0, 1, b'a', 0, 7, b'z'];
    feed(&mut rx, &publish);
    assert_eq!(events(&mut s, 1, &mut rx).unwrap().len(), 1);
    assert_eq!(drain(&mut s), [0x50, 0x02, 0x00, 0x07]);
    // Redelivery with DUP before PUBREL: acknowledged again, not delivered again.
    let mut dup = publish;
    dup[0] |= 0x08;
    feed(&mut rx, &dup);
    assert_eq!(events(&mut s, 2, &mut rx).unwrap(), []);
    assert_eq!(drain(&mut s), [0x50, 0x02, 0x00, 0x07]);
    feed(&mut rx, &[0x62, 0x02, 0x00, 0x07]);
    assert_eq!(events(&mut s, 3, &mut rx).unwrap(), []);
    assert_eq!(drain(&mut s), [0x70, 0x02, 0x00, 0x07]);
    // After PUBREL the id is free: a new message with it is delivered.
    feed(&mut rx, &publish);
    assert_eq!(events(&mut s, 4, &mut rx).unwrap().len(), 1);
}

#[test]
fn keepalive_sends_pingreq_and_pingresp_keeps_link() {
    let (mut s, mut rx) = online();
    assert_eq!(s.next_timeout(), Some(10_000));
    s.handle_timeout(9_999).unwrap();
    assert!(s.transmit().is_empty());
    s.handle_timeout(10_000).unwrap();
    assert_eq!(drain(&mut s), [0xc0, 0x00]);
    assert_eq!(s.next_timeout(), Some(13_000));
    feed(&mut rx, &[0xd0, 0x00]);
    events(&mut s, 11_000, &mut rx).unwrap();
    s.handle_timeout(13_000).unwrap();
    assert_eq!(s.state(), State::Connected);
}

#[test]
fn keepalive_death_without_pingresp() {
    let (mut s, _rx) = online();
    s.handle_timeout(10_000).unwrap();
    assert_eq!(drain(&mut s), [0xc0, 0x00]);
    s.handle_timeout(12_999).unwrap();
    assert_eq!(
        s.handle_timeout(13_000),
        Err(SessionError::KeepaliveTimeout)
    );
}

#[test]
fn oversize_packet_is_skipped_and_framing_kept() {
    let mut s = TestSession::new(config());
    let mut rx: RingBuffer<32> = RingBuffer::new();
    s.connect(0, &connect_packet()).unwrap();
    drain(&mut s);
    feed(&mut rx, &CONNACK_OK);
    events(&mut s, 0, &mut rx).unwrap();
    // A 42-byte QoS 1 PUBLISH (id 5) cannot fit in a 32-byte ring; it arrives in pieces.
    let mut big = std::vec![0x32, 40, 0, 1, b't', 0, 5];
    big.extend_from_slice(&[b'x'; 35]);
    feed(&mut rx, &big[..20]);
    assert_eq!(events(&mut s, 1, &mut rx).unwrap(), [Ev::Skipped(3, 42)]);
    assert_eq!(drain(&mut s), [0x40, 0x02, 0x00, 0x05]);
    feed(&mut rx, &big[20..]);
    // The next packet after the skipped one is read normally.
    feed(&mut rx, &[0x30, 4, 0, 1, b'u', b'!']);
    assert_eq!(
        events(&mut s, 2, &mut rx).unwrap(),
        [Ev::Message {
            topic: "u".into(),
            payload: b"!".to_vec(),
            qos: QoS::AtMostOnce,
            dup: false
        }]
    );
}

#[test]
fn packets_wrapping_around_the_ring_end_are_parsed() {
    let mut s = TestSession::new(config());
    let mut rx: RingBuffer<16> = RingBuffer::new();
    s.connect(0, &connect_packet()).unwrap();
    drain(&mut s);
    feed(&mut rx, &CONNACK_OK);
    events(&mut s, 0, &mut rx).unwrap();
    let msg = [0x30, 8, 0, 2, b'a', b'b', b'1', b'2', b'3', b'4'];
    let mut got = Vec::new();
    for _ in 0..5 {
        feed(&mut rx, &msg);
        for e in events(&mut s, 1, &mut rx).unwrap() {
            got.push(e);
        }
    }
    assert_eq!(got.len(), 5);
    assert!(got
        .iter()
        .all(|e| matches!(e, Ev::Message { payload, .. } if payload == b"1234")));
}

#[test]
fn full_send_buffer_holds_back_reading() {
    let mut s: Session<8, 64, 2, 2> = Session::new(config());
    let mut rx: RingBuffer<64> = RingBuffer::new();
    let c = Connect {
        client_id: "",
        clean_session: true,
        ..connect_packet()
    };
    // CONNECT is 14 bytes: it can never fit an 8-byte send buffer.
    assert_eq!(
        s.connect(0, &c),
        Err(RequestError::Invalid(EncodeError::BufferTooSmall))
    );
    let mut s: Session<16, 64, 2, 2> = Session::new(config());
    s.connect(0, &c).unwrap();
    s.transmitted(s.transmit().len());
    rx.push(&CONNACK_OK);
    s.poll_event(0, &mut rx).unwrap();
    // Fill the send buffer so no PUBACK fits.
    s.publish(0, "t", b"01234567", QoS::AtMostOnce, false)
        .unwrap();
    rx.push(&[0x32, 5, 0, 1, b'a', 0, 1]);
    assert_eq!(s.poll_event(1, &mut rx), Ok(None));
    assert_eq!(rx.len(), 7, "the packet stays until its ack fits");
    s.transmitted(s.transmit().len());
    assert!(matches!(
        s.poll_event(2, &mut rx),
        Ok(Some(Event::Message(_)))
    ));
    assert_eq!(s.transmit(), [0x40, 0x02, 0x00, 0x01]);
}

#[test]
fn malformed_input_is_an_error_not_a_panic() {
    let (mut s, mut rx) = online();
    feed(&mut rx, &[0x30, 0xff, 0xff, 0xff, 0xff, 0x01]);
    assert_eq!(
        s.poll_event(1, &mut rx),
        Err(SessionError::Protocol(ProtocolError::Decode(
            DecodeError::MalformedRemainingLength
        )))
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    /// The same broker byte stream gives the same events and the same outgoing bytes however it
    /// is split into reads.
    fn run(stream: &[u8], cuts: &[usize]) -> (Vec<Ev>, Vec<u8>, Option<SessionError>) {
        let mut s = TestSession::new(config());
        let mut rx: RingBuffer<64> = RingBuffer::new();
        s.connect(0, &connect_packet()).unwrap();
        drain(&mut s);
        let mut evs = Vec::new();
        let mut sent = Vec::new();
        let mut at = 0;
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        bounds.push(stream.len());
        bounds.sort_unstable();
        for end in bounds {
            while at < end {
                let n = rx.push(&stream[at..end]);
                at += n;
                match events(&mut s, 1, &mut rx) {
                    Ok(e) => evs.extend(e),
                    Err(e) => return (evs, sent, Some(e)),
                }
                sent.extend(drain(&mut s));
            }
        }
        (evs, sent, None)
    }

    fn stream() -> Vec<u8> {
        let mut v = CONNACK_OK.to_vec();
        v.extend([0x32, 8, 0, 2, b'a', b'b', 0x12, 0x34, b'o', b'k']);
        v.extend([0x34, 6, 0, 1, b'a', 0, 7, b'z']);
        v.extend([0x62, 0x02, 0x00, 0x07]);
        let mut big = std::vec![0x30, 70, 0, 1, b't'];
        big.extend([b'y'; 67]);
        v.extend(big);
        v.extend([0xd0, 0x00]);
        v.extend([0x30, 4, 0, 1, b'u', b'!']);
        v
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_result(cuts in proptest::collection::vec(0usize..200, 0..12)) {
            let whole = run(&stream(), &[]);
            prop_assert_eq!(whole.2, None);
            prop_assert_eq!(whole.0.len(), 5);
            prop_assert_eq!(run(&stream(), &cuts), whole);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300),
                                       cuts in proptest::collection::vec(0usize..300, 0..8)) {
            let mut stream = CONNACK_OK.to_vec();
            stream.extend(bytes);
            let _ = run(&stream, &cuts);
        }
    }
}

#[test]
fn requests_that_can_never_fit_are_invalid_and_temporary_lack_of_room_is_busy() {
    const NEVER: RequestError = RequestError::Invalid(EncodeError::BufferTooSmall);
    let (mut s, _rx) = online();
    // QoS 0 and SUBSCRIBE larger than the 256-byte send buffer: never.
    let big = [b'x'; 300];
    assert_eq!(s.publish(1, "t", &big, QoS::AtMostOnce, false), Err(NEVER));
    let long_filter = std::string::String::from_utf8(std::vec![b'f'; 300]).unwrap();
    assert_eq!(
        s.subscribe(1, &[(long_filter.as_str(), QoS::AtMostOnce)]),
        Err(NEVER)
    );
    // QoS 1 larger than the whole 512-byte store: never, even with the store empty.
    let huge = [b'y'; 600];
    assert_eq!(
        s.publish(1, "t", &huge, QoS::AtLeastOnce, false),
        Err(NEVER)
    );
    // A QoS 0 message that fits only once queued bytes are gone: busy.
    let half = [b'z'; 200];
    s.publish(1, "t", &half, QoS::AtMostOnce, false).unwrap();
    assert_eq!(
        s.publish(1, "t", &half, QoS::AtMostOnce, false),
        Err(RequestError::Busy)
    );
    drain(&mut s);
    assert_eq!(s.publish(1, "t", &half, QoS::AtMostOnce, false), Ok(None));
}

/// A stream of packets through a small ring, arriving in chunks of every size: fixed headers
/// (and packets) start at every position, so headers wrap around the end of the storage at
/// every split. Each message arrives once, intact, in order.
#[test]
fn fixed_headers_wrapping_the_ring_end_are_read_in_place() {
    // QoS 0 PUBLISH, topic "t", payload [i, i]: 7 bytes, so 7 and the ring's 16 are coprime.
    let packet = |i: u8| [0x30, 0x05, 0x00, 0x01, b't', i, i];
    let mut total_wrapped = 0;
    for chunk in 1..=9 {
        let mut s = TestSession::new(config());
        let mut rx = RingBuffer::<16>::new();
        s.connect(0, &connect_packet()).unwrap();
        drain(&mut s);
        feed(&mut rx, &CONNACK_OK);
        assert_eq!(events(&mut s, 0, &mut rx).unwrap(), [Ev::Connected(false)]);
        let stream: Vec<u8> = (0..20u8).flat_map(packet).collect();
        let mut got = Vec::new();
        let mut at = 0;
        let mut wrapped_headers = 0;
        while at < stream.len() {
            let end = (at + chunk).min(stream.len());
            at += rx.push(&stream[at..end]);
            let (a, b) = rx.readable();
            if a.len() < 5 && !b.is_empty() {
                wrapped_headers += 1;
            }
            got.extend(events(&mut s, 1, &mut rx).unwrap());
        }
        total_wrapped += wrapped_headers;
        let want: Vec<Ev> = (0..20u8)
            .map(|i| Ev::Message {
                topic: "t".into(),
                payload: std::vec![i, i],
                qos: QoS::AtMostOnce,
                dup: false,
            })
            .collect();
        assert_eq!(got, want, "chunks of {chunk}");
    }
    assert!(total_wrapped > 0, "no fixed header wrapped the ring's end");
}

/// `set_inflight_limit` clamps to `1..=INFLIGHT`: 0 holds one message, more than the table
/// holds the table's 4, and a limit can be raised again.
#[test]
fn inflight_limit_is_clamped_to_the_table() {
    let publish_until_busy = |s: &mut TestSession| {
        let mut n = 0;
        while s.publish(1, "t", b"x", QoS::AtLeastOnce, false).is_ok() {
            n += 1;
        }
        n
    };
    for (limit, held) in [(0, 1), (1, 1), (3, 3), (4, 4), (99, 4)] {
        let (mut s, _rx) = online();
        s.set_inflight_limit(limit);
        assert_eq!(publish_until_busy(&mut s), held, "limit {limit}");
        assert!(s.is_full());
        s.set_inflight_limit(4);
        assert_eq!(publish_until_busy(&mut s), 4 - held, "raised from {limit}");
    }
}
