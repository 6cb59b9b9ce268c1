//! Run-time options: every option of the menu by name, parsed from text, and the layered
//! configuration (build-time defaults + stored overrides) checked by one validation.
//!
//! Option names are the TOML keys of the host runner and the Kconfig symbols without
//! `CONFIG_MQTTS_`, lower case (see [`crate::config`]). Two options exist only at run time,
//! for Alibaba's dynamic registration: `aliyun_auth` and `aliyun_product_secret` (see
//! [`crate::aliyun::register`]). Per switch, `power_on.<switch>` is `off`, `on` or `last`
//! (see [`crate::power_on`]).
//!
//! Values are text (what the shell and the store carry). [`apply`] turns one value into a
//! field of a [`DeviceConfig`]; [`Layered::effective`] applies every override to the defaults
//! and runs [`DeviceConfig::validate`] on the result, so a value from Kconfig, TOML or the
//! store passes the same rules.

use crate::config::{ConfigError, ConfigProblem, DeviceConfig, OptionRange, Profile, RANGES};
use crate::power_on::PowerOn;
use crate::switch::is_identifier;

/// How the device gets its Alibaba credentials (option `aliyun_auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// `secret`: the DeviceSecret is provisioned (one secret per device).
    #[default]
    DeviceSecret,
    /// `register`: obtain the DeviceSecret by dynamic registration (DeviceName
    /// pre-registered in the console), store it, then log in with it.
    Register,
}

impl AuthMode {
    /// Allowed values of `aliyun_auth`.
    pub const ALLOWED: &'static str = "secret, register";

    /// The option value.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuthMode::DeviceSecret => "secret",
            AuthMode::Register => "register",
        }
    }

    /// Parses an `aliyun_auth` value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "secret" => Some(AuthMode::DeviceSecret),
            "register" => Some(AuthMode::Register),
            _ => None,
        }
    }
}

/// How an option's value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    /// Free text; the empty string unsets an optional text.
    Text,
    /// Text that is never shown (only "set" / "unset").
    Secret,
    /// Decimal integer.
    Int,
    /// `true` or `false`.
    Bool,
}

/// One run-time option. The discriminant is the option's index in [`OptionId::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[allow(missing_docs)] // One variant per option; the names are the option names.
pub enum OptionId {
    Profile,
    BrokerHost,
    BrokerPort,
    Tls,
    TlsPeerVerify,
    ClientId,
    AliyunProductKey,
    AliyunDeviceName,
    AliyunDeviceSecret,
    AliyunSignMethod,
    Username,
    Password,
    DeviceId,
    KeepaliveS,
    PingTimeoutMs,
    ConnectTimeoutMs,
    InflightMax,
    BackoffMinMs,
    BackoffMaxMs,
    TelemetryPeriodS,
    CleanSession,
    AliyunAuth,
    AliyunProductSecret,
}

/// Number of options.
pub const OPTION_COUNT: usize = 23;

impl OptionId {
    /// Every option, in `show` order.
    pub const ALL: [OptionId; OPTION_COUNT] = {
        use OptionId::*;
        [
            Profile,
            BrokerHost,
            BrokerPort,
            Tls,
            TlsPeerVerify,
            ClientId,
            AliyunProductKey,
            AliyunDeviceName,
            AliyunDeviceSecret,
            AliyunSignMethod,
            Username,
            Password,
            DeviceId,
            KeepaliveS,
            PingTimeoutMs,
            ConnectTimeoutMs,
            InflightMax,
            BackoffMinMs,
            BackoffMaxMs,
            TelemetryPeriodS,
            CleanSession,
            AliyunAuth,
            AliyunProductSecret,
        ]
    };

