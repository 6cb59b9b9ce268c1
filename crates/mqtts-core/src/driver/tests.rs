//! Driver tests over a scripted in-memory transport. (End-to-end runs against real brokers over
//! real TLS live in the host runner's test suite.)

use super::*;
use crate::codec::{decode_server_packet, Packet};
use crate::transport::testing::{MbedTls, Script};
use proptest::prelude::*;
use std::collections::VecDeque;
use std::vec::Vec;

type TestDriver<'a> = Driver<'a, Script, 128, 128, 256, 4, 4>;

const SUBS: &[(&str, QoS)] = &[("cmd/#", QoS::AtLeastOnce)];

fn connect_packet() -> Connect<'static> {
    Connect {
        client_id: "d1",
        keep_alive: 30,
        clean_session: true,
        username: None,
        password: None,
        will: None,
    }
}

fn established() -> Script {
    Script {
        connect: VecDeque::from([Ok(ConnectProgress::Established)]),
        ..Script::default()
    }
}

fn driver(script: Script) -> TestDriver<'static> {
    Driver::new(script, DriverConfig::default(), connect_packet(), SUBS)
}

/// A driver whose CONNECT asks the broker to keep the session (session present is only
/// believed then).
fn persistent_driver(script: Script) -> TestDriver<'static> {
    let connect = Connect {
        clean_session: false,
        ..connect_packet()
    };
    Driver::new(script, DriverConfig::default(), connect, SUBS)
}

/// Polls until the driver has nothing more to say; returns owned descriptions of the events.
fn run(d: &mut TestDriver<'_>, now: u64) -> Vec<std::string::String> {
    let mut out = Vec::new();
    while let Some(e) = d.poll(now, u32::MAX / 2) {
        out.push(std::format!("{e:?}"));
        assert!(out.len() < 100, "driver never settles");
    }
    out
}

fn take_sent(d: &mut TestDriver<'_>) -> Vec<u8> {
    core::mem::take(&mut d.link.transport.sent)
}

#[test]
fn connects_subscribes_and_goes_online() {
    let mut d = driver(established());
    d.link
        .transport
        .incoming
        .push_back(std::vec![0x20, 2, 0, 0]);
    let events = run(&mut d, 0);
    assert_eq!(events, ["Connecting", "Online { session_present: false }"]);
    let sent = take_sent(&mut d);
    // CONNECT first, then (after CONNACK) the SUBSCRIBE for the configured filter.
    assert_eq!(sent[0], 0x10);
    let sub = [0x82, 10, 0, 1, 0, 5, b'c', b'm', b'd', b'/', b'#', 1];
    assert!(sent.ends_with(&sub), "{sent:02x?}");
    assert!(d.is_online());
    assert_eq!(d.connections(), 1);
}

#[test]
fn session_present_skips_resubscribe() {
    let mut d = persistent_driver(established());
    d.link
        .transport
        .incoming
        .push_back(std::vec![0x20, 2, 1, 0]);
    run(&mut d, 0);
    let sent = take_sent(&mut d);
    assert_eq!(sent[0], 0x10);
    assert!(!sent.contains(&0x82));
}

#[test]
fn slow_handshake_is_polled_then_times_out() {
    let mut d = driver(Script {
        connect: VecDeque::from([Ok(ConnectProgress::Pending)]),
        ..Script::default()
    });
    assert_eq!(run(&mut d, 0), ["Connecting"]);
    assert_eq!(run(&mut d, 19_999), Vec::<std::string::String>::new());
    let events = run(&mut d, 20_000);
    assert_eq!(events.len(), 1);
    assert!(events[0].starts_with("Offline { cause: ConnectTimeout"));
    assert_eq!(d.link.transport.closes, 1);
    assert_eq!(d.last_failure(), Some(FailureCause::ConnectTimeout));
}

#[test]
fn transport_errors_are_named_causes() {
    for (err, cause) in [
        (TransportError::Dns, FailureCause::Dns),
        (TransportError::TcpRefused, FailureCause::TcpRefused),
        (
            TransportError::TlsVerification,
            FailureCause::TlsVerification,
        ),
        (TransportError::TlsHandshake, FailureCause::TlsHandshake),
        (TransportError::Timeout, FailureCause::ConnectTimeout),
    ] {
        let mut d = driver(Script {
            connect: VecDeque::from([Err(err)]),
            ..Script::default()
        });
        run(&mut d, 0);
        assert_eq!(d.last_failure(), Some(cause));
        assert!(matches!(d.state(), LinkState::Backoff { .. }));
    }
    let mut d = driver(Script {
        start_error: Some(TransportError::Dns),
        ..established()
    });
    run(&mut d, 0);
    assert_eq!(d.last_failure(), Some(FailureCause::Dns));
}

