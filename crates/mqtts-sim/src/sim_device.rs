//! A simulated device: the core [`Device`] over a [`TlsTransport`] with simulated switch
//! outputs, run on its own thread by a plain poll loop, as the firmware runs it.
//!
//! The loop calls [`Device::poll`] until it returns `None`, then sleeps until
//! [`Device::next_wakeup`] but at most [`IDLE_POLL`] (the host has no socket readiness wait
//! here), waking at once for a command from the [`SimDevice`] handle.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use mqtts_core::codec::QoS;
use mqtts_core::device::{Device, DeviceBuffers, DeviceEvent, DeviceSettings, Identity};
use mqtts_core::driver::LinkState;
use mqtts_core::session::RequestError;
use mqtts_core::switch::{OutputError, SwitchBank, SwitchOutputs};

use crate::host_config::{ConfigReport, HostConfig};
use crate::tls_transport::TlsTransport;

/// Longest sleep of the poll loop when nothing is due.
pub const IDLE_POLL: Duration = Duration::from_millis(5);

/// Receive ring of the simulated device.
pub const RX_BUFFER: usize = 4096;
/// Send buffer.
pub const TX_BUFFER: usize = 2048;
/// Store for unacknowledged QoS 1 messages (kept across reconnects).
pub const STORE_BUFFER: usize = 16 * 1024;
/// In-flight QoS 1 messages (the largest `inflight_max` allows).
pub const INFLIGHT: usize = 16;

/// What the simulated outputs recorded; shared between the device thread and observers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputLog {
    /// Current output levels, by switch index.
    pub states: Vec<bool>,
    /// Every change of an output level, in order: `(index, on)`.
    pub changes: Vec<(usize, bool)>,
}

/// Simulated switch outputs (relays, LEDs): record levels instead of driving GPIOs.
#[derive(Debug, Clone)]
pub struct SimOutputs {
    log: Arc<Mutex<OutputLog>>,
}

impl SimOutputs {
    /// `count` outputs, all off.
    pub fn new(count: usize) -> Self {
        SimOutputs {
            log: Arc::new(Mutex::new(OutputLog {
                states: vec![false; count],
                changes: Vec::new(),
            })),
        }
    }

    /// A copy of the recorded levels and changes.
    pub fn snapshot(&self) -> OutputLog {
        lock(&self.log).clone()
    }
}

impl SwitchOutputs for SimOutputs {
    fn set(&mut self, index: usize, on: bool) -> Result<(), OutputError> {
        let mut log = lock(&self.log);
        let slot = log.states.get_mut(index).ok_or(OutputError::NotReady)?;
        if *slot != on {
            *slot = on;
            log.changes.push((index, on));
        }
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Link state as shown in the live view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Not started yet.
    Starting,
    /// Waiting before the next attempt.
    Backoff,
    /// TCP/TLS/CONNECT in progress.
    Connecting,
    /// Connected.
    Online,
    /// Shut down.
    Stopped,
}

/// The device's state after the latest poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceStatus {
    /// Connection state.
    pub link: Link,
    /// Successful connections so far (reconnects = connections - 1).
    pub connections: u32,
    /// Stable name of the most recent failure.
    pub last_failure: Option<&'static str>,
    /// `(name, on)` as the device records them.
    pub switches: Vec<(String, bool)>,
}

/// One device event with its time (ms since the device started) and, for failures, the
/// transport's detail text (rustls or OS error; never holds secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Milliseconds since the device started.
    pub at_ms: u64,
    /// What happened.
    pub event: DeviceEvent,
    /// Transport detail for `Offline`.
    pub detail: Option<String>,
}

enum Command {
    Publish {
        topic: String,
        payload: Vec<u8>,
        qos: QoS,
        reply: Sender<Result<Option<u16>, RequestError>>,
    },
    Stop,
}

/// Handle of a simulated device running on its own thread. Dropping it shuts the device down
/// (DISCONNECT) and joins the thread.
pub struct SimDevice {
    commands: Sender<Command>,
    events: Receiver<Observed>,
    outputs: SimOutputs,
    status: Arc<Mutex<DeviceStatus>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SimDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimDevice")
            .field("status", &*lock(&self.status))
            .finish_non_exhaustive()
    }
}

