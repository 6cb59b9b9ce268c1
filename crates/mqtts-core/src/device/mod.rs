//! The whole device as one sans-IO object: the connection driver, the platform profile
//! (Alibaba Alink or self-hosted topics), the switches and their outputs, and the state and
//! telemetry reports. The firmware and the host runner are thin loops around [`Device::poll`].
//!
//! # Where the memory is
//!
//! The large buffers (receive ring, send queue, message store, reply payload) are a
//! [`DeviceBuffers`], built by a `const fn` and only borrowed by the [`Device`]. The firmware
//! puts them in a `static` (behind its RTOS's mutex, so the core needs no `unsafe`) or in one
//! stack slot; the `Device` itself is small, and returning it by value copies no buffer.
//!
//! ```text
//! static BUFFERS: Mutex<DeviceBuffers<..>> = Mutex::new(DeviceBuffers::new()); // or a local
//! let identity = Identity::from_config(&config, None)?;      // credentials and topics, once
//! let mut buffers = BUFFERS.lock();
//! let mut device = Device::new(&mut buffers, &identity, transport, outputs, switches, settings);
//! loop {
//!     while let Some(event) = device.poll(now_ms(), random()) { log(event) }
//!     wait_for_socket_or(device.next_wakeup());
//! }
//! ```

// With one profile built, `Topics` has one variant and its `if let`s always match.
#![cfg_attr(
    not(all(feature = "aliyun", feature = "selfhosted")),
    allow(irrefutable_let_patterns)
)]

use core::fmt;

#[cfg(feature = "aliyun")]
use crate::alink::ids::{MessageIds, PendingPosts};
#[cfg(feature = "aliyun")]
use crate::alink::property::{self, PostReply};
#[cfg(feature = "aliyun")]
use crate::alink::topics::{Inbound, ThingTopics};
#[cfg(feature = "aliyun")]
use crate::alink::{ntp, service};
#[cfg(feature = "aliyun")]
use crate::aliyun::sign::{self, DeviceTriple, SignError, SignMethod};
use crate::backoff::BackoffConfig;
#[cfg(feature = "selfhosted")]
use crate::codec::LastWill;
use crate::codec::{Connect, QoS, SUBACK_FAILURE};
use crate::config::{ConfigError, DeviceConfig, Profile};
use crate::driver::{Driver, DriverBuffers, DriverConfig, DriverEvent, FailureCause};
#[cfg(feature = "selfhosted")]
use crate::selfhosted::{self, DeviceTopics};
use crate::session::{Event, RequestError, SessionConfig};
use crate::switch::{CommandError, SwitchBank, SwitchOutputs, Telemetry};
use crate::transport::Transport;

/// Capacity of the MQTT client id (Alibaba's carries `|securemode=2,…|` after the id).
pub const CLIENT_ID_CAPACITY: usize = 160;
/// Capacity of the MQTT user name.
pub const USERNAME_CAPACITY: usize = 128;
/// Capacity of the MQTT password (a self-hosted one is copied here).
pub const PASSWORD_CAPACITY: usize = 128;
/// Capacity of a topic the device builds.
pub const TOPIC_CAPACITY: usize = 160;
/// Capacity of one outgoing payload (state report, reply).
pub const PAYLOAD_CAPACITY: usize = 512;

/// Incoming QoS 2 ids remembered by the session (the device subscribes at QoS 1 at most, so
/// a small table is enough for brokers that upgrade nothing).
const QOS2_IN: usize = 4;
/// Alibaba property posts awaiting their reply.
#[cfg(feature = "aliyun")]
const PENDING_POSTS: usize = 4;

type Text<const N: usize> = heapless::String<N>;

/// Why the identity could not be derived from a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityError {
    /// The configuration breaks a rule.
    Config(ConfigError),
    /// Alibaba credential signing failed.
    #[cfg(feature = "aliyun")]
    Sign(SignError),
    /// A derived string does not fit its capacity.
    TooLong(&'static str),
}