fn backoff_after(err: Result<ConnectProgress, TransportError>, connack: Option<u8>) -> u64 {
    let mut d = driver(Script {
        connect: VecDeque::from([err]),
        ..Script::default()
    });
    if let Some(code) = connack {
        d.link
            .transport
            .incoming
            .push_back(std::vec![0x20, 2, 0, code]);
    }
    run(&mut d, 0);
    match d.state() {
        LinkState::Backoff { until } => until,
        s => panic!("not backing off: {s:?}"),
    }
}

#[test]
fn authentication_failures_back_off_longer() {
    let transient = backoff_after(Err(TransportError::TcpRefused), None);
    let cert = backoff_after(Err(TransportError::TlsVerification), None);
    let password = backoff_after(Ok(ConnectProgress::Established), Some(4));
    let unavailable = backoff_after(Ok(ConnectProgress::Established), Some(3));
    assert!(
        cert > transient && password > transient,
        "{cert} {password} {transient}"
    );
    assert!(unavailable <= transient * 2);
}

#[test]
fn connack_refusal_is_reported_by_code() {
    let mut d = driver(established());
    d.link
        .transport
        .incoming
        .push_back(std::vec![0x20, 2, 0, 5]);
    let events = run(&mut d, 0);
    assert!(events
        .last()
        .unwrap()
        .contains("ConnAckRefused(NotAuthorized)"));
    assert_eq!(
        d.last_failure().map(|c| c.as_str()),
        Some("connack_not_authorized")
    );
}

#[test]
fn reconnects_after_backoff_and_resends_unacked_qos1() {
    let mut d = persistent_driver(established());
    d.link
        .transport
        .incoming
        .push_back(std::vec![0x20, 2, 0, 0]);
    run(&mut d, 0);
    assert_eq!(
        d.publish(1, "t", b"x", QoS::AtLeastOnce, false),
        Ok(Some(2))
    );
    take_sent(&mut d);
    d.link.transport.closed_by_peer = true;
    let events = run(&mut d, 2);
    assert!(events[0].starts_with("Offline { cause: PeerClosed"));
    let LinkState::Backoff { until } = d.state() else {
        panic!()
    };
    d.link.transport.closed_by_peer = false;
    assert!(run(&mut d, until - 1).is_empty());
    d.link
        .transport
        .incoming
        .push_back(std::vec![0x20, 2, 1, 0]);
    let events = run(&mut d, until);
    assert_eq!(events, ["Connecting", "Online { session_present: true }"]);
    let sent = take_sent(&mut d);
    // CONNECT, then the stored PUBLISH again: DUP set, same packet id 2.
    assert!(
        sent.ends_with(&[0x3a, 6, 0, 1, b't', 0, 2, b'x']),
        "{sent:02x?}"
    );
    assert_eq!(d.connections(), 2);
    assert_eq!(d.link.transport.starts, 2);
}

#[test]
fn keepalive_death_is_detected_and_reported() {
    let mut d = driver(established());
    d.link
        .transport
        .incoming
        .push_back(std::vec![0x20, 2, 0, 0]);
    run(&mut d, 0);
    take_sent(&mut d);
    run(&mut d, 30_000);
    assert_eq!(take_sent(&mut d), [0xc0, 0]);
    let events = run(&mut d, 40_000);
    assert!(events[0].starts_with("Offline { cause: KeepaliveTimeout"));
}

#[test]
fn protocol_error_closes_and_clears_stale_bytes() {
    let mut d = driver(established());
    d.link
        .transport
        .incoming
        .push_back(std::vec![0x20, 2, 0, 0, 0x20, 2, 0, 0, 0xd0, 0]);
    let events = run(&mut d, 0);
    assert!(events
        .last()
        .unwrap()
        .contains("Protocol(UnexpectedPacket(2))"));
    assert_eq!(d.link.transport.closes, 1);
    d.poll(1, 0);
    assert!(d.buffers.rx.is_empty());
}

