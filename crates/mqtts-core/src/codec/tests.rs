//! Spec byte vectors, error cases, topic matching and property tests for the codec.

use super::encode::encode_client;
use super::topic::{matches, valid_topic_filter, valid_topic_name};
use super::*;
use proptest::prelude::*;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

/// Decodes `bytes`, which must be exactly one packet; also checks that every proper prefix is
/// reported as incomplete.
fn dec(bytes: &[u8]) -> Packet<'_> {
    for n in 0..bytes.len() {
        assert_eq!(decode(&bytes[..n]), Ok(None), "prefix of {n} bytes");
    }
    let (p, used) = decode(bytes).unwrap().unwrap();
    assert_eq!(used, bytes.len());
    p
}

fn enc(p: &Packet<'_>) -> Vec<u8> {
    let len = encoded_len(p).unwrap();
    let mut out = vec![0u8; len + 3];
    assert_eq!(encode(p, &mut out), Ok(len));
    out.truncate(len);
    if len > 0 {
        assert_eq!(
            encode(p, &mut vec![0u8; len - 1]),
            Err(EncodeError::BufferTooSmall)
        );
    }
    out
}

/// Checks both directions: `bytes` decodes to `p` and `p` encodes to `bytes`.
fn both_ways(p: Packet<'_>, bytes: &[u8]) {
    assert_eq!(dec(bytes), p);
    assert_eq!(enc(&p), bytes);
}

fn dec_err(bytes: &[u8]) -> DecodeError {
    match decode(bytes) {
        Err(e) => e,
        other => panic!("{bytes:02x?}: {other:?}"),
    }
}

#[test]
fn connect_with_will_user_password() {
    #[rustfmt::skip]
    let bytes = [
        0x10, 0x20,
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0xee, 0x00, 0x3c,
        0x00, 0x04, b'd', b'e', b'v', b'1',
        0x00, 0x02, b's', b't',
        0x00, 0x03, b'o', b'f', b'f',
        0x00, 0x01, b'u',
        0x00, 0x02, b'p', b'w',
    ];
    let p = Packet::Connect(Connect {
        client_id: "dev1",
        keep_alive: 60,
        clean_session: true,
        username: Some("u"),
        password: Some(b"pw"),
        will: Some(LastWill {
            topic: "st",
            payload: b"off",
            qos: QoS::AtLeastOnce,
            retain: true,
        }),
    });
    both_ways(p, &bytes);
}

#[test]
fn connect_minimal_and_username_only() {
    let p = Packet::Connect(Connect {
        client_id: "a",
        keep_alive: 0,
        clean_session: true,
        username: None,
        password: None,
        will: None,
    });
    both_ways(p, b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x00\x00\x01a");
    // Persistent session, user name without password, QoS 2 will without retain.
    let p = Packet::Connect(Connect {
        client_id: "c",
        keep_alive: 0x0102,
        clean_session: false,
        username: Some("user"),
        password: None,
        will: Some(LastWill {
            topic: "w",
            payload: b"",
            qos: QoS::ExactlyOnce,
            retain: false,
        }),
    });
    both_ways(
        p,
        b"\x10\x18\x00\x04MQTT\x04\x94\x01\x02\x00\x01c\x00\x01w\x00\x00\x00\x04user",
    );
    // Empty client id is fine with a clean session.
    let p = Packet::Connect(Connect {
        client_id: "",
        keep_alive: 30,
        clean_session: true,
        username: None,
        password: None,
        will: None,
    });
    both_ways(p, b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x1e\x00\x00");
}

#[test]
fn connack() {
    let p = Packet::ConnAck(ConnAck {
        session_present: true,
        code: ConnectReturnCode::Accepted,
    });
    both_ways(p, &[0x20, 0x02, 0x01, 0x00]);
    let p = Packet::ConnAck(ConnAck {
        session_present: false,
        code: ConnectReturnCode::NotAuthorized,
    });
    both_ways(p, &[0x20, 0x02, 0x00, 0x05]);
}

#[test]
fn publish_all_qos() {
    let p = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "a/b",
        packet_id: None,
        payload: b"hi",
    });
    both_ways(p, b"\x30\x07\x00\x03a/bhi");
    let p = Packet::Publish(Publish {
        dup: true,
        qos: QoS::AtLeastOnce,
        retain: true,
        topic: "a/b",
        packet_id: Some(10),
        payload: b"hi",
    });
    both_ways(p, b"\x3b\x09\x00\x03a/b\x00\x0ahi");
    let p = Packet::Publish(Publish {
        dup: false,
        qos: QoS::ExactlyOnce,
        retain: false,
        topic: "a/b",
        packet_id: Some(0x1234),
        payload: b"",
    });
    both_ways(p, b"\x34\x07\x00\x03a/b\x12\x34");
}

#[test]
fn publish_two_byte_remaining_length_and_dup_flag() {
    let payload = [0x5a; 200];
    let p = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "t",
        packet_id: Some(7),
        payload: &payload,
    });
    let bytes = enc(&p);
    // 3 (topic) + 2 (id) + 200 = 205 = 0x4d + 1 * 128.
    assert_eq!(bytes[..8], [0x32, 0xcd, 0x01, 0x00, 0x01, b't', 0x00, 0x07]);
    assert_eq!(bytes.len(), 208);
    assert_eq!(dec(&bytes), p);
    // The session marks a stored packet as a redelivery by setting the DUP bit in place.
    let mut resent = bytes.clone();
    resent[0] |= PUBLISH_DUP_FLAG;
    match dec(&resent) {
        Packet::Publish(r) => assert!(r.dup && r.packet_id == Some(7) && r.payload == payload),
        other => panic!("{other:?}"),
    }
}

