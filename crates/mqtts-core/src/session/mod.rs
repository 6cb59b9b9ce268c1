//! The MQTT 3.1.1 client session as a sans-IO state machine.
//!
//! The session never touches a socket or a clock. The caller feeds it received bytes (through the
//! [`RingBuffer`] it owns), the current time in milliseconds, and requests (connect, publish,
//! subscribe); it hands back bytes to send ([`Session::transmit`]), events
//! ([`Session::poll_event`]) and the next time it wants to be woken ([`Session::next_timeout`]).
//!
//! ```
//! use mqtts_core::codec::{Connect, QoS};
//! use mqtts_core::ring::RingBuffer;
//! use mqtts_core::session::{Event, Session, SessionConfig};
//!
//! let mut session: Session<256, 512, 4, 4> = Session::new(SessionConfig::default());
//! let mut rx: RingBuffer<256> = RingBuffer::new();
//! let connect = Connect {
//!     client_id: "dev1",
//!     keep_alive: 60,
//!     clean_session: true,
//!     username: None,
//!     password: None,
//!     will: None,
//! };
//! session.connect(0, &connect).unwrap();
//! assert_eq!(session.transmit()[0], 0x10); // CONNECT, ready for the socket
//! let n = session.transmit().len();
//! session.transmitted(n);
//!
//! rx.push(&[0x20, 0x02, 0x00, 0x00]); // CONNACK from the broker
//! let event = session.poll_event(5, &mut rx).unwrap();
//! assert_eq!(event, Some(Event::Connected { session_present: false }));
//!
//! let id = session.publish(6, "devices/dev1/state", b"{}", QoS::AtLeastOnce, false).unwrap();
//! assert_eq!(id, Some(1));
//! rx.push(&[0x40, 0x02, 0x00, 0x01]); // PUBACK
//! session.transmitted(session.transmit().len());
//! assert_eq!(session.poll_event(7, &mut rx).unwrap(), Some(Event::Published { packet_id: 1 }));
//! ```

mod outbox;
mod txbuf;

#[cfg(test)]
mod tests;

use crate::codec::{
    self, ConnAck, Connect, ConnectReturnCode, DecodeError, EncodeError, FixedHeader, Packet,
    Publish, QoS, SubAck, Subscribe, SubscribeTopics, Unsubscribe, UnsubscribeTopics,
};
use crate::ring::RingBuffer;
use outbox::{Outbox, Stage};
use txbuf::TxBuf;

/// Timing of a session. All times are in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// How long the broker may take to answer CONNECT with CONNACK.
    pub connack_timeout_ms: u32,
    /// How long to wait for any packet after a PINGREQ before the link is declared dead.
    pub ping_timeout_ms: u32,
    /// Resend an unacknowledged QoS 1 PUBLISH (with DUP) after this long on the same connection;
    /// 0 resends only after a reconnect, as MQTT 3.1.1 requires at the least.
    pub qos1_retry_ms: u32,
}

impl SessionConfig {
    /// The defaults: 10 s for CONNACK and for the answer to PINGREQ, QoS 1 resent only after a
    /// reconnect. A constant so that buffers holding a session can be built in a `const fn`.
    pub const DEFAULT: SessionConfig = SessionConfig {
        connack_timeout_ms: 10_000,
        ping_timeout_ms: 10_000,
        qos1_retry_ms: 0,
    };
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig::DEFAULT
    }
}

/// Connection state of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No connection; QoS 1/2 publishes are stored for the next one.
    Disconnected,
    /// CONNECT queued or sent, CONNACK not yet received.
    AwaitConnAck,
    /// CONNACK accepted.
    Connected,
}

/// Something the application should know about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// The broker accepted the connection.
    Connected {
        /// The broker kept the session (subscriptions and in-flight messages) of an earlier
        /// connection; when false, subscriptions must be made again.
        session_present: bool,
    },
    /// An application message arrived (delivered once for QoS 2).
    Message(Publish<'a>),
    /// The broker acknowledged an outgoing QoS 1 (PUBACK) or completed a QoS 2 (PUBCOMP) message.
    Published {
        /// Id that [`Session::publish`] returned.
        packet_id: u16,
    },
    /// SUBACK: one return code per requested filter; 0x80 means that filter was refused.
    Subscribed(SubAck<'a>),
    /// UNSUBACK.
    Unsubscribed {
        /// Id that [`Session::unsubscribe`] returned.
        packet_id: u16,
    },
    /// A packet larger than the receive buffer arrived and was skipped; framing is kept and a
    /// QoS 1/2 PUBLISH was still acknowledged so the broker does not send it again.
    Skipped {
        /// MQTT packet type (high nibble of the first byte).
        packet_type: u8,
        /// Whole packet length in bytes.
        len: usize,
    },
}

/// The broker broke the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// The bytes were not a valid MQTT 3.1.1 packet.
    Decode(DecodeError),
    /// A packet a broker must not send, or not in this state (e.g. a second CONNACK); holds the
    /// packet type.
    UnexpectedPacket(u8),
    /// A SUBACK's return code count differs from the SUBSCRIBE's filter count.
    SubAckCountMismatch,
}

