//! `mqtts-sim fleet`: many simulated devices in one process against one broker, through a
//! broker restart. See `docs/fleet.md`.
//!
//! Each device is the real core [`Device`] with its own identity (`device_id`), its own
//! [`TlsTransport`] and TLS session. A few worker threads each drive a slice of the fleet: poll
//! every device that has work, then wait on all their sockets with one `poll(2)` until a socket
//! is ready or the next device timer is due (no thread per device).
//!
//! Every device publishes `{"seq":N}` on `devices/<id>/telemetry` at QoS 1 every
//! `publish_period`, counting up only when the core accepted the message. An independent
//! [`observer::Observer`] (`mosquitto_sub`) counts what the broker delivered. At the end the
//! fleet stops publishing, waits until every accepted message is acknowledged and observed, and
//! reports per device which sequence numbers never arrived: that is "lost".
//!
//! Without a configuration it starts its own Mosquitto (TLS on loopback, persistence on, so the
//! observer's queued messages survive the restart) and can restart it mid-run.

pub mod observer;
pub mod report;

use std::fs;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use mqtts_core::codec::QoS;
use mqtts_core::config::DeviceConfig;
use mqtts_core::device::{Device, DeviceBuffers, DeviceEvent, DeviceSettings, Identity};
use mqtts_core::session::RequestError;
use mqtts_core::switch::SwitchBank;
use serde::{Deserialize, Serialize};

use crate::host_config::{CaFiles, HostConfig};
use crate::mosquitto::{Mosquitto, MosquittoConfig, TlsFiles};
use crate::pki::TestPki;
use crate::sim_device::{SimOutputs, XorShift, INFLIGHT, RX_BUFFER, STORE_BUFFER, TX_BUFFER};
use crate::tls_transport::TlsTransport;
use observer::{Observer, ObserverOptions};

/// Longest time a device goes without a poll, whatever its socket says (rustls may hold
/// decrypted bytes the socket no longer shows).
const SWEEP_MS: u64 = 200;
/// Retry delay of a telemetry message the core refused as `Busy`.
const BUSY_RETRY_MS: u64 = 100;
/// How often the per-second sampler checks the counters (for the all-online times).
const TICK: Duration = Duration::from_millis(20);
/// Name of the one switch each fleet device has.
const SWITCH: [&str; 1] = ["relay"];

type FleetDevice<'i> =
    Device<'i, TlsTransport, SimOutputs, 1, RX_BUFFER, TX_BUFFER, STORE_BUFFER, INFLIGHT>;

/// What to run.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Number of devices.
    pub devices: usize,
    /// Broker and device template (`device_id` is the prefix of the ids); `None` starts an own
    /// Mosquitto on loopback.
    pub config: Option<HostConfig>,
    /// How long devices publish (from the start of the run).
    pub duration: Duration,
    /// When to stop and restart the own broker; needs `config == None`.
    pub restart_broker_at: Option<Duration>,
    /// Telemetry period of every device.
    pub publish_period: Duration,
    /// Worker threads driving the devices.
    pub threads: usize,
    /// Longest wait after `duration` for outstanding acknowledgements and deliveries.
    pub drain_timeout: Duration,
}

impl FleetOptions {
    /// `devices` against an own broker for `duration`, 5 s telemetry, 2 worker threads.
    pub fn new(devices: usize, duration: Duration) -> Self {
        FleetOptions {
            devices,
            config: None,
            duration,
            restart_broker_at: None,
            publish_period: Duration::from_secs(5),
            threads: 2,
            drain_timeout: Duration::from_secs(60),
        }
    }
}

/// Why a fleet run could not be done (a run that finished but lost messages is a
/// [`FleetReport`] with `passed == false`).
#[derive(Debug)]
pub enum FleetError {
    /// Bad option or configuration; the text names it.
    Usage(String),
    /// Broker, observer, file or thread trouble.
    Setup(String),
}

impl std::fmt::Display for FleetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FleetError::Usage(m) | FleetError::Setup(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for FleetError {}

impl FleetError {
    /// Process exit code: 2 for usage, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            FleetError::Usage(_) => 2,
            FleetError::Setup(_) => 1,
        }
    }
}

