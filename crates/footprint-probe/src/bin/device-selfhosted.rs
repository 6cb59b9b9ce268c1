//! The `device-selfhosted` image: the core's whole `device::Device` on a self-hosted broker,
//! built with only the `selfhosted` feature of mqtts-core: the connection driver and backoff,
//! the `devices/{id}/…` topics with the retained status and the `offline` will, command JSON in
//! (one switch, then several at once), replies and retained state reports out, and switch
//! control (two switches driving outputs).
//!
//! Buffers and switches as in `device-aliyun` (the firmware's Kconfig defaults). The profile is
//! fixed at build time, as in the firmware; every other configuration value, the received bytes
//! and the clock are read with volatile loads.
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

/// The configuration; `profile` is replaced by a build-time constant after the volatile load.
static CONFIG: DeviceConfig<'static> = DeviceConfig {
    profile: Some("self-hosted"),
    broker_host: Some("mqtt.example.net"),
    device_id: Some("probe-0001"),
    username: Some("probe-0001"),
    password: Some("0123456789abcdef"),
    ..DeviceConfig::new()
};

/// SUBACK of `devices/probe-0001/set` (id 1, QoS 1), PUBACKs of the `online` status (id 2) and
/// the first state report (id 3), then two commands (QoS 1, ids 7 and 8): one switch, then two
/// at once.
static RX_COMMANDS: &[u8] = b"\x90\x03\x00\x01\x01\x40\x02\x00\x02\x40\x02\x00\x03\
    \x32\x41\x00\x16devices/probe-0001/set\x00\x07{\"id\":\"42\",\"switch\":\"Relay1\",\"on\":true}\
    \x32\x47\x00\x16devices/probe-0001/set\x00\x08{\"id\":43,\"switches\":{\"Relay1\":false,\"LED\":1}}";
/// PUBACKs of the two replies and the state report (ids 4 to 6; id 7 matches nothing).
static RX_REPLIES: &[u8] = b"\x40\x02\x00\x04\x40\x02\x00\x05\x40\x02\x00\x06\x40\x02\x00\x07";

#[entry]
fn main() -> ! {
    static mut IDENTITY: MaybeUninit<Identity<'static>> = MaybeUninit::uninit();
    static mut DEVICE: MaybeUninit<ProbeDevice> = MaybeUninit::uninit();
    static mut BUFFERS: ProbeBuffers = ProbeBuffers::new();

    let config = DeviceConfig {
        profile: Some("self-hosted"),
        ..opaque(&CONFIG)
    };
    let identity: &'static Identity<'static> = match Identity::from_config(&config, None) {
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