impl From<ConfigError> for IdentityError {
    fn from(e: ConfigError) -> Self {
        IdentityError::Config(e)
    }
}

/// Platform-specific topic sets.
#[derive(Debug, Clone, Copy)]
pub enum Topics<'c> {
    /// Alibaba Alink topics of `(product key, device name)`.
    #[cfg(feature = "aliyun")]
    Aliyun(ThingTopics<'c>),
    /// `devices/{id}/…`.
    #[cfg(feature = "selfhosted")]
    SelfHosted(DeviceTopics<'c>),
}

/// Everything derived once from a validated configuration: the CONNECT fields (with Alibaba's
/// signed password) and the topic set. Secrets inside are never printed by `Debug`.
pub struct Identity<'c> {
    client_id: Text<CLIENT_ID_CAPACITY>,
    username: Option<Text<USERNAME_CAPACITY>>,
    password: Option<Text<PASSWORD_CAPACITY>>,
    #[cfg(feature = "selfhosted")]
    will_topic: Text<TOPIC_CAPACITY>,
    keep_alive: u16,
    clean_session: bool,
    topics: Topics<'c>,
}

impl fmt::Debug for Identity<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("keep_alive", &self.keep_alive)
            .field("clean_session", &self.clean_session)
            .finish()
    }
}

fn text<const N: usize>(field: &'static str, s: &str) -> Result<Text<N>, IdentityError> {
    Text::try_from(s).map_err(|_| IdentityError::TooLong(field))
}

impl<'c> Identity<'c> {
    /// Validates `config` and derives the identity. `timestamp` (ms since the epoch, decimal) is
    /// signed into Alibaba's password when given; the platform does not require it.
    pub fn from_config(
        config: &DeviceConfig<'c>,
        timestamp: Option<&str>,
    ) -> Result<Self, IdentityError> {
        config.validate()?;
        #[cfg(not(feature = "aliyun"))]
        let _ = timestamp; // only Alibaba signs it
        let keep_alive = config.keepalive_s;
        let clean_session = config.clean_session;
        match config.profile()? {
            #[cfg(feature = "aliyun")]
            Profile::Aliyun => {
                // validate() guarantees these are set.
                let pk = config.aliyun_product_key.unwrap_or_default();
                let dn = config.aliyun_device_name.unwrap_or_default();
                let triple = DeviceTriple {
                    product_key: pk,
                    device_name: dn,
                    device_secret: config.aliyun_device_secret.unwrap_or_default(),
                };
                let mut bare = Text::<CLIENT_ID_CAPACITY>::new();
                match config.client_id {
                    Some(id) => bare.push_str(id),
                    None => bare
                        .push_str(pk)
                        .and_then(|_| bare.push('.'))
                        .and_then(|_| bare.push_str(dn)),
                }
                .map_err(|_| IdentityError::TooLong("client_id"))?;
                // validate() has refused a method this build left out.
                let method = SignMethod::parse(config.aliyun_sign_method).ok_or(
                    IdentityError::Config(ConfigError {
                        field: "aliyun_sign_method",
                        problem: crate::config::ConfigProblem::InvalidValue {
                            allowed: SignMethod::ALLOWED,
                        },
                    }),
                )?;
                let creds = sign::credentials::<CLIENT_ID_CAPACITY, USERNAME_CAPACITY>(
                    &triple, &bare, method, timestamp, 2,
                )
                .map_err(IdentityError::Sign)?;
                let topics = ThingTopics::new(pk, dn)
                    .map_err(|_| IdentityError::TooLong("aliyun_device_name"))?;
                Ok(Identity {
                    client_id: creds.client_id,
                    username: Some(creds.username),
                    password: Some(text("password", &creds.password)?),
                    #[cfg(feature = "selfhosted")]
                    will_topic: Text::new(),
                    keep_alive,
                    clean_session,
                    topics: Topics::Aliyun(topics),
                })
            }
            #[cfg(feature = "selfhosted")]
            Profile::SelfHosted => {
                let id = config.device_id.unwrap_or_default();
                let topics =
                    DeviceTopics::new(id).map_err(|_| IdentityError::TooLong("device_id"))?;
                Ok(Identity {
                    client_id: text("client_id", config.client_id.unwrap_or(id))?,
                    username: config.username.map(|u| text("username", u)).transpose()?,
                    password: config.password.map(|p| text("password", p)).transpose()?,
                    will_topic: text("device_id", &topics.status())?,
                    keep_alive,
                    clean_session,
                    topics: Topics::SelfHosted(topics),
                })
            }
            // `profile()` has refused the profiles this build left out.
            #[allow(unreachable_patterns)]
            other => Err(IdentityError::Config(ConfigError {
                field: "profile",
                problem: crate::config::ConfigProblem::NotBuilt {
                    feature: other.feature(),
                },
            })),
        }
    }