#[test]
fn acks_and_empty_packets() {
    both_ways(Packet::PubAck(1), &[0x40, 0x02, 0x00, 0x01]);
    both_ways(Packet::PubRec(2), &[0x50, 0x02, 0x00, 0x02]);
    both_ways(Packet::PubRel(3), &[0x62, 0x02, 0x00, 0x03]);
    both_ways(Packet::PubComp(0xfffe), &[0x70, 0x02, 0xff, 0xfe]);
    both_ways(Packet::UnsubAck(7), &[0xb0, 0x02, 0x00, 0x07]);
    both_ways(Packet::PingReq, &[0xc0, 0x00]);
    both_ways(Packet::PingResp, &[0xd0, 0x00]);
    both_ways(Packet::Disconnect, &[0xe0, 0x00]);
}

#[test]
fn subscribe_suback() {
    let topics = [("a/+", QoS::AtLeastOnce), ("#", QoS::ExactlyOnce)];
    let p = Packet::Subscribe(Subscribe {
        packet_id: 1,
        topics: SubscribeTopics::Slice(&topics),
    });
    let bytes = b"\x82\x0c\x00\x01\x00\x03a/+\x01\x00\x01#\x02";
    both_ways(p, bytes);
    let Packet::Subscribe(s) = dec(bytes) else {
        panic!()
    };
    assert_eq!(s.topics, SubscribeTopics::Wire(&bytes[4..]));
    assert!(s.topics.iter().eq(topics.iter().copied()));
    assert_eq!((s.topics.len(), s.topics.is_empty()), (2, false));
    // Re-encoding a decoded (wire) SUBSCRIBE reproduces it.
    assert_eq!(enc(&Packet::Subscribe(s)), bytes);

    let codes = [1, SUBACK_FAILURE, 0, 2];
    let p = Packet::SubAck(SubAck {
        packet_id: 1,
        return_codes: &codes,
    });
    both_ways(p, &[0x90, 0x06, 0x00, 0x01, 0x01, 0x80, 0x00, 0x02]);
    let Packet::SubAck(a) = p else { panic!() };
    assert!(a.codes().eq([
        Some(QoS::AtLeastOnce),
        None,
        Some(QoS::AtMostOnce),
        Some(QoS::ExactlyOnce)
    ]));
}

#[test]
fn unsubscribe() {
    let topics = ["a/+", "#"];
    let p = Packet::Unsubscribe(Unsubscribe {
        packet_id: 2,
        topics: UnsubscribeTopics::Slice(&topics),
    });
    let bytes = b"\xa2\x0a\x00\x02\x00\x03a/+\x00\x01#";
    both_ways(p, bytes);
    let Packet::Unsubscribe(u) = dec(bytes) else {
        panic!()
    };
    assert!(u.topics.iter().eq(topics));
    assert_eq!((u.topics.len(), u.topics.is_empty()), (2, false));
    assert_ne!(u.topics, UnsubscribeTopics::Slice(&["a/+"]));
}

#[test]
fn wire_iterators_stop_on_corruption() {
    // A truncated second entry: the first is yielded, then the iteration ends.
    let t = SubscribeTopics::Wire(b"\x00\x01a\x01\x00\x05b");
    assert!(t.iter().eq([("a", QoS::AtLeastOnce)]));
    assert_eq!(t.len(), 1);
    assert!(SubscribeTopics::Wire(b"\x00\x01a\x03").is_empty());
    assert!(SubscribeTopics::Slice(&[]).is_empty());
    let u = UnsubscribeTopics::Wire(b"\x00\x01a\x00\x01+\xff");
    assert!(u.iter().eq(["a", "+"]));
    assert!(UnsubscribeTopics::Wire(b"\x00\x02a+").is_empty());
}

#[test]
fn fixed_header_remaining_length_table() {
    // MQTT 3.1.1 §2.2.3, table 2.4 boundaries.
    let cases: [(&[u8], usize); 8] = [
        (&[0x00], 0),
        (&[0x7f], 127),
        (&[0x80, 0x01], 128),
        (&[0xff, 0x7f], 16_383),
        (&[0x80, 0x80, 0x01], 16_384),
        (&[0xff, 0xff, 0x7f], 2_097_151),
        (&[0x80, 0x80, 0x80, 0x01], 2_097_152),
        (&[0xff, 0xff, 0xff, 0x7f], 268_435_455),
    ];
    for (len_bytes, len) in cases {
        let mut buf = vec![0x30];
        buf.extend_from_slice(len_bytes);
        for n in 0..buf.len() {
            assert_eq!(decode_fixed_header(&buf[..n]), Ok(None));
        }
        let h = decode_fixed_header(&buf).unwrap().unwrap();
        assert_eq!(
            h,
            FixedHeader {
                first_byte: 0x30,
                header_len: buf.len(),
                remaining_len: len
            }
        );
        assert_eq!((h.packet_type(), h.packet_len()), (3, buf.len() + len));
        // Encoding chooses the same (minimal) length bytes.
        if len >= 3 {
            let payload = vec![0u8; len - 3];
            let p = Packet::Publish(Publish {
                dup: false,
                qos: QoS::AtMostOnce,
                retain: false,
                topic: "t",
                packet_id: None,
                payload: &payload,
            });
            assert_eq!(encoded_len(&p), Ok(buf.len() + len));
            if len < 100_000 {
                assert_eq!(enc(&p)[..buf.len()], buf[..]);
            }
        }
    }
}

#[test]
fn non_minimal_remaining_length_is_accepted() {
    assert_eq!(decode(&[0xc0, 0x80, 0x00]), Ok(Some((Packet::PingReq, 3))));
    assert_eq!(
        decode(&[0x40, 0x82, 0x80, 0x80, 0x00, 0x00, 0x09]),
        Ok(Some((Packet::PubAck(9), 7)))
    );
}

#[test]
fn decode_stops_at_packet_end() {
    let bytes = [0x40, 0x02, 0x00, 0x05, 0xd0, 0x00, 0x30];
    assert_eq!(decode(&bytes), Ok(Some((Packet::PubAck(5), 4))));
    assert_eq!(decode(&bytes[4..]), Ok(Some((Packet::PingResp, 2))));
    assert_eq!(decode(&bytes[6..]), Ok(None));
}