    /// The option's name (TOML key, Kconfig symbol without prefix in lower case).
    pub const fn name(self) -> &'static str {
        use OptionId::*;
        match self {
            Profile => "profile",
            BrokerHost => "broker_host",
            BrokerPort => "broker_port",
            Tls => "tls",
            TlsPeerVerify => "tls_peer_verify",
            ClientId => "client_id",
            AliyunProductKey => "aliyun_product_key",
            AliyunDeviceName => "aliyun_device_name",
            AliyunDeviceSecret => "aliyun_device_secret",
            AliyunSignMethod => "aliyun_sign_method",
            Username => "username",
            Password => "password",
            DeviceId => "device_id",
            KeepaliveS => "keepalive_s",
            PingTimeoutMs => "ping_timeout_ms",
            ConnectTimeoutMs => "connect_timeout_ms",
            InflightMax => "inflight_max",
            BackoffMinMs => "backoff_min_ms",
            BackoffMaxMs => "backoff_max_ms",
            TelemetryPeriodS => "telemetry_period_s",
            CleanSession => "clean_session",
            AliyunAuth => "aliyun_auth",
            AliyunProductSecret => "aliyun_product_secret",
        }
    }

    /// How the value is written.
    pub const fn kind(self) -> OptionKind {
        use OptionId::*;
        match self {
            AliyunDeviceSecret | Password | AliyunProductSecret => OptionKind::Secret,
            BrokerPort | KeepaliveS | PingTimeoutMs | ConnectTimeoutMs | InflightMax
            | BackoffMinMs | BackoffMaxMs | TelemetryPeriodS => OptionKind::Int,
            Tls | TlsPeerVerify | CleanSession => OptionKind::Bool,
            _ => OptionKind::Text,
        }
    }

    /// Whether the value must never be shown.
    pub const fn is_secret(self) -> bool {
        matches!(self.kind(), OptionKind::Secret)
    }

    /// Whether the option has a Kconfig symbol (`CONFIG_MQTTS_` + upper-case name); the
    /// dynamic-registration options exist only at run time and in the host runner's store.
    pub const fn in_kconfig(self) -> bool {
        !matches!(self, OptionId::AliyunAuth | OptionId::AliyunProductSecret)
    }

    /// Index in [`ALL`](Self::ALL).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The option called `name`.
    pub fn from_name(name: &str) -> Option<OptionId> {
        OptionId::ALL.iter().copied().find(|o| o.name() == name)
    }
}

/// Prefix of the per-switch power-on keys (`power_on.Relay1`).
pub const POWER_ON_PREFIX: &str = "power_on.";
/// Prefix of the remembered switch states kept for `last` (`last.Relay1`); written by the
/// device, not settable from the shell.
pub const LAST_STATE_PREFIX: &str = "last.";

/// A key of the shell and of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key<'a> {
    /// One of the options.
    Option(OptionId),
    /// The power-on rule of the named switch.
    PowerOn(&'a str),
    /// The remembered state of the named switch (`last.<switch>`).
    LastState(&'a str),
}

impl<'a> Key<'a> {
    /// Parses a key name; `None` for anything else (unknown option, bad switch name).
    pub fn parse(name: &'a str) -> Option<Key<'a>> {
        if let Some(switch) = name.strip_prefix(POWER_ON_PREFIX) {
            return is_identifier(switch).then_some(Key::PowerOn(switch));
        }
        if let Some(switch) = name.strip_prefix(LAST_STATE_PREFIX) {
            return is_identifier(switch).then_some(Key::LastState(switch));
        }
        OptionId::from_name(name).map(Key::Option)
    }

    /// Whether the value must never be shown.
    pub fn is_secret(&self) -> bool {
        matches!(self, Key::Option(o) if o.is_secret())
    }

    /// The allowed values, checking only the text of `value` (no cross-option rule).
    pub fn check_value(&self, value: &str) -> Result<(), ConfigError> {
        match self {
            Key::Option(id) => {
                let mut config = DeviceConfig::new();
                apply(&mut config, &mut Extra::new(), *id, value)?;
                // Rules that hold for every profile can be checked on the value alone.
                let number = match shown(&config, &Extra::new(), *id) {
                    Shown::Int(n) if id.kind() == OptionKind::Int => Some(n),
                    _ => None,
                };
                match number {
                    Some(n) => RANGES
                        .iter()
                        .filter(|r| r.field == id.name() && r.profile.is_none())
                        .try_for_each(|r| r.check(n)),
                    None => Ok(()),
                }
            }
            Key::PowerOn(_) => PowerOn::parse(value).map(|_| ()).ok_or(ConfigError {
                field: "power_on",
                problem: ConfigProblem::InvalidValue {
                    allowed: PowerOn::ALLOWED,
                },
            }),
            Key::LastState(_) => parse_bool("last", value).map(|_| ()),
        }
    }
}

/// Run-time options that are not fields of [`DeviceConfig`] (dynamic registration).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Extra<'a> {
    /// How the device gets its Alibaba credentials.
    pub aliyun_auth: AuthMode,
    /// Alibaba ProductSecret (dynamic registration only; never printed).
    pub aliyun_product_secret: Option<&'a str>,
}

impl Default for Extra<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl Extra<'_> {
    /// Defaults: the device secret is provisioned (`aliyun_auth = secret`), no product secret.
    pub const fn new() -> Self {
        Extra {
            aliyun_auth: AuthMode::DeviceSecret,
            aliyun_product_secret: None,
        }
    }
}