    /// The CONNECT packet fields.
    pub fn connect(&self) -> Connect<'_> {
        let will = match self.topics {
            #[cfg(feature = "aliyun")]
            Topics::Aliyun(_) => None,
            #[cfg(feature = "selfhosted")]
            Topics::SelfHosted(_) => Some(LastWill {
                topic: &self.will_topic,
                payload: selfhosted::STATUS_OFFLINE,
                qos: QoS::AtLeastOnce,
                retain: true,
            }),
        };
        Connect {
            client_id: &self.client_id,
            keep_alive: self.keep_alive,
            clean_session: self.clean_session,
            username: self.username.as_deref(),
            password: self.password.as_deref().map(str::as_bytes),
            will,
        }
    }

    /// The MQTT client id (for logs: it holds no secret).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The platform's topics.
    pub fn topics(&self) -> &Topics<'c> {
        &self.topics
    }
}

/// A connection that stayed up this long resets the reconnect backoff
/// ([`DriverConfig::stable_after_ms`]). A fixed value, not a configuration option: long enough
/// that a broker dropping every connection soon after CONNACK still backs off.
pub const STABLE_AFTER_MS: u32 = 60_000;

/// Timers and limits of a [`Device`] (see [`DeviceSettings::from_config`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceSettings {
    /// Connection driver settings.
    pub driver: DriverConfig,
    /// Period of state/telemetry reports (0: only on connect and on change).
    pub telemetry_period_ms: u32,
    /// Unacknowledged QoS 1/2 messages held at most (the configuration's `inflight_max`),
    /// within the compile-time table size `INFLIGHT` (larger values are clamped to it).
    pub inflight_max: u16,
}

impl DeviceSettings {
    /// The settings a configuration asks for.
    pub fn from_config(config: &DeviceConfig<'_>) -> DeviceSettings {
        DeviceSettings {
            driver: DriverConfig {
                connect_timeout_ms: config.connect_timeout_ms,
                stable_after_ms: STABLE_AFTER_MS,
                backoff: backoff_config(config.backoff_min_ms, config.backoff_max_ms),
                session: SessionConfig {
                    connack_timeout_ms: config.connect_timeout_ms,
                    ping_timeout_ms: config.ping_timeout_ms,
                    qos1_retry_ms: 0,
                },
            },
            telemetry_period_ms: config.telemetry_period_s.saturating_mul(1000),
            inflight_max: config.inflight_max,
        }
    }
}

/// Reconnect delays for the configured range; authentication and certificate failures back off
/// at least as long as the defaults for them, and never shorter than transient ones.
fn backoff_config(min_ms: u32, max_ms: u32) -> BackoffConfig {
    let defaults = BackoffConfig::default();
    BackoffConfig {
        min_ms,
        max_ms,
        auth_min_ms: defaults.auth_min_ms.max(min_ms),
        auth_max_ms: defaults.auth_max_ms.max(max_ms),
    }
}

