//! Stored options on the host: a file store in the core's record format
//! ([`mqtts_core::store`]), the `mqtts-sim provision` subcommand, and the layering that
//! `mqtts-sim run --store FILE` puts over the TOML file's values.
//!
//! ```text
//! mqtts-sim provision --store FILE [--config FILE] set KEY VALUE [KEY VALUE …]
//! mqtts-sim provision --store FILE [--config FILE] unset KEY [KEY …]
//! mqtts-sim provision --store FILE [--config FILE] show
//! mqtts-sim provision --store FILE factory-reset
//! ```
//!
//! The TOML file plays the part of Kconfig: its values are the defaults, stored values override
//! them, and both pass [`mqtts_core::config::DeviceConfig::validate`]. With `--config`, `set`
//! and `unset` check the whole result and refuse (storing nothing) when it breaks a rule;
//! without it they check the value alone. Secrets are shown only as `<set>`/`<unset>`.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use mqtts_core::config::DeviceConfig;
use mqtts_core::options::{self, Effective, Extra, Key, Layered, OptionId};
use mqtts_core::power_on::{LastKeeper, PowerOn, DEFAULT_HOLD_MS};
use mqtts_core::store::{self, Problem, Record, MAX_RECORD_LEN};

use crate::host_config::{describe, ConfigReport, HostConfig};

/// A store kept in one file: records appended, compacted on `set`/`unset`.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    /// The store in `path` (need not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileStore { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored bytes; a missing file is an empty store.
    pub fn read(&self) -> Result<Vec<u8>, String> {
        match fs::read(&self.path) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(format!("cannot read store {}: {e}", self.path.display())),
        }
    }

    /// Replaces the store with `bytes` (a new file renamed over the old one, so a crash
    /// leaves either the old or the new store).
    pub fn replace(&self, bytes: &[u8]) -> Result<(), String> {
        let tmp = self.path.with_extension("tmp");
        let write = || -> io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| format!("cannot write store {}: {e}", self.path.display()))
    }

    /// Appends one record (like a write to the settings log in flash).
    pub fn append(&self, record: &Record<'_>) -> Result<(), String> {
        let mut buf = [0u8; MAX_RECORD_LEN];
        let n = store::encode(record, &mut buf).map_err(|e| format!("record: {e:?}"))?;
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| format!("cannot open store {}: {e}", self.path.display()))?;
        f.write_all(&buf[..n])
            .and_then(|_| f.sync_data())
            .map_err(|e| format!("cannot write store {}: {e}", self.path.display()))
    }
}

/// A store problem as a message (names the key, never the value).
pub fn problem_text(p: &Problem<'_>) -> String {
    match p {
        Problem::Damaged { offset, error } => {
            format!("store: {} at byte {offset}: ignored", error.as_str())
        }
        Problem::UnknownKey { offset, key } => {
            format!("store: unknown option `{key}` at byte {offset}: ignored")
        }
        Problem::InvalidValue { key, error } => format!(
            "store: stored value of `{key}` refused ({}): the default is used",
            describe(error, None).message
        ),
        Problem::TooManySwitchKeys { key } => format!("store: too many switch keys; `{key}` ignored"),
        Problem::Rejected(e) => format!(
            "store: the stored options together are invalid ({}): all stored options ignored, running on defaults",
            describe(e, None)
        ),
    }
}

/// What the store adds to a TOML configuration, owned.
#[derive(Debug, Clone, Default)]
pub struct Provisioned {
    /// Problems found in the store (already described).
    pub problems: Vec<String>,
    /// `aliyun_auth = register` and no device secret yet.
    pub registration_pending: bool,
    /// The ProductSecret (only for registration). Never print it.
    pub product_secret: Option<String>,
    /// Power-on rule per switch name.
    pub power_on: Vec<(String, PowerOn)>,
    /// Remembered state per switch name.
    pub last: Vec<(String, bool)>,
}

impl Provisioned {
    /// The power-on rule of `switch`.
    pub fn power_on(&self, switch: &str) -> PowerOn {
        self.power_on
            .iter()
            .find(|(s, _)| s == switch)
            .map(|(_, p)| *p)
            .unwrap_or_default()
    }

