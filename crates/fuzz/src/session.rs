//! `session`: the sans-IO MQTT session driven by a script of application calls, broker bytes,
//! socket progress and time.
//!
//! The broker side is both raw fuzzer bytes and well-formed packets the harness builds with ids
//! it knows, so the fuzzer reaches deep states (CONNACK, then acknowledgements of real ids).
//!
//! Checks after every step:
//! - no panic, and `poll_event` does not spin;
//! - `in_flight() <= INFLIGHT`, and `in_flight()` equals the number of QoS 1/2 messages that
//!   `publish` accepted and no `Event::Published` has completed: nothing is dropped silently,
//!   nothing is completed twice or without having been published;
//! - everything the session hands the socket, per connection, decodes as a sequence of valid
//!   MQTT packets, and the bytes still queued complete it (the client never emits garbage);
//! - those packets are ones a client may send, CONNECT first and only first, nothing after
//!   DISCONNECT; every stored PUBLISH goes out with the topic, payload, QoS and retain flag it
//!   was published with, and without DUP only on its first transmission; a PUBREL only for a
//!   QoS 2 message;
//! - events match requests: SUBACK for a pending SUBSCRIBE with as many codes as filters,
//!   UNSUBACK for a pending UNSUBSCRIBE, `Connected` leaves the session connected;
//! - after `handle_timeout` succeeds, `next_timeout()` lies in the future unless bytes wait for
//!   the socket (otherwise the firmware would spin on its timer).

use crate::input::{Input, Output};
use mqtts_core::codec::{self, Connect, LastWill, Packet, Publish, QoS, SubAck};
use mqtts_core::ring::RingBuffer;
use mqtts_core::session::{Event, RequestError, Session, SessionConfig, State};
use std::collections::{HashMap, HashSet, VecDeque};

/// Send buffer of the session under test.
pub const TX: usize = 128;
/// Message store bytes.
pub const STORE: usize = 256;
/// In-flight QoS 1/2 messages.
pub const INFLIGHT: usize = 3;
/// Remembered incoming QoS 2 ids.
pub const QOS2_IN: usize = 2;
/// Receive ring size; larger broker packets are skipped.
pub const RX: usize = 128;

type Sess = Session<TX, STORE, INFLIGHT, QOS2_IN>;

/// Largest TLS record the socket model makes. The socket behaves as Zephyr's TLS `send()` over
/// Mbed TLS: the first offer after the last record left becomes a record of at most this many
/// bytes of `transmit()`; it goes out over later `Send` steps as the network allows, and only
/// when all of it is out does the socket report those bytes taken. In between the driver offers
/// the same bytes again (the `Transport::send` rule), so the harness checks that they stay at
/// the front of `transmit()` while publishes, acknowledgements and pings are queued behind them.
pub const MAX_RECORD: usize = 48;

/// Topics the script picks from; the last ones are invalid topic names.
pub const TOPICS: [&str; 8] = ["a", "dev/state", "a/b/c", "$SYS/x", "ü/ß", "+", "a/#", ""];
/// Filters the script picks from; the last one is invalid.
pub const FILTERS: [&str; 6] = ["a", "a/+", "#", "dev/+/set", "+/+/c", "a/#/b"];

/// A packet id the broker uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdRef {
    /// The n-th id the harness knows (outstanding publishes, pending requests, incoming QoS 2),
    /// modulo their number.
    Known(u8),
    /// Any id.
    Raw(u16),
}

/// A well-formed packet from the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerPacket {
    /// CONNACK; `code` modulo 6.
    ConnAck {
        /// Session present flag.
        session_present: bool,
        /// Return code.
        code: u8,
    },
    /// PUBACK.
    PubAck(IdRef),
    /// PUBREC.
    PubRec(IdRef),
    /// PUBREL.
    PubRel(IdRef),
    /// PUBCOMP.
    PubComp(IdRef),
    /// SUBACK; `count == 0` uses the number of filters of the referenced request.
    SubAck {
        /// Packet id.
        id: IdRef,
        /// Number of return codes.
        count: u8,
        /// Return code selector: code i is `[0, 1, 2, 0x80][(codes >> 2i) & 3]`.
        codes: u8,
    },
    /// UNSUBACK.
    UnsubAck(IdRef),
    /// PINGRESP.
    PingResp,
    /// PUBLISH; `payload_len` may exceed the receive ring (then it is skipped).
    Publish {
        /// QoS modulo 3.
        qos: u8,
        /// DUP flag (dropped for QoS 0, which may not carry it).
        dup: bool,
        /// Retain flag.
        retain: bool,
        /// Index into [`TOPICS`] (valid ones).
        topic: u8,
        /// Packet id for QoS 1/2.
        id: IdRef,
        /// Payload length.
        payload_len: u16,
    },
}

