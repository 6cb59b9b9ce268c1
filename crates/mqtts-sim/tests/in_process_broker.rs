//! The in-process broker (rumqttd behind our rustls proxy) over real TLS on loopback.

mod common;

use common::*;
use mqtts_core::transport::{Transport, TransportError};
use mqtts_sim::broker::{BrokerOptions, InProcessBroker};
use mqtts_sim::pki::TestPki;
use mqtts_sim::tls_transport::{TlsTransport, TransportOptions};
use tempfile::TempDir;

fn pki() -> (TempDir, TestPki) {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(dir.path(), &[]).unwrap();
    (dir, pki)
}

#[test]
fn tls_connect_then_mqtt_connect_gets_connack() {
    let (_dir, pki) = pki();
    let broker = InProcessBroker::start(BrokerOptions::new(pki.server.clone())).unwrap();
    let opts = TransportOptions::tls("localhost", broker.tls_port(), &[&pki.ca_file]);
    let mut t = TlsTransport::new(opts).unwrap();
    connect(&mut t).unwrap();
    assert_eq!(t.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
    send_all(&mut t, &CONNECT_ANONYMOUS).unwrap();
    assert_eq!(recv_exact(&mut t, 4).unwrap(), CONNACK_ACCEPTED);
    send_all(&mut t, &[0xC0, 0x00]).unwrap();
    assert_eq!(recv_exact(&mut t, 2).unwrap(), [0xD0, 0x00]);
    assert_eq!(broker.live_connections(), 1);
    t.close();
    broker.stop();
}

#[test]
fn tls12_only_server_negotiates_tls12() {
    let (_dir, pki) = pki();
    let mut options = BrokerOptions::new(pki.server.clone());
    options.tls12_only = true;
    let broker = InProcessBroker::start(options).unwrap();
    let opts = TransportOptions::tls("127.0.0.1", broker.tls_port(), &[&pki.ca_file]);
    let mut t = TlsTransport::new(opts).unwrap();
    connect(&mut t).unwrap();
    assert_eq!(t.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_2));
    send_all(&mut t, &CONNECT_ANONYMOUS).unwrap();
    assert_eq!(recv_exact(&mut t, 4).unwrap(), CONNACK_ACCEPTED);
}

#[test]
fn expired_certificate_fails_verification() {
    let (_dir, pki) = pki();
    let (expired, _) = pki.write_expired_server("expired").unwrap();
    let broker = InProcessBroker::start(BrokerOptions::new(expired)).unwrap();
    let opts = TransportOptions::tls("localhost", broker.tls_port(), &[&pki.ca_file]);
    let mut t = TlsTransport::new(opts).unwrap();
    assert_eq!(connect(&mut t), Err(TransportError::TlsVerification));
    assert!(
        t.last_error().unwrap().contains("expired"),
        "{:?}",
        t.last_error()
    );
}

#[test]
fn dropped_connections_and_stop_are_seen_by_the_client() {
    let (_dir, pki) = pki();
    let broker = InProcessBroker::start(BrokerOptions::new(pki.server.clone())).unwrap();
    let port = broker.tls_port();
    let opts = || TransportOptions::tls("localhost", port, &[&pki.ca_file]);
    let mut t = TlsTransport::new(opts()).unwrap();
    connect(&mut t).unwrap();
    send_all(&mut t, &CONNECT_ANONYMOUS).unwrap();
    assert_eq!(recv_exact(&mut t, 4).unwrap(), CONNACK_ACCEPTED);

    broker.drop_connections();
    assert_eq!(recv_until_error(&mut t), TransportError::Closed);
    // New connections are still served.
    assert_eq!(mqtt_handshake(opts(), &CONNECT_ANONYMOUS), CONNACK_ACCEPTED);
    assert!(broker.accepted_connections() >= 2);

    broker.stop();
    let mut t = TlsTransport::new(opts()).unwrap();
    assert_eq!(connect(&mut t), Err(TransportError::TcpRefused));
}

#[test]
fn local_link_receives_device_publish() {
    let (_dir, pki) = pki();
    let mut options = BrokerOptions::new(pki.server.clone());
    options.local_clients = vec!["console".into()];
    let mut broker = InProcessBroker::start(options).unwrap();
    let (mut tx, mut rx) = broker.take_local_link("console").unwrap();
    assert!(broker.take_local_link("console").is_none());
    tx.subscribe("dev/#").unwrap();

    let opts = TransportOptions::tls("localhost", broker.tls_port(), &[&pki.ca_file]);
    let mut t = TlsTransport::new(opts).unwrap();
    connect(&mut t).unwrap();
    send_all(&mut t, &CONNECT_ANONYMOUS).unwrap();
    assert_eq!(recv_exact(&mut t, 4).unwrap(), CONNACK_ACCEPTED);
    // PUBLISH QoS 0, topic "dev/t", payload "hi".
    send_all(
        &mut t,
        &[
            0x30, 0x09, 0x00, 0x05, b'd', b'e', b'v', b'/', b't', b'h', b'i',
        ],
    )
    .unwrap();

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no publish reached the local link"
        );
        match rx.recv().unwrap() {
            Some(rumqttd::Notification::Forward(f)) => {
                assert_eq!(&f.publish.topic[..], b"dev/t");
                assert_eq!(&f.publish.payload[..], b"hi");
                break;
            }
            _ => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
}
