//! TlsTransport against a real Mosquitto over TLS on loopback: verification outcomes, error
//! mapping, and the harness's kill/restart/pause controls. Fails (not skips) under CI when
//! Mosquitto is missing.

mod common;

use std::time::Duration;

use common::*;
use mqtts_core::transport::{ConnectProgress, Transport, TransportError};
use mqtts_sim::mosquitto::{self, Mosquitto, MosquittoConfig, TlsFiles};
use mqtts_sim::pki::TestPki;
use mqtts_sim::tls_transport::{TlsOptions, TlsTransport, TransportOptions};
use tempfile::TempDir;

fn pki() -> (TempDir, TestPki) {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(dir.path(), &[]).unwrap();
    (dir, pki)
}

fn tls_files(pki: &TestPki) -> TlsFiles {
    TlsFiles {
        ca_file: pki.ca_file.clone(),
        cert_file: pki.server_files.cert_file.clone(),
        key_file: pki.server_files.key_file.clone(),
    }
}

fn start(config: MosquittoConfig) -> Mosquitto {
    Mosquitto::start(&config).unwrap_or_else(|e| panic!("{e}"))
}

fn tls_broker(pki: &TestPki) -> Mosquitto {
    start(MosquittoConfig {
        tls: Some(tls_files(pki)),
        ..Default::default()
    })
}