#[test]
fn backoff_resets_after_a_stable_connection() {
    let mut d = driver(established());
    d.link.transport.closed_by_peer = true;
    run(&mut d, 0);
    d.link.transport.closed_by_peer = false;
    assert_eq!(d.link.backoff.attempts(), 1);
    let LinkState::Backoff { until } = d.state() else {
        panic!()
    };
    d.link
        .transport
        .incoming
        .push_back(std::vec![0x20, 2, 0, 0]);
    run(&mut d, until);
    assert!(d.is_online());
    d.link.transport.incoming.push_back(std::vec![0xd0, 0]);
    run(&mut d, until + 59_999);
    assert_eq!(d.link.backoff.attempts(), 1);
    d.link.transport.incoming.push_back(std::vec![0xd0, 0]);
    run(&mut d, until + 60_000);
    assert_eq!(d.link.backoff.attempts(), 0);
}

#[test]
fn shutdown_sends_disconnect_and_stops() {
    let mut d = driver(established());
    d.link
        .transport
        .incoming
        .push_back(std::vec![0x20, 2, 0, 0]);
    run(&mut d, 0);
    take_sent(&mut d);
    d.shutdown();
    assert_eq!(take_sent(&mut d), [0xe0, 0]);
    assert_eq!(d.state(), LinkState::Stopped);
    assert!(run(&mut d, 100_000).is_empty());
}

#[test]
fn pause_closes_and_resume_reconnects_at_once_with_fresh_backoff() {
    let mut d = driver(established());
    d.link.transport.closed_by_peer = true;
    run(&mut d, 0);
    d.link.transport.closed_by_peer = false;
    assert_eq!(d.link.backoff.attempts(), 1);
    d.pause();
    assert_eq!(d.state(), LinkState::Paused);
    assert_eq!(d.next_wakeup(), None);
    assert!(run(&mut d, 1_000_000).is_empty(), "paused: no attempts");
    d.resume(1_000_000);
    assert_eq!(d.link.backoff.attempts(), 0);
    d.link
        .transport
        .incoming
        .push_back(std::vec![0x20, 2, 0, 0]);
    let events = run(&mut d, 1_000_000);
    assert_eq!(events, ["Connecting", "Online { session_present: false }"]);
    // Pausing while online closes the socket and keeps unacknowledged messages for later.
    d.publish(1_000_001, "t", b"x", QoS::AtLeastOnce, false)
        .unwrap();
    let closes = d.link.transport.closes;
    d.pause();
    assert_eq!(d.link.transport.closes, closes + 1);
    assert_eq!(d.session().in_flight(), 1);
}

/// Regression: a broker that refuses CONNECT sends the CONNACK and closes at once (Mosquitto
/// does). Both arrive in one read burst; the refusal code must win over "peer closed".
#[test]
fn connack_refusal_followed_by_close_reports_the_code() {
    let mut script = established();
    script.incoming.push_back(std::vec![0x20, 2, 0, 5]);
    script.closed_by_peer = true;
    let mut d = driver(script);
    let events = run(&mut d, 0);
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0], "Connecting");
    assert!(
        events[1].starts_with("Offline { cause: ConnAckRefused(NotAuthorized), retry_in_ms: "),
        "{events:?}"
    );
    assert_eq!(
        d.last_failure(),
        Some(FailureCause::ConnAckRefused(
            ConnectReturnCode::NotAuthorized
        ))
    );
    assert!(matches!(d.state(), LinkState::Backoff { .. }));
}

/// Regression: a message that arrived right before the close is still delivered, then the
/// close is reported.
#[test]
fn message_before_close_is_delivered_then_peer_closed() {
    let mut d = driver(established());
    d.link
        .transport
        .incoming
        .push_back(std::vec![0x20, 2, 0, 0]);
    assert_eq!(run(&mut d, 0).len(), 2);
    // PUBLISH QoS 0 "cmd/a" payload "x", then EOF.
    d.link
        .transport
        .incoming
        .push_back(std::vec![0x30, 8, 0, 5, b'c', b'm', b'd', b'/', b'a', b'x']);
    d.link.transport.closed_by_peer = true;
    let events = run(&mut d, 10);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(
        events[0].contains("Message") && events[0].contains("cmd/a"),
        "{events:?}"
    );
    assert!(
        events[1].starts_with("Offline { cause: PeerClosed"),
        "{events:?}"
    );
}

