//! The dynamic-registration exchange as a sans-IO state machine over a [`Transport`]: connect,
//! send the signed CONNECT, wait for the platform's reply PUBLISH, acknowledge it, disconnect.
//!
//! The host runner and the firmware drive the same machine with their own transports, so the
//! rules live once: one attempt and no retry (Alibaba's SDK turns reconnect off for this
//! connection, `aiot_dynregmq_api.c`), a CONNACK refusal ends it with the code, a deadline
//! bounds the whole exchange, and every send keeps the [`Transport::send`] retry rule.
//! Nothing here logs or formats a secret.

use super::register::{
    parse_reply, RegisterKind, RegisterReply, ReplyError, REGISTER_TOPIC, REGNWL_TOPIC,
};
use crate::codec::{self, Connect, ConnectReturnCode, DecodeError, Packet, QoS};
use crate::transport::{ConnectProgress, Transport, TransportError};

/// Room for the CONNECT (client id ≤ 160, user name ≤ 128, 64-character password) or for the
/// PUBACK and DISCONNECT that follow the reply.
pub const TX_LEN: usize = 400;

/// Why a registration exchange ended without a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeError {
    /// The platform refused the CONNECT. For a wrong ProductSecret, ProductKey or DeviceName
    /// this is a refusal such as `BadUsernameOrPassword`; the exchange is not retried.
    Refused(ConnectReturnCode),
    /// The connection failed or the peer closed it before the reply arrived.
    Transport(TransportError),
    /// No reply before the deadline.
    Timeout,
    /// The CONNECT did not fit [`TX_LEN`] (credentials longer than the platform allows).
    RequestTooLarge,
    /// A packet from the platform is larger than the receive buffer.
    ReplyTooLarge,
    /// The platform sent bytes that are not MQTT.
    Protocol(DecodeError),
    /// The reply on the registration topic could not be read.
    Reply(ReplyError),
    /// The reply is of the other kind (`regnwl` for a `register` request or the reverse).
    WrongKind,
}

/// Where the exchange is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `start_connect` not called yet.
    Start,
    /// TCP/TLS set-up in progress.
    Connecting,
    /// Sending `tx[at..len]` (the CONNECT); then waiting.
    SendingRequest,
    /// Waiting for CONNACK and the reply.
    Waiting,
    /// Sending the PUBACK/DISCONNECT; the reply is `rx[reply]`.
    SendingAck,
    /// Finished; the reply is `rx[reply]`.
    Done,
    /// Failed; nothing more happens.
    Failed(ExchangeError),
}

/// One registration exchange. `RX` is the receive buffer; 512 bytes hold Alibaba's replies
/// (a CONNACK and a PUBLISH of one short JSON object).
pub struct Exchange<const RX: usize> {
    state: State,
    kind: RegisterKind,
    deadline: u64,
    tx: [u8; TX_LEN],
    tx_len: usize,
    tx_at: usize,
    rx: [u8; RX],
    rx_len: usize,
    /// Start and end of the reply PUBLISH packet in `rx`.
    reply: (usize, usize),
}

impl<const RX: usize> Exchange<RX> {
    /// Prepares the exchange: encodes the CONNECT with the registration credentials
    /// (from [`super::register::register_credentials`]). `deadline` is the time (same clock
    /// as `poll`'s `now`, milliseconds) by which the reply must have arrived.
    pub fn new(
        client_id: &str,
        username: &str,
        password: &str,
        kind: RegisterKind,
        deadline: u64,
    ) -> Result<Self, ExchangeError> {
        let mut tx = [0u8; TX_LEN];
        let connect = Packet::Connect(Connect {
            client_id,
            keep_alive: 60,
            clean_session: true,
            username: Some(username),
            password: Some(password.as_bytes()),
            will: None,
        });
        let tx_len =
            codec::encode_client(&connect, &mut tx).map_err(|_| ExchangeError::RequestTooLarge)?;
        Ok(Exchange {
            state: State::Start,
            kind,
            deadline,
            tx,
            tx_len,
            tx_at: 0,
            rx: [0u8; RX],
            rx_len: 0,
            reply: (0, 0),
        })
    }