impl core::fmt::Debug for Extra<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Extra")
            .field("aliyun_auth", &self.aliyun_auth)
            .field(
                "aliyun_product_secret",
                &self.aliyun_product_secret.map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Allowed text for booleans.
pub const BOOL_ALLOWED: &str = "true, false";

fn parse_bool(field: &'static str, text: &str) -> Result<bool, ConfigError> {
    match text {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ConfigError {
            field,
            problem: ConfigProblem::InvalidValue {
                allowed: BOOL_ALLOWED,
            },
        }),
    }
}

/// The numeric rule of `field` for `profile` (the profile's own rule first).
fn range_of(field: &str, profile: Option<Profile>) -> Option<OptionRange> {
    RANGES
        .iter()
        .find(|r| r.field == field && (r.profile.is_none() || r.profile == profile))
        .copied()
}

/// Parses a decimal number that must fit `type_max`; anything else is reported with the
/// option's allowed range (or `0..=type_max` when it has none).
fn parse_int(
    field: &'static str,
    text: &str,
    type_max: u32,
    profile: Option<Profile>,
) -> Result<u32, ConfigError> {
    let value = (!text.is_empty() && text.len() <= 10 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse::<u64>().ok())
        .flatten()
        .filter(|v| *v <= u64::from(type_max))
        .and_then(|v| u32::try_from(v).ok());
    value.ok_or_else(|| {
        let (min, max) = range_of(field, profile)
            .map(|r| (r.min, r.max))
            .unwrap_or((0, type_max));
        ConfigError {
            field,
            problem: ConfigProblem::OutOfRange { min, max },
        }
    })
}

/// Sets option `id` of `config` / `extra` from `text`. Checks only the value's syntax (a
/// number, a boolean, one of the names); [`DeviceConfig::validate`] checks the rest. An
/// optional text set to `""` becomes unset (as an empty Kconfig string).
pub fn apply<'a>(
    config: &mut DeviceConfig<'a>,
    extra: &mut Extra<'a>,
    id: OptionId,
    text: &'a str,
) -> Result<(), ConfigError> {
    use OptionId::*;
    let field = id.name();
    let profile = config.profile.and_then(crate::config::Profile::parse);
    let opt = (!text.is_empty()).then_some(text);
    let u16_of = |t: &str| parse_int(field, t, u32::from(u16::MAX), profile).map(|v| v as u16);
    let u32_of = |t: &str| parse_int(field, t, u32::MAX, profile);
    match id {
        Profile => config.profile = Some(text),
        BrokerHost => config.broker_host = Some(text),
        BrokerPort => config.broker_port = u16_of(text)?,
        Tls => config.tls = parse_bool(field, text)?,
        TlsPeerVerify => config.tls_peer_verify = parse_bool(field, text)?,
        ClientId => config.client_id = opt,
        AliyunProductKey => config.aliyun_product_key = opt,
        AliyunDeviceName => config.aliyun_device_name = opt,
        AliyunDeviceSecret => config.aliyun_device_secret = opt,
        AliyunSignMethod => config.aliyun_sign_method = text,
        Username => config.username = opt,
        Password => config.password = opt,
        DeviceId => config.device_id = opt,
        KeepaliveS => config.keepalive_s = u16_of(text)?,
        PingTimeoutMs => config.ping_timeout_ms = u32_of(text)?,
        ConnectTimeoutMs => config.connect_timeout_ms = u32_of(text)?,
        InflightMax => config.inflight_max = u16_of(text)?,
        BackoffMinMs => config.backoff_min_ms = u32_of(text)?,
        BackoffMaxMs => config.backoff_max_ms = u32_of(text)?,
        TelemetryPeriodS => config.telemetry_period_s = u32_of(text)?,
        CleanSession => config.clean_session = parse_bool(field, text)?,
        AliyunAuth => {
            extra.aliyun_auth = AuthMode::parse(text).ok_or(ConfigError {
                field,
                problem: ConfigProblem::InvalidValue {
                    allowed: AuthMode::ALLOWED,
                },
            })?
        }
        AliyunProductSecret => extra.aliyun_product_secret = opt,
    }
    Ok(())
}

