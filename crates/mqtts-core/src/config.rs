//! Device configuration, shared by the firmware (filled from Kconfig) and the host runner (filled
//! from a TOML file), and its validation.
//!
//! Every option has one name: the TOML key is the field name, the Kconfig symbol is
//! [`KCONFIG_PREFIX`] + the field name in upper case (`broker_port` → `CONFIG_MQTTS_BROKER_PORT`).
//! An optional text option that is unset is `None` (TOML: key absent; Kconfig: empty string).
//!
//! | option | type | default | rule |
//! |---|---|---|---|
//! | `profile` | text | — (required) | `aliyun` or `self-hosted` |
//! | `broker_host` | text | — (required) | 1..=253 chars, no whitespace |
//! | `broker_port` | int | 8883 | 1..=65535 |
//! | `tls` | bool | true | must be true for `aliyun` (securemode=2) |
//! | `tls_peer_verify` | bool | true | false only on purpose (test brokers) |
//! | `client_id` | text | unset | ≤ 64 chars; `aliyun`: no `\|` or `,` (unset: `{pk}.{dn}`); self-hosted: unset uses `device_id` |
//! | `aliyun_product_key` | text | unset | `aliyun`: required, ≤ 32 chars of `[A-Za-z0-9_.:@-]` |
//! | `aliyun_device_name` | text | unset | `aliyun`: required, same characters |
//! | `aliyun_device_secret` | text | unset | `aliyun`: required, ≤ 64 chars; never printed |
//! | `aliyun_sign_method` | text | `hmacsha256` | `hmacsha256`, `hmacsha1` or `hmacmd5` |
//! | `username` | text | unset | self-hosted only (`aliyun` computes it) |
//! | `password` | text | unset | self-hosted only, needs `username`; never printed |
//! | `device_id` | text | unset | self-hosted: required, ≤ 64 chars of `[A-Za-z0-9_-]` |
//! | `keepalive_s` | int | 60 | `aliyun`: 30..=1200; self-hosted: 0..=65535 (0 = off) |
//! | `ping_timeout_ms` | int | 10000 | 100..=60000 |
//! | `connect_timeout_ms` | int | 30000 | 1000..=120000 |
//! | `inflight_max` | int | 4 | 1..=16 |
//! | `backoff_min_ms` | int | 1000 | 100..=600000 |
//! | `backoff_max_ms` | int | 120000 | 100..=3600000 and ≥ `backoff_min_ms` |
//! | `telemetry_period_s` | int | 60 | 0 (off) or 5..=86400 |
//! | `clean_session` | bool | true | — |
//!
//! The numeric rules are data: [`RANGES`] holds one [`OptionRange`] per rule and
//! [`DeviceConfig::validate`] checks the options against those very constants. The firmware's
//! Kconfig `range`s, the docs' tables and this table are tested against [`RANGES`]
//! (`crates/mqtts-sim/tests/kconfig_defaults.rs`). Kconfig cannot say "0 or 5..=86400": its
//! `range` is then `0..=max` and CMakeLists.txt plus a `BUILD_ASSERT` reject the gap; anything
//! else Kconfig cannot express (lengths, characters, `backoff_max_ms` ≥ `backoff_min_ms`) is
//! caught by CMake or by `validate` at boot, which halts the firmware naming the option.
//!
//! A build carries only the profiles and Alibaba sign methods its Cargo features select (see
//! the crate docs); a configuration asking for one it left out fails with
//! [`ConfigProblem::NotBuilt`] naming the option and the missing feature.

use core::fmt;

#[cfg(feature = "aliyun")]
use crate::aliyun::sign::SignMethod;

/// Prefix of the Kconfig symbols.
pub const KCONFIG_PREFIX: &str = "CONFIG_MQTTS_";

/// Which broker family the device talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Alibaba Cloud IoT Platform (Alink, signed credentials, TLS).
    Aliyun,
    /// A self-hosted broker (Mosquitto, EMQX).
    SelfHosted,
}

impl Profile {
    /// Allowed profile names.
    pub const ALLOWED: &'static str = "aliyun, self-hosted";

    /// The profile called `name` (`aliyun` or `self-hosted`).
    pub fn parse(name: &str) -> Option<Profile> {
        match name {
            "aliyun" => Some(Profile::Aliyun),
            "self-hosted" => Some(Profile::SelfHosted),
            _ => None,
        }
    }

    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Aliyun => "aliyun",
            Profile::SelfHosted => "self-hosted",
        }
    }

    /// The Cargo feature of mqtts-core that builds this profile in.
    pub const fn feature(self) -> &'static str {
        match self {
            Profile::Aliyun => "aliyun",
            Profile::SelfHosted => "selfhosted",
        }
    }

    /// Whether this build contains the profile (its [`feature`](Self::feature) is on).
    pub const fn is_built(self) -> bool {
        match self {
            Profile::Aliyun => cfg!(feature = "aliyun"),
            Profile::SelfHosted => cfg!(feature = "selfhosted"),
        }
    }
}

/// What is wrong with a configuration field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigProblem {
    /// Required but not set.
    Missing,
    /// Set to an empty string.
    Empty,
    /// Number outside `min..=max`.
    OutOfRange {
        /// Smallest allowed value.
        min: u32,
        /// Largest allowed value.
        max: u32,
    },
    /// Not one of the allowed values / characters.
    InvalidValue {
        /// The allowed values or characters, as text.
        allowed: &'static str,
    },
    /// Longer than `max` bytes.
    TooLong {
        /// Longest allowed length.
        max: usize,
    },
    /// Not allowed together with the value of another field.
    Conflict {
        /// The other field.
        with: &'static str,
    },
    /// A valid value whose support this build left out (a profile or an Alibaba sign method):
    /// build mqtts-core with Cargo feature `feature` (the firmware: the matching Kconfig
    /// choice).
    NotBuilt {
        /// The mqtts-core Cargo feature that is missing.
        feature: &'static str,
    },
}

/// A configuration error: which field, and what is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigError {
    /// The option name (TOML key; Kconfig symbol without prefix, lower case).
    pub field: &'static str,
    /// What is wrong.
    pub problem: ConfigProblem,
}

impl ConfigError {
    fn new(field: &'static str, problem: ConfigProblem) -> Self {
        ConfigError { field, problem }
    }

