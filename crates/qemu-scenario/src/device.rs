//! The whole `Device` on the Cortex-M4F: Alibaba Alink and self-hosted, each through connect,
//! subscribe, a command (switch changed, reply and state report), a periodic report, an
//! unacknowledged QoS 1 publish, keepalive death (no PINGRESP), reconnect with that publish
//! resent with DUP and the same id, and the state reported again. The broker side is a small
//! in-memory peer that answers CONNECT, SUBSCRIBE and QoS 1 PUBLISH. Every `Device::poll` runs
//! on painted stack: the deepest use is printed as `peak stack (device poll)`.

use core::cell::RefCell;
use core::sync::atomic::{AtomicUsize, Ordering};
use cortex_m_semihosting::hprintln;
use heapless::Vec;
use mqtts_core::codec::{decode_fixed_header, decode_server_packet, Packet, QoS};
use mqtts_core::config::DeviceConfig;
use mqtts_core::device::{Device, DeviceBuffers, DeviceEvent, DeviceSettings, Identity};
use mqtts_core::driver::FailureCause;
use mqtts_core::switch::{OutputError, SwitchBank, SwitchOutputs};
use mqtts_core::transport::{ConnectProgress, Transport, TransportError};

use crate::{measured_into, Checks};

/// The firmware's Kconfig defaults: RX 2048, TX 1024, store 2048, 4 in flight, 2 switches.
pub type FirmwareBuffers = DeviceBuffers<2048, 1024, 2048, 4>;
type QemuDevice<'i> = Device<'i, Wire<'i>, Outputs, 2, 2048, 1024, 2048, 4>;

static PEAK_DEVICE: AtomicUsize = AtomicUsize::new(0);
/// The larger of the two profiles' peaks.
static PEAK_ALL: AtomicUsize = AtomicUsize::new(0);

/// Both directions of the in-memory connection.
pub struct Link {
    /// Bytes the device sent, not yet read by the peer.
    to_broker: Vec<u8, 2048>,
    /// Bytes for the device.
    to_device: Vec<u8, 1024>,
    up: bool,
}

/// The device's end of [`Link`].
pub struct Wire<'l> {
    link: &'l RefCell<Link>,
}

impl Transport for Wire<'_> {
    fn start_connect(&mut self) -> Result<(), TransportError> {
        let mut l = self.link.borrow_mut();
        l.up = true;
        l.to_device.clear();
        l.to_broker.clear();
        Ok(())
    }
    fn poll_connect(&mut self) -> Result<ConnectProgress, TransportError> {
        Ok(ConnectProgress::Established)
    }
    fn send(&mut self, buf: &[u8]) -> Result<usize, TransportError> {
        let mut l = self.link.borrow_mut();
        let room = l.to_broker.capacity() - l.to_broker.len();
        let n = buf.len().min(room);
        if n == 0 {
            return Err(TransportError::WouldBlock);
        }
        let _ = l.to_broker.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, TransportError> {
        let mut l = self.link.borrow_mut();
        let n = buf.len().min(l.to_device.len());
        if n == 0 {
            return Err(TransportError::WouldBlock);
        }
        buf[..n].copy_from_slice(&l.to_device[..n]);
        let rest: Vec<u8, 1024> = Vec::from_slice(&l.to_device[n..]).unwrap_or_default();
        l.to_device = rest;
        Ok(n)
    }
    fn close(&mut self) {
        self.link.borrow_mut().up = false;
    }
}

/// Two outputs that only remember their state.
pub struct Outputs([bool; 2]);

impl SwitchOutputs for Outputs {
    fn set(&mut self, index: usize, on: bool) -> Result<(), OutputError> {
        match self.0.get_mut(index) {
            Some(slot) => {
                *slot = on;
                Ok(())
            }
            None => Err(OutputError::Io),
        }
    }
}

/// What the peer saw.
#[derive(Default)]
struct Seen {
    connects: u32,
    subscribes: u32,
    /// (packet id, DUP, topic ends with) of QoS 1 PUBLISHes.
    publishes: Vec<(u16, bool, bool), 32>,
    pings: u32,
}

struct Rig<'i> {
    device: QemuDevice<'i>,
    link: &'i RefCell<Link>,
    now: u64,
    events: Vec<DeviceEvent, 24>,
    /// The peer acknowledges QoS 1 PUBLISHes and answers PINGREQ.
    answer: bool,
    /// Reply topic suffix the checks look for.
    reply_suffix: &'static str,
    seen: Seen,
}

/// Polls the device until it has nothing to do (on painted stack: see `run`).
#[inline(never)]
fn poll_device(r: &mut Rig<'_>) {
    r.events.clear();
    while let Some(e) = r.device.poll(r.now, 0x2545_f491) {
        if r.events.push(e).is_err() {
            break;
        }
    }
}

