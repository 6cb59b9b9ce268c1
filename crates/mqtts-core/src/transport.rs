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
    ///
    /// **Retry rule.** After `Err(WouldBlock)` or `Ok(0)`, the caller calls `send` again with
    /// exactly the same bytes (same length, same contents) until they are taken, and only then
    /// sends anything else. A TLS socket needs this: Mbed TLS (Zephyr's TLS `send()`) encrypts
    /// and queues a record on the first call, and a later call only flushes that record and then
    /// reports the *new* call's length as written, so a retry with a longer buffer would lose or
    /// repeat bytes. [`crate::driver::Driver`] keeps the rule for every transport; a transport
    /// may rely on it.
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
        /// The next this many `send` calls take nothing and return `Ok(0)`.
        pub(crate) zero_sends: u32,
        /// Length of each `send` call's buffer, in order.
        pub(crate) sends: Vec<usize>,
        /// Number of `recv` calls, including those answered with `WouldBlock`.
        pub(crate) recvs: u32,
        pub(crate) starts: u32,
        pub(crate) closes: u32,
    }

    /// A TLS socket as Zephyr's `send()` over Mbed TLS behaves (`mbedtls_ssl_write`,
    /// `ssl_msg.c`), over a network that takes a scripted number of bytes per call. A call
    /// with no record queued makes one record of at most `max_record` bytes of `buf` and writes
    /// what the network takes; if that is not all of it, the rest stays queued and the call
    /// reports `WouldBlock`. A call with a record queued only flushes it and, once it is out,
    /// reports the length of *this* call's `buf` (at most `max_record`) as written, whatever
    /// bytes it holds: exactly Mbed TLS's behaviour, so a caller breaking the retry rule makes
    /// `wire` differ from what it meant to send.
    pub(crate) struct MbedTls {
        /// Largest record payload (Mbed TLS: `mbedtls_ssl_get_max_out_record_payload`).
        pub(crate) max_record: usize,
        /// Bytes the network takes on each call, in turn (cycled); 0 means it takes none.
        pub(crate) network: Vec<usize>,
        pub(crate) calls: usize,
        /// Record bytes not yet on the network.
        pub(crate) queued: Vec<u8>,
        /// The bytes the call that queued the record was given (what the rule says comes next).
        pub(crate) owed: Option<Vec<u8>>,
        /// Calls that broke the retry rule (a different buffer while a record was queued).
        pub(crate) violations: usize,
        /// What reached the peer, in order.
        pub(crate) wire: Vec<u8>,
        /// The peer's bytes to the device, read by `recv`.
        pub(crate) incoming: VecDeque<u8>,
    }

    impl MbedTls {
        pub(crate) fn new(max_record: usize, network: Vec<usize>) -> Self {
            MbedTls {
                max_record: max_record.max(1),
                network,
                calls: 0,
                queued: Vec::new(),
                owed: None,
                violations: 0,
                wire: Vec::new(),
                incoming: VecDeque::new(),
            }
        }

        /// Writes as much of the queued record as the network takes now.
        fn write_queued(&mut self) {
            let budget = match self.network.get(self.calls % self.network.len().max(1)) {
                Some(&n) => n,
                None => usize::MAX,
            };
            self.calls += 1;
            let n = budget.min(self.queued.len());
            self.wire.extend(self.queued.drain(..n));
        }
    }

    impl Transport for MbedTls {
        fn start_connect(&mut self) -> Result<(), TransportError> {
            Ok(())
        }
        fn poll_connect(&mut self) -> Result<ConnectProgress, TransportError> {
            Ok(ConnectProgress::Established)
        }
        fn send(&mut self, buf: &[u8]) -> Result<usize, TransportError> {
            let len = buf.len().min(self.max_record);
            if let Some(owed) = &self.owed {
                if owed.as_slice() != buf {
                    self.violations += 1;
                }
            } else {
                if len == 0 {
                    return Ok(0);
                }
                self.queued.extend_from_slice(&buf[..len]);
            }
            self.write_queued();
            if self.queued.is_empty() {
                self.owed = None;
                Ok(len)
            } else {
                self.owed.get_or_insert_with(|| buf.to_vec());
                Err(TransportError::WouldBlock)
            }
        }
        fn recv(&mut self, buf: &mut [u8]) -> Result<usize, TransportError> {
            let n = buf.len().min(self.incoming.len());
            if n == 0 {
                return Err(TransportError::WouldBlock);
            }
            for (slot, byte) in buf.iter_mut().zip(self.incoming.drain(..n)) {
                *slot = byte;
            }
            Ok(n)
        }
        fn close(&mut self) {}
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
            self.sends.push(buf.len());
            if self.zero_sends > 0 {
                self.zero_sends -= 1;
                return Ok(0);
            }
            self.sent.extend_from_slice(buf);
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
