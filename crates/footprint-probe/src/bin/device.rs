//! The device image, as far as the core exists today: the `session` workload run through the
//! connection driver (`Driver` over a `Transport`, reconnect `Backoff`) with Alibaba Cloud IoT
//! credentials signed on the device (HMAC-SHA256, `aliyun::sign`).
//!
//! Not included yet, because those modules have not landed: Alink JSON (property reports,
//! service calls) and switch control (relays/LEDs). The report says so next to this image's row.
#![no_std]
#![no_main]

use core::cell::Cell;
use core::mem::MaybeUninit;
use cortex_m_rt::entry;
use footprint_probe::{advance, now, opaque, sink, RX};
use mqtts_core::aliyun::sign::{credentials, DeviceTriple, MqttCredentials, SignMethod};
use mqtts_core::codec::{topic, Connect, QoS};
use mqtts_core::driver::{Driver, DriverConfig, DriverEvent};
use mqtts_core::session::Event;
use mqtts_core::transport::{ConnectProgress, Transport, TransportError};
use panic_halt as _;

type Credentials = MqttCredentials<128, 64>;
type ProbeDriver = Driver<'static, MemTransport, RX, 256, 512, 4, 4>;

static CONFIG: DriverConfig = DriverConfig {
    connect_timeout_ms: 20_000,
    stable_after_ms: 60_000,
    backoff: mqtts_core::backoff::BackoffConfig {
        min_ms: 1_000,
        max_ms: 60_000,
        auth_min_ms: 30_000,
        auth_max_ms: 600_000,
    },
    session: mqtts_core::session::SessionConfig {
        connack_timeout_ms: 10_000,
        ping_timeout_ms: 10_000,
        qos1_retry_ms: 0,
    },
};
static PRODUCT_KEY: &str = "a1B2c3D4e5F";
static DEVICE_NAME: &str = "probe-0001";
static DEVICE_SECRET: &str = "0123456789abcdef0123456789abcdef";
static TIMESTAMP: &str = "1700000000000";
static FILTER: &str = "/a1B2c3D4e5F/probe-0001/user/+";
static FILTERS: [(&str, QoS); 1] = [("/a1B2c3D4e5F/probe-0001/user/+", QoS::AtLeastOnce)];
static STATE_TOPIC: &str = "/a1B2c3D4e5F/probe-0001/user/state";
static STATE_PAYLOAD: &[u8] = b"{\"on\":1}";
static TELEMETRY_TOPIC: &str = "/a1B2c3D4e5F/probe-0001/user/telemetry";
static TELEMETRY_PAYLOAD: &[u8] = b"{\"t\":21}";
static RANDOM: u32 = 0x9e37_79b9;

/// CONNACK (accepted, no session).
static RX_CONNECTED: &[u8] = &[0x20, 0x02, 0x00, 0x00];
/// SUBACK (id 1, QoS 1), PUBACK (id 2), PUBLISH QoS 1 id 7 on `.../user/relay` with `{"on":1}`.
static RX_ONLINE: &[u8] = &[
    0x90, 0x03, 0x00, 0x01, 0x01, // SUBACK
    0x40, 0x02, 0x00, 0x02, // PUBACK
    0x32, 0x2b, 0x00, 0x1f, b'/', b'a', b'1', b'B', b'2', b'c', b'3', b'D', b'4', b'e', b'5', b'F',
    b'/', b'p', b'r', b'o', b'b', b'e', b'-', b'0', b'0', b'0', b'1', b'/', b'u', b's', b'e', b'r',
    b'/', b'r', b'e', b'l', b'a', b'y', 0x00, 0x07, b'{', b'"', b'o', b'n', b'"', b':', b'1', b'}',
];

/// An in-memory socket: connects at once, sends into the sink, receives the bytes `deliver`
/// made available.
/// (`Driver` hands out only `&T`, hence the `Cell`.)
struct MemTransport {
    input: Cell<&'static [u8]>,
}

