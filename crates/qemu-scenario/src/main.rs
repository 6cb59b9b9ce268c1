//! The MQTT core on a Cortex-M4F, end to end: a scripted broker feeds real MQTT bytes to the
//! session through the receive ring and checks every byte the session sends back.
//!
//! Scenario: connect, subscribe, QoS 1 and QoS 2 in both directions (duplicate QoS 2 delivery
//! suppressed), a packet wrapped around the end of the receive ring, keepalive (PINGREQ, then
//! death when no answer comes), reconnect with the unacknowledged QoS 1 PUBLISH resent with DUP
//! and the same id and the pending PUBREL resent. Each check is printed over semihosting; the
//! exit status is 0 only when all passed. The stack is painted before each session call and
//! the deepest use is reported.
//!
//! Then the real `Device` (see `device.rs`), for both platform profiles, at the firmware's
//! buffer sizes.
#![no_std]
#![no_main]

use core::fmt::Debug;
use core::sync::atomic::{AtomicUsize, Ordering};
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use heapless::{String, Vec};
use mqtts_core::codec::{topic, Connect, QoS};
use mqtts_core::ring::RingBuffer;
use mqtts_core::session::{Event, Session, SessionConfig, SessionError};

mod device;

type DeviceSession = Session<256, 512, 4, 4>;
/// Small on purpose, so a packet can be made to wrap around its end.
const RX: usize = 64;

/// An event, copied out of the receive ring.
#[derive(Debug, PartialEq, Eq)]
enum Ev {
    Connected(bool),
    Message {
        topic: String<32>,
        payload: Vec<u8, 32>,
        qos: QoS,
        dup: bool,
    },
    Published(u16),
    Subscribed(u16, Vec<u8, 4>),
    Other,
}

fn message(topic: &str, payload: &[u8], qos: QoS, dup: bool) -> Ev {
    Ev::Message {
        topic: String::try_from(topic).unwrap_or_default(),
        payload: Vec::from_slice(payload).unwrap_or_default(),
        qos,
        dup,
    }
}

/// The device side: session, receive ring and clock. The test plays the broker.
struct Device {
    session: DeviceSession,
    rx: RingBuffer<RX>,
    now: u64,
    /// Events of the last poll.
    seen: Vec<Ev, 8>,
}

/// What a step of the session returned, copied so the stack frame can end before checking.
type Events = Result<Vec<Ev, 8>, SessionError>;

/// Reads events until the session needs more bytes, copying each into `d.seen` (outside the
/// stack, so the measured stack is the session's, not this harness's).
#[inline(never)]
fn poll_events(d: &mut Device) -> Result<(), SessionError> {
    d.seen.clear();
    while let Some(event) = d.session.poll_event(d.now, &mut d.rx)? {
        let ev = match event {
            Event::Connected { session_present } => Ev::Connected(session_present),
            Event::Message(p) => message(p.topic, p.payload, p.qos, p.dup),
            Event::Published { packet_id } => Ev::Published(packet_id),
            Event::Subscribed(ack) => Ev::Subscribed(
                ack.packet_id,
                Vec::from_slice(ack.return_codes).unwrap_or_default(),
            ),
            _ => Ev::Other,
        };
        let _ = d.seen.push(ev);
    }
    Ok(())
}

fn poll_all(d: &mut Device) -> Events {
    measured(d, poll_events)?;
    Ok(core::mem::take(&mut d.seen))
}

/// The broker takes everything the device wants to send.
fn take_sent(d: &mut Device) -> Vec<u8, 256> {
    let out = Vec::from_slice(d.session.transmit()).unwrap_or_default();
    d.session.transmitted(out.len());
    out
}

// ---- stack high-water mark ----