    /// The state of each switch at power-on.
    pub fn initial_states(&self, names: &[String]) -> Vec<bool> {
        names
            .iter()
            .map(|n| {
                let last = self.last.iter().find(|(s, _)| s == n).map(|(_, b)| *b);
                self.power_on(n).initial(last)
            })
            .collect()
    }
}

/// `host` with every option set from `c` (the effective configuration).
fn to_host(host: &HostConfig, c: &DeviceConfig<'_>) -> HostConfig {
    let s = |v: Option<&str>| v.map(str::to_string);
    HostConfig {
        profile: s(c.profile),
        broker_host: s(c.broker_host),
        broker_port: Some(c.broker_port.into()),
        tls: Some(c.tls),
        tls_peer_verify: Some(c.tls_peer_verify),
        client_id: s(c.client_id),
        aliyun_product_key: s(c.aliyun_product_key),
        aliyun_device_name: s(c.aliyun_device_name),
        aliyun_device_secret: s(c.aliyun_device_secret),
        aliyun_sign_method: Some(c.aliyun_sign_method.to_string()),
        username: s(c.username),
        password: s(c.password),
        device_id: s(c.device_id),
        keepalive_s: Some(c.keepalive_s.into()),
        ping_timeout_ms: Some(c.ping_timeout_ms.into()),
        connect_timeout_ms: Some(c.connect_timeout_ms.into()),
        inflight_max: Some(c.inflight_max.into()),
        backoff_min_ms: Some(c.backoff_min_ms.into()),
        backoff_max_ms: Some(c.backoff_max_ms.into()),
        telemetry_period_s: Some(c.telemetry_period_s.into()),
        clean_session: Some(c.clean_session),
        ..host.clone()
    }
}

/// The TOML configuration with the store's values over it, validated like the device does it:
/// damaged or invalid records are reported in [`Provisioned::problems`] and ignored.
pub fn layer(host: &HostConfig, bytes: &[u8]) -> Result<(HostConfig, Provisioned), ConfigReport> {
    let defaults = Layered::new(host.unchecked_device_config()?, Extra::new());
    let mut problems = Vec::new();
    let loaded = store::load(defaults, bytes, |p| problems.push(problem_text(&p)));
    let effective = loaded.layered.effective().map_err(|e| describe(&e, None))?;
    let Effective {
        config,
        extra,
        registration_pending,
    } = effective;
    Ok((
        to_host(host, &config),
        Provisioned {
            problems,
            registration_pending,
            product_secret: extra.aliyun_product_secret.map(str::to_string),
            power_on: loaded
                .power_on
                .iter()
                .map(|(s, p)| (s.to_string(), *p))
                .collect(),
            last: loaded
                .last
                .iter()
                .map(|(s, b)| (s.to_string(), *b))
                .collect(),
        },
    ))
}

/// Writes the `last` state of switches to the store once it has held for the hold time
/// ([`LastKeeper`]); switches with another power-on rule are not written.
#[derive(Debug)]
pub struct LastWriter {
    store: FileStore,
    keepers: Vec<(String, LastKeeper)>,
}

impl LastWriter {
    /// Keepers for the switches of `provisioned` whose rule is `last`.
    pub fn new(
        store: FileStore,
        provisioned: &Provisioned,
        names: &[String],
        hold_ms: u32,
    ) -> Self {
        let keepers = names
            .iter()
            .filter(|n| provisioned.power_on(n) == PowerOn::Last)
            .map(|n| {
                let stored = provisioned
                    .last
                    .iter()
                    .find(|(s, _)| s == n)
                    .map(|(_, b)| *b);
                (n.clone(), LastKeeper::new(hold_ms, stored))
            })
            .collect();
        LastWriter { store, keepers }
    }

    /// The default hold time.
    pub const DEFAULT_HOLD_MS: u32 = DEFAULT_HOLD_MS;

    /// Feeds the current switch states at `now_ms`; writes what has held long enough.
    /// Returns the writes made, as `(switch, state)`.
    pub fn observe(&mut self, now_ms: u64, states: &[(String, bool)]) -> Vec<(String, bool)> {
        let mut written = Vec::new();
        for (name, keeper) in &mut self.keepers {
            if let Some((_, on)) = states.iter().find(|(n, _)| n == name) {
                keeper.observe(now_ms, *on);
            }
            if let Some(on) = keeper.poll(now_ms) {
                let key = format!("{}{name}", options::LAST_STATE_PREFIX);
                let value = if on { "true" } else { "false" };
                match self.store.append(&Record {
                    key: &key,
                    value: Some(value),
                }) {
                    Ok(()) => written.push((name.clone(), on)),
                    Err(e) => log::warn!("{e}"),
                }
            }
        }
        written
    }
}

