//! The connection driver: transport up, TLS up, CONNECT, CONNACK, online; on any failure close,
//! name the cause, back off and try again.
//!
//! It owns the [`Transport`], the receive [`RingBuffer`] and the [`Session`], and is driven by
//! [`Driver::poll`] with the current time and a random word (for backoff jitter). Nothing in it
//! blocks: a transport whose connect takes long (a TLS handshake on a Zephyr worker thread) is
//! only polled.

use core::borrow::BorrowMut;

use crate::backoff::{Backoff, BackoffConfig, FailureClass};
use crate::codec::{decode_fixed_header, Connect, ConnectReturnCode, FixedHeader, QoS};
use crate::ring::RingBuffer;
use crate::session::{Event, ProtocolError, RequestError, Session, SessionConfig, SessionError};
use crate::transport::{ConnectProgress, Transport, TransportError};

/// Why a connection attempt or a connection ended. Stable names for logs and telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCause {
    /// The broker's host name did not resolve.
    Dns,
    /// TCP connection refused.
    TcpRefused,
    /// TCP connect plus TLS handshake took longer than [`DriverConfig::connect_timeout_ms`].
    ConnectTimeout,
    /// The broker's certificate did not verify (CA, validity, host name).
    TlsVerification,
    /// The TLS handshake failed otherwise.
    TlsHandshake,
    /// The broker refused CONNECT with this CONNACK code.
    ConnAckRefused(ConnectReturnCode),
    /// No CONNACK in time.
    ConnAckTimeout,
    /// No answer to PINGREQ in time: the link is dead.
    KeepaliveTimeout,
    /// The broker closed the connection.
    PeerClosed,
    /// The broker broke the MQTT protocol.
    Protocol(ProtocolError),
    /// Another socket error.
    Io,
}

impl FailureCause {
    /// A short stable name, e.g. `"tls_verification"` or `"connack_bad_credentials"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            FailureCause::Dns => "dns",
            FailureCause::TcpRefused => "tcp_refused",
            FailureCause::ConnectTimeout => "connect_timeout",
            FailureCause::TlsVerification => "tls_verification",
            FailureCause::TlsHandshake => "tls_handshake",
            FailureCause::ConnAckRefused(code) => match code {
                ConnectReturnCode::UnacceptableProtocolVersion => "connack_protocol_version",
                ConnectReturnCode::IdentifierRejected => "connack_identifier_rejected",
                ConnectReturnCode::ServerUnavailable => "connack_server_unavailable",
                ConnectReturnCode::BadUsernameOrPassword => "connack_bad_credentials",
                ConnectReturnCode::NotAuthorized => "connack_not_authorized",
                ConnectReturnCode::Accepted => "connack_accepted",
            },
            FailureCause::ConnAckTimeout => "connack_timeout",
            FailureCause::KeepaliveTimeout => "keepalive_timeout",
            FailureCause::PeerClosed => "peer_closed",
            FailureCause::Protocol(_) => "protocol_error",
            FailureCause::Io => "io",
        }
    }

    /// Failures that retrying soon cannot fix (credentials, certificates) back off longer.
    pub fn class(&self) -> FailureClass {
        match self {
            FailureCause::TlsVerification
            | FailureCause::ConnAckRefused(
                ConnectReturnCode::UnacceptableProtocolVersion
                | ConnectReturnCode::IdentifierRejected
                | ConnectReturnCode::BadUsernameOrPassword
                | ConnectReturnCode::NotAuthorized,
            ) => FailureClass::Authentication,
            _ => FailureClass::Transient,
        }
    }

    fn from_transport(e: TransportError) -> FailureCause {
        match e {
            TransportError::Dns => FailureCause::Dns,
            TransportError::TcpRefused => FailureCause::TcpRefused,
            TransportError::Timeout => FailureCause::ConnectTimeout,
            TransportError::TlsVerification => FailureCause::TlsVerification,
            TransportError::TlsHandshake => FailureCause::TlsHandshake,
            TransportError::Closed => FailureCause::PeerClosed,
            TransportError::WouldBlock | TransportError::Io => FailureCause::Io,
        }
    }

    fn from_session(e: SessionError) -> FailureCause {
        match e {
            SessionError::Refused(code) => FailureCause::ConnAckRefused(code),
            SessionError::ConnAckTimeout => FailureCause::ConnAckTimeout,
            SessionError::KeepaliveTimeout => FailureCause::KeepaliveTimeout,
            SessionError::Protocol(p) => FailureCause::Protocol(p),
        }
    }
}

