//! The platform side as a plain MQTT client on [`rumqttc`] (used by `ctl`, the dashboard, the
//! demo, the fleet test and the platform end of the end-to-end tests).
//!
//! It deliberately shares no session or TLS code with the device: the MQTT client is rumqttc,
//! the TLS configuration is built here from rustls' own verifier (webpki), so a bug in our core
//! or in our [`crate::tls_transport`] cannot hide itself by being on both ends of a test. Only
//! the plain settings struct [`TransportOptions`] (host, port, CA files) is shared.
//!
//! [`PlatformClient`] runs rumqttc's event loop on its own thread (a current-thread tokio
//! runtime), reconnects with a capped exponential delay, subscribes again whenever the broker
//! kept no session, and hands everything it sees to a channel as [`PlatformEvent`]s.

use std::fmt;
use std::fs;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, Packet, SubscribeFilter,
    SubscribeReasonCode, TlsConfiguration, Transport,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::sync::oneshot;

use crate::tls_transport::TransportOptions;

/// MQTT quality of service, as rumqttc spells it.
pub use rumqttc::QoS;

/// Largest packet accepted or sent (the broker's default limit is far larger than anything the
/// self-hosted or Alink topics carry).
const MAX_PACKET: usize = 256 * 1024;
/// Requests (publish, subscribe) queued for the event loop before `publish` waits.
const REQUEST_QUEUE: usize = 4096;
/// How long [`PlatformClient::stop`] drives the event loop to get the DISCONNECT out.
const DISCONNECT_GRACE: Duration = Duration::from_secs(1);

/// How the platform client connects.
#[derive(Debug, Clone)]
pub struct PlatformOptions {
    /// Broker address and TLS settings (CA files, server name, `insecure`).
    pub transport: TransportOptions,
    /// MQTT client id.
    pub client_id: String,
    /// MQTT user name.
    pub username: Option<String>,
    /// MQTT password.
    pub password: Option<String>,
    /// Clean session flag; `false` keeps subscriptions and queued messages at the broker.
    pub clean_session: bool,
    /// Keepalive, seconds (0 = off).
    pub keep_alive_s: u16,
    /// Filters subscribed whenever the broker kept no session.
    pub subscriptions: Vec<(String, QoS)>,
    /// First delay before reconnecting; doubles per failed attempt up to `reconnect_max`.
    pub reconnect_min: Duration,
    /// Longest delay between reconnect attempts.
    pub reconnect_max: Duration,
}

impl PlatformOptions {
    /// A clean-session client with keepalive 30 s and fast reconnects (100 ms .. 1 s).
    pub fn new(transport: TransportOptions, client_id: &str) -> Self {
        PlatformOptions {
            transport,
            client_id: client_id.into(),
            username: None,
            password: None,
            clean_session: true,
            keep_alive_s: 30,
            subscriptions: Vec::new(),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(1),
        }
    }

    /// Logs in with `username` and `password`.
    pub fn with_credentials(mut self, username: &str, password: &str) -> Self {
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }

    /// Adds a subscription.
    pub fn subscribe(mut self, filter: &str, qos: QoS) -> Self {
        self.subscriptions.push((filter.into(), qos));
        self
    }
}

/// A received application message (owned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Topic.
    pub topic: String,
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// QoS it was delivered with.
    pub qos: QoS,
    /// Retained message (sent because of the subscription).
    pub retain: bool,
    /// Redelivery flag.
    pub dup: bool,
}

impl Message {
    /// The payload as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }

    /// The payload as JSON, if it is.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.payload).ok()
    }
}

/// What the platform client saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformEvent {
    /// CONNACK accepted.
    Online {
        /// The broker kept the session.
        session_present: bool,
    },
    /// The connection failed or ended; rumqttc's error text (never holds the password).
    Offline {
        /// Why, e.g. `I/O: Connection refused` or `Connection refused, return code: ...`.
        error: String,
    },
    /// SUBACK return codes (0..=2 granted QoS, 0x80 failure).
    Subscribed(Vec<u8>),
    /// An application message.
    Message(Message),
    /// A QoS 1 publish was acknowledged (PUBACK packet id).
    Delivered(u16),
}