/// One row per second of the run. Counters are per second except `online` (at the end of it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sample {
    /// Seconds since the start (end of the interval).
    pub t_s: f64,
    /// Devices online.
    pub online: u64,
    /// Connection attempts started.
    pub connects_attempted: u64,
    /// Connections completed (CONNACK accepted).
    pub connects_completed: u64,
    /// QoS 1 telemetry messages the devices accepted.
    pub published: u64,
    /// Of those, acknowledged by the broker (PUBACK).
    pub acknowledged: u64,
    /// New distinct messages the observer received.
    pub observed: u64,
    /// CPU seconds the fleet process used in this second (1.0 = one core busy).
    #[serde(default)]
    pub fleet_cpu: f64,
    /// CPU seconds the broker used in this second (own broker only).
    #[serde(default)]
    pub broker_cpu: f64,
}

/// The broker restart, if one was done.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RestartReport {
    /// When the broker was told to stop (s since start).
    pub stopped_at_s: f64,
    /// When the new broker accepted connections again.
    pub back_at_s: f64,
    /// Lowest number of devices online after the stop.
    pub min_online: u64,
    /// From `back_at_s` until every device was online again (`None`: not all came back).
    pub all_online_after_s: Option<f64>,
    /// Most connections completed in one second after the stop.
    pub peak_connects_per_s: u64,
}

/// Result of a fleet run (written as JSON by `--json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FleetReport {
    /// Number of devices.
    pub devices: usize,
    /// Worker threads.
    pub threads: usize,
    /// Telemetry period (s).
    pub publish_period_s: f64,
    /// Publishing duration (s).
    pub duration_s: f64,
    /// Which broker: `own mosquitto` or `host:port`.
    pub broker: String,
    /// Logical CPUs of the machine (shared with whatever else runs).
    pub cpus: usize,
    /// From the start until every device was online (`None`: not before the restart).
    pub start_all_online_s: Option<f64>,
    /// Most connections completed in one second before any restart.
    pub start_peak_connects_per_s: u64,
    /// The restart, if any.
    pub restart: Option<RestartReport>,
    /// QoS 1 telemetry messages the devices accepted.
    pub published: u64,
    /// Of those, acknowledged by the broker.
    pub acknowledged: u64,
    /// Distinct messages the observer received.
    pub observed: u64,
    /// Messages the observer received more than once (allowed by QoS 1).
    pub observer_duplicates: u64,
    /// Accepted messages never seen by the observer.
    pub lost: u64,
    /// Accepted messages never acknowledged.
    pub unacknowledged: u64,
    /// Times `mosquitto_sub` had to be started again.
    pub observer_restarts: u64,
    /// CPU time (user + system) of the fleet process (s).
    pub fleet_cpu_s: f64,
    /// Resident memory of the fleet process before the devices were created (KiB).
    pub fleet_rss_base_kib: u64,
    /// Peak resident memory of the fleet process (KiB).
    pub fleet_rss_peak_kib: u64,
    /// CPU time of the broker process(es) (s); `None` for an external broker.
    pub broker_cpu_s: Option<f64>,
    /// Peak resident memory of the (last) broker process (KiB).
    pub broker_rss_peak_kib: Option<u64>,
    /// All online at the start, all back after the restart, nothing lost or unacknowledged.
    pub passed: bool,
    /// One row per second.
    pub samples: Vec<Sample>,
}

impl FleetReport {
    /// Fleet CPU milliseconds per device over the whole run.
    pub fn cpu_ms_per_device(&self) -> f64 {
        self.fleet_cpu_s * 1000.0 / self.devices.max(1) as f64
    }

    /// Resident memory per device (KiB): peak minus the base, divided by the devices.
    pub fn rss_kib_per_device(&self) -> f64 {
        self.fleet_rss_peak_kib
            .saturating_sub(self.fleet_rss_base_kib) as f64
            / self.devices.max(1) as f64
    }

    /// The per-second samples as CSV (with a header line).
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "t_s,online,connects_attempted,connects_completed,published,acknowledged,observed,fleet_cpu,broker_cpu\n",
        );
        for s in &self.samples {
            out.push_str(&format!(
                "{:.0},{},{},{},{},{},{},{:.2},{:.2}\n",
                s.t_s,
                s.online,
                s.connects_attempted,
                s.connects_completed,
                s.published,
                s.acknowledged,
                s.observed,
                s.fleet_cpu,
                s.broker_cpu
            ));
        }
        out
    }
}

/// Counters shared by the workers and the sampler.
#[derive(Default)]
struct Shared {
    online: AtomicI64,
    attempted: AtomicU64,
    completed: AtomicU64,
    published: AtomicU64,
    acknowledged: AtomicU64,
    publish_errors: AtomicU64,
    draining: AtomicBool,
    stop: AtomicBool,
    setup_error: Mutex<Option<String>>,
}

