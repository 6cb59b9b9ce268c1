//! Strict, zero-copy MQTT 3.1.1 decoding.

use super::topic::{valid_topic_filter, valid_topic_name};
use super::{
    ConnAck, Connect, ConnectReturnCode, DecodeError, LastWill, Packet, Publish, QoS, SubAck,
    Subscribe, SubscribeTopics, Unsubscribe, UnsubscribeTopics, SUBACK_FAILURE,
};

/// A decoded fixed header: the first byte and the remaining length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    /// Packet type (high nibble) and flags (low nibble).
    pub first_byte: u8,
    /// Bytes taken by the fixed header: 2 to 5.
    pub header_len: usize,
    /// Length of the variable header and payload.
    pub remaining_len: usize,
}

impl FixedHeader {
    /// Length of the whole packet, fixed header included.
    pub fn packet_len(&self) -> usize {
        self.header_len.saturating_add(self.remaining_len)
    }

    /// The control packet type, 1 (CONNECT) to 14 (DISCONNECT).
    pub fn packet_type(&self) -> u8 {
        self.first_byte >> 4
    }
}

/// Reads the fixed header at the start of `buf`; `Ok(None)` means more bytes are needed.
///
/// Validates only the remaining-length encoding (at most 4 bytes) and the reserved types 0 and
/// 15. Non-minimal length encodings (e.g. `0x80 0x00` for 0) are accepted: §2.2.3 describes the
/// encoding algorithm but no conformance statement forbids them.
pub fn decode_fixed_header(buf: &[u8]) -> Result<Option<FixedHeader>, DecodeError> {
    let Some(&first_byte) = buf.first() else {
        return Ok(None);
    };
    if matches!(first_byte >> 4, 0 | 15) {
        return Err(DecodeError::ReservedPacketType);
    }
    // A plain loop over the length bytes: `skip`/`take`/`enumerate` cost about 100 bytes of
    // flash on Cortex-M here, in every caller it is inlined into.
    let mut remaining_len = 0usize;
    let mut shift = 0;
    let mut header_len = 1;
    for &b in buf.get(1..).unwrap_or_default() {
        remaining_len |= usize::from(b & 0x7f) << shift;
        header_len += 1;
        if b & 0x80 == 0 {
            return Ok(Some(FixedHeader {
                first_byte,
                header_len,
                remaining_len,
            }));
        }
        if header_len == 5 {
            return Err(DecodeError::MalformedRemainingLength);
        }
        shift += 7;
    }
    Ok(None)
}

/// Decodes one packet from the start of `buf`.
///
/// `Ok(None)` means the packet is incomplete; `Ok(Some((packet, used)))` gives the packet,
/// borrowing from `buf`, and the number of bytes it took.
pub fn decode(buf: &[u8]) -> Result<Option<(Packet<'_>, usize)>, DecodeError> {
    let Some(header) = decode_fixed_header(buf)? else {
        return Ok(None);
    };
    let len = header.packet_len();
    match buf.get(header.header_len..len) {
        Some(body) => Ok(Some((decode_body(&header, body)?, len))),
        None => Ok(None),
    }
}

/// Decodes a packet whose fixed header was already read; `body` is exactly
/// `header.remaining_len` bytes.
pub fn decode_body<'a>(header: &FixedHeader, body: &'a [u8]) -> Result<Packet<'a>, DecodeError> {
    let mut r = check_header(header, body)?;
    let packet = match header.packet_type() {
        1 => Packet::Connect(connect(&mut r)?),
        8 => {
            let (packet_id, wire) = topic_list(&mut r, Reader::subscription)?;
            Packet::Subscribe(Subscribe {
                packet_id,
                topics: SubscribeTopics::Wire(wire),
            })
        }
        10 => {
            let (packet_id, wire) = topic_list(&mut r, Reader::filter)?;
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                topics: UnsubscribeTopics::Wire(wire),
            })
        }
        12 => Packet::PingReq,
        14 => Packet::Disconnect,
        _ => from_server(header, &mut r)?,
    };
    finish(r, packet)
}

/// Decodes a packet the way a client must: fully for the packets a server sends (CONNACK,
/// PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, PINGRESP), and `Ok(None)` for the
/// ones only a client sends (CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT), whose bodies
/// it does not read. Errors are the ones [`decode_body`] gives for the same bytes.
///
/// A client linking only this leaves the server-side decoders (CONNECT, topic filters) out of
/// its image.
pub fn decode_server_packet<'a>(
    header: &FixedHeader,
    body: &'a [u8],
) -> Result<Option<Packet<'a>>, DecodeError> {
    let mut r = check_header(header, body)?;
    if matches!(header.packet_type(), 1 | 8 | 10 | 12 | 14) {
        return Ok(None);
    }
    let packet = from_server(header, &mut r)?;
    finish(r, packet).map(Some)
}