/// Why `provision` failed: exit code (1 failure, 2 usage or refused value) and message.
pub type CliError = (u8, String);

fn usage(message: impl Into<String>) -> CliError {
    (2, message.into())
}

/// `mqtts-sim provision …` (arguments after `provision`).
pub fn cli(args: &[String]) -> Result<(), CliError> {
    let mut store = None;
    let mut config = None;
    let mut words = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--store" | "--config" => {
                let v = it
                    .next()
                    .ok_or_else(|| usage(format!("{a} needs a value")))?;
                if a == "--store" {
                    store = Some(v.clone());
                } else {
                    config = Some(v.clone());
                }
            }
            _ => words.push(a.as_str()),
        }
    }
    let store = FileStore::new(store.ok_or_else(|| usage("provision needs --store FILE"))?);
    let host = config
        .map(|p| HostConfig::load(Path::new(&p)))
        .transpose()
        .map_err(|e| usage(e.to_string()))?;
    let bytes = store.read().map_err(|e| (1, e))?;
    match words.as_slice() {
        ["show"] => show(&store, host.as_ref(), &bytes),
        ["factory-reset"] => {
            store.replace(&[]).map_err(|e| (1, e))?;
            println!("store {}: all stored options erased", store.path().display());
            Ok(())
        }
        ["set", pairs @ ..] if !pairs.is_empty() && pairs.len() % 2 == 0 => {
            let changes: Vec<(&str, Option<&str>)> =
                pairs.chunks(2).map(|p| (p[0], Some(p[1]))).collect();
            change(&store, host.as_ref(), &bytes, &changes)
        }
        ["unset", keys @ ..] if !keys.is_empty() => {
            let changes: Vec<(&str, Option<&str>)> = keys.iter().map(|k| (*k, None)).collect();
            change(&store, host.as_ref(), &bytes, &changes)
        }
        _ => Err(usage(
            "provision: expected `set KEY VALUE [KEY VALUE …]`, `unset KEY [KEY …]`, `show` or `factory-reset`",
        )),
    }
}

fn key_of(name: &str) -> Result<Key<'_>, CliError> {
    match Key::parse(name) {
        Some(Key::LastState(_)) => Err(usage(format!(
            "option `{name}`: kept by the device, not settable"
        ))),
        Some(k) => Ok(k),
        None => Err(usage(format!(
            "unknown option `{name}`; allowed: {}, power_on.<switch>",
            OptionId::ALL.map(OptionId::name).join(", ")
        ))),
    }
}

/// The current records of the store (valid ones, last per key) as owned pairs.
fn current(bytes: &[u8]) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for entry in store::records(bytes) {
        if let store::Entry::Record { record, .. } = entry {
            let value = record.value.map(str::to_string);
            match out.iter_mut().find(|(k, _)| k == record.key) {
                Some(slot) => slot.1 = value,
                None => out.push((record.key.to_string(), value)),
            }
        }
    }
    out.retain(|(_, v)| v.is_some());
    out
}

