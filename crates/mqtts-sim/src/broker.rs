//! In-process MQTT broker with a TLS listener on loopback, for the `demo` command and tests.
//!
//! The MQTT side is `rumqttd` (v4 = MQTT 3.1.1) on a plain loopback listener. TLS is
//! terminated by our own rustls proxy in front of it rather than by rumqttd's `use-rustls`
//! feature, because rumqttd 0.20 cannot report the port it bound, has no shutdown, and
//! performs each TLS handshake inline in its accept loop (one stalled client blocks all
//! others). The proxy owns the TLS port, handshakes on a thread per connection, can be stopped,
//! and can drop every live connection on demand (fault injection for reconnect tests).
//!
//! Limitation: rumqttd itself has no shutdown API, so its router thread and plain listener
//! keep running until the process exits; [`InProcessBroker::stop`] closes the TLS port and
//! every proxied connection, which is what clients observe.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rumqttd::local::{LinkRx, LinkTx};
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use rustls::{ServerConfig, ServerConnection};

use crate::pki::ServerIdentity;

/// Longest a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle wait of the polling loops; small enough not to matter for MQTT latency.
const IDLE_SLEEP: Duration = Duration::from_millis(2);

/// What the in-process broker should offer.
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// Certificate and key served on the TLS port.
    pub identity: ServerIdentity,
    /// Username/password pairs; empty means anonymous access.
    pub users: Vec<(String, String)>,
    /// Offer only TLS 1.2 (to exercise the client's 1.2 path); otherwise 1.3 and 1.2.
    pub tls12_only: bool,
    /// Client ids of in-process clients (see [`InProcessBroker::take_local_link`]).
    pub local_clients: Vec<String>,
}

impl BrokerOptions {
    /// Anonymous broker serving `identity`, TLS 1.3 and 1.2.
    pub fn new(identity: ServerIdentity) -> Self {
        BrokerOptions {
            identity,
            users: Vec::new(),
            tls12_only: false,
            local_clients: Vec::new(),
        }
    }
}

/// Why the broker could not start.
#[derive(Debug)]
pub enum BrokerError {
    /// Binding, connecting or spawning failed.
    Io(io::Error),
    /// The certificate or key was rejected by rustls.
    Tls(rustls::Error),
    /// rumqttd refused the configuration or did not come up.
    Broker(String),
}

impl fmt::Display for BrokerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokerError::Io(e) => write!(f, "broker I/O: {e}"),
            BrokerError::Tls(e) => write!(f, "broker TLS config: {e}"),
            BrokerError::Broker(e) => write!(f, "rumqttd: {e}"),
        }
    }
}

impl std::error::Error for BrokerError {}

impl From<io::Error> for BrokerError {
    fn from(e: io::Error) -> Self {
        BrokerError::Io(e)
    }
}

/// Shared between the handle, the acceptor and the connection threads.
struct Shared {
    stop: AtomicBool,
    /// Bumped to make every live connection close itself.
    generation: AtomicU64,
    live: AtomicUsize,
    accepted: AtomicUsize,
}

/// A running in-process broker. Dropping it stops it like [`InProcessBroker::stop`].
pub struct InProcessBroker {
    tls_port: u16,
    plain_port: u16,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
    links: HashMap<String, (LinkTx, LinkRx)>,
}

impl fmt::Debug for InProcessBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InProcessBroker")
            .field("tls_port", &self.tls_port)
            .field("plain_port", &self.plain_port)
            .finish_non_exhaustive()
    }
}

