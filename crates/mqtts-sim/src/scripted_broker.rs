//! A scripted TLS "broker" for hostile-behaviour tests: a rustls server on a free loopback port
//! that runs a test-supplied script for every connection it accepts.
//!
//! It speaks only as much MQTT as a script asks for. A script is a closure over a [`Conn`]:
//! it can complete the TLS handshake (or not), read the client's packets (decoded strictly with
//! the core's codec, so a client that sends invalid MQTT fails the script), send any bytes —
//! valid packets, broken ones, a packet cut in half, one byte at a time — and close the
//! connection cleanly or abruptly. [`Conn::serve`] plays a well-behaved broker.
//!
//! One thread serves one connection at a time, in accept order; a device only ever has one
//! connection open, and a script that ends when the client closes frees the thread for the
//! reconnect. Everything the client sent is kept per connection in a [`ConnectionRecord`] that
//! tests read while the script runs ([`ScriptedBroker::records`]).
//!
//! ```no_run
//! # use mqtts_sim::scripted_broker::{ScriptedBroker, ScriptOptions, connack};
//! # fn demo(identity: mqtts_sim::pki::ServerIdentity) {
//! let broker = ScriptedBroker::start(ScriptOptions::new(identity), |conn| {
//!     conn.handshake()?;
//!     conn.expect_connect()?;
//!     conn.send(&connack(false, 0))?;
//!     conn.send(&[0x30, 0x80, 0x80, 0x80, 0x80, 0x01])?; // remaining length with a 5th byte
//!     conn.wait_closed()
//! })
//! .unwrap();
//! # }
//! ```

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use mqtts_core::codec::{self, ConnAck, ConnectReturnCode, DecodeError, Packet, Publish, QoS};
use rustls::{ServerConfig, ServerConnection};

use crate::broker::BrokerError;
use crate::pki::ServerIdentity;

/// Idle wait of the polling loops (the sockets are non-blocking).
const IDLE: Duration = Duration::from_millis(1);

/// How the scripted server is set up.
#[derive(Debug, Clone)]
pub struct ScriptOptions {
    /// Certificate and key served.
    pub identity: ServerIdentity,
    /// Let TLS 1.3 application data leave with the server's first flight (before the client's
    /// Finished), so bytes queued with [`Conn::queue_early`] reach the client before it could
    /// have sent anything.
    pub half_rtt: bool,
    /// Default limit of each blocking [`Conn`] operation.
    pub step_timeout: Duration,
    /// `SO_SNDBUF` of accepted sockets; small values make TCP back-pressure show sooner
    /// (`None`: the system default, which on loopback grows to megabytes).
    pub send_buffer: Option<usize>,
}

impl ScriptOptions {
    /// Serve `identity`, no half-RTT data, 10 s per operation.
    pub fn new(identity: ServerIdentity) -> Self {
        ScriptOptions {
            identity,
            half_rtt: false,
            step_timeout: Duration::from_secs(10),
            send_buffer: None,
        }
    }
}

/// Why a script step ended without doing what it was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptError {
    /// The client closed the connection (EOF, close_notify or reset).
    Closed,
    /// The step's time limit passed.
    Timeout,
    /// The broker is being stopped.
    Stopped,
    /// A socket error.
    Io(io::ErrorKind),
    /// TLS failed (handshake alert, bad record).
    Tls(String),
    /// The client sent bytes that are not a valid MQTT 3.1.1 packet.
    Malformed(DecodeError),
    /// The client sent a valid packet the script did not expect.
    Unexpected(String),
    /// The script panicked.
    Panicked,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for ScriptError {}