/// Why the session's connection cannot go on. The caller closes the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// CONNACK refused the connection with this code (1 to 5).
    Refused(ConnectReturnCode),
    /// No CONNACK within [`SessionConfig::connack_timeout_ms`].
    ConnAckTimeout,
    /// No packet within [`SessionConfig::ping_timeout_ms`] after a PINGREQ.
    KeepaliveTimeout,
    /// The broker broke the protocol.
    Protocol(ProtocolError),
}

/// Why a request (connect, publish, subscribe) was not accepted. Nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// Needs an accepted connection (QoS 0 publish, subscribe, unsubscribe).
    NotConnected,
    /// The in-flight table, the message store or the send buffer is full; try again after
    /// acknowledgements arrived or the socket took more bytes.
    Busy,
    /// The request is not valid MQTT (bad topic, empty filter list, too large, ...), or its packet
    /// is larger than the send buffer (or, for QoS 1/2, the message store) and could never be
    /// sent (`Invalid(EncodeError::BufferTooSmall)`); retrying cannot help.
    Invalid(EncodeError),
    /// Valid MQTT, but the platform does not support it (Alibaba Cloud IoT: QoS 2, retain);
    /// retrying cannot help.
    Unsupported,
}

/// Largest acknowledgement the session may have to queue while reading one packet.
const ACK_LEN: usize = 4;
/// Outstanding SUBSCRIBE / UNSUBSCRIBE requests tracked at once.
const MAX_PENDING_REQUESTS: usize = 4;
/// `PendingRequest::filters` value marking an UNSUBSCRIBE.
const UNSUBSCRIBE: u8 = 0;

#[derive(Debug, Clone, Copy)]
struct PendingRequest {
    packet_id: u16,
    filters: u8,
}

