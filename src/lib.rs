// SPDX-License-Identifier: Apache-2.0

//! Zephyr application layer of the w5500-mqtts firmware.
//!
//! Zephyr provides the W5500 driver, the IP stack, DNS, DHCP, SNTP and Mbed TLS sockets; the
//! portable logic (MQTT session, connection driver, ring buffer, device model) is in
//! `mqtts-core`. This crate only glues the two together and stays thin:
//!
//! - [`ffi`]: the C shim (`src/socket_shim.c`), logging set-up, the worker thread and the
//!   `rust_main` entry point. The only module with `unsafe`.
//! - [`worker`]: the connection worker thread and its lock-free request/result slot.
//! - [`transport`]: [`transport::ZephyrTransport`], the core's `Transport` over the worker and
//!   the shim's non-blocking socket calls.
//! - [`outputs`]: relays and the status LED from devicetree aliases.
//! - [`net`]: link/address monitoring and SNTP scheduling.
//! - [`config`]: the Kconfig values the firmware was built with.
//! - [`main_loop`]: the never-blocking main loop.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]
// The cfg names come from Kconfig and the devicetree (see build.rs); rustc cannot know them.
#![allow(unexpected_cfgs)]

pub mod config;
#[allow(unsafe_code)]
pub mod ffi;
pub mod main_loop;
pub mod net;
pub mod outputs;
pub mod transport;
pub mod worker;

/// Firmware start, called by [`ffi`]'s `rust_main` on Zephyr's main thread.
fn app_main() -> ! {
    ffi::init_logging(config::LOG_LEVEL);
    log::info!(
        "w5500-mqtts {} on {}",
        env!("CARGO_PKG_VERSION"),
        zephyr::kconfig::CONFIG_BOARD
    );
    config::log_summary();

    if let Err(status) = ffi::tls_init() {
        // Without the CA certificates every TLS connect would fail: say why once, then keep
        // running so switches and the status LED still work.
        log::error!("TLS credentials not registered: {:?}", status);
    }

    worker::start();

    let net = net::NetMonitor::start();
    let outputs = outputs::GpioOutputs::from_devicetree();
    let status_led = outputs::StatusLed::from_devicetree();
    let transport = transport::ZephyrTransport::new();

    main_loop::run(main_loop::App::new(net, outputs, status_led, transport))
}