impl Rig<'_> {
    fn step(&mut self) {
        measured_into(&PEAK_DEVICE, self, poll_device);
        self.peer();
    }

    /// Reads the device's packets and answers them.
    fn peer(&mut self) {
        let mut l = self.link.borrow_mut();
        let bytes: Vec<u8, 2048> = core::mem::take(&mut l.to_broker);
        let mut at = 0;
        while let Ok(Some(h)) = decode_fixed_header(&bytes[at..]) {
            let end = at + h.packet_len();
            if end > bytes.len() {
                break;
            }
            let body = &bytes[at + h.header_len..end];
            match h.packet_type() {
                1 => {
                    self.seen.connects += 1;
                    let _ = l.to_device.extend_from_slice(&[0x20, 2, 0, 0]);
                }
                8 => {
                    self.seen.subscribes += 1;
                    // One return code (QoS 1 granted) per filter: length, name, QoS.
                    let mut codes = 0u8;
                    let mut i = 2;
                    while i + 2 <= body.len() {
                        i += 2 + usize::from(u16::from_be_bytes([body[i], body[i + 1]])) + 1;
                        codes += 1;
                    }
                    let _ = l
                        .to_device
                        .extend_from_slice(&[0x90, 2 + codes, body[0], body[1]]);
                    for _ in 0..codes {
                        let _ = l.to_device.push(1);
                    }
                }
                12 => {
                    self.seen.pings += 1;
                    if self.answer {
                        let _ = l.to_device.extend_from_slice(&[0xd0, 0]);
                    }
                }
                _ => {
                    if let Ok(Some(Packet::Publish(p))) = decode_server_packet(&h, body) {
                        if let Some(id) = p.packet_id {
                            let reply = p.topic.ends_with(self.reply_suffix);
                            let _ = self.seen.publishes.push((id, p.dup, reply));
                            if self.answer {
                                let [hi, lo] = id.to_be_bytes();
                                let _ = l.to_device.extend_from_slice(&[0x40, 2, hi, lo]);
                            }
                        }
                    }
                }
            }
            at = end;
        }
    }

    fn deliver(&mut self, bytes: &[u8]) {
        let _ = self.link.borrow_mut().to_device.extend_from_slice(bytes);
    }

    fn saw(&self, want: DeviceEvent) -> bool {
        self.events.iter().any(|e| *e == want)
    }
}

/// A QoS 1 PUBLISH from the broker (packet id 0x77).
fn publish(topic: &str, payload: &str) -> Vec<u8, 512> {
    let mut v: Vec<u8, 512> = Vec::new();
    let remaining = 2 + topic.len() + 2 + payload.len();
    let _ = v.push(0x32);
    let _ = v.push((remaining as u8 & 0x7f) | 0x80);
    let _ = v.push((remaining >> 7) as u8);
    let _ = v.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    let _ = v.extend_from_slice(topic.as_bytes());
    let _ = v.extend_from_slice(&[0x00, 0x77]);
    let _ = v.extend_from_slice(payload.as_bytes());
    v
}