/// One step of a session script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Raw bytes from the broker, appended to the wire.
    Wire(Vec<u8>),
    /// A well-formed broker packet, appended to the wire.
    Broker(BrokerPacket),
    /// Up to this many wire bytes arrive in the receive ring; then events are polled.
    Receive(u16),
    /// The network takes up to this many bytes; the socket is a model of Mbed TLS (see
    /// [`MAX_RECORD`]); then events are polled.
    Send(u16),
    /// Time passes by this many milliseconds; then `handle_timeout` and events.
    Advance(u32),
    /// `publish`.
    Publish {
        /// QoS modulo 3.
        qos: u8,
        /// Index into [`TOPICS`].
        topic: u8,
        /// Payload length.
        payload_len: u8,
        /// Retain flag.
        retain: bool,
    },
    /// `subscribe` to `count` (0 to 5) filters starting at `first` in [`FILTERS`].
    Subscribe {
        /// Number of filters.
        count: u8,
        /// First filter index.
        first: u8,
        /// Requested QoS modulo 3.
        qos: u8,
    },
    /// `unsubscribe` from `count` (0 to 5) filters starting at `first`.
    Unsubscribe {
        /// Number of filters.
        count: u8,
        /// First filter index.
        first: u8,
    },
    /// `disconnect`.
    Disconnect,
    /// The transport is gone: `connection_lost`.
    Lost,
    /// A new transport: `connect`.
    Connect {
        /// Bit 0 clean session, bit 1 user name, bit 2 password, bit 3 will.
        flags: u8,
        /// Keepalive seconds.
        keep_alive: u16,
    },
}

const OPS: u8 = 11;

impl IdRef {
    fn read(input: &mut Input<'_>) -> IdRef {
        let tag = input.u8();
        if tag & 1 == 0 {
            IdRef::Known(tag >> 1)
        } else {
            IdRef::Raw(input.u16())
        }
    }

    fn write(&self, out: &mut Output) {
        match *self {
            IdRef::Known(i) => out.u8(i << 1),
            IdRef::Raw(id) => {
                out.u8(1);
                out.u16(id);
            }
        }
    }
}

impl BrokerPacket {
    fn read(input: &mut Input<'_>) -> BrokerPacket {
        match input.u8() % 9 {
            0 => BrokerPacket::ConnAck {
                session_present: input.bool(),
                code: input.u8(),
            },
            1 => BrokerPacket::PubAck(IdRef::read(input)),
            2 => BrokerPacket::PubRec(IdRef::read(input)),
            3 => BrokerPacket::PubRel(IdRef::read(input)),
            4 => BrokerPacket::PubComp(IdRef::read(input)),
            5 => BrokerPacket::SubAck {
                id: IdRef::read(input),
                count: input.u8(),
                codes: input.u8(),
            },
            6 => BrokerPacket::UnsubAck(IdRef::read(input)),
            7 => BrokerPacket::PingResp,
            _ => BrokerPacket::Publish {
                qos: input.u8(),
                dup: input.bool(),
                retain: input.bool(),
                topic: input.u8(),
                id: IdRef::read(input),
                payload_len: input.u16(),
            },
        }
    }

    fn write(&self, out: &mut Output) {
        match self {
            BrokerPacket::ConnAck {
                session_present,
                code,
            } => {
                out.u8(0);
                out.bool(*session_present);
                out.u8(*code);
            }
            BrokerPacket::PubAck(id) => {
                out.u8(1);
                id.write(out);
            }
            BrokerPacket::PubRec(id) => {
                out.u8(2);
                id.write(out);
            }
            BrokerPacket::PubRel(id) => {
                out.u8(3);
                id.write(out);
            }
            BrokerPacket::PubComp(id) => {
                out.u8(4);
                id.write(out);
            }
            BrokerPacket::SubAck { id, count, codes } => {
                out.u8(5);
                id.write(out);
                out.u8(*count);
                out.u8(*codes);
            }
            BrokerPacket::UnsubAck(id) => {
                out.u8(6);
                id.write(out);
            }
            BrokerPacket::PingResp => out.u8(7),
            BrokerPacket::Publish {
                qos,
                dup,
                retain,
                topic,
                id,
                payload_len,
            } => {
                out.u8(8);
                out.u8(*qos);
                out.bool(*dup);
                out.bool(*retain);
                out.u8(*topic);
                id.write(out);
                out.u16(*payload_len);
            }
        }
    }
}