/// Shortest wait before reconnecting. Full jitter may pick 0; a broker that drops every
/// connection at once must still not turn the device into a busy loop.
pub const MIN_RETRY_MS: u32 = 100;

/// Driver settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriverConfig {
    /// Limit for DNS + TCP connect + TLS handshake.
    pub connect_timeout_ms: u32,
    /// A connection that stayed up this long resets the backoff.
    pub stable_after_ms: u32,
    /// Reconnect delays.
    pub backoff: BackoffConfig,
    /// Session timers.
    pub session: SessionConfig,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            connect_timeout_ms: 20_000,
            stable_after_ms: 60_000,
            backoff: BackoffConfig::default(),
            session: SessionConfig::default(),
        }
    }
}

/// Where the connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Waiting before the next attempt.
    Backoff {
        /// Time of the next attempt.
        until: u64,
    },
    /// DNS, TCP and TLS in progress (started at `since`).
    Connecting {
        /// Start of the attempt.
        since: u64,
    },
    /// CONNECT sent, waiting for CONNACK.
    AwaitConnAck,
    /// Connected to the broker.
    Online {
        /// When CONNACK arrived.
        since: u64,
    },
    /// Paused by [`Driver::pause`] (e.g. the network is down) until [`Driver::resume`].
    Paused,
    /// Stopped by [`Driver::shutdown`].
    Stopped,
}

/// What happened during a [`Driver::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverEvent<'a> {
    /// A connection attempt started.
    Connecting,
    /// CONNACK accepted; subscriptions were re-made if the broker kept no session.
    Online {
        /// The broker kept the earlier session.
        session_present: bool,
    },
    /// The connection or attempt failed; the next attempt is in `retry_in_ms`.
    Offline {
        /// Why.
        cause: FailureCause,
        /// Backoff delay chosen.
        retry_in_ms: u32,
    },
    /// A session event (messages, acknowledgements, ...). `Connected` is reported as `Online`.
    Session(Event<'a>),
}

/// The large state of a [`Driver`]: the [`Session`] (send queue, message store, in-flight table)
/// and the receive ring. Kept apart from the driver so that it can be built in place: its
/// constructor is a `const fn`, so it can sit in a `static` (or a `static` mutex on an RTOS)
/// and the driver only borrows it (see [`Driver::with_buffers`]). Moving a driver then moves a
/// few dozen bytes, not the buffers.
pub struct DriverBuffers<
    const RX: usize,
    const TX: usize,
    const STORE: usize,
    const INFLIGHT: usize,
    const QOS2_IN: usize,
> {
    session: Session<TX, STORE, INFLIGHT, QOS2_IN>,
    rx: RingBuffer<RX>,
}

impl<
        const RX: usize,
        const TX: usize,
        const STORE: usize,
        const INFLIGHT: usize,
        const QOS2_IN: usize,
    > DriverBuffers<RX, TX, STORE, INFLIGHT, QOS2_IN>
{
    /// Empty buffers. The session's timing is set by the driver that takes them.
    ///
    /// Every byte is zero, so a `static` of them (or of [`crate::device::DeviceBuffers`]) is
    /// placed in `.bss`: with one non-zero field the whole image, buffers included, would be
    /// stored in flash as `.data` (5,968 bytes at the firmware's buffer sizes).
    pub const fn new() -> Self {
        DriverBuffers {
            session: Session::new_default(),
            rx: RingBuffer::new(),
        }
    }

    /// The session inside.
    pub fn session(&self) -> &Session<TX, STORE, INFLIGHT, QOS2_IN> {
        &self.session
    }

    /// The session inside, mutably (limits to set before a driver takes the buffers).
    pub fn session_mut(&mut self) -> &mut Session<TX, STORE, INFLIGHT, QOS2_IN> {
        &mut self.session
    }
}

