//! The byte formats of the structured targets: a cursor that never fails (missing bytes read as
//! zero, so every input is a valid script) and the matching writer the seed generator uses.

use arbitrary::Unstructured;

/// Reads script fields from fuzzer bytes.
pub struct Input<'a> {
    u: Unstructured<'a>,
}

impl<'a> Input<'a> {
    /// A cursor over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input {
            u: Unstructured::new(data),
        }
    }

    /// Whether all bytes were read.
    pub fn is_empty(&self) -> bool {
        self.u.is_empty()
    }

    /// One byte; 0 once the input is exhausted.
    pub fn u8(&mut self) -> u8 {
        self.u.arbitrary().unwrap_or(0)
    }

    /// Big-endian `u16`.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    /// Big-endian `u32`.
    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// Lowest bit of one byte.
    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.u.len());
        self.u.bytes(n).unwrap_or(&[])
    }

    /// A length byte, then that many bytes.
    pub fn short_bytes(&mut self) -> &'a [u8] {
        let n = usize::from(self.u8());
        self.bytes(n)
    }
}

/// Writes script fields in the format [`Input`] reads.
#[derive(Debug, Default, Clone)]
pub struct Output {
    /// The bytes written so far.
    pub bytes: Vec<u8>,
}

impl Output {
    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.bytes.push(v);
    }

    /// Big-endian `u16`.
    pub fn u16(&mut self, v: u16) {
        self.bytes.extend_from_slice(&v.to_be_bytes());
    }

    /// Big-endian `u32`.
    pub fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_be_bytes());
    }

    /// A boolean as one byte.
    pub fn bool(&mut self, v: bool) {
        self.bytes.push(u8::from(v));
    }

    /// Raw bytes.
    pub fn raw(&mut self, b: &[u8]) {
        self.bytes.extend_from_slice(b);
    }

    /// A length byte, then the bytes (at most 255).
    pub fn short_bytes(&mut self, b: &[u8]) {
        let n = b.len().min(255);
        self.u8(n as u8);
        self.raw(&b[..n]);
    }
}
