// SPDX-License-Identifier: Apache-2.0

//! Alibaba dynamic registration on the device (`aliyun_auth = register` and no DeviceSecret
//! stored yet): one TLS connection signed with the ProductSecret, driven by the core's
//! [`Exchange`] over the same [`ZephyrTransport`] the MQTT connection uses, then the DeviceSecret
//! is stored in settings and the device reboots, so the normal boot path (stored options over
//! Kconfig) logs in with it.
//!
//! One attempt per boot, as Alibaba's SDK does (reconnect off for this connection): a CONNACK
//! refusal (wrong ProductSecret, unknown DeviceName, registration disabled) halts with one
//! message naming the options; any other failure (network, timeout) waits
//! [`RETRY_AFTER_MS`] and reboots, so a broken link costs one attempt a minute, never a storm.
//! Neither secret is logged.

use mqtts_core::aliyun::exchange::{Exchange, ExchangeError};
use mqtts_core::aliyun::register::{self as reg, RegisterKind, RegisterReply};
use mqtts_core::aliyun::sign::MqttCredentials;
use mqtts_core::config::DeviceConfig;
use mqtts_core::firmware::ca::CaSet;
use mqtts_core::options::OptionId;
use zephyr::time::{sleep, Duration};

use crate::ffi;
use crate::provision;
use crate::transport::{Shared, ZephyrTransport};
use crate::uptime::uptime_ms;

/// Receive buffer of the exchange: Alibaba's CONNACK and reply PUBLISH (a short JSON object).
const RX_LEN: usize = 512;

/// The objects [`register_and_reboot`] keeps on the application thread's stack (the request's
/// credentials, the exchange with its receive buffer, the transport), for
/// [`crate::main_loop::APP_STACK_SIZE`]. It runs before the `Device` is built, so the two
/// never share the stack.
pub const STACK_OBJECTS: usize = core::mem::size_of::<MqttCredentials<160, 128>>()
    + core::mem::size_of::<Exchange<RX_LEN>>()
    + core::mem::size_of::<ZephyrTransport<'static>>();
/// Time for the platform's reply after the TLS connection is up, on top of
/// `connect_timeout_ms` for the connection itself.
const REPLY_WAIT_MS: u64 = 10_000;
/// Wait before the reboot that retries a registration that failed for a reason other than a
/// refusal.
pub const RETRY_AFTER_MS: u64 = 60_000;
/// Longest sleep between polls of the exchange.
const POLL_MS: u64 = 50;

/// How a registration attempt ended (after a success the device reboots instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The platform refused the request: fix the options; retrying cannot help.
    Refused,
    /// Network, timeout or storage failure: worth another attempt after a reboot.
    Failed,
}

/// Registers, stores the DeviceSecret and reboots; returns only if that did not happen.
/// `device` is the effective configuration (its broker is already set in the shim), the
/// network is up and the clock is set.
pub fn register_and_reboot(
    device: &DeviceConfig<'_>,
    product_secret: &str,
    shared: &Shared,
    cas: CaSet,
) -> Outcome {
    let pk = device.aliyun_product_key.unwrap_or_default();
    let dn = device.aliyun_device_name.unwrap_or_default();
    let host = device.broker_host.unwrap_or_default();
    let creds: MqttCredentials<160, 128> = match reg::register_credentials(
        pk,
        dn,
        product_secret,
        ffi::random_u32(),
        reg::instance_id(host),
        RegisterKind::Register,
    ) {
        Ok(creds) => creds,
        Err(e) => {
            log::error!("registration: cannot sign the request: {:?}", e);
            return Outcome::Refused;
        }
    };
    let deadline = uptime_ms() + u64::from(device.connect_timeout_ms) + REPLY_WAIT_MS;
    let mut exchange = match Exchange::<RX_LEN>::new(
        &creds.client_id,
        &creds.username,
        &creds.password,
        RegisterKind::Register,
        deadline,
    ) {
        Ok(exchange) => exchange,
        Err(e) => {
            log::error!("registration: {:?}", e);
            return Outcome::Refused;
        }
    };
    log::info!("registration: {}&{} connecting to {}", dn, pk, host);
    let mut transport = ZephyrTransport::new(shared, cas);
    loop {
        match exchange.poll(&mut transport, uptime_ms()) {
            Ok(None) => {}
            Ok(Some(RegisterReply::DeviceSecret(secret))) => return store_and_reboot(secret),
            // The exchange checks the reply's kind against the request's (WrongKind), so this
            // is not expected; a platform that answers a DeviceSecret request with a token would
            // do so again on every attempt, so it halts rather than retries.
            Ok(Some(RegisterReply::Token { .. })) => {
                log::error!(
                    "registration: the platform answered with a device token, not a \
                     DeviceSecret (pre-registration-free products are not offered by this \
                     firmware); not retrying"
                );
                return Outcome::Refused;
            }
            Err(ExchangeError::Refused(code)) => {
                log::error!(
                    "registration refused by the platform (CONNACK {:?}): check \
                     aliyun_product_secret, aliyun_product_key, aliyun_device_name and that \
                     dynamic registration is enabled for the product; not retrying",
                    code
                );
                return Outcome::Refused;
            }
            Err(ExchangeError::RequestTooLarge | ExchangeError::WrongKind) => {
                log::error!("registration: the request or reply does not fit this firmware");
                return Outcome::Refused;
            }
            Err(e) => {
                log::error!("registration failed: {:?}", e);
                return Outcome::Failed;
            }
        }
        // Until the socket is open there is nothing to wait on: sleep instead.
        if transport.wait(false, POLL_MS as i32).is_none() {
            sleep(Duration::millis_at_least(POLL_MS as _));
        }
    }
}

/// Stores `aliyun_device_secret` (a core store record, like every option) and reboots.
fn store_and_reboot(secret: &str) -> Outcome {
    let stored = provision::save(OptionId::AliyunDeviceSecret.name(), secret);
    match stored {
        Ok(()) => {
            log::info!("registration: device secret received and stored; rebooting");
            ffi::prov_reboot();
            Outcome::Failed // sys_reboot does not return
        }
        Err(e) => {
            log::error!("registration: storing the device secret failed ({})", e);
            Outcome::Failed
        }
    }
}

/// Waits [`RETRY_AFTER_MS`] and reboots (for [`Outcome::Failed`]).
pub fn retry_later() {
    log::warn!(
        "registration: next attempt after a reboot in {} s",
        RETRY_AFTER_MS / 1000
    );
    let _ = sleep(Duration::millis_at_least(RETRY_AFTER_MS as _));
    ffi::prov_reboot();
}