fn scenario(
    c: &mut Checks,
    name: &str,
    buffers: &mut FirmwareBuffers,
    config: &DeviceConfig<'_>,
    command: (&str, &str),
    reply_suffix: &'static str,
) {
    hprintln!("-- Device, {} profile", name);
    let Ok(identity) = Identity::from_config(config, Some("1700000000000")) else {
        c.eq("identity", false, true);
        return;
    };
    let Ok(switches) = SwitchBank::new(["Relay1", "LED"]) else {
        c.eq("switches", false, true);
        return;
    };
    let link = RefCell::new(Link {
        to_broker: Vec::new(),
        to_device: Vec::new(),
        up: false,
    });
    let settings = DeviceSettings::from_config(config);
    let device = Device::new(
        buffers,
        &identity,
        Wire { link: &link },
        Outputs([true, true]),
        switches,
        settings,
    );
    let mut r = Rig {
        device,
        link: &link,
        now: 1_000,
        events: Vec::new(),
        answer: true,
        reply_suffix,
        seen: Seen::default(),
    };
    c.eq(
        "outputs driven to the initial states",
        r.device.outputs().0,
        [false, false],
    );

    // Connect, subscribe, report.
    r.step();
    c.eq("connecting", r.saw(DeviceEvent::Connecting), true);
    r.step();
    r.step();
    r.step();
    c.eq("online", r.device.driver().is_online(), true);
    c.eq("CONNECT sent once", r.seen.connects, 1);
    c.eq("SUBSCRIBE sent", r.seen.subscribes, 1);

    // A command: switch on, reply and state report in one poll.
    r.now += 1_000;
    r.deliver(&publish(command.0, command.1));
    let before = r.seen.publishes.len();
    r.step();
    c.eq(
        "command changes a switch",
        r.saw(DeviceEvent::Command {
            changed: true,
            error: None,
        }),
        true,
    );
    c.eq("Relay1 output on", r.device.outputs().0[0], true);
    let replies = r.seen.publishes[before..].iter().filter(|p| p.2).count();
    c.eq("reply published", replies, 1);
    r.step();
    c.eq(
        "state reported after the command",
        r.seen.publishes.len() >= before + 2,
        true,
    );

    // The periodic report.
    r.now += u64::from(config.telemetry_period_s) * 1000 + 1;
    let before = r.seen.publishes.len();
    r.step();
    r.step();
    c.eq("periodic report", r.seen.publishes.len() > before, true);

    // An application publish the broker never acknowledges, then the link dies.
    r.answer = false;
    let id = r
        .device
        .publish(r.now, "app/qemu", b"kept", QoS::AtLeastOnce, false)
        .ok()
        .flatten();
    r.step();
    let dead_at = r.now;
    let mut offline = None;
    while offline.is_none() && r.now < dead_at + 1_000_000 {
        r.now += 1_000;
        r.step();
        offline = r.events.iter().find_map(|e| match e {
            DeviceEvent::Offline { cause, .. } => Some(*cause),
            _ => None,
        });
    }
    c.eq("PINGREQ sent", r.seen.pings > 0, true);
    c.eq(
        "keepalive death",
        offline,
        Some(FailureCause::KeepaliveTimeout),
    );

    // Reconnect: the unacknowledged publish goes out again with DUP and the same id.
    r.answer = true;
    let before = r.seen.publishes.len();
    let mut tries = 0;
    while r.device.driver().connections() < 2 && tries < 200 {
        r.now += 500;
        r.step();
        tries += 1;
    }
    for _ in 0..4 {
        r.step();
    }
    c.eq("reconnected", r.device.driver().connections(), 2);
    let resent = id.is_some_and(|id| r.seen.publishes[before..].iter().any(|p| p.0 == id && p.1));
    c.eq("unacked publish resent with DUP, same id", resent, true);
    c.eq(
        "nothing left in flight",
        r.device.driver().session().in_flight(),
        0,
    );
    let peak = PEAK_DEVICE.swap(0, Ordering::Relaxed);
    PEAK_ALL.fetch_max(peak, Ordering::Relaxed);
    hprintln!("peak stack (device poll, {}): {} bytes", name, peak);
}

/// Runs both profiles over `buffers` (a `static`, as in the firmware) and prints the stack
/// peak and the sizes.
pub fn run(c: &mut Checks, buffers: &mut FirmwareBuffers) {
    let aliyun = DeviceConfig {
        profile: Some("aliyun"),
        broker_host: Some("a1B2c3D4e5F.iot-as-mqtt.cn-shanghai.aliyuncs.com"),
        aliyun_product_key: Some("a1B2c3D4e5F"),
        aliyun_device_name: Some("qemu-0001"),
        aliyun_device_secret: Some("0123456789abcdef0123456789abcdef"),
        keepalive_s: 60,
        telemetry_period_s: 30,
        ..DeviceConfig::new()
    };
    scenario(
        c,
        "Alibaba Alink",
        buffers,
        &aliyun,
        (
            "/sys/a1B2c3D4e5F/qemu-0001/thing/service/property/set",
            r#"{"method":"thing.service.property.set","id":"123","params":{"Relay1":1},"version":"1.0.0"}"#,
        ),
        "property/set_reply",
    );
    let self_hosted = DeviceConfig {
        profile: Some("self-hosted"),
        broker_host: Some("broker.local"),
        device_id: Some("q1"),
        username: Some("dev"),
        password: Some("s3cret"),
        keepalive_s: 60,
        telemetry_period_s: 30,
        ..DeviceConfig::new()
    };
    scenario(
        c,
        "self-hosted",
        buffers,
        &self_hosted,
        (
            "devices/q1/set",
            r#"{"id":"1","switch":"Relay1","on":true}"#,
        ),
        "/reply",
    );
    hprintln!(
        "peak stack (device poll): {} bytes",
        PEAK_ALL.load(Ordering::Relaxed)
    );
    hprintln!(
        "size_of: DeviceBuffers<2048, 1024, 2048, 4> = {} bytes, Device<2 switches> = {} bytes",
        core::mem::size_of::<FirmwareBuffers>(),
        core::mem::size_of::<QemuDevice<'static>>()
    );
}