/// A packet the client sent, owned and simplified for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientPacket {
    /// CONNECT.
    Connect {
        /// Client id.
        client_id: String,
        /// Clean-session flag.
        clean_session: bool,
        /// Keep-alive, seconds.
        keep_alive: u16,
        /// User name, if any.
        username: Option<String>,
        /// Password, if any (test brokers only; check it, do not print it).
        password: Option<Vec<u8>>,
    },
    /// PUBLISH.
    Publish(ReceivedPublish),
    /// PUBACK.
    PubAck(u16),
    /// PUBREC.
    PubRec(u16),
    /// PUBREL.
    PubRel(u16),
    /// PUBCOMP.
    PubComp(u16),
    /// SUBSCRIBE: packet id and (filter, requested QoS) pairs.
    Subscribe {
        /// Packet id.
        packet_id: u16,
        /// Filters and requested QoS.
        filters: Vec<(String, QoS)>,
    },
    /// UNSUBSCRIBE.
    Unsubscribe {
        /// Packet id.
        packet_id: u16,
        /// Filters.
        filters: Vec<String>,
    },
    /// PINGREQ.
    PingReq,
    /// DISCONNECT.
    Disconnect,
    /// A server-to-client packet type (CONNACK, SUBACK, …) sent by the client.
    ServerOnly(u8),
}

/// A PUBLISH the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedPublish {
    /// DUP flag.
    pub dup: bool,
    /// QoS.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// Topic name.
    pub topic: String,
    /// Packet id (QoS 1/2).
    pub packet_id: Option<u16>,
    /// Payload.
    pub payload: Vec<u8>,
}

impl ClientPacket {
    fn from_packet(p: &Packet<'_>) -> ClientPacket {
        match *p {
            Packet::Connect(c) => ClientPacket::Connect {
                client_id: c.client_id.into(),
                clean_session: c.clean_session,
                keep_alive: c.keep_alive,
                username: c.username.map(Into::into),
                password: c.password.map(<[u8]>::to_vec),
            },
            Packet::Publish(p) => ClientPacket::Publish(ReceivedPublish {
                dup: p.dup,
                qos: p.qos,
                retain: p.retain,
                topic: p.topic.into(),
                packet_id: p.packet_id,
                payload: p.payload.to_vec(),
            }),
            Packet::PubAck(id) => ClientPacket::PubAck(id),
            Packet::PubRec(id) => ClientPacket::PubRec(id),
            Packet::PubRel(id) => ClientPacket::PubRel(id),
            Packet::PubComp(id) => ClientPacket::PubComp(id),
            Packet::Subscribe(s) => ClientPacket::Subscribe {
                packet_id: s.packet_id,
                filters: s.topics.iter().map(|(f, q)| (f.into(), q)).collect(),
            },
            Packet::Unsubscribe(u) => ClientPacket::Unsubscribe {
                packet_id: u.packet_id,
                filters: u.topics.iter().map(Into::into).collect(),
            },
            Packet::PingReq => ClientPacket::PingReq,
            Packet::Disconnect => ClientPacket::Disconnect,
            Packet::ConnAck(_) => ClientPacket::ServerOnly(2),
            Packet::SubAck(_) => ClientPacket::ServerOnly(9),
            Packet::UnsubAck(_) => ClientPacket::ServerOnly(11),
            Packet::PingResp => ClientPacket::ServerOnly(13),
        }
    }
}

/// What happened on one accepted connection.
#[derive(Debug, Clone)]
pub struct ConnectionRecord {
    /// 0 for the first connection accepted, then 1, 2, …
    pub index: usize,
    /// When `accept` returned it.
    pub accepted_at: Instant,
    /// When the TLS handshake completed, if it did.
    pub handshake_done_at: Option<Instant>,
    /// Every packet the client sent, in order, with its arrival time.
    pub received: Vec<(Instant, ClientPacket)>,
    /// When the script finished with the connection.
    pub ended_at: Option<Instant>,
    /// The script's result, once it finished.
    pub outcome: Option<Result<(), ScriptError>>,
}

impl ConnectionRecord {
    /// The PUBLISH packets the client sent on this connection.
    pub fn publishes(&self) -> Vec<ReceivedPublish> {
        self.received
            .iter()
            .filter_map(|(_, p)| match p {
                ClientPacket::Publish(p) => Some(p.clone()),
                _ => None,
            })
            .collect()
    }

    /// Packet ids of the PUBACKs the client sent on this connection.
    pub fn pubacks(&self) -> Vec<u16> {
        self.received
            .iter()
            .filter_map(|(_, p)| match p {
                ClientPacket::PubAck(id) => Some(*id),
                _ => None,
            })
            .collect()
    }
}

