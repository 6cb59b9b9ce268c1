//! The device image: the core's whole `device::Device` as the firmware runs it on Alibaba Cloud
//! IoT: the connection driver (`Driver` over a `Transport`, reconnect backoff), the Alibaba
//! identity with the password signed on the device (HMAC-SHA256), Alink JSON in (property set,
//! service call, property post reply, NTP response) and out (replies, property posts, NTP
//! request), and switch control (two switches driving outputs).
//!
//! Buffer sizes and switch count are the firmware's Kconfig defaults (RX 2048, TX 1024, store
//! 2048, 4 in flight, 2 switches). The profile and the sign method are fixed at build time, as in
//! the firmware (Kconfig); every other configuration value, the received bytes and the clock are
//! read with volatile loads, so nothing else is constant-folded.
#![no_std]
#![no_main]

use core::cell::Cell;
use core::mem::MaybeUninit;
use cortex_m_rt::entry;
use footprint_probe::{advance, now, opaque, sink};
use mqtts_core::config::DeviceConfig;
use mqtts_core::device::{Device, DeviceBuffers, DeviceEvent, DeviceSettings, Identity};
use mqtts_core::switch::{OutputError, SwitchBank, SwitchOutputs};
use mqtts_core::transport::{ConnectProgress, Transport, TransportError};
use panic_halt as _;

const SWITCHES: usize = 2;
type ProbeDevice = Device<'static, MemTransport, Outputs, SWITCHES, 2048, 1024, 2048, 4>;
type ProbeBuffers = DeviceBuffers<2048, 1024, 2048, 4>;

/// The configuration; `profile` and `aliyun_sign_method` are replaced by build-time constants
/// after the volatile load (see the module docs).
static CONFIG: DeviceConfig<'static> = DeviceConfig {
    profile: Some("aliyun"),
    broker_host: Some("a1B2c3D4e5F.iot-as-mqtt.cn-shanghai.aliyuncs.com"),
    aliyun_product_key: Some("a1B2c3D4e5F"),
    aliyun_device_name: Some("probe-0001"),
    aliyun_device_secret: Some("0123456789abcdef0123456789abcdef"),
    ..DeviceConfig::new()
};
static TIMESTAMP: &str = "1700000000000";
static SWITCH_NAMES: [&str; SWITCHES] = ["Relay1", "LED"];
static RANDOM: u32 = 0x9e37_79b9;

/// CONNACK (accepted, no session).
static RX_CONNECTED: &[u8] = b"\x20\x02\x00\x00";
/// SUBACK for the four Alink subscriptions (id 1: QoS 1, 1, 0, 0), PUBACK of the first property
/// post (id 2), then a property set (QoS 1, id 7) and a `Toggle` service call (QoS 1, id 8).
static RX_COMMANDS: &[u8] = b"\x90\x06\x00\x01\x01\x01\x00\x00\
    \x40\x02\x00\x02\
    \x32\x91\x01\x00\x36/sys/a1B2c3D4e5F/probe-0001/thing/service/property/set\x00\x07\
    {\"method\":\"thing.service.property.set\",\"id\":\"123\",\"params\":{\"LED\":1},\"version\":\"1.0.0\"}\
    \x32\x8b\x01\x00\x30/sys/a1B2c3D4e5F/probe-0001/thing/service/Toggle\x00\x08\
    {\"id\":\"200\",\"version\":\"1.0\",\"params\":{\"name\":\"Relay1\"},\"method\":\"thing.service.Toggle\"}";
/// PUBACKs of the two replies and the state report (ids 3 to 5), the property post reply and
/// the NTP response (both QoS 0).
static RX_REPLIES: &[u8] = b"\x40\x02\x00\x03\x40\x02\x00\x04\x40\x02\x00\x05\
    \x30\xa5\x01\x00\x3b/sys/a1B2c3D4e5F/probe-0001/thing/event/property/post_reply\
    {\"code\":200,\"data\":{},\"id\":\"1\",\"message\":\"success\",\"method\":\"thing.event.property.post\",\"version\":\"1.0\"}\
    \x30\x83\x01\x00\x28/ext/ntp/a1B2c3D4e5F/probe-0001/response\
    {\"deviceSendTime\":\"20\",\"serverRecvTime\":\"1700000000010\",\"serverSendTime\":\"1700000000012\"}";

/// An in-memory socket: connects at once, sends into the sink, receives the bytes `deliver`
/// made available. (`Device` hands out only `&T`, hence the `Cell`.)
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

/// The relays and LEDs: each change goes to the sink (a GPIO write on the board).
struct Outputs;

impl SwitchOutputs for Outputs {
    fn set(&mut self, index: usize, on: bool) -> Result<(), OutputError> {
        sink((index as u32) << 1 | u32::from(on));
        Ok(())
    }
}

/// Polls the device until it has nothing more to report.
fn run(device: &mut ProbeDevice) {
    while let Some(event) = device.poll(now(), opaque(&RANDOM)) {
        sink(match event {
            DeviceEvent::Offline { cause, retry_in_ms } => {
                cause.as_str().len() as u32 ^ retry_in_ms
            }
            DeviceEvent::Command { changed, error } => {
                u32::from(changed) | u32::from(error.is_some()) << 1
            }
            DeviceEvent::ReportAnswered { code } => code,
            DeviceEvent::Delivered { packet_id } => u32::from(packet_id),
            DeviceEvent::TimeSynced { utc_ms } => utc_ms as u32,
            _ => 0x5a,
        });
    }
}

fn halt(code: u32) -> ! {
    sink(code);
    loop {
        cortex_m::asm::wfi();
    }
}

#[entry]
fn main() -> ! {
    static mut IDENTITY: MaybeUninit<Identity<'static>> = MaybeUninit::uninit();
    static mut DEVICE: MaybeUninit<ProbeDevice> = MaybeUninit::uninit();
    static mut BUFFERS: ProbeBuffers = ProbeBuffers::new();

    let config = DeviceConfig {
        profile: Some("aliyun"),
        aliyun_sign_method: "hmacsha256",
        ..opaque(&CONFIG)
    };
    let identity: &'static Identity<'static> =
        match Identity::from_config(&config, Some(opaque(&TIMESTAMP))) {
            Ok(identity) => IDENTITY.write(identity),
            Err(_) => halt(0xbad),
        };
    let Ok(switches) = SwitchBank::new(opaque(&SWITCH_NAMES)) else {
        halt(0xbad2);
    };
    let transport = MemTransport {
        input: Cell::new(&[]),
    };
    let settings = DeviceSettings::from_config(&config);
    let device = DEVICE.write(Device::new(
        BUFFERS, identity, transport, Outputs, switches, settings,
    ));

    // Connect; the CONNACK arrives; the device subscribes, asks for the time and reports.
    run(device);
    advance(20);
    device.driver().transport().deliver(opaque(&RX_CONNECTED));
    run(device);

    // Commands: switches change, replies and state reports go out.
    advance(20);
    device.driver().transport().deliver(opaque(&RX_COMMANDS));
    run(device);

    // Acknowledgements, the property post reply and the time.
    advance(20);
    device.driver().transport().deliver(opaque(&RX_REPLIES));
    run(device);

    // 61 s later: PINGREQ and the periodic report.
    advance(61_000);
    run(device);

    halt(0);
}