impl InProcessBroker {
    /// Starts rumqttd on a free loopback port and the TLS proxy on another, and returns once
    /// both accept connections.
    pub fn start(options: BrokerOptions) -> Result<Self, BrokerError> {
        let tls_config = Arc::new(server_config(&options)?);
        let plain_port = crate::mosquitto::free_port()?;
        let mut broker = Broker::new(rumqttd_config(plain_port, &options.users));
        let mut links = HashMap::new();
        for id in &options.local_clients {
            let link = broker
                .link(id)
                .map_err(|e| BrokerError::Broker(format!("local link {id}: {e}")))?;
            links.insert(id.clone(), link);
        }
        thread::Builder::new()
            .name("rumqttd".into())
            .spawn(move || {
                if let Err(e) = broker.start() {
                    log::error!("rumqttd stopped: {e}");
                }
            })?;
        wait_accepting(plain_port)?;

        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let tls_port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            live: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
        });
        let acceptor = {
            let shared = shared.clone();
            thread::Builder::new()
                .name("tls-proxy".into())
                .spawn(move || accept_loop(listener, plain_port, tls_config, shared))?
        };
        log::info!("in-process broker: TLS 127.0.0.1:{tls_port}, plain 127.0.0.1:{plain_port}");
        Ok(InProcessBroker {
            tls_port,
            plain_port,
            shared,
            acceptor: Some(acceptor),
            links,
        })
    }

    /// The TLS port on 127.0.0.1.
    pub fn tls_port(&self) -> u16 {
        self.tls_port
    }

    /// rumqttd's own plain-TCP port on 127.0.0.1 (for observers; not stopped by `stop`).
    pub fn plain_port(&self) -> u16 {
        self.plain_port
    }

    /// Hands out the in-process client link created for `client_id` (once).
    pub fn take_local_link(&mut self, client_id: &str) -> Option<(LinkTx, LinkRx)> {
        self.links.remove(client_id)
    }

    /// Closes every live TLS connection abruptly (no close_notify, no DISCONNECT), as a
    /// network failure would. New connections are still accepted.
    pub fn drop_connections(&self) {
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Number of TLS connections currently proxied.
    pub fn live_connections(&self) -> usize {
        self.shared.live.load(Ordering::SeqCst)
    }

    /// Number of TCP connections accepted on the TLS port so far.
    pub fn accepted_connections(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Closes the TLS port and all proxied connections and waits for their threads.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.acceptor.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for InProcessBroker {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn server_config(options: &BrokerOptions) -> Result<ServerConfig, BrokerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if options.tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(BrokerError::Tls)?
        .with_no_client_auth()
        .with_single_cert(
            vec![options.identity.cert_der.clone()],
            options.identity.private_key(),
        )
        .map_err(BrokerError::Tls)
}

fn rumqttd_config(plain_port: u16, users: &[(String, String)]) -> Config {
    let auth = if users.is_empty() {
        None
    } else {
        Some(users.iter().cloned().collect())
    };
    let server = ServerSettings {
        name: "v4-plain".into(),
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, plain_port)),
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 10_000,
            max_payload_size: 256 * 1024,
            max_inflight_count: 100,
            auth,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 1000,
            max_outgoing_packet_count: 200,
            max_segment_size: 1024 * 1024,
            max_segment_count: 10,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("v4-plain".to_string(), server)])),
        ..Default::default()
    }
}

fn wait_accepting(port: u16) -> Result<(), BrokerError> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(10));
    }
    Err(BrokerError::Broker(format!(
        "plain listener on port {port} did not come up"
    )))
}

fn accept_loop(
    listener: TcpListener,
    upstream_port: u16,
    config: Arc<ServerConfig>,
    shared: Arc<Shared>,
) {
    let workers: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, peer)) => {
                shared.accepted.fetch_add(1, Ordering::SeqCst);
                let config = config.clone();
                let shared = shared.clone();
                let spawned = thread::Builder::new()
                    .name(format!("tls-conn-{peer}"))
                    .spawn(move || {
                        shared.live.fetch_add(1, Ordering::SeqCst);
                        if let Err(e) = proxy_connection(client, upstream_port, config, &shared) {
                            log::debug!("proxied connection from {peer} ended: {e}");
                        }
                        shared.live.fetch_sub(1, Ordering::SeqCst);
                    });
                match spawned {
                    Ok(handle) => {
                        let mut list = workers.lock().unwrap_or_else(|p| p.into_inner());
                        list.retain(|h| !h.is_finished());
                        list.push(handle);
                    }
                    Err(e) => log::warn!("cannot spawn proxy thread: {e}"),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(IDLE_SLEEP * 5),
            Err(e) => {
                log::warn!("TLS accept failed: {e}");
                thread::sleep(IDLE_SLEEP * 5);
            }
        }
    }
    drop(listener);
    let list = std::mem::take(&mut *workers.lock().unwrap_or_else(|p| p.into_inner()));
    for handle in list {
        let _ = handle.join();
    }
}