impl Step {
    /// Reads one step.
    pub fn read(input: &mut Input<'_>) -> Step {
        match input.u8() % OPS {
            0 => Step::Wire(input.short_bytes().to_vec()),
            1 => Step::Broker(BrokerPacket::read(input)),
            2 => Step::Receive(input.u16()),
            3 => Step::Send(input.u16()),
            4 => Step::Advance(input.u32()),
            5 => Step::Publish {
                qos: input.u8(),
                topic: input.u8(),
                payload_len: input.u8(),
                retain: input.bool(),
            },
            6 => Step::Subscribe {
                count: input.u8(),
                first: input.u8(),
                qos: input.u8(),
            },
            7 => Step::Unsubscribe {
                count: input.u8(),
                first: input.u8(),
            },
            8 => Step::Disconnect,
            9 => Step::Lost,
            _ => Step::Connect {
                flags: input.u8(),
                keep_alive: input.u16(),
            },
        }
    }

    /// Writes the step so that [`Step::read`] gives it back.
    pub fn write(&self, out: &mut Output) {
        match self {
            Step::Wire(b) => {
                out.u8(0);
                out.short_bytes(b);
            }
            Step::Broker(p) => {
                out.u8(1);
                p.write(out);
            }
            Step::Receive(n) => {
                out.u8(2);
                out.u16(*n);
            }
            Step::Send(n) => {
                out.u8(3);
                out.u16(*n);
            }
            Step::Advance(ms) => {
                out.u8(4);
                out.u32(*ms);
            }
            Step::Publish {
                qos,
                topic,
                payload_len,
                retain,
            } => {
                out.u8(5);
                out.u8(*qos);
                out.u8(*topic);
                out.u8(*payload_len);
                out.bool(*retain);
            }
            Step::Subscribe { count, first, qos } => {
                out.u8(6);
                out.u8(*count);
                out.u8(*first);
                out.u8(*qos);
            }
            Step::Unsubscribe { count, first } => {
                out.u8(7);
                out.u8(*count);
                out.u8(*first);
            }
            Step::Disconnect => out.u8(8),
            Step::Lost => out.u8(9),
            Step::Connect { flags, keep_alive } => {
                out.u8(10);
                out.u8(*flags);
                out.u16(*keep_alive);
            }
        }
    }
}

/// Encodes a script: the config byte (see [`config`]), then the steps.
pub fn encode_script(config_byte: u8, steps: &[Step]) -> Vec<u8> {
    let mut out = Output::default();
    out.u8(config_byte);
    for s in steps {
        s.write(&mut out);
    }
    out.bytes
}

/// Session timing from one byte: QoS 1 retry off / 500 ms / 5 s, short or long timeouts.
pub fn config(b: u8) -> SessionConfig {
    SessionConfig {
        connack_timeout_ms: if b & 4 == 0 { 10_000 } else { 300 },
        ping_timeout_ms: if b & 8 == 0 { 10_000 } else { 300 },
        qos1_retry_ms: [0, 500, 5_000, 0][usize::from(b & 3)],
    }
}

fn qos(b: u8) -> QoS {
    match b % 3 {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_add(i as u8)).collect()
}

/// A message `publish` accepted with QoS 1 or 2.
#[derive(Debug, Clone)]
struct Sent {
    qos: QoS,
    topic: &'static str,
    payload: Vec<u8>,
    retain: bool,
}

/// A SUBSCRIBE (`Some(filters)`) or UNSUBSCRIBE (`None`) awaiting its acknowledgement.
type Request = Option<usize>;