/// What handling one decoded packet asks for.
enum Handled {
    /// Nothing more to report.
    Consumed,
    /// An event that borrows nothing.
    Event(Event<'static>),
    /// The packet itself is the event (a message or a SUBACK).
    Surface,
}

/// What reading the next packet asks of [`Session::poll_event`].
enum Step {
    /// Not enough bytes, or the send buffer is too full to queue an acknowledgement.
    Wait,
    /// The packet was consumed and needs no event.
    Consumed,
    /// An event that borrows nothing.
    Event(Event<'static>),
    /// The packet at the front of the ring (this long) is surfaced as an event.
    Surface(FixedHeader),
}

/// An MQTT 3.1.1 client session.
///
/// - `TX`: send buffer bytes (must hold the largest packet sent, CONNECT included).
/// - `STORE`: bytes for unacknowledged QoS 1/2 PUBLISH packets, kept across reconnects.
/// - `INFLIGHT`: how many QoS 1/2 messages may be unacknowledged at once.
/// - `QOS2_IN`: incoming QoS 2 packet ids remembered until their PUBREL (exactly-once delivery).
///
/// Times (`now`, [`Session::next_timeout`]) are the caller's milliseconds as `u64`; inside, the
/// session keeps their low 32 bits and compares only wrapping differences. That is exact as long
/// as [`Session::poll_event`] or [`Session::handle_timeout`] runs at least every 2^31 ms
/// (24.8 days) and the [`SessionConfig`] times are below 2^31 ms.
#[derive(Debug)]
pub struct Session<const TX: usize, const STORE: usize, const INFLIGHT: usize, const QOS2_IN: usize>
{
    /// The timing. A session built by [`Session::new_default`] has zeros here and `configured`
    /// false until [`Session::connect`] puts [`SessionConfig::DEFAULT`] in (the timers read
    /// `config` only once connected or connecting). Every field of such a session is zero, so
    /// a `static` holding one is zero-initialised and lands in `.bss`; a non-zero field would
    /// put its whole image, buffers included, in flash as `.data`.
    config: SessionConfig,
    configured: bool,
    state: State,
    /// The latest `now` given to `connect`, `poll_event` or `handle_timeout`: the reference
    /// that turns the 32-bit deadlines back into the caller's 64-bit time (`next_timeout`).
    clock: u64,
    keep_alive_ms: u32,
    /// The current CONNECT asked for a clean session (set by `connect`, read only in
    /// `AwaitConnAck`, which only `connect` enters).
    clean_session: bool,
    tx: TxBuf<TX>,
    outbox: Outbox<INFLIGHT, STORE>,
    incoming_qos2: heapless::Vec<u16, QOS2_IN>,
    pending: heapless::Vec<PendingRequest, MAX_PENDING_REQUESTS>,
    next_id: u16,
    connect_at: Millis,
    last_tx: Millis,
    last_rx: Millis,
    ping_sent_at: Option<Millis>,
    /// Bytes of the packet surfaced by the last event, consumed on the next poll.
    surfaced: usize,
    /// Bytes of an oversized packet still to drop.
    skip: usize,
    /// How far the in-flight limit is below `INFLIGHT` (the limit is `INFLIGHT - inflight_below`,
    /// in `1..=INFLIGHT`; see [`Session::set_inflight_limit`]): stored this way round so that a
    /// new session, without a limit, is all zeros.
    inflight_below: usize,
}

impl<const TX: usize, const STORE: usize, const INFLIGHT: usize, const QOS2_IN: usize>
    Session<TX, STORE, INFLIGHT, QOS2_IN>
{
    /// A disconnected session with an empty store.
    pub const fn new(config: SessionConfig) -> Self {
        Self::build(config, true)
    }

    /// A disconnected session with an empty store and the [`SessionConfig::DEFAULT`] timing (or
    /// the one [`Session::set_config`] gives it before the first connect): the same as
    /// `Session::new(SessionConfig::DEFAULT)`, but every byte of it is zero, so a `static`
    /// holding it (buffers included) is placed in `.bss`, where `new`'s non-zero timing would
    /// store the whole image in flash as `.data`.
    pub const fn new_default() -> Self {
        const ZERO: SessionConfig = SessionConfig {
            connack_timeout_ms: 0,
            ping_timeout_ms: 0,
            qos1_retry_ms: 0,
        };
        Self::build(ZERO, false)
    }

    const fn build(config: SessionConfig, configured: bool) -> Self {
        Session {
            config,
            configured,
            state: State::Disconnected,
            clock: 0,
            keep_alive_ms: 0,
            clean_session: false,
            tx: TxBuf::new(),
            outbox: Outbox::new(),
            incoming_qos2: heapless::Vec::new(),
            pending: heapless::Vec::new(),
            next_id: 0,
            connect_at: 0,
            last_tx: 0,
            last_rx: 0,
            ping_sent_at: None,
            surfaced: 0,
            skip: 0,
            inflight_below: 0,
        }
    }

    /// Holds at most `limit` unacknowledged QoS 1/2 messages (clamped to `1..=INFLIGHT`): a
    /// run-time limit (the configuration's `inflight_max`) under the compile-time table size.
    pub fn set_inflight_limit(&mut self, limit: usize) {
        self.inflight_below = INFLIGHT.saturating_sub(limit.max(1));
    }

    /// Replaces the timing (for a session built with [`Session::new`] in a `const` context,
    /// before its first connection). Timers already running keep their deadlines.
    pub fn set_config(&mut self, config: SessionConfig) {
        self.config = config;
        self.configured = true;
    }

    /// The connection state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Unacknowledged QoS 1/2 messages held (sent or waiting to be sent).
    pub fn in_flight(&self) -> usize {
        self.outbox.len()
    }

    /// Whether a QoS 1/2 publish would be refused with [`RequestError::Busy`] now.
    pub fn is_full(&self) -> bool {
        // `held + below >= INFLIGHT` is `held >= limit`, and also covers a full table.
        self.outbox.len() + self.inflight_below >= INFLIGHT
    }

    /// Starts a new connection: queues CONNECT. Call after the transport is up; everything queued
    /// for an earlier connection is dropped, stored QoS 1/2 messages are kept for this one.
    pub fn connect(&mut self, now: u64, connect: &Connect<'_>) -> Result<(), RequestError> {
        self.connection_lost();
        self.tx.push_packet(&Packet::Connect(*connect))?;
        self.clock = now;
        let now = millis(now);
        if !self.configured {
            self.set_config(SessionConfig::DEFAULT);
        }
        self.state = State::AwaitConnAck;
        self.keep_alive_ms = u32::from(connect.keep_alive) * 1000;
        self.clean_session = connect.clean_session;
        self.connect_at = now;
        self.last_tx = now;
        self.last_rx = now;
        Ok(())
    }

    /// Queues DISCONNECT (a clean goodbye: the broker drops the will) and ends the connection
    /// state. Flush [`Session::transmit`] before closing the transport.
    pub fn disconnect(&mut self) {
        if self.state == State::Connected {
            // A full buffer only loses the courtesy packet; the close that follows still ends it.
            let _ = self.tx.push_bytes(&[0xe0, 0x00]);
        }
        self.state = State::Disconnected;
    }

    /// The transport is gone. Unsent bytes are dropped; unacknowledged QoS 1/2 messages stay and
    /// are sent again (with DUP) after the next CONNACK.
    pub fn connection_lost(&mut self) {
        self.state = State::Disconnected;
        self.tx.clear();
        self.pending.clear();
        self.ping_sent_at = None;
        self.surfaced = 0;
        self.skip = 0;
        for slot in self.outbox.slots_mut() {
            slot.stage = match slot.stage {
                Stage::AwaitAck => Stage::Queued { dup: true },
                Stage::AwaitComp => Stage::RelQueued,
                other => other,
            };
        }
    }

    /// Bytes waiting for the transport, whole packets in order.
    pub fn transmit(&self) -> &[u8] {
        self.tx.pending()
    }

    /// The transport took `n` bytes of [`Session::transmit`].
    pub fn transmitted(&mut self, n: usize) {
        self.tx.consume(n);
    }

    /// Publishes a message. QoS 1/2 messages are stored until acknowledged (also while
    /// disconnected: they go out after the next CONNACK) and get a packet id, returned here;
    /// QoS 0 needs a connection and returns `None`.
    pub fn publish(
        &mut self,
        now: u64,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<Option<u16>, RequestError> {
        let now = millis(now);
        let mut publish = Publish {
            dup: false,
            qos,
            retain,
            topic,
            packet_id: None,
            payload,
        };
        if qos == QoS::AtMostOnce {
            if self.state != State::Connected {
                return Err(RequestError::NotConnected);
            }
            self.tx.push_packet(&Packet::Publish(publish))?;
            self.last_tx = now;
            return Ok(None);
        }
        if self.is_full() {
            return Err(RequestError::Busy);
        }
        let id = self.allocate_id();
        publish.packet_id = Some(id);
        let len = match codec::encode_client(&Packet::Publish(publish), self.outbox.spare()) {
            Ok(len) => len,
            // Larger than the whole store: waiting for acknowledgements would never help.
            Err(EncodeError::BufferTooSmall) if self.outbox.len() > 0 => {
                return Err(RequestError::Busy)
            }
            Err(e) => return Err(RequestError::Invalid(e)),
        };
        if len > TX {
            // It could never be sent, and stored it would hold back every later message.
            return Err(RequestError::Invalid(EncodeError::BufferTooSmall));
        }
        if !self.outbox.commit(id, qos == QoS::ExactlyOnce, len) {
            return Err(RequestError::Busy);
        }
        self.flush_outbox(now);
        Ok(Some(id))
    }

    /// Subscribes to topic filters; returns the packet id that [`Event::Subscribed`] will carry.
    pub fn subscribe(&mut self, now: u64, filters: &[(&str, QoS)]) -> Result<u16, RequestError> {
        let count = u8::try_from(filters.len()).map_err(|_| RequestError::Busy)?;
        self.request(millis(now), count, |packet_id| {
            Packet::Subscribe(Subscribe {
                packet_id,
                topics: SubscribeTopics::Slice(filters),
            })
        })
    }

    /// Unsubscribes from topic filters; returns the packet id that [`Event::Unsubscribed`] carries.
    pub fn unsubscribe(&mut self, now: u64, filters: &[&str]) -> Result<u16, RequestError> {
        self.request(millis(now), UNSUBSCRIBE, |packet_id| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                topics: UnsubscribeTopics::Slice(filters),
            })
        })
    }

