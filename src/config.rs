// SPDX-License-Identifier: Apache-2.0

//! The build's Kconfig values (`menu "MQTT over TLS device"` in `Kconfig`) as typed constants.
//!
//! `zephyr::kconfig` exposes integers as `isize` and strings as `&str`; booleans only exist as
//! `cfg` flags (build.rs). Kconfig `range`s bound every integer, so the narrowing casts below
//! cannot truncate. Validation of combinations lives in Kconfig, CMakeLists.txt and
//! socket_shim.c; what remains to check at run time belongs in `mqtts-core`.

use log::LevelFilter;
use zephyr::kconfig;

/// Broker DNS name (also the SNI and certificate name).
pub const BROKER_HOST: &str = kconfig::CONFIG_MQTTS_BROKER_HOST;
/// Broker TCP port.
pub const BROKER_PORT: u16 = kconfig::CONFIG_MQTTS_BROKER_PORT as u16;
/// Whether the connection uses TLS.
pub const TLS: bool = cfg!(CONFIG_MQTTS_TLS);
/// Whether the broker certificate is verified.
pub const TLS_PEER_VERIFY: bool = cfg!(CONFIG_MQTTS_TLS_PEER_VERIFY);
/// MQTT client id (may be empty: the profile derives one).
pub const CLIENT_ID: &str = kconfig::CONFIG_MQTTS_CLIENT_ID;
/// Device id used in self-hosted topics.
pub const DEVICE_ID: &str = kconfig::CONFIG_MQTTS_DEVICE_ID;
/// MQTT keep-alive in seconds.
pub const KEEPALIVE_S: u16 = kconfig::CONFIG_MQTTS_KEEPALIVE_S as u16;
/// PINGRESP timeout in milliseconds.
pub const PING_TIMEOUT_MS: u32 = kconfig::CONFIG_MQTTS_PING_TIMEOUT_MS as u32;
/// Whole connection attempt timeout in milliseconds.
pub const CONNECT_TIMEOUT_MS: u32 = kconfig::CONFIG_MQTTS_CONNECT_TIMEOUT_MS as u32;
/// Maximum QoS 1 messages in flight.
pub const INFLIGHT_MAX: usize = kconfig::CONFIG_MQTTS_INFLIGHT_MAX as usize;
/// Reconnect back-off minimum in milliseconds.
pub const BACKOFF_MIN_MS: u32 = kconfig::CONFIG_MQTTS_BACKOFF_MIN_MS as u32;
/// Reconnect back-off maximum in milliseconds.
pub const BACKOFF_MAX_MS: u32 = kconfig::CONFIG_MQTTS_BACKOFF_MAX_MS as u32;
/// Telemetry period in seconds (0 = only on change).
pub const TELEMETRY_PERIOD_S: u32 = kconfig::CONFIG_MQTTS_TELEMETRY_PERIOD_S as u32;
/// CleanSession flag for CONNECT.
pub const CLEAN_SESSION: bool = cfg!(CONFIG_MQTTS_CLEAN_SESSION);
/// Size of the receive ring buffer in bytes.
pub const RX_BUFFER_SIZE: usize = kconfig::CONFIG_MQTTS_RX_BUFFER_SIZE as usize;
/// Size of the transmit buffer in bytes.
pub const TX_BUFFER_SIZE: usize = kconfig::CONFIG_MQTTS_TX_BUFFER_SIZE as usize;
/// Warn after waiting this long for link and address, in milliseconds.
pub const NET_WAIT_WARN_MS: i64 = kconfig::CONFIG_MQTTS_NET_WAIT_TIMEOUT_S as i64 * 1000;
/// SNTP server name (used by the C shim; kept here for the start-up log).
pub const SNTP_SERVER: &str = kconfig::CONFIG_MQTTS_SNTP_SERVER;
/// Period between two successful SNTP synchronisations, in milliseconds.
pub const SNTP_RESYNC_MS: i64 = kconfig::CONFIG_MQTTS_SNTP_RESYNC_S as i64 * 1000;
/// Stack size of the connection worker thread in bytes.
pub const WORKER_STACK_SIZE: usize = kconfig::CONFIG_MQTTS_WORKER_STACK_SIZE as usize;
/// Zephyr priority of the connection worker thread.
pub const WORKER_PRIORITY: i32 = kconfig::CONFIG_MQTTS_WORKER_PRIORITY as i32;

/// Highest level of the Rust log records.
pub const LOG_LEVEL: LevelFilter = match kconfig::CONFIG_MQTTS_LOG_LEVEL {
    1 => LevelFilter::Error,
    2 => LevelFilter::Warn,
    3 => LevelFilter::Info,
    _ => LevelFilter::Debug,
};

/// Alibaba Cloud IoT device identity. Holds the device secret: deliberately not `Debug`.
#[cfg(CONFIG_MQTTS_PROFILE_ALIYUN)]
pub struct AliyunIdentity {
    /// ProductKey.
    pub product_key: &'static str,
    /// DeviceName.
    pub device_name: &'static str,
    /// DeviceSecret (HMAC key). Never log it.
    pub device_secret: &'static str,
    /// "hmacsha256", "hmacsha1" or "hmacmd5".
    pub sign_method: &'static str,
}

/// The identity configured in Kconfig.
#[cfg(CONFIG_MQTTS_PROFILE_ALIYUN)]
pub const ALIYUN: AliyunIdentity = AliyunIdentity {
    product_key: kconfig::CONFIG_MQTTS_ALIYUN_PRODUCT_KEY,
    device_name: kconfig::CONFIG_MQTTS_ALIYUN_DEVICE_NAME,
    device_secret: kconfig::CONFIG_MQTTS_ALIYUN_DEVICE_SECRET,
    sign_method: kconfig::CONFIG_MQTTS_ALIYUN_SIGN_METHOD,
};

/// Self-hosted broker login. Holds the password: deliberately not `Debug`.
#[cfg(CONFIG_MQTTS_PROFILE_SELF_HOSTED)]
pub struct SelfHostedLogin {
    /// User name (empty: none).
    pub username: &'static str,
    /// Password (empty: none). Never log it.
    pub password: &'static str,
}

/// The login configured in Kconfig.
#[cfg(CONFIG_MQTTS_PROFILE_SELF_HOSTED)]
pub const SELF_HOSTED: SelfHostedLogin = SelfHostedLogin {
    username: kconfig::CONFIG_MQTTS_USERNAME,
    password: kconfig::CONFIG_MQTTS_PASSWORD,
};

/// Logs the non-secret part of the configuration once at start-up.
pub fn log_summary() {
    let profile = if cfg!(CONFIG_MQTTS_PROFILE_ALIYUN) {
        "aliyun"
    } else {
        "self-hosted"
    };
    log::info!(
        "profile {}, broker {}:{}, tls {}, verify {}, keepalive {} s, sntp {}",
        profile,
        BROKER_HOST,
        BROKER_PORT,
        TLS,
        TLS_PEER_VERIFY,
        KEEPALIVE_S,
        SNTP_SERVER
    );
    #[cfg(CONFIG_MQTTS_PROFILE_ALIYUN)]
    log::info!(
        "aliyun product {}, device {}, sign {}",
        ALIYUN.product_key,
        ALIYUN.device_name,
        ALIYUN.sign_method
    );
    #[cfg(CONFIG_MQTTS_INSECURE_NO_HW_RNG_I_ACCEPT_PREDICTABLE_TLS_KEYS)]
    log::warn!("INSECURE BUILD: no hardware RNG, TLS keys are predictable");
}
