// SPDX-License-Identifier: Apache-2.0

//! [`ZephyrTransport`]: the core's [`Transport`] on Zephyr sockets.
//!
//! `start_connect` posts a connect job to the worker thread (DNS + TCP + TLS handshake block
//! there); `poll_connect` only looks at the worker's slot. Once connected, the socket is
//! non-blocking and `send`/`recv` go straight to the shim with `ZSOCK_MSG_DONTWAIT`.

use mqtts_core::transport::{ConnectProgress, Transport, TransportError};

use crate::ffi::{self, NetState, PollFlags, ShimStatus, SocketFd};
use crate::worker::{Job, JobPoll, Ticket, WorkerClient};

/// Maps a shim status to the core's transport error.
pub fn transport_error(status: ShimStatus) -> TransportError {
    match status {
        ShimStatus::WouldBlock => TransportError::WouldBlock,
        ShimStatus::Timeout => TransportError::Timeout,
        ShimStatus::Refused => TransportError::TcpRefused,
        ShimStatus::TlsVerify => TransportError::TlsVerification,
        ShimStatus::TlsHandshake => TransportError::TlsHandshake,
        ShimStatus::Dns => TransportError::Dns,
        ShimStatus::Closed => TransportError::Closed,
        ShimStatus::NetDown | ShimStatus::NoMemory | ShimStatus::Config | ShimStatus::Other => {
            TransportError::Io
        }
    }
}

#[derive(Debug)]
enum Conn {
    /// No connection and no attempt.
    Idle,
    /// `start_connect` was called while the worker was still busy (an abandoned attempt or a
    /// time sync): the job is posted as soon as it is free.
    Deferred,
    /// The worker is connecting.
    Connecting(Ticket),
    /// Connected socket, non-blocking.
    Open(SocketFd),
}

/// The firmware's transport: a TCP or TLS socket connected by the worker thread.
#[derive(Debug)]
pub struct ZephyrTransport {
    worker: WorkerClient,
    conn: Conn,
    time_sync: Option<Ticket>,
}

impl ZephyrTransport {
    /// Creates the transport. It owns the only [`WorkerClient`].
    pub fn new() -> Self {
        Self {
            worker: WorkerClient::new(),
            conn: Conn::Idle,
            time_sync: None,
        }
    }

    /// Whether a connected socket is open.
    pub fn is_open(&self) -> bool {
        matches!(self.conn, Conn::Open(_))
    }

    /// Waits up to `timeout_ms` for the open socket to become readable (or writable if
    /// `want_write`); without an open socket returns at once. The main loop uses it as its
    /// sleep, so incoming data wakes it early.
    pub fn wait(&self, want_write: bool, timeout_ms: i32) -> Result<PollFlags, TransportError> {
        match self.conn {
            Conn::Open(fd) => ffi::poll(fd, want_write, timeout_ms).map_err(transport_error),
            _ => Ok(PollFlags::default()),
        }
    }

    /// Asks the worker for an SNTP synchronisation. Returns false if the worker is busy (a
    /// connection attempt has priority); try again later.
    pub fn start_time_sync(&mut self) -> bool {
        if self.time_sync.is_some() || matches!(self.conn, Conn::Deferred) {
            return false;
        }
        match self.worker.submit(Job::TimeSync) {
            Ok(ticket) => {
                self.time_sync = Some(ticket);
                true
            }
            Err(_) => false,
        }
    }

    /// Result of the pending SNTP synchronisation: `None` while running (or none pending),
    /// `Some(Ok(unix_time))` or `Some(Err(_))` once.
    pub fn poll_time_sync(&mut self) -> Option<Result<i64, ShimStatus>> {
        let ticket = self.time_sync?;
        match self.worker.poll(ticket) {
            JobPoll::Pending => None,
            JobPoll::TimeSet(unix_s) => {
                self.time_sync = None;
                Some(Ok(unix_s))
            }
            JobPoll::Failed(status) => {
                self.time_sync = None;
                Some(Err(status))
            }
            JobPoll::Connected(fd) => {
                // Not ours (cannot happen: one job at a time); never leak a socket.
                ffi::close(fd);
                self.time_sync = None;
                Some(Err(ShimStatus::Other))
            }
        }
    }

    fn submit_connect(&mut self) -> Result<(), TransportError> {
        match self.worker.submit(Job::Connect) {
            Ok(ticket) => {
                self.conn = Conn::Connecting(ticket);
                Ok(())
            }
            Err(_) => {
                self.conn = Conn::Deferred;
                Ok(())
            }
        }
    }
}

impl Default for ZephyrTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl Transport for ZephyrTransport {
    fn start_connect(&mut self) -> Result<(), TransportError> {
        self.close();
        if ffi::net_state() != NetState::Ready {
            return Err(TransportError::Io);
        }
        // A pending time sync is not cancelled: it finishes quickly and the connect job runs
        // right after it (Deferred).
        self.submit_connect()
    }

    fn poll_connect(&mut self) -> Result<ConnectProgress, TransportError> {
        match self.conn {
            Conn::Idle => Err(TransportError::Io),
            Conn::Open(_) => Ok(ConnectProgress::Established),
            Conn::Deferred => {
                if self.time_sync.is_none() && self.worker.is_idle() {
                    self.submit_connect()?;
                }
                Ok(ConnectProgress::Pending)
            }
            Conn::Connecting(ticket) => match self.worker.poll(ticket) {
                JobPoll::Pending => Ok(ConnectProgress::Pending),
                JobPoll::Connected(fd) => {
                    self.conn = Conn::Open(fd);
                    Ok(ConnectProgress::Established)
                }
                JobPoll::Failed(status) => {
                    self.conn = Conn::Idle;
                    Err(transport_error(status))
                }
                JobPoll::TimeSet(_) => {
                    self.conn = Conn::Idle;
                    Err(TransportError::Io)
                }
            },
        }
    }

    fn send(&mut self, buf: &[u8]) -> Result<usize, TransportError> {
        let Conn::Open(fd) = self.conn else {
            return Err(TransportError::Io);
        };
        if buf.is_empty() {
            return Ok(0);
        }
        match ffi::send(fd, buf) {
            Ok(0) => Err(TransportError::WouldBlock),
            Ok(n) => Ok(n),
            Err(status) => Err(transport_error(status)),
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, TransportError> {
        let Conn::Open(fd) = self.conn else {
            return Err(TransportError::Io);
        };
        ffi::recv(fd, buf).map_err(transport_error)
    }

    fn close(&mut self) {
        match core::mem::replace(&mut self.conn, Conn::Idle) {
            Conn::Open(fd) => ffi::close(fd),
            Conn::Connecting(ticket) => self.worker.cancel(ticket),
            Conn::Idle | Conn::Deferred => {}
        }
    }
}