impl MemTransport {
    fn deliver(&self, bytes: &'static [u8]) {
        self.input.set(bytes);
    }
}

impl Transport for MemTransport {
    fn start_connect(&mut self) -> Result<(), TransportError> {
        Ok(())
    }
    fn poll_connect(&mut self) -> Result<ConnectProgress, TransportError> {
        Ok(ConnectProgress::Established)
    }
    fn send(&mut self, buf: &[u8]) -> Result<usize, TransportError> {
        sink(
            buf.iter()
                .fold(0u32, |a, &b| a.rotate_left(5) ^ u32::from(b)),
        );
        Ok(buf.len())
    }
    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, TransportError> {
        let input = self.input.get();
        let n = buf.len().min(input.len());
        if n == 0 {
            return Err(TransportError::WouldBlock);
        }
        let (now, later) = input.split_at(n);
        if let Some(dst) = buf.get_mut(..n) {
            dst.copy_from_slice(now);
        }
        self.input.set(later);
        Ok(n)
    }
    fn close(&mut self) {
        sink(0xc105e);
    }
}

/// Polls the driver until it has nothing more to report; messages are routed by topic filter.
fn run(driver: &mut ProbeDriver, filter: &str) {
    while let Some(event) = driver.poll(now(), opaque(&RANDOM)) {
        match event {
            DriverEvent::Session(Event::Message(publish)) => {
                if topic::matches(filter, publish.topic) {
                    sink(u32::from(publish.payload.get(6).copied().unwrap_or(0)));
                }
            }
            DriverEvent::Offline { cause, retry_in_ms } => {
                sink(cause.as_str().len() as u32 ^ retry_in_ms);
            }
            DriverEvent::Online { session_present } => sink(u32::from(session_present)),
            DriverEvent::Session(Event::Published { packet_id }) => sink(u32::from(packet_id)),
            _ => sink(0x5a),
        }
    }
}

#[entry]
fn main() -> ! {
    static mut CREDENTIALS: MaybeUninit<Credentials> = MaybeUninit::uninit();
    static mut DRIVER: MaybeUninit<ProbeDriver> = MaybeUninit::uninit();

    let triple = DeviceTriple {
        product_key: opaque(&PRODUCT_KEY),
        device_name: opaque(&DEVICE_NAME),
        device_secret: opaque(&DEVICE_SECRET),
    };
    let client_id = opaque(&DEVICE_NAME);
    let signed = credentials(
        &triple,
        client_id,
        SignMethod::HmacSha256,
        Some(opaque(&TIMESTAMP)),
        2,
    );
    let creds: &'static Credentials = match signed {
        Ok(c) => CREDENTIALS.write(c),
        Err(_) => {
            sink(0xbad);
            loop {
                cortex_m::asm::wfi();
            }
        }
    };
    let connect = Connect {
        client_id: creds.client_id.as_str(),
        keep_alive: 60,
        clean_session: true,
        username: Some(creds.username.as_str()),
        password: Some(creds.password.as_bytes()),
        will: None,
    };
    let filters: &'static [(&'static str, QoS)] = opaque(&&FILTERS[..]);
    let transport = MemTransport {
        input: Cell::new(&[]),
    };
    let driver = DRIVER.write(Driver::new(transport, opaque(&CONFIG), connect, filters));
    let filter = opaque(&FILTER);

    // Connect; the CONNACK arrives; the driver subscribes.
    run(driver, filter);
    advance(20);
    driver.transport().deliver(opaque(&RX_CONNECTED));
    run(driver, filter);

    let state = opaque(&STATE_TOPIC);
    match driver.publish(
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
    if driver
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
    advance(20);
    driver.transport().deliver(opaque(&RX_ONLINE));
    run(driver, filter);

    // Keepalive: 60 s of silence, so the session queues PINGREQ and the driver sends it.
    advance(61_000);
    run(driver, filter);

    loop {
        cortex_m::asm::wfi();
    }
}
