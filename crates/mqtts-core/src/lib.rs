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
//!
//! Cargo features choose what a build contains (all are on by default): `aliyun` (the Alibaba
//! profile: [`alink`], [`aliyun`]), `selfhosted` (the self-hosted profile: [`selfhosted`]), and
//! the Alibaba sign methods `sign-hmacsha256`, `sign-hmacsha1`, `sign-hmacmd5` (each implies
//! `aliyun`). [`device`] needs at least one profile. A configuration that asks for a profile or
//! sign method the build left out fails [`config::DeviceConfig::validate`] with
//! [`config::ConfigProblem::NotBuilt`], naming the missing feature.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

#[cfg(all(
    feature = "aliyun",
    not(any(
        feature = "sign-hmacsha256",
        feature = "sign-hmacsha1",
        feature = "sign-hmacmd5"
    ))
))]
compile_error!(
    "feature `aliyun` needs at least one sign method: `sign-hmacsha256`, `sign-hmacsha1` or `sign-hmacmd5`"
);

#[cfg(feature = "aliyun")]
pub mod alink;
#[cfg(feature = "aliyun")]
pub mod aliyun;
pub mod backoff;
pub mod codec;
pub mod config;
#[cfg(any(feature = "aliyun", feature = "selfhosted"))]
pub mod device;
pub mod driver;
pub mod firmware;
#[cfg(any(feature = "aliyun", feature = "selfhosted"))]
mod json;
#[cfg(any(feature = "aliyun", feature = "selfhosted"))]
mod num;
pub mod options;
pub mod power_on;
pub mod ring;
pub mod router;
#[cfg(feature = "selfhosted")]
pub mod selfhosted;
pub mod session;
pub mod shell;
pub mod store;
pub mod switch;
pub mod transport;