struct Harness {
    session: Sess,
    rx: RingBuffer<RX>,
    /// Broker bytes not yet received.
    wire: VecDeque<u8>,
    now: u64,
    /// Bytes the socket took in this connection that do not yet form a whole packet.
    out_tail: Vec<u8>,
    /// The TLS record being written (empty: none), and how much of it is out.
    record: Vec<u8>,
    record_sent: usize,
    /// Packets the socket took in this connection.
    out_packets: usize,
    /// A DISCONNECT went out in this connection.
    out_disconnected: bool,
    /// Accepted QoS 1/2 messages not yet completed, by id (the model of `in_flight`).
    outstanding: HashMap<u16, Sent>,
    /// Every message accepted with an id, by id (a resend may outlive its acknowledgement).
    history: HashMap<u16, Sent>,
    /// Ids that went out whole at least once.
    transmitted_ids: HashSet<u16>,
    /// Ids of PUBLISH or PUBREL packets that went out whole in this connection.
    conn_sent: HashSet<u16>,
    /// What the script achieved.
    summary: Summary,
    /// Order of `outstanding` ids, for `IdRef::Known`.
    order: Vec<u16>,
    requests: HashMap<u16, Request>,
    broker_qos2: Vec<u16>,
    payload_seed: u8,
}

/// What a script achieved (the seed tests check that seeds reach deep states).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// `Event::Connected` count.
    pub connected: usize,
    /// `Event::Published` count.
    pub published: usize,
    /// `Event::Subscribed` count.
    pub subscribed: usize,
    /// `Event::Unsubscribed` count.
    pub unsubscribed: usize,
    /// `Event::Message` count.
    pub messages: usize,
    /// `Event::Skipped` count.
    pub skipped: usize,
    /// Connections ended by a `poll_event` or `handle_timeout` error.
    pub errors: usize,
    /// Whole packets the socket took.
    pub sent_packets: usize,
}

/// The target.
pub fn run(data: &[u8]) {
    run_script(data);
}

/// Runs a script with all checks; returns what it achieved.
pub fn run_script(data: &[u8]) -> Summary {
    let mut input = Input::new(data);
    let mut h = Harness {
        session: Session::new(config(input.u8())),
        rx: RingBuffer::new(),
        wire: VecDeque::new(),
        now: 0,
        out_tail: Vec::new(),
        record: Vec::new(),
        record_sent: 0,
        out_packets: 0,
        out_disconnected: false,
        outstanding: HashMap::new(),
        history: HashMap::new(),
        transmitted_ids: HashSet::new(),
        conn_sent: HashSet::new(),
        summary: Summary::default(),
        order: Vec::new(),
        requests: HashMap::new(),
        broker_qos2: Vec::new(),
        payload_seed: 0,
    };
    while !input.is_empty() {
        let step = Step::read(&mut input);
        h.step(&step);
        h.invariants();
    }
    h.summary
}