#[test]
fn decode_body_checks_body_length() {
    let h = decode_fixed_header(&[0x40, 0x02]).unwrap().unwrap();
    assert_eq!(decode_body(&h, &[0x00, 0x01]), Ok(Packet::PubAck(1)));
    assert_eq!(
        decode_body(&h, &[0x00, 0x01, 0x00]),
        Err(DecodeError::LengthMismatch)
    );
}

#[test]
fn every_decode_error() {
    use DecodeError::*;
    let cases: &[(&[u8], DecodeError)] = &[
        (b"\x30\xff\xff\xff\xff\x01", MalformedRemainingLength),
        (b"\x30\x80\x80\x80\x80", MalformedRemainingLength),
        (b"\x00\x00", ReservedPacketType),
        (b"\xf0\x00", ReservedPacketType),
        (b"\x00", ReservedPacketType),
        (b"\x60\x02\x00\x01", InvalidFixedHeaderFlags), // PUBREL must carry 0b0010
        (b"\x80\x06\x00\x01\x00\x01a\x00", InvalidFixedHeaderFlags), // SUBSCRIBE 0b0000
        (b"\xa0\x05\x00\x01\x00\x01a", InvalidFixedHeaderFlags), // UNSUBSCRIBE 0b0000
        (b"\x41\x02\x00\x01", InvalidFixedHeaderFlags),
        (
            b"\x12\x0d\x00\x04MQTT\x04\x02\x00\x00\x00\x01a",
            InvalidFixedHeaderFlags,
        ),
        (b"\xc8\x00", InvalidFixedHeaderFlags),
        (b"\x38\x05\x00\x03a/b", InvalidFixedHeaderFlags), // DUP on QoS 0
        (b"\x36\x07\x00\x03a/b\x00\x01", InvalidQoS),
        (
            b"\x10\x12\x00\x04MQTT\x04\x1e\x00\x00\x00\x01a\x00\x01t\x00\x00",
            InvalidQoS,
        ), // will QoS 3
        (b"\x40\x02\x00\x00", ZeroPacketId),
        (b"\x50\x02\x00\x00", ZeroPacketId),
        (b"\x62\x02\x00\x00", ZeroPacketId),
        (b"\x70\x02\x00\x00", ZeroPacketId),
        (b"\xb0\x02\x00\x00", ZeroPacketId),
        (b"\x32\x07\x00\x03a/b\x00\x00", ZeroPacketId),
        (b"\x82\x06\x00\x00\x00\x01a\x00", ZeroPacketId),
        (b"\x90\x03\x00\x00\x00", ZeroPacketId),
        (b"\xa2\x05\x00\x00\x00\x01a", ZeroPacketId),
        (b"\x30\x04\x00\x02a\xff", InvalidUtf8),
        (b"\x30\x04\x00\x02a\x00", InvalidUtf8),
        (b"\x30\x05\x00\x03\xed\xa0\x80", InvalidUtf8), // encoded surrogate U+D800
        (
            b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x00\x00\x01\xc0",
            InvalidUtf8,
        ),
        (b"\x30\x05\x00\x03a/+", InvalidTopicName),
        (b"\x30\x05\x00\x03a/#", InvalidTopicName),
        (b"\x30\x02\x00\x00", InvalidTopicName),
        (
            b"\x10\x12\x00\x04MQTT\x04\x06\x00\x00\x00\x01a\x00\x01#\x00\x00",
            InvalidTopicName,
        ), // will topic
        (b"\x82\x07\x00\x01\x00\x02a+\x00", InvalidTopicFilter),
        (b"\x82\x05\x00\x01\x00\x00\x00", InvalidTopicFilter),
        (b"\xa2\x06\x00\x01\x00\x02#/", InvalidTopicFilter),
        (
            b"\x10\x0f\x00\x06MQIsdp\x03\x02\x00\x00\x00\x01a",
            InvalidProtocol,
        ),
        (
            b"\x10\x0d\x00\x04MQTT\x05\x02\x00\x00\x00\x01a",
            InvalidProtocol,
        ),
        (
            b"\x10\x0d\x00\x04MQTT\x03\x02\x00\x00\x00\x01a",
            InvalidProtocol,
        ),
        (
            b"\x10\x0d\x00\x04mqtt\x04\x02\x00\x00\x00\x01a",
            InvalidProtocol,
        ),
        (
            b"\x10\x0d\x00\x04MQTT\x04\x03\x00\x00\x00\x01a",
            InvalidConnectFlags,
        ), // reserved
        (
            b"\x10\x11\x00\x04MQTT\x04\x42\x00\x00\x00\x01a\x00\x02pw",
            InvalidConnectFlags,
        ), // password without user name
        (
            b"\x10\x0d\x00\x04MQTT\x04\x22\x00\x00\x00\x01a",
            InvalidConnectFlags,
        ), // will retain
        (
            b"\x10\x0d\x00\x04MQTT\x04\x0a\x00\x00\x00\x01a",
            InvalidConnectFlags,
        ), // will QoS
        (
            b"\x10\x0c\x00\x04MQTT\x04\x00\x00\x00\x00\x00",
            InvalidConnectFlags,
        ), // empty id
        (b"\x20\x02\x02\x00", InvalidConnAckFlags),
        (b"\x20\x02\x80\x00", InvalidConnAckFlags),
        (b"\x20\x02\x00\x06", InvalidConnectReturnCode),
        (b"\x20\x02\x01\x05", InvalidConnectReturnCode),
        (b"\x90\x03\x00\x01\x03", InvalidSubAckCode),
        (b"\x90\x04\x00\x01\x00\x81", InvalidSubAckCode),
        (b"\x82\x06\x00\x01\x00\x01a\x03", InvalidSubscribeQoS),
        (b"\x82\x06\x00\x01\x00\x01a\x81", InvalidSubscribeQoS),
        (b"\x82\x02\x00\x01", EmptyTopicList),
        (b"\xa2\x02\x00\x01", EmptyTopicList),
        (b"\x90\x02\x00\x01", EmptyTopicList),
        (b"\x40\x03\x00\x01\x00", LengthMismatch),
        (b"\x40\x01\x00", LengthMismatch),
        (b"\x20\x03\x00\x00\x00", LengthMismatch),
        (b"\xc0\x01\x00", LengthMismatch),
        (b"\xe0\x01\x00", LengthMismatch),
        (b"\x30\x03\x00\x05a", LengthMismatch),
        (b"\x82\x05\x00\x01\x00\x01a", LengthMismatch), // missing QoS byte
        (
            b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x00\x00\x01",
            LengthMismatch,
        ),
        (
            b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x00\x00\x01ab",
            LengthMismatch,
        ),
        (
            b"\x10\x0e\x00\x04MQTT\x04\x82\x00\x00\x00\x01a\x00",
            LengthMismatch,
        ), // user name cut
    ];
    for &(bytes, err) in cases {
        assert_eq!(dec_err(bytes), err, "{bytes:02x?}");
    }
    // Partial input is incomplete, not an error, as long as what is there is valid so far.
    assert_eq!(decode(b"\x30\xff\xff\xff"), Ok(None));
    assert_eq!(decode(b"\x10\x0c\x00\x04MQTT\x04"), Ok(None));
}