    /// The allowed values, when the problem is an invalid value.
    pub fn allowed(&self) -> Option<&'static str> {
        match self.problem {
            ConfigProblem::InvalidValue { allowed } => Some(allowed),
            _ => None,
        }
    }

    /// The missing Cargo feature, when the value is valid but left out of this build.
    pub fn missing_feature(&self) -> Option<&'static str> {
        match self.problem {
            ConfigProblem::NotBuilt { feature } => Some(feature),
            _ => None,
        }
    }

    /// The conflicting field, when the problem is a conflict.
    pub fn conflicts_with(&self) -> Option<&'static str> {
        match self.problem {
            ConfigProblem::Conflict { with } => Some(with),
            _ => None,
        }
    }

    /// A short text for the kind of problem ("missing", "out of range", …).
    pub fn summary(&self) -> &'static str {
        match self.problem {
            ConfigProblem::Missing => "missing",
            ConfigProblem::Empty => "empty",
            ConfigProblem::OutOfRange { .. } => "out of range",
            ConfigProblem::InvalidValue { .. } => "invalid value",
            ConfigProblem::TooLong { .. } => "too long",
            ConfigProblem::Conflict { .. } => "conflicts with another option",
            ConfigProblem::NotBuilt { .. } => "not built into this firmware",
        }
    }

    /// The Kconfig symbol of the field (`CONFIG_MQTTS_` + upper case).
    pub fn kconfig_symbol(&self) -> heapless::String<48> {
        let mut s = heapless::String::new();
        for c in KCONFIG_PREFIX.chars().chain(self.field.chars()) {
            // Field names are short constants; 48 bytes hold the longest.
            if s.push(c.to_ascii_uppercase()).is_err() {
                break;
            }
        }
        s
    }
}

/// The allowed values of one numeric option: `min..=max`, and also 0 when
/// [`zero_is_off`](Self::zero_is_off). See [`RANGES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionRange {
    /// The option name.
    pub field: &'static str,
    /// The profile the rule applies to; `None`: every profile.
    pub profile: Option<Profile>,
    /// Smallest allowed value (apart from 0 when `zero_is_off`).
    pub min: u32,
    /// Largest allowed value.
    pub max: u32,
    /// 0 is allowed too and turns the feature off.
    pub zero_is_off: bool,
}

impl OptionRange {
    const fn new(field: &'static str, profile: Option<Profile>, min: u32, max: u32) -> Self {
        OptionRange {
            field,
            profile,
            min,
            max,
            zero_is_off: false,
        }
    }

    /// Whether `value` is allowed.
    pub const fn allows(&self, value: u32) -> bool {
        (self.zero_is_off && value == 0) || (value >= self.min && value <= self.max)
    }

    /// `Ok` when `value` is allowed, otherwise [`ConfigProblem::OutOfRange`] with
    /// `min..=max` for [`field`](Self::field).
    pub fn check(&self, value: u32) -> Result<(), ConfigError> {
        if self.allows(value) {
            Ok(())
        } else {
            Err(ConfigError::new(
                self.field,
                ConfigProblem::OutOfRange {
                    min: self.min,
                    max: self.max,
                },
            ))
        }
    }
}

/// `broker_port`: any TCP port but 0.
pub const RANGE_BROKER_PORT: OptionRange = OptionRange::new("broker_port", None, 1, 65_535);
/// `keepalive_s` on Alibaba: the platform's 30..=1200 s (`alink::KEEPALIVE_MIN_S` ..=
/// `alink::KEEPALIVE_MAX_S`; written out so builds without `aliyun` keep the rule as data).
pub const RANGE_KEEPALIVE_S_ALIYUN: OptionRange =
    OptionRange::new("keepalive_s", Some(Profile::Aliyun), 30, 1200);
#[cfg(feature = "aliyun")]
const _: () = assert!(
    RANGE_KEEPALIVE_S_ALIYUN.min == crate::alink::KEEPALIVE_MIN_S as u32
        && RANGE_KEEPALIVE_S_ALIYUN.max == crate::alink::KEEPALIVE_MAX_S as u32
);
/// `keepalive_s` on a self-hosted broker: any MQTT value (0 = no keep-alive, MQTT 3.1.1
/// §3.1.2.10; the session then sends no PINGREQ).
pub const RANGE_KEEPALIVE_S_SELF_HOSTED: OptionRange =
    OptionRange::new("keepalive_s", Some(Profile::SelfHosted), 0, 65_535);
/// `ping_timeout_ms`.
pub const RANGE_PING_TIMEOUT_MS: OptionRange =
    OptionRange::new("ping_timeout_ms", None, 100, 60_000);
/// `connect_timeout_ms`: TCP + TLS + CONNACK.
pub const RANGE_CONNECT_TIMEOUT_MS: OptionRange =
    OptionRange::new("connect_timeout_ms", None, 1_000, 120_000);
/// `inflight_max`: the firmware's in-flight table has this many slots.
pub const RANGE_INFLIGHT_MAX: OptionRange = OptionRange::new("inflight_max", None, 1, 16);
/// `backoff_min_ms`.
pub const RANGE_BACKOFF_MIN_MS: OptionRange =
    OptionRange::new("backoff_min_ms", None, 100, 600_000);
/// `backoff_max_ms`; it must also be at least `backoff_min_ms`.
pub const RANGE_BACKOFF_MAX_MS: OptionRange =
    OptionRange::new("backoff_max_ms", None, 100, 3_600_000);
/// `telemetry_period_s`: 0 (reports only on connect and on change) or 5..=86400.
pub const RANGE_TELEMETRY_PERIOD_S: OptionRange = OptionRange {
    zero_is_off: true,
    ..OptionRange::new("telemetry_period_s", None, 5, 86_400)
};

/// Every numeric rule [`DeviceConfig::validate`] checks, in the order it checks them.
pub const RANGES: [OptionRange; 9] = [
    RANGE_BROKER_PORT,
    RANGE_KEEPALIVE_S_ALIYUN,
    RANGE_KEEPALIVE_S_SELF_HOSTED,
    RANGE_PING_TIMEOUT_MS,
    RANGE_CONNECT_TIMEOUT_MS,
    RANGE_INFLIGHT_MAX,
    RANGE_BACKOFF_MIN_MS,
    RANGE_BACKOFF_MAX_MS,
    RANGE_TELEMETRY_PERIOD_S,
];

/// Longest client id.
pub const MAX_CLIENT_ID_LEN: usize = 64;
/// Longest broker host name.
pub const MAX_HOST_LEN: usize = 253;
/// Longest Alibaba device secret.
pub const MAX_SECRET_LEN: usize = 64;
/// Longest self-hosted user name or password.
pub const MAX_CREDENTIAL_LEN: usize = 128;