/// Connects and takes CONNECT out of the transport's record.
fn online_driver() -> TestDriver<'static> {
    let mut d = driver(established());
    d.link
        .transport
        .incoming
        .push_back(std::vec![0x20, 2, 0, 0]);
    run(&mut d, 0);
    assert!(d.is_online());
    take_sent(&mut d);
    d.link.transport.sends.clear();
    d.link.transport.recvs = 0;
    d
}

/// PUBLISH QoS 1 to "t" with packet id `id` and a one-byte payload (§3.3).
fn publish_bytes(id: u8, payload: u8) -> [u8; 8] {
    [0x32, 6, 0, 1, b't', 0, id, payload]
}

#[test]
fn queued_publishes_leave_in_one_send_on_flush() {
    let mut d = online_driver();
    // The SUBSCRIBE after CONNACK took id 1.
    for (id, payload) in [(2u8, b'a'), (3, b'b'), (4, b'c')] {
        assert_eq!(
            d.queue_publish(1, "t", &[payload], QoS::AtLeastOnce, false),
            Ok(Some(u16::from(id)))
        );
    }
    assert!(
        d.link.transport.sends.is_empty(),
        "nothing sent before flush"
    );
    d.flush();
    assert_eq!(d.link.transport.sends, [24], "one send for three PUBLISHes");
    let mut expected = Vec::new();
    for (id, payload) in [(2u8, b'a'), (3, b'b'), (4, b'c')] {
        expected.extend_from_slice(&publish_bytes(id, payload));
    }
    assert_eq!(take_sent(&mut d), expected);
    // A second flush with nothing queued sends nothing.
    d.flush();
    assert_eq!(d.link.transport.sends.len(), 1);
}

#[test]
fn queued_publishes_leave_in_one_send_on_poll() {
    let mut d = online_driver();
    d.queue_publish(1, "t", b"a", QoS::AtLeastOnce, false)
        .unwrap();
    d.queue_publish(1, "t", b"b", QoS::AtMostOnce, false)
        .unwrap();
    assert!(run(&mut d, 2).is_empty());
    assert_eq!(d.link.transport.sends, [8 + 6]);
    let mut expected = publish_bytes(2, b'a').to_vec();
    // QoS 0: no packet id.
    expected.extend_from_slice(&[0x30, 4, 0, 1, b't', b'b']);
    assert_eq!(take_sent(&mut d), expected);
}

#[test]
fn publish_still_sends_at_once() {
    let mut d = online_driver();
    d.publish(1, "t", b"a", QoS::AtLeastOnce, false).unwrap();
    d.publish(1, "t", b"b", QoS::AtLeastOnce, false).unwrap();
    assert_eq!(d.link.transport.sends, [8, 8]);
}

#[test]
fn queued_publish_while_offline_waits_for_the_connection() {
    let mut d = driver(established());
    assert_eq!(
        d.queue_publish(0, "t", b"a", QoS::AtLeastOnce, false),
        Ok(Some(1))
    );
    d.flush();
    assert!(
        d.link.transport.sends.is_empty(),
        "not connected: nothing sent"
    );
    d.link
        .transport
        .incoming
        .push_back(std::vec![0x20, 2, 0, 0]);
    run(&mut d, 0);
    // CONNECT, then after CONNACK the stored PUBLISH (id 1) and the SUBSCRIBE (id 2).
    let sent = take_sent(&mut d);
    assert_eq!(sent[0], 0x10);
    assert!(
        sent.windows(8)
            .any(|w| w == [0x32, 6, 0, 1, b't', 0, 1, b'a']),
        "{sent:02x?}"
    );
}

#[test]
fn acks_received_together_are_handed_out_with_one_read() {
    let mut d = online_driver();
    for payload in [b'a', b'b', b'c'] {
        d.queue_publish(1, "t", &[payload], QoS::AtLeastOnce, false)
            .unwrap();
    }
    d.flush();
    // Three PUBACKs (ids 2, 3, 4) in one read.
    d.link
        .transport
        .incoming
        .push_back(std::vec![0x40, 2, 0, 2, 0x40, 2, 0, 3, 0x40, 2, 0, 4]);
    let events = run(&mut d, 2);
    assert_eq!(
        events,
        [
            "Session(Published { packet_id: 2 })",
            "Session(Published { packet_id: 3 })",
            "Session(Published { packet_id: 4 })"
        ]
    );
    // The read that brought them, and the one that found nothing more before `None`.
    assert_eq!(d.link.transport.recvs, 2);
}

