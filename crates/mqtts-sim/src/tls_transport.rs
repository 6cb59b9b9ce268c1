//! [`Transport`] over a non-blocking `std` TCP socket with a rustls client on top (or plain TCP).
//!
//! Nothing here ever blocks except name resolution in [`Transport::start_connect`]
//! (`getaddrinfo` has no non-blocking form in `std`). The TCP connect is started on a
//! non-blocking socket and its completion is detected with `SO_ERROR` + `getpeername`; the TLS
//! handshake is then driven one `read_tls`/`process_new_packets`/`write_tls` step per
//! [`Transport::poll_connect`] call.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mqtts_core::transport::{ConnectProgress, Transport, TransportError};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Most TLS bytes kept queued for a slow socket before `send` refuses more plaintext.
const TLS_BUFFER_LIMIT: usize = 16 * 1024;

/// Where the broker is and how to secure the connection.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// Broker host name or IP literal; resolved on every `start_connect`.
    pub host: String,
    /// Broker TCP port.
    pub port: u16,
    /// TLS settings; `None` means plain TCP (only for local test brokers).
    pub tls: Option<TlsOptions>,
    /// Longest time from `start_connect` until the secure channel is up.
    pub connect_timeout: Duration,
}

impl TransportOptions {
    /// TLS to `host:port` with verification against the given CA files, 15 s connect timeout.
    pub fn tls(host: &str, port: u16, ca_files: &[&Path]) -> Self {
        TransportOptions {
            host: host.into(),
            port,
            tls: Some(TlsOptions {
                ca_files: ca_files.iter().map(|p| p.to_path_buf()).collect(),
                ..TlsOptions::default()
            }),
            connect_timeout: Duration::from_secs(15),
        }
    }

    /// Plain TCP to `host:port`, 15 s connect timeout.
    pub fn plain(host: &str, port: u16) -> Self {
        TransportOptions {
            host: host.into(),
            port,
            tls: None,
            connect_timeout: Duration::from_secs(15),
        }
    }
}

/// TLS client settings (server authentication only; no client certificate).
///
/// Trust anchors are the union of `ca_files` and `ca_der`; when both are empty the bundled
/// Mozilla root set (`webpki-roots`) is used. TLS 1.3 and 1.2 are both offered.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Name sent in SNI and checked against the certificate; defaults to the host. May be an
    /// IP literal, which is then checked against the certificate's IP SANs.
    pub server_name: Option<String>,
    /// PEM files, each holding one or more CA certificates.
    pub ca_files: Vec<PathBuf>,
    /// CA certificates given in memory (DER).
    pub ca_der: Vec<CertificateDer<'static>>,
    /// Skips certificate verification. Never on by default; every connect logs a warning.
    pub insecure: bool,
}