/// Why the client could not be started or a request not queued.
#[derive(Debug)]
pub enum PlatformError {
    /// A CA file could not be read or held no usable certificate.
    CaFile {
        /// The offending file.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// `tls.server_name` is neither a DNS name nor an IP literal.
    InvalidServerName(String),
    /// rustls refused the configuration.
    Tls(String),
    /// The client thread could not be started.
    Thread(String),
    /// The request was refused (invalid topic) or the client has stopped.
    Request(String),
}

impl fmt::Display for PlatformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlatformError::CaFile { path, reason } => {
                write!(f, "option `ca_file`: {}: {reason}", path.display())
            }
            PlatformError::InvalidServerName(n) => write!(
                f,
                "option `tls_server_name`: {n:?} is neither a DNS name nor an IP address"
            ),
            PlatformError::Tls(e) => write!(f, "TLS configuration: {e}"),
            PlatformError::Thread(e) => write!(f, "cannot start the client thread: {e}"),
            PlatformError::Request(e) => write!(f, "request refused: {e}"),
        }
    }
}

impl std::error::Error for PlatformError {}

/// A running platform client. Dropping it disconnects cleanly.
pub struct PlatformClient {
    client: AsyncClient,
    runtime: tokio::runtime::Handle,
    events: Receiver<PlatformEvent>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for PlatformClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformClient").finish_non_exhaustive()
    }
}

