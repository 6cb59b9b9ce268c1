//! The byte-stream transport under the session: a non-blocking socket, usually TLS, whose
//! connection set-up may take long.
//!
//! On Zephyr the TLS handshake runs inside one blocking `connect()`, so the firmware runs it on a
//! worker thread and `poll_connect` reports that thread's progress. On the host the rustls
//! handshake is driven step by step from `poll_connect`. Either way the connection driver only
//! polls, so the application's loop never blocks.

/// Why a transport operation failed. These names are stable: they end up in logs and telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportError {
    /// The operation cannot make progress now; try again later. Not a failure.
    WouldBlock,
    /// The broker's host name did not resolve.
    Dns,
    /// The TCP connection was refused (RST).
    TcpRefused,
    /// The TCP connection or the TLS handshake did not finish in time.
    Timeout,
    /// The broker's certificate did not verify (unknown CA, expired, wrong host name).
    TlsVerification,
    /// The TLS handshake failed for another reason (alert, protocol, resources).
    TlsHandshake,
    /// The peer closed the connection (EOF, TLS close_notify or reset).
    Closed,
    /// Any other I/O error (network down, no route, out of sockets).
    Io,
}

/// Progress of a connection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectProgress {
    /// Still resolving, connecting or handshaking.
    Pending,
    /// The secure channel is up; `send` and `recv` may be used.
    Established,
}

/// A non-blocking, connection-oriented byte stream (TCP, normally with TLS on top).
pub trait Transport {
    /// Begins a new connection attempt to the configured broker. Returns at once.
    fn start_connect(&mut self) -> Result<(), TransportError>;
    /// Reports the attempt's progress. After an error the attempt is over; call `close`.
    fn poll_connect(&mut self) -> Result<ConnectProgress, TransportError>;
    /// Writes some of `buf`, returning how many bytes were taken
    /// (`Err(WouldBlock)` when none can be taken now).
    fn send(&mut self, buf: &[u8]) -> Result<usize, TransportError>;
    /// Reads into `buf`, returning how many bytes arrived (`Err(WouldBlock)` when none are
    /// available, `Err(Closed)` at end of stream). `buf` is never empty.
    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, TransportError>;
    /// Closes the connection or abandons the attempt. Safe to call more than once.
    fn close(&mut self);
}

/// A scripted in-memory transport for unit tests of the layers above.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use std::collections::VecDeque;
    use std::vec::Vec;

    /// A transport whose connect outcome and received bytes are scripted by the test.
    #[derive(Default)]
    pub(crate) struct Script {
        /// Outcomes `poll_connect` returns, one per call; the last one repeats.
        pub(crate) connect: VecDeque<Result<ConnectProgress, TransportError>>,
        pub(crate) start_error: Option<TransportError>,
        pub(crate) incoming: VecDeque<Vec<u8>>,
        pub(crate) closed_by_peer: bool,
        pub(crate) sent: Vec<u8>,
        /// Length of each `send` call's buffer, in order.
        pub(crate) sends: Vec<usize>,
        /// Number of `recv` calls, including those answered with `WouldBlock`.
        pub(crate) recvs: u32,
        pub(crate) starts: u32,
        pub(crate) closes: u32,
    }

    impl Transport for Script {
        fn start_connect(&mut self) -> Result<(), TransportError> {
            self.starts += 1;
            self.start_error.map_or(Ok(()), Err)
        }
        fn poll_connect(&mut self) -> Result<ConnectProgress, TransportError> {
            if self.connect.len() > 1 {
                self.connect.pop_front().unwrap()
            } else {
                *self.connect.front().unwrap()
            }
        }
        fn send(&mut self, buf: &[u8]) -> Result<usize, TransportError> {
            self.sent.extend_from_slice(buf);
            self.sends.push(buf.len());
            Ok(buf.len())
        }
        fn recv(&mut self, buf: &mut [u8]) -> Result<usize, TransportError> {
            self.recvs += 1;
            match self.incoming.pop_front() {
                Some(chunk) => {
                    let n = chunk.len().min(buf.len());
                    buf[..n].copy_from_slice(&chunk[..n]);
                    if n < chunk.len() {
                        self.incoming.push_front(chunk[n..].to_vec());
                    }
                    Ok(n)
                }
                None if self.closed_by_peer => Err(TransportError::Closed),
                None => Err(TransportError::WouldBlock),
            }
        }
        fn close(&mut self) {
            self.closes += 1;
        }
    }
}