/// Why a [`TlsTransport`] could not be built from its options.
#[derive(Debug)]
pub enum ConfigError {
    /// A CA file could not be read or parsed as PEM.
    CaFile {
        /// The offending file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A CA file held no certificate.
    NoCertificates(PathBuf),
    /// A CA certificate was rejected as a trust anchor.
    BadCaCertificate(String),
    /// The server name is neither a DNS name nor an IP literal.
    InvalidServerName(String),
    /// rustls refused the configuration.
    Tls(rustls::Error),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::CaFile { path, reason } => {
                write!(f, "CA file {}: {reason}", path.display())
            }
            ConfigError::NoCertificates(path) => {
                write!(f, "CA file {} holds no certificate", path.display())
            }
            ConfigError::BadCaCertificate(e) => write!(f, "unusable CA certificate: {e}"),
            ConfigError::InvalidServerName(n) => write!(f, "invalid TLS server name {n:?}"),
            ConfigError::Tls(e) => write!(f, "TLS configuration: {e}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The secured (or plain) byte stream once TCP is connected.
enum Channel {
    Plain(TcpStream),
    Tls(Box<TlsChannel>),
}

struct TlsChannel {
    tcp: TcpStream,
    conn: ClientConnection,
}

enum State {
    Idle,
    /// Non-blocking TCP connect in flight to `addrs[index]`.
    TcpConnecting {
        socket: Socket,
        addrs: Vec<SocketAddr>,
        index: usize,
    },
    /// TCP is up; TLS handshake in progress.
    Handshaking(Box<TlsChannel>),
    Established(Channel),
}

/// A non-blocking TCP(+TLS) client implementing the core's [`Transport`].
pub struct TlsTransport {
    options: TransportOptions,
    tls_config: Option<Arc<ClientConfig>>,
    server_name: Option<ServerName<'static>>,
    state: State,
    started: Option<Instant>,
    last_error: Option<String>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransport")
            .field("host", &self.options.host)
            .field("port", &self.options.port)
            .field("tls", &self.options.tls.is_some())
            .field("last_error", &self.last_error)
            .finish()
    }
}

impl TlsTransport {
    /// Builds the transport, loading CA files now so that a bad path fails early.
    pub fn new(options: TransportOptions) -> Result<Self, ConfigError> {
        let (tls_config, server_name) = match &options.tls {
            None => (None, None),
            Some(tls) => {
                let name = tls
                    .server_name
                    .clone()
                    .unwrap_or_else(|| options.host.clone());
                let server_name = ServerName::try_from(name.clone())
                    .map_err(|_| ConfigError::InvalidServerName(name))?;
                (Some(Arc::new(client_config(tls)?)), Some(server_name))
            }
        };
        Ok(TlsTransport {
            options,
            tls_config,
            server_name,
            state: State::Idle,
            started: None,
            last_error: None,
        })
    }

    /// The options this transport was built with.
    pub fn options(&self) -> &TransportOptions {
        &self.options
    }

    /// Human-readable detail of the last failure (rustls or OS error text), for logs.
    /// Never contains key material or credentials.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// The negotiated TLS version once the handshake is done (`None` for plain TCP).
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        match &self.state {
            State::Established(Channel::Tls(ch)) => ch.conn.protocol_version(),
            _ => None,
        }
    }

    /// Blocks for at most `timeout` until there is something for [`Transport::recv`]: decrypted
    /// bytes rustls already holds, or bytes (or EOF, or an error) on the socket. Returns `false`
    /// on timeout. For host event loops that would otherwise spin between polls; it does not
    /// consume anything, and outside an established connection it returns `true` at once.
    /// Costs one `poll(2)`.
    pub fn wait_readable(&mut self, timeout: Duration) -> bool {
        let tcp = match &mut self.state {
            State::Established(Channel::Tls(ch)) => {
                match ch.conn.process_new_packets() {
                    Ok(io) if io.plaintext_bytes_to_read() == 0 => {}
                    // Buffered plaintext, or a TLS error that `recv` will report.
                    _ => return true,
                }
                &ch.tcp
            }
            State::Established(Channel::Plain(tcp)) => &*tcp,
            _ => return true,
        };
        wait_socket_readable(tcp, timeout)
    }

    /// The socket while a connection exists or is being made, and whether the transport
    /// waits for it to become writable (TCP connect in flight, or TLS bytes queued for a full
    /// socket); it always waits for readable. For a host event loop that waits on many
    /// transports with one `poll(2)` (the fleet runner). Decrypted bytes rustls already holds
    /// do not show up as readable: poll the device until it has nothing more before waiting.
    pub fn poll_interest(&self) -> Option<(std::os::fd::BorrowedFd<'_>, bool)> {
        use std::os::fd::AsFd;
        match &self.state {
            State::Idle => None,
            State::TcpConnecting { socket, .. } => Some((socket.as_fd(), true)),
            State::Handshaking(ch) | State::Established(Channel::Tls(ch)) => {
                Some((ch.tcp.as_fd(), ch.conn.wants_write()))
            }
            State::Established(Channel::Plain(tcp)) => Some((tcp.as_fd(), false)),
        }
    }

    /// The connected peer's address, once TCP is up.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        match &self.state {
            State::Handshaking(ch) => ch.tcp.peer_addr().ok(),
            State::Established(Channel::Tls(ch)) => ch.tcp.peer_addr().ok(),
            State::Established(Channel::Plain(tcp)) => tcp.peer_addr().ok(),
            _ => None,
        }
    }

    fn fail(&mut self, error: TransportError, detail: impl Into<String>) -> TransportError {
        let detail = detail.into();
        log::debug!("transport {:?}: {detail}", error);
        self.last_error = Some(detail);
        self.teardown();
        error
    }

    fn teardown(&mut self) {
        match core::mem::replace(&mut self.state, State::Idle) {
            State::Established(Channel::Tls(mut ch)) => {
                ch.conn.send_close_notify();
                let _ = ch.conn.write_tls(&mut ch.tcp);
                let _ = ch.tcp.shutdown(Shutdown::Both);
            }
            State::Established(Channel::Plain(tcp)) => {
                let _ = tcp.shutdown(Shutdown::Both);
            }
            State::Handshaking(ch) => {
                let _ = ch.tcp.shutdown(Shutdown::Both);
            }
            State::TcpConnecting { .. } | State::Idle => {}
        }
    }

    /// Starts a non-blocking connect to `addrs[index..]`, skipping addresses that refuse at once.
    fn connect_from(
        &mut self,
        addrs: Vec<SocketAddr>,
        mut index: usize,
    ) -> Result<ConnectProgress, TransportError> {
        let mut last = (TransportError::TcpRefused, String::from("no address"));
        while let Some(addr) = addrs.get(index).copied() {
            match start_tcp_connect(addr) {
                Ok((socket, true)) => return self.tcp_connected(socket),
                Ok((socket, false)) => {
                    self.state = State::TcpConnecting {
                        socket,
                        addrs,
                        index,
                    };
                    return Ok(ConnectProgress::Pending);
                }
                Err(e) => last = (map_io(&e), format!("connect {addr}: {e}")),
            }
            index += 1;
        }
        Err(self.fail(last.0, last.1))
    }

    fn tcp_connected(&mut self, socket: Socket) -> Result<ConnectProgress, TransportError> {
        let tcp: TcpStream = socket.into();
        let _ = tcp.set_nodelay(true);
        match (&self.tls_config, &self.server_name) {
            (Some(config), Some(name)) => {
                let conn = match ClientConnection::new(config.clone(), name.clone()) {
                    Ok(c) => c,
                    Err(e) => return Err(self.fail(TransportError::TlsHandshake, e.to_string())),
                };
                let mut conn = conn;
                conn.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
                self.state = State::Handshaking(Box::new(TlsChannel { tcp, conn }));
                self.drive_handshake()
            }
            _ => {
                self.state = State::Established(Channel::Plain(tcp));
                Ok(ConnectProgress::Established)
            }
        }
    }

    fn drive_handshake(&mut self) -> Result<ConnectProgress, TransportError> {
        let State::Handshaking(ch) = &mut self.state else {
            return Err(TransportError::Io);
        };
        // Bounded: every round either moves bytes or returns; rustls needs a few rounds to
        // answer a flight it just processed.
        for _ in 0..8 {
            let mut progressed = false;
            match flush_tls(ch) {
                Ok(n) => progressed |= n > 0,
                Err(e) => {
                    let err = map_io(&e);
                    return Err(self.fail(err, format!("TLS handshake write: {e}")));
                }
            }
            if !ch.conn.is_handshaking() {
                break;
            }
            match ch.conn.read_tls(&mut ch.tcp) {
                Ok(0) => {
                    return Err(self.fail(
                        TransportError::Closed,
                        "peer closed the connection during the TLS handshake",
                    ))
                }
                Ok(_) => {
                    progressed = true;
                    if let Err(e) = ch.conn.process_new_packets() {
                        // Let the peer see our alert; it may explain the failure in its log.
                        let _ = ch.conn.write_tls(&mut ch.tcp);
                        let kind = map_tls_handshake_error(&e);
                        return Err(self.fail(kind, format!("TLS handshake: {e}")));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let err = map_io(&e);
                    return Err(self.fail(err, format!("TLS handshake read: {e}")));
                }
            }
            if !progressed {
                break;
            }
        }
        if ch.conn.is_handshaking() {
            return Ok(ConnectProgress::Pending);
        }
        let version = ch.conn.protocol_version();
        log::debug!("TLS established: {version:?}");
        let State::Handshaking(ch) = core::mem::replace(&mut self.state, State::Idle) else {
            return Err(TransportError::Io);
        };
        self.state = State::Established(Channel::Tls(ch));
        Ok(ConnectProgress::Established)
    }

    fn check_timeout(&mut self) -> Result<(), TransportError> {
        let expired = self
            .started
            .is_some_and(|t| t.elapsed() > self.options.connect_timeout);
        if expired {
            let limit = self.options.connect_timeout;
            return Err(self.fail(
                TransportError::Timeout,
                format!("connection not established within {limit:?}"),
            ));
        }
        Ok(())
    }
}