/// Where an effective value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The build-time default (Kconfig on the device, the TOML file on the host).
    Default,
    /// A stored override (settings in flash, the host's store file).
    Stored,
}

impl Source {
    /// `default` or `stored`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::Stored => "stored",
        }
    }
}

/// Stored overrides: the value text of each option, or `None` (use the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Overrides<'a> {
    values: [Option<&'a str>; OPTION_COUNT],
}

impl<'a> Overrides<'a> {
    /// No overrides.
    pub const fn new() -> Self {
        Overrides {
            values: [None; OPTION_COUNT],
        }
    }

    /// The stored text of `id`.
    pub fn get(&self, id: OptionId) -> Option<&'a str> {
        self.values[id.index()]
    }

    /// Sets (or with `None` removes) the override of `id`, unchecked; see
    /// [`Layered::set`] for the checked way.
    pub fn put(&mut self, id: OptionId, value: Option<&'a str>) {
        self.values[id.index()] = value;
    }

    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        self.values.iter().all(Option::is_none)
    }

    /// The overridden options and their text, in [`OptionId::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (OptionId, &'a str)> + '_ {
        OptionId::ALL
            .iter()
            .filter_map(|id| self.get(*id).map(|v| (*id, v)))
    }
}

/// The placeholder device secret used to validate a configuration whose secret the device
/// will obtain by dynamic registration. It is never used to sign: [`Effective::registration_pending`]
/// tells the caller to register first.
const PENDING_SECRET: &str = "registration-pending";

/// The effective configuration: defaults with the overrides applied, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effective<'a> {
    /// The device configuration.
    pub config: DeviceConfig<'a>,
    /// The run-time-only options.
    pub extra: Extra<'a>,
    /// `aliyun_auth` asks for registration and no device secret is known yet: register
    /// before connecting (`config.aliyun_device_secret` is `None`).
    pub registration_pending: bool,
}

/// Build-time defaults plus stored overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layered<'a> {
    /// Defaults of [`DeviceConfig`] fields (Kconfig or TOML).
    pub defaults: DeviceConfig<'a>,
    /// Defaults of the run-time-only options.
    pub extra_defaults: Extra<'a>,
    /// The stored values.
    pub overrides: Overrides<'a>,
}

impl<'a> Layered<'a> {
    /// `defaults` with no overrides.
    pub const fn new(defaults: DeviceConfig<'a>, extra_defaults: Extra<'a>) -> Self {
        Layered {
            defaults,
            extra_defaults,
            overrides: Overrides::new(),
        }
    }