/// What the device did; for logs, the live view and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceEvent {
    /// A connection attempt started.
    Connecting,
    /// Connected; state was (or will be) reported.
    Online {
        /// The broker kept the session.
        session_present: bool,
    },
    /// The connection failed; next attempt after `retry_in_ms`.
    Offline {
        /// Why.
        cause: FailureCause,
        /// Backoff delay.
        retry_in_ms: u32,
    },
    /// A command was handled and a reply queued.
    Command {
        /// At least one switch changed.
        changed: bool,
        /// Why it was refused, if it was (nothing changed then, unless an output failed
        /// part-way).
        error: Option<CommandError>,
    },
    /// The state/telemetry report was queued for sending.
    StateReported,
    /// Alibaba answered a property post: `code` 200 is success.
    ReportAnswered {
        /// Alink reply code.
        code: u32,
    },
    /// The broker acknowledged an outgoing QoS 1/2 message.
    Delivered {
        /// Its packet id.
        packet_id: u16,
    },
    /// The broker refused one of the device's subscriptions (index in the subscription list).
    SubscriptionRefused {
        /// Position in the SUBSCRIBE.
        index: usize,
    },
    /// Alibaba's NTP answer gave the current time.
    TimeSynced {
        /// UTC, ms since the epoch.
        utc_ms: u64,
    },
    /// A message too large for the receive buffer was dropped (and acknowledged).
    MessageSkipped {
        /// Its size.
        len: usize,
    },
    /// A message arrived on a topic the device does not handle.
    UnhandledMessage,
    /// A reply or report could not be queued (send buffer or in-flight table full).
    PublishFailed(RequestError),
}

/// What an incoming message asks the device to send back.
struct Reaction {
    reply_len: usize,
    report: bool,
    event: Option<DeviceEvent>,
}

/// The buffers of a [`Device`]: the driver's (receive ring `RX`, send queue `TX`, message store
/// `STORE`, in-flight table `INFLIGHT`) and the reply scratch space. Build them with the
/// `const fn` [`DeviceBuffers::new`], where they are to stay (a `static`, or one local), and
/// lend them to [`Device::new`].
pub struct DeviceBuffers<
    const RX: usize,
    const TX: usize,
    const STORE: usize,
    const INFLIGHT: usize,
> {
    driver: DriverBuffers<RX, TX, STORE, INFLIGHT, QOS2_IN>,
    scratch: Scratch,
}

/// Where replies and reports are written before they are queued.
struct Scratch {
    reply_topic: Text<TOPIC_CAPACITY>,
    payload: [u8; PAYLOAD_CAPACITY],
}

impl<const RX: usize, const TX: usize, const STORE: usize, const INFLIGHT: usize>
    DeviceBuffers<RX, TX, STORE, INFLIGHT>
{
    /// Empty buffers; usable in a `static` initialiser.
    pub const fn new() -> Self {
        DeviceBuffers {
            driver: DriverBuffers::new(),
            scratch: Scratch {
                reply_topic: Text::new(),
                payload: [0; PAYLOAD_CAPACITY],
            },
        }
    }
}

impl<const RX: usize, const TX: usize, const STORE: usize, const INFLIGHT: usize> Default
    for DeviceBuffers<RX, TX, STORE, INFLIGHT>
{
    fn default() -> Self {
        Self::new()
    }
}

/// The driver type inside a [`Device`]: over borrowed [`DriverBuffers`].
pub type DeviceDriver<
    'i,
    T,
    const RX: usize,
    const TX: usize,
    const STORE: usize,
    const INFLIGHT: usize,
> = Driver<
    'i,
    T,
    RX,
    TX,
    STORE,
    INFLIGHT,
    QOS2_IN,
    &'i mut DriverBuffers<RX, TX, STORE, INFLIGHT, QOS2_IN>,
>;

/// The device: a [`Driver`] plus the platform profile, `N` switches and their outputs, over
/// borrowed [`DeviceBuffers`].
pub struct Device<
    'i,
    T: Transport,
    O: SwitchOutputs,
    const N: usize,
    const RX: usize,
    const TX: usize,
    const STORE: usize,
    const INFLIGHT: usize,