fn change(
    store: &FileStore,
    host: Option<&HostConfig>,
    bytes: &[u8],
    changes: &[(&str, Option<&str>)],
) -> Result<(), CliError> {
    let mut next = current(bytes);
    let refused = |key: &Key<'_>, v: &str, e| {
        usage(describe(&e, (!key.is_secret()).then_some(v)).to_string())
    };
    // With the TOML defaults, option values are checked in the whole configuration (the
    // profile's own ranges, cross-option rules); otherwise each value alone.
    let mut options_changed = Vec::new();
    for (name, value) in changes {
        let key = key_of(name)?;
        match (key, value, host) {
            (Key::Option(id), _, Some(_)) => options_changed.push((id, *value)),
            (_, Some(v), _) => key.check_value(v).map_err(|e| refused(&key, v, e))?,
            _ => {}
        }
    }
    if let Some(host) = host {
        let defaults = Layered::new(
            host.unchecked_device_config()
                .map_err(|e| usage(e.to_string()))?,
            Extra::new(),
        );
        let mut layered = store::load(defaults, bytes, |_| {}).layered;
        layered.change(&options_changed).map_err(|e| {
            let value = options_changed
                .iter()
                .find(|(id, _)| id.name() == e.field)
                .and_then(|(id, v)| v.filter(|_| !id.is_secret()));
            usage(describe(&e, value).to_string())
        })?;
    }
    for (name, value) in changes {
        next.retain(|(k, _)| k != name);
        if let Some(v) = value {
            next.push((name.to_string(), Some(v.to_string())));
        }
    }
    let mut out = Vec::new();
    for (k, v) in &next {
        let mut buf = [0u8; MAX_RECORD_LEN];
        let n = store::encode(
            &Record {
                key: k,
                value: v.as_deref(),
            },
            &mut buf,
        )
        .map_err(|e| usage(format!("option `{k}`: cannot be stored ({e:?})")))?;
        out.extend_from_slice(&buf[..n]);
    }
    if let Some(host) = host {
        // The whole result must be valid; the store is written only then.
        let (_, provisioned) = layer(host, &out).map_err(|e| usage(e.to_string()))?;
        if let Some(p) = provisioned.problems.first() {
            return Err(usage(format!("refused, nothing stored: {p}")));
        }
    }
    store.replace(&out).map_err(|e| (1, e))?;
    for (name, value) in changes {
        let shown = match value {
            None => "unset (default)".to_string(),
            Some(_) if Key::parse(name).is_some_and(|k| k.is_secret()) => "<set>".to_string(),
            Some(v) => format!("{v:?}"),
        };
        println!("{name} = {shown} (stored)");
    }
    if host.is_none() {
        println!("note: checked each value alone; `run --store` checks the whole configuration");
    }
    Ok(())
}

fn show(store: &FileStore, host: Option<&HostConfig>, bytes: &[u8]) -> Result<(), CliError> {
    let Some(host) = host else {
        println!(
            "stored in {} (give --config for effective values):",
            store.path().display()
        );
        for (k, v) in current(bytes) {
            let secret = Key::parse(&k).is_some_and(|k| k.is_secret());
            let v = v.unwrap_or_default();
            println!("{k:<22} = {}", if secret { "<set>" } else { v.as_str() });
        }
        return Ok(());
    };
    let defaults = Layered::new(
        host.unchecked_device_config()
            .map_err(|e| usage(e.to_string()))?,
        Extra::new(),
    );
    let mut problems = Vec::new();
    let loaded = store::load(defaults, bytes, |p| problems.push(problem_text(&p)));
    for p in &problems {
        eprintln!("warning: {p}");
    }
    let effective = loaded.layered.effective();
    let (config, extra) = match &effective {
        Ok(e) => (e.config, e.extra),
        Err(e) => {
            eprintln!("warning: {}", describe(e, None));
            (loaded.layered.defaults, loaded.layered.extra_defaults)
        }
    };
    for line in options::show(&loaded.layered, &config, &extra) {
        println!("{line}");
    }
    for (s, p) in &loaded.power_on {
        println!("{:<22} = {} (stored)", format!("power_on.{s}"), p.as_str());
    }
    for (s, b) in &loaded.last {
        println!("{:<22} = {b} (stored by the device)", format!("last.{s}"));
    }
    Ok(())
}

/// What `run --store` keeps while the device runs.
#[derive(Debug)]
pub struct RunStore {
    /// What the store held at start.
    pub provisioned: Provisioned,
    /// Power-on state per switch, by index.
    pub initial_states: Vec<bool>,
    writer: LastWriter,
    started: std::time::Instant,
}

impl RunStore {
    /// Feeds the device's switch states; writes `last` states that held long enough.
    pub fn observe(&mut self, switches: &[(String, bool)]) -> Vec<(String, bool)> {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.writer.observe(now, switches)
    }
}