#[test]
fn every_encode_error() {
    use EncodeError::*;
    let publish = |qos, packet_id, topic, dup| {
        Packet::Publish(Publish {
            dup,
            qos,
            retain: false,
            topic,
            packet_id,
            payload: b"",
        })
    };
    let connect = |client_id, clean_session, username, password, will| {
        Packet::Connect(Connect {
            client_id,
            keep_alive: 0,
            clean_session,
            username,
            password,
            will,
        })
    };
    let long = "a".repeat(65_536);
    let max = "a".repeat(65_535);
    let will = |topic| {
        Some(LastWill {
            topic,
            payload: b"",
            qos: QoS::AtMostOnce,
            retain: false,
        })
    };
    let cases: &[(Packet<'_>, EncodeError)] = &[
        (
            publish(QoS::AtMostOnce, None, "a/#", false),
            InvalidTopicName,
        ),
        (publish(QoS::AtMostOnce, None, "", false), InvalidTopicName),
        (
            publish(QoS::AtMostOnce, None, &long, false),
            InvalidTopicName,
        ),
        (publish(QoS::AtLeastOnce, None, "a", false), MissingPacketId),
        (
            publish(QoS::ExactlyOnce, Some(0), "a", false),
            MissingPacketId,
        ),
        (
            publish(QoS::AtMostOnce, Some(1), "a", false),
            UnexpectedPacketId,
        ),
        (publish(QoS::AtMostOnce, None, "a", true), InvalidDupFlag),
        (Packet::PubAck(0), MissingPacketId),
        (Packet::PubRel(0), MissingPacketId),
        (Packet::UnsubAck(0), MissingPacketId),
        (connect(&long, true, None, None, None), StringTooLong),
        (connect("a", true, Some(&long), None, None), StringTooLong),
        (
            connect("a", true, Some("u"), Some(long.as_bytes()), None),
            StringTooLong,
        ),
        (
            connect("a", true, None, Some(b"pw"), None),
            PasswordWithoutUsername,
        ),
        (connect("", false, None, None, None), InvalidClientId),
        (connect("a", true, None, None, will("+")), InvalidTopicName),
        (
            Packet::ConnAck(ConnAck {
                session_present: true,
                code: ConnectReturnCode::ServerUnavailable,
            }),
            InvalidReturnCode,
        ),
        (
            Packet::SubAck(SubAck {
                packet_id: 1,
                return_codes: &[0, 3],
            }),
            InvalidReturnCode,
        ),
        (
            Packet::SubAck(SubAck {
                packet_id: 1,
                return_codes: &[],
            }),
            EmptyTopicList,
        ),
        (
            Packet::Subscribe(Subscribe {
                packet_id: 1,
                topics: SubscribeTopics::Slice(&[]),
            }),
            EmptyTopicList,
        ),
        (
            Packet::Subscribe(Subscribe {
                packet_id: 1,
                topics: SubscribeTopics::Slice(&[("a", QoS::AtMostOnce), ("a#", QoS::AtMostOnce)]),
            }),
            InvalidTopicFilter,
        ),
        (
            Packet::Subscribe(Subscribe {
                packet_id: 0,
                topics: SubscribeTopics::Slice(&[("a", QoS::AtMostOnce)]),
            }),
            MissingPacketId,
        ),
        (
            Packet::Unsubscribe(Unsubscribe {
                packet_id: 1,
                topics: UnsubscribeTopics::Slice(&[]),
            }),
            EmptyTopicList,
        ),
        (
            Packet::Unsubscribe(Unsubscribe {
                packet_id: 1,
                topics: UnsubscribeTopics::Slice(&[""]),
            }),
            InvalidTopicFilter,
        ),
    ];
    for (p, err) in cases {
        assert_eq!(encoded_len(p), Err(*err), "{p:?}");
        assert_eq!(encode(p, &mut [0u8; 64]), Err(*err), "{p:?}");
    }
    // The longest string still fits.
    let p = connect(&max, true, None, None, None);
    assert_eq!(encoded_len(&p), Ok(4 + 10 + 2 + 65_535));

    assert_eq!(encode(&Packet::PingReq, &mut [0u8; 1]), Err(BufferTooSmall));
    assert_eq!(encode(&Packet::PingReq, &mut []), Err(BufferTooSmall));
    assert_eq!(
        encode(&publish(QoS::AtMostOnce, None, "abc", false), &mut [0u8; 6]),
        Err(BufferTooSmall)
    );

    // 3 bytes of topic + payload just over the 4-byte remaining-length limit.
    let big = vec![0u8; 268_435_455 - 3 + 1];
    let mut p = Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "t",
        packet_id: None,
        payload: &big,
    };
    assert_eq!(encoded_len(&Packet::Publish(p)), Err(PacketTooLarge));
    assert_eq!(
        encode(&Packet::Publish(p), &mut [0u8; 16]),
        Err(PacketTooLarge)
    );
    p.payload = &big[1..];
    assert_eq!(encoded_len(&Packet::Publish(p)), Ok(5 + 268_435_455));
}

