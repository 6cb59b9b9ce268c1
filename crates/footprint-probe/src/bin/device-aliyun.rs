//! The `device-aliyun` image: the core's whole `device::Device` as the firmware runs it on
//! Alibaba Cloud IoT, built with only the `aliyun` and `sign-hmacsha256` features of mqtts-core:
//! the connection driver (`Driver` over a `Transport`, reconnect backoff), the Alibaba identity
//! with the password signed on the device (HMAC-SHA256), Alink JSON in (property set, service
//! call, property post reply, NTP response) and out (replies, property posts, NTP request), and
//! switch control (two switches driving outputs).
//!
//! Buffer sizes and switch count are the firmware's Kconfig defaults (RX 2048, TX 1024, store
//! 2048, 4 in flight, 2 switches). The profile and the sign method are fixed at build time, as in
//! the firmware (Kconfig); every other configuration value, the received bytes and the clock are
//! read with volatile loads, so nothing else is constant-folded.
#![no_std]
#![no_main]

use core::mem::MaybeUninit;
use cortex_m_rt::entry;
use footprint_probe::device::{
    drive, halt, MemTransport, Outputs, ProbeBuffers, ProbeDevice, SWITCH_NAMES,
};
use footprint_probe::opaque;
use mqtts_core::config::DeviceConfig;
use mqtts_core::device::{Device, DeviceSettings, Identity};
use mqtts_core::switch::SwitchBank;
use panic_halt as _;

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
    let settings = DeviceSettings::from_config(&config);
    let device = DEVICE.write(Device::new(
        BUFFERS,
        identity,
        MemTransport::new(),
        Outputs,
        switches,
        settings,
    ));
    drive(device, &[RX_COMMANDS, RX_REPLIES]);
    halt(0);
}
