//! The outgoing byte queue: encoded packets waiting for the transport.

use super::RequestError;
use crate::codec::{self, EncodeError, Packet};

/// A linear queue of encoded packets. Packets are appended whole, so the transport always sees
/// complete packets in order; consumed bytes are reclaimed by compacting before an append.
#[derive(Debug)]
pub(crate) struct TxBuf<const N: usize> {
    buf: [u8; N],
    start: usize,
    end: usize,
}

impl<const N: usize> TxBuf<N> {
    pub(crate) const fn new() -> Self {
        TxBuf {
            buf: [0; N],
            start: 0,
            end: 0,
        }
    }

    pub(crate) fn pending(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(&[])
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    pub(crate) fn free(&self) -> usize {
        N - (self.end - self.start)
    }

    fn compact(&mut self) {
        if self.start > 0 {
            // Moves start..end to the front; what lands after `end` is garbage, never read.
            if let Some(live) = self.buf.get_mut(..self.end) {
                crate::ring::rotate_left(live, self.start);
            }
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Appends an encoded packet. A failure leaves the queue unchanged: `Busy` when the packet
    /// fits once the transport took queued bytes, `Invalid(BufferTooSmall)` when it never fits.
    pub(crate) fn push_packet(&mut self, packet: &Packet<'_>) -> Result<(), RequestError> {
        self.compact();
        let out = self.buf.get_mut(self.end..).unwrap_or(&mut []);
        match codec::encode_client(packet, out) {
            Ok(n) => {
                self.end += n;
                Ok(())
            }
            Err(EncodeError::BufferTooSmall) if self.end > 0 => Err(RequestError::Busy),
            Err(e) => Err(RequestError::Invalid(e)),
        }
    }

    /// Appends an acknowledgement: `first_byte`, remaining length 2, the packet id. False when
    /// it does not fit (the queue is unchanged).
    pub(crate) fn push_ack(&mut self, first_byte: u8, id: u16) -> bool {
        let [hi, lo] = id.to_be_bytes();
        self.push_bytes(&[first_byte, 2, hi, lo])
    }

    /// Appends bytes that already form whole packets (stored publishes being resent).
    pub(crate) fn push_bytes(&mut self, bytes: &[u8]) -> bool {
        if self.free() < bytes.len() {
            return false;
        }
        self.compact();
        let end = self.end + bytes.len();
        match self.buf.get_mut(self.end..end) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.end = end;
                true
            }
            None => false,
        }
    }
}