    /// Advances the exchange as far as the transport allows without blocking. Returns
    /// `Ok(None)` while it is still going (call again later), `Ok(Some(reply))` once the reply
    /// has been received and acknowledged and the connection closed, or the error that ended
    /// it (the connection is then closed too). After the end, every call returns the same.
    pub fn poll<T: Transport>(
        &mut self,
        t: &mut T,
        now: u64,
    ) -> Result<Option<RegisterReply<'_>>, ExchangeError> {
        if let Err(e) = self.step(t, now) {
            t.close();
            self.state = State::Failed(e);
        }
        match self.state {
            State::Failed(e) => Err(e),
            State::Done => self.parsed().map(Some),
            _ => Ok(None),
        }
    }

    fn step<T: Transport>(&mut self, t: &mut T, now: u64) -> Result<(), ExchangeError> {
        loop {
            if matches!(self.state, State::Done | State::Failed(_)) {
                return Ok(());
            }
            if now >= self.deadline {
                return Err(ExchangeError::Timeout);
            }
            match self.state {
                State::Start => {
                    t.start_connect().map_err(ExchangeError::Transport)?;
                    self.state = State::Connecting;
                }
                State::Connecting => match t.poll_connect().map_err(ExchangeError::Transport)? {
                    ConnectProgress::Pending => return Ok(()),
                    ConnectProgress::Established => self.state = State::SendingRequest,
                },
                State::SendingRequest | State::SendingAck => {
                    if !self.send(t)? {
                        return Ok(());
                    }
                    if self.state == State::SendingAck {
                        t.close();
                        self.state = State::Done;
                    } else {
                        self.state = State::Waiting;
                    }
                }
                State::Waiting => {
                    if !self.receive(t)? {
                        return Ok(());
                    }
                }
                State::Done | State::Failed(_) => return Ok(()),
            }
        }
    }

    /// Sends `tx[at..len]`; `true` once all of it is taken. Only accepted bytes move `tx_at`,
    /// so after `WouldBlock` or `Ok(0)` the next call passes exactly the same bytes.
    fn send<T: Transport>(&mut self, t: &mut T) -> Result<bool, ExchangeError> {
        while self.tx_at < self.tx_len {
            let rest = self.tx.get(self.tx_at..self.tx_len).unwrap_or_default();
            match t.send(rest) {
                Ok(0) | Err(TransportError::WouldBlock) => return Ok(false),
                Ok(n) => self.tx_at += n.min(rest.len()),
                Err(e) => return Err(ExchangeError::Transport(e)),
            }
        }
        Ok(true)
    }

    /// Reads what has arrived and handles every whole packet; `true` when the reply was found
    /// (the state is then [`State::SendingAck`]).
    fn receive<T: Transport>(&mut self, t: &mut T) -> Result<bool, ExchangeError> {
        loop {
            let Some(free) = self.rx.get_mut(self.rx_len..).filter(|f| !f.is_empty()) else {
                return Err(ExchangeError::ReplyTooLarge);
            };
            match t.recv(free) {
                Ok(0) | Err(TransportError::WouldBlock) => return Ok(false),
                Ok(n) => self.rx_len += n.min(free.len()),
                Err(e) => return Err(ExchangeError::Transport(e)),
            }
            while let Some(total) = self.whole_packet()? {
                if self.handle(total)? {
                    return Ok(true);
                }
                self.rx.copy_within(total..self.rx_len, 0);
                self.rx_len -= total;
            }
        }
    }

    /// The length of the whole packet at the start of `rx`, if it has arrived.
    fn whole_packet(&self) -> Result<Option<usize>, ExchangeError> {
        let have = self.rx.get(..self.rx_len).unwrap_or_default();
        let Some(header) = codec::decode_fixed_header(have).map_err(ExchangeError::Protocol)?
        else {
            return Ok(None);
        };
        let total = header.packet_len();
        if total > RX {
            return Err(ExchangeError::ReplyTooLarge);
        }
        Ok((total <= self.rx_len).then_some(total))
    }

    /// Handles the packet `rx[..total]`; `true` when it was the reply (then the acknowledgement
    /// is queued and the packet stays at the start of `rx`).
    fn handle(&mut self, total: usize) -> Result<bool, ExchangeError> {
        let (qos, packet_id) = {
            let packet = decode(self.rx.get(..total).unwrap_or_default())?;
            match packet {
                Some(Packet::ConnAck(ack)) if ack.code != ConnectReturnCode::Accepted => {
                    return Err(ExchangeError::Refused(ack.code));
                }
                Some(Packet::Publish(p)) if is_reply_topic(p.topic) => {
                    let reply = parse_reply(p.topic, p.payload).map_err(ExchangeError::Reply)?;
                    let kind = match reply {
                        RegisterReply::DeviceSecret(_) => RegisterKind::Register,
                        RegisterReply::Token { .. } => RegisterKind::NoWhitelist,
                    };
                    if kind != self.kind {
                        return Err(ExchangeError::WrongKind);
                    }
                    (p.qos, p.packet_id)
                }
                // CONNACK accepted, or anything else: keep waiting for the reply.
                _ => return Ok(false),
            }
        };
        self.reply = (0, total);
        // PUBACK and DISCONNECT are fixed-form packets (MQTT 3.1.1 §3.4, §3.14), written as
        // bytes like the session does, so the exchange links no further encoder.
        self.tx_len = 0;
        self.tx_at = 0;
        if let (QoS::AtLeastOnce, Some(id)) = (qos, packet_id) {
            let [hi, lo] = id.to_be_bytes();
            self.tx[..4].copy_from_slice(&[0x40, 0x02, hi, lo]);
            self.tx_len = 4;
        }
        self.tx[self.tx_len..self.tx_len + 2].copy_from_slice(&[0xE0, 0x00]);
        self.tx_len += 2;
        self.state = State::SendingAck;
        Ok(true)
    }

    /// The reply, read again from `rx` (it was checked when it arrived).
    fn parsed(&self) -> Result<RegisterReply<'_>, ExchangeError> {
        let bytes = self.rx.get(self.reply.0..self.reply.1).unwrap_or_default();
        match decode(bytes)? {
            Some(Packet::Publish(p)) => {
                parse_reply(p.topic, p.payload).map_err(ExchangeError::Reply)
            }
            _ => Err(ExchangeError::Reply(ReplyError::UnknownTopic)),
        }
    }
}

fn is_reply_topic(topic: &str) -> bool {
    topic == REGISTER_TOPIC || topic == REGNWL_TOPIC
}

/// Decodes one whole packet from the server.
fn decode(bytes: &[u8]) -> Result<Option<Packet<'_>>, ExchangeError> {
    let Some(header) = codec::decode_fixed_header(bytes).map_err(ExchangeError::Protocol)? else {
        return Ok(None);
    };
    let body = bytes
        .get(header.header_len..header.packet_len())
        .unwrap_or_default();
    codec::decode_server_packet(&header, body).map_err(ExchangeError::Protocol)
}

#[cfg(test)]
mod tests;