    fn request<'p>(
        &mut self,
        now: Millis,
        filters: u8,
        packet: impl FnOnce(u16) -> Packet<'p>,
    ) -> Result<u16, RequestError> {
        if self.state != State::Connected {
            return Err(RequestError::NotConnected);
        }
        if self.pending.is_full() {
            return Err(RequestError::Busy);
        }
        let packet_id = self.allocate_id();
        self.tx.push_packet(&packet(packet_id))?;
        self.last_tx = now;
        // Cannot fail: fullness was checked above.
        let _ = self.pending.push(PendingRequest { packet_id, filters });
        Ok(packet_id)
    }

    /// Reads the next packet from `rx` and returns what the application must know about it.
    ///
    /// Call until it returns `Ok(None)` (more bytes needed, or [`Session::transmit`] must be
    /// flushed first so acknowledgements fit: that back-pressure is what keeps a fast broker from
    /// overrunning the device). An event borrows the packet's bytes in `rx`; they are released by
    /// the next call. An error ends the connection: close the transport and call
    /// [`Session::connection_lost`].
    pub fn poll_event<'r, const N: usize>(
        &mut self,
        now: u64,
        rx: &'r mut RingBuffer<N>,
    ) -> Result<Option<Event<'r>>, SessionError> {
        self.clock = now;
        let now = millis(now);
        rx.consume(core::mem::take(&mut self.surfaced));
        loop {
            match self.step(now, rx)? {
                Step::Wait => return Ok(None),
                Step::Consumed => continue,
                Step::Event(event) => return Ok(Some(event)),
                Step::Surface(header) => {
                    let total = header.packet_len();
                    let bytes = rx.contiguous(total).unwrap_or(&[]);
                    let body = bytes.get(header.header_len..).unwrap_or(&[]);
                    let packet =
                        codec::decode_server_packet(&header, body).map_err(decode_error)?;
                    self.surfaced = total;
                    return Ok(match packet {
                        Some(Packet::Publish(p)) => Some(Event::Message(p)),
                        Some(Packet::SubAck(s)) => Some(Event::Subscribed(s)),
                        _ => None,
                    });
                }
            }
        }
    }

    fn step<const N: usize>(
        &mut self,
        now: Millis,
        rx: &mut RingBuffer<N>,
    ) -> Result<Step, SessionError> {
        if self.state == State::Disconnected {
            return Ok(Step::Wait);
        }
        if self.skip > 0 {
            let n = self.skip.min(rx.len());
            rx.consume(n);
            self.skip -= n;
            return Ok(if self.skip > 0 {
                Step::Wait
            } else {
                Step::Consumed
            });
        }
        // The fixed header is at most 5 bytes, read in place. When they wrap around the end of
        // the ring, `contiguous` rotates the storage (to start at 0, so again at most once per
        // pass through the ring): cheaper in code than copying them out of the two-part view,
        // and a packet that wraps has to be rotated for its decode anyway.
        let seen = rx.len().min(5);
        let head = rx.contiguous(seen).unwrap_or(&[]);
        let Some(header) = codec::decode_fixed_header(head).map_err(decode_error)? else {
            return Ok(Step::Wait);
        };
        if self.tx.free() < ACK_LEN {
            return Ok(Step::Wait);
        }
        let total = header.packet_len();
        if total > N {
            return self.skip_oversized(now, &header, rx);
        }
        let Some(bytes) = rx.contiguous(total) else {
            return Ok(Step::Wait);
        };
        let body = bytes.get(header.header_len..).unwrap_or(&[]);
        // Packets only a client sends are refused unread: decoding them would link the
        // server-side decoders into the device for nothing.
        let packet = codec::decode_server_packet(&header, body)
            .map_err(decode_error)?
            .ok_or(unexpected(header.packet_type()))?;
        self.last_rx = now;
        self.ping_sent_at = None;
        let handled = self.handle_packet(now, header.packet_type(), &packet)?;
        Ok(match handled {
            Handled::Surface => Step::Surface(header),
            Handled::Consumed => {
                rx.consume(total);
                Step::Consumed
            }
            Handled::Event(e) => {
                rx.consume(total);
                Step::Event(e)
            }
        })
    }

    /// Starts dropping a packet that can never fit in the receive buffer. A PUBLISH is still
    /// acknowledged (its id is near the front) so the broker does not redeliver it forever.
    fn skip_oversized<const N: usize>(
        &mut self,
        now: Millis,
        header: &FixedHeader,
        rx: &mut RingBuffer<N>,
    ) -> Result<Step, SessionError> {
        let packet_type = header.packet_type();
        if packet_type == PUBLISH && self.state == State::Connected {
            let qos = QoS::from_bits((header.first_byte >> 1) & 3).ok_or(
                SessionError::Protocol(ProtocolError::Decode(DecodeError::InvalidQoS)),
            )?;
            if qos != QoS::AtMostOnce {
                // Topic length (2), topic, packet id (2) follow the fixed header.
                let need = header.header_len + 2;
                let Some(bytes) = rx.contiguous(need.min(N)) else {
                    return Ok(Step::Wait);
                };
                let topic_len = match bytes.get(header.header_len..need) {
                    Some(&[hi, lo]) => usize::from(u16::from_be_bytes([hi, lo])),
                    _ => usize::MAX,
                };
                let id_at = need.saturating_add(topic_len);
                if id_at.saturating_add(2) <= N {
                    let Some(bytes) = rx.contiguous(id_at + 2) else {
                        return Ok(Step::Wait);
                    };
                    if let Some(&[hi, lo]) = bytes.get(id_at..id_at + 2) {
                        let id = u16::from_be_bytes([hi, lo]);
                        if id == 0 {
                            return Err(decode_error(DecodeError::ZeroPacketId));
                        }
                        let ack = if qos == QoS::AtLeastOnce {
                            PUBACK
                        } else {
                            self.remember_qos2(id);
                            PUBREC
                        };
                        self.queue_ack(now, ack, id);
                    }
                }
            }
        }
        self.last_rx = now;
        self.ping_sent_at = None;
        self.skip = header.packet_len();
        Ok(Step::Event(Event::Skipped {
            packet_type,
            len: header.packet_len(),
        }))
    }

    fn handle_packet(
        &mut self,
        now: Millis,
        packet_type: u8,
        packet: &Packet<'_>,
    ) -> Result<Handled, SessionError> {
        if self.state == State::AwaitConnAck {
            return match packet {
                Packet::ConnAck(ack) => self.handle_connack(now, ack),
                _ => Err(unexpected(packet_type)),
            };
        }
        match *packet {
            Packet::Publish(p) => {
                let deliver = match (p.qos, p.packet_id) {
                    (QoS::AtMostOnce, _) => true,
                    (QoS::AtLeastOnce, Some(id)) => {
                        self.queue_ack(now, PUBACK, id);
                        true
                    }
                    (QoS::ExactlyOnce, Some(id)) => {
                        let first = self.remember_qos2(id);
                        self.queue_ack(now, PUBREC, id);
                        first
                    }
                    // Decode guarantees an id for QoS 1/2.
                    _ => false,
                };
                Ok(if deliver {
                    Handled::Surface
                } else {
                    Handled::Consumed
                })
            }
            Packet::PubAck(id) => Ok(self.complete(id, false)),
            Packet::PubRec(id) => {
                if let Some(slot) = self.outbox.slot_mut(id) {
                    if slot.qos2 {
                        slot.stage = Stage::RelQueued;
                        self.flush_outbox(now);
                    }
                }
                Ok(Handled::Consumed)
            }
            Packet::PubRel(id) => {
                if let Some(pos) = self.incoming_qos2.iter().position(|&x| x == id) {
                    self.incoming_qos2.swap_remove(pos);
                }
                // Answered even for an unknown id, so the broker can finish its side (§4.3.3).
                self.queue_ack(now, PUBCOMP, id);
                Ok(Handled::Consumed)
            }
            Packet::PubComp(id) => Ok(self.complete(id, true)),
            Packet::SubAck(ack) => {
                let Some(request) = self.take_pending(ack.packet_id) else {
                    return Ok(Handled::Consumed);
                };
                if request.filters == UNSUBSCRIBE
                    || usize::from(request.filters) != ack.return_codes.len()
                {
                    return Err(SessionError::Protocol(ProtocolError::SubAckCountMismatch));
                }
                Ok(Handled::Surface)
            }
            Packet::UnsubAck(packet_id) => Ok(match self.take_pending(packet_id) {
                Some(r) if r.filters == UNSUBSCRIBE => {
                    Handled::Event(Event::Unsubscribed { packet_id })
                }
                _ => Handled::Consumed,
            }),
            Packet::PingResp => Ok(Handled::Consumed),
            _ => Err(unexpected(packet_type)),
        }
    }

    fn handle_connack(&mut self, now: Millis, ack: &ConnAck) -> Result<Handled, SessionError> {
        if ack.code != ConnectReturnCode::Accepted {
            self.state = State::Disconnected;
            return Err(SessionError::Refused(ack.code));
        }
        self.state = State::Connected;
        // A clean session must be answered with session present 0 ([MQTT-3.2.2-1]). A broker
        // that says 1 anyway kept nothing we asked it to keep; believing it would skip the
        // subscriptions and leave the device deaf.
        let session_present = ack.session_present && !self.clean_session;
        if !session_present {
            // A fresh broker session knows none of our QoS 2 exchanges: restart them from PUBLISH.
            self.incoming_qos2.clear();
            for slot in self.outbox.slots_mut() {
                if slot.stage == Stage::RelQueued {
                    slot.stage = Stage::Queued { dup: true };
                }
            }
        }
        self.flush_outbox(now);
        Ok(Handled::Event(Event::Connected { session_present }))
    }

    /// PUBACK (`qos2` false) or PUBCOMP (`qos2` true) for `id`. Late or unknown acks (a
    /// retry crossed the first ack) are ignored.
    fn complete(&mut self, id: u16, qos2: bool) -> Handled {
        let expected = if qos2 {
            Stage::AwaitComp
        } else {
            Stage::AwaitAck
        };
        match self.outbox.slot_mut(id) {
            Some(slot) if slot.qos2 == qos2 && slot.stage == expected => {
                self.outbox.remove(id);
                Handled::Event(Event::Published { packet_id: id })
            }
            _ => Handled::Consumed,
        }
    }

    fn take_pending(&mut self, packet_id: u16) -> Option<PendingRequest> {
        let pos = self.pending.iter().position(|r| r.packet_id == packet_id)?;
        Some(self.pending.swap_remove(pos))
    }

    /// Records an incoming QoS 2 id; false if it was already known (a redelivery, not delivered
    /// again). When the table is full the oldest id is forgotten: a later redelivery of that one
    /// message would be delivered twice, which is better than stalling the connection.
    #[allow(clippy::manual_contains)]
    fn remember_qos2(&mut self, id: u16) -> bool {
        // Not `contains`: for `u16` it is unrolled 32 times (about 80 bytes more flash).
        if self.incoming_qos2.iter().any(|&x| x == id) {
            return false;
        }
        if self.incoming_qos2.is_full() {
            remove_in_order(&mut self.incoming_qos2, 0);
        }
        let _ = self.incoming_qos2.push(id);
        true
    }

    /// Queues an acknowledgement; room for it was checked before the packet was read.
    fn queue_ack(&mut self, now: Millis, first_byte: u8, id: u16) {
        if self.tx.push_ack(first_byte, id) {
            self.last_tx = now;
        }
    }

    /// Sends stored messages that wait for it, in publish order, as far as the send buffer allows.
    fn flush_outbox(&mut self, now: Millis) {
        if self.state != State::Connected {
            return;
        }
        // Where the current slot's packet starts in the arena (slots are in arena order).
        let mut offset = 0;
        for index in 0..self.outbox.len() {
            let Some(slot) = self.outbox.slots_mut().get(index).copied() else {
                break;
            };
            let at = offset;
            offset += slot.bytes();
            let sent = match slot.stage {
                Stage::Queued { dup } => match self.outbox.packet_at(at, &slot, dup) {
                    Some(bytes) => self.tx.push_bytes(bytes),
                    None => false,
                },
                Stage::RelQueued => self.tx.push_ack(PUBREL, slot.packet_id),
                Stage::AwaitAck | Stage::AwaitComp => continue,
            };
            if !sent {
                // Keep the order: nothing after this one goes out before it.
                break;
            }
            if let Some(s) = self.outbox.slots_mut().get_mut(index) {
                s.stage = match slot.stage {
                    Stage::RelQueued => Stage::AwaitComp,
                    _ => Stage::AwaitAck,
                };
                s.sent_at = now;
            }
            self.last_tx = now;
        }
    }

    fn allocate_id(&mut self) -> u16 {
        loop {
            self.next_id = self.next_id.wrapping_add(1).max(1);
            let id = self.next_id;
            if !self.outbox.contains(id) && !self.pending.iter().any(|r| r.packet_id == id) {
                return id;
            }
        }
    }

    /// Runs the timers: CONNACK timeout, keepalive (PINGREQ and its timeout), QoS 1 retry, and
    /// sending stored messages that did not fit before. Call at [`Session::next_timeout`] or
    /// whenever convenient.
    pub fn handle_timeout(&mut self, now: u64) -> Result<(), SessionError> {
        self.clock = now;
        let now = millis(now);
        match self.state {
            State::Disconnected => return Ok(()),
            State::AwaitConnAck => {
                if elapsed(now, self.connect_at) >= self.config.connack_timeout_ms {
                    return Err(SessionError::ConnAckTimeout);
                }
                return Ok(());
            }
            State::Connected => {}
        }
        if let Some(sent) = self.ping_sent_at {
            if elapsed(now, sent) >= self.config.ping_timeout_ms {
                return Err(SessionError::KeepaliveTimeout);
            }
        } else if self.keep_alive_ms > 0
            && elapsed(now, self.last_tx).max(elapsed(now, self.last_rx)) >= self.keep_alive_ms
            && self.tx.push_bytes(&[0xc0, 0x00])
        {
            self.ping_sent_at = Some(now);
            self.last_tx = now;
        }
        let retry = self.config.qos1_retry_ms;
        if retry > 0 {
            for slot in self.outbox.slots_mut() {
                if !slot.qos2
                    && slot.stage == Stage::AwaitAck
                    && elapsed(now, slot.sent_at) >= retry
                {
                    slot.stage = Stage::Queued { dup: true };
                }
            }
        }
        self.flush_outbox(now);
        Ok(())
    }

    /// The earliest time [`Session::handle_timeout`] has something to do, if any.
    pub fn next_timeout(&self) -> Option<u64> {
        // Each timer as the signed time left from `clock` (see `Millis`).
        let left = |since: Millis, after: u32| {
            since.wrapping_add(after).wrapping_sub(millis(self.clock)) as i32
        };
        let left = match self.state {
            State::Disconnected => None,
            State::AwaitConnAck => Some(left(self.connect_at, self.config.connack_timeout_ms)),
            State::Connected => {
                let keepalive = match self.ping_sent_at {
                    Some(sent) => Some(left(sent, self.config.ping_timeout_ms)),
                    None if self.keep_alive_ms > 0 => Some(
                        left(self.last_tx, self.keep_alive_ms)
                            .min(left(self.last_rx, self.keep_alive_ms)),
                    ),
                    None => None,
                };
                let retry = self.config.qos1_retry_ms;
                let resend = self
                    .outbox
                    .iter_slots()
                    .filter(|s| retry > 0 && !s.qos2 && s.stage == Stage::AwaitAck)
                    .map(|s| left(s.sent_at, retry))
                    .min();
                match (keepalive, resend) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
        }?;
        Some(self.clock.saturating_add_signed(i64::from(left)))
    }
}

