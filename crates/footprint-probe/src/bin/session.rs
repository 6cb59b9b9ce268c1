//! The MQTT session image: the core's sans-IO `Session` over an in-memory link, doing the
//! reference workload (the same one measured on coreMQTT, minimq, mqttrust and rust-mqtt):
//! connect (client id, user name, password, keepalive 60 s, clean session), subscribe to one
//! filter at QoS 1, publish one QoS 1 and one QoS 0 message, process CONNACK, SUBACK, PUBACK and
//! one incoming PUBLISH routed to a handler by topic filter, and send PINGREQ when keepalive is
//! due. Every input (strings, config, received bytes, time) comes through a volatile load.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use footprint_probe::{advance, now, opaque, sink, ProbeSession, RX};
use mqtts_core::codec::{topic, Connect, QoS};
use mqtts_core::ring::RingBuffer;
use mqtts_core::session::{Event, Session, SessionConfig};
use panic_halt as _;

static CONFIG: SessionConfig = SessionConfig {
    connack_timeout_ms: 10_000,
    ping_timeout_ms: 10_000,
    qos1_retry_ms: 0,
};
static CLIENT_ID: &str = "probe-0001";
static USERNAME: &str = "probe";
static PASSWORD: &[u8] = b"secret-password";
static FILTER: &str = "devices/probe/cmd/+";
static STATE_TOPIC: &str = "devices/probe/state";
static STATE_PAYLOAD: &[u8] = b"{\"on\":1}";
static TELEMETRY_TOPIC: &str = "devices/probe/telemetry";
static TELEMETRY_PAYLOAD: &[u8] = b"{\"t\":21}";

/// What the broker says before the subscribe: CONNACK (accepted, no session).
static RX_CONNECTED: &[u8] = &[0x20, 0x02, 0x00, 0x00];
/// Then: SUBACK (id 1, QoS 1 granted), PUBACK (id 2), PUBLISH QoS 1 id 7 on
/// `devices/probe/cmd/relay` with `{"on":1}`.
static RX_ONLINE: &[u8] = &[
    0x90, 0x03, 0x00, 0x01, 0x01, // SUBACK
    0x40, 0x02, 0x00, 0x02, // PUBACK
    0x32, 0x23, 0x00, 0x17, b'd', b'e', b'v', b'i', b'c', b'e', b's', b'/', b'p', b'r', b'o', b'b',
    b'e', b'/', b'c', b'm', b'd', b'/', b'r', b'e', b'l', b'a', b'y', 0x00, 0x07, b'{', b'"', b'o',
    b'n', b'"', b':', b'1', b'}',
];

/// The socket stand-in: what the session transmits goes to the sink, received bytes come from
/// a scripted buffer.
fn flush(session: &mut ProbeSession) {
    let out = session.transmit();
    let sum = out
        .iter()
        .fold(0u32, |a, &b| a.rotate_left(5) ^ u32::from(b));
    sink(sum);
    let n = out.len();
    session.transmitted(n);
}

fn receive(rx: &mut RingBuffer<RX>, bytes: &[u8]) {
    let taken = rx.push(bytes);
    sink(taken as u32);
}

/// Reads events until the session needs more bytes; messages are routed by topic filter.
fn process(session: &mut ProbeSession, rx: &mut RingBuffer<RX>, filter: &str) {
    loop {
        match session.poll_event(now(), rx) {
            Ok(Some(Event::Message(publish))) => {
                if topic::matches(filter, publish.topic) {
                    relay_handler(publish.payload);
                }
            }
            Ok(Some(Event::Connected { session_present })) => sink(u32::from(session_present)),
            Ok(Some(Event::Published { packet_id })) => sink(u32::from(packet_id)),
            Ok(Some(Event::Subscribed(ack))) => sink(ack.return_codes.len() as u32),
            Ok(Some(_)) => sink(0x5a),
            Ok(None) => break,
            Err(_) => {
                session.connection_lost();
                sink(0xdead);
                break;
            }
        }
        flush(session);
    }
    flush(session);
}

fn relay_handler(payload: &[u8]) {
    sink(u32::from(payload.get(6).copied().unwrap_or(0)));
}

#[entry]
fn main() -> ! {
    // Both in `.bss`, built by `const fn`s (as the firmware keeps its buffers): nothing is
    // constructed on the stack and copied, no buffer is cleared at run time.
    static mut SESSION: ProbeSession = Session::new_default();
    static mut RX_RING: RingBuffer<RX> = RingBuffer::new();
    let session = SESSION;
    session.set_config(opaque(&CONFIG));
    let rx = RX_RING;

    let connect = Connect {
        client_id: opaque(&CLIENT_ID),
        keep_alive: 60,
        clean_session: true,
        username: Some(opaque(&USERNAME)),
        password: Some(opaque(&PASSWORD)),
        will: None,
    };
    if session.connect(now(), &connect).is_err() {
        sink(1);
    }
    flush(session);
    advance(20);
    receive(rx, opaque(&RX_CONNECTED));
    let filter = opaque(&FILTER);
    process(session, rx, filter);

    if session
        .subscribe(now(), &[(filter, QoS::AtLeastOnce)])
        .is_err()
    {
        sink(2);
    }
    let state = opaque(&STATE_TOPIC);
    match session.publish(
        now(),
        state,
        opaque(&STATE_PAYLOAD),
        QoS::AtLeastOnce,
        false,
    ) {
        Ok(id) => sink(u32::from(id.unwrap_or(0))),
        Err(_) => sink(3),
    }
    let telemetry = opaque(&TELEMETRY_TOPIC);
    if session
        .publish(
            now(),
            telemetry,
            opaque(&TELEMETRY_PAYLOAD),
            QoS::AtMostOnce,
            false,
        )
        .is_err()
    {
        sink(4);
    }
    flush(session);
    advance(20);
    receive(rx, opaque(&RX_ONLINE));
    process(session, rx, filter);

    // Keepalive: nothing sent or received for 60 s, so the session queues PINGREQ.
    advance(61_000);
    if let Some(at) = session.next_timeout() {
        if at <= now() && session.handle_timeout(now()).is_err() {
            session.connection_lost();
        }
    }
    flush(session);

    loop {
        cortex_m::asm::wfi();
    }
}