/// Shuttles bytes between one TLS client and rumqttd until either side closes, the broker
/// stops or `drop_connections` is called.
fn proxy_connection(
    mut client: TcpStream,
    upstream_port: u16,
    config: Arc<ServerConfig>,
    shared: &Shared,
) -> io::Result<()> {
    client.set_nonblocking(true)?;
    let _ = client.set_nodelay(true);
    let generation = shared.generation.load(Ordering::SeqCst);
    let mut tls = ServerConnection::new(config).map_err(io::Error::other)?;
    let started = Instant::now();
    let mut upstream: Option<TcpStream> = None;
    let mut to_upstream: Vec<u8> = Vec::new();
    let mut to_client: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut client_done = false;

    let result = loop {
        if shared.stop.load(Ordering::SeqCst)
            || shared.generation.load(Ordering::SeqCst) != generation
        {
            break Ok(());
        }
        let mut progress = false;

        // Client -> TLS engine.
        if !client_done {
            match tls.read_tls(&mut client) {
                Ok(0) => client_done = true,
                Ok(_) => {
                    progress = true;
                    if let Err(e) = tls.process_new_packets() {
                        let _ = tls.write_tls(&mut client);
                        break Err(io::Error::other(e));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => break Err(e),
            }
        }

        if tls.is_handshaking() {
            if started.elapsed() > HANDSHAKE_TIMEOUT || client_done {
                break Err(io::ErrorKind::TimedOut.into());
            }
        } else if upstream.is_none() {
            // Loopback connect to our own rumqttd: immediate.
            let up = TcpStream::connect((Ipv4Addr::LOCALHOST, upstream_port))?;
            up.set_nonblocking(true)?;
            let _ = up.set_nodelay(true);
            upstream = Some(up);
        }

        // Decrypted client bytes -> queue for rumqttd.
        loop {
            match tls.reader().read(&mut buf) {
                Ok(0) => {
                    client_done = true;
                    break;
                }
                Ok(n) => {
                    progress = true;
                    to_upstream.extend_from_slice(buf.get(..n).unwrap_or_default());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    client_done = true;
                    break;
                }
            }
        }

        if let Some(up) = upstream.as_mut() {
            while !to_upstream.is_empty() {
                match up.write(&to_upstream) {
                    Ok(n) => {
                        progress = true;
                        to_upstream.drain(..n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return finish(&mut tls, &mut client, Err(e)),
                }
            }
            if client_done && to_upstream.is_empty() {
                let _ = up.shutdown(Shutdown::Write);
            }
            if to_client.is_empty() {
                match up.read(&mut buf) {
                    // rumqttd closed (e.g. after a refusing CONNACK): deliver what is queued.
                    Ok(0) => return finish(&mut tls, &mut client, Ok(())),
                    Ok(n) => {
                        progress = true;
                        to_client.extend_from_slice(buf.get(..n).unwrap_or_default());
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return finish(&mut tls, &mut client, Err(e)),
                }
            }
            if !to_client.is_empty() {
                let n = tls.writer().write(&to_client)?;
                to_client.drain(..n);
            }
        } else if client_done {
            break Ok(());
        }

        // TLS engine -> client.
        while tls.wants_write() {
            match tls.write_tls(&mut client) {
                Ok(n) => progress |= n > 0,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }

        if !progress {
            thread::sleep(IDLE_SLEEP);
        }
    };
    let _ = client.shutdown(Shutdown::Both);
    if let Some(up) = upstream {
        let _ = up.shutdown(Shutdown::Both);
    }
    result
}

/// Sends what is queued plus close_notify (bounded wait), then closes the client side.
fn finish(
    tls: &mut ServerConnection,
    client: &mut TcpStream,
    result: io::Result<()>,
) -> io::Result<()> {
    tls.send_close_notify();
    let deadline = Instant::now() + Duration::from_secs(1);
    while tls.wants_write() && Instant::now() < deadline {
        match tls.write_tls(client) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(IDLE_SLEEP),
            Err(_) => break,
        }
    }
    let _ = client.shutdown(Shutdown::Both);
    result
}