    /// Applies every override to the defaults and validates the result with
    /// [`DeviceConfig::validate`] (plus the registration rules).
    pub fn effective(&self) -> Result<Effective<'a>, ConfigError> {
        let mut config = self.defaults;
        let mut extra = self.extra_defaults;
        // The profile first: integer errors report the profile's own range.
        if let Some(p) = self.overrides.get(OptionId::Profile) {
            apply(&mut config, &mut extra, OptionId::Profile, p)?;
        }
        for (id, text) in self.overrides.iter() {
            apply(&mut config, &mut extra, id, text)?;
        }
        #[cfg(feature = "aliyun")]
        let pending = crate::aliyun::register::check(&config, &extra)?;
        // Without the Alibaba profile there is nothing to register.
        #[cfg(not(feature = "aliyun"))]
        let pending = match extra.aliyun_auth {
            AuthMode::DeviceSecret => false,
            AuthMode::Register => {
                return Err(ConfigError {
                    field: "aliyun_auth",
                    problem: ConfigProblem::NotBuilt { feature: "aliyun" },
                })
            }
        };
        if pending {
            DeviceConfig {
                aliyun_device_secret: Some(PENDING_SECRET),
                ..config
            }
            .validate()?;
        } else {
            config.validate()?;
        }
        Ok(Effective {
            config,
            extra,
            registration_pending: pending,
        })
    }

    /// Sets the override of `id` to `value` if the whole result is valid; otherwise nothing
    /// changes and the error names the option at fault.
    pub fn set(&mut self, id: OptionId, value: &'a str) -> Result<Effective<'a>, ConfigError> {
        self.change(&[(id, Some(value))])
    }

    /// Removes the override of `id` if the result (with the default) is valid.
    pub fn unset(&mut self, id: OptionId) -> Result<Effective<'a>, ConfigError> {
        self.change(&[(id, None)])
    }

    /// Applies several changes at once (`None` removes an override), all or nothing.
    pub fn change(
        &mut self,
        changes: &[(OptionId, Option<&'a str>)],
    ) -> Result<Effective<'a>, ConfigError> {
        let mut next = *self;
        for (id, value) in changes {
            next.overrides.put(*id, *value);
        }
        let effective = next.effective()?;
        *self = next;
        Ok(effective)
    }

    /// Where the effective value of `id` comes from.
    pub fn source(&self, id: OptionId) -> Source {
        if self.overrides.get(id).is_some() {
            Source::Stored
        } else {
            Source::Default
        }
    }
}

/// One line of `show`: an option, its effective value and where it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShowLine<'a> {
    /// The option.
    pub id: OptionId,
    /// The value as shown (secrets only as set / unset).
    pub value: Shown<'a>,
    /// Default or stored.
    pub source: Source,
}

/// A value as `show` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown<'a> {
    /// Text.
    Text(&'a str),
    /// A number.
    Int(u32),
    /// A boolean.
    Bool(bool),
    /// An optional text or secret that is not set.
    Unset,
    /// A secret that is set (its value is never shown).
    SecretSet,
}

impl core::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Shown::Text(t) => f.write_str(t),
            Shown::Int(n) => write!(f, "{n}"),
            Shown::Bool(b) => write!(f, "{b}"),
            Shown::Unset => f.write_str("<unset>"),
            Shown::SecretSet => f.write_str("<set>"),
        }
    }
}

impl core::fmt::Display for ShowLine<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{:<22} = {} ({})",
            self.id.name(),
            self.value,
            self.source.as_str()
        )
    }
}

/// The `show` lines of `config` / `extra` (normally [`Layered::effective`]'s result; for
/// an invalid configuration, the defaults with the overrides applied unchecked).
pub fn show<'a>(
    layered: &Layered<'a>,
    config: &DeviceConfig<'a>,
    extra: &Extra<'a>,
) -> [ShowLine<'a>; OPTION_COUNT] {
    OptionId::ALL.map(|id| ShowLine {
        id,
        value: shown(config, extra, id),
        source: layered.source(id),
    })
}

/// The shown value of `id`.
pub fn shown<'a>(config: &DeviceConfig<'a>, extra: &Extra<'a>, id: OptionId) -> Shown<'a> {
    use OptionId::*;
    let text = |t: Option<&'a str>| t.map(Shown::Text).unwrap_or(Shown::Unset);
    let secret = |t: Option<&str>| {
        if t.is_some() {
            Shown::SecretSet
        } else {
            Shown::Unset
        }
    };
    match id {
        Profile => text(config.profile),
        BrokerHost => text(config.broker_host),
        BrokerPort => Shown::Int(config.broker_port.into()),
        Tls => Shown::Bool(config.tls),
        TlsPeerVerify => Shown::Bool(config.tls_peer_verify),
        ClientId => text(config.client_id),
        AliyunProductKey => text(config.aliyun_product_key),
        AliyunDeviceName => text(config.aliyun_device_name),
        AliyunDeviceSecret => secret(config.aliyun_device_secret),
        AliyunSignMethod => Shown::Text(config.aliyun_sign_method),
        Username => text(config.username),
        Password => secret(config.password),
        DeviceId => text(config.device_id),
        KeepaliveS => Shown::Int(config.keepalive_s.into()),
        PingTimeoutMs => Shown::Int(config.ping_timeout_ms),
        ConnectTimeoutMs => Shown::Int(config.connect_timeout_ms),
        InflightMax => Shown::Int(config.inflight_max.into()),
        BackoffMinMs => Shown::Int(config.backoff_min_ms),
        BackoffMaxMs => Shown::Int(config.backoff_max_ms),
        TelemetryPeriodS => Shown::Int(config.telemetry_period_s),
        CleanSession => Shown::Bool(config.clean_session),
        AliyunAuth => Shown::Text(extra.aliyun_auth.as_str()),
        AliyunProductSecret => secret(extra.aliyun_product_secret),
    }
}

