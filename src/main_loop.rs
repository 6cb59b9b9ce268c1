// SPDX-License-Identifier: Apache-2.0

//! The application thread: configuration check, network and clock bring-up, then the core's
//! [`Device`] polled forever. Nothing here blocks for longer than [`MAX_WAIT_MS`]: the TLS
//! handshake and SNTP queries run on the worker thread, so the status LED keeps blinking (and a
//! watchdog, if one is added, can be fed at the end of every pass).
//!
//! Each pass: network state ([`NetMonitor`]), SNTP schedule (`ClockSync` on the worker), then
//! `Device::poll` until it has nothing more to do, the status LED, and a wait on the broker
//! socket (`zsock_poll` through the shim) until data arrives or the earliest deadline (device
//! timers, LED edge, SNTP, network warning), capped at [`MAX_WAIT_MS`].
//!
//! "May connect" gating: the `Device` is created, and first polled, only once the network is up
//! and (with TLS) the clock is set, because certificate dates are checked and the Alibaba
//! password signs the current time. If the network goes down later, `Device::pause` closes the
//! socket (unacknowledged messages are kept) and stops connection attempts, so the back-off does
//! not grow while the cable is out; `Device::resume` reconnects at once, with a fresh back-off,
//! as soon as the link and an address are back.

use core::mem::size_of;

use mqtts_core::config::ConfigError;
use mqtts_core::device::{
    Device, DeviceBuffers, DeviceEvent, DeviceSettings, Identity, IdentityError,
};
use mqtts_core::firmware::ca::trusted_cas;
use mqtts_core::firmware::clock::{ClockEvent, ClockSync};
use mqtts_core::firmware::indicator::Indication;
use mqtts_core::firmware::{switch_names, wait_ms, Decimal};
use mqtts_core::store;
use mqtts_core::switch::SwitchBank;
use zephyr::sync::Mutex;
use zephyr::time::{sleep, Duration};

use crate::config;
use crate::ffi;
use crate::net::NetMonitor;
use crate::outputs::{GpioOutputs, StatusLed, RELAY_COUNT};
use crate::provision;
use crate::register;
use crate::transport::{Shared, ZephyrTransport};
use crate::uptime::uptime_ms;
use crate::worker::{JobPoll, Ticket};

/// Longest sleep of one pass: the latency for worker results (connect, SNTP) and network
/// state changes.
pub const MAX_WAIT_MS: u32 = 100;

/// The MQTT buffers of the firmware's device (receive ring, send queue, message store, in-flight
/// table, reply scratch), sized by Kconfig.
pub type FirmwareBuffers = DeviceBuffers<
    { config::RX_BUFFER_SIZE },
    { config::TX_BUFFER_SIZE },
    { config::STORE_BUFFER_SIZE },
    { config::INFLIGHT_MAX },
>;

/// The buffers live here, in `.bss`, never on a stack: built by a `const fn`, so nothing is
/// constructed at run time and then moved. Only [`run`] locks the mutex, once, and keeps the guard
/// for ever, so it is never contended; it is there because a `static` shared with the rest of
/// the program must be `Sync`, and it keeps this crate free of `static mut`.
static BUFFERS: Mutex<FirmwareBuffers> = Mutex::new(FirmwareBuffers::new());

/// The stored option records read at boot; the effective configuration borrows its text from
/// here for the life of the program (same locking rule as [`BUFFERS`]).
static STORED: Mutex<[u8; provision::STORE_CAP]> = Mutex::new([0; provision::STORE_CAP]);

/// The device as the firmware builds it: small, it only borrows [`BUFFERS`].
pub type FirmwareDevice<'i> = Device<
    'i,
    ZephyrTransport<'i>,
    GpioOutputs,
    RELAY_COUNT,
    { config::RX_BUFFER_SIZE },
    { config::TX_BUFFER_SIZE },
    { config::STORE_BUFFER_SIZE },
    { config::INFLIGHT_MAX },
>;

/// Stack of the application thread: the objects [`run`] keeps on it, plus
/// `CONFIG_MQTTS_APP_STACK_BASE` for calls and log formatting. The MQTT buffers are not on it
/// ([`BUFFERS`] is a `static`). The `Device` counts twice: `Device::new` returns it by value and
/// Rust does not promise to write it in place, so one temporary may exist while it is built; it
/// is small now (it only borrows the buffers), so the second copy costs a few hundred bytes.
///
/// Before the `Device` exists the same stack holds, one after the other, the apply journal's
/// buffer ([`provision::finish_interrupted_apply`]: `PENDING_CAP` and a record) and the
/// dynamic registration's objects ([`register::STACK_OBJECTS`]); the larger of the two phases
/// counts.
pub const APP_STACK_SIZE: usize = config::APP_STACK_BASE
    + larger(
        2 * size_of::<FirmwareDevice<'static>>() + size_of::<Identity<'static>>(),
        larger(
            register::STACK_OBJECTS,
            provision::PENDING_CAP + store::MAX_RECORD_LEN,
        ),
    )
    + size_of::<Shared>();

