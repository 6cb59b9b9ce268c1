//! Client side of the hostile-broker tests: the core `Driver` (or `Device`) over the real
//! `TlsTransport`, polled in real time, with every event kept with its timestamp.
#![allow(dead_code)]

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use mqtts_core::backoff::BackoffConfig;
use mqtts_core::codec::{Connect, QoS};
use mqtts_core::device::DeviceEvent;
use mqtts_core::driver::{Driver, DriverConfig, DriverEvent, FailureCause, MIN_RETRY_MS};
use mqtts_core::session::{Event, SessionConfig};
use mqtts_core::switch::{OutputError, SwitchOutputs};
use mqtts_sim::pki::TestPki;
use mqtts_sim::scripted_broker::{ConnectionRecord, ReceivedPublish};
use mqtts_sim::tls_transport::{TlsTransport, TransportOptions};
use tempfile::TempDir;

/// Receive ring of the test client: small, so "larger than the receive buffer" is cheap.
pub const RX: usize = 1024;
/// Send buffer.
pub const TX: usize = 1024;
/// Store for unacknowledged QoS 1/2 messages.
pub const STORE: usize = 2048;
/// In-flight QoS 1/2 messages.
pub const INFLIGHT: usize = 8;

/// The driver under test.
pub type TestDriver = Driver<'static, TlsTransport, RX, TX, STORE, INFLIGHT, 4>;

/// Limit of the TCP+TLS connect and of CONNACK in [`fast_config`].
pub const CONNECT_TIMEOUT_MS: u32 = 600;

/// CONNECT of the test client.
pub const CONNECT: Connect<'static> = Connect {
    client_id: "hostile-test",
    keep_alive: 60,
    clean_session: true,
    username: None,
    password: None,
    will: None,
};

/// A fresh CA and server certificate in a temporary directory.
pub fn pki() -> (TempDir, TestPki) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::generate(dir.path(), &[]).expect("pki");
    (dir, pki)
}

/// Short timers so every failure shows within a second: connect and CONNACK 600 ms, backoff
/// 100..400 ms (the retry floor is `MIN_RETRY_MS`).
pub fn fast_config() -> DriverConfig {
    DriverConfig {
        connect_timeout_ms: CONNECT_TIMEOUT_MS,
        stable_after_ms: 60_000,
        backoff: BackoffConfig {
            min_ms: 100,
            max_ms: 400,
            auth_min_ms: 1_000,
            auth_max_ms: 2_000,
        },
        session: SessionConfig {
            connack_timeout_ms: CONNECT_TIMEOUT_MS,
            ping_timeout_ms: 1_000,
            qos1_retry_ms: 0,
        },
    }
}

/// A TLS transport to the scripted broker on `port`, verifying against the test CA. Its own
/// connect limit is long so that the driver's (shorter) one is what fires.
pub fn transport(port: u16, ca_file: &Path) -> TlsTransport {
    let mut options = TransportOptions::tls("localhost", port, &[ca_file]);
    options.connect_timeout = Duration::from_secs(10);
    TlsTransport::new(options).expect("transport")
}

/// A driver event, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    /// Connection attempt started.
    Connecting,
    /// CONNACK accepted.
    Online,
    /// Connection failed.
    Offline {
        /// Why.
        cause: FailureCause,
        /// Chosen backoff.
        retry_in_ms: u32,
    },
    /// Incoming message.
    Message {
        /// Topic.
        topic: String,
        /// Payload.
        payload: Vec<u8>,
        /// Packet id (QoS 1/2).
        packet_id: Option<u16>,
    },
    /// Outgoing QoS 1/2 message acknowledged.
    Published(u16),
    /// SUBACK return codes.
    Subscribed(Vec<u8>),
    /// Oversized packet skipped.
    Skipped {
        /// Packet type.
        packet_type: u8,
        /// Length.
        len: usize,
    },
    /// Other session events.
    Other,
}