/// A small xorshift generator for backoff jitter (the firmware uses its hardware RNG).
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// Seeded from the clock.
    pub fn from_time() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15);
        XorShift(nanos | 1)
    }

    /// The next word.
    pub fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 32) as u32
    }
}

impl SimDevice {
    /// Checks `config` completely (see [`HostConfig::check`]) and starts the device. Nothing
    /// connects when the configuration is invalid. `insecure` turns certificate verification
    /// off (a warning is logged on every connect).
    pub fn start(config: HostConfig, insecure: bool) -> Result<SimDevice, ConfigReport> {
        SimDevice::start_with_states(config, insecure, &[])
    }

    /// Like [`start`](Self::start), with the switches' power-on states (by index; missing
    /// ones are off).
    pub fn start_with_states(
        config: HostConfig,
        insecure: bool,
        initial: &[bool],
    ) -> Result<SimDevice, ConfigReport> {
        config.check(insecure)?;
        let names = config.switch_names()?;
        // Loads the CA files now so that a bad file is a configuration error.
        TlsTransport::new(config.transport_options(insecure)).map_err(|e| ConfigReport {
            field: Some("ca_file".into()),
            message: e.to_string(),
        })?;
        let outputs = SimOutputs::new(names.len());
        let status = Arc::new(Mutex::new(DeviceStatus {
            link: Link::Starting,
            connections: 0,
            last_failure: None,
            switches: names.iter().map(|n| (n.clone(), false)).collect(),
        }));
        let (commands, command_rx) = mpsc::channel();
        let (event_tx, events) = mpsc::channel();
        let ctx = Context {
            config,
            insecure,
            initial: initial.iter().copied().take(names.len()).collect(),
            names,
            outputs: outputs.clone(),
            commands: command_rx,
            events: event_tx,
            status: status.clone(),
        };
        let thread = thread::Builder::new()
            .name("sim-device".into())
            .spawn(move || ctx.run())
            .map_err(|e| ConfigReport {
                field: None,
                message: format!("cannot start the device thread: {e}"),
            })?;
        Ok(SimDevice {
            commands,
            events,
            outputs,
            status,
            thread: Some(thread),
        })
    }

    /// Publishes an application message through the device (QoS 1 is stored and resent across
    /// reconnects). `Busy` means the in-flight table is full: retry after a `Delivered` event.
    pub fn publish(
        &self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
    ) -> Result<Option<u16>, RequestError> {
        let (reply, answer) = mpsc::channel();
        let sent = self.commands.send(Command::Publish {
            topic: topic.into(),
            payload: payload.to_vec(),
            qos,
            reply,
        });
        if sent.is_err() {
            return Err(RequestError::NotConnected);
        }
        answer.recv().unwrap_or(Err(RequestError::NotConnected))
    }

    /// The device's events, in order.
    pub fn events(&self) -> &Receiver<Observed> {
        &self.events
    }

    /// Waits up to `timeout` for an event `pick` accepts; events before it are passed to
    /// `seen` (e.g. a log) and dropped.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        mut seen: impl FnMut(&Observed),
        mut pick: impl FnMut(&Observed) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let observed = self.events.recv_timeout(left).ok()?;
            seen(&observed);
            if let Some(t) = pick(&observed) {
                return Some(t);
            }
        }
    }

    /// The simulated outputs.
    pub fn outputs(&self) -> OutputLog {
        self.outputs.snapshot()
    }

    /// State after the latest poll.
    pub fn status(&self) -> DeviceStatus {
        lock(&self.status).clone()
    }

    /// Sends DISCONNECT, closes the connection and waits for the device thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.commands.send(Command::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SimDevice {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Everything the device thread owns.
struct Context {
    config: HostConfig,
    insecure: bool,
    initial: Vec<bool>,
    names: Vec<String>,
    outputs: SimOutputs,
    commands: Receiver<Command>,
    events: Sender<Observed>,
    status: Arc<Mutex<DeviceStatus>>,
}