#[test]
fn messages_received_together_are_handed_out_with_one_read() {
    let mut d = online_driver();
    // Two QoS 1 PUBLISHes to "cmd/a" (ids 7 and 8), then a third one cut after its topic
    // length, completed by the next read.
    let mut chunk = std::vec![0x32, 10, 0, 5, b'c', b'm', b'd', b'/', b'a', 0, 7, b'1'];
    chunk.extend_from_slice(&[0x32, 10, 0, 5, b'c', b'm', b'd', b'/', b'a', 0, 8, b'2']);
    chunk.extend_from_slice(&[0x32, 10, 0, 5]);
    d.link.transport.incoming.push_back(chunk);
    d.link
        .transport
        .incoming
        .push_back(std::vec![b'c', b'm', b'd', b'/', b'a', 0, 9, b'3']);
    let events = run(&mut d, 5);
    assert_eq!(events.len(), 3, "{events:?}");
    for (event, payload) in events.iter().zip(["[49]", "[50]", "[51]"]) {
        assert!(
            event.contains("Message") && event.contains(payload),
            "{events:?}"
        );
    }
    // First read: two whole messages. After both are out, a read completes the third; the
    // last read finds nothing.
    assert_eq!(d.link.transport.recvs, 3);
    // Every message was acknowledged, in order.
    assert_eq!(
        take_sent(&mut d),
        [0x40, 2, 0, 7, 0x40, 2, 0, 8, 0x40, 2, 0, 9]
    );
}

#[test]
fn an_ack_without_event_does_not_strand_later_bytes() {
    let mut d = online_driver();
    d.queue_publish(1, "t", b"a", QoS::AtLeastOnce, false)
        .unwrap();
    d.flush();
    // A late PUBACK for an id not in flight gives no event; the PUBACK for id 2 comes in a
    // second read. The first poll pass ends early, the next one must read the rest.
    d.link
        .transport
        .incoming
        .push_back(std::vec![0x40, 2, 0, 9]);
    d.link
        .transport
        .incoming
        .push_back(std::vec![0x40, 2, 0, 2]);
    let mut events = run(&mut d, 2);
    events.extend(run(&mut d, 2));
    assert_eq!(events, ["Session(Published { packet_id: 2 })"]);
    assert!(d.link.transport.incoming.is_empty());
}

#[test]
fn peek_header_reads_across_the_ring_end() {
    let mut rx = RingBuffer::<8>::new();
    rx.write_space()[..7].copy_from_slice(&[0, 0, 0, 0, 0, 0, 0x30]);
    rx.commit(7);
    rx.consume(6);
    // A PUBLISH header with remaining length 200 ([0xc8, 0x01]) stored at indices 6, 7, 0.
    rx.write_space().copy_from_slice(&[0xc8]);
    rx.commit(1);
    rx.write_space()[..1].copy_from_slice(&[0x01]);
    rx.commit(1);
    assert_eq!(rx.readable(), (&[0x30, 0xc8][..], &[0x01][..]));
    let h = peek_header(&rx, 0).unwrap();
    assert_eq!((h.packet_type(), h.header_len, h.packet_len()), (3, 3, 203));
    assert_eq!(peek_header(&rx, 100), None);

    // PUBACK, then a PUBLISH header cut inside its remaining length.
    let mut rx = RingBuffer::<8>::new();
    rx.write_space()[..6].copy_from_slice(&[0x40, 2, 0, 1, 0x30, 0xc8]);
    rx.commit(6);
    let h = peek_header(&rx, 0).unwrap();
    assert_eq!((h.packet_type(), h.packet_len()), (4, 4));
    assert_eq!(peek_header(&rx, 4), None);
    assert_eq!(peek_header(&rx, 6), None);
}

// --- The send-retry rule (`Transport::send`), against a model of Mbed TLS ---------------------

type TlsDriver = Driver<'static, MbedTls, 256, 256, 512, 4, 4>;

