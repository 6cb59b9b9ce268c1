//! Shared helpers for the integration tests: poll loops over the non-blocking transport and
//! hand-assembled MQTT 3.1.1 packets.
#![allow(dead_code)]

pub mod e2e;

use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use mqtts_core::transport::{ConnectProgress, Transport, TransportError};
use mqtts_sim::tls_transport::{TlsTransport, TransportOptions};

/// CONNECT, MQTT 3.1.1, clean session, keep-alive 60 s, client id "sim-test", no credentials.
pub const CONNECT_ANONYMOUS: [u8; 22] = [
    0x10, 0x14, // CONNECT, remaining length 20
    0x00, 0x04, b'M', b'Q', b'T', b'T', // protocol name
    0x04, // level 4 = 3.1.1
    0x02, // flags: clean session
    0x00, 0x3C, // keep-alive 60
    0x00, 0x08, b's', b'i', b'm', b'-', b't', b'e', b's', b't', // client id
];

/// CONNACK, session present 0, return code 0 (accepted).
pub const CONNACK_ACCEPTED: [u8; 4] = [0x20, 0x02, 0x00, 0x00];

/// CONNECT like [`CONNECT_ANONYMOUS`] plus username "alice" and a 6-byte password.
pub fn connect_with_credentials(password: &[u8; 6]) -> Vec<u8> {
    let mut p = vec![
        0x10, 0x23, // remaining length 35
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04,
        0xC2, // flags: username, password, clean session
        0x00, 0x3C, 0x00, 0x08,
    ];
    p.extend_from_slice(b"sim-test");
    p.extend_from_slice(&[0x00, 0x05]);
    p.extend_from_slice(b"alice");
    p.extend_from_slice(&[0x00, 0x06]);
    p.extend_from_slice(password);
    p
}

/// Polls a connection attempt to completion, sleeping between polls like an event loop.
pub fn connect(t: &mut TlsTransport) -> Result<(), TransportError> {
    t.start_connect()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match t.poll_connect()? {
            ConnectProgress::Established => return Ok(()),
            ConnectProgress::Pending => {
                assert!(Instant::now() < deadline, "poll_connect never finished");
                thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// Sends all of `bytes`, retrying on `WouldBlock`.
pub fn send_all(t: &mut TlsTransport, mut bytes: &[u8]) -> Result<(), TransportError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !bytes.is_empty() {
        match t.send(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(TransportError::WouldBlock) => {
                assert!(Instant::now() < deadline, "send blocked too long");
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Receives exactly `n` bytes, retrying on `WouldBlock`.
pub fn recv_exact(t: &mut TlsTransport, n: usize) -> Result<Vec<u8>, TransportError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    let mut buf = [0u8; 64];
    while out.len() < n {
        let want = (n - out.len()).min(buf.len());
        match t.recv(&mut buf[..want]) {
            Ok(k) => out.extend_from_slice(&buf[..k]),
            Err(TransportError::WouldBlock) => {
                assert!(Instant::now() < deadline, "recv waited too long");
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Waits until `recv` reports an error other than `WouldBlock` and returns it.
pub fn recv_until_error(t: &mut TlsTransport) -> TransportError {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 64];
    loop {
        match t.recv(&mut buf) {
            Ok(_) => {}
            Err(TransportError::WouldBlock) => {
                assert!(Instant::now() < deadline, "connection never ended");
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return e,
        }
    }
}

/// Connects, sends `connect` and returns the 4-byte CONNACK.
pub fn mqtt_handshake(options: TransportOptions, connect_packet: &[u8]) -> Vec<u8> {
    let mut t = TlsTransport::new(options).expect("transport options");
    connect(&mut t).unwrap_or_else(|e| panic!("connect: {e:?} ({:?})", t.last_error()));
    send_all(&mut t, connect_packet).expect("send CONNECT");
    let connack = recv_exact(&mut t, 4).expect("recv CONNACK");
    t.close();
    connack
}

/// Records `log` output so tests can check for warnings.
pub struct CaptureLogger {
    records: Mutex<Vec<(log::Level, String)>>,
}

static LOGGER: CaptureLogger = CaptureLogger {
    records: Mutex::new(Vec::new()),
};

impl log::Log for CaptureLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if let Ok(mut r) = self.records.lock() {
            r.push((record.level(), record.args().to_string()));
        }
    }
    fn flush(&self) {}
}

/// Installs the capturing logger (idempotent) and returns it.
pub fn capture_logs() -> &'static CaptureLogger {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
    &LOGGER
}

impl CaptureLogger {
    /// Number of warnings whose text contains `needle`.
    pub fn count_warnings(&self, needle: &str) -> usize {
        self.records
            .lock()
            .map(|r| {
                r.iter()
                    .filter(|(l, m)| *l == log::Level::Warn && m.contains(needle))
                    .count()
            })
            .unwrap_or(0)
    }
}