/// What a worker hands back per device.
struct Tally {
    id: String,
    published: u32,
    pending: usize,
}

/// One device and the fleet's bookkeeping for it.
struct Slot<'i> {
    device: FleetDevice<'i>,
    topic: String,
    online: bool,
    seq: u32,
    next_publish_at: u64,
    /// `(packet id, seq)` of accepted, not yet acknowledged telemetry.
    pending: Vec<(u16, u32)>,
    last_poll: u64,
    ready: bool,
}

impl Slot<'_> {
    fn due(&self, now: u64, publishing: bool) -> bool {
        self.ready
            || now >= self.last_poll.saturating_add(SWEEP_MS)
            || self.device.next_wakeup().is_some_and(|t| t <= now)
            || (publishing && now >= self.next_publish_at)
    }

    /// The next time this slot needs a poll without socket activity.
    fn deadline(&self, publishing: bool) -> u64 {
        let mut at = self.last_poll.saturating_add(SWEEP_MS);
        if let Some(t) = self.device.next_wakeup() {
            at = at.min(t);
        }
        if publishing {
            at = at.min(self.next_publish_at);
        }
        at
    }

    fn step(&mut self, now: u64, rng: &mut XorShift, shared: &Shared, period_ms: u64) {
        self.last_poll = now;
        self.ready = false;
        if !shared.draining.load(Ordering::Relaxed) && now >= self.next_publish_at {
            let payload = format!("{{\"seq\":{}}}", self.seq);
            match self.device.publish(
                now,
                &self.topic,
                payload.as_bytes(),
                QoS::AtLeastOnce,
                false,
            ) {
                Ok(Some(id)) => {
                    self.pending.push((id, self.seq));
                    self.seq += 1;
                    shared.published.fetch_add(1, Ordering::Relaxed);
                    self.next_publish_at = self.next_publish_at.saturating_add(period_ms).max(now);
                }
                // Store or in-flight table full (broker away for a while): the same `seq`
                // again a little later, without spinning on it.
                Err(RequestError::Busy) => {
                    self.next_publish_at = now.saturating_add(period_ms.min(BUSY_RETRY_MS));
                }
                Ok(None) | Err(_) => {
                    shared.publish_errors.fetch_add(1, Ordering::Relaxed);
                    self.next_publish_at = now.saturating_add(period_ms);
                }
            }
        }
        while let Some(event) = self.device.poll(now, rng.next_u32()) {
            match event {
                DeviceEvent::Connecting => {
                    shared.attempted.fetch_add(1, Ordering::Relaxed);
                }
                DeviceEvent::Online { .. } => {
                    shared.completed.fetch_add(1, Ordering::Relaxed);
                    if !self.online {
                        self.online = true;
                        shared.online.fetch_add(1, Ordering::Relaxed);
                    }
                }
                DeviceEvent::Offline { .. } if self.online => {
                    self.online = false;
                    shared.online.fetch_sub(1, Ordering::Relaxed);
                }
                DeviceEvent::Delivered { packet_id } => {
                    if let Some(i) = self.pending.iter().position(|(p, _)| *p == packet_id) {
                        self.pending.swap_remove(i);
                        shared.acknowledged.fetch_add(1, Ordering::Relaxed);
                    }
                }
                _ => {}
            }
        }
    }
}

/// The per-device configuration: the template with its own `device_id` (and `client_id`).
fn device_config(template: &HostConfig, index: usize) -> HostConfig {
    let prefix = template.device_id.as_deref().unwrap_or("fleet");
    let mut c = template.clone();
    c.device_id = Some(format!("{prefix}-{index:05}"));
    c.client_id = template
        .client_id
        .as_ref()
        .map(|id| format!("{id}-{index:05}"));
    // Only the fleet's own telemetry: state reports on connect, none periodic.
    c.telemetry_period_s = Some(0);
    c.switches = None;
    c
}

