//! `decode`: arbitrary bytes through the packet decoder, and every decoded packet back through the
//! encoder.
//!
//! Checks: no panic; the fixed header and the packet agree on the length; every proper prefix of
//! a decodable packet is "incomplete", never an error; `decode(encode(p)) == p`; the re-encoding
//! is byte-identical to the input when the input used the minimal remaining-length encoding
//! (the only freedom MQTT 3.1.1 leaves an encoder), and `encoded_len` and too-small output
//! buffers behave.

use mqtts_core::codec::{decode, decode_fixed_header, encode, encoded_len, EncodeError, Packet};

/// Bytes a remaining length takes in its minimal encoding.
pub fn minimal_len_bytes(remaining_len: usize) -> usize {
    match remaining_len {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// The target.
pub fn run(data: &[u8]) {
    let header = decode_fixed_header(data);
    if let Ok(Some(h)) = header {
        assert!((2..=5).contains(&h.header_len), "{h:?}");
        assert!(h.header_len <= data.len());
        assert!(h.remaining_len <= 268_435_455, "{h:?}");
        assert!((1..=14).contains(&h.packet_type()), "{h:?}");
    }
    let decoded = decode(data);
    match (&header, &decoded) {
        (Err(he), Err(de)) => assert_eq!(he, de, "decode must report the header error"),
        (Err(_), Ok(_)) => panic!("header rejected but packet decoded: {decoded:?}"),
        (Ok(None), d) => assert_eq!(*d, Ok(None)),
        (Ok(Some(_)), _) => {}
    }
    let Ok(Some((packet, used))) = decoded else {
        return;
    };
    let h = header
        .ok()
        .flatten()
        .expect("decoded packet without a header");
    assert_eq!(used, h.packet_len());
    assert!(used <= data.len());

    // A packet cut short is waiting for bytes, not malformed.
    for k in 0..used {
        assert_eq!(decode(&data[..k]), Ok(None), "prefix of {k} bytes");
    }

    let len = encoded_len(&packet).unwrap_or_else(|e| panic!("{packet:?} not encodable: {e:?}"));
    let mut out = vec![0u8; len];
    let n = encode(&packet, &mut out).expect("encode");
    assert_eq!(n, len, "encoded_len disagrees with encode");
    if n > 0 {
        let mut short = vec![0u8; n - 1];
        assert_eq!(
            encode(&packet, &mut short),
            Err(EncodeError::BufferTooSmall)
        );
    }

    let (again, used2) = decode(&out)
        .expect("re-encoded packet must decode")
        .expect("re-encoded packet must be complete");
    assert_eq!(used2, n);
    assert_eq!(again, packet, "decode(encode(p)) != p");
    check_packet(&packet);

    if h.header_len == 1 + minimal_len_bytes(h.remaining_len) {
        assert_eq!(
            &out[..],
            &data[..used],
            "minimal encoding must round-trip byte for byte"
        );
    } else {
        // Same packet, a shorter header: only the length bytes differ.
        assert_eq!(
            n,
            used - (h.header_len - 1 - minimal_len_bytes(h.remaining_len))
        );
        assert_eq!(
            &out[1 + minimal_len_bytes(h.remaining_len)..],
            &data[h.header_len..used]
        );
    }
}

/// Properties a decoded packet promises its users.
fn check_packet(packet: &Packet<'_>) {
    use mqtts_core::codec::topic::{valid_topic_filter, valid_topic_name};
    match packet {
        Packet::Publish(p) => {
            assert!(valid_topic_name(p.topic));
            assert_eq!(p.packet_id.is_some(), p.qos as u8 > 0);
            assert_ne!(p.packet_id, Some(0));
        }
        Packet::Subscribe(s) => {
            assert!(!s.topics.is_empty());
            assert!(s.topics.iter().all(|(f, _)| valid_topic_filter(f)));
        }
        Packet::Unsubscribe(u) => {
            assert!(!u.topics.is_empty());
            assert!(u.topics.iter().all(valid_topic_filter));
        }
        Packet::SubAck(a) => assert_eq!(a.codes().count(), a.return_codes.len()),
        _ => {}
    }
}