const fn larger(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// Whether TLS needs the clock before the first handshake.
const CLOCK_NEEDED: bool = cfg!(CONFIG_MQTTS_TLS);

/// The application: never returns.
pub fn run() -> ! {
    log::info!(
        "w5500-mqtts {} on {}",
        env!("CARGO_PKG_VERSION"),
        zephyr::kconfig::CONFIG_BOARD
    );
    config::log_summary();
    let mut led = StatusLed::from_devicetree();

    // Kconfig defaults, then the options stored in flash (settings, subtree `mqtts`): the core's
    // store::load reports and skips a damaged or foreign record, and falls back to the Kconfig
    // defaults as a whole when the stored options together are invalid (never half of them).
    if let Err(e) = ffi::prov_settings_init() {
        log::error!("settings: init failed ({}): stored options unavailable", e);
    }
    // Never contended (only this thread, only here) and never unlocked, like BUFFERS.
    let mut stored = STORED.lock().unwrap_or_else(|never| match never {});
    let stored_len = match provision::finish_interrupted_apply() {
        provision::Journal::None | provision::Journal::Completed => {
            provision::read_stored(&mut stored[..]).unwrap_or_else(|e| {
                log::error!("settings: load failed ({}): starting on the defaults", e);
                0
            })
        }
        provision::Journal::Unfinished => {
            log::error!(
                "settings: stored options may be half of an `mqtts apply`: running on the \
                 Kconfig defaults; `mqtts apply` again or `mqtts factory-reset`"
            );
            0
        }
    };
    let mut loaded = store::load(provision::defaults(), &stored[..stored_len], |p| {
        provision::log_problem(&p)
    });
    provision::ignore_build_time(&mut loaded.layered.overrides);
    // The rules are the core's (DeviceConfig::validate, through Layered::effective); Kconfig
    // and CMake already refused what they can express.
    let effective = match loaded.layered.effective() {
        Ok(e) => e,
        Err(e) => {
            log_config_error(&e);
            halt(&mut led);
        }
    };
    // `aliyun_auth = register` with no DeviceSecret yet: the configuration is complete except
    // for the secret, which the registration below obtains once the network and clock are up.
    let registration = effective
        .registration_pending
        .then_some(effective.extra.aliyun_product_secret)
        .flatten();
    let derived_id = provision::derived_device_id();
    let device = provision::with_device_id(effective.config, derived_id.as_ref());
    if registration.is_none() {
        if let Err(e) = device.validate() {
            log_config_error(&e);
            halt(&mut led);
        }
    }
    let device = &device;
    log::info!(
        "effective broker {}:{} ({} stored option(s))",
        device.broker_host.unwrap_or("<unset>"),
        device.broker_port,
        loaded.layered.overrides.iter().count()
    );
    let names = match switch_names::<RELAY_COUNT>(config::SWITCH_NAMES) {
        Ok(names) => names,
        Err(e) => {
            log::error!(
                "CONFIG_MQTTS_SWITCH_NAMES names {} switch(es), the board has {} relay(s)",
                e.found,
                e.needed
            );
            halt(&mut led);
        }
    };
    let mut switches = match SwitchBank::new(names) {
        Ok(bank) => bank,
        Err(e) => {
            log::error!("CONFIG_MQTTS_SWITCH_NAMES: {:?}", e);
            halt(&mut led);
        }
    };
    let Ok(profile) = device.profile() else {
        halt(&mut led); // validate() passed, so the profile parses
    };
    let cas = trusted_cas(profile, device.broker_port, config::CA_CHOICE);
    // The worker connects to the effective broker (Kconfig or stored), not the build's.
    if let Some(host) = device.broker_host {
        if let Err(status) = ffi::set_broker(host, device.broker_port) {
            log::error!(
                "broker host not taken ({:?}): connecting to the Kconfig one",
                status
            );
        }
    }
    if device.tls {
        match ffi::tls_init() {
            Ok(embedded) if embedded.contains(cas) => {
                log::info!(
                    "trusting CA set 0x{:x} for port {}",
                    cas.bits(),
                    device.broker_port
                )
            }
            Ok(embedded) => log::error!(
                "CA set 0x{:x} needed but only 0x{:x} embedded: TLS will fail",
                cas.bits(),
                embedded.bits()
            ),
            // Keep running so switches and the LED work; every connect will fail and say so.
            Err(status) => log::error!("TLS credentials not registered: {:?}", status),
        }
    }

    let mut outputs = GpioOutputs::from_devicetree();
    // Power-on state per switch (`power_on.<switch>`: off, on, last) and, for `last`, a keeper
    // that stores a new state only after it has held for the hold time (flash wear).
    let mut keepers = provision::power_on(&loaded, &mut switches, &mut outputs);
    // Before DHCP starts: setting the MAC takes the interface down and up.
    provision::set_identity_mac();
    let mut net = NetMonitor::start();
    let shared = Shared::new();
    let mut clock = Clock {
        sync: ClockSync::new(config::CLOCK),
        job: None,
    };

    // Until the device may connect: network and, with TLS, the clock.
    loop {
        let now = uptime_ms();
        let net_ready = net.poll(now);
        shared.net_ready.set(net_ready);
        clock.serve(&shared, now, net_ready);
        if net_ready && (clock.sync.is_set() || !CLOCK_NEEDED) {
            break;
        }
        let ind = Indication::of(net_ready, CLOCK_NEEDED, clock.sync.is_set(), false);
        led.set(ind.is_lit(now));
        let deadlines = [
            ind.next_change(now),
            clock.wakeup(now, net_ready),
            net.next_warning(),
        ];
        sleep_ms(wait_ms(now, &deadlines, MAX_WAIT_MS));
    }

    if let Some(product_secret) = registration {
        // Reboots after storing the DeviceSecret; returns only when that did not happen.
        match register::register_and_reboot(device, product_secret, &shared, cas) {
            register::Outcome::Refused => halt(&mut led),
            register::Outcome::Failed => register::retry_later(),
        }
        halt(&mut led);
    }

    // The Alibaba password signs the time when it is known (the platform does not require it).
    let timestamp = clock.sync.unix_ms(uptime_ms()).map(Decimal::new);
    let identity = match Identity::from_config(device, timestamp.as_ref().map(Decimal::as_str)) {
        Ok(identity) => identity,
        Err(e) => {
            match e {
                IdentityError::Config(e) => log_config_error(&e),
                other => log::error!("cannot build the MQTT identity: {:?}", other),
            }
            halt(&mut led);
        }
    };
    // The client id holds no secret; the password is never logged.
    log::info!("MQTT client id {}", identity.client_id());
    let transport = ZephyrTransport::new(&shared, cas);
    let settings = DeviceSettings::from_config(device);
    // Never contended (only this thread, only here) and never unlocked: `run` does not return.
    // zephyr's `lock` waits forever and its error type is `Infallible`.
    let mut buffers = BUFFERS.lock().unwrap_or_else(|never| match never {});
    let mut device: FirmwareDevice<'_> = Device::new(
        &mut buffers,
        &identity,
        transport,
        outputs,
        switches,
        settings,
    );

    let mut was_ready = true;
    loop {
        let now = uptime_ms();
        let net_ready = net.poll(now);
        shared.net_ready.set(net_ready);
        clock.serve(&shared, now, net_ready);
        match (was_ready, net_ready) {
            (true, false) => device.pause(),
            (false, true) => device.resume(now),
            _ => {}
        }
        was_ready = net_ready;
        while let Some(event) = device.poll(now, ffi::random_u32()) {
            log_event(&event);
        }

        let online = device.driver().is_online();
        let ind = Indication::of(net_ready, CLOCK_NEEDED, clock.sync.is_set(), online);
        led.set(ind.is_lit(now));
        let keep_at = provision::keep_last(&mut keepers, device.switches(), now);
        let deadlines = [
            keep_at,
            device.next_wakeup().filter(|_| net_ready),
            ind.next_change(now),
            clock.wakeup(now, net_ready),
            net.next_warning(),
        ];
        let wait = wait_ms(now, &deadlines, MAX_WAIT_MS);
        let want_write = !device.driver().session().transmit().is_empty();
        match device.driver().transport().wait(want_write, wait as i32) {
            Some(Ok(_)) => {}
            // The next recv reports the same error to the driver, which closes and backs off.
            Some(Err(e)) => log::debug!("socket poll: {:?}", e),
            None => sleep_ms(wait),
        }
    }
}