fn tls_driver(max_record: usize, network: Vec<usize>) -> TlsDriver {
    let config = DriverConfig {
        session: SessionConfig {
            ping_timeout_ms: 60_000,
            ..SessionConfig::default()
        },
        ..DriverConfig::default()
    };
    Driver::new(
        MbedTls::new(max_record, network),
        config,
        connect_packet(),
        SUBS,
    )
}

/// Polls (without time passing) until online, answering CONNECT and SUBSCRIBE.
fn tls_online(d: &mut TlsDriver, peer: &mut Peer) {
    for _ in 0..1000 {
        while d.poll(0, 7).is_some() {}
        peer.read(d.transport_mut());
        if d.is_online() && d.session().transmit().is_empty() && d.transport().queued.is_empty() {
            return;
        }
    }
    panic!("never online");
}

#[test]
fn would_block_retry_offers_exactly_the_blocked_bytes() {
    let mut d = tls_driver(1024, std::vec![usize::MAX]);
    let mut peer = Peer::default();
    tls_online(&mut d, &mut peer);
    let online_len = d.transport().wire.len();
    // The network takes 3 bytes of the first PUBLISH, then nothing twice, then everything.
    d.transport_mut().network = std::vec![3, 0, 0, usize::MAX];
    d.transport_mut().calls = 0;
    d.queue_publish(1, "t", b"first", QoS::AtLeastOnce, false)
        .unwrap();
    d.flush();
    let first_len = d.session().transmit().len();
    assert_eq!(d.transport().wire.len(), online_len + 3);
    // More is queued while that record is stuck: the retries must not include it.
    d.queue_publish(1, "t", b"queued while blocked", QoS::AtLeastOnce, false)
        .unwrap();
    for _ in 0..8 {
        d.flush();
    }
    peer.read(d.transport_mut());
    let t = d.transport();
    assert_eq!(t.violations, 0);
    // Each record: 3 bytes, two refusals, the rest (the network pattern repeats).
    assert_eq!(t.calls, 8);
    assert_eq!(
        peer.publishes,
        [b"first".to_vec(), b"queued while blocked".to_vec()]
    );
    assert_eq!(peer.at, t.wire.len());
    assert!(first_len > 3);
    assert!(d.session().transmit().is_empty());
}

#[test]
fn would_block_retry_after_zero_length_send_uses_the_same_bytes() {
    let mut d = online_driver();
    d.link.transport.zero_sends = 2;
    d.queue_publish(1, "t", b"first", QoS::AtLeastOnce, false)
        .unwrap();
    d.flush();
    let first = d.session().transmit().len();
    d.queue_publish(1, "t", b"second", QoS::AtLeastOnce, false)
        .unwrap();
    d.flush();
    d.flush();
    // Two refused calls and the accepted retry offer the first PUBLISH only; then the second.
    let sends = &d.link.transport.sends;
    assert_eq!(sends[..3], [first, first, first]);
    assert_eq!(sends.len(), 4);
    assert!(d.session().transmit().is_empty());
}

#[test]
fn would_block_without_the_rule_corrupts_the_model_stream() {
    // The model itself: a retry with a longer buffer reports its own length as written while
    // only the first record went out, so bytes are lost. (This is what the driver prevents.)
    let mut t = MbedTls::new(1024, std::vec![1, usize::MAX]);
    assert_eq!(t.send(b"abc"), Err(TransportError::WouldBlock));
    assert_eq!(t.send(b"abcdef"), Ok(6));
    assert_eq!(t.wire, b"abc");
    assert_eq!(t.violations, 1);
}

/// Something the property test does between polls.
#[derive(Debug, Clone)]
enum Op {
    /// The device publishes (QoS 0 or 1).
    Publish(bool),
    /// The broker sends a QoS 1 PUBLISH, which the device acknowledges.
    Incoming,
    /// Time passes (keepalive pings).
    Advance(u16),
    /// The device polls.
    Poll,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<bool>().prop_map(Op::Publish),
        2 => Just(Op::Incoming),
        2 => (0u16..20_000).prop_map(Op::Advance),
        3 => Just(Op::Poll),
    ]
}

/// The broker side: reads the device's packets off the wire as they complete and answers them.
#[derive(Default)]
struct Peer {
    at: usize,
    connects: usize,
    /// Payloads of the device's PUBLISHes, in wire order.
    publishes: Vec<Vec<u8>>,
    /// Packet ids of the device's PUBACKs, in wire order.
    acks: Vec<u16>,
    pings: usize,
}