#[test]
fn topic_validation() {
    for t in ["a", "/", "a/b", "$SYS/x", "sport/tennis", " ", "é/ü"] {
        assert!(valid_topic_name(t), "{t}");
    }
    for t in ["", "a/+", "#", "a+b", "a\0b"] {
        assert!(!valid_topic_name(t), "{t:?}");
    }
    // §4.7.1 examples.
    for f in [
        "#",
        "sport/tennis/#",
        "+",
        "+/tennis/#",
        "sport/+/player1",
        "/+",
        "+/+",
        "//",
        "a//+/#",
        "$SYS/#",
    ] {
        assert!(valid_topic_filter(f), "{f}");
    }
    for f in [
        "",
        "sport/tennis#",
        "sport/tennis/#/ranking",
        "sport+",
        "+a",
        "##",
        "#/",
        "++",
        "a/b+/c",
        "a\0",
    ] {
        assert!(!valid_topic_filter(f), "{f:?}");
    }
    assert!(valid_topic_filter(&"a".repeat(65_535)));
    assert!(!valid_topic_filter(&"a".repeat(65_536)));
}

#[test]
fn topic_matching_table() {
    // (filter, topic, matches), from MQTT 3.1.1 §4.7.
    let table = [
        ("sport/tennis/player1/#", "sport/tennis/player1", true),
        (
            "sport/tennis/player1/#",
            "sport/tennis/player1/ranking",
            true,
        ),
        (
            "sport/tennis/player1/#",
            "sport/tennis/player1/score/wimbledon",
            true,
        ),
        ("sport/tennis/player1/#", "sport/tennis/player2", false),
        ("sport/#", "sport", true),
        ("sport/#", "sports", false),
        ("#", "sport/tennis", true),
        ("#", "/", true),
        ("sport/tennis/+", "sport/tennis/player1", true),
        ("sport/tennis/+", "sport/tennis/player2", true),
        ("sport/tennis/+", "sport/tennis/player1/ranking", false),
        ("sport/+", "sport", false),
        ("sport/+", "sport/", true),
        ("+/+", "/finance", true),
        ("/+", "/finance", true),
        ("+", "/finance", false),
        ("+", "finance", true),
        ("+/tennis/#", "sport/tennis/x", true),
        ("sport/+/player1", "sport/tennis/player1", true),
        ("sport/+/player1", "sport/tennis/player2", false),
        ("ACCOUNTS", "Accounts", false),
        ("/finance", "finance", false),
        ("finance", "/finance", false),
        ("a/b", "a/b", true),
        ("a/b", "a/b/c", false),
        ("a/b/c", "a/b", false),
        ("#", "$SYS", false),
        ("#", "$SYS/monitor/Clients", false),
        ("+/monitor/Clients", "$SYS/monitor/Clients", false),
        ("$SYS/#", "$SYS/monitor/Clients", true),
        ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
        ("$SYS/#", "$SYS", true),
        ("a/$SYS", "a/$SYS", true),
        ("a/+", "a/$x", true),
    ];
    for (filter, topic, expected) in table {
        assert_eq!(matches(filter, topic), expected, "{filter} vs {topic}");
    }
}

/// An owned packet for property tests; `with_packet` lends it as a [`Packet`].
#[derive(Debug, Clone)]
enum Model {
    Connect {
        client_id: String,
        keep_alive: u16,
        clean_session: bool,
        username: Option<String>,
        password: Option<Vec<u8>>,
        will: Option<(String, Vec<u8>, QoS, bool)>,
    },
    ConnAck(bool, ConnectReturnCode),
    Publish {
        dup: bool,
        qos: QoS,
        retain: bool,
        topic: String,
        packet_id: u16,
        payload: Vec<u8>,
    },
    /// Packet type nibble (4, 5, 6, 7, 11) and id.
    Ack(u8, u16),
    Subscribe(u16, Vec<(String, QoS)>),
    SubAck(u16, Vec<u8>),
    Unsubscribe(u16, Vec<String>),
    /// Packet type nibble (12, 13, 14).
    Empty(u8),
}