> {
    identity: &'i Identity<'i>,
    driver: DeviceDriver<'i, T, RX, TX, STORE, INFLIGHT>,
    switches: SwitchBank<'i, N>,
    outputs: O,
    telemetry_period_ms: u64,
    started_at: Option<u64>,
    next_report_at: Option<u64>,
    report_pending: bool,
    #[cfg(feature = "selfhosted")]
    status_pending: bool,
    /// An event to return first on the next poll (a report queued with a command's reply).
    deferred: Option<DeviceEvent>,
    #[cfg(feature = "aliyun")]
    ids: MessageIds,
    #[cfg(feature = "aliyun")]
    pending_posts: PendingPosts<PENDING_POSTS>,
    scratch: &'i mut Scratch,
}

impl<
        'i,
        T: Transport,
        O: SwitchOutputs,
        const N: usize,
        const RX: usize,
        const TX: usize,
        const STORE: usize,
        const INFLIGHT: usize,
    > Device<'i, T, O, N, RX, TX, STORE, INFLIGHT>
{
    /// A device over `buffers` that connects on its first poll. The outputs are driven to the
    /// switches' initial states first. Messages left stored in `buffers` by an earlier device are
    /// kept and sent after the first CONNACK.
    pub fn new(
        buffers: &'i mut DeviceBuffers<RX, TX, STORE, INFLIGHT>,
        identity: &'i Identity<'i>,
        transport: T,
        mut outputs: O,
        switches: SwitchBank<'i, N>,
        settings: DeviceSettings,
    ) -> Self {
        // An output that fails now is retried by the first command; the state report shows
        // what the bank believes.
        let _ = switches.sync_outputs(&mut outputs);
        let DeviceBuffers { driver, scratch } = buffers;
        driver
            .session_mut()
            .set_inflight_limit(usize::from(settings.inflight_max));
        Device {
            identity,
            driver: Driver::with_buffers(
                transport,
                driver,
                settings.driver,
                identity.connect(),
                &[],
            ),
            switches,
            outputs,
            telemetry_period_ms: u64::from(settings.telemetry_period_ms),
            started_at: None,
            next_report_at: None,
            report_pending: false,
            #[cfg(feature = "selfhosted")]
            status_pending: false,
            deferred: None,
            #[cfg(feature = "aliyun")]
            ids: MessageIds::new(),
            #[cfg(feature = "aliyun")]
            pending_posts: PendingPosts::new(),
            scratch,
        }
    }

    /// The connection driver (state, counters, last failure).
    pub fn driver(&self) -> &DeviceDriver<'i, T, RX, TX, STORE, INFLIGHT> {
        &self.driver
    }

    /// The switches and their current states.
    pub fn switches(&self) -> &SwitchBank<'i, N> {
        &self.switches
    }

    /// The outputs (e.g. the simulated ones on the host).
    pub fn outputs(&self) -> &O {
        &self.outputs
    }

    /// Current telemetry values.
    pub fn telemetry(&self, now: u64) -> Telemetry {
        let uptime_ms = now.saturating_sub(self.started_at.unwrap_or(now));
        Telemetry {
            uptime_s: u32::try_from(crate::num::div_rem(uptime_ms, 1000).0).unwrap_or(u32::MAX),
            reconnects: self.driver.connections().saturating_sub(1),
            last_failure: self.driver.last_failure().map(|c| c.as_str()),
        }
    }

    /// Publishes an application message (QoS 1/2 ones are kept until acknowledged, across
    /// reconnects). On Alibaba, QoS 2 and retain are refused: the platform does not support them.
    pub fn publish(
        &mut self,
        now: u64,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<Option<u16>, RequestError> {
        #[cfg(feature = "aliyun")]
        if matches!(self.identity.topics, Topics::Aliyun(_))
            && (!crate::alink::qos_allowed(qos) || retain)
        {
            return Err(RequestError::Unsupported);
        }
        self.driver.publish(now, topic, payload, qos, retain)
    }

    /// Asks for a state report at the next poll (e.g. after a local button press).
    pub fn request_report(&mut self) {
        self.report_pending = true;
    }

    /// The network went away: close without waiting for the backoff to grow (see
    /// [`Driver::pause`]).
    pub fn pause(&mut self) {
        self.driver.pause();
    }

    /// The network is back: reconnect at the next poll.
    pub fn resume(&mut self, now: u64) {
        self.driver.resume(now);
    }

    /// Says goodbye to the broker and stops. On a self-hosted broker the retained status is
    /// set to `offline` first: the DISCONNECT makes the broker discard the will, which would
    /// otherwise leave a stale `online` behind.
    pub fn shutdown(&mut self) {
        #[cfg(feature = "selfhosted")]
        if let (Topics::SelfHosted(t), true) = (&self.identity.topics, self.driver.is_online()) {
            // Best effort: a full in-flight table only loses the status update.
            let _ = self.driver.queue_publish(
                0,
                &t.status(),
                selfhosted::STATUS_OFFLINE,
                // QoS 1 like `online` and the will (README, topic table); it goes out with the
                // DISCONNECT in one send, so the broker has it before the goodbye.
                QoS::AtLeastOnce,
                true,
            );
        }
        self.driver.shutdown();
    }

    /// The latest time to poll again without socket activity.
    pub fn next_wakeup(&self) -> Option<u64> {
        let report = if self.driver.is_online() {
            self.next_report_at
        } else {
            None
        };
        match (self.driver.next_wakeup(), report) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Makes all progress possible now and returns the next event; call until `None`.
    /// What one call queues (a command's reply and the state report it causes, a status) goes
    /// to the transport together at the end of the call, in one send when the transport takes
    /// it all.
    pub fn poll(&mut self, now: u64, random: u32) -> Option<DeviceEvent> {
        let event = self.poll_queued(now, random);
        self.driver.flush();
        event
    }

    /// [`Device::poll`] without the final flush: replies and reports are only queued.
    fn poll_queued(&mut self, now: u64, random: u32) -> Option<DeviceEvent> {
        self.started_at.get_or_insert(now);
        if let Some(event) = self.deferred.take() {
            return Some(event);
        }
        loop {
            let reaction = match self.driver.poll(now, random) {
                None => break,
                Some(DriverEvent::Connecting) => return Some(DeviceEvent::Connecting),
                Some(DriverEvent::Offline { cause, retry_in_ms }) => {
                    return Some(DeviceEvent::Offline { cause, retry_in_ms })
                }
                Some(DriverEvent::Online { session_present }) => {
                    self.on_online(now, session_present);
                    return Some(DeviceEvent::Online { session_present });
                }
                Some(DriverEvent::Session(Event::Message(p))) => handle_message(
                    self.identity,
                    &mut self.switches,
                    &mut self.outputs,
                    #[cfg(feature = "aliyun")]
                    &mut self.pending_posts,
                    &mut self.scratch.reply_topic,
                    &mut self.scratch.payload,
                    now,
                    p.topic,
                    p.payload,
                ),
                Some(DriverEvent::Session(Event::Published { packet_id })) => {
                    return Some(DeviceEvent::Delivered { packet_id })
                }
                Some(DriverEvent::Session(Event::Subscribed(ack))) => {
                    match ack.return_codes.iter().position(|&c| c == SUBACK_FAILURE) {
                        Some(index) => return Some(DeviceEvent::SubscriptionRefused { index }),
                        None => continue,
                    }
                }
                Some(DriverEvent::Session(Event::Skipped { len, .. })) => {
                    return Some(DeviceEvent::MessageSkipped { len })
                }
                Some(DriverEvent::Session(
                    Event::Connected { .. } | Event::Unsubscribed { .. },
                )) => continue,
            };
            // The message's borrow of the receive buffer has ended: reply now.
            if reaction.report {
                self.report_pending = true;
            }
            if reaction.reply_len > 0 {
                let payload = self
                    .scratch
                    .payload
                    .get(..reaction.reply_len)
                    .unwrap_or(&[]);
                let topic = &self.scratch.reply_topic;
                if let Err(e) =
                    self.driver
                        .queue_publish(now, topic, payload, QoS::AtLeastOnce, false)
                {
                    return Some(DeviceEvent::PublishFailed(e));
                }
            }
            // The state report the command asks for goes into the same send as the reply; its
            // event waits for the next poll.
            let report = if reaction.report {
                self.poll_reports(now)
            } else {
                None
            };
            match (reaction.event, report) {
                (Some(event), report) => {
                    self.deferred = report;
                    return Some(event);
                }
                (None, Some(report)) => return Some(report),
                (None, None) => {}
            }
        }
        self.poll_reports(now)
    }

    fn on_online(&mut self, now: u64, session_present: bool) {
        #[cfg(feature = "aliyun")]
        {
            self.ids.reset();
            self.pending_posts.clear();
        }
        if !session_present {
            let _ = match &self.identity.topics {
                #[cfg(feature = "aliyun")]
                Topics::Aliyun(t) => {
                    let subs = t.subscriptions();
                    let filters = [
                        (subs[0].as_str(), QoS::AtLeastOnce),
                        (subs[1].as_str(), QoS::AtLeastOnce),
                        (subs[2].as_str(), QoS::AtMostOnce),
                        (subs[3].as_str(), QoS::AtMostOnce),
                    ];
                    self.driver.subscribe(now, &filters)
                }
                #[cfg(feature = "selfhosted")]
                Topics::SelfHosted(t) => {
                    self.driver.subscribe(now, &[(&t.set(), QoS::AtLeastOnce)])
                }
            };
        }
        #[cfg(feature = "aliyun")]
        if let Topics::Aliyun(t) = &self.identity.topics {
            if let Ok(len) = ntp::write_ntp_request(now, &mut self.scratch.payload) {
                let payload = self.scratch.payload.get(..len).unwrap_or(&[]);
                let _ = self.driver.queue_publish(
                    now,
                    &t.ntp_request(),
                    payload,
                    QoS::AtMostOnce,
                    false,
                );
            }
        }
        #[cfg(feature = "selfhosted")]
        {
            self.status_pending = matches!(self.identity.topics, Topics::SelfHosted(_));
        }
        self.report_pending = true;
    }

    fn poll_reports(&mut self, now: u64) -> Option<DeviceEvent> {
        if !self.driver.is_online() {
            return None;
        }
        #[cfg(feature = "selfhosted")]
        if self.status_pending {
            if let Topics::SelfHosted(t) = &self.identity.topics {
                let status = t.status();
                match self.driver.queue_publish(
                    now,
                    &status,
                    selfhosted::STATUS_ONLINE,
                    QoS::AtLeastOnce,
                    true,
                ) {
                    Ok(_) => self.status_pending = false,
                    Err(RequestError::Busy) => return None,
                    Err(e) => {
                        self.status_pending = false;
                        return Some(DeviceEvent::PublishFailed(e));
                    }
                }
            }
        }
        let due = self.next_report_at.is_some_and(|at| now >= at);
        if !(self.report_pending || due) {
            return None;
        }
        let telemetry = self.telemetry(now);
        let result = match &self.identity.topics {
            #[cfg(feature = "aliyun")]
            Topics::Aliyun(t) => {
                let id = self.ids.next_id();
                match property::write_property_post(
                    id,
                    &self.switches,
                    &telemetry,
                    &mut self.scratch.payload,
                ) {
                    Ok(len) => {
                        let payload = self.scratch.payload.get(..len).unwrap_or(&[]);
                        let r = self.driver.queue_publish(
                            now,
                            &t.property_post(),
                            payload,
                            QoS::AtLeastOnce,
                            false,
                        );
                        if r.is_ok() {
                            self.pending_posts.insert(id);
                        }
                        r
                    }
                    Err(_) => Err(RequestError::Busy),
                }
            }
            #[cfg(feature = "selfhosted")]
            Topics::SelfHosted(t) => {
                match selfhosted::write_state(&self.switches, &telemetry, &mut self.scratch.payload)
                {
                    Ok(len) => {
                        let payload = self.scratch.payload.get(..len).unwrap_or(&[]);
                        self.driver
                            .queue_publish(now, &t.state(), payload, QoS::AtLeastOnce, true)
                    }
                    Err(_) => Err(RequestError::Busy),
                }
            }
        };
        match result {
            // A full in-flight table: stay pending and try again on a later poll.
            Err(RequestError::Busy) => None,
            other => {
                self.report_pending = false;
                self.next_report_at = (self.telemetry_period_ms > 0)
                    .then(|| now.saturating_add(self.telemetry_period_ms));
                Some(match other {
                    Err(e) => DeviceEvent::PublishFailed(e),
                    Ok(_) => DeviceEvent::StateReported,
                })
            }
        }
    }
}

/// Handles one incoming message; the reply (if any) is left in `payload` for `reply_topic`.
#[allow(clippy::too_many_arguments)]
fn handle_message<const N: usize, O: SwitchOutputs>(
    identity: &Identity<'_>,
    switches: &mut SwitchBank<'_, N>,
    outputs: &mut O,
    #[cfg(feature = "aliyun")] pending_posts: &mut PendingPosts<PENDING_POSTS>,
    reply_topic: &mut Text<TOPIC_CAPACITY>,
    payload: &mut [u8; PAYLOAD_CAPACITY],
    now: u64,
    topic: &str,
    message: &[u8],
) -> Reaction {
    #[cfg(not(feature = "aliyun"))]
    let _ = now; // only Alibaba's NTP answer needs the time
    let mut reaction = Reaction {
        reply_len: 0,
        report: false,
        event: None,
    };
    let handled = match &identity.topics {
        #[cfg(feature = "selfhosted")]
        Topics::SelfHosted(t) => {
            if topic != t.set().as_str() {
                reaction.event = Some(DeviceEvent::UnhandledMessage);
                return reaction;
            }
            *reply_topic = Text::try_from(t.reply().as_str()).unwrap_or_default();
            selfhosted::handle_command(message, switches, outputs, payload)
                .map(|h| (h.reply_len, h.report_state, h.error))
        }
        #[cfg(feature = "aliyun")]
        Topics::Aliyun(t) => match t.classify(topic) {
            Inbound::PropertySet => {
                *reply_topic = t.property_set_reply();
                property::handle_property_set(message, switches, outputs, payload)
                    .map(|h| (h.reply_len, h.report_state, h.error))
            }
            Inbound::Service(identifier) => {
                *reply_topic = match t.service_reply(identifier) {
                    Ok(topic) => topic,
                    Err(_) => {
                        reaction.event = Some(DeviceEvent::UnhandledMessage);
                        return reaction;
                    }
                };
                service::handle_service(identifier, message, switches, outputs, payload)
                    .map(|h| (h.reply_len, h.report_state, h.error))
            }
            Inbound::PropertyPostReply => {
                reaction.event = match property::match_post_reply(message, pending_posts) {
                    Ok(PostReply::Acked(_)) => Some(DeviceEvent::ReportAnswered { code: 200 }),
                    Ok(PostReply::Rejected { code, .. }) => {
                        Some(DeviceEvent::ReportAnswered { code })
                    }
                    Ok(PostReply::UnknownId) | Err(_) => Some(DeviceEvent::UnhandledMessage),
                };
                return reaction;
            }
            Inbound::NtpResponse => {
                reaction.event = Some(
                    match ntp::NtpResponse::parse(message).and_then(|r| r.utc_ms(now)) {
                        Ok(utc_ms) => DeviceEvent::TimeSynced { utc_ms },
                        Err(_) => DeviceEvent::UnhandledMessage,
                    },
                );
                return reaction;
            }
            Inbound::Other => {
                reaction.event = Some(DeviceEvent::UnhandledMessage);
                return reaction;
            }
        },
    };
    // The reply buffers are PAYLOAD_CAPACITY long, above every handler's minimum.
    if let Ok((reply_len, report, error)) = handled {
        reaction.reply_len = reply_len;
        reaction.report = report;
        reaction.event = Some(DeviceEvent::Command {
            changed: report,
            error,
        });
    }
    reaction
}

#[cfg(test)]
mod tests;