/// Checks the body length against the header and the fixed header flags.
fn check_header<'a>(header: &FixedHeader, body: &'a [u8]) -> Result<Reader<'a>, DecodeError> {
    if body.len() != header.remaining_len {
        return Err(DecodeError::LengthMismatch);
    }
    let flags = header.first_byte & 0x0f;
    let required_flags = match header.packet_type() {
        3 => flags,
        6 | 8 | 10 => 0b0010,
        _ => 0,
    };
    if flags != required_flags {
        return Err(DecodeError::InvalidFixedHeaderFlags);
    }
    Ok(Reader::new(body))
}

/// The packet must have used up the body.
fn finish<'a>(r: Reader<'a>, packet: Packet<'a>) -> Result<Packet<'a>, DecodeError> {
    if r.is_empty() {
        Ok(packet)
    } else {
        Err(DecodeError::LengthMismatch)
    }
}

/// The body of a packet a server sends; other types are `ReservedPacketType`.
fn from_server<'a>(header: &FixedHeader, r: &mut Reader<'a>) -> Result<Packet<'a>, DecodeError> {
    Ok(match header.packet_type() {
        2 => {
            let ack_flags = r.u8()?;
            let code = r.u8()?;
            if ack_flags & 0xfe != 0 {
                return Err(DecodeError::InvalidConnAckFlags);
            }
            let session_present = ack_flags == 1;
            match ConnectReturnCode::from_u8(code) {
                Some(code) if !session_present || code == ConnectReturnCode::Accepted => {
                    Packet::ConnAck(ConnAck {
                        session_present,
                        code,
                    })
                }
                _ => return Err(DecodeError::InvalidConnectReturnCode),
            }
        }
        3 => Packet::Publish(publish(header.first_byte & 0x0f, r)?),
        4 => Packet::PubAck(r.packet_id()?),
        5 => Packet::PubRec(r.packet_id()?),
        6 => Packet::PubRel(r.packet_id()?),
        7 => Packet::PubComp(r.packet_id()?),
        9 => {
            let packet_id = r.packet_id()?;
            let return_codes = r.rest();
            if return_codes.is_empty() {
                return Err(DecodeError::EmptyTopicList);
            }
            if !return_codes.iter().all(|&c| valid_suback_code(c)) {
                return Err(DecodeError::InvalidSubAckCode);
            }
            Packet::SubAck(SubAck {
                packet_id,
                return_codes,
            })
        }
        11 => Packet::UnsubAck(r.packet_id()?),
        13 => Packet::PingResp,
        _ => return Err(DecodeError::ReservedPacketType),
    })
}

/// Whether `code` is a SUBACK return code 3.1.1 defines.
pub(super) fn valid_suback_code(code: u8) -> bool {
    code <= 2 || code == SUBACK_FAILURE
}

fn connect<'a>(r: &mut Reader<'a>) -> Result<Connect<'a>, DecodeError> {
    let name = r.binary()?;
    let level = r.u8()?;
    if name != b"MQTT" || level != 4 {
        return Err(DecodeError::InvalidProtocol);
    }
    let flags = r.u8()?;
    let keep_alive = r.u16()?;
    let has_will = flags & 0x04 != 0;
    let clean_session = flags & 0x02 != 0;
    // Reserved bit, will QoS/retain without will, password without user name.
    if flags & 0x01 != 0 || (!has_will && flags & 0x38 != 0) || flags & 0xc0 == 0x40 {
        return Err(DecodeError::InvalidConnectFlags);
    }
    let will_qos = QoS::from_bits((flags >> 3) & 3).ok_or(DecodeError::InvalidQoS)?;
    let client_id = r.str()?;
    if client_id.is_empty() && !clean_session {
        return Err(DecodeError::InvalidConnectFlags);
    }
    let will = if has_will {
        Some(LastWill {
            topic: r.topic_name()?,
            payload: r.binary()?,
            qos: will_qos,
            retain: flags & 0x20 != 0,
        })
    } else {
        None
    };
    let username = if flags & 0x80 != 0 {
        Some(r.str()?)
    } else {
        None
    };
    let password = if flags & 0x40 != 0 {
        Some(r.binary()?)
    } else {
        None
    };
    Ok(Connect {
        client_id,
        keep_alive,
        clean_session,
        username,
        password,
        will,
    })
}