impl Model {
    fn with_packet<R>(&self, f: impl FnOnce(Packet<'_>) -> R) -> R {
        let subs: Vec<(&str, QoS)> = match self {
            Model::Subscribe(_, t) => t.iter().map(|(s, q)| (s.as_str(), *q)).collect(),
            _ => Vec::new(),
        };
        let unsubs: Vec<&str> = match self {
            Model::Unsubscribe(_, t) => t.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        let p = match self {
            Model::Connect {
                client_id,
                keep_alive,
                clean_session,
                username,
                password,
                will,
            } => Packet::Connect(Connect {
                client_id,
                keep_alive: *keep_alive,
                clean_session: *clean_session,
                username: username.as_deref(),
                password: password.as_deref(),
                will: will.as_ref().map(|(topic, payload, qos, retain)| LastWill {
                    topic,
                    payload,
                    qos: *qos,
                    retain: *retain,
                }),
            }),
            Model::ConnAck(session_present, code) => Packet::ConnAck(ConnAck {
                session_present: *session_present,
                code: *code,
            }),
            Model::Publish {
                dup,
                qos,
                retain,
                topic,
                packet_id,
                payload,
            } => Packet::Publish(Publish {
                dup: *dup,
                qos: *qos,
                retain: *retain,
                topic,
                packet_id: (*qos != QoS::AtMostOnce).then_some(*packet_id),
                payload,
            }),
            Model::Ack(4, id) => Packet::PubAck(*id),
            Model::Ack(5, id) => Packet::PubRec(*id),
            Model::Ack(6, id) => Packet::PubRel(*id),
            Model::Ack(7, id) => Packet::PubComp(*id),
            Model::Ack(_, id) => Packet::UnsubAck(*id),
            Model::Subscribe(packet_id, _) => Packet::Subscribe(Subscribe {
                packet_id: *packet_id,
                topics: SubscribeTopics::Slice(&subs),
            }),
            Model::SubAck(packet_id, codes) => Packet::SubAck(SubAck {
                packet_id: *packet_id,
                return_codes: codes,
            }),
            Model::Unsubscribe(packet_id, _) => Packet::Unsubscribe(Unsubscribe {
                packet_id: *packet_id,
                topics: UnsubscribeTopics::Slice(&unsubs),
            }),
            Model::Empty(12) => Packet::PingReq,
            Model::Empty(13) => Packet::PingResp,
            Model::Empty(_) => Packet::Disconnect,
        };
        f(p)
    }

    fn bytes(&self) -> Vec<u8> {
        self.with_packet(|p| enc(&p))
    }
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn topic_name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9/ $é_-]{1,16}"
}

fn topic_filter() -> impl Strategy<Value = String> {
    let level = prop_oneof!["[a-z$é]{0,4}", Just("+".to_string())];
    (prop::collection::vec(level, 1..5), any::<bool>()).prop_map(|(levels, hash)| {
        let mut f = levels.join("/");
        if hash {
            f.push_str("/#");
        }
        if f.is_empty() {
            f.push('#');
        }
        f
    })
}

fn text() -> impl Strategy<Value = String> {
    "[^\\x00]{0,20}"
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..40)
}

fn model() -> impl Strategy<Value = Model> {
    let code = (0u8..=5).prop_map(|c| ConnectReturnCode::from_u8(c).unwrap());
    let id = 1..=u16::MAX;
    let connect = (
        text(),
        any::<u16>(),
        any::<bool>(),
        prop::option::of(text()),
        prop::option::of(bytes()),
        prop::option::of((topic_name(), bytes(), qos(), any::<bool>())),
    )
        .prop_map(
            |(client_id, keep_alive, clean, username, password, will)| Model::Connect {
                clean_session: clean || client_id.is_empty(),
                client_id,
                keep_alive,
                password: username.as_ref().and(password),
                username,
                will,
            },
        );
    let publish = (
        any::<bool>(),
        qos(),
        any::<bool>(),
        topic_name(),
        id.clone(),
        bytes(),
    )
        .prop_map(
            |(dup, qos, retain, topic, packet_id, payload)| Model::Publish {
                dup: dup && qos != QoS::AtMostOnce,
                qos,
                retain,
                topic,
                packet_id,
                payload,
            },
        );
    let suback_code = prop_oneof![Just(0u8), Just(1), Just(2), Just(SUBACK_FAILURE)];
    prop_oneof![
        connect,
        (any::<bool>(), code)
            .prop_map(|(sp, c)| Model::ConnAck(sp && c == ConnectReturnCode::Accepted, c)),
        publish,
        (prop::sample::select(vec![4u8, 5, 6, 7, 11]), id.clone())
            .prop_map(|(t, id)| Model::Ack(t, id)),
        (
            id.clone(),
            prop::collection::vec((topic_filter(), qos()), 1..4)
        )
            .prop_map(|(id, t)| Model::Subscribe(id, t)),
        (id.clone(), prop::collection::vec(suback_code, 1..6))
            .prop_map(|(id, c)| Model::SubAck(id, c)),
        (id, prop::collection::vec(topic_filter(), 1..4))
            .prop_map(|(id, t)| Model::Unsubscribe(id, t)),
        prop::sample::select(vec![12u8, 13, 14]).prop_map(Model::Empty),
    ]
}

/// Exercises everything reachable from a decoded packet, including the wire iterators.
fn touch(p: &Packet<'_>) -> usize {
    match p {
        Packet::Subscribe(s) => s.topics.iter().map(|(f, _)| f.len()).sum(),
        Packet::Unsubscribe(u) => u.topics.iter().map(str::len).sum(),
        Packet::SubAck(a) => a.codes().flatten().count(),
        _ => 0,
    }
}