struct Shared {
    stop: AtomicBool,
    records: Mutex<Vec<ConnectionRecord>>,
}

impl Shared {
    fn records(&self) -> MutexGuard<'_, Vec<ConnectionRecord>> {
        // A panicking script cannot leave a record half-written: every update is one push or
        // one assignment. Keep going with the data.
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running scripted server. Dropping it stops it (the current script sees
/// [`ScriptError::Stopped`] at its next wait) and joins its thread.
pub struct ScriptedBroker {
    port: u16,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for ScriptedBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptedBroker")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl ScriptedBroker {
    /// Binds a free port on 127.0.0.1 and runs `script` for every connection, one at a time.
    pub fn start<F>(options: ScriptOptions, script: F) -> Result<Self, BrokerError>
    where
        F: FnMut(&mut Conn) -> Result<(), ScriptError> + Send + 'static,
    {
        let config = Arc::new(server_config(&options)?);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            records: Mutex::new(Vec::new()),
        });
        let thread = {
            let shared = shared.clone();
            thread::Builder::new()
                .name(format!("scripted-broker-{port}"))
                .spawn(move || accept_loop(listener, config, options, shared, script))?
        };
        Ok(ScriptedBroker {
            port,
            shared,
            thread: Some(thread),
        })
    }

    /// The TLS port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A snapshot of every connection so far (the current one included).
    pub fn records(&self) -> Vec<ConnectionRecord> {
        self.shared.records().clone()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.records().len()
    }

    /// Waits until the script has finished with every connection accepted so far (e.g. after
    /// the client said DISCONNECT); false if `limit` passed first.
    pub fn wait_ended(&self, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        loop {
            if self.shared.records().iter().all(|r| r.outcome.is_some()) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            thread::sleep(IDLE);
        }
    }

    /// Stops the server and joins its thread; returns the records.
    pub fn stop(mut self) -> Vec<ConnectionRecord> {
        self.shutdown();
        self.records()
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ScriptedBroker {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn server_config(options: &ScriptOptions) -> Result<ServerConfig, BrokerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(BrokerError::Tls)?
        .with_no_client_auth()
        .with_single_cert(
            vec![options.identity.cert_der.clone()],
            options.identity.private_key(),
        )
        .map_err(BrokerError::Tls)?;
    config.send_half_rtt_data = options.half_rtt;
    Ok(config)
}

fn accept_loop<F>(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    options: ScriptOptions,
    shared: Arc<Shared>,
    mut script: F,
) where
    F: FnMut(&mut Conn) -> Result<(), ScriptError>,
{
    while !shared.stop.load(Ordering::SeqCst) {
        let tcp = match listener.accept() {
            Ok((tcp, _)) => tcp,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(IDLE);
                continue;
            }
            Err(e) => {
                log::warn!("scripted broker accept: {e}");
                thread::sleep(IDLE);
                continue;
            }
        };
        let index = {
            let mut records = shared.records();
            let index = records.len();
            records.push(ConnectionRecord {
                index,
                accepted_at: Instant::now(),
                handshake_done_at: None,
                received: Vec::new(),
                ended_at: None,
                outcome: None,
            });
            index
        };
        let outcome = match Conn::new(tcp, &config, index, &options, shared.clone()) {
            Ok(mut conn) => {
                let r = panic::catch_unwind(AssertUnwindSafe(|| script(&mut conn)))
                    .unwrap_or(Err(ScriptError::Panicked));
                conn.abort();
                r
            }
            Err(e) => Err(e),
        };
        if let Err(e) = &outcome {
            log::debug!("scripted connection {index} ended: {e:?}");
        }
        let mut records = shared.records();
        if let Some(r) = records.get_mut(index) {
            r.ended_at = Some(Instant::now());
            r.outcome = Some(outcome);
        }
    }
}

/// One accepted connection, handed to the script. Every blocking operation gives up after
/// [`ScriptOptions::step_timeout`] (or the timeout it takes) and when the broker stops.
pub struct Conn {
    index: usize,
    tcp: TcpStream,
    tls: ServerConnection,
    /// Decrypted bytes not yet framed into packets.
    plain: Vec<u8>,
    peer_closed: bool,
    /// Times the socket refused more bytes while some were waiting (TCP back-pressure).
    blocked: usize,
    step_timeout: Duration,
    shared: Arc<Shared>,
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl Conn {
    fn new(
        tcp: TcpStream,
        config: &Arc<ServerConfig>,
        index: usize,
        options: &ScriptOptions,
        shared: Arc<Shared>,
    ) -> Result<Self, ScriptError> {
        tcp.set_nonblocking(true).map_err(io_error)?;
        // Dripped bytes must leave one by one.
        tcp.set_nodelay(true).map_err(io_error)?;
        if let Some(size) = options.send_buffer {
            socket2::SockRef::from(&tcp)
                .set_send_buffer_size(size)
                .map_err(io_error)?;
        }
        let mut tls = ServerConnection::new(config.clone()).map_err(|e| tls_error(&e))?;
        // A script may queue a whole flood at once; `send` paces it against the socket.
        tls.set_buffer_limit(None);
        Ok(Conn {
            index,
            tcp,
            tls,
            plain: Vec::new(),
            peer_closed: false,
            blocked: 0,
            step_timeout: options.step_timeout,
            shared,
        })
    }

    /// 0 for the first connection accepted, then 1, 2, …
    pub fn index(&self) -> usize {
        self.index
    }

    /// How often the socket was full while bytes waited to be sent: the client (or TCP on its
    /// behalf) pushed back.
    pub fn times_blocked(&self) -> usize {
        self.blocked
    }

    /// Whether the broker is being stopped.
    pub fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst)
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.step_timeout
    }