impl Ev {
    fn from_driver(e: DriverEvent<'_>) -> Ev {
        match e {
            DriverEvent::Connecting => Ev::Connecting,
            DriverEvent::Online { .. } => Ev::Online,
            DriverEvent::Offline { cause, retry_in_ms } => Ev::Offline { cause, retry_in_ms },
            DriverEvent::Session(Event::Message(p)) => Ev::Message {
                topic: p.topic.into(),
                payload: p.payload.to_vec(),
                packet_id: p.packet_id,
            },
            DriverEvent::Session(Event::Published { packet_id }) => Ev::Published(packet_id),
            DriverEvent::Session(Event::Subscribed(ack)) => {
                Ev::Subscribed(ack.return_codes.to_vec())
            }
            DriverEvent::Session(Event::Skipped { packet_type, len }) => {
                Ev::Skipped { packet_type, len }
            }
            DriverEvent::Session(_) => Ev::Other,
        }
    }
}

/// A tiny xorshift for backoff jitter: deterministic per test.
fn next_random(state: &mut u32) -> u32 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    x
}

/// The driver under test, polled in real time.
pub struct Client {
    /// The driver.
    pub driver: TestDriver,
    /// Origin of the driver clock.
    pub t0: Instant,
    rng: u32,
    /// Every event with the instant it was returned.
    pub log: Vec<(Instant, Ev)>,
    /// The driver clock (`now`) of the poll that returned each event of `log`.
    pub clock: Vec<u64>,
}

impl Client {
    /// A driver to the scripted broker on `port`; connects on the first poll.
    pub fn new(
        port: u16,
        ca_file: &Path,
        config: DriverConfig,
        subscriptions: &'static [(&'static str, QoS)],
    ) -> Self {
        Client {
            driver: Driver::new(transport(port, ca_file), config, CONNECT, subscriptions),
            t0: Instant::now(),
            rng: 0x1234_5678,
            log: Vec::new(),
            clock: Vec::new(),
        }
    }

    /// Milliseconds since the client was made: the driver's clock.
    pub fn now(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }

    /// One poll; the event (if any) is logged and returned.
    pub fn step(&mut self) -> Option<Ev> {
        let now = self.now();
        let random = next_random(&mut self.rng);
        let ev = self.driver.poll(now, random).map(Ev::from_driver)?;
        self.log.push((Instant::now(), ev.clone()));
        self.clock.push(now);
        Some(ev)
    }

    /// Polls until `f` (called with the driver, the clock and each event) returns true, like
    /// an event loop: a 1 ms sleep when nothing happens. Panics with the event log after `limit`.
    pub fn run_until(
        &mut self,
        limit: Duration,
        mut f: impl FnMut(&mut TestDriver, u64, &Ev) -> bool,
    ) -> Ev {
        let end = Instant::now() + limit;
        loop {
            match self.step() {
                Some(ev) => {
                    let now = self.now();
                    if f(&mut self.driver, now, &ev) {
                        return ev;
                    }
                }
                None => {
                    assert!(
                        Instant::now() < end,
                        "no expected event within {limit:?}; events: {:?}",
                        self.events()
                    );
                    thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }

    /// Polls for `d`, calling `f` on every event.
    pub fn run_for(&mut self, d: Duration, mut f: impl FnMut(&mut TestDriver, u64, &Ev)) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            match self.step() {
                Some(ev) => {
                    let now = self.now();
                    f(&mut self.driver, now, &ev);
                }
                None => thread::sleep(Duration::from_millis(1)),
            }
        }
    }

    /// Events so far, without times.
    pub fn events(&self) -> Vec<Ev> {
        self.log.iter().map(|(_, e)| e.clone()).collect()
    }

    /// The causes of every `Offline` so far.
    pub fn causes(&self) -> Vec<FailureCause> {
        self.log
            .iter()
            .filter_map(|(_, e)| match e {
                Ev::Offline { cause, .. } => Some(*cause),
                _ => None,
            })
            .collect()
    }

    /// How many events equal `ev`.
    pub fn count(&self, ev: &Ev) -> usize {
        self.log.iter().filter(|(_, e)| e == ev).count()
    }

    /// Publishes a QoS 1 message and returns its packet id.
    pub fn publish_qos1(driver: &mut TestDriver, now: u64, topic: &str, payload: &[u8]) -> u16 {
        driver
            .publish(now, topic, payload, QoS::AtLeastOnce, false)
            .expect("publish accepted")
            .expect("QoS 1 has an id")
    }
}