proptest! {
    #[test]
    fn round_trip(m in model()) {
        let bytes = m.bytes();
        // `dec` also checks that every proper prefix is incomplete.
        let decoded = dec(&bytes);
        m.with_packet(|p| assert_eq!(decoded, p));
        let h = decode_fixed_header(&bytes).unwrap().unwrap();
        prop_assert_eq!(h.packet_len(), bytes.len());
        prop_assert_eq!(decode_body(&h, &bytes[h.header_len..]), Ok(decoded));
        // Re-encoding the decoded (wire) form gives the same bytes.
        prop_assert_eq!(&enc(&decoded), &bytes);
        // The client-only encoder writes the same bytes for what the session encodes (CONNECT,
        // PUBLISH, SUBSCRIBE and UNSUBSCRIBE, topic lists as slices, the way the application
        // gives them) and refuses the rest (the session writes acks, PINGREQ and DISCONNECT as
        // bytes).
        let mut out = vec![0u8; bytes.len()];
        let client = m.with_packet(|p| encode_client(&p, &mut out));
        let server_bound_or_wire = !matches!(
            decoded,
            Packet::Connect(_) | Packet::Publish(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_)
        );
        if server_bound_or_wire {
            prop_assert_eq!(client, Err(EncodeError::InvalidReturnCode));
        } else {
            prop_assert_eq!(client, Ok(bytes.len()));
            prop_assert_eq!(&out, &bytes);
        }
        if matches!(decoded, Packet::Subscribe(_) | Packet::Unsubscribe(_)) {
            prop_assert_eq!(encode_client(&decoded, &mut out), Err(EncodeError::InvalidReturnCode));
        }
        // The client-side decoder agrees with the full one on what a server sends and leaves
        // the rest unread.
        let server = decode_server_packet(&h, &bytes[h.header_len..]);
        if matches!(h.packet_type(), 1 | 8 | 10 | 12 | 14) {
            prop_assert_eq!(server, Ok(None));
        } else {
            prop_assert_eq!(server, Ok(Some(decoded)));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
        let _ = decode_fixed_header(&bytes);
        if let Ok(Some((p, n))) = decode(&bytes) {
            prop_assert!(n <= bytes.len());
            touch(&p);
        }
        touch(&Packet::Subscribe(Subscribe { packet_id: 1, topics: SubscribeTopics::Wire(&bytes) }));
        touch(&Packet::Unsubscribe(Unsubscribe { packet_id: 1, topics: UnsubscribeTopics::Wire(&bytes) }));
    }

    /// Random bodies behind a well-formed fixed header reach deep into every body decoder.
    #[test]
    fn arbitrary_bodies_never_panic(ty in 1u8..15, flags in 0u8..16, body in prop::collection::vec(any::<u8>(), 0..60)) {
        let mut bytes = vec![ty << 4 | flags, body.len() as u8];
        bytes.extend_from_slice(&body);
        if let Ok(Some((p, n))) = decode(&bytes) {
            prop_assert_eq!(n, bytes.len());
            touch(&p);
            // Whatever decodes also encodes, to the same bytes.
            prop_assert_eq!(&enc(&p), &bytes);
        }
        // The client-side decoder gives decode's verdict on server packets, and on client
        // packets only the header checks (flags, length) before leaving the body unread.
        let h = decode_fixed_header(&bytes).unwrap().unwrap();
        let body = &bytes[h.header_len..];
        let server = decode_server_packet(&h, body);
        match decode_body(&h, body) {
            Ok(p) if matches!(ty, 1 | 8 | 10 | 12 | 14) => prop_assert_eq!(server, Ok(None), "{:?}", p),
            Ok(p) => prop_assert_eq!(server, Ok(Some(p))),
            Err(e @ (DecodeError::InvalidFixedHeaderFlags | DecodeError::LengthMismatch))
                if matches!(ty, 1 | 8 | 10 | 12 | 14) =>
            {
                // Body errors of a client packet are not looked for; header errors are the same.
                prop_assert!(server == Err(e) || server == Ok(None));
            }
            Err(_) if matches!(ty, 1 | 8 | 10 | 12 | 14) => prop_assert_eq!(server, Ok(None)),
            Err(e) => prop_assert_eq!(server, Err(e)),
        }
    }

    #[test]
    fn split_stream(models in prop::collection::vec(model(), 1..8),
                    chunks in prop::collection::vec(1usize..24, 1..16)) {
        let stream: Vec<u8> = models.iter().flat_map(|m| m.bytes()).collect();
        let mut buf = Vec::new();
        let mut fed = 0;
        let mut next = 0;
        for &chunk in chunks.iter().cycle() {
            if fed == stream.len() {
                break;
            }
            let end = (fed + chunk).min(stream.len());
            buf.extend_from_slice(&stream[fed..end]);
            fed = end;
            while let Some((p, used)) = decode(&buf).unwrap() {
                models[next].with_packet(|e| assert_eq!(p, e));
                next += 1;
                buf.drain(..used);
            }
        }
        prop_assert_eq!(next, models.len());
        prop_assert!(buf.is_empty());
    }
}

/// Topic strings that are often invalid as names or filters (empty, `+`/`#` misplaced, U+0000),
/// so that the encoders' refusals are exercised, not only their output.
fn rough_topic() -> impl Strategy<Value = String> {
    "[a/+#\\x00é]{0,6}"
}

/// A CONNECT, PUBLISH, SUBSCRIBE or UNSUBSCRIBE (what the session encodes), valid or not: a
/// packet id may be 0 or missing, a topic list empty, a password without a user name.
#[derive(Debug, Clone)]
enum ClientModel {
    Connect {
        client_id: String,
        clean: bool,
        user: Option<String>,
        password: Option<Vec<u8>>,
        will: Option<(String, Vec<u8>, QoS, bool)>,
    },
    Publish(bool, QoS, bool, String, Option<u16>, Vec<u8>),
    Subscribe(u16, Vec<(String, QoS)>),
    Unsubscribe(u16, Vec<String>),
}

impl ClientModel {
    fn with_packet<R>(&self, f: impl FnOnce(Packet<'_>) -> R) -> R {
        match self {
            ClientModel::Connect {
                client_id,
                clean,
                user,
                password,
                will,
            } => f(Packet::Connect(Connect {
                client_id,
                keep_alive: 0x1234,
                clean_session: *clean,
                username: user.as_deref(),
                password: password.as_deref(),
                will: will.as_ref().map(|(topic, payload, qos, retain)| LastWill {
                    topic,
                    payload,
                    qos: *qos,
                    retain: *retain,
                }),
            })),
            ClientModel::Publish(dup, qos, retain, topic, packet_id, payload) => {
                f(Packet::Publish(Publish {
                    dup: *dup,
                    qos: *qos,
                    retain: *retain,
                    topic,
                    packet_id: *packet_id,
                    payload,
                }))
            }
            ClientModel::Subscribe(packet_id, list) => {
                let list: Vec<(&str, QoS)> = list.iter().map(|(t, q)| (t.as_str(), *q)).collect();
                f(Packet::Subscribe(Subscribe {
                    packet_id: *packet_id,
                    topics: SubscribeTopics::Slice(&list),
                }))
            }
            ClientModel::Unsubscribe(packet_id, list) => {
                let list: Vec<&str> = list.iter().map(String::as_str).collect();
                f(Packet::Unsubscribe(Unsubscribe {
                    packet_id: *packet_id,
                    topics: UnsubscribeTopics::Slice(&list),
                }))
            }
        }
    }
}

fn client_model() -> impl Strategy<Value = ClientModel> {
    let id = prop_oneof![Just(0u16), 1..=u16::MAX];
    let connect = (
        "[a-z]{0,4}",
        any::<bool>(),
        prop::option::of(text()),
        prop::option::of(bytes()),
        prop::option::of((rough_topic(), bytes(), qos(), any::<bool>())),
    )
        .prop_map(
            |(client_id, clean, user, password, will)| ClientModel::Connect {
                client_id,
                clean,
                user,
                password,
                will,
            },
        );
    let publish = (
        any::<bool>(),
        qos(),
        any::<bool>(),
        rough_topic(),
        prop::option::of(id.clone()),
        bytes(),
    )
        .prop_map(|(d, q, r, t, i, p)| ClientModel::Publish(d, q, r, t, i, p));
    prop_oneof![
        connect,
        publish,
        (
            id.clone(),
            prop::collection::vec((rough_topic(), qos()), 0..4)
        )
            .prop_map(|(i, l)| ClientModel::Subscribe(i, l)),
        (id, prop::collection::vec(rough_topic(), 0..4))
            .prop_map(|(i, l)| ClientModel::Unsubscribe(i, l)),
    ]
}

proptest! {
    /// The session's encoder and the public one agree on every client packet, valid or not, and
    /// on every output size: the same bytes, or the same error (so the first check to fail is
    /// the same one), including `BufferTooSmall` for an output one byte short.
    #[test]
    fn client_encoder_matches_encode(m in client_model(), room in 0usize..120) {
        m.with_packet(|p| {
            let mut full = [0u8; 200];
            let mut lean = [0u8; 200];
            let room = room.min(full.len());
            let expected = encode(&p, &mut full[..room]);
            let got = encode_client(&p, &mut lean[..room]);
            prop_assert_eq!(got, expected);
            if let Ok(n) = expected {
                prop_assert_eq!(&lean[..n], &full[..n]);
                // One byte less is refused by both, as too small.
                prop_assert_eq!(encode_client(&p, &mut lean[..n - 1]), Err(EncodeError::BufferTooSmall));
                prop_assert_eq!(encode(&p, &mut full[..n - 1]), Err(EncodeError::BufferTooSmall));
            }
            Ok(())
        })?;
    }
}

/// `valid_topic_filter` as it was written before it was made smaller (each wildcard checked
/// with a look-ahead at the next byte): the reference the property test compares with.
fn filter_with_lookahead(filter: &str) -> bool {
    let b = filter.as_bytes();
    if b.is_empty() || b.len() > 65_535 {
        return false;
    }
    let mut prev = b'/';
    for (i, &c) in b.iter().enumerate() {
        let next = b.get(i + 1).copied();
        let ok = match c {
            0 => false,
            b'+' => prev == b'/' && matches!(next, None | Some(b'/')),
            b'#' => prev == b'/' && next.is_none(),
            _ => true,
        };
        if !ok {
            return false;
        }
        prev = c;
    }
    true
}

/// `topic::matches` as it was written before it went byte by byte: level by level, the
/// definition in §4.7 (the reference the property test compares with).
fn matches_by_levels(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut fl = filter.split('/');
    let mut tl = topic.split('/');
    loop {
        match (fl.next(), tl.next()) {
            (Some("#"), _) => return true,
            (Some(a), Some(b)) if a == "+" || a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Topic names made of few distinct levels (often empty, sometimes `$`-prefixed), so that
/// random filters match them often.
fn level_topic() -> impl Strategy<Value = String> {
    prop::collection::vec("[ab$]{0,2}", 1..5).prop_map(|levels| levels.join("/"))
}

/// A valid filter for `topic`'s levels: each level kept, replaced by `+`, or changed, maybe cut
/// short, maybe ending in `#`.
fn filter_for(topic: &str, edits: &[u8], cut: usize, hash: bool) -> String {
    let mut levels: Vec<String> = topic
        .split('/')
        .zip(edits.iter().cycle())
        .map(|(level, e)| match e % 3 {
            0 => level.replace(['+', '#'], ""),
            1 => "+".to_string(),
            _ => "b".to_string(),
        })
        .collect();
    levels.truncate(cut.max(1));
    let mut f = levels.join("/");
    if f.is_empty() {
        f.push('#');
    } else if hash {
        f.push_str("/#");
    }
    f
}

proptest! {
    /// The filter check without look-ahead accepts exactly what the look-ahead version
    /// accepts, on strings full of misplaced wildcards, U+0000 and separators.
    #[test]
    fn filter_check_matches_the_lookahead_version(f in "[a/+#\\x00é]{0,10}") {
        prop_assert_eq!(valid_topic_filter(&f), filter_with_lookahead(&f));
    }

    /// The byte-by-byte matcher agrees with matching level by level for every valid filter
    /// and topic name: filters built from the topic (so that they often match) and random ones.
    #[test]
    fn matching_agrees_with_levels(
        topic in level_topic(),
        edits in prop::collection::vec(any::<u8>(), 1..6),
        cut in 0usize..6,
        hash in any::<bool>(),
        other in topic_filter(),
    ) {
        prop_assume!(valid_topic_name(&topic));
        let built = filter_for(&topic, &edits, cut, hash);
        for f in [built.as_str(), other.as_str()] {
            prop_assert!(valid_topic_filter(f), "{:?}", f);
            prop_assert_eq!(matches(f, &topic), matches_by_levels(f, &topic), "{:?} vs {:?}", f, topic);
        }
    }

    /// Invalid filters and topics get some answer, never a panic.
    #[test]
    fn matching_rough_input_never_panics(f in "[a/+#\\x00$]{0,8}", t in "[a/+#\\x00$]{0,8}") {
        let _ = matches(&f, &t);
    }
}