/// The device configuration. Text fields borrow from the source (Kconfig constants or the TOML
/// text). See the module docs for names, defaults and rules.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DeviceConfig<'a> {
    /// `aliyun` or `self-hosted`.
    pub profile: Option<&'a str>,
    /// Broker host name (also used for TLS SNI and certificate verification).
    pub broker_host: Option<&'a str>,
    /// Broker TCP port.
    pub broker_port: u16,
    /// Use TLS.
    pub tls: bool,
    /// Verify the broker certificate (false only on purpose, for test brokers).
    pub tls_peer_verify: bool,
    /// MQTT client id (the part before `|` on Alibaba).
    pub client_id: Option<&'a str>,
    /// Alibaba product key.
    pub aliyun_product_key: Option<&'a str>,
    /// Alibaba device name.
    pub aliyun_device_name: Option<&'a str>,
    /// Alibaba device secret (never printed).
    pub aliyun_device_secret: Option<&'a str>,
    /// Alibaba password signature method name.
    pub aliyun_sign_method: &'a str,
    /// Self-hosted MQTT user name.
    pub username: Option<&'a str>,
    /// Self-hosted MQTT password (never printed).
    pub password: Option<&'a str>,
    /// Self-hosted device id in topics `devices/{id}/…`.
    pub device_id: Option<&'a str>,
    /// MQTT keepalive in seconds.
    pub keepalive_s: u16,
    /// Time to wait for PINGRESP, ms.
    pub ping_timeout_ms: u32,
    /// Time allowed for TCP + TLS + CONNACK, ms.
    pub connect_timeout_ms: u32,
    /// Most unacknowledged QoS 1 publishes.
    pub inflight_max: u16,
    /// First reconnect delay, ms.
    pub backoff_min_ms: u32,
    /// Longest reconnect delay, ms.
    pub backoff_max_ms: u32,
    /// Period of state/telemetry reports, s (0 = only on connect and on change).
    pub telemetry_period_s: u32,
    /// MQTT clean session flag.
    pub clean_session: bool,
}

impl Default for DeviceConfig<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> DeviceConfig<'a> {
    /// All defaults; `profile`, `broker_host` and the profile's credentials are still to be set.
    pub const fn new() -> Self {
        DeviceConfig {
            profile: None,
            broker_host: None,
            broker_port: 8883,
            tls: true,
            tls_peer_verify: true,
            client_id: None,
            aliyun_product_key: None,
            aliyun_device_name: None,
            aliyun_device_secret: None,
            aliyun_sign_method: "hmacsha256",
            username: None,
            password: None,
            device_id: None,
            keepalive_s: 60,
            ping_timeout_ms: 10_000,
            connect_timeout_ms: 30_000,
            inflight_max: 4,
            backoff_min_ms: 1_000,
            backoff_max_ms: 120_000,
            telemetry_period_s: 60,
            clean_session: true,
        }
    }

    /// The profile, once [`validate`](Self::validate) has passed (or the error for `profile`:
    /// also [`ConfigProblem::NotBuilt`] for a profile this build left out).
    pub fn profile(&self) -> Result<Profile, ConfigError> {
        let name = required("profile", self.profile)?;
        let profile = Profile::parse(name).ok_or(ConfigError::new(
            "profile",
            ConfigProblem::InvalidValue {
                allowed: Profile::ALLOWED,
            },
        ))?;
        if !profile.is_built() {
            return Err(ConfigError::new(
                "profile",
                ConfigProblem::NotBuilt {
                    feature: profile.feature(),
                },
            ));
        }
        Ok(profile)
    }

    /// Checks every rule; returns the first broken one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        use ConfigProblem::*;
        let err = ConfigError::new;
        let profile = self.profile()?;

        let host = required("broker_host", self.broker_host)?;
        max_len("broker_host", host, MAX_HOST_LEN)?;
        if host.bytes().any(|b| b.is_ascii_whitespace() || b == b'/') {
            return Err(err(
                "broker_host",
                InvalidValue {
                    allowed: "a host name or IP address (no spaces or '/')",
                },
            ));
        }
        RANGE_BROKER_PORT.check(self.broker_port.into())?;

        if let Some(id) = self.client_id {
            not_empty("client_id", id)?;
            max_len("client_id", id, MAX_CLIENT_ID_LEN)?;
        }
        // Only a build with Alibaba support knows (and uses) the sign method.
        #[cfg(feature = "aliyun")]
        if SignMethod::parse(self.aliyun_sign_method).is_none() {
            return Err(err(
                "aliyun_sign_method",
                match SignMethod::feature_of(self.aliyun_sign_method) {
                    Some(feature) => NotBuilt { feature },
                    None => InvalidValue {
                        allowed: SignMethod::ALLOWED,
                    },
                },
            ));
        }

        match profile {
            #[cfg(feature = "aliyun")]
            Profile::Aliyun => self.validate_aliyun()?,
            #[cfg(feature = "selfhosted")]
            Profile::SelfHosted => self.validate_self_hosted()?,
            // `profile()` has refused the profiles this build left out.
            #[allow(unreachable_patterns)]
            _ => {}
        }

        RANGE_PING_TIMEOUT_MS.check(self.ping_timeout_ms)?;
        RANGE_CONNECT_TIMEOUT_MS.check(self.connect_timeout_ms)?;
        RANGE_INFLIGHT_MAX.check(self.inflight_max.into())?;
        RANGE_BACKOFF_MIN_MS.check(self.backoff_min_ms)?;
        if self.backoff_max_ms < self.backoff_min_ms {
            return Err(err(
                "backoff_max_ms",
                Conflict {
                    with: "backoff_min_ms",
                },
            ));
        }
        RANGE_BACKOFF_MAX_MS.check(self.backoff_max_ms)?;
        RANGE_TELEMETRY_PERIOD_S.check(self.telemetry_period_s)
    }

    #[cfg(feature = "aliyun")]
    fn validate_aliyun(&self) -> Result<(), ConfigError> {
        use ConfigProblem::*;
        let err = ConfigError::new;
        if !self.tls {
            return Err(err("tls", Conflict { with: "profile" }));
        }
        const KEY_CHARS: &str = "up to 32 of [A-Za-z0-9_.:@-]";
        for (field, value) in [
            ("aliyun_product_key", self.aliyun_product_key),
            ("aliyun_device_name", self.aliyun_device_name),
        ] {
            let value = required(field, value)?;
            max_len(field, value, crate::alink::topics::MAX_KEY_LEN)?;
            if !value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'@'))
            {
                return Err(err(field, InvalidValue { allowed: KEY_CHARS }));
            }
        }
        let secret = required("aliyun_device_secret", self.aliyun_device_secret)?;
        max_len("aliyun_device_secret", secret, MAX_SECRET_LEN)?;
        if let Some(id) = self.client_id {
            if id.contains(['|', ',']) {
                return Err(err(
                    "client_id",
                    InvalidValue {
                        allowed: "no '|' or ',' (they delimit Alibaba's client id parameters)",
                    },
                ));
            }
        }
        // The platform computes these from the device triple.
        if self.username.is_some() {
            return Err(err("username", Conflict { with: "profile" }));
        }
        if self.password.is_some() {
            return Err(err("password", Conflict { with: "profile" }));
        }
        RANGE_KEEPALIVE_S_ALIYUN.check(self.keepalive_s.into())
    }

    #[cfg(feature = "selfhosted")]
    fn validate_self_hosted(&self) -> Result<(), ConfigError> {
        use ConfigProblem::*;
        let err = ConfigError::new;
        let id = required("device_id", self.device_id)?;
        max_len("device_id", id, crate::selfhosted::MAX_DEVICE_ID_LEN)?;
        if !crate::selfhosted::is_device_id(id) {
            return Err(err(
                "device_id",
                InvalidValue {
                    allowed: "[A-Za-z0-9_-]",
                },
            ));
        }
        if let Some(user) = self.username {
            not_empty("username", user)?;
            max_len("username", user, MAX_CREDENTIAL_LEN)?;
        }
        if let Some(password) = self.password {
            if self.username.is_none() {
                // MQTT 3.1.1 §3.1.2.9: a password needs a user name.
                return Err(err("password", Conflict { with: "username" }));
            }
            max_len("password", password, MAX_CREDENTIAL_LEN)?;
        }
        for (field, value) in [
            ("aliyun_product_key", self.aliyun_product_key),
            ("aliyun_device_name", self.aliyun_device_name),
            ("aliyun_device_secret", self.aliyun_device_secret),
        ] {
            if value.is_some() {
                return Err(err(field, Conflict { with: "profile" }));
            }
        }
        RANGE_KEEPALIVE_S_SELF_HOSTED.check(self.keepalive_s.into())
    }
}