fn publish<'a>(flags: u8, r: &mut Reader<'a>) -> Result<Publish<'a>, DecodeError> {
    let qos = QoS::from_bits((flags >> 1) & 3).ok_or(DecodeError::InvalidQoS)?;
    let dup = flags & 0x08 != 0;
    if dup && qos == QoS::AtMostOnce {
        return Err(DecodeError::InvalidFixedHeaderFlags);
    }
    let topic = r.topic_name()?;
    let packet_id = if qos == QoS::AtMostOnce {
        None
    } else {
        Some(r.packet_id()?)
    };
    Ok(Publish {
        dup,
        qos,
        retain: flags & 0x01 != 0,
        topic,
        packet_id,
        payload: r.rest(),
    })
}

/// The packet id and the entry list of a SUBSCRIBE or UNSUBSCRIBE, every entry checked with
/// `entry` (at least one is required, §3.8.3 / §3.10.3).
fn topic_list<'a, T>(
    r: &mut Reader<'a>,
    entry: fn(&mut Reader<'a>) -> Result<T, DecodeError>,
) -> Result<(u16, &'a [u8]), DecodeError> {
    let packet_id = r.packet_id()?;
    let wire = r.rest();
    let mut t = Reader::new(wire);
    if t.is_empty() {
        return Err(DecodeError::EmptyTopicList);
    }
    while !t.is_empty() {
        entry(&mut t)?;
    }
    Ok((packet_id, wire))
}

/// Cursor over untrusted bytes; every read is bounds checked and fails with `LengthMismatch`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.buf)
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let (head, tail) = self
            .buf
            .split_at_checked(n)
            .ok_or(DecodeError::LengthMismatch)?;
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        let (&b, tail) = self.buf.split_first().ok_or(DecodeError::LengthMismatch)?;
        self.buf = tail;
        Ok(b)
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let (&pair, tail) = self
            .buf
            .split_first_chunk::<2>()
            .ok_or(DecodeError::LengthMismatch)?;
        self.buf = tail;
        Ok(u16::from_be_bytes(pair))
    }

    fn packet_id(&mut self) -> Result<u16, DecodeError> {
        match self.u16()? {
            0 => Err(DecodeError::ZeroPacketId),
            id => Ok(id),
        }
    }

    fn binary(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u16()?;
        self.bytes(usize::from(n))
    }

    // `iter().any` rather than `contains`: 116 bytes less flash on Cortex-M (see below).
    #[allow(clippy::manual_contains)]
    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let b = self.binary()?;
        match core::str::from_utf8(b) {
            // A plain loop, not `contains`: its word-at-a-time memchr costs flash for nothing on
            // strings this short.
            Ok(s) if !b.iter().any(|&c| c == 0) => Ok(s),
            _ => Err(DecodeError::InvalidUtf8),
        }
    }

    fn topic_name(&mut self) -> Result<&'a str, DecodeError> {
        let s = self.str()?;
        if valid_topic_name(s) {
            Ok(s)
        } else {
            Err(DecodeError::InvalidTopicName)
        }
    }

    /// Reads one item with `read`; at the end or on an error yields `None` and stays empty.
    pub(super) fn next_or_stop<T>(
        &mut self,
        read: fn(&mut Self) -> Result<T, DecodeError>,
    ) -> Option<T> {
        let item = read(self).ok();
        if item.is_none() {
            self.buf = &[];
        }
        item
    }

    /// One topic filter of an UNSUBSCRIBE (or a SUBSCRIBE, without its QoS byte).
    pub(super) fn filter(&mut self) -> Result<&'a str, DecodeError> {
        let s = self.str()?;
        if valid_topic_filter(s) {
            Ok(s)
        } else {
            Err(DecodeError::InvalidTopicFilter)
        }
    }

    /// One (filter, requested QoS) entry of a SUBSCRIBE.
    pub(super) fn subscription(&mut self) -> Result<(&'a str, QoS), DecodeError> {
        let filter = self.filter()?;
        // from_bits rejects 3 and, since the byte is passed whole, the reserved bits 7..2.
        let qos = QoS::from_bits(self.u8()?).ok_or(DecodeError::InvalidSubscribeQoS)?;
        Ok((filter, qos))
    }
}
