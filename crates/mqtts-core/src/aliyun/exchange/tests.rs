use super::*;
use crate::codec::ConnAck;
use crate::transport::testing::{MbedTls, Script};
use proptest::prelude::*;
use std::vec::Vec;

const SECRET_REPLY: &[u8] = br#"{"productKey":"pk","deviceName":"dn","deviceSecret":"Ds3cr3t"}"#;

fn connack(code: ConnectReturnCode) -> Vec<u8> {
    let mut buf = [0u8; 8];
    let n = codec::encode(
        &Packet::ConnAck(ConnAck {
            session_present: false,
            code,
        }),
        &mut buf,
    )
    .unwrap();
    buf[..n].to_vec()
}

fn publish(topic: &str, qos: QoS, payload: &[u8]) -> Vec<u8> {
    let mut buf = [0u8; 1024];
    let packet_id = (qos != QoS::AtMostOnce).then_some(7);
    let n = codec::encode(
        &Packet::Publish(codec::Publish {
            dup: false,
            qos,
            retain: false,
            topic,
            packet_id,
            payload,
        }),
        &mut buf,
    )
    .unwrap();
    buf[..n].to_vec()
}

fn exchange(kind: RegisterKind) -> Exchange<512> {
    Exchange::new(
        "dn.pk|random=1,authType=register,securemode=2,signmethod=hmacsha256|",
        "dn&pk",
        "AB12",
        kind,
        10_000,
    )
    .unwrap()
}

/// Every packet in `wire`, decoded as the broker would.
fn packets(wire: &[u8]) -> Vec<std::string::String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < wire.len() {
        let (p, n) = codec::decode(&wire[at..]).unwrap().expect("whole packet");
        out.push(match p {
            Packet::Connect(c) => std::format!(
                "CONNECT {} {} {}",
                c.client_id,
                c.username.unwrap(),
                std::str::from_utf8(c.password.unwrap()).unwrap()
            ),
            Packet::PubAck(id) => std::format!("PUBACK {id}"),
            Packet::Disconnect => "DISCONNECT".into(),
            other => std::format!("{other:?}"),
        });
        at += n;
    }
    out
}

#[test]
fn register_reply_over_a_congested_mbedtls_socket_keeps_the_would_block_rule() {
    let mut t = MbedTls::new(16, std::vec![3, 0, 5, 0, 0, 16]);
    t.incoming.extend(connack(ConnectReturnCode::Accepted));
    t.incoming
        .extend(publish(REGISTER_TOPIC, QoS::AtLeastOnce, SECRET_REPLY));
    let mut x = exchange(RegisterKind::Register);
    let mut now = 0;
    let secret = loop {
        match x.poll(&mut t, now).unwrap() {
            Some(RegisterReply::DeviceSecret(s)) => break std::string::String::from(s),
            Some(other) => panic!("unexpected {other:?}"),
            None => now += 10,
        }
        assert!(now < 10_000, "no progress");
    };
    assert_eq!(secret, "Ds3cr3t");
    assert_eq!(t.violations, 0);
    assert_eq!(
        packets(&t.wire),
        [
            "CONNECT dn.pk|random=1,authType=register,securemode=2,signmethod=hmacsha256| dn&pk AB12",
            "PUBACK 7",
            "DISCONNECT"
        ]
    );
    // Finished: polling again gives the same reply and sends nothing more.
    let sent = t.wire.len();
    assert_eq!(
        x.poll(&mut t, now + 1),
        Ok(Some(RegisterReply::DeviceSecret("Ds3cr3t")))
    );
    assert_eq!(t.wire.len(), sent);
}

#[test]
fn qos0_reply_gets_no_puback_and_regnwl_gives_the_token() {
    let mut t = MbedTls::new(1024, std::vec![1024]);
    t.incoming.extend(connack(ConnectReturnCode::Accepted));
    t.incoming.extend(publish(
        REGNWL_TOPIC,
        QoS::AtMostOnce,
        br#"{"clientId":"pk.dn.abc","deviceToken":"T0k"}"#,
    ));
    let mut x = exchange(RegisterKind::NoWhitelist);
    assert_eq!(
        x.poll(&mut t, 0),
        Ok(Some(RegisterReply::Token {
            client_id: "pk.dn.abc",
            device_token: "T0k"
        }))
    );
    assert_eq!(packets(&t.wire)[1..], ["DISCONNECT"]);
}

