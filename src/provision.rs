// SPDX-License-Identifier: Apache-2.0

//! Provisioning on the device (issue 11): options stored with Zephyr settings (subtree `mqtts`,
//! one `mqtts_core::store` record per key), the `mqtts` shell command, and the identity (MAC
//! address and default `device_id`) derived from the MCU's unique ID.
//!
//! Everything that decides is in the core: the grammar (`shell::parse_args`), the option rules
//! (`options`), the record format and what a damaged record means (`store`), the identity
//! (`firmware::identity`). This module moves bytes between them and `src/provision_shim.c`.
//!
//! Staging: `set` / `unset` append a record to a RAM log ([`ShellState`]); `show` and `apply`
//! read the flash and put the log after it, so the same `store::load` gives the result. `apply`
//! refuses an invalid whole, writes the log as one setting (the journal), then each staged key
//! (`settings_save_one` / `settings_delete`), deletes the journal and reboots
//! (`sys_reboot(SYS_REBOOT_COLD)`): the boot path is then the only place where a configuration
//! is taken up, so there is no second, run-time path to get wrong, and a boot that finds a
//! journal finishes the apply first ([`finish_interrupted_apply`]).

use core::fmt::Write;

use mqtts_core::config::DeviceConfig;
use mqtts_core::firmware::identity;
use mqtts_core::options::{self, Extra, Key, Layered, OptionId};
use mqtts_core::power_on::{LastKeeper, PowerOn, DEFAULT_HOLD_MS};
use mqtts_core::shell::{self, Command};
use mqtts_core::store::{self, Loaded, Problem, Record};
use mqtts_core::switch::{SwitchBank, SwitchOutputs};
use zephyr::sync::Mutex;

use crate::config::DEVICE;
use crate::ffi::{self, ShellRef};

/// Bytes of stored records read at boot and by the shell (23 options of typically < 40 bytes
/// each, plus power-on keys; a value of the maximum 256 bytes still fits several times).
pub const STORE_CAP: usize = 2048;
/// Bytes of staged (not yet applied) changes.
pub const PENDING_CAP: usize = 1024;

/// The build-time defaults (Kconfig) the stored options override.
pub fn defaults() -> Layered<'static> {
    Layered::new(DEVICE, Extra::new())
}

/// Reads every stored record into `buf`; returns the length. Oversized values are logged and
/// left out; a failed read is an error (the boot then runs on the defaults, `apply` refuses).
pub fn read_stored(buf: &mut [u8]) -> Result<usize, ffi::Errno> {
    let (len, skipped) = ffi::prov_load(buf)?;
    if skipped > 0 {
        log::warn!(
            "settings: {} stored value(s) did not fit in the {} B buffer and were ignored",
            skipped,
            buf.len()
        );
    }
    Ok(len)
}

/// Logs one store problem (never a value: it may be a secret).
pub fn log_problem(p: &Problem<'_>) {
    match p {
        Problem::Damaged { offset, error } => log::warn!(
            "settings: {} at byte {}: ignored, that option keeps its default",
            error.as_str(),
            offset
        ),
        Problem::UnknownKey { key, .. } => log::warn!("settings: unknown key `{}` ignored", key),
        Problem::InvalidValue { key, error } => log::warn!(
            "settings: stored `{}` is invalid ({}): default kept",
            key,
            error.summary()
        ),
        Problem::TooManySwitchKeys { key } => {
            log::warn!("settings: too many switch keys, `{}` ignored", key)
        }
        Problem::Rejected(e) => log::error!(
            "settings: the stored options together are invalid ({}: {}): all ignored, \
             running on the Kconfig defaults",
            e.field,
            e.summary()
        ),
    }
}

/// The MCU unique ID (up to 16 bytes) and its length; `None` without a hwinfo driver.
fn unique_id(buf: &mut [u8; 16]) -> Option<&[u8]> {
    match ffi::prov_unique_id(buf) {
        Ok(n) if n > 0 => buf.get(..n),
        Ok(_) => None,
        Err(e) => {
            log::warn!("hwinfo: no unique ID ({})", e);
            None
        }
    }
}