impl Peer {
    /// Decodes every complete packet; panics on bytes that are not the device's packets.
    fn read(&mut self, t: &mut MbedTls) {
        while let Some(h) = decode_fixed_header(&t.wire[self.at..]).expect("valid header") {
            if t.wire.len() - self.at < h.packet_len() {
                break;
            }
            let body = &t.wire[self.at + h.header_len..self.at + h.packet_len()];
            let mut reply: Vec<u8> = Vec::new();
            match h.packet_type() {
                1 => {
                    self.connects += 1;
                    reply.extend([0x20, 2, 0, 0]);
                }
                8 => {
                    let id = [body[0], body[1]];
                    reply.extend([0x90, 3, id[0], id[1], 1]);
                }
                12 => {
                    assert_eq!(h.remaining_len, 0);
                    self.pings += 1;
                    reply.extend([0xd0, 0]);
                }
                _ => match decode_server_packet(&h, body) {
                    Ok(Some(Packet::Publish(p))) => {
                        assert!(!p.dup, "nothing is resent on one connection");
                        self.publishes.push(p.payload.to_vec());
                        if let Some(id) = p.packet_id {
                            reply.extend([0x40, 2]);
                            reply.extend(id.to_be_bytes());
                        }
                    }
                    Ok(Some(Packet::PubAck(id))) => self.acks.push(id),
                    other => panic!("unexpected packet from the device: {other:?}"),
                },
            }
            t.incoming.extend(reply);
            self.at += h.packet_len();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Under random would-block and partial-write patterns, while publishes, acknowledgements
    /// and pings keep being queued, the peer receives exactly the session's packets in order:
    /// every accepted publish once, in publish order, every incoming QoS 1 message acknowledged
    /// in order, nothing else, and the retry rule never broken.
    #[test]
    fn would_block_patterns_keep_the_stream_intact(
        max_record in 1usize..80,
        network in proptest::collection::vec(prop_oneof![2 => 0usize..1, 3 => 1usize..40, 1 => Just(usize::MAX)], 1..12),
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let mut network = network;
        if network.iter().all(|&n| n == 0) {
            network.push(7);
        }
        let mut d = tls_driver(max_record, network);
        let mut peer = Peer::default();
        // CONNECT and SUBSCRIBE go out over the same congested network.
        tls_online(&mut d, &mut peer);
        let mut now = 0u64;
        let mut published: Vec<Vec<u8>> = Vec::new();
        let mut incoming_ids: Vec<u16> = Vec::new();
        let mut next_in = 1u16;
        let mut seq = 0u32;
        for op in ops {
            match op {
                Op::Publish(qos1) => {
                    let payload = std::format!("m{seq}").into_bytes();
                    seq += 1;
                    let qos = if qos1 { QoS::AtLeastOnce } else { QoS::AtMostOnce };
                    if d.queue_publish(now, "t", &payload, qos, false).is_ok() {
                        published.push(payload);
                    }
                }
                Op::Incoming => {
                    if d.is_online() {
                        let [hi, lo] = next_in.to_be_bytes();
                        d.transport_mut().incoming.extend([0x32, 6, 0, 1, b'c', hi, lo, b'x']);
                        incoming_ids.push(next_in);
                        next_in += 1;
                    }
                }
                Op::Advance(ms) => now += u64::from(ms),
                Op::Poll => {}
            }
            while let Some(e) = d.poll(now, 7) {
                prop_assert!(!matches!(e, DriverEvent::Offline { .. }), "{e:?}");
            }
            peer.read(d.transport_mut());
        }
        // Let everything out.
        d.transport_mut().network = std::vec![usize::MAX];
        for _ in 0..50 {
            while d.poll(now, 7).is_some() {}
            d.flush();
            peer.read(d.transport_mut());
        }
        let t = d.transport();
        prop_assert_eq!(t.violations, 0);
        prop_assert!(t.queued.is_empty());
        prop_assert!(d.session().transmit().is_empty());
        prop_assert_eq!(peer.at, t.wire.len(), "trailing bytes on the wire");
        prop_assert_eq!(peer.connects, 1);
        prop_assert_eq!(&peer.publishes, &published);
        prop_assert_eq!(&peer.acks, &incoming_ids);
    }
}