impl Context {
    fn run(self) {
        macro_rules! dispatch {
            ($($n:literal)*) => {
                match self.names.len() {
                    $($n => self.run_with::<$n>(),)*
                    // `check` allows 1..=MAX_SWITCHES names.
                    other => log::error!("unsupported number of switches: {other}"),
                }
            };
        }
        dispatch!(1 2 3 4 5 6 7 8)
    }

    fn run_with<const N: usize>(&self) {
        // `start` checked all of this; failing here would be a bug, reported and not panicked.
        let Ok(config) = self.config.device_config() else {
            log::error!("configuration became invalid");
            return;
        };
        let identity = match Identity::from_config(&config, None) {
            Ok(i) => i,
            Err(e) => {
                log::error!("identity: {e:?}");
                return;
            }
        };
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        let Ok(names): Result<[&str; N], _> = names.try_into() else {
            return;
        };
        let Ok(mut bank) = SwitchBank::new(names) else {
            return;
        };
        // Power-on states (the store's `power_on.<switch>` rules); all off by default.
        let changes: Vec<(usize, bool)> = self.initial.iter().copied().enumerate().collect();
        let mut outputs = self.outputs.clone();
        if let Err((_, e)) = bank.apply_all(&changes, &mut outputs) {
            log::warn!("power-on states: {e:?}");
        }
        let transport = match TlsTransport::new(self.config.transport_options(self.insecure)) {
            Ok(t) => t,
            Err(e) => {
                log::error!("transport: {e}");
                return;
            }
        };
        log::info!("device {} starting", identity.client_id());
        let settings = DeviceSettings::from_config(&config);
        // On the host the buffers go to the heap; the firmware keeps them in a static.
        let mut buffers = Box::new(DeviceBuffers::new());
        let mut device: Device<
            '_,
            TlsTransport,
            SimOutputs,
            N,
            RX_BUFFER,
            TX_BUFFER,
            STORE_BUFFER,
            INFLIGHT,
        > = Device::new(
            &mut buffers,
            &identity,
            transport,
            self.outputs.clone(),
            bank,
            settings,
        );

        let start = Instant::now();
        let now_ms = || u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut rng = XorShift::from_time();
        loop {
            let now = now_ms();
            let mut busy = false;
            while let Some(event) = device.poll(now, rng.next_u32()) {
                busy = true;
                let detail = match event {
                    DeviceEvent::Offline { .. } => {
                        device.driver().transport().last_error().map(str::to_string)
                    }
                    _ => None,
                };
                self.update_status(&device);
                // A gone observer does not stop the device.
                let _ = self.events.send(Observed {
                    at_ms: now,
                    event,
                    detail,
                });
            }
            self.update_status(&device);

            let wait = match device.next_wakeup() {
                _ if busy => Duration::ZERO,
                Some(at) => Duration::from_millis(at.saturating_sub(now_ms())).min(IDLE_POLL),
                None => IDLE_POLL,
            };
            let command = match self.commands.recv_timeout(wait) {
                Ok(c) => c,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => Command::Stop,
            };
            match command {
                Command::Publish {
                    topic,
                    payload,
                    qos,
                    reply,
                } => {
                    let r = device.publish(now_ms(), &topic, &payload, qos, false);
                    let _ = reply.send(r);
                }
                Command::Stop => {
                    device.shutdown();
                    lock(&self.status).link = Link::Stopped;
                    log::info!("device {} stopped", identity.client_id());
                    return;
                }
            }
        }
    }

    fn update_status<const N: usize>(
        &self,
        device: &Device<
            '_,
            TlsTransport,
            SimOutputs,
            N,
            RX_BUFFER,
            TX_BUFFER,
            STORE_BUFFER,
            INFLIGHT,
        >,
    ) {
        let driver = device.driver();
        let mut s = lock(&self.status);
        s.link = match driver.state() {
            LinkState::Backoff { .. } => Link::Backoff,
            LinkState::Connecting { .. } | LinkState::AwaitConnAck => Link::Connecting,
            LinkState::Online { .. } => Link::Online,
            LinkState::Paused | LinkState::Stopped => Link::Stopped,
        };
        s.connections = driver.connections();
        s.last_failure = driver.last_failure().map(|c| c.as_str());
        for ((_, slot), (_, on)) in s.switches.iter_mut().zip(device.switches().iter()) {
            *slot = on;
        }
    }
}