fn now_ms(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Drives `configs` until `shared.stop`; returns one tally per device.
fn worker(
    configs: &[HostConfig],
    shared: &Shared,
    start: Instant,
    period_ms: u64,
    seed: u64,
) -> Result<Vec<Tally>, String> {
    let device_configs: Vec<DeviceConfig<'_>> = configs
        .iter()
        .map(|c| c.device_config().map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let identities: Vec<Identity<'_>> = device_configs
        .iter()
        .map(|d| Identity::from_config(d, None).map_err(|e| format!("identity: {e:?}")))
        .collect::<Result<_, _>>()?;
    // Workers started in the same clock tick would share a seed: step each one apart.
    let mut rng = XorShift::from_time();
    for _ in 0..(seed % 64) {
        rng.next_u32();
    }
    // Each device borrows its own buffers (boxed: they are too big to move around).
    let mut buffers: Vec<Box<DeviceBuffers<RX_BUFFER, TX_BUFFER, STORE_BUFFER, INFLIGHT>>> =
        configs
            .iter()
            .map(|_| Box::new(DeviceBuffers::new()))
            .collect();
    let mut slots = Vec::with_capacity(configs.len());
    for (((config, dc), identity), buffers) in configs
        .iter()
        .zip(&device_configs)
        .zip(&identities)
        .zip(buffers.iter_mut())
    {
        let transport = TlsTransport::new(config.transport_options(false))
            .map_err(|e| format!("ca_file: {e}"))?;
        let bank = SwitchBank::new(SWITCH).map_err(|e| format!("switches: {e:?}"))?;
        let device: FleetDevice<'_> = Device::new(
            buffers,
            identity,
            transport,
            SimOutputs::new(1),
            bank,
            DeviceSettings::from_config(dc),
        );
        // Spread the first reports over one period instead of all at once.
        let offset = u64::from(rng.next_u32()) % period_ms.max(1);
        slots.push(Slot {
            device,
            topic: format!(
                "devices/{}/telemetry",
                config.device_id.as_deref().unwrap_or("")
            ),
            online: false,
            seq: 0,
            next_publish_at: offset,
            pending: Vec::new(),
            last_poll: 0,
            ready: true,
        });
    }
    while !shared.stop.load(Ordering::Relaxed) {
        let now = now_ms(start);
        let publishing = !shared.draining.load(Ordering::Relaxed);
        for slot in slots.iter_mut() {
            if slot.due(now, publishing) {
                slot.step(now, &mut rng, shared, period_ms);
            }
        }
        wait_for_sockets(&mut slots, now_ms(start), publishing);
    }
    let mut tallies = Vec::with_capacity(slots.len());
    for (slot, config) in slots.iter_mut().zip(configs) {
        slot.device.shutdown();
        tallies.push(Tally {
            id: config.device_id.clone().unwrap_or_default(),
            published: slot.seq,
            pending: slot.pending.len(),
        });
    }
    Ok(tallies)
}

/// One `poll(2)` over every slot's socket, until the earliest slot deadline; marks the ready
/// slots.
fn wait_for_sockets(slots: &mut [Slot<'_>], now: u64, publishing: bool) {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let deadline = slots
        .iter()
        .map(|s| s.deadline(publishing))
        .min()
        .unwrap_or(now + SWEEP_MS);
    let wait_ms = deadline.saturating_sub(now).min(SWEEP_MS);
    let mut ready = vec![false; slots.len()];
    {
        let mut owners = Vec::with_capacity(slots.len());
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(slots.len());
        for (i, slot) in slots.iter().enumerate() {
            let interest: Option<(BorrowedFd<'_>, bool)> =
                slot.device.driver().transport().poll_interest();
            if let Some((fd, write)) = interest {
                let mut flags = PollFlags::IN;
                if write {
                    flags |= PollFlags::OUT;
                }
                fds.push(PollFd::from_borrowed_fd(fd, flags));
                owners.push(i);
            }
        }
        let timeout = Timespec::try_from(Duration::from_millis(wait_ms)).ok();
        if poll(&mut fds, timeout.as_ref()).is_ok() {
            for (fd, &i) in fds.iter().zip(&owners) {
                if !fd.revents().is_empty() {
                    ready[i] = true;
                }
            }
        }
    }
    for (slot, r) in slots.iter_mut().zip(ready) {
        slot.ready |= r;
    }
}

/// CPU time (s) and resident memory (KiB, current and peak) of a process from `/proc`.
#[derive(Debug, Clone, Copy, Default)]
struct ProcStats {
    cpu_s: f64,
    rss_kib: u64,
    hwm_kib: u64,
}

fn proc_stats(pid: &str) -> Option<ProcStats> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the name.
    let cpu_ticks = ticks(11)? + ticks(12)?;
    let hz = rustix::param::clock_ticks_per_second().max(1);
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Some(ProcStats {
        cpu_s: cpu_ticks as f64 / hz as f64,
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
    })
}

/// The own broker: TLS on loopback, persistence on (the observer's session and queue survive
/// a restart), no connection or queue limit, quiet log.
struct OwnBroker {
    pki: TestPki,
    _dir: tempfile::TempDir,
}

fn start_own_broker() -> Result<(Mosquitto, OwnBroker), FleetError> {
    let setup = |what: &str, e: &dyn std::fmt::Display| FleetError::Setup(format!("{what}: {e}"));
    let dir = tempfile::Builder::new()
        .prefix("mqtts-fleet-")
        .tempdir()
        .map_err(|e| setup("temp dir", &e))?;
    let pki = TestPki::generate(dir.path(), &[]).map_err(|e| setup("certificates", &e))?;
    let config = MosquittoConfig {
        tls: Some(TlsFiles {
            ca_file: pki.ca_file.clone(),
            cert_file: pki.server_files.cert_file.clone(),
            key_file: pki.server_files.key_file.clone(),
        }),
        persistence: true,
        extra: vec![
            "max_connections -1".into(),
            // The observer may be offline for a moment after the restart: keep its queue whole.
            "max_queued_messages 0".into(),
            "max_queued_bytes 0".into(),
            "set_tcp_nodelay true".into(),
        ],
        log_types: vec!["error".into(), "warning".into()],
        ..MosquittoConfig::default()
    };
    let broker = Mosquitto::start(&config).map_err(|e| setup("mosquitto", &e))?;
    Ok((broker, OwnBroker { pki, _dir: dir }))
}

/// Broker CPU over restarts: the finished processes' time plus the running one's.
#[derive(Default)]
struct BrokerCpu {
    done_s: f64,
    pid: Option<u32>,
    hwm_kib: u64,
}

impl BrokerCpu {
    /// CPU seconds of all broker processes so far (samples the running one).
    fn total(&mut self) -> f64 {
        self.done_s + self.sample().map_or(0.0, |s| s.cpu_s)
    }

    fn sample(&mut self) -> Option<ProcStats> {
        let s = proc_stats(&self.pid?.to_string())?;
        self.hwm_kib = self.hwm_kib.max(s.hwm_kib);
        Some(s)
    }
}

/// Runs the fleet scenario and reports it. `progress` gets one line per second.
pub fn run(
    options: &FleetOptions,
    mut progress: impl FnMut(&Sample),
) -> Result<FleetReport, FleetError> {
    if options.devices == 0 {
        return Err(FleetError::Usage(
            "--devices: allowed 1 or more, got 0".into(),
        ));
    }
    if options.threads == 0 {
        return Err(FleetError::Usage(
            "--threads: allowed 1 or more, got 0".into(),
        ));
    }
    if options.config.is_some() && options.restart_broker_at.is_some() {
        return Err(FleetError::Usage(
            "--restart-broker-at needs the fleet's own broker (leave out --config)".into(),
        ));
    }
    let (mut broker, own, template) = match &options.config {
        Some(c) => (None, None, c.clone()),
        None => {
            let (broker, own) = start_own_broker()?;
            let template = HostConfig {
                profile: Some("self-hosted".into()),
                broker_host: Some("localhost".into()),
                broker_port: Some(broker.tls_port().into()),
                ca_file: Some(CaFiles::One(own.pki.ca_file.display().to_string())),
                keepalive_s: Some(60),
                backoff_min_ms: Some(500),
                backoff_max_ms: Some(8_000),
                ..HostConfig::default()
            };
            (Some(broker), Some(own), template)
        }
    };
    let configs: Vec<HostConfig> = (0..options.devices)
        .map(|i| device_config(&template, i))
        .collect();
    // Every option checked once, before anything connects.
    configs[0]
        .check(false)
        .map_err(|e| FleetError::Usage(e.to_string()))?;
    let broker_name = match &own {
        Some(_) => "own mosquitto (TLS, loopback)".to_string(),
        None => format!(
            "{}:{}",
            template.broker_host.as_deref().unwrap_or(""),
            template.broker_port.unwrap_or(8883)
        ),
    };
    let observer = start_observer(&template, own.as_ref())?;

    let mut broker_cpu = BrokerCpu {
        pid: broker.as_ref().and_then(Mosquitto::pid),
        ..BrokerCpu::default()
    };
    let self_base = proc_stats("self").unwrap_or_default();
    let shared = Shared::default();
    let period_ms = u64::try_from(options.publish_period.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let n = options.devices as u64;
    let start = Instant::now();
    let chunk = options.devices.div_ceil(options.threads);
    let mut samples = Vec::new();
    let mut tallies = Vec::new();
    let mut start_all_online = None;
    let mut restart: Option<RestartReport> = None;

    thread::scope(|scope| -> Result<(), FleetError> {
        let mut handles = Vec::new();
        for (k, part) in configs.chunks(chunk).enumerate() {
            let shared = &shared;
            let h = thread::Builder::new()
                .name(format!("fleet-{k}"))
                .spawn_scoped(scope, move || {
                    let r = worker(part, shared, start, period_ms, k as u64);
                    if let Err(e) = &r {
                        *shared.setup_error.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some(e.clone());
                        shared.stop.store(true, Ordering::Relaxed);
                    }
                    r
                })
                .map_err(|e| FleetError::Setup(format!("worker thread: {e}")))?;
            handles.push(h);
        }

        type RestartJob<'s> = thread::ScopedJoinHandle<'s, (Mosquitto, Result<f64, String>)>;
        let mut restart_job: Option<RestartJob<'_>> = None;
        let mut last = [0u64; 5];
        let mut last_cpu = (self_base.cpu_s, broker_cpu.total());
        let mut next_sample = 1.0f64;
        let mut drain_started: Option<Instant> = None;
        loop {
            thread::sleep(TICK);
            let t = start.elapsed().as_secs_f64();
            let online = u64::try_from(shared.online.load(Ordering::Relaxed)).unwrap_or(0);
            // Only before a restart: all online later is the restart's number.
            if start_all_online.is_none() && restart.is_none() && online == n {
                start_all_online = Some(t);
            }
            if let Some(r) = restart.as_mut() {
                r.min_online = r.min_online.min(online);
                if r.all_online_after_s.is_none() && r.back_at_s > 0.0 && online == n {
                    r.all_online_after_s = Some(t - r.back_at_s);
                }
            }
            // The restart runs on its own thread so that sampling goes on meanwhile.
            if let (Some(at), None, None) = (
                options.restart_broker_at,
                restart.as_ref(),
                restart_job.as_ref(),
            ) {
                if t >= at.as_secs_f64() {
                    if let Some(mut b) = broker.take() {
                        if let Some(s) = broker_cpu.sample() {
                            broker_cpu.done_s += s.cpu_s;
                        }
                        broker_cpu.pid = None;
                        restart = Some(RestartReport {
                            stopped_at_s: t,
                            back_at_s: 0.0,
                            min_online: online,
                            all_online_after_s: None,
                            peak_connects_per_s: 0,
                        });
                        restart_job = Some(scope.spawn(move || {
                            let r = b
                                .restart()
                                .map(|()| start.elapsed().as_secs_f64())
                                .map_err(|e| format!("broker restart: {e}"));
                            (b, r)
                        }));
                    }
                }
            }
            if restart_job.as_ref().is_some_and(|j| j.is_finished()) {
                if let Some(job) = restart_job.take() {
                    let (b, result) = job
                        .join()
                        .map_err(|_| FleetError::Setup("restart thread panicked".into()))?;
                    broker_cpu.pid = b.pid();
                    broker = Some(b);
                    let back = result.map_err(|e| {
                        shared.stop.store(true, Ordering::Relaxed);
                        FleetError::Setup(e)
                    })?;
                    if let Some(r) = restart.as_mut() {
                        r.back_at_s = back;
                    }
                }
            }
            if t >= next_sample {
                next_sample += 1.0;
                let now = [
                    shared.attempted.load(Ordering::Relaxed),
                    shared.completed.load(Ordering::Relaxed),
                    shared.published.load(Ordering::Relaxed),
                    shared.acknowledged.load(Ordering::Relaxed),
                    observer.distinct(),
                ];
                let fleet_cpu = proc_stats("self").map_or(0.0, |p| p.cpu_s);
                let broker_total = broker_cpu.total();
                let sample = Sample {
                    fleet_cpu: fleet_cpu - last_cpu.0,
                    broker_cpu: (broker_total - last_cpu.1).max(0.0),
                    t_s: t.round(),
                    online,
                    connects_attempted: now[0] - last[0],
                    connects_completed: now[1] - last[1],
                    published: now[2] - last[2],
                    acknowledged: now[3] - last[3],
                    observed: now[4] - last[4],
                };
                last = now;
                last_cpu = (fleet_cpu, broker_total);
                progress(&sample);
                samples.push(sample);
            }
            if shared.stop.load(Ordering::Relaxed) {
                break;
            }
            // After `duration` (and the restart): stop publishing, wait for the stragglers.
            let restart_done = options.restart_broker_at.is_none()
                || restart.as_ref().is_some_and(|r| r.back_at_s > 0.0);
            if t >= options.duration.as_secs_f64() && restart_done && restart_job.is_none() {
                shared.draining.store(true, Ordering::Relaxed);
                let began = *drain_started.get_or_insert_with(Instant::now);
                let published = shared.published.load(Ordering::Relaxed);
                let settled = shared.acknowledged.load(Ordering::Relaxed) == published
                    && observer.distinct() >= published;
                if settled || began.elapsed() >= options.drain_timeout {
                    shared.stop.store(true, Ordering::Relaxed);
                }
            }
        }
        for h in handles {
            match h.join() {
                Ok(Ok(t)) => tallies.extend(t),
                Ok(Err(e)) => return Err(FleetError::Setup(e)),
                Err(_) => return Err(FleetError::Setup("worker thread panicked".into())),
            }
        }
        Ok(())
    })?;
    if let Some(e) = shared
        .setup_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        return Err(FleetError::Setup(e));
    }

    let self_end = proc_stats("self").unwrap_or_default();
    let broker_end = broker_cpu.sample();
    let published: u64 = tallies.iter().map(|t| u64::from(t.published)).sum();
    let unacknowledged: u64 = tallies.iter().map(|t| t.pending as u64).sum();
    let lost: u64 = tallies
        .iter()
        .map(|t| u64::from(observer.missing(&t.id, t.published)))
        .sum();
    if let Some(r) = restart.as_mut() {
        r.peak_connects_per_s = samples
            .iter()
            .filter(|s| s.t_s > r.stopped_at_s)
            .map(|s| s.connects_completed)
            .max()
            .unwrap_or(0);
    }
    let stop_at = restart.as_ref().map_or(f64::INFINITY, |r| r.stopped_at_s);
    let start_peak = samples
        .iter()
        .filter(|s| s.t_s <= stop_at)
        .map(|s| s.connects_completed)
        .max()
        .unwrap_or(0);
    let all_back = restart
        .as_ref()
        .is_none_or(|r| r.all_online_after_s.is_some());
    let report = FleetReport {
        devices: options.devices,
        threads: options.threads,
        publish_period_s: options.publish_period.as_secs_f64(),
        duration_s: options.duration.as_secs_f64(),
        broker: broker_name,
        cpus: thread::available_parallelism().map_or(1, |n| n.get()),
        start_all_online_s: start_all_online,
        start_peak_connects_per_s: start_peak,
        restart,
        published,
        acknowledged: shared.acknowledged.load(Ordering::Relaxed),
        observed: observer.distinct(),
        observer_duplicates: observer.duplicates(),
        lost,
        unacknowledged,
        observer_restarts: observer.restarts(),
        fleet_cpu_s: self_end.cpu_s - self_base.cpu_s,
        fleet_rss_base_kib: self_base.rss_kib,
        fleet_rss_peak_kib: self_end.hwm_kib,
        broker_cpu_s: own
            .as_ref()
            .map(|_| broker_cpu.done_s + broker_end.map_or(0.0, |s| s.cpu_s)),
        broker_rss_peak_kib: own.as_ref().map(|_| broker_cpu.hwm_kib),
        passed: start_all_online.is_some()
            && all_back
            && lost == 0
            && unacknowledged == 0
            && published > 0,
        samples,
    };
    observer.stop();
    drop(broker);
    drop(own);
    Ok(report)
}

fn start_observer(template: &HostConfig, own: Option<&OwnBroker>) -> Result<Observer, FleetError> {
    if template.tls_server_name.is_some() {
        return Err(FleetError::Usage(
            "tls_server_name: not supported by the fleet's mosquitto_sub observer; \
             set broker_host to the name in the certificate"
                .into(),
        ));
    }
    let ca_files = template.ca_files();
    if ca_files.len() > 1 {
        return Err(FleetError::Usage(
            "ca_file: the fleet's mosquitto_sub observer takes one CA file".into(),
        ));
    }
    let options = ObserverOptions {
        host: template.broker_host.clone().unwrap_or_default(),
        port: template
            .broker_port
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(8883),
        ca_file: own
            .map(|o| o.pki.ca_file.clone())
            .or_else(|| ca_files.first().cloned()),
        tls: template.tls.unwrap_or(true),
        username: template.username.clone(),
        password: template.password.clone(),
        client_id: format!("fleet-observer-{:08x}", XorShift::from_time().next_u32()),
    };
    Observer::start(&options, Duration::from_secs(15)).map_err(FleetError::Setup)
}

const USAGE: &str = "\
usage:
  mqtts-sim fleet --devices N [--config FILE] [--duration S] [--restart-broker-at S]
                  [--period S] [--threads T] [--json FILE] [--csv FILE]
      N simulated devices (own identity and TLS session each) against one broker; without
      --config an own Mosquitto on loopback. Exit 0 when all came (back) online and no QoS 1
      message was lost. Defaults: --duration 60, --period 5, --threads 2.
  mqtts-sim fleet report FILE.json... [--doc docs/fleet.md] [--plot FILE.png]
      Markdown table of fleet runs (replaces the marked table in --doc) and a plot of devices
      online over time for the last file.
";

/// The `fleet` subcommand (`args` after `fleet`).
pub fn cli(args: &[String]) -> Result<(), FleetError> {
    if args.first().map(String::as_str) == Some("report") {
        return report::cli(&args[1..]);
    }
    // A thousand devices logging every connect would drown the per-second lines.
    if std::env::var_os("MQTTS_LOG").is_none() {
        log::set_max_level(log::LevelFilter::Warn);
    }
    let mut options = FleetOptions::new(0, Duration::from_secs(60));
    let mut json: Option<PathBuf> = None;
    let mut csv: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            print!("{USAGE}");
            return Ok(());
        }
        let value = it
            .next()
            .ok_or_else(|| FleetError::Usage(format!("{flag} needs a value\n{USAGE}")))?;
        match flag.as_str() {
            "--devices" => options.devices = parse_count(flag, value)?,
            "--threads" => options.threads = parse_count(flag, value)?,
            "--duration" => options.duration = parse_seconds(flag, value)?,
            "--restart-broker-at" => options.restart_broker_at = Some(parse_seconds(flag, value)?),
            "--period" => options.publish_period = parse_seconds(flag, value)?,
            "--config" => {
                options.config = Some(
                    HostConfig::load(Path::new(value))
                        .map_err(|e| FleetError::Usage(e.to_string()))?,
                )
            }
            "--json" => json = Some(PathBuf::from(value)),
            "--csv" => csv = Some(PathBuf::from(value)),
            other => {
                return Err(FleetError::Usage(format!(
                    "unknown option {other}\n{USAGE}"
                )))
            }
        }
    }
    if options.devices == 0 {
        return Err(FleetError::Usage(format!(
            "fleet needs --devices N\n{USAGE}"
        )));
    }
    if options.publish_period.is_zero() {
        return Err(FleetError::Usage("--period: must be more than 0".into()));
    }
    if let Some(c) = &options.config {
        if c.profile.as_deref() == Some("aliyun") {
            return Err(FleetError::Usage(
                "profile: the fleet runs self-hosted devices (`devices/<id>/…` topics)".into(),
            ));
        }
    }
    let report = run(&options, |s| {
        eprintln!(
            "t={:>4.0}s online={:>5} connects {:>4}/{:<4} published {:>5} acked {:>5} observed {:>5} cpu fleet {:.2} broker {:.2}",
            s.t_s,
            s.online,
            s.connects_completed,
            s.connects_attempted,
            s.published,
            s.acknowledged,
            s.observed,
            s.fleet_cpu,
            s.broker_cpu
        );
    })?;
    let text = serde_json::to_string_pretty(&report)
        .map_err(|e| FleetError::Setup(format!("JSON: {e}")))?;
    if let Some(path) = &json {
        fs::write(path, &text)
            .map_err(|e| FleetError::Setup(format!("--json {}: {e}", path.display())))?;
    }
    if let Some(path) = &csv {
        fs::write(path, report.csv())
            .map_err(|e| FleetError::Setup(format!("--csv {}: {e}", path.display())))?;
    }
    println!("{}", report::summary(&report));
    if report.passed {
        Ok(())
    } else {
        Err(FleetError::Setup(format!(
            "fleet FAILED: {}",
            report::failure(&report)
        )))
    }
}

fn parse_count(flag: &str, value: &str) -> Result<usize, FleetError> {
    value
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| FleetError::Usage(format!("{flag}: allowed 1 or more, got {value:?}")))
}

fn parse_seconds(flag: &str, value: &str) -> Result<Duration, FleetError> {
    value
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| FleetError::Usage(format!("{flag}: expected seconds, got {value:?}")))
}
