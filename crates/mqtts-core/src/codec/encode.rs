//! MQTT 3.1.1 encoding, validating what decoding validates.

use super::decode::valid_suback_code;
use super::topic::{valid_topic_filter, valid_topic_name};
use super::{
    ConnectReturnCode, EncodeError, Packet, QoS, Subscribe, SubscribeTopics, Unsubscribe,
    UnsubscribeTopics,
};

/// The DUP bit in a PUBLISH's first byte (the session sets it on stored packets when resending).
pub const PUBLISH_DUP_FLAG: u8 = 0x08;

/// Largest remaining length four length bytes can express.
const MAX_REMAINING_LEN: usize = 268_435_455;

/// Validates a packet and writes its variable header and payload; returns the first byte.
type BodyFn = fn(&Packet<'_>, &mut Writer<'_>) -> Result<u8, EncodeError>;

/// Length of the whole encoded packet, after validating it like [`encode`] does.
pub fn encoded_len(packet: &Packet<'_>) -> Result<usize, EncodeError> {
    let (_, remaining_len) = measure(packet, body)?;
    let mut w = Writer::counting();
    w.remaining_len(remaining_len);
    Ok(w.pos + 1 + remaining_len)
}

/// Writes the packet at the start of `out` and returns the number of bytes written.
pub fn encode(packet: &Packet<'_>, out: &mut [u8]) -> Result<usize, EncodeError> {
    encode_with(packet, out, body)
}

/// [`encode`] for what the client session encodes: CONNECT, PUBLISH, and SUBSCRIBE and
/// UNSUBSCRIBE with [`Slice`](super::SubscribeTopics::Slice) topic lists, byte for byte as
/// [`encode`] writes them. Anything else (the fixed packets the session writes as bytes: PUBACK,
/// PUBREC, PUBREL, PUBCOMP, PINGREQ, DISCONNECT; what only a server sends; decoded `Wire` topic
/// lists) is refused with [`EncodeError::InvalidReturnCode`].
///
/// It exists for code size: a device linking only this leaves the server-side encoders, the
/// fixed packets and the re-validation of decoded topic lists out of its image.
pub(crate) fn encode_client(packet: &Packet<'_>, out: &mut [u8]) -> Result<usize, EncodeError> {
    encode_with(packet, out, client_body)
}

fn encode_with(packet: &Packet<'_>, out: &mut [u8], body: BodyFn) -> Result<usize, EncodeError> {
    let (first_byte, remaining_len) = measure(packet, body)?;
    let mut w = Writer { out, pos: 0 };
    w.u8(first_byte);
    w.remaining_len(remaining_len);
    // Room is checked once, here: the writes below cannot run out of it, so they need no
    // error path each (and the error order stays validation, `PacketTooLarge`, then this).
    if w.pos + remaining_len > w.out.len() {
        return Err(EncodeError::BufferTooSmall);
    }
    body(packet, &mut w)?;
    Ok(w.pos)
}

/// The first byte and the remaining length of `packet`, which this validates.
fn measure(packet: &Packet<'_>, body: BodyFn) -> Result<(u8, usize), EncodeError> {
    let mut w = Writer::counting();
    let first_byte = body(packet, &mut w)?;
    if w.pos > MAX_REMAINING_LEN {
        return Err(EncodeError::PacketTooLarge);
    }
    Ok((first_byte, w.pos))
}

/// Any packet: the server-side ones and decoded topic lists here, the rest in [`client_body`].
fn body(packet: &Packet<'_>, w: &mut Writer<'_>) -> Result<u8, EncodeError> {
    Ok(match *packet {
        Packet::ConnAck(a) => {
            if a.session_present && a.code != ConnectReturnCode::Accepted {
                return Err(EncodeError::InvalidReturnCode);
            }
            w.u8(u8::from(a.session_present));
            w.u8(a.code as u8);
            0x20
        }
        Packet::SubAck(ref a) => {
            w.packet_id(a.packet_id)?;
            nonempty(!a.return_codes.is_empty())?;
            if !a.return_codes.iter().all(|&c| valid_suback_code(c)) {
                return Err(EncodeError::InvalidReturnCode);
            }
            w.bytes(a.return_codes);
            0x90
        }
        Packet::UnsubAck(id) => w.ack(0xb0, id)?,
        Packet::PingResp => 0xd0,
        Packet::PubAck(id) => w.ack(0x40, id)?,
        Packet::PubRec(id) => w.ack(0x50, id)?,
        Packet::PubRel(id) => w.ack(0x62, id)?,
        Packet::PubComp(id) => w.ack(0x70, id)?,
        Packet::PingReq => 0xc0,
        Packet::Disconnect => 0xe0,
        Packet::Subscribe(Subscribe {
            packet_id,
            topics: topics @ SubscribeTopics::Wire(_),
        }) => subscribe(packet_id, topics.iter(), w)?,
        Packet::Unsubscribe(Unsubscribe {
            packet_id,
            topics: topics @ UnsubscribeTopics::Wire(_),
        }) => unsubscribe(packet_id, topics.iter(), w)?,
        _ => client_body(packet, w)?,
    })
}