extern "C" {
    static _stack_end: u32;
}
const PAINT: u32 = 0xA5C3_5A3C;
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Runs `f` (never inlined, so its whole frame and the session's lie below the current stack
/// pointer) after painting the free stack, and records how deep the stack went.
#[inline(always)]
fn measured<A, R>(d: &mut A, f: fn(&mut A) -> R) -> R {
    measured_into(&PEAK, d, f)
}

/// [`measured`], recording into `peak`.
#[inline(always)]
fn measured_into<A, R>(peak: &AtomicUsize, d: &mut A, f: fn(&mut A) -> R) -> R {
    let sp = cortex_m::register::msp::read() as usize;
    // `_stack_end` is the linker's lowest stack address; only its address is taken.
    let bottom = core::ptr::addr_of!(_stack_end) as usize;
    let top = sp - 64;
    let mut p = bottom;
    while p < top {
        // SAFETY: [bottom, sp - 64) is free stack below the live frames (no interrupts run in
        // this image), word aligned, and nothing else references it.
        unsafe { core::ptr::write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
    let r = f(d);
    let mut low = bottom;
    // SAFETY: same region as above; reading it back only.
    while low < top && unsafe { core::ptr::read_volatile(low as *const u32) } == PAINT {
        low += 4;
    }
    let used = sp - low;
    peak.fetch_max(used, Ordering::Relaxed);
    r
}

// ---- checks ----

pub(crate) struct Checks {
    passed: u32,
    failed: u32,
}

impl Checks {
    pub(crate) fn eq<T: PartialEq + Debug>(&mut self, name: &str, got: T, want: T) {
        if got == want {
            self.passed += 1;
            hprintln!("ok   {}", name);
        } else {
            self.failed += 1;
            hprintln!(
                "FAIL {}\n     got  {:02x?}\n     want {:02x?}",
                name,
                got,
                want
            );
        }
    }
}

fn events(list: &[Ev]) -> Events {
    let mut v = Vec::new();
    for e in list {
        let _ = v.push(match e {
            Ev::Connected(s) => Ev::Connected(*s),
            Ev::Message {
                topic,
                payload,
                qos,
                dup,
            } => message(topic, payload, *qos, *dup),
            Ev::Published(id) => Ev::Published(*id),
            Ev::Subscribed(id, codes) => Ev::Subscribed(*id, codes.clone()),
            Ev::Other => Ev::Other,
        });
    }
    Ok(v)
}

fn bytes(b: &[u8]) -> Vec<u8, 256> {
    Vec::from_slice(b).unwrap_or_default()
}

#[inline(never)]
fn do_connect(d: &mut Device) -> bool {
    let connect = Connect {
        client_id: "qemu-dev",
        keep_alive: 10,
        clean_session: false,
        username: Some("u"),
        password: Some(b"p"),
        will: None,
    };
    d.session.connect(d.now, &connect).is_ok()
}

#[inline(never)]
fn do_subscribe(d: &mut Device) -> Option<u16> {
    d.session
        .subscribe(d.now, &[("cmd/#", QoS::ExactlyOnce)])
        .ok()
}

#[inline(never)]
fn do_publish_qos1(d: &mut Device) -> Option<u16> {
    d.session
        .publish(d.now, "up/a", b"1", QoS::AtLeastOnce, false)
        .ok()
        .flatten()
}

#[inline(never)]
fn do_publish_qos2(d: &mut Device) -> Option<u16> {
    d.session
        .publish(d.now, "up/b", b"2", QoS::ExactlyOnce, false)
        .ok()
        .flatten()
}

#[inline(never)]
fn do_publish_unacked(d: &mut Device) -> Option<u16> {
    d.session
        .publish(d.now, "up/c", b"3", QoS::AtLeastOnce, false)
        .ok()
        .flatten()
}

#[inline(never)]
fn do_timeout(d: &mut Device) -> Result<(), SessionError> {
    d.session.handle_timeout(d.now)
}

fn deliver(d: &mut Device, b: &[u8]) -> usize {
    d.rx.push(b)
}

const CONNECT_BYTES: &[u8] = &[
    0x10, 0x1a, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0xc0, 0x00, 0x0a, 0x00, 0x08, b'q', b'e',
    b'm', b'u', b'-', b'd', b'e', b'v', 0x00, 0x01, b'u', 0x00, 0x01, b'p',
];

#[entry]
fn main() -> ! {
    static mut DEVICE: Device = Device {
        session: Session::new(SessionConfig {
            connack_timeout_ms: 5_000,
            ping_timeout_ms: 3_000,
            qos1_retry_ms: 0,
        }),
        rx: RingBuffer::new(),
        now: 0,
        seen: Vec::new(),
    };
    // The real Device's buffers, in .bss as the firmware keeps them.
    static mut BUFFERS: device::FirmwareBuffers = device::FirmwareBuffers::new();
    let d: &mut Device = DEVICE;
    let mut c = Checks {
        passed: 0,
        failed: 0,
    };
    hprintln!("mqtts-core scenario on Cortex-M4F (QEMU netduinoplus2)");

    // Connect.
    c.eq("connect accepted", measured(d, do_connect), true);
    c.eq("CONNECT bytes", take_sent(d), bytes(CONNECT_BYTES));
    deliver(d, &[0x20, 0x02, 0x00, 0x00]);
    c.eq(
        "CONNACK -> Connected",
        poll_all(d),
        events(&[Ev::Connected(false)]),
    );

    // Subscribe.
    d.now = 100;
    c.eq("subscribe id", measured(d, do_subscribe), Some(1));
    c.eq(
        "SUBSCRIBE bytes",
        take_sent(d),
        bytes(&[
            0x82, 0x0a, 0x00, 0x01, 0x00, 0x05, b'c', b'm', b'd', b'/', b'#', 0x02,
        ]),
    );
    deliver(d, &[0x90, 0x03, 0x00, 0x01, 0x02]);
    c.eq(
        "SUBACK -> Subscribed",
        poll_all(d),
        events(&[Ev::Subscribed(1, Vec::from_slice(&[2]).unwrap_or_default())]),
    );

    // QoS 1 out.
    c.eq("QoS 1 publish id", measured(d, do_publish_qos1), Some(2));
    c.eq(
        "QoS 1 PUBLISH bytes",
        take_sent(d),
        bytes(&[
            0x32, 0x09, 0x00, 0x04, b'u', b'p', b'/', b'a', 0x00, 0x02, b'1',
        ]),
    );
    deliver(d, &[0x40, 0x02, 0x00, 0x02]);
    c.eq(
        "PUBACK -> Published",
        poll_all(d),
        events(&[Ev::Published(2)]),
    );

    // QoS 2 out.
    c.eq("QoS 2 publish id", measured(d, do_publish_qos2), Some(3));
    c.eq(
        "QoS 2 PUBLISH bytes",
        take_sent(d),
        bytes(&[
            0x34, 0x09, 0x00, 0x04, b'u', b'p', b'/', b'b', 0x00, 0x03, b'2',
        ]),
    );
    deliver(d, &[0x50, 0x02, 0x00, 0x03]);
    c.eq("PUBREC -> no event", poll_all(d), events(&[]));
    c.eq(
        "PUBREL sent",
        take_sent(d),
        bytes(&[0x62, 0x02, 0x00, 0x03]),
    );
    deliver(d, &[0x70, 0x02, 0x00, 0x03]);
    c.eq(
        "PUBCOMP -> Published",
        poll_all(d),
        events(&[Ev::Published(3)]),
    );

    // QoS 1 in.
    deliver(
        d,
        &[
            0x32, 0x0b, 0x00, 0x05, b'c', b'm', b'd', b'/', b'x', 0x00, 0x0a, b'o', b'n',
        ],
    );
    c.eq(
        "QoS 1 PUBLISH in -> Message",
        poll_all(d),
        events(&[message("cmd/x", b"on", QoS::AtLeastOnce, false)]),
    );
    c.eq(
        "PUBACK sent",
        take_sent(d),
        bytes(&[0x40, 0x02, 0x00, 0x0a]),
    );
    c.eq(
        "routed by filter cmd/#",
        topic::matches("cmd/#", "cmd/x") && !topic::matches("cmd/+", "up/x"),
        true,
    );

    // QoS 2 in, with a duplicate.
    let qos2_in = [
        0x34, 0x0c, 0x00, 0x05, b'c', b'm', b'd', b'/', b'y', 0x00, 0x0b, b'o', b'f', b'f',
    ];
    deliver(d, &qos2_in);
    c.eq(
        "QoS 2 PUBLISH in -> Message",
        poll_all(d),
        events(&[message("cmd/y", b"off", QoS::ExactlyOnce, false)]),
    );
    c.eq(
        "PUBREC sent",
        take_sent(d),
        bytes(&[0x50, 0x02, 0x00, 0x0b]),
    );
    let mut dup = qos2_in;
    dup[0] |= 0x08;
    deliver(d, &dup);
    c.eq(
        "duplicate QoS 2 PUBLISH -> not delivered again",
        poll_all(d),
        events(&[]),
    );
    c.eq(
        "PUBREC sent again",
        take_sent(d),
        bytes(&[0x50, 0x02, 0x00, 0x0b]),
    );
    deliver(d, &[0x62, 0x02, 0x00, 0x0b]);
    c.eq("PUBREL in -> no event", poll_all(d), events(&[]));
    c.eq(
        "PUBCOMP sent",
        take_sent(d),
        bytes(&[0x70, 0x02, 0x00, 0x0b]),
    );

    // A packet wrapped around the end of the receive ring: 20 PINGRESPs (40 bytes) and the
    // first 12 bytes of a 28-byte PUBLISH, then the other 16 bytes, which land at 52..64 and
    // 0..4 of the 64-byte ring.
    let wrapped: [u8; 28] = [
        0x30, 0x1a, 0x00, 0x08, b'c', b'm', b'd', b'/', b'w', b'r', b'a', b'p', b'0', b'1', b'2',
        b'3', b'4', b'5', b'6', b'7', b'8', b'9', b'a', b'b', b'c', b'd', b'e', b'f',
    ];
    let mut first = [0u8; 52];
    for pair in first[..40].chunks_mut(2) {
        pair.copy_from_slice(&[0xd0, 0x00]);
    }
    first[40..].copy_from_slice(&wrapped[..12]);
    deliver(d, &first);
    c.eq(
        "PINGRESPs consumed, PUBLISH incomplete",
        poll_all(d),
        events(&[]),
    );
    deliver(d, &wrapped[12..]);
    let (a, b) = d.rx.readable();
    c.eq("PUBLISH wraps in the ring", (a.len(), b.len()), (24, 4));
    c.eq(
        "wrapped PUBLISH -> Message intact",
        poll_all(d),
        events(&[message(
            "cmd/wrap",
            b"0123456789abcdef",
            QoS::AtMostOnce,
            false,
        )]),
    );

    // Unacknowledged messages when the link dies: a QoS 1 PUBLISH (id 4) and a QoS 2 one
    // (id 5) whose PUBREL is out but not completed.
    d.now = 1_000;
    c.eq("unacked QoS 1 id", measured(d, do_publish_unacked), Some(4));
    c.eq(
        "unacked QoS 1 PUBLISH bytes",
        take_sent(d),
        bytes(&[
            0x32, 0x09, 0x00, 0x04, b'u', b'p', b'/', b'c', 0x00, 0x04, b'3',
        ]),
    );
    c.eq("QoS 2 id", measured(d, do_publish_qos2), Some(5));
    let _ = take_sent(d);
    deliver(d, &[0x50, 0x02, 0x00, 0x05]);
    c.eq("PUBREC 5 -> no event", poll_all(d), events(&[]));
    c.eq(
        "PUBREL 5 sent",
        take_sent(d),
        bytes(&[0x62, 0x02, 0x00, 0x05]),
    );

    // Keepalive: 10 s after the last exchange PINGREQ goes out; 3 s without an answer kill the
    // link.
    c.eq(
        "next timeout is the keepalive",
        d.session.next_timeout(),
        Some(11_000),
    );
    d.now = 11_000;
    c.eq("keepalive due -> Ok", measured(d, do_timeout), Ok(()));
    c.eq("PINGREQ sent", take_sent(d), bytes(&[0xc0, 0x00]));
    d.now = 14_000;
    c.eq(
        "no PINGRESP -> KeepaliveTimeout",
        measured(d, do_timeout),
        Err(SessionError::KeepaliveTimeout),
    );

    // Reconnect: the broker kept the session; the QoS 1 PUBLISH is resent with DUP and the
    // same id, then the PUBREL of id 5.
    d.session.connection_lost();
    d.rx.clear();
    d.now = 20_000;
    c.eq("reconnect accepted", measured(d, do_connect), true);
    c.eq("CONNECT bytes again", take_sent(d), bytes(CONNECT_BYTES));
    deliver(d, &[0x20, 0x02, 0x01, 0x00]);
    c.eq(
        "CONNACK (session present) -> Connected",
        poll_all(d),
        events(&[Ev::Connected(true)]),
    );
    c.eq(
        "resent: PUBLISH DUP id 4, then PUBREL 5",
        take_sent(d),
        bytes(&[
            0x3a, 0x09, 0x00, 0x04, b'u', b'p', b'/', b'c', 0x00, 0x04, b'3', 0x62, 0x02, 0x00,
            0x05,
        ]),
    );
    deliver(d, &[0x40, 0x02, 0x00, 0x04, 0x70, 0x02, 0x00, 0x05]);
    c.eq(
        "PUBACK 4, PUBCOMP 5 -> Published",
        poll_all(d),
        events(&[Ev::Published(4), Ev::Published(5)]),
    );
    c.eq("nothing left in flight", d.session.in_flight(), 0);

    hprintln!(
        "peak stack of a session call (painted high-water mark): {} bytes",
        PEAK.load(Ordering::Relaxed)
    );
    hprintln!(
        "size_of: Session<256, 512, 4, 4> = {} bytes, Session<0, 0, 4, 4> = {} bytes, RingBuffer<{}> = {} bytes",
        core::mem::size_of::<DeviceSession>(),
        core::mem::size_of::<Session<0, 0, 4, 4>>(),
        RX,
        core::mem::size_of::<RingBuffer<RX>>()
    );
    device::run(&mut c, BUFFERS);
    hprintln!("{} passed, {} failed", c.passed, c.failed);
    if c.failed == 0 {
        debug::exit(debug::EXIT_SUCCESS);
    } else {
        debug::exit(debug::EXIT_FAILURE);
    }
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hprintln!("PANIC {}", info);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