#[cfg(test)]
mod tests {
    // Some imports serve only the tests that need both profiles.
    #![cfg_attr(
        not(all(feature = "aliyun", feature = "selfhosted")),
        allow(unused_imports)
    )]
    use super::*;
    use std::format;
    use std::string::ToString;

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

    #[test]
    fn names_round_trip_and_cover_every_config_field() {
        for (i, id) in OptionId::ALL.iter().enumerate() {
            assert_eq!(id.index(), i);
            assert_eq!(OptionId::from_name(id.name()), Some(*id));
            assert_eq!(Key::parse(id.name()), Some(Key::Option(*id)));
        }
        assert_eq!(OptionId::from_name("Broker_Port"), None);
        // Every field of DeviceConfig's Debug output is an option.
        let debug = format!("{:?}", DeviceConfig::new());
        for id in OptionId::ALL.iter().filter(|o| o.in_kconfig()) {
            assert!(debug.contains(&format!("{}: ", id.name())), "{id:?}");
        }
        let fields = debug.matches(": ").count();
        assert_eq!(
            fields,
            OptionId::ALL.iter().filter(|o| o.in_kconfig()).count()
        );
        assert_eq!(Key::parse("power_on.Relay1"), Some(Key::PowerOn("Relay1")));
        assert_eq!(Key::parse("last.LED"), Some(Key::LastState("LED")));
        assert_eq!(Key::parse("power_on."), None);
        assert_eq!(Key::parse("power_on.a b"), None);
        assert_eq!(Key::parse("nonsense"), None);
        // Profile-independent ranges are checked on the value alone.
        let port = Key::Option(OptionId::BrokerPort);
        assert_eq!(port.check_value("0").unwrap_err().field, "broker_port");
        assert_eq!(port.check_value("1"), Ok(()));
        let keepalive = Key::Option(OptionId::KeepaliveS);
        assert_eq!(keepalive.check_value("5"), Ok(()), "self-hosted allows it");
    }

    #[test]
    fn values_are_parsed_per_kind() {
        let mut c = selfhosted();
        let mut e = Extra::new();
        apply(&mut c, &mut e, OptionId::BrokerPort, "18883").unwrap();
        assert_eq!(c.broker_port, 18883);
        let err = apply(&mut c, &mut e, OptionId::BrokerPort, "70000").unwrap_err();
        assert_eq!(err.field, "broker_port");
        assert_eq!(
            err.problem,
            ConfigProblem::OutOfRange { min: 1, max: 65535 }
        );
        for bad in ["", "-1", "+5", "0x10", "1 2", "99999999999"] {
            let err = apply(&mut c, &mut e, OptionId::PingTimeoutMs, bad).unwrap_err();
            assert_eq!(
                (err.field, err.problem),
                (
                    "ping_timeout_ms",
                    ConfigProblem::OutOfRange {
                        min: 100,
                        max: 60_000
                    }
                ),
                "{bad:?}"
            );
        }
        // The profile's own keep-alive range.
        let err = apply(&mut c, &mut e, OptionId::KeepaliveS, "x").unwrap_err();
        assert_eq!(
            err.problem,
            ConfigProblem::OutOfRange { min: 0, max: 65535 }
        );
        let mut a = DeviceConfig {
            profile: Some("aliyun"),
            ..DeviceConfig::new()
        };
        let err = apply(&mut a, &mut e, OptionId::KeepaliveS, "x").unwrap_err();
        assert_eq!(
            err.problem,
            ConfigProblem::OutOfRange { min: 30, max: 1200 }
        );
        apply(&mut c, &mut e, OptionId::Tls, "false").unwrap();
        assert!(!c.tls);
        let err = apply(&mut c, &mut e, OptionId::Tls, "yes").unwrap_err();
        assert_eq!(err.allowed(), Some(BOOL_ALLOWED));
        apply(&mut c, &mut e, OptionId::Password, "").unwrap();
        assert_eq!(c.password, None);
        apply(&mut c, &mut e, OptionId::AliyunAuth, "register").unwrap();
        assert_eq!(e.aliyun_auth, AuthMode::Register);
        let err = apply(&mut c, &mut e, OptionId::AliyunAuth, "x").unwrap_err();
        assert_eq!(err.allowed(), Some(AuthMode::ALLOWED));
    }

    // Uses both profiles: runs in the default (all-features) build.
    #[cfg(all(feature = "aliyun", feature = "selfhosted"))]
    #[test]
    fn layered_set_is_all_or_nothing_and_tracks_the_source() {
        let mut l = Layered::new(selfhosted(), Extra::new());
        assert_eq!(l.effective().unwrap().config, selfhosted());
        assert_eq!(l.source(OptionId::BrokerPort), Source::Default);
        let e = l.set(OptionId::BrokerPort, "18883").unwrap();
        assert_eq!(e.config.broker_port, 18883);
        assert_eq!(l.source(OptionId::BrokerPort), Source::Stored);
        // A bad value: refused, naming the option; nothing changes.
        let before = l;
        let err = l.set(OptionId::KeepaliveS, "70000").unwrap_err();
        assert_eq!(err.field, "keepalive_s");
        assert_eq!(l, before);
        // A value that is fine alone but breaks a cross-option rule: refused too.
        let err = l.set(OptionId::BackoffMaxMs, "500").unwrap_err();
        assert_eq!(err.field, "backoff_max_ms");
        assert_eq!(l, before);
        // Several changes at once make a profile switch possible.
        l.change(&[
            (OptionId::Profile, Some("aliyun")),
            (OptionId::Username, Some("")),
            (OptionId::Password, Some("")),
            (OptionId::DeviceId, Some("")),
            (OptionId::AliyunProductKey, Some("a1B2c3D4e5F")),
            (OptionId::AliyunDeviceName, Some("relay-1")),
            (OptionId::AliyunDeviceSecret, Some("s3cr3t")),
        ])
        .unwrap();
        assert_eq!(l.effective().unwrap().config.profile, Some("aliyun"));
        // Unset returns to the default, if the result is valid.
        let err = l.unset(OptionId::Profile).unwrap_err();
        assert_eq!(err.field, "device_id");
        l.unset(OptionId::BrokerPort).unwrap();
        assert_eq!(l.source(OptionId::BrokerPort), Source::Default);
        assert_eq!(l.effective().unwrap().config.broker_port, 8883);
    }

    // Uses both profiles: runs in the default (all-features) build.
    #[cfg(all(feature = "aliyun", feature = "selfhosted"))]
    #[test]
    fn show_never_prints_secrets() {
        let mut l = Layered::new(selfhosted(), Extra::new());
        l.set(OptionId::Password, "n3w-pass").unwrap();
        let e = l.effective().unwrap();
        let mut text = std::string::String::new();
        for line in show(&l, &e.config, &e.extra) {
            text.push_str(&line.to_string());
            text.push('\n');
        }
        assert!(
            !text.contains("n3w-pass") && !text.contains("hunter2"),
            "{text}"
        );
        assert!(
            text.contains("password               = <set> (stored)"),
            "{text}"
        );
        assert!(
            text.contains("broker_port            = 8883 (default)"),
            "{text}"
        );
        assert!(
            text.contains("aliyun_product_secret  = <unset> (default)"),
            "{text}"
        );
        assert!(
            text.contains("aliyun_auth            = secret (default)"),
            "{text}"
        );
        assert_eq!(text.lines().count(), OPTION_COUNT);
    }
}