impl<
        const RX: usize,
        const TX: usize,
        const STORE: usize,
        const INFLIGHT: usize,
        const QOS2_IN: usize,
    > Default for DriverBuffers<RX, TX, STORE, INFLIGHT, QOS2_IN>
{
    fn default() -> Self {
        Self::new()
    }
}

/// Connection driver over a transport `T`, with the session's buffer sizes as parameters
/// (`RX` is the receive ring; see [`Session`] for the others). `B` is where the buffers live:
/// inside the driver (the default, [`Driver::new`]) or borrowed, `&mut DriverBuffers`
/// ([`Driver::with_buffers`]).
///
/// # Sending
///
/// The driver keeps the rule of [`Transport::send`] for every transport: after a send that
/// took nothing (`Err(WouldBlock)` or `Ok(0)`) it remembers how many bytes it offered and offers
/// exactly those bytes again, and nothing more, until they are taken. This is what a TLS socket
/// over Mbed TLS needs (its record is encrypted and queued on the first call). The session's
/// send queue only appends and consumes from the front, so those bytes stay in place.
pub struct Driver<
    'a,
    T: Transport,
    const RX: usize,
    const TX: usize,
    const STORE: usize,
    const INFLIGHT: usize,
    const QOS2_IN: usize,
    B = DriverBuffers<RX, TX, STORE, INFLIGHT, QOS2_IN>,
> {
    link: Link<T>,
    buffers: B,
    config: DriverConfig,
    connect: Connect<'a>,
    subscriptions: &'a [(&'a str, QoS)],
    connections: u32,
}

/// The connection's life-cycle state, apart from the session and the receive buffer so that a
/// failure can be recorded while an event still borrows the buffer.
struct Link<T> {
    transport: T,
    backoff: Backoff,
    state: LinkState,
    last_failure: Option<FailureCause>,
    /// The receive buffer holds bytes of a dead connection; cleared on the next poll.
    rx_stale: bool,
    /// What the driver knows about the receive ring's framing, to read only when needed.
    rx_view: RxView,
    /// Length of the last send that the transport did not take (`WouldBlock` or `Ok(0)`): the
    /// next send offers exactly these bytes again (the [`Transport::send`] rule). 0: none.
    unaccepted: usize,
}

/// What the driver knows about the packets in the receive ring, so that [`Driver::poll`] can hand
/// out events already received without a `recv` call (which, on a drained socket, is a failed
/// system call per event).
///
/// Only an optimisation: when a packet the view counted gives no event after all (a late PUBACK,
/// a repeated QoS 2 PUBLISH), the poll returns `None` without having read everything, and
/// `must_read` makes the next poll read until the transport would block. The bytes left are
/// in the transport, where a wait for readability sees them.
#[derive(Debug, Clone, Copy, Default)]
struct RxView {
    /// The last event borrowed the packet at the head of the ring; the session releases it on
    /// the next `poll_event`, so it does not count as a new packet.
    surfaced: bool,
    /// A packet larger than the ring is being skipped: the ring's head is not a packet start.
    skipping: bool,
    /// The last poll returned `None` without reading all there was: this one reads until the
    /// transport would block, whatever the view says.
    must_read: bool,
}

impl<T: Transport> Link<T> {
    /// Closes the connection, keeps unacknowledged messages and schedules the next attempt.
    fn fail<const TX: usize, const STORE: usize, const INFLIGHT: usize, const QOS2_IN: usize>(
        &mut self,
        session: &mut Session<TX, STORE, INFLIGHT, QOS2_IN>,
        now: u64,
        random: u32,
        cause: FailureCause,
    ) -> DriverEvent<'static> {
        self.rx_stale = true;
        self.unaccepted = 0;
        self.transport.close();
        session.connection_lost();
        let retry_in_ms = self
            .backoff
            .next_delay_ms(cause.class(), random)
            .max(MIN_RETRY_MS);
        self.state = LinkState::Backoff {
            until: now.saturating_add(u64::from(retry_in_ms)),
        };
        self.last_failure = Some(cause);
        #[cfg(feature = "log")]
        log::warn!(
            "mqtt: connection failed ({}), retry in {} ms",
            cause.as_str(),
            retry_in_ms
        );
        DriverEvent::Offline { cause, retry_in_ms }
    }
}

