//! Codec speed on the host: decode and encode of the packets a device exchanges most.
//!
//! `cargo bench -p mqtts-core --bench codec`. Throughput is reported in bytes of encoded packet,
//! so the PUBLISH rows also show how the cost grows with the payload.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mqtts_core::codec::{self, Connect, Packet, Publish, QoS, SubAck};

/// A topic of the length the self-hosted profile uses.
const TOPIC: &str = "devices/dev-0123456789/state";

/// Room for the largest packet below (1 KB payload plus headers).
const BUF: usize = 2048;

/// The packets measured, by name. Payloads are built once, outside the timed loops.
fn packets<'a>(small: &'a [u8], large: &'a [u8]) -> Vec<(&'static str, Packet<'a>)> {
    let publish = |qos: QoS, payload: &'a [u8]| {
        Packet::Publish(Publish {
            dup: false,
            qos,
            retain: false,
            topic: TOPIC,
            packet_id: (qos != QoS::AtMostOnce).then_some(0x1234),
            payload,
        })
    };
    vec![
        // Alibaba-style CONNECT: long client id and user name, 40-hex-digit HMAC password.
        (
            "connect",
            Packet::Connect(Connect {
                client_id: "a1B2c3D4e5f|securemode=2,signmethod=hmacsha1,timestamp=1700000000000|",
                keep_alive: 60,
                clean_session: true,
                username: Some("dev-0123456789&a1B2c3D4e5f"),
                password: Some(b"0123456789abcdef0123456789abcdef01234567"),
                will: None,
            }),
        ),
        ("publish_qos0_64B", publish(QoS::AtMostOnce, small)),
        ("publish_qos1_64B", publish(QoS::AtLeastOnce, small)),
        ("publish_qos0_1KB", publish(QoS::AtMostOnce, large)),
        ("publish_qos1_1KB", publish(QoS::AtLeastOnce, large)),
        ("puback", Packet::PubAck(0x1234)),
        (
            "suback",
            Packet::SubAck(SubAck {
                packet_id: 7,
                return_codes: &[0x01, 0x00, 0x80],
            }),
        ),
    ]
}

fn codec_benches(c: &mut Criterion) {
    let small = [b'x'; 64];
    let large = [b'y'; 1024];
    let packets = packets(&small, &large);

    let mut encode = c.benchmark_group("encode");
    for (name, packet) in &packets {
        let mut out = [0u8; BUF];
        let len = codec::encode(packet, &mut out).expect("benchmark packet encodes");
        encode.throughput(Throughput::Bytes(len as u64));
        encode.bench_with_input(BenchmarkId::from_parameter(name), packet, |b, p| {
            b.iter(|| codec::encode(black_box(p), black_box(&mut out)))
        });
    }
    encode.finish();

    let mut decode = c.benchmark_group("decode");
    for (name, packet) in &packets {
        let mut out = [0u8; BUF];
        let len = codec::encode(packet, &mut out).expect("benchmark packet encodes");
        let wire = &out[..len];
        // The bytes must decode to the packet measured, or the numbers mean nothing.
        let (decoded, used) = codec::decode(wire).ok().flatten().expect("decodes");
        assert_eq!((decoded, used), (*packet, len), "{name} round trip");
        decode.throughput(Throughput::Bytes(len as u64));
        decode.bench_with_input(BenchmarkId::from_parameter(name), wire, |b, w| {
            b.iter(|| codec::decode(black_box(w)))
        });
    }
    decode.finish();

    // The path the client session takes for what a broker sends: fixed header, then only the
    // server-side packet decoders.
    let mut client = c.benchmark_group("decode_server_packet");
    for (name, packet) in packets.iter().filter(|(n, _)| *n != "connect") {
        let mut out = [0u8; BUF];
        let len = codec::encode(packet, &mut out).expect("benchmark packet encodes");
        let wire = &out[..len];
        client.throughput(Throughput::Bytes(len as u64));
        client.bench_with_input(BenchmarkId::from_parameter(name), wire, |b, w| {
            b.iter(|| {
                let w = black_box(w);
                let header = codec::decode_fixed_header(w).ok().flatten()?;
                let body = w.get(header.header_len..header.packet_len())?;
                codec::decode_server_packet(&header, body).ok().flatten()
            })
        });
    }
    client.finish();
}

criterion_group!(benches, codec_benches);
criterion_main!(benches);
