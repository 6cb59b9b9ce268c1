//! Codec error enums.

/// Why a byte sequence is not a valid MQTT 3.1.1 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The remaining length continues past its 4th byte.
    MalformedRemainingLength,
    /// Packet type 0 or 15.
    ReservedPacketType,
    /// Fixed header flags differ from the ones 3.1.1 prescribes (PUBREL, SUBSCRIBE, UNSUBSCRIBE:
    /// 0b0010, others except PUBLISH: 0), or DUP is set on a QoS 0 PUBLISH.
    InvalidFixedHeaderFlags,
    /// QoS 3 in a PUBLISH header or as will QoS.
    InvalidQoS,
    /// A packet identifier of 0 where a non-zero one is required.
    ZeroPacketId,
    /// A string is not UTF-8 or contains U+0000.
    InvalidUtf8,
    /// A topic name (PUBLISH, will) is empty or contains `+` or `#`.
    InvalidTopicName,
    /// A topic filter is empty, has a misplaced `#` or a `+` that is not a whole level.
    InvalidTopicFilter,
    /// The protocol name is not "MQTT" or the level is not 4.
    InvalidProtocol,
    /// CONNECT flags are inconsistent (reserved bit, will bits without will, password without
    /// user name, empty client id without clean session).
    InvalidConnectFlags,
    /// Bits 7..1 of the CONNACK acknowledge flags are set.
    InvalidConnAckFlags,
    /// A CONNACK return code above 5, or session present with a non-zero code.
    InvalidConnectReturnCode,
    /// A SUBACK return code other than 0, 1, 2 or 0x80.
    InvalidSubAckCode,
    /// A requested QoS byte above 2 in a SUBSCRIBE (the reserved bits included).
    InvalidSubscribeQoS,
    /// A SUBSCRIBE, UNSUBSCRIBE or SUBACK without entries.
    EmptyTopicList,
    /// The body is shorter than its fields need, or has trailing bytes.
    LengthMismatch,
}

/// Why a packet cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer cannot hold the packet.
    BufferTooSmall,
    /// The remaining length exceeds 268 435 455 bytes.
    PacketTooLarge,
    /// A string or binary field exceeds 65 535 bytes.
    StringTooLong,
    /// A topic name (PUBLISH, will) is not valid.
    InvalidTopicName,
    /// A topic filter (SUBSCRIBE, UNSUBSCRIBE) is not valid.
    InvalidTopicFilter,
    /// QoS 1 or 2 without a packet id, or a packet id of 0.
    MissingPacketId,
    /// A QoS 0 PUBLISH with a packet id.
    UnexpectedPacketId,
    /// A CONNECT with a password but no user name.
    PasswordWithoutUsername,
    /// A SUBSCRIBE, UNSUBSCRIBE or SUBACK without entries.
    EmptyTopicList,
    /// A CONNECT with an empty client id and `clean_session == false`.
    InvalidClientId,
    /// A CONNACK with session present and a non-zero code, or a SUBACK code other than
    /// 0, 1, 2 or 0x80.
    InvalidReturnCode,
    /// A QoS 0 PUBLISH with DUP set.
    InvalidDupFlag,
}