/// Sets the derived MAC address unless the devicetree fixes one (or there is no W5500). Must
/// run before DHCP starts: it takes the interface down and up.
pub fn set_identity_mac() {
    if ffi::prov_mac_fixed() {
        log::info!("MAC address from the devicetree (local-mac-address) kept");
        return;
    }
    let mut buf = [0u8; 16];
    let Some(uid) = unique_id(&mut buf) else {
        log::error!("no unique ID: the MAC address stays as the driver left it");
        return;
    };
    match identity::mac_from_unique_id(uid) {
        Ok(mac) => {
            let mut text = [0u8; 17];
            match ffi::prov_set_mac(&mac) {
                Ok(()) => log::info!("MAC {} (derived from the MCU unique ID)", {
                    identity::format_mac(&mac, &mut text)
                }),
                Err(e) => log::error!("setting the MAC address failed ({})", e),
            }
        }
        Err(e) => log::error!("unique ID unusable for a MAC: {:?}", e),
    }
}

/// The default self-hosted `device_id` from the unique ID, if one can be derived.
pub fn derived_device_id() -> Option<identity::DeviceIdText> {
    let mut buf = [0u8; 16];
    identity::device_id_from_unique_id(unique_id(&mut buf)?).ok()
}

/// Fills in `device_id` from `derived` when the self-hosted profile has none.
pub fn with_device_id<'a>(
    mut config: DeviceConfig<'a>,
    derived: Option<&'a identity::DeviceIdText>,
) -> DeviceConfig<'a> {
    if config.device_id.is_none() && config.profile != Some("aliyun") {
        config.device_id = derived.map(identity::DeviceIdText::as_str);
    }
    config
}

// --- Switch power-on state ------------------------------------------------------------------

/// One `last` keeper per switch (`None`: the switch's rule is not `last`).
pub type Keepers<const N: usize> = [Option<LastKeeper>; N];

/// Sets each switch to its power-on state (`power_on.<switch>`, `last.<switch>` from `loaded`)
/// and returns the keepers of the `last` switches.
pub fn power_on<O: SwitchOutputs, const N: usize>(
    loaded: &Loaded<'_>,
    switches: &mut SwitchBank<'_, N>,
    outputs: &mut O,
) -> Keepers<N> {
    let mut keepers = [None; N];
    let names = *switches.names();
    for (i, name) in names.iter().enumerate() {
        let rule = loaded.power_on(name);
        let last = loaded.last(name);
        let on = rule.initial(last);
        if on {
            if let Err(e) = switches.apply_index(i, true, outputs) {
                log::warn!("power-on state of {}: {:?}", name, e);
            }
        }
        if rule == PowerOn::Last {
            keepers[i] = Some(LastKeeper::new(DEFAULT_HOLD_MS, last));
        }
        log::info!("switch {}: power_on {} -> {}", name, rule.as_str(), on);
    }
    keepers
}