impl Transport for TlsTransport {
    fn start_connect(&mut self) -> Result<(), TransportError> {
        self.teardown();
        self.last_error = None;
        self.started = Some(Instant::now());
        if self.options.tls.as_ref().is_some_and(|t| t.insecure) {
            log::warn!(
                "TLS certificate verification is DISABLED (insecure) for {}:{}",
                self.options.host,
                self.options.port
            );
        }
        let addrs: Vec<SocketAddr> =
            match (self.options.host.as_str(), self.options.port).to_socket_addrs() {
                Ok(a) => a.collect(),
                Err(e) => {
                    let host = self.options.host.clone();
                    return Err(self.fail(TransportError::Dns, format!("resolve {host}: {e}")));
                }
            };
        if addrs.is_empty() {
            let host = self.options.host.clone();
            return Err(self.fail(TransportError::Dns, format!("{host} has no address")));
        }
        self.connect_from(addrs, 0).map(|_| ())
    }

    fn poll_connect(&mut self) -> Result<ConnectProgress, TransportError> {
        match &self.state {
            State::Idle => return Err(TransportError::Closed),
            State::Established(Channel::Tls(ch)) => {
                // Finish sending the client's last handshake flight if it was held back.
                if ch.conn.wants_write() {
                    self.flush()?;
                }
                return Ok(ConnectProgress::Established);
            }
            State::Established(Channel::Plain(_)) => return Ok(ConnectProgress::Established),
            State::TcpConnecting { .. } | State::Handshaking(_) => {}
        }
        self.check_timeout()?;
        if let State::Handshaking(_) = self.state {
            return self.drive_handshake();
        }
        let State::TcpConnecting { socket, .. } = &self.state else {
            return Err(TransportError::Io);
        };
        match tcp_connect_status(socket) {
            Ok(None) => Ok(ConnectProgress::Pending),
            Ok(Some(())) => {
                let State::TcpConnecting { socket, .. } =
                    core::mem::replace(&mut self.state, State::Idle)
                else {
                    return Err(TransportError::Io);
                };
                self.tcp_connected(socket)
            }
            Err(e) => {
                let State::TcpConnecting { addrs, index, .. } =
                    core::mem::replace(&mut self.state, State::Idle)
                else {
                    return Err(TransportError::Io);
                };
                let addr = addrs.get(index).copied();
                if index + 1 < addrs.len() {
                    log::debug!("connect {addr:?}: {e}; trying next address");
                    return self.connect_from(addrs, index + 1);
                }
                let err = map_io(&e);
                Err(self.fail(err, format!("connect {addr:?}: {e}")))
            }
        }
    }