    fn check(&self, deadline: Instant) -> Result<(), ScriptError> {
        if self.stopping() {
            Err(ScriptError::Stopped)
        } else if Instant::now() >= deadline {
            Err(ScriptError::Timeout)
        } else {
            Ok(())
        }
    }

    /// Queues bytes to send as TLS application data before the handshake: with
    /// [`ScriptOptions::half_rtt`] they leave with the server's first flight.
    pub fn queue_early(&mut self, bytes: &[u8]) -> Result<(), ScriptError> {
        self.tls.writer().write_all(bytes).map_err(io_error)
    }

    /// Completes the TLS handshake.
    pub fn handshake(&mut self) -> Result<(), ScriptError> {
        let deadline = self.deadline();
        while self.tls.is_handshaking() {
            self.check(deadline)?;
            let wrote = self.write_some()?;
            if !self.tls.is_handshaking() {
                break;
            }
            if !self.read_some()? && !wrote {
                thread::sleep(IDLE);
            }
        }
        // The server's last flight (and any half-RTT data) must leave before the script goes on.
        self.flush(deadline)?;
        let now = Instant::now();
        if let Some(r) = self.shared.records().get_mut(self.index) {
            r.handshake_done_at = Some(now);
        }
        Ok(())
    }

    /// Accepts TCP only: reads and discards whatever arrives (the ClientHello) and never answers,
    /// until the client gives up (`Ok`) or `timeout` passes.
    pub fn stay_silent(&mut self, timeout: Duration) -> Result<(), ScriptError> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 1024];
        loop {
            self.check(deadline)?;
            match self.tcp.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(IDLE),
                Err(e) if is_closed(&e) => return Ok(()),
                Err(e) => return Err(io_error(e)),
            }
        }
    }

    /// Reads the next whole packet from the client (recorded in its [`ConnectionRecord`]).
    pub fn read_packet(&mut self) -> Result<ClientPacket, ScriptError> {
        let deadline = self.deadline();
        self.read_packet_until(deadline)
    }

    /// Like [`Conn::read_packet`] with an explicit deadline; `Err(Timeout)` keeps any partial
    /// packet for the next read.
    pub fn read_packet_until(&mut self, deadline: Instant) -> Result<ClientPacket, ScriptError> {
        loop {
            if let Some(p) = self.take_packet()? {
                return Ok(p);
            }
            if self.peer_closed {
                return Err(ScriptError::Closed);
            }
            self.check(deadline)?;
            let wrote = self.write_some()?;
            if !self.read_some()? && !wrote {
                thread::sleep(IDLE);
            }
        }
    }

    /// Reads the CONNECT (the first packet); anything else is [`ScriptError::Unexpected`].
    pub fn expect_connect(&mut self) -> Result<ClientPacket, ScriptError> {
        match self.read_packet()? {
            p @ ClientPacket::Connect { .. } => Ok(p),
            other => Err(ScriptError::Unexpected(format!(
                "{other:?} instead of CONNECT"
            ))),
        }
    }

    /// Handshake, CONNECT, CONNACK accepted (`session_present` as given).
    pub fn accept_session(&mut self, session_present: bool) -> Result<(), ScriptError> {
        self.handshake()?;
        self.expect_connect()?;
        self.send(&connack(session_present, 0))
    }

    /// Reads `n` PUBLISH packets without acknowledging them; other packets get the normal
    /// answer ([`Conn::answer`]).
    pub fn read_publishes(&mut self, n: usize) -> Result<Vec<ReceivedPublish>, ScriptError> {
        let mut out = Vec::new();
        while out.len() < n {
            match self.read_packet()? {
                ClientPacket::Publish(p) => out.push(p),
                other => self.answer(&other)?,
            }
        }
        Ok(out)
    }

    /// Sends `bytes` as TLS application data and waits until the socket took them all. While
    /// the socket is full it keeps reading the client, so a client that stops reading until its
    /// own packets leave cannot deadlock the script.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), ScriptError> {
        self.tls.writer().write_all(bytes).map_err(io_error)?;
        let deadline = self.deadline();
        self.flush(deadline)
    }

    /// Sends `bytes` one byte (one TLS record) at a time, `gap` apart.
    pub fn drip(&mut self, bytes: &[u8], gap: Duration) -> Result<(), ScriptError> {
        for (i, b) in bytes.iter().enumerate() {
            if i > 0 {
                self.pause(gap)?;
            }
            self.send(std::slice::from_ref(b))?;
        }
        Ok(())
    }

    /// Waits `d`, still reading (and recording) what the client sends, without answering.
    /// Ends early with `Err(Closed)` when the client hangs up, so the thread is free for its
    /// reconnect.
    pub fn pause(&mut self, d: Duration) -> Result<(), ScriptError> {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if self.stopping() {
                return Err(ScriptError::Stopped);
            }
            // Packets are framed and recorded so the record shows what arrived meanwhile.
            while self.take_packet()?.is_some() {}
            if self.peer_closed {
                return Err(ScriptError::Closed);
            }
            if !self.read_some()? {
                thread::sleep(IDLE);
            }
        }
        Ok(())
    }

    /// Reads what has arrived without waiting and returns the next whole packet, if any.
    pub fn try_read_packet(&mut self) -> Result<Option<ClientPacket>, ScriptError> {
        if let Some(p) = self.take_packet()? {
            return Ok(Some(p));
        }
        if self.peer_closed {
            return Err(ScriptError::Closed);
        }
        self.write_some()?;
        self.read_some()?;
        self.take_packet()
    }

    /// Writes `bytes` straight to TCP, outside TLS (e.g. an HTTP answer instead of a
    /// ServerHello).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ScriptError> {
        let deadline = self.deadline();
        let mut rest = bytes;
        while !rest.is_empty() {
            self.check(deadline)?;
            match self.tcp.write(rest) {
                Ok(0) => return Err(ScriptError::Closed),
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(IDLE),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(e)),
            }
        }
        Ok(())
    }

    /// Sends TLS close_notify and closes TCP.
    pub fn close(&mut self) {
        self.tls.send_close_notify();
        let _ = self.flush(Instant::now() + Duration::from_millis(200));
        let _ = self.tcp.shutdown(Shutdown::Both);
    }

    /// Closes TCP without close_notify (a truncated TLS stream).
    pub fn abort(&mut self) {
        let _ = self.tcp.shutdown(Shutdown::Both);
    }

    /// Reads (and records) packets without answering until the client closes: `Ok` then,
    /// `Err(Timeout)` if it never does.
    pub fn wait_closed(&mut self) -> Result<(), ScriptError> {
        let deadline = self.deadline();
        loop {
            match self.read_packet_until(deadline) {
                Ok(_) => {}
                Err(ScriptError::Closed) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// The answer a well-behaved broker gives to `packet`: SUBACK granting each requested QoS,
    /// UNSUBACK, PUBACK / PUBREC for QoS 1 / 2, PUBCOMP for PUBREL, PINGRESP; nothing otherwise.
    pub fn answer(&mut self, packet: &ClientPacket) -> Result<(), ScriptError> {
        let reply = match packet {
            ClientPacket::Subscribe { packet_id, filters } => {
                let codes: Vec<u8> = filters.iter().map(|(_, q)| *q as u8).collect();
                Some(suback(*packet_id, &codes))
            }
            ClientPacket::Unsubscribe { packet_id, .. } => Some(ack(0xB0, *packet_id)),
            ClientPacket::Publish(p) => match (p.qos, p.packet_id) {
                (QoS::AtLeastOnce, Some(id)) => Some(ack(0x40, id)),
                (QoS::ExactlyOnce, Some(id)) => Some(ack(0x50, id)),
                _ => None,
            },
            ClientPacket::PubRel(id) => Some(ack(0x70, *id)),
            ClientPacket::PingReq => Some(vec![0xD0, 0x00]),
            _ => None,
        };
        match reply {
            Some(bytes) => self.send(&bytes),
            None => Ok(()),
        }
    }

    /// Plays a well-behaved broker ([`Conn::answer`]) until the client closes or sends
    /// DISCONNECT (`Ok`), or `limit` passes (`Err(Timeout)`). Byte strings arriving on `inbox`
    /// are sent to the client as they come (commands from the test).
    pub fn serve(
        &mut self,
        inbox: Option<&Receiver<Vec<u8>>>,
        limit: Duration,
    ) -> Result<(), ScriptError> {
        let end = Instant::now() + limit;
        loop {
            if let Some(inbox) = inbox {
                while let Ok(bytes) = inbox.try_recv() {
                    self.send(&bytes)?;
                }
            }
            if Instant::now() >= end {
                return Err(ScriptError::Timeout);
            }
            let slice = (Instant::now() + Duration::from_millis(5)).min(end);
            match self.read_packet_until(slice) {
                Ok(ClientPacket::Disconnect) => return Ok(()),
                Ok(p) => self.answer(&p)?,
                Err(ScriptError::Timeout) => {}
                Err(ScriptError::Closed) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Frames one packet out of the decrypted bytes, if a whole one is there.
    fn take_packet(&mut self) -> Result<Option<ClientPacket>, ScriptError> {
        let (packet, used) = match codec::decode(&self.plain) {
            Ok(Some((p, used))) => (ClientPacket::from_packet(&p), used),
            Ok(None) => return Ok(None),
            Err(e) => return Err(ScriptError::Malformed(e)),
        };
        self.plain.drain(..used);
        if let Some(r) = self.shared.records().get_mut(self.index) {
            r.received.push((Instant::now(), packet.clone()));
        }
        Ok(Some(packet))
    }

    /// Writes queued TLS bytes until the socket is full; true if any were written.
    fn write_some(&mut self) -> Result<bool, ScriptError> {
        let mut wrote = false;
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.tcp) {
                Ok(0) => return Err(ScriptError::Closed),
                Ok(_) => wrote = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.blocked += 1;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_closed(&e) => return Err(ScriptError::Closed),
                Err(e) => return Err(io_error(e)),
            }
        }
        Ok(wrote)
    }

    /// Reads what the socket has and decrypts it; true if anything arrived.
    fn read_some(&mut self) -> Result<bool, ScriptError> {
        if self.peer_closed {
            return Ok(false);
        }
        match self.tls.read_tls(&mut self.tcp) {
            Ok(0) => {
                self.peer_closed = true;
                Ok(true)
            }
            Ok(_) => {
                let state = self.tls.process_new_packets().map_err(|e| {
                    // Let the client see the alert.
                    let _ = self.tls.write_tls(&mut self.tcp);
                    tls_error(&e)
                })?;
                if state.peer_has_closed() {
                    self.peer_closed = true;
                }
                let mut buf = [0u8; 4096];
                loop {
                    match self.tls.reader().read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => self.plain.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => {
                            self.peer_closed = true;
                            break;
                        }
                    }
                }
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
            Err(e) if is_closed(&e) => {
                self.peer_closed = true;
                Ok(true)
            }
            Err(e) => Err(io_error(e)),
        }
    }

    fn flush(&mut self, deadline: Instant) -> Result<(), ScriptError> {
        while self.tls.wants_write() {
            self.check(deadline)?;
            if !self.write_some()? {
                // The socket is full: drain the client so it can drain us.
                if !self.read_some()? {
                    thread::sleep(IDLE);
                }
            }
        }
        Ok(())
    }
}

fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::NotConnected
    )
}

fn io_error(e: io::Error) -> ScriptError {
    if is_closed(&e) {
        ScriptError::Closed
    } else {
        ScriptError::Io(e.kind())
    }
}

fn tls_error(e: &rustls::Error) -> ScriptError {
    ScriptError::Tls(e.to_string())
}

fn encode(packet: &Packet<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; codec::encoded_len(packet).unwrap_or(0)];
    match codec::encode(packet, &mut buf) {
        Ok(n) => buf.truncate(n),
        // Only reachable with arguments no well-formed helper call produces.
        Err(e) => panic!("cannot encode {packet:?}: {e:?}"),
    }
    buf
}