#[test]
fn refusal_ends_the_exchange_once_without_retrying() {
    let mut t = Script::default();
    t.connect.push_back(Ok(ConnectProgress::Established));
    t.incoming
        .push_back(connack(ConnectReturnCode::BadUsernameOrPassword));
    let mut x = exchange(RegisterKind::Register);
    let refused = Err(ExchangeError::Refused(
        ConnectReturnCode::BadUsernameOrPassword,
    ));
    assert_eq!(x.poll(&mut t, 0), refused);
    assert_eq!(x.poll(&mut t, 1), refused);
    assert_eq!(x.poll(&mut t, 2), refused);
    assert_eq!((t.starts, t.closes), (1, 1));
}

#[test]
fn other_packets_are_skipped_and_the_deadline_ends_the_wait() {
    let mut t = Script::default();
    t.connect.push_back(Ok(ConnectProgress::Established));
    t.incoming.push_back(connack(ConnectReturnCode::Accepted));
    t.incoming
        .push_back(publish("/sys/pk/dn/thing/other", QoS::AtMostOnce, b"{}"));
    let mut x = exchange(RegisterKind::Register);
    assert_eq!(x.poll(&mut t, 0), Ok(None));
    assert_eq!(x.poll(&mut t, 9_999), Ok(None));
    assert_eq!(x.poll(&mut t, 10_000), Err(ExchangeError::Timeout));
    assert_eq!(t.closes, 1);
}

#[test]
fn peer_close_wrong_kind_and_oversized_replies_are_errors() {
    let mut t = Script::default();
    t.connect.push_back(Ok(ConnectProgress::Established));
    t.closed_by_peer = true;
    let mut x = exchange(RegisterKind::Register);
    assert_eq!(
        x.poll(&mut t, 0),
        Err(ExchangeError::Transport(TransportError::Closed))
    );

    let mut t = Script::default();
    t.connect.push_back(Ok(ConnectProgress::Established));
    t.incoming.push_back(publish(
        REGNWL_TOPIC,
        QoS::AtMostOnce,
        br#"{"clientId":"c","deviceToken":"t"}"#,
    ));
    let mut x = exchange(RegisterKind::Register);
    assert_eq!(x.poll(&mut t, 0), Err(ExchangeError::WrongKind));

    let mut t = Script::default();
    t.connect.push_back(Ok(ConnectProgress::Established));
    t.incoming
        .push_back(publish(REGISTER_TOPIC, QoS::AtMostOnce, &[b' '; 600]));
    let mut x = exchange(RegisterKind::Register);
    assert_eq!(x.poll(&mut t, 0), Err(ExchangeError::ReplyTooLarge));

    let mut t = Script::default();
    t.connect.push_back(Err(TransportError::TlsVerification));
    let mut x = exchange(RegisterKind::Register);
    assert_eq!(
        x.poll(&mut t, 0),
        Err(ExchangeError::Transport(TransportError::TlsVerification))
    );
}

#[test]
fn credentials_too_long_for_the_request_buffer_are_refused() {
    let long = "x".repeat(TX_LEN);
    assert!(matches!(
        Exchange::<512>::new(&long, "u", "p", RegisterKind::Register, 1),
        Err(ExchangeError::RequestTooLarge)
    ));
}

proptest! {
    /// Whatever the platform sends, in whatever chunks, the exchange never panics, and a
    /// reply it returns is one that was on the wire.
    #[test]
    fn arbitrary_platform_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..700),
        chunk in 1usize..64,
    ) {
        let mut t = Script::default();
        t.connect.push_back(Ok(ConnectProgress::Established));
        for c in bytes.chunks(chunk) {
            t.incoming.push_back(c.to_vec());
        }
        let mut x = exchange(RegisterKind::Register);
        for now in 0..(bytes.len() as u64 + 2) {
            match x.poll(&mut t, now) {
                Ok(None) => {}
                Ok(Some(RegisterReply::DeviceSecret(s))) => {
                    prop_assert!(bytes.windows(s.len()).any(|w| w == s.as_bytes()));
                    break;
                }
                Ok(Some(_)) => prop_assert!(false, "wrong kind returned"),
                Err(_) => break,
            }
        }
    }
}
