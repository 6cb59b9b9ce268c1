//! Portable core of the w5500-mqtts device: everything the firmware does that is not a Zephyr
//! call, `no_std` and without a heap, so it runs unchanged on the host, in tests, under fuzzers
//! and on Cortex-M.
//!
//! Layers, bottom up:
//! - [`ring`]: the receive ring buffer.
//! - [`codec`]: MQTT 3.1.1 packets, strict zero-copy decode and encode.
//! - [`session`]: the sans-IO MQTT session (bytes in, bytes out, time in, events out).
//! - [`transport`] and [`driver`]: the connection life cycle over a non-blocking socket.
//! - [`backoff`]: reconnect delays with jitter.
//! - [`aliyun`]: Alibaba Cloud IoT credentials (HMAC-signed CONNECT).
//! - [`router`]: topic-filter routing of incoming messages.
//! - [`selfhosted`], [`switch`]: the self-hosted device model and the switch outputs.
//! - [`alink`]: the Alibaba thing model (Alink topics and payloads).
//! - [`config`]: the device configuration and its validation.
//! - [`options`], [`store`], [`shell`], [`power_on`]: run-time options (names, parsing, the
//!   layered configuration), their stored records, the `mqtts` shell grammar and the switch
//!   power-on rule.
//! - [`device`]: all of the above as one object the firmware and the host runner poll.
//! - [`firmware`]: pure logic of the Zephyr firmware (shim codes, CA choice, worker slot,
//!   SNTP schedule, status LED), host-tested here so the Zephyr layer stays thin.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod alink;
pub mod aliyun;
pub mod backoff;
pub mod codec;
pub mod config;
pub mod device;
pub mod driver;
pub mod firmware;
mod json;
pub mod options;
pub mod power_on;
pub mod ring;
pub mod router;
pub mod selfhosted;
pub mod session;
pub mod shell;
pub mod store;
pub mod switch;
pub mod transport;