impl Harness {
    fn step(&mut self, step: &Step) {
        match step {
            Step::Wire(bytes) => self.wire.extend(bytes),
            Step::Broker(p) => {
                let bytes = self.broker_packet(p);
                self.wire.extend(bytes);
            }
            Step::Receive(n) => {
                let mut n = usize::from(*n);
                // Like the driver: receive what fits, let the session read, repeat.
                loop {
                    // An error in `poll` closes the transport and empties the wire.
                    let take = n.min(self.rx.free()).min(self.wire.len());
                    let chunk: Vec<u8> = self.wire.drain(..take).collect();
                    assert_eq!(self.rx.push(&chunk), take);
                    n -= take;
                    let before = self.rx.len();
                    self.poll();
                    if n == 0
                        || self.wire.is_empty()
                        || self.rx.len() == before && self.rx.free() == 0
                    {
                        break;
                    }
                }
            }
            Step::Send(n) => {
                if self.record.is_empty() {
                    let pending = self.session.transmit();
                    self.record = pending[..pending.len().min(MAX_RECORD)].to_vec();
                    self.record_sent = 0;
                }
                if !self.record.is_empty() {
                    let front = self.session.transmit().get(..self.record.len());
                    assert_eq!(
                        front,
                        Some(&self.record[..]),
                        "blocked bytes moved or changed"
                    );
                    let k = usize::from(*n).min(self.record.len() - self.record_sent);
                    let out = &self.record[self.record_sent..self.record_sent + k];
                    self.out_tail.extend_from_slice(out);
                    self.record_sent += k;
                    if self.record_sent == self.record.len() {
                        self.session.transmitted(self.record.len());
                        self.record.clear();
                        self.record_sent = 0;
                    }
                    self.check_sent();
                }
                self.poll();
            }
            Step::Advance(ms) => {
                self.now += u64::from(*ms);
                match self.session.handle_timeout(self.now) {
                    Ok(()) => {
                        if self.session.state() == State::Connected
                            && self.session.transmit().is_empty()
                        {
                            // The send buffer took everything: no stored message may still wait.
                            for id in self.outstanding.keys() {
                                assert!(
                                    self.conn_sent.contains(id),
                                    "message {id} never sent on an idle connection"
                                );
                            }
                        }
                        if let Some(t) = self.session.next_timeout() {
                            assert!(
                                t > self.now || !self.session.transmit().is_empty(),
                                "timer due at {t} <= now {} with nothing to send",
                                self.now
                            );
                        }
                    }
                    Err(_) => {
                        self.summary.errors += 1;
                        self.lost();
                    }
                }
                self.poll();
            }
            Step::Publish {
                qos: q,
                topic,
                payload_len,
                retain,
            } => {
                let topic = TOPICS[usize::from(*topic) % TOPICS.len()];
                self.payload_seed = self.payload_seed.wrapping_add(1);
                let payload = payload(usize::from(*payload_len), self.payload_seed);
                let qos = qos(*q);
                let before = self.session.in_flight();
                match self
                    .session
                    .publish(self.now, topic, &payload, qos, *retain)
                {
                    Ok(None) => {
                        assert_eq!(qos, QoS::AtMostOnce);
                        assert_eq!(self.session.state(), State::Connected);
                    }
                    Ok(Some(id)) => {
                        assert_ne!(qos, QoS::AtMostOnce);
                        assert_ne!(id, 0);
                        let sent = Sent {
                            qos,
                            topic,
                            payload,
                            retain: *retain,
                        };
                        assert!(
                            self.outstanding.insert(id, sent.clone()).is_none(),
                            "id {id} reused while in flight"
                        );
                        self.history.insert(id, sent);
                        self.transmitted_ids.remove(&id);
                        self.order.push(id);
                    }
                    Err(e) => {
                        assert_eq!(self.session.in_flight(), before, "refused publish stored");
                        match e {
                            RequestError::NotConnected => assert_eq!(qos, QoS::AtMostOnce),
                            RequestError::Busy | RequestError::Invalid(_) => {}
                            RequestError::Unsupported => {
                                panic!("only a Device refuses as unsupported")
                            }
                        }
                    }
                }
            }
            Step::Subscribe {
                count,
                first,
                qos: q,
            } => {
                let filters: Vec<(&str, QoS)> = (0..usize::from(*count % 6))
                    .map(|i| {
                        let f = FILTERS[(usize::from(*first) + i) % FILTERS.len()];
                        (f, qos(q.wrapping_add(i as u8)))
                    })
                    .collect();
                if let Ok(id) = self.session.subscribe(self.now, &filters) {
                    assert!(!filters.is_empty());
                    assert!(self.requests.insert(id, Some(filters.len())).is_none());
                }
            }
            Step::Unsubscribe { count, first } => {
                let filters: Vec<&str> = (0..usize::from(*count % 6))
                    .map(|i| FILTERS[(usize::from(*first) + i) % FILTERS.len()])
                    .collect();
                if let Ok(id) = self.session.unsubscribe(self.now, &filters) {
                    assert!(!filters.is_empty());
                    assert!(self.requests.insert(id, None).is_none());
                }
            }
            Step::Disconnect => {
                self.session.disconnect();
                assert_eq!(self.session.state(), State::Disconnected);
            }
            Step::Lost => self.lost(),
            Step::Connect { flags, keep_alive } => {
                let will = LastWill {
                    topic: "dev/lwt",
                    payload: b"offline",
                    qos: qos(flags >> 4),
                    retain: flags & 0x40 != 0,
                };
                let connect = Connect {
                    client_id: "fuzz",
                    keep_alive: *keep_alive,
                    clean_session: flags & 1 != 0,
                    username: (flags & 2 != 0).then_some("user"),
                    password: (flags & 6 == 6).then_some(b"secret".as_slice()),
                    will: (flags & 8 != 0).then_some(will),
                };
                self.new_transport();
                self.session
                    .connect(self.now, &connect)
                    .expect("CONNECT fits the send buffer");
                assert_eq!(self.session.state(), State::AwaitConnAck);
                assert_eq!(self.session.transmit().first(), Some(&0x10));
            }
        }
    }