/// CONNACK with `code` (0 = accepted; 1..=5 refusals).
pub fn connack(session_present: bool, code: u8) -> Vec<u8> {
    match ConnectReturnCode::from_u8(code) {
        Some(code) => encode(&Packet::ConnAck(ConnAck {
            session_present,
            code,
        })),
        // Invalid codes are hostile on purpose: built by hand.
        None => vec![0x20, 0x02, u8::from(session_present), code],
    }
}

/// SUBACK for `packet_id` with these return codes.
pub fn suback(packet_id: u16, codes: &[u8]) -> Vec<u8> {
    let mut p = vec![0x90];
    push_remaining_length(&mut p, 2 + codes.len());
    p.extend_from_slice(&packet_id.to_be_bytes());
    p.extend_from_slice(codes);
    p
}

/// A two-byte-id acknowledgement: `first_byte` 0x40 PUBACK, 0x50 PUBREC, 0x62 PUBREL,
/// 0x70 PUBCOMP, 0xB0 UNSUBACK.
pub fn ack(first_byte: u8, packet_id: u16) -> Vec<u8> {
    let [hi, lo] = packet_id.to_be_bytes();
    vec![first_byte, 0x02, hi, lo]
}

/// A valid PUBLISH from the broker (`packet_id` for QoS 1/2).
pub fn publish(topic: &str, payload: &[u8], qos: QoS, packet_id: Option<u16>) -> Vec<u8> {
    encode(&Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic,
        packet_id,
        payload,
    }))
}

/// A PUBLISH assembled byte by byte with no validation (hostile topics, QoS 3, id 0).
/// `first_byte` carries the flags; `packet_id` is written when given.
pub fn raw_publish(
    first_byte: u8,
    topic: &[u8],
    packet_id: Option<u16>,
    payload: &[u8],
) -> Vec<u8> {
    let id_len = if packet_id.is_some() { 2 } else { 0 };
    let mut p = vec![first_byte];
    push_remaining_length(&mut p, 2 + topic.len() + id_len + payload.len());
    // Topics in tests are short; a u16 length is enough.
    p.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    p.extend_from_slice(topic);
    if let Some(id) = packet_id {
        p.extend_from_slice(&id.to_be_bytes());
    }
    p.extend_from_slice(payload);
    p
}

/// Appends the MQTT variable-length encoding of `len`.
pub fn push_remaining_length(out: &mut Vec<u8>, mut len: usize) {
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        out.push(b);
        if len == 0 {
            break;
        }
    }
}
