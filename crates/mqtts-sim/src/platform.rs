//! The platform side as a plain MQTT client: the core's connection [`Driver`] over a
//! [`TlsTransport`], on its own thread (used by `ctl`, the demo and the end-to-end tests).
//!
//! Dogfooding the core here means the same session code sits at both ends of the tests; the
//! broker in between (Mosquitto or rumqttd) is the independent party that checks the protocol.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use mqtts_core::backoff::BackoffConfig;
use mqtts_core::codec::{Connect, QoS};
use mqtts_core::driver::{Driver, DriverConfig, DriverEvent, FailureCause};
use mqtts_core::session::{Event, RequestError, SessionConfig};

use crate::sim_device::{XorShift, IDLE_POLL};
use crate::tls_transport::{ConfigError, TlsTransport, TransportOptions};

const RX: usize = 16 * 1024;
const TX: usize = 8 * 1024;
const STORE: usize = 32 * 1024;
const INFLIGHT: usize = 32;
const QOS2_IN: usize = 32;

/// How the platform client connects.
#[derive(Debug, Clone)]
pub struct PlatformOptions {
    /// Broker address and TLS settings.
    pub transport: TransportOptions,
    /// MQTT client id.
    pub client_id: String,
    /// MQTT user name.
    pub username: Option<String>,
    /// MQTT password.
    pub password: Option<String>,
    /// Clean session flag; `false` keeps subscriptions and queued messages at the broker.
    pub clean_session: bool,
    /// Keepalive, seconds.
    pub keep_alive_s: u16,
    /// Filters subscribed whenever the broker kept no session.
    pub subscriptions: Vec<(String, QoS)>,
    /// Reconnect delays (short by default: this is a test and tooling client).
    pub backoff: BackoffConfig,
}

impl PlatformOptions {
    /// A clean-session client with keepalive 30 s and fast reconnects.
    pub fn new(transport: TransportOptions, client_id: &str) -> Self {
        PlatformOptions {
            transport,
            client_id: client_id.into(),
            username: None,
            password: None,
            clean_session: true,
            keep_alive_s: 30,
            subscriptions: Vec::new(),
            backoff: BackoffConfig {
                min_ms: 100,
                max_ms: 1_000,
                auth_min_ms: 1_000,
                auth_max_ms: 10_000,
            },
        }
    }

    /// Logs in with `username` and `password`.
    pub fn with_credentials(mut self, username: &str, password: &str) -> Self {
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }

    /// Adds a subscription.
    pub fn subscribe(mut self, filter: &str, qos: QoS) -> Self {
        self.subscriptions.push((filter.into(), qos));
        self
    }
}

/// A received application message (owned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Topic.
    pub topic: String,
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// QoS it was delivered with.
    pub qos: QoS,
    /// Retained message (sent because of the subscription).
    pub retain: bool,
    /// Redelivery flag.
    pub dup: bool,
}

impl Message {
    /// The payload as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }

    /// The payload as JSON, if it is.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.payload).ok()
    }
}

/// What the platform client saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformEvent {
    /// CONNACK accepted.
    Online {
        /// The broker kept the session.
        session_present: bool,
    },
    /// The connection failed or ended.
    Offline {
        /// Why.
        cause: FailureCause,
        /// Transport detail.
        detail: Option<String>,
    },
    /// SUBACK return codes.
    Subscribed(Vec<u8>),
    /// An application message.
    Message(Message),
    /// A QoS 1 publish was acknowledged.
    Delivered(u16),
}

enum Command {
    Publish {
        topic: String,
        payload: Vec<u8>,
        qos: QoS,
        retain: bool,
        reply: Sender<Result<Option<u16>, RequestError>>,
    },
    Stop,
}

/// A running platform client. Dropping it disconnects cleanly.
pub struct PlatformClient {
    commands: Sender<Command>,
    events: Receiver<PlatformEvent>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for PlatformClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformClient").finish_non_exhaustive()
    }
}

impl PlatformClient {
    /// Starts connecting (and reconnecting) in the background.
    pub fn start(options: PlatformOptions) -> Result<PlatformClient, ConfigError> {
        let transport = TlsTransport::new(options.transport.clone())?;
        let (commands, command_rx) = mpsc::channel();
        let (event_tx, events) = mpsc::channel();
        let thread = thread::Builder::new()
            .name(format!("platform-{}", options.client_id))
            .spawn(move || run(options, transport, command_rx, event_tx))
            .map_err(|e| ConfigError::CaFile {
                path: Default::default(),
                reason: format!("cannot spawn client thread: {e}"),
            })?;
        Ok(PlatformClient {
            commands,
            events,
            thread: Some(thread),
        })
    }