/// Feeds the switch states to the keepers, stores `last.<switch>` when one says so; returns
/// the next time a keeper needs a pass.
pub fn keep_last<const N: usize>(
    keepers: &mut Keepers<N>,
    switches: &SwitchBank<'_, N>,
    now: u64,
) -> Option<u64> {
    let mut next: Option<u64> = None;
    for (i, (name, state)) in switches.iter().enumerate() {
        let Some(keeper) = keepers.get_mut(i).and_then(Option::as_mut) else {
            continue;
        };
        keeper.observe(now, state);
        if let Some(value) = keeper.poll(now) {
            store_last(name, value);
        }
        next = match (next, keeper.next_wakeup()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    next
}

/// Stores `key = value` as one core store record under `mqtts/<key>` (`settings_save_one`);
/// the record buffer is wiped afterwards, since it may have held a secret.
pub fn save(key: &str, value: &str) -> Result<(), ffi::Errno> {
    let mut record = [0u8; store::MAX_RECORD_LEN];
    let written = store::encode(
        &Record {
            key,
            value: Some(value),
        },
        &mut record,
    )
    .map_err(|_| -22) // EINVAL: key or value longer than a record holds
    .and_then(|n| ffi::prov_save(key, &record[..n]));
    record.fill(0);
    written
}

fn store_last(name: &str, value: bool) {
    let mut key = [0u8; store::MAX_KEY_LEN];
    let prefix = options::LAST_STATE_PREFIX.as_bytes();
    let total = prefix.len() + name.len();
    let Some(slot) = key.get_mut(..total) else {
        return log::warn!("switch name too long to store its state");
    };
    slot[..prefix.len()].copy_from_slice(prefix);
    slot[prefix.len()..].copy_from_slice(name.as_bytes());
    let Ok(key) = core::str::from_utf8(&key[..total]) else {
        return;
    };
    let text = if value { "true" } else { "false" };
    let written = save(key, text);
    match written {
        Ok(()) => log::debug!("stored {} = {}", key, text),
        Err(e) => log::warn!("storing {} failed ({})", key, e),
    }
}

// --- The shell ---------------------------------------------------------------------------------

/// The shell thread's state: a read buffer and the staged records.
pub struct ShellState {
    buf: [u8; STORE_CAP + PENDING_CAP],
    pending: [u8; PENDING_CAP],
    pending_len: usize,
}

impl ShellState {
    const fn new() -> Self {
        ShellState {
            buf: [0; STORE_CAP + PENDING_CAP],
            pending: [0; PENDING_CAP],
            pending_len: 0,
        }
    }

    /// Stored records followed by the staged ones, in `buf`; returns the length. Fails when a
    /// stored value could not be read: validating the staged changes against the defaults
    /// alone would check a configuration the device does not have. (Values that do not fit
    /// are left out with a warning, as at boot.)
    fn combined(&mut self) -> Result<usize, ffi::Errno> {
        let len = read_stored(&mut self.buf[..STORE_CAP])?;
        let p = self.pending_len;
        self.buf[len..len + p].copy_from_slice(&self.pending[..p]);
        Ok(len + p)
    }

    /// [`Self::combined`], or tells the shell why the stored options could not be read;
    /// `outcome` prefixes the message with what that means for the command.
    fn combined_or_say(&mut self, sh: ShellRef, outcome: &str) -> Option<usize> {
        match self.combined() {
            Ok(len) => Some(len),
            Err(e) => {
                say(
                    sh,
                    format_args!(
                        "{}reading the stored options failed ({}); `mqtts factory-reset` erases them",
                        outcome, e
                    ),
                );
                None
            }
        }
    }

    fn stage(&mut self, key: &str, value: Option<&str>) -> Result<(), &'static str> {
        let at = self.pending_len;
        let n = store::encode(&Record { key, value }, &mut self.pending[at..])
            .map_err(|_| "too many staged changes: `mqtts apply` or reboot to drop them")?;
        self.pending_len += n;
        Ok(())
    }

    fn clear(&mut self) {
        self.pending.fill(0);
        self.pending_len = 0;
    }
}

/// Only the shell thread locks it (the shell runs one command at a time).
static SHELL: Mutex<ShellState> = Mutex::new(ShellState::new());

/// A line of shell output, formatted without the heap.
struct Line {
    buf: [u8; 160],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

fn say(sh: ShellRef, args: core::fmt::Arguments<'_>) {
    let mut line = Line {
        buf: [0; 160],
        len: 0,
    };
    let _ = line.write_fmt(args);
    ffi::prov_print(sh, &line.buf[..line.len]);
}

/// `mqtts <words...>` from the shell.
pub fn command(sh: ShellRef, words: &[&str]) {
    let mut state = SHELL.lock().unwrap_or_else(|never| match never {});
    let cmd = match shell::parse_args(words) {
        Ok(c) => c,
        Err(e) => return say(sh, format_args!("{}", e)),
    };
    match cmd {
        Command::Show => show(sh, &mut state),
        Command::Set {
            key,
            value: Some(_),
        } if key.is_secret() => say(
            sh,
            format_args!(
                "secrets are not typed on the command line: `mqtts set {}` and enter the value \
                 when asked",
                words[1]
            ),
        ),
        Command::Set { key, value: None } if key.is_secret() => {
            if let Err(e) = ffi::prov_read_secret(sh, words[1]) {
                say(sh, format_args!("cannot read the value ({})", e));
            }
        }
        Command::Set { key, .. } | Command::Unset { key } if is_build_time(key) => say(
            sh,
            format_args!(
                "{} is fixed when the firmware is built on this device (CONFIG_MQTTS_TLS, \
                 CONFIG_MQTTS_TLS_PEER_VERIFY): change it in menuconfig and rebuild",
                words[1]
            ),
        ),
        Command::Set { value, .. } => staged(sh, state.stage(words[1], value), words[1]),
        Command::Unset { .. } => staged(sh, state.stage(words[1], None), words[1]),
        Command::Apply => apply(sh, &mut state),
        Command::FactoryReset => match ffi::prov_factory_reset() {
            Ok(n) => {
                state.clear();
                say(sh, format_args!("{} stored value(s) erased; rebooting", n));
                ffi::prov_reboot();
            }
            Err(e) => say(sh, format_args!("factory reset failed ({})", e)),
        },
    }
}

/// Options the socket shim takes from Kconfig at build time (`src/socket_shim.c`: the TLS
/// socket, the CA set and the verification mode are compiled in), so a stored value could not
/// take effect: the shell refuses them and [`ignore_build_time`] drops stored ones at boot.
pub fn is_build_time(key: Key<'_>) -> bool {
    matches!(
        key,
        Key::Option(OptionId::Tls) | Key::Option(OptionId::TlsPeerVerify)
    )
}

/// Drops stored values of [`is_build_time`] options from the overrides (with a warning), so the
/// effective configuration says what the socket really does.
pub fn ignore_build_time(overrides: &mut options::Overrides<'_>) {
    for id in [OptionId::Tls, OptionId::TlsPeerVerify] {
        if overrides.get(id).is_some() {
            log::warn!(
                "stored {} ignored: fixed at build time on this device (Kconfig)",
                id.name()
            );
            overrides.put(id, None);
        }
    }
}

fn staged(sh: ShellRef, r: Result<(), &'static str>, key: &str) {
    match r {
        Ok(()) => say(sh, format_args!("{} staged; `mqtts apply` stores it", key)),
        Err(e) => say(sh, format_args!("{}", e)),
    }
}

/// A secret typed after `mqtts set <secret>` (no echo; see provision_shim.c).
pub fn secret_line(sh: ShellRef, key: &str, value: &str) {
    let mut state = SHELL.lock().unwrap_or_else(|never| match never {});
    let Some(k) = Key::parse(key) else {
        return say(sh, format_args!("unknown option `{}`", key));
    };
    if let Err(e) = k.check_value(value) {
        return say(sh, format_args!("{}", shell::ShellError::Value(e)));
    }
    let r = state.stage(key, Some(value));
    staged(sh, r, key);
}

fn show(sh: ShellRef, state: &mut ShellState) {
    let pending = state.pending_len;
    let Some(len) = state.combined_or_say(sh, "") else {
        return;
    };
    let loaded = store::load(defaults(), &state.buf[..len], |p| {
        say(sh, format_args!("note: {:?}", ProblemText(&p)))
    });
    match loaded.layered.effective() {
        Ok(e) => {
            for line in options::show(&loaded.layered, &e.config, &e.extra) {
                say(sh, format_args!("{}", line));
            }
        }
        Err(e) => say(
            sh,
            format_args!("defaults invalid: {}: {}", e.field, e.summary()),
        ),
    }
    for (s, p) in &loaded.power_on {
        say(sh, format_args!("power_on.{:<13} = {}", s, p.as_str()));
    }
    if pending > 0 {
        say(
            sh,
            format_args!("(staged changes included: `mqtts apply` stores them)"),
        );
    }
}

/// `{:?}` of a problem without any value text.
struct ProblemText<'p, 'a>(&'p Problem<'a>);

impl core::fmt::Debug for ProblemText<'_, '_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Problem::Damaged { offset, error } => {
                write!(f, "{} at byte {}", error.as_str(), offset)
            }
            Problem::UnknownKey { key, .. } => write!(f, "unknown key `{}`", key),
            Problem::InvalidValue { key, error } => write!(f, "`{}`: {}", key, error.summary()),
            Problem::TooManySwitchKeys { key } => write!(f, "too many switch keys (`{}`)", key),
            Problem::Rejected(e) => write!(f, "invalid together: {}: {}", e.field, e.summary()),
        }
    }
}