/// Checks the reconnect pacing against the event log and the broker's accept times: every
/// `Offline` chose at least `MIN_RETRY_MS`; the next attempt started no earlier than that
/// delay after it (driver clock) and was accepted by the broker no earlier than that delay
/// after the failing poll (wall clock); and the attempts over the whole run are bounded by
/// the window.
pub fn assert_paced_reconnects(client: &Client, records: &[ConnectionRecord]) {
    let ms = Duration::from_millis;
    let mut attempts = 0;
    let mut pending_offline: Option<(u64, u32)> = None;
    let mut accepts = records.iter().map(|r| r.accepted_at);
    let last_attempt = client
        .log
        .iter()
        .rposition(|(_, e)| *e == Ev::Connecting)
        .unwrap_or(0);
    for (i, (_, ev)) in client.log.iter().enumerate() {
        match ev {
            Ev::Offline { retry_in_ms, .. } => {
                assert!(
                    *retry_in_ms >= MIN_RETRY_MS,
                    "retry {retry_in_ms} ms below the floor"
                );
                pending_offline = Some((client.clock[i], *retry_in_ms));
            }
            Ev::Connecting => {
                attempts += 1;
                // Every attempt reaches the broker, except perhaps one still under way when
                // the test stopped the broker.
                let accepted = accepts.next();
                assert!(
                    accepted.is_some() || i == last_attempt,
                    "attempt {attempts} never reached the broker"
                );
                if let Some((off_clock, retry)) = pending_offline.take() {
                    let waited = client.clock[i] - off_clock;
                    assert!(
                        waited >= u64::from(retry),
                        "reconnect after {waited} ms, backoff was {retry} ms"
                    );
                    if let Some(accepted) = accepted {
                        // Measured from the driver's clock at the failing poll, the instant
                        // its backoff counts from.
                        let failed_at = client.t0 + ms(off_clock);
                        let gap = accepted.saturating_duration_since(failed_at);
                        assert!(
                            gap >= ms(u64::from(retry.max(MIN_RETRY_MS))),
                            "broker saw the reconnect {gap:?} after the failure"
                        );
                    }
                }
            }
            _ => {}
        }
    }
    let window = client.log.last().map_or(Duration::ZERO, |(t, _)| {
        t.duration_since(client.log.first().map_or(*t, |(t0, _)| *t0))
    });
    let bound = window.as_millis() as usize / MIN_RETRY_MS as usize + 1;
    assert!(
        attempts <= bound,
        "{attempts} attempts in {window:?}: tight loop"
    );
}

/// The QoS 1 publishes with these ids on `record`, in id order of `ids`.
pub fn publishes_with_ids(record: &ConnectionRecord, ids: &[u16]) -> Vec<ReceivedPublish> {
    let publishes = record.publishes();
    ids.iter()
        .map(|id| {
            publishes
                .iter()
                .find(|p| p.packet_id == Some(*id))
                .unwrap_or_else(|| panic!("id {id} not sent on connection {}", record.index))
                .clone()
        })
        .collect()
}

/// Simulated outputs that record every call and can fail on demand.
#[derive(Debug, Default)]
pub struct SimOutputs {
    /// `(index, on)` of every call.
    pub calls: Vec<(usize, bool)>,
}

impl SwitchOutputs for SimOutputs {
    fn set(&mut self, index: usize, on: bool) -> Result<(), OutputError> {
        self.calls.push((index, on));
        Ok(())
    }
}

/// Device events with their times.
pub type DeviceLog = Vec<(Instant, DeviceEvent)>;