fn required<'a>(field: &'static str, value: Option<&'a str>) -> Result<&'a str, ConfigError> {
    let value = value.ok_or(ConfigError::new(field, ConfigProblem::Missing))?;
    not_empty(field, value)?;
    Ok(value)
}

fn not_empty(field: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() {
        Err(ConfigError::new(field, ConfigProblem::Empty))
    } else {
        Ok(())
    }
}

fn max_len(field: &'static str, value: &str, max: usize) -> Result<(), ConfigError> {
    if value.len() > max {
        Err(ConfigError::new(field, ConfigProblem::TooLong { max }))
    } else {
        Ok(())
    }
}

/// Prints `Some(<redacted>)` or `None`.
struct Redacted(bool);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0 { "Some(<redacted>)" } else { "None" })
    }
}

impl fmt::Debug for DeviceConfig<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceConfig")
            .field("profile", &self.profile)
            .field("broker_host", &self.broker_host)
            .field("broker_port", &self.broker_port)
            .field("tls", &self.tls)
            .field("tls_peer_verify", &self.tls_peer_verify)
            .field("client_id", &self.client_id)
            .field("aliyun_product_key", &self.aliyun_product_key)
            .field("aliyun_device_name", &self.aliyun_device_name)
            .field(
                "aliyun_device_secret",
                &Redacted(self.aliyun_device_secret.is_some()),
            )
            .field("aliyun_sign_method", &self.aliyun_sign_method)
            .field("username", &self.username)
            .field("password", &Redacted(self.password.is_some()))
            .field("device_id", &self.device_id)
            .field("keepalive_s", &self.keepalive_s)
            .field("ping_timeout_ms", &self.ping_timeout_ms)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("inflight_max", &self.inflight_max)
            .field("backoff_min_ms", &self.backoff_min_ms)
            .field("backoff_max_ms", &self.backoff_max_ms)
            .field("telemetry_period_s", &self.telemetry_period_s)
            .field("clean_session", &self.clean_session)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::ConfigProblem::*;
    use super::*;
    #[cfg(all(feature = "aliyun", feature = "selfhosted"))]
    use std::format;

    #[cfg(feature = "aliyun")]
    fn aliyun() -> DeviceConfig<'static> {
        DeviceConfig {
            profile: Some("aliyun"),
            broker_host: Some("iot-06z00abc.mqtt.iothub.aliyuncs.com"),
            aliyun_product_key: Some("a1B2c3D4e5F"),
            aliyun_device_name: Some("relay-board-1"),
            aliyun_device_secret: Some("S3cr3tS3cr3tS3cr3t"),
            ..DeviceConfig::new()
        }
    }

    #[cfg(feature = "selfhosted")]
    fn selfhosted() -> DeviceConfig<'static> {
        DeviceConfig {
            profile: Some("self-hosted"),
            broker_host: Some("mqtt.local"),
            device_id: Some("board-7"),
            username: Some("board"),
            password: Some("hunter2-pass"),
            ..DeviceConfig::new()
        }
    }

    #[cfg(any(feature = "aliyun", feature = "selfhosted"))]
    fn fails(c: DeviceConfig<'_>, field: &str, problem: ConfigProblem) {
        let e = c.validate().unwrap_err();
        assert_eq!((e.field, e.problem), (field, problem), "{c:?}");
    }

    #[cfg(all(feature = "aliyun", feature = "selfhosted"))]
    #[test]
    fn defaults() {
        let c = DeviceConfig::new();
        assert_eq!(c.broker_port, 8883);
        assert!(c.tls && c.tls_peer_verify && c.clean_session);
        assert_eq!(c.keepalive_s, 60);
        assert_eq!(c.aliyun_sign_method, "hmacsha256");
        fails(c, "profile", Missing);
        assert_eq!(aliyun().validate(), Ok(()));
        assert_eq!(selfhosted().validate(), Ok(()));
    }

    #[cfg(all(feature = "aliyun", feature = "selfhosted"))]
    #[test]
    fn profile_rules() {
        fails(
            DeviceConfig {
                profile: Some(""),
                ..aliyun()
            },
            "profile",
            Empty,
        );
        let e = DeviceConfig {
            profile: Some("aws"),
            ..aliyun()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "profile");
        assert_eq!(e.allowed(), Some("aliyun, self-hosted"));
        assert_eq!(Profile::parse("self-hosted"), Some(Profile::SelfHosted));
        assert_eq!(Profile::parse("Aliyun"), None);
        assert_eq!(aliyun().profile(), Ok(Profile::Aliyun));
    }

    #[cfg(all(feature = "aliyun", feature = "selfhosted"))]
    #[test]
    fn common_rules() {
        fails(
            DeviceConfig {
                broker_host: None,
                ..aliyun()
            },
            "broker_host",
            Missing,
        );
        fails(
            DeviceConfig {
                broker_host: Some(""),
                ..aliyun()
            },
            "broker_host",
            Empty,
        );
        let long = "h".repeat(254);
        fails(
            DeviceConfig {
                broker_host: Some(&long),
                ..aliyun()
            },
            "broker_host",
            TooLong { max: 253 },
        );
        assert_eq!(
            DeviceConfig {
                broker_host: Some("a b"),
                ..aliyun()
            }
            .validate()
            .unwrap_err()
            .field,
            "broker_host"
        );
        fails(
            DeviceConfig {
                broker_port: 0,
                ..aliyun()
            },
            "broker_port",
            OutOfRange { min: 1, max: 65535 },
        );
        fails(
            DeviceConfig {
                client_id: Some(""),
                ..selfhosted()
            },
            "client_id",
            Empty,
        );
        let long = "c".repeat(65);
        fails(
            DeviceConfig {
                client_id: Some(&long),
                ..selfhosted()
            },
            "client_id",
            TooLong { max: 64 },
        );
        let e = DeviceConfig {
            aliyun_sign_method: "sha256",
            ..aliyun()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "aliyun_sign_method");
        assert_eq!(e.allowed(), Some("hmacsha256, hmacsha1, hmacmd5"));
        assert_eq!(
            DeviceConfig {
                aliyun_sign_method: "hmacmd5",
                ..aliyun()
            }
            .validate(),
            Ok(())
        );
        fails(
            DeviceConfig {
                ping_timeout_ms: 50,
                ..aliyun()
            },
            "ping_timeout_ms",
            OutOfRange {
                min: 100,
                max: 60_000,
            },
        );
        fails(
            DeviceConfig {
                connect_timeout_ms: 999,
                ..aliyun()
            },
            "connect_timeout_ms",
            OutOfRange {
                min: 1000,
                max: 120_000,
            },
        );
        fails(
            DeviceConfig {
                inflight_max: 0,
                ..aliyun()
            },
            "inflight_max",
            OutOfRange { min: 1, max: 16 },
        );
        fails(
            DeviceConfig {
                inflight_max: 17,
                ..aliyun()
            },
            "inflight_max",
            OutOfRange { min: 1, max: 16 },
        );
        fails(
            DeviceConfig {
                backoff_min_ms: 99,
                ..aliyun()
            },
            "backoff_min_ms",
            OutOfRange {
                min: 100,
                max: 600_000,
            },
        );
        fails(
            DeviceConfig {
                backoff_min_ms: 5000,
                backoff_max_ms: 4000,
                ..aliyun()
            },
            "backoff_max_ms",
            Conflict {
                with: "backoff_min_ms",
            },
        );
        fails(
            DeviceConfig {
                backoff_max_ms: 3_600_001,
                ..aliyun()
            },
            "backoff_max_ms",
            OutOfRange {
                min: 100,
                max: 3_600_000,
            },
        );
        fails(
            DeviceConfig {
                telemetry_period_s: 4,
                ..aliyun()
            },
            "telemetry_period_s",
            OutOfRange {
                min: 5,
                max: 86_400,
            },
        );
        assert_eq!(
            DeviceConfig {
                telemetry_period_s: 0,
                ..aliyun()
            }
            .validate(),
            Ok(())
        );
        assert_eq!(
            DeviceConfig {
                tls_peer_verify: false,
                ..aliyun()
            }
            .validate(),
            Ok(())
        );
    }

    #[cfg(feature = "aliyun")]
    #[test]
    fn aliyun_rules() {
        fails(
            DeviceConfig {
                tls: false,
                ..aliyun()
            },
            "tls",
            Conflict { with: "profile" },
        );
        fails(
            DeviceConfig {
                aliyun_product_key: None,
                ..aliyun()
            },
            "aliyun_product_key",
            Missing,
        );
        fails(
            DeviceConfig {
                aliyun_device_name: Some(""),
                ..aliyun()
            },
            "aliyun_device_name",
            Empty,
        );
        fails(
            DeviceConfig {
                aliyun_device_secret: None,
                ..aliyun()
            },
            "aliyun_device_secret",
            Missing,
        );
        let long = "k".repeat(33);
        fails(
            DeviceConfig {
                aliyun_product_key: Some(&long),
                ..aliyun()
            },
            "aliyun_product_key",
            TooLong { max: 32 },
        );
        assert_eq!(
            DeviceConfig {
                aliyun_device_name: Some("dev/1"),
                ..aliyun()
            }
            .validate()
            .unwrap_err()
            .field,
            "aliyun_device_name"
        );
        let long = "s".repeat(65);
        fails(
            DeviceConfig {
                aliyun_device_secret: Some(&long),
                ..aliyun()
            },
            "aliyun_device_secret",
            TooLong { max: 64 },
        );
        assert_eq!(
            DeviceConfig {
                client_id: Some("a|b"),
                ..aliyun()
            }
            .validate()
            .unwrap_err()
            .field,
            "client_id"
        );
        fails(
            DeviceConfig {
                username: Some("u"),
                ..aliyun()
            },
            "username",
            Conflict { with: "profile" },
        );
        fails(
            DeviceConfig {
                password: Some("p"),
                ..aliyun()
            },
            "password",
            Conflict { with: "profile" },
        );
        for bad in [0, 29, 1201, 65535] {
            fails(
                DeviceConfig {
                    keepalive_s: bad,
                    ..aliyun()
                },
                "keepalive_s",
                OutOfRange { min: 30, max: 1200 },
            );
        }
        for good in [30, 300, 1200] {
            assert_eq!(
                DeviceConfig {
                    keepalive_s: good,
                    ..aliyun()
                }
                .validate(),
                Ok(())
            );
        }
    }

    #[cfg(feature = "selfhosted")]
    #[test]
    fn self_hosted_rules() {
        fails(
            DeviceConfig {
                device_id: None,
                ..selfhosted()
            },
            "device_id",
            Missing,
        );
        fails(
            DeviceConfig {
                device_id: Some(""),
                ..selfhosted()
            },
            "device_id",
            Empty,
        );
        let e = DeviceConfig {
            device_id: Some("a/b"),
            ..selfhosted()
        }
        .validate()
        .unwrap_err();
        assert_eq!((e.field, e.allowed()), ("device_id", Some("[A-Za-z0-9_-]")));
        let long = "d".repeat(65);
        fails(
            DeviceConfig {
                device_id: Some(&long),
                ..selfhosted()
            },
            "device_id",
            TooLong { max: 64 },
        );
        fails(
            DeviceConfig {
                username: None,
                ..selfhosted()
            },
            "password",
            Conflict { with: "username" },
        );
        fails(
            DeviceConfig {
                username: Some(""),
                ..selfhosted()
            },
            "username",
            Empty,
        );
        fails(
            DeviceConfig {
                aliyun_device_secret: Some("x"),
                ..selfhosted()
            },
            "aliyun_device_secret",
            Conflict { with: "profile" },
        );
        for ka in [0, 29, 65535] {
            assert_eq!(
                DeviceConfig {
                    keepalive_s: ka,
                    ..selfhosted()
                }
                .validate(),
                Ok(())
            );
        }
        assert_eq!(
            DeviceConfig {
                tls: false,
                broker_port: 1883,
                ..selfhosted()
            }
            .validate(),
            Ok(())
        );
    }

    /// Every rule of the module table, broken once: each error names the field that broke it
    /// and what is wrong, and the same value is accepted again when the rule is met.
    #[cfg(all(feature = "aliyun", feature = "selfhosted"))]
    #[test]
    fn every_invalid_value_names_its_field() {
        let long = |n| "x".repeat(n);
        let (h254, c65, k33, s65, u129, d65) =
            (long(254), long(65), long(33), long(65), long(129), long(65));
        let range = |min, max| OutOfRange { min, max };
        let key_chars = InvalidValue {
            allowed: "up to 32 of [A-Za-z0-9_.:@-]",
        };
        let a = aliyun();
        let h = selfhosted();
        let host_chars = InvalidValue {
            allowed: "a host name or IP address (no spaces or '/')",
        };
        let table: &[(DeviceConfig<'_>, &str, ConfigProblem)] = &[
            (DeviceConfig { profile: None, ..a }, "profile", Missing),
            (
                DeviceConfig {
                    profile: Some(""),
                    ..a
                },
                "profile",
                Empty,
            ),
            (
                DeviceConfig {
                    profile: Some("selfhosted"),
                    ..h
                },
                "profile",
                InvalidValue {
                    allowed: Profile::ALLOWED,
                },
            ),
            (
                DeviceConfig {
                    broker_host: None,
                    ..h
                },
                "broker_host",
                Missing,
            ),
            (
                DeviceConfig {
                    broker_host: Some(""),
                    ..h
                },
                "broker_host",
                Empty,
            ),
            (
                DeviceConfig {
                    broker_host: Some(&h254),
                    ..h
                },
                "broker_host",
                TooLong { max: 253 },
            ),
            (
                DeviceConfig {
                    broker_host: Some("mqtt\tlocal"),
                    ..h
                },
                "broker_host",
                host_chars,
            ),
            (
                DeviceConfig {
                    broker_host: Some("mqtts://mqtt.local"),
                    ..h
                },
                "broker_host",
                host_chars,
            ),
            (
                DeviceConfig {
                    broker_port: 0,
                    ..h
                },
                "broker_port",
                range(1, 65_535),
            ),
            (
                DeviceConfig { tls: false, ..a },
                "tls",
                Conflict { with: "profile" },
            ),
            (
                DeviceConfig {
                    client_id: Some(""),
                    ..a
                },
                "client_id",
                Empty,
            ),
            (
                DeviceConfig {
                    client_id: Some(&c65),
                    ..a
                },
                "client_id",
                TooLong { max: 64 },
            ),
            (
                DeviceConfig {
                    client_id: Some("dev,1"),
                    ..a
                },
                "client_id",
                InvalidValue {
                    allowed: "no '|' or ',' (they delimit Alibaba's client id parameters)",
                },
            ),
            (
                DeviceConfig {
                    aliyun_product_key: None,
                    ..a
                },
                "aliyun_product_key",
                Missing,
            ),
            (
                DeviceConfig {
                    aliyun_product_key: Some(""),
                    ..a
                },
                "aliyun_product_key",
                Empty,
            ),
            (
                DeviceConfig {
                    aliyun_product_key: Some(&k33),
                    ..a
                },
                "aliyun_product_key",
                TooLong { max: 32 },
            ),
            (
                DeviceConfig {
                    aliyun_product_key: Some("a1 b2"),
                    ..a
                },
                "aliyun_product_key",
                key_chars,
            ),
            (
                DeviceConfig {
                    aliyun_device_name: None,
                    ..a
                },
                "aliyun_device_name",
                Missing,
            ),
            (
                DeviceConfig {
                    aliyun_device_name: Some(&k33),
                    ..a
                },
                "aliyun_device_name",
                TooLong { max: 32 },
            ),
            (
                DeviceConfig {
                    aliyun_device_name: Some("dev#1"),
                    ..a
                },
                "aliyun_device_name",
                key_chars,
            ),
            (
                DeviceConfig {
                    aliyun_device_secret: Some(""),
                    ..a
                },
                "aliyun_device_secret",
                Empty,
            ),
            (
                DeviceConfig {
                    aliyun_device_secret: Some(&s65),
                    ..a
                },
                "aliyun_device_secret",
                TooLong { max: 64 },
            ),
            (
                DeviceConfig {
                    aliyun_sign_method: "",
                    ..a
                },
                "aliyun_sign_method",
                InvalidValue {
                    allowed: SignMethod::ALLOWED,
                },
            ),
            (
                DeviceConfig {
                    aliyun_sign_method: "HmacSha256",
                    ..a
                },
                "aliyun_sign_method",
                InvalidValue {
                    allowed: SignMethod::ALLOWED,
                },
            ),
            (
                DeviceConfig {
                    username: Some("u"),
                    ..a
                },
                "username",
                Conflict { with: "profile" },
            ),
            (
                DeviceConfig {
                    password: Some("p"),
                    ..a
                },
                "password",
                Conflict { with: "profile" },
            ),
            (
                DeviceConfig {
                    username: Some(""),
                    ..h
                },
                "username",
                Empty,
            ),
            (
                DeviceConfig {
                    username: Some(&u129),
                    ..h
                },
                "username",
                TooLong { max: 128 },
            ),
            (
                DeviceConfig {
                    password: Some(&u129),
                    ..h
                },
                "password",
                TooLong { max: 128 },
            ),
            (
                DeviceConfig {
                    username: None,
                    ..h
                },
                "password",
                Conflict { with: "username" },
            ),
            (
                DeviceConfig {
                    device_id: None,
                    ..h
                },
                "device_id",
                Missing,
            ),
            (
                DeviceConfig {
                    device_id: Some(""),
                    ..h
                },
                "device_id",
                Empty,
            ),
            (
                DeviceConfig {
                    device_id: Some(&d65),
                    ..h
                },
                "device_id",
                TooLong { max: 64 },
            ),
            (
                DeviceConfig {
                    device_id: Some("board+7"),
                    ..h
                },
                "device_id",
                InvalidValue {
                    allowed: "[A-Za-z0-9_-]",
                },
            ),
            (
                DeviceConfig {
                    aliyun_product_key: Some("pk"),
                    ..h
                },
                "aliyun_product_key",
                Conflict { with: "profile" },
            ),
            (
                DeviceConfig {
                    aliyun_device_name: Some("dn"),
                    ..h
                },
                "aliyun_device_name",
                Conflict { with: "profile" },
            ),
            (
                DeviceConfig {
                    aliyun_device_secret: Some("s"),
                    ..h
                },
                "aliyun_device_secret",
                Conflict { with: "profile" },
            ),
            (
                DeviceConfig {
                    keepalive_s: 29,
                    ..a
                },
                "keepalive_s",
                range(30, 1200),
            ),
            (
                DeviceConfig {
                    keepalive_s: 1201,
                    ..a
                },
                "keepalive_s",
                range(30, 1200),
            ),
            (
                DeviceConfig {
                    ping_timeout_ms: 99,
                    ..h
                },
                "ping_timeout_ms",
                range(100, 60_000),
            ),
            (
                DeviceConfig {
                    ping_timeout_ms: 60_001,
                    ..h
                },
                "ping_timeout_ms",
                range(100, 60_000),
            ),
            (
                DeviceConfig {
                    connect_timeout_ms: 999,
                    ..h
                },
                "connect_timeout_ms",
                range(1_000, 120_000),
            ),
            (
                DeviceConfig {
                    connect_timeout_ms: 120_001,
                    ..h
                },
                "connect_timeout_ms",
                range(1_000, 120_000),
            ),
            (
                DeviceConfig {
                    inflight_max: 0,
                    ..h
                },
                "inflight_max",
                range(1, 16),
            ),
            (
                DeviceConfig {
                    inflight_max: 17,
                    ..h
                },
                "inflight_max",
                range(1, 16),
            ),
            (
                DeviceConfig {
                    backoff_min_ms: 99,
                    ..h
                },
                "backoff_min_ms",
                range(100, 600_000),
            ),
            (
                DeviceConfig {
                    backoff_min_ms: 600_001,
                    backoff_max_ms: 700_000,
                    ..h
                },
                "backoff_min_ms",
                range(100, 600_000),
            ),
            (
                DeviceConfig {
                    backoff_max_ms: 999,
                    ..h
                },
                "backoff_max_ms",
                Conflict {
                    with: "backoff_min_ms",
                },
            ),
            (
                DeviceConfig {
                    backoff_max_ms: 3_600_001,
                    ..h
                },
                "backoff_max_ms",
                range(100, 3_600_000),
            ),
            (
                DeviceConfig {
                    telemetry_period_s: 4,
                    ..h
                },
                "telemetry_period_s",
                range(5, 86_400),
            ),
            (
                DeviceConfig {
                    telemetry_period_s: 86_401,
                    ..h
                },
                "telemetry_period_s",
                range(5, 86_400),
            ),
        ];
        for (config, field, problem) in table {
            let e = config.validate().unwrap_err();
            assert_eq!((e.field, e.problem), (*field, *problem), "{config:?}");
            assert!(e.kconfig_symbol().ends_with(&field.to_ascii_uppercase()));
        }
        // Every field of the module table that has a rule appears above.
        let fields: std::collections::BTreeSet<&str> = table.iter().map(|(_, f, _)| *f).collect();
        for field in [
            "profile",
            "broker_host",
            "broker_port",
            "tls",
            "client_id",
            "aliyun_product_key",
            "aliyun_device_name",
            "aliyun_device_secret",
            "aliyun_sign_method",
            "username",
            "password",
            "device_id",
            "keepalive_s",
            "ping_timeout_ms",
            "connect_timeout_ms",
            "inflight_max",
            "backoff_min_ms",
            "backoff_max_ms",
            "telemetry_period_s",
        ] {
            assert!(fields.contains(field), "{field} untested");
        }
        // The boundaries themselves are valid.
        for ok in [
            DeviceConfig {
                ping_timeout_ms: 60_000,
                connect_timeout_ms: 120_000,
                inflight_max: 16,
                backoff_min_ms: 600_000,
                backoff_max_ms: 3_600_000,
                telemetry_period_s: 86_400,
                ..h
            },
            DeviceConfig {
                ping_timeout_ms: 100,
                connect_timeout_ms: 1_000,
                inflight_max: 1,
                backoff_min_ms: 100,
                backoff_max_ms: 100,
                telemetry_period_s: 5,
                broker_port: 65_535,
                ..h
            },
            DeviceConfig {
                username: Some(&u129[..128]),
                password: Some(""),
                device_id: Some(&d65[..64]),
                ..h
            },
            DeviceConfig {
                aliyun_product_key: Some(&k33[..32]),
                aliyun_device_secret: Some(&s65[..64]),
                client_id: Some(&c65[..64]),
                ..a
            },
        ] {
            assert_eq!(ok.validate(), Ok(()), "{ok:?}");
        }
    }

    /// `config` with numeric option `field` set to `value`; `None` when the value does not fit
    /// the field's type.
    #[cfg(all(feature = "aliyun", feature = "selfhosted"))]
    fn with(
        mut config: DeviceConfig<'static>,
        field: &str,
        value: u32,
    ) -> Option<DeviceConfig<'static>> {
        let small = u16::try_from(value).ok();
        match field {
            "broker_port" => config.broker_port = small?,
            "keepalive_s" => config.keepalive_s = small?,
            "inflight_max" => config.inflight_max = small?,
            "ping_timeout_ms" => config.ping_timeout_ms = value,
            "connect_timeout_ms" => config.connect_timeout_ms = value,
            "backoff_min_ms" => config.backoff_min_ms = value,
            "backoff_max_ms" => config.backoff_max_ms = value,
            "telemetry_period_s" => config.telemetry_period_s = value,
            _ => panic!("RANGES names unknown option {field}"),
        }
        Some(config)
    }

    /// `validate` enforces exactly the table: both ends pass, one past either end fails with
    /// the table's `min..=max`, 0 passes only where the table allows it.
    #[cfg(all(feature = "aliyun", feature = "selfhosted"))]
    #[test]
    fn validate_enforces_ranges_table() {
        for r in RANGES {
            let base = match r.profile {
                Some(Profile::SelfHosted) => selfhosted(),
                _ => aliyun(),
            };
            // Wide back-off bounds, so that only the option under test can fail.
            let base = DeviceConfig {
                backoff_min_ms: 100,
                backoff_max_ms: 3_600_000,
                ..base
            };
            let out = OutOfRange {
                min: r.min,
                max: r.max,
            };
            for ok in [r.min, r.max, (r.min / 2).saturating_add(r.max / 2)] {
                let c = with(base, r.field, ok).unwrap();
                assert_eq!(c.validate(), Ok(()), "{r:?} {ok}");
                assert!(r.allows(ok));
            }
            if let Some(c) = with(base, r.field, r.max.saturating_add(1)) {
                assert!(r.max < u32::MAX);
                fails(c, r.field, out);
            }
            if r.min > 1 {
                let c = with(base, r.field, r.min - 1).unwrap();
                if r.field == "backoff_max_ms" {
                    // Below its own minimum it is first below backoff_min_ms (≥ 100).
                    fails(
                        c,
                        r.field,
                        Conflict {
                            with: "backoff_min_ms",
                        },
                    );
                } else {
                    fails(c, r.field, out);
                }
            }
            let zero = with(base, r.field, 0).unwrap();
            assert_eq!(
                zero.validate().is_ok(),
                r.zero_is_off || r.min == 0,
                "{r:?}"
            );
            assert_eq!(r.allows(0), r.zero_is_off || r.min == 0, "{r:?}");
        }
        // One rule per option and profile.
        for (i, a) in RANGES.iter().enumerate() {
            for b in &RANGES[i + 1..] {
                let overlap = a.profile.is_none() || b.profile.is_none() || a.profile == b.profile;
                assert!(a.field != b.field || !overlap, "{a:?} {b:?}");
            }
        }
        assert_eq!(RANGE_KEEPALIVE_S_ALIYUN.min, 30);
        assert_eq!(RANGE_KEEPALIVE_S_ALIYUN.max, 1200);
    }

    #[test]
    fn error_helpers() {
        let e = ConfigError::new("keepalive_s", OutOfRange { min: 30, max: 1200 });
        assert_eq!(e.kconfig_symbol().as_str(), "CONFIG_MQTTS_KEEPALIVE_S");
        assert_eq!(e.summary(), "out of range");
        assert_eq!(e.allowed(), None);
        let e = ConfigError::new("tls", Conflict { with: "profile" });
        assert_eq!(e.conflicts_with(), Some("profile"));
    }

    #[cfg(all(feature = "aliyun", feature = "selfhosted"))]
    #[test]
    fn debug_redacts_secrets() {
        let a = format!("{:?}", aliyun());
        assert!(!a.contains("S3cr3t"), "{a}");
        assert!(a.contains("aliyun_device_secret: Some(<redacted>)"));
        assert!(a.contains("relay-board-1"));
        let s = format!("{:?}", selfhosted());
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("password: Some(<redacted>)"));
        assert!(format!("{:?}", DeviceConfig::new()).contains("password: None"));
    }

    /// A profile this build left out is refused naming the option and the missing feature;
    /// one it has passes the profile check.
    #[test]
    fn profile_left_out_of_the_build_names_its_feature() {
        for (name, profile) in [
            ("aliyun", Profile::Aliyun),
            ("self-hosted", Profile::SelfHosted),
        ] {
            let c = DeviceConfig {
                profile: Some(name),
                ..DeviceConfig::new()
            };
            let r = c.profile();
            if profile.is_built() {
                assert_eq!(r, Ok(profile));
            } else {
                let e = r.unwrap_err();
                assert_eq!(e.field, "profile");
                assert_eq!(e.missing_feature(), Some(profile.feature()));
                assert_eq!(e.summary(), "not built into this firmware");
                assert_eq!(c.validate(), Err(e));
            }
        }
        assert_eq!(Profile::Aliyun.is_built(), cfg!(feature = "aliyun"));
        assert_eq!(Profile::SelfHosted.is_built(), cfg!(feature = "selfhosted"));
        assert_eq!(Profile::SelfHosted.feature(), "selfhosted");
    }

    /// A sign method this build left out is refused naming `aliyun_sign_method` and its
    /// feature; an unknown one is still an invalid value.
    #[cfg(feature = "aliyun")]
    #[test]
    fn sign_method_left_out_of_the_build_names_its_feature() {
        for (method, feature) in [
            ("hmacsha256", "sign-hmacsha256"),
            ("hmacsha1", "sign-hmacsha1"),
            ("hmacmd5", "sign-hmacmd5"),
        ] {
            let c = DeviceConfig {
                aliyun_sign_method: method,
                ..aliyun()
            };
            if SignMethod::parse(method).is_some() {
                assert_eq!(c.validate(), Ok(()), "{method}");
            } else {
                let e = c.validate().unwrap_err();
                assert_eq!(e.field, "aliyun_sign_method");
                assert_eq!(e.problem, NotBuilt { feature });
            }
        }
        let e = DeviceConfig {
            aliyun_sign_method: "hmacsha512",
            ..aliyun()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "aliyun_sign_method");
        assert_eq!(e.allowed(), Some(SignMethod::ALLOWED));
        assert_eq!(e.missing_feature(), None);
        #[cfg(not(feature = "sign-hmacsha1"))]
        assert_eq!(
            DeviceConfig {
                aliyun_sign_method: "hmacsha1",
                ..aliyun()
            }
            .validate()
            .unwrap_err()
            .problem,
            NotBuilt {
                feature: "sign-hmacsha1"
            }
        );
    }
}