    /// Keeps `Transport::send`'s retry rule without relying on it: rustls copies what it
    /// reports taken into its own buffer, and a `WouldBlock` here takes nothing (queued TLS
    /// bytes are flushed first), so a retry with other bytes could not lose or repeat any.
    fn send(&mut self, buf: &[u8]) -> Result<usize, TransportError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let result = match &mut self.state {
            State::Established(Channel::Plain(tcp)) => match tcp.write(buf) {
                Ok(n) => Ok(n),
                Err(e) => Err(e),
            },
            State::Established(Channel::Tls(ch)) => {
                if let Err(e) = flush_tls(ch) {
                    Err(e)
                } else {
                    match ch.conn.writer().write(buf) {
                        Ok(0) => Err(io::ErrorKind::WouldBlock.into()),
                        Ok(n) => {
                            // WouldBlock here only means the bytes stay queued for next time.
                            match flush_tls(ch) {
                                Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
                                _ => Ok(n),
                            }
                        }
                        Err(e) => Err(e),
                    }
                }
            }
            State::Idle => return Err(TransportError::Closed),
            State::TcpConnecting { .. } | State::Handshaking(_) => {
                return Err(TransportError::WouldBlock)
            }
        };
        result.map_err(|e| self.io_failure("send", e))
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, TransportError> {
        match &mut self.state {
            State::Established(Channel::Plain(tcp)) => match tcp.read(buf) {
                Ok(0) => Err(self.fail(TransportError::Closed, "peer closed the connection")),
                Ok(n) => Ok(n),
                Err(e) => Err(self.io_failure("recv", e)),
            },
            State::Established(Channel::Tls(_)) => self.recv_tls(buf),
            State::Idle => Err(TransportError::Closed),
            State::TcpConnecting { .. } | State::Handshaking(_) => Err(TransportError::WouldBlock),
        }
    }