/// The SNTP schedule and its job on the worker.
struct Clock {
    sync: ClockSync,
    job: Option<Ticket>,
}

impl Clock {
    /// Collects a finished query or starts one when due.
    fn serve(&mut self, shared: &Shared, now: u64, net_ready: bool) {
        if let Some(ticket) = self.job {
            let result = shared.worker.borrow_mut().poll(ticket);
            match result {
                JobPoll::Pending => {}
                JobPoll::TimeSet(unix_s) => {
                    self.job = None;
                    let unix_ms = u64::try_from(unix_s).unwrap_or(0).saturating_mul(1000);
                    match self.sync.succeeded(now, unix_ms) {
                        ClockEvent::Set { .. } => {
                            log::info!("clock set by SNTP: {} (Unix s)", unix_s)
                        }
                        ClockEvent::Resynced { step_ms, .. } => {
                            log::debug!("clock re-synced, step {} ms", step_ms)
                        }
                    }
                }
                JobPoll::Failed(status) => {
                    self.job = None;
                    let retry_ms = self.sync.failed(now);
                    log::warn!(
                        "SNTP failed ({:?}), retry in {} s{}",
                        status,
                        retry_ms / 1000,
                        if self.sync.is_set() {
                            ""
                        } else {
                            ": TLS waits for the clock"
                        }
                    );
                }
                JobPoll::Connected(fd) => {
                    // Not ours (tickets carry their job): never leak a socket anyway.
                    ffi::close(fd);
                    self.job = None;
                    self.sync.failed(now);
                }
            }
            return;
        }
        if self.sync.due(now, net_ready) {
            // A busy worker (a connect in progress) is asked again on a later pass.
            if let Some(ticket) = shared.worker.borrow_mut().submit_time_sync() {
                self.sync.started();
                self.job = Some(ticket);
            }
        }
    }

