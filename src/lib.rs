// SPDX-License-Identifier: Apache-2.0

//! Zephyr application layer of the w5500-mqtts firmware.
//!
//! Zephyr provides the W5500 driver, the IP stack, DNS, DHCP, SNTP and Mbed TLS sockets; the
//! portable logic (MQTT session, connection driver, ring buffer, device model) is in
//! `mqtts-core`. This crate only glues the two together and stays thin.
//!
//! Imports run one way, top to bottom (no module imports one above it):
//!
//! - [`entry`]: `rust_main` and the two threads.
//! - [`main_loop`]: the application thread: config check, bring-up, the `Device` poll loop.
//! - [`register`]: Alibaba dynamic registration over [`transport::ZephyrTransport`] (the
//!   core's `aliyun::exchange`), before the `Device` exists.
//! - [`worker`]: the connection worker thread and the atomics under the core's slot protocol.
//! - [`transport`]: [`transport::ZephyrTransport`], the core's `Transport` over the worker and
//!   the shim's non-blocking socket calls.
//! - [`outputs`]: relays and the status LED from devicetree aliases.
//! - [`provision`]: options in flash (Zephyr settings), the `mqtts` shell command and the
//!   identity (MAC, default `device_id`) from the MCU unique ID; its `c_entry` holds the two
//!   `#[no_mangle]` functions the C shim calls and the two `unsafe` pointer conversions.
//! - [`net`]: link/address monitoring.
//! - [`config`]: the Kconfig values the firmware was built with; [`uptime`]: the boot clock.
//! - [`ffi`]: the C shim (`src/socket_shim.c`) and the logger set-up; every hand-written
//!   `unsafe` block is here.
//!
//! Pure logic (shim codes, CA choice, the worker slot protocol, SNTP schedule, LED patterns,
//! configuration rules) is in `mqtts_core::firmware` and `mqtts_core::config`, tested on the
//! host.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]
// The cfg names come from Kconfig and the devicetree (see build.rs); rustc cannot know them.
#![allow(unexpected_cfgs)]

pub mod config;
// `#[no_mangle]` and the `#[zephyr::thread]` expansion only; no `unsafe` block (see the module).
#[allow(unsafe_code)]
mod entry;
#[allow(unsafe_code)]
pub mod ffi;
pub mod main_loop;
pub mod net;
pub mod outputs;
pub mod provision;
pub mod register;
pub mod transport;
pub mod uptime;
pub mod worker;