    /// Publishes (QoS 1 is stored until acknowledged, also across reconnects).
    pub fn publish(
        &self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<Option<u16>, RequestError> {
        let (reply, answer) = mpsc::channel();
        self.commands
            .send(Command::Publish {
                topic: topic.into(),
                payload: payload.to_vec(),
                qos,
                retain,
                reply,
            })
            .map_err(|_| RequestError::NotConnected)?;
        answer.recv().unwrap_or(Err(RequestError::NotConnected))
    }

    /// The next event, waiting up to `timeout`.
    pub fn next_event(&self, timeout: Duration) -> Option<PlatformEvent> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Waits up to `timeout` for an event `pick` accepts; earlier events go to `seen`.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        mut seen: impl FnMut(&PlatformEvent),
        mut pick: impl FnMut(&PlatformEvent) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let event = self.events.recv_timeout(left).ok()?;
            seen(&event);
            if let Some(t) = pick(&event) {
                return Some(t);
            }
        }
    }

    /// Waits until connected and every subscription of this connection was acknowledged
    /// (or only connected, when the broker kept the session or there is nothing to subscribe).
    pub fn wait_ready(&self, timeout: Duration, subscribes: bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut need_suback = false;
        loop {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            match self.events.recv_timeout(left) {
                Ok(PlatformEvent::Online { session_present }) => {
                    need_suback = subscribes && !session_present;
                    if !need_suback {
                        return true;
                    }
                }
                Ok(PlatformEvent::Subscribed(_)) if need_suback => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    }

    /// Disconnects and joins the client thread.
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

impl Drop for PlatformClient {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run(
    options: PlatformOptions,
    transport: TlsTransport,
    commands: Receiver<Command>,
    events: Sender<PlatformEvent>,
) {
    let filters: Vec<(&str, QoS)> = options
        .subscriptions
        .iter()
        .map(|(f, q)| (f.as_str(), *q))
        .collect();
    let connect = Connect {
        client_id: &options.client_id,
        keep_alive: options.keep_alive_s,
        clean_session: options.clean_session,
        username: options.username.as_deref(),
        password: options.password.as_deref().map(str::as_bytes),
        will: None,
    };
    let timeout_ms =
        u32::try_from(options.transport.connect_timeout.as_millis()).unwrap_or(u32::MAX);
    let config = DriverConfig {
        connect_timeout_ms: timeout_ms,
        stable_after_ms: 10_000,
        backoff: options.backoff,
        session: SessionConfig {
            connack_timeout_ms: timeout_ms,
            ping_timeout_ms: 5_000,
            qos1_retry_ms: 0,
        },
    };
    let mut driver: Driver<'_, TlsTransport, RX, TX, STORE, INFLIGHT, QOS2_IN> =
        Driver::new(transport, config, connect, &filters);
    let start = Instant::now();
    let now_ms = || u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut rng = XorShift::from_time();
    loop {
        let now = now_ms();
        let mut busy = false;
        loop {
            let event = match driver.poll(now, rng.next_u32()) {
                None => break,
                Some(DriverEvent::Connecting) => continue,
                Some(DriverEvent::Online { session_present }) => {
                    PlatformEvent::Online { session_present }
                }
                Some(DriverEvent::Offline { cause, .. }) => PlatformEvent::Offline {
                    cause,
                    detail: None,
                },
                Some(DriverEvent::Session(Event::Message(p))) => PlatformEvent::Message(Message {
                    topic: p.topic.into(),
                    payload: p.payload.to_vec(),
                    qos: p.qos,
                    retain: p.retain,
                    dup: p.dup,
                }),
                Some(DriverEvent::Session(Event::Subscribed(ack))) => {
                    PlatformEvent::Subscribed(ack.return_codes.to_vec())
                }
                Some(DriverEvent::Session(Event::Published { packet_id })) => {
                    PlatformEvent::Delivered(packet_id)
                }
                Some(DriverEvent::Session(_)) => continue,
            };
            busy = true;
            let event = match event {
                PlatformEvent::Offline { cause, .. } => PlatformEvent::Offline {
                    cause,
                    detail: driver.transport().last_error().map(str::to_string),
                },
                other => other,
            };
            let _ = events.send(event);
        }
        let wait = match driver.next_wakeup() {
            _ if busy => Duration::ZERO,
            Some(at) => Duration::from_millis(at.saturating_sub(now_ms())).min(IDLE_POLL),
            None => IDLE_POLL,
        };
        match commands.recv_timeout(wait) {
            Ok(Command::Publish {
                topic,
                payload,
                qos,
                retain,
                reply,
            }) => {
                let _ = reply.send(driver.publish(now_ms(), &topic, &payload, qos, retain));
            }
            Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => {
                driver.shutdown();
                return;
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}
