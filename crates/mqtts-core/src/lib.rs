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
//! - [`aliyun`], [`selfhosted`], [`switch`]: the device model on each platform.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod aliyun;
pub mod backoff;
pub mod codec;
pub mod driver;
pub mod ring;
pub mod router;
pub mod session;
pub mod transport;
