//! Session speed on the host: what one QoS 1 message costs in each direction, receive ring
//! and send queue included, with no socket and no TLS.
//!
//! `cargo bench -p mqtts-core --bench session`.
//!
//! - `incoming_qos1`: PUBLISH bytes into the ring -> `Event::Message` -> PUBACK in the send queue.
//! - `outgoing_qos1`: `publish` -> PUBLISH bytes out -> PUBACK bytes in -> `Event::Published`,
//!   one message at a time and as a window of 16 in flight (as in the end-to-end benchmark).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mqtts_core::codec::{self, Connect, Packet, Publish, QoS};
use mqtts_core::ring::RingBuffer;
use mqtts_core::session::{Event, Session, SessionConfig};

/// The device's default receive ring (Kconfig: 2048 B); send queue and store hold a window of
/// 16 small messages (16 x 98 B), so a window goes out in one `transmit`.
type BenchSession = Session<2048, 2048, 16, 4>;
type Rx = RingBuffer<2048>;

const TOPIC: &str = "devices/dev-0123456789/state";
const CONNACK: [u8; 4] = [0x20, 0x02, 0x00, 0x00];
const WINDOW: usize = 16;

/// A session after CONNECT went out and CONNACK came back.
fn connected() -> (BenchSession, Rx) {
    let mut session = BenchSession::new(SessionConfig::default());
    let mut rx = Rx::new();
    let connect = Connect {
        client_id: "dev-0123456789",
        keep_alive: 60,
        clean_session: true,
        username: None,
        password: None,
        will: None,
    };
    session.connect(0, &connect).expect("CONNECT fits");
    let n = session.transmit().len();
    session.transmitted(n);
    rx.push(&CONNACK);
    let event = session.poll_event(0, &mut rx).expect("CONNACK accepted");
    assert_eq!(
        event,
        Some(Event::Connected {
            session_present: false
        })
    );
    (session, rx)
}

/// A QoS 1 PUBLISH as the broker sends it.
fn incoming_publish(payload: &[u8]) -> Vec<u8> {
    let packet = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "devices/dev-0123456789/set",
        packet_id: Some(0x0102),
        payload,
    });
    let mut out = vec![0u8; payload.len() + 64];
    let n = codec::encode(&packet, &mut out).expect("encodes");
    out.truncate(n);
    out
}

/// One incoming message end to end; returns the PUBACK's packet id byte so nothing is elided.
fn receive_one(session: &mut BenchSession, rx: &mut Rx, wire: &[u8]) -> u8 {
    rx.push(wire);
    match session.poll_event(1, rx) {
        Ok(Some(Event::Message(p))) => {
            black_box(p.payload);
        }
        other => panic!("expected a message, got {other:?}"),
    }
    // Releases the surfaced packet's bytes and finds nothing more.
    let _ = black_box(session.poll_event(1, rx));
    let ack = session.transmit();
    let last = ack.get(3).copied().unwrap_or(0);
    let n = ack.len();
    session.transmitted(n);
    last
}

fn incoming(c: &mut Criterion) {
    let mut group = c.benchmark_group("incoming_qos1");
    group.throughput(Throughput::Elements(1));
    for (name, size) in [("64B", 64usize), ("1KB", 1024)] {
        let payload = vec![b'p'; size];
        let wire = incoming_publish(&payload);
        let (mut session, mut rx) = connected();
        // The PUBACK must be the one 3.1.1 prescribes before anything is timed.
        rx.push(&wire);
        assert!(matches!(
            session.poll_event(1, &mut rx),
            Ok(Some(Event::Message(_)))
        ));
        assert_eq!(session.poll_event(1, &mut rx), Ok(None));
        assert_eq!(session.transmit(), &[0x40, 0x02, 0x01, 0x02]);
        session.transmitted(4);
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| receive_one(&mut session, &mut rx, black_box(&wire)))
        });
    }
    group.finish();
}

/// Publishes `count` messages, sends them, feeds their PUBACKs as one read and collects the
/// `Published` events. Returns how many arrived.
fn publish_round(
    session: &mut BenchSession,
    rx: &mut Rx,
    payload: &[u8],
    count: usize,
    acks: &mut Vec<u8>,
) -> usize {
    acks.clear();
    for _ in 0..count {
        let id = session
            .publish(1, TOPIC, payload, QoS::AtLeastOnce, false)
            .expect("room in the window")
            .expect("QoS 1 has an id");
        acks.extend_from_slice(&[0x40, 0x02]);
        acks.extend_from_slice(&id.to_be_bytes());
    }
    let out = session.transmit();
    black_box(out);
    let n = out.len();
    session.transmitted(n);
    rx.push(acks);
    let mut published = 0;
    while let Ok(Some(event)) = session.poll_event(1, rx) {
        if let Event::Published { packet_id } = event {
            black_box(packet_id);
            published += 1;
        }
    }
    published
}

fn outgoing(c: &mut Criterion) {
    let payload = [b'x'; 64];
    let mut acks = Vec::with_capacity(4 * WINDOW);
    let mut group = c.benchmark_group("outgoing_qos1_64B");
    for window in [1usize, WINDOW] {
        let (mut session, mut rx) = connected();
        assert_eq!(
            publish_round(&mut session, &mut rx, &payload, window, &mut acks),
            window
        );
        assert_eq!(session.in_flight(), 0);
        group.throughput(Throughput::Elements(window as u64));
        group.bench_function(BenchmarkId::new("window", window), |b| {
            b.iter(|| {
                publish_round(
                    &mut session,
                    &mut rx,
                    black_box(&payload),
                    window,
                    &mut acks,
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, incoming, outgoing);
criterion_main!(benches);