fn apply(sh: ShellRef, state: &mut ShellState) {
    if state.pending_len == 0 {
        return say(sh, format_args!("nothing staged"));
    }
    let Some(len) = state.combined_or_say(sh, "not applied, nothing stored: ") else {
        return;
    };
    let invalid = {
        let mut rejected = None;
        let loaded = store::load(defaults(), &state.buf[..len], |p| {
            if let Problem::Rejected(e) = p {
                rejected = Some(e);
            }
        });
        rejected.or_else(|| loaded.layered.effective().err())
    };
    if let Some(e) = invalid {
        let err = shell::ShellError::Value(e);
        return say(sh, format_args!("not applied, nothing stored: {}", err));
    }
    // Never half-applied: the whole change set goes to flash as one setting first (the
    // journal, written atomically by the backend), then key by key. A reset in between leaves
    // the journal, and the next boot writes the keys again before anything is loaded
    // ([`finish_interrupted_apply`]).
    let change_set = &state.pending[..state.pending_len];
    if let Err(e) = ffi::prov_journal_save(change_set) {
        return say(
            sh,
            format_args!(
                "not applied, nothing stored: writing the change set failed ({})",
                e
            ),
        );
    }
    match write_records(change_set) {
        Ok(()) => {
            if let Err(e) = ffi::prov_journal_delete() {
                log::warn!(
                    "settings: removing the apply journal failed ({}); boot retries",
                    e
                );
            }
            say(sh, format_args!("stored; rebooting to use it"));
        }
        Err((key, e)) => say(
            sh,
            format_args!(
                "writing `{}` failed ({}); rebooting: the boot finishes the apply",
                key, e
            ),
        ),
    }
    state.clear();
    ffi::prov_reboot();
}