#[test]
fn tls_connect_then_mqtt_connect_gets_connack() {
    if !mosquitto::available_or_skip("tls_connect_then_mqtt_connect_gets_connack") {
        return;
    }
    let (_dir, pki) = pki();
    let broker = tls_broker(&pki);
    // "localhost" may resolve to ::1 first, where nothing listens: the transport must fall
    // through to 127.0.0.1.
    let opts = TransportOptions::tls("localhost", broker.tls_port(), &[&pki.ca_file]);
    let mut t = TlsTransport::new(opts).unwrap();
    connect(&mut t).unwrap_or_else(|e| panic!("{e:?}: {:?}\n{}", t.last_error(), broker.log()));
    assert_eq!(t.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
    send_all(&mut t, &CONNECT_ANONYMOUS).unwrap();
    assert_eq!(recv_exact(&mut t, 4).unwrap(), CONNACK_ACCEPTED);
    // PINGREQ -> PINGRESP proves the stream keeps working after the first exchange.
    send_all(&mut t, &[0xC0, 0x00]).unwrap();
    assert_eq!(recv_exact(&mut t, 2).unwrap(), [0xD0, 0x00]);
    t.close();
    t.close();
    assert_eq!(t.send(&[0xC0, 0x00]), Err(TransportError::Closed));
}

#[test]
fn ip_literal_server_name_is_checked_against_ip_san() {
    if !mosquitto::available_or_skip("ip_literal_server_name_is_checked_against_ip_san") {
        return;
    }
    let (_dir, pki) = pki();
    let broker = tls_broker(&pki);
    let opts = TransportOptions::tls("127.0.0.1", broker.tls_port(), &[&pki.ca_file]);
    assert_eq!(mqtt_handshake(opts, &CONNECT_ANONYMOUS), CONNACK_ACCEPTED);
}

#[test]
fn in_memory_der_ca_is_accepted() {
    if !mosquitto::available_or_skip("in_memory_der_ca_is_accepted") {
        return;
    }
    let (_dir, pki) = pki();
    let broker = tls_broker(&pki);
    let mut opts = TransportOptions::tls("127.0.0.1", broker.tls_port(), &[]);
    opts.tls.as_mut().unwrap().ca_der = vec![pki.ca.cert_der()];
    assert_eq!(mqtt_handshake(opts, &CONNECT_ANONYMOUS), CONNACK_ACCEPTED);
}

#[test]
fn wrong_ca_fails_verification() {
    if !mosquitto::available_or_skip("wrong_ca_fails_verification") {
        return;
    }
    let (_dir, pki) = pki();
    let broker = tls_broker(&pki);
    let wrong = pki.write_wrong_ca().unwrap();
    let opts = TransportOptions::tls("localhost", broker.tls_port(), &[&wrong]);
    let mut t = TlsTransport::new(opts).unwrap();
    assert_eq!(connect(&mut t), Err(TransportError::TlsVerification));
    let detail = t.last_error().unwrap();
    assert!(detail.contains("UnknownIssuer"), "{detail}");
    // The attempt is over: polling again reports no connection.
    assert_eq!(t.poll_connect(), Err(TransportError::Closed));
}

#[test]
fn certificate_for_other_host_fails_verification() {
    if !mosquitto::available_or_skip("certificate_for_other_host_fails_verification") {
        return;
    }
    let (_dir, pki) = pki();
    let (_, other) = pki
        .write_server_for_other_host("broker.example.com", "other")
        .unwrap();
    let broker = start(MosquittoConfig {
        tls: Some(TlsFiles {
            ca_file: pki.ca_file.clone(),
            cert_file: other.cert_file,
            key_file: other.key_file,
        }),
        ..Default::default()
    });
    let opts = TransportOptions::tls("localhost", broker.tls_port(), &[&pki.ca_file]);
    let mut t = TlsTransport::new(opts).unwrap();
    assert_eq!(connect(&mut t), Err(TransportError::TlsVerification));
    assert!(
        t.last_error().unwrap().contains("not valid for name"),
        "{:?}",
        t.last_error()
    );

    // The same certificate verifies when the client asks for the name it carries.
    let mut opts = TransportOptions::tls("127.0.0.1", broker.tls_port(), &[&pki.ca_file]);
    opts.tls.as_mut().unwrap().server_name = Some("broker.example.com".into());
    assert_eq!(mqtt_handshake(opts, &CONNECT_ANONYMOUS), CONNACK_ACCEPTED);
}

#[test]
fn insecure_mode_skips_verification_and_warns_every_connect() {
    if !mosquitto::available_or_skip("insecure_mode_skips_verification_and_warns_every_connect") {
        return;
    }
    let logs = capture_logs();
    let (_dir, pki) = pki();
    let broker = tls_broker(&pki);
    let wrong = pki.write_wrong_ca().unwrap();
    let mut opts = TransportOptions::tls("localhost", broker.tls_port(), &[&wrong]);
    opts.tls.as_mut().unwrap().insecure = true;
    let marker = format!("localhost:{}", broker.tls_port());
    let mut t = TlsTransport::new(opts).unwrap();
    for round in 1..=2 {
        connect(&mut t).unwrap();
        send_all(&mut t, &CONNECT_ANONYMOUS).unwrap();
        assert_eq!(recv_exact(&mut t, 4).unwrap(), CONNACK_ACCEPTED);
        t.close();
        assert_eq!(logs.count_warnings(&marker), round);
    }
}

#[test]
fn default_options_verify() {
    let opts = TlsOptions::default();
    assert!(
        !opts.insecure,
        "verification must be on unless asked otherwise"
    );
}

#[test]
fn closed_port_is_tcp_refused() {
    let port = mosquitto::free_port().unwrap();
    let mut t = TlsTransport::new(TransportOptions::tls("127.0.0.1", port, &[])).unwrap();
    assert_eq!(connect(&mut t), Err(TransportError::TcpRefused));
    assert!(t.last_error().is_some());
}

#[test]
fn unresolvable_host_is_dns_error() {
    let mut t = TlsTransport::new(TransportOptions::tls("nonexistent.invalid", 8883, &[])).unwrap();
    assert_eq!(t.start_connect(), Err(TransportError::Dns));
}

#[test]
fn missing_ca_file_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.crt");
    let err = TlsTransport::new(TransportOptions::tls("localhost", 1, &[&missing])).unwrap_err();
    assert!(err.to_string().contains("nope.crt"), "{err}");
    std::fs::write(&missing, "not a certificate\n").unwrap();
    assert!(TlsTransport::new(TransportOptions::tls("localhost", 1, &[&missing])).is_err());
}