    fn close(&mut self) {
        self.teardown();
        self.started = None;
    }
}

impl TlsTransport {
    /// Writes queued TLS records; a full socket is not an error here.
    fn flush(&mut self) -> Result<(), TransportError> {
        if let State::Established(Channel::Tls(ch)) = &mut self.state {
            if let Err(e) = flush_tls(ch) {
                if e.kind() != io::ErrorKind::WouldBlock {
                    return Err(self.io_failure("flush", e));
                }
            }
        }
        Ok(())
    }

    fn recv_tls(&mut self, buf: &mut [u8]) -> Result<usize, TransportError> {
        self.flush()?;
        let State::Established(Channel::Tls(ch)) = &mut self.state else {
            return Err(TransportError::Closed);
        };
        let mut saw_eof = false;
        loop {
            match ch.conn.reader().read(buf) {
                Ok(0) => {
                    return Err(self.fail(TransportError::Closed, "peer sent TLS close_notify"))
                }
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && !saw_eof => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(self.fail(TransportError::Closed, "peer closed the connection"))
                }
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(self.fail(
                        TransportError::Closed,
                        "peer closed TCP without TLS close_notify",
                    ))
                }
                Err(e) => return Err(self.io_failure("recv", e)),
            }
            match ch.conn.read_tls(&mut ch.tcp) {
                Ok(n) => {
                    saw_eof = n == 0;
                    if let Err(e) = ch.conn.process_new_packets() {
                        let _ = ch.conn.write_tls(&mut ch.tcp);
                        // After the handshake a TLS failure is a broken stream, not a handshake
                        // problem: report it as I/O and keep rustls' text for the log.
                        return Err(self.fail(TransportError::Io, format!("TLS: {e}")));
                    }
                    // Answer anything rustls wants to say (key update, alerts).
                    if let Err(e) = flush_tls(ch) {
                        if e.kind() != io::ErrorKind::WouldBlock {
                            return Err(self.io_failure("recv", e));
                        }
                    }
                }
                Err(e) => return Err(self.io_failure("recv", e)),
            }
        }
    }

    /// Maps an I/O error; `WouldBlock` keeps the connection, anything else ends it.
    fn io_failure(&mut self, what: &str, e: io::Error) -> TransportError {
        let kind = map_io(&e);
        if kind == TransportError::WouldBlock {
            return kind;
        }
        self.fail(kind, format!("{what}: {e}"))
    }
}

