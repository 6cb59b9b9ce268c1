//! Driver tests over a scripted in-memory transport. (End-to-end runs against real brokers over
//! real TLS live in the host runner's test suite.)

use super::*;
use crate::transport::testing::Script;
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