/// The packets the session encodes (see [`encode_client`]).
fn client_body(packet: &Packet<'_>, w: &mut Writer<'_>) -> Result<u8, EncodeError> {
    Ok(match *packet {
        Packet::Connect(ref c) => {
            if c.password.is_some() && c.username.is_none() {
                return Err(EncodeError::PasswordWithoutUsername);
            }
            if c.client_id.is_empty() && !c.clean_session {
                return Err(EncodeError::InvalidClientId);
            }
            let mut flags = u8::from(c.clean_session) << 1
                | u8::from(c.username.is_some()) << 7
                | u8::from(c.password.is_some()) << 6;
            if let Some(will) = c.will {
                flags |= 0x04 | (will.qos as u8) << 3 | u8::from(will.retain) << 5;
            }
            // Protocol name "MQTT", level 4, flags, keep alive: one write, not four.
            let [ka_hi, ka_lo] = c.keep_alive.to_be_bytes();
            w.bytes(&[0, 4, b'M', b'Q', b'T', b'T', 4, flags, ka_hi, ka_lo]);
            w.str(c.client_id)?;
            if let Some(will) = c.will {
                w.topic_name(will.topic)?;
                w.binary(will.payload)?;
            }
            if let Some(username) = c.username {
                w.str(username)?;
            }
            if let Some(password) = c.password {
                w.binary(password)?;
            }
            0x10
        }
        Packet::Publish(ref p) => {
            w.topic_name(p.topic)?;
            match (p.qos, p.packet_id) {
                (QoS::AtMostOnce, Some(_)) => return Err(EncodeError::UnexpectedPacketId),
                (QoS::AtMostOnce, None) if p.dup => return Err(EncodeError::InvalidDupFlag),
                (QoS::AtMostOnce, None) => {}
                (_, Some(id)) => w.packet_id(id)?,
                (_, None) => return Err(EncodeError::MissingPacketId),
            }
            w.bytes(p.payload);
            0x30 | u8::from(p.dup) << 3 | (p.qos as u8) << 1 | u8::from(p.retain)
        }
        Packet::Subscribe(Subscribe {
            packet_id,
            topics: SubscribeTopics::Slice(list),
        }) => subscribe(packet_id, list.iter().copied(), w)?,
        Packet::Unsubscribe(Unsubscribe {
            packet_id,
            topics: UnsubscribeTopics::Slice(list),
        }) => unsubscribe(packet_id, list.iter().copied(), w)?,
        // The session writes these fixed packets as bytes (`TxBuf::push_ack`, `push_bytes`),
        // so only `encode` needs them (`body`); here they would be linked for nothing.
        Packet::PubAck(_)
        | Packet::PubRec(_)
        | Packet::PubRel(_)
        | Packet::PubComp(_)
        | Packet::PingReq
        | Packet::Disconnect
        | Packet::ConnAck(_)
        | Packet::SubAck(_)
        | Packet::UnsubAck(_)
        | Packet::PingResp
        | Packet::Subscribe(_)
        | Packet::Unsubscribe(_) => return Err(EncodeError::InvalidReturnCode),
    })
}

fn subscribe<'t>(
    packet_id: u16,
    topics: impl Iterator<Item = (&'t str, QoS)>,
    w: &mut Writer<'_>,
) -> Result<u8, EncodeError> {
    w.packet_id(packet_id)?;
    let mut any = false;
    for (filter, qos) in topics {
        w.filter(filter)?;
        w.u8(qos as u8);
        any = true;
    }
    nonempty(any)?;
    Ok(0x82)
}

fn unsubscribe<'t>(
    packet_id: u16,
    topics: impl Iterator<Item = &'t str>,
    w: &mut Writer<'_>,
) -> Result<u8, EncodeError> {
    w.packet_id(packet_id)?;
    let mut any = false;
    for filter in topics {
        w.filter(filter)?;
        any = true;
    }
    nonempty(any)?;
    Ok(0xa2)
}

fn nonempty(any: bool) -> Result<(), EncodeError> {
    if any {
        Ok(())
    } else {
        Err(EncodeError::EmptyTopicList)
    }
}

/// Output cursor. Bytes that do not fit in `out` are counted but not written, so one code path
/// both sizes (with an empty `out`) and writes (after the caller checked the room).
struct Writer<'o> {
    out: &'o mut [u8],
    pos: usize,
}

impl Writer<'_> {
    /// A writer that only counts.
    fn counting() -> Self {
        Writer {
            out: &mut [],
            pos: 0,
        }
    }

    fn bytes(&mut self, data: &[u8]) {
        let end = self.pos.saturating_add(data.len());
        if let Some(dst) = self.out.get_mut(self.pos..end) {
            dst.copy_from_slice(data);
        }
        self.pos = end;
    }

    fn u8(&mut self, b: u8) {
        self.bytes(&[b]);
    }

    fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }

    fn remaining_len(&mut self, mut len: usize) {
        loop {
            let byte = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                self.u8(byte);
                return;
            }
            self.u8(byte | 0x80);
        }
    }

    fn packet_id(&mut self, id: u16) -> Result<(), EncodeError> {
        if id == 0 {
            return Err(EncodeError::MissingPacketId);
        }
        self.u16(id);
        Ok(())
    }

    /// An acknowledgement that is only a packet id; returns its first byte.
    fn ack(&mut self, first_byte: u8, id: u16) -> Result<u8, EncodeError> {
        self.packet_id(id)?;
        Ok(first_byte)
    }

    fn binary(&mut self, data: &[u8]) -> Result<(), EncodeError> {
        let len = u16::try_from(data.len()).map_err(|_| EncodeError::StringTooLong)?;
        self.u16(len);
        self.bytes(data);
        Ok(())
    }

    fn str(&mut self, s: &str) -> Result<(), EncodeError> {
        self.binary(s.as_bytes())
    }

    fn topic_name(&mut self, topic: &str) -> Result<(), EncodeError> {
        if !valid_topic_name(topic) {
            return Err(EncodeError::InvalidTopicName);
        }
        self.str(topic)
    }

    fn filter(&mut self, filter: &str) -> Result<(), EncodeError> {
        if !valid_topic_filter(filter) {
            return Err(EncodeError::InvalidTopicFilter);
        }
        self.str(filter)
    }
}