impl PlatformClient {
    /// Checks the TLS settings (CA files are read now) and starts connecting, and
    /// reconnecting, in the background.
    pub fn start(options: PlatformOptions) -> Result<PlatformClient, PlatformError> {
        let mqtt = mqtt_options(&options)?;
        let (client, eventloop) = AsyncClient::new(mqtt, REQUEST_QUEUE);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PlatformError::Thread(e.to_string()))?;
        let handle = runtime.handle().clone();
        let (event_tx, events) = mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel();
        let loop_client = client.clone();
        let thread = thread::Builder::new()
            .name(format!("platform-{}", options.client_id))
            .spawn(move || {
                runtime.block_on(drive(options, loop_client, eventloop, stop_rx, move |e| {
                    // A gone observer does not stop the client.
                    let _ = event_tx.send(e);
                }))
            })
            .map_err(|e| PlatformError::Thread(e.to_string()))?;
        Ok(PlatformClient {
            client,
            runtime: handle,
            events,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Queues a publish (QoS 1 is resent by rumqttc after a reconnect that resumes the
    /// session). Blocks only while the request queue is full; do not call it from async code,
    /// use [`PlatformClient::handle`] there.
    pub fn publish(
        &self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<(), PlatformError> {
        self.runtime
            .block_on(self.client.publish(topic, qos, retain, payload.to_vec()))
            .map_err(|e| PlatformError::Request(e.to_string()))
    }

    /// A cloneable rumqttc handle for async callers (publish, subscribe).
    pub fn handle(&self) -> AsyncClient {
        self.client.clone()
    }

    /// The next event, waiting up to `timeout`.
    pub fn next_event(&self, timeout: Duration) -> Option<PlatformEvent> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Waits up to `timeout` for an event `pick` accepts; earlier events go to `seen`.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        mut seen: impl FnMut(&PlatformEvent),
        mut pick: impl FnMut(&PlatformEvent) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let event = self.events.recv_timeout(left).ok()?;
            seen(&event);
            if let Some(t) = pick(&event) {
                return Some(t);
            }
        }
    }

    /// Waits until connected and every subscription of this connection was acknowledged
    /// (or only connected, when the broker kept the session or there is nothing to subscribe).
    pub fn wait_ready(&self, timeout: Duration, subscribes: bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut need_suback = false;
        loop {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            match self.events.recv_timeout(left) {
                Ok(PlatformEvent::Online { session_present }) => {
                    need_suback = subscribes && !session_present;
                    if !need_suback {
                        return true;
                    }
                }
                Ok(PlatformEvent::Subscribed(_)) if need_suback => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    }

    /// Disconnects and joins the client thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for PlatformClient {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Runs rumqttc's event loop until `stop` fires: reports events, resubscribes after a
/// CONNACK without session, waits between failed attempts. Public for async embedders (the
/// dashboard runs it on its own runtime).
pub async fn drive(
    options: PlatformOptions,
    client: AsyncClient,
    mut eventloop: EventLoop,
    mut stop: oneshot::Receiver<()>,
    mut emit: impl FnMut(PlatformEvent),
) {
    let filters: Vec<SubscribeFilter> = options
        .subscriptions
        .iter()
        .map(|(f, q)| SubscribeFilter::new(f.clone(), *q))
        .collect();
    let mut delay = options.reconnect_min;
    loop {
        let event = tokio::select! {
            _ = &mut stop => break,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                delay = options.reconnect_min;
                emit(PlatformEvent::Online {
                    session_present: ack.session_present,
                });
                if !ack.session_present && !filters.is_empty() {
                    // Queued, not awaited: the loop itself must keep polling to send it.
                    if let Err(e) = client.try_subscribe_many(filters.clone()) {
                        log::warn!("platform: cannot queue SUBSCRIBE: {e}");
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                emit(PlatformEvent::Message(Message {
                    topic: p.topic,
                    payload: p.payload.to_vec(),
                    qos: p.qos,
                    retain: p.retain,
                    dup: p.dup,
                }));
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                let codes = ack
                    .return_codes
                    .iter()
                    .map(|c| match c {
                        SubscribeReasonCode::Success(q) => *q as u8,
                        SubscribeReasonCode::Failure => 0x80,
                    })
                    .collect();
                emit(PlatformEvent::Subscribed(codes));
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => emit(PlatformEvent::Delivered(ack.pkid)),
            Ok(_) => {}
            Err(ConnectionError::RequestsDone) => break,
            Err(e) => {
                emit(PlatformEvent::Offline {
                    error: e.to_string(),
                });
                tokio::select! {
                    _ = &mut stop => break,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(options.reconnect_max);
            }
        }
    }
    // Best effort: get a DISCONNECT out so the broker does not publish a will or keep state.
    if client.try_disconnect().is_ok() {
        let _ = tokio::time::timeout(DISCONNECT_GRACE, async {
            while let Ok(event) = eventloop.poll().await {
                if matches!(event, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                    break;
                }
            }
        })
        .await;
    }
}

/// rumqttc options from ours: address, TLS, credentials, session, keepalive.
pub fn mqtt_options(options: &PlatformOptions) -> Result<MqttOptions, PlatformError> {
    let t = &options.transport;
    let mut mqtt = MqttOptions::new(options.client_id.clone(), t.host.clone(), t.port);
    mqtt.set_keep_alive(Duration::from_secs(options.keep_alive_s.into()))
        .set_clean_session(options.clean_session)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET);
    if let Some(user) = &options.username {
        mqtt.set_credentials(user.clone(), options.password.clone().unwrap_or_default());
    }
    if t.tls.is_some() {
        let config = client_tls_config(t)?;
        mqtt.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(config),
        )));
    }
    Ok(mqtt)
}

/// A rustls client configuration (ring provider) that verifies the broker with webpki against
/// the CA files (or, without any, the Mozilla roots), checking `server_name` when it is set
/// and the host otherwise. `insecure` accepts any certificate and is logged.
pub fn client_tls_config(t: &TransportOptions) -> Result<ClientConfig, PlatformError> {
    let Some(tls) = &t.tls else {
        return Err(PlatformError::Tls("TLS is off for this connection".into()));
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| PlatformError::Tls(e.to_string()))?;
    let verifier: Arc<dyn ServerCertVerifier> = if tls.insecure {
        log::warn!(
            "platform: --insecure: the certificate of {} is NOT verified",
            t.host
        );
        // The same `--insecure` verifier as the device side: not code under test, just a switch.
        crate::tls_transport::insecure_verifier(provider)
    } else {
        let mut roots = RootCertStore::empty();
        for path in &tls.ca_files {
            let pem = fs::read(path).map_err(|e| PlatformError::CaFile {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let mut found = 0;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| PlatformError::CaFile {
                    path: path.clone(),
                    reason: format!("not PEM: {e}"),
                })?;
                roots.add(cert).map_err(|e| PlatformError::CaFile {
                    path: path.clone(),
                    reason: format!("not a usable CA certificate: {e}"),
                })?;
                found += 1;
            }
            if found == 0 {
                return Err(PlatformError::CaFile {
                    path: path.clone(),
                    reason: "no certificate in the file".into(),
                });
            }
        }
        for der in &tls.ca_der {
            roots
                .add(der.clone())
                .map_err(|e| PlatformError::Tls(format!("CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| PlatformError::Tls(e.to_string()))?;
        match &tls.server_name {
            Some(name) => {
                let name = ServerName::try_from(name.as_str())
                    .map_err(|_| PlatformError::InvalidServerName(name.clone()))?
                    .to_owned();
                Arc::new(NameOverride { name, webpki })
            }
            None => webpki,
        }
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// Full webpki verification against a configured name instead of the connect host (rumqttc
/// always sends the host it dials; `tls_server_name` lets a broker reached by IP present the
/// certificate of its DNS name).
#[derive(Debug)]
struct NameOverride {
    name: ServerName<'static>,
    webpki: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for NameOverride {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _dialled: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.webpki
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp, now)
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}
