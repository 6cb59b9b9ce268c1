// SPDX-License-Identifier: Apache-2.0

//! The build's Kconfig values (`menu "MQTT over TLS device"` in `Kconfig`) as typed constants,
//! and the core's [`DeviceConfig`] filled from them.
//!
//! `zephyr::kconfig` exposes integers as `isize` and strings as `&str`; booleans only exist as
//! `cfg` flags (build.rs), and symbols inside a Kconfig `if` block only exist when it is true.
//! Kconfig `range`s bound every integer, so the narrowing casts below cannot truncate. The
//! rules of the configuration live in `DeviceConfig::validate` (run at boot, see
//! `main_loop`), Kconfig and CMakeLists.txt; nothing here re-checks them.

use log::LevelFilter;
use mqtts_core::config::DeviceConfig;
use mqtts_core::firmware::ca::CaChoice;
use mqtts_core::firmware::clock::ClockConfig;
use mqtts_core::firmware::kconfig_text;
use zephyr::kconfig;

/// The device configuration. Field `x` is `CONFIG_MQTTS_X`; an empty Kconfig string is `None`.
pub const DEVICE: DeviceConfig<'static> = DeviceConfig {
    profile: Some(PROFILE),
    broker_host: kconfig_text(kconfig::CONFIG_MQTTS_BROKER_HOST),
    broker_port: kconfig::CONFIG_MQTTS_BROKER_PORT as u16,
    tls: cfg!(CONFIG_MQTTS_TLS),
    tls_peer_verify: cfg!(CONFIG_MQTTS_TLS_PEER_VERIFY),
    client_id: kconfig_text(kconfig::CONFIG_MQTTS_CLIENT_ID),
    aliyun_product_key: ALIYUN.0,
    aliyun_device_name: ALIYUN.1,
    aliyun_device_secret: ALIYUN.2,
    aliyun_sign_method: ALIYUN.3,
    username: LOGIN.0,
    password: LOGIN.1,
    device_id: kconfig_text(kconfig::CONFIG_MQTTS_DEVICE_ID),
    keepalive_s: kconfig::CONFIG_MQTTS_KEEPALIVE_S as u16,
    ping_timeout_ms: kconfig::CONFIG_MQTTS_PING_TIMEOUT_MS as u32,
    connect_timeout_ms: kconfig::CONFIG_MQTTS_CONNECT_TIMEOUT_MS as u32,
    inflight_max: kconfig::CONFIG_MQTTS_INFLIGHT_MAX as u16,
    backoff_min_ms: kconfig::CONFIG_MQTTS_BACKOFF_MIN_MS as u32,
    backoff_max_ms: kconfig::CONFIG_MQTTS_BACKOFF_MAX_MS as u32,
    telemetry_period_s: kconfig::CONFIG_MQTTS_TELEMETRY_PERIOD_S as u32,
    clean_session: cfg!(CONFIG_MQTTS_CLEAN_SESSION),
};

// --- Kconfig choices against the cargo features of this build ---------------------------------
// The profile and the Alibaba sign method are Kconfig choices, but what is compiled into the
// core are cargo features (rustapp's `aliyun`, `selfhosted`, `sign-hmacsha256`, `sign-hmacsha1`,
// `sign-hmacmd5`, each forwarding to the mqtts-core feature of the same name). zephyr-lang-rust's
// `rust_cargo_application()` (ab3e546) takes no arguments and runs a fixed `cargo build`, so
// Kconfig cannot choose features: the build gets rustapp's `default` features, which are all of
// them. A leaner image trims `default` in Cargo.toml; these checks turn a choice the build left
// out into a compile error naming the option and the feature, instead of a boot-time halt.
#[cfg(all(CONFIG_MQTTS_PROFILE_ALIYUN, not(feature = "aliyun")))]
compile_error!("CONFIG_MQTTS_PROFILE_ALIYUN=y needs the cargo feature `aliyun` (Cargo.toml, [features] default)");
#[cfg(all(CONFIG_MQTTS_PROFILE_SELF_HOSTED, not(feature = "selfhosted")))]
compile_error!("CONFIG_MQTTS_PROFILE_SELF_HOSTED=y needs the cargo feature `selfhosted` (Cargo.toml, [features] default)");
#[cfg(all(CONFIG_MQTTS_ALIYUN_SIGN_HMACSHA256, not(feature = "sign-hmacsha256")))]
compile_error!("CONFIG_MQTTS_ALIYUN_SIGN_HMACSHA256=y needs the cargo feature `sign-hmacsha256` (Cargo.toml, [features] default)");
#[cfg(all(CONFIG_MQTTS_ALIYUN_SIGN_HMACSHA1, not(feature = "sign-hmacsha1")))]
compile_error!("CONFIG_MQTTS_ALIYUN_SIGN_HMACSHA1=y needs the cargo feature `sign-hmacsha1` (Cargo.toml, [features] default)");
#[cfg(all(CONFIG_MQTTS_ALIYUN_SIGN_HMACMD5, not(feature = "sign-hmacmd5")))]
compile_error!("CONFIG_MQTTS_ALIYUN_SIGN_HMACMD5=y needs the cargo feature `sign-hmacmd5` (Cargo.toml, [features] default)");

/// The profile name `DeviceConfig` expects.
#[cfg(CONFIG_MQTTS_PROFILE_ALIYUN)]
const PROFILE: &str = "aliyun";
#[cfg(not(CONFIG_MQTTS_PROFILE_ALIYUN))]
const PROFILE: &str = "self-hosted";