const PUBLISH: u8 = 3;

// First bytes of the acknowledgements, which the session writes itself (4 fixed bytes: not
// worth the generic encoder).
const PUBACK: u8 = 0x40;
const PUBREC: u8 = 0x50;
const PUBREL: u8 = 0x62;
const PUBCOMP: u8 = 0x70;

/// A time on the session's own clock: the low 32 bits of the caller's milliseconds.
///
/// Timestamps are kept in 32 bits to keep the code small on 32-bit cores (every 64-bit add,
/// compare and store is several instructions there). The clock wraps every 2^32 ms (49.7 days),
/// so only differences are ever used, with wrapping arithmetic: a difference is exact while the
/// real one is below 2^32 ms, and [`Session::next_timeout`] (a signed difference from the latest
/// `now`) while it is below 2^31 ms (24.8 days). That holds as long as the caller runs
/// `poll_event` or `handle_timeout` at least every 24 days (any event loop does) and the
/// [`SessionConfig`] times are below 2^31 ms.
type Millis = u32;

/// The session's clock at the caller's time `now` (truncation is the point: see [`Millis`]).
fn millis(now: u64) -> Millis {
    now as u32
}

/// Milliseconds from `since` to `now`, across a wrap of the clock.
fn elapsed(now: Millis, since: Millis) -> u32 {
    now.wrapping_sub(since)
}

fn decode_error(e: DecodeError) -> SessionError {
    SessionError::Protocol(ProtocolError::Decode(e))
}

fn unexpected(packet_type: u8) -> SessionError {
    SessionError::Protocol(ProtocolError::UnexpectedPacket(packet_type))
}

/// Removes `v[index]` (if there) keeping the order of the rest.
///
/// `heapless::Vec::remove` does the same with a `memmove` and a panic on a bad index, which
/// costs flash on Cortex-M (the `memmove` alone is about 1.5 KB); swapping the element to the end
/// needs neither.
fn remove_in_order<T, const N: usize>(v: &mut heapless::Vec<T, N>, index: usize) {
    let Some(tail) = v.get_mut(index..).filter(|t| !t.is_empty()) else {
        return;
    };
    for i in 1..tail.len() {
        tail.swap(i - 1, i);
    }
    v.pop();
}
