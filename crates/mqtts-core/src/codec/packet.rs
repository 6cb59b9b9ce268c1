//! MQTT 3.1.1 packet types. Decoded packets borrow from the receive buffer (zero copy).

use super::decode::Reader;
use super::DecodeError;

/// Quality of service of a PUBLISH or a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QoS {
    /// Fire and forget.
    AtMostOnce = 0,
    /// Acknowledged delivery (PUBACK); duplicates possible.
    AtLeastOnce = 1,
    /// Exactly once (PUBREC / PUBREL / PUBCOMP).
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for a 2-bit wire value; 3 is reserved and yields `None`.
    pub fn from_bits(bits: u8) -> Option<QoS> {
        match bits {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// CONNACK return code (MQTT 3.1.1 §3.2.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectReturnCode {
    /// 0: connection accepted.
    Accepted = 0,
    /// 1: the server does not support MQTT 3.1.1.
    UnacceptableProtocolVersion = 1,
    /// 2: client identifier rejected.
    IdentifierRejected = 2,
    /// 3: server unavailable.
    ServerUnavailable = 3,
    /// 4: bad user name or password.
    BadUsernameOrPassword = 4,
    /// 5: not authorized.
    NotAuthorized = 5,
}

impl ConnectReturnCode {
    /// The code for a wire byte; values above 5 are reserved and yield `None`.
    pub fn from_u8(code: u8) -> Option<ConnectReturnCode> {
        Some(match code {
            0 => ConnectReturnCode::Accepted,
            1 => ConnectReturnCode::UnacceptableProtocolVersion,
            2 => ConnectReturnCode::IdentifierRejected,
            3 => ConnectReturnCode::ServerUnavailable,
            4 => ConnectReturnCode::BadUsernameOrPassword,
            5 => ConnectReturnCode::NotAuthorized,
            _ => return None,
        })
    }
}

/// The will message of a CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastWill<'a> {
    /// Topic name (no wildcards).
    pub topic: &'a str,
    /// Payload published when the client disappears.
    pub payload: &'a [u8],
    /// QoS of the will message.
    pub qos: QoS,
    /// Whether the will message is retained.
    pub retain: bool,
}

/// CONNECT (MQTT 3.1.1, protocol level 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connect<'a> {
    /// Client identifier (may be empty only with `clean_session`).
    pub client_id: &'a str,
    /// Keepalive in seconds; 0 disables it.
    pub keep_alive: u16,
    /// Start a fresh session; the broker discards any stored state.
    pub clean_session: bool,
    /// User name.
    pub username: Option<&'a str>,
    /// Password; MQTT 3.1.1 requires a user name when a password is given.
    pub password: Option<&'a [u8]>,
    /// Will message.
    pub will: Option<LastWill<'a>>,
}

/// CONNACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnAck {
    /// The broker kept a session for this client id.
    pub session_present: bool,
    /// Result of the connection attempt.
    pub code: ConnectReturnCode,
}

/// PUBLISH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish<'a> {
    /// Redelivery of an earlier attempt.
    pub dup: bool,
    /// Delivery guarantee.
    pub qos: QoS,
    /// Retained message.
    pub retain: bool,
    /// Topic name; never contains `+` or `#`.
    pub topic: &'a str,
    /// Packet identifier; `Some` (non-zero) exactly when `qos` is 1 or 2.
    pub packet_id: Option<u16>,
    /// Application payload.
    pub payload: &'a [u8],
}

/// The topic filters of a SUBSCRIBE: a slice when encoding, the validated wire bytes when decoded.
///
/// Equality compares the entries, so a decoded `Wire` equals the `Slice` it was encoded from.
#[derive(Debug, Clone, Copy)]
pub enum SubscribeTopics<'a> {
    /// Filters given by the application.
    Slice(&'a [(&'a str, QoS)]),
    /// The validated payload of a decoded SUBSCRIBE.
    Wire(&'a [u8]),
}

/// SUBSCRIBE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscribe<'a> {
    /// Packet identifier (non-zero).
    pub packet_id: u16,
    /// At least one (filter, requested QoS).
    pub topics: SubscribeTopics<'a>,
}