/// Writes each record of a change set in order (`settings_save_one` / `settings_delete`);
/// a later record of a key overwrites an earlier one in flash too. Stops at the first
/// failure and names its key.
fn write_records(change_set: &[u8]) -> Result<(), (&str, ffi::Errno)> {
    let mut record = [0u8; store::MAX_RECORD_LEN];
    let mut result = Ok(());
    for entry in store::records(change_set) {
        let store::Entry::Record { record: r, .. } = entry else {
            continue;
        };
        let written = match r.value {
            Some(_) => match store::encode(&r, &mut record) {
                Ok(n) => ffi::prov_save(r.key, &record[..n]),
                Err(_) => Err(-22),
            },
            None => ffi::prov_delete(r.key),
        };
        if let Err(e) = written {
            result = Err((r.key, e));
            break;
        }
    }
    record.fill(0); // it may have held a secret
    result
}

/// What the boot found of an `mqtts apply` that a reset interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Journal {
    /// No journal: the stored options are complete.
    None,
    /// A journal was found and its keys are now written: the stored options are complete.
    Completed,
    /// The journal could not be read or written: the stored options may be half of an apply,
    /// so the boot runs on the Kconfig defaults (the journal stays for the next boot).
    Unfinished,
}

/// Finishes an `mqtts apply` that a reset interrupted: writes the journal's keys again, then
/// deletes it. Runs at boot before the stored options are read. A journal that is not a
/// sequence of whole store records (it was written in one piece, so it is foreign) is reported
/// and deleted without writing any of it.
pub fn finish_interrupted_apply() -> Journal {
    // On the application thread's stack, at boot before the device runs (its stack budget is
    // the device's poll; this returns before). Not the shell's buffers: boards without the
    // shell (CONFIG_SHELL=n) still finish a journal an earlier image left.
    let mut buf = [0u8; PENDING_CAP];
    let result = replay_journal(&mut buf);
    buf.fill(0); // the change set may hold a secret
    result
}