    /// When the schedule next needs a pass (a due query that could not start yet waits for
    /// the pass cap, not a busy loop).
    fn wakeup(&self, now: u64, net_ready: bool) -> Option<u64> {
        self.sync.next_wakeup().filter(|&at| net_ready && at > now)
    }
}

fn sleep_ms(ms: u32) {
    if ms > 0 {
        sleep(Duration::millis_at_least(u64::from(ms) as _));
    }
}

/// Logs a configuration error: the Kconfig symbol, the field and what is wrong.
fn log_config_error(e: &ConfigError) {
    log::error!(
        "invalid configuration: {} ({}) {}: {:?}",
        e.kconfig_symbol().as_str(),
        e.field,
        e.summary(),
        e.problem
    );
}

/// Stops for good after a configuration error: the LED blinks the halt pattern, nothing else
/// runs (relays stay off).
fn halt(led: &mut StatusLed) -> ! {
    log::error!("firmware halted: fix the configuration (`mqtts` shell or Kconfig) and reset");
    loop {
        let now = uptime_ms();
        led.set(Indication::Halted.is_lit(now));
        let next = Indication::Halted.next_change(now);
        sleep_ms(wait_ms(now, &[next], 1_000));
    }
}

/// One log line per device event. Events carry no secrets.
fn log_event(event: &DeviceEvent) {
    match *event {
        DeviceEvent::Connecting => log::info!("connecting to the broker"),
        DeviceEvent::Online { session_present } => {
            log::info!("online (session present: {})", session_present)
        }
        DeviceEvent::Offline { cause, retry_in_ms } => log::warn!(
            "offline: {} ({:?}), retry in {} ms",
            cause.as_str(),
            cause,
            retry_in_ms
        ),
        DeviceEvent::Command {
            changed,
            error: None,
        } => {
            log::info!("command applied (changed: {})", changed)
        }
        DeviceEvent::Command {
            changed,
            error: Some(e),
        } => log::warn!("command refused: {:?} (changed: {})", e, changed),
        DeviceEvent::StateReported => log::debug!("state reported"),
        DeviceEvent::ReportAnswered { code: 200 } => log::debug!("report accepted"),
        DeviceEvent::ReportAnswered { code } => log::warn!("report rejected, code {}", code),
        DeviceEvent::Delivered { packet_id } => log::debug!("delivered packet {}", packet_id),
        DeviceEvent::SubscriptionRefused { index } => {
            log::warn!("broker refused subscription #{}", index)
        }
        DeviceEvent::TimeSynced { utc_ms } => log::info!("broker time: {} ms UTC", utc_ms),
        DeviceEvent::MessageSkipped { len } => log::warn!(
            "dropped a {}-byte message: larger than CONFIG_MQTTS_RX_BUFFER_SIZE",
            len
        ),
        DeviceEvent::UnhandledMessage => log::debug!("message on an unhandled topic"),
        DeviceEvent::PublishFailed(e) => log::warn!("could not queue a publish: {:?}", e),
    }
}