/// The topic filters of an UNSUBSCRIBE: a slice when encoding, the validated wire bytes when decoded.
///
/// Equality compares the entries, so a decoded `Wire` equals the `Slice` it was encoded from.
#[derive(Debug, Clone, Copy)]
pub enum UnsubscribeTopics<'a> {
    /// Filters given by the application.
    Slice(&'a [&'a str]),
    /// The validated payload of a decoded UNSUBSCRIBE.
    Wire(&'a [u8]),
}

/// UNSUBSCRIBE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsubscribe<'a> {
    /// Packet identifier (non-zero).
    pub packet_id: u16,
    /// At least one filter.
    pub topics: UnsubscribeTopics<'a>,
}

/// SUBACK. Each return code is 0, 1, 2 (granted QoS) or 0x80 (failure); decode checks this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubAck<'a> {
    /// Packet identifier of the SUBSCRIBE being acknowledged.
    pub packet_id: u16,
    /// One return code per filter, in the order of the SUBSCRIBE.
    pub return_codes: &'a [u8],
}

/// SUBACK return code for a subscription that the broker refused.
pub const SUBACK_FAILURE: u8 = 0x80;

/// Any MQTT 3.1.1 control packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// CONNECT (client to server).
    Connect(Connect<'a>),
    /// CONNACK.
    ConnAck(ConnAck),
    /// PUBLISH (both directions).
    Publish(Publish<'a>),
    /// PUBACK with its packet id.
    PubAck(u16),
    /// PUBREC with its packet id.
    PubRec(u16),
    /// PUBREL with its packet id.
    PubRel(u16),
    /// PUBCOMP with its packet id.
    PubComp(u16),
    /// SUBSCRIBE.
    Subscribe(Subscribe<'a>),
    /// SUBACK.
    SubAck(SubAck<'a>),
    /// UNSUBSCRIBE.
    Unsubscribe(Unsubscribe<'a>),
    /// UNSUBACK with its packet id.
    UnsubAck(u16),
    /// PINGREQ.
    PingReq,
    /// PINGRESP.
    PingResp,
    /// DISCONNECT.
    Disconnect,
}

impl<'a> SubscribeTopics<'a> {
    /// The (filter, requested QoS) entries in order. On a `Wire` slice that was not produced by
    /// [`decode`](super::decode) the iteration stops at the first malformed entry.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, QoS)> + 'a {
        match *self {
            SubscribeTopics::Slice(slice) => Entries {
                slice,
                wire: Reader::new(&[]),
                read: Reader::subscription,
            },
            SubscribeTopics::Wire(wire) => Entries {
                slice: &[],
                wire: Reader::new(wire),
                read: Reader::subscription,
            },
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are no entries (never true for a decoded SUBSCRIBE).
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl PartialEq for SubscribeTopics<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for SubscribeTopics<'_> {}

impl<'a> UnsubscribeTopics<'a> {
    /// The topic filters in order. On a `Wire` slice that was not produced by
    /// [`decode`](super::decode) the iteration stops at the first malformed entry.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        match *self {
            UnsubscribeTopics::Slice(slice) => Entries {
                slice,
                wire: Reader::new(&[]),
                read: Reader::filter,
            },
            UnsubscribeTopics::Wire(wire) => Entries {
                slice: &[],
                wire: Reader::new(wire),
                read: Reader::filter,
            },
        }
    }

    /// Number of filters.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are no filters (never true for a decoded UNSUBSCRIBE).
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl PartialEq for UnsubscribeTopics<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for UnsubscribeTopics<'_> {}

impl<'a> SubAck<'a> {
    /// The granted QoS per filter; `None` is a failure (0x80).
    pub fn codes(&self) -> impl Iterator<Item = Option<QoS>> + 'a {
        self.return_codes.iter().map(|&c| QoS::from_bits(c))
    }
}

/// Iterator over the entries of a topic list: `slice` first, then the entries parsed from `wire`
/// (one of the two is empty). A plain struct rather than iterator adapters to keep code small.
struct Entries<'a, T> {
    slice: &'a [T],
    wire: Reader<'a>,
    read: fn(&mut Reader<'a>) -> Result<T, DecodeError>,
}

impl<T: Copy> Iterator for Entries<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if let Some((first, rest)) = self.slice.split_first() {
            self.slice = rest;
            return Some(*first);
        }
        self.wire.next_or_stop(self.read)
    }
}
