// SPDX-License-Identifier: Apache-2.0

//! [`ZephyrTransport`]: the core's [`Transport`] on Zephyr sockets.
//!
//! `start_connect` posts a connect job to the worker thread (DNS + TCP + TLS handshake block
//! there); `poll_connect` only looks at the worker's slot. Once connected, the socket is
//! non-blocking and `send`/`recv` go straight to the shim with `ZSOCK_MSG_DONTWAIT`.
//!
//! The transport lives inside the `Device`, so what the main loop shares with it is in
//! [`Shared`]: the one worker handle (the SNTP schedule submits jobs too) and the network state.
//! While the network is down every operation fails with `Io`, which makes the connection driver
//! close the socket and back off.

use core::cell::{Cell, RefCell};

use mqtts_core::firmware::ca::CaSet;
use mqtts_core::firmware::shim::PollFlags;
use mqtts_core::transport::{ConnectProgress, Transport, TransportError};

use crate::ffi::{self, SocketFd};
use crate::worker::{JobPoll, Ticket, WorkerClient};

/// What the main loop and the transport share (both on the application thread).
#[derive(Debug)]
pub struct Shared {
    /// The only handle on the worker slot.
    pub worker: RefCell<WorkerClient>,
    /// Link up and an IPv4 address assigned (set by the main loop).
    pub net_ready: Cell<bool>,
}

impl Shared {
    /// No job, network not ready.
    pub fn new() -> Self {
        Self {
            worker: RefCell::new(WorkerClient::new()),
            net_ready: Cell::new(false),
        }
    }
}

impl Default for Shared {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug)]
enum Conn {
    /// No connection and no attempt.
    Idle,
    /// `start_connect` was called while the worker was busy (an SNTP query or an abandoned
    /// attempt): the job is posted as soon as it is free.
    Deferred,
    /// The worker is connecting.
    Connecting(Ticket),
    /// Connected socket, non-blocking.
    Open(SocketFd),
}

/// The firmware's transport: a TCP or TLS socket connected by the worker thread.
///
/// # Would-block sends (Mbed TLS's rule)
///
/// A TLS `send` is `mbedtls_ssl_write`: when it reports "would block" (EAGAIN), the first
/// record of the buffer is already encrypted and queued inside Mbed TLS, and the next call must
/// pass **the same bytes**; that call flushes the queued record and reports as sent the length
/// of *its* argument. The core's `Driver` keeps the rule for every transport: after
/// [`TransportError::WouldBlock`] or `Ok(0)` its next send offers the same bytes, until they
/// are taken. This type keeps its half of it:
///
/// - `send(buf)` makes exactly one `mqtts_shim_send(fd, buf.as_ptr(), buf.len())` call: no
///   splitting, merging, buffering or retrying here, so equal calls from the driver reach Mbed
///   TLS as equal calls (the shim caps `len` at `INT32_MAX`, the same cap every time).
/// - It reports what happened, no more: `Ok(n)` is the count Zephyr returned (one record at
///   most, never more than `buf.len()`); "nothing taken" (EAGAIN, or a count of 0) is
///   [`TransportError::WouldBlock`]; any other failure closes nothing here and is returned as
///   the error, after which the driver closes the socket (a new socket has a fresh Mbed TLS
///   context, so nothing queued survives into it).
/// - An empty `buf` is `Ok(0)` without a call (nothing to hand to Mbed TLS).
#[derive(Debug)]
pub struct ZephyrTransport<'s> {
    shared: &'s Shared,
    cas: CaSet,
    conn: Conn,
}

impl<'s> ZephyrTransport<'s> {
    /// A transport trusting the roots `cas` (see `mqtts_core::firmware::ca`).
    pub fn new(shared: &'s Shared, cas: CaSet) -> Self {
        Self {
            shared,
            cas,
            conn: Conn::Idle,
        }
    }

    /// Whether a connected socket is open.
    pub fn is_open(&self) -> bool {
        matches!(self.conn, Conn::Open(_))
    }

    /// Waits up to `timeout_ms` for the open socket to become readable (or writable if
    /// `want_write`); `None` without an open socket (the caller sleeps instead).
    pub fn wait(
        &self,
        want_write: bool,
        timeout_ms: i32,
    ) -> Option<Result<PollFlags, TransportError>> {
        match self.conn {
            Conn::Open(fd) => {
                Some(ffi::poll(fd, want_write, timeout_ms).map_err(|s| s.transport_error()))
            }
            _ => None,
        }
    }

    fn net_down(&self) -> bool {
        !self.shared.net_ready.get()
    }

    fn submit_connect(&mut self) {
        self.conn = match self.shared.worker.borrow_mut().submit_connect(self.cas) {
            Some(ticket) => Conn::Connecting(ticket),
            None => Conn::Deferred,
        };
    }
}

impl Transport for ZephyrTransport<'_> {
    fn start_connect(&mut self) -> Result<(), TransportError> {
        self.close();
        if self.net_down() {
            return Err(TransportError::Io);
        }
        // A running SNTP query is not cancelled: it ends within CONFIG_MQTTS_SNTP_TIMEOUT_MS
        // and the connect job is posted right after it (Deferred).
        self.submit_connect();
        Ok(())
    }

    fn poll_connect(&mut self) -> Result<ConnectProgress, TransportError> {
        if self.net_down() {
            self.close();
            return Err(TransportError::Io);
        }
        match self.conn {
            Conn::Idle => Err(TransportError::Io),
            Conn::Open(_) => Ok(ConnectProgress::Established),
            Conn::Deferred => {
                self.submit_connect();
                Ok(ConnectProgress::Pending)
            }
            Conn::Connecting(ticket) => {
                let result = self.shared.worker.borrow_mut().poll(ticket);
                match result {
                    JobPoll::Pending => Ok(ConnectProgress::Pending),
                    JobPoll::Connected(fd) => {
                        self.conn = Conn::Open(fd);
                        Ok(ConnectProgress::Established)
                    }
                    JobPoll::Failed(status) => {
                        self.conn = Conn::Idle;
                        Err(status.transport_error())
                    }
                    JobPoll::TimeSet(_) => {
                        // Not ours (one job at a time, tickets carry the job): never happens.
                        self.conn = Conn::Idle;
                        Err(TransportError::Io)
                    }
                }
            }
        }
    }

    fn send(&mut self, buf: &[u8]) -> Result<usize, TransportError> {
        let Conn::Open(fd) = self.conn else {
            return Err(TransportError::Io);
        };
        if self.net_down() {
            return Err(TransportError::Io);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        // One shim call with `buf` as given (see "Would-block sends" above).
        match ffi::send(fd, buf) {
            Ok(0) => Err(TransportError::WouldBlock),
            Ok(n) => Ok(n),
            Err(status) => Err(status.transport_error()),
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, TransportError> {
        let Conn::Open(fd) = self.conn else {
            return Err(TransportError::Io);
        };
        if self.net_down() {
            return Err(TransportError::Io);
        }
        ffi::recv(fd, buf).map_err(|s| s.transport_error())
    }

    fn close(&mut self) {
        match core::mem::replace(&mut self.conn, Conn::Idle) {
            Conn::Open(fd) => ffi::close(fd),
            Conn::Connecting(ticket) => self.shared.worker.borrow_mut().cancel(ticket),
            Conn::Idle | Conn::Deferred => {}
        }
    }
}