/// Product key, device name, device secret, sign method (only defined for the Alibaba profile).
#[cfg(CONFIG_MQTTS_PROFILE_ALIYUN)]
const ALIYUN: (Option<&str>, Option<&str>, Option<&str>, &str) = (
    kconfig_text(kconfig::CONFIG_MQTTS_ALIYUN_PRODUCT_KEY),
    kconfig_text(kconfig::CONFIG_MQTTS_ALIYUN_DEVICE_NAME),
    kconfig_text(kconfig::CONFIG_MQTTS_ALIYUN_DEVICE_SECRET),
    kconfig::CONFIG_MQTTS_ALIYUN_SIGN_METHOD,
);
#[cfg(not(CONFIG_MQTTS_PROFILE_ALIYUN))]
const ALIYUN: (Option<&str>, Option<&str>, Option<&str>, &str) = (None, None, None, "hmacsha256");

/// User name and password (only defined for the self-hosted profile).
#[cfg(CONFIG_MQTTS_PROFILE_SELF_HOSTED)]
const LOGIN: (Option<&str>, Option<&str>) = (
    kconfig_text(kconfig::CONFIG_MQTTS_USERNAME),
    kconfig_text(kconfig::CONFIG_MQTTS_PASSWORD),
);
#[cfg(not(CONFIG_MQTTS_PROFILE_SELF_HOSTED))]
const LOGIN: (Option<&str>, Option<&str>) = (None, None);

/// Which roots the build embedded (`choice MQTTS_CA`).
pub const CA_CHOICE: CaChoice = if cfg!(CONFIG_MQTTS_CA_ALIYUN_BY_PORT) {
    CaChoice::ByPort
} else if cfg!(CONFIG_MQTTS_CA_ALIYUN_BOTH) {
    CaChoice::AliyunBoth
} else if cfg!(CONFIG_MQTTS_CA_GLOBALSIGN_R1) {
    CaChoice::GlobalSignR1
} else if cfg!(CONFIG_MQTTS_CA_ALIYUN_IOT_ROOT) {
    CaChoice::AliyunIotRoot
} else {
    CaChoice::Custom
};

/// Comma-separated switch names, in output order (`relay0`, `relay1`, ...).
pub const SWITCH_NAMES: &str = kconfig::CONFIG_MQTTS_SWITCH_NAMES;
/// Size of the receive ring buffer in bytes.
pub const RX_BUFFER_SIZE: usize = kconfig::CONFIG_MQTTS_RX_BUFFER_SIZE as usize;
/// Size of the transmit buffer in bytes.
pub const TX_BUFFER_SIZE: usize = kconfig::CONFIG_MQTTS_TX_BUFFER_SIZE as usize;
/// Bytes kept for unacknowledged QoS 1 publishes (across reconnects).
pub const STORE_BUFFER_SIZE: usize = kconfig::CONFIG_MQTTS_STORE_BUFFER_SIZE as usize;
/// Maximum QoS 1 messages in flight (the core's in-flight table size).
pub const INFLIGHT_MAX: usize = kconfig::CONFIG_MQTTS_INFLIGHT_MAX as usize;
/// Warn after waiting this long for link and address, in milliseconds.
pub const NET_WAIT_WARN_MS: u64 = kconfig::CONFIG_MQTTS_NET_WAIT_TIMEOUT_S as u64 * 1000;
/// SNTP server name (used by the C shim; kept here for the start-up log).
pub const SNTP_SERVER: &str = kconfig::CONFIG_MQTTS_SNTP_SERVER;
/// SNTP schedule: retries 2 s doubling to 60 s, re-sync every `CONFIG_MQTTS_SNTP_RESYNC_S`.
pub const CLOCK: ClockConfig = ClockConfig {
    retry_min_ms: 2_000,
    retry_max_ms: 60_000,
    resync_ms: kconfig::CONFIG_MQTTS_SNTP_RESYNC_S as u32 * 1000,
};
/// Stack size of the connection worker thread in bytes.
pub const WORKER_STACK_SIZE: usize = kconfig::CONFIG_MQTTS_WORKER_STACK_SIZE as usize;
/// Zephyr priority of the connection worker thread.
pub const WORKER_PRIORITY: i32 = kconfig::CONFIG_MQTTS_WORKER_PRIORITY as i32;
/// Application thread stack beyond the `Device` and `Identity` objects it holds.
pub const APP_STACK_BASE: usize = kconfig::CONFIG_MQTTS_APP_STACK_BASE as usize;
/// Zephyr priority of the application thread (must be above the worker's: CMake checks it).
pub const APP_PRIORITY: i32 = kconfig::CONFIG_MQTTS_APP_PRIORITY as i32;

/// Highest level of the Rust log records.
pub const LOG_LEVEL: LevelFilter = match kconfig::CONFIG_MQTTS_LOG_LEVEL {
    1 => LevelFilter::Error,
    2 => LevelFilter::Warn,
    3 => LevelFilter::Info,
    _ => LevelFilter::Debug,
};

/// Logs the non-secret part of the configuration once at start-up.
pub fn log_summary() {
    let c = &DEVICE;
    log::info!(
        "profile {}, broker {}:{}, tls {}, verify {}, keepalive {} s, sntp {}",
        PROFILE,
        c.broker_host.unwrap_or("<unset>"),
        c.broker_port,
        c.tls,
        c.tls_peer_verify,
        c.keepalive_s,
        SNTP_SERVER
    );
    if let (Some(pk), Some(dn)) = (c.aliyun_product_key, c.aliyun_device_name) {
        // Never the device secret or the password.
        log::info!(
            "aliyun product {}, device {}, sign {}",
            pk,
            dn,
            c.aliyun_sign_method
        );
    }
    #[cfg(CONFIG_MQTTS_INSECURE_NO_HW_RNG_I_ACCEPT_PREDICTABLE_TLS_KEYS)]
    log::warn!("INSECURE BUILD: no hardware RNG, TLS keys are predictable");
}