impl<
        'a,
        T: Transport,
        const RX: usize,
        const TX: usize,
        const STORE: usize,
        const INFLIGHT: usize,
        const QOS2_IN: usize,
    > Driver<'a, T, RX, TX, STORE, INFLIGHT, QOS2_IN>
{
    /// A driver that holds its buffers and connects on the first poll with `connect` and,
    /// whenever the broker kept no session, subscribes to `subscriptions`. The driver is returned
    /// by value, buffers included; to keep them in place, use [`Driver::with_buffers`].
    pub fn new(
        transport: T,
        config: DriverConfig,
        connect: Connect<'a>,
        subscriptions: &'a [(&'a str, QoS)],
    ) -> Self {
        Driver::with_buffers(
            transport,
            DriverBuffers::new(),
            config,
            connect,
            subscriptions,
        )
    }
}

impl<
        'a,
        T: Transport,
        const RX: usize,
        const TX: usize,
        const STORE: usize,
        const INFLIGHT: usize,
        const QOS2_IN: usize,
        B: BorrowMut<DriverBuffers<RX, TX, STORE, INFLIGHT, QOS2_IN>>,
    > Driver<'a, T, RX, TX, STORE, INFLIGHT, QOS2_IN, B>
{
    /// Like [`Driver::new`], over `buffers` (usually `&mut DriverBuffers`, which may live in a
    /// `static`). Bytes queued in them for an earlier connection are dropped and the receive
    /// ring is emptied; stored QoS 1/2 messages are kept and go out after the first CONNACK.
    pub fn with_buffers(
        transport: T,
        mut buffers: B,
        config: DriverConfig,
        connect: Connect<'a>,
        subscriptions: &'a [(&'a str, QoS)],
    ) -> Self {
        let b = buffers.borrow_mut();
        b.session.set_config(config.session);
        b.session.connection_lost();
        b.rx.clear();
        Driver {
            link: Link {
                transport,
                backoff: Backoff::new(config.backoff),
                state: LinkState::Backoff { until: 0 },
                last_failure: None,
                rx_stale: false,
                rx_view: RxView::default(),
                unaccepted: 0,
            },
            buffers,
            config,
            connect,
            subscriptions,
            connections: 0,
        }
    }

    /// Where the connection is.
    pub fn state(&self) -> LinkState {
        self.link.state
    }

    /// Whether CONNACK was accepted on the current connection.
    pub fn is_online(&self) -> bool {
        matches!(self.link.state, LinkState::Online { .. })
    }

    /// Successful connections so far; each one after the first is a reconnect.
    pub fn connections(&self) -> u32 {
        self.connections
    }

    /// The cause of the most recent failure.
    pub fn last_failure(&self) -> Option<FailureCause> {
        self.link.last_failure
    }

    /// The session, for counters.
    pub fn session(&self) -> &Session<TX, STORE, INFLIGHT, QOS2_IN> {
        &self.buffers.borrow().session
    }

    /// The transport, e.g. to read its last detailed error for a log line.
    pub fn transport(&self) -> &T {
        &self.link.transport
    }

    /// The transport, mutably (tests, transport-specific controls).
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.link.transport
    }

    /// Publishes through the session (see [`Session::publish`]): QoS 1/2 messages are kept and
    /// delivered after reconnects, QoS 0 needs the connection to be online. The bytes are handed
    /// to the transport at once; to send several messages in one write, use
    /// [`Driver::queue_publish`] and [`Driver::flush`].
    pub fn publish(
        &mut self,
        now: u64,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<Option<u16>, RequestError> {
        let r = self
            .buffers
            .borrow_mut()
            .session
            .publish(now, topic, payload, qos, retain);
        self.flush();
        r
    }

    /// Like [`Driver::publish`], but leaves the encoded PUBLISH in the send queue: it goes out
    /// with the next [`Driver::flush`] or [`Driver::poll`], together with everything queued
    /// before it, in one [`Transport::send`] when the transport takes it all. Over TLS that is
    /// one record and, with `TCP_NODELAY`, one segment for a burst of messages instead of one
    /// each, which saves work on both ends. Returns [`RequestError::Busy`] when the send queue
    /// or the store is full, as `publish` does: flush or poll, then try again.
    pub fn queue_publish(
        &mut self,
        now: u64,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<Option<u16>, RequestError> {
        self.buffers
            .borrow_mut()
            .session
            .publish(now, topic, payload, qos, retain)
    }

    /// Hands the send queue to the transport now, as far as it takes it (the rest goes out on
    /// later polls). Does nothing while not connected. A send error is not returned: the
    /// connection is then broken and the next [`Driver::poll`] reports it.
    pub fn flush(&mut self) {
        if matches!(
            self.link.state,
            LinkState::AwaitConnAck | LinkState::Online { .. }
        ) {
            self.flush_quietly();
        }
    }

    /// Subscribes on the current connection (not re-made after a reconnect; pass long-lived
    /// subscriptions to [`Driver::new`] instead).
    pub fn subscribe(&mut self, now: u64, filters: &[(&str, QoS)]) -> Result<u16, RequestError> {
        let r = self.buffers.borrow_mut().session.subscribe(now, filters);
        self.flush();
        r
    }

    /// Sends DISCONNECT if online, closes the transport and stops connecting.
    pub fn shutdown(&mut self) {
        self.buffers.borrow_mut().session.disconnect();
        self.flush();
        self.link.transport.close();
        self.buffers.borrow_mut().session.connection_lost();
        self.link.unaccepted = 0;
        self.link.rx_stale = true;
        self.link.state = LinkState::Stopped;
    }

    /// The network under the transport went away (cable unplugged, address lost): closes the
    /// connection without a DISCONNECT and stops connecting, so the backoff does not grow while
    /// nothing can succeed. Unacknowledged messages are kept. No-op after [`Driver::shutdown`].
    pub fn pause(&mut self) {
        if self.link.state == LinkState::Stopped || self.link.state == LinkState::Paused {
            return;
        }
        self.link.transport.close();
        self.buffers.borrow_mut().session.connection_lost();
        self.link.unaccepted = 0;
        self.link.rx_stale = true;
        self.link.state = LinkState::Paused;
    }

    /// The network is back: connect at the next poll with a fresh backoff.
    pub fn resume(&mut self, now: u64) {
        if self.link.state == LinkState::Paused {
            self.link.backoff.reset();
            self.link.state = LinkState::Backoff { until: now };
        }
    }

    /// The latest time by which [`Driver::poll`] should be called again if no socket activity
    /// happens before; `None` when only socket activity can change anything.
    pub fn next_wakeup(&self) -> Option<u64> {
        match self.link.state {
            LinkState::Backoff { until } => Some(until),
            LinkState::Connecting { since } => {
                Some(since.saturating_add(u64::from(self.config.connect_timeout_ms)))
            }
            LinkState::AwaitConnAck | LinkState::Online { .. } => {
                self.buffers.borrow().session.next_timeout()
            }
            LinkState::Paused | LinkState::Stopped => None,
        }
    }

    /// Makes all progress possible now without blocking and returns the next event, if any.
    /// Call it until it returns `None`, then wait for socket activity or [`Driver::next_wakeup`].
    /// `random` is a fresh random word (used for backoff jitter).
    pub fn poll(&mut self, now: u64, random: u32) -> Option<DriverEvent<'_>> {
        if self.link.rx_stale {
            self.buffers.borrow_mut().rx.clear();
            self.link.rx_view = RxView::default();
            self.link.rx_stale = false;
        }
        match self.link.state {
            LinkState::Paused | LinkState::Stopped => return None,
            LinkState::Backoff { until } => {
                if now < until {
                    return None;
                }
                if let Err(e) = self.link.transport.start_connect() {
                    return Some(self.fail(now, random, FailureCause::from_transport(e)));
                }
                self.link.state = LinkState::Connecting { since: now };
                return Some(DriverEvent::Connecting);
            }
            LinkState::Connecting { since } => match self.link.transport.poll_connect() {
                Ok(ConnectProgress::Pending) => {
                    if now.saturating_sub(since) >= u64::from(self.config.connect_timeout_ms) {
                        return Some(self.fail(now, random, FailureCause::ConnectTimeout));
                    }
                    return None;
                }
                Ok(ConnectProgress::Established) => {
                    // A new connection: nothing of the old one is owed to this transport.
                    self.link.unaccepted = 0;
                    if self
                        .buffers
                        .borrow_mut()
                        .session
                        .connect(now, &self.connect)
                        .is_err()
                    {
                        // CONNECT does not fit the send buffer: a configuration error that
                        // no retry fixes; reported like a refusal so it backs off long.
                        let cause =
                            FailureCause::ConnAckRefused(ConnectReturnCode::IdentifierRejected);
                        return Some(self.fail(now, random, cause));
                    }
                    self.link.state = LinkState::AwaitConnAck;
                }
                Err(e) => return Some(self.fail(now, random, FailureCause::from_transport(e))),
            },
            LinkState::AwaitConnAck | LinkState::Online { .. } => {}
        }

        // Events already received come first; the transport is read once they are out.
        let pumped = if self.rx_holds_event() {
            self.flush_result().map(|()| false)
        } else {
            self.pump()
        };
        self.link.rx_view.must_read = false;
        // Bytes that arrived just before the peer closed (a refusing CONNACK, a last message)
        // are still decoded: a broker refusing CONNECT closes right after the CONNACK, and the
        // return code it carries is a better cause than "peer closed".
        let (drained, closed) = match pumped {
            Ok(drained) => (drained, None),
            Err(cause) if !self.buffers.borrow().rx.is_empty() => (true, Some(cause)),
            Err(cause) => return Some(self.fail(now, random, cause)),
        };
        if let Err(e) = self.buffers.borrow_mut().session.handle_timeout(now) {
            return Some(self.fail(now, random, FailureCause::from_session(e)));
        }
        if let LinkState::Online { since } = self.link.state {
            if self.link.backoff.attempts() > 0
                && now.saturating_sub(since) >= u64::from(self.config.stable_after_ms)
            {
                self.link.backoff.reset();
            }
        }
        self.flush_quietly();

        let b = self.buffers.borrow_mut();
        let view = &mut self.link.rx_view;
        view.surfaced = false;
        let event = b.session.poll_event(now, &mut b.rx);
        match &event {
            Ok(Some(Event::Message(_) | Event::Subscribed(_))) => view.surfaced = true,
            Ok(Some(Event::Skipped { .. })) => view.skipping = true,
            // Any other event means the skip is over. (`self.rx` cannot be looked at here to
            // see it end earlier: it stays borrowed by the event.)
            Ok(Some(_)) => view.skipping = false,
            Ok(None) | Err(_) => {}
        }
        // Nothing to report, but the transport may hold more: the next poll reads it all.
        if matches!(event, Ok(None)) && !drained {
            view.must_read = true;
        }
        let cause = match event {
            Ok(Some(Event::Connected { session_present })) => {
                self.link.state = LinkState::Online { since: now };
                self.connections = self.connections.saturating_add(1);
                #[cfg(feature = "log")]
                log::info!("mqtt: online (session present: {})", session_present);
                if !session_present && !self.subscriptions.is_empty() {
                    // The send buffer was just emptied by CONNECT going out, so this fits unless
                    // TX is smaller than the SUBSCRIBE: then the broker never routes to us,
                    // which the SUBACK-less start makes visible in tests.
                    let _ = b.session.subscribe(now, self.subscriptions);
                }
                return Some(DriverEvent::Online { session_present });
            }
            Ok(Some(event)) => return Some(DriverEvent::Session(event)),
            // Everything received before a close is handled: now report the close.
            Ok(None) => closed?,
            Err(e) => FailureCause::from_session(e),
        };
        // `self.rx` still counts as borrowed here (the borrow checker cannot see that `None` or
        // an error holds no borrow), so the failure is recorded through the other fields.
        Some(self.link.fail(&mut b.session, now, random, cause))
    }

    /// Sends what is queued, then reads until the ring holds an event, the ring is full or the
    /// transport would block; `Ok(true)` in the last two cases (nothing more can be read now).
    /// Stopping at the first event saves the failed `recv` that reading until it would block
    /// costs on every pass; the next read happens once the ring's events are handed out.
    fn pump(&mut self) -> Result<bool, FailureCause> {
        self.flush_result()?;
        loop {
            let space = self.buffers.borrow_mut().rx.write_space();
            if space.is_empty() {
                return Ok(true);
            }
            match self.link.transport.recv(space) {
                Ok(0) => return Err(FailureCause::PeerClosed),
                Ok(n) => self.buffers.borrow_mut().rx.commit(n),
                Err(TransportError::WouldBlock) => return Ok(true),
                Err(e) => return Err(FailureCause::from_transport(e)),
            }
            if self.rx_holds_event() {
                return Ok(false);
            }
        }
    }

    /// Whether the receive ring already holds a whole packet that the session turns into an
    /// event (so this poll returns one without reading). `false` when unsure: then the poll
    /// reads, as it always may.
    fn rx_holds_event(&self) -> bool {
        let view = self.link.rx_view;
        let b = self.buffers.borrow();
        // The session decodes nothing while it has no room for an acknowledgement.
        if view.must_read || view.skipping || TX.saturating_sub(b.session.transmit().len()) < 4 {
            return false;
        }
        let mut at = 0;
        if view.surfaced {
            match peek_header(&b.rx, 0) {
                Some(h) => at = h.packet_len(),
                None => return false,
            }
        }
        match peek_header(&b.rx, at) {
            Some(h) => {
                // Types that always or almost always surface as an event. PINGRESP, PUBREC and
                // PUBREL do not: after one of them the poll would end without reading.
                matches!(h.packet_type(), 2 | 3 | 4 | 7 | 9 | 11)
                    && at.saturating_add(h.packet_len()) <= b.rx.len()
            }
            None => false,
        }
    }

    /// Hands the send queue to the transport until it is empty or the transport takes no more.
    /// After a send that took nothing, the next one offers the same bytes (see [`Driver`]).
    fn flush_result(&mut self) -> Result<(), FailureCause> {
        let session = &mut self.buffers.borrow_mut().session;
        loop {
            let pending = session.transmit();
            if pending.is_empty() {
                return Ok(());
            }
            let offer = match self.link.unaccepted {
                0 => pending,
                n => pending.get(..n).unwrap_or(pending),
            };
            match self.link.transport.send(offer) {
                Ok(0) | Err(TransportError::WouldBlock) => {
                    self.link.unaccepted = offer.len();
                    return Ok(());
                }
                Ok(n) => {
                    let n = n.min(offer.len());
                    // Taken in part: the rest of the offered bytes is still owed first.
                    self.link.unaccepted = self.link.unaccepted.saturating_sub(n);
                    session.transmitted(n);
                }
                Err(e) => return Err(FailureCause::from_transport(e)),
            }
        }
    }

    /// Sends what can be sent; a send error shows up again on the next poll's pump.
    fn flush_quietly(&mut self) {
        let _ = self.flush_result();
    }

    fn fail(&mut self, now: u64, random: u32, cause: FailureCause) -> DriverEvent<'static> {
        self.link
            .fail(&mut self.buffers.borrow_mut().session, now, random, cause)
    }
}

/// The fixed header of the packet starting `at` bytes into the ring, if that many bytes are
/// there to read it. A header spans at most 5 bytes; they may wrap around the ring's end.
fn peek_header<const N: usize>(rx: &RingBuffer<N>, at: usize) -> Option<FixedHeader> {
    let (a, b) = rx.readable();
    let mut head = [0u8; 5];
    let mut seen = 0;
    for (slot, &byte) in head.iter_mut().zip(a.iter().chain(b.iter()).skip(at)) {
        *slot = byte;
        seen += 1;
    }
    decode_fixed_header(head.get(..seen)?).ok().flatten()
}

#[cfg(test)]
mod tests;