#[test]
fn password_file_accepts_right_and_refuses_wrong_password() {
    if !mosquitto::available_or_skip("password_file_accepts_right_and_refuses_wrong_password") {
        return;
    }
    let (_dir, pki) = pki();
    let broker = start(MosquittoConfig {
        tls: Some(tls_files(&pki)),
        users: vec![("alice".into(), "secret".into())],
        ..Default::default()
    });
    let opts = || TransportOptions::tls("localhost", broker.tls_port(), &[&pki.ca_file]);
    assert_eq!(
        mqtt_handshake(opts(), &connect_with_credentials(b"secret")),
        CONNACK_ACCEPTED
    );
    // 3.1.1 return code 5: not authorized.
    assert_eq!(
        mqtt_handshake(opts(), &connect_with_credentials(b"wrong!")),
        [0x20, 0x02, 0x00, 0x05]
    );
    // Anonymous access is off.
    assert_eq!(
        mqtt_handshake(opts(), &CONNECT_ANONYMOUS),
        [0x20, 0x02, 0x00, 0x05]
    );
}

#[test]
fn plain_tcp_mode_works() {
    if !mosquitto::available_or_skip("plain_tcp_mode_works") {
        return;
    }
    let broker = start(MosquittoConfig {
        plain_listener: true,
        ..Default::default()
    });
    let opts = TransportOptions::plain("127.0.0.1", broker.plain_port().unwrap());
    assert_eq!(mqtt_handshake(opts, &CONNECT_ANONYMOUS), CONNACK_ACCEPTED);
}

#[test]
fn paused_broker_times_out_then_resume_restart_and_kill_behave() {
    if !mosquitto::available_or_skip("paused_broker_times_out_then_resume_restart_and_kill_behave")
    {
        return;
    }
    let (_dir, pki) = pki();
    let mut broker = start(MosquittoConfig {
        tls: Some(tls_files(&pki)),
        persistence: true,
        ..Default::default()
    });
    let port = broker.tls_port();
    let opts = || {
        let mut o = TransportOptions::tls("127.0.0.1", port, &[&pki.ca_file]);
        o.connect_timeout = Duration::from_millis(700);
        o
    };

    // SIGSTOP: the kernel still completes TCP, but nobody answers the ClientHello.
    broker.pause().unwrap();
    let mut t = TlsTransport::new(opts()).unwrap();
    t.start_connect().unwrap();
    assert_eq!(t.poll_connect(), Ok(ConnectProgress::Pending));
    assert_eq!(connect(&mut t), Err(TransportError::Timeout));
    broker.resume().unwrap();
    assert_eq!(mqtt_handshake(opts(), &CONNECT_ANONYMOUS), CONNACK_ACCEPTED);

    // A live connection sees the broker's death as Closed.
    let mut t = TlsTransport::new(opts()).unwrap();
    connect(&mut t).unwrap();
    send_all(&mut t, &CONNECT_ANONYMOUS).unwrap();
    assert_eq!(recv_exact(&mut t, 4).unwrap(), CONNACK_ACCEPTED);
    broker.restart().unwrap();
    assert_eq!(recv_until_error(&mut t), TransportError::Closed);
    assert_eq!(broker.tls_port(), port, "restart keeps the port");
    assert!(
        broker.dir().join("data/mosquitto.db").exists(),
        "graceful stop saves persistence"
    );
    assert_eq!(mqtt_handshake(opts(), &CONNECT_ANONYMOUS), CONNACK_ACCEPTED);

    let pid = broker.pid().unwrap();
    broker.kill();
    assert!(!broker.is_running());
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    let mut t = TlsTransport::new(opts()).unwrap();
    assert_eq!(connect(&mut t), Err(TransportError::TcpRefused));
}

#[test]
fn drop_kills_the_broker_process() {
    if !mosquitto::available_or_skip("drop_kills_the_broker_process") {
        return;
    }
    let (_dir, pki) = pki();
    let mut broker = tls_broker(&pki);
    broker.pause().unwrap();
    let pid = broker.pid().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(broker);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}