fn replay_journal(buf: &mut [u8]) -> Journal {
    let len = match ffi::prov_journal_load(buf) {
        Ok((0, 0)) => return Journal::None,
        Ok((len, 0)) => len,
        Ok((_, _)) => {
            log::error!(
                "settings: apply journal larger than {} B: deleted",
                PENDING_CAP
            );
            return forget_journal(Journal::None);
        }
        Err(e) => {
            log::error!("settings: reading the apply journal failed ({})", e);
            return Journal::Unfinished;
        }
    };
    let change_set = &buf[..len];
    if let Err((offset, error)) = store::change_set(change_set) {
        log::error!(
            "settings: apply journal damaged ({} at byte {}): deleted, nothing of it written",
            error.as_str(),
            offset
        );
        return forget_journal(Journal::None);
    }
    match write_records(change_set) {
        Ok(()) => {
            log::info!("settings: an interrupted `mqtts apply` was completed");
            forget_journal(Journal::Completed)
        }
        Err((key, e)) => {
            log::error!(
                "settings: finishing an interrupted apply failed at `{}` ({})",
                key,
                e
            );
            Journal::Unfinished
        }
    }
}

fn forget_journal(then: Journal) -> Journal {
    match ffi::prov_journal_delete() {
        Ok(()) => then,
        Err(e) => {
            log::error!("settings: deleting the apply journal failed ({})", e);
            Journal::Unfinished
        }
    }
}

/// The C entry points of the shell (`src/provision_shim.h`): `#[no_mangle]` and the two
/// `unsafe` calls that turn the shim's raw pointers into slices ([`ffi::shell_words`],
/// [`ffi::text`]); nothing else in this module touches them.
#[allow(unsafe_code)]
mod c_entry {
    use core::ffi::c_char;

    use crate::ffi;

    /// `mqtts ...`: `words` are the shell's argv after `mqtts`.
    #[no_mangle]
    extern "C" fn mqtts_prov_command(
        sh: *const core::ffi::c_void,
        count: usize,
        words: *const *const c_char,
    ) {
        let mut out = [""; shell_words::MAX];
        // SAFETY: `words`/`count` are the shell's argv after `mqtts` (provision_shim.c passes
        // &argv[1], argc - 1); they stay valid until this handler returns, and `out` does not
        // outlive it.
        let n = unsafe { ffi::shell_words(words, count, &mut out) };
        super::command(ffi::ShellRef::from_raw(sh), &out[..n]);
    }

    /// The line typed after `mqtts set <secret>`.
    #[no_mangle]
    extern "C" fn mqtts_prov_secret_line(
        sh: *const core::ffi::c_void,
        key: *const u8,
        key_len: usize,
        line: *const u8,
        line_len: usize,
    ) {
        let sh = ffi::ShellRef::from_raw(sh);
        // SAFETY: the shim passes its static key and line buffers with their lengths; they are
        // wiped only after this callback returns.
        let texts = unsafe { (ffi::text(key, key_len), ffi::text(line, line_len)) };
        match texts {
            (Some(k), Some(v)) => super::secret_line(sh, k, v),
            _ => ffi::prov_print(sh, b"the value is not UTF-8 text: nothing set"),
        }
    }

    mod shell_words {
        /// `mqtts_core::shell::MAX_WORDS` words after `mqtts` at most (the shell allows 3).
        pub const MAX: usize = mqtts_core::shell::MAX_WORDS;
    }
}