/// Writes as many queued TLS bytes as the socket takes. Returns bytes written; `WouldBlock`
/// only when nothing could be written while something was queued.
fn flush_tls(ch: &mut TlsChannel) -> io::Result<usize> {
    let mut total = 0;
    while ch.conn.wants_write() {
        match ch.conn.write_tls(&mut ch.tcp) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && total > 0 => return Ok(total),
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}

/// One `poll(2)` on the socket for readability (data, EOF or an error). `true` when ready or
/// when `poll` itself failed: `recv` then says what is wrong.
fn wait_socket_readable(tcp: &TcpStream, timeout: Duration) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    // A timeout too large for a timespec waits forever.
    let timeout = Timespec::try_from(timeout).ok();
    let mut fds = [PollFd::new(tcp, PollFlags::IN)];
    match poll(&mut fds, timeout.as_ref()) {
        Ok(n) => n > 0,
        // A signal: report "ready" so the caller polls and then waits again.
        Err(_) => true,
    }
}

/// Opens a non-blocking socket and starts connecting. `true` when already connected.
fn start_tcp_connect(addr: SocketAddr) -> io::Result<(Socket, bool)> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    match socket.connect(&SockAddr::from(addr)) {
        Ok(()) => Ok((socket, true)),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok((socket, false)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok((socket, false)),
        Err(e) => Err(e),
    }
}

/// Zero-timeout check of a connect in flight: `Ok(None)` still pending, `Ok(Some(()))` connected.
fn tcp_connect_status(socket: &Socket) -> io::Result<Option<()>> {
    // SO_ERROR first: a failed connect leaves its reason there and no peer.
    if let Some(e) = socket.take_error()? {
        return Err(e);
    }
    match socket.peer_addr() {
        Ok(_) => Ok(Some(())),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(None),
        Err(e) => Err(e),
    }
}

fn map_io(e: &io::Error) -> TransportError {
    use io::ErrorKind as K;
    match e.kind() {
        K::WouldBlock | K::Interrupted => TransportError::WouldBlock,
        K::ConnectionRefused => TransportError::TcpRefused,
        K::TimedOut => TransportError::Timeout,
        K::ConnectionReset
        | K::ConnectionAborted
        | K::BrokenPipe
        | K::UnexpectedEof
        | K::NotConnected
        | K::WriteZero => TransportError::Closed,
        _ => TransportError::Io,
    }
}

fn map_tls_handshake_error(e: &rustls::Error) -> TransportError {
    match e {
        rustls::Error::InvalidCertificate(_) => TransportError::TlsVerification,
        _ => TransportError::TlsHandshake,
    }
}

fn client_config(tls: &TlsOptions) -> Result<ClientConfig, ConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(ConfigError::Tls)?;
    if tls.insecure {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoCertificateVerification(provider)))
            .with_no_client_auth());
    }
    let mut roots = RootCertStore::empty();
    for path in &tls.ca_files {
        for cert in load_pem_certs(path)? {
            roots
                .add(cert)
                .map_err(|e| ConfigError::BadCaCertificate(format!("{}: {e}", path.display())))?;
        }
    }
    for cert in &tls.ca_der {
        roots
            .add(cert.clone())
            .map_err(|e| ConfigError::BadCaCertificate(e.to_string()))?;
    }
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// Reads every certificate from a PEM file.
pub fn load_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ConfigError::CaFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(ConfigError::NoCertificates(path.to_path_buf()));
    }
    Ok(certs)
}

/// The `--insecure` verifier (device and platform side): accepts any server certificate but
/// still checks handshake signatures, so the peer must at least hold the key of the certificate
/// it shows.
pub fn insecure_verifier(provider: Arc<CryptoProvider>) -> Arc<dyn ServerCertVerifier> {
    Arc::new(NoCertificateVerification(provider))
}

/// See [`insecure_verifier`].
#[derive(Debug)]
struct NoCertificateVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCertificateVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