    /// The transport closed (by the peer, or by us after an error).
    fn lost(&mut self) {
        self.session.connection_lost();
        assert_eq!(self.session.state(), State::Disconnected);
        assert!(self.session.transmit().is_empty());
        self.new_transport();
    }

    fn new_transport(&mut self) {
        self.wire.clear();
        self.rx.clear();
        self.out_tail.clear();
        self.record.clear();
        self.record_sent = 0;
        self.out_packets = 0;
        self.out_disconnected = false;
        self.conn_sent.clear();
        // The session forgets pending requests with the connection.
        self.requests.clear();
    }

    /// Ids a cooperative broker would use.
    fn known_ids(&self) -> Vec<u16> {
        let mut ids: Vec<u16> = self.order.clone();
        let mut req: Vec<u16> = self.requests.keys().copied().collect();
        req.sort_unstable();
        ids.extend(req);
        ids.extend(&self.broker_qos2);
        ids
    }

    fn resolve(&self, id: IdRef) -> u16 {
        match id {
            IdRef::Raw(id) => id,
            IdRef::Known(i) => {
                let ids = self.known_ids();
                if ids.is_empty() {
                    1
                } else {
                    ids[usize::from(i) % ids.len()]
                }
            }
        }
    }

    fn broker_packet(&mut self, p: &BrokerPacket) -> Vec<u8> {
        // Zero ids are not well formed; the raw `Wire` step covers them.
        let nz = |id: u16| id.max(1);
        let packet_bytes = |packet: &Packet<'_>| {
            let mut out = vec![0u8; codec::encoded_len(packet).expect("valid broker packet")];
            codec::encode(packet, &mut out).expect("encode broker packet");
            out
        };
        match *p {
            BrokerPacket::ConnAck {
                session_present,
                code,
            } => {
                let code = code % 6;
                let sp = u8::from(session_present && code == 0);
                vec![0x20, 0x02, sp, code]
            }
            BrokerPacket::PubAck(id) => packet_bytes(&Packet::PubAck(nz(self.resolve(id)))),
            BrokerPacket::PubRec(id) => packet_bytes(&Packet::PubRec(nz(self.resolve(id)))),
            BrokerPacket::PubRel(id) => packet_bytes(&Packet::PubRel(nz(self.resolve(id)))),
            BrokerPacket::PubComp(id) => packet_bytes(&Packet::PubComp(nz(self.resolve(id)))),
            BrokerPacket::UnsubAck(id) => packet_bytes(&Packet::UnsubAck(nz(self.resolve(id)))),
            BrokerPacket::PingResp => vec![0xd0, 0x00],
            BrokerPacket::SubAck { id, count, codes } => {
                let id = nz(self.resolve(id));
                let count = match (count % 6, self.requests.get(&id)) {
                    (0, Some(Some(n))) => *n,
                    (0, _) => 1,
                    (c, _) => usize::from(c),
                };
                let codes: Vec<u8> = (0..count)
                    .map(|i| [0, 1, 2, 0x80][usize::from(codes >> (2 * (i % 4))) & 3])
                    .collect();
                packet_bytes(&Packet::SubAck(SubAck {
                    packet_id: id,
                    return_codes: &codes,
                }))
            }
            BrokerPacket::Publish {
                qos: q,
                dup,
                retain,
                topic,
                id,
                payload_len,
            } => {
                let qos = qos(q);
                let topic = TOPICS[usize::from(topic) % 5];
                let packet_id = match qos {
                    QoS::AtMostOnce => None,
                    _ => Some(nz(self.resolve(id))),
                };
                if qos == QoS::ExactlyOnce {
                    self.broker_qos2.extend(packet_id);
                    if self.broker_qos2.len() > 8 {
                        self.broker_qos2.remove(0);
                    }
                }
                let payload = payload(usize::from(payload_len % 1024), 0xa5);
                packet_bytes(&Packet::Publish(Publish {
                    dup: dup && qos != QoS::AtMostOnce,
                    qos,
                    retain,
                    topic,
                    packet_id,
                    payload: &payload,
                }))
            }
        }
    }

    /// Reads events until the session waits; checks each.
    fn poll(&mut self) {
        for _ in 0..100_000 {
            let state_before = self.session.state();
            let event = match self.session.poll_event(self.now, &mut self.rx) {
                Ok(Some(e)) => e,
                Ok(None) => return,
                Err(_) => {
                    self.summary.errors += 1;
                    self.lost();
                    return;
                }
            };
            match event {
                Event::Connected { .. } => {
                    self.summary.connected += 1;
                    assert_eq!(state_before, State::AwaitConnAck);
                    assert_eq!(self.session.state(), State::Connected);
                }
                Event::Published { packet_id } => {
                    assert!(
                        self.outstanding.remove(&packet_id).is_some(),
                        "Published({packet_id}) for no outstanding message"
                    );
                    self.order.retain(|&id| id != packet_id);
                    self.summary.published += 1;
                }
                Event::Subscribed(ack) => match self.requests.remove(&ack.packet_id) {
                    Some(Some(n)) => {
                        assert_eq!(ack.return_codes.len(), n);
                        self.summary.subscribed += 1;
                    }
                    other => panic!("SUBACK {} for {other:?}", ack.packet_id),
                },
                Event::Unsubscribed { packet_id } => {
                    assert_eq!(self.requests.remove(&packet_id), Some(None));
                    self.summary.unsubscribed += 1;
                }
                Event::Message(p) => {
                    assert!(codec::topic::valid_topic_name(p.topic));
                    assert_eq!(p.packet_id.is_some(), p.qos != QoS::AtMostOnce);
                    self.summary.messages += 1;
                }
                Event::Skipped { len, .. } => {
                    assert!(len > RX, "skipped a packet that fits");
                    self.summary.skipped += 1;
                }
            }
        }
        panic!("poll_event keeps returning events without consuming input");
    }

    /// Checks the packets the socket took whole.
    fn check_sent(&mut self) {
        loop {
            let (packet, used) = match codec::decode(&self.out_tail) {
                Ok(Some(x)) => x,
                Ok(None) => return,
                Err(e) => panic!("session sent garbage ({e:?}): {:02x?}", self.out_tail),
            };
            assert!(!self.out_disconnected, "{packet:?} after DISCONNECT");
            if self.out_packets == 0 {
                assert!(
                    matches!(packet, Packet::Connect(_)),
                    "first packet {packet:?}"
                );
            }
            match packet {
                Packet::Connect(_) => assert_eq!(self.out_packets, 0, "CONNECT twice"),
                Packet::Publish(p) => {
                    if let Some(id) = p.packet_id {
                        let sent = self
                            .history
                            .get(&id)
                            .unwrap_or_else(|| panic!("PUBLISH of unknown id {id}"));
                        assert_eq!(p.qos, sent.qos);
                        assert_eq!(p.topic, sent.topic);
                        assert_eq!(p.payload, &sent.payload[..], "stored payload of {id}");
                        assert_eq!(p.retain, sent.retain);
                        self.conn_sent.insert(id);
                        let first = self.transmitted_ids.insert(id);
                        assert!(p.dup || first, "resend of {id} without DUP");
                    }
                }
                Packet::PubRel(id) => {
                    let sent = self.history.get(&id).expect("PUBREL for unknown id");
                    assert_eq!(sent.qos, QoS::ExactlyOnce);
                    self.conn_sent.insert(id);
                }
                Packet::Disconnect => self.out_disconnected = true,
                Packet::PubAck(_)
                | Packet::PubRec(_)
                | Packet::PubComp(_)
                | Packet::Subscribe(_)
                | Packet::Unsubscribe(_)
                | Packet::PingReq => {}
                Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
                    panic!("client sent a server packet {packet:?}")
                }
            }
            self.out_packets += 1;
            self.summary.sent_packets += 1;
            self.out_tail.drain(..used);
        }
    }

    fn invariants(&self) {
        let n = self.session.in_flight();
        assert!(n <= INFLIGHT);
        assert_eq!(
            n,
            self.outstanding.len(),
            "in_flight vs accepted-not-completed"
        );
        assert_eq!(self.session.is_full(), n == INFLIGHT);
        // What was sent plus what is queued must be whole packets.
        let mut stream = self.out_tail.clone();
        stream.extend_from_slice(
            self.session
                .transmit()
                .get(self.record_sent..)
                .unwrap_or(&[]),
        );
        let mut rest = &stream[..];
        while !rest.is_empty() {
            match codec::decode(rest) {
                Ok(Some((_, used))) => rest = &rest[used..],
                other => panic!("queued bytes are not whole packets: {other:?} {stream:02x?}"),
            }
        }
    }
}