/// For `run --store FILE`: the TOML configuration with the store over it (problems are logged
/// as warnings, the affected options use their defaults), the switches' power-on states and
/// the writer of `last` states. `hold_ms`: how long a state must hold before it is stored.
pub fn prepare_run(
    host: HostConfig,
    store_path: &str,
    hold_ms: u32,
) -> Result<(HostConfig, RunStore), ConfigReport> {
    let store = FileStore::new(store_path);
    let report = |message: String| ConfigReport {
        field: None,
        message,
    };
    let bytes = store.read().map_err(report)?;
    let (mut merged, mut provisioned) = layer(&host, &bytes)?;
    for p in &provisioned.problems {
        log::warn!("{p}");
    }
    if provisioned.registration_pending {
        let secret = provisioned.product_secret.clone().unwrap_or_default();
        register(&merged, &secret, &store).map_err(report)?;
        let bytes = store.read().map_err(report)?;
        (merged, provisioned) = layer(&host, &bytes)?;
    }
    let names = merged.switch_names()?;
    let initial_states = provisioned.initial_states(&names);
    let writer = LastWriter::new(store, &provisioned, &names, hold_ms);
    Ok((
        merged,
        RunStore {
            provisioned,
            initial_states,
            writer,
            started: std::time::Instant::now(),
        },
    ))
}

/// Capacity of the registration client id.
const REGISTER_CLIENT_ID: usize = 160;

/// Dynamic registration (`aliyun_auth = register`): one TLS connection signed with the
/// ProductSecret, driven by the core's [`mqtts_core::aliyun::exchange::Exchange`] (the same
/// machine the firmware runs), then the DeviceSecret is stored. One attempt, no retry (like
/// the SDK, which turns reconnect off): a refusal is reported once, clearly. Neither secret
/// is ever printed.
pub fn register(host: &HostConfig, product_secret: &str, store: &FileStore) -> Result<(), String> {
    use mqtts_core::aliyun::exchange::{Exchange, ExchangeError};
    use mqtts_core::aliyun::register::{self as reg, RegisterKind, RegisterReply};

    let pk = host.aliyun_product_key.as_deref().unwrap_or_default();
    let dn = host.aliyun_device_name.as_deref().unwrap_or_default();
    let broker = host.broker_host.as_deref().unwrap_or_default();
    let random = crate::sim_device::XorShift::from_time().next_u32();
    let creds: mqtts_core::aliyun::sign::MqttCredentials<REGISTER_CLIENT_ID, 128> =
        reg::register_credentials(
            pk,
            dn,
            product_secret,
            random,
            reg::instance_id(broker),
            RegisterKind::Register,
        )
        .map_err(|e| format!("registration: cannot sign the request: {e:?}"))?;
    let mut t = crate::tls_transport::TlsTransport::new(host.transport_options(false))
        .map_err(|e| format!("registration: {e}"))?;
    let started = std::time::Instant::now();
    let now = || started.elapsed().as_millis() as u64;
    let timeout = host.connect_timeout_ms.unwrap_or(30_000).max(0) as u64;
    let mut exchange = Exchange::<4096>::new(
        &creds.client_id,
        &creds.username,
        &creds.password,
        RegisterKind::Register,
        timeout,
    )
    .map_err(|e| format!("registration: {e:?}"))?;
    log::info!("registration: {dn}&{pk} connecting to {broker}");
    let secret = loop {
        match exchange.poll(&mut t, now()) {
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(5)),
            Ok(Some(RegisterReply::DeviceSecret(secret))) => break secret,
            Ok(Some(RegisterReply::Token { .. })) | Err(ExchangeError::WrongKind) => {
                return Err("registration: unexpected regnwl reply".into())
            }
            Err(ExchangeError::Refused(code)) => {
                return Err(format!(
                    "registration refused by the platform (CONNACK {code:?}): check \
                     `aliyun_product_secret`, `aliyun_product_key`, `aliyun_device_name` and \
                     that dynamic registration is enabled for the product; not retrying"
                ))
            }
            Err(ExchangeError::Timeout) => {
                return Err("registration: no reply from the platform in time".into())
            }
            Err(ExchangeError::Transport(mqtts_core::transport::TransportError::Closed)) => {
                return Err("registration: the platform closed the connection".into())
            }
            Err(e) => return Err(format!("registration: {e:?}")),
        }
    };
    store.append(&Record {
        key: OptionId::AliyunDeviceSecret.name(),
        value: Some(secret),
    })?;
    log::info!("registration: device secret received and stored");
    Ok(())
}
